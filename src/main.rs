//! The `tabmux` command: flags and wiring only.

#![warn(clippy::too_many_lines)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rmcp::ServiceExt;

use tabmux::bridge::{self, Bridge, BridgeConfig, BridgeEvent, Identity};
use tabmux::browser::{Browser, Config, Mode};
use tabmux::link::extension::ExtensionLink;
use tabmux::link::launch::LaunchOptions;
use tabmux::link::shared::Shared;
use tabmux::mcp::Server;
use tabmux::registry::{self, InstanceMeta, PortRange};

/// One real browser for many AI clients: an MCP server on stdio.
#[derive(Parser, Debug)]
#[command(name = "tabmux", version, about, long_about = None)]
struct Cli {
    /// Launch a private browser (temporary profile, removed on exit) instead of using
    /// the browser that runs the tabmux extension.
    #[arg(long, conflicts_with = "cdp")]
    launch: bool,
    /// Attach to a running browser: ws://host:port/devtools/browser/<id> or http://host:port.
    #[arg(long, value_name = "URL", conflicts_with = "extension_only")]
    cdp: Option<String>,
    /// Only use a browser that runs the tabmux extension; never launch one.
    #[arg(long = "extension", conflicts_with = "launch")]
    extension_only: bool,
    /// Show the launched browser's window (default: headless with --launch; the shared
    /// browser is headed when there is a display).
    #[arg(long, conflicts_with = "headless")]
    headed: bool,
    /// Run the shared browser headless even when there is a display.
    #[arg(long)]
    headless: bool,
    /// Seconds the shared browser stays open after the last client left.
    #[arg(long, default_value_t = 10.0)]
    linger: f64,
    /// The Chromium/Chrome executable to launch.
    #[arg(long, value_name = "PATH", env = "TABMUX_BROWSER")]
    browser_path: Option<PathBuf>,
    /// Extra flag for a launched browser (repeatable).
    #[arg(long = "browser-arg", value_name = "FLAG", allow_hyphen_values = true)]
    browser_args: Vec<String>,
    /// Ports tabmux instances and the extension use.
    #[arg(
        long,
        global = true,
        value_name = "FIRST-LAST",
        env = "TABMUX_PORTS",
        default_value = "8765-8775"
    )]
    ports: PortRange,
    /// Accept the extension with these ids (repeatable, or comma-separated; for a
    /// differently packaged build). Default: the tabmux extension loaded unpacked, and
    /// its Chrome Web Store id.
    #[arg(
        long,
        value_name = "ID",
        value_delimiter = ',',
        env = "TABMUX_EXTENSION_IDS"
    )]
    extension_id: Vec<String>,
    /// Seconds a first tool call waits for a browser running the extension. Default: 2
    /// once a browser with the extension has connected to tabmux on this machine, 0
    /// before (nothing to wait for: the shared browser starts at once).
    #[arg(long)]
    extension_wait: Option<f64>,
    /// Seconds an idle holder keeps a tab that another client waits for.
    #[arg(long, default_value_t = bridge::DEFAULT_LEASE_MS / 1000)]
    lease: u64,
    /// Tabs the user opened (not made by a tabmux client): `ask` the user in the browser
    /// before each client uses one, `allow` without asking, or `deny` them always.
    #[arg(long, value_enum, default_value_t = UserTabs::Ask)]
    user_tabs: UserTabs,
    /// Seconds the extension keeps this instance's tabs after its connection drops.
    #[arg(long, default_value_t = bridge::DEFAULT_GRACE_MS / 1000)]
    grace: u64,
    /// Deadline of one browser command, in seconds.
    #[arg(long, default_value_t = 30)]
    command_timeout: u64,
    /// Deadline of a navigation, in seconds.
    #[arg(long, default_value_t = 30)]
    navigation_timeout: u64,
    /// Let tools read and write files anywhere (uploads, screenshot files, file:// pages),
    /// not only inside the client's MCP roots (or the working directory). Screenshots
    /// still never overwrite a file.
    #[arg(long)]
    allow_unrestricted_file_access: bool,
    /// Where page snapshots come from: `collector` (a script of tabmux in every frame, fast)
    /// or `ax` (the browser's accessibility tree, exact and slower on big pages).
    #[arg(long, value_enum, default_value_t = SnapshotSource::Collector)]
    snapshot_source: SnapshotSource,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where snapshots come from (`--snapshot-source`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SnapshotSource {
    Collector,
    Ax,
}

/// What an instance may do with the user's own tabs (`--user-tabs`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum UserTabs {
    Ask,
    Allow,
    Deny,
}

