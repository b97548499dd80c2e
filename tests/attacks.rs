//! The attacks of the trust model, end to end, each asserting what the attacker
//! obtained (nothing) and that the real user's tabmux and extension kept working:
//!
//! - a tabmux of another OS user (another secret) on a port of the range;
//! - a fake instance that copied a live instance's identity;
//! - a local process that forges the extension's `Origin`;
//! - unauthenticated reads of the probe, `/tabmux/status` and `/tabmux/tabs`;
//! - fake hellos and a thousand idle connections;
//! - hundreds of MB of garbage before and after authentication (RSS stays < 64 MB).
//!
//! The cross-user cases drop to a second Unix user (`tabmux-attacker`, created when
//! missing) and need root; without root only that uid drop is skipped (said on stderr)
//! and the attacker runs as the same user with its own state directory and secret.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::browser::{ExtBrowser, free_range};
use common::{Client, Fixtures, TempDir};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tabmux::auth::{self, Secret};
use tabmux::bridge::{Bridge, BridgeConfig, Identity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const EXT_ORIGIN: &str = "chrome-extension://knlmfncphidfkjhbiidejbkkebcfedhd";

/// The attacker's uid and gid: a second Unix user, created if missing. `None` (with a
/// message) when the tests do not run as root.
fn attacker() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "SKIPPED the uid drop: not root, so the attacker runs as this user with its own \
             state directory (another secret)"
        );
        return None;
    }
    let id = |flag: &str| {
        std::process::Command::new("id")
            .args([flag, "tabmux-attacker"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            })
    };
    if id("-u").is_none() {
        let made = std::process::Command::new("useradd")
            .args(["-M", "-s", "/usr/sbin/nologin", "tabmux-attacker"])
            .status()
            .expect("useradd runs");
        assert!(made.success(), "useradd tabmux-attacker");
    }
    Some((id("-u").expect("uid"), id("-g").expect("gid")))
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// The live ports of a state directory's registry.
fn live_ports(state: &Path) -> Vec<u16> {
    tabmux::registry::scan(state)
        .into_iter()
        .filter(|e| e.live)
        .map(|e| e.port)
        .collect()
}

async fn port_of(state: &Path) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = live_ports(state).first() {
            return *p;
        }
        assert!(Instant::now() < deadline, "no live port in {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET path` without any credentials: (status, body).
async fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0),
        body.to_owned(),
    )
}

/// The extension's status, as its popup shows it.
async fn extension_status(b: &ExtBrowser) -> Value {
    b.worker_eval("tabmux.status()").await
}

/// A browser with the extension (installed with the secret of `state`), fixtures, and
/// the victim's port range.
struct Setup {
    browser: ExtBrowser,
    fx: Fixtures,
    state: TempDir,
    ports: String,
    range: (u16, u16),
}

impl Setup {
    async fn new() -> Setup {
        let range = free_range(11);
        let state = TempDir::new("victim-state");
        let browser = ExtBrowser::start(range, state.path()).await;
        Setup {
            browser,
            fx: Fixtures::start().await,
            state,
            ports: format!("{}-{}", range.0, range.1),
            range,
        }
    }

    async fn victim(&self) -> Client {
        Client::start_in(
            "Victim",
            &[
                "--extension",
                "--ports",
                &self.ports,
                "--extension-wait",
                "15",
            ],
            self.state.path(),
        )
        .await
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        common::end_shared_browsers(self.state.path());
    }
}

