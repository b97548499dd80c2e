//! From the cleaned tree to text: the `only` and `find` views, the character budget, refs.

use super::build::{Kind, Tree};
use super::{Options, RefEntry, Refs, Snapshot};

/// Room kept for the suffix of a folded line (" …+1234 lines").
const FOLD: usize = 14;
/// Room kept for a line that ends a cut list of children ("…+1234 lines\n"), plus indent.
const TAIL: usize = 14;
/// Room kept for a ref that is not known yet (" [e1234]").
const REF: usize = 8;
/// Room kept for the final marker line.
const MARKER: usize = 150;
/// The first text line of a marker.
pub(crate) const MARKER_START: &str = "[cut: ";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Plan {
    Hidden,
    Full,
    /// The line only; its content is hidden.
    Folded,
    /// The line and its first n children; the rest is hidden.
    Partial(u32),
    /// A text run shortened to this many characters.
    Cut(usize),
}

struct Layout<'a, 'f> {
    t: &'a mut Tree<'f>,
    depth: Vec<u32>,
    /// Characters of the node's own line(s), with indent, newline and room for a ref.
    own: Vec<usize>,
    /// Characters of the whole subtree.
    full: Vec<usize>,
    /// Lines of the whole subtree.
    lines: Vec<usize>,
    /// Find mode: lines below a matching node that the view leaves out.
    hidden: Vec<usize>,
    /// Room for the node's ref (" [e12]", guessed from its rank among the refs).
    ref_room: Vec<usize>,
    plan: Vec<Plan>,
}

/// Escapes a name for use between double quotes.
fn quote(s: &str, out: &mut String) {
    out.push('"');
    if s.contains('"') {
        out.push_str(&s.replace('"', "\\\""));
    } else {
        out.push_str(s);
    }
    out.push('"');
}

/// The part of a line before its ref: `- role "name" states lead`.
fn head(t: &Tree, n: u32, out: &mut String) {
    let node = &t.nodes[n as usize];
    let start = out.len();
    let sep = |out: &mut String| {
        if out.len() > start {
            out.push(' ');
        }
    };
    if node.item_head {
        out.push_str(&node.x().prefix);
    }
    if !node.x().role.is_empty() {
        sep(out);
        out.push_str(&node.x().role);
    }
    if !node.x().name.is_empty() {
        sep(out);
        quote(&node.x().name, out);
    }
    if out.len() > start {
        out.push_str(&node.x().states);
    } else {
        out.push_str(node.x().states.trim_start());
    }
    if !node.x().lead.is_empty() {
        sep(out);
        out.push_str(&node.x().lead);
    }
}

fn tail(t: &Tree, n: u32, out: &mut String) {
    let node = &t.nodes[n as usize];
    if !node.x().value.is_empty() {
        out.push_str(": ");
        out.push_str(&node.x().value);
    }
}

/// Characters of `head` + `tail`, without building them.
fn line_chars(t: &Tree, n: u32) -> usize {
    let node = &t.nodes[n as usize];
    let mut len = 0;
    let part = |len: &mut usize, chars: usize| {
        if *len > 0 {
            *len += 1;
        }
        *len += chars;
    };
    if node.item_head {
        part(&mut len, node.x().prefix.chars().count());
    }
    if !node.x().role.is_empty() {
        part(&mut len, node.x().role.chars().count());
    }
    if !node.x().name.is_empty() {
        let quotes = node.x().name.bytes().filter(|&b| b == b'"').count();
        part(&mut len, node.x().name.chars().count() + 2 + quotes);
    }
    let states = node.x().states.chars().count();
    if len > 0 {
        len += states;
    } else {
        len += node.x().states.trim_start().chars().count();
    }
    if !node.x().lead.is_empty() {
        part(&mut len, node.x().lead.chars().count());
    }
    if !node.x().value.is_empty() {
        len += 2 + node.x().value.chars().count();
    }
    debug_assert_eq!(len, content(t, n).chars().count());
    len
}

/// The line as find mode matches it: no indent, no ref.
fn content(t: &Tree, n: u32) -> String {
    let mut s = String::new();
    let node = &t.nodes[n as usize];
    if node.kind == Kind::Text {
        s.push_str(&node.text);
    } else {
        head(t, n, &mut s);
        tail(t, n, &mut s);
    }
    s
}

