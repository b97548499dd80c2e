//! The user's tabs need the user's consent, and the user can take any tab back: real
//! tabmux processes driven over MCP, a headless Chromium with the real extension, and
//! the test playing the user by driving the extension's popup page through the
//! browser's own debugging endpoint (never through tabmux).

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, NumberOrString,
    ProgressNotificationParam, ProgressToken, ProtocolVersion, RequestMetaObject,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

use common::browser::{ExtBrowser, Popup, free_range};
use common::{Answer, Client, Fixtures, TempDir};

/// "At once" on a busy 2-core machine.
const AT_ONCE: Duration = Duration::from_secs(3);

struct World {
    browser: ExtBrowser,
    fx: Fixtures,
    state: TempDir,
    ports: String,
}

impl Drop for World {
    fn drop(&mut self) {
        common::end_shared_browsers(self.state.path());
    }
}

impl World {
    async fn new() -> World {
        let range = free_range(11);
        let state = TempDir::new("consent-state");
        World {
            browser: ExtBrowser::start(range, state.path()).await,
            fx: Fixtures::start().await,
            state,
            ports: format!("{}-{}", range.0, range.1),
        }
    }

    /// A tabmux of this browser, started as the MCP client `name` starts it.
    async fn client(&self, name: &str, extra: &[&str]) -> Client {
        let mut args = vec![
            "--extension",
            "--ports",
            &self.ports,
            "--extension-wait",
            "15",
            "--grace",
            "2",
        ];
        args.extend_from_slice(extra);
        Client::start_in(name, &args, self.state.path()).await
    }

    /// A tab the user opened, showing a page that names `who` in its URL, title and text.
    async fn user_tab(&self, who: &str) -> i64 {
        self.browser
            .user_tab(&self.fx.url(&format!("who.html?who={who}")))
            .await
    }

    async fn worker(&self, expr: &str) -> Value {
        self.browser.worker_eval(expr).await
    }

