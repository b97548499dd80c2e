//! The accessibility tree as the oracle of the in-page collector: every fixture page and
//! a corpus of recorded real-world pages (`tests/corpus/`: a rustdoc page and a Rust book
//! chapter with their CSS and scripts, a form-heavy checkout, a script-rendered board app, a rich-text editor)
//! is snapshotted through the real path (MCP client → tabmux → Chromium) from both
//! sources, and the (role, name) of every interactive element and heading are compared.
//!
//! Required: every such element of the accessibility tree is present in the collector's
//! snapshot (per role, at least as many), and ≥ 99.5 % of them agree on (role, name)
//! over the whole corpus. The kinds of difference that are allowed are listed in
//! [`allowed`], each with why.

mod common;

use std::collections::HashMap;

use serde_json::json;

use common::{Client, Fixtures, require_chromium};

/// One interactive element (a line with a ref) or heading of a snapshot.
type Item = (String, String);

/// The items of a snapshot text: `role "name" … [eN]` lines and `hN "name"` lines.
fn items(text: &str) -> Vec<Item> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut l = line.trim_start();
        // List bullets: "- " or "12. ".
        if let Some(rest) = l.strip_prefix("- ") {
            l = rest;
        } else if let Some(dot) = l.find(". ")
            && dot > 0
            && l[..dot].bytes().all(|b| b.is_ascii_digit())
        {
            l = &l[dot + 2..];
        }
        let role: String = l
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if role.is_empty() || !role.starts_with(|c: char| c.is_ascii_lowercase()) {
            continue;
        }
        let rest = &l[role.len()..];
        let (name, after) = match rest.strip_prefix(" \"") {
            Some(q) => {
                let mut end = None;
                let b = q.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    match b[i] {
                        b'\\' => i += 1,
                        b'"' => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                match end {
                    Some(e) => (q[..e].to_string(), &q[e + 1..]),
                    None => continue,
                }
            }
            None => (String::new(), rest),
        };
        let heading = role.len() == 2 && role.starts_with('h') && role[1..].parse::<u8>().is_ok();
        if heading || has_ref(after) {
            out.push((role, name));
        }
    }
    out
}

fn has_ref(s: &str) -> bool {
    s.split('[').skip(1).any(|p| {
        p.strip_prefix('e').is_some_and(|d| {
            let digits: String = d.chars().take_while(char::is_ascii_digit).collect();
            !digits.is_empty() && d[digits.len()..].starts_with(']')
        })
    })
}

/// Differences allowed between the accessibility tree and the collector, and why. An
/// item of the accessibility tree that matches one of these is not required.
fn allowed(item: &Item) -> Option<&'static str> {
    match item.0.as_str() {
        // Elements the browser lists as focusable only because a script may focus them
        // (`tabindex="-1"` on a generic container: skip-link targets, rustdoc's main
        // section). Nothing to click or type into; the collector gives refs to elements
        // in the tab order and to widgets, so these generic lines have no ref there.
        "generic" => Some("generic containers focusable only by script"),
        _ => None,
    }
}

struct Tally {
    required: usize,
    agreed: usize,
    missing: Vec<String>,
    differing: Vec<String>,
}

/// Compares one page's snapshots; returns the page's (required, agreed).
fn compare(page: &str, ax: &str, col: &str, tally: &mut Tally) {
    let mut want: HashMap<Item, usize> = HashMap::new();
    for it in items(ax) {
        if allowed(&it).is_none() {
            *want.entry(it).or_default() += 1;
        }
    }
    let mut have: HashMap<Item, usize> = HashMap::new();
    for it in items(col) {
        *have.entry(it).or_default() += 1;
    }
    let mut roles_want: HashMap<&str, usize> = HashMap::new();
    let mut roles_have: HashMap<&str, usize> = HashMap::new();
    let (mut required, mut agreed) = (0, 0);
    for (it, n) in &want {
        required += n;
        agreed += (*n).min(have.get(it).copied().unwrap_or(0));
        *roles_want.entry(it.0.as_str()).or_default() += n;
        if have.get(it).copied().unwrap_or(0) < *n {
            tally
                .differing
                .push(format!("{page}: {} {:?} (accessibility tree)", it.0, it.1));
        }
    }
    for (it, n) in &have {
        *roles_have.entry(it.0.as_str()).or_default() += n;
    }
    for (role, n) in &roles_want {
        let h = roles_have.get(role).copied().unwrap_or(0);
        if h < *n {
            tally.missing.push(format!(
                "{page}: {role}: {n} in the accessibility tree, {h} collected"
            ));
        }
    }
    eprintln!("{page}: {agreed}/{required} agree");
    tally.required += required;
    tally.agreed += agreed;
}

