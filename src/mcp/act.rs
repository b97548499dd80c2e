//! Input tools: click, hover, type, select, press, fill a form, drag, upload, dialogs.
//! All input goes through CDP `Input.*` at the element's on-screen point, so pages see
//! trusted events.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::report;
use super::tool::{Element as About, Target, ToolDef};
use super::{Ctx, Out};
use crate::browser::element::{self, Element, Need};
use crate::browser::keys;
use crate::browser::page::Page;
use crate::error::{Error, Result, codes};
use crate::{choice, tool};

choice!(
    /// A mouse button.
    pub enum Button as "button" { Left = "left", Right = "right", Middle = "middle" }
);

choice!(
    /// A modifier key held during a click.
    pub enum Modifier as "modifier" {
        Alt = "Alt",
        Control = "Control",
        ControlOrMeta = "ControlOrMeta",
        Meta = "Meta",
        Shift = "Shift",
    } parse with modifier
);

/// A modifier by name, any case, or by one of the key aliases (`Ctrl`, `Cmd`, …).
fn modifier(s: &str) -> Option<Modifier> {
    let name = keys::canonical(s);
    let known = Modifier::NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))?;
    Modifier::from_name(known)
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClickArgs {
    #[schemars(with = "Target")]
    target: String,
    #[schemars(with = "Option<About>")]
    #[allow(dead_code)]
    element: Option<String>,
    double_click: Option<bool>,
    button: Option<Button>,
    #[serde(default)]
    modifiers: Vec<Modifier>,
}

pub const CLICK: ToolDef = tool!(
    "browser_click",
    "Click",
    Destroy,
    ClickArgs,
    click,
    "Click an element. Answers with what changed on the page."
);

async fn click(ctx: &Ctx<'_>, a: ClickArgs) -> Result<Out> {
    let (button, bit) = element::button(a.button.map(Button::as_str))?;
    let names: Vec<String> = a.modifiers.iter().map(|m| m.as_str().into()).collect();
    let mods = keys::modifier_bits(&names)?;
    ctx.act([&a.target], async |page, [el]| {
        let (x, y) = el.point(page, Need::Click).await?;
        let count = if a.double_click == Some(true) { 2 } else { 1 };
        element::mouse_click(page, x, y, button, bit, count, mods).await?;
        Ok(String::new())
    })
    .await
}

#[derive(Deserialize, JsonSchema)]
pub struct HoverArgs {
    #[schemars(with = "Target")]
    target: String,
    #[schemars(with = "Option<About>")]
    #[allow(dead_code)]
    element: Option<String>,
}

pub const HOVER: ToolDef = tool!(
    "browser_hover",
    "Hover",
    Act,
    HoverArgs,
    hover,
    "Move the mouse over an element."
);

