//! Many clients, one browser: several real tabmux processes, each driven by its own
//! MCP client, share one headless Chromium through the tabmux extension. Each test has
//! its own browser profile, state directory and port range, and cleans up every
//! process it started.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use common::browser::{ExtBrowser, free_range};
use common::{Answer, Client, Fixtures, TempDir};

/// The grace period the instances of these tests get (`--grace`, seconds).
const GRACE_S: u64 = 2;
/// "At once": how late an answer that must come at once may be, on a busy 2-core
/// machine (the lock decisions themselves take a few milliseconds).
const AT_ONCE: Duration = Duration::from_millis(1500);

/// A browser with the extension, a fixture server, a state directory and a port range
/// shared by the instances of one test.
struct Multi {
    browser: ExtBrowser,
    fx: Fixtures,
    state: TempDir,
    ports: String,
}

impl Drop for Multi {
    fn drop(&mut self) {
        common::end_shared_browsers(self.state.path());
    }
}

impl Multi {
    async fn new() -> Multi {
        Self::with_range(free_range(11)).await
    }

    async fn with_range(range: (u16, u16)) -> Multi {
        let state = TempDir::new("multi-state");
        let browser = ExtBrowser::start(range, state.path()).await;
        Multi {
            browser,
            fx: Fixtures::start().await,
            state,
            ports: format!("{}-{}", range.0, range.1),
        }
    }

    fn args<'a>(&'a self, grace: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "--extension",
            "--ports",
            &self.ports,
            "--extension-wait",
            "15",
            "--grace",
            grace,
            // These tests are about locks, on tabs the test opens as the user:
            // consent is tested in tests/consent.rs.
            "--user-tabs",
            "allow",
        ];
        a.extend_from_slice(extra);
        a
    }

    /// A tabmux instance of this browser, started as the MCP client `name` would.
    async fn client(&self, name: &str) -> Client {
        self.client_with(name, &[]).await
    }

    async fn client_with(&self, name: &str, extra: &[&str]) -> Client {
        let grace = GRACE_S.to_string();
        Client::start_in(name, &self.args(&grace, extra), self.state.path()).await
    }

    /// A fixture page that names its owner in everything it shows.
    fn page(&self, who: &str) -> String {
        self.fx.url(&format!("who.html?who={who}"))
    }

    async fn worker(&self, expr: &str) -> Value {
        self.browser.worker_eval(expr).await
    }

    /// How many claims wait for `tab` in the extension.
    async fn waiting(&self, tab: i64) -> i64 {
        self.worker(&format!("tabmux.locks.waiting({tab})"))
            .await
            .as_i64()
            .unwrap_or(-1)
    }

    /// Waits (up to `within`) until `n` claims wait for `tab`.
    async fn until_waiting(&self, tab: i64, n: i64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let w = self.waiting(tab).await;
            if w == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{n} claim(s) should wait for tab {tab} within {within:?}; {w} do"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// The extension's bookkeeping, for people reading a failure.
    async fn ext_state(&self) -> Value {
        self.worker(
            "(async () => { const s = await tabmux.status(); return {
                instances: s.instances.map(i => ({label: i.label, status: i.status, tabs: i.tabs})),
                tabs: s.tabs.map(t => ({tabId: t.tabId, holder: t.holder && t.holder.name, closing: t.closing, waiters: t.waiters.map(w => w.label)})),
                conns: tabmux.conns.size }; })()",
        )
        .await
    }

    /// Chrome's tab ids of every open tab.
    async fn browser_tabs(&self) -> Vec<i64> {
        let v = self
            .worker("chrome.tabs.query({}).then(ts => ts.map(t => t.id))")
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_i64)
            .collect()
    }

    async fn tab_exists(&self, tab: i64) -> bool {
        self.browser_tabs().await.contains(&tab)
    }

    /// Waits (up to `within`) until `tab` is closed; how long that took.
    async fn closed_within(&self, tab: i64, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < within {
            if !self.tab_exists(tab).await {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

/// One row of `browser_tabs {action: "list", all: true}`.
#[derive(Debug, Clone)]
struct Row {
    id: i64,
    title: String,
    url: String,
    holder: String,
    /// Who waits for it, as listed (`"Bravo", "Charlie"`).
    waiting: String,
}

fn rows(text: &str) -> Vec<Row> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("- tabId ")?;
            let (id, rest) = rest.split_once(": ")?;
            let (rest, waiting) = match rest.rsplit_once("; waiting: ") {
                Some((r, w)) => (r, w.to_string()),
                None => (rest, String::new()),
            };
            let open = rest.rfind(" [")?;
            let holder = rest[open + 2..].strip_suffix(']')?.to_string();
            let (title, url) = rest[..open].rsplit_once(" — ")?;
            Some(Row {
                id: id.parse().ok()?,
                title: title.to_string(),
                url: url.to_string(),
                holder,
                waiting,
            })
        })
        .collect()
}

/// Every tab of the browser as `c` sees it.
async fn all_tabs(c: &Client) -> Vec<Row> {
    let a = c
        .ok("browser_tabs", json!({"action": "list", "all": true}))
        .await;
    rows(&a.text)
}

/// The Chrome tab id of `c`'s tab `index`.
async fn tab_id(c: &Client, index: usize) -> i64 {
    let want = format!("you (index {index})");
    let all = all_tabs(c).await;
    all.iter()
        .find(|r| r.holder == want)
        .unwrap_or_else(|| panic!("no tab {want} in {all:?}"))
        .id
}

/// `c`'s own tabs (`browser_tabs list`): (index, is current, the rest of the line).
async fn own_tabs(c: &Client) -> Vec<(usize, bool, String)> {
    let a = c.ok("browser_tabs", json!({"action": "list"})).await;
    a.text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("- ")?;
            let (i, rest) = rest.split_once(':')?;
            let current = rest.starts_with(" (current)");
            Some((i.parse().ok()?, current, rest.to_string()))
        })
        .collect()
}

fn claim(tab: i64, timeout: f64) -> Value {
    json!({"action": "claim", "tabId": tab.to_string(), "timeout": timeout})
}

/// Claims `tab`; the answer and when it came.
async fn timed_claim(c: &Client, tab: i64, timeout: f64) -> (Answer, Instant) {
    let r = c.call("browser_tabs", claim(tab, timeout)).await;
    (r, Instant::now())
}

fn release(index: usize) -> Value {
    json!({"action": "release", "index": index})
}

/// Milliseconds since the epoch on this machine's clock (the pages use the same).
fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// `Date.now()` in `c`'s current page: the moment one of its commands ran.
async fn page_now(c: &Client) -> f64 {
    c.eval("() => Date.now()")
        .await
        .parse()
        .expect("Date.now() is a number")
}

fn assert_only(text: &str, own: &str, others: &[&str], what: &str) {
    assert!(
        text.contains(own),
        "{what}: the answer should be about {own}:\n{text}"
    );
    for o in others {
        assert!(
            !text.contains(o),
            "{what}: cross-talk, the answer mentions {o}:\n{text}"
        );
    }
}

// ------------------------------------------------------------------------------ P0

