//! What changed between two renderings of one page.
//!
//! Lines that carry a ref are matched by their ref, other lines by their text. The result
//! lists only what changed, in page order, one line each:
//!
//! ```text
//! ~ checkbox "Send me the newsletter" [e5] (was: checked)
//! ~ textbox "Email" [e4]: ada@example.com (was empty)
//! - button "Sign up" [e9]
//! + dialog "Saved"
//! +  button "OK" [e40]
//! ```

use std::collections::{HashMap, VecDeque};

use super::layout::MARKER_START;

struct Line<'a> {
    indent: usize,
    /// The line without indent and without a fold suffix.
    content: &'a str,
    /// Byte range of " [ref]" in `content`.
    r#ref: Option<(usize, usize)>,
}

impl<'a> Line<'a> {
    fn ref_str(&self) -> Option<&'a str> {
        self.r#ref.map(|(s, e)| &self.content[s + 2..e - 1])
    }

    /// (before the ref, after the ref without ": "), or the whole line and "".
    fn parts(&self) -> (&'a str, &'a str) {
        match self.r#ref {
            Some((s, e)) => {
                let rest = &self.content[e..];
                (
                    &self.content[..s],
                    rest.strip_prefix(": ").unwrap_or(rest.trim_start()),
                )
            }
            None => (self.content, ""),
        }
    }
}

fn is_ref(tok: &str) -> bool {
    let mut chars = tok.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && tok.len() <= 24
        && tok.bytes().any(|b| b.is_ascii_digit())
        && tok
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// End of the quoted name that follows the role word (0 when there is none).
fn name_end(content: &str) -> usize {
    let Some(q) = content.find(" \"") else {
        return 0;
    };
    let bytes = content.as_bytes();
    let mut j = q + 2;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    0
}

fn find_ref(content: &str) -> Option<(usize, usize)> {
    let mut i = name_end(content);
    while let Some(p) = content[i..].find(" [") {
        let s = i + p;
        let rest = &content[s + 2..];
        if let Some(e) = rest.find(']')
            && is_ref(&rest[..e])
        {
            let end = s + 2 + e + 1;
            let after = &content[end..];
            if after.is_empty() || after.starts_with(": ") || after.starts_with(' ') {
                return Some((s, end));
            }
        }
        i = s + 2;
    }
    None
}

fn parse(raw: &str) -> Option<Line<'_>> {
    let content = raw.trim_start_matches(' ');
    if content.is_empty() || content.starts_with(MARKER_START) || content.starts_with("…+") {
        return None;
    }
    let indent = raw.len() - content.len();
    let content = match content.rfind(" …+") {
        Some(p) if content.ends_with(" lines") => &content[..p],
        _ => content,
    };
    Some(Line {
        indent,
        content,
        r#ref: find_ref(content),
    })
}

/// One line of the result.
struct Op {
    mark: char,
    /// Position of the line in its rendering (after for + and ~, before for -).
    at: usize,
    indent: usize,
    text: String,
}

/// How a changed line was before.
fn was(after: &Line, before: &Line) -> String {
    let (ah, at) = after.parts();
    let (bh, bt) = before.parts();
    if ah == bh {
        return if bt.is_empty() {
            "(was empty)".to_string()
        } else {
            format!("(was: {bt})")
        };
    }
    let (an, bn) = (name_end(ah), name_end(bh));
    if at == bt && an > 0 && ah[..an] == bh[..bn] {
        let old = bh[bn..].trim();
        return if old.is_empty() {
            format!("(was: not {})", ah[an..].trim())
        } else {
            format!("(was: {old})")
        };
    }
    if bt.is_empty() {
        format!("(was: {bh})")
    } else {
        format!("(was: {bh}: {bt})")
    }
}

/// What changed between two renderings of the same page: only the changed lines
/// (`+` added, `-` removed, `~` changed, with what it was), in page order, bounded by
/// `max_chars` (0 = unlimited) with a marker. None when nothing changed.
pub fn diff(before: &str, after: &str, max_chars: usize) -> Option<String> {
    let b: Vec<Line> = before.lines().filter_map(parse).collect();
    let a: Vec<Line> = after.lines().filter_map(parse).collect();

    let mut by_ref: HashMap<&str, usize> = HashMap::new();
    let mut by_text: HashMap<&str, VecDeque<usize>> = HashMap::new();
    for (i, l) in b.iter().enumerate() {
        match l.ref_str() {
            Some(r) => {
                by_ref.entry(r).or_insert(i);
            }
            None => by_text.entry(l.content).or_default().push_back(i),
        }
    }
    let mut b_to_a: Vec<Option<usize>> = vec![None; b.len()];
    let mut a_to_b: Vec<Option<usize>> = vec![None; a.len()];
    for (j, l) in a.iter().enumerate() {
        let m = match l.ref_str() {
            Some(r) => by_ref.get(r).copied().filter(|&i| b_to_a[i].is_none()),
            None => by_text.get_mut(l.content).and_then(VecDeque::pop_front),
        };
        if let Some(i) = m {
            b_to_a[i] = Some(j);
            a_to_b[j] = Some(i);
        }
    }

    // A removed line is shown after the new place of the kept line that preceded it.
    let mut removed: Vec<Vec<usize>> = vec![Vec::new(); a.len() + 1];
    let mut anchor = 0;
    for (i, m) in b_to_a.iter().enumerate() {
        match m {
            Some(j) => anchor = j + 1,
            None => removed[anchor].push(i),
        }
    }
    let mut ops: Vec<Op> = Vec::new();
    let push_removed = |ops: &mut Vec<Op>, at: usize| {
        for &i in &removed[at] {
            ops.push(Op {
                mark: '-',
                at: i,
                indent: b[i].indent,
                text: b[i].content.to_string(),
            });
        }
    };
    push_removed(&mut ops, 0);
    for (j, l) in a.iter().enumerate() {
        match a_to_b[j] {
            None => ops.push(Op {
                mark: '+',
                at: j,
                indent: l.indent,
                text: l.content.to_string(),
            }),
            Some(i) if b[i].content != l.content => ops.push(Op {
                mark: '~',
                at: j,
                indent: 0,
                text: format!("{} {}", l.content, was(l, &b[i])),
            }),
            Some(_) => {}
        }
        push_removed(&mut ops, j + 1);
    }
    if ops.is_empty() {
        return None;
    }

    // A block of added or removed lines keeps its inner indentation, not the page's.
    let mut k = 0;
    while k < ops.len() {
        let mut end = k + 1;
        while end < ops.len()
            && ops[end].mark == ops[k].mark
            && ops[end].mark != '~'
            && ops[end].at == ops[end - 1].at + 1
        {
            end += 1;
        }
        let base = ops[k..end].iter().map(|o| o.indent).min().unwrap_or(0);
        for o in &mut ops[k..end] {
            o.indent -= base;
        }
        k = end;
    }

    let mut out = String::new();
    let mut chars = 0;
    for (k, o) in ops.iter().enumerate() {
        let len = 2 + o.indent + o.text.chars().count() + 1;
        let reserve = if k + 1 < ops.len() { 70 } else { 0 };
        if max_chars > 0 && chars + len + reserve > max_chars {
            out.push_str(&format!(
                "… {} more changed lines; take a snapshot to see them\n",
                ops.len() - k
            ));
            break;
        }
        chars += len;
        out.push(o.mark);
        out.push(' ');
        for _ in 0..o.indent {
            out.push(' ');
        }
        out.push_str(&o.text);
        out.push('\n');
    }
    Some(out)
}
