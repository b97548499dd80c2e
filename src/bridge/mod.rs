//! The bridge: the endpoint the tabmux extension connects to (`docs/PROTOCOL.md`).
//!
//! One accept loop serves the port this instance claimed in the [registry]:
//!
//! - `GET /tabmux`: the discovery probe, which says only "a tabmux is here" and its
//!   protocol version;
//! - `GET /tabmux/status` and `GET /tabmux/tabs`: this instance and its browsers, and
//!   the held tabs, for `tabmux status` — only for a request signed with the secret
//!   ([`crate::auth::status_authorization`]), else `401`;
//! - `GET /extension` with a WebSocket upgrade: an extension connection, one per
//!   browser profile, only from the configured extension origin;
//! - anything else: `404`. Request heads are read by hand, at most 8 KiB (`431`)
//!   within 5 s (`408`); `Host` must be `127.0.0.1:<port>` or `localhost:<port>`
//!   (`403`, against DNS rebinding).
//!
//! Each WebSocket must authenticate first: tabmux sends a challenge, the extension's
//! `hello` proves the secret and tabmux's answer proves it back ([`crate::auth`]).
//! Until then nothing else is read (16 KiB at most), sent or acted on. Connections that
//! have not authenticated are capped ([`BridgeConfig::max_preauth`], the oldest is
//! closed to make room) and so are authenticated ones
//! ([`BridgeConfig::max_connections`]). Then both sides send requests, replies and
//! events (see [`codec`]); the write queue and the event queue are bounded in bytes.
//! The rest of tabmux uses:
//!
//! - [`Bridge::wait_for_connection`] / [`Bridge::connections`] to find a browser;
//! - [`Connection::request`] to send a request and await its reply (with a deadline);
//! - [`Connection::take_events`] for the extension's events;
//! - [`Bridge::subscribe`] to learn about connects and disconnects;
//! - [`Bridge::set_name`] when the MCP client names itself.
//!
//! Nothing is shared between connections: each has its own request ids, pending
//! table and event channel. Logging goes through `tracing` only (stdout belongs to
//! MCP), and logs methods and sizes, never payloads.
//!
//! [registry]: crate::registry

mod budget;
pub mod codec;
mod connection;
pub mod error;
mod http;
pub mod pending;
mod status;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Notify, broadcast, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::auth::{self, Secret};
pub use connection::{
    CLOSE_PROTOCOL_MISMATCH, CLOSE_TOO_MANY, CLOSE_UNAUTHORIZED, Connection, EventReceiver,
    WireEvent,
};
pub use error::{WireError, codes};
pub use status::{
    BrowserStatus, HeldTab, HeldTabs, InstanceStatus, StaleEntry, StatusReport, fetch_json,
    fetch_probe, fetch_status, status_report,
};

/// The wire protocol version this tabmux speaks.
pub const PROTOCOL_VERSION: u64 = 1;

/// The lock lease an instance asks for unless told otherwise, milliseconds.
pub const DEFAULT_LEASE_MS: u64 = 60_000;

/// How long the extension keeps an instance's tabs after its connection drops unless
/// told otherwise, milliseconds.
pub const DEFAULT_GRACE_MS: u64 = 5_000;

/// The id of the tabmux extension loaded unpacked (follows from the `key` in its
/// manifest): `tabmux extension install`, and the shared browser.
pub const DEFAULT_EXTENSION_ID: &str = "knlmfncphidfkjhbiidejbkkebcfedhd";

/// The id the Chrome Web Store gives the published extension (the store signs it with
/// its own key, so the id differs from [`DEFAULT_EXTENSION_ID`]); `None` until it is
/// published.
pub const STORE_EXTENSION_ID: Option<&str> = None;

/// The extension ids tabmux accepts unless told otherwise (`--extension-id`).
pub fn known_extension_ids() -> Vec<&'static str> {
    std::iter::once(DEFAULT_EXTENSION_ID)
        .chain(STORE_EXTENSION_ID)
        .collect()
}