/// 1. Two instances on different tabs: each sees and drives only its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_no_cross_talk() {
    let mut m = Multi::new().await;
    let a = m.client("Alpha").await;
    let b = m.client("Bravo").await;
    let (na, nb) = tokio::join!(
        a.ok("browser_navigate", json!({"url": m.page("tokA")})),
        b.ok("browser_navigate", json!({"url": m.page("tokB")})),
    );
    assert_only(&na.text, "Owner tokA", &["tokB"], "A's navigate");
    assert_only(&nb.text, "Owner tokB", &["tokA"], "B's navigate");

    // Each lists only its own tab.
    let (la, lb) = tokio::join!(own_tabs(&a), own_tabs(&b));
    assert_eq!(la.len(), 1, "A has one tab: {la:?}");
    assert_eq!(lb.len(), 1, "B has one tab: {lb:?}");
    assert_only(&la[0].2, "Page of tokA", &["tokB"], "A's list");
    assert_only(&lb[0].2, "Page of tokB", &["tokA"], "B's list");

    // Actions at the same time, each on its own page.
    let count_a = na.ref_of(&["button", "Count"]);
    let note_b = nb.ref_of(&["textbox", "Note"]);
    let clicks = async {
        let mut last = None;
        for _ in 0..3 {
            last = Some(a.ok("browser_click", json!({"target": count_a})).await);
        }
        last.unwrap()
    };
    let typing = b.ok(
        "browser_type",
        json!({"target": note_b, "text": "typed by B"}),
    );
    let (ca, tb) = tokio::join!(clicks, typing);
    assert_only(&ca.text, "tokA clicks 3", &["tokB"], "A's click");
    assert_only(&tb.text, "echo tokB: typed by B", &["tokA"], "B's typing");

    // Neither page saw the other's actions.
    let (pa, pb) = tokio::join!(
        a.eval("() => document.getElementById('echo').textContent + '|' + document.getElementById('clicks').textContent"),
        b.eval("() => document.getElementById('echo').textContent + '|' + document.getElementById('clicks').textContent"),
    );
    assert_eq!(pa, "\"echo|tokA clicks 3\"", "A's page");
    assert_eq!(pb, "\"echo tokB: typed by B|clicks 0\"", "B's page");

    // Snapshots and console messages: each its own.
    let (sa, sb) = tokio::join!(
        a.ok("browser_snapshot", json!({})),
        b.ok("browser_snapshot", json!({})),
    );
    assert_only(&sa.text, "Owner tokA", &["tokB"], "A's snapshot");
    assert_only(&sb.text, "Owner tokB", &["tokA"], "B's snapshot");
    let (ma, mb) = tokio::join!(
        a.ok("browser_console_messages", json!({})),
        b.ok("browser_console_messages", json!({})),
    );
    assert_only(&ma.text, "hello from tokA", &["tokB"], "A's console");
    assert_only(&mb.text, "hello from tokB", &["tokA"], "B's console");

    // `list all` shows the other's tab as held by it.
    let (ta, tb) = (tab_id(&a, 0).await, tab_id(&b, 0).await);
    assert_ne!(ta, tb);
    let seen_by_a = all_tabs(&a).await;
    let row = |rows: &[Row], id: i64| rows.iter().find(|r| r.id == id).cloned().unwrap();
    assert_eq!(
        row(&seen_by_a, tb).holder,
        "held by \"Bravo\"",
        "{seen_by_a:?}"
    );
    assert_eq!(row(&seen_by_a, ta).holder, "you (index 0)", "{seen_by_a:?}");
    assert_eq!(row(&seen_by_a, tb).title, "Page of tokB");
    assert!(
        row(&seen_by_a, tb).url.ends_with("who=tokB"),
        "{seen_by_a:?}"
    );
    let seen_by_b = all_tabs(&b).await;
    assert_eq!(
        row(&seen_by_b, ta).holder,
        "held by \"Alpha\"",
        "{seen_by_b:?}"
    );
    assert_eq!(row(&seen_by_b, tb).holder, "you (index 0)", "{seen_by_b:?}");

    // A cannot drive B's tab: a try-lock on it is TAB_BUSY, and B's page is untouched.
    let e = a.err("browser_tabs", claim(tb, 0.0)).await;
    assert!(e.contains("TAB_BUSY") && e.contains("\"Bravo\""), "{e}");
    assert_eq!(own_tabs(&a).await.len(), 1);
    let title_b = b.eval("() => document.title").await;
    assert_eq!(title_b, "\"Page of tokB\"");
    m.browser.close().await;
}

/// The seconds in "held by "X" for N s" of a TAB_BUSY message.
fn held_for_secs(e: &str) -> u64 {
    let i = e
        .find("\" for ")
        .unwrap_or_else(|| panic!("no holding time in {e}"))
        + 6;
    e[i..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no holding time in {e}"))
}

/// A claim cancelled while it waits leaves the queue at once: the holder's release
/// leaves the tab free instead of handing it to a client that gave up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_claim_leaves_the_queue() {
    let mut m = Multi::new().await;
    let a = m.client("Alpha").await;
    let b = m.client("Bravo").await;
    a.ok("browser_navigate", json!({"url": m.page("shared")}))
        .await;
    let t = tab_id(&a, 0).await;
    let cancel = b.call_cancelled_after("browser_tabs", claim(t, 30.0), Duration::from_secs(1));
    let waits = async {
        m.until_waiting(t, 1, Duration::from_secs(10)).await;
    };
    tokio::join!(cancel, waits);
    m.until_waiting(t, 0, Duration::from_secs(2)).await;
    a.ok("browser_tabs", release(0)).await;
    let seen = all_tabs(&a).await;
    let row = seen.iter().find(|r| r.id == t).expect("the tab is listed");
    assert_eq!(row.holder, "free", "{seen:?}");
    assert!(own_tabs(&b).await.is_empty(), "B holds nothing");
    // B can claim it again right away.
    b.ok("browser_tabs", claim(t, 5.0)).await;
    m.browser.close().await;
}

/// A claim waiting in the queue reports progress naming the holder and its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_claim_reports_progress() {
    let mut m = Multi::new().await;
    let a = m.client("Alpha").await;
    let b = m.client("Bravo").await;
    a.ok("browser_navigate", json!({"url": m.page("shared")}))
        .await;
    let t = tab_id(&a, 0).await;
    let b_claims = b.call_with_progress("browser_tabs", claim(t, 30.0));
    let a_releases = async {
        m.until_waiting(t, 1, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(2200)).await;
        a.ok("browser_tabs", release(0)).await;
    };
    let ((got, notes), ()) = tokio::join!(b_claims, a_releases);
    assert!(!got.is_error, "{}", got.text);
    assert!(notes.len() >= 2, "{notes:?}");
    let want = format!("waiting for tab {t} held by \"Alpha\", 1st in line");
    assert!(
        notes.iter().all(|(_, n)| n.contains(&want)),
        "{want} in {notes:?}"
    );
    m.browser.close().await;
}

