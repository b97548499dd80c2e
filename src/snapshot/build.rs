//! From the frames' nodes to a small tree of output nodes.
//!
//! `build` walks the frames once, iteratively, in document order, and turns each node
//! into one output node (an element line, a text run, or a transparent wrapper) or into
//! nothing. `finalize` then runs once over that tree, children before parents, and removes
//! the noise: it dissolves wrappers, merges text runs, drops text that repeats a name,
//! folds list markers and simple table rows into their line, and hoists lone children.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::{Frame, Node as Src, Options, flags};

/// Deepest nesting of output nodes; deeper content is attached at this depth (nothing is
/// lost, only indentation), so no pass over the tree can run out of stack.
pub(crate) const MAX_DEPTH: u32 = 120;
/// Names and values longer than this are shortened.
const MAX_NAME: usize = 200;
const MAX_VALUE: usize = 300;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// An element with a line of its own.
    Line,
    /// A run of page text.
    Text,
    /// A wrapper without a line: its children take its place (and text does not merge
    /// across it).
    Pass,
    /// A table cell: a wrapper, unless its row becomes one line.
    Cell,
    /// A list item: becomes a line that starts with its bullet.
    Item,
    /// Removed.
    Dead,
}

pub(crate) struct Node<'a> {
    pub kind: Kind,
    /// The CDP role.
    pub ax_role: &'a str,
    /// Text of a run.
    pub text: Cow<'a, str>,
    /// A text run that must not merge with its neighbours (it came out of a block).
    pub sealed: bool,
    /// Text runs: already normalized.
    pub normalized: bool,
    /// Text runs: some part came from a DOM node (not only from CSS generated content).
    pub from_dom: bool,
    /// The line took over a list item's bullet.
    pub item_head: bool,
    /// A text run that is a description list term: the description joins it after ": ".
    pub term: bool,
    pub refable: bool,
    /// Selected by `Options::only`.
    pub sel: bool,
    pub depth: u32,
    pub up: u32,
    pub src: Option<(usize, i64)>,
    pub children: Vec<u32>,
    /// What only lines have (most nodes of a big page are text runs, which go without).
    line: Option<Box<LineParts<'a>>>,
}

/// The parts of an element's line.
#[derive(Default)]
pub(crate) struct LineParts<'a> {
    /// The word printed for the role ("" for a list item that holds text).
    pub role: Cow<'a, str>,
    pub name: Cow<'a, str>,
    /// States, each preceded by a space.
    pub states: String,
    /// Printed after ": ".
    pub value: Cow<'a, str>,
    /// List bullet ("-", "1.").
    pub prefix: Cow<'a, str>,
    /// Text a list item shows after its bullet.
    pub lead: Cow<'a, str>,
}

static NO_PARTS: LineParts<'static> = LineParts {
    role: Cow::Borrowed(""),
    name: Cow::Borrowed(""),
    states: String::new(),
    value: Cow::Borrowed(""),
    prefix: Cow::Borrowed(""),
    lead: Cow::Borrowed(""),
};

impl<'a> Node<'a> {
    fn new(kind: Kind, up: u32, depth: u32) -> Node<'a> {
        Node {
            kind,
            ax_role: "",
            text: Cow::Borrowed(""),
            sealed: false,
            normalized: false,
            from_dom: false,
            item_head: false,
            term: false,
            refable: false,
            sel: false,
            depth,
            up,
            src: None,
            children: Vec::new(),
            line: None,
        }
    }

    /// The line's parts (all empty for a node without any).
    pub fn x(&self) -> &LineParts<'a> {
        self.line.as_deref().unwrap_or(&NO_PARTS)
    }

    /// The line's parts, to change.
    pub fn xm(&mut self) -> &mut LineParts<'a> {
        self.line.get_or_insert_with(Box::default)
    }
}

pub(crate) struct Tree<'a> {
    pub nodes: Vec<Node<'a>>,
    /// `Options::only` was given.
    pub filtered: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Dropped with its subtree.
    Drop,
    /// A list marker: gives its bullet to the list item.
    Marker,
    Text,
    Break,
    /// Inline text semantics (`strong`, `time`, …): the text flows into the parent.
    Inline,
    Pass,
    /// A wrapper unless it has a name.
    PassUnlessNamed,
    Cell,
    Item,
    Element,
}

fn classify(role: &str) -> Class {
    match role {
        "InlineTextBox" => Class::Drop,
        "ListMarker" => Class::Marker,
        "StaticText" => Class::Text,
        "LineBreak" => Class::Break,
        "emphasis" | "strong" | "time" | "mark" | "code" | "subscript" | "superscript"
        | "insertion" | "deletion" | "Abbr" | "abbr" | "Ruby" | "RubyAnnotation" => Class::Inline,
        "generic"
        | "none"
        | "presentation"
        | "paragraph"
        | "LabelText"
        | "Legend"
        | "Figcaption"
        | "caption"
        | "rowgroup"
        | "MenuListPopup"
        | "Pre"
        | "RootWebArea"
        | "WebArea"
        | "Unknown"
        | "blockquote"
        | "Section"
        | "SectionWithoutName"
        | "Div"
        | "Span"
        | "Label"
        | "DescriptionListTerm"
        | "DescriptionListDetail"
        | "term"
        | "definition"
        | "" => Class::Pass,
        "group" | "article" | "figure" | "list" | "region" | "section" | "Details"
        | "DescriptionList" | "directory" | "note" | "document" | "Canvas"
        | "graphics-document" | "SvgRoot" => Class::PassUnlessNamed,
        "cell" | "gridcell" | "columnheader" | "rowheader" => Class::Cell,
        "listitem" => Class::Item,
        _ => Class::Element,
    }
}

