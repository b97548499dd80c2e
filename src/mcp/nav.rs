//! Navigation tools: navigate, back, forward, reload, wait_for.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::report::{self, Mark};
use super::tool::{NoArgs, ToolDef};
use super::{Ctx, Out};
use crate::browser::data_url;
use crate::browser::page::Page;
use crate::error::{Error, Result, codes};
use crate::tool;

/// Adds `https://` to a bare host, refuses what is not a URL.
pub fn normalize_url(url: &str) -> Result<String> {
    let u = url.trim();
    if u.is_empty() {
        return Err(Error::bad_request("url is empty"));
    }
    let lower = u.to_ascii_lowercase();
    let has_scheme = lower.contains("://")
        || [
            "about:",
            "data:",
            "javascript:",
            "blob:",
            "chrome:",
            "file:",
            "view-source:",
        ]
        .iter()
        .any(|p| lower.starts_with(p));
    if has_scheme {
        // Browsers take these as given (a `data:` URL with spaces, a path with a
        // space): the browser encodes what needs encoding.
        return Ok(u.to_string());
    }
    if u.chars().any(|c| c.is_whitespace()) {
        return Err(Error::bad_request(format!(
            "{u:?} is not a URL (it contains spaces); give a full URL such as https://example.com"
        )));
    }
    let host = u.split(['/', '?', '#']).next().unwrap_or("");
    let local =
        host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]");
    if host.contains('.') || local {
        Ok(format!("{}://{u}", if local { "http" } else { "https" }))
    } else {
        Err(Error::bad_request(format!(
            "{u:?} is not a URL: give a full URL such as https://example.com"
        )))
    }
}

/// Waits for a navigation that started after `m` to commit and load.
async fn wait_loaded(ctx: &Ctx<'_>, page: &Page, m: Mark, loader: Option<&str>) -> Option<String> {
    let timeout = ctx.browser.config().navigation_timeout;
    let deadline = Instant::now() + timeout;
    let ok = page
        .wait_until(deadline, |s| {
            s.dialog.is_some()
                || (match loader {
                    Some(l) => s.loader == l,
                    None => s.nav != m.nav,
                } && s.loaded())
        })
        .await;
    if ok {
        None
    } else if page.state().nav != m.nav {
        Some(format!(
            "The page is still loading after {} s; it is shown as it is now.",
            timeout.as_secs()
        ))
    } else {
        Some(format!(
            "The navigation did not finish within {} s.",
            timeout.as_secs()
        ))
    }
}

async fn answer_after_navigation(
    ctx: &Ctx<'_>,
    page: &Page,
    m: Mark,
    note: Option<String>,
) -> Result<Out> {
    let unsettled = report::settle_quiet(ctx.browser, page, m).await;
    let mut out = report::header(page);
    for n in note.iter().chain(unsettled.iter()) {
        out.push('\n');
        out.push_str(n);
    }
    report::modal_lines(page, &mut out);
    report::console_lines(page, &m, &mut out);
    report::page_changes(ctx.browser, page, &mut out, false).await?;
    Ok(Out::text(out))
}

#[derive(Deserialize, JsonSchema)]
pub struct NavigateArgs {
    url: String,
}

pub const NAVIGATE: ToolDef = tool!(
    "browser_navigate",
    "Navigate to a URL",
    Act,
    NavigateArgs,
    navigate,
    "Open a URL in the current tab. Returns the page snapshot. Browser and extension pages (chrome://, chrome-extension://, about: other than about:blank) are refused; file:// only inside your roots."
);

async fn navigate(ctx: &Ctx<'_>, a: NavigateArgs) -> Result<Out> {
    let url = normalize_url(&a.url)?;
    ctx.on_page(async |page| navigate_page(ctx, page, &url).await)
        .await
}

