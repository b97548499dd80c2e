//! Shared test harness: a fixture web server, temporary directories, and an MCP client
//! that runs the real `tabmux` binary over stdio.

#![allow(dead_code)]

pub mod browser;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProtocolVersion, RootsCapabilities,
};
// Roots: how 2025-11-25 clients name their workspace (a later protocol revision drops them).
#[allow(deprecated)]
use rmcp::model::{ListRootsResult, Root};
use rmcp::service::{RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::Value;

pub use server::Fixtures;

/// Fails with a clear message when no browser is installed.
pub fn require_chromium() {
    let found = std::env::var_os("CHROME_PATH").is_some()
        || [
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ]
        .iter()
        .any(|p| Path::new(p).exists())
        || std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("chromium").exists()));
    assert!(
        found,
        "these end-to-end tests need Chromium: install it with `apt-get install -y chromium` \
         (or point CHROME_PATH at a Chrome/Chromium binary)"
    );
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "tabmux-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The answer of one tool call: its text (all text blocks joined) and images.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    pub is_error: bool,
    pub images: Vec<(String, String)>,
}

impl Answer {
    fn from(r: CallToolResult) -> Answer {
        let mut text = Vec::new();
        let mut images = Vec::new();
        for c in r.content {
            let v = serde_json::to_value(&c).unwrap();
            match v["type"].as_str() {
                Some("text") => text.push(v["text"].as_str().unwrap_or_default().to_string()),
                Some("image") => images.push((
                    v["data"].as_str().unwrap_or_default().to_string(),
                    v["mimeType"].as_str().unwrap_or_default().to_string(),
                )),
                _ => {}
            }
        }
        Answer {
            text: text.join("\n"),
            is_error: r.is_error == Some(true),
            images,
        }
    }

    /// The ref on the first snapshot line that contains all of `needles`.
    pub fn ref_of(&self, needles: &[&str]) -> String {
        find_ref(&self.text, needles)
            .unwrap_or_else(|| panic!("no line with {needles:?} and a ref in:\n{}", self.text))
    }
}

/// Finds `eN` on the first line containing all needles.
pub fn find_ref(text: &str, needles: &[&str]) -> Option<String> {
    for line in text.lines() {
        if needles.iter().all(|n| line.contains(n)) {
            let bytes = line.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'e'
                    && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
                    && i + 1 < bytes.len()
                    && bytes[i + 1].is_ascii_digit()
                {
                    let mut j = i + 1;
                    while j < bytes.len() && bytes[j].is_ascii_digit() {
                        j += 1;
                    }
                    if j == bytes.len() || !bytes[j].is_ascii_alphanumeric() {
                        return Some(line[i..j].to_string());
                    }
                }
                i += 1;
            }
        }
    }
    None
}

/// A tabmux that did not start serving its client.
#[derive(Debug)]
pub struct Refused {
    /// The error the client's MCP handshake ended with.
    pub error: String,
    /// How the process ended (`None` if it was still running 15 s later).
    pub status: Option<std::process::ExitStatus>,
    pub stderr: String,
}

/// How a test's MCP client presents itself.
#[derive(Clone, Debug)]
pub struct Opts {
    /// The roots it lists (`roots/list`); `None`: no roots capability at all. The
    /// default is the system temp directory, where tests keep their files.
    pub roots: Option<Vec<PathBuf>>,
    /// tabmux's working directory (default: the test's).
    pub cwd: Option<PathBuf>,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            roots: Some(vec![std::env::temp_dir()]),
            cwd: None,
        }
    }
}

/// Progress notifications a test client got, with when each came.
pub type Progress = std::sync::Arc<
    std::sync::Mutex<Vec<(std::time::Instant, rmcp::model::ProgressNotificationParam)>>,
>;

/// The MCP client side: its info, its roots when it has the capability, and the
/// progress notifications it got.
pub struct TestClient {
    info: ClientConfig,
    roots: Option<Vec<PathBuf>>,
    pub progress: Progress,
}

/// `file://` URI of an absolute path (spaces and `%` escaped).
pub fn file_uri(p: &Path) -> String {
    let s = p.display().to_string();
    format!("file://{}", s.replace('%', "%25").replace(' ', "%20"))
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    #[allow(deprecated)]
    fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> impl std::future::Future<Output = Result<ListRootsResult, ErrorData>> + Send + '_ {
        let roots = self
            .roots
            .iter()
            .flatten()
            .map(|p| Root::new(file_uri(p)))
            .collect();
        std::future::ready(Ok(ListRootsResult::new(roots)))
    }

    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.progress
            .lock()
            .unwrap()
            .push((std::time::Instant::now(), params));
    }
}

/// One tabmux process driven by a real MCP client over its stdio.
pub struct Client {
    pub service: RunningService<RoleClient, TestClient>,
    pub child: tokio::process::Child,
    pub log: PathBuf,
    pub state: TempDir,
}

impl Client {
    /// Starts `tabmux` with `args`, as an MCP client named `name` would.
    pub async fn start(name: &str, args: &[&str]) -> Client {
        Self::start_with(name, args, &[]).await
    }

