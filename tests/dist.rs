//! The distribution: `cargo xtask dist` runs once (with this build's binary) and each
//! test checks one of its outputs the way a user meets it — npm packages installed
//! with no network and run through `npx`, the MCP bundle unpacked and its server
//! asked to `initialize`, the Web Store zip, `server.json`, the binary archive.
//! Needs `npm`, `tar` and `unzip`.

mod common_bridge;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use common_bridge::{TempDir, free_block};
use serde_json::{Value, json};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs `cmd` to its end, or kills it after `secs` and fails.
fn run(cmd: &mut Command, secs: u64) -> Output {
    let shown = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: signalling the child this test started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{shown} did not finish within {secs} s");
        }
    }
}

fn ok(cmd: &mut Command, secs: u64) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd, secs);
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The output of `cargo xtask dist`, made once for all tests of this file.
fn dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dist-test");
        // The debug binary without its debug info: 10x smaller, the same program.
        let bin = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dist-test-tabmux");
        let stripped = Command::new("strip")
            .arg("-o")
            .arg(&bin)
            .arg(env!("CARGO_BIN_EXE_tabmux"))
            .status()
            .is_ok_and(|s| s.success());
        if !stripped {
            std::fs::copy(env!("CARGO_BIN_EXE_tabmux"), &bin).unwrap();
        }
        let started = Instant::now();
        ok(
            Command::new(env!("CARGO"))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(["xtask", "dist", "--debug", "--binary"])
                .arg(&bin)
                .arg("--out")
                .arg(&out),
            300,
        );
        eprintln!("cargo xtask dist took {:?}", started.elapsed());
        out
    })
}

fn npm_platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        o => o,
    };
    let cpu = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        a => a,
    };
    format!("{os}-{cpu}")
}

/// An empty npm project with the two tarballs installed, without network.
fn npm_project() -> TempDir {
    let d = dist();
    let proj = TempDir::new("npm");
    std::fs::write(
        proj.path().join("package.json"),
        r#"{"name": "try-tabmux", "version": "1.0.0", "private": true}"#,
    )
    .unwrap();
    ok(
        Command::new("npm")
            .current_dir(proj.path())
            .args(["install", "--offline", "--no-audit", "--no-fund"])
            .arg(d.join(format!("tabmux-{VERSION}.tgz")))
            .arg(d.join(format!("tabmux-{}-{VERSION}.tgz", npm_platform()))),
        120,
    );
    proj
}

#[test]
fn npm_tarballs_install_offline_and_npx_runs_tabmux() {
    let proj = npm_project();
    let version = ok(
        Command::new("npx")
            .current_dir(proj.path())
            .args(["--offline", "tabmux", "--version"]),
        60,
    );
    assert_eq!(version.trim(), format!("tabmux {VERSION}"));
    // The binary's exit code comes through the launcher.
    let bad = run(
        Command::new("npx").current_dir(proj.path()).args([
            "--offline",
            "tabmux",
            "--no-such-flag",
        ]),
        60,
    );
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--no-such-flag"));
}

#[test]
fn npm_launcher_speaks_mcp_and_passes_signals_on() {
    let proj = npm_project();
    let state = TempDir::new("npm-state");
    let launcher = proj.path().join("node_modules/tabmux/bin/tabmux.js");
    let mut child = Command::new("node")
        .arg(&launcher)
        .env("TABMUX_STATE_DIR", state.path())
        .env("TABMUX_PORTS", ports())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut session = Session::new(&mut child);
    let answer = session.initialize();
    assert_eq!(answer["result"]["serverInfo"]["name"], "tabmux", "{answer}");
    // Once the session runs (an answer to a request after `initialized`), tabmux
    // handles SIGTERM itself. stdin stays open: the signal alone ends it.
    session.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    session.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let listed = session.next();
    assert_eq!(listed["id"], 2, "{listed}");
    // SIGTERM to the launcher ends tabmux, and with it the launcher.
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the launcher did not exit within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // tabmux ends cleanly on SIGTERM; no instance of it is left.
    assert_eq!(status.code(), Some(0), "{status:?}");
    let live: Vec<u16> = tabmux::registry::scan(state.path())
        .iter()
        .filter(|e| e.live)
        .map(|e| e.port)
        .collect();
    assert!(live.is_empty(), "tabmux still runs on ports {live:?}");
}