/// Listing every tab shows who waits for which tab, first in line first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_all_shows_waiters() {
    let mut m = Multi::new().await;
    let a = m.client("Alpha").await;
    let b = m.client("Bravo").await;
    a.ok("browser_navigate", json!({"url": m.page("shared")}))
        .await;
    let t = tab_id(&a, 0).await;
    let b_claims = timed_claim(&b, t, 30.0);
    let a_lists = async {
        m.until_waiting(t, 1, Duration::from_secs(10)).await;
        let seen = all_tabs(&a).await;
        let row = seen.iter().find(|r| r.id == t).expect("the tab is listed");
        assert_eq!(row.holder, "you (index 0)", "{:?}", row.holder);
        assert_eq!(row.waiting, "\"Bravo\"", "{:?}", row.waiting);
        a.ok("browser_tabs", release(0)).await;
    };
    let ((got, _), ()) = tokio::join!(b_claims, a_lists);
    assert!(!got.is_error, "B gets the tab: {}", got.text);
    let seen = all_tabs(&b).await;
    let row = seen.iter().find(|r| r.id == t).expect("the tab is listed");
    assert_eq!(row.waiting, "", "nobody waits any more");
    m.browser.close().await;
}

/// 2. Two and three instances on one tab: the queue waits, hands over in FIFO order,
/// and a wait that times out names the holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tab_queues_in_fifo_order() {
    let mut m = Multi::new().await;
    let a = m.client("Alpha").await;
    let b = m.client("Bravo").await;
    let c = m.client("Charlie").await;
    let d = m.client("Delta").await;
    a.ok("browser_navigate", json!({"url": m.page("shared")}))
        .await;
    let t = tab_id(&a, 0).await;

    // B waits while A holds the tab (and keeps working on it); A releases; B's answer
    // comes after the release.
    let b_claims = timed_claim(&b, t, 30.0);
    let a_works_then_releases = async {
        m.until_waiting(t, 1, Duration::from_secs(10)).await;
        let s = a.ok("browser_snapshot", json!({})).await;
        assert!(s.text.contains("Owner shared"), "{}", s.text);
        m.until_waiting(t, 1, Duration::from_secs(1)).await;
        let wall = wall_ms();
        let at = Instant::now();
        a.ok("browser_tabs", release(0)).await;
        (at, wall)
    };
    let ((got, got_at), (released_at, released_wall)) =
        tokio::join!(b_claims, a_works_then_releases);
    assert!(!got.is_error, "B gets the tab: {}", got.text);
    assert!(got_at > released_at, "B's answer came before A released");
    assert!(got.text.contains("Owner shared"), "{}", got.text);
    let ran = page_now(&b).await;
    println!(
        "measured: hand-over, release → the waiter's command runs: {:.0} ms",
        ran - released_wall
    );
    assert!(own_tabs(&a).await.is_empty(), "A has no tab left");
    assert_eq!(tab_id(&b, 0).await, t);

    // FIFO with three: C then D wait behind B's hold; they get it in that order.
    let c_claims = timed_claim(&c, t, 30.0);
    let d_claims = async {
        m.until_waiting(t, 1, Duration::from_secs(10)).await;
        timed_claim(&d, t, 30.0).await
    };
    let releases = async {
        m.until_waiting(t, 2, Duration::from_secs(10)).await;
        let b_released = Instant::now();
        b.ok("browser_tabs", release(0)).await;
        // C now holds it; D still waits.
        let deadline = Instant::now() + Duration::from_secs(10);
        while own_tabs(&c).await.is_empty() {
            assert!(Instant::now() < deadline, "C never got the tab");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(m.waiting(t).await, 1, "D still waits");
        c.ok("browser_click", json!({"target": "#count"})).await;
        let c_released = Instant::now();
        c.ok("browser_tabs", release(0)).await;
        (b_released, c_released)
    };
    let ((rc, c_at), (rd, d_at), (b_released, c_released)) =
        tokio::join!(c_claims, d_claims, releases);
    assert!(!rc.is_error, "C gets the tab: {}", rc.text);
    assert!(!rd.is_error, "D gets the tab: {}", rd.text);
    assert!(c_at > b_released, "C was answered before B released");
    assert!(d_at > c_released, "D was answered before C released");
    assert!(c_at < d_at, "C (first in line) is granted before D");
    assert_eq!(
        d.eval("() => document.getElementById('clicks').textContent")
            .await,
        "\"shared clicks 1\"",
        "D got the same page, with C's click"
    );

    // A claim that times out: TAB_BUSY naming the holder and how long it has held.
    let held_since = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = Instant::now();
    let e = a.err("browser_tabs", claim(t, 1.0)).await;
    let waited = asked.elapsed();
    assert!(e.starts_with("TAB_BUSY"), "{e}");
    assert!(e.contains("held by \"Delta\""), "names the holder: {e}");
    assert!(e.contains("0 waiting before you"), "{e}");
    let held = held_for_secs(&e);
    let upper = held_since.elapsed().as_secs_f64().round() as u64 + 1;
    assert!(
        (1..=upper).contains(&held),
        "held for {held} s, between 1 and {upper} s: {e}"
    );
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(1) + AT_ONCE,
        "the claim waited its timeout of 1 s, not {waited:?}"
    );
    assert_eq!(m.waiting(t).await, 0, "a timed-out claim leaves the queue");
    d.ok("browser_snapshot", json!({})).await;
    m.browser.close().await;
}

/// 3. An instance whose client goes away: nothing closes during the grace; after it
/// its created tab closes (its waiter gets TAB_CLOSED) and its borrowed tab goes to
/// its waiter, still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_instance_closes_then_hands_over_after_grace() {
    let mut m = Multi::new().await;
    let user = m.browser.user_tab(&m.page("user")).await;
    let a = m.client("Alpha").await;
    let b = m.client("Bravo").await;
    let c = m.client("Charlie").await;
    a.ok("browser_navigate", json!({"url": m.page("tokA")}))
        .await;
    let created = tab_id(&a, 0).await;
    a.ok("browser_tabs", claim(user, 5.0)).await;
    assert_eq!(tab_id(&a, 1).await, user);

    let grace = Duration::from_secs(GRACE_S);
    let b_waits = async {
        let r = b.call("browser_tabs", claim(created, 30.0)).await;
        // The tab is gone by the time the waiter hears about it.
        let exists = m.tab_exists(created).await;
        (r, Instant::now(), exists)
    };
    let c_waits = timed_claim(&c, user, 30.0);
    let a_leaves = async {
        m.until_waiting(created, 1, Duration::from_secs(10)).await;
        m.until_waiting(user, 1, Duration::from_secs(10)).await;
        let left = Instant::now();
        let status = a.quit().await;
        assert!(status.success(), "tabmux exits cleanly: {status:?}");
        // Watch the created tab: it must outlive the grace.
        let closed_at = m
            .closed_within(created, grace + Duration::from_secs(5))
            .await
            .map(|_| left.elapsed());
        (left, closed_at)
    };
    let ((rb, b_at, still_there), (rc, c_at), (left, closed_at)) =
        tokio::join!(b_waits, c_waits, a_leaves);
    let closed_at = closed_at.expect("the leaving instance's created tab closes");
    println!("measured: client gone → its created tab closed: {closed_at:?}");
    assert!(
        closed_at >= grace,
        "no tab closes before the grace of {grace:?}: closed after {closed_at:?}"
    );
    assert!(
        closed_at < grace + Duration::from_secs(2),
        "closed within the grace + 2 s: {closed_at:?}"
    );
    assert!(
        rb.is_error && rb.text.starts_with("TAB_CLOSED"),
        "{}",
        rb.text
    );
    assert!(!still_there, "B heard TAB_CLOSED before the tab was gone");
    assert!(b_at - left >= grace, "B was answered during the grace");
    assert!(!rc.is_error, "C gets the borrowed tab: {}", rc.text);
    assert!(c_at - left >= grace, "C got the tab during the grace");
    assert!(rc.text.contains("Owner user"), "the same page: {}", rc.text);
    assert!(m.tab_exists(user).await, "a borrowed tab is never closed");
    assert_eq!(tab_id(&c, 0).await, user);
    let s = m.ext_state().await;
    assert_eq!(
        s["instances"].as_array().unwrap().len(),
        2,
        "the leaver is forgotten: {s}"
    );
    m.browser.close().await;
}

