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

/// The README's mosquitto.conf table, between its markers, is the one the
/// option catalogue renders.
#[test]
fn readme_option_table_is_up_to_date() {
    const START: &str =
        "<!-- mosquitto.conf options: generated from src/broker/config/catalogue.rs -->\n";
    const END: &str = "<!-- end of generated options -->";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let start = readme.find(START).expect("the table's start marker") + START.len();
    let end = readme[start..].find(END).expect("the table's end marker") + start;
    let table = mqttkit::broker::config::catalogue::markdown_table();
    if readme[start..end] == table {
        return;
    }
    if std::env::var("MQTTKIT_BLESS").is_ok_and(|v| v == "1") {
        let updated = format!("{}{table}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    panic!("README.md's option table is stale; run `MQTTKIT_BLESS=1 cargo test generated`");
}
