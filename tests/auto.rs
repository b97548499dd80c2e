//! Plain `tabmux` (no flags): the user's browser when it runs the extension, otherwise
//! one shared Chromium with the extension preloaded, launched by the first instance
//! that needs it, joined by the others, closed after the last one leaves.

mod common;

use std::time::Duration;

use serde_json::json;

use common::browser::free_range;
use common::{Client, Fixtures, TempDir, eventually, pids_with, require_chromium};

/// Browser main processes (not renderers or helpers) running the shared profile.
fn shared_browsers(state: &std::path::Path) -> Vec<u32> {
    let marker = state.join("browser-profile").display().to_string();
    pids_with(&marker)
        .into_iter()
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            !cmd.contains("--type=") && !comm.trim().starts_with("tabmux")
        })
        .collect()
}

struct Auto {
    state: TempDir,
    ports: String,
    fx: Fixtures,
}

impl Drop for Auto {
    fn drop(&mut self) {
        common::end_shared_browsers(self.state.path());
    }
}

impl Auto {
    async fn new() -> Auto {
        require_chromium();
        let range = free_range(11);
        Auto {
            state: TempDir::new("auto"),
            ports: format!("{}-{}", range.0, range.1),
            fx: Fixtures::start().await,
        }
    }

    /// Asserts that the shared browser closes (within the linger and a margin) and its
    /// record goes with it.
    async fn browser_closes(&self, why: &str) {
        assert!(
            eventually(Duration::from_secs(20), || shared_browsers(
                self.state.path()
            )
            .is_empty())
            .await,
            "{why}"
        );
        assert!(
            eventually(Duration::from_secs(5), || !self
                .state
                .path()
                .join("browser.json")
                .exists())
            .await,
            "{why}: its record is gone"
        );
    }

