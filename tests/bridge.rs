//! Bridge tests: real sockets on 127.0.0.1, one fresh port per test, a fake extension
//! speaking the wire protocol (it knows the test secret and does the authenticated
//! hello like the real one).

mod common_bridge;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use serde_json::{Value, json};
use tabmux::auth::{self, Secret};
use tabmux::bridge::codec::{self, Frame};
use tabmux::bridge::pending::Pending;
use tabmux::bridge::{
    Bridge, BridgeConfig, BridgeEvent, Connection, Identity, WireError, codes, extension_origin,
    fetch_probe, fetch_status, status_report,
};
use tabmux::registry::{InstanceMeta, claim_port, new_instance_id};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

const EXT_ORIGIN: &str = "chrome-extension://knlmfncphidfkjhbiidejbkkebcfedhd";
const LONG: Duration = Duration::from_secs(30);

/// The secret of every bridge these tests start (unless a test says otherwise).
fn test_secret() -> Secret {
    Secret::from_bytes([7; 32])
}

fn base_config() -> BridgeConfig {
    BridgeConfig {
        secret: test_secret(),
        ..BridgeConfig::default()
    }
}

fn quiet_config() -> BridgeConfig {
    // No tabmux pings unless a test asks for them.
    BridgeConfig {
        ping_interval: Duration::from_secs(3600),
        ..base_config()
    }
}

fn start(cfg: BridgeConfig) -> (Bridge, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bridge = Bridge::start(listener, Identity::new("inst-test-1", "Test Client"), cfg).unwrap();
    (bridge, port)
}

// ---------------------------------------------------------------- plain HTTP

struct HttpAnswer {
    status: u16,
    head: String,
    body: String,
}

async fn http(port: u16, request: &str) -> HttpAnswer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("server answers and closes")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    HttpAnswer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

async fn get(port: u16, path: &str, extra: &str) -> HttpAnswer {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n"),
    )
    .await
}

fn upgrade_headers(origin: Option<&str>) -> String {
    let mut h = String::from(
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    );
    if let Some(o) = origin {
        h.push_str(&format!("Origin: {o}\r\n"));
    }
    h
}

// ---------------------------------------------------------------- fake extension

type Ws = WebSocketStream<TcpStream>;

async fn ws_connect(port: u16, origin: Option<&str>) -> Result<Ws, WsError> {
    let mut req = format!("ws://127.0.0.1:{port}/extension")
        .into_client_request()
        .unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("Origin", o.parse().unwrap());
    }
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let cfg = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    client_async_with_config(req, tcp, Some(cfg))
        .await
        .map(|(ws, _)| ws)
}

#[derive(Debug)]
enum Got {
    Json(Value),
    Closed(Option<u16>, String),
}

struct Ext {
    ws: Ws,
    port: u16,
    /// tabmux's nonce from its challenge.
    challenge: String,
}

impl Ext {
    /// Opens the WebSocket and reads tabmux's challenge.
    async fn open(port: u16) -> Self {
        let ws = ws_connect(port, Some(EXT_ORIGIN)).await.expect("upgrade");
        let mut ext = Self {
            ws,
            port,
            challenge: String::new(),
        };
        let c = ext.recv_json().await;
        assert_eq!(c["event"], "challenge", "{c}");
        assert_eq!(c["params"]["protocol"], 1, "{c}");
        ext.challenge = c["params"]["nonce"].as_str().unwrap().to_owned();
        assert!(auth::is_nonce(&ext.challenge), "{c}");
        ext
    }

