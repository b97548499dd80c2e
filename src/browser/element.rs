//! Elements: resolving a ref or CSS selector to a live node, making it actionable
//! (scrolled into view, visible, enabled, not covered) and driving real input at its
//! on-screen point.

use serde_json::{Value, json};

use super::keys::{self, Chord, KeyDef};
use super::page::Page;
use crate::error::{Error, Result, codes};

/// A resolved element: a remote object in the session of its frame.
#[derive(Debug, Clone)]
pub struct Element {
    pub session: Option<String>,
    pub object_id: String,
    /// How to name it in messages: `e12 (button "Save")` or the selector.
    pub label: String,
}

/// What an action needs of its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Click,
    Hover,
    Type,
    Drag,
}

impl Need {
    fn js(self) -> &'static str {
        match self {
            Need::Click => "click",
            Need::Hover => "hover",
            Need::Type => "type",
            Need::Drag => "drag",
        }
    }
}

/// Checks an element, scrolls it into view and finds the point to act at, in the
/// coordinates of its own frame. Returns `{x, y, cx, cy, top}` or `{err, ...}`.
const ACTIONABLE_JS: &str = r#"function(kind) {
  let el = this.nodeType === 1 ? this : this.parentElement;
  if (!el || !el.isConnected) return {err: 'gone'};
  const describe = (n) => {
    if (!n || !n.tagName) return 'nothing';
    let s = n.tagName.toLowerCase();
    if (n.id) s += '#' + n.id;
    else if (n.classList && n.classList.length) s += '.' + Array.from(n.classList).slice(0, 2).join('.');
    const t = (n.getAttribute('aria-label') || n.innerText || n.value || '').trim().replace(/\s+/g, ' ').slice(0, 40);
    return t ? s + ' "' + t + '"' : s;
  };
  if (kind !== 'hover') {
    const dis = el.closest(':disabled, [aria-disabled="true"]');
    if (dis) return {err: 'disabled'};
  }
  if (kind === 'type') {
    const editable = el.isContentEditable || el.matches('textarea, [role=textbox], [role=searchbox], [role=combobox], [role=spinbutton], input:not([type=checkbox]):not([type=radio]):not([type=button]):not([type=submit]):not([type=reset]):not([type=file]):not([type=image]):not([type=hidden])');
    if (!editable) return {err: 'not-editable', what: describe(el)};
    if (el.readOnly) return {err: 'readonly'};
  }
  const visible = (n) => {
    const r = n.getBoundingClientRect();
    const v = n.checkVisibility ? n.checkVisibility({checkVisibilityCSS: true}) : true;
    return v && r.width > 0 && r.height > 0;
  };
  if (!visible(el)) {
    const label = el.labels && Array.from(el.labels).find(visible);
    if (label && kind !== 'type') el = label;
    else return {err: 'hidden'};
  }
  const vw = innerWidth, vh = innerHeight;
  let r = el.getBoundingClientRect();
  if (r.top < 0 || r.left < 0 || r.bottom > vh || r.right > vw) {
    el.scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});
    r = el.getBoundingClientRect();
  }
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2, top = window === window.top;
  // The shadow roots the element is in, by host: closed ones too, which a hit test
  // otherwise stops at (it answers with their host).
  const rootsOf = new Map();
  for (let rt = el.getRootNode(); rt && rt.host; rt = rt.host.getRootNode()) rootsOf.set(rt.host, rt);
  const hitAt = (x, y) => {
    let hit = el.ownerDocument.elementFromPoint(x, y);
    for (let root; hit && (root = hit.shadowRoot || rootsOf.get(hit));) {
      const inner = root.elementFromPoint(x, y);
      if (!inner || inner === hit) break;
      hit = inner;
    }
    return hit;
  };
  const isEl = (hit) => {
    for (let n = hit; n; n = n.parentNode || n.host) if (n === el) return true;
    if (hit && hit.tagName === 'LABEL' && hit.control === el) return true;
    return !!(hit && (hit.tagName === 'IFRAME' || hit.tagName === 'FRAME') && el.ownerDocument !== document);
  };
  // The element's own boxes (one per line of a wrapped inline element), then the
  // centre of its bounding box: the first point on screen that hits the element.
  const boxes = Array.from(el.getClientRects()).filter(b => b.width > 0 && b.height > 0);
  boxes.sort((a, b) => (b.width * b.height) - (a.width * a.height));
  let firstHit = null, onScreen = false;
  for (const b of boxes.length ? boxes : [r]) {
    const left = Math.max(b.left, 0), right = Math.min(b.right, vw);
    const btop = Math.max(b.top, 0), bottom = Math.min(b.bottom, vh);
    if (right <= left || bottom <= btop) continue;
    onScreen = true;
    const x = (left + right) / 2, y = (btop + bottom) / 2;
    const hit = hitAt(x, y);
    if (isEl(hit)) return {x, y, cx, cy, top};
    if (!firstHit) firstHit = hit;
  }
  if (!onScreen) return {err: 'offscreen'};
  return {err: 'covered', by: describe(firstHit)};
}"#;

