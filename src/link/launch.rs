//! Finding and launching Chromium/Chrome.
//!
//! On Unix the browser is driven over `--remote-debugging-pipe` (fds 3 and 4): no port
//! is opened, and the browser exits by itself when tabmux goes away, even if tabmux is
//! killed. Elsewhere it falls back to `--remote-debugging-port=0`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cdp::CdpConnection;
use crate::error::{Error, Result, codes};

/// How to launch a browser.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    pub browser_path: Option<PathBuf>,
    pub headed: bool,
    /// A profile to use and keep; `None` makes a temporary one, removed on exit.
    pub user_data_dir: Option<PathBuf>,
    /// Unpacked extension directories to load.
    pub extensions: Vec<PathBuf>,
    pub extra_args: Vec<String>,
}

/// A running browser that tabmux started.
pub struct Launched {
    child: Option<Child>,
    temp_profile: Option<PathBuf>,
    pub conn: CdpConnection,
    pub executable: PathBuf,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

const NOT_FOUND_HELP: &str = "no Chromium or Chrome found. Install one — Debian/Ubuntu: `sudo apt-get install chromium`; Fedora: `sudo dnf install chromium`; Arch: `sudo pacman -S chromium`; macOS: `brew install --cask chromium` or Google Chrome from google.com/chrome; Windows: Google Chrome from google.com/chrome — or pass --browser-path /path/to/chrome (or set CHROME_PATH)";

/// Finds a Chromium-family browser: the explicit path, `CHROME_PATH`, `PATH`, then the
/// usual install locations of Linux, macOS and Windows.
pub fn find_browser(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(Error::new(
            codes::NO_BROWSER,
            format!(
                "--browser-path {} does not exist or is not a file",
                p.display()
            ),
        ));
    }
    if let Some(p) = std::env::var_os("CHROME_PATH").map(PathBuf::from)
        && p.is_file()
    {
        return Ok(p);
    }
    let names: &[&str] = if cfg!(windows) {
        &["chrome.exe", "chromium.exe", "msedge.exe"]
    } else {
        &[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
            "google-chrome-beta",
            "chrome",
        ]
    };
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            for n in names {
                let p = dir.join(n);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
    }
    let mut fixed: Vec<PathBuf> = Vec::new();
    if cfg!(target_os = "macos") {
        for app in [
            "Google Chrome.app/Contents/MacOS/Google Chrome",
            "Chromium.app/Contents/MacOS/Chromium",
            "Google Chrome Canary.app/Contents/MacOS/Google Chrome Canary",
        ] {
            fixed.push(Path::new("/Applications").join(app));
            if let Some(home) = std::env::var_os("HOME") {
                fixed.push(Path::new(&home).join("Applications").join(app));
            }
        }
    } else if cfg!(windows) {
        for var in ["ProgramFiles", "ProgramFiles(x86)", "LocalAppData"] {
            if let Some(base) = std::env::var_os(var) {
                let base = PathBuf::from(base);
                fixed.push(base.join(r"Google\Chrome\Application\chrome.exe"));
                fixed.push(base.join(r"Chromium\Application\chrome.exe"));
            }
        }
    } else {
        for p in [
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/snap/bin/chromium",
            "/usr/bin/google-chrome",
            "/opt/google/chrome/chrome",
            "/usr/lib/chromium/chromium",
        ] {
            fixed.push(PathBuf::from(p));
        }
    }
    fixed
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| Error::new(codes::NO_BROWSER, NOT_FOUND_HELP))
}

fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(not(unix))]
    {
        false
    }
}

fn temp_profile_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("tabmux-profile-{}-{nanos:x}", std::process::id()))
}

/// The command-line flags tabmux gives a browser it launches.
pub fn browser_args(opts: &LaunchOptions, profile: &Path) -> Vec<String> {
    let mut args = vec![
        format!("--user-data-dir={}", profile.display()),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-default-apps".into(),
        "--disable-breakpad".into(),
        "--disable-dev-shm-usage".into(),
        "--password-store=basic".into(),
        "--use-mock-keychain".into(),
        "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication"
            .into(),
        "--silent-debugger-extension-api".into(),
    ];
    if !opts.headed {
        args.push("--headless".into());
        args.push("--disable-gpu".into());
        args.push("--hide-scrollbars".into());
        args.push("--mute-audio".into());
    }
    if running_as_root() {
        args.push("--no-sandbox".into());
    }
    if !opts.extensions.is_empty() {
        let list = opts
            .extensions
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",");
        args.push(format!("--load-extension={list}"));
        args.push(format!("--disable-extensions-except={list}"));
        args.push("--enable-unsafe-extension-debugging".into());
    }
    // Pages see a 1280×720 viewport unless the caller sets its own size. The window
    // is taller by its tab strip and toolbar (headless Chromium counts them too).
    if !opts
        .extra_args
        .iter()
        .any(|a| a.starts_with("--window-size"))
    {
        args.push(format!(
            "--window-size={},{}",
            VIEWPORT.0,
            VIEWPORT.1 + WINDOW_CHROME
        ));
    }
    args.extend(opts.extra_args.iter().cloned());
    args
}