// ------------------------------------------------------------ another user's tabmux

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_tabmux_gets_nothing_from_the_real_extension() {
    let mut s = Setup::new().await;
    let victim = s.victim().await;
    let secret_page = s.fx.url("who.html?who=victim&token=victim-session-token");
    victim
        .ok("browser_navigate", json!({"url": secret_page}))
        .await;
    let victim_port = port_of(s.state.path()).await;

    // The attacker: a real tabmux of its own (its own state directory, so its own
    // secret), on a port of the same range, as another OS user when we can.
    let astate = TempDir::new("attacker-state");
    let args = ["--extension", "--ports", &s.ports, "--extension-wait", "4"];
    let attacker_client = match attacker() {
        Some((uid, gid)) => {
            chown(astate.path(), uid, gid);
            Client::start_as("Attacker", &args, astate.path(), uid, gid).await
        }
        None => Client::start_in("Attacker", &args, astate.path()).await,
    };
    let attacker_port = port_of(astate.path()).await;
    assert_ne!(attacker_port, victim_port);
    // Give the extension time to find it and try.
    let st = {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let st = extension_status(&s.browser).await;
            let tried = st["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["code"] == "UNAUTHORIZED" && e["port"] == attacker_port);
            if tried {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "the extension never tried the attacker: {st}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert_eq!(st["instances"].as_array().unwrap().len(), 1, "{st}");
    assert_eq!(st["instances"][0]["name"], "Victim", "{st}");

    // What the attacker gets: no browser at all.
    for (tool, args) in [
        ("browser_tabs", json!({"action": "list", "all": true})),
        (
            "browser_tabs",
            json!({"action": "claim", "tabId": 1, "timeout": 1}),
        ),
        ("browser_navigate", json!({"url": "file:///etc/passwd"})),
        ("browser_snapshot", json!({})),
    ] {
        let e = attacker_client.err(tool, args.clone()).await;
        assert!(e.contains("NO_EXTENSION"), "{tool} {args}: {e}");
        assert!(!e.contains("victim"), "{tool}: {e}");
    }
    // Its own status (signed with its own secret) shows no browser; the victim's port
    // tells it nothing.
    let (code, body) = get(victim_port, "/tabmux/tabs").await;
    assert_eq!(code, 401);
    assert!(!body.contains("victim"), "{body}");

    // The victim still works, on the same tab.
    let snap = victim.ok("browser_snapshot", json!({})).await;
    assert!(snap.text.contains("Owner victim"), "{}", snap.text);
    drop(attacker_client);
    s.browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_identity_does_not_take_a_live_instances_tab() {
    let mut s = Setup::new().await;
    let victim = s.victim().await;
    victim
        .ok(
            "browser_navigate",
            json!({"url": s.fx.url("who.html?who=victim")}),
        )
        .await;
    let victim_port = port_of(s.state.path()).await;
    // The probe gives nothing to copy.
    let (code, body) = get(victim_port, "/tabmux").await;
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"tabmux": 1, "protocol": 1})
    );
    // Even with the instance id (read here from the victim's private registry), a fake
    // instance without the secret is not served.
    let meta = tabmux::registry::scan(s.state.path())
        .into_iter()
        .find(|e| e.live)
        .and_then(|e| e.meta)
        .unwrap();
    let port = (s.range.0..=s.range.1)
        .find(|p| *p != victim_port && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .unwrap();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut id = Identity::new(meta.instance_id.clone(), "Victim");
    id.lease_ms = 1_000_000_000_000;
    let fake = Bridge::start(
        listener,
        id,
        BridgeConfig {
            secret: Secret::generate().unwrap(),
            ..BridgeConfig::default()
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let st = extension_status(&s.browser).await;
        let tried = st["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["code"] == "UNAUTHORIZED" && e["port"] == port);
        if tried {
            break;
        }
        assert!(Instant::now() < deadline, "never tried: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(fake.connections().is_empty(), "the fake got a connection");
    let st = extension_status(&s.browser).await;
    assert_eq!(st["instances"].as_array().unwrap().len(), 1, "{st}");
    assert_eq!(st["instances"][0]["port"], victim_port, "{st}");
    let snap = victim.ok("browser_snapshot", json!({})).await;
    assert!(snap.text.contains("Owner victim"), "{}", snap.text);
    fake.shutdown();
    s.browser.close().await;
}

// ------------------------------------------------------------ a forged Origin

/// What a forger got on one connection: every frame it received.
async fn forge_once(port: u16) -> Vec<Value> {
    let mut req = format!("ws://127.0.0.1:{port}/extension")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", EXT_ORIGIN.parse().unwrap());
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)).await else {
        return vec![];
    };
    let Ok((mut ws, _)) = tokio_tungstenite::client_async(req, tcp).await else {
        return vec![];
    };
    let mut got = Vec::new();
    let read = async {
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
            if v["event"] == "challenge" {
                // A hello with every field right but the proof.
                let hello = json!({"id": 1, "method": "hello", "params": {
                    "protocol": 1, "nonce": auth::nonce().unwrap(), "proof": "00".repeat(32),
                    "extensionVersion": "0.1.0", "browser": "Chrome/1", "profileId": "p-forger"}});
                let _ = ws.send(Message::text(hello.to_string())).await;
                let _ = ws
                    .send(Message::text(
                        json!({"id": 2, "method": "ping", "params": {}}).to_string(),
                    ))
                    .await;
            }
            got.push(v);
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(8), read).await;
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_origin_is_refused_before_anything_and_the_extension_still_connects() {
    let mut s = Setup::new().await;
    // The forger hammers every port of the range from before the instance starts.
    let (first, last) = s.range;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut forgers = Vec::new();
    for port in first..=last {
        let stop = stop.clone();
        forgers.push(tokio::spawn(async move {
            let mut all = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                all.extend(forge_once(port).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            all
        }));
    }
    let victim = s.victim().await;
    victim
        .ok(
            "browser_navigate",
            json!({"url": s.fx.url("who.html?who=victim")}),
        )
        .await;
    let snap = victim.ok("browser_snapshot", json!({})).await;
    assert!(
        snap.text.contains("Owner victim"),
        "the real browser: {}",
        snap.text
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut frames = Vec::new();
    for f in forgers {
        frames.extend(f.await.unwrap());
    }
    assert!(
        frames.iter().any(|f| f["event"] == "challenge"),
        "the forger reached the bridge"
    );
    for f in &frames {
        let harmless = f["event"] == "challenge"
            || (f["id"] == 1 && f["error"]["code"] == "UNAUTHORIZED")
            || (f["id"] == 2 && f["error"]["code"] == "BAD_REQUEST");
        assert!(harmless, "the forger got {f}");
    }
    let st = extension_status(&s.browser).await;
    assert_eq!(st["instances"].as_array().unwrap().len(), 1, "{st}");
    s.browser.close().await;
}

// ------------------------------------------------------------ unauthenticated reads

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_callers_read_no_titles_urls_or_names() {
    let mut s = Setup::new().await;
    let victim = s.victim().await;
    let page = s.fx.url("who.html?who=victim&token=t0k3n-in-the-url");
    victim.ok("browser_navigate", json!({"url": page})).await;
    let port = port_of(s.state.path()).await;
    for path in ["/tabmux", "/tabmux/tabs", "/tabmux/status"] {
        let (code, body) = get(port, path).await;
        for secret in [
            "t0k3n", "victim", "Victim", "Page of", "who.html", "Chrome/",
        ] {
            assert!(
                !body.contains(secret),
                "{path} ({code}) tells {secret}: {body}"
            );
        }
        if path != "/tabmux" {
            assert_eq!(code, 401, "{path}: {body}");
        }
    }
    // A replayed or forged signature gets nothing either.
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let other = Secret::generate().unwrap();
    let h = auth::status_authorization(&other, port, "/tabmux/tabs").unwrap();
    tcp.write_all(
        format!(
            "GET /tabmux/tabs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {h}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    tcp.read_to_end(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 401"));

    // `tabmux status` (same user, same state directory) sees it all.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .args(["status", "--ports", &s.ports])
        .env("TABMUX_STATE_DIR", s.state.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("t0k3n-in-the-url"), "{text}");
    assert!(text.contains("\"Victim\""), "{text}");
    // Another user cannot use the victim's state directory.
    if let Some((uid, gid)) = attacker() {
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabmux"))
            .args(["status", "--ports", &s.ports])
            .env("TABMUX_STATE_DIR", s.state.path())
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{all}");
        assert!(!all.contains("t0k3n"), "{all}");
        assert!(
            all.contains("Permission denied") || all.contains("owned by"),
            "{all}"
        );
    }
    s.browser.close().await;
}

// ------------------------------------------------------------ floods

/// Raises this process's open-file limit (the test holds a thousand sockets).
fn raise_fd_limit(want: u64) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        if l.rlim_cur < want {
            l.rlim_cur = want.min(l.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_hellos_and_a_thousand_idle_connections_do_not_lock_the_extension_out() {
    raise_fd_limit(4096);
    let mut s = Setup::new().await;
    // The browser looks at another range until the flood is on.
    let elsewhere = free_range(2);
    s.browser
        .worker_eval(&format!(
            "tabmux.setRange({}, {})",
            elsewhere.0, elsewhere.1
        ))
        .await;
    let victim = s.victim().await;
    let port = port_of(s.state.path()).await;
    let pid = victim.pid();

    let mut idle = Vec::new();
    for _ in 0..1000 {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)).await {
            idle.push(c);
        }
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hellos = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let frames = forge_once_quick(port).await;
                assert!(
                    frames
                        .iter()
                        .all(|f| f["event"] == "challenge" || f["error"]["code"] == "UNAUTHORIZED"),
                    "{frames:?}"
                );
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds = open_fds(pid);
    assert!(
        fds < 100,
        "tabmux holds {fds} descriptors under 1000 idle connections"
    );
    // Now the extension looks at the victim's range, during the flood.
    s.browser
        .worker_eval(&format!("tabmux.setRange({}, {})", s.range.0, s.range.1))
        .await;
    let nav = victim
        .ok(
            "browser_navigate",
            json!({"url": s.fx.url("who.html?who=victim")}),
        )
        .await;
    assert!(!nav.is_error);
    let snap = victim.ok("browser_snapshot", json!({})).await;
    assert!(snap.text.contains("Owner victim"), "{}", snap.text);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = hellos.await.unwrap();
    assert!(n >= 30, "only {n} fake hellos were sent");
    eprintln!(
        "{n} fake hellos, {} idle connections, tabmux held {fds} fds",
        idle.len()
    );
    drop(idle);
    s.browser.close().await;
}

/// One fake hello with a wrong proof; returns what came back.
async fn forge_once_quick(port: u16) -> Vec<Value> {
    let mut req = format!("ws://127.0.0.1:{port}/extension")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", EXT_ORIGIN.parse().unwrap());
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)).await else {
        return vec![];
    };
    let Ok(Ok((mut ws, _))) = tokio::time::timeout(
        Duration::from_secs(2),
        tokio_tungstenite::client_async(req, tcp),
    )
    .await
    else {
        return vec![];
    };
    let mut got = Vec::new();
    let run = async {
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
            if v["event"] == "challenge" {
                let name = "x".repeat(4000);
                let hello = json!({"id": 1, "method": "hello", "params": {
                    "protocol": 1, "nonce": auth::nonce().unwrap(), "proof": "ab".repeat(32),
                    "browser": name, "profileId": name}});
                let _ = ws.send(Message::text(hello.to_string())).await;
            }
            got.push(v);
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), run).await;
    got
}

// ------------------------------------------------------------ memory

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A WebSocket to `port` with the extension's origin, past the HTTP upgrade.
async fn ws_to(
    port: u16,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let mut req = format!("ws://127.0.0.1:{port}/extension")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", EXT_ORIGIN.parse().unwrap());
    let cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(cfg), false)
        .await
        .expect("upgrade");
    ws
}

/// Writes a raw WebSocket frame header announcing `len` bytes of text, then up to
/// `send` bytes of it (masked with a zero key), as fast as the socket takes them.
async fn raw_flood(port: u16, announce: u64, send: usize) -> usize {
    let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)).await else {
        return 0;
    };
    let head = format!(
        "GET /extension HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {EXT_ORIGIN}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    if tcp.write_all(head.as_bytes()).await.is_err() {
        return 0;
    }
    let mut frame = vec![0x81u8, 0x80 | 127];
    frame.extend_from_slice(&announce.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    let mut sent = 0;
    if tcp.write_all(&frame).await.is_err() {
        return 0;
    }
    let chunk = vec![b'a'; 1 << 20];
    while sent < send {
        match tokio::time::timeout(Duration::from_secs(2), tcp.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break,
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bridge_traffic_keeps_tabmux_under_64_mb_and_serving() {
    let state = TempDir::new("mem-state");
    let range = free_range(2);
    let ports = format!("{}-{}", range.0, range.1);
    let victim = Client::start_in(
        "Victim",
        &["--extension", "--ports", &ports, "--extension-wait", "0.5"],
        state.path(),
    )
    .await;
    let pid = victim.pid();
    let port = port_of(state.path()).await;
    let secret = auth::load(state.path()).unwrap().expect("a secret");
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss_kib(pid)));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let baseline = rss_kib(pid);

    // Before authentication: connection after connection announces a 60 MiB frame and
    // pours data in, 16 at a time, until 200 MB went out (or 20 s passed); and request
    // heads of garbage.
    let pre_sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood_until = Instant::now() + Duration::from_secs(20);
    let mut floods = Vec::new();
    for _ in 0..16 {
        let pre_sent = pre_sent.clone();
        floods.push(tokio::spawn(async move {
            while pre_sent.load(std::sync::atomic::Ordering::Relaxed) < 200 << 20
                && Instant::now() < flood_until
            {
                let n = raw_flood(port, 60 << 20, 8 << 20).await;
                pre_sent.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                if let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)).await {
                    let junk = vec![b'x'; 64 << 10];
                    if tcp.write_all(&junk).await.is_ok() {
                        pre_sent.fetch_add(junk.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for f in floods {
        f.await.unwrap();
    }
    let pre = pre_sent.load(std::sync::atomic::Ordering::Relaxed);
    // After authentication: a fake extension with the secret sends garbage, events no
    // one reads, oversize frames, and never reads what tabmux answers.
    let mut post = 0usize;
    for round in 0..3 {
        let mut ws = ws_to(port).await;
        let challenge = ws.next().await.unwrap().unwrap();
        let c: Value = serde_json::from_str(challenge.to_text().unwrap()).unwrap();
        let tn = c["params"]["nonce"].as_str().unwrap().to_owned();
        let en = auth::nonce().unwrap();
        let proof = auth::extension_proof(&secret, &tn, &en, port);
        ws.send(Message::text(
            json!({"id": 1, "method": "hello", "params": {"protocol": 1, "nonce": en,
                   "proof": proof, "profileId": format!("p-flood-{round}")}})
            .to_string(),
        ))
        .await
        .unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert!(reply.to_text().unwrap().contains("\"result\""), "{reply:?}");
        let garbage = "{not json ".repeat(300_000); // 3 MB
        let event = format!(
            "{{\"event\":\"cdp.event\",\"params\":{{\"tabId\":1,\"method\":\"X\",\"params\":{{\"s\":\"{}\"}}}}}}",
            "e".repeat(2 << 20)
        );
        for i in 0..40 {
            let m = if i % 2 == 0 { &garbage } else { &event };
            if ws.send(Message::text(m.clone())).await.is_err() {
                break;
            }
            post += m.len();
        }
        // Oversize: 70 MB in one frame closes the connection (1009).
        let big = "z".repeat(70 << 20);
        post += big.len();
        let _ = ws.send(Message::text(big)).await;
        drop(ws);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    sampler.abort();
    let peak_kib = peak.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "sent {} MB before and {} MB after authentication; tabmux RSS {} KiB before, peak {} KiB",
        pre >> 20,
        post >> 20,
        baseline,
        peak_kib
    );
    assert!(
        pre + post > 300 << 20,
        "the attack sent {} MB",
        (pre + post) >> 20
    );
    assert!(peak_kib < 64 * 1024, "tabmux RSS peaked at {peak_kib} KiB");

    // Still serving: the probe, and a fresh authenticated connection's ping.
    let (code, _) = get(port, "/tabmux").await;
    assert_eq!(code, 200);
    let mut ws = ws_to(port).await;
    let c: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    let en = auth::nonce().unwrap();
    let proof = auth::extension_proof(&secret, c["params"]["nonce"].as_str().unwrap(), &en, port);
    ws.send(Message::text(
        json!({"id": 1, "method": "hello", "params": {"protocol": 1, "nonce": en, "proof": proof}})
            .to_string(),
    ))
    .await
    .unwrap();
    ws.send(Message::text(
        json!({"id": 2, "method": "ping", "params": {}}).to_string(),
    ))
    .await
    .unwrap();
    let mut answered = false;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        if m.to_text().unwrap_or("").contains("\"id\":2") {
            answered = true;
            break;
        }
    }
    assert!(answered, "a ping after the attack is answered");
    drop(victim);
}

// ------------------------------------------------------------ state dir and install DIR

fn tabmux_cli(args: &[&str], state: &Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .args(args)
        .env("TABMUX_STATE_DIR", state)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

fn set_mode(p: &Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn the_state_dir_is_private_and_never_followed_through_links() {
    let root = TempDir::new("state-cases");
    // Ours but too open (an older tabmux made it 0755): tightened.
    let open = root.path().join("open");
    std::fs::create_dir(&open).unwrap();
    set_mode(&open, 0o755);
    let ext = root.path().join("ext");
    let (ok, out) = tabmux_cli(&["extension", "install", ext.to_str().unwrap()], &open);
    assert!(ok, "{out}");
    assert_eq!(mode(&open), 0o700);
    assert_eq!(mode(&open.join("secret")), 0o600);

    // A symbolic link as the state dir: refused, with what to do.
    let link = root.path().join("link");
    std::os::unix::fs::symlink(&open, &link).unwrap();
    let (ok, out) = tabmux_cli(&["status"], &link);
    assert!(!ok);
    assert!(
        out.contains("symbolic link") && out.contains("TABMUX_STATE_DIR"),
        "{out}"
    );

    // A secret others could read: refused, with how to fix it.
    set_mode(&open.join("secret"), 0o644);
    let (ok, out) = tabmux_cli(&["extension", "install", ext.to_str().unwrap()], &open);
    assert!(!ok);
    assert!(
        out.contains("mode 0644") && out.contains("tabmux secret rotate"),
        "{out}"
    );
    // The fix works: rotate, and the install carries the new secret.
    std::fs::remove_file(open.join("secret")).unwrap();
    let (ok, out) = tabmux_cli(&["secret", "rotate"], &open);
    assert!(ok, "{out}");
    assert!(out.contains("Reinstall the extension"), "{out}");
    let (ok, out) = tabmux_cli(&["extension", "install", ext.to_str().unwrap()], &open);
    assert!(ok, "{out}");

    // A secret that is a link to someone else's file: refused, the file untouched.
    let other = root.path().join("other-file");
    std::fs::write(&other, "07".repeat(32)).unwrap();
    set_mode(&other, 0o600);
    let linked = root.path().join("linked");
    std::fs::create_dir(&linked).unwrap();
    std::os::unix::fs::symlink(&other, linked.join("secret")).unwrap();
    let (ok, out) = tabmux_cli(&["extension", "install", ext.to_str().unwrap()], &linked);
    assert!(!ok);
    assert!(out.contains("symbolic link"), "{out}");

    // Another user's state dir: refused.
    if let Some((uid, gid)) = attacker() {
        let theirs = root.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        chown(&theirs, uid, gid);
        let (ok, out) = tabmux_cli(&["status"], &theirs);
        assert!(!ok);
        assert!(out.contains(&format!("owned by uid {uid}")), "{out}");
    }
}

#[test]
fn extension_install_writes_a_private_copy_and_refuses_other_folders() {
    let root = TempDir::new("install-cases");
    let state = root.path().join("state");
    let dir = root.path().join("new").join("tabmux-extension");
    let (ok, out) = tabmux_cli(&["extension", "install", dir.to_str().unwrap()], &state);
    assert!(ok, "{out}");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("config.json")), 0o600);
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let secret = auth::load(&state).unwrap().unwrap();
    assert_eq!(cfg, json!({"secret": secret.to_hex()}));
    // Again into the same folder: an update.
    let (ok, out) = tabmux_cli(&["extension", "install", dir.to_str().unwrap()], &state);
    assert!(ok, "{out}");
    // A link planted in the copy is replaced, never written through.
    let bait = root.path().join("bait");
    std::fs::write(&bait, "untouched").unwrap();
    std::fs::remove_file(dir.join("config.json")).unwrap();
    std::os::unix::fs::symlink(&bait, dir.join("config.json")).unwrap();
    let (ok, out) = tabmux_cli(&["extension", "install", dir.to_str().unwrap()], &state);
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(&bait).unwrap(), "untouched");
    assert!(
        !std::fs::symlink_metadata(dir.join("config.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A folder that is a link: refused.
    let target = root.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let link = root.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (ok, out) = tabmux_cli(&["extension", "install", link.to_str().unwrap()], &state);
    assert!(!ok);
    assert!(out.contains("symbolic link"), "{out}");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

    // A folder with other things in it: refused, left as it was.
    let busy = root.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let (ok, out) = tabmux_cli(&["extension", "install", busy.to_str().unwrap()], &state);
    assert!(!ok);
    assert!(
        out.contains("not empty") && out.contains("new or empty folder"),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    // Another user's folder, even empty: refused.
    if let Some((uid, gid)) = attacker() {
        let theirs = root.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        chown(&theirs, uid, gid);
        let (ok, out) = tabmux_cli(&["extension", "install", theirs.to_str().unwrap()], &state);
        assert!(!ok);
        assert!(out.contains(&format!("owned by uid {uid}")), "{out}");
        assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_registry_files_are_private() {
    let state = TempDir::new("private-files");
    set_mode(state.path(), 0o755);
    let range = free_range(2);
    let ports = format!("{}-{}", range.0, range.1);
    let c = Client::start_in(
        "Private",
        &["--extension", "--ports", &ports, "--extension-wait", "0.2"],
        state.path(),
    )
    .await;
    let port = port_of(state.path()).await;
    assert_eq!(mode(state.path()), 0o700);
    assert_eq!(mode(&state.path().join("logs")), 0o700);
    let logs: Vec<_> = std::fs::read_dir(state.path().join("logs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!logs.is_empty());
    for f in logs.iter().cloned().chain([
        state.path().join("secret"),
        state.path().join(format!("port-{port}.lock")),
        state.path().join(format!("port-{port}.json")),
    ]) {
        assert_eq!(mode(&f), 0o600, "{f:?}");
    }
    // The secret is never logged.
    let secret = auth::load(state.path()).unwrap().unwrap().to_hex();
    for f in &logs {
        assert!(
            !std::fs::read_to_string(f).unwrap().contains(&secret),
            "{f:?}"
        );
    }
    drop(c);
}
