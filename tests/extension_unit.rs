//! Runs the extension's own tests (`node --test`, no dependencies) as part of
//! `cargo test`, so one command checks everything: the unit tests, and the extension's
//! browser checks in headless Chromium against its mock tabmux (`TABMUX_E2E=1`).

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
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "the extension's browser checks need Chromium: apt-get install -y chromium (or set CHROMIUM)"
    );
    let out = Command::new("node")
        .arg("--test")
        .env("TABMUX_E2E", "1")
        .env("TABMUX_E2E_PORT", e2e_ports().to_string())
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

/// The first of 12 free ports for the browser checks' mock instances, outside the
/// blocks the other test files use (33000–52200), so runs side by side never meet.
fn e2e_ports() -> u16 {
    let seed = (std::process::id() % 500) as u16;
    for attempt in 0..500u16 {
        let first = 53000 + ((seed + attempt) % 500) * 16;
        if (first..first + 12).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return first;
        }
    }
    panic!("no free block of 12 ports for the extension's browser checks");
}
