//! What the model sees of a user: one feature per segment path the user
//! holds *and per ancestor of it* (`interest/finance/funds` also counts as
//! `interest/finance` and `interest`, as targeting matches it), plus how
//! many segments the user holds, in powers of two (an activity level).
//!
//! Paths are validated and normalised once, when first seen as written
//! ([`Vocabulary::node`]); after that a segment costs one hash lookup.
//! Memory grows with the number of distinct segments, never with users.

use std::collections::HashMap;

use crate::audience::SegmentPath;

type Map<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// A feature: a segment path (or an ancestor of one), numbered densely.
pub type Node = u32;

const NO_PARENT: Node = Node::MAX;

/// Activity buckets: 1, 2–3, 4–7, …, 64 or more segments.
pub const ACTIVITY_BUCKETS: usize = 7;

/// The activity bucket of a user holding `segments` distinct segments.
pub fn activity(segments: usize) -> usize {
    (segments.max(1).ilog2() as usize).min(ACTIVITY_BUCKETS - 1)
}

/// Every segment path seen, with its ancestors, numbered.
#[derive(Default)]
pub struct Vocabulary {
    /// As written in the input (case, spaces) → node.
    written: Map<Node>,
    /// Normalised path → node.
    paths: Map<Node>,
    names: Vec<Box<str>>,
    parents: Vec<Node>,
}

impl Vocabulary {
    /// The node of a segment as written; `Err` with the reason for an
    /// invalid path.
    pub fn node(&mut self, written: &str) -> Result<Node, String> {
        if let Some(&node) = self.written.get(written) {
            return Ok(node);
        }
        let path = SegmentPath::parse(written).map_err(|e| e.to_string())?;
        let node = self.intern(&path);
        self.written.insert(written.into(), node);
        Ok(node)
    }

    fn intern(&mut self, path: &SegmentPath) -> Node {
        if let Some(&node) = self.paths.get(path.as_str()) {
            return node;
        }
        let parent = path.parent().map_or(NO_PARENT, |parent| self.intern(&parent));
        // Four billion distinct paths would not fit in memory long before.
        let node = self.names.len() as Node;
        self.names.push(path.as_str().into());
        self.parents.push(parent);
        self.paths.insert(path.as_str().into(), node);
        node
    }

    /// How many nodes (paths and ancestors) there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no segment has been seen.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The normalised path of a node.
    pub fn name(&self, node: Node) -> &str {
        &self.names[node as usize]
    }
}

/// Expands a user's segments to the set of their paths and ancestors, each
/// once, with a stamp per node instead of a set (no allocation per user).
#[derive(Default)]
pub struct Expander {
    stamps: Vec<u32>,
    stamp: u32,
}

impl Expander {
    /// Calls `each` once for every path in `given` and every ancestor of
    /// one.
    pub fn expand(&mut self, vocabulary: &Vocabulary, given: &[Node], mut each: impl FnMut(Node)) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.stamps.fill(0);
            self.stamp = 1;
        }
        if self.stamps.len() < vocabulary.len() {
            self.stamps.resize(vocabulary.len(), 0);
        }
        for &node in given {
            let mut node = node;
            // Stop at the first node already seen: its ancestors were too.
            while node != NO_PARENT && self.stamps[node as usize] != self.stamp {
                self.stamps[node as usize] = self.stamp;
                each(node);
                node = vocabulary.parents[node as usize];
            }
        }
    }
}

/// Adds `more` to the sorted, deduplicated set `nodes`.
pub fn merge(nodes: &mut Vec<Node>, more: &[Node]) {
    nodes.extend_from_slice(more);
    nodes.sort_unstable();
    nodes.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_are_features_once_each() {
        let mut vocabulary = Vocabulary::default();
        let funds = vocabulary.node("Interest/Finance/Funds").unwrap();
        let stocks = vocabulary.node(" interest/finance/stocks").unwrap();
        assert_eq!(vocabulary.node("interest/finance/funds").unwrap(), funds);
        assert_eq!(vocabulary.len(), 4);
        assert!(vocabulary.node("a//b").is_err());
        let mut expander = Expander::default();
        let mut seen = Vec::new();
        expander.expand(&vocabulary, &[funds, stocks], |n| {
            seen.push(vocabulary.name(n).to_string())
        });
        seen.sort();
        assert_eq!(
            seen,
            [
                "interest",
                "interest/finance",
                "interest/finance/funds",
                "interest/finance/stocks"
            ]
        );
    }

    #[test]
    fn activity_is_a_power_of_two_bucket() {
        let buckets: Vec<usize> = [0, 1, 2, 3, 4, 8, 63, 64, 1000].into_iter().map(activity).collect();
        assert_eq!(buckets, [0, 0, 1, 1, 2, 3, 5, 6, 6]);
    }
}