    /// The badge on the extension's action icon.
    async fn badge(&self) -> String {
        self.worker("chrome.action.getBadgeText({})")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the popup asks about `tab`; the question's text.
    async fn question(&self, popup: &Popup, tab: i64) -> String {
        let v = self
            .browser
            .popup_until(
                popup,
                &format!("(document.querySelector('.ask[data-tab=\"{tab}\"]') || {{}}).innerText"),
                Duration::from_secs(10),
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Clicks a button of the popup (the user's click); panics when it is not there.
    async fn click(&self, popup: &Popup, selector: &str) {
        let found = self
            .browser
            .popup_until(
                popup,
                &format!(
                    "(() => {{ const b = document.querySelector({}); if (!b) return false; b.click(); return true; }})()",
                    json!(selector)
                ),
                Duration::from_secs(10),
            )
            .await;
        assert_eq!(found, json!(true));
    }

    /// Waits (up to `within`) until Chrome's view of `tab` satisfies `ok`; the last view.
    /// The tab must stay open all along.
    async fn until_tab(&self, tab: i64, ok: impl Fn(&Value) -> bool, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let t = self.chrome_tab(tab).await;
            assert!(t.is_object(), "tab {tab} stays open");
            if ok(&t) || Instant::now() >= deadline {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Chrome's view of a tab: {windowId, groupId, url} or null when it is gone.
    async fn chrome_tab(&self, tab: i64) -> Value {
        self.worker(&format!(
            "chrome.tabs.get({tab}).then(t => ({{windowId: t.windowId, groupId: t.groupId, url: t.url}}), () => null)"
        ))
        .await
    }
}

fn claim(tab: i64, timeout: f64) -> Value {
    json!({"action": "claim", "tabId": tab.to_string(), "timeout": timeout})
}

/// The line of `browser_tabs list all` about `tab`.
async fn listed(c: &Client, tab: i64) -> String {
    let a = c
        .ok("browser_tabs", json!({"action": "list", "all": true}))
        .await;
    a.text
        .lines()
        .find(|l| l.starts_with(&format!("- tabId {tab}:")))
        .unwrap_or_else(|| panic!("tab {tab} is not listed:\n{}", a.text))
        .to_string()
}

/// An MCP client that asks for progress and records what it gets.
#[derive(Clone)]
struct Watcher {
    name: String,
    seen: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Watcher {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.seen.lock().unwrap().push(params);
    }

    fn get_info(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new(self.name.clone(), "1.0"),
        );
        cfg.protocol_version = ProtocolVersion::V_2025_11_25;
        cfg
    }
}

/// A tabmux of the world's browser, driven by a [`Watcher`].
async fn start_watcher(
    w: &World,
    name: &str,
) -> (
    RunningService<RoleClient, Watcher>,
    Watcher,
    tokio::process::Child,
) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .args([
            "--extension",
            "--ports",
            &w.ports,
            "--extension-wait",
            "15",
            "--grace",
            "2",
        ])
        .env("TABMUX_STATE_DIR", w.state.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the tabmux binary starts");
    let io = (child.stdout.take().unwrap(), child.stdin.take().unwrap());
    let watcher = Watcher {
        name: name.to_string(),
        seen: Arc::default(),
    };
    let service = tokio::time::timeout(Duration::from_secs(20), watcher.clone().serve(io))
        .await
        .expect("initialize within 20 s")
        .expect("MCP initialize succeeds");
    (service, watcher, child)
}

/// A claim that runs in the background; its answer and when it came.
fn spawn_claim(
    c: &std::sync::Arc<Client>,
    tab: i64,
    timeout: f64,
) -> tokio::task::JoinHandle<(Answer, Instant)> {
    let c = c.clone();
    tokio::spawn(async move {
        let r = c.call("browser_tabs", claim(tab, timeout)).await;
        (r, Instant::now())
    })
}

/// Ask: the claim waits while the user is asked (badge, popup), and fails with
/// CONSENT_DENIED when the user says no, with CONSENT_TIMEOUT when nobody answers.
/// Until then the client sees the tab's origin only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_of_a_user_tab_waits_and_is_denied_or_times_out() {
    let mut w = World::new().await;
    let a = std::sync::Arc::new(w.client("Claude Code", &[]).await);
    let tab = w.user_tab("secret-account").await;
    let popup = w.browser.open_popup().await;
    w.browser
        .popup_until(
            &popup,
            "document.body.innerText.includes('user tabs: ask')",
            Duration::from_secs(10),
        )
        .await;

    // Before any consent: the origin, never the path or query.
    let line = listed(&a, tab).await;
    assert!(
        !line.contains("secret-account") || line.contains("Page of secret-account"),
        "{line}"
    );
    assert!(!line.contains("who.html"), "path hidden: {line}");
    assert!(line.contains("/…"), "origin shown: {line}");

    // The claim waits; the popup asks; the badge says so.
    let waiting = spawn_claim(&a, tab, 20.0);
    let q = w.question(&popup, tab).await;
    assert!(
        q.contains("Claude Code")
            && q.contains("wants to use")
            && q.contains("Page of secret-account"),
        "{q}"
    );
    assert_eq!(w.badge().await, "1");
    assert!(!waiting.is_finished(), "the claim waits for the user");
    let clicked = Instant::now();
    w.click(&popup, &format!(".ask[data-tab=\"{tab}\"] button.deny"))
        .await;
    let (r, at) = waiting.await.unwrap();
    assert!(
        r.is_error && r.text.starts_with("CONSENT_DENIED"),
        "{}",
        r.text
    );
    assert!(
        at - clicked < AT_ONCE,
        "denied at once, not after {:?}",
        at - clicked
    );
    println!("measured: Deny clicked → claim failed: {:?}", at - clicked);
    assert_eq!(w.badge().await, "");
    let own = a.ok("browser_tabs", json!({"action": "list"})).await;
    assert!(
        !own.text.contains(&format!("tabId {tab}")) && !own.text.contains("secret-account"),
        "{}",
        own.text
    );

    // Nobody answers: CONSENT_TIMEOUT after the claim's own timeout.
    let started = Instant::now();
    // Long enough for the popup (it refreshes once a second) to show the question on
    // a loaded machine.
    let waiting = spawn_claim(&a, tab, 5.0);
    w.question(&popup, tab).await;
    let (r, at) = waiting.await.unwrap();
    let took = at - started;
    assert!(
        r.is_error && r.text.starts_with("CONSENT_TIMEOUT"),
        "{}",
        r.text
    );
    assert!(
        took >= Duration::from_millis(4900) && took < Duration::from_secs(5) + AT_ONCE,
        "timed out after the claim's 5 s, not {took:?}"
    );
    w.browser
        .popup_until(
            &popup,
            "!document.querySelector('.ask')",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(w.badge().await, "");
    // The tab is untouched and free.
    assert!(listed(&a, tab).await.ends_with("[free]"));

    // A client that asked for progress hears from its waiting claim once a second.
    let (service, watcher, _child) = start_watcher(&w, "Watcher").await;
    let mut p = CallToolRequestParams::new("browser_tabs");
    p.arguments = claim(tab, 20.0).as_object().cloned();
    let mut meta = RequestMetaObject::default();
    meta.set_progress_token(ProgressToken(NumberOrString::Number(7)));
    p.meta = Some(meta);
    let peer = service.peer().clone();
    let waiting = tokio::spawn(async move { peer.call_tool(p).await });
    w.question(&popup, tab).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while watcher.seen.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "two progress notifications within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.click(&popup, &format!(".ask[data-tab=\"{tab}\"] button.deny"))
        .await;
    let r = waiting.await.unwrap().expect("the call is answered");
    let text = format!("{:?}", r.content);
    assert_eq!(r.is_error, Some(true), "{text}");
    assert!(text.contains("CONSENT_DENIED"), "{text}");
    {
        let seen = watcher.seen.lock().unwrap();
        // The client library puts its own token on the request; each notification carries it.
        assert!(
            seen.iter()
                .all(|n| n.progress_token == seen[0].progress_token),
            "{seen:?}"
        );
        assert!(
            seen.windows(2).all(|p| p[0].progress <= p[1].progress),
            "{seen:?}"
        );
        let msg = seen[0].message.clone().unwrap_or_default();
        assert!(
            msg.contains(&format!("tab {tab}")) && msg.contains("user"),
            "{msg}"
        );
    }
    drop(service);
    drop(a);
    w.browser.close().await;
}

/// Allow: the claim is granted and the client reads the page; the consent outlives a
/// release. Take back: the holder's command in flight fails with TAKEN_BACK; a created
/// tab taken back leaves the client's group and window and stays open for the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_allows_then_takes_tabs_back() {
    let mut w = World::new().await;
    let a = std::sync::Arc::new(w.client("Cursor", &[]).await);
    let tab = w.user_tab("mail-inbox").await;
    let popup = w.browser.open_popup().await;

    let waiting = spawn_claim(&a, tab, 20.0);
    w.question(&popup, tab).await;
    let clicked = Instant::now();
    w.click(&popup, &format!(".ask[data-tab=\"{tab}\"] button.allow"))
        .await;
    let (r, at) = waiting.await.unwrap();
    assert!(!r.is_error, "{}", r.text);
    println!(
        "measured: Allow clicked → claim granted: {:?}",
        at - clicked
    );
    assert!(r.text.contains(&format!("Claimed tab {tab}")), "{}", r.text);
    assert!(
        a.eval("() => document.title")
            .await
            .contains("Page of mail-inbox")
    );
    assert!(listed(&a, tab).await.contains("who.html?who=mail-inbox"));

    // Released and claimed again: no second question.
    a.ok("browser_tabs", json!({"action": "release", "index": 0}))
        .await;
    let t0 = Instant::now();
    a.ok("browser_tabs", claim(tab, 0.0)).await;
    assert!(t0.elapsed() < AT_ONCE);

    // The popup lists the held tab with its holder; Take back in the middle of a command.
    w.browser
        .popup_until(
            &popup,
            &format!("(document.querySelector('tr[data-tab=\"{tab}\"]') || {{}}).innerText"),
            Duration::from_secs(10),
        )
        .await;
    let holder = w
        .browser
        .popup_eval(
            &popup,
            &format!("document.querySelector('tr[data-tab=\"{tab}\"]').closest('.inst').querySelector('.name').textContent"),
        )
        .await;
    assert_eq!(holder, json!("Cursor"));
    let pending = {
        let a = a.clone();
        tokio::spawn(async move {
            let r = a
                .call(
                    "browser_wait_for",
                    json!({"text": "never there", "timeout": 30}),
                )
                .await;
            (r, Instant::now())
        })
    };
    // The command is running (its wait polls the page) when the user clicks.
    let polls = format!(
        "tabmux.recentLog.filter(l => l.includes('cdp Runtime.evaluate tab {tab} ')).length"
    );
    let before = w.worker(&polls).await.as_i64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.worker(&polls).await.as_i64().unwrap_or(0) < before + 2 {
        assert!(
            Instant::now() < deadline,
            "the wait polls the page within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!pending.is_finished());
    let clicked = Instant::now();
    w.click(&popup, &format!("tr[data-tab=\"{tab}\"] button.take-back"))
        .await;
    let (r, at) = pending.await.unwrap();
    println!(
        "measured: Take back clicked → command in flight failed: {:?}",
        at - clicked
    );
    assert!(r.is_error && r.text.starts_with("TAKEN_BACK"), "{}", r.text);
    assert!(r.text.contains("the user took this tab back"), "{}", r.text);
    assert!(
        at - clicked < AT_ONCE,
        "failed at once, not after {:?}",
        at - clicked
    );
    let t = w
        .until_tab(tab, |t| t["groupId"] == json!(-1), Duration::from_secs(10))
        .await;
    assert_eq!(t["groupId"], json!(-1), "out of the client's group: {t}");
    // Consent ended with the take-back: claiming again asks again.
    let e = a.err("browser_tabs", claim(tab, 0.5)).await;
    assert!(e.starts_with("CONSENT_TIMEOUT"), "{e}");

    // A tab the client created, taken back while idle.
    a.ok(
        "browser_navigate",
        json!({"url": w.fx.url("who.html?who=agent-made")}),
    )
    .await;
    let made = {
        let all = a
            .ok("browser_tabs", json!({"action": "list", "all": true}))
            .await;
        all.text
            .lines()
            .find(|l| l.contains("agent-made"))
            .and_then(|l| l.strip_prefix("- tabId "))
            .and_then(|l| l.split(':').next())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("the new tab is listed: {}", all.text))
    };
    let before = w.chrome_tab(made).await;
    let popup_window = w
        .worker(
            "chrome.tabs.query({}).then(ts => ts.find(t => t.url.startsWith('chrome-extension://')).windowId)",
        )
        .await;
    assert_ne!(
        before["windowId"], popup_window,
        "made in the client's own window"
    );
    assert_ne!(before["groupId"], json!(-1), "in the client's group");
    w.click(&popup, &format!("tr[data-tab=\"{made}\"] button.take-back"))
        .await;
    let after = w
        .until_tab(
            made,
            |t| t["windowId"] == popup_window && t["groupId"] == json!(-1),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        after["windowId"], popup_window,
        "moved to the user's window: {after}"
    );
    assert_eq!(
        after["groupId"],
        json!(-1),
        "out of the client's group: {after}"
    );
    let e = a.err("browser_snapshot", json!({})).await;
    assert!(
        e.starts_with("TAKEN_BACK"),
        "the holder's next command: {e}"
    );
    // The client leaving (its grace over, the extension forgets it) does not close it:
    // it is the user's now.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(15);
    while w.worker("tabmux.locks.instances.size").await != json!(0) {
        assert!(
            Instant::now() < deadline,
            "the client is forgotten after its grace"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        w.chrome_tab(made).await.is_object(),
        "still open after the client left"
    );
    w.browser.close().await;
}

/// `--user-tabs allow` keeps the behaviour before consent; `--user-tabs deny` refuses at
/// once, without asking; each instance's own policy applies to its own claims, and the
/// popup shows each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_allow_and_deny_apply_per_instance() {
    let mut w = World::new().await;
    let y = w.client("Yes", &["--user-tabs", "allow"]).await;
    let n = w.client("No", &["--user-tabs", "deny"]).await;
    let tab = w.user_tab("docs").await;
    let popup = w.browser.open_popup().await;
    let shown = w
        .browser
        .popup_until(
            &popup,
            "document.body.innerText.includes('user tabs: allow') && document.body.innerText.includes('user tabs: deny') && document.body.innerText",
            Duration::from_secs(15),
        )
        .await;
    assert!(
        shown.as_str().unwrap().contains("never uses your tabs"),
        "{shown}"
    );

    let t0 = Instant::now();
    let e = n.err("browser_tabs", claim(tab, 20.0)).await;
    assert!(
        e.starts_with("CONSENT_DENIED") && e.contains("--user-tabs deny"),
        "{e}"
    );
    assert!(
        t0.elapsed() < AT_ONCE,
        "refused at once, not after {:?}",
        t0.elapsed()
    );
    assert!(!listed(&n, tab).await.contains("who.html"));
    assert_eq!(
        w.browser
            .popup_eval(&popup, "document.querySelectorAll('.ask').length")
            .await,
        json!(0),
        "nobody was asked"
    );

    assert!(listed(&y, tab).await.contains("who.html?who=docs"));
    let t0 = Instant::now();
    y.ok("browser_tabs", claim(tab, 0.0)).await;
    assert!(t0.elapsed() < AT_ONCE);
    assert!(
        y.eval("() => document.title")
            .await
            .contains("Page of docs")
    );
    assert_eq!(w.badge().await, "");
    drop(y);
    drop(n);
    w.browser.close().await;
}
