//! The direct link: tabmux speaks CDP itself, to a Chromium it launched (`--launch`) or
//! to an existing endpoint (`--cdp ws://…` or `--cdp http://host:port`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::launch::{LaunchOptions, Launched};
use super::{Channel, TabConn, TabInfo};
use crate::cdp::{CdpConnection, EVENT_QUEUE};
use crate::error::{Error, Result, codes};

const CALL: Duration = Duration::from_secs(30);

/// A browser reached over CDP directly.
pub struct DirectLink {
    pub conn: CdpConnection,
    launched: tokio::sync::Mutex<Option<Launched>>,
    /// Target id -> page session id, for the tabs this instance drives.
    sessions: Mutex<HashMap<String, String>>,
    /// Tabs this instance created (closed when it leaves).
    created: Mutex<Vec<String>>,
    /// Blank tabs the browser opened at start, reused before creating new ones.
    spare: Mutex<Vec<String>>,
    pub description: String,
    /// Tabs that pages of this instance opened (popups, target=_blank), attached and
    /// waiting to be adopted.
    opened: std::sync::Arc<Mutex<Vec<TabConn>>>,
}

#[derive(Deserialize)]
struct TargetInfo {
    #[serde(rename = "targetId")]
    target_id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    url: String,
}

#[derive(Deserialize)]
struct Targets {
    #[serde(rename = "targetInfos")]
    target_infos: Vec<TargetInfo>,
}

impl DirectLink {
    /// Launches a browser with `opts`.
    pub async fn launch(opts: &LaunchOptions) -> Result<DirectLink> {
        let launched = Launched::start(opts, Duration::from_secs(30)).await?;
        let conn = launched.conn.clone();
        let description = format!(
            "{} (launched by tabmux{})",
            launched.executable.display(),
            if opts.headed {
                ", headed"
            } else {
                ", headless"
            }
        );
        let link = DirectLink {
            conn,
            launched: tokio::sync::Mutex::new(Some(launched)),
            sessions: Mutex::new(HashMap::new()),
            created: Mutex::new(Vec::new()),
            spare: Mutex::new(Vec::new()),
            description,
            opened: Default::default(),
        };
        let targets: Targets = link
            .conn
            .call(None, "Target.getTargets", json!({}), CALL)
            .await?;
        *link.spare.lock().unwrap() = targets
            .target_infos
            .into_iter()
            .filter(|t| t.kind == "page" && (t.url == "about:blank" || t.url.is_empty()))
            .map(|t| t.target_id)
            .collect();
        Ok(link)
    }

    /// Connects to an existing browser: a `ws://…/devtools/browser/…` URL, or an
    /// `http://host:port` whose `/json/version` names it.
    pub async fn connect(endpoint: &str) -> Result<DirectLink> {
        let ws = if endpoint.starts_with("ws://") || endpoint.starts_with("wss://") {
            endpoint.to_string()
        } else if let Some(rest) = endpoint.strip_prefix("http://") {
            discover_ws(rest.trim_end_matches('/')).await?
        } else {
            return Err(Error::bad_request(format!(
                "--cdp {endpoint}: expected ws://host:port/devtools/browser/<id> or http://host:port"
            )));
        };
        let conn = connect_ws(&ws, CALL).await?;
        Ok(DirectLink {
            conn,
            launched: tokio::sync::Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            created: Mutex::new(Vec::new()),
            spare: Mutex::new(Vec::new()),
            description: format!("the browser at {endpoint}"),
            opened: Default::default(),
        })
    }

