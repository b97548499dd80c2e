//! The extension link: CDP relayed by the tabmux extension in the user's browser, over
//! the bridge's WebSocket (`docs/PROTOCOL.md`). The extension owns the truth about tabs
//! (who holds what, the queues, the leases); this side asks it for tabs and relays CDP
//! for the ones it holds.
//!
//! Which browser: one extension connects per browser profile. Tools use the *primary*
//! browser — the first that connected and is still connected. When it goes away,
//! tabmux waits a short while for the same profile to come back (its service worker
//! restarting), then moves to the next connected browser, if any.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::TabEvent;
use super::{Channel, TabConn, TabInfo};
use crate::bridge::{self, Bridge, Connection, WireError};
use crate::cdp::{CdpEvent, EVENT_QUEUE, cdp_error};
use crate::error::{Error, Result, codes};

tokio::task_local! {
    /// The trace id of the tool call being served, sent with every request so one
    /// operation can be followed in both logs.
    pub static TRACE: String;
}

fn trace() -> Option<String> {
    TRACE.try_with(|t| t.clone()).ok()
}

const CALL: Duration = Duration::from_secs(30);

struct Inner {
    bridge: Bridge,
    current: Mutex<Option<Arc<Connection>>>,
    routes: Mutex<HashMap<i64, mpsc::Sender<TabEvent>>>,
    /// Connections whose events are being read.
    watched: Mutex<Vec<u64>>,
    /// Tabs this instance created (closed when it leaves; the rest are released).
    created: Mutex<Vec<i64>>,
    /// How long to wait for the browser to come back after its connection dropped.
    reconnect_wait: Duration,
    /// Tabs this instance's pages opened, waiting to be adopted.
    opened: Mutex<Vec<i64>>,
}

/// The extension link of one instance. Cheap to clone.
#[derive(Clone)]
pub struct ExtensionLink {
    inner: Arc<Inner>,
}

/// Converts a wire error into a tool error.
fn from_wire(e: WireError, what: &str) -> Error {
    let code = match e.code.as_str() {
        bridge::codes::TAB_BUSY => codes::TAB_BUSY,
        bridge::codes::TAB_CLOSED => codes::TAB_CLOSED,
        bridge::codes::NOT_FOUND => codes::NOT_FOUND,
        bridge::codes::LOCK_LOST => codes::LOCK_LOST,
        bridge::codes::NOT_HELD => codes::NOT_HELD,
        bridge::codes::NOT_ATTACHABLE => codes::NOT_ATTACHABLE,
        bridge::codes::CONSENT_DENIED => codes::CONSENT_DENIED,
        bridge::codes::CONSENT_TIMEOUT => codes::CONSENT_TIMEOUT,
        bridge::codes::TAKEN_BACK => codes::TAKEN_BACK,
        bridge::codes::FORBIDDEN_PAGE => codes::FORBIDDEN_PAGE,
        bridge::codes::FORBIDDEN_URL => codes::FORBIDDEN_URL,
        bridge::codes::FORBIDDEN_METHOD => codes::FORBIDDEN_METHOD,
        bridge::codes::TIMEOUT => codes::TIMEOUT,
        bridge::codes::TOO_LARGE => codes::TOO_LARGE,
        bridge::codes::BAD_REQUEST => codes::BAD_REQUEST,
        bridge::codes::DISCONNECTED => codes::BROWSER_GONE,
        bridge::codes::CDP_ERROR => {
            let data = e.data.clone().unwrap_or(Value::Null);
            let msg = data["cdpMessage"]
                .as_str()
                .unwrap_or(&e.message)
                .to_string();
            let cdp_code = data["cdpCode"].as_i64().unwrap_or(-32000);
            return cdp_error(what, cdp_code, &msg, None);
        }
        _ => codes::INTERNAL,
    };
    let mut message = e.message;
    if code == codes::BROWSER_GONE {
        message =
            format!("{message}; the browser's tabmux extension disconnected (retry in a moment)");
    }
    if code == codes::NOT_FOUND {
        message =
            format!("{message}; list every tab with browser_tabs {{action: \"list\", all: true}}");
    }
    Error::new(code, message)
}

