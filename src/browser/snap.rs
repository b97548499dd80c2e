//! Collecting a tab's snapshot (every frame, in- and out-of-process) and rendering it with
//! refs.
//!
//! Two sources: the in-page collector (default; `snapshot/collector.js`, run in an
//! isolated world of every frame, through the frame's own session for out-of-process
//! frames) and the accessibility tree (`Accessibility.getFullAXTree`, the exact mode).
//! The collector keeps a change counter per document; when no frame changed since the
//! last full snapshot, the last text is reused without walking the page again.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::Browser;
use super::page::Page;
use super::refs::{self, Lookup, NodeKey, RefTable, RefTarget};
use crate::error::{Error, Result, codes};
use crate::snapshot::{self, AxNode, Frame, Options, Snapshot, collect::Collected, flags};

/// Where snapshot nodes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// The in-page collector.
    #[default]
    Collector,
    /// `Accessibility.getFullAXTree`: exact, slower and heavier on big pages.
    Ax,
}

impl Source {
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "collector" | "dom" => Some(Source::Collector),
            "ax" | "exact" => Some(Source::Ax),
            _ => None,
        }
    }
}

/// What the model asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub max_chars: usize,
    /// A ref whose subtree alone is rendered.
    pub root: Option<String>,
    pub find: Option<String>,
    /// Only what is inside the viewport.
    pub viewport: bool,
    /// None: the instance's default (`--snapshot-source`).
    pub source: Option<Source>,
}

/// What a tab keeps between snapshots.
#[derive(Debug, Default)]
pub struct PageCache {
    /// The isolated world of each document: (frame id, loader id) -> execution context id.
    worlds: HashMap<(String, String), i64>,
    /// The last full collector snapshot: each frame's (id, loader, change counter), and
    /// its text.
    last: Option<(Vec<Generation>, String)>,
    /// Nodes of the last snapshot walked (kept when it is reused).
    nodes: usize,
}

/// A frame's (id, loader id, change counter) when it was collected.
type Generation = (String, String, u64);

/// Name of the isolated world the collector runs in.
const WORLD: &str = "tabmux";
/// Bound of the worlds remembered per tab.
const MAX_WORLDS: usize = 256;

struct FrameMeta {
    id: String,
    loader: String,
    session: Option<String>,
    /// Index of the parent frame in the list.
    parent: Option<usize>,
}

struct TableRefs<'a> {
    table: &'a mut RefTable,
    tab: &'a str,
    frames: &'a [FrameMeta],
    source: Source,
}

fn key(source: Source, id: i64) -> NodeKey {
    match source {
        Source::Collector => NodeKey::Collected(id),
        Source::Ax => NodeKey::Backend(id),
    }
}

impl snapshot::Refs for TableRefs<'_> {
    fn ref_for(&mut self, frame: usize, node: i64) -> String {
        let m = &self.frames[frame];
        let n = self.table.ref_for(
            self.tab,
            &m.id,
            &m.loader,
            m.session.as_deref(),
            key(self.source, node),
        );
        format!("e{n}")
    }
}

#[derive(Deserialize)]
struct AxTree {
    nodes: Vec<AxNode>,
}

/// One frame found in a session's frame tree.
struct Found {
    id: String,
    parent: Option<String>,
    loader: String,
    url: String,
    session: Option<String>,
}

fn walk_tree(node: &Value, parent: Option<String>, session: &Option<String>, out: &mut Vec<Found>) {
    let f = &node["frame"];
    let id = f["id"].as_str().unwrap_or_default().to_string();
    out.push(Found {
        id: id.clone(),
        parent: f["parentId"].as_str().map(str::to_string).or(parent),
        loader: f["loaderId"].as_str().unwrap_or_default().to_string(),
        url: f["url"].as_str().unwrap_or_default().to_string(),
        session: session.clone(),
    });
    if let Some(children) = node["childFrames"].as_array() {
        for c in children {
            walk_tree(c, Some(id.clone()), session, out);
        }
    }
}

