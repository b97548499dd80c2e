//! Page snapshots: the content of every frame of a tab, as compact text for a model.
//!
//! # Input
//!
//! One [`Frame`] per document of the tab: the main frame first, then every child frame,
//! each knowing the `<iframe>` element of its parent frame that hosts it. A child frame's
//! content is rendered under its `<iframe>` line.
//!
//! A frame is a source-neutral tree of [`Node`]s in document order (pre-order, each node
//! knowing where its subtree ends). Two sources fill it:
//! - the in-page collector (`collector.js`, run by `browser::snap` in an isolated world of
//!   every frame; [`collect`] parses its compact answer), the default;
//! - the accessibility tree (`Accessibility.getFullAXTree`, [`ax::frame_from_ax`]), the
//!   exact mode and the oracle the collector is tested against.
//!
//! Roles use the accessibility tree's words (`button`, `StaticText`, `LineBreak`,
//! `ListMarker`, `RootWebArea`, …), whatever the source.
//!
//! # Output format
//!
//! One line per meaningful node, indented by one space per level:
//!
//! ```text
//! nav "Main"
//!  - link "Articles" [e1]
//!  - button "Topics" expanded [e2]
//!   menu
//!    menuitem "Birds" [e3]
//! main
//!  h1 "Create your account"
//!  All fields marked * are required.
//!  group "Identity"
//!   textbox "Full name *" required [e4]: Ada Lovelace
//!   checkbox "Send me the newsletter" checked [e5]
//!   combobox "Country" [e6]: United Kingdom (options: France | United Kingdom)
//!  table "Sightings per month"
//!   row: Species | April | May
//!   row: Heron | 12 | 9
//! ```
//!
//! - An element line is `role "name" states [ref]: value`; each part only when present.
//!   Headings are `h1`…`h6`. Landmarks use the HTML words (`header`, `nav`, `main`,
//!   `aside`, `footer`).
//! - States: `checked` `mixed` `pressed` `selected` `expanded` `collapsed` `disabled`
//!   `required` `readonly` `invalid` `focused` `modal` `multiselectable` `busy`. A checkbox,
//!   radio or switch without `checked` is unchecked.
//! - The value is the current value of a textbox, combobox (the selected option), slider,
//!   spinbutton, date/time/color input, file input or progress bar; for other elements the
//!   text they hold when that is all they hold (`alert: Saved.`). Newlines show as `\n`.
//! - A closed `<select>` names its options on its own line, `(options: A | B)`, with
//!   ` (disabled)` after a disabled one; they get no refs (`browser_select_option` takes
//!   labels, and the options of a closed select cannot be clicked). A list box, an open
//!   combobox's popup and ARIA options keep a line and a ref each.
//! - A line without a role is page text: adjacent text runs of one block are merged; text
//!   that only repeats a name (a button's label, a heading's text, the label of the next
//!   field) is left out.
//! - List items start with `-` (or their number, `1.`); a table row whose cells hold only
//!   text is one line, cells separated by ` | `.
//! - Refs (`[e12]`) mark everything a model can act on: links, buttons, form fields,
//!   options (but those of a closed select), tabs, menu items, focusable and clickable
//!   elements.
//! - Wrappers without meaning (generic/none/presentation, ignored nodes, paragraphs,
//!   labels, unnamed groups, lists, sections) take no line of their own; their content
//!   moves up. An unnamed container with a single child is replaced by that child.
//! - Link targets are left out unless [`Options::link_urls`] asks for them.
//!
//! With a character budget ([`Options::max_chars`]) the outline of the page is kept and
//! the deepest or longest parts are folded: a folded element ends with `…+N lines`, a cut
//! list of children ends with a line `…+N lines`, and the text ends with one marker line
//! (`[cut: …]`) that says how much is hidden and how to see it. Folded elements carry a ref,
//! so they can be rendered alone with [`Options::root`].
//!
//! # Collecting the frames (checked with Chromium 156)
//!
//! The collector (default) runs in an isolated world of each frame (`browser::snap`,
//! `docs/SNAPSHOTS.md`): frames are found as below, and a child frame's host is the
//! collector's id of the element `DOM.getFrameOwner` names, resolved into the parent's
//! world. The rest of this section is about the accessibility tree (exact mode).
//!
//! - `Accessibility.getFullAXTree {}` on the tab's session returns the main frame's
//!   document only; its `Iframe` nodes have no children. `Accessibility.enable` is not
//!   needed, and node ids stay the same between calls.
//! - Same-process child frames are in `Page.getFrameTree` of the tab's session: call
//!   `Accessibility.getFullAXTree {frameId}` there.
//! - Out-of-process frames (another site, e.g. `localhost` inside `127.0.0.1`) are not in
//!   that frame tree. With `Target.setAutoAttach {autoAttach: true, waitForDebuggerOnStart:
//!   false, flatten: true}` each arrives as `Target.attachedToTarget` with
//!   `targetInfo.type == "iframe"` and `targetId` equal to its frame id; in that session,
//!   `Page.getFrameTree` gives the frame with `parentId` (the parent frame's id), and
//!   `Accessibility.getFullAXTree {}` its tree. Frames nested inside it need the same
//!   auto-attach on the child session.
//! - The owner: `DOM.getFrameOwner {frameId}` on the session of the parent frame (for a
//!   child of the main frame, the tab's session, also for an out-of-process child) gives
//!   the `backendNodeId` of the `<iframe>`: `Frame::parent = Some((parent index, it))`.
//! - Backend node ids are per renderer process: an out-of-process frame reuses small ids
//!   the main frame also has. Always key nodes by (frame index, backendDOMNodeId).
//! - Cost: a 1,000-row table (16,000 AX nodes) takes Chromium ~0.8 s and ~8.7 MB of JSON
//!   (`name.sources` is most of it); rendering it here takes a few milliseconds.
//! - For [`Options::only`] and [`Options::clickable`], one `DOMSnapshot.captureSnapshot`
//!   per process gives layout bounds and `isClickable` by backend node id.
//! - For [`diff`], render before and after in full (`max_chars: 0`) with the same ref table,
//!   and bound the diff instead.