/// The `Origin` a Chrome extension's service worker sends: `chrome-extension://<id>`.
pub fn extension_origin(extension_id: &str) -> String {
    format!("chrome-extension://{extension_id}")
}

/// Whether `id` looks like a Chrome extension id (32 letters `a`–`p`).
pub fn is_extension_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| (b'a'..=b'p').contains(&b))
}

/// Who this tabmux instance is, as told to the extension (`hello`) and the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Random id of this run (the extension recognises a restart by a new id).
    pub instance_id: String,
    /// Process id.
    pub pid: u32,
    /// tabmux version.
    pub version: String,
    /// The MCP client's name; changeable with [`Bridge::set_name`].
    pub name: String,
    /// Lock lease for this instance's tabs, milliseconds.
    pub lease_ms: u64,
    /// Grace period for a reconnect after a disconnect, milliseconds.
    pub grace_ms: u64,
    /// What this instance may do with the user's own tabs: `ask` (the user is asked
    /// per tab), `allow` or `deny`.
    pub user_tabs: String,
}

impl Identity {
    /// This process, this crate's version, lease 60 s, grace 5 s, user tabs `ask`.
    pub fn new(instance_id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            instance_id: instance_id.into(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            name: name.into(),
            lease_ms: DEFAULT_LEASE_MS,
            grace_ms: DEFAULT_GRACE_MS,
            user_tabs: "ask".to_owned(),
        }
    }
}

/// Settings of the bridge. `Default` gives the protocol's values (and a random secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// The secret the extension must prove (and tabmux proves back); tabmux uses the
    /// state directory's ([`crate::auth::load_or_create`]).
    pub secret: Secret,
    /// The only `Origin` allowed to open the WebSocket (and the only one, besides
    /// none at all, allowed to read the probe).
    /// Default: `chrome-extension://knlmfncphidfkjhbiidejbkkebcfedhd`.
    pub allowed_origin: String,
    /// More `Origin`s allowed like `allowed_origin` (the same extension under other
    /// ids, such as the Web Store's). Default: the Web Store id, once there is one.
    pub other_origins: Vec<String>,
    /// Largest frame accepted from the extension; a larger one closes the connection
    /// with 1009. Default 64 MiB.
    pub max_in_bytes: usize,
    /// Largest frame sent to the extension; a larger request fails with `TOO_LARGE`
    /// and nothing is sent. Default 16 MiB.
    pub max_out_bytes: usize,
    /// How often tabmux pings each connection. Default 20 s.
    pub ping_interval: Duration,
    /// A connection that sends no frame at all for this long is closed. Default 60 s.
    pub idle_timeout: Duration,
    /// A connection that has not completed an authenticated `hello` this long after
    /// the upgrade is closed (1008). Default 5 s.
    pub hello_timeout: Duration,
    /// Most bytes read from a WebSocket before it authenticated (more closes it with
    /// 1009). Default 16 KiB.
    pub max_hello_bytes: usize,
    /// Most connections (HTTP requests and WebSockets) not yet authenticated at once;
    /// a new one closes the oldest. Default 8.
    pub max_preauth: usize,
    /// Most authenticated extension connections; a `hello` past it is refused (4008).
    /// Default 32.
    pub max_connections: usize,
    /// Most bytes waiting to be written to one connection; a request that does not fit
    /// fails with `TOO_LARGE`. Default 24 MiB (at least `max_out_bytes`).
    pub max_queued_out_bytes: usize,
    /// Most bytes of events waiting for their consumer, per connection. Default 8 MiB.
    pub event_buffer_bytes: usize,
    /// Deadline for a whole HTTP request head. Default 5 s.
    pub head_timeout: Duration,
    /// Largest HTTP request head. Default 8 KiB.
    pub max_head_bytes: usize,
    /// Capacity of each connection's event channel (see [`Connection::take_events`]).
    /// Default 1024.
    pub event_buffer: usize,
}

