//! mosquitto's password file: `username:hash` lines, read strictly, and the hashes
//! `mosquitto_passwd` writes.
//!
//! Hashes (every field base64, as mosquitto writes them):
//! * `$7$ITERATIONS$SALT$HASH`: PBKDF2-HMAC-SHA512 with a 64-byte key, mosquitto 2.0's
//!   default and the only kind `rbroker passwd` writes;
//! * `$6$SALT$HASH`: `SHA512(password || salt)`, mosquitto 1.6's default, accepted with a
//!   warning because one guess costs one hash.
//!
//! A line that is not a well-formed entry is an error naming its line: it never
//! becomes a user (mosquitto CVE-2018-12551). mosquitto instead skips such lines with
//! a warning; refusing to start is the fail-closed reading of the same file.
//!
//! The key derivation and digests are `ring`'s (already linked for TLS); comparisons
//! are constant-time (`ring::pbkdf2::verify`, `subtle`).

use std::collections::HashMap;
use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ring::{digest, pbkdf2, rand::SecureRandom};
use subtle::ConstantTimeEq;

/// Iterations `rbroker passwd` uses unless told otherwise (OWASP's 2023 figure for
/// PBKDF2-HMAC-SHA512). mosquitto_passwd 2.0 uses 101.
pub const DEFAULT_ITERATIONS: NonZeroU32 = NonZeroU32::MIN.saturating_add(210_000 - 1);
/// Most iterations accepted from a file: beyond this one login costs seconds of CPU.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Salt bytes, as mosquitto_passwd.
const SALT_LEN: usize = 12;
/// SHA-512 output; both hash kinds store this many bytes.
const HASH_LEN: usize = 64;
/// mosquitto's limit on a username or a hash field.
const MAX_FIELD: usize = 65_535;

/// One user's stored password.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    Pbkdf2Sha512 {
        iterations: NonZeroU32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Sha512 {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => {
                write!(f, "PasswordHash::Pbkdf2Sha512({iterations} iterations)")
            }
            PasswordHash::Sha512 { .. } => f.write_str("PasswordHash::Sha512"),
        }
    }
}

impl PasswordHash {
    /// A new `$7$` hash of `password` with a fresh random salt.
    pub fn new(password: &[u8], iterations: NonZeroU32) -> Result<PasswordHash, String> {
        let mut salt = vec![0u8; SALT_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| "Error: Unable to obtain random salt.".to_string())?;
        let mut hash = vec![0u8; HASH_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA512,
            iterations,
            &salt,
            password,
            &mut hash,
        );
        Ok(PasswordHash::Pbkdf2Sha512 {
            iterations,
            salt,
            hash,
        })
    }

    /// A new `$6$` hash (mosquitto_passwd `-H sha512`), for files older brokers read.
    pub fn new_sha512(password: &[u8]) -> Result<PasswordHash, String> {
        let mut salt = vec![0u8; SALT_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| "Error: Unable to obtain random salt.".to_string())?;
        let hash = sha512_salted(password, &salt);
        Ok(PasswordHash::Sha512 { salt, hash })
    }

    /// Whether `password` is this hash's password, compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => pbkdf2::verify(
                pbkdf2::PBKDF2_HMAC_SHA512,
                *iterations,
                salt,
                password,
                hash,
            )
            .is_ok(),
            PasswordHash::Sha512 { salt, hash } => {
                bool::from(sha512_salted(password, salt).as_slice().ct_eq(hash))
            }
        }
    }

    /// The iterations one verification costs (1 for `$6$`).
    pub fn iterations(&self) -> u32 {
        match self {
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => iterations.get(),
            PasswordHash::Sha512 { .. } => 1,
        }
    }

    /// Reads `$7$...` or `$6$...`; `Err` says what is wrong, for the caller to place.
    pub fn parse(text: &str) -> Result<PasswordHash, String> {
        if let Some(rest) = text.strip_prefix("$7$") {
            let mut fields = rest.split('$');
            let (Some(iterations), Some(salt), Some(hash), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err("a $7$ hash has three fields: $7$ITERATIONS$SALT$HASH".into());
            };
            Ok(PasswordHash::Pbkdf2Sha512 {
                iterations: parse_iterations(iterations)?,
                salt: decode_salt(salt)?,
                hash: decode_hash(hash)?,
            })
        } else if let Some(rest) = text.strip_prefix("$6$") {
            let mut fields = rest.split('$');
            let (Some(salt), Some(hash), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err("a $6$ hash has two fields: $6$SALT$HASH".into());
            };
            Ok(PasswordHash::Sha512 {
                salt: decode_salt(salt)?,
                hash: decode_hash(hash)?,
            })
        } else {
            Err("the password is not a $7$ or $6$ hash (a plain-text file needs `rbroker passwd -U`)".into())
        }
    }
}

