//! `rbroker passwd`: mosquitto_passwd's options and messages, writing `$7$`
//! (PBKDF2-SHA512) hashes with 210,000 iterations unless `-I` says otherwise.
//!
//! The options are read by hand rather than by clap: mosquitto_passwd's forms
//! (`-b FILE USER PASSWORD`, `-U FILE`) and its wording for each mistake are what
//! its users know, and a usage error prints the whole usage, as it does.
//!
//! The file is rewritten through a temporary file and a rename, so a crash never
//! leaves half a password file; other lines, comments included, are kept as they
//! were, and so are the file's owner and permissions (a symbolic link is followed).

use super::exit;
use std::io::Write;
use std::num::NonZeroU32;
use std::path::Path;
use std::process::ExitCode;

use crate::broker::auth::password::{DEFAULT_ITERATIONS, PasswordHash, parse_iterations};

fn usage() -> String {
    format!(
        "rbroker passwd is a tool for managing password files for rbroker and mosquitto.\n\n\
         Usage: rbroker passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c | -D] passwordfile username\n       \
         rbroker passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c] -b passwordfile username password\n       \
         rbroker passwd -U passwordfile\n \
         -b : run in batch mode to allow passing passwords on the command line.\n \
         -c : create a new password file. This will overwrite existing files.\n \
         -D : delete the username rather than adding/updating its password.\n \
         -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is recommended.\n      \
         sha512 is accepted for brokers older than mosquitto 2.0 and is weak.\n \
         -I : PBKDF2 iterations (default {DEFAULT_ITERATIONS}; mosquitto_passwd uses 101).\n \
         -U : update a plain text password file to use hashed passwords.\n"
    )
}

/// What to do, from the command line.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    file: String,
    action: Action,
    sha512: bool,
    iterations: NonZeroU32,
}

#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// Add or replace a user; `password` is `None` when it is to be prompted for.
    Set {
        username: String,
        password: Option<String>,
        create: bool,
    },
    Delete {
        username: String,
    },
    /// Hash every plain-text line in place.
    Update,
}

/// Reads the arguments after `passwd`; `Err` is what to print before exiting 1.
fn plan(args: &[String]) -> Result<Plan, String> {
    let (mut create, mut delete, mut batch, mut update, mut sha512) =
        (false, false, false, false, false);
    let mut iterations = DEFAULT_ITERATIONS;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-c" => create = true,
            "-D" => delete = true,
            "-b" => batch = true,
            "-U" => update = true,
            "-H" => match args.next().map(String::as_str) {
                Some("sha512") => sha512 = true,
                Some("sha512-pbkdf2") => sha512 = false,
                Some(other) => return Err(format!("Error: Unknown hash type '{other}'.")),
                None => return Err("Error: -H argument given but no hash type specified.".into()),
            },
            "-I" => {
                let value = args
                    .next()
                    .ok_or("Error: -I argument given but no iteration count specified.")?;
                iterations = parse_iterations(value)
                    .map_err(|reason| format!("Error: Invalid -I value: {reason}."))?;
            }
            "-h" | "--help" => return Err(usage()),
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("Error: Unknown option '{flag}'.\n\n{}", usage()));
            }
            _ => rest.push(arg.clone()),
        }
    }
    if create && delete {
        return Err("Error: -c and -D cannot be used together.".into());
    }
    let action = match (update, rest.as_slice()) {
        (true, [_]) if !(create || delete || batch) => Action::Update,
        (true, _) => return Err(usage()),
        (false, [_, username]) if !batch => named(username, delete, None, create)?,
        (false, [_, username, password]) if batch && !delete => {
            named(username, false, Some(password.clone()), create)?
        }
        _ => return Err(usage()),
    };
    Ok(Plan {
        file: rest[0].clone(),
        action,
        sha512,
        iterations,
    })
}

fn named(
    username: &str,
    delete: bool,
    password: Option<String>,
    create: bool,
) -> Result<Action, String> {
    if username.contains(':') {
        return Err("Error: Username must not contain the ':' character.".into());
    }
    if username.is_empty() {
        return Err("Error: Username must not be empty.".into());
    }
    let username = username.to_string();
    Ok(if delete {
        Action::Delete { username }
    } else {
        Action::Set {
            username,
            password,
            create,
        }
    })
}

/// What mosquitto_passwd says when the two prompted passwords differ (status 2).
const MISMATCH: &str = "Error: Passwords do not match.";

/// `rbroker passwd ARGS...`: status 0 on success, 2 when the prompted passwords
/// differ, 1 on any other error, as mosquitto_passwd.
pub fn main(args: &[String]) -> ExitCode {
    match plan(args).and_then(|plan| execute(&plan)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(text) => {
            eprintln!("{}", text.trim_end());
            ExitCode::from(if text == MISMATCH {
                exit::USAGE_OR_MISMATCH
            } else {
                exit::FAILURE
            })
        }
    }
}

fn hash(plan: &Plan, password: &str) -> Result<PasswordHash, String> {
    if plan.sha512 {
        PasswordHash::new_sha512(password.as_bytes())
    } else {
        PasswordHash::new(password.as_bytes(), plan.iterations)
    }
}