/// Roles a model acts on: they always get a ref.
pub(super) fn interactive(role: &str) -> bool {
    matches!(
        role,
        "button"
            | "link"
            | "textbox"
            | "searchbox"
            | "checkbox"
            | "radio"
            | "combobox"
            | "listbox"
            | "option"
            | "slider"
            | "spinbutton"
            | "switch"
            | "tab"
            | "menuitem"
            | "menuitemcheckbox"
            | "menuitemradio"
            | "treeitem"
            | "DisclosureTriangle"
            | "Date"
            | "DateTime"
            | "InputTime"
            | "ColorWell"
            | "scrollbar"
            | "PopUpButton"
            | "ToggleButton"
            | "MenuListOption"
    )
}

/// Roles whose children are browser internals (or an image): their subtree is skipped.
fn leaf(role: &str) -> bool {
    matches!(
        role,
        "image"
            | "img"
            | "Date"
            | "DateTime"
            | "InputTime"
            | "ColorWell"
            | "slider"
            | "progressbar"
            | "meter"
            | "scrollbar"
            | "math"
            | "separator"
    )
}

/// Roles whose accessible name is their content: text inside that the name covers is noise.
fn name_from_content(role: &str) -> bool {
    matches!(
        role,
        "button"
            | "link"
            | "heading"
            | "tab"
            | "menuitem"
            | "menuitemcheckbox"
            | "menuitemradio"
            | "option"
            | "treeitem"
            | "checkbox"
            | "radio"
            | "switch"
            | "DisclosureTriangle"
            | "tooltip"
            | "row"
            | "cell"
            | "gridcell"
            | "columnheader"
            | "rowheader"
            | "ToggleButton"
            | "MenuListOption"
    )
}

/// Roles whose text content is their value, already shown after ": ".
fn value_holder(role: &str) -> bool {
    matches!(role, "textbox" | "searchbox" | "spinbutton" | "combobox")
}

/// Containers that keep their line even when unnamed with a single child.
fn keeps_line(role: &str) -> bool {
    matches!(
        role,
        "banner"
            | "navigation"
            | "main"
            | "contentinfo"
            | "complementary"
            | "search"
            | "form"
            | "region"
            | "dialog"
            | "alertdialog"
            | "alert"
            | "status"
            | "log"
            | "marquee"
            | "timer"
            | "table"
            | "grid"
            | "treegrid"
            | "row"
            | "tabpanel"
            | "figure"
            | "Iframe"
            | "IframePresentational"
    )
}

/// Roles that stay without content.
fn keeps_when_empty(role: &str, named: bool) -> bool {
    match role {
        "heading" | "Iframe" | "IframePresentational" => true,
        "image" | "img" | "math" | "Canvas" | "SvgRoot" | "Video" | "Audio" | "video" | "audio"
        | "EmbeddedObject" | "PluginObject" | "progressbar" | "meter" => named,
        _ => false,
    }
}

fn role_word(role: &str) -> Cow<'_, str> {
    Cow::Borrowed(match role {
        "navigation" => "nav",
        "banner" => "header",
        "contentinfo" => "footer",
        "complementary" => "aside",
        "image" | "img" | "SvgRoot" | "graphics-document" => "img",
        "Iframe" | "IframePresentational" => "iframe",
        "DisclosureTriangle" => "summary",
        "Date" => "date",
        "DateTime" => "datetime",
        "InputTime" => "time",
        "ColorWell" => "color",
        "PopUpButton" => "combobox",
        "ToggleButton" => "button",
        "MenuListOption" => "option",
        "EmbeddedObject" | "PluginObject" => "object",
        "generic" | "none" | "presentation" | "Div" | "Span" | "" => "generic",
        other if other.bytes().any(|b| b.is_ascii_uppercase()) => {
            return Cow::Owned(other.to_ascii_lowercase());
        }
        other => other,
    })
}

fn heading_word(n: &Src) -> Cow<'static, str> {
    match n.level {
        l @ 1..=6 => Cow::Borrowed(["h1", "h2", "h3", "h4", "h5", "h6"][l as usize - 1]),
        0 => Cow::Borrowed("heading"),
        l => Cow::Owned(format!("h{l}")),
    }
}