/// Nodes reachable from the root, in document order.
fn reachable(t: &Tree) -> Vec<u32> {
    let mut order = Vec::new();
    let mut stack = vec![0u32];
    while let Some(n) = stack.pop() {
        order.push(n);
        for &c in t.nodes[n as usize].children.iter().rev() {
            stack.push(c);
        }
    }
    order
}

struct Out<'r> {
    text: String,
    chars: usize,
    limit: usize,
    stopped: bool,
    shown: usize,
    refs: &'r mut dyn Refs,
    entries: Vec<RefEntry>,
    /// (text bytes, chars, refs, shown lines) before each line, to take lines back.
    marks: Vec<(usize, usize, usize, usize)>,
}

impl Out<'_> {
    /// Takes back the last line.
    fn pop(&mut self) -> bool {
        let Some((text, chars, entries, shown)) = self.marks.pop() else {
            return false;
        };
        self.text.truncate(text);
        self.chars = chars;
        self.entries.truncate(entries);
        self.shown = shown;
        true
    }

    /// Appends one line unless it would break the budget (then nothing more is added).
    fn push(&mut self, depth: u32, line: &str) -> bool {
        if self.stopped {
            return false;
        }
        let len = depth as usize + line.chars().count() + 1;
        if self.chars + len > self.limit {
            self.stopped = true;
            return false;
        }
        self.marks
            .push((self.text.len(), self.chars, self.entries.len(), self.shown));
        self.chars += len;
        for _ in 0..depth {
            self.text.push(' ');
        }
        self.text.push_str(line);
        self.text.push('\n');
        true
    }
}

impl Layout<'_, '_> {
    fn node_lines(&self, n: u32) -> usize {
        let node = &self.t.nodes[n as usize];
        match node.kind {
            Kind::Text => node.text.split('\n').count(),
            _ if n == 0 => 0,
            _ => 1,
        }
    }

    fn own_chars(&self, n: u32) -> usize {
        if n == 0 {
            return 0;
        }
        let d = self.depth[n as usize] as usize;
        let node = &self.t.nodes[n as usize];
        if node.kind == Kind::Text {
            return node
                .text
                .split('\n')
                .map(|l| d + l.chars().count() + 1)
                .sum();
        }
        let mut len = d + line_chars(self.t, n) + 1 + self.ref_room[n as usize];
        if self.hidden[n as usize] > 0 {
            len += FOLD;
        }
        len
    }

    /// Gives `n` at most `b` characters; returns what it uses (0 = not shown).
    fn alloc(&mut self, n: u32, b: usize) -> usize {
        let i = n as usize;
        if self.full[i] <= b {
            self.plan[i] = Plan::Full;
            return self.full[i];
        }
        let kind = self.t.nodes[i].kind;
        if kind == Kind::Text {
            let overhead = self.depth[i] as usize + 16;
            if b >= overhead + 30 {
                self.plan[i] = Plan::Cut(b - overhead);
                return b;
            }
            self.plan[i] = Plan::Hidden;
            return 0;
        }
        let own = self.own[i];
        let child_depth = if n == 0 {
            0
        } else {
            self.depth[i] as usize + 1
        };
        let marker = FOLD.max(child_depth + TAIL) + if n == 0 { 0 } else { REF };
        let kids = self.t.nodes[i].children.clone();
        if own + marker > b || kids.is_empty() {
            self.plan[i] = Plan::Hidden;
            return 0;
        }
        let room = b - own - marker;
        // Later siblings keep room for themselves: all of a small one, the folded line of a
        // big one; the first children fill what is left, in document order.
        let small = (b / 10).max(200);
        let mut after = vec![0usize; kids.len() + 1];
        for (j, &c) in kids.iter().enumerate().rev() {
            let c = c as usize;
            let keep = if self.full[c] <= small {
                self.full[c]
            } else {
                self.full[c].min(self.own[c] + FOLD + REF)
            };
            after[j] = after[j + 1] + keep;
        }
        let mut used = 0;
        let mut shown = 0;
        for (j, &c) in kids.iter().enumerate() {
            let avail = room - used;
            let bj = if avail >= after[j] {
                avail - after[j + 1]
            } else {
                avail
            };
            let u = self.alloc(c, bj);
            if u == 0 {
                break;
            }
            used += u;
            shown += 1;
        }
        if shown == 0 {
            self.plan[i] = Plan::Folded;
            return own + FOLD + REF;
        }
        self.plan[i] = Plan::Partial(shown as u32);
        own + used
            + if shown < kids.len() {
                child_depth + TAIL
            } else {
                0
            }
    }