    async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.unwrap();
    }

    async fn recv(&mut self) -> Got {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a frame within 10 s");
            match next {
                None => return Got::Closed(None, "stream ended".into()),
                Some(Err(e)) => return Got::Closed(None, e.to_string()),
                Some(Ok(Message::Text(t))) => {
                    return Got::Json(serde_json::from_str(t.as_str()).expect("tabmux sends JSON"));
                }
                Some(Ok(Message::Close(f))) => {
                    return Got::Closed(
                        f.as_ref().map(|f| u16::from(f.code)),
                        f.map(|f| f.reason.to_string()).unwrap_or_default(),
                    );
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    async fn recv_json(&mut self) -> Value {
        match self.recv().await {
            Got::Json(v) => v,
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }

    async fn recv_close(&mut self) -> Option<u16> {
        self.recv_close_reason().await.0
    }

    async fn recv_close_reason(&mut self) -> (Option<u16>, String) {
        loop {
            match self.recv().await {
                Got::Closed(code, reason) => return (code, reason),
                Got::Json(_) => continue,
            }
        }
    }

    async fn expect_silence(&mut self, d: Duration) {
        if let Ok(m) = tokio::time::timeout(d, self.ws.next()).await {
            panic!("expected nothing, got {m:?}");
        }
    }

    /// The `hello` params with a proof of `secret` (and the extension's nonce).
    fn hello_params(&self, secret: &Secret, profile: &str) -> (Value, String) {
        let nonce = auth::nonce().unwrap();
        let proof = auth::extension_proof(secret, &self.challenge, &nonce, self.port);
        (
            json!({"protocol": 1, "nonce": nonce, "proof": proof, "extensionVersion": "0.1.0",
                   "browser": "Chrome/156.0.8078.73", "profileId": profile}),
            nonce,
        )
    }

    /// The authenticated hello, as the extension does it; checks tabmux's proof.
    async fn hello(&mut self, profile: &str) -> Value {
        let (params, nonce) = self.hello_params(&test_secret(), profile);
        self.send(json!({"id": 1, "method": "hello", "params": params}))
            .await;
        let reply = self.recv_json().await;
        assert_eq!(reply["id"], 1, "{reply}");
        let r = &reply["result"];
        let expected = auth::tabmux_proof(
            &test_secret(),
            &self.challenge,
            &nonce,
            self.port,
            r["instanceId"].as_str().unwrap(),
        );
        assert_eq!(r["proof"], expected.as_str(), "tabmux proves the secret");
        reply
    }

    /// Reads requests from tabmux until one arrives, answering nothing.
    async fn recv_request(&mut self) -> (u64, String, Value) {
        let v = self.recv_json().await;
        let id = v["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("not a request: {v}"));
        (
            id,
            v["method"].as_str().unwrap().to_owned(),
            v["params"].clone(),
        )
    }
}

async fn connection_of(bridge: &Bridge, profile: &str) -> Arc<Connection> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(c) = bridge
            .connections()
            .into_iter()
            .find(|c| c.profile_id() == profile)
        {
            return c;
        }
        assert!(Instant::now() < deadline, "no connection for {profile}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn ready(bridge: &Bridge, port: u16, profile: &str) -> (Ext, Arc<Connection>) {
    let mut ext = Ext::open(port).await;
    ext.hello(profile).await;
    let conn = connection_of(bridge, profile).await;
    (ext, conn)
}

// ---------------------------------------------------------------- HTTP checks

#[tokio::test]
async fn probe_says_only_tabmux_and_protocol_and_no_cors() {
    let (_bridge, port) = start(quiet_config());
    for extra in ["", &format!("Origin: {EXT_ORIGIN}\r\n")] {
        let a = get(port, "/tabmux", extra).await;
        assert_eq!(a.status, 200, "{}", a.head);
        assert!(a.head.contains("application/json"));
        assert!(a.head.contains("Connection: close"));
        assert!(!a.head.to_ascii_lowercase().contains("access-control"));
        let v: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v, json!({"tabmux": 1, "protocol": 1}));
    }
    // The signed status has the identity.
    let v = fetch_status(port, &test_secret(), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(v["tabmux"], 1);
    assert_eq!(v["protocol"], 1);
    assert_eq!(v["instanceId"], "inst-test-1");
    assert_eq!(v["name"], "Test Client");
    assert_eq!(v["pid"], std::process::id());
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["port"], port);
    assert!(v["uptimeMs"].is_u64());
    assert_eq!(v["browsers"], json!([]));
    // `localhost` is a fine Host too; a query string is ignored.
    let a = http(
        port,
        &format!("GET /tabmux?x=1 HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n"),
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn probe_refuses_web_pages_and_other_extensions() {
    let (_bridge, port) = start(quiet_config());
    for origin in [
        "http://127.0.0.1:1234",
        "https://evil.example",
        "chrome-extension://aaaabbbbccccddddeeeeffffgggghhhh",
        "null",
    ] {
        let a = get(port, "/tabmux", &format!("Origin: {origin}\r\n")).await;
        assert_eq!(a.status, 403, "{origin}");
        assert!(!a.body.contains("instanceId"));
    }
}

#[tokio::test]
async fn websocket_refuses_any_origin_but_the_extension() {
    let (bridge, port) = start(quiet_config());
    for origin in [
        None,
        Some("http://127.0.0.1:1234"),
        Some("https://evil.example"),
        Some("chrome-extension://aaaabbbbccccddddeeeeffffgggghhhh"),
    ] {
        let a = get(port, "/extension", &upgrade_headers(origin)).await;
        assert_eq!(a.status, 403, "{origin:?}");
        match ws_connect(port, origin).await {
            Err(WsError::Http(resp)) => assert_eq!(resp.status(), 403, "{origin:?}"),
            other => panic!("{origin:?}: expected 403, got {other:?}"),
        }
    }
    assert!(bridge.connections().is_empty());
}

#[tokio::test]
async fn extension_id_is_configurable() {
    let other = "aaaabbbbccccddddeeeeffffgggghhhh";
    assert!(tabmux::bridge::is_extension_id(other));
    let (_bridge, port) = start(BridgeConfig {
        allowed_origin: extension_origin(other),
        ..quiet_config()
    });
    assert!(
        ws_connect(port, Some(&extension_origin(other)))
            .await
            .is_ok()
    );
    assert!(matches!(
        ws_connect(port, Some(EXT_ORIGIN)).await,
        Err(WsError::Http(r)) if r.status() == 403
    ));
}

#[tokio::test]
async fn wrong_host_is_refused() {
    let (_bridge, port) = start(quiet_config());
    let other_port = if port == 65535 { 1 } else { port + 1 };
    for host in [
        format!("Host: evil.example:{port}\r\n"),
        format!("Host: 127.0.0.1:{other_port}\r\n"),
        "Host: 127.0.0.1\r\n".to_owned(),
        String::new(),
    ] {
        for (path, extra) in [
            ("/tabmux", String::new()),
            ("/extension", upgrade_headers(Some(EXT_ORIGIN))),
        ] {
            let a = http(port, &format!("GET {path} HTTP/1.1\r\n{host}{extra}\r\n")).await;
            assert_eq!(a.status, 403, "{host:?} {path}");
        }
    }
}

#[tokio::test]
async fn other_paths_404_and_methods_405() {
    let (_bridge, port) = start(quiet_config());
    for path in ["/", "/tabmux/", "/extensions", "/favicon.ico"] {
        assert_eq!(get(port, path, "").await.status, 404, "{path}");
    }
    let a = http(
        port,
        &format!("POST /tabmux HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"),
    )
    .await;
    assert_eq!(a.status, 405);
    // Not a WebSocket upgrade, though the origin is right.
    let a = get(port, "/extension", &format!("Origin: {EXT_ORIGIN}\r\n")).await;
    assert_eq!(a.status, 426);
    assert_eq!(http(port, "BLAH\r\n\r\n").await.status, 400);
}

#[tokio::test]
async fn oversize_head_gets_431_and_slow_head_408() {
    let (bridge, port) = start(BridgeConfig {
        head_timeout: Duration::from_millis(300),
        ..quiet_config()
    });
    let big = format!("X-Filler: {}\r\n", "a".repeat(10 * 1024));
    let a = get(port, "/tabmux", &big).await;
    assert_eq!(a.status, 431);
    // Just under the limit is fine.
    let fits = format!("X-Filler: {}\r\n", "a".repeat(7 * 1024));
    assert_eq!(get(port, "/tabmux", &fits).await.status, 200);

    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /tabmux HTTP/1.1\r\n").await.unwrap();
    let mut buf = Vec::new();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408"));
    assert!(started.elapsed() < Duration::from_secs(3));
    // Still serving.
    assert_eq!(get(port, "/tabmux", "").await.status, 200);
    drop(bridge);
}

// ---------------------------------------------------------------- handshake

#[tokio::test]
async fn good_handshake_and_hello() {
    let (bridge, port) = start(BridgeConfig {
        allowed_origin: EXT_ORIGIN.into(),
        ..quiet_config()
    });
    let mut events = bridge.subscribe();
    let mut ext = Ext::open(port).await;
    // Upgraded but no hello yet: not a connection for the rest of tabmux.
    assert!(bridge.connections().is_empty());
    let mut reply = ext.hello("p-one").await;
    reply["result"].as_object_mut().unwrap().remove("proof");
    assert_eq!(
        reply["result"],
        json!({"protocol": 1, "instanceId": "inst-test-1", "name": "Test Client",
               "pid": std::process::id(), "version": env!("CARGO_PKG_VERSION"),
               "leaseMs": 60000, "graceMs": 5000, "userTabs": "ask"})
    );
    let conn = connection_of(&bridge, "p-one").await;
    assert_eq!(conn.browser(), "Chrome/156.0.8078.73");
    assert_eq!(conn.extension_version(), "0.1.0");
    assert!(conn.is_open());
    assert_eq!(
        events.recv().await.unwrap(),
        BridgeEvent::Connected(conn.id())
    );

    let probe = fetch_status(port, &test_secret(), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(probe["browsers"][0]["profileId"], "p-one");
    assert_eq!(probe["browsers"][0]["browser"], "Chrome/156.0.8078.73");
    assert_eq!(probe["browsers"][0]["connectionId"], conn.id());

    // A second hello is refused, the connection stays.
    ext.send(json!({"id": 2, "method": "hello", "params": {"protocol": 1}}))
        .await;
    let r = ext.recv_json().await;
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(2), json!("BAD_REQUEST"))
    );
    assert!(conn.is_open());
}

#[tokio::test]
async fn protocol_mismatch_is_named_and_closes_4001() {
    let (bridge, port) = start(quiet_config());
    for (theirs, advice) in [(2, "update tabmux"), (0, "update the tabmux extension")] {
        let mut ext = Ext::open(port).await;
        ext.send(json!({"id": 1, "method": "hello", "params": {"protocol": theirs}}))
            .await;
        let r = ext.recv_json().await;
        assert_eq!(r["id"], 1);
        assert_eq!(r["error"]["code"], "PROTOCOL_MISMATCH");
        let msg = r["error"]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("protocol {theirs}")), "{msg}");
        assert!(msg.contains("protocol 1"), "{msg}");
        assert!(msg.contains(advice), "{msg}");
        assert_eq!(
            r["error"]["data"],
            json!({"tabmux": 1, "extension": theirs})
        );
        assert_eq!(ext.recv_close().await, Some(4001));
    }
    assert!(bridge.connections().is_empty());
}

#[tokio::test]
async fn nothing_before_hello() {
    let (bridge, port) = start(quiet_config());
    let mut ext = Ext::open(port).await;
    ext.send(json!({"id": 5, "method": "ping", "params": {}}))
        .await;
    let r = ext.recv_json().await;
    assert_eq!(r["id"], 5);
    assert_eq!(r["error"]["code"], "BAD_REQUEST");
    assert!(r["error"]["message"].as_str().unwrap().contains("hello"));
    ext.send(json!({"id": 6, "method": "hello", "params": {}}))
        .await;
    let r = ext.recv_json().await;
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(6), json!("BAD_REQUEST"))
    );
    assert!(bridge.connections().is_empty());
    ext.hello("p-late").await;
    connection_of(&bridge, "p-late").await;
}