/// Collapses white space (keeping line breaks as '\n'), trims each line, drops empty lines.
pub(crate) fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.split('\n') {
        let mut first = true;
        for word in line.split(|c: char| c.is_whitespace()) {
            if word.is_empty() {
                continue;
            }
            if first {
                if !out.is_empty() {
                    out.push('\n');
                }
                first = false;
            } else {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

/// A comparison key: lower case, single spaces, no trailing colon.
fn key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(|c: char| c.is_whitespace()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        if word.is_ascii() {
            let at = out.len();
            out.push_str(word);
            out[at..].make_ascii_lowercase();
        } else {
            for c in word.chars() {
                out.extend(c.to_lowercase());
            }
        }
    }
    let trimmed = out.trim_end_matches([':', ' ']).len();
    out.truncate(trimmed);
    out
}

/// The length of `key(s)` without making it, for an ASCII `s` (None otherwise: lower
/// case may change the length of other text).
fn ascii_key_len(s: &str) -> Option<usize> {
    if !s.is_ascii() {
        return None;
    }
    // (The ASCII characters char::is_whitespace takes.)
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let (mut len, mut kept, mut gap) = (0, 0, false);
    for &b in s.as_bytes() {
        if space(b) {
            gap = true;
            continue;
        }
        if gap && len > 0 {
            len += 1;
        }
        gap = false;
        len += 1;
        if b != b':' {
            kept = len;
        }
    }
    Some(kept)
}

/// Shortens to at most `max` characters, marking the cut.
pub(crate) fn shorten(s: &mut Cow<'_, str>, max: usize) {
    if s.len() <= max {
        return;
    }
    if let Some((at, _)) = s.char_indices().nth(max) {
        let rest = s[at..].chars().count();
        let s = s.to_mut();
        s.truncate(at);
        s.push_str(&format!("…(+{rest} chars)"));
    }
}

/// True when `normalize` would not change `s`.
fn is_normal(s: &str) -> bool {
    if s.is_ascii() {
        let b = s.as_bytes();
        return b.first() != Some(&b' ')
            && b.last() != Some(&b' ')
            && !b.windows(2).any(|w| w == b"  ")
            && !b
                .iter()
                .any(|&c| c != b' ' && char::from(c).is_whitespace());
    }
    let mut prev_space = true;
    for c in s.chars() {
        if c == ' ' {
            if prev_space {
                return false;
            }
            prev_space = true;
        } else if c.is_whitespace() {
            return false;
        } else {
            prev_space = false;
        }
    }
    !prev_space || s.is_empty()
}

fn normalized(s: Cow<'_, str>) -> Cow<'_, str> {
    if is_normal(&s) {
        s
    } else {
        Cow::Owned(normalize(&s))
    }
}

/// Text made only of list bullets, separators or punctuation: CSS generated content like
/// "◦ ", or the "." and " · " left between links.
fn decoration(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_whitespace()
            || matches!(
                c,
                '.' | ','
                    | ';'
                    | ':'
                    | '•'
                    | '◦'
                    | '▪'
                    | '▫'
                    | '‣'
                    | '⁃'
                    | '∙'
                    | '·'
                    | '■'
                    | '□'
                    | '●'
                    | '○'
                    | '◆'
                    | '◇'
                    | '-'
                    | '–'
                    | '—'
                    | '*'
                    | '|'
                    | '/'
                    | '>'
                    | '›'
                    | '»'
            )
    })
}

fn states(n: &Src, role: &str) -> String {
    let mut s = String::new();
    let words: [(u32, &str); 8] = [
        (flags::CHECKED, " checked"),
        (flags::MIXED, " mixed"),
        (flags::PRESSED, " pressed"),
        (flags::PRESSED_MIXED, " pressed=mixed"),
        (flags::SELECTED, " selected"),
        (flags::EXPANDED, " expanded"),
        (flags::COLLAPSED, " collapsed"),
        (flags::DISABLED, " disabled"),
    ];
    for (bit, word) in words {
        if n.has(bit) && !(bit == flags::COLLAPSED && role == "combobox") {
            s.push_str(word);
        }
    }
    for (bit, word) in [
        (flags::REQUIRED, " required"),
        (flags::READONLY, " readonly"),
        (flags::INVALID, " invalid"),
    ] {
        if n.has(bit) {
            s.push_str(word);
        }
    }
    if n.has(flags::FOCUSED) && role != "RootWebArea" && role != "WebArea" {
        s.push_str(" focused");
    }
    for (bit, word) in [
        (flags::MODAL, " modal"),
        (flags::MULTISELECTABLE, " multiselectable"),
        (flags::BUSY, " busy"),
    ] {
        if n.has(bit) {
            s.push_str(word);
        }
    }
    s
}

fn value(n: &Src) -> Cow<'_, str> {
    let mut v = Cow::Borrowed(n.value.as_str());
    if v.contains(['\n', '\r']) {
        v = Cow::Owned(v.replace("\r\n", "\n").replace(['\n', '\r'], "\\n"));
    }
    shorten(&mut v, MAX_VALUE);
    v
}

/// A link target for display: path only when it shares the frame's origin.
fn short_url(url: &str, base: &str) -> String {
    fn origin(u: &str) -> Option<&str> {
        let scheme_end = u.find("://")? + 3;
        let end = u[scheme_end..]
            .find('/')
            .map_or(u.len(), |i| scheme_end + i);
        Some(&u[..end])
    }
    let mut out = Cow::Borrowed(match (origin(url), origin(base)) {
        (Some(a), Some(b)) if a == b && url.len() > a.len() => &url[a.len()..],
        _ => url,
    });
    shorten(&mut out, 100);
    out.into_owned()
}