    /// Emits the line of an element; `cut` says that some of its content is hidden, so it
    /// gets a ref to be rendered alone.
    fn line(&mut self, n: u32, out: &mut Out, hidden_below: usize, cut: bool) -> bool {
        let node = &self.t.nodes[n as usize];
        let mut s = String::new();
        head(self.t, n, &mut s);
        let give_ref = node.refable || cut;
        let mut pushed_ref = false;
        if give_ref && let Some((frame, backend)) = node.src {
            let r = out.refs.ref_for(frame, backend);
            if !s.is_empty() {
                s.push(' ');
            }
            s.push('[');
            s.push_str(&r);
            s.push(']');
            out.entries.push(RefEntry {
                r#ref: r,
                frame,
                node: backend,
                role: node.ax_role.to_string(),
                name: node.x().name.to_string(),
            });
            pushed_ref = true;
        }
        tail(self.t, n, &mut s);
        if hidden_below > 0 {
            s.push_str(&format!(" …+{hidden_below} lines"));
        }
        let ok = out.push(self.depth[n as usize], &s);
        if ok {
            out.shown += 1;
        } else if pushed_ref {
            out.entries.pop();
        }
        ok
    }

    fn text(&mut self, n: u32, out: &mut Out, keep: Option<usize>) {
        let d = self.depth[n as usize];
        let text = std::mem::take(&mut self.t.nodes[n as usize].text);
        let mut left = keep.unwrap_or(usize::MAX);
        for l in text.split('\n') {
            let count = l.chars().count();
            if count <= left {
                if out.push(d, l) {
                    out.shown += 1;
                }
                left -= count.min(left);
                continue;
            }
            let (at, _) = l.char_indices().nth(left).unwrap_or((l.len(), ' '));
            let cut = format!("{}…(+{} chars)", &l[..at], count - left);
            if out.push(d, &cut) {
                out.shown += 1;
            }
            break;
        }
        self.t.nodes[n as usize].text = text;
    }

    fn emit(&mut self, n: u32, out: &mut Out, full: bool) {
        let i = n as usize;
        let plan = if full { Plan::Full } else { self.plan[i] };
        if out.stopped || plan == Plan::Hidden {
            return;
        }
        if self.t.nodes[i].kind == Kind::Text {
            let keep = match plan {
                Plan::Cut(k) => Some(k),
                _ => None,
            };
            self.text(n, out, keep);
            return;
        }
        let kids = std::mem::take(&mut self.t.nodes[i].children);
        let (shown, folded) = match plan {
            Plan::Folded => (0, true),
            Plan::Partial(k) => (k as usize, false),
            _ => (kids.len(), false),
        };
        let cut_lines: usize = kids[shown..].iter().map(|&c| self.lines[c as usize]).sum();
        let hidden_below = self.hidden[i] + if folded { cut_lines } else { 0 };
        let cut = hidden_below > 0 || shown < kids.len();
        let printed = n == 0 || self.line(n, out, hidden_below, cut);
        if printed && !folded {
            for &c in &kids[..shown] {
                self.emit(c, out, plan == Plan::Full);
            }
            if shown < kids.len() && !out.stopped {
                let d = if n == 0 { 0 } else { self.depth[i] + 1 };
                out.push(d, &format!("…+{cut_lines} lines"));
            }
        }
        self.t.nodes[i].children = kids;
    }
}

/// Each node's depth below the root (the root's children are at 0).
fn depths(t: &Tree, order: &[u32]) -> Vec<u32> {
    let mut depth = vec![0u32; t.nodes.len()];
    for &n in order {
        let d = if n == 0 { 0 } else { depth[n as usize] + 1 };
        for &c in &t.nodes[n as usize].children {
            depth[c as usize] = d;
        }
    }
    depth
}

impl Layout<'_, '_> {
    /// Counts the lines of every subtree; `order` is in document order.
    fn count_lines(&mut self, order: &[u32]) {
        for &n in order.iter().rev() {
            let mut count = self.node_lines(n);
            for &c in &self.t.nodes[n as usize].children {
                count += self.lines[c as usize];
            }
            self.lines[n as usize] = count;
        }
    }