impl ExtensionLink {
    pub fn new(bridge: Bridge, reconnect_wait: Duration) -> ExtensionLink {
        ExtensionLink {
            inner: Arc::new(Inner {
                bridge,
                current: Mutex::new(None),
                routes: Mutex::new(HashMap::new()),
                watched: Mutex::new(Vec::new()),
                created: Mutex::new(Vec::new()),
                reconnect_wait,
                opened: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn bridge(&self) -> &Bridge {
        &self.inner.bridge
    }

    /// The browser connection in use, waiting up to `wait` for one.
    pub async fn connection(&self, wait: Duration) -> Option<Arc<Connection>> {
        let previous = self.inner.current.lock().unwrap().clone();
        if let Some(c) = &previous
            && c.is_open()
        {
            return Some(c.clone());
        }
        // The same profile first (its service worker restarting); any other browser
        // only once the wait is over.
        let deadline = tokio::time::Instant::now() + wait;
        let mut changes = self.inner.bridge.subscribe();
        let chosen = loop {
            let open: Vec<_> = self
                .inner
                .bridge
                .connections()
                .into_iter()
                .filter(|c| c.is_open())
                .collect();
            let over = tokio::time::Instant::now() >= deadline;
            let pick = match &previous {
                Some(p) => open
                    .iter()
                    .find(|c| c.profile_id() == p.profile_id())
                    .cloned()
                    .or_else(|| if over { open.first().cloned() } else { None }),
                None => open.first().cloned(),
            };
            if pick.is_some() || over {
                break pick;
            }
            let _ = tokio::time::timeout_at(deadline, changes.recv()).await;
        };
        let c = chosen?;
        if previous
            .as_ref()
            .is_some_and(|p| p.profile_id() != c.profile_id())
        {
            // Another browser: the tabs of the old one are not reachable any more.
            let routes: Vec<_> = self.inner.routes.lock().unwrap().drain().collect();
            for (_, sink) in routes {
                let _ = sink.try_send(TabEvent::Closed {
                    reason: Some("its browser disconnected".into()),
                });
            }
            self.inner.created.lock().unwrap().clear();
        }
        *self.inner.current.lock().unwrap() = Some(c.clone());
        self.watch(&c);
        Some(c)
    }

    /// Whether a browser is connected now.
    pub fn connected(&self) -> bool {
        self.inner.bridge.connections().iter().any(|c| c.is_open())
    }

    /// Reads a connection's events and routes them to pages.
    fn watch(&self, conn: &Arc<Connection>) {
        {
            let mut w = self.inner.watched.lock().unwrap();
            if w.contains(&conn.id()) {
                return;
            }
            w.push(conn.id());
        }
        let Some(mut events) = conn.take_events() else {
            return;
        };
        let inner = Arc::downgrade(&self.inner);
        let id = conn.id();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let Some(inner) = inner.upgrade() else { return };
                let tab = ev.params["tabId"].as_i64().unwrap_or(-1);
                if ev.event == "tab.opened" {
                    // A page of ours opened it; the extension made it ours.
                    inner.created.lock().unwrap().push(tab);
                    inner.opened.lock().unwrap().push(tab);
                    continue;
                }
                let sink = inner.routes.lock().unwrap().get(&tab).cloned();
                let Some(sink) = sink else { continue };
                let text = |v: &Value| v.as_str().map(str::to_string);
                let out = match ev.event.as_str() {
                    "cdp.event" => TabEvent::Cdp(CdpEvent {
                        session: text(&ev.params["sessionId"]),
                        method: ev.params["method"].as_str().unwrap_or_default().to_string(),
                        params: ev.params["params"].clone(),
                    }),
                    "tab.closed" => TabEvent::Closed {
                        reason: text(&ev.params["reason"]),
                    },
                    "tab.lost" => TabEvent::Lost {
                        to: text(&ev.params["to"]["name"]),
                    },
                    "tab.attached" => TabEvent::Attached,
                    "tab.takenBack" => TabEvent::TakenBack,
                    "tab.forbidden" => TabEvent::Forbidden {
                        url: text(&ev.params["url"]),
                        sent_back: ev.params["sentBack"].as_bool() == Some(true),
                    },
                    _ => continue,
                };
                if matches!(
                    ev.event.as_str(),
                    "tab.closed" | "tab.lost" | "tab.takenBack"
                ) {
                    inner.routes.lock().unwrap().remove(&tab);
                    inner.created.lock().unwrap().retain(|t| *t != tab);
                }
                if sink.try_send(out).is_err() {
                    tracing::warn!("page event queue full or closed (tab {tab})");
                }
            }
            if let Some(inner) = inner.upgrade() {
                inner.watched.lock().unwrap().retain(|c| *c != id);
            }
        });
    }

    async fn request(&self, method: &str, params: Value, timeout: Duration) -> Result<Value> {
        let raw = self.request_raw(method, params, timeout).await?;
        serde_json::from_str(raw.get()).map_err(|e| {
            Error::internal(format!(
                "the extension's answer to {method} is not JSON: {e}"
            ))
        })
    }

    async fn request_raw(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Box<RawValue>> {
        let conn = self
            .connection(self.inner.reconnect_wait)
            .await
            .ok_or_else(no_extension)?;
        conn.request_raw(method, params, trace().as_deref(), timeout)
            .await
            .map_err(|e| from_wire(e, method))
    }

    /// Sends a CDP command to a tab this instance holds.
    pub(super) async fn cdp(
        &self,
        tab: i64,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Box<RawValue>> {
        let mut p = json!({"tabId": tab, "method": method, "params": params});
        if let Some(s) = session {
            p["sessionId"] = json!(s);
        }
        self.request_raw("cdp", p, timeout).await.map_err(|e| {
            if e.is(codes::CDP_ERROR) || e.is(codes::STALE_REF) {
                e
            } else {
                Error::new(e.code, format!("{method}: {}", e.message))
            }
        })
    }

    fn tab_conn(&self, tab: i64) -> TabConn {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        self.inner.routes.lock().unwrap().insert(tab, tx);
        TabConn {
            key: tab.to_string(),
            channel: Channel::Extension {
                link: self.clone(),
                tab,
            },
            events: rx,
        }
    }

    /// Tabs the pages opened since the last call (held by this instance already).
    pub fn take_opened(&self) -> Vec<TabConn> {
        let tabs: Vec<i64> = std::mem::take(&mut self.inner.opened.lock().unwrap());
        tabs.into_iter().map(|t| self.tab_conn(t)).collect()
    }

    /// Opens a tab in the background, held by this instance from birth.
    pub async fn create_tab(&self) -> Result<TabConn> {
        let r = self
            .request("tabs.create", json!({"url": "about:blank"}), CALL)
            .await?;
        let tab = r["tabId"]
            .as_i64()
            .ok_or_else(|| Error::internal("tabs.create answered without tabId"))?;
        self.inner.created.lock().unwrap().push(tab);
        Ok(self.tab_conn(tab))
    }

    /// Takes a tab of the browser, waiting in its queue up to `timeout`.
    pub async fn claim(&self, tab_id: &str, timeout: Duration) -> Result<TabConn> {
        let tab: i64 = tab_id.trim().parse().map_err(|_| {
            Error::bad_request(format!(
                "tabId {tab_id:?} is not a tab id; list tabs with browser_tabs {{action: \"list\", all: true}}"
            ))
        })?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let asked = self
                .request(
                    "tabs.claim",
                    json!({"tabId": tab, "timeoutMs": left.as_millis() as u64}),
                    left + Duration::from_secs(10),
                )
                .await;
            match asked {
                Ok(_) => return Ok(self.tab_conn(tab)),
                // The connection dropped while the claim waited (the extension's
                // service worker restarting): claim again on the new connection for the
                // time left. The extension gives back the place in the queue if it
                // still has it.
                Err(e) if e.is(codes::BROWSER_GONE) && tokio::time::Instant::now() < deadline => {
                    tracing::info!(
                        tab,
                        "the browser's connection dropped during a claim; claiming again"
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn unroute(&self, tab: i64) {
        self.inner.routes.lock().unwrap().remove(&tab);
        self.inner.created.lock().unwrap().retain(|t| *t != tab);
    }

    /// Gives a tab back without closing it.
    pub async fn release(&self, key: &str) -> Result<()> {
        let tab: i64 = key.parse().unwrap_or(-1);
        self.unroute(tab);
        self.request("tabs.release", json!({"tabId": tab}), CALL)
            .await?;
        Ok(())
    }

    /// Closes a tab and waits until it is gone.
    pub async fn close_tab(&self, key: &str) -> Result<()> {
        let tab: i64 = key.parse().unwrap_or(-1);
        self.unroute(tab);
        self.request("tabs.close", json!({"tabId": tab}), CALL)
            .await?;
        Ok(())
    }

    /// Every tab of the browser with its holder.
    pub async fn list_all(&self) -> Result<Vec<TabInfo>> {
        let r = self
            .request("tabs.list", json!({"all": true}), CALL)
            .await?;
        let tabs = r["tabs"].as_array().cloned().unwrap_or_default();
        Ok(tabs
            .into_iter()
            .map(|t| TabInfo {
                id: t["tabId"].as_i64().unwrap_or(-1).to_string(),
                title: t["title"].as_str().unwrap_or_default().to_string(),
                url: t["url"].as_str().unwrap_or_default().to_string(),
                holder: t["holder"]["name"].as_str().map(str::to_string),
                mine: t["mine"].as_bool().unwrap_or(false),
                needs_consent: t["user"].as_bool() == Some(true)
                    && t["consent"].as_bool() == Some(false),
                waiters: t["waiters"]
                    .as_array()
                    .map(|w| {
                        w.iter()
                            .filter_map(|w| w["name"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Which browser is in use, for people.
    pub fn describe(&self) -> String {
        match self.inner.current.lock().unwrap().as_ref() {
            Some(c) if c.managed() => format!(
                "the shared browser tabmux launched for your clients ({})",
                c.browser()
            ),
            Some(c) => format!(
                "your browser ({}) through the tabmux extension",
                c.browser()
            ),
            None => "no browser connected yet".to_string(),
        }
    }

    /// Whether the browser in use is the one tabmux launched for its clients.
    pub fn managed(&self) -> bool {
        self.inner
            .current
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|c| c.managed())
    }

    /// `browser_close`: closes the tabs this instance created and releases the others,
    /// at once.
    pub async fn shutdown(&self, held: &[String]) {
        let created: Vec<i64> = self.inner.created.lock().unwrap().clone();
        let Some(conn) = self.inner.current.lock().unwrap().clone() else {
            return;
        };
        if !conn.is_open() {
            return;
        }
        let calls = held
            .iter()
            .filter_map(|k| k.parse::<i64>().ok())
            .map(|tab| {
                let conn = conn.clone();
                let method = if created.contains(&tab) {
                    "tabs.close"
                } else {
                    "tabs.release"
                };
                async move {
                    let _ = conn
                        .request(method, json!({"tabId": tab}), None, Duration::from_secs(3))
                        .await;
                }
            });
        futures_util::future::join_all(calls).await;
    }
}

/// The error when no browser runs the extension.
pub fn no_extension() -> Error {
    Error::new(
        codes::NO_EXTENSION,
        "no browser with the tabmux extension is connected. Install it: run `tabmux extension install ~/tabmux-extension`, open chrome://extensions, turn on Developer mode, click \"Load unpacked\" and pick that folder (see the README), and keep the browser open. Or start tabmux without --extension (it then launches a shared browser with the extension), or with --launch for a private throwaway browser.",
    )
}