impl std::fmt::Display for PasswordHash {
    /// The form a password file stores.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => write!(
                f,
                "$7${iterations}${}${}",
                STANDARD.encode(salt),
                STANDARD.encode(hash)
            ),
            PasswordHash::Sha512 { salt, hash } => {
                write!(f, "$6${}${}", STANDARD.encode(salt), STANDARD.encode(hash))
            }
        }
    }
}

/// A PBKDF2 iteration count, 1 to [`MAX_ITERATIONS`].
pub fn parse_iterations(text: &str) -> Result<NonZeroU32, String> {
    let count: u64 = text
        .parse()
        .map_err(|_| format!("iteration count \"{}\" is not a number", clip(text)))?;
    u32::try_from(count)
        .ok()
        .filter(|n| *n <= MAX_ITERATIONS)
        .and_then(NonZeroU32::new)
        .ok_or_else(|| format!("iteration count {count} is outside 1 to {MAX_ITERATIONS}"))
}

fn sha512_salted(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut context = digest::Context::new(&digest::SHA512);
    context.update(password);
    context.update(salt);
    context.finish().as_ref().to_vec()
}

fn decode(field: &str, what: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(field)
        .or_else(|_| STANDARD_NO_PAD.decode(field))
        .map_err(|_| format!("the {what} \"{}\" is not valid base64", clip(field)))
}

fn decode_salt(field: &str) -> Result<Vec<u8>, String> {
    let salt = decode(field, "salt")?;
    if salt.is_empty() {
        return Err("the salt is empty".into());
    }
    Ok(salt)
}

fn decode_hash(field: &str) -> Result<Vec<u8>, String> {
    let hash = decode(field, "hash")?;
    if hash.len() != HASH_LEN {
        return Err(format!(
            "the hash is {} bytes; SHA-512 gives {HASH_LEN}",
            hash.len()
        ));
    }
    Ok(hash)
}

/// At most 40 characters of a field, for error messages about huge lines.
fn clip(field: &str) -> String {
    match field.char_indices().nth(40) {
        Some((end, _)) => format!("{}...", &field[..end]),
        None => field.to_string(),
    }
}

/// A problem at one line of a password or ACL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// The lines of a mosquitto text file, numbered from 1, with a leading UTF-8 byte
/// order mark and CRLF endings removed.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate()
        .map(|(index, line)| (index + 1, line))
}

/// A parsed password file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordFile {
    users: HashMap<String, PasswordHash>,
}

impl PasswordFile {
    /// Reads the whole file; every non-blank, non-comment line must be an entry.
    pub fn parse(text: &str) -> Result<PasswordFile, LineError> {
        let mut users = HashMap::new();
        for (line, content) in lines(text) {
            let at = |reason: String| LineError { line, reason };
            let trimmed = content.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((username, hash)) = trimmed.split_once(':') else {
                return Err(at("the line has no ':' between username and hash".into()));
            };
            let (username, hash) = (username.trim(), hash.trim());
            if username.is_empty() {
                return Err(at("the username is empty".into()));
            }
            if username.len() > MAX_FIELD || hash.len() > MAX_FIELD {
                return Err(at(format!("a field is longer than {MAX_FIELD} bytes")));
            }
            if hash.is_empty() {
                return Err(at(format!("user \"{username}\" has no password hash")));
            }
            let hash = PasswordHash::parse(hash).map_err(&at)?;
            if users.insert(username.to_string(), hash).is_some() {
                return Err(at(format!("user \"{username}\" appears twice")));
            }
        }
        Ok(PasswordFile { users })
    }

