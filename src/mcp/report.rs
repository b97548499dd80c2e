//! What a tool answers after it acted: the page's URL and title, an open dialog or file
//! chooser, new console errors, and what changed on the page — so the model rarely
//! needs a full snapshot again.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::browser::Browser;
use crate::browser::page::{Level, Page};
use crate::browser::snap;
use crate::error::Result;

/// Budget of a full snapshot inside an action's answer.
pub const SNAPSHOT_IN_ANSWER: usize = 30_000;
/// Budget of a list of changes.
pub const DIFF_BUDGET: usize = 6_000;
/// Default budget of `browser_snapshot`.
pub const SNAPSHOT_DEFAULT: usize = 50_000;

/// The page's counters before an action.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub nav: u64,
    pub console_seq: u64,
    pub net_seq: u64,
    pub at: Instant,
}

pub fn mark(page: &Page) -> Mark {
    let s = page.state();
    Mark {
        nav: s.nav,
        console_seq: s.console_seq,
        net_seq: s.net_seq,
        at: Instant::now(),
    }
}

const TICK_JS: &str =
    "new Promise(r => setTimeout(() => r([document.title, document.readyState]), 0))";

/// One round trip through the page's event loop; refreshes the title.
async fn tick(page: &Page) {
    let r = page
        .call_or_dialog::<Value>(
            None,
            "Runtime.evaluate",
            serde_json::json!({"expression": TICK_JS, "returnByValue": true, "awaitPromise": true}),
        )
        .await;
    if let Ok(Some(v)) = r
        && let Some(t) = v["result"]["value"][0].as_str()
    {
        page.state().title = t.to_string();
    }
}

/// Lets the page settle after an action: a navigation it started loads, requests it
/// started finish (bounded), and pending rendering runs.
pub async fn settle(browser: &Browser, page: &Page, m: Mark) {
    settle_load(browser, page, m).await;
    // Requests the action started (fetch/XHR/documents), at most 2 s.
    let quiet_by = Instant::now() + Duration::from_secs(2);
    let waited = page
        .wait_until(quiet_by, |s| {
            s.dialog.is_some()
                || !s.network.iter().any(|n| {
                    n.seq > m.net_seq
                        && !n.done
                        && matches!(n.resource_type.as_str(), "XHR" | "Fetch" | "Document")
                })
        })
        .await;
    if waited && page.state().net_seq > m.net_seq {
        tick(page).await;
    }
}

/// A navigation the action started commits and loads; pending rendering runs.
async fn settle_load(browser: &Browser, page: &Page, m: Mark) {
    tick(page).await;
    let nav_timeout = browser.config().navigation_timeout;
    let navigating = {
        let s = page.state();
        s.nav != m.nav || s.nav_requested > 0
    };
    if navigating && page.state().dialog.is_none() {
        // Wait for the new document to commit, then to load.
        let commit_by = Instant::now() + nav_timeout.min(Duration::from_secs(10));
        page.wait_until(commit_by, |s| {
            s.nav != m.nav || s.dialog.is_some() || s.nav_requested == 0
        })
        .await;
        let load_by = Instant::now() + nav_timeout;
        page.wait_until(load_by, |s| s.loaded() || s.dialog.is_some())
            .await;
    }
}

/// [`settle`], then waits until the page is quiet (network idle, DOM unchanged; see
/// [`crate::browser::settle`]). Returns a note when the bound was hit.
pub async fn settle_quiet(browser: &Browser, page: &Page, m: Mark) -> Option<String> {
    settle_load(browser, page, m).await;
    if page.state().dialog.is_some() {
        return None;
    }
    let q = crate::browser::settle::until_quiet(page).await;
    tick(page).await;
    tracing::debug!(
        ms = q.waited.as_millis() as u64,
        quiet = q.reached,
        "settled"
    );
    (!q.reached).then(|| {
        format!(
            "The page was still changing {:.1} s later (requests or DOM updates); it is shown as it is now — browser_wait_for waits for a text.",
            q.waited.as_secs_f64()
        )
    })
}

