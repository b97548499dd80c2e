//! One extension connection: the authenticated hello, the reader and writer loops,
//! request correlation, liveness, and the byte bounds of its queues.
//!
//! Before authentication a connection is served by [`handshake`] alone: one challenge
//! out, one `hello` in (at most [`super::BridgeConfig::max_hello_bytes`] read from the
//! socket, within [`super::BridgeConfig::hello_timeout`]); nothing else is read, sent
//! or acted on. Only a connection whose `hello` proved the secret becomes a
//! [`Connection`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::budget::Budgeted;
use super::codec::{self, Frame};
use super::error::{WireError, codes};
use super::pending::Pending;
use super::{BridgeEvent, PROTOCOL_VERSION, Shared};
use crate::auth;
use crate::registry::unix_ms;

/// Close code sent after a `PROTOCOL_MISMATCH` answer.
pub const CLOSE_PROTOCOL_MISMATCH: u16 = 4001;
/// Close code sent after an `UNAUTHORIZED` answer (the peer did not prove the secret).
pub const CLOSE_UNAUTHORIZED: u16 = 4002;
/// Close code sent when the bridge already serves its maximum of connections.
pub const CLOSE_TOO_MANY: u16 = 4008;

type Ws = WebSocketStream<Budgeted>;

/// An event sent by the extension (`cdp.event`, `tab.closed`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct WireEvent {
    /// The event name.
    pub event: String,
    /// Its parameters (an object).
    pub params: Value,
}

/// An event as it waits in a connection's queue: its parameters still JSON text.
#[derive(Debug)]
struct RawEvent {
    event: String,
    params: Box<RawValue>,
}

impl RawEvent {
    fn bytes(&self) -> usize {
        self.event.len() + self.params.get().len()
    }
}

/// The receiving end of a connection's events (see [`Connection::take_events`]).
#[derive(Debug)]
pub struct EventReceiver {
    rx: mpsc::Receiver<RawEvent>,
    queued: Arc<AtomicUsize>,
}

impl EventReceiver {
    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Result<WireEvent, mpsc::error::TryRecvError> {
        let raw = self.rx.try_recv()?;
        Ok(self.unpack(raw))
    }

    fn unpack(&self, raw: RawEvent) -> WireEvent {
        self.queued.fetch_sub(raw.bytes(), Ordering::Relaxed);
        let params = serde_json::from_str(raw.params.get()).unwrap_or(Value::Null);
        WireEvent {
            event: raw.event,
            params,
        }
    }

    /// The next event, in order; `None` once the connection is gone and every event
    /// was read.
    pub async fn recv(&mut self) -> Option<WireEvent> {
        let raw = self.rx.recv().await?;
        Some(self.unpack(raw))
    }
}

/// The writer's queue: bounded in bytes. A text that does not fit is refused.
#[derive(Debug, Clone)]
struct OutQueue {
    tx: mpsc::UnboundedSender<Outgoing>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

enum QueueError {
    Full(usize),
    Closed,
}

impl OutQueue {
    fn text(&self, t: String) -> Result<(), QueueError> {
        let len = t.len();
        let before = self.queued.fetch_add(len, Ordering::Relaxed);
        if before + len > self.limit {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(QueueError::Full(before));
        }
        self.tx.send(Outgoing::Text(t)).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            QueueError::Closed
        })
    }

    /// Sends `t` if it fits; answers and notices are dropped when the peer does not read.
    fn best_effort(&self, t: String) {
        if let Err(QueueError::Full(n)) = self.text(t) {
            tracing::debug!(queued = n, "write queue full: answer dropped");
        }
    }

    fn close(&self, code: u16, reason: String) {
        let _ = self.tx.send(Outgoing::Close(code, reason));
    }
}

/// What the extension said about itself in `hello`.
#[derive(Debug, Clone)]
struct HelloInfo {
    browser: String,
    profile_id: String,
    extension_version: String,
    /// A browser tabmux launched for its clients (not the user's own).
    managed: bool,
}

