//! The port registry: which tabmux instance listens on which port.
//!
//! Every tabmux process claims one port of a range (default 8765–8775) for its whole
//! life. The claim is an OS file lock on `<state dir>/port-<p>.lock`, taken with
//! [`File::try_lock`], followed by a bind of `127.0.0.1:<p>`:
//!
//! - the lock is the truth: the kernel drops it when the process exits, however it
//!   exits (clean exit, panic, `SIGKILL`, power cut), so a lock that can be taken is
//!   stale by definition and there is no PID guessing;
//! - lock files are never deleted: deleting one would let two processes lock two
//!   different files of the same name (the old check-then-create race);
//! - the bind catches other programs that use a port of the range; such a port is
//!   skipped;
//! - metadata for `tabmux status` goes to `port-<p>.json`, always written to a
//!   temporary file and renamed over the old one, so a reader never sees half a file.
//!   It is removed on a clean exit while the lock is still held. The one of a killed
//!   instance is removed by the next instance that claims a port, or by `tabmux status`
//!   (after it reported it): only while holding that port's free lock, so a live
//!   instance's file is never touched.
//!
//! Lock files and listeners are opened close-on-exec (Rust's default), so a browser or
//! any other child process tabmux starts never inherits the claim.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, TryLockError};
use std::io::{self, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// First port of the default range.
pub const DEFAULT_FIRST_PORT: u16 = 8765;
/// Last port of the default range (inclusive).
pub const DEFAULT_LAST_PORT: u16 = 8775;
/// Environment variable that overrides the state directory.
pub const STATE_DIR_ENV: &str = "TABMUX_STATE_DIR";
/// Environment variable the CLI reads for the port range (named in error messages).
pub const PORTS_ENV: &str = "TABMUX_PORTS";

/// An inclusive range of TCP ports, `first..=last`, never empty and never containing 0.
///
/// Parses from `"9000-9010"` or a single port `"9000"`; displays the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

/// Why a port range was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Nothing to parse.
    #[error("empty port range: expected FIRST-LAST, e.g. 8765-8775, or a single port")]
    Empty,
    /// A part is not a number in 1–65535.
    #[error(
        "invalid port range \"{input}\": \"{part}\" is not a port number (1-65535); expected FIRST-LAST, e.g. 8765-8775"
    )]
    NotAPort {
        /// The whole text given.
        input: String,
        /// The part that is not a port.
        part: String,
    },
    /// Port 0 means "any port" to the OS; a range must name real ports.
    #[error("invalid port range: port 0 is not allowed (ports are 1-65535)")]
    Zero,
    /// `first` is above `last`.
    #[error("invalid port range {first}-{last}: the first port is above the last")]
    Reversed {
        /// First port given.
        first: u16,
        /// Last port given.
        last: u16,
    },
}

impl PortRange {
    /// A range `first..=last`; refuses port 0 and `first > last`.
    pub fn new(first: u16, last: u16) -> Result<Self, RangeError> {
        if first == 0 || last == 0 {
            return Err(RangeError::Zero);
        }
        if first > last {
            return Err(RangeError::Reversed { first, last });
        }
        Ok(Self { first, last })
    }

    /// First port (inclusive).
    pub fn first(&self) -> u16 {
        self.first
    }

    /// Last port (inclusive).
    pub fn last(&self) -> u16 {
        self.last
    }

