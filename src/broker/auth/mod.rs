//! Authentication and authorisation: who may connect (`allow_anonymous`,
//! `password_file`) and what they may do (`acl_file`), globally or per listener
//! (`per_listener_settings`).
//!
//! The connection consults this module at CONNECT (the password, off the message
//! threads: `verifier`), at SUBSCRIBE and at PUBLISH; the router consults it at every
//! delivery, retained messages and wills included. The loaded files are one immutable
//! [`Security`] value that the router swaps whole on reload, so a reload either
//! replaces every file or, when one is bad, none (CVE-2017-7652), and every check
//! after the swap sees the new files.
//!
//! Reconnect storms: a successful login is remembered as an HMAC-SHA256 of the
//! password under a key made at startup, so the same user with the same password
//! logs in again for the cost of one HMAC instead of a key derivation. A wrong
//! password never matches that record and always costs a full derivation, as does an
//! unknown user (through a decoy hash of the same cost), so the answer to a wrong
//! guess takes the same time whether the user exists or not.

pub mod acl;
pub mod password;
mod verifier;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ring::hmac;
use ring::rand::SystemRandom;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use super::config::{AuthConfig, Config};
pub use acl::{Access, Acl, Identity};
use password::{LineError, PasswordFile};

/// The scope of a bridge's session on this broker: no ACL applies to it, as in
/// mosquitto. A `u32` value, so the store keeps it as it is.
pub const BRIDGE_SCOPE: usize = u32::MAX as usize;

/// Who a session belongs to, for the ACL checks made while it is offline too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Boxed rather than a `String`, and the scope 32-bit: every connected
    /// client holds a principal (`ARCHITECTURE.md`, what an idle connection
    /// costs).
    pub username: Option<Box<str>>,
    pub client_id: Arc<str>,
    /// Which [`Scope`] of [`Security`] applies.
    pub scope: u32,
    /// Whether a client certificate named the user (`use_identity_as_username`,
    /// `use_subject_as_username`): the password file does not apply to it.
    pub certified: bool,
}

impl Principal {
    pub fn new(
        username: Option<String>,
        client_id: Arc<str>,
        scope: usize,
        certified: bool,
    ) -> Self {
        Principal {
            username: username.map(String::into_boxed_str),
            client_id,
            // Scopes are the listeners and two more: never 2^32 of them. An index
            // out of range falls back to the default scope, as `Security::scope`
            // does, never to the bridges' (`BRIDGE_SCOPE`).
            scope: u32::try_from(scope).unwrap_or(u32::MAX - 1),
            certified,
        }
    }

    /// Which [`Scope`] of [`Security`] applies, as an index.
    pub fn scope_index(&self) -> usize {
        self.scope as usize
    }

    /// The names the ACL matches against.
    pub fn identity(&self) -> Identity<'_> {
        Identity {
            username: self.username.as_deref(),
            client_id: &self.client_id,
        }
    }
}

/// A password file with what checking against it needs.
pub struct Passwords {
    file: PasswordFile,
    /// Iterations every refusal costs (the file's costliest hash).
    refusal_cost: u32,
    /// Username → HMAC of the password that last logged in successfully.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    key: hmac::Key,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Passwords({} users)", self.file.len())
    }
}

impl Passwords {
    pub fn new(file: PasswordFile) -> Result<Passwords, String> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| "Unable to obtain random bytes for the password cache.".to_string())?;
        Ok(Passwords {
            refusal_cost: file.refusal_cost(),
            file,
            verified: Mutex::new(HashMap::new()),
            key,
        })
    }

    fn tag(&self, password: &[u8]) -> [u8; 32] {
        let mut tag = [0u8; 32];
        tag.copy_from_slice(hmac::sign(&self.key, password).as_ref());
        tag
    }

    /// This user's stored hash.
    pub fn entry(&self, username: &str) -> Option<&password::PasswordHash> {
        self.file.get(username)
    }

    /// `Some(true)` when this user logged in with this password before (cheap).
    pub fn remembered(&self, username: &str, password: &[u8]) -> Option<bool> {
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let known = verified.get(username)?;
        bool::from(known.ct_eq(&self.tag(password))).then_some(true)
    }

    /// The full check: derives the key. A refusal is padded to the file's costliest
    /// hash, so it takes the same time for a wrong password (cheap hash or costly)
    /// and for an unknown user.
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        let (ok, spent) = match self.file.get(username) {
            // As mosquitto: an empty password never logs in, whatever the file says.
            Some(hash) => (
                hash.verify(password) && !password.is_empty(),
                hash.iterations(),
            ),
            None => (false, 0),
        };
        if !ok {
            password::spend(self.refusal_cost.saturating_sub(spent));
        }
        if ok {
            let tag = self.tag(password);
            self.verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(username.to_string(), tag);
        }
        ok
    }
}