/// 4. A holder killed while others wait for its tab: the first waiter runs within the
/// grace + 1 s; the next keeps waiting its turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_holder_hands_over_within_grace() {
    let mut m = Multi::new().await;
    let user = m.browser.user_tab(&m.page("user")).await;
    let a = m.client("Alpha").await;
    let b = m.client("Bravo").await;
    let c = m.client("Charlie").await;
    let d = m.client("Delta").await;
    a.ok("browser_navigate", json!({"url": m.page("tokA")}))
        .await;
    let created = tab_id(&a, 0).await;
    a.ok("browser_tabs", claim(user, 5.0)).await;
    a.ok("browser_click", json!({"target": "#count"})).await;

    // D waits for the tab A created: it closes with A, after the grace.
    let d_waits = async {
        let r = d.call("browser_tabs", claim(created, 30.0)).await;
        (r, wall_ms(), m.tab_exists(created).await)
    };
    let b_waits = async {
        let r = b.call("browser_tabs", claim(user, 30.0)).await;
        let ran = page_now(&b).await;
        (r, ran)
    };
    let c_waits = async {
        m.until_waiting(user, 1, Duration::from_secs(10)).await;
        c.call("browser_tabs", claim(user, 30.0)).await
    };
    let kill = async {
        m.until_waiting(user, 2, Duration::from_secs(10)).await;
        m.until_waiting(created, 1, Duration::from_secs(10)).await;
        let wall = wall_ms();
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(a.pid() as i32, libc::SIGKILL);
        }
        wall
    };
    let b_then_release = async {
        let r = b_waits.await;
        // C is still in line while B holds the tab.
        assert_eq!(m.waiting(user).await, 1, "C still waits behind B");
        b.ok("browser_tabs", release(0)).await;
        r
    };
    let ((rb, ran), rc, (rd, d_at, still_there), killed) =
        tokio::join!(b_then_release, c_waits, d_waits, kill);
    assert!(!rb.is_error, "B gets the tab: {}", rb.text);
    assert!(!rc.is_error, "C gets the tab after B: {}", rc.text);
    let recovered = ran - killed;
    println!("measured: holder killed → first waiter's command runs: {recovered:.0} ms");
    let grace_ms = (GRACE_S * 1000) as f64;
    assert!(
        recovered >= grace_ms - 50.0,
        "the tab moved before the grace was over ({recovered:.0} ms)"
    );
    assert!(
        recovered <= grace_ms + 1000.0,
        "the first waiter ran {recovered:.0} ms after the kill; the bound is grace + 1 s"
    );
    assert_eq!(
        c.eval("() => document.getElementById('clicks').textContent")
            .await,
        "\"user clicks 1\"",
        "the same page, with the killed holder's click"
    );
    assert!(
        rd.is_error && rd.text.starts_with("TAB_CLOSED"),
        "{}",
        rd.text
    );
    assert!(!still_there, "D heard TAB_CLOSED before the tab was gone");
    assert!(
        d_at - killed >= grace_ms - 50.0,
        "the killed instance's tab closed during the grace"
    );
    m.browser.close().await;
}

// ------------------------------------------------------------------------------ P1

/// How long the three instances of the concurrency scenario work.
const SOAK: Duration = Duration::from_secs(60);

/// A small deterministic random source (xorshift), seeded per run and printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What one instance of the concurrency scenario did.
#[derive(Default, Debug)]
struct Tally {
    calls: u64,
    by_tool: std::collections::BTreeMap<&'static str, u64>,
    unanswered: u64,
    failures: Vec<String>,
}

