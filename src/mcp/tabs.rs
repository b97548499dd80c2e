//! Tab tools: browser_tabs (list/new/select/close/claim/release), resize, close.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::report;
use super::tool::{NoArgs, ToolDef};
use super::{Ctx, Out};
use crate::browser::page::Page;
use crate::error::{Error, Result};
use crate::{choice, tool};

async fn title_of(page: &Page) -> String {
    if page.state().dialog.is_none()
        && let Ok(Some(v)) = page
            .call_or_dialog::<Value>(
                None,
                "Runtime.evaluate",
                json!({"expression": "document.title", "returnByValue": true}),
            )
            .await
        && let Some(t) = v["result"]["value"].as_str()
    {
        page.state().title = t.to_string();
    }
    page.state().title.clone()
}

async fn own_list(ctx: &Ctx<'_>) -> String {
    let tabs = ctx.browser.tabs();
    if tabs.is_empty() {
        return "No tabs yet: browser_navigate opens one.".to_string();
    }
    let mut out = String::from("Your tabs:");
    for (i, p, current) in tabs {
        let title = title_of(&p).await;
        let url = p.state().url.clone();
        out.push_str(&format!(
            "\n- {i}:{} {} — {url}",
            if current { " (current)" } else { "" },
            if title.is_empty() {
                "(untitled)"
            } else {
                &title
            },
        ));
    }
    out
}

choice!(
    /// What `browser_tabs` does.
    pub enum Action as "action" {
        List = "list",
        New = "new",
        Select = "select",
        Close = "close",
        Claim = "claim",
        Release = "release",
    }
);

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TabsArgs {
    action: Action,
    index: Option<i64>,
    /// For new
    url: Option<String>,
    all: Option<bool>,
    /// For claim
    #[schemars(with = "Option<String>")]
    tab_id: Option<Value>,
    /// Claim wait in seconds (default 30)
    timeout: Option<f64>,
}

pub const TABS: ToolDef = tool!(
    "browser_tabs",
    "Manage tabs",
    Destroy,
    TabsArgs,
    tabs,
    "Your tabs: list, new, select, close (by index). Shared browser: list with all=true shows every tab and its holder; claim takes one by tabId (waits in line while another client holds it; a tab the user opened also waits for the user to click Allow in the browser, so give it time); release gives one back."
);

fn index(i: Option<i64>, action: &str) -> Result<Option<usize>> {
    match i {
        None => Ok(None),
        Some(i) if i < 0 => Err(Error::bad_request(format!(
            "index for {action} cannot be negative"
        ))),
        Some(i) => Ok(Some(i as usize)),
    }
}

async fn show_current(ctx: &Ctx<'_>, page: &Arc<Page>, lead: &str) -> Result<Out> {
    ctx.on(page, async |page| {
        let m = report::mark(page);
        let mut out = format!("{lead}\n");
        title_of(page).await;
        out.push_str(&report::header(page));
        report::modal_lines(page, &mut out);
        report::console_lines(page, &m, &mut out);
        report::page_changes(ctx.browser, page, &mut out, true).await?;
        Ok(Out::text(out))
    })
    .await
}