    pub fn get(&self, username: &str) -> Option<&PasswordHash> {
        self.users.get(username)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether any user still has a weak `$6$` hash.
    pub fn has_sha512(&self) -> bool {
        self.users
            .values()
            .any(|hash| matches!(hash, PasswordHash::Sha512 { .. }))
    }

    /// The iterations of the file's costliest hash (`rbroker passwd`'s default for
    /// an empty file): every refused login costs this much, whoever it names.
    pub fn refusal_cost(&self) -> u32 {
        self.users
            .values()
            .map(PasswordHash::iterations)
            .max()
            .unwrap_or(DEFAULT_ITERATIONS.get())
    }
}

/// Spends `iterations` of PBKDF2-HMAC-SHA512 on nothing: pads a refusal so that a
/// wrong password for a cheap hash, for a costly one and for an unknown user all
/// take the same time.
pub fn spend(iterations: u32) {
    if let Some(iterations) = NonZeroU32::new(iterations) {
        let mut scratch = [0u8; HASH_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA512,
            iterations,
            &[0; SALT_LEN],
            b"",
            &mut scratch,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by `mosquitto_passwd -b` 2.0.11 (password "secret").
    const MOSQUITTO_7: &str = "$7$101$D5Pff4h9K9Ccjj2y$MDwpcQm832afipCYEPyRPpbrgOHPM65sizZFi65Y9g/VeZquCdBqsvjW+j9FHZkZczZzwf7DtM+NWXX9K3GfSQ==";
    /// Made by `mosquitto_passwd -H sha512 -b` 2.0.11 (password "secret").
    const MOSQUITTO_6: &str = "$6$lFXDctTpwXEok0XE$dQI5VAMdLtYNSPcKCbKxHcy9PAIf7idiozJBSXC9fhmMereKVR9j2kv+aMSEFTodE9rGV+KP0BpSStiPyNqp6g==";

    fn iterations(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero")
    }

    #[test]
    fn new_hashes_verify_and_round_trip_through_text() {
        let hash = PasswordHash::new(b"secret", iterations(1000)).expect("salt");
        assert!(hash.verify(b"secret"));
        assert!(!hash.verify(b"Secret"));
        assert!(!hash.verify(b""));
        let text = hash.to_string();
        assert!(text.starts_with("$7$1000$"), "{text}");
        assert_eq!(PasswordHash::parse(&text), Ok(hash));
        let old = PasswordHash::new_sha512(b"secret").expect("salt");
        assert!(old.verify(b"secret") && !old.verify(b"secret2"));
        assert_eq!(PasswordHash::parse(&old.to_string()), Ok(old));
    }

    #[test]
    fn every_malformed_line_is_refused_with_its_number() {
        let good = format!("alice:{MOSQUITTO_7}");
        let cases = [
            "alice".to_string(),
            ":".to_string(),
            format!(":{MOSQUITTO_7}"),
            "alice:".to_string(),
            "alice:secret".to_string(),
            "alice:$7$".to_string(),
            "alice:$7$101$abc".to_string(),
            "alice:$7$0$D5Pff4h9K9Ccjj2y$AAAA".to_string(),
            "alice:$7$-5$D5Pff4h9K9Ccjj2y$AAAA".to_string(),
            "alice:$7$99999999999999999999$D5Pff4h9K9Ccjj2y$AAAA".to_string(),
            format!("alice:$7$4294967295${}", &MOSQUITTO_7[7..]),
            "alice:$7$101$$AAAA".to_string(),
            "alice:$7$101$!!!!$AAAA".to_string(),
            "alice:$7$101$D5Pff4h9K9Ccjj2y$AAAA".to_string(),
            "alice:$6$abc".to_string(),
            "alice:$5$abc$def".to_string(),
            format!("{}:{MOSQUITTO_7}", "u".repeat(70_000)),
            format!("alice:{MOSQUITTO_7}$extra"),
        ];
        for case in cases {
            let text = format!("# users\n{good}\n{case}\n");
            let error = PasswordFile::parse(&text).expect_err(&case);
            assert_eq!(error.line, 3, "{case}: {error:?}");
            assert!(!error.reason.is_empty());
        }
        let twice = format!("{good}\n{good}\n");
        assert_eq!(PasswordFile::parse(&twice).expect_err("dup").line, 2);
    }

    #[test]
    fn bom_crlf_comments_and_blank_lines_are_read_as_mosquitto_writes_them() {
        let text = format!("\u{feff}# c\r\n\r\n  alice : {MOSQUITTO_7} \r\nbob:{MOSQUITTO_6}");
        let file = PasswordFile::parse(&text).expect("valid");
        assert_eq!(file.len(), 2);
        assert!(file.get("alice").expect("alice").verify(b"secret"));
        assert!(!file.get("alice").expect("alice").verify(b"secret "));
        assert!(file.get("bob").expect("bob").verify(b"secret"));
        assert!(file.has_sha512());
        assert!(PasswordFile::parse("").expect("empty").is_empty());
    }

    #[test]
    fn a_refusal_costs_what_the_costliest_user_costs() {
        let file =
            PasswordFile::parse(&format!("a:{MOSQUITTO_7}\nb:{MOSQUITTO_6}\n")).expect("valid");
        assert_eq!(file.refusal_cost(), 101);
        assert_eq!(
            PasswordFile::default().refusal_cost(),
            DEFAULT_ITERATIONS.get()
        );
    }
}
