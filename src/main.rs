//! The `tabmux` command: flags and wiring only.

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
    /// Accept the extension with this id (for a differently packaged build).
    #[arg(long, value_name = "ID", default_value = bridge::DEFAULT_EXTENSION_ID)]
    extension_id: String,
    /// Seconds a first tool call waits for a browser running the extension.
    #[arg(long, default_value_t = 2.0)]
    extension_wait: f64,
    /// Seconds an idle holder keeps a tab that another client waits for.
    #[arg(long, default_value_t = 60)]
    lease: u64,
    /// Tabs the user opened (not made by a tabmux client): `ask` the user in the browser
    /// before each client uses one, `allow` without asking, or `deny` them always.
    #[arg(long, value_enum, default_value_t = UserTabs::Ask)]
    user_tabs: UserTabs,
    /// Seconds the extension keeps this instance's tabs after its connection drops.
    #[arg(long, default_value_t = 5)]
    grace: u64,
    /// Deadline of one browser command, in seconds.
    #[arg(long, default_value_t = 30)]
    command_timeout: u64,
    /// Deadline of a navigation, in seconds.
    #[arg(long, default_value_t = 30)]
    navigation_timeout: u64,
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
    /// Closes the shared browser `pid` once no instance uses it (started with it).
    #[command(name = "watch-browser", hide = true)]
    WatchBrowser {
        #[arg(long)]
        pid: u32,
    },
}

#[derive(Subcommand, Debug)]
enum ExtensionAction {
    /// Write the extension's files into DIR, ready for chrome://extensions → Load unpacked.
    Install { dir: PathBuf },
    /// Print the extension's id.
    Id,
}

/// A log file for this process in the state directory (the 20 most recent are kept).
fn log_file() -> Option<std::fs::File> {
    let dir = registry::default_state_dir().ok()?.join("logs");
    std::fs::create_dir_all(&dir).ok()?;
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
    std::fs::File::create(dir.join(format!("tabmux-{}.log", std::process::id()))).ok()
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
        Some(Command::WatchBrowser { pid }) => {
            shared_browser(&cli, registry::default_state_dir()?).watch(*pid);
            Ok(())
        }
        None => rt.block_on(serve(cli)),
    }
}

async fn status(cli: &Cli) -> anyhow::Result<()> {
    let dir = registry::default_state_dir()?;
    let report = bridge::status_report(&dir, cli.ports).await;
    print!("{report}");
    Ok(())
}

fn extension(action: &ExtensionAction) -> anyhow::Result<()> {
    match action {
        ExtensionAction::Id => println!("{}", bridge::DEFAULT_EXTENSION_ID),
        ExtensionAction::Install { dir } => {
            let n = tabmux::extension_files::install(dir).map_err(|e| {
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
    if !bridge::is_extension_id(&cli.extension_id) {
        anyhow::bail!(
            "--extension-id {:?} is not an extension id (32 letters a-p)",
            cli.extension_id
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
        allowed_origin: bridge::extension_origin(&cli.extension_id),
        ..BridgeConfig::default()
    };
    let b = Bridge::start(listener, identity, cfg)?;
    tracing::info!(port = claim.port(), "waiting for the tabmux extension");
    let link = ExtensionLink::new(b, Duration::from_secs(cli.grace.max(2)));
    Ok((link, claim, meta))
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
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
    let browser = Arc::new(Browser::new(Config {
        mode,
        extension_wait: Duration::from_secs_f64(cli.extension_wait.clamp(0.0, 600.0)),
        command_timeout: Duration::from_secs(cli.command_timeout.max(1)),
        navigation_timeout: Duration::from_secs(cli.navigation_timeout.max(1)),
        snapshot_source: match cli.snapshot_source {
            SnapshotSource::Collector => tabmux::browser::snap::Source::Collector,
            SnapshotSource::Ax => tabmux::browser::snap::Source::Ax,
        },
    }));
    let mut server = Server::new(browser.clone());
    if let Some((bridge, reg)) = &registration {
        // The client's name goes to the extension (tab group titles) and the registry.
        let (bridge, reg2) = (bridge.clone(), reg.clone());
        server = server.on_client_named(move |name| {
            bridge.set_name(name);
            let mut r = reg2.lock().unwrap();
            r.1.client_name = Some(name.to_string());
            let _ = r.0.update_meta(&r.1);
        });
        // Browsers connecting and leaving show in the registry (tabmux status).
        let (bridge, reg) = (registration.as_ref().unwrap().0.clone(), reg.clone());
        let mut events = bridge.subscribe();
        tokio::spawn(async move {
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
                        tracing::info!(connection = id, "browser connected")
                    }
                    BridgeEvent::Disconnected(id) => {
                        tracing::info!(connection = id, "browser disconnected")
                    }
                }
            }
        });
    }
    // Oversized messages get an answer instead of silence.
    let (stdin, stdout) = rmcp::transport::io::stdio_pipes();
    let (guarded_in, rmcp_in) = tokio::io::duplex(1 << 20);
    tokio::spawn(tabmux::mcp::guard::guard_lines(
        stdin,
        guarded_in,
        tabmux::mcp::guard::MAX_LINE,
    ));
    let service = server
        .serve((rmcp_in, stdout))
        .await
        .map_err(|e| anyhow::anyhow!("MCP handshake failed: {e}"))?;
    let ended = async {
        let _ = service.waiting().await;
    };
    tokio::select! {
        _ = ended => tracing::info!("client closed the connection"),
        _ = shutdown_signal() => tracing::info!("signal received"),
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

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