/// One instance's random work on its own tabs until `until`; every answer is checked
/// to be about the tab it was meant for, and about nobody else's.
async fn work(
    c: &Client,
    m: &Multi,
    mine: &[String],
    all: &[String],
    seed: u64,
    until: Instant,
) -> Tally {
    let mut rng = Rng(seed | 1);
    let mut t = Tally::default();
    let mut clicks = vec![0u32; mine.len()];
    let mut current = mine.len() - 1;
    let mut navs = 0u32;
    let mut typed = 0u32;
    while Instant::now() < until {
        let i = rng.below(mine.len() as u64) as usize;
        let mut steps: Vec<(&'static str, Value, String)> = Vec::new();
        if i != current {
            steps.push((
                "select",
                json!({"action": "select", "index": i}),
                format!("Page of {}", mine[i]),
            ));
        }
        match rng.below(4) {
            0 => {
                navs += 1;
                steps.push((
                    "navigate",
                    json!({"url": format!("{}&v={navs}", m.page(&mine[i]))}),
                    format!("Owner {}", mine[i]),
                ));
            }
            1 => steps.push((
                "click",
                json!({"target": "#count"}),
                format!("{} clicks {}", mine[i], clicks[i] + 1),
            )),
            2 => {
                typed += 1;
                steps.push((
                    "type",
                    json!({"target": "#note", "text": format!("w{typed}")}),
                    format!("echo {}: w{typed}", mine[i]),
                ))
            }
            _ => steps.push(("snapshot", json!({}), format!("Owner {}", mine[i]))),
        }
        for (what, args, expect) in steps {
            let tool = match what {
                "select" => "browser_tabs",
                "navigate" => "browser_navigate",
                "click" => "browser_click",
                "type" => "browser_type",
                _ => "browser_snapshot",
            };
            t.calls += 1;
            *t.by_tool.entry(what).or_default() += 1;
            let Some(a) = c.try_call(tool, args.clone()).await else {
                t.unanswered += 1;
                t.failures.push(format!("{what} on {}: no answer", mine[i]));
                continue;
            };
            if a.is_error {
                t.failures
                    .push(format!("{what} on {}: {}", mine[i], a.text));
                continue;
            }
            match what {
                "select" => current = i,
                "navigate" => clicks[i] = 0,
                "click" => clicks[i] += 1,
                _ => {}
            }
            if !a.text.contains(&expect) {
                t.failures.push(format!(
                    "{what} on {}: expected {expect:?} in\n{}",
                    mine[i], a.text
                ));
            }
            for other in all.iter().filter(|o| *o != &mine[i]) {
                if a.text.contains(other.as_str()) {
                    t.failures.push(format!(
                        "cross-talk: {what} on {} mentions {other}:\n{}",
                        mine[i], a.text
                    ));
                }
            }
        }
    }
    // Each page counted exactly the clicks made on it.
    for (i, tok) in mine.iter().enumerate() {
        c.ok("browser_tabs", json!({"action": "select", "index": i}))
            .await;
        let shown = c
            .eval("() => document.getElementById('clicks').textContent")
            .await;
        let want = if clicks[i] == 0 {
            "\"clicks 0\"".to_string()
        } else {
            format!("\"{tok} clicks {}\"", clicks[i])
        };
        if shown != want {
            t.failures
                .push(format!("{tok}: the page shows {shown}, {want} expected"));
        }
    }
    t
}

/// 5. Three instances with three tabs each work at random on their own tabs at the
/// same time: every answer is about its own page, and every call is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_work_concurrently() {
    let mut m = Multi::new().await;
    let names = ["Alpha", "Bravo", "Charlie"];
    let clients: Vec<Client> =
        futures_util::future::join_all(names.iter().map(|n| m.client(n))).await;
    let tokens: Vec<Vec<String>> = names
        .iter()
        .map(|n| (0..3).map(|i| format!("tok{}{i}q", &n[..1])).collect())
        .collect();
    let all: Vec<String> = tokens.iter().flatten().cloned().collect();
    for (c, mine) in clients.iter().zip(&tokens) {
        c.ok("browser_navigate", json!({"url": m.page(&mine[0])}))
            .await;
        for tok in &mine[1..] {
            c.ok("browser_tabs", json!({"action": "new", "url": m.page(tok)}))
                .await;
        }
        assert_eq!(own_tabs(c).await.len(), 3);
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("random seed {seed}");
    let until = Instant::now() + SOAK;
    let tallies =
        futures_util::future::join_all(clients.iter().zip(&tokens).enumerate().map(
            |(k, (c, mine))| work(c, &m, mine, &all, seed.wrapping_add(k as u64 * 7919), until),
        ))
        .await;
    let total: u64 = tallies.iter().map(|t| t.calls).sum();
    for (n, t) in names.iter().zip(&tallies) {
        println!(
            "measured: {n}: {} calls {:?}, {} unanswered, {} failed",
            t.calls,
            t.by_tool,
            t.unanswered,
            t.failures.len()
        );
    }
    println!("measured: {total} calls in {SOAK:?}");
    for (n, t) in names.iter().zip(&tallies) {
        assert!(
            t.failures.is_empty(),
            "{n}: {} of {} calls went wrong (seed {seed}):\n{}",
            t.failures.len(),
            t.calls,
            t.failures.join("\n")
        );
        assert_eq!(t.unanswered, 0, "{n}: lost calls");
        assert!(t.calls > 20, "{n} made only {} calls in {SOAK:?}", t.calls);
    }
    let s = m.ext_state().await;
    assert_eq!(s["instances"].as_array().unwrap().len(), 3, "{s}");
    assert_eq!(s["tabs"].as_array().unwrap().len(), 9, "{s}");
    m.browser.close().await;
}

/// What the extension still keeps: instances, locks, queues, connections, attached
/// debuggers, timers, groups, and every tab of the browser.
const RESIDUE: &str = "(async () => {
    const tabs = await chrome.tabs.query({});
    const groups = await chrome.tabGroups.query({});
    const stored = (await chrome.storage.session.get('tabmuxLocks')).tabmuxLocks || {};
    const l = tabmux.locks;
    return {
        instances: l.instances.size,
        locks: l.tabs.size,
        queued: [...l.tabs.values()].reduce((n, r) => n + r.queue.length, 0),
        inflight: l._inflight.size,
        chains: l._chains.size,
        conns: tabmux.conns.size,
        attempts: tabmux.attempts.size,
        attached: tabmux.dbg.attached.size,
        reattach: tabmux.reattach.size,
        removedWaiters: tabmux.removedWaiters.size,
        groupOrigins: tabmux.groups.origin.size,
        connectedPorts: tabmux.discovery.view().filter(p => p.instanceId).length,
        storedInstances: (stored.instances || []).length,
        storedTabs: (stored.tabs || []).length,
        groups: groups.length,
        tabs: tabs.map(t => t.id).sort((a, b) => a - b),
    };
})()";

