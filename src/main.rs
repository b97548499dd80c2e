//! The `tabmux` command: flags and wiring only.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rmcp::ServiceExt;

use tabmux::browser::{Browser, Config, Mode};
use tabmux::link::launch::LaunchOptions;
use tabmux::mcp::Server;

/// One real browser for many AI clients: an MCP server on stdio.
#[derive(Parser, Debug)]
#[command(name = "tabmux", version, about, long_about = None)]
struct Cli {
    /// Launch a private browser (temporary profile, removed on exit).
    #[arg(long, conflicts_with = "cdp")]
    launch: bool,
    /// Attach to a running browser: ws://host:port/devtools/browser/<id> or http://host:port.
    #[arg(long, value_name = "URL")]
    cdp: Option<String>,
    /// Show the launched browser's window (default: headless).
    #[arg(long)]
    headed: bool,
    /// The Chromium/Chrome executable to launch.
    #[arg(long, value_name = "PATH", env = "TABMUX_BROWSER")]
    browser_path: Option<PathBuf>,
    /// Extra flag for a launched browser (repeatable).
    #[arg(long = "browser-arg", value_name = "FLAG", allow_hyphen_values = true)]
    browser_args: Vec<String>,
    /// Deadline of one browser command, in seconds.
    #[arg(long, default_value_t = 30)]
    command_timeout: u64,
    /// Deadline of a navigation, in seconds.
    #[arg(long, default_value_t = 30)]
    navigation_timeout: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {}

fn init_logging() {
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
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_filter(filter),
        )
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(cli))
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let mode = match &cli.cdp {
        Some(url) => Mode::Cdp(url.clone()),
        None => Mode::Launch(LaunchOptions {
            browser_path: cli.browser_path.clone(),
            headed: cli.headed,
            extra_args: cli.browser_args.clone(),
            ..Default::default()
        }),
    };
    let browser = Arc::new(Browser::new(Config {
        mode,
        command_timeout: Duration::from_secs(cli.command_timeout.max(1)),
        navigation_timeout: Duration::from_secs(cli.navigation_timeout.max(1)),
    }));
    let server = Server::new(browser.clone());
    let service = server
        .serve(rmcp::transport::io::stdio_pipes())
        .await
        .map_err(|e| anyhow::anyhow!("MCP handshake failed: {e}"))?;
    let ended = async {
        let _ = service.waiting().await;
    };
    tokio::select! {
        _ = ended => tracing::info!("client closed the connection"),
        _ = shutdown_signal() => tracing::info!("signal received"),
    }
    browser.shutdown().await;
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
