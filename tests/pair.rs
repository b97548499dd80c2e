//! Pairing a copy of the extension that carries no secret (as installed from the
//! Chrome Web Store): a real headless Chromium with the extension loaded from a folder
//! without `config.json`, a real tabmux driven over MCP, and the test playing the user —
//! it runs `tabmux extension pair` and pastes the code in the extension's popup, driven
//! through the browser's own debugging endpoint (never through tabmux).

mod common;

use std::time::Duration;

use serde_json::json;

use common::browser::{ExtBrowser, Popup, free_range};
use common::{Client, Fixtures, TempDir};

/// `tabmux extension pair` with `state` as the state directory: (stdout, stderr).
fn pair_command(state: &std::path::Path) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .args(["extension", "pair"])
        .env("TABMUX_STATE_DIR", state)
        .output()
        .expect("tabmux runs");
    assert!(
        out.status.success(),
        "tabmux extension pair: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Types `code` into the popup's pairing field and presses its button.
async fn paste_code(browser: &ExtBrowser, popup: &Popup, code: &str) {
    let expr = format!(
        "(() => {{ document.getElementById('pair-msg').textContent = ''; \
           const f = document.getElementById('pair-code'); f.value = {}; \
           document.getElementById('pair-button').click(); return true; }})()",
        json!(code)
    );
    browser.popup_eval(popup, &expr).await;
}

/// Every file under `dir` but the secret itself, as text (logs, registry, browser log).
fn texts_under(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            texts_under(&p, out);
        } else if p.file_name().is_some_and(|n| n != "secret") {
            let bytes = std::fs::read(&p).unwrap_or_default();
            out.push((p, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_copy_serves_no_tabmux_until_paired_in_its_popup() {
    let range = free_range(4);
    let state = TempDir::new("pair-state");
    let fx = Fixtures::start().await;
    let mut browser = ExtBrowser::start_unpaired(range, state.path()).await;
    assert_eq!(
        browser
            .worker_eval("fetch(chrome.runtime.getURL('config.json')).then(r => r.ok, () => false)")
            .await,
        json!(false),
        "the copy has no config.json"
    );
    let ports = format!("{}-{}", range.0, range.1);
    let c = Client::start_in(
        "pair-test",
        &["--extension", "--ports", &ports, "--extension-wait", "3"],
        state.path(),
    )
    .await;

    // Before pairing: the extension sees the instance but does not connect to it.
    let popup = browser.open_popup().await;
    browser
        .popup_until(
            &popup,
            "!document.getElementById('pair-section').hidden && \
             document.body.innerText.includes('Pair with tabmux')",
            Duration::from_secs(10),
        )
        .await;
    let seen = format!(
        "(async () => {{ const t = Date.now() + 10000; while (Date.now() < t) {{ \
           if (tabmux.discovery.view().some(p => p.port >= {} && p.port <= {} && p.seen)) return true; \
           await new Promise(r => setTimeout(r, 50)); }} return false; }})()",
        range.0, range.1
    );
    assert_eq!(
        browser.worker_eval(&seen).await,
        json!(true),
        "the extension finds the instance's port"
    );
    for (tool, args) in [
        ("browser_tabs", json!({"action": "list", "all": true})),
        ("browser_navigate", json!({"url": "data:text/html,<p>hi"})),
    ] {
        let e = c.err(tool, args.clone()).await;
        assert!(
            e.contains("NO_EXTENSION"),
            "not served before pairing: {tool} {args}: {e}"
        );
    }
    assert_eq!(browser.worker_eval("tabmux.conns.size").await, json!(0));

    // The code: one line on stdout, the hint on stderr.
    let (out, err) = pair_command(state.path());
    let code = out.trim_end();
    assert_eq!(out.lines().count(), 1, "only the code on stdout: {out:?}");
    assert_eq!(code.len(), 71, "8 groups of 8 hex digits: {code:?}");
    assert!(err.contains("Pair with tabmux"), "where to paste it: {err}");
    let secret = std::fs::read_to_string(state.path().join("secret")).unwrap();
    assert_eq!(
        code.replace('-', ""),
        secret.trim(),
        "the code is the secret"
    );

    // A bad code: a clear error, still not paired.
    paste_code(&browser, &popup, &code[..20]).await;
    let msg = browser
        .popup_until(
            &popup,
            "document.getElementById('pair-msg').textContent",
            Duration::from_secs(5),
        )
        .await;
    assert!(
        msg.as_str().unwrap().contains("64 hex digits"),
        "bad code: {msg}"
    );
    assert_eq!(
        browser.worker_eval("tabmux.secret === null").await,
        json!(true)
    );

    // The code, pasted as printed: connected at once, no reload.
    paste_code(&browser, &popup, code).await;
    browser
        .popup_until(
            &popup,
            "document.getElementById('pair-section').hidden && \
             !document.getElementById('paired-section').hidden && \
             document.body.innerText.includes('connected')",
            Duration::from_secs(10),
        )
        .await;
    // Through the extension: the browser's tabs (the popup's among them), then a tab of
    // the client's own.
    let all = c
        .ok("browser_tabs", json!({"action": "list", "all": true}))
        .await;
    assert!(
        all.text.contains("popup.html") || all.text.contains("tabmux"),
        "{}",
        all.text
    );
    c.ok(
        "browser_navigate",
        json!({"url": fx.url("who.html?who=paired")}),
    )
    .await;
    let list = c.ok("browser_tabs", json!({"action": "list"})).await;
    assert!(list.text.contains("Page of paired"), "{}", list.text);

    // The code is in no log or other file of the state directory, nor the client's log.
    let mut files = Vec::new();
    texts_under(state.path(), &mut files);
    let client_log = std::fs::read_to_string(&c.log).unwrap_or_default();
    files.push((c.log.clone(), client_log));
    for (p, text) in &files {
        assert!(
            !text.contains(secret.trim()) && !text.contains(&code[..17]),
            "{} holds the secret",
            p.display()
        );
    }
    let recent = browser.worker_eval("tabmux.recentLog.join('\\n')").await;
    assert!(!recent.as_str().unwrap().contains(secret.trim()));

    c.quit().await;
    browser.close().await;
}