#[tokio::test]
async fn no_hello_in_time_closes() {
    let (_bridge, port) = start(BridgeConfig {
        hello_timeout: Duration::from_millis(300),
        ..quiet_config()
    });
    let mut ext = Ext::open(port).await;
    assert_eq!(ext.recv_close().await, Some(1008));
}

// ---------------------------------------------------------------- frames

#[tokio::test]
async fn malformed_frames_get_bad_request_and_the_connection_lives() {
    let (bridge, port) = start(quiet_config());
    let (mut ext, conn) = ready(&bridge, port, "p-m").await;
    let protocol_error = |v: &Value| {
        assert_eq!(v["event"], "protocol.error", "{v}");
        assert_eq!(v["params"]["code"], "BAD_REQUEST", "{v}");
    };
    ext.send_raw(Message::text("this is not json {")).await;
    protocol_error(&ext.recv_json().await);
    ext.send_raw(Message::text("[1,2,3]")).await;
    protocol_error(&ext.recv_json().await);
    ext.send_raw(Message::text("{}")).await;
    protocol_error(&ext.recv_json().await);
    ext.send_raw(Message::binary(vec![0u8, 159, 146, 150]))
        .await;
    let v = ext.recv_json().await;
    protocol_error(&v);
    assert!(v["params"]["message"].as_str().unwrap().contains("binary"));
    ext.send(json!({"id": 7, "method": "tabs.explode", "params": {}}))
        .await;
    let v = ext.recv_json().await;
    assert_eq!(v["id"], 7);
    assert_eq!(v["error"]["code"], "BAD_REQUEST");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tabs.explode")
    );
    ext.send(json!({"id": 8, "method": "ping", "params": [1]}))
        .await;
    let v = ext.recv_json().await;
    assert_eq!(
        (v["id"].clone(), v["error"]["code"].clone()),
        (json!(8), json!("BAD_REQUEST"))
    );

    // Still fine both ways.
    ext.send(json!({"id": 9, "method": "ping", "params": {}}))
        .await;
    assert_eq!(ext.recv_json().await, json!({"id": 9, "result": {}}));
    let c = conn.clone();
    let req = tokio::spawn(async move {
        c.request("tabs.list", json!({"all": true}), Some("t-1"), LONG)
            .await
    });
    let v = ext.recv_json().await;
    assert_eq!(v["method"], "tabs.list");
    assert_eq!(v["params"], json!({"all": true}));
    assert_eq!(v["trace"], "t-1");
    ext.send(json!({"id": v["id"], "result": {"tabs": []}}))
        .await;
    assert_eq!(req.await.unwrap().unwrap(), json!({"tabs": []}));
    assert!(conn.is_open());
}

#[tokio::test]
async fn malformed_reply_fails_its_request_at_once() {
    let (bridge, port) = start(quiet_config());
    let (mut ext, conn) = ready(&bridge, port, "p-mr").await;
    let c = conn.clone();
    let req = tokio::spawn(async move { c.request("tabs.create", json!({}), None, LONG).await });
    let (id, _, _) = ext.recv_request().await;
    ext.send(json!({"id": id, "error": "oops"})).await;
    let err = req.await.unwrap().unwrap_err();
    assert_eq!(err.code, codes::BAD_REQUEST);
    assert!(err.message.contains("malformed"), "{err}");
    let v = ext.recv_json().await;
    assert_eq!(v["event"], "protocol.error");
}

#[tokio::test]
async fn oversized_frame_closes_with_1009_and_the_bridge_goes_on() {
    let (bridge, port) = start(BridgeConfig {
        max_in_bytes: 256 * 1024,
        ..quiet_config()
    });
    let (mut ext, conn) = ready(&bridge, port, "p-big").await;
    let c = conn.clone();
    let pending = tokio::spawn(async move { c.request("cdp", json!({}), None, LONG).await });
    ext.recv_request().await;
    let big = format!(
        "{{\"event\":\"x\",\"params\":{{\"s\":\"{}\"}}}}",
        "a".repeat(300 * 1024)
    );
    ext.send_raw(Message::text(big)).await;
    let (code, reason) = ext.recv_close_reason().await;
    assert_eq!(code, Some(1009));
    assert!(reason.contains("256.0 KiB"), "{reason}");
    let err = pending.await.unwrap().unwrap_err();
    assert_eq!(err.code, codes::DISCONNECTED);
    conn.closed().await;
    assert!(conn.close_reason().unwrap().contains("KiB"));

    // Just under the limit passes, on a new connection.
    let (mut ext2, conn2) = ready(&bridge, port, "p-big-2").await;
    let mut events = conn2.take_events().unwrap();
    let fits = format!(
        "{{\"event\":\"x\",\"params\":{{\"s\":\"{}\"}}}}",
        "a".repeat(200 * 1024)
    );
    ext2.send_raw(Message::text(fits)).await;
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.params["s"].as_str().unwrap().len(), 200 * 1024);
}

#[tokio::test]
async fn oversized_request_is_too_large_and_nothing_is_sent() {
    let (bridge, port) = start(BridgeConfig {
        max_out_bytes: 1024,
        ..quiet_config()
    });
    let (mut ext, conn) = ready(&bridge, port, "p-out").await;
    let err = conn
        .request("cdp", json!({"data": "x".repeat(2000)}), None, LONG)
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::TOO_LARGE);
    assert!(err.message.contains("nothing was sent"), "{err}");
    assert_eq!(err.data.as_ref().unwrap()["limit"], 1024);
    ext.expect_silence(Duration::from_millis(300)).await;
    assert!(conn.is_open());
    assert_eq!(conn.pending_requests(), 0);
}

