//! A headless Chromium with the tabmux extension installed the way a user does it
//! (`tabmux extension install DIR`, with the test's state directory, so it carries that
//! directory's secret), for the extension-link tests, plus a free port range per test.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use tabmux::link::launch::{LaunchOptions, Launched};

use super::TempDir;

/// A block of `n` consecutive free ports on 127.0.0.1, never handed out twice in one
/// test process (a range given to a browser binds nothing until an instance starts, so
/// "free" alone would not keep two tests apart).
pub fn free_range(n: u16) -> (u16, u16) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let seed = (std::process::id() as u16).wrapping_mul(7919) % 300;
    let mut given = GIVEN.lock().unwrap();
    let given = given.get_or_insert_with(HashSet::new);
    for attempt in 0..300u16 {
        let slot = (seed + attempt) % 300;
        if given.contains(&slot) {
            continue;
        }
        let first = 33000 + slot * 64;
        let ok = (first..first + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if ok {
            given.insert(slot);
            return (first, first + n - 1);
        }
    }
    panic!("no free block of {n} ports");
}

pub struct ExtBrowser {
    pub launched: Option<Launched>,
    pub profile: TempDir,
    /// The installed copy of the extension (holds `config.json` with the secret).
    pub ext: TempDir,
    pub ports: (u16, u16),
}

