//! The CDP `Accessibility.AXNode` shape, as `Accessibility.getFullAXTree` returns it, and
//! its conversion into the source-neutral [`Frame`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Deserialize;
use serde_json::Value;

use super::{Frame, Node, flags};

/// The accessibility tree of one document, as CDP gives it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AxFrame {
    pub nodes: Vec<AxNode>,
    /// As [`Frame::parent`]; the host is named by its backendDOMNodeId.
    pub parent: Option<(usize, i64)>,
}

/// One node of CDP `Accessibility.getFullAXTree`, deserialized straight from CDP JSON.
/// Fields tabmux does not use (`chromeRole`, `ignoredReasons`, `name.sources`, …) are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AxNode {
    pub node_id: String,
    #[serde(default)]
    pub ignored: bool,
    #[serde(default)]
    pub role: Option<AxValue>,
    #[serde(default)]
    pub name: Option<AxValue>,
    #[serde(default)]
    pub description: Option<AxValue>,
    #[serde(default)]
    pub value: Option<AxValue>,
    #[serde(default)]
    pub properties: Vec<AxProperty>,
    #[serde(default)]
    pub child_ids: Vec<String>,
    #[serde(default, rename = "backendDOMNodeId")]
    pub backend_dom_node_id: Option<i64>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub frame_id: Option<String>,
}

/// CDP `Accessibility.AXValue`: a typed value (`role`, `computedString`, `tristate`, …).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AxValue {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub value: Option<Value>,
}

/// CDP `Accessibility.AXProperty`: a named state or relation of a node.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AxProperty {
    pub name: String,
    pub value: AxValue,
}

impl AxValue {
    /// The value as text: strings as they are, numbers and booleans printed; "" otherwise.
    pub fn text(&self) -> String {
        match &self.value {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        }
    }

    fn str(&self) -> &str {
        match &self.value {
            Some(Value::String(s)) => s,
            _ => "",
        }
    }
}

impl AxNode {
    /// The role string (`button`, `StaticText`, `RootWebArea`, …); "" when missing.
    pub fn role(&self) -> &str {
        self.role.as_ref().map_or("", AxValue::str)
    }

    /// The accessible name; "" when missing.
    pub fn name(&self) -> &str {
        self.name.as_ref().map_or("", AxValue::str)
    }

    /// The value of a property, if the node has it.
    pub fn prop(&self, name: &str) -> Option<&Value> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.value.as_ref())
    }

    /// A property read as a boolean: `true`, or the strings "true"/"mixed" for tristates.
    pub fn prop_true(&self, name: &str) -> bool {
        match self.prop(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        }
    }

    /// A string property ("" when absent or not a string).
    pub fn prop_str(&self, name: &str) -> &str {
        match self.prop(name) {
            Some(Value::String(s)) => s,
            _ => "",
        }
    }

    /// A property read as text ("" when absent).
    pub fn prop_text(&self, name: &str) -> String {
        match self.prop(name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        }
    }
}

/// Hashes integer node ids with one multiplication.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i64(&mut self, i: i64) {
        self.0 = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Node id -> position in the frame's node list. CDP node ids are integers in a string;
/// any other id falls back to a map keyed by the string.
enum Index<'a> {
    Numeric(HashMap<i64, u32, BuildHasherDefault<IdHasher>>),
    Text(HashMap<&'a str, u32>),
}

impl<'a> Index<'a> {
    fn new(nodes: &'a [AxNode]) -> Index<'a> {
        let mut map = HashMap::with_capacity_and_hasher(nodes.len(), BuildHasherDefault::default());
        for (i, n) in nodes.iter().enumerate() {
            match n.node_id.parse::<i64>() {
                Ok(id) => {
                    map.insert(id, i as u32);
                }
                Err(_) => {
                    return Index::Text(
                        nodes
                            .iter()
                            .enumerate()
                            .map(|(i, n)| (n.node_id.as_str(), i as u32))
                            .collect(),
                    );
                }
            }
        }
        Index::Numeric(map)
    }

    fn get(&self, id: &str) -> Option<u32> {
        match self {
            Index::Numeric(map) => map.get(&id.parse::<i64>().ok()?).copied(),
            Index::Text(map) => map.get(id).copied(),
        }
    }
}

/// The children of every node, as positions in the frame's node list, found in two linear
/// passes (walking the tree by id lookups would jump around memory for every node).
struct Children {
    start: Vec<u32>,
    list: Vec<u32>,
}

impl Children {
    fn new(nodes: &[AxNode]) -> Children {
        let index = Index::new(nodes);
        let mut start = Vec::with_capacity(nodes.len() + 1);
        let mut list = Vec::with_capacity(nodes.len());
        for n in nodes {
            start.push(list.len() as u32);
            list.extend(n.child_ids.iter().filter_map(|c| index.get(c)));
        }
        start.push(list.len() as u32);
        Children { start, list }
    }

