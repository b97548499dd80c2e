//! The shared browser: when no browser with the tabmux extension is around, the first
//! instance that needs one launches a Chromium with the extension preloaded and a
//! persistent tabmux profile. Every later instance finds that browser (its extension
//! discovers them), and the last instance to leave closes it after a short linger.
//!
//! Files in the state directory:
//! - `browser.lock` — held while deciding whether to launch (two instances starting at
//!   the same moment end up with one browser);
//! - `browser.json` — the launched browser's pid, executable and profile;
//! - `browser-profile/` — its profile; `extension/` — the extension it loads (written
//!   from the copy embedded in the binary, with `config.json` holding the secret and
//!   the port range);
//! - `browser.log` — its stderr.
//!
//! Next to the browser runs a small watcher (`tabmux watch-browser`, its own process
//! group): it closes the browser after the linger once no live instance is registered,
//! so a browser whose last instance was killed (no chance to leave) closes too. On
//! Windows a Job Object ends the browser's whole tree once neither an instance nor the
//! watcher runs (see [`super::tree`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::launch::{self, LaunchOptions};
use crate::error::{Error, Result, codes};
use crate::registry::{self, PortRange};

/// What is known about the browser tabmux launched for everyone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub pid: u32,
    pub executable: PathBuf,
    pub profile: PathBuf,
    pub started_ms: u64,
    pub headed: bool,
    /// The `tabmux watch-browser` process that closes this browser once no instance
    /// uses it, also when the last one was killed.
    #[serde(default)]
    pub watcher: Option<u32>,
}

/// Where the shared browser lives and how it is launched.
#[derive(Debug, Clone)]
pub struct Shared {
    pub state_dir: PathBuf,
    pub ports: PortRange,
    pub browser_path: Option<PathBuf>,
    /// `None`: headed when there is a display.
    pub headed: Option<bool>,
    pub extra_args: Vec<String>,
    /// How long the browser stays after the last instance left.
    pub linger: Duration,
}

/// The hidden subcommand that runs [`Shared::watch`].
pub const WATCH_COMMAND: &str = "watch-browser";

fn record_path(dir: &Path) -> PathBuf {
    dir.join("browser.json")
}

fn seen_path(dir: &Path) -> PathBuf {
    dir.join("extension-seen")
}

/// Notes in the state directory that a browser with the tabmux extension (the user's,
/// not the shared one) connected: from then on a first tool call waits a moment for it
/// before launching the shared browser.
pub fn record_extension_seen(dir: &Path) {
    let path = seen_path(dir);
    if !path.exists() {
        let _ = std::fs::write(&path, registry::unix_ms().to_string());
    }
}

impl Shared {
    /// Whether a browser with the extension has ever connected to an instance of this
    /// state directory.
    pub fn extension_seen(&self) -> bool {
        seen_path(&self.state_dir).exists()
    }
}

/// Whether a display is available for a headed browser.
pub fn has_display() -> bool {
    if cfg!(target_os = "linux") || cfg!(target_os = "freebsd") {
        std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
            || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
    } else {
        true
    }
}

/// Whether a process runs (and, where the system tells, has `marker` in its command line).
fn alive(pid: u32, marker: &Path) -> bool {
    if pid == 0 {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        match std::fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(cmd) => {
                let cmd = String::from_utf8_lossy(&cmd);
                // A zombie has an empty command line.
                !cmd.is_empty() && cmd.contains(&marker.display().to_string())
            }
            Err(_) => false,
        }
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        let _ = marker;
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid as i32, 0) == 0 }
    }
    #[cfg(windows)]
    {
        let _ = marker;
        super::tree::alive(pid)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = marker;
        true
    }
}

/// Holds `browser.lock` until dropped.
struct Guard(File);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn lock(dir: &Path, deadline: Instant) -> Result<Guard> {
    let path = dir.join("browser.lock");
    let f = crate::secure_fs::open_private(&path).map_err(|e| {
        Error::new(
            codes::NO_BROWSER,
            format!("cannot open {}: {e}", path.display()),
        )
    })?;
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(Guard(f)),
            Err(std::fs::TryLockError::WouldBlock) => {
                if Instant::now() > deadline {
                    return Err(Error::timeout(format!(
                        "another tabmux has been starting the shared browser for too long ({} is locked)",
                        path.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::new(
                    codes::NO_BROWSER,
                    format!("cannot lock {}: {e}", path.display()),
                ));
            }
        }
    }
}

impl Shared {
    pub fn profile_dir(&self) -> PathBuf {
        self.state_dir.join("browser-profile")
    }

    pub fn extension_dir(&self) -> PathBuf {
        self.state_dir.join("extension")
    }

    /// The record of a live shared browser, if one runs.
    pub fn running(&self) -> Option<Record> {
        let text = std::fs::read_to_string(record_path(&self.state_dir)).ok()?;
        let r: Record = serde_json::from_str(&text).ok()?;
        alive(r.pid, &r.profile).then_some(r)
    }