impl BridgeConfig {
    /// Whether `origin` is the extension's (one of its ids).
    pub fn allows(&self, origin: &str) -> bool {
        origin == self.allowed_origin || self.other_origins.iter().any(|o| o == origin)
    }
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            secret: Secret::generate().unwrap_or_else(|_| fallback_secret()),
            allowed_origin: extension_origin(DEFAULT_EXTENSION_ID),
            other_origins: STORE_EXTENSION_ID
                .map(extension_origin)
                .into_iter()
                .collect(),
            max_in_bytes: 64 << 20,
            max_out_bytes: 16 << 20,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            hello_timeout: Duration::from_secs(5),
            max_hello_bytes: 16 << 10,
            max_preauth: 8,
            max_connections: 32,
            max_queued_out_bytes: 24 << 20,
            event_buffer_bytes: 8 << 20,
            head_timeout: Duration::from_secs(5),
            max_head_bytes: 8 << 10,
            event_buffer: 1024,
        }
    }
}

/// A secret when the OS gives no randomness (never expected): hashed from the
/// standard library's randomly seeded hasher, the clock and the pid.
fn fallback_secret() -> Secret {
    let id = format!(
        "{}{}",
        crate::registry::new_instance_id(),
        crate::registry::new_instance_id()
    );
    Secret::from_hex(&id).unwrap_or_else(|| Secret::from_bytes([0x5a; 32]))
}

/// A change in the set of connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeEvent {
    /// A connection completed `hello` ([`Connection::id`]).
    Connected(u64),
    /// A connection closed.
    Disconnected(u64),
}

pub(crate) struct Shared {
    identity: Mutex<Identity>,
    cfg: BridgeConfig,
    port: u16,
    started: Instant,
    conns: Mutex<Vec<Arc<Connection>>>,
    events: broadcast::Sender<BridgeEvent>,
    next_conn_id: AtomicU64,
    shutdown: watch::Sender<bool>,
    preauth: Mutex<PreAuth>,
    /// Nonces of signed status requests seen lately (each is good once).
    status_nonces: Mutex<VecDeque<String>>,
}

/// The connections that have not authenticated, oldest first.
#[derive(Default)]
struct PreAuth {
    next: u64,
    slots: VecDeque<(u64, Arc<Notify>)>,
}

/// A connection's place among the unauthenticated ones; leaves it when dropped.
struct PreAuthSlot {
    shared: Arc<Shared>,
    id: u64,
    evicted: Arc<Notify>,
}

impl Drop for PreAuthSlot {
    fn drop(&mut self) {
        self.shared
            .preauth
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .slots
            .retain(|(id, _)| *id != self.id);
    }
}

impl Shared {
    /// Takes a place among the unauthenticated connections, closing the oldest when
    /// all places are taken.
    fn enter_preauth(self: &Arc<Self>) -> PreAuthSlot {
        let mut p = self.preauth.lock().unwrap_or_else(|p| p.into_inner());
        while p.slots.len() >= self.cfg.max_preauth.max(1) {
            if let Some((_, oldest)) = p.slots.pop_front() {
                oldest.notify_one();
            }
        }
        p.next += 1;
        let id = p.next;
        let evicted = Arc::new(Notify::new());
        p.slots.push_back((id, evicted.clone()));
        PreAuthSlot {
            shared: self.clone(),
            id,
            evicted,
        }
    }

    fn identity(&self) -> Identity {
        self.identity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn connections(&self) -> Vec<Arc<Connection>> {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|c| c.is_open())
            .cloned()
            .collect()
    }
}

