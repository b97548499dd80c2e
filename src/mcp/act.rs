//! Input tools: click, hover, type, select, press, fill a form, drag, upload, dialogs.
//! All input goes through CDP `Input.*` at the element's on-screen point, so pages see
//! trusted events.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::report;
use super::{Ctx, Out};
use crate::browser::element::{self, Element, Need};
use crate::browser::keys;
use crate::browser::page::Page;
use crate::error::{Error, Result, codes};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClickArgs {
    target: String,
    double_click: Option<bool>,
    button: Option<String>,
    #[serde(default)]
    modifiers: Vec<String>,
}

pub async fn click(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: ClickArgs = super::parse(args)?;
    let (button, bit) = element::button(a.button.as_deref())?;
    let mods = keys::modifier_bits(&a.modifiers)?;
    let page = ctx.browser.page().await?;
    let _op = page.op.lock().await;
    let el = ctx.browser.resolve(&page, &a.target).await?;
    let m = report::mark(&page);
    let (x, y) = el.point(&page, Need::Click).await?;
    let count = if a.double_click == Some(true) { 2 } else { 1 };
    element::mouse_click(&page, x, y, button, bit, count, mods).await?;
    Ok(Out::text(
        report::after_action(ctx.browser, &page, m, "").await?,
    ))
}

#[derive(Deserialize)]
struct TargetArgs {
    target: String,
}

pub async fn hover(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: TargetArgs = super::parse(args)?;
    let page = ctx.browser.page().await?;
    let _op = page.op.lock().await;
    let el = ctx.browser.resolve(&page, &a.target).await?;
    let m = report::mark(&page);
    let (x, y) = el.point(&page, Need::Hover).await?;
    element::mouse_move(&page, x, y, 0, 0).await?;
    Ok(Out::text(
        report::after_action(ctx.browser, &page, m, "").await?,
    ))
}

/// Focuses a text field and selects its content (or puts the caret at the end).
const PREPARE_TYPE_JS: &str = r#"function(mode) {
  const el = this;
  el.focus();
  const special = ['date', 'time', 'datetime-local', 'month', 'week', 'color', 'range'];
  if (el.tagName === 'INPUT' && special.includes(el.type)) return 'value';
  if (el.isContentEditable) {
    const doc = el.ownerDocument, sel = doc.getSelection(), range = doc.createRange();
    range.selectNodeContents(el);
    if (mode === 'append') range.collapse(false);
    sel.removeAllRanges();
    sel.addRange(range);
    return 'text';
  }
  if (mode === 'append') {
    try { const n = el.value.length; el.setSelectionRange(n, n); } catch (e) {}
    return 'text';
  }
  try { el.select(); } catch (e) {}
  return el.value === '' || el.selectionStart !== el.selectionEnd || el.value === undefined ? 'text' : 'text-unselected';
}"#;

/// Sets a value the way a user's input would (native setter, then input/change).
const SET_VALUE_JS: &str = r#"function(v) {
  const proto = this.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype
    : this.tagName === 'SELECT' ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
  const setter = Object.getOwnPropertyDescriptor(proto, 'value').set;
  setter.call(this, v);
  this.dispatchEvent(new Event('input', {bubbles: true}));
  this.dispatchEvent(new Event('change', {bubbles: true}));
  return this.value;
}"#;

/// Types into an element: replaces its content (or appends, one key at a time).
async fn type_into(
    ctx: &Ctx<'_>,
    page: &Page,
    el: &Element,
    text: &str,
    slowly: bool,
) -> Result<()> {
    el.point(page, Need::Type).await?;
    let mode = if slowly { "append" } else { "replace" };
    let how = el.call(page, PREPARE_TYPE_JS, &[json!(mode)]).await?;
    match how.as_str() {
        Some("value") => {
            let got = el.call(page, SET_VALUE_JS, &[json!(text)]).await?;
            if got.as_str() != Some(text) {
                return Err(Error::new(
                    codes::NOT_ACTIONABLE,
                    format!(
                        "{} did not accept {text:?} (it now holds {got}); check the format the field expects",
                        el.label
                    ),
                ));
            }
        }
        Some("text-unselected") => {
            // The field could not select its text (e.g. type=email); clear by keys.
            let select_all = keys::parse_chord("ControlOrMeta+a")?;
            element::press(page, &select_all).await?;
            insert(page, text).await?;
        }
        _ if slowly => element::type_keys(page, text).await?,
        _ => insert(page, text).await?,
    }
    let _ = ctx;
    Ok(())
}