/// Navigates a page (its op lock held: see [`Ctx::on`]) and answers with its snapshot.
pub async fn navigate_page(ctx: &Ctx<'_>, page: &Page, url: &str) -> Result<Out> {
    ctx.files.check_url(url).await?;
    let m = report::mark(page);
    crate::progress::set(format!("loading {url}"));
    let r: Option<Value> = page
        .call_or_dialog(None, "Page.navigate", json!({"url": url}))
        .await?;
    let Some(r) = r else {
        return answer_after_navigation(ctx, page, m, None).await;
    };
    if let Some(err) = r["errorText"].as_str().filter(|e| !e.is_empty()) {
        if err == "net::ERR_ABORTED" && data_url::is_data(url) {
            let deadline = Instant::now() + ctx.browser.config().navigation_timeout;
            if let Some(note) = data_url::write_into_blank(page, url, deadline).await? {
                return answer_after_navigation(ctx, page, m, Some(note)).await;
            }
        }
        let hint = match err {
            "net::ERR_CONNECTION_REFUSED" => {
                " — nothing is listening there; is the server running?"
            }
            "net::ERR_NAME_NOT_RESOLVED" => " — the host name does not resolve; check the spelling",
            "net::ERR_INTERNET_DISCONNECTED" => " — the machine is offline",
            "net::ERR_ABORTED" => {
                " — the navigation was aborted (a download, or the page stopped it)"
            }
            "net::ERR_CERT_AUTHORITY_INVALID" | "net::ERR_CERT_COMMON_NAME_INVALID" => {
                " — the site's certificate is not trusted"
            }
            _ => "",
        };
        return Err(Error::new(
            codes::NAVIGATION_FAILED,
            format!("could not open {url}: {err}{hint}"),
        ));
    }
    let loader = r["loaderId"].as_str().map(str::to_string);
    let note = match &loader {
        Some(l) => wait_loaded(ctx, page, m, Some(l)).await,
        None => None, // same-document navigation
    };
    answer_after_navigation(ctx, page, m, note).await
}

async fn history(ctx: &Ctx<'_>, step: i64) -> Result<Out> {
    ctx.on_page(async |page| history_step(ctx, page, step).await)
        .await
}

/// Moves `step` entries through the page's history and answers with the page.
async fn history_step(ctx: &Ctx<'_>, page: &Page, step: i64) -> Result<Out> {
    let h: Value = page.call("Page.getNavigationHistory", json!({})).await?;
    let cur = h["currentIndex"].as_i64().unwrap_or(0);
    let entries = h["entries"].as_array().cloned().unwrap_or_default();
    let target = cur + step;
    if target < 0 || target as usize >= entries.len() {
        return Err(Error::new(
            codes::NAVIGATION_FAILED,
            if step < 0 {
                "there is no previous page in this tab's history"
            } else {
                "there is no next page in this tab's history"
            },
        ));
    }
    let entry = &entries[target as usize];
    crate::progress::set(format!(
        "loading {}",
        entry["url"].as_str().unwrap_or("the page")
    ));
    let m = report::mark(page);
    let url_before = page.state().url.clone();
    page.call::<Value>(
        "Page.navigateToHistoryEntry",
        json!({"entryId": entry["id"]}),
    )
    .await?;
    let deadline = Instant::now() + ctx.browser.config().navigation_timeout;
    page.wait_until(deadline, |s| {
        s.dialog.is_some()
            || (s.nav != m.nav && s.loaded())
            || (s.nav == m.nav && s.url != url_before)
    })
    .await;
    answer_after_navigation(ctx, page, m, None).await
}

pub const BACK: ToolDef = tool!(
    "browser_navigate_back",
    "Go back",
    Act,
    NoArgs,
    back,
    "Go back in history."
);

async fn back(ctx: &Ctx<'_>, _: NoArgs) -> Result<Out> {
    history(ctx, -1).await
}

pub const FORWARD: ToolDef = tool!(
    "browser_navigate_forward",
    "Go forward",
    Act,
    NoArgs,
    forward,
    "Go forward in history."
);

async fn forward(ctx: &Ctx<'_>, _: NoArgs) -> Result<Out> {
    history(ctx, 1).await
}

pub const RELOAD: ToolDef = tool!(
    "browser_reload",
    "Reload the page",
    Act,
    NoArgs,
    reload,
    "Reload the page."
);