    pub async fn start_with(name: &str, args: &[&str], env: &[(&str, &str)]) -> Client {
        let state = TempDir::new("state");
        let dir = state.path().to_path_buf();
        Self::spawn(name, args, env, &dir, state, Opts::default()).await
    }

    /// Starts `tabmux` with a client that has `opts` (roots, working directory).
    pub async fn start_opts(name: &str, args: &[&str], opts: Opts) -> Client {
        let state = TempDir::new("state");
        let dir = state.path().to_path_buf();
        Self::spawn(name, args, &[], &dir, state, opts).await
    }

    /// Like [`Client::start_in`], with a client that has `opts`.
    pub async fn start_in_opts(name: &str, args: &[&str], state_dir: &Path, opts: Opts) -> Client {
        let own = TempDir::new("log");
        Self::spawn(name, args, &[], state_dir, own, opts).await
    }

    /// Starts `tabmux` with a shared state directory (instances of one test that
    /// share a port range must see each other's registry).
    pub async fn start_in(name: &str, args: &[&str], state_dir: &Path) -> Client {
        let own = TempDir::new("log");
        Self::spawn(name, args, &[], state_dir, own, Opts::default()).await
    }

    /// Like [`Client::start_in`], with the tabmux process running as another OS user
    /// (`uid`, `gid`; the test must run as root).
    pub async fn start_as(
        name: &str,
        args: &[&str],
        state_dir: &Path,
        uid: u32,
        gid: u32,
    ) -> Client {
        let own = TempDir::new("log");
        match Self::try_spawn_as(
            name,
            args,
            &[],
            state_dir,
            own,
            Opts::default(),
            Some((uid, gid)),
        )
        .await
        {
            Ok(c) => c,
            Err(r) => panic!("MCP initialize succeeds: {}\n{}", r.error, r.stderr),
        }
    }

    /// Like [`Client::start_in`], for a tabmux that may refuse to serve: the error its
    /// client saw, its exit status and its stderr.
    pub async fn try_start_in(
        name: &str,
        args: &[&str],
        state_dir: &Path,
    ) -> Result<Client, Refused> {
        let own = TempDir::new("log");
        Self::try_spawn(name, args, &[], state_dir, own, Opts::default()).await
    }

    async fn spawn(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        state_dir: &Path,
        state: TempDir,
        opts: Opts,
    ) -> Client {
        match Self::try_spawn(name, args, env, state_dir, state, opts).await {
            Ok(c) => c,
            Err(r) => panic!(
                "MCP initialize succeeds: {}\n--- tabmux stderr ---\n{}",
                r.error, r.stderr
            ),
        }
    }

    async fn try_spawn(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        state_dir: &Path,
        state: TempDir,
        opts: Opts,
    ) -> Result<Client, Refused> {
        Self::try_spawn_as(name, args, env, state_dir, state, opts, None).await
    }