async fn insert(page: &Page, text: &str) -> Result<()> {
    if text.is_empty() {
        let del = keys::parse_chord("Delete")?;
        return element::press(page, &del).await;
    }
    page.call_or_dialog::<Value>(None, "Input.insertText", json!({"text": text}))
        .await?;
    Ok(())
}

#[derive(Deserialize)]
struct TypeArgs {
    target: String,
    text: String,
    submit: Option<bool>,
    slowly: Option<bool>,
}

pub async fn type_text(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: TypeArgs = super::parse(args)?;
    let page = ctx.browser.page().await?;
    let _op = page.op.lock().await;
    let el = ctx.browser.resolve(&page, &a.target).await?;
    let m = report::mark(&page);
    type_into(ctx, &page, &el, &a.text, a.slowly == Some(true)).await?;
    if a.submit == Some(true) {
        element::press(&page, &element::enter()).await?;
    }
    Ok(Out::text(
        report::after_action(ctx.browser, &page, m, "").await?,
    ))
}

const SELECT_JS: &str = r#"function(values) {
  const el = this;
  if (el.tagName !== 'SELECT') return {err: 'not-select', role: el.getAttribute('role') || el.tagName.toLowerCase()};
  if (el.disabled) return {err: 'disabled'};
  const opts = Array.from(el.options);
  const norm = s => String(s).trim().replace(/\s+/g, ' ').toLowerCase();
  const picked = [];
  for (const v of values) {
    const o = opts.find(o => o.value === v) || opts.find(o => o.label === v || o.text.trim() === v)
      || opts.find(o => norm(o.label) === norm(v) || norm(o.value) === norm(v));
    if (!o) return {err: 'no-option', value: v, options: opts.map(o => o.label || o.value).slice(0, 40)};
    if (o.disabled) return {err: 'option-disabled', value: v};
    picked.push(o);
  }
  if (!el.multiple && picked.length > 1) return {err: 'single'};
  for (const o of opts) o.selected = picked.includes(o);
  el.dispatchEvent(new Event('input', {bubbles: true}));
  el.dispatchEvent(new Event('change', {bubbles: true}));
  return {ok: picked.map(o => o.label || o.value)};
}"#;

