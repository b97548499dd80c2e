//! The MCP server (stdio): tool list, dispatch, answers. Tools speak only to the
//! browser layer.

mod act;
pub mod confine;
pub mod guard;
mod look;
pub mod nav;
pub mod report;
pub mod schema;
mod tabs;

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
use serde::de::DeserializeOwned;
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

/// Parses a tool's arguments; a wrong shape is a clear `BAD_REQUEST`.
pub fn parse<T: DeserializeOwned>(args: Value) -> Result<T> {
    let args = if args.is_null() {
        Value::Object(Default::default())
    } else {
        args
    };
    serde_json::from_value(args).map_err(|e| Error::bad_request(format!("bad arguments: {e}")))
}

type ClientNamed = Arc<dyn Fn(&str) + Send + Sync>;

/// The tabmux MCP server of one client.
pub struct Server {
    browser: Arc<Browser>,
    tools: Arc<Vec<Tool>>,
    client_name: Mutex<Option<String>>,
    on_client_named: Option<ClientNamed>,
    first_line: Mutex<Option<String>>,
    calls: AtomicU64,
    files: confine::Files,
}

impl Server {
    pub fn new(browser: Arc<Browser>) -> Server {
        Server {
            browser,
            tools: Arc::new(schema::tools()),
            client_name: Mutex::new(None),
            on_client_named: None,
            first_line: Mutex::new(None),
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

    /// A line put before the first tool answer of the session (which browser is in use).
    pub fn set_first_line(&self, line: Option<String>) {
        *self.first_line.lock().unwrap() = line;
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
        match name {
            "browser_navigate" => nav::navigate(&ctx, args).await,
            "browser_navigate_back" => nav::back(&ctx, args).await,
            "browser_navigate_forward" => nav::forward(&ctx, args).await,
            "browser_reload" => nav::reload(&ctx, args).await,
            "browser_wait_for" => nav::wait_for(&ctx, args).await,
            "browser_snapshot" => look::snapshot(&ctx, args).await,
            "browser_take_screenshot" => look::screenshot(&ctx, args).await,
            "browser_evaluate" => look::evaluate(&ctx, args).await,
            "browser_console_messages" => look::console_messages(&ctx, args).await,
            "browser_network_requests" => look::network_requests(&ctx, args).await,
            "browser_click" => act::click(&ctx, args).await,
            "browser_hover" => act::hover(&ctx, args).await,
            "browser_type" => act::type_text(&ctx, args).await,
            "browser_select_option" => act::select_option(&ctx, args).await,
            "browser_press_key" => act::press_key(&ctx, args).await,
            "browser_fill_form" => act::fill_form(&ctx, args).await,
            "browser_drag" => act::drag(&ctx, args).await,
            "browser_file_upload" => act::file_upload(&ctx, args).await,
            "browser_handle_dialog" => act::handle_dialog(&ctx, args).await,
            "browser_tabs" => tabs::tabs(&ctx, args).await,
            "browser_resize" => tabs::resize(&ctx, args).await,
            "browser_close" => tabs::close(&ctx, args).await,
            other => Err(Error::bad_request(format!("there is no tool {other:?}"))),
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
        let mut prefix = Vec::new();
        if let Some(line) = self.first_line.lock().unwrap().take() {
            prefix.push(line);
        }
        prefix.extend(self.browser.take_notes());
        let notes = prefix.join("\n");
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
