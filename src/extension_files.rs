//! The tabmux extension, embedded in the binary at build time.

use std::io;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/extension_files.rs"));

/// The extension's version (from its manifest), if embedded.
pub fn version() -> Option<String> {
    let (_, manifest) = FILES.iter().find(|(p, _)| *p == "manifest.json")?;
    let v: serde_json::Value = serde_json::from_slice(manifest).ok()?;
    v["version"].as_str().map(str::to_string)
}

/// Writes the extension into `dir` (created if needed), replacing earlier copies of its
/// files. Returns how many files were written.
pub fn install(dir: &Path) -> io::Result<usize> {
    if FILES.is_empty() {
        return Err(io::Error::other(
            "this tabmux was built without its extension",
        ));
    }
    for (rel, bytes) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
    }
    Ok(FILES.len())
}

/// Whether `dir` holds exactly the embedded extension (same files, same bytes).
pub fn is_installed(dir: &Path) -> bool {
    !FILES.is_empty()
        && FILES
            .iter()
            .all(|(rel, bytes)| std::fs::read(dir.join(rel)).is_ok_and(|b| b == *bytes))
}
