//! Tool scenarios shared by the direct-link and extension-link test suites. Each takes
//! a started client and the fixture server, drives the tools and checks what the page
//! did.

#![allow(dead_code)]
// Scenarios print what they measured (test output is captured).
#![allow(clippy::print_stdout)]

use serde_json::json;

/// Invokes `$tests!(scenario, …)` with every scenario below, so each link's suite runs
/// all of them.
macro_rules! every_scenario {
    ($tests:ident) => {
        $tests!(
            form_inputs,
            dialogs,
            frames,
            shadow_dom,
            console_and_network,
            navigation,
            bad_refs,
            long_page,
            waiting,
            not_actionable,
            drag_and_hover,
            keyboard,
            screenshots,
            tabs,
            evaluate,
            popups,
            data_urls,
            viewport_size,
            wrapped_link,
            settling,
            cancellation,
            progress,
            snapshot_reuse,
            script_refs,
        );
    };
}

use crate::common::{Client, Fixtures, TempDir, find_ref};

/// Every kind of form field, filled through the tools; the server checks the post.
pub async fn form_inputs(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("form.html")}))
        .await;
    assert!(nav.text.contains("Every input"), "{}", nav.text);
    let name = nav.ref_of(&["Full name"]);
    let typed = c
        .ok(
            "browser_type",
            json!({"target": name, "text": "Ada Lovelace"}),
        )
        .await;
    assert!(typed.text.contains("Page: Every input"), "{}", typed.text);

    let snap = c.ok("browser_snapshot", json!({})).await;
    let r = |needles: &[&str]| snap.ref_of(needles);
    let fields = json!([
        {"target": r(&["Email"]), "name": "Email", "type": "textbox", "value": "ada@example.com"},
        {"target": r(&["Password"]), "name": "Password", "type": "textbox", "value": "s3cret!"},
        {"target": r(&["Age"]), "name": "Age", "type": "textbox", "value": "36"},
        {"target": r(&["Volume"]), "name": "Volume", "type": "slider", "value": "8"},
        {"target": r(&["Birthday"]), "name": "Birthday", "type": "textbox", "value": "1815-12-10"},
        {"target": r(&["Favourite colour"]), "name": "Colour", "type": "textbox", "value": "#ff0000"},
        {"target": r(&["Newsletter"]), "name": "Newsletter", "type": "checkbox", "value": "true"},
        {"target": r(&["Pro"]), "name": "Pro plan", "type": "radio", "value": "true"},
        {"target": r(&["Comments"]), "name": "Comments", "type": "textbox", "value": "Line one\nLine two"},
        {"target": r(&["Country"]), "name": "Country", "type": "combobox", "value": "Japan"},
    ]);
    c.ok("browser_fill_form", json!({"fields": fields})).await;
    let toppings = snap.ref_of(&["Toppings"]);
    let sel = c
        .ok(
            "browser_select_option",
            json!({"target": toppings, "values": ["ham", "Basil"]}),
        )
        .await;
    assert!(sel.text.contains("Selected Ham, Basil"), "{}", sel.text);
    c.ok(
        "browser_type",
        json!({"target": snap.ref_of(&["Notes"]), "text": "editable text"}),
    )
    .await;

    // Mistakes get clear errors and change nothing.
    let e = c
        .err(
            "browser_select_option",
            json!({"target": r(&["Country"]), "values": ["Atlantis"]}),
        )
        .await;
    assert!(e.contains("NOT_ACTIONABLE") && e.contains("France"), "{e}");
    let e = c
        .err(
            "browser_select_option",
            json!({"target": r(&["Country"]), "values": ["Brazil"]}),
        )
        .await;
    assert!(e.contains("disabled"), "{e}");
    let e = c
        .err(
            "browser_type",
            json!({"target": r(&["Locked"]), "text": "x"}),
        )
        .await;
    assert!(
        e.contains("NOT_ACTIONABLE") && e.contains("disabled"),
        "{e}"
    );

    // The file input: a click opens the chooser, the upload answers it.
    let dir = TempDir::new("upload");
    let file = dir.path().join("portrait.txt");
    std::fs::write(&file, "hello file").unwrap();
    let click = c
        .ok("browser_click", json!({"target": r(&["Avatar"])}))
        .await;
    assert!(click.text.contains("File chooser open"), "{}", click.text);
    let missing = dir.path().join("missing.txt");
    let e = c
        .err(
            "browser_file_upload",
            json!({"paths": [missing.to_str().unwrap()]}),
        )
        .await;
    assert!(
        e.contains("NOT_FOUND") && e.contains("does not exist"),
        "{e}"
    );
    let up = c
        .ok(
            "browser_file_upload",
            json!({"paths": [file.to_str().unwrap()]}),
        )
        .await;
    assert!(up.text.contains("Uploaded 1 file"), "{}", up.text);

    let sent = c
        .ok("browser_click", json!({"target": snap.ref_of(&["Send"])}))
        .await;
    assert!(sent.text.contains("Submitted"), "{}", sent.text);
    let posts = fx.posts();
    assert_eq!(posts.len(), 1, "one form post");
    let body = &posts[0].body;
    for (field, value) in [
        ("fullname", "Ada Lovelace"),
        ("email", "ada@example.com"),
        ("password", "s3cret!"),
        ("age", "36"),
        ("volume", "8"),
        ("birthday", "1815-12-10"),
        ("colour", "#ff0000"),
        ("newsletter", "yes"),
        ("plan", "pro"),
        ("country", "jp"),
        ("toppings", "ham"),
        ("toppings", "basil"),
        ("notes", "editable text"),
    ] {
        let needle = format!("name=\"{field}\"\r\n\r\n{value}\r\n");
        assert!(
            body.contains(&needle),
            "post lacks {field}={value}:\n{body}"
        );
    }
    assert!(
        body.contains("name=\"comments\"\r\n\r\nLine one\r\nLine two\r\n"),
        "multi-line textarea:\n{body}"
    );
    assert!(body.contains("filename=\"portrait.txt\""), "{body}");
    assert!(body.contains("hello file"), "{body}");
    assert!(!body.contains("name=\"toppings\"\r\n\r\nolive"), "{body}");
    assert!(
        !body.contains("name=\"locked\""),
        "disabled fields are not sent"
    );
}

