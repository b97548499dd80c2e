//! Runs the extension's own unit tests (`node --test`, no dependencies) as part of
//! `cargo test`, so one command checks everything.

use std::path::Path;
use std::process::Command;

#[test]
fn extension_unit_tests_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("extension");
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the extension's unit tests need Node.js 18 or newer: install it (apt-get install nodejs)"
    );
    let out = Command::new("node")
        .arg("--test")
        .current_dir(&dir)
        .output()
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "extension unit tests failed:\n{text}");
    let passed = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("# pass "))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    assert!(
        passed > 50,
        "the extension's unit tests ran ({passed} passed):\n{text}"
    );
}