enum Outgoing {
    Text(String),
    Close(u16, String),
}

/// One extension connection (one browser profile) that completed `hello`.
///
/// Requests and replies never cross connections: every connection has its own id
/// counter and its own table of pending requests. When the connection closes, every
/// pending request fails at once with `DISCONNECTED`.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    hello: HelloInfo,
    connected_at: Instant,
    connected_unix_ms: u64,
    next_request_id: AtomicU64,
    pending: Pending,
    out: OutQueue,
    events_tx: mpsc::Sender<RawEvent>,
    events_rx: Mutex<Option<EventReceiver>>,
    events_queued: Arc<AtomicUsize>,
    events_limit: usize,
    dropped_events: AtomicU64,
    open: watch::Sender<bool>,
    close_requested: watch::Sender<bool>,
    close_reason: Mutex<Option<String>>,
    max_out: usize,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outgoing::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Outgoing::Close(c, r) => write!(f, "Close({c}, {r:?})"),
        }
    }
}

struct CancelOnDrop<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        self.pending.cancel(self.id);
    }
}

fn mib(bytes: usize) -> String {
    let m = bytes as f64 / (1024.0 * 1024.0);
    if m >= 1.0 {
        format!("{m:.1} MiB")
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

impl Connection {
    /// This connection's id, unique within the bridge, in connect order.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The browser as the extension named it, e.g. `Chrome/156.0.8078.73`.
    pub fn browser(&self) -> &str {
        &self.hello.browser
    }

    /// The browser profile's random id (one extension per profile).
    pub fn profile_id(&self) -> &str {
        &self.hello.profile_id
    }

    /// Whether this is the browser tabmux launched for its clients.
    pub fn managed(&self) -> bool {
        self.hello.managed
    }

    /// The extension's version.
    pub fn extension_version(&self) -> &str {
        &self.hello.extension_version
    }

    /// How long ago `hello` completed.
    pub fn connected_for(&self) -> Duration {
        self.connected_at.elapsed()
    }

    /// When `hello` completed, Unix milliseconds.
    pub fn connected_unix_ms(&self) -> u64 {
        self.connected_unix_ms
    }

    /// Requests sent and not yet answered.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Events dropped because the event channel was full (see [`Connection::take_events`]).
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events.load(Ordering::Relaxed)
    }

    /// Whether the connection is still open.
    pub fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    /// Resolves once the connection has closed (at once if it already has).
    pub async fn closed(&self) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|open| !*open).await;
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.close_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Asks the connection to close (code 1000). Pending requests fail with
    /// `DISCONNECTED`; [`Connection::closed`] resolves when it is done.
    pub fn close(&self) {
        self.close_requested.send_replace(true);
    }

    /// The events the extension sends on this connection, in order. The receiver can be
    /// taken once; later calls return `None`.
    ///
    /// The channel is bounded in count ([`super::BridgeConfig::event_buffer`], 1024 by
    /// default) and in bytes ([`super::BridgeConfig::event_buffer_bytes`], 8 MiB; events
    /// wait as JSON text) so that a consumer that stops reading cannot make the bridge
    /// grow without end. When it is full, the new event is dropped (counted in
    /// [`Connection::dropped_events`], logged at the first drop and every 1000th) and the
    /// connection goes on: replies keep flowing, because the reader never waits on the
    /// event consumer. Events that arrive before the receiver is taken are kept up to
    /// the same bound.
    pub fn take_events(&self) -> Option<EventReceiver> {
        self.events_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn disconnected(&self, why: &str) -> WireError {
        WireError::new(
            codes::DISCONNECTED,
            format!(
                "the connection to the browser ({}, connection {}) closed: {why}",
                self.hello.browser, self.id
            ),
        )
    }

    fn check_size(&self, what: &str, len: usize) -> Result<(), WireError> {
        if len > self.max_out {
            return Err(WireError::new(
                codes::TOO_LARGE,
                format!(
                    "{what} is {} ({len} bytes), over the {} limit for frames to the extension; nothing was sent",
                    mib(len),
                    mib(self.max_out)
                ),
            )
            .with_data(json!({"size": len, "limit": self.max_out})));
        }
        Ok(())
    }

    /// Sends request `method` to the extension and waits for its reply, at most `timeout`.
    ///
    /// - `Ok(result)`: the extension's result.
    /// - `Err` with the extension's code (`TAB_BUSY`, `CDP_ERROR`, …) when it answered
    ///   with an error.
    /// - `TIMEOUT`: no reply within `timeout`; a reply that comes later is dropped.
    /// - `DISCONNECTED`: the connection closed before the reply (failed at once, not
    ///   at the deadline), or was already closed.
    /// - `TOO_LARGE`: the encoded request is over the outgoing limit; nothing was sent.
    /// - `BAD_REQUEST`: the extension's reply to this request was malformed.
    ///
    /// `trace` is the tool call's id, passed on for the extension's logs. Dropping the
    /// future withdraws the request (a later reply is dropped).
    pub async fn request(
        &self,
        method: &str,
        params: Value,
        trace: Option<&str>,
        timeout: Duration,
    ) -> Result<Value, WireError> {
        let raw = self.request_raw(method, params, trace, timeout).await?;
        serde_json::from_str(raw.get()).map_err(|e| {
            WireError::bad_request(format!(
                "the extension's reply to `{method}` is not JSON: {e}"
            ))
        })
    }

    /// Like [`Connection::request`], with the reply's `result` as JSON text.
    pub async fn request_raw(
        &self,
        method: &str,
        params: Value,
        trace: Option<&str>,
        timeout: Duration,
    ) -> Result<Box<serde_json::value::RawValue>, WireError> {
        let id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let text = codec::encode_request(id, method, &params, trace);
        drop(params);
        self.check_size(&format!("request `{method}`"), text.len())?;
        let mut rx = self.pending.register(id)?;
        let _withdraw = CancelOnDrop {
            pending: &self.pending,
            id,
        };
        tracing::debug!(
            conn = self.id,
            id,
            method,
            bytes = text.len(),
            trace,
            "request"
        );
        match self.out.text(text) {
            Ok(()) => {}
            Err(QueueError::Closed) => {
                return Err(self.disconnected("the socket writer has stopped"));
            }
            Err(QueueError::Full(n)) => return Err(self.queue_full(method, n)),
        }
        match tokio::time::timeout(timeout, &mut rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(self.disconnected("the request was dropped")),
            Err(_) => {
                if self.pending.cancel(id) {
                    tracing::debug!(conn = self.id, id, method, "request timed out");
                    Err(WireError::new(
                        codes::TIMEOUT,
                        format!(
                            "no reply to `{method}` from the extension ({}) within {} ms",
                            self.hello.browser,
                            timeout.as_millis()
                        ),
                    ))
                } else {
                    // Resolved in the same instant; the outcome is already in `rx`.
                    rx.try_recv()
                        .unwrap_or_else(|_| Err(self.disconnected("the request was dropped")))
                }
            }
        }
    }

    /// Sends event `event` to the extension (no reply). Fails with `TOO_LARGE` (nothing
    /// sent) or `DISCONNECTED`.
    pub fn notify(&self, event: &str, params: Value) -> Result<(), WireError> {
        let text = codec::encode_event(event, &params);
        self.check_size(&format!("event `{event}`"), text.len())?;
        if !self.is_open() {
            return Err(self.disconnected("already closed"));
        }
        self.out.text(text).map_err(|e| match e {
            QueueError::Closed => self.disconnected("the socket writer has stopped"),
            QueueError::Full(n) => self.queue_full(event, n),
        })
    }

    fn queue_full(&self, what: &str, queued: usize) -> WireError {
        WireError::new(
            codes::TOO_LARGE,
            format!(
                "`{what}` not sent: {} already wait to be written to the extension (limit {}); \
                 the extension is not reading",
                mib(queued),
                mib(self.out.limit)
            ),
        )
    }

    fn deliver_event(&self, event: RawEvent) {
        let len = event.bytes();
        let before = self.events_queued.fetch_add(len, Ordering::Relaxed);
        let sent = if before + len > self.events_limit {
            Err(mpsc::error::TrySendError::Full(event))
        } else {
            self.events_tx.try_send(event)
        };
        if sent.is_err() {
            self.events_queued.fetch_sub(len, Ordering::Relaxed);
        }
        match sent {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                let dropped = self.dropped_events.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped == 1 || dropped.is_multiple_of(1000) {
                    tracing::warn!(
                        conn = self.id,
                        event = %ev.event,
                        dropped,
                        "event channel full: dropping events"
                    );
                }
            }
            // The consumer dropped its receiver: it does not want events.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Why the socket loop ended, and what close frame to send (if any).
struct Ending {
    reason: String,
    close: Option<(u16, String)>,
}

impl Ending {
    fn new(reason: impl Into<String>, close: Option<(u16, &str)>) -> Self {
        Self {
            reason: reason.into(),
            close: close.map(|(c, r)| (c, r.to_owned())),
        }
    }
}

/// What an authenticated `hello` told, and what tabmux answers it with.
pub(crate) struct Authenticated {
    info: HelloInfo,
    reply: String,
}

/// Logs why a handshake failed.
fn fail_handshake(why: &str) -> Option<Authenticated> {
    tracing::info!(reason = why, "extension handshake failed");
    None
}

/// Serves a connection from just after the upgrade until `hello` proved the secret:
/// sends the challenge, reads at most one `hello` (answering anything else with
/// `BAD_REQUEST`), checks version and proof. Returns `None` (after closing) when the
/// peer did not authenticate in time.
pub(crate) async fn handshake(ws: &mut Ws, shared: &Shared) -> Option<Authenticated> {
    let cfg = &shared.cfg;
    let deadline = tokio::time::Instant::now() + cfg.hello_timeout;
    let Ok(tabmux_nonce) = auth::nonce() else {
        return fail_handshake("no randomness for a nonce");
    };
    let challenge = codec::encode_event(
        "challenge",
        &json!({"protocol": PROTOCOL_VERSION, "nonce": tabmux_nonce}),
    );
    let step = async {
        ws.send(Message::text(challenge)).await.ok()?;
        loop {
            let msg = match ws.next().await {
                None => return None,
                Some(Err(e)) => return Some(Err(ending_for_error(e, cfg.max_hello_bytes))),
                Some(Ok(m)) => m,
            };
            let text = match msg {
                Message::Text(t) => t,
                Message::Binary(_) => {
                    let err = WireError::bad_request(
                        "binary frames are not part of the tabmux protocol; send JSON in text frames",
                    );
                    ws.send(Message::text(codec::protocol_error_event(&err)))
                        .await
                        .ok()?;
                    continue;
                }
                Message::Close(_) => return None,
                _ => continue,
            };
            match check_hello(shared, &tabmux_nonce, text.as_str()) {
                HelloOutcome::Answer(t) => ws.send(Message::text(t)).await.ok()?,
                HelloOutcome::Refuse(t, ending) => {
                    let _ = ws.send(Message::text(t)).await;
                    return Some(Err(ending));
                }
                HelloOutcome::Ready(a) => return Some(Ok(a)),
            }
        }
    };
    let ending = match tokio::time::timeout_at(deadline, step).await {
        Ok(Some(Ok(a))) => return Some(a),
        Ok(None) => return fail_handshake("the peer left"),
        Ok(Some(Err(e))) => e,
        Err(_) => Ending::new(
            format!(
                "no authenticated hello within {} ms",
                cfg.hello_timeout.as_millis()
            ),
            Some((1008, "no hello")),
        ),
    };
    if let Some((code, reason)) = ending.close {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.send(Message::Close(Some(frame))))
            .await;
    }
    fail_handshake(&ending.reason)
}

enum HelloOutcome {
    /// Not a `hello`: answer and keep waiting.
    Answer(String),
    /// A failed `hello`: answer, then close.
    Refuse(String, Ending),
    Ready(Authenticated),
}

fn check_hello(shared: &Shared, tabmux_nonce: &str, text: &str) -> HelloOutcome {
    let (id, params) = match codec::decode(text) {
        Err(e) => return HelloOutcome::Answer(codec::bad_request_answer(&e)),
        Ok(Frame::Request { id, method, .. }) if method != "hello" => {
            return HelloOutcome::Answer(codec::encode_error(
                id,
                &WireError::bad_request(format!(
                    "`{method}` before `hello`: the first request on a connection must be `hello`"
                )),
            ));
        }
        Ok(Frame::Request { id, params, .. }) => (id, params),
        Ok(_) => {
            return HelloOutcome::Answer(codec::protocol_error_event(&WireError::bad_request(
                "the first request on a connection must be `hello`",
            )));
        }
    };
    let Some(protocol) = params.get("protocol").and_then(Value::as_u64) else {
        return HelloOutcome::Answer(codec::encode_error(
            id,
            &WireError::bad_request("hello: \"protocol\" must be a non-negative integer"),
        ));
    };
    let identity = shared.identity();
    if protocol != PROTOCOL_VERSION {
        let err = mismatch_error(protocol, &identity.version);
        tracing::warn!(
            extension = protocol,
            tabmux = PROTOCOL_VERSION,
            "protocol mismatch"
        );
        return HelloOutcome::Refuse(
            codec::encode_error(id, &err),
            Ending::new(
                err.message.clone(),
                Some((CLOSE_PROTOCOL_MISMATCH, "protocol mismatch")),
            ),
        );
    }
    let ext_nonce = params.get("nonce").and_then(Value::as_str).unwrap_or("");
    let proof = params.get("proof").and_then(Value::as_str).unwrap_or("");
    let port = shared.port;
    if !auth::is_nonce(ext_nonce)
        || !shared.cfg.secret.verify(
            auth::LABEL_EXTENSION,
            &[tabmux_nonce, ext_nonce, &port.to_string()],
            proof,
        )
    {
        let err = WireError::new(
            codes::UNAUTHORIZED,
            "hello: the extension did not prove this tabmux's secret. It belongs to another \
             tabmux installation (another user or state directory): reinstall it with \
             `tabmux extension install DIR` and reload it, or, for a paired copy, pair it \
             again with the code of `tabmux extension pair`",
        );
        return HelloOutcome::Refuse(
            codec::encode_error(id, &err),
            Ending::new(
                "hello without a valid proof",
                Some((CLOSE_UNAUTHORIZED, "not authenticated")),
            ),
        );
    }
    if shared.connections().len() >= shared.cfg.max_connections {
        let err = WireError::new(
            codes::TOO_LARGE,
            format!(
                "this tabmux already serves {} browser connections",
                shared.cfg.max_connections
            ),
        );
        return HelloOutcome::Refuse(
            codec::encode_error(id, &err),
            Ending::new(
                "too many connections",
                Some((CLOSE_TOO_MANY, "too many connections")),
            ),
        );
    }
    HelloOutcome::Ready(Authenticated {
        info: hello_info(&params),
        reply: codec::encode_reply(
            id,
            &json!({
                "protocol": PROTOCOL_VERSION,
                "proof": auth::tabmux_proof(&shared.cfg.secret, tabmux_nonce, ext_nonce, port, &identity.instance_id),
                "instanceId": identity.instance_id,
                "name": identity.name,
                "pid": identity.pid,
                "version": identity.version,
                "leaseMs": identity.lease_ms,
                "graceMs": identity.grace_ms,
                "userTabs": identity.user_tabs,
            }),
        ),
    })
}

fn mismatch_error(protocol: u64, version: &str) -> WireError {
    let update = if protocol > PROTOCOL_VERSION {
        "update tabmux"
    } else {
        "update the tabmux extension"
    };
    WireError::new(
        codes::PROTOCOL_MISMATCH,
        format!(
            "the extension speaks wire protocol {protocol}, tabmux {version} speaks protocol {PROTOCOL_VERSION}: {update}"
        ),
    )
    .with_data(json!({"tabmux": PROTOCOL_VERSION, "extension": protocol}))
}

fn hello_info(params: &Value) -> HelloInfo {
    let text_param = |key: &str| {
        params
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .chars()
            .take(200)
            .collect::<String>()
    };
    HelloInfo {
        browser: text_param("browser"),
        profile_id: text_param("profileId"),
        extension_version: text_param("extensionVersion"),
        managed: params
            .get("managed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

/// The writer task: sends the queue's frames in order (each leaves the byte count as
/// it is written); ends after a close frame or a failed write, then says so.
fn spawn_writer(
    mut sink: futures_util::stream::SplitSink<Ws, Message>,
    mut out_rx: mpsc::UnboundedReceiver<Outgoing>,
    queued: Arc<AtomicUsize>,
) -> (tokio::task::JoinHandle<()>, watch::Receiver<bool>) {
    let (done_tx, done_rx) = watch::channel(false);
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            let result = match msg {
                Outgoing::Text(t) => {
                    let len = t.len();
                    let r = sink.send(Message::text(t)).await;
                    queued.fetch_sub(len, Ordering::Relaxed);
                    r
                }
                Outgoing::Close(code, reason) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
                    break;
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "socket write failed");
                break;
            }
        }
        done_tx.send_replace(true);
    });
    (writer, done_rx)
}

/// Runs one authenticated WebSocket: answers its `hello`, registers the
/// [`Connection`], and serves it to its end.
pub(crate) async fn run_socket(
    ws: Ws,
    authenticated: Authenticated,
    shared: Arc<Shared>,
    peer: std::net::SocketAddr,
) {
    let (sink, mut stream) = ws.split();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Outgoing>();
    let queued = Arc::new(AtomicUsize::new(0));
    let out = OutQueue {
        tx: out_tx,
        queued: queued.clone(),
        limit: shared
            .cfg
            .max_queued_out_bytes
            .max(shared.cfg.max_out_bytes),
    };
    let (writer, mut writer_done) = spawn_writer(sink, out_rx, queued);

    let cfg = &shared.cfg;
    let mut shutdown = shared.shutdown.subscribe();
    let mut last_rx = tokio::time::Instant::now();
    let _ = out.text(authenticated.reply);
    let conn = register(&shared, authenticated.info, out.clone());
    let mut close_requested = conn.close_requested.subscribe();
    tracing::info!(
        conn = conn.id, %peer, browser = %conn.hello.browser,
        profile = %conn.hello.profile_id, "extension connected"
    );
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + cfg.ping_interval,
        cfg.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let ending: Ending = loop {
        tokio::select! {
            biased;
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                break Ending::new("tabmux is shutting down", Some((1001, "tabmux is shutting down")));
            }
            _ = async { let _ = close_requested.wait_for(|c| *c).await; } => {
                break Ending::new("closed by tabmux", Some((1000, "closed by tabmux")));
            }
            _ = async { let _ = writer_done.wait_for(|d| *d).await; } => {
                break Ending::new("the socket could not be written", None);
            }
            _ = tokio::time::sleep_until(last_rx + cfg.idle_timeout) => {
                break Ending::new(
                    format!("no frame from the extension for {} s", cfg.idle_timeout.as_secs()),
                    Some((1000, "idle")),
                );
            }
            _ = ping.tick() => {
                let c = conn.clone();
                let wait = cfg.idle_timeout;
                tokio::spawn(async move {
                    if let Err(e) = c.request("ping", json!({}), None, wait).await {
                        tracing::debug!(conn = c.id, error = %e, "ping failed");
                    }
                });
            }
            msg = stream.next() => {
                let msg = match msg {
                    None => break Ending::new("the extension closed the connection", None),
                    Some(Err(e)) => break ending_for_error(e, cfg.max_in_bytes),
                    Some(Ok(m)) => m,
                };
                last_rx = tokio::time::Instant::now();
                let text = match msg {
                    Message::Text(t) => t,
                    Message::Binary(b) => {
                        tracing::debug!(bytes = b.len(), "binary frame refused");
                        let err = WireError::bad_request(
                            "binary frames are not part of the tabmux protocol; send JSON in text frames",
                        );
                        out.best_effort(codec::protocol_error_event(&err));
                        continue;
                    }
                    Message::Close(frame) => {
                        let why = match frame {
                            Some(f) => format!("the extension closed the connection ({} {})", u16::from(f.code), f.reason),
                            None => "the extension closed the connection".to_owned(),
                        };
                        break Ending::new(why, None);
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                };
                handle_frame(&conn, &out, text.as_str());
            }
        }
    };

    tracing::info!(conn = conn.id, reason = %ending.reason, "extension connection closed");
    let failed = conn.pending.close(conn.disconnected(&ending.reason));
    if failed > 0 {
        tracing::debug!(conn = conn.id, failed, "failed pending requests");
    }
    *conn.close_reason.lock().unwrap_or_else(|p| p.into_inner()) = Some(ending.reason.clone());
    shared.remove(conn.id);
    conn.open.send_replace(false);
    if let Some((code, reason)) = ending.close {
        out.close(code, reason);
    }
    drop(out);
    // Give the writer a moment to flush the close frame; then drop both halves.
    let _ = tokio::time::timeout(Duration::from_secs(3), writer).await;
    drop(stream);
}

fn ending_for_error(e: WsError, max_in: usize) -> Ending {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            tracing::warn!(size, max_size, "incoming frame over the limit");
            Ending::new(
                format!(
                    "the extension sent a frame of {} (limit {})",
                    mib(size),
                    mib(max_size)
                ),
                Some((1009, &format!("frame over the {} limit", mib(max_in)))),
            )
        }
        WsError::Utf8(_) => Ending::new(
            "the extension sent a text frame that is not UTF-8",
            Some((1007, "invalid UTF-8")),
        ),
        WsError::Protocol(p) => Ending::new(
            format!("WebSocket protocol error: {p}"),
            Some((1002, "protocol error")),
        ),
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            Ending::new("the extension closed the connection", None)
        }
        WsError::Io(e) if super::budget::is_over_budget(&e) => Ending::new(
            format!("before authenticating, the peer sent {e}"),
            Some((1009, "hello over its size limit")),
        ),
        other => Ending::new(format!("socket error: {other}"), None),
    }
}

