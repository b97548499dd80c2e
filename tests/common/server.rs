//! A small HTTP server for the fixture pages in `tests/fixtures`, reachable as two
//! sites (`127.0.0.1` and `localhost`), so a page can embed a cross-site
//! (out-of-process) iframe. It records every request and the bodies of form posts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub body: String,
}

#[derive(Clone)]
pub struct Fixtures {
    pub port: u16,
    pub log: Arc<Mutex<Vec<Request>>>,
}

impl Fixtures {
    /// Serves `tests/fixtures` on a free port of 127.0.0.1.
    pub async fn start() -> Fixtures {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l2 = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let log = l2.clone();
                tokio::spawn(async move {
                    let _ = handle(sock, log).await;
                });
            }
        });
        Fixtures { port, log }
    }

    /// A URL on the main site (127.0.0.1).
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// A URL on the other site (localhost).
    pub fn other(&self, path: &str) -> String {
        format!(
            "http://localhost:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// The recorded form posts.
    pub fn posts(&self) -> Vec<Request> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST")
            .cloned()
            .collect()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

async fn handle(mut sock: TcpStream, log: Arc<Mutex<Vec<Request>>>) -> std::io::Result<()> {
    loop {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > 1 << 20 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.lines();
        let first = lines.next().unwrap_or_default();
        let mut parts = first.split_whitespace();
        let method = parts.next().unwrap_or("GET").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let mut content_length = 0usize;
        let mut content_type = String::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => content_length = v.trim().parse().unwrap_or(0),
                    "content-type" => content_type = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = buf[head_end..].to_vec();
        while body.len() < content_length {
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.clone(), String::new()),
        };
        let body_text = String::from_utf8_lossy(&body).to_string();
        log.lock().unwrap().push(Request {
            method: method.clone(),
            path: target.clone(),
            content_type: content_type.clone(),
            body: body_text.clone(),
        });
        let (status, ctype, payload, extra): (&str, &str, Vec<u8>, String) = match (
            method.as_str(),
            path.as_str(),
        ) {
            ("POST", "/submit") => {
                let page = format!(
                    "<!doctype html><title>Submitted</title><h1>Submitted</h1><pre id=body>{}</pre>",
                    html_escape(&body_text)
                );
                (
                    "200 OK",
                    "text/html; charset=utf-8",
                    page.into_bytes(),
                    String::new(),
                )
            }
            ("GET", "/slow") => {
                let ms: u64 = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("ms="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(500);
                tokio::time::sleep(Duration::from_millis(ms.min(30_000))).await;
                (
                    "200 OK",
                    "text/html; charset=utf-8",
                    b"<!doctype html><title>Slow</title><p>slow page</p>".to_vec(),
                    String::new(),
                )
            }
            ("GET", "/api/data") => (
                "200 OK",
                "application/json",
                br#"{"items":[1,2,3]}"#.to_vec(),
                "Access-Control-Allow-Origin: *\r\n".to_string(),
            ),
            ("GET", "/redirect") => (
                "302 Found",
                "text/plain",
                Vec::new(),
                "Location: /page2.html\r\n".to_string(),
            ),
            ("GET", p) => {
                let rel = p.trim_start_matches('/');
                let rel = if rel.is_empty() { "index.html" } else { rel };
                let file = fixtures_dir().join(rel);
                let safe = !rel.contains("..");
                match (safe, std::fs::read(&file)) {
                    (true, Ok(bytes)) => {
                        let ct = match file.extension().and_then(|e| e.to_str()) {
                            Some("html") => "text/html; charset=utf-8",
                            Some("js") => "text/javascript",
                            Some("css") => "text/css",
                            Some("png") => "image/png",
                            Some("json") => "application/json",
                            _ => "text/plain; charset=utf-8",
                        };
                        ("200 OK", ct, bytes, String::new())
                    }
                    _ => (
                        "404 Not Found",
                        "text/plain",
                        b"not found".to_vec(),
                        String::new(),
                    ),
                }
            }
            _ => (
                "405 Method Not Allowed",
                "text/plain",
                Vec::new(),
                String::new(),
            ),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{extra}\r\n",
            payload.len()
        );
        sock.write_all(head.as_bytes()).await?;
        sock.write_all(&payload).await?;
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