/// Cuts text at a line boundary to `budget` characters, with a marker that says what
/// was left out and how to see it.
pub fn cut(text: &str, budget: usize) -> String {
    if budget == 0 || text.len() <= budget {
        return text.to_string();
    }
    let mut end = budget.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').unwrap_or(end);
    let rest = &text[end..];
    let lines = rest.lines().filter(|l| !l.trim().is_empty()).count();
    format!(
        "{}\n… cut: {lines} more lines ({} chars). Narrow with browser_snapshot target=<ref> or find=<text>, or raise maxChars.",
        &text[..end],
        rest.len()
    )
}

/// The one-line header: title and URL.
pub fn header(page: &Page) -> String {
    let s = page.state();
    if s.title.is_empty() {
        format!("Page: {}", s.url)
    } else {
        format!("Page: {} — {}", s.title, s.url)
    }
}

/// Lines about an open dialog or file chooser, if any.
pub fn modal_lines(page: &Page, out: &mut String) {
    let s = page.state();
    if let Some(d) = &s.dialog {
        out.push_str(&format!(
            "\nDialog open: {} {:?}{} — answer with browser_handle_dialog",
            d.kind,
            d.message,
            if d.kind == "prompt" && !d.default_prompt.is_empty() {
                format!(" (default {:?})", d.default_prompt)
            } else {
                String::new()
            }
        ));
    }
    if s.file_chooser.is_some() {
        out.push_str("\nFile chooser open — answer with browser_file_upload");
    }
}

/// New console errors since the mark (at most five shown).
pub fn console_lines(page: &Page, m: &Mark, out: &mut String) {
    let s = page.state();
    let errors: Vec<_> = s
        .console
        .iter()
        .filter(|c| c.seq > m.console_seq && c.level == Level::Error)
        .collect();
    if errors.is_empty() {
        return;
    }
    out.push_str(&format!("\nConsole errors ({}):", errors.len()));
    for e in errors.iter().take(5) {
        let text: String = e.text.chars().take(300).collect();
        out.push_str(&format!("\n  {text}"));
    }
    if errors.len() > 5 {
        out.push_str("\n  … see browser_console_messages");
    }
}

/// Renders the page and answers with its changes since the last rendering of the same
/// document, or with the whole snapshot for a new document.
pub async fn page_changes(
    browser: &Browser,
    page: &Page,
    out: &mut String,
    force_full: bool,
) -> Result<()> {
    if page.state().dialog.is_some() {
        out.push_str("\n(The page is paused by the dialog; handle it to go on.)");
        return Ok(());
    }
    let snap = snap::take(browser, page, &snap::Request::default()).await?;
    let (nav, previous) = {
        let s = page.state();
        (s.nav, s.last_snapshot.clone())
    };
    match previous {
        Some((n, before)) if n == nav && !force_full => {
            match crate::snapshot::diff(&before, &snap.text, DIFF_BUDGET) {
                Some(d) => {
                    out.push_str("\nChanges:\n");
                    out.push_str(&d);
                }
                None => out.push_str("\nNo change on the page."),
            }
        }
        _ => {
            out.push_str("\nSnapshot:\n");
            out.push_str(&cut(&snap.text, SNAPSHOT_IN_ANSWER));
        }
    }
    page.state().last_snapshot = Some((nav, snap.text));
    Ok(())
}

/// The whole answer after an action.
pub async fn after_action(browser: &Browser, page: &Page, m: Mark, lead: &str) -> Result<String> {
    let unsettled = settle_quiet(browser, page, m).await;
    let mut out = String::new();
    if !lead.is_empty() {
        out.push_str(lead);
        out.push('\n');
    }
    if let Some(n) = unsettled {
        out.push_str(&n);
        out.push('\n');
    }
    out.push_str(&header(page));
    modal_lines(page, &mut out);
    console_lines(page, &m, &mut out);
    page_changes(browser, page, &mut out, false).await?;
    Ok(out)
}