fn register(shared: &Arc<Shared>, hello: HelloInfo, out: OutQueue) -> Arc<Connection> {
    let (events_tx, events_rx) = mpsc::channel(shared.cfg.event_buffer.max(1));
    let events_queued = Arc::new(AtomicUsize::new(0));
    let conn = Arc::new(Connection {
        id: shared.next_conn_id.fetch_add(1, Ordering::Relaxed),
        hello,
        connected_at: Instant::now(),
        connected_unix_ms: unix_ms(),
        next_request_id: AtomicU64::new(1),
        pending: Pending::new(),
        out,
        events_tx,
        events_rx: Mutex::new(Some(EventReceiver {
            rx: events_rx,
            queued: events_queued.clone(),
        })),
        events_queued,
        events_limit: shared.cfg.event_buffer_bytes,
        dropped_events: AtomicU64::new(0),
        open: watch::Sender::new(true),
        close_requested: watch::Sender::new(false),
        close_reason: Mutex::new(None),
        max_out: shared.cfg.max_out_bytes,
    });
    shared.add(conn.clone());
    conn
}

/// A reply, read without building its `result` (a CDP answer can be megabytes).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FastReply<'a> {
    id: u64,
    #[serde(borrow)]
    result: &'a serde_json::value::RawValue,
}

