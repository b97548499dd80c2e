//! The extension link end to end: headless Chromium with the tabmux extension loaded,
//! tabmux processes started the way an MCP client starts them, each test with its own
//! profile, state directory and port range.

mod common;
#[macro_use]
mod scenarios;

use std::time::{Duration, Instant};

use serde_json::json;

use common::browser::{ExtBrowser, free_range};
use common::{Client, Fixtures, TempDir};

/// A browser with the extension, a fixture server, and one tabmux connected to it.
struct Setup {
    browser: ExtBrowser,
    fx: Fixtures,
    state: TempDir,
    ports: String,
}

impl Drop for Setup {
    fn drop(&mut self) {
        common::end_shared_browsers(self.state.path());
    }
}

impl Setup {
    async fn new() -> Setup {
        let range = free_range(11);
        let state = TempDir::new("ext-state");
        let browser = ExtBrowser::start(range, state.path()).await;
        Setup {
            browser,
            fx: Fixtures::start().await,
            state,
            ports: format!("{}-{}", range.0, range.1),
        }
    }

    async fn client(&self, name: &str) -> Client {
        Client::start_in(
            name,
            &[
                "--ports",
                &self.ports,
                "--extension-wait",
                "15",
                "--grace",
                "2",
            ],
            self.state.path(),
        )
        .await
    }
}

macro_rules! scenario_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let mut s = Setup::new().await;
                let c = s.client("ext-test").await;
                scenarios::$name(&c, &s.fx).await;
                drop(c);
                s.browser.close().await;
            }
        )*
    };
}

