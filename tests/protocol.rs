//! The facts the Rust side shares with the extension (`extension/lib/protocol.js`) and
//! the golden frames both codecs must read alike (`extension/test/frames.golden.json`,
//! also run by `extension/test/protocol.test.js`). A fact changed on one side only
//! fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tabmux::bridge::codec::{self, Frame};
use tabmux::bridge::{self, BridgeConfig, Identity, WireError};

/// The object of `protocol.js`, which is kept strict JSON.
fn protocol() -> Value {
    let src = include_str!("../extension/lib/protocol.js");
    let start = src
        .find("deepFreeze({")
        .expect("protocol.js declares PROTOCOL")
        + 11;
    let end = start
        + src[start..]
            .find("\n});")
            .expect("PROTOCOL ends with `});`")
        + 2;
    serde_json::from_str(&src[start..end]).expect("the PROTOCOL object is strict JSON")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `pub const NAME: &str = "VALUE";` lines of a Rust file, as (NAME, VALUE).
fn str_consts(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": &str = ")?;
            let value = value.strip_suffix(';')?.trim_matches('"');
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn wire_constants_match_the_extension() {
    let p = protocol();
    assert_eq!(p["version"], json!(bridge::PROTOCOL_VERSION));
    let cfg = BridgeConfig::default();
    assert_eq!(p["maxBytes"]["toTabmux"], json!(cfg.max_in_bytes));
    assert_eq!(p["maxBytes"]["toExtension"], json!(cfg.max_out_bytes));
    assert_eq!(p["defaults"]["leaseMs"], json!(bridge::DEFAULT_LEASE_MS));
    assert_eq!(p["defaults"]["graceMs"], json!(bridge::DEFAULT_GRACE_MS));
    let id = Identity::new("i", "n");
    assert_eq!(id.lease_ms, bridge::DEFAULT_LEASE_MS);
    assert_eq!(id.grace_ms, bridge::DEFAULT_GRACE_MS);
}

#[test]
fn error_codes_match_the_extension_the_tools_and_the_docs() {
    let p = protocol();
    let wire: BTreeSet<String> = keys(&p["errors"]);
    let local: BTreeSet<String> = keys(&p["localErrors"]);
    let rust = str_consts(&root().join("src/bridge/error.rs"));
    for (name, value) in &rust {
        assert_eq!(name, value, "bridge::codes::{name} is spelled as its name");
    }
    let rust: BTreeSet<String> = rust.into_iter().map(|(n, _)| n).collect();
    let all: BTreeSet<String> = wire.union(&local).cloned().collect();
    assert_eq!(
        rust, all,
        "src/bridge/error.rs and extension/lib/protocol.js list the same wire codes"
    );
    // Every code a tool can see from the extension is a tool code too (only the
    // connection-level PROTOCOL_MISMATCH and UNAUTHORIZED never reach a tool).
    let tool: BTreeSet<String> = str_consts(&root().join("src/error.rs"))
        .into_iter()
        .map(|(n, v)| {
            assert_eq!(n, v);
            n
        })
        .collect();
    let connection_level = ["PROTOCOL_MISMATCH", "UNAUTHORIZED"];
    for code in wire
        .iter()
        .filter(|c| !connection_level.contains(&c.as_str()))
    {
        assert!(tool.contains(code), "{code} is missing from src/error.rs");
    }
    let doc = std::fs::read_to_string(root().join("docs/PROTOCOL.md")).unwrap();
    for code in &wire {
        assert!(
            doc.contains(&format!("| `{code}` |")),
            "{code} is missing from docs/PROTOCOL.md's error table"
        );
    }
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of `src/` (comments left out), file by file.
fn source() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let kept: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            (f, kept)
        })
        .collect()
}

#[test]
fn commands_that_need_frames_are_known_to_the_extension() {
    // The extension shows a hidden tab for the moment of these commands; a pointer or
    // screenshot command sent from Rust but missing from the list would stall.
    let p = protocol();
    let listed: BTreeSet<&str> = p["needsFrames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut used = BTreeSet::new();
    for (_, code) in source() {
        for part in code.split('"').skip(1).step_by(2) {
            let pointer = part.starts_with("Input.dispatch")
                && part.ends_with("Event")
                && part != "Input.dispatchKeyEvent";
            if pointer || part == "Page.captureScreenshot" {
                used.insert(part.to_string());
            }
        }
    }
    assert!(!used.is_empty());
    for m in &used {
        assert!(
            listed.contains(m.as_str()),
            "{m} needs a rendered tab: add it to needsFrames in extension/lib/protocol.js"
        );
    }
}

#[test]
fn fields_the_extension_trims_are_not_read() {
    let p = protocol();
    let t = &p["trimmed"]["Accessibility.getFullAXTree"];
    let mut names: Vec<String> = t["nodeFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    names.push("sources".into());
    for (file, code) in source() {
        for n in &names {
            let snake: String = n
                .chars()
                .flat_map(|c| {
                    if c.is_ascii_uppercase() {
                        vec!['_', c.to_ascii_lowercase()]
                    } else {
                        vec![c]
                    }
                })
                .collect();
            assert!(
                !code.contains(&format!("\"{n}\"")) && !code.contains(&format!("{snake}:")),
                "{} reads {n}, which the extension drops (extension/lib/protocol.js, trimmed)",
                file.display()
            );
        }
    }
}

/// A decoded frame in the golden shape.
fn shape(f: &Frame) -> Value {
    match f {
        Frame::Request {
            id,
            method,
            params,
            trace,
        } => {
            let mut v = json!({"kind": "request", "id": id, "method": method, "params": params});
            if let Some(t) = trace {
                v["trace"] = json!(t);
            }
            v
        }
        Frame::Reply { id, result } => json!({"kind": "reply", "id": id, "result": result}),
        Frame::Error { id, error } => {
            let WireError {
                code,
                message,
                data,
            } = error;
            let mut e = json!({"code": code, "message": message});
            if let Some(d) = data {
                e["data"] = d.clone();
            }
            json!({"kind": "error", "id": id, "error": e})
        }
        Frame::Event { event, params } => {
            json!({"kind": "event", "event": event, "params": params})
        }
    }
}

#[test]
fn golden_frames_decode_and_encode_as_the_extension_does() {
    let golden: Value =
        serde_json::from_str(include_str!("../extension/test/frames.golden.json")).unwrap();
    for c in golden["valid"].as_array().unwrap() {
        let text = c["text"].as_str().unwrap();
        let frame = codec::decode(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(shape(&frame), c["frame"], "{text}");
        let wire: Value = serde_json::from_str(&codec::encode(&frame)).unwrap();
        let want = match c.get("wire") {
            Some(w) => w.clone(),
            None => serde_json::from_str::<Value>(text).unwrap(),
        };
        assert_eq!(wire, want, "{text}");
    }
    for text in golden["invalid"].as_array().unwrap() {
        let text = text.as_str().unwrap();
        assert!(codec::decode(text).is_err(), "{text} decodes");
    }
    for c in golden["differ"].as_array().unwrap() {
        let text = c["text"].as_str().unwrap();
        let got = if codec::decode(text).is_ok() {
            "valid"
        } else {
            "invalid"
        };
        assert_eq!(got, c["rust"], "{text}");
    }
}