    async fn try_spawn_as(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        state_dir: &Path,
        state: TempDir,
        opts: Opts,
        user: Option<(u32, u32)>,
    ) -> Result<Client, Refused> {
        let log = state.path().join("stderr.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tabmux"));
        cmd.args(args)
            .env("TABMUX_STATE_DIR", state_dir)
            .env("TABMUX_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some((uid, gid)) = user {
            cmd.uid(uid).gid(gid);
        }
        if let Some(dir) = &opts.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().expect("the tabmux binary starts");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut caps = ClientCapabilities::default();
        if opts.roots.is_some() {
            caps.roots = Some(RootsCapabilities::default());
        }
        let mut cfg = ClientConfig::new(caps, Implementation::new(name, "1.0"));
        cfg.protocol_version = ProtocolVersion::V_2025_11_25;
        let handler = TestClient {
            info: cfg,
            roots: opts.roots,
            progress: Default::default(),
        };
        let served = tokio::time::timeout(Duration::from_secs(20), handler.serve((stdout, stdin)))
            .await
            .expect("initialize within 20 s");
        match served {
            Ok(service) => Ok(Client {
                service,
                child,
                log,
                state,
            }),
            Err(e) => {
                let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
                    .await
                    .ok()
                    .and_then(|s| s.ok());
                Err(Refused {
                    error: e.to_string(),
                    status,
                    stderr: std::fs::read_to_string(&log).unwrap_or_default(),
                })
            }
        }
    }

    /// Calls a tool; panics on protocol errors (tool errors come back as answers).
    pub async fn call(&self, tool: &str, args: Value) -> Answer {
        let mut p = CallToolRequestParams::new(tool.to_string());
        p.arguments = match args {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => panic!("arguments must be an object, not {other}"),
        };
        let r = tokio::time::timeout(Duration::from_secs(90), self.service.call_tool(p))
            .await
            .unwrap_or_else(|_| panic!("{tool} answered within 90 s\n{}", self.log_tail()))
            .unwrap_or_else(|e| {
                panic!(
                    "{tool} failed at the protocol level: {e}\n{}",
                    self.log_tail()
                )
            });
        Answer::from(r)
    }

    /// Starts a tool call and cancels it (`notifications/cancelled`) after `after`.
    /// Panics if the call answered before that.
    pub async fn call_cancelled_after(&self, tool: &str, args: Value, after: Duration) {
        use rmcp::model::{ClientRequest, Request};
        let mut p = CallToolRequestParams::new(tool.to_string());
        p.arguments = args.as_object().cloned();
        let req = ClientRequest::CallToolRequest(Request::new(p));
        let handle = self
            .service
            .peer()
            .send_cancellable_request(req, rmcp::service::PeerRequestOptions::no_options())
            .await
            .expect("the request is sent");
        let mut handle = handle;
        if let Ok(r) = tokio::time::timeout(after, &mut handle.rx).await {
            panic!("{tool} answered before it was cancelled: {r:?}");
        }
        handle
            .cancel(Some("the user pressed Esc".into()))
            .await
            .expect("the cancellation is sent");
    }

    /// Calls a tool with a progress token; returns its answer and the messages of the
    /// progress notifications sent for it, with when each came (since the call began).
    pub async fn call_with_progress(
        &self,
        tool: &str,
        args: Value,
    ) -> (Answer, Vec<(Duration, String)>) {
        use rmcp::model::{ClientRequest, Request, ServerResult};
        // The client gives every request a progress token of its own.
        let mut p = CallToolRequestParams::new(tool.to_string());
        p.arguments = args.as_object().cloned();
        let started = std::time::Instant::now();
        let handle = self
            .service
            .peer()
            .send_request_with_option(
                ClientRequest::CallToolRequest(Request::new(p)),
                rmcp::service::PeerRequestOptions::no_options(),
            )
            .await
            .expect("the request is sent");
        let token = handle.progress_token.clone();
        let r = tokio::time::timeout(Duration::from_secs(90), handle.await_response())
            .await
            .unwrap_or_else(|_| panic!("{tool} answered within 90 s"))
            .unwrap_or_else(|e| panic!("{tool} failed at the protocol level: {e}"));
        let got = self
            .service
            .service()
            .progress
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n)| n.progress_token == token)
            .map(|(at, n)| {
                (
                    at.saturating_duration_since(started),
                    n.message.clone().unwrap_or_default(),
                )
            })
            .collect();
        let answer = match r {
            ServerResult::CallToolResult(r) => Answer::from(r),
            other => panic!("{tool}: unexpected answer {other:?}"),
        };
        (answer, got)
    }

    /// Calls a tool; `None` when the call failed at the protocol level (e.g. tabmux died).
    pub async fn try_call(&self, tool: &str, args: Value) -> Option<Answer> {
        let mut p = CallToolRequestParams::new(tool.to_string());
        p.arguments = args.as_object().cloned();
        match tokio::time::timeout(Duration::from_secs(90), self.service.call_tool(p)).await {
            Ok(Ok(r)) => Some(Answer::from(r)),
            _ => None,
        }
    }

    /// Calls a tool that must succeed.
    pub async fn ok(&self, tool: &str, args: Value) -> Answer {
        let a = self.call(tool, args.clone()).await;
        assert!(
            !a.is_error,
            "{tool} {args} failed: {}\n{}",
            a.text,
            self.log_tail()
        );
        a
    }

    /// Calls a tool that must fail; returns its error text.
    pub async fn err(&self, tool: &str, args: Value) -> String {
        let a = self.call(tool, args.clone()).await;
        assert!(
            a.is_error,
            "{tool} {args} should have failed, got: {}",
            a.text
        );
        a.text
    }

    /// Evaluates a function on the page and returns its result text.
    pub async fn eval(&self, function: &str) -> String {
        let a = self
            .ok(
                "browser_evaluate",
                serde_json::json!({"function": function}),
            )
            .await;
        let first = a.text.lines().next().unwrap_or_default();
        first
            .strip_prefix("Result: ")
            .unwrap_or_else(|| panic!("no result line in {}", a.text))
            .to_string()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!(
            "--- tabmux stderr (last lines) ---\n{}",
            lines[start..].join("\n")
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Closes stdin (the client goes away) and waits for tabmux to exit.
    pub async fn quit(self) -> std::process::ExitStatus {
        let Client {
            service, mut child, ..
        } = self;
        let _ = service.cancel().await;
        match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
            Ok(s) => s.unwrap(),
            Err(_) => panic!("tabmux did not exit within 15 s after its client left"),
        }
    }
}

/// Pids of processes whose command line contains `needle`.
pub fn pids_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains(needle) {
                    out.push(pid);
                }
            }
        }
    }
    out
}

/// Ends any shared browser a test's tabmux launched into `state_dir` (a failed test
/// may leave one behind).
pub fn end_shared_browsers(state_dir: &Path) {
    let marker = state_dir.join("browser-profile").display().to_string();
    for pid in pids_with(&marker) {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim().starts_with("tabmux") {
            continue;
        }
        // SAFETY: ending a browser started for this test.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
}

/// Waits until `f` holds, polling every 50 ms, for at most `timeout`.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
