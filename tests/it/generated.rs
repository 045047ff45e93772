//! Completions and man pages on disk match what the clap definitions generate.
//! `MQTTKIT_BLESS=1 cargo test generated` rewrites them.

use std::path::Path;

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var("MQTTKIT_BLESS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (relative, contents) in mqttkit::cli::generate::files() {
        let path = root.join(&relative);
        if std::fs::read(&path).ok().as_deref() == Some(&contents[..]) {
            continue;
        }
        if bless {
            std::fs::create_dir_all(path.parent().expect("a directory")).expect("create directory");
            std::fs::write(&path, &contents).expect("write generated file");
        } else {
            stale.push(relative.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {stale:?}; run `MQTTKIT_BLESS=1 cargo test generated` and commit them"
    );
}
