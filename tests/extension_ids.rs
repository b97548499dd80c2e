//! tabmux accepts the extension under several ids: the one it has loaded unpacked (fixed
//! by the manifest's `key`) and the Chrome Web Store's, or the ids `--extension-id`
//! lists. Real sockets on 127.0.0.1, the real binary.

mod common_bridge;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common_bridge::{TempDir, free_block};
use tabmux::bridge::{
    Bridge, BridgeConfig, DEFAULT_EXTENSION_ID, Identity, extension_origin, known_extension_ids,
};
use tokio::net::TcpStream;
use tokio_tungstenite::client_async;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const A: &str = "aaaabbbbccccddddeeeeffffgggghhhh";
const B: &str = "ppppoooonnnnmmmmllllkkkkjjjjiiii";
const C: &str = "abcdefghijklmnopabcdefghijklmnop";

/// The HTTP status of a WebSocket upgrade to `/extension` with `Origin: origin`.
async fn upgrade_status(port: u16, origin: &str) -> u16 {
    let mut req = format!("ws://127.0.0.1:{port}/extension")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("Origin", origin.parse().unwrap());
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let res = tokio::time::timeout(Duration::from_secs(10), client_async(req, tcp))
        .await
        .expect("the bridge answers the upgrade within 10 s");
    match res {
        Ok((_ws, resp)) => resp.status().as_u16(),
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("upgrade with {origin}: {e}"),
    }
}

#[test]
fn by_default_the_unpacked_id_and_the_store_id_are_known() {
    let ids = known_extension_ids();
    assert_eq!(ids[0], DEFAULT_EXTENSION_ID);
    let cfg = BridgeConfig::default();
    for id in &ids {
        assert!(cfg.allows(&extension_origin(id)), "{id}");
    }
    assert!(!cfg.allows(&extension_origin(C)));
    assert!(!cfg.allows("chrome-extension://"));
}

#[tokio::test]
async fn the_bridge_accepts_every_listed_id_and_no_other() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = BridgeConfig {
        allowed_origin: extension_origin(A),
        other_origins: vec![extension_origin(B)],
        ..BridgeConfig::default()
    };
    let _bridge = Bridge::start(listener, Identity::new("inst-ids", "ids"), cfg).unwrap();
    assert_eq!(upgrade_status(port, &extension_origin(A)).await, 101);
    assert_eq!(upgrade_status(port, &extension_origin(B)).await, 101);
    assert_eq!(upgrade_status(port, &extension_origin(C)).await, 403);
    assert_eq!(
        upgrade_status(port, &extension_origin(DEFAULT_EXTENSION_ID)).await,
        403
    );
}

#[tokio::test]
async fn tabmux_takes_a_list_of_extension_ids() {
    let state = TempDir::new("ids");
    let range = free_block(1);
    let port = range.first();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .args(["--extension-id", &format!("{A},{B}")])
        .env("TABMUX_STATE_DIR", state.path())
        .env("TABMUX_PORTS", format!("{port}-{port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "tabmux did not listen on {port} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(upgrade_status(port, &extension_origin(B)).await, 101);
    assert_eq!(upgrade_status(port, &extension_origin(A)).await, 101);
    // The list replaces the built-in ids.
    assert_eq!(
        upgrade_status(port, &extension_origin(DEFAULT_EXTENSION_ID)).await,
        403
    );
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tabmux did not exit within 20 s of stdin closing");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_bad_extension_id_is_a_clear_error() {
    let state = TempDir::new("ids-bad");
    let out = Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .args(["--extension-id", &format!("{A},not-an-id")])
        .env("TABMUX_STATE_DIR", state.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"not-an-id\" is not an extension id"),
        "{err}"
    );
}

#[test]
fn extension_id_prints_the_known_ids() {
    let out = Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .args(["extension", "id"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(printed, known_extension_ids());
}
