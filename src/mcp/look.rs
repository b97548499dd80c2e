//! Tools that look at the page: snapshot, screenshot, evaluate, console, network.

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::report;
use super::{Ctx, Out};
use crate::browser::element::Need;
use crate::browser::page::{Level, exception_text};
use crate::browser::snap;
use crate::error::{Error, Result, codes};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotArgs {
    target: Option<String>,
    find: Option<String>,
    max_chars: Option<i64>,
    viewport: Option<bool>,
    source: Option<String>,
}

pub async fn snapshot(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: SnapshotArgs = super::parse(args)?;
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
    let page = ctx.browser.page().await?;
    let _op = page.op.lock().await;
    let mut out = report::header(&page);
    report::modal_lines(&page, &mut out);
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
    let s = snap::take(ctx.browser, &page, &req).await?;
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

#[derive(Deserialize)]
struct EvalArgs {
    function: String,
    target: Option<String>,
}

pub async fn evaluate(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: EvalArgs = super::parse(args)?;
    let code = a.function.trim();
    if code.is_empty() {
        return Err(Error::bad_request("function is empty"));
    }
    let page = ctx.browser.page().await?;
    let _op = page.op.lock().await;
    let m = report::mark(&page);
    let r: Option<Value> = match &a.target {
        Some(t) => {
            let el = ctx.browser.resolve(&page, t).await?;
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
    };
    let lead = match r {
        Some(r) => eval_answer(&r)?,
        None => "(A dialog opened; the function waits for it.)".to_string(),
    };
    let mut out = format!("Result: {lead}\n");
    report::settle(ctx.browser, &page, m).await;
    out.push_str(&report::header(&page));
    report::modal_lines(&page, &mut out);
    report::console_lines(&page, &m, &mut out);
    Ok(Out::text(out))
}

#[derive(Deserialize)]
struct ConsoleArgs {
    level: Option<String>,
    all: Option<bool>,
}

pub async fn console_messages(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: ConsoleArgs = super::parse(args)?;
    let min = match a.level.as_deref() {
        None => Level::Info,
        Some(l) => Level::parse(l).ok_or_else(|| {
            Error::bad_request(format!(
                "unknown level {l:?}: use error, warning, info or debug"
            ))
        })?,
    };
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

#[derive(Deserialize)]
struct NetworkArgs {
    #[serde(rename = "static")]
    include_static: Option<bool>,
    filter: Option<String>,
}

pub async fn network_requests(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: NetworkArgs = super::parse(args)?;
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShotArgs {
    #[serde(rename = "type")]
    format: Option<String>,
    quality: Option<i64>,
    full_page: Option<bool>,
    target: Option<String>,
    filename: Option<String>,
}

const RECT_JS: &str = "function() { const r = this.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }";

pub async fn screenshot(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: ShotArgs = super::parse(args)?;
    let format = match a.format.as_deref() {
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
        Some("png") => "png",
        Some("jpeg") | Some("jpg") => "jpeg",
        Some(o) => {
            return Err(Error::bad_request(format!(
                "unknown type {o:?}: use png or jpeg"
            )));
        }
    };
    if a.quality.is_some_and(|q| !(0..=100).contains(&q)) {
        return Err(Error::bad_request("quality is 0 to 100"));
    }
    if a.full_page == Some(true) && a.target.is_some() {
        return Err(Error::bad_request("fullPage and target cannot be combined"));
    }
    let page = ctx.browser.page().await?;
    let _op = page.op.lock().await;
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
        let el = ctx.browser.resolve(&page, t).await?;
        let (px, py) = el.point(&page, Need::Hover).await?;
        let r = el.call(&page, RECT_JS, &[]).await?;
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
    let r: Value = page.call("Page.captureScreenshot", params).await?;
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
    if let Some(f) = &a.filename {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&data)
            .map_err(|e| Error::internal(format!("bad image data: {e}")))?;
        let path = std::path::absolute(f)
            .map_err(|e| Error::bad_request(format!("bad filename {f:?}: {e}")))?;
        std::fs::write(&path, bytes)
            .map_err(|e| Error::bad_request(format!("cannot write {}: {e}", path.display())))?;
        text.push_str(&format!(" Saved to {}.", path.display()));
    }
    Ok(Out {
        text,
        images: vec![(data, mime.to_string())],
    })
}
