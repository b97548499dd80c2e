//! Tests on accessibility trees recorded from Chromium (`testdata/*.json`, from the pages
//! next to them). Golden renderings are `testdata/*.txt`; after a deliberate change of the
//! format, `TABMUX_BLESS=1 cargo test --lib snapshot` rewrites them (review the diff).
//! `PAGE=app cargo test --lib snapshot::tests::print_page -- --ignored --nocapture` prints
//! one rendering.

use std::collections::HashMap;

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Recording {
    frames: Vec<RecordedFrame>,
}

#[derive(Deserialize)]
struct RecordedFrame {
    parent: Option<(usize, i64)>,
    nodes: Vec<AxNode>,
}

/// Renders recorded accessibility trees (converted as tabmux converts them).
fn render(frames: &[AxFrame], refs: &mut dyn Refs, opts: &Options) -> Snapshot {
    super::render(&ax::frames_from_ax(frames), refs, opts)
}

fn load(page: &str) -> Vec<AxFrame> {
    let path = format!(
        "{}/src/snapshot/testdata/{page}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rec: Recording = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    rec.frames
        .into_iter()
        .map(|f| AxFrame {
            nodes: f.nodes,
            parent: f.parent,
        })
        .collect()
}

/// A ref table like tabmux's: the same ref for the same (frame, node).
#[derive(Default)]
struct Table {
    refs: HashMap<(usize, i64), String>,
    calls: Vec<(usize, i64)>,
}

impl Refs for Table {
    fn ref_for(&mut self, frame: usize, backend_node_id: i64) -> String {
        self.calls.push((frame, backend_node_id));
        let next = self.refs.len() + 1;
        self.refs
            .entry((frame, backend_node_id))
            .or_insert_with(|| format!("e{next}"))
            .clone()
    }
}

fn snap(page: &str, opts: &Options) -> Snapshot {
    render(&load(page), &mut Table::default(), opts)
}

fn golden(name: &str, actual: &str) {
    let path = format!(
        "{}/src/snapshot/testdata/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("TABMUX_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (TABMUX_BLESS=1 writes it)"));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name}: the rendering differs from {path} at line {}\n--- expected\n{expected}\n--- actual\n{actual}",
            first + 1
        );
    }
}

/// Nodes of the recorded trees a model can act on: what must get a ref. The inner parts of
/// date, time, color and range inputs are the browser's, not the page's: the input itself
/// stands for them. The options of a closed `<select>` are named on its line instead (see
/// `closed_select_options`).
fn actionable(frames: &[AxFrame]) -> Vec<(usize, i64, String, String)> {
    let mut out = Vec::new();
    for (fi, f) in frames.iter().enumerate() {
        let by_id: HashMap<&str, &AxNode> =
            f.nodes.iter().map(|n| (n.node_id.as_str(), n)).collect();
        'nodes: for n in &f.nodes {
            let role = n.role();
            let wanted = !n.ignored
                && (super::build::interactive(role)
                    || (n.prop_true("focusable") && !matches!(role, "RootWebArea" | "Iframe")));
            let Some(b) = n.backend_dom_node_id else {
                continue;
            };
            if !wanted {
                continue;
            }
            let mut up = n.parent_id.as_deref();
            while let Some(p) = up.and_then(|p| by_id.get(p)) {
                if matches!(p.role(), "Date" | "InputTime" | "ColorWell" | "slider") {
                    continue 'nodes;
                }
                up = p.parent_id.as_deref();
            }
            if closed_select_of(n, &by_id).is_some() {
                continue;
            }
            out.push((fi, b, role.to_string(), n.name().to_string()));
        }
    }
    out
}

/// The closed `<select>` (a combobox that is not expanded) whose popup holds this option.
fn closed_select_of<'a>(n: &AxNode, by_id: &HashMap<&str, &'a AxNode>) -> Option<&'a AxNode> {
    if !matches!(n.role(), "option" | "MenuListOption") {
        return None;
    }
    let mut up = n.parent_id.as_deref();
    while let Some(p) = up.and_then(|p| by_id.get(p)) {
        match p.role() {
            "MenuListPopup" | "none" | "generic" => up = p.parent_id.as_deref(),
            "combobox" | "PopUpButton" if !p.prop_true("expanded") => return Some(p),
            _ => return None,
        }
    }
    None
}