/// alert, confirm, prompt: reported while open, answered by browser_handle_dialog.
pub async fn dialogs(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("dialogs.html")}))
        .await;
    let alert = c
        .ok("browser_click", json!({"target": nav.ref_of(&["Alert"])}))
        .await;
    assert!(
        alert.text.contains("Dialog open: alert \"Careful now\""),
        "{}",
        alert.text
    );
    // Reported in every answer until handled.
    let snap = c.ok("browser_snapshot", json!({})).await;
    assert!(snap.text.contains("Dialog open: alert"), "{}", snap.text);
    let done = c.ok("browser_handle_dialog", json!({"accept": true})).await;
    assert!(done.text.contains("alert closed"), "{}", done.text);

    c.ok("browser_click", json!({"target": nav.ref_of(&["Confirm"])}))
        .await;
    let dismissed = c
        .ok("browser_handle_dialog", json!({"accept": false}))
        .await;
    assert!(
        dismissed.text.contains("confirm: false"),
        "{}",
        dismissed.text
    );

    let p = c
        .ok("browser_click", json!({"target": nav.ref_of(&["Prompt"])}))
        .await;
    assert!(
        p.text.contains("prompt") && p.text.contains("Your name?"),
        "{}",
        p.text
    );
    let answered = c
        .ok(
            "browser_handle_dialog",
            json!({"accept": true, "promptText": "Grace"}),
        )
        .await;
    assert!(answered.text.contains("prompt: Grace"), "{}", answered.text);
    assert_eq!(
        c.eval("() => document.getElementById('result').textContent")
            .await,
        "\"prompt: Grace\""
    );

    let e = c
        .err("browser_handle_dialog", json!({"accept": true}))
        .await;
    assert!(e.contains("NO_DIALOG"), "{e}");
}

/// Same-site and cross-site (out-of-process) iframes: in the snapshot and drivable.
pub async fn frames(c: &Client, fx: &Fixtures) {
    c.ok("browser_navigate", json!({"url": fx.url("frames.html")}))
        .await;
    // The cross-site frame loads on its own; wait for its text.
    c.ok("browser_wait_for", json!({"text": "Frames"})).await;
    let mut snap = c.ok("browser_snapshot", json!({})).await;
    for _ in 0..50 {
        if snap.text.contains("Inner frame other") && snap.text.contains("Inner frame same") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        snap = c.ok("browser_snapshot", json!({})).await;
    }
    assert!(snap.text.contains("Inner frame same"), "{}", snap.text);
    assert!(snap.text.contains("Inner frame other"), "{}", snap.text);
    let shown = c.ok("browser_snapshot", json!({"viewport": true})).await;
    assert!(
        shown.text.contains("Inner frame same") && shown.text.contains("Inner frame other"),
        "both frames are on screen: {}",
        shown.text
    );
    let buttons: Vec<String> = snap
        .text
        .lines()
        .filter(|l| l.contains("Press me"))
        .filter_map(|l| find_ref(l, &["Press me"]))
        .collect();
    assert_eq!(buttons.len(), 2, "a button in each frame:\n{}", snap.text);
    for b in &buttons {
        c.ok("browser_click", json!({"target": b})).await;
    }
    let after = c.ok("browser_snapshot", json!({})).await;
    assert!(after.text.contains("Pressed in same"), "{}", after.text);
    assert!(after.text.contains("Pressed in other"), "{}", after.text);
    // Typing into the cross-site frame, read back through evaluate on its element.
    let fields: Vec<String> = after
        .text
        .lines()
        .filter_map(|l| find_ref(l, &["Inner field"]))
        .collect();
    assert_eq!(fields.len(), 2, "{}", after.text);
    c.ok(
        "browser_type",
        json!({"target": fields[1], "text": "across sites"}),
    )
    .await;
    let v = c
        .ok("browser_evaluate", json!({"function": "(el) => el.value + ' @ ' + location.hostname", "target": fields[1]}))
        .await;
    assert!(v.text.contains("across sites @ localhost"), "{}", v.text);
}