/// The viewport of a browser tabmux launches (width, height).
pub const VIEWPORT: (u32, u32) = (1280, 720);
/// Height of a window's tab strip and toolbar (measured: a window 720 px high shows
/// pages 633 px high).
const WINDOW_CHROME: u32 = 87;

impl Launched {
    /// Starts the browser and opens its CDP connection.
    pub async fn start(opts: &LaunchOptions, timeout: Duration) -> Result<Launched> {
        let exe = find_browser(opts.browser_path.as_deref())?;
        let (profile, temp) = match &opts.user_data_dir {
            Some(p) => (p.clone(), None),
            None => {
                let p = temp_profile_dir();
                (p.clone(), Some(p))
            }
        };
        std::fs::create_dir_all(&profile).map_err(|e| {
            Error::new(
                codes::NO_BROWSER,
                format!("cannot create the profile {}: {e}", profile.display()),
            )
        })?;
        let mut cmd = Command::new(&exe);
        cmd.args(browser_args(opts, &profile));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let spawned = spawn_with_transport(&mut cmd, &exe, &profile, &stderr_tail, timeout).await;
        let (child, conn) = match spawned {
            Ok(x) => x,
            Err(e) => {
                if let Some(t) = &temp {
                    let _ = std::fs::remove_dir_all(t);
                }
                return Err(e);
            }
        };
        let launched = Launched {
            child: Some(child),
            temp_profile: temp,
            conn,
            executable: exe.clone(),
            stderr_tail,
        };
        // The first command proves the browser is up and speaking CDP.
        let probe = launched
            .conn
            .call::<serde_json::Value>(None, "Browser.getVersion", serde_json::json!({}), timeout)
            .await;
        if let Err(e) = probe {
            let tail = launched.stderr_tail();
            return Err(Error::new(
                codes::NO_BROWSER,
                format!(
                    "{} did not start ({}){}",
                    exe.display(),
                    e.message,
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!("; it said: {tail}")
                    }
                ),
            ));
        }
        Ok(launched)
    }

    /// The last lines the browser wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let t = self.stderr_tail.lock().unwrap();
        t.iter()
            .filter(|l| !l.trim().is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the browser process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Closes the browser: politely over CDP, then by signal; removes a temporary
    /// profile.
    pub async fn shutdown(mut self) {
        if !self.conn.is_closed() {
            let _ = self
                .conn
                .call_raw(
                    None,
                    "Browser.close",
                    serde_json::json!({}),
                    Duration::from_secs(2),
                )
                .await;
        }
        if let Some(child) = self.child.as_mut() {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        self.kill_now();
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            #[cfg(unix)]
            {
                // The browser runs in its own process group: end the whole tree.
                let pgid = child.id() as i32;
                // SAFETY: kill() on our own child's process group.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.temp_profile.take() {
            // The browser's helpers may still be writing for a moment.
            for _ in 0..20 {
                if std::fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        self.kill_now();
    }
}

fn capture_stderr(child: &mut Child, tail: Arc<Mutex<VecDeque<String>>>) {
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || {
            let reader = BufReader::new(err);
            for line in reader.lines().map_while(|l| l.ok()) {
                tracing::trace!(target: "browser", "{line}");
                let mut t = tail.lock().unwrap();
                if t.len() >= 8 {
                    t.pop_front();
                }
                t.push_back(line.chars().take(300).collect());
            }
        });
    }
}

#[cfg(unix)]
async fn spawn_with_transport(
    cmd: &mut Command,
    exe: &Path,
    _profile: &Path,
    tail: &Arc<Mutex<VecDeque<String>>>,
    _timeout: Duration,
) -> Result<(Child, CdpConnection)> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use tokio::sync::mpsc;

    let spawn_err = |e: std::io::Error| {
        Error::new(
            codes::NO_BROWSER,
            format!("cannot start {}: {e}", exe.display()),
        )
    };
    // Commands flow tabmux -> browser on the child's fd 3, answers on its fd 4.
    let (cmd_read, cmd_write) = std::io::pipe().map_err(spawn_err)?;
    let (resp_read, resp_write) = std::io::pipe().map_err(spawn_err)?;
    let (r3, w4) = (cmd_read.as_raw_fd(), resp_write.as_raw_fd());
    cmd.arg("--remote-debugging-pipe");
    cmd.process_group(0);
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let a = libc::fcntl(r3, libc::F_DUPFD_CLOEXEC, 10);
            let b = libc::fcntl(w4, libc::F_DUPFD_CLOEXEC, 10);
            if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    drop(cmd_read);
    drop(resp_write);
    capture_stderr(&mut child, tail.clone());

    let (in_tx, in_rx) = mpsc::channel::<String>(1024);
    let (out_tx, mut out_rx) = mpsc::channel::<String>(1024);
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(1 << 16, resp_read);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(0, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if buf.last() == Some(&0) {
                        buf.pop();
                    }
                    let text = match String::from_utf8(std::mem::take(&mut buf)) {
                        Ok(t) => t,
                        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    };
                    if in_tx.blocking_send(text).is_err() {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        let mut w = cmd_write;
        while let Some(msg) = out_rx.blocking_recv() {
            if w.write_all(msg.as_bytes()).is_err() || w.write_all(&[0]).is_err() {
                break;
            }
        }
    });
    Ok((child, CdpConnection::new(in_rx, out_tx)))
}

