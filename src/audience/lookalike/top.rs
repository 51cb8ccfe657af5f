//! The best `capacity` users seen in a stream, in memory bounded by
//! `capacity` (a min-heap whose root is the user to beat). Ties in score
//! are broken by a keyed hash of the user (random, repeatable), not by
//! input order. A user met on several lines is kept once, with their best
//! score: a newer, better entry replaces theirs and the old one is dropped
//! lazily when it reaches the root.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

/// One candidate of the expansion.
#[derive(Debug)]
pub struct Candidate {
    /// The model's score.
    pub score: f64,
    /// Tie-break: a keyed hash of the user key.
    pub tie: u64,
    /// The user key.
    pub key: u64,
    /// The user id as read.
    pub id: Box<str>,
}

impl Candidate {
    fn rank(&self) -> (f64, u64) {
        (self.score, self.tie)
    }
}

fn order(a: (f64, u64), b: (f64, u64)) -> Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        order(self.rank(), other.rank())
    }
}

/// The best users so far.
pub struct Top {
    capacity: usize,
    heap: BinaryHeap<Reverse<Candidate>>,
    /// Each user in the heap, with the score of their live entry.
    best: HashMap<u64, f64, foldhash::fast::RandomState>,
    /// Heap entries replaced by a better one of the same user.
    stale: usize,
}

impl Top {
    /// Keeps at most `capacity` users.
    pub fn new(capacity: usize) -> Top {
        Top {
            capacity,
            heap: BinaryHeap::new(),
            best: HashMap::default(),
            stale: 0,
        }
    }

    /// Whether a user scoring `score` (tie-break `tie`) would enter: lets the
    /// caller skip copying the id of a user who would not.
    pub fn admits(&self, score: f64, tie: u64) -> bool {
        if self.capacity == 0 {
            return false;
        }
        if self.best.len() < self.capacity {
            return true;
        }
        self.heap
            .peek()
            .is_none_or(|Reverse(root)| order((score, tie), root.rank()) == Ordering::Greater)
    }

    /// Offers a user.
    pub fn offer(&mut self, score: f64, tie: u64, key: u64, id: &str) {
        let score = if score.is_nan() { f64::NEG_INFINITY } else { score };
        if !self.admits(score, tie) {
            return;
        }
        match self.best.get(&key) {
            Some(&old) if old >= score => return,
            Some(_) => self.stale += 1,
            None => {}
        }
        self.best.insert(key, score);
        self.heap.push(Reverse(Candidate {
            score,
            tie,
            key,
            id: id.into(),
        }));
        while self.best.len() > self.capacity {
            let Some(Reverse(root)) = self.heap.pop() else { break };
            if self.is_stale(&root) {
                self.stale -= 1;
            } else {
                self.best.remove(&root.key);
            }
        }
        if self.stale > self.capacity {
            let best = &self.best;
            self.heap
                .retain(|Reverse(c)| best.get(&c.key).is_some_and(|&s| s.to_bits() == c.score.to_bits()));
            self.stale = 0;
        }
    }

    fn is_stale(&self, candidate: &Candidate) -> bool {
        self.best
            .get(&candidate.key)
            .is_none_or(|&s| s.to_bits() != candidate.score.to_bits())
    }

    /// How many users are kept.
    pub fn len(&self) -> usize {
        self.best.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.best.is_empty()
    }

    /// The users kept, best first.
    pub fn into_best_first(self) -> Vec<Candidate> {
        let Top { heap, best, .. } = self;
        let mut kept: Vec<Candidate> = heap
            .into_iter()
            .map(|Reverse(c)| c)
            .filter(|c| best.get(&c.key).is_some_and(|&s| s.to_bits() == c.score.to_bits()))
            .collect();
        kept.sort_unstable_by(|a, b| b.cmp(a));
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_users_once_each() {
        let mut top = Top::new(3);
        for (score, key) in [(1.0, 1), (5.0, 2), (3.0, 3), (4.0, 4), (2.0, 5), (6.0, 3), (0.5, 2)] {
            top.offer(score, key, key, &format!("u{key}"));
        }
        assert_eq!(top.len(), 3);
        let ids: Vec<(String, f64)> = top
            .into_best_first()
            .into_iter()
            .map(|c| (c.id.to_string(), c.score))
            .collect();
        assert_eq!(
            ids,
            [
                ("u3".to_string(), 6.0),
                ("u2".to_string(), 5.0),
                ("u4".to_string(), 4.0)
            ]
        );
    }

    #[test]
    fn memory_stays_bounded_when_users_repeat() {
        let mut top = Top::new(10);
        for round in 0..1000 {
            for key in 0..20u64 {
                top.offer(f64::from(round) + key as f64, key, key, "u");
            }
        }
        assert_eq!(top.len(), 10);
        assert!(top.heap.len() <= 2 * 10 + 1, "{}", top.heap.len());
        let keys: Vec<u64> = top.into_best_first().iter().map(|c| c.key).collect();
        assert_eq!(keys, (10..20).rev().collect::<Vec<_>>());
    }

    #[test]
    fn ties_are_broken_by_the_hash_not_by_order() {
        let mut top = Top::new(1);
        top.offer(1.0, 5, 1, "first");
        top.offer(1.0, 9, 2, "second");
        top.offer(1.0, 7, 3, "third");
        assert_eq!(&*top.into_best_first()[0].id, "second");
    }
}
