//! The MCP bundle (`.mcpb`, what Claude Desktop installs with a double click): a zip
//! with `manifest.json`, an icon and the server binary for each system it supports
//! (`server/<os>/tabmux`), run over stdio.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Project, Result, read, zip};

/// The manifest version the bundle follows (`mcpb init` writes the same).
pub const MANIFEST_VERSION: &str = "0.2";

fn exe(os: &str) -> &'static str {
    if os == "win32" {
        "tabmux.exe"
    } else {
        "tabmux"
    }
}

/// The system this xtask runs on, as MCP bundles name it.
fn host_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        _ => "linux",
    }
}

/// Asks `binary` for its tools over stdio (`initialize`, then `tools/list`), so the
/// bundle's manifest lists them. `None` when it cannot run here or does not answer in
/// time.
fn list_tools(binary: &Path) -> Option<Vec<Value>> {
    let state = std::env::temp_dir().join(format!("tabmux-xtask-{}", std::process::id()));
    let mut child = Command::new(binary)
        .arg("--launch")
        .env("TABMUX_STATE_DIR", &state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "xtask", "version": "0"}}});
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let _ = writeln!(stdin, "{init}");
    let mut tools = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tools.is_none() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if msg["id"] == 1 {
            let _ = writeln!(stdin, "{initialized}");
            let _ = writeln!(stdin, "{list}");
        } else if msg["id"] == 2 {
            tools = msg["result"]["tools"].as_array().cloned();
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&state);
    tools
}

/// The first sentence of a tool's description: the install dialog lists them all.
fn first_sentence(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.find(". ") {
        Some(i) => line[..=i].to_string(),
        None => line.to_string(),
    }
}

/// The manifest for binaries of `oses` (the first is the default command).
pub fn manifest(p: &Project, oses: &[&str], tools: Option<Vec<Value>>) -> Value {
    let path = |os: &str| format!("server/{os}/{}", exe(os));
    let mut overrides = serde_json::Map::new();
    for os in &oses[1..] {
        overrides.insert(
            os.to_string(),
            json!({"command": format!("${{__dirname}}/{}", path(os))}),
        );
    }
    let mut m = json!({
        "manifest_version": MANIFEST_VERSION,
        "name": "tabmux",
        "display_name": "tabmux",
        "version": p.version,
        "description": p.description,
        "long_description": "Several AI clients drive the same browser at the same time, each in its own tabs. Tabs are locked per client: asking for a tab another client holds waits in a queue, times out with a clear error, and heals when a client goes away. tabmux uses your own Chrome when it runs the tabmux extension, and otherwise launches a shared Chromium.",
        "author": {"name": "The tabmux authors", "url": p.repository},
        "repository": {"type": "git", "url": p.repository},
        "homepage": p.repository,
        "documentation": format!("{}#readme", p.repository),
        "support": format!("{}/issues", p.repository),
        "icon": "icon.png",
        "server": {
            "type": "binary",
            "entry_point": path(oses[0]),
            "mcp_config": {
                "command": format!("${{__dirname}}/{}", path(oses[0])),
                "args": [],
                "env": {}
            }
        },
        "keywords": p.keywords,
        "license": p.license,
        "compatibility": {"platforms": oses},
    });
    if !overrides.is_empty() {
        m["server"]["mcp_config"]["platform_overrides"] = Value::Object(overrides);
    }
    match tools {
        Some(list) => {
            m["tools"] = list
                .iter()
                .map(|t| json!({"name": t["name"], "description": first_sentence(t["description"].as_str().unwrap_or_default())}))
                .collect();
        }
        None => m["tools_generated"] = json!(true),
    }
    m
}

/// Writes `tabmux-<version>-<label>.mcpb` with the `binaries` ((os, path) pairs).
pub fn bundle(
    p: &Project,
    binaries: &[(&str, PathBuf)],
    out: &Path,
    label: &str,
) -> Result<PathBuf> {
    let oses: Vec<&str> = binaries.iter().map(|(os, _)| *os).collect();
    let runnable = binaries.iter().find(|(os, _)| *os == host_os());
    let tools = runnable.and_then(|(_, b)| list_tools(b));
    let m = manifest(p, &oses, tools);
    let mut entries = vec![
        zip::Entry {
            name: "manifest.json".into(),
            data: serde_json::to_vec_pretty(&m).map_err(|e| e.to_string())?,
            mode: 0o644,
        },
        zip::Entry {
            name: "icon.png".into(),
            data: read(&p.root.join("extension/icons/icon-128.png"))?,
            mode: 0o644,
        },
    ];
    for (os, path) in binaries {
        entries.push(zip::Entry {
            name: format!("server/{os}/{}", exe(os)),
            data: read(path)?,
            mode: 0o755,
        });
    }
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let file = out.join(format!("tabmux-{}-{label}.mcpb", p.version));
    zip::write(&file, &entries).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(file)
}