/// Every frame of the tab, parents before children, the main frame first; and every
/// session.
async fn discover(page: &Page) -> Result<(Vec<FrameMeta>, Vec<Option<String>>)> {
    // Every session's frame tree: the tab's own and each out-of-process iframe's.
    let children: Vec<String> = page.state().child_sessions.keys().cloned().collect();
    let mut sessions: Vec<Option<String>> = vec![None];
    sessions.extend(children.into_iter().map(Some));
    let trees = futures_util::future::join_all(
        sessions
            .iter()
            .map(|s| page.call_in::<Value>(s.as_deref(), "Page.getFrameTree", json!({}))),
    )
    .await;
    let mut found: Vec<Found> = Vec::new();
    for (s, t) in sessions.iter().zip(trees) {
        match t {
            Ok(t) => walk_tree(&t["frameTree"], None, s, &mut found),
            Err(e) if s.is_none() => return Err(e),
            Err(_) => {} // a child session that went away meanwhile
        }
    }
    // A frame run by a child session is listed by its parent too: the child's entry wins.
    let mut by_id: HashMap<String, Found> = HashMap::new();
    for f in found {
        match by_id.get(&f.id) {
            Some(prev) if prev.session.is_some() && f.session.is_none() => {}
            _ => {
                by_id.insert(f.id.clone(), f);
            }
        }
    }
    let main_id = page.state().main_frame.clone();
    let main_id = if by_id.contains_key(&main_id) {
        main_id
    } else {
        by_id
            .values()
            .find(|f| f.parent.is_none() && f.session.is_none())
            .map(|f| f.id.clone())
            .ok_or_else(|| Error::new(codes::CDP_ERROR, "the tab has no main frame"))?
    };
    // Order: parents before children, starting at the main frame.
    let mut order: Vec<String> = vec![main_id.clone()];
    let mut i = 0;
    while i < order.len() && order.len() < 500 {
        let cur = order[i].clone();
        let mut kids: Vec<&Found> = by_id
            .values()
            .filter(|f| f.parent.as_deref() == Some(cur.as_str()))
            .collect();
        kids.sort_by(|a, b| a.id.cmp(&b.id));
        order.extend(kids.into_iter().map(|f| f.id.clone()));
        i += 1;
    }
    {
        // Keep the page's frame table in step with what the snapshot saw.
        let mut s = page.state();
        for id in &order {
            let f = &by_id[id];
            let e = s.frames.entry(id.clone()).or_default();
            e.loader = f.loader.clone();
            e.url = f.url.clone();
            e.parent = f.parent.clone();
            if f.session.is_some() {
                e.session = f.session.clone();
            }
        }
    }
    let index: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let metas = order
        .iter()
        .map(|id| {
            let f = &by_id[id];
            FrameMeta {
                id: id.clone(),
                loader: f.loader.clone(),
                session: f.session.clone(),
                parent: f.parent.as_deref().and_then(|p| index.get(p)).copied(),
            }
        })
        .collect();
    Ok((metas, sessions))
}

/// The accessibility trees of every frame, converted.
async fn ax_frames(page: &Page, metas: &[FrameMeta]) -> Result<Vec<Frame>> {
    let ax_calls = metas.iter().map(|m| {
        page.call_in::<AxTree>(
            m.session.as_deref(),
            "Accessibility.getFullAXTree",
            json!({"frameId": m.id}),
        )
    });
    // The <iframe> element that hosts each child frame, asked of the parent's session.
    let owner_calls = metas.iter().skip(1).map(|m| async move {
        let parent_session = m.parent.and_then(|p| metas[p].session.clone());
        let o = page
            .call_in::<Value>(
                parent_session.as_deref(),
                "DOM.getFrameOwner",
                json!({"frameId": m.id}),
            )
            .await;
        o.ok().and_then(|o| o["backendNodeId"].as_i64())
    });
    let (trees, owners) = futures_util::future::join(
        futures_util::future::join_all(ax_calls),
        futures_util::future::join_all(owner_calls),
    )
    .await;
    let mut frames: Vec<Frame> = Vec::with_capacity(metas.len());
    for (i, tree) in trees.into_iter().enumerate() {
        let nodes = match tree {
            Ok(t) => t.nodes,
            Err(e) if i == 0 => return Err(e),
            Err(_) => Vec::new(),
        };
        let parent = match (i, metas[i].parent) {
            (0, _) => None,
            (_, Some(p)) => owners[i - 1].map(|o| (p, o)),
            _ => None,
        };
        frames.push(place(snapshot::ax::frame_from_ax(&nodes, parent), i));
    }
    Ok(frames)
}