/// 6. A hundred tabmux processes come and go (some before the extension even saw
/// them, some after opening and borrowing tabs, some killed): nothing is left behind
/// in the extension.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_connect_disconnect_cycles_leave_nothing() {
    let mut m = Multi::new().await;
    let user = m.browser.user_tab(&m.page("user")).await;
    let before: Value = m.worker(RESIDUE).await;
    let baseline = before["tabs"].clone();
    let started = Instant::now();
    let (mut quick, mut listed, mut borrowed, mut killed) = (0, 0, 0, 0);
    const ROUND: usize = 5;
    for round in 0..100 / ROUND {
        let cycles = (0..ROUND).map(|k| {
            let n = round * ROUND + k;
            let m = &m;
            async move {
                let grace = "1";
                let mut c =
                    Client::start_in(&format!("Cycle {n}"), &m.args(grace, &[]), m.state.path())
                        .await;
                match n % 4 {
                    0 => {}
                    1 => {
                        c.ok("browser_tabs", json!({"action": "list"})).await;
                    }
                    2 => {
                        c.ok(
                            "browser_navigate",
                            json!({"url": m.page(&format!("cycle{n}"))}),
                        )
                        .await;
                        let r = c.call("browser_tabs", claim(user, 0.0)).await;
                        assert!(!r.is_error || r.text.starts_with("TAB_BUSY"), "{}", r.text);
                    }
                    _ => {
                        c.ok(
                            "browser_navigate",
                            json!({"url": m.page(&format!("cycle{n}"))}),
                        )
                        .await;
                        c.call("browser_tabs", claim(user, 0.0)).await;
                        // SAFETY: signalling our own child process.
                        unsafe {
                            libc::kill(c.pid() as i32, libc::SIGKILL);
                        }
                        let _ = c.child.wait().await;
                        return 3;
                    }
                }
                let status = c.quit().await;
                assert!(status.success(), "cycle {n}: {status:?}");
                n % 4
            }
        });
        for kind in futures_util::future::join_all(cycles).await {
            match kind {
                0 => quick += 1,
                1 => listed += 1,
                2 => borrowed += 1,
                _ => killed += 1,
            }
        }
    }
    println!(
        "measured: 100 cycles ({quick} quick, {listed} listed, {borrowed} opened and borrowed, {killed} killed) in {:?}",
        started.elapsed()
    );
    // Every grace period over, every tab closed or released: nothing is left.
    let deadline = Instant::now() + Duration::from_secs(15);
    let residue = loop {
        let r: Value = m.worker(RESIDUE).await;
        let clean = [
            "instances",
            "locks",
            "queued",
            "inflight",
            "chains",
            "conns",
            "attempts",
            "attached",
            "reattach",
            "removedWaiters",
            "groupOrigins",
            "connectedPorts",
            "storedInstances",
            "storedTabs",
            "groups",
        ]
        .iter()
        .all(|k| r[*k] == 0)
            && r["tabs"] == baseline;
        if clean || Instant::now() > deadline {
            break (clean, r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        residue.0,
        "state left behind in the extension after 100 cycles (tabs before: {baseline}):\n{:#}",
        residue.1
    );
    // The user's tab is free and works for the next one.
    let c = m.client("Afterwards").await;
    let r = c.ok("browser_tabs", claim(user, 0.0)).await;
    assert!(r.text.contains("Owner user"), "{}", r.text);
    m.browser.close().await;
}

/// 7. The port range full: eleven instances on an eleven-port range all work; the
/// twelfth is refused with a clear error its client sees, and exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_port_range_refuses_the_twelfth() {
    let mut m = Multi::new().await;
    let names: Vec<String> = (0..11).map(|i| format!("Client {i}")).collect();
    let clients: Vec<Client> =
        futures_util::future::join_all(names.iter().map(|n| m.client(n))).await;
    let navs = futures_util::future::join_all(clients.iter().enumerate().map(|(i, c)| {
        c.ok(
            "browser_navigate",
            json!({"url": m.page(&format!("tok{i}x"))}),
        )
    }))
    .await;
    for (i, a) in navs.iter().enumerate() {
        assert!(a.text.contains(&format!("Owner tok{i}x")), "{}", a.text);
    }

    let grace = GRACE_S.to_string();
    let refused = Client::try_start_in("Twelfth", &m.args(&grace, &[]), m.state.path())
        .await
        .err()
        .expect("the twelfth instance is refused");
    println!("the twelfth's client saw: {}", refused.error);
    assert!(
        refused
            .error
            .contains(&format!("no free port in {}", m.ports))
            && refused.error.contains("--ports"),
        "its client sees a clear error naming the range and how to widen it: {refused:?}"
    );
    let status = refused.status.expect("the twelfth exits");
    assert!(!status.success(), "it exits with a failure: {status:?}");
    assert!(
        refused
            .stderr
            .contains(&format!("no free port in {}", m.ports)),
        "its log says why: {}",
        refused.stderr
    );

    // The eleven keep working, each on its own page.
    let clicks = futures_util::future::join_all(
        clients
            .iter()
            .map(|c| c.ok("browser_click", json!({"target": "#count"}))),
    )
    .await;
    for (i, a) in clicks.iter().enumerate() {
        assert!(a.text.contains(&format!("tok{i}x clicks 1")), "{}", a.text);
    }
    let s = m.ext_state().await;
    assert_eq!(s["conns"], 11, "the extension talks to all eleven: {s}");
    m.browser.close().await;
}

/// 8. A held tab closed by the user: every waiter's claim fails at once with
/// TAB_CLOSED, and so does the holder's next command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_closes_a_held_tab() {
    let mut m = Multi::new().await;
    let a = m.client("Alpha").await;
    let b = m.client("Bravo").await;
    let c = m.client("Charlie").await;
    a.ok("browser_navigate", json!({"url": m.page("tokA")}))
        .await;
    let t = tab_id(&a, 0).await;
    let user = async {
        m.until_waiting(t, 2, Duration::from_secs(10)).await;
        let at = Instant::now();
        m.browser.user_close(t).await;
        at
    };
    let b_first = timed_claim(&b, t, 30.0);
    let c_second = async {
        m.until_waiting(t, 1, Duration::from_secs(10)).await;
        timed_claim(&c, t, 30.0).await
    };
    let ((rb, b_at), (rc, c_at), closed_at) = tokio::join!(b_first, c_second, user);
    for (who, r, at) in [("B", &rb, b_at), ("C", &rc, c_at)] {
        assert!(
            r.is_error && r.text.starts_with("TAB_CLOSED"),
            "{who}'s claim fails with TAB_CLOSED: {}",
            r.text
        );
        assert!(
            at - closed_at < AT_ONCE,
            "{who}'s claim failed {:?} after the tab closed; it must fail at once",
            at - closed_at
        );
    }
    println!(
        "measured: user closes a held tab → waiters fail: {:?}, {:?}",
        b_at - closed_at,
        c_at - closed_at
    );
    let e = a.err("browser_snapshot", json!({})).await;
    assert!(
        e.starts_with("TAB_CLOSED"),
        "the holder's next command: {e}"
    );
    assert!(e.contains("closed in the browser"), "{e}");
    assert!(own_tabs(&a).await.is_empty(), "A has no tab left");
    let s = m.ext_state().await;
    assert_eq!(s["tabs"], json!([]), "nothing held any more: {s}");
    m.browser.close().await;
}

// ------------------------------------------------------------------------------ P2

/// 9. The lease: an idle holder keeps its tab while nobody waits; with a waiter it
/// loses the tab once the lease is over, and its next command says LOCK_LOST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_moves_an_idle_tab_only_to_a_waiter() {
    let mut m = Multi::new().await;
    let a = m.client_with("Alpha", &["--lease", "2"]).await;
    let b = m.client("Bravo").await;
    a.ok("browser_navigate", json!({"url": m.page("leased")}))
        .await;
    let t = tab_id(&a, 0).await;
    let lease = Duration::from_secs(2);

    // Idle past the lease with nobody waiting: still A's.
    let idle_from = Instant::now();
    a.ok("browser_click", json!({"target": "#count"})).await;
    tokio::time::sleep(lease + Duration::from_millis(1500)).await;
    assert!(idle_from.elapsed() > lease);
    let s = m.ext_state().await;
    assert_eq!(s["tabs"][0]["holder"], "Alpha", "{s}");
    let r = a.ok("browser_click", json!({"target": "#count"})).await;
    assert!(r.text.contains("leased clicks 2"), "{}", r.text);

    // Now B waits: A, idle, loses the tab once its lease is over.
    let last_use = Instant::now();
    a.ok("browser_snapshot", json!({})).await;
    let asked = Instant::now();
    let got = b.call("browser_tabs", claim(t, 30.0)).await;
    let waited_since_use = last_use.elapsed();
    assert!(!got.is_error, "B gets the tab: {}", got.text);
    println!(
        "measured: lease of {lease:?}: B waited {:?}",
        asked.elapsed()
    );
    assert!(
        waited_since_use >= lease,
        "B got the tab {waited_since_use:?} after A's last command, before the lease was over"
    );
    assert!(
        waited_since_use < lease + AT_ONCE + Duration::from_millis(500),
        "B got the tab {waited_since_use:?} after A's last command; the lease is {lease:?}"
    );
    let r = b.ok("browser_click", json!({"target": "#count"})).await;
    assert!(
        r.text.contains("leased clicks 3"),
        "the same page: {}",
        r.text
    );
    let e = a.err("browser_click", json!({"target": "#count"})).await;
    assert!(e.starts_with("LOCK_LOST"), "A's next command: {e}");
    assert!(e.contains("Bravo"), "names who has it now: {e}");
    m.browser.close().await;
}