async fn tabs(ctx: &Ctx<'_>, a: TabsArgs) -> Result<Out> {
    match a.action {
        Action::List if a.all == Some(true) => {
            let all = ctx.browser.list_all().await?;
            let mine: Vec<(usize, String)> = ctx
                .browser
                .tabs()
                .into_iter()
                .map(|(i, p, _)| (i, p.key.clone()))
                .collect();
            let mut out = String::from("Every tab of the browser:");
            for t in all {
                let holder = match (&t.holder, mine.iter().find(|(_, k)| *k == t.id)) {
                    (_, Some((i, _))) => format!("you (index {i})"),
                    (Some(h), None) => format!("held by {h:?}"),
                    (None, None) => "free".to_string(),
                };
                let waiting = if t.waiters.is_empty() {
                    String::new()
                } else {
                    let names: Vec<String> = t.waiters.iter().map(|w| format!("{w:?}")).collect();
                    format!("; waiting: {}", names.join(", "))
                };
                out.push_str(&format!(
                    "\n- tabId {}: {} — {} [{holder}]{waiting}",
                    t.id,
                    if t.title.is_empty() {
                        "(untitled)"
                    } else {
                        &t.title
                    },
                    t.url
                ));
            }
            out.push_str("\nTake one with browser_tabs {action: \"claim\", tabId}.");
            Ok(Out::text(out))
        }
        Action::List => Ok(Out::text(own_list(ctx).await)),
        Action::New => {
            // A URL that would be refused opens no tab.
            let url = match a.url.as_deref().filter(|u| !u.is_empty()) {
                Some(u) => Some(super::nav::normalize_url(u)?),
                None => None,
            };
            if let Some(u) = &url {
                ctx.files.check_url(u).await?;
            }
            let (i, page) = ctx.browser.new_tab().await?;
            match url {
                Some(url) => {
                    let mut r = ctx
                        .on(&page, async |page| {
                            super::nav::navigate_page(ctx, page, &url).await
                        })
                        .await?;
                    r.text = format!("Opened tab {i}.\n{}", r.text);
                    Ok(r)
                }
                None => Ok(Out::text(format!(
                    "Opened tab {i} (blank); it is now the current tab."
                ))),
            }
        }
        Action::Select => {
            let i = index(a.index, "select")?
                .ok_or_else(|| Error::bad_request("select needs index (see browser_tabs list)"))?;
            let page = ctx.browser.select(i)?;
            show_current(ctx, &page, &format!("Tab {i} is now the current tab.")).await
        }
        Action::Close => {
            let i = index(a.index, "close")?;
            ctx.browser.close_tab(i).await?;
            Ok(Out::text(format!(
                "Closed the tab.\n{}",
                own_list(ctx).await
            )))
        }
        Action::Claim => {
            let id = match &a.tab_id {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(Error::bad_request(
                        "claim needs tabId (see browser_tabs {action: \"list\", all: true})",
                    ));
                }
            };
            let secs = a.timeout.unwrap_or(30.0);
            if !(0.0..=3600.0).contains(&secs) || secs.is_nan() {
                return Err(Error::bad_request("timeout is in seconds, 0 to 3600"));
            }
            let (i, page) = ctx
                .browser
                .claim(&id, Duration::from_secs_f64(secs))
                .await?;
            show_current(
                ctx,
                &page,
                &format!("Claimed tab {id}: it is your tab {i} and the current tab."),
            )
            .await
        }
        Action::Release => {
            let i = index(a.index, "release")?
                .ok_or_else(|| Error::bad_request("release needs index (see browser_tabs list)"))?;
            ctx.browser.release(i).await?;
            Ok(Out::text(format!(
                "Released the tab; it stays open for others.\n{}",
                own_list(ctx).await
            )))
        }
    }
}

#[derive(Deserialize, JsonSchema)]
pub struct ResizeArgs {
    width: i64,
    height: i64,
}

pub const RESIZE: ToolDef = tool!(
    "browser_resize",
    "Resize the viewport",
    Act,
    ResizeArgs,
    resize,
    "Resize the viewport."
);

async fn resize(ctx: &Ctx<'_>, a: ResizeArgs) -> Result<Out> {
    if !(100..=10_000).contains(&a.width) || !(100..=10_000).contains(&a.height) {
        return Err(Error::bad_request(
            "width and height are 100 to 10000 pixels",
        ));
    }
    ctx.on_page(async |page| {
        page.call::<Value>(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": a.width, "height": a.height, "deviceScaleFactor": 0, "mobile": false}),
        )
        .await
    })
    .await?;
    Ok(Out::text(format!(
        "Viewport is now {}×{}.",
        a.width, a.height
    )))
}

pub const CLOSE: ToolDef = tool!(
    "browser_close",
    "Close the browser",
    Destroy,
    NoArgs,
    close,
    "Close the browser (or, in a shared browser, your tabs)."
);

async fn close(ctx: &Ctx<'_>, _: NoArgs) -> Result<Out> {
    ctx.browser.close().await?;
    Ok(Out::text(
        "Closed. The next browser tool call starts again with a fresh tab.",
    ))
}