#[tokio::test]
async fn events_reach_the_consumer_in_order() {
    let (bridge, port) = start(quiet_config());
    let (mut ext, conn) = ready(&bridge, port, "p-ev").await;
    let mut events = conn.take_events().expect("first take");
    assert!(conn.take_events().is_none());
    for i in 0..5 {
        ext.send(json!({"event": "tab.closed", "params": {"tabId": i, "reason": "user"}}))
            .await;
    }
    ext.send(json!({"event": "tab.attached"})).await;
    for i in 0..5 {
        let ev = events.recv().await.unwrap();
        assert_eq!(
            (ev.event.as_str(), ev.params["tabId"].as_i64()),
            ("tab.closed", Some(i))
        );
    }
    let ev = events.recv().await.unwrap();
    assert_eq!(
        (ev.event.as_str(), ev.params.clone()),
        ("tab.attached", json!({}))
    );
}

#[tokio::test]
async fn a_full_event_channel_drops_events_not_replies() {
    let (bridge, port) = start(BridgeConfig {
        event_buffer: 4,
        ..quiet_config()
    });
    let (mut ext, conn) = ready(&bridge, port, "p-full").await;
    let mut events = conn.take_events().unwrap();
    for i in 0..10 {
        ext.send(json!({"event": "cdp.event", "params": {"i": i}}))
            .await;
    }
    let c = conn.clone();
    let req = tokio::spawn(async move { c.request("ping", json!({}), None, LONG).await });
    let (id, _, _) = ext.recv_request().await;
    ext.send(json!({"id": id, "result": {}})).await;
    assert_eq!(req.await.unwrap().unwrap(), json!({}));
    assert_eq!(conn.dropped_events(), 6);
    for i in 0..4 {
        assert_eq!(events.recv().await.unwrap().params["i"], i);
    }
}

// ---------------------------------------------------------------- correlation

#[tokio::test]
async fn replies_out_of_order_reach_their_own_requests() {
    let (bridge, port) = start(quiet_config());
    let (mut ext, conn) = ready(&bridge, port, "p-ooo").await;
    let mut handles = Vec::new();
    for i in 0..5 {
        let c = conn.clone();
        handles.push(tokio::spawn(async move {
            c.request("cdp", json!({"i": i}), None, LONG).await
        }));
    }
    let mut got = Vec::new();
    for _ in 0..5 {
        let (id, method, params) = ext.recv_request().await;
        assert_eq!(method, "cdp");
        got.push((id, params["i"].as_i64().unwrap()));
    }
    let ids: std::collections::HashSet<u64> = got.iter().map(|g| g.0).collect();
    assert_eq!(ids.len(), 5, "ids are unique");
    // Reverse order; one of them fails.
    for (id, i) in got.iter().rev() {
        if *i == 2 {
            ext.send(json!({"id": id, "error": {"code": "TAB_BUSY", "message": "held", "data": {"holder": "Cursor"}}}))
                .await;
        } else {
            ext.send(json!({"id": id, "result": {"echo": i}})).await;
        }
    }
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.await.unwrap();
        if i == 2 {
            let e = r.unwrap_err();
            assert_eq!(e.code, "TAB_BUSY");
            assert_eq!(e.data, Some(json!({"holder": "Cursor"})));
            assert_eq!(e.to_string(), "TAB_BUSY: held");
        } else {
            assert_eq!(r.unwrap(), json!({"echo": i}));
        }
    }
}

#[tokio::test]
async fn a_reply_after_the_deadline_is_dropped() {
    let (bridge, port) = start(quiet_config());
    let (mut ext, conn) = ready(&bridge, port, "p-late").await;
    let started = Instant::now();
    let c = conn.clone();
    let slow = tokio::spawn(async move {
        c.request(
            "tabs.claim",
            json!({"tabId": 1}),
            None,
            Duration::from_millis(200),
        )
        .await
    });
    let (late_id, _, _) = ext.recv_request().await;
    let err = slow.await.unwrap().unwrap_err();
    assert_eq!(err.code, codes::TIMEOUT);
    assert!(
        err.message.contains("tabs.claim") && err.message.contains("200 ms"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(conn.pending_requests(), 0);

    let c = conn.clone();
    let next = tokio::spawn(async move { c.request("tabs.list", json!({}), None, LONG).await });
    let (id, _, _) = ext.recv_request().await;
    assert_ne!(id, late_id);
    ext.send(json!({"id": late_id, "result": {"late": true}}))
        .await;
    ext.send(json!({"id": id, "result": {"mine": true}})).await;
    assert_eq!(next.await.unwrap().unwrap(), json!({"mine": true}));
    assert!(conn.is_open());
}

#[tokio::test]
async fn dropping_the_request_future_withdraws_it() {
    let (bridge, port) = start(quiet_config());
    let (mut ext, conn) = ready(&bridge, port, "p-drop").await;
    let c = conn.clone();
    let h = tokio::spawn(async move { c.request("cdp", json!({}), None, LONG).await });
    ext.recv_request().await;
    assert_eq!(conn.pending_requests(), 1);
    h.abort();
    let _ = h.await;
    assert_eq!(conn.pending_requests(), 0);
}

#[tokio::test]
async fn disconnect_fails_every_pending_request_at_once() {
    let (bridge, port) = start(quiet_config());
    let mut events = bridge.subscribe();
    let (mut ext, conn) = ready(&bridge, port, "p-gone").await;
    assert_eq!(
        events.recv().await.unwrap(),
        BridgeEvent::Connected(conn.id())
    );
    let mut handles = Vec::new();
    for i in 0..8 {
        let c = conn.clone();
        handles.push(tokio::spawn(async move {
            c.request("cdp", json!({"i": i}), None, LONG).await
        }));
    }
    for _ in 0..8 {
        ext.recv_request().await;
    }
    let dropped_at = Instant::now();
    drop(ext); // no close frame: the socket just goes away
    for h in handles {
        let e = h.await.unwrap().unwrap_err();
        assert_eq!(e.code, codes::DISCONNECTED, "{e}");
        assert!(e.message.contains("Chrome/156"), "{e}");
    }
    let took = dropped_at.elapsed();
    eprintln!("8 pending requests (30 s deadline) failed {took:?} after the disconnect");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    conn.closed().await;
    assert!(!conn.is_open());
    assert_eq!(
        events.recv().await.unwrap(),
        BridgeEvent::Disconnected(conn.id())
    );
    assert!(bridge.connections().is_empty());
    // Later requests fail at once too.
    let e = conn
        .request("cdp", json!({}), None, LONG)
        .await
        .unwrap_err();
    assert_eq!(e.code, codes::DISCONNECTED);
    assert_eq!(
        conn.notify("x", json!({})).unwrap_err().code,
        codes::DISCONNECTED
    );
}

#[tokio::test]
async fn two_profiles_are_isolated() {
    let (bridge, port) = start(quiet_config());
    let (mut a, ca) = ready(&bridge, port, "p-A").await;
    let (mut b, cb) = ready(&bridge, port, "p-B").await;
    assert_ne!(ca.id(), cb.id());
    assert_eq!(
        bridge
            .connections()
            .iter()
            .map(|c| c.id())
            .collect::<Vec<_>>(),
        vec![ca.id(), cb.id()]
    );
    let (ca2, cb2) = (ca.clone(), cb.clone());
    let ra = tokio::spawn(async move { ca2.request("cdp", json!({"who": "A"}), None, LONG).await });
    let rb = tokio::spawn(async move { cb2.request("cdp", json!({"who": "B"}), None, LONG).await });
    let (ida, _, pa) = a.recv_request().await;
    let (idb, _, pb) = b.recv_request().await;
    assert_eq!(
        (pa["who"].as_str(), pb["who"].as_str()),
        (Some("A"), Some("B"))
    );
    assert_eq!(ida, idb, "each connection numbers its own requests");

    // B answers A's id (which is also its own): it resolves B's request only.
    b.send(json!({"id": idb, "result": {"from": "B"}})).await;
    assert_eq!(rb.await.unwrap().unwrap(), json!({"from": "B"}));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!ra.is_finished(), "a reply on B resolved a request on A");
    // B answers again and invents ids: still nothing for A.
    b.send(json!({"id": ida, "result": {"from": "B again"}}))
        .await;
    b.send(json!({"id": ida + 1, "result": {"from": "B"}}))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!ra.is_finished());
    assert_eq!(ca.pending_requests(), 1);

    // B's events go to B's consumer only.
    let mut ea = ca.take_events().unwrap();
    let mut eb = cb.take_events().unwrap();
    b.send(json!({"event": "tab.closed", "params": {"tabId": 9}}))
        .await;
    assert_eq!(eb.recv().await.unwrap().params["tabId"], 9);
    assert!(ea.try_recv().is_err());

    a.send(json!({"id": ida, "result": {"from": "A"}})).await;
    assert_eq!(ra.await.unwrap().unwrap(), json!({"from": "A"}));

    // B leaving does not disturb A.
    drop(b);
    cb.closed().await;
    assert!(ca.is_open());
    let ca2 = ca.clone();
    let r = tokio::spawn(async move { ca2.request("ping", json!({}), None, LONG).await });
    let (id, _, _) = a.recv_request().await;
    a.send(json!({"id": id, "result": {}})).await;
    assert_eq!(r.await.unwrap().unwrap(), json!({}));
}

