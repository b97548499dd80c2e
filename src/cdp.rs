//! A Chrome DevTools Protocol connection in flat-session mode, over any transport that
//! carries whole JSON messages (a WebSocket, or the `--remote-debugging-pipe` pipes).
//!
//! Commands are correlated by id and each has a deadline; events are routed by
//! `sessionId` to the sink of the page that owns the session. Child sessions (an
//! out-of-process iframe auto-attached by a page session) are routed to the same sink,
//! tagged with their own session id.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::error::{Error, Result, codes};
use crate::link::TabEvent;

/// A CDP event delivered to a page. `session` is `None` for the page's own session and
/// the child session id for events of an out-of-process iframe.
#[derive(Debug, Clone)]
pub struct CdpEvent {
    pub session: Option<String>,
    pub method: String,
    pub params: Value,
}

/// Bound of every per-page event queue. A page that falls this far behind loses events
/// (counted and logged), never memory.
pub const EVENT_QUEUE: usize = 8192;

type Reply = Result<Box<RawValue>>;

struct Route {
    sink: mpsc::Sender<TabEvent>,
    /// `Some(child)` when this session is a child of a page session.
    child: Option<String>,
}

struct Inner {
    out: mpsc::Sender<String>,
    pending: Mutex<HashMap<u64, (String, oneshot::Sender<Reply>)>>,
    routes: Mutex<HashMap<String, Route>>,
    browser_events: Mutex<Option<mpsc::Sender<CdpEvent>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    closed_notify: Notify,
    close_reason: Mutex<String>,
    dropped_events: AtomicU64,
}

/// A CDP connection to a browser. Cheap to clone.
#[derive(Clone)]
pub struct CdpConnection {
    inner: Arc<Inner>,
}

#[derive(Deserialize)]
struct Incoming<'a> {
    id: Option<u64>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    error: Option<CdpErrorBody>,
    method: Option<String>,
    params: Option<Value>,
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

#[derive(Deserialize)]
struct CdpErrorBody {
    code: i64,
    message: String,
    #[serde(default)]
    data: Option<String>,
}

impl CdpConnection {
    /// Wraps a message transport: `incoming` yields whole JSON messages from the browser,
    /// `outgoing` takes whole JSON messages to it. The connection ends when `incoming`
    /// ends; every pending command then fails at once.
    pub fn new(mut incoming: mpsc::Receiver<String>, outgoing: mpsc::Sender<String>) -> Self {
        let inner = Arc::new(Inner {
            out: outgoing,
            pending: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            browser_events: Mutex::new(None),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            closed_notify: Notify::new(),
            close_reason: Mutex::new(String::new()),
            dropped_events: AtomicU64::new(0),
        });
        let reader = inner.clone();
        tokio::spawn(async move {
            while let Some(text) = incoming.recv().await {
                reader.dispatch(&text);
            }
            reader.shut("the browser connection closed (the browser exited or crashed)");
        });
        CdpConnection { inner }
    }

    /// Events that belong to no page session (Target.* on the browser session).
    pub fn browser_events(&self) -> mpsc::Receiver<CdpEvent> {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        *self.inner.browser_events.lock().unwrap() = Some(tx);
        rx
    }

    /// Routes the events of `session` (a page session) to `sink`.
    pub fn route(&self, session: &str, sink: mpsc::Sender<TabEvent>) {
        self.inner
            .routes
            .lock()
            .unwrap()
            .insert(session.to_string(), Route { sink, child: None });
    }