#[cfg(not(unix))]
async fn spawn_with_transport(
    cmd: &mut Command,
    exe: &Path,
    profile: &Path,
    tail: &Arc<Mutex<VecDeque<String>>>,
    timeout: Duration,
) -> Result<(Child, CdpConnection)> {
    let port_file = profile.join("DevToolsActivePort");
    let _ = std::fs::remove_file(&port_file);
    cmd.arg("--remote-debugging-port=0");
    let mut child = cmd.spawn().map_err(|e| {
        Error::new(
            codes::NO_BROWSER,
            format!("cannot start {}: {e}", exe.display()),
        )
    })?;
    capture_stderr(&mut child, tail.clone());
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                let url = format!("ws://127.0.0.1:{}{}", port.trim(), path.trim());
                match super::direct::connect_ws(&url, timeout).await {
                    Ok(conn) => return Ok((child, conn)),
                    Err(e) => {
                        let _ = child.kill();
                        return Err(e);
                    }
                }
            }
        }
        let exited = !matches!(child.try_wait(), Ok(None));
        if exited || Instant::now() > deadline {
            let _ = child.kill();
            let said = tail
                .lock()
                .unwrap()
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(" | ");
            return Err(Error::new(
                codes::NO_BROWSER,
                format!("{} did not open its DevTools port: {said}", exe.display()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_browser_says_what_to_install() {
        let e = find_browser(Some(Path::new("/nonexistent/chrome"))).unwrap_err();
        assert_eq!(e.code, codes::NO_BROWSER);
        assert!(e.message.contains("/nonexistent/chrome"));
        for needle in [
            "apt-get install chromium",
            "brew",
            "--browser-path",
            "CHROME_PATH",
        ] {
            assert!(NOT_FOUND_HELP.contains(needle), "{needle}");
        }
    }

    #[test]
    fn headless_flags_and_extensions() {
        let opts = LaunchOptions {
            extensions: vec![PathBuf::from("/x/ext")],
            ..Default::default()
        };
        let args = browser_args(&opts, Path::new("/tmp/p"));
        assert!(args.contains(&"--headless".to_string()));
        assert!(args.contains(&"--user-data-dir=/tmp/p".to_string()));
        assert!(args.contains(&"--load-extension=/x/ext".to_string()));
        let headed = browser_args(
            &LaunchOptions {
                headed: true,
                ..Default::default()
            },
            Path::new("/tmp/p"),
        );
        assert!(!headed.contains(&"--headless".to_string()));
        assert!(args.contains(&"--window-size=1280,807".to_string()));
        let sized = browser_args(
            &LaunchOptions {
                extra_args: vec!["--window-size=800,600".into()],
                ..Default::default()
            },
            Path::new("/tmp/p"),
        );
        let sizes: Vec<_> = sized
            .iter()
            .filter(|a| a.starts_with("--window-size"))
            .collect();
        assert_eq!(sizes, ["--window-size=800,600"]);
    }
}