/// A child frame without a known host element cannot be placed: it is left out.
fn place(frame: Frame, i: usize) -> Frame {
    if i > 0 && frame.parent.is_none() {
        return Frame {
            parent: Some((0, -1)),
            ..Frame::default()
        };
    }
    frame
}

#[derive(Deserialize)]
struct Evaluated<T> {
    result: Option<EvalResult<T>>,
    #[serde(rename = "exceptionDetails")]
    exception: Option<Value>,
}

#[derive(Deserialize)]
struct EvalResult<T> {
    value: Option<T>,
    #[serde(rename = "objectId")]
    object_id: Option<String>,
}

fn script_error(what: &str, ex: &Value) -> Error {
    Error::new(
        codes::CDP_ERROR,
        format!(
            "the snapshot collector failed in {what}: {}",
            super::page::exception_text(ex)
        ),
    )
}

/// The execution context of the collector's world in a frame's document, made on first
/// use (worlds are per document: a new document gets a new one).
async fn world(page: &Page, m: &FrameMeta, fresh: bool) -> Result<i64> {
    let k = (m.id.clone(), m.loader.clone());
    if !fresh && let Some(&ctx) = page.state().snap.worlds.get(&k) {
        return Ok(ctx);
    }
    let r: Value = page
        .call_in(
            m.session.as_deref(),
            "Page.createIsolatedWorld",
            json!({"frameId": m.id, "worldName": WORLD, "grantUniveralAccess": false}),
        )
        .await?;
    let ctx = r["executionContextId"]
        .as_i64()
        .ok_or_else(|| Error::new(codes::CDP_ERROR, "no isolated world for the snapshot"))?;
    let mut s = page.state();
    let worlds = &mut s.snap.worlds;
    if worlds.len() >= MAX_WORLDS {
        worlds.clear();
    }
    worlds.insert(k, ctx);
    Ok(ctx)
}

/// Runs `(collector)(opts)` in a frame's world; one retry in a fresh world when the
/// remembered one is gone.
async fn run<T: serde::de::DeserializeOwned>(
    page: &Page,
    m: &FrameMeta,
    opts: &Value,
    by_value: bool,
) -> Result<Evaluated<T>> {
    let expression = format!("({})({})", snapshot::collect::SCRIPT, opts);
    let mut fresh = false;
    loop {
        let ctx = world(page, m, fresh).await?;
        let r = page
            .call_in::<Evaluated<T>>(
                m.session.as_deref(),
                "Runtime.evaluate",
                json!({"expression": expression, "contextId": ctx, "returnByValue": by_value}),
            )
            .await;
        match r {
            Err(e) if !fresh && e.message.contains("context") => fresh = true,
            r => return r,
        }
    }
}

/// Collects one frame: its nodes, or None when it did not change since `generation`.
async fn collect_frame(
    page: &Page,
    m: &FrameMeta,
    generation: Option<u64>,
    viewport: bool,
) -> Result<Collected> {
    let opts = json!({
        "gen": generation.map_or(-1, |g| g as i64),
        "viewport": viewport,
        "track": generation.is_some() || !viewport,
    });
    let mut adopted = false;
    loop {
        let r = run::<String>(page, m, &opts, true).await?;
        if let Some(ex) = &r.exception {
            return Err(script_error("a frame", ex));
        }
        let text = r
            .result
            .and_then(|r| r.value)
            .ok_or_else(|| Error::new(codes::CDP_ERROR, "the snapshot collector gave no answer"))?;
        let c: Collected = serde_json::from_str(&text).map_err(|e| {
            Error::new(
                codes::CDP_ERROR,
                format!("the snapshot collector's answer is malformed: {e}"),
            )
        })?;
        drop(text);
        // Content in closed shadow roots: once the collector holds them, walk again.
        if adopted || c.hosts.is_empty() || !adopt_closed_roots(page, m, &c.hosts).await {
            return Ok(c);
        }
        adopted = true;
    }
}

