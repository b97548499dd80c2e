//! No client escapes its tabs or its files, end to end through a real MCP client:
//! browser and extension pages are refused (`FORBIDDEN_URL`, `FORBIDDEN_PAGE`), on the
//! direct link (`--launch`) and through the extension; files are read and written only
//! inside the client's MCP roots, screenshots never overwrite or follow a symlink;
//! `--allow-unrestricted-file-access` lifts the roots rule only. And the extension's
//! CDP allow-list matches what tabmux sends.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use common::browser::{EXTENSION_ID, ExtBrowser, free_range};
use common::{Client, Fixtures, Opts, TempDir, file_uri, require_chromium};

fn own_page() -> String {
    format!("chrome-extension://{EXTENSION_ID}/popup/popup.html")
}

// ------------------------------------------------------------- the allow-list

/// CDP events tabmux reads (not commands; the extension relays every event of a held tab).
const EVENTS: &[&str] = &[
    "Inspector.detached",
    "Inspector.targetCrashed",
    "Log.entryAdded",
    "Network.loadingFailed",
    "Network.loadingFinished",
    "Network.requestWillBeSent",
    "Network.responseReceived",
    "Page.fileChooserOpened",
    "Page.frameAttached",
    "Page.frameClearedScheduledNavigation",
    "Page.frameDetached",
    "Page.frameNavigated",
    "Page.frameRequestedNavigation",
    "Page.frameScheduledNavigation",
    "Page.frameStoppedLoading",
    "Page.javascriptDialogClosed",
    "Page.javascriptDialogOpening",
    "Page.lifecycleEvent",
    "Page.loadEventFired",
    "Page.navigatedWithinDocument",
    "Runtime.consoleAPICalled",
    "Runtime.exceptionThrown",
    "Target.attachedToTarget",
    "Target.detachedFromTarget",
];

/// Every `"Domain.method"` string literal in the Rust files under `dir`.
fn method_strings(dir: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            method_strings(&p, out);
            continue;
        }
        if p.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        // Unit tests name files and such; only the code that runs counts.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (i, _) in text.match_indices('"') {
            let rest = &text[i + 1..];
            let Some(end) = rest.find('"') else { continue };
            let s = &rest[..end];
            let Some((d, m)) = s.split_once('.') else {
                continue;
            };
            let domain = d.len() > 1
                && d.starts_with(|c: char| c.is_ascii_uppercase())
                && d.chars().all(|c| c.is_ascii_alphanumeric());
            let method = m.len() > 1
                && m.starts_with(|c: char| c.is_ascii_lowercase())
                && m.chars().all(|c| c.is_ascii_alphanumeric());
            if domain && method {
                out.push((s.to_string(), p.display().to_string()));
            }
        }
    }
}

/// The extension relays exactly the CDP commands tabmux sends on a tab
/// (`extension/lib/cdp-methods.js`): a command added on the Rust side without the
/// extension's list would fail with FORBIDDEN_METHOD through the extension.
#[test]
fn cdp_methods_in_sync() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let js = std::fs::read_to_string(root.join("extension/lib/cdp-methods.js")).unwrap();
    let allowed: Vec<String> = js
        .lines()
        .filter_map(|l| l.strip_prefix("  '")?.strip_suffix("',"))
        .map(str::to_string)
        .collect();
    assert!(allowed.len() > 20, "the list was read: {allowed:?}");
    let mut used = Vec::new();
    for d in ["src/browser", "src/mcp", "src/snapshot"] {
        method_strings(&root.join(d), &mut used);
    }
    let mut missing = Vec::new();
    for (m, file) in &used {
        if !allowed.contains(m) && !EVENTS.contains(&m.as_str()) {
            missing.push(format!("{m} (in {file})"));
        }
    }
    assert!(
        missing.is_empty(),
        "tabmux sends CDP commands the extension does not relay: {missing:?}; add them to \
         extension/lib/cdp-methods.js once checked that they cannot reach beyond the tab \
         (or, for an event, to EVENTS here)"
    );
    let stale: Vec<&String> = allowed
        .iter()
        .filter(|a| !used.iter().any(|(m, _)| m == *a))
        .collect();
    assert!(
        stale.is_empty(),
        "the extension relays commands tabmux never sends: {stale:?}; remove them from extension/lib/cdp-methods.js"
    );
    for bad in [
        "Network.getAllCookies",
        "Storage.getCookies",
        "Target.createTarget",
    ] {
        assert!(!allowed.iter().any(|a| a == bad), "{bad} is not relayed");
    }
}