    /// Number of ports in the range (at least 1).
    pub fn len(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// Always false: a range holds at least one port. Present for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// The ports in ascending order.
    pub fn ports(&self) -> impl Iterator<Item = u16> + use<> {
        self.first..=self.last
    }

    /// The same first port with ten more ports, for "widen it like this" hints.
    pub fn widened(&self) -> PortRange {
        PortRange {
            first: self.first,
            last: self.last.saturating_add(10),
        }
    }
}

impl Default for PortRange {
    fn default() -> Self {
        Self {
            first: DEFAULT_FIRST_PORT,
            last: DEFAULT_LAST_PORT,
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl FromStr for PortRange {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        if input.is_empty() {
            return Err(RangeError::Empty);
        }
        let port = |part: &str| -> Result<u16, RangeError> {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RangeError::NotAPort {
                    input: input.to_owned(),
                    part: part.to_owned(),
                });
            }
            part.parse::<u16>().map_err(|_| RangeError::NotAPort {
                input: input.to_owned(),
                part: part.to_owned(),
            })
        };
        match input.split_once('-') {
            Some((a, b)) => PortRange::new(port(a)?, port(b)?),
            None => {
                let p = port(input)?;
                PortRange::new(p, p)
            }
        }
    }
}

/// What `port-<p>.json` holds: who owns the port, for `tabmux status` and people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceMeta {
    /// Process id of the owner.
    pub pid: u32,
    /// Random id of this tabmux run (the same one the bridge announces).
    pub instance_id: String,
    /// The MCP client's name, once it has named itself.
    #[serde(default)]
    pub client_name: Option<String>,
    /// tabmux version of the owner.
    pub version: String,
    /// Start time, Unix milliseconds.
    pub started_ms: u64,
    /// The claimed port; [`claim_port`] and [`PortClaim::update_meta`] fill it in.
    #[serde(default)]
    pub port: u16,
    /// Browsers (extension connections) currently connected.
    #[serde(default)]
    pub browsers: u32,
}

impl InstanceMeta {
    /// Metadata for the current process: its pid, this crate's version, now as the
    /// start time, no client name yet.
    pub fn for_this_process(instance_id: impl Into<String>) -> Self {
        Self {
            pid: std::process::id(),
            instance_id: instance_id.into(),
            client_name: None,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_ms: unix_ms(),
            port: 0,
            browsers: 0,
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A fresh random instance id (32 hex digits).
///
/// Not a secret, just unique: it is drawn from the standard library's randomly seeded
/// hasher, mixed with the pid and the clock.
pub fn new_instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(32);
    for salt in 0u8..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(salt);
        h.write_u32(std::process::id());
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Errors of the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Every port of the range is taken.
    #[error(
        "no free port in {range}: every port is held by a live tabmux ({by_tabmux}) or by another program ({by_others}). \
         Widen the range with `--ports {widened}` or {PORTS_ENV}={widened}",
        widened = range.widened()
    )]
    RangeFull {
        /// The range that was searched.
        range: PortRange,
        /// Ports whose lock is held (a running tabmux).
        by_tabmux: usize,
        /// Ports whose lock was free but whose bind failed (another program).
        by_others: usize,
    },
    /// The state directory could not be found or made.
    #[error("tabmux state directory {}: {source}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file of the registry could not be opened, locked or written.
    #[error("port registry file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// The state directory, created if missing: a private directory (`0700`, owned by the
/// current user, not a symbolic link; see [`crate::secure_fs`]).
///
/// `TABMUX_STATE_DIR` if set and not empty; else on Linux and other Unixes
/// `$XDG_STATE_HOME/tabmux`, falling back to `~/.local/state/tabmux`; on macOS and
/// Windows the platform's local data directory (`~/Library/Application Support/tabmux`,
/// `%LOCALAPPDATA%\tabmux`).
pub fn default_state_dir() -> Result<PathBuf, RegistryError> {
    let dir = resolve_state_dir(std::env::var_os(STATE_DIR_ENV))?;
    crate::secure_fs::ensure_private_dir(&dir).map_err(|source| RegistryError::StateDir {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

fn resolve_state_dir(overridden: Option<OsString>) -> Result<PathBuf, RegistryError> {
    if let Some(dir) = overridden.filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let base = directories::BaseDirs::new().ok_or_else(|| RegistryError::StateDir {
        path: PathBuf::from("~"),
        source: io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot find the home directory; set {STATE_DIR_ENV}"),
        ),
    })?;
    let root = base.state_dir().unwrap_or_else(|| base.data_local_dir());
    Ok(root.join("tabmux"))
}

fn lock_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("port-{port}.lock"))
}

fn meta_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("port-{port}.json"))
}