/// Hands the collector the closed shadow roots of the custom elements it reported: the
/// page's scripts keep those to themselves, CDP sees them. True when there was any.
async fn adopt_closed_roots(page: &Page, m: &FrameMeta, hosts: &[u64]) -> bool {
    let calls = hosts
        .iter()
        .take(MAX_HOSTS)
        .map(|&h| adopt_closed_root(page, m, h));
    let found = futures_util::future::join_all(calls).await;
    found.into_iter().any(|f| f.unwrap_or(false))
}

/// At most this many hosts are looked at per walk (the collector reports no more).
const MAX_HOSTS: usize = 64;

/// The collector's handle in its world, which the walk that reported the hosts just set
/// up (short expressions: the whole script for each of 64 lookups would cost more than
/// the lookups).
const HANDLE: &str = "globalThis.__tabmuxSnapshot";

async fn adopt_closed_root(page: &Page, m: &FrameMeta, host: u64) -> Result<bool> {
    let s = m.session.as_deref();
    let ctx = world(page, m, false).await?;
    let r: Evaluated<Value> = page
        .call_in(
            s,
            "Runtime.evaluate",
            json!({"expression": format!("{HANDLE} && {HANDLE}.el({host})"), "contextId": ctx}),
        )
        .await?;
    let Some(object) = r.result.and_then(|r| r.object_id) else {
        return Ok(false);
    };
    let d: Result<Value> = page
        .call_in(
            s,
            "DOM.describeNode",
            json!({"objectId": object, "pierce": true}),
        )
        .await;
    release(page, s, object).await;
    let d = d?;
    let closed = d["node"]["shadowRoots"].as_array().and_then(|roots| {
        roots
            .iter()
            .find(|r| r["shadowRootType"] == "closed")
            .and_then(|r| r["backendNodeId"].as_i64())
    });
    let Some(backend) = closed else {
        return Ok(false);
    };
    let r: Value = page
        .call_in(
            s,
            "DOM.resolveNode",
            json!({"backendNodeId": backend, "executionContextId": ctx}),
        )
        .await?;
    let Some(root) = r["object"]["objectId"].as_str().map(str::to_string) else {
        return Ok(false);
    };
    let f = format!("function() {{ return !!{HANDLE} && {HANDLE}.adopt(this); }}");
    let a: Result<Value> = page
        .call_in(
            s,
            "Runtime.callFunctionOn",
            json!({"functionDeclaration": f, "objectId": root, "returnByValue": true}),
        )
        .await;
    release(page, s, root).await;
    Ok(a?["result"]["value"] == true)
}

async fn release(page: &Page, session: Option<&str>, object: String) {
    let _ = page
        .call_in::<Value>(
            session,
            "Runtime.releaseObject",
            json!({"objectId": object}),
        )
        .await;
}

/// The collector's id of the `<iframe>` element that hosts frame `m`, in its parent's
/// document.
async fn owner_id(page: &Page, metas: &[FrameMeta], m: &FrameMeta) -> Option<i64> {
    let parent = &metas[m.parent?];
    let ps = parent.session.as_deref();
    let o: Value = page
        .call_in(ps, "DOM.getFrameOwner", json!({"frameId": m.id}))
        .await
        .ok()?;
    let backend = o["backendNodeId"].as_i64()?;
    let ctx = world(page, parent, false).await.ok()?;
    let r: Value = page
        .call_in(
            ps,
            "DOM.resolveNode",
            json!({"backendNodeId": backend, "executionContextId": ctx}),
        )
        .await
        .ok()?;
    let object = r["object"]["objectId"].as_str()?.to_string();
    let f = format!(
        "function() {{ return ({})({{op: 'id', el: this}}); }}",
        snapshot::collect::SCRIPT
    );
    let id: Result<Value> = page
        .call_in(
            ps,
            "Runtime.callFunctionOn",
            json!({"functionDeclaration": f, "objectId": object, "returnByValue": true}),
        )
        .await;
    release(page, ps, object).await;
    id.ok()?["result"]["value"].as_i64()
}

