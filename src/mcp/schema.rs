//! The tool list. Names and arguments follow Playwright MCP where it has the tool;
//! descriptions say exactly what a model needs and nothing more (tokens are the user's
//! money).

use rmcp::model::Tool;
use serde_json::{Value, json};

fn target() -> Value {
    json!({"type": "string", "description": "Ref from the snapshot (e.g. e12) or a CSS selector"})
}

fn element() -> Value {
    json!({"type": "string", "description": "What the element is, for people"})
}

/// Read-only tools observe the page; the others act on it.
#[derive(Clone, Copy)]
enum Kind {
    /// Reads only.
    Read,
    /// Changes the page, but nothing that cannot be redone (navigation, resizing).
    Act,
    /// May change or destroy state (clicks, typing, closing).
    Destroy,
}

fn tool(name: &str, description: &str, kind: Kind, props: Value, required: &[&str]) -> Value {
    let mut schema = json!({"type": "object", "properties": props});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    let annotations = match kind {
        Kind::Read => json!({"readOnlyHint": true, "openWorldHint": true}),
        Kind::Act => {
            json!({"readOnlyHint": false, "destructiveHint": false, "openWorldHint": true})
        }
        Kind::Destroy => {
            json!({"readOnlyHint": false, "destructiveHint": true, "openWorldHint": true})
        }
    };
    json!({"name": name, "description": description, "inputSchema": schema, "annotations": annotations})
}