/// Open and closed shadow roots are in the snapshot and their elements can be driven.
pub async fn shadow_dom(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("shadow.html")}))
        .await;
    assert!(nav.text.contains("Shadow button"), "{}", nav.text);
    // A closed root's content, with the light-DOM child slotted into it.
    for seen in ["Sealed part", "Sealed button", "Slotted note"] {
        assert!(nav.text.contains(seen), "{seen} missing: {}", nav.text);
    }
    // Type into each root's field, click its button, and see what the page did.
    for (input, text, button, done) in [
        (
            "Sealed input",
            "closed",
            "Sealed button",
            "sealed clicked with closed",
        ),
        (
            "Shadow input",
            "deep",
            "Shadow button",
            "shadow clicked with deep",
        ),
    ] {
        c.ok(
            "browser_type",
            json!({"target": nav.ref_of(&[input]), "text": text}),
        )
        .await;
        let click = c
            .ok("browser_click", json!({"target": nav.ref_of(&[button])}))
            .await;
        assert!(click.text.contains(done), "{}", click.text);
    }
}

/// Console messages from page start (levels, uncaught errors) and network requests.
pub async fn console_and_network(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("console.html")}))
        .await;
    c.ok("browser_wait_for", json!({"text": "Console"})).await;
    let all = c
        .ok("browser_console_messages", json!({"level": "debug"}))
        .await;
    for needle in [
        "plain log 42",
        "an info",
        "a warning",
        "a debug line",
        "an error",
    ] {
        assert!(all.text.contains(needle), "missing {needle}: {}", all.text);
    }
    let mut errors = c
        .ok("browser_console_messages", json!({"level": "error"}))
        .await;
    for _ in 0..20 {
        if errors.text.contains("boom from a timer") && errors.text.contains("404") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        errors = c
            .ok("browser_console_messages", json!({"level": "error"}))
            .await;
    }
    assert!(
        errors.text.contains("Uncaught Error: boom from a timer"),
        "{}",
        errors.text
    );
    assert!(errors.text.contains("404"), "{}", errors.text);
    assert!(!errors.text.contains("plain log"), "{}", errors.text);
    let info = c.ok("browser_console_messages", json!({})).await;
    assert!(!info.text.contains("a debug line"), "{}", info.text);
    assert!(info.text.contains("a warning"), "{}", info.text);
    let e = c
        .err("browser_console_messages", json!({"level": "loud"}))
        .await;
    assert!(e.contains("BAD_REQUEST"), "{e}");

    let click = c
        .ok(
            "browser_click",
            json!({"target": nav.ref_of(&["Log and fetch"])}),
        )
        .await;
    assert!(
        click.text.contains("clicked error"),
        "new errors are reported: {}",
        click.text
    );
    assert!(
        click.text.contains("items 3"),
        "the fetch result shows: {}",
        click.text
    );
    let net = c.ok("browser_network_requests", json!({})).await;
    assert!(
        net.text.contains("GET http://127.0.0.1") && net.text.contains("/api/data → 200"),
        "{}",
        net.text
    );
    assert!(net.text.contains("/missing.json → 404"), "{}", net.text);
    let filtered = c
        .ok("browser_network_requests", json!({"filter": "api/data"}))
        .await;
    assert!(!filtered.text.contains("missing.json"), "{}", filtered.text);
}

/// Links, history, reload, redirects, form GET; bad URLs.
pub async fn navigation(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    assert!(nav.text.contains("Page: Start"), "{}", nav.text);
    let two = c
        .ok(
            "browser_click",
            json!({"target": nav.ref_of(&["Go to page two"])}),
        )
        .await;
    assert!(
        two.text.contains("Page: Page two") && two.text.contains("page2.html"),
        "{}",
        two.text
    );
    let back = c.ok("browser_navigate_back", json!({})).await;
    assert!(back.text.contains("Start page"), "{}", back.text);
    let fwd = c.ok("browser_navigate_forward", json!({})).await;
    assert!(fwd.text.contains("Page two"), "{}", fwd.text);
    let again = c.ok("browser_reload", json!({})).await;
    assert!(again.text.contains("Page two"), "{}", again.text);
    let e = c.err("browser_navigate_forward", json!({})).await;
    assert!(e.contains("no next page"), "{e}");

    let start = c
        .ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    let r = c
        .ok(
            "browser_click",
            json!({"target": start.ref_of(&["Redirecting link"])}),
        )
        .await;
    assert!(
        r.text.contains("page2.html"),
        "followed the redirect: {}",
        r.text
    );
    let start = c
        .ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    let searched = c
        .ok(
            "browser_type",
            json!({"target": start.ref_of(&["Search"]), "text": "tabs", "submit": true}),
        )
        .await;
    assert!(searched.text.contains("query: tabs"), "{}", searched.text);

    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = c
        .err(
            "browser_navigate",
            json!({"url": format!("http://127.0.0.1:{closed_port}/")}),
        )
        .await;
    assert!(
        refused.contains("NAVIGATION_FAILED") && refused.contains("ERR_CONNECTION_REFUSED"),
        "{refused}"
    );
    let bad = c.err("browser_navigate", json!({"url": "not a url"})).await;
    assert!(bad.contains("BAD_REQUEST"), "{bad}");
    // The server keeps serving after errors.
    c.ok("browser_navigate", json!({"url": fx.url("page2.html")}))
        .await;
}

