//! What a long tool call is doing right now, for progress notifications: code deep in
//! a call (a claim waiting in a queue, a wait for a text, a loading page) says so with
//! [`set`]; the MCP layer sends it to clients that asked for progress, at least once a
//! second. Outside a tool call [`set`] does nothing.

use std::sync::{Arc, Mutex};

/// The status of one call.
pub type Status = Arc<Mutex<Option<String>>>;

tokio::task_local! {
    static STATUS: Status;
}

/// Says what the current call is doing (a line a person can read).
pub fn set(message: impl Into<String>) {
    let _ = STATUS.try_with(|s| *s.lock().unwrap() = Some(message.into()));
}

/// Runs `f` with `status` as the status [`set`] writes to.
pub async fn scope<F: std::future::Future>(status: Status, f: F) -> F::Output {
    STATUS.scope(status, f).await
}

/// "1st", "2nd", "3rd", "11th"…
pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn set_writes_the_scoped_status() {
        set("outside: ignored");
        let s: Status = Default::default();
        scope(s.clone(), async { set("loading x") }).await;
        assert_eq!(s.lock().unwrap().as_deref(), Some("loading x"));
        assert_eq!(
            [1, 2, 3, 4, 11, 12, 13, 21, 22, 101].map(ordinal),
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"
            ]
        );
    }
}