/// Writes `port-<p>.json` through a temporary file and a rename.
fn write_meta(dir: &Path, port: u16, meta: &InstanceMeta) -> Result<(), RegistryError> {
    let mut meta = meta.clone();
    meta.port = port;
    let tmp = dir.join(format!(".port-{port}.json.{}.tmp", std::process::id()));
    let target = meta_path(dir, port);
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RegistryError::Io { path, source }
    };
    let mut bytes = serde_json::to_vec_pretty(&meta).expect("metadata serializes");
    bytes.push(b'\n');
    let written = crate::secure_fs::create_private(&tmp).and_then(|mut f| f.write_all(&bytes));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    fs::rename(&tmp, &target).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(&target)(e)
    })
}

/// A claimed port: the lock held for the life of this value, the bound listener, and
/// the metadata file.
///
/// Dropping it removes `port-<p>.json` (while the lock is still held) and then releases
/// the lock. Keep it alive as long as the process serves the port.
#[derive(Debug)]
pub struct PortClaim {
    port: u16,
    dir: PathBuf,
    listener: Option<TcpListener>,
    write: Mutex<()>,
    // Declared last: dropped after `Drop::drop` has removed the metadata.
    _lock: File,
}

impl PortClaim {
    /// The claimed port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The state directory the claim lives in.
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// Path of this claim's metadata file.
    pub fn meta_path(&self) -> PathBuf {
        meta_path(&self.dir, self.port)
    }

    /// The listener bound on `127.0.0.1:<port>` (blocking mode, as std makes it).
    /// Returns it once; later calls get `None`.
    pub fn take_listener(&mut self) -> Option<TcpListener> {
        self.listener.take()
    }

    /// Rewrites the metadata atomically (temporary file + rename), e.g. when the MCP
    /// client names itself or a browser connects. `meta.port` is set to this claim's
    /// port whatever it held.
    pub fn update_meta(&self, meta: &InstanceMeta) -> Result<(), RegistryError> {
        let _one_writer = self.write.lock().unwrap_or_else(|p| p.into_inner());
        write_meta(&self.dir, self.port, meta)
    }
}

impl Drop for PortClaim {
    fn drop(&mut self) {
        let _one_writer = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let path = meta_path(&self.dir, self.port);
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove port metadata");
        }
        // The lock file stays; the lock goes when `_lock` is closed right after this.
    }
}

/// Claims the first free port of `range`: lock `port-<p>.lock`, bind `127.0.0.1:<p>`,
/// write `port-<p>.json`.
///
/// A port whose lock is held (a live tabmux) or whose bind fails (another program) is
/// skipped. When none is left the error is [`RegistryError::RangeFull`].
pub fn claim_port(
    state_dir: &Path,
    range: PortRange,
    meta: &InstanceMeta,
) -> Result<PortClaim, RegistryError> {
    crate::secure_fs::ensure_private_dir(state_dir).map_err(|source| RegistryError::StateDir {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let (mut by_tabmux, mut by_others) = (0, 0);
    for port in range.ports() {
        let path = lock_path(state_dir, port);
        let lock = crate::secure_fs::open_private(&path).map_err(|source| RegistryError::Io {
            path: path.clone(),
            source,
        })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                tracing::debug!(port, "port held by another tabmux");
                by_tabmux += 1;
                continue;
            }
            Err(TryLockError::Error(source)) => return Err(RegistryError::Io { path, source }),
        }
        let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(port, error = %e, "port used by another program");
                by_others += 1;
                continue; // `lock` dropped here: released.
            }
        };
        write_meta(state_dir, port, meta)?;
        tracing::info!(port, "claimed port");
        let cleaned = clean_stale(state_dir);
        if !cleaned.is_empty() {
            tracing::info!(ports = ?cleaned, "removed metadata left by killed instances");
        }
        return Ok(PortClaim {
            port,
            dir: state_dir.to_path_buf(),
            listener: Some(listener),
            write: Mutex::new(()),
            _lock: lock,
        });
    }
    Err(RegistryError::RangeFull {
        range,
        by_tabmux,
        by_others,
    })
}