struct Visit {
    frame: usize,
    idx: u32,
    parent: u32,
    /// Backend id of the nearest AX ancestor that has one.
    raw_parent: Option<i64>,
}

fn frame_root(f: &Frame) -> Option<usize> {
    (!f.nodes.is_empty()).then_some(0)
}

/// Frames by the element that hosts them: (parent frame, owner backend id) → child frames.
fn hosted_frames(frames: &[Frame]) -> HashMap<(usize, i64), Vec<usize>> {
    let mut hosted: HashMap<(usize, i64), Vec<usize>> = HashMap::new();
    for (i, f) in frames.iter().enumerate() {
        if let Some((p, owner)) = f.parent
            && p < frames.len()
            && p != i
        {
            hosted.entry((p, owner)).or_default().push(i);
        }
    }
    hosted
}

/// The frame and node index the walk starts at: `Options::root`, or the first frame's root.
fn start_node(frames: &[Frame], opts: &Options) -> Option<(usize, usize)> {
    Some(match opts.root {
        Some((f, b)) => {
            let frame = frames.get(f)?;
            let i = frame.nodes.iter().position(|n| n.id == Some(b))?;
            (f, i)
        }
        None => (0, frame_root(frames.first()?)?),
    })
}

fn in_set(set: Option<&HashSet<(usize, i64)>>, f: usize, b: Option<i64>) -> bool {
    match (set, b) {
        (Some(set), Some(b)) => set.contains(&(f, b)),
        _ => false,
    }
}

/// A node gets a ref when it has a backend id, is not ignored, and is interactive,
/// clickable, or focusable (documents, frames and text excepted).
fn is_refable(ax: &Src, role: &str, click: bool) -> bool {
    ax.id.is_some()
        && !ax.has(flags::IGNORED)
        && (interactive(role)
            || click
            || (ax.has(flags::FOCUSABLE)
                && !matches!(
                    role,
                    "RootWebArea"
                        | "WebArea"
                        | "Iframe"
                        | "IframePresentational"
                        | "StaticText"
                        | "InlineTextBox"
                )))
}

/// What the node becomes: ignored nodes are wrappers (their text is dropped), a node with
/// a ref is an element, and a container is an element only when it has a name.
fn node_class(ax: &Src, role: &str, refable: bool) -> Class {
    let mut class = if ax.has(flags::IGNORED) {
        match role {
            "InlineTextBox" => Class::Drop,
            "StaticText" | "LineBreak" => Class::Drop,
            _ => Class::Pass,
        }
    } else {
        classify(role)
    };
    if refable
        && !matches!(
            class,
            Class::Drop | Class::Marker | Class::Text | Class::Break
        )
    {
        class = Class::Element;
    }
    if class == Class::PassUnlessNamed {
        class = if ax.name.trim().is_empty() {
            Class::Pass
        } else {
            Class::Element
        };
    }
    class
}

/// The word, name, states and value of an element's line. `base` is the frame's URL when
/// links show their targets.
fn element_line<'a>(n: &mut Node<'a>, ax: &'a Src, click: bool, base: Option<&str>) {
    let role: &'a str = &ax.role;
    n.ax_role = role;
    let x = n.xm();
    x.role = if role == "heading" {
        heading_word(ax)
    } else if matches!(role, "generic" | "none" | "presentation" | "") {
        Cow::Borrowed(if click {
            "clickable"
        } else if ax.has(flags::EDITABLE) {
            "editable"
        } else {
            "generic"
        })
    } else {
        role_word(role)
    };
    x.name = normalized(Cow::Borrowed(&ax.name));
    if x.name.contains('\n') {
        x.name = Cow::Owned(x.name.replace('\n', " "));
    }
    shorten(&mut x.name, MAX_NAME);
    x.states = states(ax, role);
    if let Some(base) = base
        && role == "link"
        && !ax.url.is_empty()
    {
        x.states.push_str(" -> ");
        x.states.push_str(&short_url(&ax.url, base));
    }
    x.value = value(ax);
    if x.value == x.name {
        x.value = Cow::Borrowed("");
    }
}

/// The walk's pending nodes, and which frames it has entered.
struct Walk<'a> {
    frames: &'a [Frame],
    hosted: HashMap<(usize, i64), Vec<usize>>,
    frame_entered: Vec<bool>,
    stack: Vec<Visit>,
}

impl Walk<'_> {
    /// Queues what comes below the node `v` (output container `container`): the documents
    /// of the frames it hosts, which replace its own children, or else its children unless
    /// `leaf`. They go on the stack in reverse, so they come off in document order.
    fn descend(&mut self, v: &Visit, container: u32, leaf: bool) {
        let fi = v.frame;
        let i = v.idx as usize;
        let backend = self.frames[fi].nodes[i].id;
        let hosts: &[usize] = match backend {
            Some(b) if !self.hosted.is_empty() => {
                self.hosted.get(&(fi, b)).map_or(&[], Vec::as_slice)
            }
            _ => &[],
        };
        let mut hosting = false;
        for &cf in hosts.iter().rev() {
            if self.frame_entered[cf] {
                continue;
            }
            if let Some(r) = frame_root(&self.frames[cf]) {
                self.frame_entered[cf] = true;
                hosting = true;
                self.stack.push(Visit {
                    frame: cf,
                    idx: r as u32,
                    parent: container,
                    raw_parent: None,
                });
            }
        }
        if hosting || leaf {
            return;
        }
        let raw_parent = backend.or(v.raw_parent);
        let first = self.stack.len();
        for ci in self.frames[fi].children(i) {
            self.stack.push(Visit {
                frame: fi,
                idx: ci as u32,
                parent: container,
                raw_parent,
            });
        }
        self.stack[first..].reverse();
    }
}

