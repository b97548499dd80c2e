//! What a client may reach beyond its tabs: which URLs `browser_navigate` opens, and
//! which files tools read (uploads) or write (screenshots).
//!
//! - No browser or extension pages (`chrome:`, `chrome-extension:`, `devtools:`, …),
//!   no `about:` page but `about:blank`, also when wrapped (`view-source:`, `blob:`,
//!   `filesystem:`): `FORBIDDEN_URL`.
//! - Files only inside the client's MCP roots (`roots/list`, asked at each use when the
//!   client has the roots capability; else tabmux's working directory), after resolving
//!   symlinks: `FILE_OUTSIDE_ROOTS` names the roots. `file://` URLs follow the same rule.
//!   `--allow-unrestricted-file-access` lifts the roots rule.
//! - A screenshot never overwrites a file and never writes through a symlink
//!   (`O_CREAT|O_EXCL|O_NOFOLLOW`): `FILE_EXISTS`. The flag does not lift this.

use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rmcp::{Peer, RoleServer};

use crate::error::{Error, Result, codes};

/// How long a client has to answer `roots/list`.
const ROOTS_DEADLINE: Duration = Duration::from_secs(5);

/// Schemes whose pages no client may open.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "chrome",
    "chrome-extension",
    "chrome-untrusted",
    "devtools",
    "chrome-search",
    "chrome-devtools",
    "edge",
    "brave",
    "opera",
    "vivaldi",
    "extension",
    "moz-extension",
    "isolated-app",
];

