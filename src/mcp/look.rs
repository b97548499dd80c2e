//! Tools that look at the page: snapshot, screenshot, evaluate, console, network.

use base64::Engine;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::report;
use super::tool::{Element, Target, ToolDef};
use super::{Ctx, Out};
use crate::browser::element::Need;
use crate::browser::page::Page;
use crate::browser::page::{Level, exception_text};
use crate::browser::snap;
use crate::error::{Error, Result, codes};
use crate::{choice, tool};

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotArgs {
    /// Only this ref's subtree
    target: Option<String>,
    /// Only lines containing this text, with their path
    find: Option<String>,
    /// Only what is on screen
    viewport: Option<bool>,
    /// Character budget (default 50000; 0 = no limit)
    max_chars: Option<i64>,
    /// "ax": from the browser's accessibility tree (exact, slower); default "collector"
    source: Option<String>,
}

pub const SNAPSHOT: ToolDef = tool!(
    "browser_snapshot",
    "Page snapshot",
    Read,
    SnapshotArgs,
    snapshot,
    "Accessibility snapshot of the current tab: one line per element, refs (e12) to act on. Better than a screenshot."
);

async fn snapshot(ctx: &Ctx<'_>, a: SnapshotArgs) -> Result<Out> {
    let budget = match a.max_chars {
        None => report::SNAPSHOT_DEFAULT,
        Some(n) if n < 0 => return Err(Error::bad_request("maxChars cannot be negative")),
        Some(n) => n as usize,
    };
    let source = match a.source.as_deref() {
        None => None,
        Some(s) => Some(snap::Source::parse(s).ok_or_else(|| {
            Error::bad_request(format!(
                "source {s:?} is unknown; use \"collector\" (default) or \"ax\" (the accessibility tree, exact)"
            ))
        })?),
    };
    ctx.on_page(async |page| snapshot_of(ctx, page, &a, budget, source).await)
        .await
}

/// The snapshot `a` asks for, of `page` (its op lock held).
async fn snapshot_of(
    ctx: &Ctx<'_>,
    page: &Page,
    a: &SnapshotArgs,
    budget: usize,
    source: Option<snap::Source>,
) -> Result<Out> {
    let mut out = report::header(page);
    report::modal_lines(page, &mut out);
    if page.state().dialog.is_some() {
        out.push_str("\n(The page is paused by the dialog; handle it to see the page.)");
        return Ok(Out::text(out));
    }
    let viewport = a.viewport == Some(true);
    let plain = a.target.is_none() && a.find.is_none() && !viewport && source.is_none();
    let req = snap::Request {
        max_chars: if plain { 0 } else { budget },
        root: a.target.clone(),
        find: a.find.clone(),
        viewport,
        source,
    };
    let s = snap::take(ctx.browser, page, &req).await?;
    out.push('\n');
    if plain {
        out.push_str(&report::cut(&s.text, budget));
        let nav = page.state().nav;
        page.state().last_snapshot = Some((nav, s.text));
    } else if s.text.trim().is_empty() {
        out.push_str(
            match &a.find {
                Some(f) => format!("Nothing on the page matches {f:?}."),
                None => "The subtree is empty.".to_string(),
            }
            .as_str(),
        );
    } else {
        out.push_str(&s.text);
    }
    Ok(Out::text(out))
}

/// Serializes any JavaScript value to JSON text (DOM nodes, functions, cycles, undefined
/// and the like get readable stand-ins).
const SERIALIZE_JS: &str = r#"(v) => {
  const seen = new WeakSet();
  const conv = (x, depth) => {
    if (x === undefined) return '(undefined)';
    if (typeof x === 'bigint') return x.toString() + 'n';
    if (typeof x === 'function') return '(function ' + (x.name || 'anonymous') + ')';
    if (typeof x === 'symbol') return x.toString();
    if (typeof x === 'number' && !Number.isFinite(x)) return String(x);
    if (x === null || typeof x !== 'object') return x;
    if (typeof Node !== 'undefined' && x instanceof Node) {
      if (x.nodeType !== 1) return '(' + x.nodeName + ')';
      let s = '<' + x.tagName.toLowerCase();
      if (x.id) s += ' id="' + x.id + '"';
      if (x.className && typeof x.className === 'string') s += ' class="' + x.className + '"';
      return s + '>';
    }
    if (seen.has(x)) return '(circular)';
    if (depth > 20) return '(too deep)';
    seen.add(x);
    if (x instanceof Error) return x.name + ': ' + x.message;
    if (x instanceof Date) return x.toISOString();
    if (x instanceof Map) return Object.fromEntries(Array.from(x, ([k, v]) => [String(k), conv(v, depth + 1)]));
    if (x instanceof Set) return Array.from(x, v => conv(v, depth + 1));
    if (Array.isArray(x) || (typeof NodeList !== 'undefined' && x instanceof NodeList) || (typeof HTMLCollection !== 'undefined' && x instanceof HTMLCollection))
      return Array.from(x, v => conv(v, depth + 1));
    const o = {};
    for (const k of Object.keys(x)) { try { o[k] = conv(x[k], depth + 1); } catch (e) { o[k] = '(unreadable)'; } }
    return o;
  };
  const r = conv(v, 0);
  return r === '(undefined)' ? r : JSON.stringify(r);
}"#;