/// Builds the output tree; None when there is nothing to render (no frames, or `root` is
/// not in the tree).
pub(crate) fn build<'a>(frames: &'a [Frame], opts: &Options) -> Option<Tree<'a>> {
    let (start_frame, start_idx) = start_node(frames, opts)?;
    let only: Option<&HashSet<(usize, i64)>> = opts.only.as_ref();
    let clickable: Option<&HashSet<(usize, i64)>> = opts.clickable.as_ref();

    let mut nodes = Vec::with_capacity(frames.iter().map(|f| f.nodes.len()).sum::<usize>() + 1);
    nodes.push(Node::new(Kind::Pass, 0, 0));
    let mut walk = Walk {
        frames,
        hosted: hosted_frames(frames),
        frame_entered: vec![false; frames.len()],
        stack: vec![Visit {
            frame: start_frame,
            idx: start_idx as u32,
            parent: 0,
            raw_parent: None,
        }],
    };
    walk.frame_entered[start_frame] = true;

    while let Some(v) = walk.stack.pop() {
        let fi = v.frame;
        let ax = &frames[fi].nodes[v.idx as usize];
        let role: &str = &ax.role;
        let backend = ax.id;

        // Deep trees: attach at the depth cap instead of nesting further.
        let mut parent = v.parent;
        while nodes[parent as usize].depth >= MAX_DEPTH {
            parent = nodes[parent as usize].up;
        }
        let depth = nodes[parent as usize].depth + 1;

        let click = in_set(clickable, fi, backend) || ax.has(flags::CLICKABLE);
        let refable = is_refable(ax, role, click);
        let class = node_class(ax, role, refable);

        let me = nodes.len() as u32;
        let mut container = parent;
        match class {
            Class::Drop => continue,
            Class::Marker => {
                let p = &mut nodes[parent as usize];
                if p.kind == Kind::Item {
                    let m = ax.name.trim();
                    if m.chars().any(char::is_alphanumeric) {
                        p.xm().prefix = Cow::Borrowed(m);
                    }
                }
                continue;
            }
            Class::Text | Class::Break => {
                let mut n = Node::new(Kind::Text, parent, depth);
                n.text = Cow::Borrowed(if class == Class::Break {
                    "\n"
                } else {
                    &ax.name
                });
                n.from_dom = backend.is_some() && class == Class::Text;
                n.sel = in_set(only, fi, backend) || in_set(only, fi, v.raw_parent);
                nodes.push(n);
                nodes[parent as usize].children.push(me);
                continue;
            }
            Class::Inline => {}
            Class::Pass | Class::PassUnlessNamed | Class::Cell | Class::Item => {
                let kind = match class {
                    Class::Cell => Kind::Cell,
                    Class::Item => Kind::Item,
                    _ => Kind::Pass,
                };
                let mut n = Node::new(kind, parent, depth);
                n.xm().prefix = Cow::Borrowed(if kind == Kind::Item { "-" } else { "" });
                n.src = backend.map(|b| (fi, b));
                n.ax_role = role;
                n.sel = in_set(only, fi, backend);
                nodes.push(n);
                nodes[parent as usize].children.push(me);
                container = me;
            }
            Class::Element => {
                let mut n = Node::new(Kind::Line, parent, depth);
                let base = opts.link_urls.then(|| frames[fi].url.as_str());
                element_line(&mut n, ax, click, base);
                n.src = backend.map(|b| (fi, b));
                n.refable = refable;
                n.sel = in_set(only, fi, backend);
                nodes.push(n);
                nodes[parent as usize].children.push(me);
                container = me;
            }
        }

        walk.descend(&v, container, class == Class::Element && leaf(role));
    }
    Some(Tree {
        nodes,
        filtered: only.is_some(),
    })
}

impl<'a> Tree<'a> {
    fn kind(&self, n: u32) -> Kind {
        self.nodes[n as usize].kind
    }

    fn open_text(&self, n: u32) -> bool {
        let node = &self.nodes[n as usize];
        node.kind == Kind::Text && !node.sealed
    }

    /// Moves a wrapper's children into `out`; its text runs stay apart from their new
    /// neighbours.
    fn splice(&mut self, wrapper: u32, out: &mut Vec<u32>) {
        let kids = std::mem::take(&mut self.nodes[wrapper as usize].children);
        let term = matches!(
            self.nodes[wrapper as usize].ax_role,
            "term" | "DescriptionListTerm"
        ) && kids.len() == 1;
        for &g in &kids {
            let gn = &mut self.nodes[g as usize];
            if gn.kind == Kind::Text {
                gn.sealed = true;
                gn.term = term;
            }
        }
        out.extend(kids);
        self.nodes[wrapper as usize].kind = Kind::Dead;
    }

