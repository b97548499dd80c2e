//! Element refs (`e12`): one table for the whole instance, so a ref names its tab, its
//! frame, the document it came from and the element. The same element keeps its ref
//! within a document; a ref from a replaced document is `STALE_REF`.

use std::collections::HashMap;

/// How a ref names its element within its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKey {
    /// A backend DOM node id (snapshots from the accessibility tree).
    Backend(i64),
    /// The in-page collector's id of the element.
    Collected(i64),
}

/// What a ref points at.
#[derive(Debug, Clone)]
pub struct RefTarget {
    pub tab: String,
    pub frame: String,
    pub loader: String,
    pub session: Option<String>,
    pub node: NodeKey,
    pub role: String,
    pub name: String,
}

/// Refs handed out so far. Bounded: past [`RefTable::CAP`] entries the oldest are
/// forgotten; a forgotten ref reads as stale, never as another element.
#[derive(Default)]
pub struct RefTable {
    next: u64,
    by_key: HashMap<(String, String, String, NodeKey), u64>,
    by_ref: HashMap<u64, RefTarget>,
    /// The documents (frame id, loader id) each tab's refs were last made in.
    docs: HashMap<String, Vec<(String, String)>>,
}

pub enum Lookup<'a> {
    Found(&'a RefTarget),
    /// The ref existed once but has been forgotten.
    Forgotten,
    Unknown,
}

impl RefTable {
    pub const CAP: usize = 400_000;

    /// The ref for an element, made on first sight.
    pub fn ref_for(
        &mut self,
        tab: &str,
        frame: &str,
        loader: &str,
        session: Option<&str>,
        node: NodeKey,
    ) -> u64 {
        let key = (tab.to_string(), frame.to_string(), loader.to_string(), node);
        if let Some(r) = self.by_key.get(&key) {
            return *r;
        }
        if self.by_ref.len() >= Self::CAP {
            self.forget_oldest(Self::CAP / 4);
        }
        self.next += 1;
        let r = self.next;
        self.by_key.insert(key, r);
        self.by_ref.insert(
            r,
            RefTarget {
                tab: tab.to_string(),
                frame: frame.to_string(),
                loader: loader.to_string(),
                session: session.map(str::to_string),
                node,
                role: String::new(),
                name: String::new(),
            },
        );
        r
    }

    /// Records the role and name a ref was shown with (for error messages).
    pub fn describe(&mut self, r: u64, role: &str, name: &str) {
        if let Some(t) = self.by_ref.get_mut(&r) {
            if t.role != role {
                t.role = role.to_string();
            }
            if t.name != name {
                t.name = name.chars().take(60).collect();
            }
        }
    }

    pub fn lookup(&self, r: u64) -> Lookup<'_> {
        match self.by_ref.get(&r) {
            Some(t) => Lookup::Found(t),
            None if r >= 1 && r <= self.next => Lookup::Forgotten,
            None => Lookup::Unknown,
        }
    }

    /// Forgets every ref of a tab (it closed or was released).
    pub fn forget_tab(&mut self, tab: &str) {
        self.by_ref.retain(|_, t| t.tab != tab);
        self.by_key.retain(|k, _| k.0 != tab);
        self.docs.remove(tab);
    }

    /// Tells which documents a tab shows now (frame id, loader id): the refs of the
    /// documents it no longer shows are forgotten (they read as stale), so a tab that
    /// navigates through big pages does not keep every page's refs.
    pub fn documents(&mut self, tab: &str, now: &[(&str, &str)]) {
        let same = self.docs.get(tab).is_some_and(|d| {
            d.len() == now.len() && d.iter().zip(now).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
        });
        if same {
            return;
        }
        let shown = |frame: &str, loader: &str| now.iter().any(|d| d.0 == frame && d.1 == loader);
        self.by_ref
            .retain(|_, t| t.tab != tab || shown(&t.frame, &t.loader));
        self.by_key.retain(|k, _| k.0 != tab || shown(&k.1, &k.2));
        if self.by_ref.capacity() > 4 * self.by_ref.len() + 1024 {
            self.by_ref.shrink_to_fit();
            self.by_key.shrink_to_fit();
        }
        self.docs.insert(
            tab.to_string(),
            now.iter()
                .map(|d| (d.0.to_string(), d.1.to_string()))
                .collect(),
        );
    }

    fn forget_oldest(&mut self, n: usize) {
        let mut ids: Vec<u64> = self.by_ref.keys().copied().collect();
        ids.sort_unstable();
        for id in ids.into_iter().take(n) {
            if let Some(t) = self.by_ref.remove(&id) {
                self.by_key.remove(&(t.tab, t.frame, t.loader, t.node));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_ref.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ref.is_empty()
    }
}

/// Parses `e12` (also `ref=e12`, `[e12]`) into its number.
pub fn parse_ref(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    let s = s.strip_prefix("ref=").unwrap_or(s);
    let digits = s.strip_prefix('e')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_element_same_ref() {
        let mut t = RefTable::default();
        let k = NodeKey::Collected;
        let a = t.ref_for("tab1", "f", "l1", None, k(10));
        let b = t.ref_for("tab1", "f", "l1", None, k(11));
        assert_ne!(a, b);
        assert_eq!(t.ref_for("tab1", "f", "l1", None, k(10)), a);
        // The same number from the other source is another element.
        assert_ne!(t.ref_for("tab1", "f", "l1", None, NodeKey::Backend(10)), a);
        // A new document: a new ref, and the old one still points at the old document.
        let c = t.ref_for("tab1", "f", "l2", None, k(10));
        assert_ne!(c, a);
        match t.lookup(a) {
            Lookup::Found(x) => assert_eq!(x.loader, "l1"),
            _ => panic!("lost"),
        }
        assert!(matches!(t.lookup(999), Lookup::Unknown));
        // The tab shows the second document now: the first one's refs are forgotten.
        t.documents("tab1", &[("f", "l2")]);
        assert!(matches!(t.lookup(a), Lookup::Forgotten));
        assert!(matches!(t.lookup(c), Lookup::Found(_)));
        t.forget_tab("tab1");
        assert!(matches!(t.lookup(c), Lookup::Forgotten));
    }

    #[test]
    fn parses_refs() {
        assert_eq!(parse_ref("e12"), Some(12));
        assert_eq!(parse_ref("[e7]"), Some(7));
        assert_eq!(parse_ref("ref=e3"), Some(3));
        assert_eq!(parse_ref("#e12"), None);
        assert_eq!(parse_ref("e"), None);
        assert_eq!(parse_ref("button.e12"), None);
    }
}
