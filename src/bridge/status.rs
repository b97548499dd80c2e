//! `tabmux status`: the registry's entries, each live one asked for its status with a
//! request signed with the state directory's secret (an instance answers nothing but
//! "a tabmux is here" to anyone else).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::{self, Secret};
use crate::registry::{self, PortRange, unix_ms};

/// Deadline for one probe in [`status_report`].
const PROBE_DEADLINE: Duration = Duration::from_millis(1500);
/// Largest probe answer read.
const PROBE_MAX_BYTES: usize = 1 << 20;

/// Fetches `GET /tabmux` from `127.0.0.1:<port>` (no `Origin`, as a CLI does) within
/// `deadline`, and returns the JSON if it is a tabmux probe (`"tabmux": 1`).
pub async fn fetch_probe(port: u16, deadline: Duration) -> Result<Value, String> {
    let body = fetch_json(port, "/tabmux", deadline, None).await?;
    if body.get("tabmux").and_then(Value::as_u64) != Some(1) {
        return Err("answered, but is not tabmux".into());
    }
    Ok(body)
}

/// Fetches the signed `GET /tabmux/status` of the instance on `port`: its identity
/// and browsers (see [`crate::bridge::Bridge::status`]).
pub async fn fetch_status(port: u16, secret: &Secret, deadline: Duration) -> Result<Value, String> {
    fetch_json(port, "/tabmux/status", deadline, Some(secret)).await
}

/// `GET path` on a tabmux port, as JSON; signed with `secret` when given.
pub async fn fetch_json(
    port: u16,
    path: &str,
    deadline: Duration,
    secret: Option<&Secret>,
) -> Result<Value, String> {
    let authorization = match secret {
        Some(s) => format!(
            "Authorization: {}\r\n",
            auth::status_authorization(s, port, path).map_err(|e| e.to_string())?
        ),
        None => String::new(),
    };
    let fetch = async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{authorization}Connection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("cannot send: {e}"))?;
        let mut buf = Vec::new();
        (&mut s)
            .take(PROBE_MAX_BYTES as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| format!("cannot read: {e}"))?;
        Ok::<_, String>(buf)
    };
    let buf = tokio::time::timeout(deadline, fetch)
        .await
        .map_err(|_| format!("no answer within {} ms", deadline.as_millis()))??;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("not an HTTP answer")?;
    let head = String::from_utf8_lossy(&buf[..split]);
    let status = head.split(' ').nth(1).unwrap_or_default();
    if status == "401" {
        return Err("refused our signature: it runs with another secret (another state directory or user), or our clock is off".into());
    }
    if status != "200" {
        return Err(format!("answered HTTP {status}"));
    }
    let body: Value = serde_json::from_slice(&buf[split + 4..])
        .map_err(|_| "answered something that is not JSON")?;
    Ok(body)
}

/// One browser connected to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserStatus {
    /// The browser as the extension named it.
    pub browser: String,
    /// The profile id.
    pub profile_id: String,
    /// How long it has been connected, ms.
    pub connected_ms: u64,
}

/// A live instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    /// Its port.
    pub port: u16,
    /// Its pid (from the probe, else the metadata).
    pub pid: Option<u32>,
    /// The MCP client's name, if known.
    pub name: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// How long it has run, ms.
    pub uptime_ms: Option<u64>,
    /// Connected browsers (from the probe).
    pub browsers: Vec<BrowserStatus>,
    /// Why the probe failed, if it did (the lock is held, so the process lives).
    pub probe_error: Option<String>,
    /// Whether the port is inside the range asked about.
    pub in_range: bool,
}

/// A registry entry whose lock is free: its owner is gone. Harmless; the next claim
/// of that port reuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleEntry {
    /// The port.
    pub port: u16,
    /// The last owner's pid, if its metadata remained.
    pub pid: Option<u32>,
    /// The last owner's client name, if known.
    pub name: Option<String>,
}