async fn reload(ctx: &Ctx<'_>, _: NoArgs) -> Result<Out> {
    ctx.on_page(async |page| {
        let m = report::mark(page);
        crate::progress::set("reloading the page");
        page.call::<Value>("Page.reload", json!({})).await?;
        let note = wait_loaded(ctx, page, m, None).await;
        answer_after_navigation(ctx, page, m, note).await
    })
    .await
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitArgs {
    text: Option<String>,
    text_gone: Option<String>,
    /// Seconds to wait
    time: Option<f64>,
    /// Seconds before giving up (default 10)
    timeout: Option<f64>,
}

pub const WAIT_FOR: ToolDef = tool!(
    "browser_wait_for",
    "Wait for text or time",
    Read,
    WaitArgs,
    wait_for,
    "Wait for text to appear or disappear, or for a time."
);

const HAS_TEXT_JS: &str = r#"(t) => {
  const norm = s => (s || '').replace(/\s+/g, ' ').toLowerCase();
  const parts = [];
  const visit = (doc) => {
    if (!doc || !doc.body) return;
    parts.push(doc.body.innerText);
    for (const el of doc.querySelectorAll('*')) {
      if (el.shadowRoot) parts.push(el.shadowRoot.textContent);
      if (el.tagName === 'IFRAME' || el.tagName === 'FRAME') {
        try { visit(el.contentDocument); } catch (e) {}
      }
      if (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA') parts.push(el.value);
    }
  };
  visit(document);
  return norm(parts.join(' ')).includes(norm(t));
}"#;

async fn wait_for(ctx: &Ctx<'_>, a: WaitArgs) -> Result<Out> {
    if a.time.is_none() && a.text.is_none() && a.text_gone.is_none() {
        return Err(Error::bad_request("give text, textGone or time (seconds)"));
    }
    ctx.act([], async |page, []| {
        if let Some(t) = a.time {
            if !(0.0..=300.0).contains(&t) || t.is_nan() {
                return Err(Error::bad_request("time is in seconds, from 0 to 300"));
            }
            crate::progress::set(format!("waiting {t} s"));
            tokio::time::sleep(Duration::from_secs_f64(t)).await;
        }
        let limit = a.timeout.unwrap_or(10.0);
        if !(0.0..=300.0).contains(&limit) || limit.is_nan() {
            return Err(Error::bad_request("timeout is in seconds, from 0 to 300"));
        }
        let deadline = Instant::now() + Duration::from_secs_f64(limit);
        let mut lead = String::new();
        for (text, want) in [(&a.text, true), (&a.text_gone, false)] {
            if let Some(text) = text {
                crate::progress::set(if want {
                    format!("waiting for the text {text:?} to appear (up to {limit} s)")
                } else {
                    format!("waiting for the text {text:?} to go (up to {limit} s)")
                });
                lead = wait_text(page, text, want, deadline, limit).await?;
            }
        }
        if lead.is_empty() {
            lead = format!("Waited {} s.", a.time.unwrap_or(0.0));
        }
        Ok(lead)
    })
    .await
}

/// Waits until `text` is on the page (`want`) or gone (`!want`); answers with the lead.
async fn wait_text(
    page: &Page,
    text: &str,
    want: bool,
    deadline: Instant,
    limit: f64,
) -> Result<String> {
    loop {
        let expr = format!(
            "({HAS_TEXT_JS})({})",
            serde_json::to_string(text).unwrap_or_default()
        );
        let r: Option<Value> = page
            .call_or_dialog(
                None,
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true}),
            )
            .await?;
        let Some(r) = r else {
            return Ok("A dialog opened while waiting.".into());
        };
        if r["result"]["value"].as_bool() == Some(want) {
            return Ok(if want {
                format!("Found {text:?}.")
            } else {
                format!("{text:?} is gone.")
            });
        }
        if Instant::now() >= deadline {
            return Err(Error::timeout(format!(
                "waited {limit} s but {text:?} {}; raise timeout, or check the page with browser_snapshot",
                if want {
                    "did not appear"
                } else {
                    "is still there"
                }
            )));
        }
        // Either the page changes (events) or 100 ms pass.
        page.wait_until(Instant::now() + Duration::from_millis(100), |_| false)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(normalize_url("example.com").unwrap(), "https://example.com");
        assert_eq!(
            normalize_url("localhost:8080/x").unwrap(),
            "http://localhost:8080/x"
        );
        assert_eq!(normalize_url("http://a.b/c").unwrap(), "http://a.b/c");
        assert_eq!(normalize_url("about:blank").unwrap(), "about:blank");
        assert!(normalize_url("not a url").is_err());
        assert!(normalize_url("word").is_err());
        assert!(normalize_url("").is_err());
        assert_eq!(
            normalize_url(" data:text/html,<h1>Hi there</h1> ").unwrap(),
            "data:text/html,<h1>Hi there</h1>"
        );
        assert_eq!(normalize_url("http://a.b/x y").unwrap(), "http://a.b/x y");
    }
}