fn execute(plan: &Plan) -> Result<(), String> {
    let path = Path::new(&plan.file);
    let existing = match &plan.action {
        Action::Set { create: true, .. } => String::new(),
        _ => std::fs::read_to_string(path).map_err(|error| {
            format!(
                "Error: Unable to open password file {}. {}.",
                plan.file,
                describe(&error)
            )
        })?,
    };
    let mut lines: Vec<String> = existing.lines().map(str::to_string).collect();
    let entry_of = |line: &str, username: &str| {
        line.split_once(':')
            .is_some_and(|(name, _)| name.trim() == username)
    };
    match &plan.action {
        Action::Set {
            username, password, ..
        } => {
            let password = match password {
                Some(password) => password.clone(),
                None => prompt()?,
            };
            let line = format!("{username}:{}", hash(plan, &password)?);
            match lines.iter_mut().find(|l| entry_of(l, username)) {
                Some(existing) => *existing = line,
                None => lines.push(line),
            }
        }
        Action::Delete { username } => {
            let before = lines.len();
            lines.retain(|l| !entry_of(l, username));
            if lines.len() == before {
                return Err(format!(
                    "Warning: User {username} not found in password file."
                ));
            }
        }
        Action::Update => {
            for line in &mut lines {
                let Some((username, secret)) = line.split_once(':') else {
                    continue;
                };
                // Lines already hashed stay as they are (mosquitto_passwd would
                // hash the hash).
                if line.trim_start().starts_with('#') || PasswordHash::parse(secret.trim()).is_ok()
                {
                    continue;
                }
                *line = format!("{username}:{}", hash(plan, secret)?);
            }
        }
    }
    write_atomically(path, &lines)
}

/// Asks twice without echo, as mosquitto_passwd.
fn prompt() -> Result<String, String> {
    let first = rpassword::prompt_password("Password: ")
        .map_err(|error| format!("Error: Unable to read the password: {error}."))?;
    let second = rpassword::prompt_password("Reenter password: ")
        .map_err(|error| format!("Error: Unable to read the password: {error}."))?;
    if first != second {
        return Err(MISMATCH.into());
    }
    if first.is_empty() {
        return Err("Error: Empty password.".into());
    }
    Ok(first)
}

fn describe(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
        _ => error.to_string(),
    }
}

/// Writes `lines` to a temporary file beside `path` (owner-only permissions, or the
/// old file's), then renames it over `path`.
fn write_atomically(path: &Path, lines: &[String]) -> Result<(), String> {
    // Through a symbolic link, the file it points to is replaced, not the link.
    let resolved = std::fs::canonicalize(path).ok();
    let path = resolved.as_deref().unwrap_or(path);
    let fail = |error: std::io::Error| {
        format!(
            "Error: Unable to write password file {}. {}.",
            path.display(),
            describe(&error)
        )
    };
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile creates the file owner-only (0600).
    let mut temporary = tempfile::NamedTempFile::new_in(directory).map_err(fail)?;
    let mut text = lines.join("\n");
    text.push('\n');
    temporary.write_all(text.as_bytes()).map_err(fail)?;
    temporary.as_file().sync_all().map_err(fail)?;
    // The old file's permissions and owner carry over (a root:mosquitto 0640 file
    // stays readable by the broker).
    #[cfg(unix)]
    if let Ok(metadata) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        temporary
            .as_file()
            .set_permissions(metadata.permissions())
            .map_err(fail)?;
        std::os::unix::fs::fchown(
            temporary.as_file(),
            Some(metadata.uid()),
            Some(metadata.gid()),
        )
        .map_err(fail)?;
    }
    temporary
        .persist(path)
        .map(|_| ())
        .map_err(|error| fail(error.error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn reads_mosquitto_passwds_forms() {
        let plan = plan(&args("-c -b pw alice secret")).expect("valid");
        assert_eq!(plan.file, "pw");
        assert_eq!(plan.iterations, DEFAULT_ITERATIONS);
        assert_eq!(
            plan.action,
            Action::Set {
                username: "alice".into(),
                password: Some("secret".into()),
                create: true
            }
        );
        assert!(matches!(
            super::plan(&args("-D pw bob")).expect("valid").action,
            Action::Delete { .. }
        ));
        assert_eq!(
            super::plan(&args("-U pw")).expect("valid").action,
            Action::Update
        );
        let prompted = super::plan(&args("-H sha512 -I 5 pw carol")).expect("valid");
        assert!(prompted.sha512);
        assert_eq!(prompted.iterations.get(), 5);
    }

    #[test]
    fn mistakes_are_refused_with_mosquitto_passwds_words() {
        for (line, start) in [
            ("-c -D pw a", "Error: -c and -D cannot be used together."),
            ("-b pw a:b p", "Error: Username must not contain the ':'"),
            ("-H md5 pw a", "Error: Unknown hash type 'md5'."),
            (
                "-I 0 pw a",
                "Error: Invalid -I value: iteration count 0 is outside",
            ),
            ("-x pw a", "Error: Unknown option '-x'."),
            ("", "rbroker passwd is a tool"),
            ("-b pw a", "rbroker passwd is a tool"),
            ("-U pw a", "rbroker passwd is a tool"),
            ("-D -b pw a p", "rbroker passwd is a tool"),
        ] {
            let error = plan(&args(line)).expect_err(line);
            assert!(error.starts_with(start), "{line}: {error}");
        }
    }
}