/// Retries a command on `c` until it succeeds (the extension coming back), for at
/// most `within`; returns its answer.
async fn until_ok(c: &Client, tool: &str, args: Value, within: Duration) -> Answer {
    let deadline = Instant::now() + within;
    loop {
        let a = c.call(tool, args.clone()).await;
        if !a.is_error {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "{tool} still fails {within:?} later: {}\n{}",
            a.text,
            c.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Marks each instance's page (a JavaScript value lives as long as its document) and
/// returns each one's tab id.
async fn mark_pages(clients: &[(&Client, &str)]) -> Vec<i64> {
    let mut ids = Vec::new();
    for (c, mark) in clients {
        c.eval(&format!("() => {{ window.__mark = '{mark}'; return 1; }}"))
            .await;
        ids.push(tab_id(c, 0).await);
    }
    ids
}

/// After the extension came back: each instance works again on the same tab, the same
/// document, and still only on its own.
async fn same_tabs_same_pages(clients: &[(&Client, &str)], ids: &[i64], what: &str) {
    for ((c, mark), id) in clients.iter().zip(ids) {
        let a = until_ok(
            c,
            "browser_click",
            json!({"target": "#count"}),
            Duration::from_secs(20),
        )
        .await;
        assert!(a.text.contains(" clicks "), "{what}: {}", a.text);
        assert_eq!(
            c.eval("() => window.__mark").await,
            format!("\"{mark}\""),
            "{what}: the same page (document) as before"
        );
        assert_eq!(own_tabs(c).await.len(), 1, "{what}");
        assert_eq!(tab_id(c, 0).await, *id, "{what}: the same tab");
    }
}

/// 10. The extension's service worker stopped, then the extension reloaded, while two
/// instances hold tabs (one created, one borrowed): both reconnect and keep working on
/// the same tabs and pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_survive_worker_stop_and_extension_reload() {
    let mut m = Multi::new().await;
    let user = m.browser.user_tab(&m.page("user")).await;
    let a = m.client("Alpha").await;
    let b = m.client("Bravo").await;
    a.ok("browser_navigate", json!({"url": m.page("tokA")}))
        .await;
    b.ok("browser_tabs", claim(user, 5.0)).await;
    let clients = [(&a, "mark A"), (&b, "mark B")];
    let ids = mark_pages(&clients).await;

    // C waits for B's tab all along: through the worker stop and the reload (its
    // claim is asked again on each new connection), until B releases it.
    let c = m.client("Charlie").await;
    let c_waits = timed_claim(&c, user, 60.0);
    let the_rest = async {
        m.until_waiting(user, 1, Duration::from_secs(10)).await;
        m.browser.stop_worker().await;
        same_tabs_same_pages(&clients, &ids, "after the worker stopped").await;
        m.until_waiting(user, 1, Duration::from_secs(10)).await;

        m.browser.reload_extension().await;
        same_tabs_same_pages(&clients, &ids, "after the extension reloaded").await;
        m.until_waiting(user, 1, Duration::from_secs(10)).await;
        let s = m.ext_state().await;
        let held = |tab: i64| {
            s["tabs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["tabId"] == tab)
                .map(|t| t["holder"].clone())
        };
        assert_eq!(held(ids[0]), Some(json!("Alpha")), "{s}");
        assert_eq!(held(user), Some(json!("Bravo")), "{s}");
        let released = Instant::now();
        b.ok("browser_tabs", release(0)).await;
        released
    };
    let ((rc, c_at), released) = tokio::join!(c_waits, the_rest);
    assert!(
        !rc.is_error,
        "C, waiting all along, gets B's tab: {}",
        rc.text
    );
    assert!(c_at > released, "C got the tab before B released it");
    assert!(rc.text.contains("Owner user"), "{}", rc.text);

    // A's tab was created by A (the extension remembers that too): it closes when A leaves.
    let left = Instant::now();
    a.quit().await;
    let closed = m
        .closed_within(ids[0], Duration::from_secs(GRACE_S + 5))
        .await;
    assert!(
        closed.is_some_and(|_| left.elapsed() >= Duration::from_secs(GRACE_S)),
        "A's created tab closes after the grace once A left ({closed:?}): {}",
        m.ext_state().await
    );
    assert!(m.tab_exists(user).await, "the borrowed tab stays");
    m.browser.close().await;
}

/// The tab group a tab is in: (title, colour, group id), or `None` when ungrouped.
async fn group_of(m: &Multi, tab: i64) -> Option<(String, String, i64)> {
    let v = m
        .worker(&format!(
            "chrome.tabs.get({tab}).then(t => t.groupId === -1 ? null
                : chrome.tabGroups.get(t.groupId).then(g => [g.title, g.color, g.id]))"
        ))
        .await;
    let a = v.as_array()?;
    Some((
        a[0].as_str()?.to_string(),
        a[1].as_str()?.to_string(),
        a[2].as_i64()?,
    ))
}

/// Waits (up to 10 s) until `tab`'s group satisfies `ok`; returns it.
async fn until_group(
    m: &Multi,
    tab: i64,
    what: &str,
    ok: impl Fn(&Option<(String, String, i64)>) -> bool,
) -> Option<(String, String, i64)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let g = group_of(m, tab).await;
        if ok(&g) {
            return g;
        }
        assert!(
            Instant::now() < deadline,
            "tab {tab}: {what}; its group is {g:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 11. Tab groups: each instance's tabs in a group titled with its client's name; two
/// clients both named "Cursor" get "Cursor" and "Cursor 2" in different colours; a
/// borrowed tab joins the borrower's group while held and goes back on release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tab_groups_name_each_client() {
    let mut m = Multi::new().await;
    // The user's tabs: two in a group of the user's own (a group with one tab would
    // vanish while its tab is borrowed), one ungrouped.
    let grouped = m.browser.user_tab(&m.page("grouped")).await;
    let sibling = m.browser.user_tab(&m.page("sibling")).await;
    let loose = m.browser.user_tab(&m.page("loose")).await;
    let own_group = m
        .worker(&format!(
            "chrome.tabs.group({{tabIds: [{grouped}, {sibling}]}}).then(g => chrome.tabGroups.update(g, {{title: 'Mine', color: 'grey'}})).then(g => g.id)"
        ))
        .await
        .as_i64()
        .unwrap();
    let c1 = m.client("Cursor").await;
    let c2 = m.client("Cursor").await;
    c1.ok("browser_navigate", json!({"url": m.page("one")}))
        .await;
    c2.ok("browser_navigate", json!({"url": m.page("two")}))
        .await;
    c1.ok(
        "browser_tabs",
        json!({"action": "new", "url": m.page("one-b")}),
    )
    .await;
    let (t1, t1b, t2) = (
        tab_id(&c1, 0).await,
        tab_id(&c1, 1).await,
        tab_id(&c2, 0).await,
    );
    // Which of the two is "Cursor" depends on which the extension met first.
    let is_cursor = |g: &Option<(String, String, i64)>| {
        g.as_ref()
            .is_some_and(|g| g.0 == "Cursor" || g.0 == "Cursor 2")
    };
    let g1 = until_group(&m, t1, "in a Cursor group", is_cursor)
        .await
        .unwrap();
    let g2 = until_group(&m, t2, "in a Cursor group", is_cursor)
        .await
        .unwrap();
    let mut titles = [g1.0.as_str(), g2.0.as_str()];
    titles.sort();
    assert_eq!(titles, ["Cursor", "Cursor 2"], "{g1:?} {g2:?}");
    assert_ne!(g1.1, g2.1, "the two Cursors have different colours");
    assert_ne!(g1.2, g2.2);
    until_group(&m, t1b, "in its client's group", |g| {
        g.as_ref() == Some(&g1)
    })
    .await;
    // The extension names each to the other by its label.
    let row = all_tabs(&c1)
        .await
        .into_iter()
        .find(|r| r.id == t2)
        .unwrap();
    assert_eq!(row.holder, format!("held by {:?}", g2.0));
    let row = all_tabs(&c2)
        .await
        .into_iter()
        .find(|r| r.id == t1)
        .unwrap();
    assert_eq!(row.holder, format!("held by {:?}", g1.0));

    // Borrowed tabs join the borrower's group while held…
    c2.ok("browser_tabs", claim(grouped, 5.0)).await;
    c2.ok("browser_tabs", claim(loose, 5.0)).await;
    for tab in [grouped, loose] {
        // Groups live in one window: the borrower's group in the user's window has
        // its title and colour.
        until_group(&m, tab, "in its borrower's group while borrowed", |g| {
            g.as_ref().is_some_and(|g| g.0 == g2.0 && g.1 == g2.1)
        })
        .await;
    }
    // …and leave it on release: back to the user's group, or ungrouped.
    c2.ok("browser_tabs", release(2)).await;
    c2.ok("browser_tabs", release(1)).await;
    until_group(&m, grouped, "back in the user's group", |g| {
        g.as_ref()
            .is_some_and(|g| g.2 == own_group && g.0 == "Mine")
    })
    .await;
    until_group(&m, loose, "ungrouped again", |g| g.is_none()).await;
    assert_eq!(
        group_of(&m, t2).await,
        Some(g2),
        "the borrower's own tab stays"
    );
    m.browser.close().await;
}

/// The trace ids of the tool calls in a tabmux log: (trace, tool).
fn traces(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| {
            let t = l.split("trace=").nth(1)?.split_whitespace().next()?;
            let tool = l.split("tool=\"").nth(1)?.split('"').next()?;
            Some((t.to_string(), tool.to_string()))
        })
        .collect()
}

/// 12. Trace ids: each tool call's trace id, in tabmux's log, names the extension's log
/// lines of that call's requests, under the right client's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_ids_follow_a_call_into_the_extension() {
    let mut m = Multi::new().await;
    let a = m.client("Tracer").await;
    let b = m.client("Other").await;
    a.ok("browser_navigate", json!({"url": m.page("tokA")}))
        .await;
    b.ok("browser_navigate", json!({"url": m.page("tokB")}))
        .await;
    a.ok("browser_click", json!({"target": "#count"})).await;
    b.ok("browser_type", json!({"target": "#note", "text": "x"}))
        .await;
    let extension_log: Vec<String> =
        serde_json::from_value(m.worker("tabmux.recentLog").await).unwrap();
    for (c, name, calls) in [
        (&a, "Tracer", ["browser_navigate", "browser_click"]),
        (&b, "Other", ["browser_navigate", "browser_type"]),
    ] {
        let log = std::fs::read_to_string(&c.log).unwrap();
        let ours = traces(&log);
        for tool in calls {
            let (trace, _) = ours
                .iter()
                .find(|(_, t)| t == tool)
                .unwrap_or_else(|| panic!("{name}'s log has no trace for {tool}:\n{log}"));
            let tagged = format!("[{trace}]");
            let lines: Vec<&String> = extension_log
                .iter()
                .filter(|l| l.contains(&tagged))
                .collect();
            assert!(
                !lines.is_empty(),
                "the extension logged the requests of {name}'s {tool} ({trace}):\n{}",
                extension_log.join("\n")
            );
            for l in &lines {
                assert!(
                    l.starts_with(&format!("[tabmux] {name} {tagged} ")),
                    "a line of {name}'s {tool} under the wrong name: {l}"
                );
            }
            if tool == "browser_navigate" {
                assert!(
                    lines.iter().any(|l| l.contains("tabs.create")),
                    "the tab it opened is in its trace: {lines:?}"
                );
            }
            if tool == "browser_click" {
                assert!(
                    lines
                        .iter()
                        .any(|l| l.contains("cdp Input.dispatchMouseEvent")),
                    "the click itself is in its trace: {lines:?}"
                );
            }
        }
    }
    m.browser.close().await;
}