impl Element {
    /// Calls `function` on the element (as `this`) with JSON arguments, returning its
    /// value.
    pub async fn call(&self, page: &Page, function: &str, args: &[Value]) -> Result<Value> {
        let arguments: Vec<Value> = args.iter().map(|a| json!({"value": a})).collect();
        let r: Value = page
            .call_in(
                self.session.as_deref(),
                "Runtime.callFunctionOn",
                json!({
                    "functionDeclaration": function,
                    "objectId": self.object_id,
                    "arguments": arguments,
                    "returnByValue": true,
                    "awaitPromise": true,
                }),
            )
            .await
            .map_err(|e| self.stale_if_gone(e))?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(Error::new(
                codes::EVAL_ERROR,
                super::page::exception_text(ex),
            ));
        }
        Ok(r["result"]["value"].clone())
    }

    fn stale_if_gone(&self, e: Error) -> Error {
        if e.message.contains("Could not find object with given id")
            || e.message.contains("Cannot find context with specified id")
            || e.message.contains("No node with given id")
        {
            Error::new(
                codes::STALE_REF,
                format!(
                    "{} is no longer in the page; take a new snapshot (browser_snapshot)",
                    self.label
                ),
            )
        } else {
            e
        }
    }

    /// Makes the element actionable and returns the point to act at, in the
    /// coordinates of the tab's viewport.
    pub async fn point(&self, page: &Page, need: Need) -> Result<(f64, f64)> {
        let r = self.call(page, ACTIONABLE_JS, &[json!(need.js())]).await?;
        if let Some(err) = r["err"].as_str() {
            let what = &self.label;
            let msg = match err {
                "gone" => {
                    return Err(Error::new(
                        codes::STALE_REF,
                        format!("{what} is no longer in the page; take a new snapshot"),
                    ));
                }
                "disabled" => {
                    format!("{what} is disabled; it cannot be used until the page enables it")
                }
                "not-editable" => format!(
                    "{what} is not a text field ({}); use browser_click, browser_select_option or browser_fill_form",
                    r["what"].as_str().unwrap_or("?")
                ),
                "readonly" => format!("{what} is read-only"),
                "hidden" => format!(
                    "{what} is not visible (hidden, zero-size or display:none); it may appear after another action"
                ),
                "offscreen" => format!("{what} could not be scrolled into view"),
                "covered" => format!(
                    "{what} is covered by {} on every one of its boxes, so a click would land on that instead; close or wait for the cover to go (browser_wait_for), or act on the cover",
                    r["by"].as_str().unwrap_or("another element")
                ),
                other => format!("{what} is not actionable ({other})"),
            };
            return Err(Error::new(codes::NOT_ACTIONABLE, msg));
        }
        let (x, y) = (
            r["x"].as_f64().unwrap_or(0.0),
            r["y"].as_f64().unwrap_or(0.0),
        );
        if r["top"].as_bool() == Some(true) {
            return Ok((x, y));
        }
        // Inside a frame: the frame's quads tell where its viewport sits in the tab.
        let (cx, cy) = (r["cx"].as_f64().unwrap_or(x), r["cy"].as_f64().unwrap_or(y));
        let quads: Value = page
            .call_in(
                self.session.as_deref(),
                "DOM.getContentQuads",
                json!({"objectId": self.object_id}),
            )
            .await
            .map_err(|e| self.stale_if_gone(e))?;
        // The centre of the union of its boxes is the centre of its bounding box.
        let (qx, qy) = union_centre(&quads["quads"]).ok_or_else(|| {
            Error::new(
                codes::NOT_ACTIONABLE,
                format!("{} has no box on screen", self.label),
            )
        })?;
        let (ox, oy) = frame_offset(page, self.session.as_deref()).await?;
        Ok((x + (qx - cx) + ox, y + (qy - cy) + oy))
    }
}