pub mod ax;
mod build;
pub mod collect;
mod diff;
mod layout;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashSet;

pub use ax::{AxFrame, AxNode, AxProperty, AxValue};
pub use diff::diff;

/// One document of the tab, as a tree of nodes.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// The nodes in document order; `nodes[0]` is the root (the document).
    pub nodes: Vec<Node>,
    /// For a child frame: (index of the parent frame in the slice, node id of the
    /// `<iframe>`/`<frame>` element in the parent that hosts this frame). None for the main
    /// frame (index 0).
    pub parent: Option<(usize, i64)>,
    /// The document's URL.
    pub url: String,
}

/// One node of a frame: an element, a text run (`StaticText`, its text in `name`) or a
/// line break.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// Identifies the node within its frame (a backend DOM node id for the accessibility
    /// tree, the collector's own element id otherwise). Refs and `Options::root`/`only`
    /// name nodes by (frame index, id).
    pub id: Option<i64>,
    /// The role, in the accessibility tree's words.
    pub role: Cow<'static, str>,
    /// The accessible name (the text of a text run).
    pub name: String,
    /// The current value, ready to show (a slider's ends included).
    pub value: String,
    /// A link's target.
    pub url: String,
    /// A heading's level (0 = none).
    pub level: u32,
    /// `flags::*` bits.
    pub flags: u32,
    /// Index just past the last node of this node's subtree.
    pub end: u32,
}