    /// Makes sure the shared browser runs: finds it, or launches it. Returns the record
    /// and whether this call launched it.
    pub fn ensure(&self) -> Result<(Record, bool)> {
        let _guard = lock(&self.state_dir, Instant::now() + Duration::from_secs(60))?;
        if let Some(r) = self.running() {
            // Windows: the browser's tree lives at least as long as this instance.
            super::tree::hold(r.pid);
            return Ok((r, false));
        }
        let r = self.launch()?;
        Ok((r, true))
    }

    fn prepare_extension(&self) -> Result<PathBuf> {
        let dir = self.extension_dir();
        let fail = |e: std::io::Error| {
            Error::new(
                codes::NO_BROWSER,
                format!("cannot write the extension into {}: {e}", dir.display()),
            )
        };
        let secret = crate::auth::load_or_create(&self.state_dir).map_err(fail)?;
        let config = serde_json::json!({
            "secret": secret.to_hex(),
            "managed": true,
            "ports": {"from": self.ports.first(), "to": self.ports.last()},
        });
        if !crate::extension_files::is_installed(&dir) {
            // Missing, or from another version: write it again.
            let _ = std::fs::remove_dir_all(&dir);
            crate::extension_files::install(&dir, &config).map_err(fail)?;
        } else {
            // An older tabmux may have left it open to others.
            crate::secure_fs::ensure_private_dir(&dir).map_err(fail)?;
            if crate::extension_files::read_config(&dir).as_ref() != Some(&config) {
                crate::extension_files::write_config(&dir, &config).map_err(fail)?;
            }
        }
        Ok(dir)
    }