/// An event, read without building its `params` (kept as JSON text until consumed).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FastEvent<'a> {
    event: String,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

fn handle_frame(conn: &Connection, out: &OutQueue, text: &str) {
    let send = |t: String| out.best_effort(t);
    if let Ok(ev) = serde_json::from_str::<FastEvent>(text)
        && !ev.event.is_empty()
        && ev.event != codec::PROTOCOL_ERROR_EVENT
        && ev
            .params
            .is_none_or(|p| p.get().starts_with('{') || p.get() == "null")
    {
        let params = match ev.params {
            Some(p) if p.get() != "null" => p.to_owned(),
            _ => RawValue::from_string("{}".into()).expect("{} is JSON"),
        };
        conn.deliver_event(RawEvent {
            event: ev.event,
            params,
        });
        return;
    }
    if let Ok(reply) = serde_json::from_str::<FastReply>(text)
        && reply.id > 0
    {
        if !conn.pending.resolve(reply.id, Ok(reply.result.to_owned())) {
            tracing::debug!(
                conn = conn.id,
                id = reply.id,
                "late or unknown reply dropped"
            );
        }
        return;
    }
    match codec::decode(text) {
        Err(e) => {
            tracing::debug!(conn = conn.id, bytes = text.len(), error = %e, "malformed frame");
            if let Some(id) = e.reply_id
                && conn.pending.resolve(
                    id,
                    Err(WireError::bad_request(format!(
                        "the extension's reply was malformed: {}",
                        e.message
                    ))),
                )
            {
                tracing::debug!(conn = conn.id, id, "failed request on malformed reply");
            }
            send(codec::bad_request_answer(&e));
        }
        Ok(Frame::Request { id, method, .. }) => match method.as_str() {
            "ping" => send(codec::encode_reply(id, &json!({}))),
            "hello" => send(codec::encode_error(
                id,
                &WireError::bad_request("`hello` was already done on this connection"),
            )),
            other => send(codec::encode_error(
                id,
                &WireError::bad_request(format!(
                    "unknown method `{other}`: tabmux answers `hello` and `ping`"
                )),
            )),
        },
        Ok(Frame::Reply { id, result }) => {
            let raw = serde_json::value::RawValue::from_string(result.to_string())
                .expect("a JSON value serializes to JSON");
            if !conn.pending.resolve(id, Ok(raw)) {
                tracing::debug!(conn = conn.id, id, "late or unknown reply dropped");
            }
        }
        Ok(Frame::Error { id, error }) => {
            if !conn.pending.resolve(id, Err(error)) {
                tracing::debug!(conn = conn.id, id, "late or unknown error reply dropped");
            }
        }
        Ok(Frame::Event { event, params }) => {
            if event == codec::PROTOCOL_ERROR_EVENT {
                let code = params.get("code").and_then(|c| c.as_str()).unwrap_or("");
                tracing::warn!(
                    conn = conn.id,
                    code,
                    "the extension reports a protocol error"
                );
            }
            let params = RawValue::from_string(params.to_string()).expect("a JSON value is JSON");
            conn.deliver_event(RawEvent { event, params });
        }
    }
}

impl Shared {
    fn add(&self, conn: Arc<Connection>) {
        let id = conn.id;
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        let _ = self.events.send(BridgeEvent::Connected(id));
    }

    fn remove(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|c| c.id != id);
        let _ = self.events.send(BridgeEvent::Disconnected(id));
    }
}
