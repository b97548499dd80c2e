//! Release tasks for tabmux, run as `cargo xtask <task>`:
//!
//! - `dist [--debug] [--target TRIPLE] [--binary PATH] [--out DIR]` builds tabmux (or
//!   takes `--binary`) and writes into `target/dist/` (or `--out`): the binary archive,
//!   the npm launcher and platform packages (`npm pack` tarballs), an MCP bundle for
//!   this platform, the extension zip for the Chrome Web Store and `server.json` for the
//!   MCP registry.
//! - `mcpb --binary OS=PATH... [--out DIR]` writes one MCP bundle holding binaries for
//!   several systems (`darwin`, `win32`, `linux`), as the release attaches it.

mod mcpb;
mod npm;
mod zip;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

type Result<T> = std::result::Result<T, String>;

/// A platform tabmux ships a binary for: Rust target, npm `os` and `cpu`.
pub struct Platform {
    pub target: &'static str,
    pub os: &'static str,
    pub cpu: &'static str,
}

pub const PLATFORMS: &[Platform] = &[
    Platform {
        target: "x86_64-unknown-linux-gnu",
        os: "linux",
        cpu: "x64",
    },
    Platform {
        target: "aarch64-unknown-linux-gnu",
        os: "linux",
        cpu: "arm64",
    },
    Platform {
        target: "x86_64-apple-darwin",
        os: "darwin",
        cpu: "x64",
    },
    Platform {
        target: "aarch64-apple-darwin",
        os: "darwin",
        cpu: "arm64",
    },
    Platform {
        target: "x86_64-pc-windows-msvc",
        os: "win32",
        cpu: "x64",
    },
    Platform {
        target: "x86_64-pc-windows-gnu",
        os: "win32",
        cpu: "x64",
    },
];

impl Platform {
    pub fn find(target: &str) -> Result<&'static Platform> {
        PLATFORMS
            .iter()
            .find(|p| p.target == target)
            .ok_or_else(|| {
                let known: Vec<_> = PLATFORMS.iter().map(|p| p.target).collect();
                format!(
                    "no npm platform for target {target}; known: {}",
                    known.join(", ")
                )
            })
    }

    /// `linux-x64`: the npm package is `@tabmux/linux-x64`.
    pub fn npm_key(&self) -> String {
        format!("{}-{}", self.os, self.cpu)
    }

    pub fn exe(&self) -> &'static str {
        if self.os == "win32" {
            "tabmux.exe"
        } else {
            "tabmux"
        }
    }
}

/// What Cargo.toml says about the tabmux package.
pub struct Project {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    pub version: String,
    pub description: String,
    pub license: String,
    pub repository: String,
    pub keywords: Vec<String>,
}

/// The MCP registry name of the server (npm's `mcpName` says the same).
pub const MCP_NAME: &str = "io.github.tabmux/tabmux";