/// Stale, unknown and foreign refs; selectors that match nothing or several.
pub async fn bad_refs(c: &Client, fx: &Fixtures) {
    let start = c
        .ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    let link = start.ref_of(&["Go to page two"]);
    c.ok("browser_navigate", json!({"url": fx.url("page2.html")}))
        .await;
    let stale = c.err("browser_click", json!({"target": link})).await;
    assert!(
        stale.contains("STALE_REF") && stale.contains("new snapshot"),
        "{stale}"
    );
    let unknown = c.err("browser_click", json!({"target": "e999999"})).await;
    assert!(unknown.contains("NOT_FOUND"), "{unknown}");
    let none = c
        .err("browser_click", json!({"target": "#does-not-exist"}))
        .await;
    assert!(none.contains("no element matches"), "{none}");
    let many = c.err("browser_click", json!({"target": "a, h1"})).await;
    assert!(many.contains("matches 2 elements"), "{many}");
    let junk = c.err("browser_click", json!({"target": "[[["})).await;
    assert!(junk.contains("BAD_REQUEST"), "{junk}");
    let missing = c.err("browser_click", json!({})).await;
    assert!(
        missing.contains("BAD_REQUEST") && missing.contains("target"),
        "{missing}"
    );

    // A ref from another tab.
    let here = c.ok("browser_snapshot", json!({})).await;
    let back_link = here.ref_of(&["Back to start"]);
    c.ok(
        "browser_tabs",
        json!({"action": "new", "url": fx.url("nav.html")}),
    )
    .await;
    let foreign = c.err("browser_click", json!({"target": back_link})).await;
    assert!(foreign.contains("belongs to your tab 0"), "{foreign}");
}

/// A long page: scrolling into view, budgets, subtrees and find.
pub async fn long_page(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("long.html")}))
        .await;
    // The page is longer than an answer's budget: the answer says so.
    assert!(nav.text.contains("cut:"), "{}", nav.text);
    let found = c
        .ok("browser_snapshot", json!({"find": "Bottom button"}))
        .await;
    let bottom = found.ref_of(&["Bottom button"]);
    let click = c.ok("browser_click", json!({"target": bottom})).await;
    assert!(click.text.contains("Bottom clicked"), "{}", click.text);
    let small = c.ok("browser_snapshot", json!({"maxChars": 600})).await;
    assert!(
        small.text.len() < 1200,
        "budget respected: {} chars",
        small.text.len()
    );
    assert!(small.text.contains("cut:"), "{}", small.text);
    let found = c
        .ok("browser_snapshot", json!({"find": "Paragraph 250:"}))
        .await;
    assert!(found.text.contains("Paragraph 250"), "{}", found.text);
    assert!(!found.text.contains("Paragraph 249:"), "{}", found.text);
    let seen = c.ok("browser_snapshot", json!({"viewport": true})).await;
    assert!(
        seen.text.contains("Bottom clicked") && !seen.text.contains("Paragraph 1:"),
        "scrolled to the bottom: {}",
        seen.text
    );
    let sub = c.ok("browser_snapshot", json!({"target": bottom})).await;
    assert!(
        sub.text.contains("Bottom clicked") && !sub.text.contains("Paragraph 1:"),
        "{}",
        sub.text
    );
}

/// Waiting for text to appear and go, for time, and timing out.
pub async fn waiting(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("delayed.html")}))
        .await;
    c.ok(
        "browser_click",
        json!({"target": nav.ref_of(&["Load results"])}),
    )
    .await;
    let w = c
        .ok("browser_wait_for", json!({"text": "Results are ready"}))
        .await;
    assert!(w.text.contains("Found \"Results are ready\""), "{}", w.text);
    let g = c
        .ok("browser_wait_for", json!({"textGone": "Loading spinner"}))
        .await;
    assert!(g.text.contains("is gone"), "{}", g.text);
    let t = c
        .err(
            "browser_wait_for",
            json!({"text": "never appears", "timeout": 0.5}),
        )
        .await;
    assert!(t.contains("TIMEOUT") && t.contains("did not appear"), "{t}");
    let e = c.err("browser_wait_for", json!({})).await;
    assert!(e.contains("BAD_REQUEST"), "{e}");
    c.ok("browser_wait_for", json!({"time": 0.2})).await;
}

/// Covered, disabled and hidden targets are clear errors, never a click elsewhere.
pub async fn not_actionable(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("covered.html")}))
        .await;
    let under = nav.ref_of(&["Under the overlay"]);
    let e = c.err("browser_click", json!({"target": under})).await;
    assert!(
        e.contains("NOT_ACTIONABLE") && e.contains("covered by div#overlay"),
        "{e}"
    );
    assert_eq!(
        c.eval("() => document.title").await,
        "\"Covered\"",
        "nothing was clicked"
    );
    let e = c
        .err(
            "browser_click",
            json!({"target": nav.ref_of(&["Disabled button"])}),
        )
        .await;
    assert!(e.contains("disabled"), "{e}");
    let e = c.err("browser_click", json!({"target": "#hidden"})).await;
    assert!(e.contains("not visible"), "{e}");
    c.ok(
        "browser_click",
        json!({"target": nav.ref_of(&["Dismiss overlay"])}),
    )
    .await;
    c.ok("browser_click", json!({"target": under})).await;
    assert_eq!(c.eval("() => document.title").await, "\"clicked under\"");
}