/// Runs `tabmux extension install <dir>` with `state` as the state directory.
pub fn install_extension(dir: &std::path::Path, state: &std::path::Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .args(["extension", "install"])
        .arg(dir)
        .env("TABMUX_STATE_DIR", state)
        .output()
        .expect("tabmux runs");
    assert!(
        out.status.success(),
        "tabmux extension install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Deserialize)]
struct TargetInfo {
    #[serde(rename = "targetId")]
    target_id: String,
    #[serde(rename = "type")]
    kind: String,
    url: String,
}

/// The extension's popup page, open in a tab of the test browser.
pub struct Popup {
    pub target: String,
    pub session: String,
}

pub const EXTENSION_ID: &str = "knlmfncphidfkjhbiidejbkkebcfedhd";

impl ExtBrowser {
    /// Starts Chromium with the extension, installed with the secret of `state` (the
    /// state directory the test's tabmux instances use), and points it at `ports`.
    pub async fn start(ports: (u16, u16), state: &std::path::Path) -> ExtBrowser {
        Self::start_copy(ports, state, true).await
    }

    /// Like [`ExtBrowser::start`], with a copy of the extension that has no
    /// `config.json` (as installed from the Chrome Web Store): it knows no secret until
    /// the user pairs it.
    pub async fn start_unpaired(ports: (u16, u16), state: &std::path::Path) -> ExtBrowser {
        Self::start_copy(ports, state, false).await
    }

    async fn start_copy(ports: (u16, u16), state: &std::path::Path, config: bool) -> ExtBrowser {
        super::require_chromium();
        let profile = TempDir::new("ext-profile");
        let ext = TempDir::new("ext-copy");
        let dir = ext.path().join("tabmux-extension");
        install_extension(&dir, state);
        if !config {
            std::fs::remove_file(dir.join("config.json")).expect("config.json is removed");
        }
        let opts = LaunchOptions {
            user_data_dir: Some(profile.path().to_path_buf()),
            extensions: vec![dir],
            ..Default::default()
        };
        let launched = Launched::start(&opts, Duration::from_secs(30))
            .await
            .expect("Chromium with the extension starts");
        let b = ExtBrowser {
            launched: Some(launched),
            profile,
            ext,
            ports,
        };
        let set = format!("tabmux.setRange({}, {})", ports.0, ports.1);
        b.worker_eval(&set).await;
        b
    }

    pub fn cdp(&self) -> &tabmux::cdp::CdpConnection {
        &self.launched.as_ref().unwrap().conn
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.cdp()
            .call::<Value>(session, method, params, Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Attaches to a target with a flat session; returns the session id.
    async fn attach(&self, target_id: &str) -> String {
        let a = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await;
        a["sessionId"].as_str().unwrap().to_string()
    }

    /// Opens a browser-level target at `url`; returns its target id and session id.
    async fn open_target(&self, url: &str) -> (String, String) {
        let t = self
            .call(None, "Target.createTarget", json!({"url": url}))
            .await;
        let id = t["targetId"].as_str().unwrap().to_string();
        let s = self.attach(&id).await;
        (id, s)
    }

    async fn worker_session(&self) -> String {
        for _ in 0..200 {
            let t: Value = self.call(None, "Target.getTargets", json!({})).await;
            let infos: Vec<TargetInfo> = serde_json::from_value(t["targetInfos"].clone()).unwrap();
            if let Some(w) = infos.iter().find(|t| {
                t.kind == "service_worker"
                    && t.url
                        .starts_with(&format!("chrome-extension://{EXTENSION_ID}/"))
            }) {
                return self.attach(&w.target_id).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the extension's service worker did not start");
    }

    /// Evaluates an expression in the extension's service worker (awaiting promises).
    pub async fn worker_eval(&self, expression: &str) -> Value {
        let s = self.worker_session().await;
        self.call(Some(&s), "Runtime.enable", json!({})).await;
        // The worker's module may still be starting: wait for its `tabmux` handle.
        for _ in 0..200 {
            let t = self
                .call(
                    Some(&s),
                    "Runtime.evaluate",
                    json!({"expression": "typeof tabmux === 'object' && tabmux.ready.then(() => true)", "awaitPromise": true, "returnByValue": true}),
                )
                .await;
            if t["result"]["value"].as_bool() == Some(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let r = self
            .call(
                Some(&s),
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        let _ = self
            .cdp()
            .call::<Value>(
                None,
                "Target.detachFromTarget",
                json!({"sessionId": s}),
                Duration::from_secs(5),
            )
            .await;
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("worker evaluation failed: {ex}");
        }
        r["result"]["value"].clone()
    }

    /// Stops the extension's service worker (as Chromium does after 30 s idle).
    pub async fn stop_worker(&self) {
        let (id, s) = self.open_target("about:blank").await;
        self.call(Some(&s), "ServiceWorker.enable", json!({})).await;
        self.call(Some(&s), "ServiceWorker.stopAllWorkers", json!({}))
            .await;
        self.call(None, "Target.closeTarget", json!({"targetId": id}))
            .await;
    }

    /// Reloads the extension the way a user does on chrome://extensions (Developer mode
    /// on, the extension's Reload button): a new service worker, the old one's state
    /// and debugger sessions gone.
    pub async fn reload_extension(&self) {
        let (id, s) = self.open_target("chrome://extensions").await;
        // The page gets its `chrome.developerPrivate` binding once it has loaded.
        self.until_in(
            &s,
            "chrome://extensions",
            "!!(globalThis.chrome && chrome.developerPrivate)",
            Duration::from_secs(15),
        )
        .await;
        let expr = format!(
            "chrome.developerPrivate.updateProfileConfiguration({{inDeveloperMode: true}})
                .then(() => chrome.developerPrivate.reload('{EXTENSION_ID}', {{failQuietly: false}}))
                .then(() => 'reloaded')"
        );
        let r = self
            .call(
                Some(&s),
                "Runtime.evaluate",
                json!({"expression": expr, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        self.call(None, "Target.closeTarget", json!({"targetId": id}))
            .await;
        assert_eq!(
            r["result"]["value"], "reloaded",
            "the extension reloads: {r}"
        );
    }

    /// Opens the extension's popup page in a tab, through the browser's own debugging
    /// endpoint (not through tabmux), to play the user: read what it shows, click its
    /// buttons.
    pub async fn open_popup(&self) -> Popup {
        let url = format!("chrome-extension://{EXTENSION_ID}/popup/popup.html");
        let (target, session) = self.open_target(&url).await;
        self.call(Some(&session), "Runtime.enable", json!({})).await;
        Popup { target, session }
    }

    /// Evaluates `expression` in the popup page (awaiting promises); its value.
    pub async fn popup_eval(&self, popup: &Popup, expression: &str) -> Value {
        self.eval_in(&popup.session, "popup", expression).await
    }

    /// Waits (up to `within`) until `expression` is truthy in the popup; its last value.
    pub async fn popup_until(&self, popup: &Popup, expression: &str, within: Duration) -> Value {
        self.until_in(&popup.session, "the popup", expression, within)
            .await
    }

    /// Evaluates `expression` in the page of `session` (awaiting promises); its value.
    async fn eval_in(&self, session: &str, page: &str, expression: &str) -> Value {
        let r = self
            .call(
                Some(session),
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("{page} evaluation failed: {ex}");
        }
        r["result"]["value"].clone()
    }

    /// Waits (up to `within`) until `expression` is truthy in the page of `session`; its
    /// last value.
    async fn until_in(
        &self,
        session: &str,
        page: &str,
        expression: &str,
        within: Duration,
    ) -> Value {
        let deadline = std::time::Instant::now() + within;
        // The page may still be loading: an exception counts as "not yet".
        let guarded = format!(
            "(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        );
        loop {
            let v = self.eval_in(session, page, &guarded).await;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{page} did not show `{expression}` within {within:?}; it shows: {}",
                self.eval_in(session, page, "document.body && document.body.innerText")
                    .await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens a tab the way a user would (not through tabmux); returns its Chrome tab id.
    pub async fn user_tab(&self, url: &str) -> i64 {
        let expr = format!(
            "chrome.tabs.create({{url: {}, active: true}}).then(t => t.id)",
            json!(url)
        );
        self.worker_eval(&expr).await.as_i64().expect("a tab id")
    }

    /// Closes a tab the way a user would.
    pub async fn user_close(&self, tab: i64) {
        self.worker_eval(&format!("chrome.tabs.remove({tab}).then(() => true)"))
            .await;
    }

    /// The pid of the browser process.
    pub fn pid(&self) -> u32 {
        self.launched.as_ref().unwrap().pid().unwrap_or(0)
    }

    pub async fn close(&mut self) {
        if let Some(l) = self.launched.take() {
            l.shutdown().await;
        }
    }
}
