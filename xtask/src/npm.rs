//! The npm packages, the way esbuild and Biome ship native binaries: a launcher package
//! `tabmux` whose `bin` runs the binary of the platform it runs on, and one package per
//! platform (`@tabmux/linux-x64`, ...) that holds that binary and says its `os` and
//! `cpu`, so npm installs only the matching one of the launcher's
//! `optionalDependencies`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::{
    MCP_NAME, PLATFORMS, Platform, Project, Result, read, run_output, set_executable, write,
};

const LAUNCHER: &str = include_str!("../npm/tabmux.js");

fn common(p: &Project, name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "version": p.version,
        "description": description,
        "license": p.license,
        "homepage": format!("{}#readme", p.repository),
        "repository": { "type": "git", "url": format!("git+{}.git", p.repository) },
        "bugs": { "url": format!("{}/issues", p.repository) },
    })
}

/// The launcher package `tabmux`, staged in `dir`.
fn stage_launcher(p: &Project, dir: &Path) -> Result<()> {
    let mut optional = BTreeMap::new();
    let mut supported: Vec<String> = Vec::new();
    for pl in PLATFORMS {
        optional.insert(format!("@tabmux/{}", pl.npm_key()), p.version.clone());
        if !supported.contains(&pl.npm_key()) {
            supported.push(pl.npm_key());
        }
    }
    let mut pkg = common(p, "tabmux", &p.description);
    let obj = pkg.as_object_mut().ok_or("package.json")?;
    obj.insert("keywords".into(), json!(p.keywords));
    obj.insert("mcpName".into(), json!(MCP_NAME));
    obj.insert("bin".into(), json!({ "tabmux": "bin/tabmux.js" }));
    obj.insert("files".into(), json!(["bin/"]));
    obj.insert("engines".into(), json!({ "node": ">=18" }));
    obj.insert("optionalDependencies".into(), json!(optional));
    write(
        &dir.join("package.json"),
        serde_json::to_string_pretty(&pkg).map_err(|e| e.to_string())?,
    )?;
    let script = LAUNCHER.replace("__SUPPORTED__", &json!(supported).to_string());
    write(&dir.join("bin/tabmux.js"), script)?;
    set_executable(&dir.join("bin/tabmux.js"))?;
    write(&dir.join("README.md"), read(&p.root.join("README.md"))?)?;
    write(&dir.join("LICENSE"), read(&p.root.join("LICENSE"))?)
}

/// The package of one platform, `@tabmux/<os>-<cpu>`, staged in `dir`.
fn stage_platform(p: &Project, pl: &Platform, binary: &Path, dir: &Path) -> Result<()> {
    let name = format!("@tabmux/{}", pl.npm_key());
    let mut pkg = common(
        p,
        &name,
        &format!("The tabmux binary for {} {}", pl.os, pl.cpu),
    );
    let obj = pkg.as_object_mut().ok_or("package.json")?;
    obj.insert("os".into(), json!([pl.os]));
    obj.insert("cpu".into(), json!([pl.cpu]));
    obj.insert("files".into(), json!(["bin/"]));
    obj.insert("preferUnplugged".into(), json!(true));
    write(
        &dir.join("package.json"),
        serde_json::to_string_pretty(&pkg).map_err(|e| e.to_string())?,
    )?;
    let exe = dir.join("bin").join(pl.exe());
    write(&exe, read(binary)?)?;
    set_executable(&exe)?;
    write(
        &dir.join("README.md"),
        format!(
            "# {name}\n\nThe tabmux binary for {} {}. Install the `tabmux` package instead: it picks this one on this platform.\n",
            pl.os, pl.cpu
        ),
    )?;
    write(&dir.join("LICENSE"), read(&p.root.join("LICENSE"))?)
}

/// `npm pack` of the package staged in `dir`, into `out`; returns the tarball.
fn pack(dir: &Path, out: &Path) -> Result<PathBuf> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let stdout = run_output(
        Command::new(npm)
            .current_dir(dir)
            .args(["pack", "--json", "--pack-destination"])
            .arg(out),
    )?;
    let v: Value = serde_json::from_slice(&stdout).map_err(|e| format!("npm pack --json: {e}"))?;
    let file = v[0]["filename"].as_str().ok_or("npm pack named no file")?;
    // Scoped names come out as `tabmux-linux-x64-<version>.tgz`.
    Ok(out.join(file.trim_start_matches('@').replace('/', "-")))
}

/// Stages and packs the launcher and this platform's package.
pub fn packages(p: &Project, pl: &Platform, binary: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let stage = out.join("stage").join("npm");
    let launcher = stage.join("tabmux");
    let platform = stage.join(pl.npm_key());
    stage_launcher(p, &launcher)?;
    stage_platform(p, pl, binary, &platform)?;
    Ok(vec![pack(&launcher, out)?, pack(&platform, out)?])
}