/// What `tabmux status` prints (its `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The state directory scanned.
    pub state_dir: PathBuf,
    /// The range asked about.
    pub range: PortRange,
    /// Live instances, by port.
    pub instances: Vec<InstanceStatus>,
    /// Stale entries that still have metadata (a crashed owner), by port.
    pub stale: Vec<StaleEntry>,
    /// The held tabs, as the primary browser's extension knows them (when one is
    /// connected): who holds what, for how long, and who waits.
    pub tabs: Option<HeldTabs>,
}

/// The extension's view of the held tabs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTabs {
    /// The browser that answered, and through which port.
    pub browser: String,
    pub port: u16,
    pub tabs: Vec<HeldTab>,
}

/// One held tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTab {
    pub tab_id: i64,
    pub title: String,
    pub url: String,
    pub holder: String,
    pub created: bool,
    pub held_for_ms: u64,
    pub idle_ms: u64,
    /// (who, how long they have waited).
    pub waiters: Vec<(String, u64)>,
}

fn held_tabs(port: u16, v: &Value) -> HeldTabs {
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let tabs = v["status"]["tabs"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| HeldTab {
                    tab_id: t["tabId"].as_i64().unwrap_or(-1),
                    title: s(t, "title"),
                    url: s(t, "url"),
                    holder: t["holder"]["name"].as_str().unwrap_or("?").to_string(),
                    created: t["created"].as_bool().unwrap_or(false),
                    held_for_ms: n(t, "heldForMs"),
                    idle_ms: n(t, "leaseAgeMs"),
                    waiters: t["waiters"]
                        .as_array()
                        .map(|ws| {
                            ws.iter()
                                .map(|w| (s(w, "label"), n(w, "waitedMs")))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    HeldTabs {
        browser: s(v, "browser"),
        port,
        tabs,
    }
}

/// Scans the registry in `state_dir` and asks every live port for its status, signed
/// with the state directory's secret (in parallel, 1.5 s deadline each). Entries outside `range` are reported too, marked.
pub async fn status_report(state_dir: &Path, range: PortRange) -> StatusReport {
    let entries = registry::scan(state_dir);
    // Reported below, then removed: the next report does not show them again.
    registry::clean_stale(state_dir);
    let secret = auth::load(state_dir);
    let mut probes = Vec::new();
    for e in entries.iter().filter(|e| e.live) {
        let port = e.port;
        let secret = match &secret {
            Ok(Some(s)) => Ok(s.clone()),
            Ok(None) => Err(format!(
                "no secret in {} to authenticate with",
                state_dir.display()
            )),
            Err(e) => Err(format!("cannot read the secret: {e}")),
        };
        probes.push(tokio::spawn(async move {
            fetch_status(port, &secret?, PROBE_DEADLINE).await
        }));
    }
    let mut instances = Vec::new();
    let mut stale = Vec::new();
    let mut probes = probes.into_iter();
    for e in entries {
        if !e.live {
            // A lock file alone is the normal trace of a past run; only report leftovers
            // with metadata (an owner that did not exit cleanly).
            if let Some(m) = e.meta {
                stale.push(StaleEntry {
                    port: e.port,
                    pid: Some(m.pid),
                    name: m.client_name,
                });
            }
            continue;
        }
        let probe = match probes.next() {
            Some(h) => h.await.unwrap_or_else(|_| Err("probe task failed".into())),
            None => Err("probe task missing".into()),
        };
        let meta = e.meta.as_ref();
        let mut st = InstanceStatus {
            port: e.port,
            pid: meta.map(|m| m.pid),
            name: meta.and_then(|m| m.client_name.clone()),
            version: meta.map(|m| m.version.clone()),
            uptime_ms: meta.map(|m| unix_ms().saturating_sub(m.started_ms)),
            browsers: Vec::new(),
            probe_error: None,
            in_range: range.contains(e.port),
        };
        match probe {
            Ok(p) => {
                let str_of =
                    |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
                st.pid = p
                    .get("pid")
                    .and_then(Value::as_u64)
                    .map(|x| x as u32)
                    .or(st.pid);
                st.name = str_of(&p, "name").filter(|n| !n.is_empty()).or(st.name);
                st.version = str_of(&p, "version").or(st.version);
                st.uptime_ms = p.get("uptimeMs").and_then(Value::as_u64).or(st.uptime_ms);
                st.browsers = p
                    .get("browsers")
                    .and_then(Value::as_array)
                    .map(|bs| {
                        bs.iter()
                            .map(|b| BrowserStatus {
                                browser: str_of(b, "browser").unwrap_or_default(),
                                profile_id: str_of(b, "profileId").unwrap_or_default(),
                                connected_ms: b
                                    .get("connectedMs")
                                    .and_then(Value::as_u64)
                                    .unwrap_or(0),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            }
            Err(e) => st.probe_error = Some(e),
        }
        instances.push(st);
    }
    let mut tabs = None;
    if let Some(i) = instances.iter().find(|i| !i.browsers.is_empty())
        && let Ok(Some(secret)) = &secret
        && let Ok(v) = fetch_json(i.port, "/tabmux/tabs", PROBE_DEADLINE * 2, Some(secret)).await
    {
        tabs = Some(held_tabs(i.port, &v));
    }
    StatusReport {
        state_dir: state_dir.to_path_buf(),
        range,
        instances,
        stale,
        tabs,
    }
}

fn human(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.instances.is_empty() {
            writeln!(
                f,
                "no tabmux instance is running (ports {}, state {})",
                self.range,
                self.state_dir.display()
            )?;
        } else {
            writeln!(
                f,
                "{} tabmux instance{} (ports {}, state {}):",
                self.instances.len(),
                if self.instances.len() == 1 { "" } else { "s" },
                self.range,
                self.state_dir.display()
            )?;
        }
        for i in &self.instances {
            write!(f, "  port {}", i.port)?;
            if !i.in_range {
                write!(f, " (outside {})", self.range)?;
            }
            match i.pid {
                Some(pid) => write!(f, "  pid {pid}")?,
                None => write!(f, "  pid ?")?,
            }
            match &i.name {
                Some(n) => write!(f, "  \"{n}\"")?,
                None => write!(f, "  (client not named yet)")?,
            }
            if let Some(v) = &i.version {
                write!(f, "  v{v}")?;
            }
            if let Some(up) = i.uptime_ms {
                write!(f, "  up {}", human(up))?;
            }
            if let Some(e) = &i.probe_error {
                writeln!(f, "  not answering its probe: {e}")?;
                continue;
            }
            if i.browsers.is_empty() {
                writeln!(f, "  no browser")?;
            } else {
                writeln!(f)?;
                for b in &i.browsers {
                    writeln!(
                        f,
                        "      browser {} (profile {}), connected {}",
                        b.browser,
                        b.profile_id,
                        human(b.connected_ms)
                    )?;
                }
            }
        }
        if let Some(t) = &self.tabs {
            if t.tabs.is_empty() {
                writeln!(f, "no held tabs in {} (via port {})", t.browser, t.port)?;
            } else {
                writeln!(f, "held tabs in {} (via port {}):", t.browser, t.port)?;
            }
            for h in &t.tabs {
                let title: String = h.title.chars().take(60).collect();
                writeln!(f, "  tab {}  \"{title}\"  {}", h.tab_id, h.url)?;
                write!(
                    f,
                    "      {} by \"{}\" for {}, last used {} ago",
                    if h.created {
                        "opened and held"
                    } else {
                        "borrowed"
                    },
                    h.holder,
                    human(h.held_for_ms),
                    human(h.idle_ms)
                )?;
                if h.waiters.is_empty() {
                    writeln!(f)?;
                } else {
                    let ws: Vec<String> = h
                        .waiters
                        .iter()
                        .map(|(w, ms)| format!("\"{w}\" ({})", human(*ms)))
                        .collect();
                    writeln!(f, "; waiting: {}", ws.join(", "))?;
                }
            }
        }
        if !self.stale.is_empty() {
            writeln!(
                f,
                "stale entries (owner gone, its record now removed; the port is free and will be reused):"
            )?;
            for s in &self.stale {
                write!(f, "  port {}", s.port)?;
                if let Some(pid) = s.pid {
                    write!(f, "  was pid {pid}")?;
                }
                if let Some(n) = &s.name {
                    write!(f, "  \"{n}\"")?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}