/// The collector's frames, or None when nothing changed since `last` (the generations
/// of the last full snapshot, frame by frame).
async fn collected_frames(
    page: &Page,
    metas: &[FrameMeta],
    last: Option<&[Generation]>,
    viewport: bool,
) -> Result<(Option<Vec<Frame>>, Vec<u64>)> {
    let same_frames = last.is_some_and(|l| {
        l.len() == metas.len()
            && l.iter()
                .zip(metas)
                .all(|(a, m)| a.0 == m.id && a.1 == m.loader)
    });
    let gens: Vec<Option<u64>> = metas
        .iter()
        .enumerate()
        .map(|(i, _)| {
            if same_frames {
                last.map(|l| l[i].2)
            } else {
                None
            }
        })
        .collect();
    let calls = metas
        .iter()
        .zip(&gens)
        .map(|(m, g)| collect_frame(page, m, *g, viewport));
    let owners = metas.iter().skip(1).map(|m| owner_id(page, metas, m));
    let (answers, owners) = futures_util::future::join(
        futures_util::future::join_all(calls),
        futures_util::future::join_all(owners),
    )
    .await;
    let mut collected: Vec<Collected> = Vec::with_capacity(metas.len());
    for (i, a) in answers.into_iter().enumerate() {
        match a {
            Ok(c) => collected.push(c),
            Err(e) if i == 0 => return Err(e),
            // A frame that went away meanwhile: left out.
            Err(_) => collected.push(Collected {
                generation: 0,
                frame: Some(Frame::default()),
                hosts: Vec::new(),
            }),
        }
    }
    let generations: Vec<u64> = collected.iter().map(|c| c.generation).collect();
    if collected.iter().all(|c| c.frame.is_none()) {
        return Ok((None, generations));
    }
    // Some frames changed: the unchanged ones are read again in full.
    let mut frames = Vec::with_capacity(metas.len());
    for (i, c) in collected.into_iter().enumerate() {
        let mut frame = match c.frame {
            Some(f) => f,
            None => collect_frame(page, &metas[i], None, viewport)
                .await?
                .frame
                .unwrap_or_default(),
        };
        frame.parent = match (i, metas[i].parent) {
            (0, _) => None,
            (_, Some(p)) => owners[i - 1].map(|o| (p, o)),
            _ => None,
        };
        frames.push(place(frame, i));
    }
    Ok((Some(frames), generations))
}

/// The nodes the collector saw inside the viewport, as [`Options::only`] wants them; a
/// child frame counts only when its `<iframe>` is in view.
fn in_view(frames: &[Frame]) -> std::collections::HashSet<(usize, i64)> {
    let mut out = std::collections::HashSet::new();
    for (fi, f) in frames.iter().enumerate() {
        if let Some((p, host)) = f.parent
            && !out.contains(&(p, host))
        {
            continue;
        }
        for n in &f.nodes {
            if let Some(id) = n.id
                && n.has(flags::IN_VIEW)
            {
                out.insert((fi, id));
            }
        }
    }
    out
}

/// Collects and renders the tab's snapshot.
pub async fn take(browser: &Browser, page: &Page, req: &Request) -> Result<Snapshot> {
    let mut nodes = 0;
    let r = take_counted(browser, page, req, &mut nodes).await;
    // Trimmed after a big page, and once more after the page that follows it (the big
    // page's last answer was freed meanwhile).
    let before = std::mem::replace(&mut page.state().snap.nodes, nodes);
    if nodes >= BIG_PAGE_NODES || before >= BIG_PAGE_NODES {
        crate::memory::release();
    }
    r
}

/// A page this big leaves megabytes of freed heap behind (the 5,000-control page has
/// 18,000 nodes); the trim costs a few milliseconds.
const BIG_PAGE_NODES: usize = 5_000;