    /// Follows the browser's targets, so tabs that this instance's pages open become
    /// its tabs too. Call once, with the link in an `Arc`.
    pub async fn watch_targets(self: &std::sync::Arc<Self>) -> Result<()> {
        let mut events = self.conn.browser_events();
        self.conn
            .call_raw(
                None,
                "Target.setDiscoverTargets",
                json!({"discover": true}),
                CALL,
            )
            .await?;
        let weak = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if ev.method != "Target.targetCreated" {
                    continue;
                }
                let info = &ev.params["targetInfo"];
                let (Some(target), Some(opener)) =
                    (info["targetId"].as_str(), info["openerId"].as_str())
                else {
                    continue;
                };
                if info["type"].as_str() != Some("page") {
                    continue;
                }
                let Some(link) = weak.upgrade() else { return };
                if !link.sessions.lock().unwrap().contains_key(opener) {
                    continue;
                }
                link.created.lock().unwrap().push(target.to_string());
                match link.attach_target(target).await {
                    Ok(tab) => link.opened.lock().unwrap().push(tab),
                    Err(e) => tracing::debug!("could not follow a tab the page opened: {e}"),
                }
            }
        });
        Ok(())
    }

    /// Tabs the pages opened since the last call.
    pub fn take_opened(&self) -> Vec<TabConn> {
        std::mem::take(&mut self.opened.lock().unwrap())
    }

    pub fn is_alive(&self) -> bool {
        !self.conn.is_closed()
    }

    pub async fn browser_pid(&self) -> Option<u32> {
        self.launched.lock().await.as_ref().and_then(|l| l.pid())
    }

    async fn attach_target(&self, target_id: &str) -> Result<TabConn> {
        #[derive(Deserialize)]
        struct Attached {
            #[serde(rename = "sessionId")]
            session_id: String,
        }
        let a: Attached = self
            .conn
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
                CALL,
            )
            .await?;
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        self.conn.route(&a.session_id, tx);
        self.sessions
            .lock()
            .unwrap()
            .insert(target_id.to_string(), a.session_id.clone());
        Ok(TabConn {
            key: target_id.to_string(),
            channel: Channel::Direct {
                conn: self.conn.clone(),
                session: a.session_id,
            },
            events: rx,
        })
    }

    /// Opens a new tab in the background, held by this instance.
    pub async fn create_tab(&self) -> Result<TabConn> {
        let spare = self.spare.lock().unwrap().pop();
        let target_id = match spare {
            Some(t) => t,
            None => {
                #[derive(Deserialize)]
                struct Created {
                    #[serde(rename = "targetId")]
                    target_id: String,
                }
                let c: Created = self
                    .conn
                    .call(
                        None,
                        "Target.createTarget",
                        // A window of its own: a tab hidden behind another is not rendered
                        // (no frames, throttled timers), and screenshots of it stall.
                        json!({"url": "about:blank", "newWindow": true, "background": true}),
                        CALL,
                    )
                    .await?;
                c.target_id
            }
        };
        self.created.lock().unwrap().push(target_id.clone());
        self.attach_target(&target_id).await
    }

    /// Attaches to an existing tab of the browser.
    pub async fn claim(&self, target_id: &str) -> Result<TabConn> {
        if self.sessions.lock().unwrap().contains_key(target_id) {
            return Err(Error::bad_request(format!(
                "tab {target_id} is already one of your tabs"
            )));
        }
        let known = self.list_targets().await?;
        if !known.iter().any(|t| t.target_id == target_id) {
            return Err(Error::new(
                codes::NOT_FOUND,
                format!(
                    "there is no tab {target_id}; list tabs with browser_tabs {{action: \"list\", all: true}}"
                ),
            ));
        }
        self.attach_target(target_id).await
    }

    /// Stops driving a tab without closing it.
    pub async fn release(&self, target_id: &str) -> Result<()> {
        let session = self.sessions.lock().unwrap().remove(target_id);
        self.created.lock().unwrap().retain(|t| t != target_id);
        if let Some(s) = session {
            self.conn.unroute(&s);
            let _ = self
                .conn
                .call_raw(
                    None,
                    "Target.detachFromTarget",
                    json!({"sessionId": s}),
                    CALL,
                )
                .await;
        }
        Ok(())
    }

    /// Closes a tab and waits until it is gone.
    pub async fn close_tab(&self, target_id: &str) -> Result<()> {
        let session = self.sessions.lock().unwrap().remove(target_id);
        self.created.lock().unwrap().retain(|t| t != target_id);
        if let Some(s) = &session {
            self.conn.unroute(s);
        }
        self.conn
            .call_raw(
                None,
                "Target.closeTarget",
                json!({"targetId": target_id}),
                CALL,
            )
            .await?;
        Ok(())
    }

    async fn list_targets(&self) -> Result<Vec<TargetInfo>> {
        let t: Targets = self
            .conn
            .call(None, "Target.getTargets", json!({}), CALL)
            .await?;
        Ok(t.target_infos
            .into_iter()
            .filter(|t| t.kind == "page")
            .collect())
    }

    /// Every page of the browser, marked with whether this instance drives it.
    pub async fn list_all(&self) -> Result<Vec<TabInfo>> {
        let mine = self.sessions.lock().unwrap().clone();
        Ok(self
            .list_targets()
            .await?
            .into_iter()
            .map(|t| TabInfo {
                mine: mine.contains_key(&t.target_id),
                holder: None,
                waiters: Vec::new(),
                needs_consent: false,
                id: t.target_id,
                title: t.title,
                url: t.url,
            })
            .collect())
    }

    /// Leaves: closes the tabs this instance created in a browser it did not launch;
    /// closes a browser it launched.
    pub async fn shutdown(&self) {
        let launched = self.launched.lock().await.take();
        match launched {
            Some(l) => l.shutdown().await,
            None => {
                let created: Vec<String> = self.created.lock().unwrap().drain(..).collect();
                for t in created {
                    let _ = self.close_tab(&t).await;
                }
                let sessions: Vec<String> = self
                    .sessions
                    .lock()
                    .unwrap()
                    .drain()
                    .map(|(_, s)| s)
                    .collect();
                for s in sessions {
                    let _ = self
                        .conn
                        .call_raw(
                            None,
                            "Target.detachFromTarget",
                            json!({"sessionId": s}),
                            Duration::from_secs(2),
                        )
                        .await;
                }
            }
        }
    }
}