#[test]
fn npm_launcher_says_which_package_is_missing() {
    let proj = npm_project();
    let pkg = format!("@tabmux/{}", npm_platform());
    std::fs::remove_dir_all(proj.path().join("node_modules").join(&pkg)).unwrap();
    let out = run(
        Command::new("npx")
            .current_dir(proj.path())
            .args(["--offline", "tabmux", "--version"]),
        60,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&pkg), "{err}");
    assert!(err.contains("optional"), "{err}");
    assert!(out.stdout.is_empty(), "stdout must stay empty: {out:?}");
}

fn ports() -> String {
    let r = free_block(3);
    format!("{}-{}", r.first(), r.last())
}

/// An MCP session over a child's stdio.
struct Session {
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Session {
    fn new(child: &mut std::process::Child) -> Session {
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        Session {
            stdin: child.stdin.take().unwrap(),
            lines,
        }
    }

    fn send(&mut self, msg: Value) {
        writeln!(self.stdin, "{msg}").unwrap();
    }

    /// The next message on stdout, which must be JSON-RPC.
    fn next(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("no message from the server within 30 s");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout is not JSON-RPC: {line:?}: {e}"))
    }

    /// Sends `initialize` and returns the answer.
    fn initialize(&mut self) -> Value {
        self.send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "dist-test", "version": "1"}}}),
        );
        self.next()
    }
}

fn unzip(file: &Path, into: &Path) {
    ok(
        Command::new("unzip")
            .arg("-q")
            .arg(file)
            .arg("-d")
            .arg(into),
        60,
    );
}