/// What a URL is, for the navigation rule.
#[derive(Debug, PartialEq, Eq)]
pub enum UrlKind {
    /// Any web page (or about:blank, data:, javascript:).
    Allowed,
    /// A local file: allowed inside the roots.
    File(PathBuf),
    /// Never: the reason.
    Forbidden(&'static str),
}

/// Classifies a URL the way the browser will read it (leading/trailing spaces and
/// control characters dropped, tabs and newlines removed, scheme case-insensitive).
pub fn classify_url(url: &str) -> UrlKind {
    let cleaned: String = url
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    classify_clean(&cleaned, 0)
}

fn classify_clean(u: &str, depth: u32) -> UrlKind {
    if depth > 4 {
        return UrlKind::Forbidden("a URL nested too deeply");
    }
    let Some(colon) = u.find(':') else {
        return UrlKind::Allowed;
    };
    let scheme = &u[..colon];
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid {
        return UrlKind::Allowed;
    }
    let scheme = scheme.to_ascii_lowercase();
    let rest = &u[colon + 1..];
    if FORBIDDEN_SCHEMES.contains(&scheme.as_str()) {
        return UrlKind::Forbidden(
            "the browser's and extensions' own pages are off limits (they could reach other tabs)",
        );
    }
    match scheme.as_str() {
        "about" => {
            let what = rest.split(['?', '#']).next().unwrap_or("");
            if what.eq_ignore_ascii_case("blank") || what.eq_ignore_ascii_case("srcdoc") {
                UrlKind::Allowed
            } else {
                UrlKind::Forbidden("about: pages other than about:blank are off limits")
            }
        }
        "view-source" | "blob" | "filesystem" => classify_clean(rest, depth + 1),
        "file" => match file_url_path(u) {
            Some(p) => UrlKind::File(p),
            None => UrlKind::Forbidden("only file:///absolute/path URLs on this machine"),
        },
        _ => UrlKind::Allowed,
    }
}

/// `file:///a/b%20c` or `file://localhost/a` → `/a/b c`; other hosts are refused.
fn file_url_path(u: &str) -> Option<PathBuf> {
    let rest = u.get(5..)?; // after "file:"
    let rest = rest.strip_prefix("//")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or("/");
    Some(PathBuf::from(percent_decode(path)?))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The real path of `p` (absolute): symlinks resolved for the part that exists, the
/// missing rest appended as written (without `..`).
fn resolve(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = std::fs::canonicalize(p) {
        return Some(c);
    }
    let name = p.file_name()?;
    if matches!(
        Path::new(name).components().next(),
        Some(Component::ParentDir)
    ) {
        return None;
    }
    Some(resolve(p.parent()?)?.join(name))
}

/// The client's file boundary for one MCP session.
pub struct Files {
    unrestricted: bool,
    peer: Mutex<Option<Peer<RoleServer>>>,
}

impl Files {
    pub fn new(unrestricted: bool) -> Files {
        Files {
            unrestricted,
            peer: Mutex::new(None),
        }
    }

    /// The client, once it said `initialize` (its capabilities tell whether it has roots).
    pub fn set_peer(&self, peer: Peer<RoleServer>) {
        *self.peer.lock().unwrap() = Some(peer);
    }

    /// The roots, as real paths: the client's (`roots/list`) when it has the roots
    /// capability, else the working directory. (Roots are how clients of the
    /// 2025-11-25 protocol name their workspace; a later revision replaces them.)
    #[allow(deprecated)]
    pub async fn roots(&self) -> Result<Vec<PathBuf>> {
        let peer = self.peer.lock().unwrap().clone();
        let asks = peer.as_ref().is_some_and(|p| {
            p.peer_info()
                .is_some_and(|i| i.capabilities.roots.is_some())
        });
        let Some(peer) = peer.filter(|_| asks) else {
            let cwd = std::env::current_dir().map_err(|e| {
                Error::new(
                    codes::FILE_OUTSIDE_ROOTS,
                    format!(
                        "the client has no roots and the working directory is unreadable ({e})"
                    ),
                )
            })?;
            return Ok(vec![std::fs::canonicalize(&cwd).unwrap_or(cwd)]);
        };
        let listed = tokio::time::timeout(ROOTS_DEADLINE, peer.list_roots())
            .await
            .map_err(|_| {
                Error::new(
                    codes::FILE_OUTSIDE_ROOTS,
                    format!(
                        "the client did not answer roots/list within {} s, so no file is inside its roots",
                        ROOTS_DEADLINE.as_secs()
                    ),
                )
            })?
            .map_err(|e| {
                Error::new(
                    codes::FILE_OUTSIDE_ROOTS,
                    format!("the client's roots/list failed ({e}), so no file is inside its roots"),
                )
            })?;
        Ok(listed
            .roots
            .iter()
            .filter_map(|r| match classify_url(&r.uri) {
                UrlKind::File(p) => Some(std::fs::canonicalize(&p).unwrap_or(p)),
                _ => None,
            })
            .collect())
    }

    /// `path` (absolute, real) is inside one of the roots, or the flag is on.
    async fn inside(&self, path: &Path, shown: &str) -> Result<()> {
        if self.unrestricted {
            return Ok(());
        }
        let roots = self.roots().await?;
        if roots.iter().any(|r| path.starts_with(r)) {
            return Ok(());
        }
        let list = if roots.is_empty() {
            "the client listed none".to_string()
        } else {
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let real = if Path::new(shown) == path {
            String::new()
        } else {
            format!(" (really {})", path.display())
        };
        Err(Error::new(
            codes::FILE_OUTSIDE_ROOTS,
            format!(
                "{shown}{real} is outside the client's roots ({list}); use a file inside them, add a root in the client, or start tabmux with --allow-unrestricted-file-access"
            ),
        ))
    }

    /// An existing file to upload: its real path, inside the roots.
    pub async fn readable(&self, p: &str) -> Result<PathBuf> {
        let path = Path::new(p);
        if !path.is_absolute() {
            return Err(Error::bad_request(format!(
                "{p:?} is not an absolute path; give the full path of the file"
            )));
        }
        let real = resolve(path).ok_or_else(|| Error::bad_request(format!("bad path {p:?}")))?;
        self.inside(&real, p).await?;
        if !real.is_file() {
            return Err(Error::new(
                codes::NOT_FOUND,
                format!("{p:?} does not exist or is not a file"),
            ));
        }
        Ok(real)
    }

    /// Checks a navigation: `FORBIDDEN_URL`, or a `file://` URL outside the roots.
    pub async fn check_url(&self, url: &str) -> Result<()> {
        match classify_url(url) {
            UrlKind::Allowed => Ok(()),
            UrlKind::Forbidden(why) => Err(Error::new(
                codes::FORBIDDEN_URL,
                format!(
                    "{} can't be opened: {why}; open a web page instead",
                    url.chars().take(100).collect::<String>()
                ),
            )),
            UrlKind::File(p) => {
                let real = resolve(&p).ok_or_else(|| {
                    Error::new(codes::FORBIDDEN_URL, format!("bad file URL {url:?}"))
                })?;
                self.inside(&real, &p.display().to_string()).await
            }
        }
    }

    /// Writes `bytes` to a new file `name` (relative to the first root): never over an
    /// existing file, never through a symlink. Returns the path written.
    pub async fn create_new(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let given = Path::new(name);
        let path = if given.is_absolute() {
            given.to_path_buf()
        } else {
            let roots = self.roots().await?;
            let base = match roots.first() {
                Some(r) => r.clone(),
                None => std::env::current_dir()
                    .map_err(|e| Error::bad_request(format!("no directory to write to: {e}")))?,
            };
            base.join(given)
        };
        let file = path
            .file_name()
            .filter(|f| !matches!(Path::new(f).components().next(), Some(Component::ParentDir)))
            .ok_or_else(|| Error::bad_request(format!("{name:?} does not name a file")))?;
        let dir = path.parent().unwrap_or(Path::new("/"));
        let dir = std::fs::canonicalize(dir).map_err(|e| {
            Error::bad_request(format!(
                "cannot write {name:?}: its directory {} is not there ({e})",
                dir.display()
            ))
        })?;
        let target = dir.join(file);
        self.inside(&target, name).await?;
        write_new(&target, bytes)?;
        Ok(target)
    }
}

/// Creates `path` exclusively (`O_EXCL`, and `O_NOFOLLOW` for the last component).
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    let mut f = o.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists || is_symlink_refusal(&e) {
            Error::new(
                codes::FILE_EXISTS,
                format!(
                    "{} already exists (or is a symlink); tabmux never overwrites a file: choose a new name",
                    path.display()
                ),
            )
        } else {
            Error::bad_request(format!("cannot write {}: {e}", path.display()))
        }
    })?;
    if let Err(e) = f.write_all(bytes).and_then(|_| f.sync_all()) {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(Error::bad_request(format!(
            "cannot write {}: {e}",
            path.display()
        )));
    }
    Ok(())
}