/// HTML5 drag and drop; hover menus.
pub async fn drag_and_hover(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("drag.html")}))
        .await;
    let d = c
        .ok(
            "browser_drag",
            json!({"startTarget": nav.ref_of(&["Card"]), "endTarget": "#zone"}),
        )
        .await;
    assert!(d.text.contains("dropped card-1"), "{}", d.text);

    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("hover.html")}))
        .await;
    assert!(!nav.text.contains("First item"), "{}", nav.text);
    let h = c
        .ok("browser_hover", json!({"target": nav.ref_of(&["Menu"])}))
        .await;
    assert!(h.text.contains("First item"), "the menu opened: {}", h.text);
}

/// Keys and chords arrive as trusted key events.
pub async fn keyboard(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("keys.html")}))
        .await;
    let field = nav.ref_of(&["Key field"]);
    c.ok("browser_click", json!({"target": field})).await;
    for k in ["x", "Enter", "ArrowLeft", "Control+a", "Shift+Tab"] {
        c.ok("browser_press_key", json!({"key": k})).await;
    }
    let log = c
        .eval("() => document.getElementById('log').textContent")
        .await;
    assert_eq!(
        log, "\"x Enter ArrowLeft Ctrl+Control Ctrl+a Shift+Shift Shift+Tab\"",
        "{log}"
    );
    let e = c.err("browser_press_key", json!({"key": "Hyper+q"})).await;
    assert!(e.contains("BAD_REQUEST"), "{e}");
    c.ok(
        "browser_type",
        json!({"target": field, "text": "ok", "slowly": true}),
    )
    .await;
    let value = c.eval("() => document.getElementById('k').value").await;
    assert_eq!(value, "\"xok\"");
}

/// Viewport, full page, element; png and jpeg; saved to a file.
pub async fn screenshots(c: &Client, fx: &Fixtures) {
    c.ok("browser_navigate", json!({"url": fx.url("long.html")}))
        .await;
    let nav = c
        .ok("browser_snapshot", json!({"find": "Bottom button"}))
        .await;
    let shot = c.ok("browser_take_screenshot", json!({})).await;
    assert_eq!(shot.images.len(), 1);
    assert_eq!(shot.images[0].1, "image/png");
    assert!(shot.images[0].0.starts_with("iVBORw0KGgo"), "PNG data");
    let (vw, vh) = png_size(&shot.images[0].0);
    let full = c
        .ok("browser_take_screenshot", json!({"fullPage": true}))
        .await;
    let (fw, fh) = png_size(&full.images[0].0);
    assert_eq!(fw, vw);
    assert!(
        fh > vh * 3,
        "the full page is taller than the viewport: {fh} vs {vh}"
    );
    let el = c
        .ok(
            "browser_take_screenshot",
            json!({"target": nav.ref_of(&["Bottom button"])}),
        )
        .await;
    let (ew, eh) = png_size(&el.images[0].0);
    assert!(ew < 300 && eh < 80, "an element-sized image: {ew}x{eh}");
    let jpeg = c
        .ok(
            "browser_take_screenshot",
            json!({"type": "jpeg", "quality": 30}),
        )
        .await;
    assert_eq!(jpeg.images[0].1, "image/jpeg");
    let dir = TempDir::new("shots");
    let path = dir.path().join("page.png");
    let saved = c
        .ok(
            "browser_take_screenshot",
            json!({"filename": path.to_str().unwrap()}),
        )
        .await;
    assert!(saved.text.contains("Saved to"), "{}", saved.text);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let e = c
        .err("browser_take_screenshot", json!({"type": "gif"}))
        .await;
    assert!(e.contains("BAD_REQUEST"), "{e}");
    c.ok("browser_resize", json!({"width": 500, "height": 400}))
        .await;
    assert_eq!(
        c.eval("() => innerWidth + 'x' + innerHeight").await,
        "\"500x400\""
    );
    let small = c.ok("browser_take_screenshot", json!({})).await;
    assert_eq!(png_size(&small.images[0].0), (500, 400));
}