#[test]
fn mcp_bundle_validates_and_its_server_answers_initialize() {
    let d = dist();
    let dir = TempDir::new("mcpb");
    unzip(
        &d.join(format!("tabmux-{VERSION}-{}.mcpb", npm_platform())),
        dir.path(),
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["version"], VERSION);
    assert_eq!(manifest["server"]["type"], "binary");
    let names: Vec<&str> = manifest["tools"]
        .as_array()
        .expect("the manifest lists the tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"browser_navigate"), "{names:?}");
    assert!(dir.path().join("icon.png").is_file());

    // The server as Claude Desktop starts it: the manifest's command, no arguments.
    let command = manifest["server"]["mcp_config"]["command"]
        .as_str()
        .unwrap()
        .replace("${__dirname}", &dir.path().display().to_string());
    let state = TempDir::new("mcpb-state");
    let mut child = Command::new(&command)
        .env("TABMUX_STATE_DIR", state.path())
        .env("TABMUX_PORTS", ports())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let mut session = Session::new(&mut child);
    let answer = session.initialize();
    drop(session);
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["result"]["serverInfo"]["name"], "tabmux", "{answer}");
    assert_eq!(
        answer["result"]["serverInfo"]["version"], VERSION,
        "{answer}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the server did not exit within 20 s of stdin closing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    validate_manifest(dir.path());
}

/// `mcpb validate` from npm (`@anthropic-ai/mcpb`). Only this step is passed over, with
/// a message, when npm cannot fetch the tool.
fn validate_manifest(dir: &Path) {
    let out = run(
        Command::new("npx").current_dir(dir).args([
            "--yes",
            "@anthropic-ai/mcpb@2.1.2",
            "validate",
            "manifest.json",
        ]),
        180,
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let offline = [
        "ENOTFOUND",
        "EAI_AGAIN",
        "ENETUNREACH",
        "ECONNREFUSED",
        "ETIMEDOUT",
        "ENOTCACHED",
    ]
    .iter()
    .any(|e| text.contains(e));
    if !out.status.success() && offline {
        eprintln!("NOT CHECKED: mcpb validate — npm cannot fetch @anthropic-ai/mcpb here:\n{text}");
        return;
    }
    assert!(out.status.success(), "mcpb validate failed:\n{text}");
    assert!(text.contains("validation passes"), "{text}");
}

#[test]
fn web_store_zip_is_the_extension_without_its_key() {
    let d = dist();
    let source: Value = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("extension/manifest.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        source["key"].is_string(),
        "the repository's manifest keeps its key"
    );
    let version = source["version"].as_str().unwrap();
    let dir = TempDir::new("webstore");
    unzip(
        &d.join(format!("tabmux-extension-{version}.zip")),
        dir.path(),
    );
    let m: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    assert!(m.get("key").is_none(), "the Web Store refuses a key: {m}");
    assert_eq!(m["version"], version);
    assert_eq!(m["background"], source["background"]);
    // Every file the binary embeds, and nothing else (no unit tests).
    let mut files = Vec::new();
    collect(dir.path(), dir.path(), &mut files);
    files.sort();
    let mut embedded: Vec<String> = tabmux::extension_files::FILES
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    embedded.sort();
    assert_eq!(files, embedded);
    for (p, bytes) in tabmux::extension_files::FILES {
        if *p != "manifest.json" {
            assert_eq!(std::fs::read(dir.path().join(p)).unwrap(), *bytes, "{p}");
        }
    }
}

fn collect(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, base, out);
        } else {
            let rel = p.strip_prefix(base).unwrap();
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn server_json_names_the_npm_package_of_this_version() {
    let v: Value =
        serde_json::from_slice(&std::fs::read(dist().join("server.json")).unwrap()).unwrap();
    assert!(
        v["$schema"]
            .as_str()
            .unwrap()
            .starts_with("https://static.modelcontextprotocol.io/schemas/")
    );
    assert_eq!(v["version"], VERSION);
    let desc = v["description"].as_str().unwrap();
    assert!(
        desc.len() <= 100,
        "the registry allows 100 characters: {desc}"
    );
    let name = v["name"].as_str().unwrap();
    assert_eq!(name.matches('/').count(), 1);
    let pkg = &v["packages"][0];
    assert_eq!(pkg["registryType"], "npm");
    assert_eq!(pkg["identifier"], "tabmux");
    assert_eq!(pkg["version"], VERSION);
    assert_eq!(pkg["transport"]["type"], "stdio");
    // The registry checks that the npm package claims the same name.
    let proj = npm_project();
    let launcher: Value = serde_json::from_slice(
        &std::fs::read(proj.path().join("node_modules/tabmux/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(launcher["mcpName"], name);
    assert_eq!(launcher["version"], VERSION);
}

#[test]
fn archive_holds_the_binary_readme_and_licence() {
    let prefix = format!("tabmux-{VERSION}-");
    let name = std::fs::read_dir(dist())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&prefix) && n.ends_with(".tar.gz"))
        .expect("no binary archive");
    let file = dist().join(&name);
    let dir = TempDir::new("archive");
    ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(&file)
            .arg("-C")
            .arg(dir.path()),
        60,
    );
    let top = dir.path().join(name.trim_end_matches(".tar.gz"));
    for f in ["README.md", "LICENSE"] {
        assert!(top.join(f).is_file(), "{f} missing");
    }
    let version = ok(Command::new(top.join("tabmux")).arg("--version"), 30);
    assert_eq!(version.trim(), format!("tabmux {VERSION}"));
}

#[test]
fn the_crate_package_holds_the_extension_it_embeds() {
    let listed = ok(
        Command::new(env!("CARGO"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["package", "--list", "--allow-dirty", "--package", "tabmux"]),
        120,
    );
    let files: Vec<&str> = listed.lines().collect();
    for (p, _) in tabmux::extension_files::FILES {
        let path = format!("extension/{p}");
        assert!(files.contains(&path.as_str()), "{path} not in the package");
    }
    for f in [
        "build.rs",
        "LICENSE",
        "README.md",
        "Cargo.lock",
        "src/main.rs",
    ] {
        assert!(files.contains(&f), "{f} not in the package");
    }
    for f in &files {
        assert!(
            !f.starts_with("xtask/") && !f.starts_with("extension/test/"),
            "{f} does not belong in the crate"
        );
    }
}
