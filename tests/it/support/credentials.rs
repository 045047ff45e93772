//! Password files for tests, made by `rbroker passwd` or mosquitto_passwd in
//! directories mosquitto can read, and CONNECT packets carrying credentials.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use mqttkit::protocol::{Connect, ProtocolVersion};

/// Iterations for password files made in tests: the default (210,000) costs most
/// of a second per check in a debug build; the format is the same.
pub const TEST_ITERATIONS: &str = "1000";

/// `rbroker passwd ARGS`, which must succeed.
pub fn rbroker_passwd(args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_rbroker"))
        .arg("passwd")
        .args(args)
        .status()
        .expect("run rbroker passwd");
    assert!(status.success(), "rbroker passwd {args:?}: {status}");
}

pub fn mosquitto_passwd(args: &[&str]) {
    let status = Command::new("mosquitto_passwd")
        .args(args)
        .status()
        .expect("run mosquitto_passwd");
    assert!(status.success(), "mosquitto_passwd {args:?}: {status}");
}

/// Which tool writes a password file.
#[derive(Debug, Clone, Copy)]
pub enum Maker {
    Rbroker,
    Mosquitto,
}

/// A directory for password and ACL files that mosquitto can read: started as
/// root, it drops to its own user before reading them.
pub fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    open_to_all(dir.path(), 0o755);
    dir
}

/// A subdirectory of `parent` anyone may write to: mosquitto writes its pid and
/// log files after dropping root privileges.
pub fn writable_dir(parent: &Path, name: &str) -> PathBuf {
    let path = parent.join(name);
    std::fs::create_dir(&path).expect("mkdir");
    open_to_all(&path, 0o777);
    path
}

pub fn open_to_all(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// A password file with `users` (name, password) made by `maker`.
pub fn password_file(dir: &Path, maker: Maker, users: &[(&str, &str)]) -> PathBuf {
    let path = dir.join(format!("passwords-{maker:?}"));
    let file = path.to_str().expect("utf-8 path");
    for (index, (user, password)) in users.iter().enumerate() {
        let create = if index == 0 { &["-c"][..] } else { &[] };
        match maker {
            Maker::Rbroker => rbroker_passwd(
                &[create, &["-I", TEST_ITERATIONS, "-b", file, user, password]].concat(),
            ),
            Maker::Mosquitto => mosquitto_passwd(&[create, &["-b", file, user, password]].concat()),
        }
    }
    open_to_all(&path, 0o644);
    path
}

pub fn login(
    version: ProtocolVersion,
    id: &str,
    user: Option<&str>,
    password: Option<&str>,
) -> Connect {
    Connect {
        version,
        username: user.map(String::from),
        password: password.map(|p| Bytes::copy_from_slice(p.as_bytes())),
        ..Connect::new(id, 60)
    }
}
