//! One tab: its CDP channel, the state its events build up (frames, navigation,
//! console, network, dialogs), and the lock that runs its tool calls one at a time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::events::{PageEvent, TargetEvent};
use crate::error::{Error, Result, codes};
use crate::link::{Channel, TabConn, TabEvent};

/// Bound of the console log kept per tab.
pub const MAX_CONSOLE: usize = 2000;
/// Bound of the network log kept per tab.
pub const MAX_NETWORK: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "debug" | "verbose" => Level::Debug,
            "info" | "log" => Level::Info,
            "warning" | "warn" => Level::Warning,
            "error" => Level::Error,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ConsoleEntry {
    pub seq: u64,
    pub level: Level,
    pub text: String,
    pub location: Option<String>,
    /// The navigation this entry belongs to.
    pub nav: u64,
}

#[derive(Debug, Clone)]
pub struct NetEntry {
    /// Monotonic per tab: requests started after a mark have a larger seq.
    pub seq: u64,
    pub request_id: String,
    pub method: String,
    pub url: String,
    pub resource_type: String,
    pub status: Option<i64>,
    pub status_text: String,
    pub failed: Option<String>,
    pub done: bool,
    pub nav: u64,
}

#[derive(Debug, Clone)]
pub struct Dialog {
    pub kind: String,
    pub message: String,
    pub default_prompt: String,
}

#[derive(Debug, Clone)]
pub struct FileChooser {
    pub backend_node_id: i64,
    pub multiple: bool,
}

#[derive(Debug, Clone, Default)]
pub struct FrameInfo {
    pub parent: Option<String>,
    pub loader: String,
    pub url: String,
    /// The child session that runs this frame (out-of-process iframes and their
    /// descendants); `None` for frames of the tab's own session.
    pub session: Option<String>,
}

/// What a tab's events have told tabmux.
#[derive(Debug, Default)]
pub struct PageState {
    pub url: String,
    pub title: String,
    pub main_frame: String,
    pub loader: String,
    /// Counts main-frame navigations (new documents).
    pub nav: u64,
    /// Counts navigations that were asked for (by the page or by tabmux) and not yet
    /// committed or abandoned.
    pub nav_requested: u64,
    pub lifecycle: HashSet<String>,
    pub frames: HashMap<String, FrameInfo>,
    /// Child sessions (out-of-process iframes): session id -> target (frame) id.
    pub child_sessions: HashMap<String, String>,
    pub console: VecDeque<ConsoleEntry>,
    pub console_seq: u64,
    pub network: VecDeque<NetEntry>,
    pub net_seq: u64,
    pub inflight: HashSet<String>,
    pub dialog: Option<Dialog>,
    pub file_chooser: Option<FileChooser>,
    pub crashed: bool,
    pub closed: bool,
    pub closed_reason: Option<String>,
    /// Set when another instance took the tab (the lease ran out while it waited).
    pub lost_to: Option<String>,
    /// Set when the user took the tab back in the browser (the extension's popup).
    pub taken_back: bool,
    /// Whether the model has been told the tab is gone.
    pub close_reported: bool,
    /// Lines for the next tool answer (the extension let go of the tab, …); bounded.
    pub notices: Vec<String>,
    /// The last rendered snapshot of this document, for "what changed" answers.
    pub last_snapshot: Option<(u64, String)>,
    /// The isolated world that watches the DOM for settling: (loader, context id).
    pub quiet_world: Option<(String, i64)>,
    /// Snapshot worlds and the last collected snapshot.
    pub snap: super::snap::PageCache,
}

impl PageState {
    pub fn loaded(&self) -> bool {
        self.lifecycle.contains("load")
    }

    pub fn frame_loader(&self, frame: &str) -> Option<&str> {
        self.frames.get(frame).map(|f| f.loader.as_str())
    }

    pub(super) fn push_console(&mut self, level: Level, text: String, location: Option<String>) {
        self.console_seq += 1;
        if self.console.len() >= MAX_CONSOLE {
            self.console.pop_front();
        }
        let seq = self.console_seq;
        let nav = self.nav;
        self.console.push_back(ConsoleEntry {
            seq,
            level,
            text,
            location,
            nav,
        });
    }
}

/// One tab driven by this instance.
pub struct Page {
    pub key: String,
    pub chan: Channel,
    /// Tool calls on this tab run one at a time (see [`Page::exclusive`]).
    op: tokio::sync::Mutex<()>,
    state: Mutex<PageState>,
    changed: watch::Sender<u64>,
    pub timeout: Duration,
    pub created: Instant,
    /// Whether this instance created the tab (as opposed to claiming it).
    pub created_here: bool,
}