const MAX_RESULT: usize = 40_000;

fn eval_answer(r: &Value) -> Result<String> {
    if let Some(ex) = r.get("exceptionDetails") {
        return Err(Error::new(codes::EVAL_ERROR, exception_text(ex)));
    }
    let v = &r["result"]["value"];
    let text = match v.as_str() {
        Some("(undefined)") => "undefined".to_string(),
        Some(s) => s.to_string(),
        None => v.to_string(),
    };
    Ok(if text.len() > MAX_RESULT {
        let mut end = MAX_RESULT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… (cut: {} chars in all)", &text[..end], text.len())
    } else {
        text
    })
}

#[derive(Deserialize, JsonSchema)]
pub struct EvalArgs {
    /// () => {...} or (element) => {...}
    function: String,
    #[schemars(with = "Option<Target>")]
    target: Option<String>,
    #[schemars(with = "Option<Element>")]
    #[allow(dead_code)]
    element: Option<String>,
}

pub const EVALUATE: ToolDef = tool!(
    "browser_evaluate",
    "Run JavaScript",
    Destroy,
    EvalArgs,
    evaluate,
    "Run a JavaScript function on the page, or on an element given as target; returns its JSON result."
);

async fn evaluate(ctx: &Ctx<'_>, a: EvalArgs) -> Result<Out> {
    let code = a.function.trim();
    if code.is_empty() {
        return Err(Error::bad_request("function is empty"));
    }
    ctx.on_page(async |page| {
        let m = report::mark(page);
        let r = run_function(ctx, page, code, a.target.as_deref()).await?;
        let lead = match r {
            Some(r) => eval_answer(&r)?,
            None => "(A dialog opened; the function waits for it.)".to_string(),
        };
        let mut out = format!("Result: {lead}\n");
        report::settle(ctx.browser, page, m).await;
        out.push_str(&report::header(page));
        report::modal_lines(page, &mut out);
        report::console_lines(page, &m, &mut out);
        Ok(Out::text(out))
    })
    .await
}

/// Runs `code` on the page or on `target`; `None` when a dialog opened meanwhile.
async fn run_function(
    ctx: &Ctx<'_>,
    page: &Page,
    code: &str,
    target: Option<&str>,
) -> Result<Option<Value>> {
    Ok(match target {
        Some(t) => {
            let el = ctx.browser.resolve(page, t).await?;
            let f = format!(
                "async function() {{ const __f = ({code}); const __v = typeof __f === 'function' ? await __f(this) : await __f; return ({SERIALIZE_JS})(__v); }}"
            );
            page.call_or_dialog(
                el.session.as_deref(),
                "Runtime.callFunctionOn",
                json!({"functionDeclaration": f, "objectId": el.object_id, "returnByValue": true, "awaitPromise": true, "userGesture": true}),
            )
            .await?
        }
        None => {
            let expr = format!(
                "(async () => {{ const __f = ({code}); const __v = typeof __f === 'function' ? await __f() : await __f; return ({SERIALIZE_JS})(__v); }})()"
            );
            let first: Option<Value> = page
                .call_or_dialog(
                    None,
                    "Runtime.evaluate",
                    json!({"expression": expr, "returnByValue": true, "awaitPromise": true, "userGesture": true}),
                )
                .await?;
            let syntax = first.as_ref().is_some_and(|r| {
                r["exceptionDetails"]["exception"]["className"].as_str() == Some("SyntaxError")
            });
            if syntax {
                // Not a function or expression: run it as a script, whose last value counts.
                page.call_or_dialog(
                    None,
                    "Runtime.evaluate",
                    json!({"expression": code, "returnByValue": true, "awaitPromise": true, "userGesture": true, "replMode": true}),
                )
                .await?
            } else {
                first
            }
        }
    })
}

choice!(impl Level as "level" ["error", "warning", "info", "debug"] parse with Level::parse);

#[derive(Deserialize, JsonSchema)]
pub struct ConsoleArgs {
    /// Minimum level (default info)
    level: Option<Level>,
    /// Include earlier pages of this tab
    all: Option<bool>,
}