/// States and traits of a [`Node`], as bits of `Node::flags`.
pub mod flags {
    pub const IGNORED: u32 = 1;
    pub const FOCUSABLE: u32 = 1 << 1;
    pub const EDITABLE: u32 = 1 << 2;
    pub const CHECKED: u32 = 1 << 3;
    pub const MIXED: u32 = 1 << 4;
    pub const PRESSED: u32 = 1 << 5;
    pub const PRESSED_MIXED: u32 = 1 << 6;
    pub const SELECTED: u32 = 1 << 7;
    pub const EXPANDED: u32 = 1 << 8;
    pub const COLLAPSED: u32 = 1 << 9;
    pub const DISABLED: u32 = 1 << 10;
    pub const REQUIRED: u32 = 1 << 11;
    pub const READONLY: u32 = 1 << 12;
    pub const INVALID: u32 = 1 << 13;
    pub const FOCUSED: u32 = 1 << 14;
    pub const MODAL: u32 = 1 << 15;
    pub const MULTISELECTABLE: u32 = 1 << 16;
    pub const BUSY: u32 = 1 << 17;
    /// Acts on clicks although its role does not say so (a pointer cursor, an inline
    /// handler, `draggable`): it gets a ref.
    pub const CLICKABLE: u32 = 1 << 18;
    /// Inside the viewport (collected with the viewport option).
    pub const IN_VIEW: u32 = 1 << 19;
}

impl Node {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

impl Frame {
    /// The positions of the children of node `i`, in document order.
    pub fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let end = self.nodes.get(i).map_or(0, |n| n.end as usize);
        let mut c = i + 1;
        std::iter::from_fn(move || {
            if c >= end || c >= self.nodes.len() {
                return None;
            }
            let here = c;
            c = (self.nodes[c].end as usize).max(c + 1);
            Some(here)
        })
    }
}

/// Gives each actionable node a ref. tabmux implements it with a table that keeps the same
/// ref for the same (frame, node id) within a document; refs look like "e12".
pub trait Refs {
    fn ref_for(&mut self, frame: usize, node: i64) -> String;
}

/// What to render.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Character budget for `text`; 0 = unlimited. When cut, the text ends with a one-line
    /// marker that says how much was left out and how to see it.
    pub max_chars: usize,
    /// Render only the subtree rooted at this (frame index, node id).
    pub root: Option<(usize, i64)>,
    /// Keep only nodes in this set (and their ancestors as context), e.g. what is inside the
    /// viewport. A text run is kept when its text node or its parent element is in the set.
    /// None = everything.
    pub only: Option<HashSet<(usize, i64)>>,
    /// Find mode: only the lines whose text contains this (case-insensitive), each under its
    /// ancestor lines, instead of the whole tree. A matching element whose content is hidden
    /// ends with `…+N lines` and carries a ref to render it with `root`.
    pub find: Option<String>,
    /// Elements that react to clicks although their role does not say so (e.g.
    /// `isClickable` of `DOMSnapshot.captureSnapshot`): they get a ref too (like nodes with
    /// [`flags::CLICKABLE`]).
    pub clickable: Option<HashSet<(usize, i64)>>,
    /// Show link targets (`link "Docs" -> /docs [e3]`), relative to the frame's URL when
    /// they share its origin.
    pub link_urls: bool,
}

/// A rendered snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub text: String,
    /// The budget cut something (the text ends with the `[cut: …]` marker).
    pub truncated: bool,
    /// Every ref in `text`, in document order.
    pub refs: Vec<RefEntry>,
    /// Lines of the view (whole page, subtree, `only` or `find` result) before the budget.
    pub total_lines: usize,
    /// Lines of the view that `text` shows.
    pub shown_lines: usize,
    /// Find mode: how many lines matched.
    pub matches: usize,
    /// False when `root` names a node that is not in the tree (the text is then empty).
    pub root_found: bool,
}

/// One ref of a snapshot and the node it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefEntry {
    pub r#ref: String,
    pub frame: usize,
    /// The node's id in its frame ([`Node::id`]).
    pub node: i64,
    /// The CDP role (`button`, `combobox`, `DisclosureTriangle`, …).
    pub role: String,
    /// The accessible name.
    pub name: String,
}

/// Renders the frames of one tab as text. Deterministic: the same trees and options give
/// the same text; `refs.ref_for` is called only for the nodes that get a ref, in document
/// order.
pub fn render(frames: &[Frame], refs: &mut dyn Refs, opts: &Options) -> Snapshot {
    let Some(mut tree) = build::build(frames, opts) else {
        return Snapshot {
            root_found: opts.root.is_none(),
            ..Snapshot::default()
        };
    };
    tree.finalize();
    let mut snap = layout::layout(&mut tree, refs, opts);
    snap.root_found = true;
    snap
}
