//! Embeds the extension's files in the binary, so `tabmux extension install` can write
//! them out on a machine that only ran `cargo install`.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let rel = p.strip_prefix(base).unwrap();
        // Unit tests stay in the repository; a config.json (secret) is never embedded.
        if rel.starts_with("test")
            || rel == Path::new("config.json")
            || rel
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if p.is_dir() {
            collect(&p, base, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let ext = root.join("extension");
    println!("cargo:rerun-if-changed=extension");
    let mut files = Vec::new();
    collect(&ext, &ext, &mut files);
    let mut code = String::from(
        "/// The extension's files: (path inside the extension, contents).\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f
            .strip_prefix(&ext)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("extension_files.rs");
    std::fs::write(out, code).unwrap();
}
