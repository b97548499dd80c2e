//! The MCP server (stdio): tool list, dispatch, answers. Tools speak only to the
//! browser layer.

mod act;
pub mod confine;
pub mod guard;
mod look;
pub mod nav;
pub mod out;
mod page_tool;
pub mod report;
mod tabs;
pub mod tool;
pub mod tools;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, Implementation, InitializeRequestParams, InitializeResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;

use crate::browser::Browser;
use crate::error::{Error, Result};

/// What a tool answers: text, and images (base64, mime type).
pub struct Out {
    pub text: String,
    pub images: Vec<(String, String)>,
}

impl Out {
    pub fn text(t: impl Into<String>) -> Out {
        Out {
            text: t.into(),
            images: Vec::new(),
        }
    }
}

/// What a tool call may use.
pub struct Ctx<'a> {
    pub browser: &'a Browser,
    pub trace: &'a str,
    /// The client's file boundary (roots) and URL rules.
    pub files: &'a confine::Files,
}

type ClientNamed = Arc<dyn Fn(&str) + Send + Sync>;

/// The tabmux MCP server of one client.
pub struct Server {
    browser: Arc<Browser>,
    tools: Arc<Vec<Tool>>,
    client_name: Mutex<Option<String>>,
    on_client_named: Option<ClientNamed>,
    calls: AtomicU64,
    files: confine::Files,
}

impl Server {
    pub fn new(browser: Arc<Browser>) -> Server {
        Server {
            browser,
            tools: Arc::new(tools::TOOLS.iter().map(|t| t.to_tool()).collect()),
            client_name: Mutex::new(None),
            on_client_named: None,
            calls: AtomicU64::new(0),
            files: confine::Files::new(false),
        }
    }

    /// `--allow-unrestricted-file-access`: files anywhere, not only inside the roots.
    pub fn unrestricted_files(mut self, yes: bool) -> Server {
        self.files = confine::Files::new(yes);
        self
    }