// ---------------------------------------------------------------- identity, liveness

#[tokio::test]
async fn set_name_updates_every_connection_and_the_probe() {
    let (bridge, port) = start(quiet_config());
    let (mut a, _) = ready(&bridge, port, "p-1").await;
    let (mut b, _) = ready(&bridge, port, "p-2").await;
    bridge.set_name("Cursor");
    for ext in [&mut a, &mut b] {
        assert_eq!(
            ext.recv_json().await,
            json!({"event": "instance.updated", "params": {"name": "Cursor"}})
        );
    }
    assert_eq!(bridge.identity().name, "Cursor");
    assert_eq!(
        fetch_status(port, &test_secret(), Duration::from_secs(2))
            .await
            .unwrap()["name"],
        "Cursor"
    );
    let mut c = Ext::open(port).await;
    assert_eq!(c.hello("p-3").await["result"]["name"], "Cursor");
}

#[tokio::test]
async fn pings_both_ways() {
    let (bridge, port) = start(BridgeConfig {
        ping_interval: Duration::from_millis(200),
        ..base_config()
    });
    let (mut ext, conn) = ready(&bridge, port, "p-ping").await;
    ext.send(json!({"id": 2, "method": "ping", "params": {}}))
        .await;
    // The answer, and tabmux's own pings, arrive in some order.
    let mut answered = false;
    let mut pinged = 0;
    while !(answered && pinged >= 2) {
        let v = ext.recv_json().await;
        if v["id"] == 2 && v.get("result").is_some() {
            assert_eq!(v["result"], json!({}));
            answered = true;
        } else {
            assert_eq!(v["method"], "ping", "{v}");
            pinged += 1;
            ext.send(json!({"id": v["id"], "result": {}})).await;
        }
    }
    assert!(conn.is_open());
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let (bridge, port) = start(BridgeConfig {
        idle_timeout: Duration::from_millis(400),
        ..quiet_config()
    });
    let (mut ext, conn) = ready(&bridge, port, "p-idle").await;
    let started = Instant::now();
    assert_eq!(ext.recv_close().await, Some(1000));
    conn.closed().await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(conn.close_reason().unwrap().contains("no frame"));
}

#[tokio::test]
async fn wait_for_connection_gives_the_primary() {
    let (bridge, port) = start(quiet_config());
    assert!(
        bridge
            .wait_for_connection(Duration::from_millis(100))
            .await
            .is_none()
    );
    let b2 = bridge.clone();
    let waiter = tokio::spawn(async move { b2.wait_for_connection(Duration::from_secs(10)).await });
    let (first, c1) = ready(&bridge, port, "p-first").await;
    let got = waiter.await.unwrap().expect("a connection");
    assert_eq!(got.id(), c1.id());
    let (_second, c2) = ready(&bridge, port, "p-second").await;
    assert_eq!(
        bridge.wait_for_connection(LONG).await.unwrap().id(),
        c1.id()
    );
    drop(first);
    c1.closed().await;
    assert_eq!(
        bridge.wait_for_connection(LONG).await.unwrap().id(),
        c2.id()
    );
}