/// 13. `tabmux status` while several instances run: port, pid, client name, uptime and
/// browser of each; an instance outside the range and without a browser says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_every_instance() {
    let mut m = Multi::new().await;
    let names = ["Claude Code", "Cursor", "Cursor"];
    let clients: Vec<Client> =
        futures_util::future::join_all(names.iter().map(|n| m.client(n))).await;
    for (i, c) in clients.iter().enumerate() {
        c.ok("browser_navigate", json!({"url": m.page(&format!("s{i}"))}))
            .await;
    }
    // One more, on a port of its own outside the range: no browser finds it.
    let lone = free_range(1);
    let lone_ports = format!("{}-{}", lone.0, lone.1);
    let d = Client::start_in(
        "Lonely",
        &["--ports", &lone_ports, "--extension-wait", "0.2"],
        m.state.path(),
    )
    .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tabmux"))
        .args(["status", "--ports", &m.ports])
        .env("TABMUX_STATE_DIR", m.state.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("4 tabmux instances"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let ports: Vec<u16> = std::fs::read_dir(m.state.path())
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_prefix("port-")?.strip_suffix(".json")?.parse().ok()
        })
        .collect();
    for (c, name) in clients.iter().zip(names) {
        let i = lines
            .iter()
            .position(|l| l.contains(&format!("pid {}", c.pid())))
            .unwrap_or_else(|| panic!("no line for pid {}:\n{text}", c.pid()));
        let l = lines[i];
        assert!(l.contains(&format!("\"{name}\"")), "names the client: {l}");
        assert!(l.contains(" up "), "says the uptime: {l}");
        assert!(
            ports.iter().any(|p| l.contains(&format!("port {p} "))),
            "says the port: {l}"
        );
        assert!(
            lines[i + 1].trim_start().starts_with("browser Chrome/")
                && lines[i + 1].contains("connected"),
            "says its browser: {}",
            lines[i + 1]
        );
    }
    let l = lines
        .iter()
        .find(|l| l.contains(&format!("pid {}", d.pid())))
        .unwrap_or_else(|| panic!("the lone instance is listed:\n{text}"));
    assert!(
        l.contains(&format!("port {} (outside {})", lone.0, m.ports)),
        "{l}"
    );
    assert!(l.contains("\"Lonely\"") && l.ends_with("no browser"), "{l}");
    m.browser.close().await;
}