pub const CONSOLE_MESSAGES: ToolDef = tool!(
    "browser_console_messages",
    "Console messages",
    Read,
    ConsoleArgs,
    console_messages,
    "Console messages and uncaught errors of the current tab."
);

async fn console_messages(ctx: &Ctx<'_>, a: ConsoleArgs) -> Result<Out> {
    let min = a.level.unwrap_or(Level::Info);
    let page = ctx.browser.page().await?;
    let s = page.state();
    let nav = s.nav;
    let entries: Vec<_> = s
        .console
        .iter()
        .filter(|c| c.level >= min && (a.all == Some(true) || c.nav == nav))
        .collect();
    if entries.is_empty() {
        return Ok(Out::text(format!(
            "No console messages at level {} or above{}.",
            min.as_str(),
            if a.all == Some(true) {
                ""
            } else {
                " on this page"
            }
        )));
    }
    let mut out = String::new();
    let skip = entries.len().saturating_sub(300);
    if skip > 0 {
        out.push_str(&format!("({skip} older messages not shown)\n"));
    }
    let mut last_nav = entries.get(skip).map(|c| c.nav).unwrap_or(nav);
    for c in entries.iter().skip(skip) {
        if c.nav != last_nav {
            out.push_str("-- navigated --\n");
            last_nav = c.nav;
        }
        let text: String = c.text.chars().take(2000).collect();
        match &c.location {
            Some(l) => out.push_str(&format!("[{}] {text} @ {l}\n", c.level.as_str())),
            None => out.push_str(&format!("[{}] {text}\n", c.level.as_str())),
        }
    }
    Ok(Out::text(report::cut(out.trim_end(), 60_000)))
}

#[derive(Deserialize, JsonSchema)]
pub struct NetworkArgs {
    /// Include images, fonts, scripts, styles
    #[serde(rename = "static")]
    include_static: Option<bool>,
    /// Only URLs containing this
    filter: Option<String>,
}

pub const NETWORK_REQUESTS: ToolDef = tool!(
    "browser_network_requests",
    "Network requests",
    Read,
    NetworkArgs,
    network_requests,
    "Network requests of the current page."
);

async fn network_requests(ctx: &Ctx<'_>, a: NetworkArgs) -> Result<Out> {
    let page = ctx.browser.page().await?;
    let s = page.state();
    let nav = s.nav;
    let mut out = String::new();
    let mut n = 0;
    for e in s
        .network
        .iter()
        .filter(|e| e.nav == nav || (e.nav + 1 == nav && e.resource_type == "Document"))
    {
        let is_static = matches!(
            e.resource_type.as_str(),
            "Image" | "Font" | "Stylesheet" | "Script" | "Media" | "Manifest" | "TextTrack"
        );
        let ok = e.failed.is_none() && e.status.is_some_and(|s| s < 400);
        if is_static && ok && a.include_static != Some(true) {
            continue;
        }
        if let Some(f) = &a.filter
            && !e.url.contains(f.as_str())
        {
            continue;
        }
        n += 1;
        let url: String = e.url.chars().take(300).collect();
        let outcome = match (&e.failed, e.status, e.done) {
            (Some(f), _, _) => format!("failed: {f}"),
            (None, Some(st), _) => format!("{st} {}", e.status_text).trim_end().to_string(),
            (None, None, _) => "pending".to_string(),
        };
        out.push_str(&format!(
            "{} {url} → {outcome} ({})\n",
            e.method, e.resource_type
        ));
    }
    if n == 0 {
        return Ok(Out::text(if a.filter.is_some() {
            "No requests match.".to_string()
        } else {
            "No requests on this page (static resources are left out unless static=true)."
                .to_string()
        }));
    }
    Ok(Out::text(report::cut(out.trim_end(), 60_000)))
}

choice!(
    /// An image format.
    pub enum ImageType as "type" { Png = "png", Jpeg = "jpeg" } parse with image_type
);

