//! The in-page collector (`collector.js`) and the parser of its compact answer.
//!
//! The answer is parsed straight into [`Node`]s by a streaming visitor: no JSON tree of
//! the page is ever built in tabmux.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::{Frame, Node, ax::intern};

/// The collector: a JavaScript function of one argument (see the top of the file).
pub const SCRIPT: &str = include_str!("collector.js");

/// What one frame's collector answered.
#[derive(Debug, Default)]
pub struct Collected {
    /// The document's change counter when it was read.
    pub generation: u64,
    /// None when nothing changed since the generation that was passed in.
    pub frame: Option<Frame>,
    /// Custom elements (collector ids) shown without a shadow root: a closed one may hide
    /// their content.
    pub hosts: Vec<u64>,
}

impl<'de> Deserialize<'de> for Collected {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(AnswerVisitor)
    }
}

struct AnswerVisitor;

impl<'de> Visitor<'de> for AnswerVisitor {
    type Value = Collected;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("[generation, url, items, hosts?] or [generation]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Collected, A::Error> {
        let generation: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let Some(url) = seq.next_element::<String>()? else {
            return Ok(Collected {
                generation,
                frame: None,
                hosts: Vec::new(),
            });
        };
        let nodes: Items = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
        let hosts = seq.next_element::<Vec<u64>>()?.unwrap_or_default();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Collected {
            generation,
            hosts,
            frame: Some(Frame {
                nodes: nodes.0,
                parent: None,
                url,
            }),
        })
    }
}

/// The flat list of items, turned into nodes with their subtree ends.
struct Items(Vec<Node>);

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(ItemsVisitor)
    }
}

struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = Items;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of collector items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
        let mut nodes: Vec<Node> = Vec::with_capacity(seq.size_hint().unwrap_or(1024));
        while let Some(Item(size, mut node)) = seq.next_element()? {
            let at = nodes.len() as u32;
            node.end = at.saturating_add(1).saturating_add(size);
            nodes.push(node);
        }
        // A subtree never reaches past its parent's end nor the list's.
        let len = nodes.len() as u32;
        let mut open: Vec<u32> = Vec::new();
        for i in 0..len {
            while let Some(&p) = open.last() {
                if nodes[p as usize].end <= i {
                    open.pop();
                } else {
                    break;
                }
            }
            let limit = open.last().map_or(len, |&p| nodes[p as usize].end);
            let n = &mut nodes[i as usize];
            n.end = n.end.clamp(i + 1, limit);
            if n.end > i + 1 {
                open.push(i);
            }
        }
        nodes.shrink_to_fit();
        Ok(Items(nodes))
    }
}

/// One item: a text run (a string) or an element (an array). The u32 is the subtree size.
struct Item(u32, Node);

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

fn text(s: String) -> Item {
    let role = if s == "\n" { "LineBreak" } else { "StaticText" };
    Item(
        0,
        Node {
            role: std::borrow::Cow::Borrowed(role),
            name: s,
            ..Node::default()
        },
    )
}

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a text or [size, id, role, name, flags, value, level, url]")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Item, E> {
        Ok(text(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Item, E> {
        Ok(text(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
        let size: u32 = seq.next_element()?.unwrap_or(0);
        let id: i64 = seq.next_element()?.unwrap_or(0);
        let role: String = seq.next_element()?.unwrap_or_default();
        let name: String = seq.next_element()?.unwrap_or_default();
        let flags: u32 = seq.next_element()?.unwrap_or(0);
        let value: String = seq.next_element()?.unwrap_or_default();
        let level: u32 = seq.next_element()?.unwrap_or(0);
        let url: String = seq.next_element()?.unwrap_or_default();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Item(
            size,
            Node {
                id: (id > 0).then_some(id),
                role: intern(&role),
                name,
                value,
                url,
                level,
                flags,
                end: 0,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_items_into_a_tree() {
        let json = r#"[7, "http://x/", [
            [4, 0, "RootWebArea", "T", 0, "", 0, "http://x/"],
            [2, 3, "button", "Go", 2],
            "Go",
            "\n",
            [0, 5, "link", "Docs", 0, "", 0, "http://x/docs"]
        ]]"#;
        let c: Collected = serde_json::from_str(json).unwrap();
        assert_eq!(c.generation, 7);
        let f = c.frame.unwrap();
        assert_eq!(f.url, "http://x/");
        let ends: Vec<u32> = f.nodes.iter().map(|n| n.end).collect();
        assert_eq!(ends, vec![5, 4, 3, 4, 5]);
        assert_eq!(f.nodes[0].id, None);
        assert_eq!(f.nodes[1].id, Some(3));
        assert_eq!(f.nodes[3].role, "LineBreak");
        assert_eq!(f.nodes[4].url, "http://x/docs");
        assert_eq!(f.children(0).collect::<Vec<_>>(), vec![1, 4]);
        let same: Collected = serde_json::from_str("[7]").unwrap();
        assert!(same.frame.is_none());
    }

    #[test]
    fn bad_sizes_are_clamped() {
        let json = r#"[1, "u", [[99, 0, "RootWebArea"], [50, 2, "group"], "a", [0, 3, "button"]]]"#;
        let f = serde_json::from_str::<Collected>(json)
            .unwrap()
            .frame
            .unwrap();
        let ends: Vec<u32> = f.nodes.iter().map(|n| n.end).collect();
        assert_eq!(ends, vec![4, 4, 3, 4]);
    }
}