/// Reads `http://host:port/json/version` and returns its `webSocketDebuggerUrl`.
async fn discover_ws(host_port: &str) -> Result<String> {
    let fail = |m: String| Error::new(codes::NO_BROWSER, m);
    let io = async {
        let mut s = tokio::net::TcpStream::connect(host_port).await?;
        s.write_all(
            format!("GET /json/version HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        // The DevTools server may keep the connection open: read the head, then as many
        // bytes as it announces.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if let Some(len) = len
                    && buf.len() >= end + 4 + len
                {
                    break;
                }
            }
            if buf.len() > 1 << 20 {
                break;
            }
        }
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .map_err(|_| fail(format!("http://{host_port} did not answer within 10 s")))?
        .map_err(|e| {
            fail(format!(
                "cannot reach http://{host_port}: {e}. Is the browser running with --remote-debugging-port?"
            ))
        })?;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(body.trim()).map_err(|_| {
        fail(format!(
            "http://{host_port}/json/version did not answer with DevTools JSON"
        ))
    })?;
    v.get("webSocketDebuggerUrl")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            fail(format!(
                "http://{host_port}/json/version has no webSocketDebuggerUrl"
            ))
        })
}

/// Opens a CDP WebSocket and wraps it in a [`CdpConnection`].
pub async fn connect_ws(url: &str, timeout: Duration) -> Result<CdpConnection> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(256 << 20))
        .max_frame_size(Some(256 << 20));
    let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), false);
    let (ws, _) = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| Error::new(codes::NO_BROWSER, format!("{url} did not answer in time")))?
        .map_err(|e| Error::new(codes::NO_BROWSER, format!("cannot connect to {url}: {e}")))?;
    let (mut sink, mut stream) = ws.split();
    let (in_tx, in_rx) = mpsc::channel::<String>(1024);
    let (out_tx, mut out_rx) = mpsc::channel::<String>(1024);
    tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(Message::text(m)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let text = match msg {
                Message::Text(t) => t.to_string(),
                Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                Message::Close(_) => break,
                _ => continue,
            };
            if in_tx.send(text).await.is_err() {
                break;
            }
        }
    });
    Ok(CdpConnection::new(in_rx, out_tx))
}
