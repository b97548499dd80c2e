//! Waiting for a page to be quiet after a navigation or an action, so an answer shows
//! the page as a person would see it: no request that can change the document in
//! flight, and the DOM unchanged (no mutation, no finite CSS animation or transition
//! running) for a short spell. Bounded: a page that never goes quiet (polling,
//! tickers) is shown as it is when the bound is hit, and the answer says so.
//!
//! The DOM is watched by a `MutationObserver` in an isolated world of the page (the
//! page's own scripts cannot see or disturb it), one round trip per quiet check.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::page::{Page, PageState};

/// How long the DOM must stay unchanged. Measured on the fixtures: a page whose
/// script reveals its content after a `setTimeout(…, 100)` and a fetch changes the DOM
/// again within 120 ms of the previous change; 250 ms leaves room for a busy machine.
pub const DOM_QUIET: Duration = Duration::from_millis(250);
/// The most a page is waited for beyond its load (or the action).
pub const BOUND: Duration = Duration::from_millis(1500);

/// Request types whose answers can change what the page shows.
const WATCHED: &[&str] = &[
    "Document",
    "Script",
    "XHR",
    "Fetch",
    "Stylesheet",
    "Preflight",
];

/// Whether a request that can change the document is in flight.
pub fn network_busy(s: &PageState) -> bool {
    s.network
        .iter()
        .any(|n| !n.done && n.nav == s.nav && WATCHED.contains(&n.resource_type.as_str()))
}

const DOM_QUIET_JS: &str = r#"(quietMs, maxMs) => new Promise((resolve) => {
  const t0 = performance.now();
  let last = t0, changes = 0;
  const mo = new MutationObserver((ms) => { last = performance.now(); changes += ms.length; });
  mo.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  const animating = () => document.getAnimations().some((a) => {
    if (a.playState !== 'running') return false;
    const end = a.effect && a.effect.getComputedTiming().endTime;
    return Number.isFinite(end);
  });
  const check = () => {
    const now = performance.now();
    const quiet = now - last >= quietMs && !animating();
    if (quiet || now - t0 >= maxMs) {
      mo.disconnect();
      resolve({quiet, ms: Math.round(now - t0), changes});
    } else {
      setTimeout(check, 40);
    }
  };
  setTimeout(check, 40);
})"#;

/// What the wait found.
#[derive(Debug, Clone, Copy)]
pub struct Quiet {
    /// False when the bound was hit first.
    pub reached: bool,
    pub waited: Duration,
}

/// The isolated world of the current document, created once per document.
async fn world(page: &Page) -> Option<i64> {
    let (loader, frame, cached) = {
        let s = page.state();
        (
            s.loader.clone(),
            s.main_frame.clone(),
            s.quiet_world.clone(),
        )
    };
    if let Some((l, id)) = cached
        && l == loader
    {
        return Some(id);
    }
    let r: Value = page
        .call(
            "Page.createIsolatedWorld",
            json!({"frameId": frame, "worldName": "tabmux-settle"}),
        )
        .await
        .ok()?;
    let id = r["executionContextId"].as_i64()?;
    page.state().quiet_world = Some((loader, id));
    Some(id)
}

/// Waits for the DOM to stay unchanged for [`DOM_QUIET`], at most until `deadline`.
/// `None` when the page could not be asked (a dialog, a navigation replaced it).
async fn dom_quiet(page: &Page, deadline: Instant) -> Option<bool> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Some(false);
    }
    let ctx = world(page).await?;
    let expr = format!(
        "({DOM_QUIET_JS})({}, {})",
        DOM_QUIET.as_millis(),
        left.as_millis()
    );
    let call = page.call_or_dialog::<Value>(
        None,
        "Runtime.evaluate",
        json!({"expression": expr, "contextId": ctx, "awaitPromise": true, "returnByValue": true}),
    );
    // The page's timers may be slowed (a hidden tab): Rust's own deadline holds, and
    // the page is then not said to be still changing (it could not tell).
    let r = tokio::time::timeout(left + Duration::from_millis(300), call).await;
    match r {
        Ok(Ok(Some(v))) if v["result"]["value"].is_object() => {
            v["result"]["value"]["quiet"].as_bool()
        }
        Ok(Ok(Some(_))) | Ok(Err(_)) => {
            // The context is gone (the document was replaced): ask again next time.
            page.state().quiet_world = None;
            None
        }
        Ok(Ok(None)) | Err(_) => None,
    }
}

/// Waits until the page is quiet: no watched request in flight, then the DOM unchanged
/// for [`DOM_QUIET`]; again if requests started meanwhile. At most [`BOUND`].
pub async fn until_quiet(page: &Page) -> Quiet {
    crate::progress::set("waiting for the page to settle");
    let started = Instant::now();
    let deadline = started + BOUND;
    let mut reached = false;
    for _ in 0..20 {
        if !page
            .wait_until(deadline, |s| s.dialog.is_some() || !network_busy(s))
            .await
        {
            break;
        }
        if page.state().dialog.is_some() {
            reached = true;
            break;
        }
        let seq = page.state().net_seq;
        match dom_quiet(page, deadline).await {
            Some(true) => {}
            Some(false) => break,
            None => {
                reached = true;
                break;
            }
        }
        let s = page.state();
        let started_meanwhile = s
            .network
            .iter()
            .any(|n| n.seq > seq && WATCHED.contains(&n.resource_type.as_str()));
        if !network_busy(&s) && !started_meanwhile {
            reached = true;
            break;
        }
    }
    Quiet {
        reached,
        waited: started.elapsed(),
    }
}
