//! Accessibility tree to compact text (interim renderer).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AxNode {
    pub node_id: String,
    #[serde(default)]
    pub ignored: bool,
    #[serde(default)]
    pub role: Option<Value>,
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default)]
    pub child_ids: Vec<String>,
    #[serde(rename = "backendDOMNodeId", default)]
    pub backend_dom_node_id: Option<i64>,
    #[serde(default)]
    pub parent_id: Option<String>,
}

pub struct Frame {
    pub nodes: Vec<AxNode>,
    pub parent: Option<(usize, i64)>,
}

pub trait Refs {
    fn ref_for(&mut self, frame: usize, backend_node_id: i64) -> String;
}

#[derive(Default)]
pub struct Options {
    pub max_chars: usize,
    pub root: Option<(usize, i64)>,
    pub only: Option<HashSet<(usize, i64)>>,
    pub find: Option<String>,
}

pub struct RefEntry {
    pub r#ref: String,
    pub frame: usize,
    pub backend_node_id: i64,
    pub role: String,
    pub name: String,
}

pub struct Snapshot {
    pub text: String,
    pub truncated: bool,
    pub refs: Vec<RefEntry>,
}

const INTERACTIVE: &[&str] = &[
    "button",
    "link",
    "textbox",
    "checkbox",
    "radio",
    "combobox",
    "listbox",
    "option",
    "slider",
    "spinbutton",
    "switch",
    "tab",
    "menuitem",
    "searchbox",
    "menuitemcheckbox",
    "menuitemradio",
    "treeitem",
];

pub fn render(frames: &[Frame], refs: &mut dyn Refs, opts: &Options) -> Snapshot {
    let mut out = String::new();
    let mut entries = Vec::new();
    let hosts: HashMap<(usize, i64), usize> = frames
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.parent.map(|p| (p, i)))
        .collect();
    fn walk(
        frames: &[Frame],
        fi: usize,
        id: &str,
        depth: usize,
        hosts: &HashMap<(usize, i64), usize>,
        refs: &mut dyn Refs,
        out: &mut String,
        entries: &mut Vec<RefEntry>,
    ) {
        let frame = &frames[fi];
        let Some(n) = frame.nodes.iter().find(|n| n.node_id == id) else {
            return;
        };
        let role = n
            .role
            .as_ref()
            .and_then(|r| r["value"].as_str())
            .unwrap_or("")
            .to_string();
        let name = n
            .name
            .as_ref()
            .and_then(|r| r["value"].as_str())
            .unwrap_or("")
            .to_string();
        let mut d = depth;
        if !n.ignored
            && !matches!(
                role.as_str(),
                "generic" | "none" | "InlineTextBox" | "RootWebArea"
            )
            && !(role == "StaticText" && name.is_empty())
        {
            let mut line = format!("{}{} {:?}", " ".repeat(depth), role, name);
            if (INTERACTIVE.contains(&role.as_str()) || role == "heading")
                && let Some(b) = n.backend_dom_node_id
            {
                let r = refs.ref_for(fi, b);
                line.push_str(&format!(" [{r}]"));
                entries.push(RefEntry {
                    r#ref: r,
                    frame: fi,
                    backend_node_id: b,
                    role: role.clone(),
                    name: name.clone(),
                });
            }
            out.push_str(&line);
            out.push('\n');
            d += 1;
        }
        if let Some(b) = n.backend_dom_node_id
            && let Some(child) = hosts.get(&(fi, b))
            && let Some(root) = frames[*child].nodes.first()
        {
            walk(
                frames,
                *child,
                &root.node_id.clone(),
                d,
                hosts,
                refs,
                out,
                entries,
            );
        }
        for c in &n.child_ids {
            walk(frames, fi, c, d, hosts, refs, out, entries);
        }
    }
    if let Some(root) = frames.first().and_then(|f| f.nodes.first()) {
        walk(
            frames,
            0,
            &root.node_id.clone(),
            0,
            &hosts,
            refs,
            &mut out,
            &mut entries,
        );
    }
    let _ = opts;
    Snapshot {
        text: out,
        truncated: false,
        refs: entries,
    }
}

pub fn diff(before: &str, after: &str, _max_chars: usize) -> Option<String> {
    if before == after {
        return None;
    }
    let b: HashSet<&str> = before.lines().collect();
    let a: HashSet<&str> = after.lines().collect();
    let mut out = String::new();
    for l in after.lines().filter(|l| !b.contains(l)) {
        out.push_str(&format!("+ {}\n", l.trim()));
    }
    for l in before.lines().filter(|l| !a.contains(l)) {
        out.push_str(&format!("- {}\n", l.trim()));
    }
    Some(out)
}