// ------------------------------------------------------------ the direct link

async fn launch(opts: Opts, extra: &[&str]) -> (Client, Fixtures) {
    require_chromium();
    let fx = Fixtures::start().await;
    let mut args = vec!["--launch"];
    args.extend_from_slice(extra);
    let c = Client::start_opts("confine-test", &args, opts).await;
    (c, fx)
}

fn roots(dirs: &[&Path]) -> Opts {
    Opts {
        roots: Some(dirs.iter().map(|d| d.to_path_buf()).collect()),
        cwd: None,
    }
}

/// Asserts an error with `code`, and returns its text.
async fn refused(c: &Client, tool: &str, args: serde_json::Value, code: &str) -> String {
    let e = c.err(tool, args.clone()).await;
    assert!(e.starts_with(code), "{tool} {args} → {code}, got: {e}");
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn navigate_refuses_browser_and_extension_pages() {
    let home = TempDir::new("nav-roots");
    let (c, fx) = launch(roots(&[home.path()]), &[]).await;
    c.ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    let own = own_page();
    for url in [
        own.as_str(),
        "CHROME-EXTENSION://aaaabbbbccccddddeeeeffffgggghhhh/x.html",
        "chrome://settings",
        "chrome://version",
        "devtools://devtools/bundled/inspector.html",
        "chrome-untrusted://print/",
        "view-source:chrome://version",
        "about:settings",
    ] {
        let e = refused(&c, "browser_navigate", json!({"url": url}), "FORBIDDEN_URL").await;
        assert!(e.contains("can't be opened"), "{e}");
    }
    // A new tab with such a URL is refused the same way, and opens no tab.
    refused(
        &c,
        "browser_tabs",
        json!({"action": "new", "url": own}),
        "FORBIDDEN_URL",
    )
    .await;
    let list = c.ok("browser_tabs", json!({"action": "list"})).await;
    assert!(!list.text.contains("- 1:"), "{}", list.text);
    // The page stayed where it was.
    assert!(
        c.eval("() => location.href").await.contains("nav.html"),
        "still on the fixture page"
    );
    // file:// only inside the roots.
    let e = refused(
        &c,
        "browser_navigate",
        json!({"url": "file:///etc/passwd"}),
        "FILE_OUTSIDE_ROOTS",
    )
    .await;
    assert!(e.contains(&home.path().display().to_string()), "{e}");
    let page = home.path().join("local page.html");
    std::fs::write(&page, "<title>Local</title><p>from a file</p>").unwrap();
    let ok = c
        .ok("browser_navigate", json!({"url": file_uri(&page)}))
        .await;
    assert!(ok.text.contains("from a file"), "{}", ok.text);
    // data: URLs still work.
    let d = c
        .ok(
            "browser_navigate",
            json!({"url": "data:text/html,<title>D</title><p>data%20page</p>"}),
        )
        .await;
    assert!(d.text.contains("data page"), "{}", d.text);
    // A page sending itself to a browser page: Chromium blocks it (web pages cannot
    // open chrome:// pages), so the tab never shows one.
    c.ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    c.ok(
        "browser_evaluate",
        json!({"function": "() => { location.href = 'chrome://settings'; return 1; }"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let proto = c.eval("() => location.protocol").await;
    assert_ne!(proto, "\"chrome:\"");
}

/// A screenshot saved to `filename` (the answer, error or not).
async fn shot(c: &Client, filename: &str) -> common::Answer {
    c.call("browser_take_screenshot", json!({"filename": filename}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_only_inside_the_roots() {
    let home = TempDir::new("roots-home");
    let away = TempDir::new("roots-away");
    let (c, fx) = launch(roots(&[home.path()]), &[]).await;
    c.ok("browser_navigate", json!({"url": fx.url("form.html")}))
        .await;

    // Inside the roots: written; by a relative name, in the first root.
    let inside = home.path().join("a.png");
    let a = shot(&c, inside.to_str().unwrap()).await;
    assert!(!a.is_error, "{}", a.text);
    assert_eq!(&std::fs::read(&inside).unwrap()[..4], b"\x89PNG");
    let rel = shot(&c, "sub-less.png").await;
    assert!(!rel.is_error, "{}", rel.text);
    assert!(home.path().join("sub-less.png").is_file());

    // Never over an existing file.
    std::fs::write(&inside, "keep me").unwrap();
    let e = shot(&c, inside.to_str().unwrap()).await;
    assert!(
        e.is_error && e.text.starts_with("FILE_EXISTS"),
        "{}",
        e.text
    );
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "keep me");

    // Never through a symlink: one to a file outside, one dangling.
    let victim = away.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let link = home.path().join("link.png");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let e = shot(&c, link.to_str().unwrap()).await;
    assert!(
        e.is_error && e.text.starts_with("FILE_EXISTS"),
        "{}",
        e.text
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let dangling_target = away.path().join("created-through-link.png");
    let dangling = home.path().join("dangling.png");
    std::os::unix::fs::symlink(&dangling_target, &dangling).unwrap();
    let e = shot(&c, dangling.to_str().unwrap()).await;
    assert!(
        e.is_error && e.text.starts_with("FILE_EXISTS"),
        "{}",
        e.text
    );
    assert!(
        !dangling_target.exists(),
        "nothing written through the link"
    );

    // Outside the roots: refused, the roots named; also through a symlinked directory.
    let out = away.path().join("out.png");
    let e = shot(&c, out.to_str().unwrap()).await;
    assert!(
        e.is_error
            && e.text.starts_with("FILE_OUTSIDE_ROOTS")
            && e.text.contains(&home.path().display().to_string()),
        "{}",
        e.text
    );
    assert!(!out.exists());
    let dir_link = home.path().join("elsewhere");
    std::os::unix::fs::symlink(away.path(), &dir_link).unwrap();
    let e = shot(&c, dir_link.join("x.png").to_str().unwrap()).await;
    assert!(
        e.is_error && e.text.starts_with("FILE_OUTSIDE_ROOTS"),
        "{}",
        e.text
    );
    assert!(!away.path().join("x.png").exists());
    let e = shot(&c, "../escape.png").await;
    assert!(
        e.is_error && e.text.starts_with("FILE_OUTSIDE_ROOTS"),
        "{}",
        e.text
    );

    // Uploads: outside refused (also through a symlink), inside works.
    let snap = c.ok("browser_snapshot", json!({})).await;
    let avatar = snap.ref_of(&["Avatar"]);
    let secret = away.path().join("secret.txt");
    std::fs::write(&secret, "secret").unwrap();
    let e = refused(
        &c,
        "browser_file_upload",
        json!({"target": avatar, "paths": [secret.to_str().unwrap()]}),
        "FILE_OUTSIDE_ROOTS",
    )
    .await;
    assert!(e.contains(&home.path().display().to_string()), "{e}");
    let sneaky = home.path().join("innocent.txt");
    std::os::unix::fs::symlink(&secret, &sneaky).unwrap();
    refused(
        &c,
        "browser_file_upload",
        json!({"target": avatar, "paths": [sneaky.to_str().unwrap()]}),
        "FILE_OUTSIDE_ROOTS",
    )
    .await;
    let e = refused(
        &c,
        "browser_file_upload",
        json!({"target": avatar, "paths": ["/etc/passwd"]}),
        "FILE_OUTSIDE_ROOTS",
    )
    .await;
    assert!(!e.contains("root:"), "{e}");
    assert_eq!(
        c.eval("() => document.querySelector('input[type=file]').files.length")
            .await,
        "0",
        "nothing was set"
    );
    let mine = home.path().join("mine.txt");
    std::fs::write(&mine, "mine").unwrap();
    c.ok(
        "browser_file_upload",
        json!({"target": avatar, "paths": [mine.to_str().unwrap()]}),
    )
    .await;
    assert_eq!(
        c.eval("() => document.querySelector('input[type=file]').files[0].name")
            .await,
        "\"mine.txt\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_roots_the_working_directory() {
    let cwd = TempDir::new("cwd");
    let away = TempDir::new("cwd-away");
    let opts = Opts {
        roots: None,
        cwd: Some(cwd.path().to_path_buf()),
    };
    let (c, fx) = launch(opts, &[]).await;
    c.ok("browser_navigate", json!({"url": fx.url("form.html")}))
        .await;
    let a = shot(&c, "here.png").await;
    assert!(!a.is_error, "{}", a.text);
    assert!(cwd.path().join("here.png").is_file());
    let e = shot(&c, away.path().join("there.png").to_str().unwrap()).await;
    assert!(
        e.is_error
            && e.text.starts_with("FILE_OUTSIDE_ROOTS")
            && e.text.contains(&cwd.path().display().to_string()),
        "{}",
        e.text
    );
    // A client whose roots list is empty gets no files at all.
    drop(c);
    let (c, _fx2) = launch(roots(&[]), &[]).await;
    c.ok("browser_navigate", json!({"url": fx.url("form.html")}))
        .await;
    let e = shot(&c, cwd.path().join("none.png").to_str().unwrap()).await;
    assert!(
        e.is_error && e.text.contains("the client listed none"),
        "{}",
        e.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrestricted_file_access_lifts_the_roots_only() {
    let home = TempDir::new("unr-home");
    let away = TempDir::new("unr-away");
    let (c, fx) = launch(roots(&[home.path()]), &["--allow-unrestricted-file-access"]).await;
    c.ok("browser_navigate", json!({"url": fx.url("form.html")}))
        .await;
    let out = away.path().join("out.png");
    let a = shot(&c, out.to_str().unwrap()).await;
    assert!(!a.is_error, "{}", a.text);
    assert!(out.is_file());
    let e = shot(&c, out.to_str().unwrap()).await;
    assert!(
        e.is_error && e.text.starts_with("FILE_EXISTS"),
        "{}",
        e.text
    );
    let file = away.path().join("up.txt");
    std::fs::write(&file, "x").unwrap();
    let snap = c.ok("browser_snapshot", json!({})).await;
    c.ok(
        "browser_file_upload",
        json!({"target": snap.ref_of(&["Avatar"]), "paths": [file.to_str().unwrap()]}),
    )
    .await;
    let page = away.path().join("p.html");
    std::fs::write(&page, "<p>outside page</p>").unwrap();
    let n = c
        .ok("browser_navigate", json!({"url": file_uri(&page)}))
        .await;
    assert!(n.text.contains("outside page"), "{}", n.text);
    // Browser pages stay off limits.
    refused(
        &c,
        "browser_navigate",
        json!({"url": own_page()}),
        "FORBIDDEN_URL",
    )
    .await;
}

// ------------------------------------------------------------ the extension link

struct Ext {
    browser: ExtBrowser,
    fx: Fixtures,
    state: TempDir,
    ports: String,
}

impl Drop for Ext {
    fn drop(&mut self) {
        common::end_shared_browsers(self.state.path());
    }
}

impl Ext {
    async fn new() -> Ext {
        let range = free_range(11);
        let state = TempDir::new("confine-ext");
        Ext {
            browser: ExtBrowser::start(range, state.path()).await,
            fx: Fixtures::start().await,
            state,
            ports: format!("{}-{}", range.0, range.1),
        }
    }

    async fn client(&self, name: &str) -> Client {
        let args = [
            "--ports",
            &self.ports,
            "--extension-wait",
            "15",
            "--grace",
            "2",
        ];
        Client::start_in_opts(name, &args, self.state.path(), Opts::default()).await
    }

    /// The Chrome tab id of the tab showing `needle` in its URL.
    async fn tab_with(&self, needle: &str) -> i64 {
        let expr = format!(
            "chrome.tabs.query({{}}).then(ts => (ts.find(t => (t.url || t.pendingUrl || '').includes({})) || {{id: -1}}).id)",
            json!(needle)
        );
        self.browser.worker_eval(&expr).await.as_i64().unwrap()
    }

    async fn tab_url(&self, tab: i64) -> String {
        let expr = format!("chrome.tabs.get({tab}).then(t => t.url || t.pendingUrl || '')");
        self.browser
            .worker_eval(&expr)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// `browser_evaluate` of `typeof chrome.debugger`: either refused (FORBIDDEN_PAGE, or
/// NOT_ATTACHABLE for a page the browser itself keeps from extensions) or a page
/// without the debugger API. Never "object".
async fn debugger_unreachable(c: &Client) -> common::Answer {
    let a = c
        .call(
            "browser_evaluate",
            json!({"function": "() => typeof chrome === 'object' && typeof chrome.debugger"}),
        )
        .await;
    if a.is_error {
        assert!(
            a.text.starts_with("FORBIDDEN_PAGE") || a.text.starts_with("NOT_ATTACHABLE"),
            "{}",
            a.text
        );
    } else {
        assert!(!a.text.contains("\"object\""), "{}", a.text);
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_link_no_client_escapes_its_tabs() {
    let mut s = Ext::new().await;
    let a = s.client("Intruder").await;
    let b = s.client("Victim").await;
    // The victim's locked tab, with some state of its own.
    b.ok(
        "browser_navigate",
        json!({"url": s.fx.url("nav.html?victim")}),
    )
    .await;
    b.ok(
        "browser_evaluate",
        json!({"function": "() => { window.mark = 'B-' + 42; document.title = 'victim page'; return 1; }"}),
    )
    .await;
    a.ok(
        "browser_navigate",
        json!({"url": s.fx.url("nav.html?intruder")}),
    )
    .await;

    // 1. Straight there: refused by tabmux (the extension refuses it too, unit-tested).
    refused(
        &a,
        "browser_navigate",
        json!({"url": own_page()}),
        "FORBIDDEN_URL",
    )
    .await;
    // 2. The page sends itself there.
    a.ok(
        "browser_evaluate",
        json!({"function": format!("() => {{ location.href = {}; return 1; }}", json!(own_page()))}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    debugger_unreachable(&a).await;
    // 3. The tab is taken there (as a user would): the extension detaches at once and
    // sends the client's own tab back to about:blank.
    a.ok(
        "browser_tabs",
        json!({"action": "new", "url": s.fx.url("nav.html?intruder2")}),
    )
    .await;
    let tab = s.tab_with("intruder2").await;
    assert!(tab > 0, "the intruder's tab is found");
    s.browser
        .worker_eval(&format!(
            "chrome.tabs.update({tab}, {{url: {}}}).then(() => 1)",
            json!(own_page())
        ))
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut url = String::new();
    while Instant::now() < deadline {
        url = s.tab_url(tab).await;
        if url == "about:blank" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let told = debugger_unreachable(&a).await;
    assert_eq!(url, "about:blank", "sent back from the extension's page");
    // The client is told why its tab is blank now.
    assert!(
        told.text.contains("FORBIDDEN_PAGE") && told.text.contains("sent back to about:blank"),
        "{}",
        told.text
    );
    // The client still works.
    a.ok(
        "browser_navigate",
        json!({"url": s.fx.url("nav.html?after")}),
    )
    .await;

    // The victim's tab is untouched.
    assert_eq!(b.eval("() => window.mark").await, "\"B-42\"");
    assert_eq!(b.eval("() => document.title").await, "\"victim page\"");
    assert!(b.eval("() => location.href").await.contains("victim"));
    drop(a);
    drop(b);
    s.browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_link_files_and_urls() {
    let mut s = Ext::new().await;
    let c = s.client("files").await;
    c.ok("browser_navigate", json!({"url": s.fx.url("form.html")}))
        .await;
    let away: PathBuf = std::env::current_dir().unwrap().join("Cargo.toml");
    // Outside the client's roots (the temp dir): refused; file:// off in the extension.
    refused(
        &c,
        "browser_file_upload",
        json!({"target": c.ok("browser_snapshot", json!({})).await.ref_of(&["Avatar"]), "paths": [away.to_str().unwrap()]}),
        "FILE_OUTSIDE_ROOTS",
    )
    .await;
    let dir = TempDir::new("ext-file");
    let page = dir.path().join("p.html");
    std::fs::write(&page, "<p>local</p>").unwrap();
    let e = c
        .err("browser_navigate", json!({"url": file_uri(&page)}))
        .await;
    assert!(e.starts_with("FORBIDDEN_URL"), "{e}");
    assert!(e.contains("popup"), "says where to allow it: {e}");
    for url in [
        "chrome://settings",
        "about:version",
        "devtools://devtools/x",
    ] {
        refused(&c, "browser_navigate", json!({"url": url}), "FORBIDDEN_URL").await;
    }
    drop(c);
    s.browser.close().await;
}