    fn of(&self, i: usize) -> &[u32] {
        &self.list[self.start[i] as usize..self.start[i + 1] as usize]
    }
}

/// Roles as static strings when they are common (no allocation per node).
pub(crate) fn intern(role: &str) -> Cow<'static, str> {
    const COMMON: &[&str] = &[
        "StaticText",
        "InlineTextBox",
        "generic",
        "none",
        "paragraph",
        "link",
        "button",
        "listitem",
        "list",
        "ListMarker",
        "LineBreak",
        "cell",
        "row",
        "heading",
        "textbox",
        "checkbox",
        "radio",
        "combobox",
        "option",
        "MenuListOption",
        "MenuListPopup",
        "image",
        "img",
        "RootWebArea",
        "code",
        "strong",
        "emphasis",
        "group",
        "rowgroup",
        "columnheader",
        "rowheader",
        "table",
        "navigation",
        "main",
        "banner",
        "contentinfo",
        "LabelText",
        "DisclosureTriangle",
        "Details",
        "term",
        "definition",
        "DescriptionList",
        "Iframe",
        "gridcell",
        "tab",
        "menuitem",
        "region",
        "article",
        "section",
        "Section",
        "Pre",
        "separator",
        "slider",
        "spinbutton",
        "searchbox",
        "listbox",
        "dialog",
        "form",
        "complementary",
        "figure",
        "Figcaption",
        "blockquote",
        "time",
        "mark",
        "Abbr",
        "presentation",
        "status",
        "alert",
        "SvgRoot",
        "graphics-document",
        "Canvas",
    ];
    match COMMON.iter().find(|c| **c == role) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(role.to_string()),
    }
}

/// The flags of an AX node.
fn node_flags(ax: &AxNode) -> u32 {
    let mut f = 0;
    let mut set = |cond: bool, bit: u32| {
        if cond {
            f |= bit;
        }
    };
    set(ax.ignored, flags::IGNORED);
    set(ax.prop_true("focusable"), flags::FOCUSABLE);
    set(ax.prop("editable").is_some(), flags::EDITABLE);
    match ax.prop_str("checked") {
        "true" => set(true, flags::CHECKED),
        "mixed" => set(true, flags::MIXED),
        _ => {}
    }
    match ax.prop_str("pressed") {
        "true" => set(true, flags::PRESSED),
        "mixed" => set(true, flags::PRESSED_MIXED),
        _ => {}
    }
    set(ax.prop_true("selected"), flags::SELECTED);
    match ax.prop("expanded") {
        Some(Value::Bool(true)) => set(true, flags::EXPANDED),
        Some(Value::Bool(false)) => set(true, flags::COLLAPSED),
        _ => {}
    }
    set(ax.prop_true("disabled"), flags::DISABLED);
    set(ax.prop_true("required"), flags::REQUIRED);
    set(ax.prop_true("readonly"), flags::READONLY);
    let invalid = ax.prop_str("invalid");
    set(!invalid.is_empty() && invalid != "false", flags::INVALID);
    set(ax.prop_true("focused"), flags::FOCUSED);
    set(ax.prop_true("modal"), flags::MODAL);
    set(ax.prop_true("multiselectable"), flags::MULTISELECTABLE);
    set(ax.prop_true("busy"), flags::BUSY);
    f
}

/// The value to show: a range's value text (or number, with its ends for a slider), or
/// the plain value.
fn node_value(ax: &AxNode, role: &str) -> String {
    let plain = || match ax.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    match role {
        "slider" | "spinbutton" | "progressbar" | "meter" | "scrollbar" => {
            let t = ax.prop_str("valuetext");
            let mut v = if t.is_empty() { plain() } else { t.to_string() };
            if role == "slider" {
                let (lo, hi) = (ax.prop_text("valuemin"), ax.prop_text("valuemax"));
                if !lo.is_empty() && !hi.is_empty() {
                    v.push_str(&format!(" ({lo}..{hi})"));
                }
            }
            v
        }
        _ => plain(),
    }
}

fn convert(ax: &AxNode) -> Node {
    let role = intern(ax.role());
    let value = node_value(ax, &role);
    Node {
        id: ax.backend_dom_node_id,
        name: ax.name().to_string(),
        value,
        url: if matches!(ax.role(), "link" | "RootWebArea" | "WebArea") {
            ax.prop_text("url")
        } else {
            String::new()
        },
        level: ax.prop("level").and_then(Value::as_u64).unwrap_or(0) as u32,
        flags: node_flags(ax),
        end: 0,
        role,
    }
}

/// Converts one document's accessibility tree into a [`Frame`]: the nodes reachable from
/// the root, in document order, each once.
pub fn frame_from_ax(nodes: &[AxNode], parent: Option<(usize, i64)>) -> Frame {
    let mut frame = Frame {
        nodes: Vec::with_capacity(nodes.len()),
        parent,
        url: String::new(),
    };
    let Some(root) = nodes
        .iter()
        .position(|n| n.parent_id.is_none())
        .or((!nodes.is_empty()).then_some(0))
    else {
        return frame;
    };
    let kids = Children::new(nodes);
    let mut seen = vec![false; nodes.len()];
    // (AX index, or u32::MAX + position to close) on an explicit stack: trees can be deep.
    enum Step {
        Open(u32),
        Close(usize),
    }
    let mut stack = vec![Step::Open(root as u32)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Close(at) => frame.nodes[at].end = frame.nodes.len() as u32,
            Step::Open(i) => {
                let i = i as usize;
                if seen[i] {
                    continue;
                }
                seen[i] = true;
                let at = frame.nodes.len();
                frame.nodes.push(convert(&nodes[i]));
                stack.push(Step::Close(at));
                for &c in kids.of(i).iter().rev() {
                    if !seen[c as usize] {
                        stack.push(Step::Open(c));
                    }
                }
            }
        }
    }
    frame.url = frame
        .nodes
        .first()
        .map(|n| n.url.clone())
        .unwrap_or_default();
    frame
}

/// Converts the accessibility trees of a tab's documents.
pub fn frames_from_ax(frames: &[AxFrame]) -> Vec<Frame> {
    frames
        .iter()
        .map(|f| frame_from_ax(&f.nodes, f.parent))
        .collect()
}