impl Page {
    /// Holds the page for one operation: tool calls on this tab run one at a time.
    /// Tools get it through the page-tool wrapper (`mcp::Ctx::on`), never by hand.
    pub async fn exclusive(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.op.lock().await
    }

    /// Starts following a tab's events and enables the CDP domains tabmux uses.
    pub async fn start(tab: TabConn, created_here: bool, timeout: Duration) -> Result<Arc<Page>> {
        let (changed, _) = watch::channel(0);
        let page = Arc::new(Page {
            key: tab.key,
            chan: tab.channel,
            op: tokio::sync::Mutex::new(()),
            state: Mutex::new(PageState::default()),
            changed,
            timeout,
            created: Instant::now(),
            created_here,
        });
        tokio::spawn(event_loop(Arc::downgrade(&page), tab.events));
        page.init(None).await?;
        Ok(page)
    }

    pub fn state(&self) -> MutexGuard<'_, PageState> {
        self.state.lock().unwrap()
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// Marks the tab closed (its holder's next command fails with `TAB_CLOSED`).
    pub fn mark_closed(&self, reason: &str) {
        {
            let mut s = self.state();
            s.closed = true;
            s.closed_reason.get_or_insert_with(|| reason.to_string());
        }
        self.bump();
    }

    /// Enables the domains tabmux uses on the tab's session (or a child session).
    /// Safe to repeat, e.g. after the debugger was attached again.
    pub async fn init(&self, child: Option<&str>) -> Result<()> {
        let calls: Vec<(&str, Value)> = vec![
            ("Page.enable", json!({})),
            ("Page.setLifecycleEventsEnabled", json!({"enabled": true})),
            ("Runtime.enable", json!({})),
            (
                "Network.enable",
                json!({"maxTotalBufferSize": 1_000_000, "maxResourceBufferSize": 200_000}),
            ),
            ("Log.enable", json!({})),
            (
                "Page.setInterceptFileChooserDialog",
                json!({"enabled": true}),
            ),
            (
                "Target.setAutoAttach",
                json!({"autoAttach": true, "waitForDebuggerOnStart": false, "flatten": true}),
            ),
        ];
        let futs = calls
            .into_iter()
            .map(|(m, p)| self.chan.call_raw(child, m, p, self.timeout));
        let results = futures_util::future::join_all(futs).await;
        for r in results {
            if let Err(e) = r {
                if e.is(codes::CDP_ERROR) && e.message.contains("setInterceptFileChooserDialog") {
                    continue;
                }
                return Err(e);
            }
        }
        if child.is_none() {
            let _ = self
                .chan
                .call_raw(
                    None,
                    "Emulation.setFocusEmulationEnabled",
                    json!({"enabled": true}),
                    self.timeout,
                )
                .await;
            self.load_frame_tree().await?;
        } else {
            let _ = self
                .chan
                .call_raw(
                    child,
                    "Runtime.runIfWaitingForDebugger",
                    json!({}),
                    self.timeout,
                )
                .await;
        }
        Ok(())
    }

    async fn load_frame_tree(&self) -> Result<()> {
        let tree: Value = self.call("Page.getFrameTree", json!({})).await?;
        let mut s = self.state();
        fn walk(s: &mut PageState, node: &Value, parent: Option<String>) {
            let f = &node["frame"];
            let id = f["id"].as_str().unwrap_or_default().to_string();
            let info = FrameInfo {
                parent: parent.clone(),
                loader: f["loaderId"].as_str().unwrap_or_default().to_string(),
                url: f["url"].as_str().unwrap_or_default().to_string(),
                session: None,
            };
            if parent.is_none() {
                s.main_frame = id.clone();
                s.loader = info.loader.clone();
                s.url = info.url.clone();
            }
            s.frames.entry(id.clone()).or_insert(info);
            if let Some(children) = node["childFrames"].as_array() {
                for c in children {
                    walk(s, c, Some(id.clone()));
                }
            }
        }
        walk(&mut s, &tree["frameTree"], None);
        Ok(())
    }

    /// Sends a command to the tab's own session.
    pub async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T> {
        self.call_in(None, method, params).await
    }