/// The centre of the rectangle around a list of CDP quads (8 numbers each).
fn union_centre(quads: &Value) -> Option<(f64, f64)> {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for q in quads.as_array()?.iter().filter_map(|q| q.as_array()) {
        if q.len() != 8 {
            continue;
        }
        for (i, v) in q.iter().enumerate() {
            let v = v.as_f64().unwrap_or(0.0);
            if i % 2 == 0 {
                x0 = x0.min(v);
                x1 = x1.max(v);
            } else {
                y0 = y0.min(v);
                y1 = y1.max(v);
            }
        }
    }
    (x0 <= x1 && y0 <= y1).then(|| ((x0 + x1) / 2.0, (y0 + y1) / 2.0))
}

/// Where the viewport of a child session's root frame sits in the tab's viewport.
async fn frame_offset(page: &Page, session: Option<&str>) -> Result<(f64, f64)> {
    let mut total = (0.0, 0.0);
    let mut session = session.map(str::to_string);
    for _ in 0..16 {
        let Some(s) = session.clone() else {
            return Ok(total);
        };
        let (frame, parent_session) = {
            let st = page.state();
            let frame = st.child_sessions.get(&s).cloned().unwrap_or_default();
            let parent = st.frames.get(&frame).and_then(|f| f.parent.clone());
            let parent_session = parent
                .as_ref()
                .and_then(|p| st.frames.get(p))
                .and_then(|f| f.session.clone());
            (frame, parent_session)
        };
        let owner: Value = page
            .call_in(
                parent_session.as_deref(),
                "DOM.getFrameOwner",
                json!({"frameId": frame}),
            )
            .await?;
        let backend = owner["backendNodeId"].as_i64().unwrap_or(0);
        let bm: Value = page
            .call_in(
                parent_session.as_deref(),
                "DOM.getBoxModel",
                json!({"backendNodeId": backend}),
            )
            .await?;
        let c = &bm["model"]["content"];
        total.0 += c[0].as_f64().unwrap_or(0.0);
        total.1 += c[1].as_f64().unwrap_or(0.0);
        session = parent_session;
    }
    Ok(total)
}

/// Mouse buttons by name.
pub fn button(name: Option<&str>) -> Result<(&'static str, i64)> {
    Ok(match name.unwrap_or("left") {
        "left" => ("left", 1),
        "right" => ("right", 2),
        "middle" => ("middle", 4),
        other => {
            return Err(Error::bad_request(format!(
                "unknown button {other:?}: use left, right or middle"
            )));
        }
    })
}

/// Moves the mouse to a point of the tab's viewport.
pub async fn mouse_move(page: &Page, x: f64, y: f64, buttons: i64, modifiers: i64) -> Result<()> {
    let mut p =
        json!({"type": "mouseMoved", "x": x, "y": y, "buttons": buttons, "modifiers": modifiers});
    if buttons & 1 != 0 {
        p["button"] = json!("left");
    }
    page.call_or_dialog::<Value>(None, "Input.dispatchMouseEvent", p)
        .await?;
    Ok(())
}

/// Presses and releases a mouse button `count` times at a point (2 = double click).
pub async fn mouse_click(
    page: &Page,
    x: f64,
    y: f64,
    button_name: &str,
    button_bit: i64,
    count: i64,
    modifiers: i64,
) -> Result<()> {
    mouse_move(page, x, y, 0, modifiers).await?;
    for n in 1..=count {
        for kind in ["mousePressed", "mouseReleased"] {
            let buttons = if kind == "mousePressed" {
                button_bit
            } else {
                0
            };
            let r = page
                .call_or_dialog::<Value>(
                    None,
                    "Input.dispatchMouseEvent",
                    json!({"type": kind, "x": x, "y": y, "button": button_name, "buttons": buttons,
                           "clickCount": n, "modifiers": modifiers}),
                )
                .await?;
            if r.is_none() {
                // A dialog opened from the handler; the page waits for it.
                return Ok(());
            }
        }
    }
    Ok(())
}