#[tokio::test]
async fn close_and_shutdown() {
    let (bridge, port) = start(quiet_config());
    let (mut a, ca) = ready(&bridge, port, "p-a").await;
    ca.close();
    assert_eq!(a.recv_close().await, Some(1000));
    ca.closed().await;

    let (mut b, cb) = ready(&bridge, port, "p-b").await;
    let cb2 = cb.clone();
    let pending = tokio::spawn(async move { cb2.request("cdp", json!({}), None, LONG).await });
    b.recv_request().await;
    bridge.shutdown();
    assert_eq!(
        pending.await.unwrap().unwrap_err().code,
        codes::DISCONNECTED
    );
    assert_eq!(b.recv_close().await, Some(1001));
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The listener is gone once the accept loop has ended.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn a_shutting_down_bridge_answers_no_probe() {
    // A request already accepted when shutdown starts must not find a live instance:
    // the extension would connect to it again and take the leaving tabmux for back.
    let (bridge, port) = start(quiet_config());
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await; // accepted, head not sent yet
    bridge.shutdown();
    s.write_all(format!("GET /tabmux HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
}

// ---------------------------------------------------------------- status

#[tokio::test]
async fn status_report_lists_instances_browsers_and_stale_entries() {
    let dir = common_bridge::TempDir::new("status");
    let range = common_bridge::free_block(3);
    let meta = InstanceMeta::for_this_process(new_instance_id());
    let mut claim = claim_port(dir.path(), range, &meta).unwrap();
    let port = claim.port();
    std::fs::write(
        auth::secret_path(dir.path()),
        format!("{}\n", test_secret().to_hex()),
    )
    .unwrap();
    std::fs::set_permissions(
        auth::secret_path(dir.path()),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let bridge = Bridge::start(
        claim.take_listener().unwrap(),
        Identity::new(meta.instance_id.clone(), "Claude Code"),
        quiet_config(),
    )
    .unwrap();
    // A crashed owner's leftovers on another port: metadata, free lock.
    let stale_port = range.last();
    let mut old = InstanceMeta::for_this_process("old");
    old.pid = 999_999;
    old.port = stale_port;
    old.client_name = Some("Cursor".into());
    std::fs::write(
        dir.path().join(format!("port-{stale_port}.json")),
        serde_json::to_vec(&old).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join(format!("port-{stale_port}.lock")), b"").unwrap();

    let report = status_report(dir.path(), range).await;
    assert_eq!(report.instances.len(), 1, "{report:?}");
    let text = report.to_string();
    eprintln!("{text}");
    assert!(text.contains(&format!("port {port}")), "{text}");
    assert!(
        text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    assert!(text.contains("\"Claude Code\""), "{text}");
    assert!(text.contains("no browser"), "{text}");
    assert!(
        text.contains("stale") && text.contains(&format!("port {stale_port}")),
        "{text}"
    );
    assert!(text.contains("was pid 999999"), "{text}");

    let (_ext, _conn) = ready(&bridge, port, "p-status").await;
    let report = status_report(dir.path(), range).await;
    let text = report.to_string();
    eprintln!("{text}");
    assert_eq!(report.instances[0].browsers.len(), 1);
    assert!(
        text.contains("browser Chrome/156.0.8078.73 (profile p-status)"),
        "{text}"
    );
    assert!(!text.contains("no browser"), "{text}");
    // The stale record was removed after the first report.
    assert!(!text.contains("stale"), "{text}");
    assert!(!dir.path().join(format!("port-{stale_port}.json")).exists());

    drop(claim);
    let report = status_report(dir.path(), range).await;
    assert!(report.instances.is_empty());
    assert!(
        report
            .to_string()
            .starts_with("no tabmux instance is running")
    );
}

#[tokio::test]
async fn probe_of_something_else_is_not_tabmux() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            .await;
    });
    let e = fetch_probe(port, Duration::from_secs(2)).await.unwrap_err();
    assert!(e.contains("not tabmux"), "{e}");
}

// ---------------------------------------------------------------- properties: codec

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-4000i32..4000).prop_map(|x| Value::from(f64::from(x) / 8.0)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(".{0,8}", arb_json(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let id = 1u64..=u64::MAX;
    prop_oneof![
        (
            id.clone(),
            ".{1,20}",
            arb_object(),
            proptest::option::of(".{0,10}")
        )
            .prop_map(|(id, method, params, trace)| Frame::Request {
                id,
                method,
                params,
                trace
            }),
        (id.clone(), arb_json()).prop_map(|(id, result)| Frame::Reply { id, result }),
        (
            id,
            "[A-Z_]{1,12}",
            ".{0,30}",
            proptest::option::of(arb_json().prop_filter("null is no data", |v| !v.is_null()))
        )
            .prop_map(|(id, code, message, data)| Frame::Error {
                id,
                error: WireError {
                    code,
                    message,
                    data
                }
            }),
        (".{1,20}", arb_object()).prop_map(|(event, params)| Frame::Event { event, params }),
    ]
}

proptest! {
    #[test]
    fn codec_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = codec::decode(&text) {
            // The answer is always a well-formed frame.
            let answer = codec::decode(&codec::bad_request_answer(&e)).unwrap();
            let is_answer = matches!(answer, Frame::Error { .. } | Frame::Event { .. });
            prop_assert!(is_answer);
        }
    }

    #[test]
    fn codec_never_panics_on_any_json(v in arb_json(), extra in arb_object()) {
        let _ = codec::decode(&v.to_string());
        // Objects with frame-ish keys of every type.
        let mut m = extra.as_object().unwrap().clone();
        for (k, val) in [("id", &v), ("method", &v), ("result", &v), ("error", &v), ("event", &v), ("params", &v), ("trace", &v)] {
            m.insert(k.to_owned(), val.clone());
            let _ = codec::decode(&Value::Object(m.clone()).to_string());
        }
    }

    #[test]
    fn codec_round_trips(frame in arb_frame()) {
        let text = codec::encode(&frame);
        prop_assert_eq!(codec::decode(&text).unwrap(), frame);
    }
}

// ---------------------------------------------------------------- properties: handshake

fn hex64() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}"
}

proptest! {
    #[test]
    fn handshake_proofs_hold_only_for_their_exact_inputs(
        key in any::<[u8; 32]>(),
        tn in hex64(), en in hex64(), other in hex64(),
        port in 1u16..,
        id in "[a-z0-9]{1,32}",
        cut in 0usize..64,
        flip in 0usize..64,
    ) {
        let s = Secret::from_bytes(key);
        let ext = auth::extension_proof(&s, &tn, &en, port);
        let tab = auth::tabmux_proof(&s, &tn, &en, port, &id);
        let ext_parts = [tn.as_str(), en.as_str(), &port.to_string()];
        let tab_parts = [tn.as_str(), en.as_str(), &port.to_string(), id.as_str()];
        // The right proofs pass.
        prop_assert!(s.verify(auth::LABEL_EXTENSION, &ext_parts, &ext));
        prop_assert!(s.verify(auth::LABEL_TABMUX, &tab_parts, &tab));
        // Replay: a proof for another challenge (or another extension nonce) fails.
        prop_assume!(other != tn && other != en);
        prop_assert!(!s.verify(auth::LABEL_EXTENSION, &[&other, &en, &port.to_string()], &ext));
        prop_assert!(!s.verify(auth::LABEL_TABMUX, &[&tn, &other, &port.to_string(), &id], &tab));
        // Wrong port, wrong instance id.
        let port2 = port.wrapping_add(1).max(1).to_string();
        prop_assert!(!s.verify(auth::LABEL_EXTENSION, &[&tn, &en, &port2], &ext));
        let id2 = format!("{}x", id);
        prop_assert!(!s.verify(auth::LABEL_TABMUX, &[&tn, &en, &port.to_string(), &id2], &tab));
        // Reflection: one direction's proof is never the other's.
        prop_assert!(!s.verify(auth::LABEL_TABMUX, &[&tn, &en, &port.to_string(), ""], &ext));
        prop_assert_ne!(&ext, &tab);
        // Truncated or altered proofs fail.
        prop_assert!(!s.verify(auth::LABEL_EXTENSION, &ext_parts, &ext[..cut]));
        let mut altered = ext.clone().into_bytes();
        altered[flip] = if altered[flip] == b'0' { b'1' } else { b'0' };
        prop_assert!(!s.verify(auth::LABEL_EXTENSION, &ext_parts, &String::from_utf8(altered).unwrap()));
        // Another secret fails.
        let mut k2 = key;
        k2[0] ^= 1;
        prop_assert!(!Secret::from_bytes(k2).verify(auth::LABEL_EXTENSION, &ext_parts, &ext));
    }
}

/// Sends `params` as the hello on a fresh connection; returns the answer and the close code.
async fn hello_with(port: u16, make: impl FnOnce(&Ext) -> Value) -> (Value, Option<u16>) {
    let mut ext = Ext::open(port).await;
    let params = make(&ext);
    ext.send(json!({"id": 1, "method": "hello", "params": params}))
        .await;
    let answer = ext.recv_json().await;
    (answer, ext.recv_close().await)
}

