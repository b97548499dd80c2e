//! The browser layer: which browser is in use (launched, attached, or through the
//! extension), the tabs this instance drives, and element refs. Tools speak only to this
//! layer and to [`page::Page`].

pub mod data_url;
pub mod element;
pub mod events;
pub mod keys;
pub mod page;
pub mod refs;
pub mod settle;
pub mod snap;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, Result, codes};
use crate::link::TabInfo;
use crate::link::direct::DirectLink;
use crate::link::extension::{ExtensionLink, no_extension};
use crate::link::launch::LaunchOptions;
use crate::link::shared::Shared;
use element::Element;
use page::Page;
use refs::{Lookup, RefTable};

/// Where the browser comes from.
#[derive(Clone)]
pub enum Mode {
    /// Launch a private browser (temporary profile) on first use.
    Launch(LaunchOptions),
    /// Attach to a running browser's CDP endpoint.
    Cdp(String),
    /// The user's browser, through the tabmux extension.
    Extension(ExtensionLink),
    /// A browser with the extension if one connects; otherwise the shared browser
    /// tabmux launches (with the extension) for all its instances.
    Auto(ExtensionLink, Shared),
}

#[derive(Clone)]
enum Active {
    Direct(Arc<DirectLink>),
    Extension(ExtensionLink),
}

impl Active {
    fn alive(&self) -> bool {
        match self {
            Active::Direct(d) => d.is_alive(),
            Active::Extension(_) => true,
        }
    }
}

#[derive(Default)]
struct Tabs {
    pages: Vec<Arc<Page>>,
    current: Option<usize>,
}

/// Settings for the browser layer.
#[derive(Clone)]
pub struct Config {
    pub mode: Mode,
    /// How long a tool call waits for a browser running the extension.
    pub extension_wait: Duration,
    /// Deadline of one CDP command.
    pub command_timeout: Duration,
    /// Deadline of a navigation.
    pub navigation_timeout: Duration,
    /// Where snapshots come from unless a call says otherwise.
    pub snapshot_source: snap::Source,
}

/// "waiting for tab 123 held by "Cursor", 2nd in line", as far as the browser's list
/// of tabs tells.
async fn claim_status(ext: &ExtensionLink, tab_id: &str) -> String {
    let all = ext.list_all().await.unwrap_or_default();
    match all.iter().find(|t| t.id == tab_id) {
        Some(t) => match &t.holder {
            Some(h) => format!(
                "waiting for tab {tab_id} held by {h:?}, {} in line",
                crate::progress::ordinal(t.waiters.len() + 1)
            ),
            None if t.needs_consent => format!(
                "waiting for the user to answer in the browser (Allow / Deny) about tab {tab_id}, one of the user's own tabs"
            ),
            None => format!("taking tab {tab_id}"),
        },
        None => format!("claiming tab {tab_id}"),
    }
}

/// Gives back, when dropped armed, a tab whose claim did not finish: a cancelled call
/// leaves the extension's queue (or returns a tab granted at that moment).
struct Withdraw {
    link: Option<Active>,
    tab: String,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        let Some(link) = self.link.take() else { return };
        let tab = std::mem::take(&mut self.tab);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let r = match &link {
                    Active::Direct(d) => d.release(&tab).await,
                    Active::Extension(e) => e.release(&tab).await,
                };
                tracing::info!(tab, ok = r.is_ok(), "claim withdrawn");
            });
        }
    }
}

/// The browser as one instance sees it.
pub struct Browser {
    cfg: Config,
    link: tokio::sync::Mutex<Option<Active>>,
    tabs: Mutex<Tabs>,
    pub refs: Mutex<RefTable>,
    /// One-line notes for the next tool answer (e.g. the browser was relaunched).
    notes: Mutex<Vec<String>>,
    /// Whether the first answer has said which browser is in use.
    introduced: std::sync::atomic::AtomicBool,
}