/// The rules of one listener (or of all, without `per_listener_settings`).
#[derive(Debug)]
pub struct Scope {
    pub allow_anonymous: bool,
    pub passwords: Option<Arc<Passwords>>,
    pub acl: Option<Acl>,
    /// Whether a client may connect with an empty client id.
    pub allow_zero_length_clientid: bool,
    /// What assigned client ids start with.
    pub auto_id_prefix: Arc<str>,
}

/// The answer to a login.
pub enum Login {
    Accepted,
    /// No username, and anonymous clients are not allowed.
    AnonymousRefused,
    /// Needs a key derivation against `passwords`; `verdict` answers when it is done.
    Pending {
        verdict: oneshot::Receiver<bool>,
        passwords: Arc<Passwords>,
    },
    /// Too many checks are waiting already.
    Busy,
}

impl Scope {
    /// Checks a CONNECT's credentials; only a password check that the cache cannot
    /// answer is deferred to a verifier thread.
    pub fn login(&self, username: Option<&str>, password: Option<&[u8]>) -> Login {
        let Some(username) = username else {
            return if self.allow_anonymous {
                Login::Accepted
            } else {
                Login::AnonymousRefused
            };
        };
        let Some(passwords) = &self.passwords else {
            // mosquitto 2.0: without a password file a username is not checked.
            return Login::Accepted;
        };
        let password = password.unwrap_or_default();
        if passwords.remembered(username, password) == Some(true) {
            return Login::Accepted;
        }
        let (checked, username, password) = (
            Arc::clone(passwords),
            username.to_string(),
            password.to_vec(),
        );
        match verifier::run(move || checked.verify(&username, &password)) {
            Some(verdict) => Login::Pending {
                verdict,
                passwords: Arc::clone(passwords),
            },
            None => Login::Busy,
        }
    }
}

/// Every scope's rules, as loaded from the files the config names.
#[derive(Debug)]
pub struct Security {
    /// Index 0: the global settings (and the default listener's); with
    /// `per_listener_settings`, index `i + 1` is listener `i`'s.
    scopes: Vec<Scope>,
    per_listener: bool,
    /// Whether any scope has an ACL: read once per routed message.
    any_acl: bool,
}

/// Why the password or ACL files could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    /// mosquitto's two lines, e.g. `Error: Unable to open pwfile "x".` and `Error
    /// opening password file "x".`
    #[error(
        "Error: Unable to open {short} \"{path}\" ({reason}).\nError opening {kind} \"{path}\"."
    )]
    Unreadable {
        short: &'static str,
        kind: &'static str,
        path: String,
        reason: String,
    },
    #[error("Error: Invalid line in {kind} {path}:{line}: {reason}.")]
    Invalid {
        kind: &'static str,
        path: String,
        line: usize,
        reason: String,
    },
    #[error("Error: {0}")]
    Other(String),
}

impl SecurityError {
    /// rbroker's exit status: 13 for a file that cannot be opened, as mosquitto;
    /// 3 (a configuration error) for a file with a bad line, which mosquitto skips.
    pub fn exit_status(&self) -> u8 {
        match self {
            SecurityError::Unreadable { .. } => 13,
            _ => 3,
        }
    }
}

impl Security {
    /// Reads every file `config` names. `Ok` also carries warnings to log.
    pub fn load(config: &Config) -> Result<(Security, Vec<String>), SecurityError> {
        let mut warnings = Vec::new();
        let listeners_configured = config.has_listeners();
        let mut scopes = vec![load_scope(
            &config.auth,
            listeners_configured,
            &mut warnings,
        )?];
        if config.per_listener_settings {
            for listener in &config.listeners {
                scopes.push(load_scope(&listener.auth, true, &mut warnings)?);
            }
        }
        let any_acl = scopes.iter().any(|scope| scope.acl.is_some());
        Ok((
            Security {
                scopes,
                per_listener: config.per_listener_settings,
                any_acl,
            },
            warnings,
        ))
    }

    /// Which scope serves a connection that came in on configured listener
    /// `listener` (`None`: the default listener, or one bound directly).
    pub fn scope_index(&self, listener: Option<usize>) -> usize {
        match listener {
            Some(index) if self.per_listener && index + 1 < self.scopes.len() => index + 1,
            _ => 0,
        }
    }

