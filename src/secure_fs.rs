//! Private files and directories: what tabmux keeps in its state directory (the
//! secret, port locks and metadata, logs, the shared browser's files) is the current
//! user's alone.
//!
//! - Directories are `0700`; files are `0600`.
//! - Nothing is followed through a symbolic link: the last component of every path is
//!   checked with `symlink_metadata` (directories) or opened with `O_NOFOLLOW` (files).
//! - The owner must be the current (effective) user. A directory of ours that is too
//!   open (an older tabmux made it `0755`) is tightened to `0700`; one owned by another
//!   user, or a symbolic link, is refused with an error that says how to fix it.
//!
//! On systems without Unix permissions these checks are skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

/// The current effective user id (0 where there is none).
pub fn current_uid() -> u32 {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }
    #[cfg(not(unix))]
    {
        0
    }
}

fn refused(path: &Path, why: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{}: {why}", path.display()),
    )
}

/// Checks that `meta` (of `path`) belongs to the current user.
#[cfg(unix)]
fn check_owner(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let me = current_uid();
    if meta.uid() != me {
        return Err(refused(
            path,
            format!(
                "owned by uid {}, not by you (uid {me}); tabmux keeps its state private. \
                 Remove it (or `chown -R {me} {}` if it is yours), or point TABMUX_STATE_DIR \
                 at a directory of your own",
                meta.uid(),
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Makes sure `path` is a private directory of the current user: created `0700` if
/// missing (its parents with the usual permissions), tightened to `0700` if it is ours
/// and more open, refused if it is a symbolic link, not a directory, or another user's.
pub fn ensure_private_dir(path: &Path) -> io::Result<()> {
    for _ in 0..3 {
        match fs::symlink_metadata(path) {
            Ok(meta) => return check_private_dir(path, &meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(parent)?;
                }
                #[cfg_attr(not(unix), allow(unused_mut))]
                let mut b = fs::DirBuilder::new();
                #[cfg(unix)]
                b.mode(0o700);
                match b.create(path) {
                    Ok(()) => {}
                    // Made by someone else meanwhile: check it on the next turn.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(refused(
        path,
        "keeps changing while it is being checked".into(),
    ))
}

fn check_private_dir(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    if meta.file_type().is_symlink() {
        return Err(refused(
            path,
            "is a symbolic link; tabmux does not follow links for its private directories. \
             Use the real directory instead (e.g. set TABMUX_STATE_DIR to it)"
                .into(),
        ));
    }
    if !meta.is_dir() {
        return Err(refused(path, "is not a directory".into()));
    }
    #[cfg(unix)]
    {
        check_owner(path, meta)?;
        if meta.mode() & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
            tracing::info!(path = %path.display(), "tightened to mode 0700");
        }
    }
    Ok(())
}

fn private_options(write: bool, create: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).write(write).create(create);
    #[cfg(unix)]
    o.mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    o
}

fn check_private_file(path: &Path, file: &File, strict: bool) -> io::Result<()> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refused(path, "is not a regular file".into()));
    }
    #[cfg(unix)]
    {
        check_owner(path, &meta)?;
        if meta.mode() & 0o077 != 0 {
            if strict {
                return Err(refused(
                    path,
                    format!(
                        "has mode {:04o}: other users may have read it. Delete it and run \
                         `tabmux secret rotate` (then reinstall the extension)",
                        meta.mode() & 0o7777
                    ),
                ));
            }
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = strict;
    Ok(())
}

fn nofollow_error(path: &Path, e: io::Error) -> io::Error {
    // O_NOFOLLOW on a symbolic link fails with ELOOP.
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return refused(
            path,
            "is a symbolic link; tabmux does not follow links for its private files".into(),
        );
    }
    let _ = path;
    e
}

/// Opens (creating `0600` if missing, never truncating) a private file for reading and
/// writing, e.g. a lock file. Refuses a symbolic link or another user's file; tightens
/// the mode of our own.
pub fn open_private(path: &Path) -> io::Result<File> {
    let f = private_options(true, true)
        .truncate(false)
        .open(path)
        .map_err(|e| nofollow_error(path, e))?;
    check_private_file(path, &f, false)?;
    Ok(f)
}

/// Opens an existing file read-only without following a symbolic link.
pub fn open_existing(path: &Path) -> io::Result<File> {
    private_options(false, false)
        .open(path)
        .map_err(|e| nofollow_error(path, e))
}

/// Creates (or truncates) a private file for writing, e.g. a log.
pub fn create_private(path: &Path) -> io::Result<File> {
    let f = open_private(path)?;
    f.set_len(0)?;
    Ok(f)
}

/// Reads a private file. With `strict`, a file readable by others is an error (for
/// secrets); else its mode is tightened.
pub fn read_private(path: &Path, strict: bool) -> io::Result<Vec<u8>> {
    let mut f = private_options(false, false)
        .open(path)
        .map_err(|e| nofollow_error(path, e))?;
    check_private_file(path, &f, strict)?;
    let mut buf = Vec::new();
    io::Read::read_to_end(&mut f, &mut buf)?;
    Ok(buf)
}

/// Writes `bytes` to `path` atomically: a fresh private temporary file beside it, then a
/// rename over the old one (a link is replaced, never followed).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_beside(path);
    write_new(&tmp, bytes)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Writes `bytes` to `path` only if `path` does not exist yet (atomically: readers see
/// no file or the whole file). Returns `false` when it already existed.
pub fn create_new_private(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let tmp = temp_beside(path);
    write_new(&tmp, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

fn temp_beside(path: &Path) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut o = private_options(true, false);
    o.create_new(true);
    let mut f = o.open(path).map_err(|e| nofollow_error(path, e))?;
    let written = f.write_all(bytes).and_then(|_| f.sync_all());
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tabmux-sfs-{tag}-{}-{}",
            std::process::id(),
            crate::registry::new_instance_id()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn dirs_are_made_and_tightened_to_0700() {
        let d = tmp("dir");
        ensure_private_dir(&d).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&d).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn links_are_refused() {
        let d = tmp("link");
        ensure_private_dir(&d).unwrap();
        let target = d.join("target");
        fs::create_dir(&target).unwrap();
        let link = d.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = ensure_private_dir(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let file = d.join("file");
        fs::write(&file, "x").unwrap();
        let flink = d.join("flink");
        std::os::unix::fs::symlink(&file, &flink).unwrap();
        let e = open_private(&flink).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = read_private(&flink, true).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // Writing over a link replaces the link; the target is untouched.
        write_private(&flink, b"new").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"x");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn files_are_0600_and_strict_reads_refuse_open_modes() {
        let d = tmp("file");
        ensure_private_dir(&d).unwrap();
        let f = d.join("f");
        assert!(create_new_private(&f, b"one").unwrap());
        assert!(!create_new_private(&f, b"two").unwrap());
        assert_eq!(fs::read(&f).unwrap(), b"one");
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_private(&f, true).unwrap_err();
        assert!(e.to_string().contains("mode 0644"), "{e}");
        assert_eq!(read_private(&f, false).unwrap(), b"one");
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        fs::remove_dir_all(&d).unwrap();
    }
}