impl UserTabs {
    fn as_str(self) -> &'static str {
        match self {
            UserTabs::Ask => "ask",
            UserTabs::Allow => "allow",
            UserTabs::Deny => "deny",
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the running tabmux instances and their browsers.
    Status,
    /// The browser extension that lets tabmux use your own Chrome.
    Extension {
        #[command(subcommand)]
        action: ExtensionAction,
    },
    /// The secret tabmux and its extension prove to each other.
    Secret {
        #[command(subcommand)]
        action: SecretAction,
    },
    /// Closes the shared browser `pid` once no instance uses it (started with it).
    #[command(name = "watch-browser", hide = true)]
    WatchBrowser {
        #[arg(long)]
        pid: u32,
    },
}

#[derive(Subcommand, Debug)]
enum SecretAction {
    /// Replace the secret with a new one (then reinstall the extension).
    Rotate,
}

#[derive(Subcommand, Debug)]
enum ExtensionAction {
    /// Write the extension's files into DIR, ready for chrome://extensions → Load unpacked.
    Install { dir: PathBuf },
    /// Print the extension's ids (unpacked, then the Chrome Web Store's once published).
    Id,
    /// Print the pairing code for a copy of the extension without this secret (e.g. from
    /// the Chrome Web Store): paste it in the extension's popup, under "Pair with tabmux".
    Pair,
}

/// A log file for this process in the state directory (the 20 most recent are kept).
fn log_file() -> Option<std::fs::File> {
    let dir = registry::default_state_dir().ok()?.join("logs");
    tabmux::secure_fs::ensure_private_dir(&dir).ok()?;
    let mut old: Vec<_> = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("tabmux-"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    old.sort();
    let excess = old.len().saturating_sub(19);
    for (_, p) in old.into_iter().take(excess) {
        let _ = std::fs::remove_file(p);
    }
    tabmux::secure_fs::create_private(&dir.join(format!("tabmux-{}.log", std::process::id()))).ok()
}

fn init_logging(to_file: bool) {
    let level = match std::env::var("TABMUX_LOG").as_deref() {
        Ok("trace") => tracing::Level::TRACE,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("rmcp", tracing::Level::WARN.min(level));
    use tracing_subscriber::prelude::*;
    let file = if to_file { log_file() } else { None };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_filter(filter.clone()),
        )
        .with(file.map(|f| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false)
                .with_filter(filter)
        }))
        .init();
}

