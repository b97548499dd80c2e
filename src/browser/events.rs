//! The CDP events a page follows, decoded once into types ([`PageEvent::decode`]) and
//! applied to its [`PageState`] one domain at a time: frames and navigation, dialogs,
//! console, network. Events that need the page itself (child sessions to set up, a
//! debugger attached again) are handled in `page.rs`.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::page::{
    Dialog, FileChooser, Level, MAX_NETWORK, NetEntry, PageState, exception_text, short_url,
};

/// A CDP event of a page, decoded. `child` (the session of an out-of-process iframe)
/// travels beside it.
#[derive(Debug, Clone, PartialEq)]
pub enum PageEvent {
    Frame(FrameEvent),
    Dialog(DialogEvent),
    Console(ConsoleEvent),
    Network(NetEvent),
    Target(TargetEvent),
}

/// `Page.*` frame, navigation and lifecycle events, `Inspector.*`.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameEvent {
    Navigated {
        id: String,
        parent: Option<String>,
        loader: String,
        url: String,
    },
    NavigatedWithinDocument {
        frame: String,
        url: String,
    },
    Attached {
        id: String,
        parent: Option<String>,
    },
    /// A frame went away (not swapped for an out-of-process one).
    Detached {
        id: String,
    },
    /// A navigation was asked for or scheduled.
    NavigationRequested {
        frame: String,
    },
    StoppedLoading {
        frame: String,
    },
    ScheduledNavigationCleared {
        frame: String,
    },
    Lifecycle {
        frame: String,
        loader: String,
        name: String,
    },
    LoadFired,
    Crashed,
    /// The debugger was detached from the tab.
    InspectorDetached {
        reason: String,
    },
}

/// JavaScript dialogs and file choosers.
#[derive(Debug, Clone, PartialEq)]
pub enum DialogEvent {
    Opening {
        kind: String,
        message: String,
        default_prompt: String,
    },
    Closed,
    FileChooser {
        backend_node_id: i64,
        multiple: bool,
    },
}

/// A console line: `console.*`, an uncaught exception or a browser log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleEvent {
    pub level: Level,
    pub text: String,
    pub location: Option<String>,
}

/// `Network.*`.
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    Request {
        id: String,
        method: String,
        url: String,
        resource_type: String,
        /// The status and status text of the response that redirected here.
        redirected: Option<(Option<i64>, String)>,
    },
    Response {
        id: String,
        status: Option<i64>,
        status_text: String,
        resource_type: Option<String>,
    },
    Finished {
        id: String,
        failed: Option<String>,
    },
}