async fn key_event(
    page: &Page,
    kind: &str,
    def: &KeyDef,
    modifiers: i64,
    with_text: bool,
) -> Result<bool> {
    let mut p = json!({
        "type": kind,
        "key": def.key,
        "code": def.code,
        "windowsVirtualKeyCode": def.key_code,
        "nativeVirtualKeyCode": def.key_code,
        "modifiers": modifiers,
        "location": def.location,
    });
    if with_text && let Some(t) = &def.text {
        p["text"] = json!(t);
        p["unmodifiedText"] = json!(t);
    }
    Ok(page
        .call_or_dialog::<Value>(None, "Input.dispatchKeyEvent", p)
        .await?
        .is_some())
}

/// Presses a chord (`Enter`, `Control+a`) on the focused element.
pub async fn press(page: &Page, chord: &Chord) -> Result<()> {
    let mut held = 0;
    for m in &chord.modifiers {
        held |= match m.key.as_str() {
            "Alt" => keys::ALT,
            "Control" => keys::CONTROL,
            "Meta" => keys::META,
            "Shift" => keys::SHIFT,
            _ => 0,
        };
        key_event(page, "rawKeyDown", m, held, false).await?;
    }
    let bits = chord.bits;
    let down = if chord.key.text.is_some() {
        "keyDown"
    } else {
        "rawKeyDown"
    };
    if key_event(page, down, &chord.key, bits, true).await? {
        key_event(page, "keyUp", &chord.key, bits, false).await?;
    }
    for m in chord.modifiers.iter().rev() {
        held &= !match m.key.as_str() {
            "Alt" => keys::ALT,
            "Control" => keys::CONTROL,
            "Meta" => keys::META,
            "Shift" => keys::SHIFT,
            _ => 0,
        };
        key_event(page, "keyUp", m, held, false).await?;
    }
    Ok(())
}

/// Types text one key at a time, with real key events.
pub async fn type_keys(page: &Page, text: &str) -> Result<()> {
    let shift = keys::key_def("Shift")?.0;
    for c in text.chars() {
        let (def, needs_shift) = keys::char_def(c);
        if def.key_code == 0 {
            // No key makes this character: insert it as text (IME-style).
            page.call::<Value>("Input.insertText", json!({"text": c.to_string()}))
                .await?;
            continue;
        }
        let mods = if needs_shift { keys::SHIFT } else { 0 };
        if needs_shift {
            key_event(page, "rawKeyDown", &shift, keys::SHIFT, false).await?;
        }
        let down = if def.text.is_some() {
            "keyDown"
        } else {
            "rawKeyDown"
        };
        if key_event(page, down, &def, mods, true).await? {
            key_event(page, "keyUp", &def, mods, false).await?;
        } else {
            return Ok(());
        }
        if needs_shift {
            key_event(page, "keyUp", &shift, 0, false).await?;
        }
    }
    Ok(())
}

/// A key definition for `Enter`.
pub fn enter() -> Chord {
    keys::parse_chord("Enter").expect("Enter is a key")
}

/// Resolves a CSS selector in the main frame to exactly one element.
pub async fn by_selector(page: &Page, selector: &str) -> Result<Element> {
    let expr = format!(
        "(() => {{ let l; try {{ l = document.querySelectorAll({sel}); }} catch (e) {{ return 'bad:' + e.message; }} return l.length === 1 ? l[0] : l.length; }})()",
        sel = serde_json::to_string(selector).unwrap_or_default()
    );
    let r: Value = page
        .call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": false}),
        )
        .await?;
    let res = &r["result"];
    if let Some(s) = res["value"].as_str()
        && let Some(msg) = s.strip_prefix("bad:")
    {
        return Err(Error::bad_request(format!(
            "{selector:?} is neither a ref from the snapshot (like e12) nor a valid CSS selector: {msg}"
        )));
    }
    if let Some(n) = res["value"].as_u64() {
        return Err(Error::new(
            codes::NOT_FOUND,
            if n == 0 {
                format!(
                    "no element matches the selector {selector:?}; take a snapshot and use a ref (like e12)"
                )
            } else {
                format!(
                    "the selector {selector:?} matches {n} elements; use a ref from the snapshot (like e12) or a selector that matches one"
                )
            },
        ));
    }
    let object_id = res["objectId"]
        .as_str()
        .ok_or_else(|| Error::new(codes::NOT_FOUND, format!("no element matches {selector:?}")))?;
    Ok(Element {
        session: None,
        object_id: object_id.to_string(),
        label: format!("the element at {selector:?}"),
    })
}
