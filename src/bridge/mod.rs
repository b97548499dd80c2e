//! The bridge: the endpoint the tabmux extension connects to (`docs/PROTOCOL.md`).
//!
//! One accept loop serves the port this instance claimed in the [registry]:
//!
//! - `GET /tabmux`: the discovery probe, a small JSON identity (see [`Bridge::probe`]);
//! - `GET /extension` with a WebSocket upgrade: an extension connection, one per
//!   browser profile, only from the configured extension origin;
//! - anything else: `404`. Request heads are read by hand, at most 8 KiB (`431`)
//!   within 5 s (`408`); `Host` must be `127.0.0.1:<port>` or `localhost:<port>`
//!   (`403`, against DNS rebinding).
//!
//! Each WebSocket must start with `hello`; then both sides send requests, replies and
//! events (see [`codec`]). The rest of tabmux uses:
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

pub mod codec;
mod connection;
pub mod error;
mod http;
pub mod pending;
mod status;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

pub use connection::{CLOSE_PROTOCOL_MISMATCH, Connection, WireEvent};
pub use error::{WireError, codes};
pub use status::{
    BrowserStatus, HeldTab, HeldTabs, InstanceStatus, StaleEntry, StatusReport, fetch_probe,
    status_report,
};

/// The wire protocol version this tabmux speaks.
pub const PROTOCOL_VERSION: u64 = 1;

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
            lease_ms: 60_000,
            grace_ms: 5_000,
            user_tabs: "ask".to_owned(),
        }
    }
}

/// Settings of the bridge. `Default` gives the protocol's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
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
    /// A connection that has not completed `hello` this long after the upgrade is
    /// closed (1008). Default 10 s.
    pub hello_timeout: Duration,
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
            allowed_origin: extension_origin(DEFAULT_EXTENSION_ID),
            other_origins: STORE_EXTENSION_ID
                .map(extension_origin)
                .into_iter()
                .collect(),
            max_in_bytes: 64 << 20,
            max_out_bytes: 16 << 20,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            hello_timeout: Duration::from_secs(10),
            head_timeout: Duration::from_secs(5),
            max_head_bytes: 8 << 10,
            event_buffer: 1024,
        }
    }
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
}

impl Shared {
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

    /// The probe's JSON, as `GET /tabmux` answers it:
    /// `{"tabmux":1,"protocol":1,"instanceId","name","pid","version","port","uptimeMs",
    /// "leaseMs","graceMs","browsers":[{"connectionId","browser","profileId",
    /// "extensionVersion","connectedMs"}]}` (`connectedMs`: how long it has been connected).
    pub fn probe(&self) -> Value {
        probe_json(&self.shared)
    }

    /// Stops accepting, and closes every connection (1001); their pending requests fail
    /// with `DISCONNECTED`. The port stays bound until the runtime drops the listener.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }
}

fn probe_json(shared: &Shared) -> Value {
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

async fn serve_tcp(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let cfg = &shared.cfg;
    let (head, leftover) = match http::read_head(&mut stream, cfg.max_head_bytes, cfg.head_timeout)
        .await
    {
        Ok(h) => h,
        Err(http::HeadError::TooLarge) => {
            tracing::debug!(%peer, "request head too large");
            return http::respond_text(
                &mut stream,
                431,
                &format!("request head over {} bytes", cfg.max_head_bytes),
            )
            .await;
        }
        Err(http::HeadError::Timeout) => {
            return http::respond_text(&mut stream, 408, "request head not received in time").await;
        }
        Err(http::HeadError::Malformed(why)) => {
            return http::respond_text(&mut stream, 400, why).await;
        }
        Err(http::HeadError::Gone) => return,
    };
    // Once shutdown has begun, this instance is leaving: answering its probe (or a new
    // handshake) would make the extension take it for back.
    if *shared.shutdown.borrow() {
        return http::respond_text(&mut stream, 503, "tabmux is shutting down").await;
    }
    let (Ok(host), Ok(origin)) = (head.one("host"), head.one("origin")) else {
        return http::respond_text(&mut stream, 400, "duplicate Host or Origin header").await;
    };
    if !host.is_some_and(|h| host_ok(h, shared.port)) {
        tracing::debug!(%peer, path = %head.path, "refused: Host");
        return http::respond_text(
            &mut stream,
            403,
            "Host must be 127.0.0.1:<port> or localhost:<port>",
        )
        .await;
    }
    // Every path answers GET only.
    if head.method != "GET"
        && matches!(
            head.path.as_str(),
            "/tabmux" | "/tabmux/tabs" | "/extension"
        )
    {
        return http::respond(
            &mut stream,
            405,
            "text/plain",
            "Allow: GET\r\n",
            b"GET only\n",
        )
        .await;
    }
    match head.path.as_str() {
        "/tabmux" => {
            if origin.is_some_and(|o| !cfg.allows(o)) {
                tracing::debug!(%peer, "probe refused: Origin");
                return http::respond_text(&mut stream, 403, "origin not allowed").await;
            }
            let body = probe_json(&shared).to_string();
            http::respond(&mut stream, 200, "application/json", "", body.as_bytes()).await;
        }
        "/tabmux/tabs" => {
            if origin.is_some_and(|o| !cfg.allows(o)) {
                return http::respond_text(&mut stream, 403, "origin not allowed").await;
            }
            // What the primary browser's extension knows: holders, queues, leases.
            let Some(conn) = shared.connections().into_iter().next() else {
                return http::respond_text(&mut stream, 404, "no browser connected").await;
            };
            match conn
                .request("status", json!({}), None, Duration::from_secs(3))
                .await
            {
                Ok(v) => {
                    let body = json!({"browser": conn.browser(), "status": v}).to_string();
                    http::respond(&mut stream, 200, "application/json", "", body.as_bytes()).await;
                }
                Err(e) => http::respond_text(&mut stream, 502, &e.to_string()).await,
            }
        }
        "/extension" => {
            if !origin.is_some_and(|o| cfg.allows(o)) {
                tracing::info!(%peer, has_origin = origin.is_some(), "WebSocket refused: Origin");
                return http::respond_text(&mut stream, 403, "origin not allowed").await;
            }
            upgrade(stream, peer, head, leftover, shared).await;
        }
        _ => http::respond_text(&mut stream, 404, "not found").await,
    }
}

async fn upgrade(
    mut stream: TcpStream,
    peer: SocketAddr,
    head: http::Head,
    leftover: Vec<u8>,
    shared: Arc<Shared>,
) {
    if !head.has_token("upgrade", "websocket") || !head.has_token("connection", "upgrade") {
        return http::respond(
            &mut stream,
            426,
            "text/plain",
            "Upgrade: websocket\r\n",
            b"a WebSocket upgrade is required\n",
        )
        .await;
    }
    if head.one("sec-websocket-version").ok().flatten() != Some("13") {
        return http::respond(
            &mut stream,
            426,
            "text/plain",
            "Sec-WebSocket-Version: 13\r\n",
            b"WebSocket version 13 is required\n",
        )
        .await;
    }
    let key = match head.one("sec-websocket-key") {
        Ok(Some(k)) if k.len() == 24 => k.to_owned(),
        _ => return http::respond_text(&mut stream, 400, "bad Sec-WebSocket-Key").await,
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
        return;
    }
    let max_in = shared.cfg.max_in_bytes;
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(max_in))
        .max_frame_size(Some(max_in))
        .write_buffer_size(0);
    let ws: WebSocketStream<TcpStream> =
        WebSocketStream::from_partially_read(stream, leftover, Role::Server, Some(ws_cfg)).await;
    connection::run_socket(ws, shared, peer).await;
}