async fn select_values(page: &Page, el: &Element, values: &[String]) -> Result<Vec<String>> {
    let r = el.call(page, SELECT_JS, &[json!(values)]).await?;
    if let Some(err) = r["err"].as_str() {
        let msg = match err {
            "not-select" => format!(
                "{} is not a <select> (it is {}); open it with browser_click and click the option",
                el.label,
                r["role"].as_str().unwrap_or("something else")
            ),
            "disabled" => format!("{} is disabled", el.label),
            "no-option" => format!(
                "{} has no option {}; its options are: {}",
                el.label,
                r["value"],
                r["options"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ),
            "option-disabled" => format!("the option {} of {} is disabled", r["value"], el.label),
            "single" => format!("{} takes one value, not several", el.label),
            other => format!("cannot select in {}: {other}", el.label),
        };
        return Err(Error::new(codes::NOT_ACTIONABLE, msg));
    }
    Ok(r["ok"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

#[derive(Deserialize)]
struct SelectArgs {
    target: String,
    values: Vec<String>,
}

pub async fn select_option(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: SelectArgs = super::parse(args)?;
    let page = ctx.browser.page().await?;
    let _op = page.op.lock().await;
    let el = ctx.browser.resolve(&page, &a.target).await?;
    let m = report::mark(&page);
    let picked = select_values(&page, &el, &a.values).await?;
    let lead = format!("Selected {}.", picked.join(", "));
    Ok(Out::text(
        report::after_action(ctx.browser, &page, m, &lead).await?,
    ))
}

#[derive(Deserialize)]
struct KeyArgs {
    key: String,
}

pub async fn press_key(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: KeyArgs = super::parse(args)?;
    let chord = keys::parse_chord(&a.key)?;
    let page = ctx.browser.page().await?;
    let _op = page.op.lock().await;
    let m = report::mark(&page);
    element::press(&page, &chord).await?;
    Ok(Out::text(
        report::after_action(ctx.browser, &page, m, "").await?,
    ))
}

#[derive(Deserialize)]
struct Field {
    target: String,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Deserialize)]
struct FillArgs {
    fields: Vec<Field>,
}

const CHECKED_JS: &str =
    "function() { return !!(this.checked ?? (this.getAttribute('aria-checked') === 'true')); }";

pub async fn fill_form(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: FillArgs = super::parse(args)?;
    if a.fields.is_empty() {
        return Err(Error::bad_request("fields is empty"));
    }
    let page = ctx.browser.page().await?;
    let _op = page.op.lock().await;
    let m = report::mark(&page);
    for f in &a.fields {
        let name = f.name.clone().unwrap_or_else(|| f.target.clone());
        let el = ctx
            .browser
            .resolve(&page, &f.target)
            .await
            .map_err(|e| Error::new(e.code, format!("field {name:?}: {}", e.message)))?;
        let r: Result<()> = async {
            match f.kind.as_str() {
                "textbox" => type_into(ctx, &page, &el, &f.value, false).await,
                "checkbox" | "radio" => {
                    let want = match f.value.to_ascii_lowercase().as_str() {
                        "true" | "on" | "yes" | "checked" | "1" => true,
                        "false" | "off" | "no" | "unchecked" | "0" => false,
                        _ if f.kind == "radio" => true,
                        other => {
                            return Err(Error::bad_request(format!(
                                "a checkbox value is true or false, not {other:?}"
                            )));
                        }
                    };
                    let is = el.call(&page, CHECKED_JS, &[]).await?.as_bool() == Some(true);
                    if is != want {
                        if f.kind == "radio" && !want {
                            return Err(Error::bad_request(
                                "a radio button cannot be unchecked; check another one of its group",
                            ));
                        }
                        let (x, y) = el.point(&page, Need::Click).await?;
                        element::mouse_click(&page, x, y, "left", 1, 1, 0).await?;
                    }
                    Ok(())
                }
                "combobox" => {
                    let is_select = el
                        .call(&page, "function() { return this.tagName === 'SELECT'; }", &[])
                        .await?
                        .as_bool()
                        == Some(true);
                    if is_select {
                        select_values(&page, &el, std::slice::from_ref(&f.value)).await.map(|_| ())
                    } else {
                        type_into(ctx, &page, &el, &f.value, false).await
                    }
                }
                "slider" => {
                    el.point(&page, Need::Click).await?;
                    el.call(&page, SET_VALUE_JS, &[json!(f.value)]).await.map(|_| ())
                }
                other => Err(Error::bad_request(format!(
                    "unknown field type {other:?}: use textbox, checkbox, radio, combobox or slider"
                ))),
            }
        }
        .await;
        r.map_err(|e| Error::new(e.code, format!("field {name:?}: {}", e.message)))?;
        if page.state().dialog.is_some() {
            break;
        }
    }
    let lead = format!("Filled {} field(s).", a.fields.len());
    Ok(Out::text(
        report::after_action(ctx.browser, &page, m, &lead).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DragArgs {
    start_target: String,
    end_target: String,
}

pub async fn drag(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: DragArgs = super::parse(args)?;
    let page = ctx.browser.page().await?;
    let _op = page.op.lock().await;
    let from = ctx.browser.resolve(&page, &a.start_target).await?;
    let to = ctx.browser.resolve(&page, &a.end_target).await?;
    let m = report::mark(&page);
    // Both ends in view: the target's scroll may move the source, so look again.
    from.point(&page, Need::Drag).await?;
    let (x1, y1) = to.point(&page, Need::Hover).await?;
    let (x0, y0) = from.point(&page, Need::Drag).await?;
    element::mouse_move(&page, x0, y0, 0, 0).await?;
    page.call::<Value>(
        "Input.dispatchMouseEvent",
        json!({"type": "mousePressed", "x": x0, "y": y0, "button": "left", "buttons": 1, "clickCount": 1}),
    )
    .await?;
    // Small steps, as a hand would: pages start a drag after a few pixels.
    let steps = 10;
    for i in 1..=steps {
        let t = i as f64 / steps as f64;
        element::mouse_move(&page, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, 1, 0).await?;
    }
    page.call::<Value>(
        "Input.dispatchMouseEvent",
        json!({"type": "mouseReleased", "x": x1, "y": y1, "button": "left", "buttons": 0, "clickCount": 1}),
    )
    .await?;
    Ok(Out::text(
        report::after_action(ctx.browser, &page, m, "").await?,
    ))
}

#[derive(Deserialize)]
struct UploadArgs {
    paths: Option<Vec<String>>,
    target: Option<String>,
}

pub async fn file_upload(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: UploadArgs = super::parse(args)?;
    let page = ctx.browser.page().await?;
    let _op = page.op.lock().await;
    let m = report::mark(&page);
    let paths = a.paths.unwrap_or_default();
    let mut absolute = Vec::new();
    for p in &paths {
        absolute.push(ctx.files.readable(p).await?);
    }
    let chooser = page.state().file_chooser.clone();
    let lead;
    match (&a.target, chooser) {
        (Some(t), _) => {
            let el = ctx.browser.resolve(&page, t).await?;
            let is_file = el
                .call(
                    &page,
                    "function() { return this.tagName === 'INPUT' && this.type === 'file'; }",
                    &[],
                )
                .await?;
            if is_file.as_bool() != Some(true) {
                return Err(Error::new(
                    codes::NOT_ACTIONABLE,
                    format!(
                        "{} is not a file input; click it to open a file chooser, then call browser_file_upload with paths only",
                        el.label
                    ),
                ));
            }
            page.call_in::<Value>(
                el.session.as_deref(),
                "DOM.setFileInputFiles",
                json!({"files": absolute, "objectId": el.object_id}),
            )
            .await?;
            page.state().file_chooser = None;
            lead = format!("Set {} file(s) on {}.", absolute.len(), el.label);
        }
        (None, Some(fc)) => {
            if paths.is_empty() {
                page.state().file_chooser = None;
                lead = "Cancelled the file chooser.".to_string();
            } else {
                if absolute.len() > 1 && !fc.multiple {
                    return Err(Error::bad_request(
                        "this file input takes one file, not several",
                    ));
                }
                page.call::<Value>(
                    "DOM.setFileInputFiles",
                    json!({"files": absolute, "backendNodeId": fc.backend_node_id}),
                )
                .await?;
                page.state().file_chooser = None;
                lead = format!("Uploaded {} file(s).", absolute.len());
            }
        }
        (None, None) => {
            return Err(Error::new(
                codes::NOT_ACTIONABLE,
                "no file chooser is open: click the file input first (browser_click), or pass it as target",
            ));
        }
    }
    Ok(Out::text(
        report::after_action(ctx.browser, &page, m, &lead).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DialogArgs {
    accept: bool,
    prompt_text: Option<String>,
}

pub async fn handle_dialog(ctx: &Ctx<'_>, args: Value) -> Result<Out> {
    let a: DialogArgs = super::parse(args)?;
    // A dialog blocks the page: this tool must not wait for other calls on the tab.
    let page = ctx.browser.page().await?;
    let dialog = page
        .state()
        .dialog
        .clone()
        .ok_or_else(|| Error::new(codes::NO_DIALOG, "no dialog is open on the current tab"))?;
    let m = report::mark(&page);
    let mut params = json!({"accept": a.accept});
    if let Some(t) = &a.prompt_text {
        params["promptText"] = json!(t);
    }
    page.call::<Value>("Page.handleJavaScriptDialog", params)
        .await?;
    page.wait_until(Instant::now() + Duration::from_secs(5), |s| {
        s.dialog.is_none()
    })
    .await;
    let lead = format!(
        "{} the {} {:?}.",
        if a.accept { "Accepted" } else { "Dismissed" },
        dialog.kind,
        dialog.message
    );
    let _op = page.op.lock().await;
    Ok(Out::text(
        report::after_action(ctx.browser, &page, m, &lead).await?,
    ))
}
