//! Progress notifications for long waits: when the client sent a progress token with a
//! tool call, a wait reports how long it has waited, once a second, until it ends.

use std::future::Future;
use std::time::{Duration, Instant};

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};

tokio::task_local! {
    /// The client and the token of the tool call being served, when it asked for progress.
    pub static PROGRESS: Option<(Peer<RoleServer>, ProgressToken)>;
}

/// How often a wait reports.
const EVERY: Duration = Duration::from_secs(1);

/// Runs `fut`; while it runs, reports progress (seconds waited of `total` seconds, and
/// `message(waited)`) if the client asked for it.
pub async fn while_waiting<T>(
    fut: impl Future<Output = T>,
    total: f64,
    message: impl Fn(f64) -> String,
) -> T {
    let Some(Some((peer, token))) = PROGRESS.try_with(|p| p.clone()).ok() else {
        return fut.await;
    };
    let started = Instant::now();
    tokio::pin!(fut);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tick.tick() => {
                let waited = started.elapsed().as_secs_f64();
                let p = ProgressNotificationParam::new(token.clone(), waited.floor())
                    .with_total(total)
                    .with_message(message(waited));
                // A client that stopped listening changes nothing about the wait.
                if let Err(e) = peer.notify_progress(p).await {
                    tracing::debug!("progress not sent: {e}");
                }
            }
        }
    }
}
