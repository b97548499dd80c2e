//! Collecting a tab's accessibility trees (every frame, in- and out-of-process) and
//! rendering them with refs.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::Browser;
use super::page::Page;
use super::refs::{self, Lookup, RefTable};
use crate::error::{Error, Result, codes};
use crate::snapshot::{self, AxNode, Frame, Options, Snapshot};

/// What the model asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub max_chars: usize,
    /// A ref whose subtree alone is rendered.
    pub root: Option<String>,
    pub find: Option<String>,
    /// Only what is inside the viewport.
    pub viewport: bool,
}

struct FrameMeta {
    id: String,
    loader: String,
    session: Option<String>,
}

struct TableRefs<'a> {
    table: &'a mut RefTable,
    tab: &'a str,
    frames: &'a [FrameMeta],
}

impl snapshot::Refs for TableRefs<'_> {
    fn ref_for(&mut self, frame: usize, backend_node_id: i64) -> String {
        let m = &self.frames[frame];
        let n = self.table.ref_for(
            self.tab,
            &m.id,
            &m.loader,
            m.session.as_deref(),
            backend_node_id,
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

/// Collects and renders the tab's snapshot.
pub async fn take(browser: &Browser, page: &Page, req: &Request) -> Result<Snapshot> {
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
    let metas: Vec<FrameMeta> = order
        .iter()
        .map(|id| {
            let f = &by_id[id];
            FrameMeta {
                id: id.clone(),
                loader: f.loader.clone(),
                session: f.session.clone(),
            }
        })
        .collect();
    let index: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();

    let ax_calls = metas.iter().map(|m| {
        page.call_in::<AxTree>(
            m.session.as_deref(),
            "Accessibility.getFullAXTree",
            json!({"frameId": m.id}),
        )
    });
    // The <iframe> element that hosts each child frame, asked of the parent's session.
    let owner_calls = order.iter().skip(1).map(|id| {
        let parent = by_id[id].parent.clone().unwrap_or_default();
        let parent_session = by_id.get(&parent).and_then(|p| p.session.clone());
        let id = id.clone();
        async move {
            page.call_in::<Value>(
                parent_session.as_deref(),
                "DOM.getFrameOwner",
                json!({"frameId": id}),
            )
            .await
        }
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
        let parent = if i == 0 {
            None
        } else {
            let id = &order[i];
            let p = by_id[id]
                .parent
                .as_deref()
                .and_then(|p| index.get(p))
                .copied();
            let owner = owners[i - 1]
                .as_ref()
                .ok()
                .and_then(|o| o["backendNodeId"].as_i64());
            match (p, owner) {
                (Some(p), Some(o)) => Some((p, o)),
                _ => None,
            }
        };
        if i > 0 && parent.is_none() {
            // A frame without a known host element cannot be placed; leave it out.
            frames.push(Frame {
                parent: Some((0, -1)),
                ..Frame::default()
            });
            continue;
        }
        frames.push(snapshot::ax::frame_from_ax(&nodes, parent));
    }

    let only = if req.viewport {
        let parents: Vec<Option<(usize, i64)>> = frames.iter().map(|f| f.parent).collect();
        Some(visible_nodes(page, &metas, &parents, &sessions).await?)
    } else {
        None
    };
    let tab = page.key.clone();
    let mut table = browser.refs.lock().unwrap();
    let root = match &req.root {
        None => None,
        Some(r) => {
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
                                format!("ref {r} is from a document that has been replaced; take a full snapshot"),
                            )
                        })?;
                    Some((idx, t.backend))
                }
                Lookup::Found(_) => {
                    return Err(Error::bad_request(format!(
                        "ref {r} belongs to another tab; select that tab first"
                    )));
                }
                _ => {
                    return Err(Error::new(
                        codes::STALE_REF,
                        format!("ref {r} is unknown or stale; take a full snapshot"),
                    ));
                }
            }
        }
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
        frames: &metas,
    };
    let snap = snapshot::render(&frames, &mut refs, &opts);
    for r in &snap.refs {
        if let Some(n) = refs::parse_ref(&r.r#ref) {
            table.describe(n, &r.role, &r.name);
        }
    }
    Ok(snap)
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