    /// Called with the client's name once `initialize` names it.
    pub fn on_client_named(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Server {
        self.on_client_named = Some(Arc::new(f));
        self
    }

    pub fn client_name(&self) -> Option<String> {
        self.client_name.lock().unwrap().clone()
    }

    async fn dispatch(&self, name: &str, args: Value, trace: &str) -> Result<Out> {
        let ctx = Ctx {
            browser: &self.browser,
            trace,
            files: &self.files,
        };
        match tools::find(name) {
            Some(t) => (t.call)(&ctx, args).await,
            None => Err(Error::bad_request(format!("there is no tool {name:?}"))),
        }
    }

    /// Runs one tool call and shapes its answer.
    pub async fn run_tool(&self, name: &str, args: Value) -> CallToolResult {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let trace = format!("t{:x}-{n}", std::process::id());
        let started = Instant::now();
        let result = crate::link::extension::TRACE
            .scope(trace.clone(), self.dispatch(name, args, &trace))
            .await;
        self.browser.adopt_opened().await;
        let ms = started.elapsed().as_millis();
        let notes = self.browser.take_notes().join("\n");
        let prefix = if notes.is_empty() {
            String::new()
        } else {
            format!("{notes}\n")
        };
        match result {
            Ok(out) => {
                tracing::info!(trace = %trace, tool = name, ms, "ok");
                let mut content = vec![ContentBlock::text(format!("{prefix}{}", out.text))];
                for (data, mime) in out.images {
                    content.push(ContentBlock::image(data, mime));
                }
                CallToolResult::success(content)
            }
            Err(e) => {
                tracing::info!(trace = %trace, tool = name, ms, code = e.code, "error");
                // The code comes first, so models and people can match on it.
                let mut text = e.to_string();
                if !notes.is_empty() {
                    text.push('\n');
                    text.push_str(&notes);
                }
                if let Some(p) = self.browser.current()
                    && let Some(d) = p.state().dialog.clone()
                {
                    text.push_str(&format!(
                        "\nDialog open: {} {:?} — answer with browser_handle_dialog",
                        d.kind, d.message
                    ));
                }
                CallToolResult::error(vec![ContentBlock::text(text)])
            }
        }
    }
}

const INSTRUCTIONS: &str = "Drive a real browser. Start with browser_navigate; act on elements by the refs (e12) of the snapshot it returns. Actions answer with what changed. Several clients can share one browser: each sees only its own tabs.";

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let mut info = InitializeResult::new(ServerCapabilities::builder().enable_tools().build());
        info.protocol_version = ProtocolVersion::V_2025_11_25;
        info.server_info = Implementation::new("tabmux", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(INSTRUCTIONS.to_string());
        info
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<InitializeResult, McpError> {
        let name = request.client_info.name.trim().to_string();
        if !name.is_empty() {
            *self.client_name.lock().unwrap() = Some(name.clone());
            if let Some(f) = &self.on_client_named {
                f(&name);
            }
        }
        context.peer.set_peer_info(request.clone());
        self.files.set_peer(context.peer.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<CustomResult, McpError> {
        if request.method == guard::OVERSIZED {
            return Err(McpError::invalid_request(
                format!(
                    "the request is larger than {} MiB, tabmux's limit for one message; send less at once",
                    guard::MAX_LINE >> 20
                ),
                None,
            ));
        }
        Err(McpError::method_not_found::<
            rmcp::model::CallToolRequestMethod,
        >())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, McpError> {
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let status = crate::progress::Status::default();
        let _ticker = context
            .meta
            .get_progress_token()
            .map(|token| progress_ticker(context.peer.clone(), token, status.clone()));
        let run = crate::progress::scope(status, self.run_tool(&request.name, args));
        // `notifications/cancelled` stops the call at once: its future is dropped with
        // every wait and command in it, which frees the tab (its op lock) and withdraws
        // a queued claim (see `Browser::claim`). rmcp sends no answer for it.
        tokio::select! {
            r = run => Ok(r.into()),
            _ = context.ct.cancelled() => {
                tracing::info!(tool = %request.name, "cancelled by the client");
                if NAVIGATING.contains(&request.name.as_ref()) {
                    self.browser.stop_loading();
                }
                Err(McpError::internal_error("cancelled by the client", None))
            }
        }
    }
}

/// Tools whose cancellation also stops the page loading what they asked for.
const NAVIGATING: &[&str] = &[
    "browser_navigate",
    "browser_navigate_back",
    "browser_navigate_forward",
    "browser_reload",
];

/// How often a call with a progress token reports.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(800);

/// Sends `notifications/progress` for a call while it runs (the task ends when the
/// returned guard is dropped): what the call does now, and for how long.
fn progress_ticker(
    peer: rmcp::Peer<RoleServer>,
    token: rmcp::model::ProgressToken,
    status: crate::progress::Status,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let started = Instant::now();
        let mut n = 0u32;
        loop {
            tokio::time::sleep(PROGRESS_EVERY).await;
            n += 1;
            let what = status
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| "working".to_string());
            let message = format!("{what} — {} s so far", started.elapsed().as_secs());
            let p = rmcp::model::ProgressNotificationParam::new(token.clone(), f64::from(n))
                .with_message(message);
            if peer.notify_progress(p).await.is_err() {
                return;
            }
        }
    }))
}

/// A task that ends when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves one MCP client only to tell it why tabmux cannot run (e.g. the port range is
/// full): its `initialize` is answered with `message` as the error, which clients show
/// to their user. Returns then, or after `wait` when no client speaks.
pub async fn refuse(message: &str, wait: std::time::Duration) {
    struct Refusal(String);
    impl ServerHandler for Refusal {
        async fn initialize(
            &self,
            _request: InitializeRequestParams,
            _context: RequestContext<RoleServer>,
        ) -> std::result::Result<InitializeResult, McpError> {
            Err(McpError::internal_error(self.0.clone(), None))
        }
    }
    use rmcp::ServiceExt;
    let served = Refusal(message.to_string()).serve(rmcp::transport::io::stdio_pipes());
    let _ = tokio::time::timeout(wait, served).await;
}