#[tokio::test]
async fn hellos_without_the_right_proof_are_refused_and_nothing_crosses() {
    let (bridge, port) = start(quiet_config());
    // A good hello, captured, then replayed on another connection (another challenge).
    let mut first = Ext::open(port).await;
    let (captured, _) = first.hello_params(&test_secret(), "p-victim");
    first
        .send(json!({"id": 1, "method": "hello", "params": captured.clone()}))
        .await;
    assert!(first.recv_json().await["result"]["proof"].is_string());
    let other_port = port.wrapping_add(1);
    type MakeHello = Box<dyn FnOnce(&Ext) -> Value>;
    let cases: Vec<(&str, MakeHello)> = vec![
        ("replayed", Box::new(move |_| captured)),
        (
            "another secret",
            Box::new(|e| e.hello_params(&Secret::from_bytes([9; 32]), "p").0),
        ),
        (
            "another port",
            Box::new(move |e| {
                let n = auth::nonce().unwrap();
                let proof = auth::extension_proof(&test_secret(), &e.challenge, &n, other_port);
                json!({"protocol": 1, "nonce": n, "proof": proof})
            }),
        ),
        (
            "truncated",
            Box::new(|e| {
                let (mut p, _) = e.hello_params(&test_secret(), "p");
                let t = p["proof"].as_str().unwrap()[..63].to_owned();
                p["proof"] = json!(t);
                p
            }),
        ),
        (
            "tabmux's label",
            Box::new(|e| {
                let n = auth::nonce().unwrap();
                let proof = auth::tabmux_proof(&test_secret(), &e.challenge, &n, e.port, "");
                json!({"protocol": 1, "nonce": n, "proof": proof})
            }),
        ),
        (
            "no proof",
            Box::new(|_| json!({"protocol": 1, "nonce": auth::nonce().unwrap()})),
        ),
        (
            "a nonce that is not one",
            Box::new(|e| {
                let proof = auth::extension_proof(&test_secret(), &e.challenge, "x", e.port);
                json!({"protocol": 1, "nonce": "x", "proof": proof})
            }),
        ),
    ];
    for (what, make) in cases {
        let (answer, close) = hello_with(port, make).await;
        assert_eq!(answer["error"]["code"], "UNAUTHORIZED", "{what}: {answer}");
        assert!(answer.get("result").is_none(), "{what}");
        let msg = answer["error"]["message"].as_str().unwrap();
        assert!(msg.contains("tabmux extension install"), "{what}: {msg}");
        assert_eq!(close, Some(4002), "{what}");
    }
    // Only the good one is a connection.
    assert_eq!(bridge.connections().len(), 1);
}

#[tokio::test]
async fn before_authentication_at_most_16_kib_is_read() {
    let (bridge, port) = start(quiet_config());
    let mut ext = Ext::open(port).await;
    let (mut p, _) = ext.hello_params(&test_secret(), "p-big");
    p["browser"] = json!("b".repeat(20 << 10));
    ext.send(json!({"id": 1, "method": "hello", "params": p}))
        .await;
    let (code, reason) = ext.recv_close_reason().await;
    assert_eq!(code, Some(1009), "{reason}");
    assert!(bridge.connections().is_empty());
    // A normal one still passes.
    let (_ext, _conn) = ready(&bridge, port, "p-fine").await;
}

#[tokio::test]
async fn unauthenticated_connections_are_capped_oldest_out() {
    let (bridge, port) = start(BridgeConfig {
        max_preauth: 3,
        ..quiet_config()
    });
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(Ext::open(port).await);
    }
    // A fourth closes the oldest; the newest can still authenticate.
    let mut fourth = Ext::open(port).await;
    let (code, _) = idle[0].recv_close_reason().await;
    assert_eq!(code, None, "dropped without ceremony");
    fourth.hello("p-4").await;
    connection_of(&bridge, "p-4").await;
    // An authenticated connection no longer counts: one more idle one fits...
    idle.push(Ext::open(port).await);
    idle[1].expect_silence(Duration::from_millis(200)).await;
    // ... and the next closes the oldest again.
    idle.push(Ext::open(port).await);
    assert_eq!(idle[1].recv_close_reason().await.0, None);
    idle[2].expect_silence(Duration::from_millis(200)).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(2), fourth.ws.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn authenticated_connections_are_capped() {
    let (bridge, port) = start(BridgeConfig {
        max_connections: 2,
        ..quiet_config()
    });
    let (_a, _) = ready(&bridge, port, "p-a").await;
    let (_b, _) = ready(&bridge, port, "p-b").await;
    let mut c = Ext::open(port).await;
    let (p, _) = c.hello_params(&test_secret(), "p-c");
    c.send(json!({"id": 1, "method": "hello", "params": p}))
        .await;
    let r = c.recv_json().await;
    assert_eq!(r["error"]["code"], "TOO_LARGE", "{r}");
    assert_eq!(c.recv_close().await, Some(4008));
    assert_eq!(bridge.connections().len(), 2);
}

#[tokio::test]
async fn the_event_queue_is_bounded_in_bytes() {
    let (bridge, port) = start(BridgeConfig {
        event_buffer_bytes: 64 << 10,
        ..quiet_config()
    });
    let (mut ext, conn) = ready(&bridge, port, "p-bytes").await;
    let mut events = conn.take_events().unwrap();
    let blob = "x".repeat(10 << 10);
    for i in 0..20 {
        ext.send(json!({"event": "cdp.event", "params": {"i": i, "blob": blob}}))
            .await;
    }
    let c = conn.clone();
    let req = tokio::spawn(async move { c.request("ping", json!({}), None, LONG).await });
    let (id, _, _) = ext.recv_request().await;
    ext.send(json!({"id": id, "result": {}})).await;
    req.await.unwrap().unwrap();
    let kept = 20 - conn.dropped_events();
    assert!(
        (5..=7).contains(&kept),
        "{kept} events of 10 KiB kept under 64 KiB"
    );
    for i in 0..kept {
        assert_eq!(events.recv().await.unwrap().params["i"], i);
    }
    // Read, the room is back.
    ext.send(json!({"event": "cdp.event", "params": {"i": 99}}))
        .await;
    assert_eq!(events.recv().await.unwrap().params["i"], 99);
}

// ---------------------------------------------------------------- properties: correlation

#[derive(Debug, Clone)]
enum Op {
    New,
    Reply(usize),
    Fail(usize),
    Timeout(usize),
    Disconnect,
}

fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(Op::New),
            3 => (0usize..16).prop_map(Op::Reply),
            1 => (0usize..16).prop_map(Op::Fail),
            2 => (0usize..16).prop_map(Op::Timeout),
            1 => Just(Op::Disconnect),
        ],
        0..60,
    )
}

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Waiting,
    Reply(u64),
    Fail(u64),
    Timeout,
    Disconnected,
}