    pub fn scope(&self, index: usize) -> &Scope {
        self.scopes.get(index).unwrap_or(&self.scopes[0])
    }

    /// Whether a client logged in under `previous` may stay connected under these
    /// rules: anonymous access still allowed, and for a user, the same stored
    /// password (a user removed or given a new password must log in again).
    pub fn still_admits(&self, previous: &Security, principal: &Principal) -> bool {
        let scope = self.scope(principal.scope_index());
        if principal.certified {
            return true;
        }
        let Some(username) = &principal.username else {
            return scope.allow_anonymous;
        };
        let Some(passwords) = &scope.passwords else {
            return true;
        };
        let before = previous.scope(principal.scope_index()).passwords.as_ref();
        match (passwords.entry(username), before) {
            (Some(now), Some(before)) => before.entry(username) == Some(now),
            _ => false,
        }
    }

    /// Whether `config` changes only what a reload can apply: the files and
    /// `allow_anonymous`, not the listeners they attach to.
    pub fn reloadable(current: &Config, next: &Config) -> Result<(), SecurityError> {
        let places = |config: &Config| {
            config
                .listeners
                .iter()
                .chain(&config.default_listener)
                .map(|l| (l.port, l.bind_address.clone()))
                .collect::<Vec<_>>()
        };
        if places(current) != places(next)
            || current.per_listener_settings != next.per_listener_settings
        {
            return Err(SecurityError::Other(
                "the listeners or per_listener_settings changed: restart rbroker to apply that."
                    .into(),
            ));
        }
        Ok(())
    }

    /// Whether any scope has an ACL (deliveries are checked only then).
    pub fn has_acl(&self) -> bool {
        self.any_acl
    }

    /// Whether the owner of a session may receive a message on `topic`.
    pub fn may_read(&self, principal: Option<&Principal>, topic: &str) -> bool {
        match principal {
            Some(principal) => self.allows(principal, topic, Access::Read),
            None => !self.has_acl(),
        }
    }

    /// Whether a client may publish to `topic`, as far as the ACL is concerned.
    pub fn may_write(&self, principal: &Principal, topic: &str) -> bool {
        self.allows(principal, topic, Access::Write)
    }

    fn allows(&self, principal: &Principal, topic: &str, access: Access) -> bool {
        if principal.scope_index() == BRIDGE_SCOPE {
            return true;
        }
        match &self.scope(principal.scope_index()).acl {
            None => true,
            Some(acl) => acl.allows(principal.identity(), topic, access),
        }
    }
}

fn load_scope(
    auth: &AuthConfig,
    listeners_configured: bool,
    warnings: &mut Vec<String>,
) -> Result<Scope, SecurityError> {
    let passwords = match &auth.password_file {
        None => None,
        Some(path) => {
            let text = read(path, "pwfile", "password file")?;
            let file = PasswordFile::parse(&text)
                .map_err(|error| invalid("password file", path, error))?;
            if file.has_sha512() {
                warnings.push(format!(
                    "Warning: {} has $6$ (salted SHA-512) hashes: one guess costs one hash. Re-create them with `rbroker passwd` ($7$, PBKDF2).",
                    path.display()
                ));
            }
            Some(Arc::new(
                Passwords::new(file).map_err(SecurityError::Other)?,
            ))
        }
    };
    let acl = match &auth.acl_file {
        None => None,
        Some(path) => {
            let text = read(path, "acl_file", "acl file")?;
            Some(Acl::parse(&text).map_err(|error| invalid("acl file", path, error))?)
        }
    };
    Ok(Scope {
        allow_anonymous: auth.allow_anonymous.unwrap_or(!listeners_configured),
        passwords,
        acl,
        allow_zero_length_clientid: auth.allow_zero_length_clientid.unwrap_or(true),
        auto_id_prefix: Arc::from(auth.auto_id_prefix.as_deref().unwrap_or("auto-")),
    })
}

fn read(path: &Path, short: &'static str, kind: &'static str) -> Result<String, SecurityError> {
    let bytes = std::fs::read(path).map_err(|error| SecurityError::Unreadable {
        short,
        kind,
        path: path.display().to_string(),
        reason: error.kind().to_string(),
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let line = error.as_bytes()[..error.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        SecurityError::Invalid {
            kind,
            path: path.display().to_string(),
            line,
            reason: "the line is not valid UTF-8".into(),
        }
    })
}

fn invalid(kind: &'static str, path: &Path, error: LineError) -> SecurityError {
    SecurityError::Invalid {
        kind,
        path: path.display().to_string(),
        line: error.line,
        reason: error.reason,
    }
}