/// The running bridge. Cheap to clone; all clones are the same bridge.
#[derive(Clone)]
pub struct Bridge {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("port", &self.shared.port)
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Starts serving `listener` (a `127.0.0.1` listener, e.g. from
    /// [`crate::registry::PortClaim::take_listener`]) on the current tokio runtime.
    ///
    /// The bridge runs until [`Bridge::shutdown`] or until the runtime stops; dropping
    /// the last `Bridge` clone does not stop it. Fails if there is no current runtime
    /// or the listener cannot be made non-blocking or converted.
    pub fn start(
        listener: std::net::TcpListener,
        identity: Identity,
        cfg: BridgeConfig,
    ) -> std::io::Result<Bridge> {
        let handle = tokio::runtime::Handle::try_current().map_err(|e| {
            std::io::Error::other(format!("Bridge::start needs a tokio runtime: {e}"))
        })?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let listener = {
            let _enter = handle.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            identity: Mutex::new(identity),
            cfg,
            port,
            started: Instant::now(),
            conns: Mutex::new(Vec::new()),
            events,
            next_conn_id: AtomicU64::new(1),
            shutdown: watch::Sender::new(false),
            preauth: Mutex::new(PreAuth::default()),
            status_nonces: Mutex::new(VecDeque::new()),
        });
        let accept_shared = shared.clone();
        handle.spawn(accept_loop(listener, accept_shared));
        tracing::info!(port, "bridge listening");
        Ok(Bridge { shared })
    }

    /// The port served.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// A copy of the current identity.
    pub fn identity(&self) -> Identity {
        self.shared.identity()
    }

    /// The open, `hello`-completed connections, in connect order.
    pub fn connections(&self) -> Vec<Arc<Connection>> {
        self.shared.connections()
    }