fn image_type(s: &str) -> Option<ImageType> {
    match s {
        "jpg" => Some(ImageType::Jpeg),
        s => ImageType::from_name(s),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShotArgs {
    #[serde(rename = "type")]
    format: Option<ImageType>,
    /// jpeg quality 0-100
    quality: Option<i64>,
    full_page: Option<bool>,
    #[schemars(with = "Option<Target>")]
    target: Option<String>,
    #[schemars(with = "Option<Element>")]
    #[allow(dead_code)]
    element: Option<String>,
    /// Also save to this new file (inside your MCP roots; relative to the first root; never overwrites)
    filename: Option<String>,
}

pub const SCREENSHOT: ToolDef = tool!(
    "browser_take_screenshot",
    "Take a screenshot",
    Read,
    ShotArgs,
    screenshot,
    "Screenshot of the viewport, the full page or an element. Use browser_snapshot to act."
);

const RECT_JS: &str = "function() { const r = this.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }";

async fn screenshot(ctx: &Ctx<'_>, a: ShotArgs) -> Result<Out> {
    let format = match a.format {
        None => {
            if a.filename.as_deref().is_some_and(|f| {
                let f = f.to_ascii_lowercase();
                f.ends_with(".jpg") || f.ends_with(".jpeg")
            }) {
                "jpeg"
            } else {
                "png"
            }
        }
        Some(t) => t.as_str(),
    };
    if a.quality.is_some_and(|q| !(0..=100).contains(&q)) {
        return Err(Error::bad_request("quality is 0 to 100"));
    }
    if a.full_page == Some(true) && a.target.is_some() {
        return Err(Error::bad_request("fullPage and target cannot be combined"));
    }
    ctx.on_page(async |page| {
        let (params, what) = capture_params(ctx, page, &a, format).await?;
        let r: Value = page.call("Page.captureScreenshot", params).await?;
        shot_answer(ctx, &r, format, &what, a.filename.as_deref()).await
    })
    .await
}

/// What `Page.captureScreenshot` is asked for, and what it shows (for the answer).
async fn capture_params(
    ctx: &Ctx<'_>,
    page: &Page,
    a: &ShotArgs,
    format: &str,
) -> Result<(Value, String)> {
    if page.state().dialog.is_some() {
        return Err(Error::new(
            codes::NOT_ACTIONABLE,
            "a dialog is open and blocks the page; handle it first (browser_handle_dialog)",
        ));
    }
    let mut params = json!({"format": format, "fromSurface": true});
    if format == "jpeg" {
        params["quality"] = json!(a.quality.unwrap_or(80));
    }
    let what;
    if let Some(t) = &a.target {
        let el = ctx.browser.resolve(page, t).await?;
        let (px, py) = el.point(page, Need::Hover).await?;
        let r = el.call(page, RECT_JS, &[]).await?;
        let v: Vec<f64> = r
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        if v.len() != 4 || v[2] <= 0.0 || v[3] <= 0.0 {
            return Err(Error::new(
                codes::NOT_ACTIONABLE,
                format!("{} has no size", el.label),
            ));
        }
        // The element's box in the tab's viewport: its center is where point() aimed,
        // up to the part cut by the viewport edge, so take the box around it.
        let metrics: Value = page.call("Page.getLayoutMetrics", json!({})).await?;
        let vv = &metrics["cssVisualViewport"];
        let (sx, sy) = (
            vv["pageX"].as_f64().unwrap_or(0.0),
            vv["pageY"].as_f64().unwrap_or(0.0),
        );
        params["clip"] = json!({"x": px - v[2] / 2.0 + sx, "y": py - v[3] / 2.0 + sy, "width": v[2], "height": v[3], "scale": 1});
        params["captureBeyondViewport"] = json!(true);
        what = el.label.clone();
    } else if a.full_page == Some(true) {
        let metrics: Value = page.call("Page.getLayoutMetrics", json!({})).await?;
        let size = &metrics["cssContentSize"];
        let (w, h) = (
            size["width"].as_f64().unwrap_or(800.0),
            size["height"].as_f64().unwrap_or(600.0),
        );
        params["clip"] = json!({"x": 0, "y": 0, "width": w, "height": h.min(16384.0), "scale": 1});
        params["captureBeyondViewport"] = json!(true);
        what = format!("the full page ({}×{} px)", w as i64, h.min(16384.0) as i64);
    } else {
        what = "the viewport".to_string();
    }
    Ok((params, what))
}

/// The answer to a screenshot: the image, and the file it was saved to if asked.
async fn shot_answer(
    ctx: &Ctx<'_>,
    r: &Value,
    format: &str,
    what: &str,
    filename: Option<&str>,
) -> Result<Out> {
    let data = r["data"]
        .as_str()
        .ok_or_else(|| Error::new(codes::CDP_ERROR, "no image came back"))?
        .to_string();
    let mime = if format == "png" {
        "image/png"
    } else {
        "image/jpeg"
    };
    let mut text = format!("Screenshot of {what}.");
    if let Some(f) = filename {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&data)
            .map_err(|e| Error::internal(format!("bad image data: {e}")))?;
        let path = ctx.files.create_new(f, &bytes).await?;
        text.push_str(&format!(" Saved to {}.", path.display()));
    }
    Ok(Out {
        text,
        images: vec![(data, mime.to_string())],
    })
}