    fn kill(&mut self, n: u32) {
        self.nodes[n as usize].kind = Kind::Dead;
    }

    /// Cleans every node, children first (nodes are stored in document order, so a node's
    /// descendants always come after it).
    pub(crate) fn finalize(&mut self) {
        for n in (0..self.nodes.len() as u32).rev() {
            match self.kind(n) {
                Kind::Text | Kind::Dead => {}
                _ => self.finalize_node(n),
            }
        }
    }

    fn finalize_node(&mut self, n: u32) {
        let kind = self.kind(n);
        let ax_role = std::mem::take(&mut self.nodes[n as usize].ax_role);
        let is_row = kind == Kind::Line && ax_role == "row";

        // 1. Dissolve wrappers.
        let eff = self.dissolve_wrappers(n, is_row);

        // 2. Merge adjacent text runs; drop empty ones and decoration.
        let mut kids = self.merge_text(eff);

        // 3. Text that repeats a name: this element's, or a neighbouring field's (its label).
        self.drop_repeated_names(n, kind, ax_role, &mut kids);

        // 3b. A closed <select> lists its options on its own line, without refs: the
        // options of a closed select cannot be clicked, and browser_select_option takes
        // their labels. (A 1,000-row table with a select per row saves 2,000 lines.)
        if kind == Kind::Line
            && matches!(ax_role, "combobox" | "PopUpButton")
            && self.is_closed_select(n, &kids)
        {
            self.fold_options(n, &mut kids);
        }

        // 4. Rows of plain cells become one line.
        if is_row {
            self.flatten_row(n, &mut kids);
        }

        // 5. A list item takes its first line (or text) after its bullet.
        if kind == Kind::Item {
            self.finish_item(n, ax_role, kids);
            return;
        }

        // 6. An element that holds nothing but one text run shows it as its value.
        if kind == Kind::Line {
            self.lone_text_as_value(n, &mut kids);
        }

        // 7. Drop empty containers; hoist the lone child of an unnamed one.
        self.settle(n, kind, ax_role, kids);
    }

    /// Step 1: the node's live children, with wrappers (and, outside a row, cells)
    /// replaced by their own children.
    fn dissolve_wrappers(&mut self, n: u32, is_row: bool) -> Vec<u32> {
        let kids = std::mem::take(&mut self.nodes[n as usize].children);
        let mut eff: Vec<u32> = Vec::with_capacity(kids.len());
        for c in kids {
            match self.kind(c) {
                Kind::Dead => {}
                Kind::Pass => self.splice(c, &mut eff),
                Kind::Cell if !is_row => self.splice(c, &mut eff),
                _ => eff.push(c),
            }
        }
        eff
    }

    /// Step 2: joins a description to its term, merges adjacent open text runs, then
    /// normalizes the runs and drops empty ones and decoration.
    fn merge_text(&mut self, eff: Vec<u32>) -> Vec<u32> {
        let mut kids: Vec<u32> = Vec::with_capacity(eff.len());
        for c in eff {
            if let Some(&last) = kids.last()
                && self.nodes[last as usize].term
                && self.kind(c) == Kind::Text
                && self.nodes[c as usize].sealed
                && !self.nodes[c as usize].text.contains('\n')
            {
                self.join_description(last, c);
                continue;
            }
            if self.open_text(c)
                && let Some(&last) = kids.last()
                && self.open_text(last)
            {
                self.append_text(last, c);
                continue;
            }
            kids.push(c);
        }
        kids.retain(|&c| {
            let cn = &mut self.nodes[c as usize];
            if cn.kind != Kind::Text {
                return true;
            }
            if !cn.normalized {
                cn.text = normalized(std::mem::take(&mut cn.text));
                cn.normalized = true;
            }
            let keep = !cn.text.is_empty()
                && !(decoration(&cn.text) && (!cn.from_dom || cn.text.chars().count() <= 3));
            if !keep {
                cn.kind = Kind::Dead;
            }
            keep
        });
        kids
    }

    /// Appends the description run `c` to the term run `last` after ": ".
    fn join_description(&mut self, last: u32, c: u32) {
        let (t, sel) = {
            let cn = &mut self.nodes[c as usize];
            (std::mem::take(&mut cn.text), cn.sel)
        };
        let ln = &mut self.nodes[last as usize];
        let joined = ln.text.to_mut();
        joined.push_str(": ");
        joined.push_str(&t);
        ln.sel |= sel;
        ln.term = false;
        self.kill(c);
    }

    /// Appends the text run `c` to the run `last`.
    fn append_text(&mut self, last: u32, c: u32) {
        let (t, sel, dom) = {
            let cn = &mut self.nodes[c as usize];
            (std::mem::take(&mut cn.text), cn.sel, cn.from_dom)
        };
        let ln = &mut self.nodes[last as usize];
        ln.text.to_mut().push_str(&t);
        ln.sel |= sel;
        ln.from_dom |= dom;
        self.kill(c);
    }

