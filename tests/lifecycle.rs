//! The server's life: the MCP handshake and tool list, exit when the client goes away
//! or on SIGTERM with no browser left behind, a crashed or closed browser started
//! again, a missing browser reported clearly.

mod common;

use std::time::Duration;

use serde_json::json;

use common::{Client, Fixtures, eventually, pids_with, require_chromium};

fn profile_marker(tabmux_pid: u32) -> String {
    format!("tabmux-profile-{tabmux_pid}-")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_tool_list() {
    let c = Client::start("handshake", &["--launch"]).await;
    let info = c.service.peer_info().expect("server info");
    let server = info.server_info.clone().expect("serverInfo");
    assert_eq!(server.name, "tabmux");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.protocol_version.as_str(), "2025-11-25");
    let tools = c.service.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for n in [
        "browser_navigate",
        "browser_navigate_back",
        "browser_snapshot",
        "browser_click",
        "browser_type",
        "browser_hover",
        "browser_select_option",
        "browser_press_key",
        "browser_fill_form",
        "browser_drag",
        "browser_file_upload",
        "browser_handle_dialog",
        "browser_wait_for",
        "browser_evaluate",
        "browser_console_messages",
        "browser_network_requests",
        "browser_take_screenshot",
        "browser_tabs",
        "browser_resize",
        "browser_close",
    ] {
        assert!(names.contains(&n), "{n} is offered");
    }
    // Truthful hints: looking is read-only, clicking is not.
    let hint = |name: &str| {
        let t = tools.iter().find(|t| t.name == name).unwrap();
        t.annotations.as_ref().and_then(|a| a.read_only_hint)
    };
    assert_eq!(hint("browser_snapshot"), Some(true));
    assert_eq!(hint("browser_console_messages"), Some(true));
    assert_eq!(hint("browser_click"), Some(false));
    // A tool call before any browser work starts nothing until needed.
    let e = c
        .err("browser_handle_dialog", json!({"accept": true}))
        .await;
    assert!(e.contains("NO_DIALOG"), "{e}");
    let e = c.err("browser_nonexistent", json!({})).await;
    assert!(e.contains("no tool"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_ends_tabmux_and_its_browser() {
    require_chromium();
    let fx = Fixtures::start().await;
    let c = Client::start("leaver", &["--launch"]).await;
    c.ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    let marker = profile_marker(c.pid());
    assert!(!pids_with(&marker).is_empty(), "a browser runs");
    let status = c.quit().await;
    assert!(status.success(), "clean exit: {status:?}");
    assert!(
        eventually(Duration::from_secs(10), || pids_with(&marker).is_empty()).await,
        "no browser process left: {:?}",
        pids_with(&marker)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_tabmux_and_its_browser() {
    require_chromium();
    let fx = Fixtures::start().await;
    let mut c = Client::start("terminated", &["--launch"]).await;
    c.ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    let marker = profile_marker(c.pid());
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(c.pid() as i32, libc::SIGTERM);
    }
    let status = tokio::time::timeout(Duration::from_secs(15), c.child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        eventually(Duration::from_secs(10), || pids_with(&marker).is_empty()).await,
        "no browser left after SIGTERM"
    );
    let profiles: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&marker))
        .collect();
    assert!(profiles.is_empty(), "the temporary profile is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_browser_is_started_again() {
    require_chromium();
    let fx = Fixtures::start().await;
    let c = Client::start("phoenix", &["--launch"]).await;
    c.ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    let marker = profile_marker(c.pid());
    for pid in pids_with(&marker) {
        // SAFETY: killing browser processes this test's tabmux started.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    // The call that meets the dead browser may fail, clearly; the server keeps serving
    // and the next call starts a new browser.
    let first = c
        .call("browser_navigate", json!({"url": fx.url("page2.html")}))
        .await;
    if first.is_error {
        assert!(
            first.text.contains("BROWSER_GONE") || first.text.contains("TAB_CLOSED"),
            "{}",
            first.text
        );
    }
    let again = c
        .ok("browser_navigate", json!({"url": fx.url("page2.html")}))
        .await;
    assert!(again.text.contains("Page two"), "{}", again.text);
    assert!(
        again.text.contains("started it again") || first.text.contains("started it again"),
        "the answer says the browser was restarted: {} / {}",
        first.text,
        again.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_close_then_work_again() {
    require_chromium();
    let fx = Fixtures::start().await;
    let c = Client::start("closer", &["--launch"]).await;
    c.ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    let marker = profile_marker(c.pid());
    c.ok("browser_close", json!({})).await;
    assert!(
        eventually(Duration::from_secs(10), || pids_with(&marker).is_empty()).await,
        "the browser is closed"
    );
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("page2.html")}))
        .await;
    assert!(nav.text.contains("Page two"), "{}", nav.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_browser_is_a_clear_error() {
    let c = Client::start(
        "nobrowser",
        &["--launch", "--browser-path", "/nonexistent/chrome"],
    )
    .await;
    let e = c
        .err("browser_navigate", json!({"url": "https://example.com"}))
        .await;
    assert!(
        e.contains("NO_BROWSER") && e.contains("/nonexistent/chrome"),
        "{e}"
    );
    // The server keeps serving after the error.
    let e = c.err("browser_snapshot", json!({})).await;
    assert!(e.contains("NO_BROWSER"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_two_tabs() {
    require_chromium();
    let fx = Fixtures::start().await;
    let c = Client::start("parallel", &["--launch"]).await;
    c.ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    c.ok(
        "browser_tabs",
        json!({"action": "new", "url": fx.url("page2.html")}),
    )
    .await;
    // Two slow calls on the current tab run one after another; the answers stay whole.
    let (a, b) = tokio::join!(
        c.call("browser_evaluate", json!({"function": "async () => { const t = Date.now(); await new Promise(r => setTimeout(r, 400)); return t; }"})),
        c.call("browser_evaluate", json!({"function": "async () => { const t = Date.now(); await new Promise(r => setTimeout(r, 400)); return t; }"})),
    );
    let t = |a: &common::Answer| -> i64 {
        a.text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("Result: ")
            .parse()
            .unwrap()
    };
    assert!(!a.is_error && !b.is_error);
    assert!(
        (t(&a) - t(&b)).abs() >= 350,
        "one tab runs one call at a time: {} {}",
        t(&a),
        t(&b)
    );

    // A long call on tab 1 does not hold up tab 0.
    let slow = c.call("browser_wait_for", json!({"time": 3}));
    let other = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.ok("browser_tabs", json!({"action": "select", "index": 0}))
            .await;
        let started = std::time::Instant::now();
        c.ok(
            "browser_evaluate",
            json!({"function": "() => document.title"}),
        )
        .await;
        started.elapsed()
    };
    let (slow, quick) = tokio::join!(slow, other);
    assert!(!slow.is_error, "{}", slow.text);
    assert!(
        quick < Duration::from_secs(2),
        "tab 0 answered while tab 1 waited: {quick:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_to_a_running_browser_and_leave_it_running() {
    require_chromium();
    let fx = Fixtures::start().await;
    let profile = common::TempDir::new("cdp-profile");
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut chromium = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .expect("chromium starts");
    let port_file = profile.path().join("DevToolsActivePort");
    assert!(
        eventually(Duration::from_secs(20), || port_file.exists()).await,
        "the browser writes its DevTools port"
    );
    let port = std::fs::read_to_string(&port_file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let endpoint = format!("http://127.0.0.1:{port}");
    let c = Client::start("attacher", &["--cdp", &endpoint]).await;
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    assert!(nav.text.contains("Start page"), "{}", nav.text);
    let all = c
        .ok("browser_tabs", json!({"action": "list", "all": true}))
        .await;
    assert!(all.text.contains("you (index 0)"), "{}", all.text);
    assert!(c.quit().await.success());
    assert!(
        chromium.0.try_wait().unwrap().is_none(),
        "the browser keeps running"
    );
    // The tab tabmux opened is gone; the browser keeps its own.
    let again = Client::start("attacher2", &["--cdp", &endpoint]).await;
    let all = again
        .ok("browser_tabs", json!({"action": "list", "all": true}))
        .await;
    assert!(
        !all.text.contains("nav.html"),
        "tabmux closed the tab it opened: {}",
        all.text
    );
    assert!(
        all.text.contains("tabId"),
        "the browser's own tab is there: {}",
        all.text
    );
    drop(again);
    let bad = Client::start("badcdp", &["--cdp", "http://127.0.0.1:1"]).await;
    let e = bad
        .err("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    assert!(e.contains("NO_BROWSER") && e.contains("127.0.0.1:1"), "{e}");
    drop(chromium);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_messages_get_answers() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let state = common::TempDir::new("raw");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .arg("--launch")
        .env("TABMUX_STATE_DIR", state.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> serde_json::Value {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("an answer, not silence")
            .unwrap()
            .expect("a line");
        serde_json::from_str(&line).expect("stdout carries JSON-RPC only")
    };
    stdin.write_all(b"this is not json\n").await.unwrap();
    stdin
        .write_all(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#)
        .await
        .unwrap();
    stdin.write_all(b"\n").await.unwrap();
    let init = next().await;
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["serverInfo"]["name"], "tabmux");
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await
        .unwrap();
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{{\"name\":\"browser_type\",\"arguments\":{{\"target\":\"e1\",\"text\":\"{}\"}}}}}}\n",
        "x".repeat(17 << 20)
    );
    stdin.write_all(huge.as_bytes()).await.unwrap();
    let refused = next().await;
    assert_eq!(refused["id"], 2);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than 16 MiB"),
        "{refused}"
    );
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\"}\n")
        .await
        .unwrap();
    let list = next().await;
    assert_eq!(list["id"], 3);
    assert!(list["result"]["tools"].as_array().unwrap().len() > 15);
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