impl Browser {
    pub fn new(cfg: Config) -> Browser {
        Browser {
            cfg,
            link: tokio::sync::Mutex::new(None),
            tabs: Mutex::new(Tabs::default()),
            refs: Mutex::new(RefTable::default()),
            notes: Mutex::new(Vec::new()),
            introduced: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The first answer of a session says which browser is in use and how to switch.
    fn introduce(&self, what: impl FnOnce() -> String) {
        if !self
            .introduced
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.note(what());
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Notes collected since the last answer, the tabs' own included.
    pub fn take_notes(&self) -> Vec<String> {
        let mut out = std::mem::take(&mut *self.notes.lock().unwrap());
        let pages: Vec<Arc<Page>> = self.tabs.lock().unwrap().pages.clone();
        for p in pages {
            out.append(&mut p.state().notices);
        }
        out
    }

    fn note(&self, n: impl Into<String>) {
        self.notes.lock().unwrap().push(n.into());
    }

    /// The link, (re)started when needed: launching a browser on first use and again
    /// after it exited.
    async fn active(&self) -> Result<Active> {
        if let Mode::Extension(ext) = &self.cfg.mode {
            ext.connection(self.cfg.extension_wait)
                .await
                .ok_or_else(no_extension)?;
            self.introduce(|| format!("Browser: {}.", ext.describe()));
            return Ok(Active::Extension(ext.clone()));
        }
        if let Mode::Auto(ext, shared) = &self.cfg.mode {
            return self.auto(ext, shared).await;
        }
        let mut link = self.link.lock().await;
        if let Some(a) = link.as_ref() {
            if a.alive() {
                return Ok(a.clone());
            }
            let had_tabs = !self.tabs.lock().unwrap().pages.is_empty();
            self.forget_all_tabs("the browser exited");
            if had_tabs {
                self.note("The browser had exited (crashed or was closed); tabmux started it again — earlier tabs are gone.");
            }
        }
        let a = match &self.cfg.mode {
            Mode::Launch(opts) => {
                let d = Arc::new(DirectLink::launch(opts).await?);
                d.watch_targets().await?;
                self.introduce(|| {
                    format!(
                        "Browser: a private {} browser for this session only ({}). For your own Chrome, run tabmux without --launch and install its extension (tabmux extension install DIR).",
                        if opts.headed { "headed" } else { "headless" },
                        d.description
                    )
                });
                Active::Direct(d)
            }
            Mode::Cdp(url) => {
                let d = Arc::new(DirectLink::connect(url).await?);
                d.watch_targets().await?;
                Active::Direct(d)
            }
            Mode::Extension(_) | Mode::Auto(..) => unreachable!("handled above"),
        };
        *link = Some(a.clone());
        Ok(a)
    }

    /// Auto mode: a browser with the extension if one is (or soon gets) connected;
    /// otherwise the shared browser, launched by the first instance that needs it.
    async fn auto(&self, ext: &ExtensionLink, shared: &Shared) -> Result<Active> {
        let first = !self.introduced.load(std::sync::atomic::Ordering::Relaxed);
        let wait = if first {
            self.cfg.extension_wait
        } else {
            Duration::from_millis(500)
        };
        tracing::info!(
            wait_ms = wait.as_millis() as u64,
            "looking for a browser with the extension"
        );
        if !wait.is_zero() {
            crate::progress::set("waiting for a browser with the tabmux extension");
        }
        if ext.connection(wait).await.is_none() {
            crate::progress::set("starting the shared browser");
            let s = shared.clone();
            let (_, launched) = tokio::task::spawn_blocking(move || s.ensure())
                .await
                .map_err(|e| Error::internal(format!("starting the shared browser: {e}")))??;
            if launched {
                tracing::info!("no browser with the extension: launched the shared browser");
            }
            if ext.connection(Duration::from_secs(30)).await.is_none() {
                return Err(Error::new(
                    codes::NO_EXTENSION,
                    format!(
                        "the shared browser started, but its tabmux extension did not connect within 30 s; see {} (or use --launch for a private browser)",
                        shared.state_dir.join("browser.log").display()
                    ),
                ));
            }
        }
        self.introduce(|| {
            if ext.managed() {
                format!(
                    "Browser: {} — shared by every tabmux client on this machine, each in its own tabs; it closes when the last one leaves. To use your own Chrome instead, install the extension there (tabmux extension install DIR, then Load unpacked); for a private throwaway browser, start tabmux with --launch.",
                    ext.describe()
                )
            } else {
                format!(
                    "Browser: {}; your tabs are grouped under this client's name. For a private throwaway browser, start tabmux with --launch.",
                    ext.describe()
                )
            }
        });
        Ok(Active::Extension(ext.clone()))
    }

    fn forget_all_tabs(&self, reason: &str) {
        let pages: Vec<Arc<Page>> = {
            let mut t = self.tabs.lock().unwrap();
            t.current = None;
            std::mem::take(&mut t.pages)
        };
        let mut refs = self.refs.lock().unwrap();
        for p in pages {
            p.mark_closed(reason);
            refs.forget_tab(&p.key);
        }
    }

    /// Removes tabs that are gone; returns the error for the current one if it was one
    /// of them.
    fn prune(&self) -> Option<Error> {
        let mut t = self.tabs.lock().unwrap();
        let mut err = None;
        let current_key = t
            .current
            .and_then(|i| t.pages.get(i))
            .map(|p| p.key.clone());
        let mut gone = Vec::new();
        t.pages.retain(|p| {
            let closed = p.state().closed;
            if closed {
                gone.push(p.clone());
            }
            !closed
        });
        for p in &gone {
            let told = std::mem::replace(&mut p.state().close_reported, true);
            if Some(&p.key) == current_key.as_ref() && !told {
                err = p.check_open().err();
            }
            self.refs.lock().unwrap().forget_tab(&p.key);
        }
        if !gone.is_empty() {
            t.current = match current_key {
                Some(k) => t
                    .pages
                    .iter()
                    .position(|p| p.key == k)
                    .or(if t.pages.is_empty() {
                        None
                    } else {
                        Some(t.pages.len() - 1)
                    }),
                None => None,
            };
        }
        err
    }

    /// The current tab; opens one when there is none.
    pub async fn page(&self) -> Result<Arc<Page>> {
        let active = self.active().await?;
        if let Some(e) = self.prune() {
            return Err(e);
        }
        {
            let t = self.tabs.lock().unwrap();
            if let Some(i) = t.current
                && let Some(p) = t.pages.get(i)
            {
                return Ok(p.clone());
            }
        }
        let (_, p) = self.open_tab(&active).await?;
        Ok(p)
    }

    /// Takes in the tabs that this instance's pages opened (popups, links to a new
    /// tab) and says so in the next answer.
    pub async fn adopt_opened(&self) {
        let opened = match &self.cfg.mode {
            Mode::Extension(e) | Mode::Auto(e, _) => e.take_opened(),
            _ => match self.link.lock().await.as_ref() {
                Some(Active::Direct(d)) => d.take_opened(),
                _ => Vec::new(),
            },
        };
        for tab in opened {
            match Page::start(tab, true, self.cfg.command_timeout).await {
                Ok(page) => {
                    // Let it commit its first document, for a useful note.
                    page.wait_until(
                        std::time::Instant::now() + Duration::from_millis(500),
                        |s| !s.url.is_empty() && s.url != "about:blank",
                    )
                    .await;
                    let url = page.state().url.clone();
                    let i = {
                        let mut t = self.tabs.lock().unwrap();
                        t.pages.push(page);
                        t.pages.len() - 1
                    };
                    self.note(format!(
                        "The page opened a new tab: your tab {i} ({}). Switch with browser_tabs {{action: \"select\", index: {i}}}.",
                        if url.is_empty() { "loading" } else { &url }
                    ));
                }
                Err(e) => tracing::debug!("a tab the page opened could not be followed: {e}"),
            }
        }
    }

    /// Stops the current tab's loading (a cancelled navigation), in the background.
    pub fn stop_loading(&self) {
        if let Some(page) = self.current() {
            tokio::spawn(async move {
                let _ = page.call::<Value>("Page.stopLoading", json!({})).await;
            });
        }
    }

    /// The current tab if there is one, without opening any.
    pub fn current(&self) -> Option<Arc<Page>> {
        let t = self.tabs.lock().unwrap();
        t.current.and_then(|i| t.pages.get(i)).cloned()
    }

    async fn open_tab(&self, active: &Active) -> Result<(usize, Arc<Page>)> {
        let tab = match active {
            Active::Direct(d) => d.create_tab().await?,
            Active::Extension(e) => e.create_tab().await?,
        };
        let page = Page::start(tab, true, self.cfg.command_timeout).await?;
        let mut t = self.tabs.lock().unwrap();
        t.pages.push(page.clone());
        let i = t.pages.len() - 1;
        t.current = Some(i);
        Ok((i, page))
    }

    /// Opens a new tab (in the background) and makes it current.
    pub async fn new_tab(&self) -> Result<(usize, Arc<Page>)> {
        let active = self.active().await?;
        self.prune();
        self.open_tab(&active).await
    }

    /// This instance's tabs, in order: (index, page, is current).
    pub fn tabs(&self) -> Vec<(usize, Arc<Page>, bool)> {
        self.prune();
        let t = self.tabs.lock().unwrap();
        t.pages
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.clone(), t.current == Some(i)))
            .collect()
    }

    fn by_index(&self, index: usize) -> Result<Arc<Page>> {
        self.prune();
        let t = self.tabs.lock().unwrap();
        t.pages.get(index).cloned().ok_or_else(|| {
            Error::new(
                codes::NO_TAB,
                format!(
                    "there is no tab {index}: you have {} tab(s) (indexes 0–{}); list them with browser_tabs",
                    t.pages.len(),
                    t.pages.len().saturating_sub(1)
                ),
            )
        })
    }

    pub fn select(&self, index: usize) -> Result<Arc<Page>> {
        let p = self.by_index(index)?;
        self.tabs.lock().unwrap().current = Some(index);
        Ok(p)
    }

    fn remove_page(&self, key: &str) {
        let mut t = self.tabs.lock().unwrap();
        let cur_key = t
            .current
            .and_then(|i| t.pages.get(i))
            .map(|p| p.key.clone());
        t.pages.retain(|p| p.key != key);
        t.current = match cur_key {
            Some(k) if k != key => t.pages.iter().position(|p| p.key == k),
            _ if t.pages.is_empty() => None,
            _ => Some(t.pages.len() - 1),
        };
        drop(t);
        self.refs.lock().unwrap().forget_tab(key);
    }

    /// Closes one of this instance's tabs (the current one by default).
    pub async fn close_tab(&self, index: Option<usize>) -> Result<()> {
        let page = match index {
            Some(i) => self.by_index(i)?,
            None => self
                .current()
                .ok_or_else(|| Error::new(codes::NO_TAB, "there is no tab to close"))?,
        };
        let active = self.active().await?;
        // Wait for calls running on the tab to finish first.
        let _op = page.exclusive().await;
        match &active {
            Active::Direct(d) => d.close_tab(&page.key).await?,
            Active::Extension(e) => e.close_tab(&page.key).await?,
        }
        page.mark_closed("closed by browser_tabs");
        self.remove_page(&page.key);
        Ok(())
    }

    /// Every tab of the browser, with who holds it.
    pub async fn list_all(&self) -> Result<Vec<TabInfo>> {
        let active = self.active().await?;
        match &active {
            Active::Direct(d) => d.list_all().await,
            Active::Extension(e) => e.list_all().await,
        }
    }

    /// Takes an existing tab of the browser and makes it current.
    pub async fn claim(&self, tab_id: &str, timeout: Duration) -> Result<(usize, Arc<Page>)> {
        let active = self.active().await?;
        if let Some((i, _, _)) = self.tabs().into_iter().find(|(_, p, _)| p.key == tab_id) {
            self.tabs.lock().unwrap().current = Some(i);
            return Err(Error::bad_request(format!(
                "tab {tab_id} is already yours (index {i}); it is now the current tab"
            )));
        }
        // A call cancelled while it waits in the queue (or before the tab is set up)
        // withdraws the claim or gives the tab back.
        let mut withdraw = Withdraw {
            link: Some(active.clone()),
            tab: tab_id.to_string(),
        };
        let claimed = match &active {
            Active::Direct(d) => d.claim(tab_id).await,
            Active::Extension(e) => {
                crate::progress::set(claim_status(e, tab_id).await);
                e.claim(tab_id, timeout).await
            }
        };
        let tab = claimed.inspect_err(|_| withdraw.link = None)?;
        let page = Page::start(tab, false, self.cfg.command_timeout).await?;
        withdraw.link = None;
        let mut t = self.tabs.lock().unwrap();
        t.pages.push(page.clone());
        let i = t.pages.len() - 1;
        t.current = Some(i);
        Ok((i, page))
    }

    /// Gives a tab back without closing it.
    pub async fn release(&self, index: usize) -> Result<()> {
        let page = self.by_index(index)?;
        let active = self.active().await?;
        let _op = page.exclusive().await;
        match &active {
            Active::Direct(d) => d.release(&page.key).await?,
            Active::Extension(e) => e.release(&page.key).await?,
        }
        page.mark_closed("released");
        self.remove_page(&page.key);
        Ok(())
    }

    /// Closes the browser (a launched one) or this instance's tabs (elsewhere). The next
    /// tool call starts again.
    pub async fn close(&self) -> Result<()> {
        if let Mode::Extension(ext) | Mode::Auto(ext, _) = &self.cfg.mode {
            let held: Vec<String> = self
                .tabs()
                .into_iter()
                .map(|(_, p, _)| p.key.clone())
                .collect();
            ext.shutdown(&held).await;
            self.forget_all_tabs("closed by browser_close");
            return Ok(());
        }
        let active = self.link.lock().await.take();
        self.forget_all_tabs("the browser was closed");
        if let Some(Active::Direct(d)) = active {
            d.shutdown().await;
        }
        Ok(())
    }

    /// Leaves cleanly (tabmux is exiting). Through the extension, tabs are left as they
    /// are: the extension keeps them for the grace period, then closes the ones this
    /// instance created and releases the others.
    pub async fn shutdown(&self) {
        if !matches!(self.cfg.mode, Mode::Launch(_) | Mode::Cdp(_)) {
            self.forget_all_tabs("tabmux is exiting");
            return;
        }
        let _ = self.close().await;
    }

    /// The pid of a browser tabmux launched, if one runs.
    pub async fn browser_pid(&self) -> Option<u32> {
        let link = self.link.lock().await;
        match link.as_ref() {
            Some(Active::Direct(d)) => d.browser_pid().await,
            _ => None,
        }
    }

    /// Resolves a model's `target`: a ref from a snapshot (`e12`) or a CSS selector.
    pub async fn resolve(&self, page: &Page, target: &str) -> Result<Element> {
        let target = target.trim();
        if target.is_empty() {
            return Err(Error::bad_request(
                "target is empty: pass a ref from the snapshot (like e12) or a CSS selector",
            ));
        }
        let Some(n) = refs::parse_ref(target) else {
            return element::by_selector(page, target).await;
        };
        let t = {
            let table = self.refs.lock().unwrap();
            match table.lookup(n) {
                Lookup::Found(t) => t.clone(),
                Lookup::Forgotten => {
                    return Err(Error::new(
                        codes::STALE_REF,
                        format!(
                            "ref e{n} is from a page or tab that is gone; take a new snapshot (browser_snapshot) and use its refs"
                        ),
                    ));
                }
                Lookup::Unknown => {
                    return Err(Error::new(
                        codes::NOT_FOUND,
                        format!(
                            "there is no ref e{n}; refs come from the latest browser_snapshot (or an action's answer)"
                        ),
                    ));
                }
            }
        };
        let label = if t.name.is_empty() {
            format!("e{n} ({})", t.role)
        } else {
            format!("e{n} ({} \"{}\")", t.role, t.name)
        };
        if t.tab != page.key {
            let idx = self
                .tabs()
                .into_iter()
                .find(|(_, p, _)| p.key == t.tab)
                .map(|(i, _, _)| i);
            return Err(Error::bad_request(match idx {
                Some(i) => format!(
                    "{label} belongs to your tab {i}, not the current tab; select it with browser_tabs {{action: \"select\", index: {i}}}"
                ),
                None => {
                    format!("{label} belongs to a tab that is no longer yours; take a new snapshot")
                }
            }));
        }
        {
            let s = page.state();
            match s.frame_loader(&t.frame) {
                Some(l) if l == t.loader => {}
                Some(_) if t.frame == s.main_frame => {
                    return Err(Error::new(
                        codes::STALE_REF,
                        format!(
                            "{label} is from a page that has since been replaced (now at {}); take a new snapshot (browser_snapshot)",
                            s.url
                        ),
                    ));
                }
                _ => {
                    return Err(Error::new(
                        codes::STALE_REF,
                        format!(
                            "{label} is from a frame whose document has been replaced or removed; take a new snapshot (browser_snapshot)"
                        ),
                    ));
                }
            }
        }
        let gone = || {
            Error::new(
                codes::STALE_REF,
                format!("{label} is no longer in the page (it was removed); take a new snapshot"),
            )
        };
        let backend = snap::backend_of(page, &t).await?.ok_or_else(gone)?;
        let r: Value = page
            .call_in(
                t.session.as_deref(),
                "DOM.resolveNode",
                json!({"backendNodeId": backend}),
            )
            .await
            .map_err(|e| {
                if e.is(codes::STALE_REF) || e.message.contains("No node") {
                    Error::new(
                        codes::STALE_REF,
                        format!(
                            "{label} is no longer in the page (it was removed); take a new snapshot"
                        ),
                    )
                } else {
                    e
                }
            })?;
        let object_id = r["object"]["objectId"].as_str().ok_or_else(|| {
            Error::new(
                codes::STALE_REF,
                format!("{label} is no longer in the page"),
            )
        })?;
        Ok(Element {
            session: t.session.clone(),
            object_id: object_id.to_string(),
            label,
        })
    }
}