    fn launch(&self) -> Result<Record> {
        let exe = launch::find_browser(self.browser_path.as_deref())?;
        refuse_branded_chrome(&exe)?;
        let ext = self.prepare_extension()?;
        let profile = self.profile_dir();
        crate::secure_fs::ensure_private_dir(&profile).map_err(|e| {
            Error::new(
                codes::NO_BROWSER,
                format!("cannot create {}: {e}", profile.display()),
            )
        })?;
        // No browser of ours runs: a lock left by a crashed one is stale.
        for f in ["SingletonLock", "SingletonSocket", "SingletonCookie"] {
            let _ = std::fs::remove_file(profile.join(f));
        }
        let headed = self.headed.unwrap_or_else(has_display);
        let opts = LaunchOptions {
            browser_path: Some(exe.clone()),
            headed,
            user_data_dir: Some(profile.clone()),
            extensions: vec![ext],
            extra_args: self.extra_args.clone(),
        };
        let mut args = launch::browser_args(&opts, &profile);
        // Not driven over a pipe: this browser outlives the instance that starts it.
        args.retain(|a| a != "--enable-unsafe-extension-debugging");
        args.push("--hide-crash-restore-bubble".into());
        // Agents' tabs keep running at full speed when their window is behind others.
        args.push("--disable-renderer-backgrounding".into());
        args.push("--disable-background-timer-throttling".into());
        args.push("--disable-backgrounding-occluded-windows".into());
        args.push("about:blank".into());
        let log = crate::secure_fs::create_private(&self.state_dir.join("browser.log")).ok();
        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.map(Stdio::from).unwrap_or_else(Stdio::null));
        detach(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| {
            Error::new(
                codes::NO_BROWSER,
                format!("cannot start {}: {e}", exe.display()),
            )
        })?;
        // Windows: its whole tree ends once no instance (nor the watcher) runs.
        super::tree::adopt(&child);
        // A browser that dies at once says why in its log.
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(700) {
            if let Ok(Some(status)) = child.try_wait() {
                let said =
                    std::fs::read_to_string(self.state_dir.join("browser.log")).unwrap_or_default();
                let tail: Vec<&str> = said.lines().rev().take(5).collect();
                return Err(Error::new(
                    codes::NO_BROWSER,
                    format!(
                        "{} exited at once ({status}): {}",
                        exe.display(),
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut record = Record {
            pid: child.id(),
            executable: exe,
            profile,
            started_ms: registry::unix_ms(),
            headed,
            watcher: None,
        };
        record.watcher = self.spawn_watcher(record.pid);
        reap_in_background(child);
        crate::secure_fs::write_private(
            &record_path(&self.state_dir),
            &serde_json::to_vec_pretty(&record).unwrap_or_default(),
        )
        .map_err(|e| Error::new(codes::NO_BROWSER, format!("cannot record the browser: {e}")))?;
        tracing::info!(pid = record.pid, headed, "launched the shared browser");
        Ok(record)
    }

    /// Starts `tabmux watch-browser` for the browser `pid`, detached from this instance.
    fn spawn_watcher(&self, pid: u32) -> Option<u32> {
        let exe = std::env::current_exe().ok()?;
        let mut cmd = Command::new(exe);
        cmd.arg("--linger")
            .arg(self.linger.as_secs_f64().to_string())
            .arg(WATCH_COMMAND)
            .arg("--pid")
            .arg(pid.to_string())
            .env(registry::STATE_DIR_ENV, &self.state_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        detach(&mut cmd);
        match cmd.spawn() {
            Ok(child) => {
                let id = child.id();
                reap_in_background(child);
                Some(id)
            }
            Err(e) => {
                tracing::warn!("cannot start the shared browser's watcher: {e}");
                None
            }
        }
    }

    /// The watcher's loop: returns when the browser `pid` is gone, or after closing it
    /// because no live instance was registered for the whole linger.
    pub fn watch(&self, pid: u32) {
        super::tree::hold(pid);
        // The instance that launched the browser starts this watcher first and records the
        // browser just after (the record names the watcher): a watcher that looked before
        // the record was written would leave at once, and nothing would close the browser.
        let recorded = Instant::now() + Duration::from_secs(10);
        while self.running().is_none_or(|r| r.pid != pid) && Instant::now() < recorded {
            std::thread::sleep(Duration::from_millis(50));
        }
        loop {
            match self.running() {
                Some(r) if r.pid == pid => {}
                _ => return,
            }
            if !self.others(None) && self.close_after_linger(None) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits the linger, then closes the shared browser if still no instance but
    /// `my_port` is registered. Returns whether nothing of it is left running.
    fn close_after_linger(&self, my_port: Option<u16>) -> bool {
        let until = Instant::now() + self.linger;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
            if self.others(my_port) {
                return false;
            }
        }
        self.close_if_unused(my_port)
    }

    /// Closes the shared browser under the lock when no instance but `my_port` is
    /// registered. Returns whether nothing of it is left running.
    fn close_if_unused(&self, my_port: Option<u16>) -> bool {
        let Ok(_guard) = lock(&self.state_dir, Instant::now() + Duration::from_secs(10)) else {
            return false;
        };
        if self.others(my_port) {
            return false;
        }
        if let Some(r) = self.running() {
            tracing::info!(
                pid = r.pid,
                "closing the shared browser: no instance uses it"
            );
            // The record goes first: once the browser is gone, so is its record.
            let _ = std::fs::remove_file(record_path(&self.state_dir));
            stop(r.pid, &r.profile);
        }
        true
    }

    /// Called when this instance leaves. The watcher closes the browser once nobody
    /// uses it; without a watcher, this instance waits the linger and closes the
    /// browser when still nobody came.
    pub fn leave(&self, my_port: Option<u16>) {
        let Some(record) = self.running() else {
            return;
        };
        if self.others(my_port) {
            return;
        }
        if record
            .watcher
            .is_some_and(|w| alive(w, Path::new(WATCH_COMMAND)))
        {
            return;
        }
        self.close_after_linger(my_port);
    }
}

impl Shared {
    /// Whether another live instance is registered in this state directory.
    fn others(&self, my_port: Option<u16>) -> bool {
        registry::scan(&self.state_dir)
            .iter()
            .any(|e| e.live && Some(e.port) != my_port)
    }
}

/// Puts the process `cmd` starts in its own process group, so it outlives the instance
/// that starts it (a client ending its process group ends only that) and can be ended
/// whole.
fn detach(cmd: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        // Out of the client's console: no Ctrl-C from it, no window of its own.
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        const CREATE_NO_WINDOW: u32 = 0x0800_0000;
        cmd.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW);
    }
}

/// Reaps `child` if it exits while this instance runs; after, the system adopts it.
fn reap_in_background(mut child: std::process::Child) {
    std::thread::spawn(move || {
        let _ = child.wait();
    });
}

/// Ends a browser's process group: politely, then for sure.
fn stop(pid: u32, profile: &Path) {
    #[cfg(unix)]
    {
        // SAFETY: signalling the process group of a browser tabmux launched.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGTERM);
        }
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until && alive(pid, profile) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = profile;
        super::tree::end(pid);
    }
}

/// Google Chrome 137 and later ignore `--load-extension`: say what to use instead.
fn refuse_branded_chrome(exe: &Path) -> Result<()> {
    let out = Command::new(exe)
        .arg("--version")
        .stderr(Stdio::null())
        .output();
    let Ok(out) = out else { return Ok(()) };
    let v = String::from_utf8_lossy(&out.stdout);
    let Some(rest) = v.trim().strip_prefix("Google Chrome ") else {
        return Ok(());
    };
    if rest.starts_with("for Testing") {
        return Ok(());
    }
    let major: u32 = rest
        .split('.')
        .next()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(0);
    if major >= 137 {
        return Err(Error::new(
            codes::NO_BROWSER,
            format!(
                "{} is Google Chrome {major}, which does not load extensions from the command line, so tabmux cannot set up a shared browser with it. Either install the tabmux extension in this Chrome (`tabmux extension install ~/tabmux-extension`, then chrome://extensions → Developer mode → Load unpacked) and keep Chrome open, or install Chromium (Debian/Ubuntu: `sudo apt-get install chromium`; macOS: `brew install --cask chromium`) and pass --browser-path, or use --launch for a private browser.",
                exe.display()
            ),
        ));
    }
    Ok(())
}