fn corpus(name: &str) -> String {
    format!("file://{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn testdata(name: &str) -> String {
    format!(
        "file://{}/src/snapshot/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_agrees_with_the_accessibility_tree() {
    require_chromium();
    let fx = Fixtures::start().await;
    // The accessibility tree of the rustdoc page takes seconds on a loaded machine.
    // The pages are files of the repository: the client lists it as one of its roots.
    let opts = common::Opts {
        roots: Some(vec![
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::env::temp_dir(),
        ]),
        cwd: None,
    };
    let c = Client::start_opts(
        "oracle-test",
        &["--launch", "--command-timeout", "120"],
        opts,
    )
    .await;
    let mut pages: Vec<(String, String)> = Vec::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut fixtures: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".html"))
        .collect();
    fixtures.sort();
    for f in fixtures {
        pages.push((f.clone(), fx.url(&f)));
    }
    for t in ["form", "content", "app", "shadow", "big"] {
        pages.push((format!("testdata/{t}.html"), testdata(&format!("{t}.html"))));
    }
    for p in [
        "rustdoc-vec.html",
        "book-vectors.html",
        "form-heavy.html",
        "spa.html",
        "editor.html",
    ] {
        pages.push((format!("corpus/{p}"), corpus(p)));
    }
    let mut tally = Tally {
        required: 0,
        agreed: 0,
        missing: Vec::new(),
        differing: Vec::new(),
    };
    for (name, url) in &pages {
        c.ok("browser_navigate", json!({"url": url})).await;
        let ax = c
            .ok("browser_snapshot", json!({"source": "ax", "maxChars": 0}))
            .await;
        let col = c
            .ok(
                "browser_snapshot",
                json!({"source": "collector", "maxChars": 0}),
            )
            .await;
        compare(name, &ax.text, &col.text, &mut tally);
    }
    let rate = tally.agreed as f64 / tally.required.max(1) as f64;
    eprintln!(
        "{} of {} interactive elements and headings agree on (role, name): {:.2} %",
        tally.agreed,
        tally.required,
        rate * 100.0
    );
    for d in tally.differing.iter().take(40) {
        eprintln!("  differs: {d}");
    }
    assert!(
        tally.required > 5_000,
        "the corpus is smaller than expected ({} items): did the pages load?",
        tally.required
    );
    assert!(
        tally.missing.is_empty(),
        "elements missing from the collector's snapshot:\n{}",
        tally.missing.join("\n")
    );
    assert!(
        rate >= 0.995,
        "(role, name) agreement {:.2} % is below 99.5 %:\n{}",
        rate * 100.0,
        tally.differing.join("\n")
    );
}

#[test]
fn items_are_read_from_snapshot_lines() {
    let text = "nav \"Main\"\n - link \"Docs\" [e1]\n h2 \"Intro\"\n 3. button \"Go \\\"now\\\"\" pressed [e7]: x\n textbox [e8]\n generic \"x\"\n";
    assert_eq!(
        items(text),
        vec![
            ("link".into(), "Docs".into()),
            ("h2".into(), "Intro".into()),
            ("button".into(), "Go \\\"now\\\"".into()),
            ("textbox".into(), String::new()),
        ]
    );
}
