//! A uniform sample of at most `capacity` distinct users from a stream, in
//! bounded memory: the users whose keyed hash ("rank") is smallest (a
//! bottom-k sample). Unlike a reservoir over lines, it samples *users*: a
//! user is in or out whatever line of theirs is read, so the segments of a
//! user written on several lines (or in several inputs) are merged.

use std::collections::BTreeMap;

use super::features::{Node, merge};

/// The sampled users' segments (as given, not expanded), by rank.
pub struct BottomK {
    capacity: usize,
    members: BTreeMap<u64, Vec<Node>>,
    /// The largest rank kept once full; `u64::MAX` until then.
    ceiling: u64,
}

impl BottomK {
    /// An empty sample of at most `capacity` users.
    pub fn new(capacity: usize) -> BottomK {
        BottomK {
            capacity,
            members: BTreeMap::new(),
            ceiling: u64::MAX,
        }
    }

    /// Offers one line of the user ranked `rank`: if the user is (now) in
    /// the sample, `given` is merged into their segments. Ranks must be
    /// distinct per user (a bijection of the user key).
    pub fn offer(&mut self, rank: u64, given: &[Node]) {
        if rank > self.ceiling || self.capacity == 0 {
            return;
        }
        if let Some(nodes) = self.members.get_mut(&rank) {
            merge(nodes, given);
            return;
        }
        self.members.insert(rank, given.to_vec());
        if self.members.len() > self.capacity {
            self.members.pop_last();
        }
        if self.members.len() == self.capacity {
            self.ceiling = self.members.last_key_value().map_or(u64::MAX, |(&rank, _)| rank);
        }
    }

    /// How many users are in the sample.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the sample is empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The sampled users' segments.
    pub fn into_users(self) -> impl Iterator<Item = Vec<Node>> {
        self.members.into_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::lookalike::mix;

    #[test]
    fn keeps_the_smallest_ranks_and_merges_a_members_lines() {
        let mut sample = BottomK::new(100);
        for user in 0..10_000u64 {
            sample.offer(mix(user), &[user as Node]);
        }
        // A second line of every user: only members take it.
        for user in 0..10_000u64 {
            sample.offer(mix(user), &[0]);
        }
        assert_eq!(sample.len(), 100);
        let mut expected: Vec<u64> = (0..10_000).map(mix).collect();
        expected.sort_unstable();
        let kept: Vec<u64> = sample.members.keys().copied().collect();
        assert_eq!(kept, expected[..100]);
        assert!(sample.into_users().all(|nodes| nodes.len() <= 2 && nodes[0] == 0));
    }
}