proptest! {
    /// The correlation table: every request resolves exactly once, with its own reply,
    /// its own timeout, or the disconnect.
    #[test]
    fn correlation_table_resolves_each_request_once(ops in arb_ops()) {
        let pending = Pending::new();
        let gone = WireError::new(codes::DISCONNECTED, "gone");
        let mut reqs: Vec<(u64, Option<tokio::sync::oneshot::Receiver<_>>, Expect)> = Vec::new();
        let mut next_id = 1u64;
        let mut closed = false;
        for op in ops {
            match op {
                Op::New => {
                    let id = next_id;
                    next_id += 1;
                    match pending.register(id) {
                        Ok(rx) => { prop_assert!(!closed); reqs.push((id, Some(rx), Expect::Waiting)); }
                        Err(e) => { prop_assert!(closed); prop_assert_eq!(e.code, codes::DISCONNECTED); }
                    }
                }
                Op::Reply(i) | Op::Fail(i) | Op::Timeout(i) if reqs.is_empty() => { let _ = i; }
                Op::Reply(i) => {
                    let n = reqs.len();
                    let (id, _, st) = &mut reqs[i % n];
                    let delivered = pending.resolve(*id, Ok(serde_json::value::RawValue::from_string(id.to_string()).unwrap()));
                    prop_assert_eq!(delivered, *st == Expect::Waiting);
                    if delivered { *st = Expect::Reply(*id); }
                }
                Op::Fail(i) => {
                    let n = reqs.len();
                    let (id, _, st) = &mut reqs[i % n];
                    let delivered = pending.resolve(*id, Err(WireError::new("TAB_BUSY", id.to_string())));
                    prop_assert_eq!(delivered, *st == Expect::Waiting);
                    if delivered { *st = Expect::Fail(*id); }
                }
                Op::Timeout(i) => {
                    let n = reqs.len();
                    let (id, _, st) = &mut reqs[i % n];
                    let withdrawn = pending.cancel(*id);
                    prop_assert_eq!(withdrawn, *st == Expect::Waiting);
                    if withdrawn { *st = Expect::Timeout; }
                }
                Op::Disconnect => {
                    let waiting = reqs.iter().filter(|r| r.2 == Expect::Waiting).count();
                    let failed = pending.close(gone.clone());
                    prop_assert_eq!(failed, if closed { 0 } else { waiting });
                    closed = true;
                    for r in reqs.iter_mut().filter(|r| r.2 == Expect::Waiting) { r.2 = Expect::Disconnected; }
                }
            }
        }
        prop_assert_eq!(pending.len(), reqs.iter().filter(|r| r.2 == Expect::Waiting).count());
        for (id, rx, st) in &mut reqs {
            let got = rx.take().unwrap().try_recv();
            match st {
                Expect::Waiting => prop_assert!(matches!(got, Err(tokio::sync::oneshot::error::TryRecvError::Empty))),
                Expect::Timeout => prop_assert!(matches!(got, Err(tokio::sync::oneshot::error::TryRecvError::Closed))),
                Expect::Reply(r) => prop_assert_eq!(got.unwrap().unwrap().get().to_string(), r.to_string()),
                Expect::Fail(r) => prop_assert_eq!(got.unwrap().unwrap_err().message, r.to_string()),
                Expect::Disconnected => prop_assert_eq!(got.unwrap().unwrap_err().code, codes::DISCONNECTED),
            }
            let _ = id;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Answered,
    Refused,
    TimesOut,
}

fn arb_plan() -> impl Strategy<Value = (Vec<Kind>, Vec<usize>, Option<usize>)> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(Kind::Answered),
            1 => Just(Kind::Refused),
            1 => Just(Kind::TimesOut),
        ],
        1..7,
    )
    .prop_flat_map(|kinds| {
        let n = kinds.len();
        (
            Just(kinds),
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            proptest::option::of(0..=n),
        )
    })
}

async fn run_plan(kinds: Vec<Kind>, order: Vec<usize>, disconnect_after: Option<usize>) {
    let (bridge, port) = start(quiet_config());
    let (mut ext, conn) = ready(&bridge, port, "p-prop").await;
    let handles: Vec<_> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let c = conn.clone();
            let t = if *k == Kind::TimesOut {
                Duration::from_millis(100)
            } else {
                LONG
            };
            tokio::spawn(async move { c.request("cdp", json!({"i": i}), None, t).await })
        })
        .collect();
    let mut wire_id = HashMap::new();
    for _ in 0..kinds.len() {
        let (id, _, p) = ext.recv_request().await;
        wire_id.insert(p["i"].as_u64().unwrap() as usize, id);
    }
    let mut handles: Vec<Option<_>> = handles.into_iter().map(Some).collect();
    let mut outcomes: Vec<Option<Result<Value, WireError>>> = vec![None; kinds.len()];
    // The ones that time out do so before any reply is sent.
    for (i, k) in kinds.iter().enumerate() {
        if *k == Kind::TimesOut {
            outcomes[i] = Some(handles[i].take().unwrap().await.unwrap());
        }
    }
    // Replies in random order; late replies to the timed-out ones mixed in.
    let mut sent = 0;
    let mut cut = false;
    for &i in &order {
        if disconnect_after == Some(sent) {
            ext.ws.close(None).await.unwrap();
            cut = true;
            break;
        }
        let id = wire_id[&i];
        match kinds[i] {
            Kind::Answered => ext.send(json!({"id": id, "result": {"i": i}})).await,
            Kind::Refused => {
                ext.send(json!({"id": id, "error": {"code": "NOT_HELD", "message": i.to_string()}}))
                    .await
            }
            Kind::TimesOut => ext.send(json!({"id": id, "result": {"late": i}})).await,
        }
        if kinds[i] != Kind::TimesOut {
            sent += 1;
        }
    }
    let mut answered_before_cut = std::collections::HashSet::new();
    {
        let mut count = 0;
        for &i in &order {
            if kinds[i] == Kind::TimesOut {
                continue;
            }
            if cut && Some(count) >= disconnect_after {
                break;
            }
            answered_before_cut.insert(i);
            count += 1;
        }
    }
    for (i, h) in handles.iter_mut().enumerate() {
        if let Some(h) = h.take() {
            outcomes[i] = Some(
                tokio::time::timeout(Duration::from_secs(10), h)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
    }
    for (i, k) in kinds.iter().enumerate() {
        let got = outcomes[i].take().unwrap();
        match k {
            Kind::TimesOut => assert_eq!(got.unwrap_err().code, codes::TIMEOUT, "request {i}"),
            _ if !answered_before_cut.contains(&i) => {
                assert_eq!(got.unwrap_err().code, codes::DISCONNECTED, "request {i}")
            }
            Kind::Answered => assert_eq!(got.unwrap(), json!({"i": i}), "request {i}"),
            Kind::Refused => {
                let e = got.unwrap_err();
                assert_eq!(
                    (e.code.as_str(), e.message),
                    ("NOT_HELD", i.to_string()),
                    "request {i}"
                )
            }
        }
    }
    if !cut {
        assert_eq!(conn.pending_requests(), 0);
        assert!(conn.is_open());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    /// The same property over a real socket: random reply orders, late replies, an
    /// optional disconnect part-way.
    #[test]
    fn correlation_over_a_real_socket((kinds, order, disconnect_after) in arb_plan()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_plan(kinds, order, disconnect_after));
    }
}