    /// The `only` and `find` views: marks the selected nodes (for `find`, those whose line
    /// contains `query`), keeps them and their ancestors, and notes for each match how many
    /// lines below it the view leaves out. Returns the number of matches.
    fn select(&mut self, order: &[u32], query: Option<&str>) -> usize {
        let len = self.t.nodes.len();
        let mut matches = 0;
        let mut sel = vec![false; len];
        for &n in order {
            if n == 0 {
                continue;
            }
            let node = &self.t.nodes[n as usize];
            let mut s = !self.t.filtered || node.sel;
            if let Some(q) = query
                && s
            {
                s = content(self.t, n).to_lowercase().contains(q);
                if s {
                    matches += 1;
                }
            }
            sel[n as usize] = s;
        }
        let mut keep = vec![false; len];
        for &n in order.iter().rev() {
            let i = n as usize;
            let kids = std::mem::take(&mut self.t.nodes[i].children);
            let kept: Vec<u32> = kids.iter().copied().filter(|&c| keep[c as usize]).collect();
            if query.is_some() && sel[i] {
                self.hidden[i] = kids
                    .iter()
                    .filter(|&&c| !keep[c as usize])
                    .map(|&c| self.lines[c as usize])
                    .sum();
            }
            keep[i] = sel[i] || !kept.is_empty() || n == 0;
            self.t.nodes[i].children = kept;
        }
        matches
    }

    /// Room for refs (guessed from each ref's rank), then the characters of each node's
    /// own line(s) and of its whole subtree.
    fn measure(&mut self, order: &[u32]) {
        let mut rank = 0usize;
        for &n in order {
            let i = n as usize;
            if self.t.nodes[i].refable {
                rank += 1;
                self.ref_room[i] = 4 + rank.ilog10() as usize + 1;
            } else if self.hidden[i] > 0 {
                self.ref_room[i] = REF;
            }
        }
        for &n in order.iter().rev() {
            let i = n as usize;
            self.own[i] = self.own_chars(n);
            let mut f = self.own[i];
            for &c in &self.t.nodes[i].children {
                f += self.full[c as usize];
            }
            self.full[i] = f;
        }
    }
}

pub(crate) fn layout(t: &mut Tree, refs: &mut dyn Refs, opts: &Options) -> Snapshot {
    let len = t.nodes.len();
    let mut order = reachable(t);
    let depth = depths(t, &order);
    let mut l = Layout {
        t,
        depth,
        own: vec![0; len],
        full: vec![0; len],
        lines: vec![0; len],
        hidden: vec![0; len],
        ref_room: vec![0; len],
        plan: vec![Plan::Full; len],
    };
    l.count_lines(&order);

    // The `only` and `find` views keep the selected nodes and their ancestors.
    let query = opts
        .find
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_lowercase);
    let mut matches = 0;
    if query.is_some() || l.t.filtered {
        matches = l.select(&order, query.as_deref());
        order = reachable(l.t);
        l.count_lines(&order);
    }

    l.measure(&order);
    let total_lines = l.lines[0];
    let budget = opts.max_chars;
    let fits = budget == 0 || l.full[0] <= budget;
    if !fits {
        l.alloc(0, budget.saturating_sub(MARKER));
    }
    let mut out = Out {
        text: String::new(),
        chars: 0,
        limit: match (budget, fits) {
            (0, _) => usize::MAX,
            (_, true) => budget,
            (_, false) => budget.saturating_sub(MARKER),
        },
        stopped: false,
        shown: 0,
        refs,
        entries: Vec::new(),
        marks: Vec::new(),
    };
    l.emit(0, &mut out, fits);
    let truncated = out.shown < total_lines;
    if truncated {
        // Refs longer than guessed can leave too little room: take lines back for the marker.
        loop {
            let marker = marker(total_lines - out.shown, total_lines);
            if out.chars + marker.chars().count() <= budget || !out.pop() {
                out.text.push_str(&marker);
                break;
            }
        }
    }
    Snapshot {
        text: out.text,
        truncated,
        refs: out.entries,
        total_lines,
        shown_lines: out.shown,
        matches,
        root_found: true,
    }
}

fn marker(hidden: usize, total: usize) -> String {
    format!(
        "{MARKER_START}{hidden} of {total} lines not shown (\"…+N\" marks where); to see more, \
         snapshot one element by its ref, search for text, or allow more characters]\n"
    )
}
