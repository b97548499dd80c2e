//! Records the accessibility trees the snapshot tests read (`src/snapshot/testdata`).
//!
//! ```sh
//! cargo run --example record_snapshot -- frames      # testdata/frames.html → frames.json
//! cargo run --example record_snapshot -- --all       # every testdata/*.html
//! cargo run --example record_snapshot -- --out /tmp/rec frames   # elsewhere
//! ```
//!
//! Serves `src/snapshot/testdata` on a free port as two sites (`127.0.0.1` and
//! `localhost`, so a page can embed an out-of-process iframe), opens the page in a
//! headless Chromium launched by tabmux, and writes `<page>.json`: every frame's
//! `Accessibility.getFullAXTree`, main frame first, each child with its parent's index
//! and the `backendDOMNodeId` of its `<iframe>`, one node per line, the port written as
//! `PORT`. Then `TABMUX_BLESS=1 cargo test --lib snapshot` renews the golden `.txt`
//! files; review both diffs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tabmux::browser::page::Page;
use tabmux::browser::{Browser, Config, Mode};
use tabmux::link::launch::LaunchOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/snapshot/testdata")
}

/// Serves the files of `testdata` (GET only) on a free port of 127.0.0.1.
async fn serve() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let name = path.trim_start_matches('/').split('?').next().unwrap_or("");
                let file = testdata().join(name);
                let ok = !name.contains("..") && file.is_file();
                let body = if ok {
                    std::fs::read(&file).unwrap_or_default()
                } else {
                    Vec::new()
                };
                let head = format!(
                    "HTTP/1.1 {}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    if ok { "200 OK" } else { "404 Not Found" },
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    Ok(port)
}

/// A frame as the recording lists it.
struct Recorded {
    id: String,
    url: String,
    session: Option<String>,
    parent: Option<String>,
}

/// Every frame of the page, parents first: the tab's own frame tree and each
/// out-of-process iframe's.
async fn frames(page: &Page) -> anyhow::Result<Vec<Recorded>> {
    let mut sessions: Vec<Option<String>> = vec![None];
    sessions.extend(page.state().child_sessions.keys().cloned().map(Some));
    let mut by_id: HashMap<String, Recorded> = HashMap::new();
    // Document order: the order the frame trees list frames in.
    let mut seen: Vec<String> = Vec::new();
    for s in &sessions {
        let tree: Value = page
            .call_in(s.as_deref(), "Page.getFrameTree", json!({}))
            .await?;
        let mut queue = std::collections::VecDeque::from([(&tree["frameTree"], None::<String>)]);
        while let Some((node, parent)) = queue.pop_front() {
            let id = node["frame"]["id"].as_str().unwrap_or_default().to_string();
            if !seen.contains(&id) {
                seen.push(id.clone());
            }
            // A frame run by a child session is listed by its parent too: the child wins.
            if s.is_some() || !by_id.contains_key(&id) {
                let parent = parent
                    .clone()
                    .or_else(|| node["frame"]["parentId"].as_str().map(str::to_string));
                let url = node["frame"]["url"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let session = s.clone();
                let rec = Recorded {
                    id: id.clone(),
                    url,
                    session,
                    parent,
                };
                by_id.insert(id.clone(), rec);
            }
            for c in node["childFrames"].as_array().into_iter().flatten() {
                queue.push_back((c, Some(id.clone())));
            }
        }
    }
    let main = page.state().main_frame.clone();
    let mut order = vec![main];
    let mut i = 0;
    while i < order.len() {
        let parent = order[i].clone();
        let kids = seen
            .iter()
            .filter(|id| by_id.get(*id).and_then(|f| f.parent.as_deref()) == Some(&parent));
        order.extend(kids.cloned().collect::<Vec<_>>());
        i += 1;
    }
    Ok(order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect())
}

/// Opens `page` and writes its recording; returns the path written.
async fn record(browser: &Browser, port: u16, name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let (_, page) = browser.new_tab().await?;
    let url = format!("http://127.0.0.1:{port}/{name}.html");
    let before = page.state().nav;
    page.call::<Value>("Page.navigate", json!({"url": url}))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    anyhow::ensure!(
        page.wait_until(deadline, |s| s.nav != before && s.loaded())
            .await,
        "{url} did not load within 20 s"
    );
    // Out-of-process iframes attach and load on their own; let them settle.
    let settle = Instant::now() + Duration::from_millis(1500);
    page.wait_until(settle, |_| false).await;
    let frames = frames(&page).await?;
    let index: HashMap<&str, usize> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (f.id.as_str(), i))
        .collect();
    let version: Value = page.call("Browser.getVersion", json!({})).await?;
    let mut out = format!(
        "{{\"page\":\"{name}.html\",\"browser\":{},\"frames\":[\n",
        version["product"]
    );
    for (i, f) in frames.iter().enumerate() {
        let parent = match &f.parent {
            None => Value::Null,
            Some(p) => {
                let parent_session = frames
                    .iter()
                    .find(|x| &x.id == p)
                    .and_then(|x| x.session.clone());
                let owner: Value = page
                    .call_in(
                        parent_session.as_deref(),
                        "DOM.getFrameOwner",
                        json!({"frameId": f.id}),
                    )
                    .await?;
                json!([index.get(p.as_str()), owner["backendNodeId"]])
            }
        };
        let tree: Value = page
            .call_in(
                f.session.as_deref(),
                "Accessibility.getFullAXTree",
                json!({"frameId": f.id}),
            )
            .await?;
        let head = json!({"frameId": f.id, "url": f.url, "outOfProcess": f.session.is_some(), "parent": parent});
        let head = head.to_string();
        out.push_str(&head[..head.len() - 1]);
        out.push_str(",\"nodes\":[\n");
        let nodes: Vec<String> = tree["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Value::to_string)
            .collect();
        out.push_str(&nodes.join(",\n"));
        out.push_str(if i + 1 < frames.len() {
            "]},\n"
        } else {
            "]}\n"
        });
    }
    out.push_str("]}\n");
    let out = out.replace(&format!(":{port}/"), ":PORT/");
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, out)?;
    Ok(path)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut dir = testdata();
    if let Some(i) = args.iter().position(|a| a == "--out") {
        anyhow::ensure!(i + 1 < args.len(), "--out needs a directory");
        dir = PathBuf::from(args.remove(i + 1));
        args.remove(i);
        std::fs::create_dir_all(&dir)?;
    }
    let mut pages: Vec<String> = if args.iter().any(|a| a == "--all") {
        std::fs::read_dir(testdata())?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "html"))
            .filter(|p| p.with_extension("json").exists())
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect()
    } else {
        args.iter()
            .map(|a| a.trim_end_matches(".html").to_string())
            .collect()
    };
    pages.sort();
    anyhow::ensure!(
        !pages.is_empty(),
        "name the pages to record (e.g. frames), or --all"
    );
    let port = serve().await?;
    let browser = Arc::new(Browser::new(Config {
        mode: Mode::Launch(LaunchOptions::default()),
        extension_wait: Duration::from_secs(0),
        command_timeout: Duration::from_secs(30),
        navigation_timeout: Duration::from_secs(30),
        snapshot_source: Default::default(),
    }));
    let mut result = Ok(());
    for name in &pages {
        match record(&browser, port, name, &dir).await {
            Ok(path) => eprintln!("wrote {}", path.display()),
            Err(e) => {
                result = Err(anyhow::anyhow!("{name}: {e}"));
                break;
            }
        }
    }
    let _ = browser.close().await;
    result
}