/// One port found in the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// The port.
    pub port: u16,
    /// Whether its lock is held right now (a live tabmux). False: stale.
    pub live: bool,
    /// The metadata, when `port-<p>.json` exists and parses.
    pub meta: Option<InstanceMeta>,
}

/// Every port that has a `port-<p>.lock` or `port-<p>.json` in `state_dir`, by port.
///
/// `live` is tested by trying the lock: for that instant the scanner holds a free
/// lock itself, so a tabmux starting at that very moment skips that port and takes
/// the next one. A missing or unreadable directory gives an empty list.
pub fn scan(state_dir: &Path) -> Vec<RegistryEntry> {
    let Ok(dir) = fs::read_dir(state_dir) else {
        return Vec::new();
    };
    let mut ports: Vec<u16> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix("port-")?;
            let digits = rest
                .strip_suffix(".lock")
                .or_else(|| rest.strip_suffix(".json"))?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse::<u16>().ok().filter(|p| *p != 0)
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
        .into_iter()
        .map(|port| RegistryEntry {
            port,
            live: lock_held(&lock_path(state_dir, port)),
            meta: crate::secure_fs::read_private(&meta_path(state_dir, port), false)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
        })
        .collect()
}

/// Removes the `port-<p>.json` of every port whose lock is free (its owner was killed
/// before it could remove it). Each file is removed while this process holds that
/// port's lock, so an instance claiming the port at the same moment is not affected.
/// Returns the ports cleaned.
pub fn clean_stale(state_dir: &Path) -> Vec<u16> {
    let mut cleaned = Vec::new();
    for e in scan(state_dir) {
        if e.live || !meta_path(state_dir, e.port).exists() {
            continue;
        }
        let Ok(file) = File::open(lock_path(state_dir, e.port)) else {
            continue;
        };
        if file.try_lock().is_ok() && fs::remove_file(meta_path(state_dir, e.port)).is_ok() {
            cleaned.push(e.port);
        }
    }
    cleaned
}

fn lock_held(path: &Path) -> bool {
    let Ok(file) = crate::secure_fs::open_existing(path) else {
        return false;
    };
    matches!(file.try_lock(), Err(TryLockError::WouldBlock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(
            "9000-9010".parse::<PortRange>().unwrap(),
            PortRange::new(9000, 9010).unwrap()
        );
        assert_eq!(" 9000 ".parse::<PortRange>().unwrap().len(), 1);
        assert_eq!("9000".parse::<PortRange>().unwrap().to_string(), "9000");
        assert_eq!(PortRange::default().to_string(), "8765-8775");
        assert_eq!(PortRange::default().len(), 11);
        assert!(matches!(
            "9010-9000".parse::<PortRange>(),
            Err(RangeError::Reversed { .. })
        ));
        assert!(matches!("0-10".parse::<PortRange>(), Err(RangeError::Zero)));
        assert!(matches!("".parse::<PortRange>(), Err(RangeError::Empty)));
        for bad in ["abc", "90000", "1-", "-5", "1-2-3", "+5", "5 - x"] {
            let e = bad.parse::<PortRange>().unwrap_err();
            assert!(matches!(e, RangeError::NotAPort { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("8765-8775"), "{e}");
        }
    }

    #[test]
    fn range_full_message_says_how_to_widen() {
        let e = RegistryError::RangeFull {
            range: PortRange::default(),
            by_tabmux: 10,
            by_others: 1,
        };
        let m = e.to_string();
        assert!(m.contains("8765-8775"), "{m}");
        assert!(m.contains("--ports 8765-8785"), "{m}");
        assert!(m.contains("TABMUX_PORTS=8765-8785"), "{m}");
    }

    #[test]
    fn state_dir_override_wins() {
        let d = resolve_state_dir(Some(OsString::from("/tmp/x-tabmux"))).unwrap();
        assert_eq!(d, PathBuf::from("/tmp/x-tabmux"));
        let d = resolve_state_dir(Some(OsString::new())).unwrap();
        assert!(d.ends_with("tabmux"));
    }

    #[test]
    fn instance_ids_differ() {
        let a = new_instance_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_instance_id());
    }
}