async fn take_counted(
    browser: &Browser,
    page: &Page,
    req: &Request,
    nodes: &mut usize,
) -> Result<Snapshot> {
    let source = req.source.unwrap_or(browser.config().snapshot_source);
    let started = std::time::Instant::now();
    let (metas, sessions) = discover(page).await?;
    let discovered = started.elapsed();
    let plain = req.root.is_none()
        && req.find.is_none()
        && !req.viewport
        && req.max_chars == 0
        && req.source.is_none();
    let (frames, only) = match source {
        Source::Ax => {
            let frames = ax_frames(page, &metas).await?;
            *nodes = frames.iter().map(|f| f.nodes.len()).sum();
            let only = if req.viewport {
                let parents: Vec<Option<(usize, i64)>> = frames.iter().map(|f| f.parent).collect();
                Some(visible_nodes(page, &metas, &parents, &sessions).await?)
            } else {
                None
            };
            (frames, only)
        }
        Source::Collector => {
            let last = {
                let mut s = page.state();
                // A text of a document the tab no longer shows is never reused.
                let shown = |g: &[Generation]| {
                    g.first()
                        .zip(metas.first())
                        .is_some_and(|(g, m)| g.0 == m.id && g.1 == m.loader)
                };
                if s.snap.last.as_ref().is_some_and(|(g, _)| !shown(g)) {
                    s.snap.last = None;
                }
                if plain { s.snap.last.take() } else { None }
            };
            let (frames, generations) = collected_frames(
                page,
                &metas,
                last.as_ref().map(|l| l.0.as_slice()),
                req.viewport,
            )
            .await?;
            let Some(frames) = frames else {
                // Nothing changed: the same text (and refs) as last time.
                tracing::debug!(frames = metas.len(), "snapshot: no frame changed, reused");
                *nodes = page.state().snap.nodes;
                let (gens, text) = last.unwrap_or_default();
                let snap = Snapshot {
                    total_lines: text.lines().count(),
                    shown_lines: text.lines().count(),
                    text: text.clone(),
                    root_found: true,
                    ..Snapshot::default()
                };
                page.state().snap.last = Some((gens, text));
                return Ok(snap);
            };
            *nodes = frames.iter().map(|f| f.nodes.len()).sum();
            tracing::debug!(
                frames = frames.len(),
                nodes = *nodes,
                discover_ms = discovered.as_millis() as u64,
                collect_ms = (started.elapsed() - discovered).as_millis() as u64,
                "snapshot: collected"
            );
            let only = req.viewport.then(|| in_view(&frames));
            if plain {
                let gens = metas
                    .iter()
                    .zip(generations)
                    .map(|(m, g)| (m.id.clone(), m.loader.clone(), g))
                    .collect();
                let snap = render(browser, page, &metas, &frames, None, req, source)?;
                page.state().snap.last = Some((gens, snap.text.clone()));
                return Ok(snap);
            }
            (frames, only)
        }
    };
    render(browser, page, &metas, &frames, only, req, source)
}

/// Renders collected frames with the instance's ref table.
fn render(
    browser: &Browser,
    page: &Page,
    metas: &[FrameMeta],
    frames: &[Frame],
    only: Option<std::collections::HashSet<(usize, i64)>>,
    req: &Request,
    source: Source,
) -> Result<Snapshot> {
    let tab = page.key.clone();
    let mut table = browser.refs.lock().unwrap();
    let docs: Vec<(&str, &str)> = metas
        .iter()
        .map(|m| (m.id.as_str(), m.loader.as_str()))
        .collect();
    table.documents(&tab, &docs);
    let root = match &req.root {
        None => None,
        Some(r) => Some(root_of(&table, &tab, metas, r, source)?),
    };
    let opts = Options {
        max_chars: req.max_chars,
        root,
        only,
        find: req.find.clone(),
        clickable: None,
        link_urls: false,
    };
    let mut refs = TableRefs {
        table: &mut table,
        tab: &tab,
        frames: metas,
        source,
    };
    let started = std::time::Instant::now();
    let snap = snapshot::render(frames, &mut refs, &opts);
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        chars = snap.text.len(),
        "snapshot: rendered"
    );
    for r in &snap.refs {
        if let Some(n) = refs::parse_ref(&r.r#ref) {
            table.describe(n, &r.role, &r.name);
        }
    }
    Ok(snap)
}