    async fn client(&self, name: &str) -> Client {
        Client::start_in(
            name,
            &[
                "--ports",
                &self.ports,
                "--headless",
                "--linger",
                "2",
                "--extension-wait",
                "1",
            ],
            self.state.path(),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_one_shared_browser() {
    let a = Auto::new().await;
    let (c1, c2, c3) = tokio::join!(
        a.client("Claude Desktop"),
        a.client("Cursor"),
        a.client("Claude Code")
    );
    let pages = ["nav.html", "page2.html", "dialogs.html"];
    let (r1, r2, r3) = tokio::join!(
        c1.call("browser_navigate", json!({"url": a.fx.url(pages[0])})),
        c2.call("browser_navigate", json!({"url": a.fx.url(pages[1])})),
        c3.call("browser_navigate", json!({"url": a.fx.url(pages[2])})),
    );
    for (r, c) in [(&r1, &c1), (&r2, &c2), (&r3, &c3)] {
        assert!(!r.is_error, "{}\n{}", r.text, c.log_tail());
        assert!(
            r.text
                .contains("Browser: the shared browser tabmux launched"),
            "the first answer says which browser: {}",
            r.text
        );
    }
    assert!(
        r1.text.contains("Start page")
            && r2.text.contains("Page two")
            && r3.text.contains("Dialogs")
    );
    let browsers = shared_browsers(a.state.path());
    assert_eq!(
        browsers.len(),
        1,
        "exactly one shared browser: {browsers:?}"
    );
    let first_pid = browsers[0];

    // Each client works in its own tabs.
    for (c, title) in [(&c1, "Start"), (&c2, "Page two"), (&c3, "Dialogs")] {
        let list = c.ok("browser_tabs", json!({"action": "list"})).await;
        assert!(
            list.text.contains(&format!("- 0: (current) {title}")),
            "{}",
            list.text
        );
        assert!(
            !list.text.contains("- 1:"),
            "only its own tab: {}",
            list.text
        );
    }
    let second = c2
        .ok("browser_navigate", json!({"url": a.fx.url("nav.html")}))
        .await;
    assert!(
        !second.text.contains("Browser:"),
        "said once: {}",
        second.text
    );

    // Two leave; the browser stays for the third, and a newcomer joins it.
    c1.quit().await;
    c2.quit().await;
    let c4 = a.client("VS Code").await;
    let r4 = c4
        .ok("browser_navigate", json!({"url": a.fx.url("page2.html")}))
        .await;
    assert!(r4.text.contains("Page two"), "{}", r4.text);
    assert_eq!(
        shared_browsers(a.state.path()),
        vec![first_pid],
        "the newcomer joined the same browser"
    );

    // The last ones leave: the browser closes after the linger.
    c4.quit().await;
    assert_eq!(
        shared_browsers(a.state.path()),
        vec![first_pid],
        "still there while one client remains"
    );
    c3.quit().await;
    a.browser_closes("the shared browser closed after the last client left")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_shared_browser_and_damaged_extension_recover() {
    let a = Auto::new().await;
    let c = a.client("Cursor").await;
    c.ok("browser_navigate", json!({"url": a.fx.url("nav.html")}))
        .await;
    let pid = shared_browsers(a.state.path())[0];
    // The browser crashes hard (its profile lock stays behind) and someone damages the
    // extension's files.
    // SAFETY: killing the browser this test's tabmux launched.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
    assert!(
        eventually(Duration::from_secs(10), || shared_browsers(a.state.path())
            .is_empty())
        .await
    );
    std::fs::write(a.state.path().join("extension/background.js"), "garbage(").unwrap();
    let mut ok = None;
    for _ in 0..3 {
        let r = c
            .call("browser_navigate", json!({"url": a.fx.url("page2.html")}))
            .await;
        if !r.is_error {
            ok = Some(r);
            break;
        }
        eprintln!("attempt failed: {}", r.text);
        assert!(
            r.text.contains("TAB_CLOSED")
                || r.text.contains("BROWSER_GONE")
                || r.text.contains("NOT_HELD"),
            "a clear error while the browser is gone: {}",
            r.text
        );
    }
    let r = ok.unwrap_or_else(|| panic!("never recovered\n{}", c.log_tail()));
    assert!(r.text.contains("Page two"), "{}", r.text);
    let browsers = shared_browsers(a.state.path());
    assert_eq!(browsers.len(), 1);
    assert_ne!(browsers[0], pid, "a new browser");
    let js = std::fs::read_to_string(a.state.path().join("extension/background.js")).unwrap();
    assert!(
        !js.starts_with("garbage"),
        "the extension was written again"
    );
    c.quit().await;
    a.browser_closes("the shared browser closed after its client left")
        .await;
}

/// tabmux processes (not browsers) whose command line names this state directory.
fn watchers(state: &std::path::Path) -> Vec<u32> {
    let dir = state.display().to_string();
    pids_with("watch-browser")
        .into_iter()
        .filter(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            String::from_utf8_lossy(&env).contains(&dir)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_last_client_still_closes_the_shared_browser() {
    let a = Auto::new().await;
    let c = a.client("Claude Desktop").await;
    c.ok("browser_navigate", json!({"url": a.fx.url("nav.html")}))
        .await;
    assert_eq!(shared_browsers(a.state.path()).len(), 1);
    // The watcher is started beside the browser; on a loaded machine it may take a
    // moment to appear.
    assert!(
        eventually(Duration::from_secs(10), || watchers(a.state.path()).len()
            == 1)
        .await,
        "one watcher runs beside the shared browser: {:?}",
        watchers(a.state.path())
    );
    // The client's process is killed: no chance to leave.
    // SAFETY: killing the tabmux this test started.
    unsafe {
        libc::kill(c.pid() as i32, libc::SIGKILL);
    }
    a.browser_closes(
        "the shared browser closed after the linger although its last client was killed",
    )
    .await;
    assert!(
        eventually(Duration::from_secs(5), || watchers(a.state.path())
            .is_empty())
        .await,
        "the watcher ended with it"
    );
}

/// Zero setup starts at once: until a browser with the extension has ever connected,
/// the first call does not wait for one (the shared browser's own extension does not
/// count); once the user's browser has connected, a new instance's first call waits
/// for it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_call_waits_only_for_an_extension_seen_before() {
    let a = Auto::new().await;
    let args = ["--ports", &a.ports, "--headless", "--linger", "2"];
    let c = Client::start_in("fresh", &args, a.state.path()).await;
    let started = std::time::Instant::now();
    let r = c
        .ok("browser_navigate", json!({"url": a.fx.url("nav.html")}))
        .await;
    println!(
        "measured: first call of a fresh install (shared browser launch included): {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert!(r.text.contains("the shared browser"), "{}", r.text);
    let log = std::fs::read_to_string(&c.log).unwrap();
    assert!(
        log.contains("looking for a browser with the extension wait_ms=0"),
        "{}",
        c.log_tail()
    );
    let seen = a.state.path().join("extension-seen");
    assert!(!seen.exists(), "the shared browser is not the user's");
    c.quit().await;
    a.browser_closes("the last client left").await;

    // The user's own browser with the extension connects to an instance.
    let range: Vec<u16> = a.ports.split('-').map(|p| p.parse().unwrap()).collect();
    let mut user = common::browser::ExtBrowser::start((range[0], range[1]), a.state.path()).await;
    let c = Client::start_in("fresh", &args, a.state.path()).await;
    assert!(
        eventually(Duration::from_secs(15), || seen.exists()).await,
        "a user's browser connecting is recorded\n{}",
        c.log_tail()
    );
    c.quit().await;
    let c = Client::start_in("again", &args, a.state.path()).await;
    let r = c
        .ok("browser_navigate", json!({"url": a.fx.url("nav.html")}))
        .await;
    let log = std::fs::read_to_string(&c.log).unwrap();
    assert!(
        log.contains("looking for a browser with the extension wait_ms=2000"),
        "{}",
        c.log_tail()
    );
    assert!(r.text.contains("your browser"), "{}", r.text);
    c.quit().await;
    user.close().await;
}