fn png_size(b64: &str) -> (u32, u32) {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

/// Own tabs: new, list, select, close, release and claim back.
pub async fn tabs(c: &Client, fx: &Fixtures) {
    c.ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    let t = c
        .ok(
            "browser_tabs",
            json!({"action": "new", "url": fx.url("page2.html")}),
        )
        .await;
    assert!(
        t.text.contains("Opened tab 1") && t.text.contains("Page two"),
        "{}",
        t.text
    );
    let list = c.ok("browser_tabs", json!({"action": "list"})).await;
    assert!(list.text.contains("- 0: Start"), "{}", list.text);
    assert!(
        list.text.contains("- 1: (current) Page two"),
        "{}",
        list.text
    );
    let sel = c
        .ok("browser_tabs", json!({"action": "select", "index": 0}))
        .await;
    assert!(sel.text.contains("Start page"), "{}", sel.text);
    let e = c
        .err("browser_tabs", json!({"action": "select", "index": 7}))
        .await;
    assert!(e.contains("NO_TAB") && e.contains("2 tab"), "{e}");
    let closed = c
        .ok("browser_tabs", json!({"action": "close", "index": 1}))
        .await;
    assert!(!closed.text.contains("Page two"), "{}", closed.text);
    let e = c.err("browser_tabs", json!({"action": "dance"})).await;
    assert!(e.contains("BAD_REQUEST"), "{e}");

    // Release keeps the tab open; listing every tab shows it free; claim takes it back.
    c.ok(
        "browser_tabs",
        json!({"action": "new", "url": fx.url("page2.html")}),
    )
    .await;
    c.ok("browser_tabs", json!({"action": "release", "index": 1}))
        .await;
    let all = c
        .ok("browser_tabs", json!({"action": "list", "all": true}))
        .await;
    let line = all
        .text
        .lines()
        .find(|l| l.contains("Page two"))
        .unwrap_or_else(|| panic!("released tab listed: {}", all.text))
        .to_string();
    assert!(line.contains("[free]"), "{line}");
    let id = line
        .trim_start_matches("- tabId ")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let claimed = c
        .ok("browser_tabs", json!({"action": "claim", "tabId": id}))
        .await;
    assert!(claimed.text.contains("Page two"), "{}", claimed.text);
    // A tab id that never existed.
    let e = c
        .err(
            "browser_tabs",
            json!({"action": "claim", "tabId": "999999", "timeout": 1}),
        )
        .await;
    assert!(
        e.starts_with("NOT_FOUND") && e.contains("no tab 999999"),
        "{e}"
    );
}

/// Functions on the page and on elements; results serialized; exceptions as errors.
pub async fn evaluate(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    assert_eq!(c.eval("() => 1 + 1").await, "2");
    assert_eq!(
        c.eval("() => ({a: [1, 'two'], b: null})").await,
        r#"{"a":[1,"two"],"b":null}"#
    );
    assert_eq!(c.eval("() => undefined").await, "undefined");
    assert_eq!(
        c.eval("async () => { await new Promise(r => setTimeout(r, 10)); return 'later'; }")
            .await,
        "\"later\""
    );
    assert_eq!(c.eval("document.title").await, "\"Start\"");
    assert!(
        c.eval("() => document.querySelector('h1')")
            .await
            .contains("<h1>")
    );
    let on_el = c
        .ok("browser_evaluate", json!({"function": "(el) => el.getAttribute('href')", "target": nav.ref_of(&["Go to page two"])}))
        .await;
    assert!(
        on_el.text.starts_with("Result: \"page2.html\""),
        "{}",
        on_el.text
    );
    let thrown = c
        .err(
            "browser_evaluate",
            json!({"function": "() => { throw new Error('nope'); }"}),
        )
        .await;
    assert!(
        thrown.contains("EVAL_ERROR") && thrown.contains("nope"),
        "{thrown}"
    );
    let syntax = c
        .err("browser_evaluate", json!({"function": "() => {"}))
        .await;
    assert!(
        syntax.contains("EVAL_ERROR") && syntax.contains("SyntaxError"),
        "{syntax}"
    );
    // The page noticed the evaluation's side effects.
    c.ok(
        "browser_evaluate",
        json!({"function": "() => { document.body.dataset.touched = 'yes'; }"}),
    )
    .await;
    assert_eq!(
        c.eval("() => document.body.dataset.touched").await,
        "\"yes\""
    );
}

/// Tabs a page opens (target=_blank, window.open) become the client's tabs.
pub async fn popups(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("popup.html")}))
        .await;
    let a = c
        .ok(
            "browser_click",
            json!({"target": nav.ref_of(&["Open page two"])}),
        )
        .await;
    let mut list = c.ok("browser_tabs", json!({"action": "list"})).await;
    assert!(
        a.text.contains("opened a new tab") || list.text.contains("opened a new tab"),
        "the answer says a tab opened: {} / {}",
        a.text,
        list.text
    );
    for _ in 0..20 {
        if list.text.contains("- 1:") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        list = c.ok("browser_tabs", json!({"action": "list"})).await;
    }
    assert!(list.text.contains("- 0: (current) Popups"), "{}", list.text);
    assert!(
        list.text.contains("- 1:") && list.text.contains("page2.html"),
        "{}",
        list.text
    );
    let sel = c
        .ok("browser_tabs", json!({"action": "select", "index": 1}))
        .await;
    assert!(sel.text.contains("Page two"), "{}", sel.text);
    c.ok("browser_tabs", json!({"action": "select", "index": 0}))
        .await;
    c.ok(
        "browser_click",
        json!({"target": nav.ref_of(&["Open a window"])}),
    )
    .await;
    let mut list = c.ok("browser_tabs", json!({"action": "list"})).await;
    for _ in 0..20 {
        if list.text.contains("- 2:") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        list = c.ok("browser_tabs", json!({"action": "list"})).await;
    }
    assert!(
        list.text.contains("- 2:") && list.text.contains("nav.html"),
        "{}",
        list.text
    );
}

/// `data:` URLs (with spaces and markup) and URLs with spaces navigate as given.
pub async fn data_urls(c: &Client, fx: &Fixtures) {
    let url = "data:text/html,<title>Data page</title><h1>Hello data world</h1><button onclick=\"document.title='data clicked'\">Press data</button>";
    let nav = c.ok("browser_navigate", json!({"url": url})).await;
    assert!(
        nav.text.contains("Hello data world") && nav.text.contains("Page: Data page"),
        "{}",
        nav.text
    );
    let click = c
        .ok(
            "browser_click",
            json!({"target": nav.ref_of(&["Press data"])}),
        )
        .await;
    assert!(click.text.contains("data clicked"), "{}", click.text);
    // A plain-text data: URL, and an http URL with a space in its query.
    let text = c
        .ok(
            "browser_navigate",
            json!({"url": "data:text/plain,just some words"}),
        )
        .await;
    assert!(text.text.contains("just some words"), "{}", text.text);
    let spaced = format!("{}?q=two words", fx.url("page2.html"));
    let page = c.ok("browser_navigate", json!({"url": spaced})).await;
    assert!(page.text.contains("Page two"), "{}", page.text);
    assert!(
        fx.requests()
            .iter()
            .any(|r| r.path == "/page2.html?q=two%20words"),
        "the browser encoded the space"
    );
    let bad = c.err("browser_navigate", json!({"url": "two words"})).await;
    assert!(bad.contains("BAD_REQUEST"), "{bad}");
}