/// The options of a closed select, as (the select's name, the option's name).
fn closed_select_options(frames: &[AxFrame]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in frames {
        let by_id: HashMap<&str, &AxNode> =
            f.nodes.iter().map(|n| (n.node_id.as_str(), n)).collect();
        for n in &f.nodes {
            if !n.ignored
                && let Some(sel) = closed_select_of(n, &by_id)
            {
                out.push((sel.name().to_string(), n.name().to_string()));
            }
        }
    }
    out
}

fn headings(frames: &[AxFrame]) -> Vec<String> {
    let mut out = Vec::new();
    for f in frames {
        for n in &f.nodes {
            if !n.ignored && n.role() == "heading" {
                out.push(format!("h{} \"{}\"", n.prop_text("level"), n.name()));
            }
        }
    }
    out
}

const PAGES: [&str; 6] = ["form", "content", "frames", "shadow", "app", "big"];

#[test]
fn goldens() {
    for page in ["form", "content", "frames", "shadow", "app"] {
        golden(page, &snap(page, &Options::default()).text);
    }
}

#[test]
fn every_actionable_element_has_a_ref() {
    for page in PAGES {
        let frames = load(page);
        let s = render(&frames, &mut Table::default(), &Options::default());
        let have: HashMap<(usize, i64), &RefEntry> =
            s.refs.iter().map(|r| ((r.frame, r.node), r)).collect();
        let want = actionable(&frames);
        assert!(!want.is_empty());
        for (f, b, role, name) in &want {
            let r = have.get(&(*f, *b)).unwrap_or_else(|| {
                panic!("{page}: {role} {name:?} (frame {f}, node {b}) has no ref")
            });
            assert_eq!(&r.role, role);
            assert!(
                s.text.contains(&format!("[{}]", r.r#ref)),
                "{page}: {} not in text",
                r.r#ref
            );
        }
        // Nothing else gets a ref without reason.
        assert_eq!(s.refs.len(), want.len(), "{page}");
        // The options of a closed select are named on its line.
        for (select, option) in closed_select_options(&frames) {
            assert!(
                s.text.lines().any(|l| l.contains(&format!("\"{select}\""))
                    && l.contains("(options: ")
                    && l.contains(&option)),
                "{page}: option {option:?} of {select:?} not on its line"
            );
        }
    }
}

#[test]
fn every_heading_is_shown() {
    for page in PAGES {
        let frames = load(page);
        let text = render(&frames, &mut Table::default(), &Options::default()).text;
        for h in headings(&frames) {
            assert!(
                text.lines().any(|l| l.trim_start() == h),
                "{page}: {h} missing"
            );
        }
    }
}

#[test]
fn iframes_and_shadow_roots_are_inlined() {
    let s = snap("frames", &Options::default());
    let lines: Vec<&str> = s.text.lines().collect();
    let pay = lines
        .iter()
        .position(|l| *l == "iframe \"Payment\"")
        .unwrap();
    assert_eq!(lines[pay + 1], " h2 \"Card details\"");
    let card = s.refs.iter().find(|r| r.name == "Card number").unwrap();
    assert_eq!(
        card.frame, 2,
        "the out-of-process frame's nodes carry its index"
    );
    let widget = s.refs.iter().find(|r| r.name == "Subscribe").unwrap();
    assert_eq!(widget.frame, 1);
    let s = snap("shadow", &Options::default());
    assert!(
        s.text
            .contains("searchbox \"Query\" [e1]\nbutton \"Go\" [e2]\n")
    );
}

#[test]
fn no_noise_lines() {
    let words = [
        "generic",
        "none",
        "presentation",
        "StaticText",
        "InlineTextBox",
        "LineBreak",
        "LabelText",
        "Legend",
        "RootWebArea",
        "paragraph",
        "rowgroup",
        "ListMarker",
        "group",
        "list",
        "listitem",
        "cell",
        "gridcell",
        "columnheader",
        "MenuListPopup",
        "caption",
        "Figcaption",
        "article",
        "section",
        "emphasis",
        "strong",
        "time",
    ];
    for page in PAGES {
        let text = snap(page, &Options::default()).text;
        let mut prev = "";
        for line in text.lines() {
            let l = line.trim_start();
            let first = l.split([' ', ':']).next().unwrap();
            let named = l[first.len()..].starts_with(" \"");
            let has_ref = l.contains(" [e");
            assert!(
                !words.contains(&first) || named || has_ref,
                "{page}: noise line {line:?}"
            );
            assert!(!l.is_empty(), "{page}: empty line");
            // A text line never repeats the name on the line above it.
            if let Some(name) = prev.split('"').nth(1) {
                assert_ne!(l, name, "{page}: {line:?} repeats the line above");
            }
            prev = l;
        }
    }
}

#[test]
fn same_tree_same_text_and_refs_in_document_order() {
    for page in PAGES {
        let frames = load(page);
        let mut table = Table::default();
        let a = render(&frames, &mut table, &Options::default());
        let calls = std::mem::take(&mut table.calls);
        let b = render(&frames, &mut table, &Options::default());
        assert_eq!(a, b, "{page}");
        assert_eq!(calls, table.calls, "{page}");
        let listed: Vec<(usize, i64)> = a.refs.iter().map(|r| (r.frame, r.node)).collect();
        assert_eq!(calls, listed, "{page}: one call per ref, in document order");
        let in_text: Vec<&str> = a
            .text
            .match_indices(" [e")
            .map(|(i, _)| {
                let rest = &a.text[i + 2..];
                &rest[..rest.find(']').unwrap()]
            })
            .collect();
        let in_entries: Vec<&str> = a.refs.iter().map(|r| r.r#ref.as_str()).collect();
        assert_eq!(in_text, in_entries, "{page}");
    }
}

#[test]
fn budget_keeps_the_outline_and_ends_with_a_marker() {
    let full = snap("content", &Options::default());
    let s = snap(
        "content",
        &Options {
            max_chars: 700,
            ..Default::default()
        },
    );
    assert!(s.truncated);
    assert!(!full.truncated);
    assert!(s.text.chars().count() <= 700, "{}", s.text);
    let last = s.text.lines().last().unwrap();
    assert!(last.starts_with("[cut: "), "{last}");
    assert!(last.contains(&format!("of {} lines not shown", full.total_lines)));
    assert_eq!(s.total_lines, full.total_lines);
    // The outline survives: both landmarks after the cut one are still there.
    assert!(s.text.contains("\nfooter\n"), "{}", s.text);
    // The cut part carries a ref, and rendering it alone shows what was hidden.
    let main = s
        .refs
        .iter()
        .find(|r| r.role == "main")
        .expect("main gets a ref");
    let part = snap(
        "content",
        &Options {
            root: Some((main.frame, main.node)),
            ..Default::default()
        },
    );
    assert!(
        part.text
            .starts_with("main\n h1 \"Birds of the northern marsh\"\n")
    );
    assert!(part.text.contains("row: Warbler | 30 | 41"));
    assert!(!part.text.contains("footer"));

    // A budget the page fits in changes nothing.
    let roomy = snap(
        "content",
        &Options {
            max_chars: full.text.chars().count(),
            ..Default::default()
        },
    );
    assert_eq!(roomy.text, full.text);

    // The big page: the first rows, then a count of the rest.
    for budget in [300, 2_000, 20_000] {
        let s = snap(
            "big",
            &Options {
                max_chars: budget,
                ..Default::default()
            },
        );
        assert!(s.truncated);
        assert!(
            s.text.chars().count() <= budget,
            "{budget}: {}",
            s.text.chars().count()
        );
        assert!(
            s.text.starts_with("h1 \"Inventory\"\n"),
            "{budget}: {}",
            s.text
        );
        assert!(
            s.text.lines().any(|l| l.trim_start().starts_with("…+")),
            "{budget}"
        );
    }
}

#[test]
fn any_budget_is_kept() {
    for page in ["form", "content", "frames", "app", "big"] {
        let frames = load(page);
        let full = render(&frames, &mut Table::default(), &Options::default());
        let step = if page == "big" { 997 } else { 23 };
        let top = full.text.chars().count().min(12_000) + 50;
        for budget in (160..top).step_by(step) {
            let mut table = Table::default();
            let s = render(
                &frames,
                &mut table,
                &Options {
                    max_chars: budget,
                    ..Default::default()
                },
            );
            let chars = s.text.chars().count();
            assert!(chars <= budget, "{page} {budget}: {chars}\n{}", s.text);
            let last = s.text.lines().last().unwrap_or("");
            assert_eq!(s.truncated, last.starts_with("[cut: "), "{page} {budget}");
            assert_eq!(
                s.truncated,
                s.shown_lines < s.total_lines,
                "{page} {budget}"
            );
            assert_eq!(s.total_lines, full.total_lines, "{page} {budget}");
            let shown = s
                .text
                .lines()
                .filter(|l| !l.trim_start().starts_with("…+"))
                .count()
                - usize::from(s.truncated);
            assert_eq!(shown, s.shown_lines, "{page} {budget}\n{}", s.text);
            let in_text = s.text.matches(" [e").count();
            assert_eq!(in_text, s.refs.len(), "{page} {budget}");
            assert_eq!(
                table.calls.len(),
                s.refs.len(),
                "{page} {budget}: a ref for a hidden line"
            );
            // Every shown line is a line of the full rendering, less its ref and fold mark.
            let plain = |l: &str| -> String {
                let l = l.split(" …+").next().unwrap_or(l);
                let mut out = String::new();
                let mut rest = l;
                while let Some(i) = rest.find(" [e") {
                    out.push_str(&rest[..i]);
                    rest = &rest[i + 1..];
                    rest = &rest[rest.find(']').unwrap() + 1..];
                }
                out.push_str(rest);
                out
            };
            let full_lines: std::collections::HashSet<String> =
                full.text.lines().map(plain).collect();
            for l in s.text.lines() {
                let t = l.trim_start();
                if t.starts_with("…+") || t.starts_with("[cut: ") || t.contains("…(+") {
                    continue;
                }
                assert!(
                    full_lines.contains(&plain(l)),
                    "{page} {budget}: {l:?} is not in the full text"
                );
            }
        }
    }
}

#[test]
fn budget_golden() {
    let s = snap(
        "content",
        &Options {
            max_chars: 700,
            ..Default::default()
        },
    );
    golden("content.cut700", &s.text);
}

#[test]
fn subtree_by_root() {
    let frames = load("form");
    let full = render(&frames, &mut Table::default(), &Options::default());
    let country = full.refs.iter().find(|r| r.name == "Country").unwrap();
    let s = render(
        &frames,
        &mut Table::default(),
        &Options {
            root: Some((country.frame, country.node)),
            ..Default::default()
        },
    );
    assert!(s.root_found);
    assert_eq!(
        s.text,
        "combobox \"Country\" [e1]: United Kingdom (options: France | United Kingdom | United States)\n"
    );
    // A child frame's subtree, addressed in its own frame.
    let frames = load("frames");
    let owner = frames[2].parent.unwrap();
    let s = render(
        &frames,
        &mut Table::default(),
        &Options {
            root: Some(owner),
            ..Default::default()
        },
    );
    assert!(
        s.text
            .starts_with("iframe \"Payment\"\n h2 \"Card details\"\n"),
        "{}",
        s.text
    );
    // An unknown node.
    let s = render(
        &frames,
        &mut Table::default(),
        &Options {
            root: Some((0, 999_999)),
            ..Default::default()
        },
    );
    assert!(!s.root_found);
    assert!(s.text.is_empty());
}

#[test]
fn only_keeps_the_set_and_its_ancestors() {
    let frames = load("big");
    // Pretend rows 3 and 4 are in the viewport: their elements and text nodes.
    let mut set = std::collections::HashSet::new();
    let by_id: HashMap<&str, &AxNode> = frames[0]
        .nodes
        .iter()
        .map(|n| (n.node_id.as_str(), n))
        .collect();
    for n in &frames[0].nodes {
        let row_of = |name: &str| {
            frames[0].nodes.iter().any(|c| {
                c.role() == "cell" && c.name() == name && c.parent_id.as_deref() == Some(&n.node_id)
            })
        };
        if n.role() == "row" && (row_of("Pick item 3") || row_of("Pick item 4")) {
            let mut stack = vec![n];
            while let Some(x) = stack.pop() {
                if let Some(b) = x.backend_dom_node_id {
                    set.insert((0, b));
                }
                stack.extend(x.child_ids.iter().filter_map(|c| by_id.get(c.as_str())));
            }
        }
    }
    assert!(!set.is_empty());
    let s = render(
        &frames,
        &mut Table::default(),
        &Options {
            only: Some(set),
            ..Default::default()
        },
    );
    assert_eq!(
        s.text,
        "table\n row\n  checkbox \"Pick item 3\" [e1]\n  Item 3\n  spinbutton \"Quantity of item 3\" [e2]: 3\n  button \"Remove item 3\" [e3]\n row\n  checkbox \"Pick item 4\" [e4]\n  Item 4\n  spinbutton \"Quantity of item 4\" [e5]: 4\n  button \"Remove item 4\" [e6]\n"
    );
    assert!(!s.truncated);
}

#[test]
fn find_shows_matches_under_their_ancestors() {
    let s = snap(
        "content",
        &Options {
            find: Some("HERON".into()),
            ..Default::default()
        },
    );
    assert_eq!(s.matches, 4);
    assert_eq!(
        s.text,
        "main\n img \"A grey heron standing in reeds\"\n Grey heron, early morning.\n - Grey heron\n table \"Sightings per month\"\n  row: Heron | 12 | 9\n"
    );
    // A match whose content is hidden says so and gets a ref to open it.
    let s = snap(
        "form",
        &Options {
            find: Some("country".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        s.text,
        "main\n form\n  group \"Preferences\"\n   combobox \"Country\" [e1]: United Kingdom (options: France | United Kingdom | United States)\n"
    );
    // Matches in every frame.
    let s = snap(
        "frames",
        &Options {
            find: Some("pay".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        s.text,
        "iframe \"Payment\" [e1] …+4 lines\n button \"Pay now\" [e2]\n"
    );
    let s = snap(
        "form",
        &Options {
            find: Some("no such text".into()),
            ..Default::default()
        },
    );
    assert_eq!((s.matches, s.text.as_str()), (0, ""));
}

#[test]
fn link_urls_and_clickable_elements_on_request() {
    let frames = load("content");
    let s = render(
        &frames,
        &mut Table::default(),
        &Options {
            link_urls: true,
            ..Default::default()
        },
    );
    assert!(
        s.text.contains("- link \"Articles\" -> /articles [e2]\n"),
        "{}",
        s.text
    );
    assert!(s.text.contains("link \"Jo Marsh\" -> /people/jo [e9]\n"));
    let span = frames[0]
        .nodes
        .iter()
        .find(|n| {
            n.role() == "generic" && n.child_ids.len() == 1 && !n.ignored && {
                let c = &n.child_ids[0];
                frames[0]
                    .nodes
                    .iter()
                    .any(|x| &x.node_id == c && x.name() == "Clickable span")
            }
        })
        .unwrap();
    let s = render(
        &frames,
        &mut Table::default(),
        &Options {
            clickable: Some(
                [(0, span.backend_dom_node_id.unwrap())]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        },
    );
    assert!(
        s.text.contains("\n clickable [e15]: Clickable span\n"),
        "{}",
        s.text
    );
}

/// The form page with some changes, as after an action.
fn changed_form() -> Vec<AxFrame> {
    let mut frames = load("form");
    let nodes = &mut frames[0].nodes;
    for n in nodes.iter_mut() {
        match (n.role(), n.name()) {
            ("checkbox", "Send me the newsletter") => {
                for p in &mut n.properties {
                    if p.name == "checked" {
                        p.value.value = Some("false".into());
                    }
                }
            }
            ("textbox", "Email *") => {
                n.value = Some(AxValue {
                    kind: "string".into(),
                    value: Some("ada@example.com".into()),
                });
            }
            ("StaticText", "All fields marked * are required.") => {
                n.name = Some(AxValue {
                    kind: "computedString".into(),
                    value: Some("Please fix the errors below.".into()),
                });
            }
            _ => {}
        }
    }
    let reset = nodes
        .iter()
        .find(|n| n.role() == "button" && n.name() == "Reset")
        .unwrap()
        .node_id
        .clone();
    for n in nodes.iter_mut() {
        n.child_ids.retain(|c| *c != reset);
    }
    frames
}

#[test]
fn diff_lists_only_what_changed() {
    let mut table = Table::default();
    let before = render(&load("form"), &mut table, &Options::default()).text;
    let after = render(&changed_form(), &mut table, &Options::default()).text;
    assert_eq!(diff(&before, &before, 0), None);
    let d = diff(&before, &after, 0).unwrap();
    assert_eq!(
        d,
        "- All fields marked * are required.\n\
         + Please fix the errors below.\n\
         ~ textbox \"Email *\" required [e2]: ada@example.com (was empty)\n\
         ~ checkbox \"Send me the newsletter\" [e14] (was: checked)\n\
         - button \"Reset\" disabled [e33]\n"
    );
    let back = diff(&after, &before, 0).unwrap();
    assert!(
        back.contains("~ checkbox \"Send me the newsletter\" checked [e14] (was: not checked)\n"),
        "{back}"
    );
    assert!(
        back.contains("~ textbox \"Email *\" required [e2] (was: ada@example.com)\n"),
        "{back}"
    );
    assert!(
        back.contains("+ button \"Reset\" disabled [e33]\n"),
        "{back}"
    );

    // Bounded, with a marker.
    let small = diff(&before, &after, 120).unwrap();
    assert!(small.chars().count() <= 120, "{small}");
    assert!(
        small.ends_with("more changed lines; take a snapshot to see them\n"),
        "{small}"
    );
}

#[test]
fn diff_of_a_big_page_is_cheap_and_exact() {
    let frames = load("big");
    let mut table = Table::default();
    let before = render(&frames, &mut table, &Options::default()).text;
    let mut changed = frames.clone();
    let n = changed[0]
        .nodes
        .iter_mut()
        .find(|n| n.role() == "checkbox" && n.name() == "Pick item 500")
        .unwrap();
    for p in &mut n.properties {
        if p.name == "checked" {
            p.value.value = Some("true".into());
        }
    }
    let after = render(&changed, &mut table, &Options::default()).text;
    let t = std::time::Instant::now();
    let d = diff(&before, &after, 0).unwrap();
    let took = t.elapsed();
    assert_eq!(
        d,
        "~ checkbox \"Pick item 500\" checked [e1498] (was: not checked)\n"
    );
    assert!(took.as_millis() < 500, "{took:?}");
}

#[test]
fn deep_trees_do_not_overflow() {
    // 100,000 nested wrappers with a button at the bottom.
    let depth = 100_000;
    let mut nodes = Vec::with_capacity(depth + 2);
    for i in 0..depth {
        nodes.push(AxNode {
            node_id: i.to_string(),
            role: Some(AxValue {
                kind: "role".into(),
                value: Some(if i == 0 { "RootWebArea" } else { "group" }.into()),
            }),
            name: Some(AxValue {
                kind: "computedString".into(),
                value: Some(if i % 2 == 0 { "" } else { "g" }.into()),
            }),
            child_ids: vec![(i + 1).to_string()],
            backend_dom_node_id: Some(i as i64 + 1),
            parent_id: (i > 0).then(|| (i - 1).to_string()),
            ..Default::default()
        });
    }
    nodes.push(AxNode {
        node_id: depth.to_string(),
        role: Some(AxValue {
            kind: "role".into(),
            value: Some("button".into()),
        }),
        name: Some(AxValue {
            kind: "computedString".into(),
            value: Some("Deep".into()),
        }),
        backend_dom_node_id: Some(depth as i64 + 1),
        parent_id: Some((depth - 1).to_string()),
        ..Default::default()
    });
    let frames = [AxFrame {
        nodes,
        parent: None,
    }];
    let s = render(&frames, &mut Table::default(), &Options::default());
    assert!(s.text.contains("button \"Deep\" [e1]"));
    let max_indent = s
        .text
        .lines()
        .map(|l| l.len() - l.trim_start().len())
        .max()
        .unwrap();
    assert!(max_indent <= build::MAX_DEPTH as usize);
    let s = render(
        &frames,
        &mut Table::default(),
        &Options {
            max_chars: 2_000,
            find: Some("deep".into()),
            ..Default::default()
        },
    );
    assert!(s.truncated);
    assert!(s.text.chars().count() <= 2_000);
}

/// The big page twice over (a second copy of its document under the first root):
/// 6,000 controls, 32,000 AX nodes.
fn doubled(frames: &[AxFrame]) -> Vec<AxFrame> {
    let nodes = &frames[0].nodes;
    let shift = |id: &str| (id.parse::<i64>().unwrap() + 10_000_000).to_string();
    let mut copy: Vec<AxNode> = nodes[1..]
        .iter()
        .map(|n| {
            let mut n = n.clone();
            n.node_id = shift(&n.node_id);
            n.child_ids = n.child_ids.iter().map(|c| shift(c)).collect();
            n.parent_id = n.parent_id.as_deref().map(shift);
            n.backend_dom_node_id = n.backend_dom_node_id.map(|b| b + 10_000_000);
            n
        })
        .collect();
    let mut all = nodes.clone();
    let top = shift(&all[0].child_ids[0]);
    all[0].child_ids.push(top);
    all.append(&mut copy);
    vec![AxFrame {
        nodes: all,
        parent: None,
    }]
}

#[test]
fn big_page_is_fast() {
    let once = load("big");
    let twice = doubled(&once);
    for (frames, controls) in [(&once[..], 3000), (&twice[..], 6000)] {
        let mut table = Table::default();
        render(frames, &mut table, &Options::default());
        let mut best = std::time::Duration::MAX;
        let mut s = Snapshot::default();
        for _ in 0..3 {
            let t = std::time::Instant::now();
            s = render(frames, &mut table, &Options::default());
            best = best.min(t.elapsed());
        }
        assert_eq!(s.refs.len(), controls);
        eprintln!(
            "{} AX nodes -> {} chars, {} refs in {best:?}",
            frames[0].nodes.len(),
            s.text.chars().count(),
            s.refs.len()
        );
        // Generous, for unoptimized builds; release takes a few milliseconds.
        assert!(best.as_millis() < 3_000, "{best:?}");
    }
}

/// Time of each phase on the big page: `ROUNDS=30 DOUBLE=1 cargo test --release --lib
/// snapshot::tests::profile_phases -- --ignored --nocapture` (DOUBLE: the page twice over).
#[test]
#[ignore]
fn profile_phases() {
    let mut frames = load("big");
    if std::env::var_os("DOUBLE").is_some() {
        frames = doubled(&frames);
    }
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for _ in 0..rounds {
        let mut table = Table::default();
        let opts = Options::default();
        let neutral = ax::frames_from_ax(&frames);
        let t = std::time::Instant::now();
        let mut tree = build::build(&neutral, &opts).unwrap();
        let t1 = t.elapsed();
        tree.finalize();
        let t2 = t.elapsed();
        let s = layout::layout(&mut tree, &mut table, &opts);
        let t3 = t.elapsed();
        eprintln!(
            "build {t1:?} finalize {:?} layout {:?} ({})",
            t2 - t1,
            t3 - t2,
            s.text.len()
        );
    }
}

#[test]
fn diff_keeps_blocks_readable() {
    let before = "main\n h1 \"Files\"\n button \"Save\" [e3]\n - a.txt\n - b.txt\n status: Idle\n";
    let after = "main\n h1 \"Files\"\n button \"Saving…\" disabled [e3]\n - a.txt\n dialog \"Confirm\" modal\n  Really delete b.txt?\n  button \"OK\" [e7]\n status: Busy\n";
    assert_eq!(
        diff(before, after, 0).unwrap(),
        "~ button \"Saving…\" disabled [e3] (was: button \"Save\")\n\
         - - b.txt\n\
         - status: Idle\n\
         + dialog \"Confirm\" modal\n\
         +  Really delete b.txt?\n\
         +  button \"OK\" [e7]\n\
         + status: Busy\n"
    );
    // Folded lines and the budget marker are not content.
    let cut = format!("{before}[cut: 3 of 9 lines not shown]\n");
    assert_eq!(diff(before, &cut, 0), None);
}

#[test]
#[ignore]
fn print_page() {
    let page = std::env::var("PAGE").unwrap_or_else(|_| "app".into());
    print!("{}", snap(&page, &Options::default()).text);
}