    /// Step 3: removes text (and unnamed images) that repeat the element's name, text that
    /// repeats a sibling field's name, and the text inside a value holder.
    fn drop_repeated_names(&mut self, n: u32, kind: Kind, ax_role: &str, kids: &mut Vec<u32>) {
        let texts = kids.iter().any(|&c| self.kind(c) == Kind::Text);
        let leaves = kids.iter().any(|&c| {
            let cn = &self.nodes[c as usize];
            cn.kind == Kind::Line && cn.children.is_empty() && !cn.refable
        });
        let name_key = if kind == Kind::Line && (texts || leaves) {
            key(&self.nodes[n as usize].x().name)
        } else {
            String::new()
        };
        let from_content = name_from_content(ax_role);
        let sibling_names: HashSet<String> = if texts {
            kids.iter()
                .filter(|&&c| {
                    let cn = &self.nodes[c as usize];
                    cn.kind == Kind::Line && cn.refable && !cn.x().name.is_empty()
                })
                .map(|&c| key(&self.nodes[c as usize].x().name))
                .collect()
        } else {
            HashSet::new()
        };
        let holds_value = kind == Kind::Line && value_holder(ax_role);
        // The key lengths a text could repeat: most texts are told apart by length alone.
        let sibling_lens: Vec<usize> = sibling_names.iter().map(String::len).collect();
        let may_repeat = |n: usize| {
            (!name_key.is_empty() && (n == name_key.len() || (from_content && n <= name_key.len())))
                || sibling_lens.contains(&n)
        };
        let mut removed = Vec::new();
        kids.retain(|&c| {
            let cn = &self.nodes[c as usize];
            let repeat = match cn.kind {
                Kind::Text => {
                    if holds_value {
                        true
                    } else if (name_key.is_empty() && sibling_names.is_empty())
                        || ascii_key_len(&cn.text).is_some_and(|n| !may_repeat(n))
                    {
                        false
                    } else {
                        let k = key(&cn.text);
                        (!name_key.is_empty()
                            && (k == name_key || (from_content && name_key.contains(&k))))
                            || sibling_names.contains(&k)
                    }
                }
                Kind::Line => {
                    !name_key.is_empty()
                        && cn.children.is_empty()
                        && !cn.refable
                        && cn.x().states.is_empty()
                        && cn.x().value.is_empty()
                        && cn.x().prefix.is_empty()
                        && matches!(
                            cn.ax_role,
                            "image" | "img" | "SvgRoot" | "graphics-document"
                        )
                        && key(&cn.x().name) == name_key
                }
                _ => false,
            };
            if repeat {
                removed.push(c);
            }
            !repeat
        });
        for c in removed {
            self.kill(c);
        }
    }

    /// A select that is not expanded and holds nothing but plain options.
    fn is_closed_select(&self, n: u32, kids: &[u32]) -> bool {
        !kids.is_empty()
            && !self.nodes[n as usize].x().states.contains(" expanded")
            && kids.iter().all(|&c| {
                let cn = &self.nodes[c as usize];
                cn.kind == Kind::Line
                    && matches!(cn.ax_role, "option" | "MenuListOption")
                    && cn.children.is_empty()
            })
    }

    /// Step 3b: a closed select's options become "(options: a | b)" in its value.
    fn fold_options(&mut self, n: u32, kids: &mut Vec<u32>) {
        let mut list = String::new();
        let mut sel = false;
        for (i, &c) in kids.iter().enumerate() {
            let cn = &self.nodes[c as usize];
            if i > 0 {
                list.push_str(" | ");
            }
            list.push_str(&cn.x().name);
            if cn.x().states.contains(" disabled") {
                list.push_str(" (disabled)");
            }
            sel |= cn.sel;
        }
        for c in kids.drain(..) {
            self.kill(c);
        }
        let node = &mut self.nodes[n as usize];
        node.sel |= sel;
        let v = node.xm().value.to_mut();
        if !v.is_empty() {
            v.push(' ');
        }
        v.push_str("(options: ");
        v.push_str(&list);
        v.push(')');
    }

    /// Step 4: a row of plain cells becomes one line ("a | b"); any other row loses its
    /// name and its cells dissolve.
    fn flatten_row(&mut self, n: u32, kids: &mut Vec<u32>) {
        let simple = kids.iter().all(|&c| {
            let cn = &self.nodes[c as usize];
            cn.kind == Kind::Cell
                && (cn.children.is_empty()
                    || (cn.children.len() == 1
                        && self.kind(cn.children[0]) == Kind::Text
                        && !self.nodes[cn.children[0] as usize].text.contains('\n')))
        });
        if simple {
            let mut cells = Vec::with_capacity(kids.len());
            let mut sel = false;
            for &c in kids.iter() {
                let t = match self.nodes[c as usize].children.first() {
                    Some(&t) => {
                        sel |= self.nodes[t as usize].sel;
                        self.kill(t);
                        std::mem::take(&mut self.nodes[t as usize].text)
                    }
                    None => Cow::Borrowed(""),
                };
                sel |= self.nodes[c as usize].sel;
                self.kill(c);
                cells.push(t);
            }
            kids.clear();
            let node = &mut self.nodes[n as usize];
            node.sel |= sel;
            node.xm().name = Cow::Borrowed("");
            if cells.iter().any(|c| !c.is_empty()) {
                node.xm().value = Cow::Owned(cells.join(" | "));
            }
        } else {
            let mut flat = Vec::with_capacity(kids.len());
            for c in std::mem::take(kids) {
                if self.kind(c) == Kind::Cell {
                    self.splice(c, &mut flat);
                } else {
                    flat.push(c);
                }
            }
            *kids = flat;
            self.nodes[n as usize].xm().name = Cow::Borrowed("");
        }
    }

