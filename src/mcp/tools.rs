//! The one list of tools. Each is defined beside its handler (see [`super::tool`]);
//! `tools/list`, dispatch and the README's tool table all come from this list.

use super::tool::ToolDef;
use super::{act, look, nav, tabs};

/// Every tool tabmux offers, in the order `tools/list` shows them.
pub static TOOLS: &[ToolDef] = &[
    nav::NAVIGATE,
    nav::BACK,
    nav::FORWARD,
    nav::RELOAD,
    look::SNAPSHOT,
    act::CLICK,
    act::TYPE,
    act::HOVER,
    act::SELECT_OPTION,
    act::PRESS_KEY,
    act::FILL_FORM,
    act::DRAG,
    act::FILE_UPLOAD,
    act::HANDLE_DIALOG,
    nav::WAIT_FOR,
    look::EVALUATE,
    look::CONSOLE_MESSAGES,
    look::NETWORK_REQUESTS,
    look::SCREENSHOT,
    tabs::TABS,
    tabs::RESIZE,
    tabs::CLOSE,
];

/// The tool called `name`.
pub fn find(name: &str) -> Option<&'static ToolDef> {
    TOOLS.iter().find(|t| t.name == name)
}

/// The README's tool table: name, what it does, arguments (`?` when optional, values
/// of a choice in parentheses).
pub fn markdown_table() -> String {
    let mut out = String::from("| tool | what it does | arguments |\n| --- | --- | --- |\n");
    for t in TOOLS {
        let schema = (t.schema)();
        let required: Vec<&str> = schema
            .get("required")
            .and_then(|r| r.as_array())
            .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let mut args = Vec::new();
        if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
            let mut props: Vec<_> = props.iter().collect();
            props.sort_by_key(|(name, _)| !required.contains(&name.as_str()));
            for (name, p) in props {
                let mut a = format!("`{name}`");
                if !required.contains(&name.as_str()) {
                    a.push('?');
                }
                let choices = p
                    .get("enum")
                    .or_else(|| p.get("items").and_then(|i| i.get("enum")));
                if let Some(values) = choices.and_then(|e| e.as_array()) {
                    let v: Vec<&str> = values.iter().filter_map(|v| v.as_str()).collect();
                    a.push_str(&format!(" ({})", v.join("/")));
                }
                args.push(a);
            }
        }
        let description = t.description.replace('|', "\\|").replace('<', "&lt;");
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            t.name,
            description,
            if args.is_empty() {
                "—".to_string()
            } else {
                args.join(", ")
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_schemas_are_objects() {
        let mut seen = HashSet::new();
        for t in TOOLS {
            assert!(seen.insert(t.name), "{} is listed twice", t.name);
            assert!(t.name.starts_with("browser_"));
            assert!(!t.title.is_empty() && !t.description.is_empty());
            let s = (t.schema)();
            assert_eq!(s["type"], "object", "{}", t.name);
            let text = serde_json::to_string(&s).unwrap();
            for noise in [
                "$schema",
                "$defs",
                "$ref",
                "\"null\"",
                "\"format\"",
                "anyOf",
            ] {
                assert!(!text.contains(noise), "{}: {noise} in {text}", t.name);
            }
            let tool = t.to_tool();
            assert_eq!(
                tool.annotations.and_then(|a| a.title).as_deref(),
                Some(t.title)
            );
        }
    }

    const START: &str = "<!-- tools:start (generated from src/mcp/tools.rs; TABMUX_BLESS=1 cargo test --lib readme_tool_table rewrites it) -->\n";
    const END: &str = "<!-- tools:end -->";

    /// The README's tool table is generated from the list; `TABMUX_BLESS=1` rewrites it.
    #[test]
    fn readme_tool_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let (start, end) = match (readme.find(START), readme.find(END)) {
            (Some(s), Some(e)) => (s + START.len(), e),
            _ => panic!("README.md has no tools:start/tools:end block"),
        };
        let table = markdown_table();
        if readme[start..end] == table {
            return;
        }
        if std::env::var_os("TABMUX_BLESS").is_some() {
            let fresh = format!("{}{table}{}", &readme[..start], &readme[end..]);
            std::fs::write(path, fresh).unwrap();
            return;
        }
        panic!(
            "README.md's tool table is out of date: run TABMUX_BLESS=1 cargo test --lib readme_tool_table\n{table}"
        );
    }
}