/// The (frame index, node id) of a ref given as the root of a subtree.
fn root_of(
    table: &RefTable,
    tab: &str,
    metas: &[FrameMeta],
    r: &str,
    source: Source,
) -> Result<(usize, i64)> {
    let n = refs::parse_ref(r).ok_or_else(|| {
        Error::bad_request(format!(
            "{r:?} is not a ref; pass a ref like e12 from a snapshot"
        ))
    })?;
    match table.lookup(n) {
        Lookup::Found(t) if t.tab == tab => {
            let idx = metas
                .iter()
                .position(|m| m.id == t.frame && m.loader == t.loader)
                .ok_or_else(|| {
                    Error::new(
                        codes::STALE_REF,
                        format!(
                            "ref {r} is from a document that has been replaced; take a full snapshot"
                        ),
                    )
                })?;
            match (t.node, source) {
                (NodeKey::Collected(id), Source::Collector)
                | (NodeKey::Backend(id), Source::Ax) => Ok((idx, id)),
                _ => Err(Error::bad_request(format!(
                    "ref {r} comes from a snapshot of the other source; take a snapshot with the same source first"
                ))),
            }
        }
        Lookup::Found(_) => Err(Error::bad_request(format!(
            "ref {r} belongs to another tab; select that tab first"
        ))),
        _ => Err(Error::new(
            codes::STALE_REF,
            format!("ref {r} is unknown or stale; take a full snapshot"),
        )),
    }
}

/// The backend node id of a ref's element, for the commands that act on it. A ref of the
/// collector is looked up in its frame's world; None when the element left the document.
pub async fn backend_of(page: &Page, t: &RefTarget) -> Result<Option<i64>> {
    let id = match t.node {
        NodeKey::Backend(b) => return Ok(Some(b)),
        NodeKey::Collected(id) => id,
    };
    let m = FrameMeta {
        id: t.frame.clone(),
        loader: t.loader.clone(),
        session: t.session.clone(),
        parent: None,
    };
    let r = run::<Value>(page, &m, &json!({"op": "el", "id": id}), false).await?;
    if let Some(ex) = &r.exception {
        return Err(script_error("the element lookup", ex));
    }
    let Some(object) = r.result.and_then(|r| r.object_id) else {
        return Ok(None);
    };
    let d: Value = page
        .call_in(
            t.session.as_deref(),
            "DOM.describeNode",
            json!({"objectId": object}),
        )
        .await?;
    release(page, t.session.as_deref(), object).await;
    Ok(d["node"]["backendNodeId"].as_i64())
}

/// A rectangle: x, y, width, height.
type Rect = [f64; 4];

fn intersect(a: Rect, b: Rect) -> Option<Rect> {
    let x0 = a[0].max(b[0]);
    let y0 = a[1].max(b[1]);
    let x1 = (a[0] + a[2]).min(b[0] + b[2]);
    let y1 = (a[1] + a[3]).min(b[1] + b[3]);
    (x1 > x0 && y1 > y0).then_some([x0, y0, x1 - x0, y1 - y0])
}

/// One document of a `DOMSnapshot.captureSnapshot` answer, decoded.
struct Doc {
    frame: String,
    scroll: (f64, f64),
    backend: Vec<i64>,
    /// Node index -> layout box in document coordinates.
    bounds: HashMap<usize, Rect>,
    /// Node index of an <iframe> -> index of its content document.
    content_doc: HashMap<usize, usize>,
}

fn decode_docs(snap: &Value) -> Vec<Doc> {
    let strings: Vec<&str> = snap["strings"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or_default()).collect())
        .unwrap_or_default();
    let s = |v: &Value| {
        v.as_i64()
            .and_then(|i| strings.get(i as usize))
            .copied()
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for d in snap["documents"].as_array().into_iter().flatten() {
        let nodes = &d["nodes"];
        let backend: Vec<i64> = nodes["backendNodeId"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_i64().unwrap_or(0)).collect())
            .unwrap_or_default();
        let mut bounds = HashMap::new();
        let idx = d["layout"]["nodeIndex"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let bs = d["layout"]["bounds"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, b) in idx.iter().zip(bs.iter()) {
            if let (Some(i), Some(b)) = (i.as_u64(), b.as_array())
                && b.len() == 4
            {
                let r = [0, 1, 2, 3].map(|k| b[k].as_f64().unwrap_or(0.0));
                bounds.insert(i as usize, r);
            }
        }
        let mut content_doc = HashMap::new();
        let cd = &nodes["contentDocumentIndex"];
        if let (Some(ix), Some(vals)) = (cd["index"].as_array(), cd["value"].as_array()) {
            for (i, v) in ix.iter().zip(vals) {
                if let (Some(i), Some(v)) = (i.as_u64(), v.as_u64()) {
                    content_doc.insert(i as usize, v as usize);
                }
            }
        }
        out.push(Doc {
            frame: s(&d["frameId"]).to_string(),
            scroll: (
                d["scrollOffsetX"].as_f64().unwrap_or(0.0),
                d["scrollOffsetY"].as_f64().unwrap_or(0.0),
            ),
            backend,
            bounds,
            content_doc,
        });
    }
    out
}