/// Every tool tabmux offers.
pub fn tools() -> Vec<Tool> {
    use Kind::*;
    let list = vec![
        tool(
            "browser_navigate",
            "Open a URL in the current tab. Returns the page snapshot.",
            Act,
            json!({"url": {"type": "string"}}),
            &["url"],
        ),
        tool(
            "browser_navigate_back",
            "Go back in history.",
            Act,
            json!({}),
            &[],
        ),
        tool(
            "browser_navigate_forward",
            "Go forward in history.",
            Act,
            json!({}),
            &[],
        ),
        tool("browser_reload", "Reload the page.", Act, json!({}), &[]),
        tool(
            "browser_snapshot",
            "Accessibility snapshot of the current tab: one line per element, refs (e12) to act on. Better than a screenshot.",
            Read,
            json!({
                "target": {"type": "string", "description": "Only this ref's subtree"},
                "find": {"type": "string", "description": "Only lines containing this text, with their path"},
                "viewport": {"type": "boolean", "description": "Only what is on screen"},
                "maxChars": {"type": "integer", "description": "Character budget (default 50000; 0 = no limit)"},
                "source": {"type": "string", "enum": ["collector", "ax"], "description": "ax: from the browser's accessibility tree (exact, slower); default collector"}
            }),
            &[],
        ),
        tool(
            "browser_click",
            "Click an element. Answers with what changed on the page.",
            Destroy,
            json!({
                "target": target(), "element": element(),
                "doubleClick": {"type": "boolean"},
                "button": {"type": "string", "enum": ["left", "right", "middle"]},
                "modifiers": {"type": "array", "items": {"type": "string", "enum": ["Alt", "Control", "ControlOrMeta", "Meta", "Shift"]}}
            }),
            &["target"],
        ),
        tool(
            "browser_type",
            "Type text into an editable element, replacing its content.",
            Destroy,
            json!({
                "target": target(), "element": element(),
                "text": {"type": "string"},
                "submit": {"type": "boolean", "description": "Press Enter after"},
                "slowly": {"type": "boolean", "description": "One key at a time (fires key handlers); appends"}
            }),
            &["target", "text"],
        ),
        tool(
            "browser_hover",
            "Move the mouse over an element.",
            Act,
            json!({"target": target(), "element": element()}),
            &["target"],
        ),
        tool(
            "browser_select_option",
            "Select options of a <select> by value or label.",
            Destroy,
            json!({"target": target(), "element": element(), "values": {"type": "array", "items": {"type": "string"}}}),
            &["target", "values"],
        ),
        tool(
            "browser_press_key",
            "Press a key or chord on the focused element, e.g. Enter, ArrowLeft, a, Control+a.",
            Destroy,
            json!({"key": {"type": "string"}}),
            &["key"],
        ),
        tool(
            "browser_fill_form",
            "Fill several fields at once.",
            Destroy,
            json!({"fields": {"type": "array", "items": {"type": "object", "properties": {
                "target": target(),
                "name": {"type": "string"},
                "type": {"type": "string", "enum": ["textbox", "checkbox", "radio", "combobox", "slider"]},
                "value": {"type": "string", "description": "checkbox: true/false; combobox: option label"}
            }, "required": ["target", "type", "value"]}}}),
            &["fields"],
        ),
        tool(
            "browser_drag",
            "Drag one element onto another.",
            Destroy,
            json!({"startTarget": target(), "startElement": element(), "endTarget": target(), "endElement": element()}),
            &["startTarget", "endTarget"],
        ),
        tool(
            "browser_file_upload",
            "Set the files of the open file chooser, or of a file input given as target. No paths cancels the chooser.",
            Destroy,
            json!({
                "paths": {"type": "array", "items": {"type": "string"}, "description": "Absolute file paths"},
                "target": target()
            }),
            &[],
        ),
        tool(
            "browser_handle_dialog",
            "Accept or dismiss the open alert/confirm/prompt dialog.",
            Destroy,
            json!({"accept": {"type": "boolean"}, "promptText": {"type": "string"}}),
            &["accept"],
        ),
        tool(
            "browser_wait_for",
            "Wait for text to appear or disappear, or for a time.",
            Read,
            json!({
                "text": {"type": "string"},
                "textGone": {"type": "string"},
                "time": {"type": "number", "description": "Seconds to wait"},
                "timeout": {"type": "number", "description": "Seconds before giving up (default 10)"}
            }),
            &[],
        ),
        tool(
            "browser_evaluate",
            "Run a JavaScript function on the page, or on an element given as target; returns its JSON result.",
            Destroy,
            json!({
                "function": {"type": "string", "description": "() => {...} or (element) => {...}"},
                "target": target(), "element": element()
            }),
            &["function"],
        ),
        tool(
            "browser_console_messages",
            "Console messages and uncaught errors of the current tab.",
            Read,
            json!({
                "level": {"type": "string", "enum": ["error", "warning", "info", "debug"], "description": "Minimum level (default info)"},
                "all": {"type": "boolean", "description": "Include earlier pages of this tab"}
            }),
            &[],
        ),
        tool(
            "browser_network_requests",
            "Network requests of the current page.",
            Read,
            json!({
                "static": {"type": "boolean", "description": "Include images, fonts, scripts, styles"},
                "filter": {"type": "string", "description": "Only URLs containing this"}
            }),
            &[],
        ),
        tool(
            "browser_take_screenshot",
            "Screenshot of the viewport, the full page or an element. Use browser_snapshot to act.",
            Read,
            json!({
                "type": {"type": "string", "enum": ["png", "jpeg"]},
                "quality": {"type": "integer", "description": "jpeg quality 0-100"},
                "fullPage": {"type": "boolean"},
                "target": target(), "element": element(),
                "filename": {"type": "string", "description": "Also save to this file"}
            }),
            &[],
        ),
        tool(
            "browser_tabs",
            "Your tabs: list, new, select, close (by index). Shared browser: list with all=true shows every tab and its holder; claim takes one by tabId (waits in line while another client holds it; a tab the user opened also waits for the user to click Allow in the browser, so give it time); release gives one back.",
            Destroy,
            json!({
                "action": {"type": "string", "enum": ["list", "new", "select", "close", "claim", "release"]},
                "index": {"type": "integer"},
                "url": {"type": "string", "description": "For new"},
                "all": {"type": "boolean"},
                "tabId": {"type": "string", "description": "For claim"},
                "timeout": {"type": "number", "description": "Claim wait in seconds (default 30)"}
            }),
            &["action"],
        ),
        tool(
            "browser_resize",
            "Resize the viewport.",
            Act,
            json!({"width": {"type": "integer"}, "height": {"type": "integer"}}),
            &["width", "height"],
        ),
        tool(
            "browser_close",
            "Close the browser (or, in a shared browser, your tabs).",
            Destroy,
            json!({}),
            &[],
        ),
    ];
    list.into_iter()
        .map(|v| serde_json::from_value(v).expect("tool definitions are valid"))
        .collect()
}