/// `Target.*`: child sessions (out-of-process iframes, workers).
#[derive(Debug, Clone, PartialEq)]
pub enum TargetEvent {
    Attached {
        session: String,
        target: String,
        iframe: bool,
    },
    Detached {
        session: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Frame {
    id: String,
    parent_id: Option<String>,
    loader_id: String,
    url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct FrameParams {
    frame: Frame,
    frame_id: String,
    parent_frame_id: Option<String>,
    loader_id: String,
    url: String,
    name: String,
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Response {
    status: Option<i64>,
    status_text: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Request {
    method: Option<String>,
    url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct NetParams {
    request_id: String,
    request: Request,
    response: Response,
    redirect_response: Option<Response>,
    #[serde(rename = "type")]
    resource_type: Option<String>,
    error_text: Option<String>,
    canceled: Option<bool>,
}

fn params<T: DeserializeOwned + Default>(p: Value) -> T {
    serde_json::from_value(p).unwrap_or_default()
}

impl PageEvent {
    /// Decodes a CDP event; `None` for events tabmux does not follow.
    pub fn decode(method: &str, p: Value) -> Option<PageEvent> {
        if let Some(e) = decode_frame(method, &p) {
            return Some(PageEvent::Frame(e));
        }
        Some(match method {
            "Page.javascriptDialogOpening" => PageEvent::Dialog(DialogEvent::Opening {
                kind: p["type"].as_str().unwrap_or("alert").to_string(),
                message: p["message"].as_str().unwrap_or_default().to_string(),
                default_prompt: p["defaultPrompt"].as_str().unwrap_or_default().to_string(),
            }),
            "Page.javascriptDialogClosed" => PageEvent::Dialog(DialogEvent::Closed),
            "Page.fileChooserOpened" => PageEvent::Dialog(DialogEvent::FileChooser {
                backend_node_id: p["backendNodeId"].as_i64()?,
                multiple: p["mode"].as_str() == Some("selectMultiple"),
            }),
            "Runtime.consoleAPICalled" => PageEvent::Console(console_api(&p)),
            "Runtime.exceptionThrown" => PageEvent::Console(ConsoleEvent {
                level: Level::Error,
                text: exception_text(&p["exceptionDetails"]),
                location: None,
            }),
            "Log.entryAdded" => {
                let e = &p["entry"];
                let level =
                    Level::parse(e["level"].as_str().unwrap_or("info")).unwrap_or(Level::Info);
                let mut text = e["text"].as_str().unwrap_or_default().to_string();
                if let Some(url) = e["url"].as_str().filter(|u| !u.is_empty()) {
                    text.push_str(&format!(" ({url})"));
                }
                PageEvent::Console(ConsoleEvent {
                    level,
                    text,
                    location: None,
                })
            }
            "Network.requestWillBeSent"
            | "Network.responseReceived"
            | "Network.loadingFinished"
            | "Network.loadingFailed" => PageEvent::Network(decode_net(method, params(p))),
            "Target.attachedToTarget" => PageEvent::Target(TargetEvent::Attached {
                session: p["sessionId"].as_str().unwrap_or_default().to_string(),
                target: p["targetInfo"]["targetId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                iframe: p["targetInfo"]["type"].as_str() == Some("iframe"),
            }),
            "Target.detachedFromTarget" => PageEvent::Target(TargetEvent::Detached {
                session: p["sessionId"].as_str()?.to_string(),
            }),
            _ => return None,
        })
    }
}

/// The events [`decode_frame`] reads.
const FRAME_EVENTS: &[&str] = &[
    "Page.frameNavigated",
    "Page.navigatedWithinDocument",
    "Page.frameAttached",
    "Page.frameDetached",
    "Page.frameRequestedNavigation",
    "Page.frameScheduledNavigation",
    "Page.frameStoppedLoading",
    "Page.frameClearedScheduledNavigation",
    "Page.lifecycleEvent",
    "Page.loadEventFired",
    "Inspector.targetCrashed",
    "Inspector.detached",
];

fn decode_frame(method: &str, p: &Value) -> Option<FrameEvent> {
    if !FRAME_EVENTS.contains(&method) {
        return None;
    }
    let f: FrameParams = params(p.clone());
    Some(match method {
        "Page.frameNavigated" => FrameEvent::Navigated {
            id: f.frame.id,
            parent: f.frame.parent_id,
            loader: f.frame.loader_id,
            url: f.frame.url,
        },
        "Page.navigatedWithinDocument" => FrameEvent::NavigatedWithinDocument {
            frame: f.frame_id,
            url: f.url,
        },
        "Page.frameAttached" => FrameEvent::Attached {
            id: f.frame_id,
            parent: f.parent_frame_id,
        },
        "Page.frameDetached" if f.reason.as_deref() != Some("swap") => {
            FrameEvent::Detached { id: f.frame_id }
        }
        "Page.frameRequestedNavigation" | "Page.frameScheduledNavigation" => {
            FrameEvent::NavigationRequested { frame: f.frame_id }
        }
        "Page.frameStoppedLoading" => FrameEvent::StoppedLoading { frame: f.frame_id },
        "Page.frameClearedScheduledNavigation" => {
            FrameEvent::ScheduledNavigationCleared { frame: f.frame_id }
        }
        "Page.lifecycleEvent" => FrameEvent::Lifecycle {
            frame: f.frame_id,
            loader: f.loader_id,
            name: f.name,
        },
        "Page.loadEventFired" => FrameEvent::LoadFired,
        "Inspector.targetCrashed" => FrameEvent::Crashed,
        "Inspector.detached" => FrameEvent::InspectorDetached {
            reason: f.reason.unwrap_or_else(|| "detached".into()),
        },
        _ => return None,
    })
}

fn decode_net(method: &str, p: NetParams) -> NetEvent {
    match method {
        "Network.requestWillBeSent" => NetEvent::Request {
            id: p.request_id,
            method: p.request.method.unwrap_or_else(|| "GET".into()),
            url: p.request.url,
            resource_type: p.resource_type.unwrap_or_else(|| "Other".into()),
            redirected: p.redirect_response.map(|r| (r.status, r.status_text)),
        },
        "Network.responseReceived" => NetEvent::Response {
            id: p.request_id,
            status: p.response.status,
            status_text: p.response.status_text,
            resource_type: p.resource_type,
        },
        "Network.loadingFailed" => NetEvent::Finished {
            id: p.request_id,
            failed: Some(if p.canceled == Some(true) {
                "canceled".into()
            } else {
                p.error_text.unwrap_or_else(|| "failed".into())
            }),
        },
        _ => NetEvent::Finished {
            id: p.request_id,
            failed: None,
        },
    }
}

fn console_api(p: &Value) -> ConsoleEvent {
    let kind = p["type"].as_str().unwrap_or("log");
    let level = match kind {
        "error" | "assert" => Level::Error,
        "warning" => Level::Warning,
        "debug" => Level::Debug,
        _ => Level::Info,
    };
    let text = p["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(remote_object_text)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let frame0 = &p["stackTrace"]["callFrames"][0];
    let location = frame0["url"].as_str().filter(|u| !u.is_empty()).map(|u| {
        format!(
            "{}:{}",
            short_url(u),
            frame0["lineNumber"].as_i64().unwrap_or(0) + 1
        )
    });
    let text = if kind == "assert" {
        format!("Assertion failed: {text}")
    } else {
        text
    };
    ConsoleEvent {
        level,
        text,
        location,
    }
}

fn remote_object_text(o: &Value) -> String {
    if let Some(s) = o["value"].as_str() {
        return s.to_string();
    }
    if let Some(v) = o.get("value")
        && !v.is_null()
    {
        return v.to_string();
    }
    if let Some(u) = o["unserializableValue"].as_str() {
        return u.to_string();
    }
    if let Some(d) = o["description"].as_str() {
        return d.to_string();
    }
    match o["type"].as_str() {
        Some("undefined") => "undefined".into(),
        Some(_) if o["subtype"].as_str() == Some("null") => "null".into(),
        Some(t) => t.to_string(),
        None => String::new(),
    }
}

impl PageState {
    /// Applies a frame, navigation or lifecycle event. `child` is the session of an
    /// out-of-process iframe; `relayed` whether the tab comes through the extension.
    pub fn on_frame(&mut self, e: FrameEvent, child: Option<String>, relayed: bool) {
        let main = |s: &PageState, frame: &str| child.is_none() && frame == s.main_frame;
        match e {
            FrameEvent::Navigated {
                id,
                parent,
                loader,
                url,
            } => {
                let is_main = parent.is_none() && child.is_none();
                let entry = self.frames.entry(id.clone()).or_default();
                entry.parent = parent;
                entry.loader = loader.clone();
                entry.url = url.clone();
                entry.session = child.clone();
                if is_main {
                    self.new_document(id, url, loader);
                }
            }
            FrameEvent::NavigatedWithinDocument { frame, url } => {
                if frame == self.main_frame {
                    self.url = url.clone();
                }
                if let Some(f) = self.frames.get_mut(&frame) {
                    f.url = url;
                }
            }
            FrameEvent::Attached { id, parent } => {
                let e = self.frames.entry(id).or_default();
                e.parent = parent;
                e.session = child;
            }
            FrameEvent::Detached { id } => {
                self.frames.remove(&id);
            }
            FrameEvent::NavigationRequested { frame } if main(self, &frame) => {
                self.nav_requested += 1;
            }
            FrameEvent::StoppedLoading { frame } if main(self, &frame) => {
                self.nav_requested = 0;
            }
            FrameEvent::ScheduledNavigationCleared { frame } if main(self, &frame) => {
                self.nav_requested = self.nav_requested.saturating_sub(1);
            }
            FrameEvent::Lifecycle {
                frame,
                loader,
                name,
            } if main(self, &frame) => {
                if name == "init" {
                    self.lifecycle.clear();
                } else if loader == self.loader || self.loader.is_empty() {
                    self.lifecycle.insert(name);
                }
            }
            FrameEvent::LoadFired if child.is_none() => {
                self.lifecycle.insert("load".into());
            }
            FrameEvent::Crashed if child.is_none() => {
                self.crashed = true;
            }
            // Through the extension a detached debugger is not a closed tab: the
            // extension attaches again, or says `tab.closed` (with the real reason)
            // when the tab is gone.
            FrameEvent::InspectorDetached { reason } if child.is_none() && !relayed => {
                self.closed = true;
                self.closed_reason.get_or_insert(reason);
            }
            _ => {}
        }
    }

    /// The main frame committed a new document.
    fn new_document(&mut self, frame: String, url: String, loader: String) {
        self.main_frame = frame;
        self.url = url;
        self.loader = loader;
        self.nav += 1;
        self.nav_requested = 0;
        self.lifecycle.clear();
        self.last_snapshot = None;
        self.file_chooser = None;
        // Frames of the old document are gone.
        let main = self.main_frame.clone();
        self.frames.retain(|k, f| *k == main || f.parent.is_some());
    }

    /// Applies a dialog or file-chooser event.
    pub fn on_dialog(&mut self, e: DialogEvent) {
        match e {
            DialogEvent::Opening {
                kind,
                message,
                default_prompt,
            } => {
                self.dialog = Some(Dialog {
                    kind,
                    message,
                    default_prompt,
                });
            }
            DialogEvent::Closed => self.dialog = None,
            DialogEvent::FileChooser {
                backend_node_id,
                multiple,
            } => {
                self.file_chooser = Some(FileChooser {
                    backend_node_id,
                    multiple,
                });
            }
        }
    }

    /// Applies a console line.
    pub fn on_console(&mut self, e: ConsoleEvent) {
        self.push_console(e.level, e.text, e.location);
    }

    /// Applies a network event.
    pub fn on_network(&mut self, e: NetEvent) {
        match e {
            NetEvent::Request {
                id,
                method,
                url,
                resource_type,
                redirected,
            } => {
                if let Some((status, status_text)) = redirected
                    && let Some(prev) = self.network.iter_mut().rev().find(|n| n.request_id == id)
                {
                    prev.status = status;
                    prev.status_text = status_text;
                    prev.done = true;
                }
                if self.network.len() >= MAX_NETWORK {
                    self.network.pop_front();
                }
                self.net_seq += 1;
                let (seq, nav) = (self.net_seq, self.nav);
                self.network.push_back(NetEntry {
                    seq,
                    request_id: id.clone(),
                    method,
                    url,
                    resource_type,
                    status: None,
                    status_text: String::new(),
                    failed: None,
                    done: false,
                    nav,
                });
                if self.inflight.len() < 10_000 {
                    self.inflight.insert(id);
                }
            }
            NetEvent::Response {
                id,
                status,
                status_text,
                resource_type,
            } => {
                if let Some(n) = self.network.iter_mut().rev().find(|n| n.request_id == id) {
                    n.status = status;
                    n.status_text = status_text;
                    if let Some(t) = resource_type {
                        n.resource_type = t;
                    }
                }
            }
            NetEvent::Finished { id, failed } => {
                if let Some(n) = self.network.iter_mut().rev().find(|n| n.request_id == id) {
                    n.done = true;
                    if failed.is_some() {
                        n.failed = failed;
                    }
                }
                self.inflight.remove(&id);
            }
        }
    }

    /// Applies a child session going away.
    pub fn on_target_detached(&mut self, session: &str) {
        if let Some(target) = self.child_sessions.remove(session) {
            self.frames
                .retain(|k, f| *k != target || f.session.as_deref() != Some(session));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(s: &mut PageState, method: &str, p: Value) {
        match PageEvent::decode(method, p) {
            Some(PageEvent::Frame(e)) => s.on_frame(e, None, false),
            Some(PageEvent::Dialog(e)) => s.on_dialog(e),
            Some(PageEvent::Console(e)) => s.on_console(e),
            Some(PageEvent::Network(e)) => s.on_network(e),
            Some(PageEvent::Target(TargetEvent::Detached { session })) => {
                s.on_target_detached(&session)
            }
            _ => {}
        }
    }

    #[test]
    fn navigation_and_lifecycle() {
        let mut s = PageState::default();
        let nav = json!({"frame": {"id": "F", "loaderId": "L1", "url": "http://a/"}});
        apply(&mut s, "Page.frameNavigated", nav);
        assert_eq!(
            (s.nav, s.main_frame.as_str(), s.url.as_str()),
            (1, "F", "http://a/")
        );
        apply(
            &mut s,
            "Page.frameRequestedNavigation",
            json!({"frameId": "F"}),
        );
        assert_eq!(s.nav_requested, 1);
        let other = json!({"frameId": "F", "loaderId": "L0", "name": "load"});
        apply(&mut s, "Page.lifecycleEvent", other);
        assert!(
            !s.loaded(),
            "a lifecycle event of an old loader does not count"
        );
        let load = json!({"frameId": "F", "loaderId": "L1", "name": "load"});
        apply(&mut s, "Page.lifecycleEvent", load);
        assert!(s.loaded());
        apply(&mut s, "Page.frameStoppedLoading", json!({"frameId": "F"}));
        assert_eq!(s.nav_requested, 0);
        let same = json!({"frameId": "F", "url": "http://a/#x"});
        apply(&mut s, "Page.navigatedWithinDocument", same);
        assert_eq!((s.nav, s.url.as_str()), (1, "http://a/#x"));
    }

    #[test]
    fn network_redirects_and_failures() {
        let mut s = PageState::default();
        let req = json!({"requestId": "1", "request": {"method": "POST", "url": "http://a/"}, "type": "Document"});
        apply(&mut s, "Network.requestWillBeSent", req);
        let redirect = json!({"requestId": "1", "request": {"url": "http://b/"}, "redirectResponse": {"status": 302, "statusText": "Found"}});
        apply(&mut s, "Network.requestWillBeSent", redirect);
        assert_eq!(s.network.len(), 2);
        assert_eq!(s.network[0].status, Some(302));
        assert!(s.network[0].done);
        assert_eq!(
            (
                s.network[1].method.as_str(),
                s.network[1].resource_type.as_str()
            ),
            ("GET", "Other")
        );
        let failed = json!({"requestId": "1", "errorText": "net::ERR_FAILED", "canceled": true});
        apply(&mut s, "Network.loadingFailed", failed);
        assert_eq!(s.network[1].failed.as_deref(), Some("canceled"));
        assert!(s.inflight.is_empty());
    }

    #[test]
    fn console_dialogs_and_unknown_events() {
        let mut s = PageState::default();
        let log = json!({"type": "assert", "args": [{"type": "string", "value": "x"}, {"type": "object", "subtype": "null"}]});
        apply(&mut s, "Runtime.consoleAPICalled", log);
        let c = s.console.back().unwrap();
        assert_eq!(
            (c.level, c.text.as_str()),
            (Level::Error, "Assertion failed: x null")
        );
        apply(
            &mut s,
            "Page.javascriptDialogOpening",
            json!({"type": "confirm", "message": "ok?"}),
        );
        assert_eq!(s.dialog.as_ref().map(|d| d.kind.as_str()), Some("confirm"));
        apply(&mut s, "Page.javascriptDialogClosed", json!({}));
        assert!(s.dialog.is_none());
        assert_eq!(PageEvent::decode("Page.frameResized", json!({})), None);
        assert_eq!(PageEvent::decode("Animation.started", json!({})), None);
    }
}