    /// Step 5: a list item becomes a line. It takes a first text run as the text after its
    /// bullet, or takes over a first line (a lone one, or one without children); an empty
    /// item is removed.
    fn finish_item(&mut self, n: u32, ax_role: &'a str, mut kids: Vec<u32>) {
        let Some(&first) = kids.first() else {
            self.kill(n);
            return;
        };
        let fk = self.kind(first);
        let single = kids.len() == 1;
        if fk == Kind::Text && !self.nodes[first as usize].text.contains('\n') {
            let t = std::mem::take(&mut self.nodes[first as usize].text);
            let sel = self.nodes[first as usize].sel;
            self.kill(first);
            kids.remove(0);
            let node = &mut self.nodes[n as usize];
            node.xm().lead = t;
            node.sel |= sel;
        } else if fk == Kind::Line
            && self.nodes[first as usize].x().prefix.is_empty()
            && (single || self.nodes[first as usize].children.is_empty())
        {
            self.take_over_line(n, first, &kids[1..]);
            return;
        }
        let node = &mut self.nodes[n as usize];
        node.kind = Kind::Line;
        node.item_head = true;
        node.ax_role = ax_role;
        node.children = kids;
    }

    /// The list item `n` becomes its first line `first`, whose children come before the
    /// item's other children `rest`.
    fn take_over_line(&mut self, n: u32, first: u32, rest: &[u32]) {
        let f = &mut self.nodes[first as usize];
        let taken = (
            std::mem::take(&mut f.xm().role),
            std::mem::take(&mut f.ax_role),
            std::mem::take(&mut f.xm().name),
            std::mem::take(&mut f.xm().states),
            std::mem::take(&mut f.xm().value),
            std::mem::take(&mut f.children),
            f.src,
            f.refable,
            f.sel,
        );
        f.kind = Kind::Dead;
        let node = &mut self.nodes[n as usize];
        node.xm().role = taken.0;
        node.ax_role = taken.1;
        node.xm().name = taken.2;
        node.xm().states = taken.3;
        node.xm().value = taken.4;
        node.src = taken.6;
        node.refable = taken.7;
        node.sel |= taken.8;
        node.item_head = true;
        let mut merged = taken.5;
        merged.extend_from_slice(rest);
        node.kind = Kind::Line;
        node.children = merged;
    }

    /// Step 6: a line whose only child is a one-line text run shows it as its value.
    fn lone_text_as_value(&mut self, n: u32, kids: &mut Vec<u32>) {
        if kids.len() == 1
            && self.open_or_sealed_text(kids[0])
            && self.nodes[n as usize].x().value.is_empty()
            && !self.nodes[kids[0] as usize].text.contains('\n')
        {
            let c = kids.pop().unwrap_or_default();
            let t = std::mem::take(&mut self.nodes[c as usize].text);
            let sel = self.nodes[c as usize].sel;
            self.kill(c);
            let node = &mut self.nodes[n as usize];
            node.xm().value = t;
            node.sel |= sel;
        }
    }

    /// Step 7: drops an empty plain line, turns an unnamed plain line with one child into
    /// a wrapper, and gives the node back its role and children.
    fn settle(&mut self, n: u32, kind: Kind, ax_role: &'a str, kids: Vec<u32>) {
        let node = &mut self.nodes[n as usize];
        if kind == Kind::Line {
            let plain = !node.refable && node.x().states.is_empty() && node.x().value.is_empty();
            if plain && kids.is_empty() && !keeps_when_empty(ax_role, !node.x().name.is_empty()) {
                node.kind = Kind::Dead;
                return;
            }
            if plain && node.x().name.is_empty() && kids.len() == 1 && !keeps_line(ax_role) {
                node.kind = Kind::Pass;
            }
        }
        node.ax_role = ax_role;
        node.children = kids;
    }

    fn open_or_sealed_text(&self, n: u32) -> bool {
        self.kind(n) == Kind::Text
    }
}

#[cfg(test)]
mod key_tests {
    use super::{ascii_key_len, key};

    #[test]
    fn ascii_key_len_is_the_length_of_the_key() {
        for s in [
            "",
            " ",
            "Save",
            "  Full   name:  ",
            "a:b",
            "foo : :",
            "x\u{b}y",
            "\t\r\nA\u{c}B ",
            ":::",
            "Name *:",
            "one two  three",
        ] {
            assert_eq!(ascii_key_len(s), Some(key(s).len()), "{s:?}");
        }
        assert_eq!(ascii_key_len("İstanbul"), None);
    }
}