fn project() -> Result<Project> {
    let out =
        run_output(Command::new(cargo()).args(["metadata", "--no-deps", "--format-version", "1"]))?;
    let meta: Value = serde_json::from_slice(&out).map_err(|e| format!("cargo metadata: {e}"))?;
    let pkg = meta["packages"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "tabmux"))
        .ok_or("cargo metadata lists no tabmux package")?;
    let s = |k: &str| pkg[k].as_str().unwrap_or_default().to_string();
    Ok(Project {
        root: PathBuf::from(meta["workspace_root"].as_str().unwrap_or(".")),
        target_dir: PathBuf::from(meta["target_directory"].as_str().unwrap_or("target")),
        version: s("version"),
        description: s("description"),
        license: s("license"),
        repository: s("repository"),
        keywords: pkg["keywords"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `cmd`, failing with what it printed when it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

/// Runs `cmd` and returns its stdout.
pub fn run_output(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

fn host_target() -> Result<String> {
    let out = run_output(Command::new("rustc").arg("-vV"))?;
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| "rustc -vV names no host".into())
}

pub fn write(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, data).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Options of `dist`.
struct DistArgs {
    debug: bool,
    target: Option<String>,
    binary: Option<PathBuf>,
    out: Option<PathBuf>,
}

fn parse_dist(args: &[String]) -> Result<DistArgs> {
    let mut d = DistArgs {
        debug: false,
        target: None,
        binary: None,
        out: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--debug" => d.debug = true,
            "--release" => d.debug = false,
            "--target" => d.target = Some(value()?),
            "--binary" => d.binary = Some(PathBuf::from(value()?)),
            "--out" => d.out = Some(PathBuf::from(value()?)),
            other => return Err(format!("dist: unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(d)
}

fn dist(args: &[String]) -> Result<()> {
    let a = parse_dist(args)?;
    let p = project()?;
    let target = match &a.target {
        Some(t) => t.clone(),
        None => host_target()?,
    };
    let platform = Platform::find(&target)?;
    let binary = match &a.binary {
        Some(b) => b.clone(),
        None => build(&p, &target, a.target.is_some(), a.debug)?,
    };
    if !binary.is_file() {
        return Err(format!("the binary {} does not exist", binary.display()));
    }
    let out = a.out.clone().unwrap_or_else(|| p.target_dir.join("dist"));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let out = std::path::absolute(&out).map_err(|e| e.to_string())?;

    let mut made = vec![archive(&p, &target, platform, &binary, &out)?];
    made.extend(npm::packages(&p, platform, &binary, &out)?);
    made.push(mcpb::bundle(
        &p,
        &[(platform.os, binary.clone())],
        &out,
        &platform.npm_key(),
    )?);
    made.push(extension_zip(&p, &out)?);
    made.push(server_json(&p, &out)?);
    let _ = std::fs::remove_dir_all(out.join("stage"));
    for f in made {
        let size = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        println!("{:>10}  {}", size, f.display());
    }
    Ok(())
}

/// `cargo build` for `target`; returns the binary's path.
fn build(p: &Project, target: &str, explicit: bool, debug: bool) -> Result<PathBuf> {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(&p.root).args([
        "build",
        "--locked",
        "--package",
        "tabmux",
        "--bin",
        "tabmux",
    ]);
    if !debug {
        cmd.arg("--release");
    }
    let mut dir = p.target_dir.clone();
    if explicit {
        cmd.args(["--target", target]);
        dir.push(target);
    }
    run(&mut cmd)?;
    dir.push(if debug { "debug" } else { "release" });
    Ok(dir.join(Platform::find(target)?.exe()))
}

/// `tabmux-<version>-<target>.tar.gz`: the binary, README and licence in one folder.
fn archive(p: &Project, target: &str, pl: &Platform, binary: &Path, out: &Path) -> Result<PathBuf> {
    let name = format!("tabmux-{}-{target}", p.version);
    let stage = out.join("stage").join("archive");
    let dir = stage.join(&name);
    write(&dir.join(pl.exe()), read(binary)?)?;
    set_executable(&dir.join(pl.exe()))?;
    for f in ["README.md", "LICENSE"] {
        write(&dir.join(f), read(&p.root.join(f))?)?;
    }
    // Relative paths only: GNU tar on Windows takes `C:` for a remote host.
    let file = format!("{name}.tar.gz");
    run(Command::new("tar")
        .current_dir(out)
        .args(["-czf", &file, "-C", "stage/archive", &name]))?;
    Ok(out.join(file))
}

pub fn set_executable(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
    }
    let _ = path;
    Ok(())
}

/// The extension's files as `build.rs` embeds them: no unit tests, no dotfiles.
fn extension_files(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(base).map_err(|e| e.to_string())?;
        let hidden = rel
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if rel.starts_with("test") || hidden {
            continue;
        }
        if path.is_dir() {
            extension_files(&path, base, out)?;
        } else {
            out.push((rel.to_string_lossy().replace('\\', "/"), path));
        }
    }
    Ok(())
}

/// `tabmux-extension-<version>.zip` for the Chrome Web Store. The store refuses a
/// manifest with a `key` (it signs the extension with its own), so the key is left
/// out: the store's copy has its own id.
fn extension_zip(p: &Project, out: &Path) -> Result<PathBuf> {
    let ext = p.root.join("extension");
    let mut files = Vec::new();
    extension_files(&ext, &ext, &mut files)?;
    let mut entries = Vec::new();
    let mut version = String::new();
    for (name, path) in files {
        let mut data = read(&path)?;
        if name == "manifest.json" {
            let mut m: Value =
                serde_json::from_slice(&data).map_err(|e| format!("manifest.json: {e}"))?;
            if let Some(obj) = m.as_object_mut() {
                obj.remove("key");
            }
            version = m["version"].as_str().unwrap_or_default().to_string();
            data = serde_json::to_vec_pretty(&m).map_err(|e| e.to_string())?;
        }
        entries.push(zip::Entry {
            name,
            data,
            mode: 0o644,
        });
    }
    if version.is_empty() {
        return Err("extension/manifest.json has no version".into());
    }
    let file = out.join(format!("tabmux-extension-{version}.zip"));
    zip::write(&file, &entries).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(file)
}

/// `server.json` for the MCP registry: the npm package, run over stdio.
fn server_json(p: &Project, out: &Path) -> Result<PathBuf> {
    let v = serde_json::json!({
        "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
        "name": MCP_NAME,
        "title": "tabmux",
        "description": "One real Chrome, many AI clients: browser tools with per-client tab locks",
        "version": p.version,
        "websiteUrl": p.repository,
        "repository": { "url": p.repository, "source": "github" },
        "packages": [{
            "registryType": "npm",
            "registryBaseUrl": "https://registry.npmjs.org",
            "identifier": "tabmux",
            "version": p.version,
            "transport": { "type": "stdio" }
        }]
    });
    let file = out.join("server.json");
    write(
        &file,
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())? + "\n",
    )?;
    Ok(file)
}

fn mcpb_cmd(args: &[String]) -> Result<()> {
    let p = project()?;
    let mut binaries = Vec::new();
    let mut out = p.target_dir.join("dist");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--binary" => {
                let (os, path) = v.split_once('=').ok_or("--binary takes OS=PATH")?;
                let os = ["darwin", "win32", "linux"]
                    .into_iter()
                    .find(|o| *o == os)
                    .ok_or_else(|| format!("unknown OS {os:?}: darwin, win32 or linux"))?;
                binaries.push((os, PathBuf::from(path)));
            }
            "--out" => out = PathBuf::from(v),
            other => return Err(format!("mcpb: unknown argument {other:?}\n{USAGE}")),
        }
    }
    if binaries.is_empty() {
        return Err("mcpb: give at least one --binary OS=PATH".into());
    }
    let f = mcpb::bundle(&p, &binaries, &out, "universal")?;
    println!("{}", f.display());
    Ok(())
}

const USAGE: &str =
    "usage: cargo xtask dist [--debug] [--target TRIPLE] [--binary PATH] [--out DIR]
       cargo xtask mcpb --binary OS=PATH [--binary OS=PATH...] [--out DIR]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dist") => dist(&args[1..]),
        Some("mcpb") => mcpb_cmd(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = result {
        eprintln!("xtask: {e}");
        std::process::exit(1);
    }
}