/// Launched browsers show pages in a 1280×720 viewport.
pub async fn viewport_size(c: &Client, fx: &Fixtures) {
    c.ok("browser_navigate", json!({"url": fx.url("index.html")}))
        .await;
    assert_eq!(
        c.eval("() => innerWidth + 'x' + innerHeight").await,
        "\"1280x720\""
    );
}

/// A link that wraps onto two lines, whose bounding box's centre is covered by a
/// heading, is clicked on one of its own line boxes.
pub async fn wrapped_link(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("wrapped.html")}))
        .await;
    let rects = c
        .eval("() => document.getElementById('wrap').getClientRects().length")
        .await;
    assert_eq!(rects, "2", "the link wraps onto two lines");
    let click = c
        .ok(
            "browser_click",
            json!({"target": nav.ref_of(&["link", "wrapping link"])}),
        )
        .await;
    assert!(
        click.text.contains("wrapped link clicked"),
        "{}",
        click.text
    );
    assert_eq!(
        c.eval("() => document.getElementById('out').textContent")
            .await,
        "\"wrapped link clicked\""
    );
}

/// Answers wait until the page is quiet: content revealed after load (a timer and a
/// fetch) is in the navigation's snapshot; a banner that fades out before it leaves
/// is gone from the click's changes; a page that never goes quiet is shown at the
/// bound, and the answer says so.
pub async fn settling(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("reveal.html")}))
        .await;
    println!(
        "measured: reveal.html content at {} ms, footer at {} ms after load",
        c.eval("() => Math.round(window.revealedAt)").await,
        c.eval("() => Math.round(window.footerAt)").await
    );
    assert!(
        nav.text.contains("Revealed item 3") && nav.text.contains("Revealed footer"),
        "{}",
        nav.text
    );
    assert!(!nav.text.contains("still changing"), "{}", nav.text);

    let fade = c
        .ok("browser_navigate", json!({"url": fx.url("fade.html")}))
        .await;
    assert!(fade.text.contains("We use cookies"), "{}", fade.text);
    let started = std::time::Instant::now();
    let click = c
        .ok(
            "browser_click",
            json!({"target": fade.ref_of(&["Close banner"])}),
        )
        .await;
    println!(
        "measured: click that fades a banner out answered in {} ms",
        started.elapsed().as_millis()
    );
    assert!(
        click
            .text
            .lines()
            .any(|l| l.starts_with("- ") && l.contains("Cookie banner")),
        "the banner is gone in the changes: {}",
        click.text
    );

    let started = std::time::Instant::now();
    let ticker = c
        .ok("browser_navigate", json!({"url": fx.url("ticker.html")}))
        .await;
    let took = started.elapsed();
    println!(
        "measured: a page that never settles answered in {} ms",
        took.as_millis()
    );
    assert!(ticker.text.contains("still changing"), "{}", ticker.text);
    assert!(
        took < std::time::Duration::from_secs(6),
        "bounded: {took:?}"
    );
}