async fn hover(ctx: &Ctx<'_>, a: HoverArgs) -> Result<Out> {
    ctx.act([&a.target], async |page, [el]| {
        let (x, y) = el.point(page, Need::Hover).await?;
        element::mouse_move(page, x, y, 0, 0).await?;
        Ok(String::new())
    })
    .await
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
async fn type_into(page: &Page, el: &Element, text: &str, slowly: bool) -> Result<()> {
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

#[derive(Deserialize, JsonSchema)]
pub struct TypeArgs {
    #[schemars(with = "Target")]
    target: String,
    #[schemars(with = "Option<About>")]
    #[allow(dead_code)]
    element: Option<String>,
    text: String,
    /// Press Enter after
    submit: Option<bool>,
    /// One key at a time (fires key handlers); appends
    slowly: Option<bool>,
}

pub const TYPE: ToolDef = tool!(
    "browser_type",
    "Type text",
    Destroy,
    TypeArgs,
    type_text,
    "Type text into an editable element, replacing its content."
);

async fn type_text(ctx: &Ctx<'_>, a: TypeArgs) -> Result<Out> {
    ctx.act([&a.target], async |page, [el]| {
        type_into(page, &el, &a.text, a.slowly == Some(true)).await?;
        if a.submit == Some(true) {
            element::press(page, &element::enter()).await?;
        }
        Ok(String::new())
    })
    .await
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

#[derive(Deserialize, JsonSchema)]
pub struct SelectArgs {
    #[schemars(with = "Target")]
    target: String,
    #[schemars(with = "Option<About>")]
    #[allow(dead_code)]
    element: Option<String>,
    values: Vec<String>,
}

pub const SELECT_OPTION: ToolDef = tool!(
    "browser_select_option",
    "Select options",
    Destroy,
    SelectArgs,
    select_option,
    "Select options of a <select> by value or label."
);

async fn select_option(ctx: &Ctx<'_>, a: SelectArgs) -> Result<Out> {
    ctx.act([&a.target], async |page, [el]| {
        let picked = select_values(page, &el, &a.values).await?;
        Ok(format!("Selected {}.", picked.join(", ")))
    })
    .await
}

#[derive(Deserialize, JsonSchema)]
pub struct KeyArgs {
    key: String,
}

pub const PRESS_KEY: ToolDef = tool!(
    "browser_press_key",
    "Press a key",
    Destroy,
    KeyArgs,
    press_key,
    "Press a key or chord on the focused element, e.g. Enter, ArrowLeft, a, Control+a."
);

async fn press_key(ctx: &Ctx<'_>, a: KeyArgs) -> Result<Out> {
    let chord = keys::parse_chord(&a.key)?;
    ctx.act([], async |page, []| {
        element::press(page, &chord).await?;
        Ok(String::new())
    })
    .await
}

choice!(
    /// What kind of field `browser_fill_form` fills.
    pub enum FieldKind as "field type" {
        Textbox = "textbox",
        Checkbox = "checkbox",
        Radio = "radio",
        Combobox = "combobox",
        Slider = "slider",
    }
);

#[derive(Deserialize, JsonSchema)]
pub struct Field {
    #[schemars(with = "Target")]
    target: String,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: FieldKind,
    /// checkbox: true/false; combobox: option label
    value: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct FillArgs {
    fields: Vec<Field>,
}

pub const FILL_FORM: ToolDef = tool!(
    "browser_fill_form",
    "Fill a form",
    Destroy,
    FillArgs,
    fill_form,
    "Fill several fields at once."
);

const CHECKED_JS: &str =
    "function() { return !!(this.checked ?? (this.getAttribute('aria-checked') === 'true')); }";

async fn fill_form(ctx: &Ctx<'_>, a: FillArgs) -> Result<Out> {
    if a.fields.is_empty() {
        return Err(Error::bad_request("fields is empty"));
    }
    ctx.act([], async |page, []| {
        for f in &a.fields {
            let name = f.name.clone().unwrap_or_else(|| f.target.clone());
            let in_field = |e: Error| Error::new(e.code, format!("field {name:?}: {}", e.message));
            let el = ctx
                .browser
                .resolve(page, &f.target)
                .await
                .map_err(in_field)?;
            fill_field(page, &el, f).await.map_err(in_field)?;
            if page.state().dialog.is_some() {
                break;
            }
        }
        Ok(format!("Filled {} field(s).", a.fields.len()))
    })
    .await
}

/// Sets one field of `browser_fill_form`.
async fn fill_field(page: &Page, el: &Element, f: &Field) -> Result<()> {
    match f.kind {
        FieldKind::Textbox => type_into(page, el, &f.value, false).await,
        FieldKind::Checkbox | FieldKind::Radio => {
            let want = match f.value.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" | "checked" | "1" => true,
                "false" | "off" | "no" | "unchecked" | "0" => false,
                _ if f.kind == FieldKind::Radio => true,
                other => {
                    return Err(Error::bad_request(format!(
                        "a checkbox value is true or false, not {other:?}"
                    )));
                }
            };
            let is = el.call(page, CHECKED_JS, &[]).await?.as_bool() == Some(true);
            if is != want {
                if f.kind == FieldKind::Radio && !want {
                    return Err(Error::bad_request(
                        "a radio button cannot be unchecked; check another one of its group",
                    ));
                }
                let (x, y) = el.point(page, Need::Click).await?;
                element::mouse_click(page, x, y, "left", 1, 1, 0).await?;
            }
            Ok(())
        }
        FieldKind::Combobox => {
            let is_select = el
                .call(
                    page,
                    "function() { return this.tagName === 'SELECT'; }",
                    &[],
                )
                .await?
                .as_bool()
                == Some(true);
            if is_select {
                select_values(page, el, std::slice::from_ref(&f.value))
                    .await
                    .map(|_| ())
            } else {
                type_into(page, el, &f.value, false).await
            }
        }
        FieldKind::Slider => {
            el.point(page, Need::Click).await?;
            el.call(page, SET_VALUE_JS, &[json!(f.value)])
                .await
                .map(|_| ())
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DragArgs {
    #[schemars(with = "Target")]
    start_target: String,
    #[schemars(with = "Option<About>")]
    #[allow(dead_code)]
    start_element: Option<String>,
    #[schemars(with = "Target")]
    end_target: String,
    #[schemars(with = "Option<About>")]
    #[allow(dead_code)]
    end_element: Option<String>,
}

pub const DRAG: ToolDef = tool!(
    "browser_drag",
    "Drag and drop",
    Destroy,
    DragArgs,
    drag,
    "Drag one element onto another."
);

async fn drag(ctx: &Ctx<'_>, a: DragArgs) -> Result<Out> {
    ctx.act(
        [&a.start_target, &a.end_target],
        async |page, [from, to]| {
            drag_onto(page, &from, &to).await?;
            Ok(String::new())
        },
    )
    .await
}

/// Presses the mouse on `from`, moves it in small steps to `to` and releases it there.
async fn drag_onto(page: &Page, from: &Element, to: &Element) -> Result<()> {
    // Both ends in view: the target's scroll may move the source, so look again.
    from.point(page, Need::Drag).await?;
    let (x1, y1) = to.point(page, Need::Hover).await?;
    let (x0, y0) = from.point(page, Need::Drag).await?;
    element::mouse_move(page, x0, y0, 0, 0).await?;
    page.call::<Value>(
        "Input.dispatchMouseEvent",
        json!({"type": "mousePressed", "x": x0, "y": y0, "button": "left", "buttons": 1, "clickCount": 1}),
    )
    .await?;
    // Small steps, as a hand would: pages start a drag after a few pixels.
    let steps = 10;
    for i in 1..=steps {
        let t = i as f64 / steps as f64;
        element::mouse_move(page, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, 1, 0).await?;
    }
    page.call::<Value>(
        "Input.dispatchMouseEvent",
        json!({"type": "mouseReleased", "x": x1, "y": y1, "button": "left", "buttons": 0, "clickCount": 1}),
    )
    .await?;
    Ok(())
}

#[derive(Deserialize, JsonSchema)]
pub struct UploadArgs {
    /// Absolute file paths, inside your MCP roots
    paths: Option<Vec<String>>,
    #[schemars(with = "Option<Target>")]
    target: Option<String>,
}

pub const FILE_UPLOAD: ToolDef = tool!(
    "browser_file_upload",
    "Upload files",
    Destroy,
    UploadArgs,
    file_upload,
    "Set the files of the open file chooser, or of a file input given as target. No paths cancels the chooser."
);

async fn file_upload(ctx: &Ctx<'_>, a: UploadArgs) -> Result<Out> {
    ctx.act([], async |page, []| {
        let files = readable_files(ctx, a.paths.as_deref().unwrap_or_default()).await?;
        match &a.target {
            Some(t) => {
                let el = ctx.browser.resolve(page, t).await?;
                set_input_files(page, &el, &files).await
            }
            None => answer_chooser(page, &files).await,
        }
    })
    .await
}

/// The paths, each checked to be a file the client may read (see `confine`).
async fn readable_files(ctx: &Ctx<'_>, paths: &[String]) -> Result<Vec<PathBuf>> {
    let mut absolute = Vec::new();
    for p in paths {
        absolute.push(ctx.files.readable(p).await?);
    }
    Ok(absolute)
}

/// Sets the files of a file input; answers with the lead line.
async fn set_input_files(page: &Page, el: &Element, files: &[PathBuf]) -> Result<String> {
    let is_file = el
        .call(
            page,
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
        json!({"files": files, "objectId": el.object_id}),
    )
    .await?;
    page.state().file_chooser = None;
    Ok(format!("Set {} file(s) on {}.", files.len(), el.label))
}

/// Answers the open file chooser with `files` (none cancels it); answers with the lead.
async fn answer_chooser(page: &Page, files: &[PathBuf]) -> Result<String> {
    let Some(fc) = page.state().file_chooser.clone() else {
        return Err(Error::new(
            codes::NOT_ACTIONABLE,
            "no file chooser is open: click the file input first (browser_click), or pass it as target",
        ));
    };
    if files.is_empty() {
        page.state().file_chooser = None;
        return Ok("Cancelled the file chooser.".to_string());
    }
    if files.len() > 1 && !fc.multiple {
        return Err(Error::bad_request(
            "this file input takes one file, not several",
        ));
    }
    page.call::<Value>(
        "DOM.setFileInputFiles",
        json!({"files": files, "backendNodeId": fc.backend_node_id}),
    )
    .await?;
    page.state().file_chooser = None;
    Ok(format!("Uploaded {} file(s).", files.len()))
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DialogArgs {
    accept: bool,
    prompt_text: Option<String>,
}

pub const HANDLE_DIALOG: ToolDef = tool!(
    "browser_handle_dialog",
    "Handle a dialog",
    Destroy,
    DialogArgs,
    handle_dialog,
    "Accept or dismiss the open alert/confirm/prompt dialog."
);

async fn handle_dialog(ctx: &Ctx<'_>, a: DialogArgs) -> Result<Out> {
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
    // Then wait for the call the dialog interrupted, and answer with what changed.
    ctx.on(&page, async |page| {
        Ok(Out::text(
            report::after_action(ctx.browser, page, m, &lead).await?,
        ))
    })
    .await
}