    /// Sends a command to the tab's session or one of its child sessions.
    pub async fn call_in<T: DeserializeOwned>(
        &self,
        child: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<T> {
        self.check_open()?;
        let raw = self
            .chan
            .call_raw(child, method, params, self.timeout)
            .await
            .map_err(|e| self.explain(e))?;
        serde_json::from_str(raw.get()).map_err(|e| {
            Error::new(
                codes::CDP_ERROR,
                format!("unexpected answer to {method}: {e}"),
            )
        })
    }

    /// Like [`Page::call_in`], but gives up as soon as a JavaScript dialog opens (a
    /// dialog blocks the page until it is handled). Returns `Ok(None)` then.
    pub async fn call_or_dialog<T: DeserializeOwned>(
        &self,
        child: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Option<T>> {
        if self.state().dialog.is_some() {
            return Ok(None);
        }
        let mut rx = self.changed.subscribe();
        let call = self.call_in::<T>(child, method, params);
        tokio::pin!(call);
        loop {
            tokio::select! {
                r = &mut call => return r.map(Some),
                changed = rx.changed() => {
                    if changed.is_err() || self.state().dialog.is_some() {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The error for a command on a tab that is gone, or `Ok`.
    pub fn check_open(&self) -> Result<()> {
        let s = self.state();
        if s.taken_back {
            return Err(Error::new(
                codes::TAKEN_BACK,
                "the user took this tab back in the browser; it is not yours any more. Use your own tab (browser_tabs lists them; browser_navigate opens one), or ask the user before claiming it again",
            ));
        }
        if let Some(to) = &s.lost_to {
            return Err(Error::new(
                codes::LOCK_LOST,
                format!(
                    "you lost this tab to {to}: it sat idle past its lease while they waited; claim it again with browser_tabs (it queues) or use another tab"
                ),
            ));
        }
        if s.closed {
            return Err(Error::new(
                codes::TAB_CLOSED,
                format!(
                    "this tab is gone ({}); list your tabs with browser_tabs",
                    s.closed_reason.as_deref().unwrap_or("closed")
                ),
            ));
        }
        if s.crashed {
            return Err(Error::new(
                codes::TAB_CLOSED,
                "the page crashed; navigate again (browser_navigate) or close the tab",
            ));
        }
        Ok(())
    }

    fn explain(&self, e: Error) -> Error {
        if e.is(codes::TAB_CLOSED) {
            // The browser says the tab is gone: the next call moves on to another tab.
            let mut s = self.state();
            s.closed = true;
            s.close_reported = true;
            s.closed_reason.get_or_insert_with(|| "closed".into());
            return Error::new(
                codes::TAB_CLOSED,
                format!(
                    "{}; browser_tabs lists your remaining tabs, and the next call opens a new one if none is left",
                    e.message
                ),
            );
        }
        if e.is(codes::LOCK_LOST) || e.is(codes::NOT_HELD) || e.is(codes::TAKEN_BACK) {
            let mut s = self.state();
            s.taken_back |= e.is(codes::TAKEN_BACK);
            s.closed = true;
            s.closed_reason
                .get_or_insert_with(|| "the browser no longer counts it as yours".into());
            return e;
        }
        if e.is(codes::BROWSER_GONE) || e.is(codes::TAB_CLOSED) {
            let s = self.state();
            if s.closed {
                return Error::new(
                    codes::TAB_CLOSED,
                    format!(
                        "this tab is gone ({})",
                        s.closed_reason.as_deref().unwrap_or("closed")
                    ),
                );
            }
        }
        e
    }

    /// Waits until `pred` holds on the page state, at most until `deadline`. Returns
    /// whether it held. Ends early (false) when the tab closes.
    pub async fn wait_until(
        &self,
        deadline: Instant,
        mut pred: impl FnMut(&PageState) -> bool,
    ) -> bool {
        let mut rx = self.changed.subscribe();
        loop {
            {
                let s = self.state();
                if pred(&s) {
                    return true;
                }
                if s.closed || s.crashed {
                    return false;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            match tokio::time::timeout(deadline - now, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return pred(&self.state()),
            }
        }
    }

    /// Evaluates an expression in the main frame; the result by value.
    pub async fn eval(&self, expression: &str) -> Result<Value> {
        let r: Value = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(Error::new(codes::EVAL_ERROR, exception_text(ex)));
        }
        Ok(r["result"]["value"].clone())
    }
}

/// A readable one-line text of CDP `exceptionDetails`.
pub fn exception_text(ex: &Value) -> String {
    let desc = ex["exception"]["description"]
        .as_str()
        .or_else(|| ex["exception"]["value"].as_str())
        .map(str::to_string);
    let text = ex["text"].as_str().unwrap_or("exception");
    let mut out = match desc {
        Some(d) => {
            // The description carries the stack; its first line is the message.
            let first = d.lines().next().unwrap_or(d.as_str()).to_string();
            if text == "Uncaught" || text.is_empty() {
                format!("Uncaught {first}")
            } else {
                format!("{text} {first}")
            }
        }
        None => text.to_string(),
    };
    if let Some(line) = ex["lineNumber"].as_i64()
        && let Some(url) = ex["url"].as_str().filter(|u| !u.is_empty())
    {
        out.push_str(&format!(" ({}:{})", short_url(url), line + 1));
    }
    out
}

pub(super) fn short_url(url: &str) -> &str {
    url.rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(url)
}

async fn event_loop(page: std::sync::Weak<Page>, mut events: mpsc::Receiver<TabEvent>) {
    while let Some(ev) = events.recv().await {
        let Some(page) = page.upgrade() else { return };
        handle_event(&page, ev);
        page.bump();
    }
    if let Some(page) = page.upgrade() {
        page.mark_closed("the tab was closed");
    }
}

/// Applies what the link tells about the tab.
fn handle_event(page: &Arc<Page>, ev: TabEvent) {
    match ev {
        TabEvent::Cdp(ev) => {
            if let Some(e) = PageEvent::decode(&ev.method, ev.params) {
                on_cdp(page, e, ev.session);
            }
        }
        TabEvent::Closed { reason } => {
            let mut s = page.state();
            s.closed = true;
            let why = match reason.as_deref() {
                Some("user") => "closed in the browser".to_string(),
                Some("creator-left") => "its creator left".to_string(),
                Some("holder") => "closed by the client that held it".to_string(),
                Some(other) => other.to_string(),
                None => "closed".to_string(),
            };
            s.closed_reason.get_or_insert(why);
        }
        TabEvent::Lost { to } => {
            let mut s = page.state();
            s.closed = true;
            let to = to.as_deref().unwrap_or("another client");
            s.lost_to = Some(format!("{to:?}"));
        }
        TabEvent::TakenBack => {
            let mut s = page.state();
            s.closed = true;
            s.taken_back = true;
        }
        TabEvent::Forbidden { url, sent_back } => {
            let mut s = page.state();
            let url: String = url.as_deref().unwrap_or("?").chars().take(100).collect();
            let then = if sent_back {
                "it was sent back to about:blank"
            } else {
                "commands on it fail until it shows a web page again"
            };
            if s.notices.len() < 8 {
                s.notices.push(format!(
                    "FORBIDDEN_PAGE: the tab went to {url}, a page tabmux may not control; the browser extension let go of it ({then})."
                ));
            }
        }
        TabEvent::Attached => {
            let page = page.clone();
            tokio::spawn(async move {
                if let Err(e) = page.init(None).await {
                    tracing::debug!("re-enabling the tab's domains failed: {e}");
                }
            });
        }
    }
}

/// Applies a decoded CDP event, domain by domain.
fn on_cdp(page: &Arc<Page>, e: PageEvent, child: Option<String>) {
    let relayed = matches!(page.chan, Channel::Extension { .. });
    match e {
        PageEvent::Frame(e) => page.state().on_frame(e, child, relayed),
        PageEvent::Dialog(e) => page.state().on_dialog(e),
        PageEvent::Console(e) => page.state().on_console(e),
        PageEvent::Network(e) => page.state().on_network(e),
        PageEvent::Target(TargetEvent::Detached { session }) => {
            page.state().on_target_detached(&session);
        }
        PageEvent::Target(TargetEvent::Attached {
            session,
            target,
            iframe: true,
        }) => {
            {
                let mut s = page.state();
                s.child_sessions.insert(session.clone(), target.clone());
                s.frames.entry(target).or_default().session = Some(session.clone());
            }
            let page = page.clone();
            tokio::spawn(async move {
                if let Err(e) = page.init(Some(&session)).await {
                    tracing::debug!("child session init failed: {e}");
                }
            });
        }
        PageEvent::Target(TargetEvent::Attached { session, .. }) => {
            // Workers and the like: let them run, tabmux does not drive them.
            let page = page.clone();
            tokio::spawn(async move {
                let _ = page
                    .chan
                    .call_raw(
                        Some(&session),
                        "Runtime.runIfWaitingForDebugger",
                        json!({}),
                        Duration::from_secs(5),
                    )
                    .await;
            });
        }
    }
}
