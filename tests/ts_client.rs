//! tabmux driven by the official MCP TypeScript SDK client (`@modelcontextprotocol/sdk`,
//! the client Claude Code, VS Code and Cursor build on): `tests/ts-client/client.mjs`
//! lists the tools, navigates, waits with progress and cancels a long wait; this test
//! runs it against the built binary and headless Chromium and checks its report.
//!
//! Needs Node.js and npm: the SDK is installed into `tests/ts-client/node_modules` with
//! `npm ci` (from the committed lock file) when it is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::{Fixtures, TempDir, require_chromium};

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ts-client")
}

/// Installs the SDK once (`npm ci`); a clear failure when Node.js or npm is missing.
fn install_sdk() {
    static ONCE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut done = ONCE.lock().unwrap();
    if *done {
        return;
    }
    let dir = project();
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the TypeScript SDK test needs Node.js: install it with `apt-get install -y nodejs npm`"
    );
    if !dir
        .join("node_modules/@modelcontextprotocol/sdk/package.json")
        .exists()
    {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "the TypeScript SDK test needs npm to install @modelcontextprotocol/sdk into {}: {e}; install it with `apt-get install -y npm`",
                    dir.display()
                )
            });
        assert!(
            out.status.success(),
            "`npm ci` in {} failed (is the npm registry reachable?):\n{}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    *done = true;
}

/// Runs `client.mjs` against tabmux and returns its report.
async fn run_client() -> Value {
    require_chromium();
    install_sdk();
    let fx = Fixtures::start().await;
    let state = TempDir::new("ts-client");
    let url = fx.url("nav.html");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("node")
            .arg("client.mjs")
            .current_dir(project())
            .env("TABMUX_BIN", env!("CARGO_BIN_EXE_tabmux"))
            .env("FIXTURE_URL", &url)
            .env("TABMUX_STATE_DIR", state.path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the SDK client finishes within 120 s")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK client failed ({}):\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("report is JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_client_lists_navigates_gets_progress_and_cancels() {
    let r = run_client().await;
    println!("{}", serde_json::to_string_pretty(&r).unwrap());

    let names: Vec<&str> = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for want in [
        "browser_navigate",
        "browser_wait_for",
        "browser_snapshot",
        "browser_tabs",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }

    assert_eq!(r["navigate"]["isError"], false, "{}", r["navigate"]);
    assert!(
        r["navigate"]["text"]
            .as_str()
            .unwrap()
            .contains("Start page"),
        "{}",
        r["navigate"]
    );

    let p = &r["progress"];
    assert_eq!(p["isError"], false, "{p}");
    let notes = p["notifications"].as_array().unwrap();
    assert!(notes.len() >= 2, "progress at least once a second: {p}");
    assert!(
        notes[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("waiting for the text \"Late text\""),
        "{p}"
    );
    let mut last = 0;
    for n in notes {
        let at = n["atMs"].as_u64().unwrap();
        assert!(at - last < 1300, "a gap over 1 s: {p}");
        last = at;
    }

    let c = &r["cancel"];
    assert!(
        c["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the aborted call rejects: {c}"
    );
    let next_ms = c["nextMs"].as_u64().unwrap();
    println!("measured: the call after a cancelled 20 s wait answered in {next_ms} ms");
    assert!(next_ms < 3000, "the tab is free at once: {c}");
    assert_eq!(c["nextIsError"], false, "{c}");
    assert!(
        c["nextText"].as_str().unwrap().contains("Start page"),
        "{c}"
    );
}

/// Every tool has a title (`title`, or `annotations.title`) that clients show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_client_sees_a_title_for_every_tool() {
    let r = run_client().await;
    let untitled: Vec<&str> = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["title"].as_str().is_none_or(|s| s.trim().is_empty()))
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(untitled.is_empty(), "tools without a title: {untitled:?}");
}