// The core tool scenarios, again, through the user's browser.
every_scenario!(scenario_tests);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_extension_is_a_clear_error() {
    let range = free_range(2);
    let state = TempDir::new("noext");
    let ports = format!("{}-{}", range.0, range.1);
    let c = Client::start_in(
        "lonely",
        &["--extension", "--ports", &ports, "--extension-wait", "0.5"],
        state.path(),
    )
    .await;
    let e = c
        .err("browser_navigate", json!({"url": "https://example.com"}))
        .await;
    assert!(e.contains("NO_EXTENSION"), "{e}");
    assert!(
        e.contains("tabmux extension install") && e.contains("--launch"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_cannot_open_the_bridge() {
    let mut s = Setup::new().await;
    let c = s.client("guard").await;
    c.ok("browser_navigate", json!({"url": s.fx.url("index.html")}))
        .await;
    // A page on localhost tries the bridge of every port in the range.
    let probe = format!(
        "async () => {{
            const out = [];
            for (let p = {first}; p <= {last}; p++) {{
                const ws = await new Promise(res => {{
                    const w = new WebSocket('ws://127.0.0.1:' + p + '/extension');
                    w.onopen = () => {{ w.close(); res('open'); }};
                    w.onerror = () => res('refused');
                }});
                let read = 'unreadable';
                try {{ await (await fetch('http://127.0.0.1:' + p + '/tabmux')).json(); read = 'read'; }} catch (e) {{}}
                out.push(ws + '/' + read);
            }}
            return out.join(',');
        }}",
        first = s.browser.ports.0,
        last = s.browser.ports.1
    );
    let r = c.eval(&probe).await;
    assert!(!r.contains("open"), "a web page opened the bridge: {r}");
    assert!(!r.contains("/read"), "a web page read the probe: {r}");
    assert!(r.contains("refused"), "{r}");
    s.browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_instance_leaves_the_extension_healthy() {
    let mut s = Setup::new().await;
    let a = s.client("doomed").await;
    a.ok("browser_navigate", json!({"url": s.fx.url("delayed.html")}))
        .await;
    // A command in flight when the process dies.
    let pid = a.pid();
    let wait = a.try_call("browser_wait_for", json!({"text": "never", "timeout": 30}));
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    };
    let (r, _) = tokio::join!(tokio::time::timeout(Duration::from_secs(20), wait), kill);
    assert!(
        matches!(r, Ok(None)),
        "the call ends with the process: {r:?}"
    );
    // The next instance is served at once.
    let b = s.client("next").await;
    let nav = b
        .ok("browser_navigate", json!({"url": s.fx.url("nav.html")}))
        .await;
    assert!(nav.text.contains("Start page"), "{}", nav.text);
    s.browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_restart_mid_session() {
    let mut s = Setup::new().await;
    let c = s.client("survivor").await;
    let nav = c
        .ok("browser_navigate", json!({"url": s.fx.url("nav.html")}))
        .await;
    let link = nav.ref_of(&["Go to page two"]);
    s.browser.stop_worker().await;
    // The worker comes back, reconnects and re-attaches; the same tab works again.
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(20) {
        let a = c.call("browser_click", json!({"target": link})).await;
        if !a.is_error {
            assert!(a.text.contains("Page two"), "{}", a.text);
            last.clear();
            break;
        }
        last = a.text;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        last.is_empty(),
        "never worked again after the worker restart: {last}"
    );
    let list = c.ok("browser_tabs", json!({"action": "list"})).await;
    assert!(
        list.text.contains("- 0: (current) Page two"),
        "{}",
        list.text
    );
    s.browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_the_extension_cannot_debug() {
    let mut s = Setup::new().await;
    let c = s.client("curious").await;
    let tab = s.browser.user_tab("chrome://version").await;
    let e = c
        .err(
            "browser_tabs",
            json!({"action": "claim", "tabId": tab.to_string(), "timeout": 2}),
        )
        .await;
    assert!(e.contains("NOT_ATTACHABLE"), "{e}");
    // A claim for a tab that does not exist.
    let e = c
        .err(
            "browser_tabs",
            json!({"action": "claim", "tabId": "999999", "timeout": 1}),
        )
        .await;
    assert!(
        e.contains("NOT_FOUND") && e.contains("no tab 999999"),
        "{e}"
    );
    s.browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_instances_and_browsers() {
    let mut s = Setup::new().await;
    let c = s.client("Claude Code").await;
    c.ok("browser_navigate", json!({"url": s.fx.url("nav.html")}))
        .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .args(["status", "--ports", &s.ports])
        .env("TABMUX_STATE_DIR", s.state.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Claude Code"), "{text}");
    assert!(text.contains(&c.pid().to_string()), "{text}");
    assert!(text.contains("Chrom"), "names the browser: {text}");
    assert!(text.contains("held tabs in"), "lists the held tabs: {text}");
    assert!(
        text.contains("nav.html") && text.contains("opened and held by \"Claude Code\""),
        "{text}"
    );
    s.browser.close().await;
}

#[test]
fn extension_install_writes_the_repository_files() {
    let dir = TempDir::new("install");
    let state = TempDir::new("install-state");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .args(["extension", "install"])
        .arg(dir.path())
        .env("TABMUX_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("extension");
    for f in [
        "manifest.json",
        "background.js",
        "lib/locks.js",
        "lib/consent.js",
        "popup/popup.html",
        "icons/icon-128.png",
    ] {
        let a = std::fs::read(src.join(f)).unwrap();
        let b = std::fs::read(dir.path().join(f)).unwrap_or_else(|_| panic!("{f} installed"));
        assert_eq!(a, b, "{f} is the repository's");
    }
    assert!(
        !dir.path().join("test").exists(),
        "unit tests are not installed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_opening_a_tab_does_not_take_the_users_focus() {
    let mut s = Setup::new().await;
    let user_tab = s.browser.user_tab(&s.fx.url("index.html")).await;
    let c = s.client("opener").await;
    let nav = c
        .ok("browser_navigate", json!({"url": s.fx.url("popup.html")}))
        .await;
    c.ok(
        "browser_click",
        json!({"target": nav.ref_of(&["Open page two"])}),
    )
    .await;
    let mut front = serde_json::Value::Null;
    for _ in 0..40 {
        front = s
            .browser
            .worker_eval(&format!("chrome.tabs.get({user_tab}).then(t => t.active)"))
            .await;
        let adopted = c.ok("browser_tabs", json!({"action": "list"})).await;
        if adopted.text.contains("- 1:") && front == json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(front, json!(true), "the user's tab stays in front");
    let window = s
        .browser
        .worker_eval(&format!(
            "chrome.tabs.get({user_tab}).then(u => chrome.tabs.query({{windowId: u.windowId}})).then(ts => ts.map(t => t.url).join(' '))"
        ))
        .await;
    let urls = window.as_str().unwrap_or_default().to_string();
    assert!(
        !urls.contains("popup.html") && !urls.contains("page2.html"),
        "the client's tabs are not in the user's window: {urls}"
    );
    s.browser.close().await;
}