    /// The primary connection: the first connected that is still open. Waits up to
    /// `timeout` for one; `None` if none came.
    pub async fn wait_for_connection(&self, timeout: Duration) -> Option<Arc<Connection>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = self.subscribe();
        loop {
            if let Some(c) = self.connections().into_iter().next() {
                return Some(c);
            }
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => return None,
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Changes the instance's name and sends `instance.updated {"name"}` to every
    /// connection. The probe and later `hello`s carry the new name.
    pub fn set_name(&self, name: &str) {
        self.shared
            .identity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .name = name.to_owned();
        for c in self.connections() {
            if let Err(e) = c.notify("instance.updated", json!({ "name": name })) {
                tracing::debug!(conn = c.id(), error = %e, "instance.updated not sent");
            }
        }
    }

    /// Connect and disconnect notices. A receiver that lags loses the oldest notices
    /// (`RecvError::Lagged`); [`Bridge::connections`] always has the truth.
    pub fn subscribe(&self) -> broadcast::Receiver<BridgeEvent> {
        self.shared.events.subscribe()
    }

    /// The probe's JSON, as `GET /tabmux` answers it: `{"tabmux":1,"protocol":1}` and
    /// nothing else (no name, id or browsers: anyone may ask).
    pub fn probe(&self) -> Value {
        probe_json()
    }

    /// What a signed `GET /tabmux/status` answers:
    /// `{"tabmux":1,"protocol":1,"instanceId","name","pid","version","port","uptimeMs",
    /// "leaseMs","graceMs","browsers":[{"connectionId","browser","profileId",
    /// "extensionVersion","connectedMs"}]}` (`connectedMs`: how long it has been connected).
    pub fn status(&self) -> Value {
        status_json(&self.shared)
    }

    /// Stops accepting, and closes every connection (1001); their pending requests fail
    /// with `DISCONNECTED`. The port stays bound until the runtime drops the listener.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }
}

fn probe_json() -> Value {
    json!({"tabmux": 1, "protocol": PROTOCOL_VERSION})
}

fn status_json(shared: &Shared) -> Value {
    let identity = shared.identity();
    let browsers: Vec<Value> = shared
        .connections()
        .iter()
        .map(|c| {
            json!({
                "connectionId": c.id(),
                "browser": c.browser(),
                "profileId": c.profile_id(),
                "extensionVersion": c.extension_version(),
                "connectedMs": c.connected_for().as_millis() as u64,
            })
        })
        .collect();
    json!({
        "tabmux": 1,
        "protocol": PROTOCOL_VERSION,
        "instanceId": identity.instance_id,
        "name": identity.name,
        "pid": identity.pid,
        "version": identity.version,
        "port": shared.port,
        "uptimeMs": shared.started.elapsed().as_millis() as u64,
        "leaseMs": identity.lease_ms,
        "graceMs": identity.grace_ms,
        "browsers": browsers,
    })
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(serve_tcp(stream, peer, shared.clone()));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    tracing::info!(port = shared.port, "bridge stopped accepting");
}

fn host_ok(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    p == port.to_string() && (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost"))
}

async fn serve_tcp(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let slot = shared.enter_preauth();
    let evicted = slot.evicted.clone();
    let upgraded = tokio::select! {
        _ = evicted.notified() => {
            tracing::debug!(%peer, "unauthenticated connection closed to make room");
            return;
        }
        r = serve_before_auth(stream, peer, &shared) => r,
    };
    drop(slot);
    if let Some((ws, authenticated)) = upgraded {
        connection::run_socket(ws, authenticated, shared, peer).await;
    }
}

/// Whether `head` carries a valid, fresh, unused signature for `path` (see
/// [`auth::status_authorization`]).
fn status_authorized(shared: &Shared, head: &http::Head, path: &str) -> bool {
    let Ok(Some(header)) = head.one("authorization") else {
        return false;
    };
    let Some(ok) = auth::verify_status_authorization(
        &shared.cfg.secret,
        header,
        shared.port,
        path,
        crate::registry::unix_ms(),
        60_000,
    ) else {
        return false;
    };
    let mut seen = shared
        .status_nonces
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if seen.contains(&ok.nonce) {
        return false;
    }
    if seen.len() >= 1024 {
        seen.pop_front();
    }
    seen.push_back(ok.nonce);
    true
}

/// HTTP until authentication: answers probes and signed status requests, and for an
/// upgrade returns the authenticated WebSocket.
async fn serve_before_auth(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
) -> Option<(WebSocketStream<budget::Budgeted>, connection::Authenticated)> {
    let _ = stream.set_nodelay(true);
    let cfg = &shared.cfg;
    let (head, leftover) =
        match http::read_head(&mut stream, cfg.max_head_bytes, cfg.head_timeout).await {
            Ok(h) => h,
            Err(http::HeadError::TooLarge) => {
                tracing::debug!(%peer, "request head too large");
                let msg = format!("request head over {} bytes", cfg.max_head_bytes);
                http::respond_text(&mut stream, 431, &msg).await;
                return None;
            }
            Err(http::HeadError::Timeout) => {
                http::respond_text(&mut stream, 408, "request head not received in time").await;
                return None;
            }
            Err(http::HeadError::Malformed(why)) => {
                http::respond_text(&mut stream, 400, why).await;
                return None;
            }
            Err(http::HeadError::Gone) => return None,
        };
    // Once shutdown has begun, this instance is leaving: answering its probe (or a new
    // handshake) would make the extension take it for back.
    if *shared.shutdown.borrow() {
        http::respond_text(&mut stream, 503, "tabmux is shutting down").await;
        return None;
    }
    let (Ok(host), Ok(origin)) = (head.one("host"), head.one("origin")) else {
        http::respond_text(&mut stream, 400, "duplicate Host or Origin header").await;
        return None;
    };
    if !host.is_some_and(|h| host_ok(h, shared.port)) {
        tracing::debug!(%peer, path = %head.path, "refused: Host");
        let msg = "Host must be 127.0.0.1:<port> or localhost:<port>";
        http::respond_text(&mut stream, 403, msg).await;
        return None;
    }
    let path = head.path.as_str();
    let known = matches!(
        path,
        "/tabmux" | "/tabmux/status" | "/tabmux/tabs" | "/extension"
    );
    // Every path answers GET only.
    if head.method != "GET" && known {
        let allow = "Allow: GET\r\n";
        http::respond(&mut stream, 405, "text/plain", allow, b"GET only\n").await;
        return None;
    }
    if !known {
        http::respond_text(&mut stream, 404, "not found").await;
        return None;
    }
    if path == "/extension" {
        if !origin.is_some_and(|o| cfg.allows(o)) {
            tracing::info!(%peer, has_origin = origin.is_some(), "WebSocket refused: Origin");
            http::respond_text(&mut stream, 403, "origin not allowed").await;
            return None;
        }
        let mut ws = upgrade(stream, head, leftover, shared).await?;
        let authenticated = connection::handshake(&mut ws.0, shared).await?;
        ws.1.lift();
        return Some((ws.0, authenticated));
    }
    if origin.is_some_and(|o| !cfg.allows(o)) {
        tracing::debug!(%peer, "refused: Origin");
        http::respond_text(&mut stream, 403, "origin not allowed").await;
        return None;
    }
    match path {
        "/tabmux" => {
            let body = probe_json().to_string();
            http::respond(&mut stream, 200, "application/json", "", body.as_bytes()).await;
        }
        _ if !status_authorized(shared, &head, path) => {
            let msg = "this request must be signed with the secret of tabmux's state directory \
                       (`tabmux status` does it)";
            http::respond(
                &mut stream,
                401,
                "text/plain; charset=utf-8",
                "WWW-Authenticate: Tabmux\r\n",
                format!("{msg}\n").as_bytes(),
            )
            .await;
        }
        "/tabmux/status" => {
            let body = status_json(shared).to_string();
            http::respond(&mut stream, 200, "application/json", "", body.as_bytes()).await;
        }
        _ => held_tabs(&mut stream, shared).await,
    }
    None
}

/// `/tabmux/tabs`: what the primary browser's extension knows (holders, queues, leases).
async fn held_tabs(stream: &mut TcpStream, shared: &Shared) {
    let Some(conn) = shared.connections().into_iter().next() else {
        return http::respond_text(stream, 404, "no browser connected").await;
    };
    match conn
        .request("status", json!({}), None, Duration::from_secs(3))
        .await
    {
        Ok(v) => {
            let body = json!({"browser": conn.browser(), "status": v}).to_string();
            http::respond(stream, 200, "application/json", "", body.as_bytes()).await;
        }
        Err(e) => http::respond_text(stream, 502, &e.to_string()).await,
    }
}

/// Completes the WebSocket upgrade; returns the socket, its read budget still on.
async fn upgrade(
    mut stream: TcpStream,
    head: http::Head,
    leftover: Vec<u8>,
    shared: &Shared,
) -> Option<(WebSocketStream<budget::Budgeted>, budget::Lift)> {
    if !head.has_token("upgrade", "websocket") || !head.has_token("connection", "upgrade") {
        let need = "Upgrade: websocket\r\n";
        let body = b"a WebSocket upgrade is required\n";
        http::respond(&mut stream, 426, "text/plain", need, body).await;
        return None;
    }
    if head.one("sec-websocket-version").ok().flatten() != Some("13") {
        let need = "Sec-WebSocket-Version: 13\r\n";
        let body = b"WebSocket version 13 is required\n";
        http::respond(&mut stream, 426, "text/plain", need, body).await;
        return None;
    }
    let key = match head.one("sec-websocket-key") {
        Ok(Some(k)) if k.len() == 24 => k.to_owned(),
        _ => {
            http::respond_text(&mut stream, 400, "bad Sec-WebSocket-Key").await;
            return None;
        }
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    use tokio::io::AsyncWriteExt;
    let written = tokio::time::timeout(
        shared.cfg.head_timeout,
        stream.write_all(response.as_bytes()),
    )
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return None;
    }
    let max_in = shared.cfg.max_in_bytes;
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(max_in))
        .max_frame_size(Some(max_in))
        .write_buffer_size(0);
    let (budgeted, lift) =
        budget::Budgeted::new(stream, shared.cfg.max_hello_bytes, leftover.len());
    if leftover.len() > shared.cfg.max_hello_bytes {
        return None;
    }
    let ws =
        WebSocketStream::from_partially_read(budgeted, leftover, Role::Server, Some(ws_cfg)).await;
    Some((ws, lift))
}
