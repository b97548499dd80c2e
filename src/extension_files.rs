//! The tabmux extension, embedded in the binary at build time, and how a copy of it is
//! written out (`tabmux extension install DIR`, the shared browser's copy).
//!
//! A written copy carries `config.json` with the per-install secret (see
//! [`crate::auth`]), so its folder is private like the state directory: created `0700`,
//! never written through a symbolic link, and only ever a new or empty folder, or one
//! that already holds a tabmux extension of the current user.

use std::io;
use std::path::Path;

use crate::secure_fs;

include!(concat!(env!("OUT_DIR"), "/extension_files.rs"));

/// The settings file of a written copy (the secret; the port range of a managed copy).
pub const CONFIG_FILE: &str = "config.json";

/// The extension's version (from its manifest), if embedded.
pub fn version() -> Option<String> {
    manifest_field(embedded_manifest()?, "version")
}

fn embedded_manifest() -> Option<&'static [u8]> {
    FILES
        .iter()
        .find(|(p, _)| *p == "manifest.json")
        .map(|(_, b)| *b)
}

fn manifest_field(bytes: &[u8], key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v[key].as_str().map(str::to_string)
}

fn refuse(dir: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{}: {why}", dir.display()),
    )
}

/// Whether `dir` is a folder that may receive the extension: missing, empty, or
/// holding a tabmux extension (same manifest name and key). Symbolic links and other
/// users' folders are refused by [`secure_fs::ensure_private_dir`].
fn check_target(dir: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(m) => m,
    };
    if meta.file_type().is_symlink() || !meta.is_dir() {
        // ensure_private_dir says why.
        return Ok(());
    }
    let mut entries = std::fs::read_dir(dir)?;
    if entries.next().is_none() {
        return Ok(());
    }
    let ours = embedded_manifest().and_then(|m| manifest_field(m, "key"));
    let theirs = secure_fs::open_existing(&dir.join("manifest.json"))
        .ok()
        .and_then(|mut f| {
            let mut b = Vec::new();
            io::Read::read_to_end(&mut f, &mut b).ok()?;
            manifest_field(&b, "key")
        });
    if ours.is_none() || theirs != ours {
        return Err(refuse(
            dir,
            "is not empty and does not hold the tabmux extension; choose a new or empty folder",
        ));
    }
    Ok(())
}

/// Writes the extension into `dir` with `config` as its `config.json`. `dir` is created
/// `0700` if missing; an existing one must be empty or hold a tabmux extension, be the
/// current user's and not a symbolic link (it is made `0700`). Files are replaced, never
/// written through links. Returns how many files were written (`config.json` included).
pub fn install(dir: &Path, config: &serde_json::Value) -> io::Result<usize> {
    if FILES.is_empty() {
        return Err(io::Error::other(
            "this tabmux was built without its extension",
        ));
    }
    check_target(dir)?;
    secure_fs::ensure_private_dir(dir)?;
    for (rel, bytes) in FILES {
        let path = dir.join(rel);
        let mut sub = dir.to_path_buf();
        if let Some(parent) = Path::new(rel).parent() {
            for c in parent.components() {
                sub.push(c);
                secure_fs::ensure_private_dir(&sub)?;
            }
        }
        secure_fs::write_private(&path, bytes)?;
    }
    write_config(dir, config)?;
    Ok(FILES.len() + 1)
}

/// Writes `config.json` into an installed copy (replaced, never through a link).
pub fn write_config(dir: &Path, config: &serde_json::Value) -> io::Result<()> {
    secure_fs::write_private(&dir.join(CONFIG_FILE), config.to_string().as_bytes())
}

/// `config.json` of an installed copy, if it reads.
pub fn read_config(dir: &Path) -> Option<serde_json::Value> {
    let b = secure_fs::read_private(&dir.join(CONFIG_FILE), false).ok()?;
    serde_json::from_slice(&b).ok()
}

/// Whether `dir` holds exactly the embedded extension (same files, same bytes).
pub fn is_installed(dir: &Path) -> bool {
    !FILES.is_empty()
        && FILES
            .iter()
            .all(|(rel, bytes)| std::fs::read(dir.join(rel)).is_ok_and(|b| b == *bytes))
}