/// A cancelled call stops at once and leaves the tab free: the next call answers
/// quickly (a wait, and a navigation to a page that takes 20 s).
pub async fn cancellation(c: &Client, fx: &Fixtures) {
    use std::time::{Duration, Instant};
    c.ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    c.call_cancelled_after(
        "browser_wait_for",
        json!({"text": "never appears", "timeout": 20}),
        Duration::from_secs(1),
    )
    .await;
    let started = Instant::now();
    let snap = c.ok("browser_snapshot", json!({})).await;
    let took = started.elapsed();
    println!(
        "measured: the call after a cancelled wait answered in {} ms",
        took.as_millis()
    );
    assert!(snap.text.contains("Start page"), "{}", snap.text);
    assert!(took < Duration::from_secs(3), "answered quickly: {took:?}");

    c.call_cancelled_after(
        "browser_navigate",
        json!({"url": fx.url("slow?ms=20000")}),
        Duration::from_secs(1),
    )
    .await;
    // The page stops loading what the cancelled call asked for.
    let mut net = String::new();
    for _ in 0..40 {
        net = c
            .ok("browser_network_requests", json!({"filter": "slow"}))
            .await
            .text;
        if net.contains("failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(net.contains("slow?ms=20000 → failed"), "{net}");
    let still = c.ok("browser_snapshot", json!({})).await;
    assert!(still.text.contains("Start page"), "{}", still.text);
    let started = Instant::now();
    c.ok("browser_navigate", json!({"url": fx.url("page2.html")}))
        .await;
    let took = started.elapsed();
    println!(
        "measured: the call after a cancelled navigation answered in {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(3), "answered quickly: {took:?}");
}

/// A client that sends a progress token hears at least once a second what a long call
/// is doing.
pub async fn progress(c: &Client, fx: &Fixtures) {
    use std::time::Duration;
    c.ok("browser_navigate", json!({"url": fx.url("nav.html")}))
        .await;
    c.eval("() => { setTimeout(() => document.body.append('Late text'), 2500); return 1 }")
        .await;
    let (a, notes) = c
        .call_with_progress("browser_wait_for", json!({"text": "Late text"}))
        .await;
    assert!(!a.is_error, "{}", a.text);
    assert!(
        notes.len() >= 2,
        "progress at least once a second: {notes:?}"
    );
    assert!(
        notes[0]
            .1
            .contains("waiting for the text \"Late text\" to appear"),
        "{notes:?}"
    );
    let mut last = Duration::ZERO;
    for (at, _) in &notes {
        assert!(
            *at - last < Duration::from_millis(1300),
            "a gap over 1 s: {notes:?}"
        );
        last = *at;
    }
    // A quick call gets none.
    let (_, quick) = c
        .call_with_progress("browser_tabs", json!({"action": "list"}))
        .await;
    assert!(quick.is_empty(), "{quick:?}");
}

/// How many times tabmux's log says it reused the last snapshot without walking the page.
fn reuses(c: &Client) -> usize {
    std::fs::read_to_string(&c.log)
        .unwrap_or_default()
        .matches("snapshot: no frame changed, reused")
        .count()
}

/// Waits (with a deadline) until the log shows `n` reuses; returns the count seen.
async fn wait_reuses(c: &Client, n: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let seen = reuses(c);
        if seen >= n || std::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// An action that changes nothing on the page (following an in-page link: it only
/// scrolls) reuses the last snapshot instead of walking the page again; changes to the
/// DOM, typed values and values set by scripts are all seen.
pub async fn snapshot_reuse(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok("browser_navigate", json!({"url": fx.url("scroll.html")}))
        .await;
    let before = reuses(c);
    let snap = c.ok("browser_snapshot", json!({})).await;
    assert!(snap.text.contains("button \"Add item\""), "{}", snap.text);
    assert_eq!(
        wait_reuses(c, before + 1).await,
        before + 1,
        "nothing changed since the navigation"
    );

    let jump = c
        .ok(
            "browser_click",
            json!({"target": nav.ref_of(&["Jump to the end"])}),
        )
        .await;
    assert!(
        jump.text.contains("No change on the page."),
        "{}",
        jump.text
    );
    assert_eq!(
        wait_reuses(c, before + 2).await,
        before + 2,
        "a click that only scrolls reuses the snapshot"
    );
    let y = c.eval("() => window.scrollY > 1000").await;
    assert_eq!(y, "true", "the link scrolled the page");

    let add = c
        .ok(
            "browser_click",
            json!({"target": nav.ref_of(&["Add item"])}),
        )
        .await;
    assert!(
        add.text.contains("+ ") && add.text.contains("Item 1"),
        "{}",
        add.text
    );
    let typed = c
        .ok(
            "browser_type",
            json!({"target": nav.ref_of(&["Note"]), "text": "hello"}),
        )
        .await;
    assert!(typed.text.contains("hello"), "{}", typed.text);
    // A value set by a script, without any event: still seen.
    c.eval("() => { document.getElementById('note').value = 'set by script'; return 1; }")
        .await;
    let snap = c.ok("browser_snapshot", json!({})).await;
    assert!(snap.text.contains("set by script"), "{}", snap.text);
    let n = reuses(c);
    assert_eq!(n, before + 2, "changed pages are walked again");
}

/// Elements that scripts make actionable get refs, and the refs drive them: a pointer
/// cursor of its own (its bold child, which inherits it, gets none), an inline handler,
/// `draggable`, list items with a pointer cursor, a `contenteditable` editor.
pub async fn script_refs(c: &Client, fx: &Fixtures) {
    let nav = c
        .ok(
            "browser_navigate",
            json!({"url": fx.url("actionable.html")}),
        )
        .await;
    let t = &nav.text;
    for needle in [
        "Filter",
        "Run inline",
        "Card one",
        "Water the plants",
        "Call Bob",
        "Editor",
    ] {
        assert!(
            crate::common::find_ref(t, &[needle]).is_some(),
            "{needle} has no ref:\n{t}"
        );
    }
    let chip = c
        .ok("browser_click", json!({"target": nav.ref_of(&["Filter"])}))
        .await;
    assert!(chip.text.contains("Chip clicked."), "{}", chip.text);
    let inline = c
        .ok(
            "browser_click",
            json!({"target": nav.ref_of(&["Run inline"])}),
        )
        .await;
    assert!(
        inline.text.contains("Inline handler ran."),
        "{}",
        inline.text
    );
    let item = c
        .ok(
            "browser_click",
            json!({"target": nav.ref_of(&["Call Bob"])}),
        )
        .await;
    assert!(item.text.contains("Picked Call Bob."), "{}", item.text);
    c.ok(
        "browser_type",
        json!({"target": nav.ref_of(&["Editor"]), "text": "Hello editor"}),
    )
    .await;
    let typed = c
        .eval("() => document.getElementById('editor').textContent")
        .await;
    assert_eq!(typed, "\"Hello editor\"");
    let refs_on_chip = t
        .lines()
        .filter(|l| (l.contains("Filter") || l.contains("open")) && l.contains("[e"))
        .count();
    assert_eq!(
        refs_on_chip, 1,
        "one ref for the chip, none for its child:\n{t}"
    );
}