/// `O_NOFOLLOW` met a symlink (`ELOOP`).
fn is_symlink_refusal(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for u in [
            "chrome-extension://knlmfncphidfkjhbiidejbkkebcfedhd/popup/popup.html",
            " CHROME-EXTENSION://x/y",
            "chrome-ext\tension://x/y",
            "chrome://settings",
            "devtools://devtools/bundled/inspector.html",
            "chrome-untrusted://print",
            "view-source:chrome://version",
            "view-source:view-source:chrome-extension://x/a",
            "blob:chrome-extension://x/1",
            "filesystem:chrome-extension://x/temporary/a",
            "about:settings",
            "about:version",
            "file://otherhost/share/a",
        ] {
            assert!(
                matches!(classify_url(u), UrlKind::Forbidden(_)),
                "{u} is refused"
            );
        }
        for u in [
            "https://example.com/",
            "http://127.0.0.1:8080/",
            "about:blank",
            "about:blank#top",
            "data:text/html,<p>a b</p>",
            "view-source:https://example.com/",
            "javascript:void 0",
        ] {
            assert_eq!(classify_url(u), UrlKind::Allowed, "{u}");
        }
        assert_eq!(
            classify_url("file:///tmp/a%20b.html?x#y"),
            UrlKind::File("/tmp/a b.html".into())
        );
        assert_eq!(
            classify_url("view-source:file://localhost/etc/passwd"),
            UrlKind::File("/etc/passwd".into())
        );
    }

    #[tokio::test]
    async fn files_inside_the_working_directory() {
        let files = Files::new(false);
        let cwd = std::fs::canonicalize(std::env::current_dir().unwrap()).unwrap();
        assert_eq!(files.roots().await.unwrap(), vec![cwd.clone()]);
        let inside = cwd.join("Cargo.toml");
        assert_eq!(
            files.readable(inside.to_str().unwrap()).await.unwrap(),
            inside
        );
        let e = files.readable("/etc/hostname").await.unwrap_err();
        assert!(e.is(codes::FILE_OUTSIDE_ROOTS), "{e}");
        assert!(e.message.contains(&cwd.display().to_string()), "{e}");
        let e = files
            .readable(&format!("{}/../../etc/passwd", cwd.display()))
            .await
            .unwrap_err();
        assert!(e.is(codes::FILE_OUTSIDE_ROOTS), "{e}");
        assert!(files.check_url("file:///etc/passwd").await.is_err());
        assert!(
            Files::new(true)
                .check_url("file:///etc/passwd")
                .await
                .is_ok()
        );
        assert!(
            Files::new(true)
                .check_url("chrome://settings")
                .await
                .is_err()
        );
    }
}