fn main() -> anyhow::Result<()> {
    tabmux::memory::configure();
    let cli = Cli::parse();
    init_logging(matches!(
        cli.command,
        None | Some(Command::WatchBrowser { .. })
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match &cli.command {
        Some(Command::Status) => rt.block_on(status(&cli)),
        Some(Command::Extension { action }) => extension(action),
        Some(Command::Secret {
            action: SecretAction::Rotate,
        }) => rotate_secret(),
        Some(Command::WatchBrowser { pid }) => {
            shared_browser(&cli, registry::default_state_dir()?).watch(*pid);
            Ok(())
        }
        None => {
            let served = rt.block_on(serve(cli));
            // The blocking read of stdin never ends by itself while the client keeps
            // the pipe open (after a signal): do not wait for it.
            rt.shutdown_timeout(Duration::from_secs(1));
            served
        }
    }
}

// The CLI's own subcommands print their answer; `serve` never does (stdout is JSON-RPC).
#[allow(clippy::print_stdout)]
async fn status(cli: &Cli) -> anyhow::Result<()> {
    let dir = registry::default_state_dir()?;
    let report = bridge::status_report(&dir, cli.ports).await;
    print!("{report}");
    Ok(())
}

#[allow(clippy::print_stdout)]
fn extension(action: &ExtensionAction) -> anyhow::Result<()> {
    match action {
        ExtensionAction::Id => {
            for id in bridge::known_extension_ids() {
                println!("{id}");
            }
        }
        ExtensionAction::Pair => {
            let state = registry::default_state_dir()?;
            let secret = tabmux::auth::load_or_create(&state)?;
            // The code alone on stdout (it can be piped to a clipboard tool); the hint
            // on stderr. Neither goes to a log.
            println!("{}", secret.pairing_code());
            eprintln!(
                "Paste this code in the tabmux extension's popup (toolbar icon → \"Pair with tabmux\"). \
                 It is your tabmux secret: keep it to yourself."
            );
        }
        ExtensionAction::Install { dir } => {
            let state = registry::default_state_dir()?;
            let secret = tabmux::auth::load_or_create(&state)?;
            let config = serde_json::json!({ "secret": secret.to_hex() });
            let n = tabmux::extension_files::install(dir, &config).map_err(|e| {
                anyhow::anyhow!("cannot write the extension into {}: {e}", dir.display())
            })?;
            let shown = std::path::absolute(dir).unwrap_or(dir.clone());
            println!(
                "Wrote the tabmux extension ({n} files, version {}) to {}.\n\
                 Now open chrome://extensions, turn on Developer mode, click \"Load unpacked\" and choose that folder.",
                tabmux::extension_files::version().unwrap_or_else(|| "?".into()),
                shown.display()
            );
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn rotate_secret() -> anyhow::Result<()> {
    let state = registry::default_state_dir()?;
    tabmux::auth::rotate(&state)?;
    println!(
        "Made a new secret in {}.\n\
         Running tabmux instances keep the old one until they restart. Reinstall the extension \
         (`tabmux extension install DIR` into the same folder, then its Reload button on \
         chrome://extensions), or for a paired copy (e.g. from the Chrome Web Store) run \
         `tabmux extension pair` and paste the new code in its popup (Forget pairing first); \
         the shared browser gets the new secret the next time it starts.",
        tabmux::auth::secret_path(&state).display()
    );
    Ok(())
}

/// Seconds a first tool call waits for a browser with the extension, once one has been
/// seen.
const DEFAULT_EXTENSION_WAIT: f64 = 2.0;

/// Seconds a first tool call waits for a browser with the extension: as given, else
/// none while no such browser has ever connected (plain `tabmux`, zero setup).
fn extension_wait(cli: &Cli, shared: Option<&Shared>) -> f64 {
    match (cli.extension_wait, shared) {
        (Some(s), _) => s.clamp(0.0, 600.0),
        (None, Some(shared)) if !shared.extension_seen() => 0.0,
        (None, _) => DEFAULT_EXTENSION_WAIT,
    }
}

/// The shared browser of `state_dir`, as the flags describe it.
fn shared_browser(cli: &Cli, state_dir: PathBuf) -> Shared {
    Shared {
        state_dir,
        ports: cli.ports,
        browser_path: cli.browser_path.clone(),
        headed: if cli.headed {
            Some(true)
        } else if cli.headless {
            Some(false)
        } else {
            None
        },
        extra_args: cli.browser_args.clone(),
        linger: Duration::from_secs_f64(cli.linger.clamp(0.0, 3600.0)),
    }
}

/// The extension link: a port of the range, the bridge on it, the registry entry.
fn start_bridge(cli: &Cli) -> anyhow::Result<(ExtensionLink, registry::PortClaim, InstanceMeta)> {
    let ids: Vec<String> = if cli.extension_id.is_empty() {
        bridge::known_extension_ids()
            .into_iter()
            .map(String::from)
            .collect()
    } else {
        cli.extension_id
            .iter()
            .map(|id| id.trim().to_string())
            .collect()
    };
    if let Some(bad) = ids.iter().find(|id| !bridge::is_extension_id(id)) {
        anyhow::bail!(
            "--extension-id {bad:?} is not an extension id (32 letters a-p; `tabmux extension id` prints the tabmux extension's)"
        );
    }
    let dir = registry::default_state_dir()?;
    let meta = InstanceMeta::for_this_process(registry::new_instance_id());
    let mut claim = registry::claim_port(&dir, cli.ports, &meta)?;
    let listener = claim
        .take_listener()
        .ok_or_else(|| anyhow::anyhow!("the claimed port has no listener"))?;
    let mut identity = Identity::new(meta.instance_id.clone(), "tabmux");
    identity.lease_ms = cli.lease.max(1) * 1000;
    identity.grace_ms = cli.grace * 1000;
    identity.user_tabs = cli.user_tabs.as_str().to_owned();
    let cfg = BridgeConfig {
        secret: tabmux::auth::load_or_create(&dir)?,
        allowed_origin: bridge::extension_origin(&ids[0]),
        other_origins: ids[1..]
            .iter()
            .map(|id| bridge::extension_origin(id))
            .collect(),
        ..BridgeConfig::default()
    };
    let b = Bridge::start(listener, identity, cfg)?;
    tracing::info!(port = claim.port(), "waiting for the tabmux extension");
    let link = ExtensionLink::new(b, Duration::from_secs(cli.grace.max(2)));
    Ok((link, claim, meta))
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let mut registration = None;
    let mode = if let Some(url) = &cli.cdp {
        Mode::Cdp(url.clone())
    } else if cli.launch {
        Mode::Launch(LaunchOptions {
            browser_path: cli.browser_path.clone(),
            headed: cli.headed,
            extra_args: cli.browser_args.clone(),
            ..Default::default()
        })
    } else {
        let (link, claim, meta) = match start_bridge(&cli) {
            Ok(started) => started,
            Err(e) => {
                // Tell the client why (it shows the error), then exit.
                if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    tabmux::mcp::refuse(&format!("{e:#}"), Duration::from_secs(10)).await;
                }
                return Err(e);
            }
        };
        let shared = shared_browser(&cli, claim.state_dir().to_path_buf());
        registration = Some((
            link.bridge().clone(),
            Arc::new(std::sync::Mutex::new((claim, meta))),
        ));
        if cli.extension_only {
            Mode::Extension(link)
        } else {
            Mode::Auto(link, shared)
        }
    };
    let shared_browser = match &mode {
        Mode::Auto(_, shared) => Some(shared.clone()),
        _ => None,
    };
    let extension_wait = extension_wait(&cli, shared_browser.as_ref());
    let browser = Arc::new(Browser::new(Config {
        mode,
        extension_wait: Duration::from_secs_f64(extension_wait),
        command_timeout: Duration::from_secs(cli.command_timeout.max(1)),
        navigation_timeout: Duration::from_secs(cli.navigation_timeout.max(1)),
        snapshot_source: match cli.snapshot_source {
            SnapshotSource::Collector => tabmux::browser::snap::Source::Collector,
            SnapshotSource::Ax => tabmux::browser::snap::Source::Ax,
        },
    }));
    let mut server =
        Server::new(browser.clone()).unrestricted_files(cli.allow_unrestricted_file_access);
    if let Some((bridge, reg)) = &registration {
        // The client's name goes to the extension (tab group titles) and the registry.
        let (bridge, reg2) = (bridge.clone(), reg.clone());
        server = server.on_client_named(move |name| {
            bridge.set_name(name);
            let mut r = reg2.lock().unwrap();
            r.1.client_name = Some(name.to_string());
            let _ = r.0.update_meta(&r.1);
        });
        tokio::spawn(follow_browsers(
            registration.as_ref().unwrap().0.clone(),
            reg.clone(),
        ));
    }
    // Oversized messages get an answer instead of silence.
    let (stdin, stdout) = rmcp::transport::io::stdio_pipes();
    let (guarded_in, rmcp_in) = tokio::io::duplex(1 << 20);
    tokio::spawn(tabmux::mcp::guard::guard_lines(
        stdin,
        guarded_in,
        tabmux::mcp::guard::MAX_LINE,
    ));
    let service = tokio::select! {
        s = server.serve(tabmux::mcp::out::Lines::new(rmcp_in, stdout)) => {
            Some(s.map_err(|e| anyhow::anyhow!("MCP handshake failed: {e}"))?)
        }
        _ = &mut shutdown => None,
    };
    match service {
        Some(service) => tokio::select! {
            _ = service.waiting() => tracing::info!("client closed the connection"),
            _ = &mut shutdown => tracing::info!("signal received"),
        },
        None => tracing::info!("signal received before the session started"),
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), browser.shutdown()).await;
    if let Some((bridge, reg)) = &registration {
        bridge.shutdown();
        // The last instance to leave closes the shared browser, after the linger.
        if let Some(shared) = shared_browser {
            let port = reg.lock().unwrap().0.port();
            let _ = tokio::task::spawn_blocking(move || shared.leave(Some(port))).await;
        }
    }
    Ok(())
}

/// This instance's port claim and its metadata in the registry.
type Registration = Arc<std::sync::Mutex<(registry::PortClaim, InstanceMeta)>>;

/// Shows browsers connecting and leaving in the registry (`tabmux status`).
async fn follow_browsers(bridge: Bridge, reg: Registration) {
    let mut events = bridge.subscribe();
    loop {
        let ev = match events.recv().await {
            Ok(ev) => ev,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => break,
        };
        let n = bridge.connections().iter().filter(|c| c.is_open()).count() as u32;
        let mut r = reg.lock().unwrap();
        r.1.browsers = n;
        let _ = r.0.update_meta(&r.1);
        match ev {
            BridgeEvent::Connected(id) => {
                tracing::info!(connection = id, "browser connected");
                // A user's browser (not the shared one): later first calls wait for it.
                if bridge
                    .connections()
                    .iter()
                    .any(|c| c.id() == id && !c.managed())
                {
                    tabmux::link::shared::record_extension_seen(r.0.state_dir());
                }
            }
            BridgeEvent::Disconnected(id) => {
                tracing::info!(connection = id, "browser disconnected")
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C elsewhere). The handlers are installed at
/// once, so a signal that comes early is not lost (nor fatal).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