/// The nodes inside the viewport, as (frame index, backend node id), for every frame
/// of the tab (out-of-process frames placed by their <iframe> element).
async fn visible_nodes(
    page: &Page,
    metas: &[FrameMeta],
    parents: &[Option<(usize, i64)>],
    sessions: &[Option<String>],
) -> Result<std::collections::HashSet<(usize, i64)>> {
    let metrics: Value = page.call("Page.getLayoutMetrics", json!({})).await?;
    let vv = &metrics["cssVisualViewport"];
    let viewport: Rect = [
        vv["pageX"].as_f64().unwrap_or(0.0),
        vv["pageY"].as_f64().unwrap_or(0.0),
        vv["clientWidth"].as_f64().unwrap_or(0.0),
        vv["clientHeight"].as_f64().unwrap_or(0.0),
    ];
    let snaps = futures_util::future::join_all(sessions.iter().map(|s| {
        page.call_in::<Value>(
            s.as_deref(),
            "DOMSnapshot.captureSnapshot",
            json!({"computedStyles": []}),
        )
    }))
    .await;
    let mut docs: Vec<Doc> = Vec::new();
    for (i, r) in snaps.into_iter().enumerate() {
        match r {
            Ok(v) => docs.extend(decode_docs(&v)),
            Err(e) if i == 0 => return Err(e),
            Err(_) => {}
        }
    }
    let frame_index: HashMap<&str, usize> = metas
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.as_str(), i))
        .collect();
    // The visible region of each document, in its own coordinates, found from the top.
    let mut region: HashMap<String, Rect> = HashMap::new();
    if let Some(main) = metas.first() {
        region.insert(main.id.clone(), viewport);
    }
    let by_frame: HashMap<&str, usize> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (d.frame.as_str(), i))
        .collect();
    // Every child frame by its <iframe> element: (parent frame index, backend id).
    let owner_of: HashMap<(usize, i64), String> = parents
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (p, metas[i].id.clone())))
        .collect();
    let mut queue: Vec<String> = metas
        .first()
        .map(|m| vec![m.id.clone()])
        .unwrap_or_default();
    let mut out = std::collections::HashSet::new();
    while let Some(frame) = queue.pop() {
        let (Some(&di), Some(&fi), Some(&r)) = (
            by_frame.get(frame.as_str()),
            frame_index.get(frame.as_str()),
            region.get(&frame),
        ) else {
            continue;
        };
        let d = &docs[di];
        for (n, b) in &d.bounds {
            if intersect(*b, r).is_none() {
                continue;
            }
            if let Some(&id) = d.backend.get(*n) {
                out.insert((fi, id));
            }
            // A frame inside: its region is what of it shows, in its coordinates.
            let child = d
                .content_doc
                .get(n)
                .and_then(|ci| docs.get(*ci))
                .map(|c| c.frame.clone())
                .or_else(|| {
                    d.backend
                        .get(*n)
                        .and_then(|id| owner_of.get(&(fi, *id)).cloned())
                });
            if let Some(child) = child
                && !region.contains_key(&child)
                && let Some(shown) = intersect(*b, r)
            {
                let scroll = by_frame
                    .get(child.as_str())
                    .map(|ci| docs[*ci].scroll)
                    .unwrap_or((0.0, 0.0));
                region.insert(
                    child.clone(),
                    [
                        shown[0] - b[0] + scroll.0,
                        shown[1] - b[1] + scroll.1,
                        shown[2],
                        shown[3],
                    ],
                );
                queue.push(child);
            }
        }
    }
    Ok(out)
}