    pub fn unroute(&self, session: &str) {
        let mut routes = self.inner.routes.lock().unwrap();
        if let Some(route) = routes.remove(session) {
            routes.retain(|_, r| !r.sink.same_channel(&route.sink));
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    pub fn close_reason(&self) -> String {
        self.inner.close_reason.lock().unwrap().clone()
    }

    /// Resolves when the connection has closed.
    pub async fn closed(&self) {
        loop {
            let notified = self.inner.closed_notify.notified();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Sends a command and waits for its result, at most `timeout`.
    pub async fn call_raw(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Box<RawValue>> {
        if self.is_closed() {
            return Err(Error::new(codes::BROWSER_GONE, self.close_reason()));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = serde_json::json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = Value::String(s.to_string());
        }
        let text = msg.to_string();
        let (tx, rx) = oneshot::channel();
        self.inner
            .pending
            .lock()
            .unwrap()
            .insert(id, (method.to_string(), tx));
        // However this call ends (answer, deadline, or the caller giving up), its slot
        // in the pending table goes with it.
        let _slot = PendingSlot {
            inner: &self.inner,
            id,
        };
        if self.inner.out.send(text).await.is_err() {
            return Err(Error::new(codes::BROWSER_GONE, self.close_reason()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(Error::new(codes::BROWSER_GONE, self.close_reason())),
            Err(_) => Err(Error::timeout(format!(
                "the browser did not answer {method} within {} s",
                timeout.as_secs_f32()
            ))),
        }
    }

    pub async fn call<T: DeserializeOwned>(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<T> {
        let raw = self.call_raw(session, method, params, timeout).await?;
        serde_json::from_str(raw.get()).map_err(|e| {
            Error::new(
                codes::CDP_ERROR,
                format!("unexpected answer to {method}: {e}"),
            )
        })
    }

    /// How many events were dropped because a page's queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.inner.dropped_events.load(Ordering::Relaxed)
    }
}

struct PendingSlot<'a> {
    inner: &'a Inner,
    id: u64,
}

impl Drop for PendingSlot<'_> {
    fn drop(&mut self) {
        self.inner.pending.lock().unwrap().remove(&self.id);
    }
}

impl Inner {
    fn shut(&self, reason: &str) {
        {
            let mut r = self.close_reason.lock().unwrap();
            if r.is_empty() {
                *r = reason.to_string();
            }
        }
        self.closed.store(true, Ordering::Release);
        let pending: Vec<_> = self.pending.lock().unwrap().drain().collect();
        for (_, (_, tx)) in pending {
            let _ = tx.send(Err(Error::new(codes::BROWSER_GONE, reason)));
        }
        // Dropping the sinks ends every page's event loop.
        self.routes.lock().unwrap().clear();
        self.browser_events.lock().unwrap().take();
        self.closed_notify.notify_waiters();
    }

    fn dispatch(&self, text: &str) {
        let msg: Incoming = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("unreadable CDP message ({} bytes): {e}", text.len());
                return;
            }
        };
        if let Some(id) = msg.id {
            let Some((method, tx)) = self.pending.lock().unwrap().remove(&id) else {
                return; // late reply after its deadline
            };
            let reply = match (msg.result, msg.error) {
                (_, Some(err)) => Err(cdp_error(&method, err.code, &err.message, err.data)),
                (Some(raw), None) => Ok(raw.to_owned()),
                (None, None) => Ok(RawValue::from_string("{}".into()).unwrap()),
            };
            let _ = tx.send(reply);
            return;
        }
        let Some(method) = msg.method else { return };
        let params = msg.params.unwrap_or(Value::Null);
        match msg.session_id {
            None => {
                let sink = self.browser_events.lock().unwrap().clone();
                if let Some(sink) = sink {
                    self.deliver(
                        &sink,
                        CdpEvent {
                            session: None,
                            method,
                            params,
                        },
                    );
                }
            }
            Some(session) => self.route_event(session, method, params),
        }
    }

    fn route_event(&self, session: String, method: String, params: Value) {
        let (sink, child) = {
            let mut routes = self.routes.lock().unwrap();
            let Some(route) = routes.get(&session) else {
                return;
            };
            let sink = route.sink.clone();
            let child = route.child.clone();
            if method == "Target.attachedToTarget" {
                if let Some(new_session) = params.get("sessionId").and_then(Value::as_str) {
                    routes.insert(
                        new_session.to_string(),
                        Route {
                            sink: sink.clone(),
                            child: Some(new_session.to_string()),
                        },
                    );
                }
            } else if method == "Target.detachedFromTarget"
                && let Some(gone) = params.get("sessionId").and_then(Value::as_str)
            {
                routes.remove(gone);
            }
            (sink, child)
        };
        self.deliver(
            &sink,
            TabEvent::Cdp(CdpEvent {
                session: child,
                method,
                params,
            }),
        );
    }

    fn deliver<E: Dropped>(&self, sink: &mpsc::Sender<E>, ev: E) {
        if let Err(mpsc::error::TrySendError::Full(ev)) = sink.try_send(ev) {
            let n = self.dropped_events.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_power_of_two() {
                tracing::warn!("page event queue full; dropped {} (total {n})", ev.what());
            }
        }
    }
}

/// An event that may be dropped when its queue is full, named in the log.
trait Dropped {
    fn what(&self) -> &str;
}

impl Dropped for CdpEvent {
    fn what(&self) -> &str {
        &self.method
    }
}

impl Dropped for TabEvent {
    fn what(&self) -> &str {
        match self {
            TabEvent::Cdp(e) => &e.method,
            TabEvent::Closed { .. } => "tab closed",
            TabEvent::Lost { .. } => "tab lost",
            TabEvent::TakenBack => "tab taken back",
            TabEvent::Forbidden { .. } => "tab forbidden",
            TabEvent::Attached => "tab attached",
        }
    }
}

/// Turns a CDP error answer into a tool error with a readable message.
pub fn cdp_error(method: &str, code: i64, message: &str, data: Option<String>) -> Error {
    let mut m = format!("{method} failed: {message}");
    if let Some(d) = data {
        m.push_str(&format!(" ({d})"));
    }
    if code == -32000 && message.contains("No node with given id") {
        return Error::new(codes::STALE_REF, m);
    }
    Error::new(codes::CDP_ERROR, m)
}
