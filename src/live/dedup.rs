//! The dedup set's storage: claims and counted bits kept compactly.
//!
//! A node holds one claim per (bid, event) for the whole notice window
//! (24 hours), and one entry of counted bits per bid: at a few thousand
//! notices a second that is tens of millions of entries, so their size is
//! what bounds a node's memory. A [`Table`] keeps each entry inline (a
//! 64-bit key and a value of one or two words, no allocation per entry) in
//! [`SHARDS`] hash tables, each behind its own mutex: a claim takes 30 to
//! 57 bytes of table as its shard fills and doubles, its bid's counted
//! bits and settled reservation 9 more each (a saturation run measured 70
//! bytes a claim from one doubling to the next, against 111 when each
//! entry was allocated on its own in a lock-free map). The
//! tracking and control paths use it, never the bid path; a lock is held
//! for one lookup or update (or, once a minute, one shard's sweep).
//! `tracking::loss::Settled` keeps its settled bids in one too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Shards: a power of two, enough that concurrent notices rarely meet
/// and that one shard's sweep holds its lock briefly.
pub const SHARDS: usize = 64;

/// A compact value: stored as `Packed`, unpacked as `Self`.
pub trait Compact: Copy {
    /// What is stored.
    type Packed: Copy;
    /// Packs the value.
    fn pack(self) -> Self::Packed;
    /// Unpacks a stored value.
    fn unpack(packed: Self::Packed) -> Self;
}

type Map<P> = hashbrown::HashMap<u64, P, foldhash::fast::FixedState>;
type Shard<P> = Mutex<Map<P>>;

/// A shard, locked. A panic elsewhere while it was held left a map that is
/// still consistent (every change is one call on it), so a poisoned lock
/// is taken as it is.
fn lock<P>(shard: &Shard<P>) -> MutexGuard<'_, Map<P>> {
    shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What came of [`Table::insert_new`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Insert<V> {
    /// Inserted.
    New,
    /// The key holds this value: left as it was.
    Held(V),
    /// The table is at its limit: not inserted.
    Full,
}

/// A sharded map from 64-bit keys (already hashes) to compact values,
/// with a count of its entries.
pub struct Table<V: Compact> {
    shards: Box<[Shard<V::Packed>]>,
    len: AtomicUsize,
}

impl<V: Compact> Default for Table<V> {
    fn default() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            len: AtomicUsize::new(0),
        }
    }
}

impl<V: Compact> Table<V> {
    /// The shard of `key`, locked.
    fn shard(&self, key: u64) -> MutexGuard<'_, Map<V::Packed>> {
        // The top bits pick the shard; the map hashes the whole key again.
        lock(&self.shards[(key >> (64 - SHARDS.trailing_zeros())) as usize])
    }

    /// Entries held (kept with each change, under its shard's lock).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the shards' tables have allocated (slots, control bytes,
    /// tombstones' slots included). Entries are placed by hash, so a
    /// table's pages are all touched soon after it grows: this is what the
    /// table adds to the resident set.
    pub fn allocated_bytes(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).allocation_size()).sum()
    }

    /// The value of `key`.
    pub fn get(&self, key: u64) -> Option<V> {
        self.shard(key).get(&key).copied().map(V::unpack)
    }

    /// Inserts `value` unless `key` holds one, and unless the table holds
    /// `limit` entries or more.
    pub fn insert_new(&self, key: u64, value: V, limit: usize) -> Insert<V> {
        let mut shard = self.shard(key);
        if let Some(&held) = shard.get(&key) {
            return Insert::Held(V::unpack(held));
        }
        if self.len() >= limit {
            return Insert::Full;
        }
        shard.insert(key, value.pack());
        self.len.fetch_add(1, Ordering::Relaxed);
        Insert::New
    }

    /// Removes `key`'s value.
    pub fn remove(&self, key: u64) {
        let mut shard = self.shard(key);
        if shard.remove(&key).is_some() {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Replaces `key`'s value (or its absence) by what `change` makes of
    /// it (`None`: removed, or left absent), and returns the value before
    /// and after.
    pub fn update(&self, key: u64, change: impl FnOnce(Option<V>) -> Option<V>) -> (Option<V>, Option<V>) {
        let mut shard = self.shard(key);
        let before = shard.get(&key).copied().map(V::unpack);
        let after = change(before);
        match after {
            Some(value) if shard.insert(key, value.pack()).is_none() => {
                self.len.fetch_add(1, Ordering::Relaxed);
            }
            None if shard.remove(&key).is_some() => {
                self.len.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        (before, after)
    }

    /// Keeps the entries `keep` accepts, one shard at a time; a shard
    /// left far emptier than its capacity gives memory back.
    pub fn retain(&self, mut keep: impl FnMut(V) -> bool) {
        for shard in &*self.shards {
            let mut shard = lock(shard);
            let before = shard.len();
            shard.retain(|_, packed| keep(V::unpack(*packed)));
            let after = shard.len();
            // Its slots, tombstones' included (`capacity` leaves those out).
            let slots = shard.allocation_size() / (std::mem::size_of::<(u64, V::Packed)>() + 1);
            if slots > 4 * after.max(1024) {
                shard.shrink_to(2 * after);
            }
            // Counted while the shard is held, as every change is, so
            // that the count never runs below what is held.
            self.len.fetch_sub(before - after, Ordering::Relaxed);
        }
    }
}

/// A plain word (a minute, a time), stored as it is.
impl Compact for i64 {
    type Packed = i64;

    fn pack(self) -> i64 {
        self
    }

    fn unpack(packed: i64) -> i64 {
        packed
    }
}

/// Counted bits: when first counted (whole seconds, for forgetting) in
/// the high 56 bits, the bits in the low 8.
impl Compact for (i64, u8) {
    type Packed = u64;

    fn pack(self) -> u64 {
        ((self.0.div_euclid(1_000_000) as u64) << 8) | u64::from(self.1)
    }

    fn unpack(packed: u64) -> (i64, u8) {
        (((packed >> 8) as i64) * 1_000_000, packed as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Id(u32);

    impl Compact for Id {
        type Packed = u32;
        fn pack(self) -> u32 {
            self.0
        }
        fn unpack(packed: u32) -> Id {
            Id(packed)
        }
    }

    #[test]
    fn inserts_once_up_to_the_limit_and_counts_entries() {
        let table = Table::<Id>::default();
        assert_eq!(table.insert_new(1, Id(10), 2), Insert::New);
        assert_eq!(
            table.insert_new(1, Id(11), 2),
            Insert::Held(Id(10)),
            "held: not replaced"
        );
        assert_eq!(table.insert_new(u64::MAX, Id(12), 2), Insert::New);
        assert_eq!(table.insert_new(7, Id(13), 2), Insert::Full, "at the limit");
        assert_eq!(
            table.insert_new(u64::MAX, Id(14), 2),
            Insert::Held(Id(12)),
            "a held key still answers"
        );
        assert_eq!(table.len(), 2);
        table.remove(1);
        table.remove(1);
        assert_eq!((table.len(), table.get(1)), (1, None));
    }

    #[test]
    fn updates_insert_change_and_remove() {
        let table = Table::<Id>::default();
        assert_eq!(table.update(5, |v| v.map(|Id(n)| Id(n + 1))), (None, None));
        assert_eq!(table.len(), 0, "nothing to change: nothing inserted");
        assert_eq!(table.update(5, |_| Some(Id(1))), (None, Some(Id(1))));
        assert_eq!(
            table.update(5, |v| v.map(|Id(n)| Id(n + 1))),
            (Some(Id(1)), Some(Id(2)))
        );
        assert_eq!(table.len(), 1);
        assert_eq!(table.update(5, |_| None), (Some(Id(2)), None));
        assert_eq!((table.len(), table.get(5)), (0, None));
    }

    #[test]
    fn retain_keeps_what_it_is_told_in_every_shard() {
        let table = Table::<Id>::default();
        for n in 0..10_000u32 {
            // Spread over every shard: the top bits pick it.
            let key = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assert_eq!(table.insert_new(key, Id(n), usize::MAX), Insert::New);
        }
        table.retain(|Id(n)| n % 4 == 0);
        assert_eq!(table.len(), 2_500);
        assert_eq!(table.get(8u64.wrapping_mul(0x9E37_79B9_7F4A_7C15)), Some(Id(8)));
        assert_eq!(table.get(9u64.wrapping_mul(0x9E37_79B9_7F4A_7C15)), None);
    }

    #[test]
    fn allocated_bytes_count_each_shards_table_and_its_tombstones() {
        let table = Table::<Id>::default();
        assert_eq!(table.allocated_bytes(), 0);
        // One entry in one shard: a table of 4 slots of 16 bytes (a u64
        // and a u32, padded), a control byte each and a group's worth more.
        assert_eq!(table.insert_new(1, Id(1), usize::MAX), Insert::New);
        assert_eq!(table.allocated_bytes(), 4 * 16 + 4 + 16);
        let key = |n: u64| n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for n in 0..300_000 {
            table.insert_new(key(n), Id(0), usize::MAX);
        }
        let full = table.allocated_bytes();
        // Between just enough slots (7/8 full) and twice that, per shard.
        let least = 300_000 * 17 * 8 / 7;
        assert!((least..=2 * least + SHARDS * 32).contains(&full), "{full}");
        // Removed entries leave their slots allocated (tombstones): the
        // table is as big as before until a sweep shrinks it.
        for n in 0..290_000 {
            table.remove(key(n));
        }
        assert_eq!(table.allocated_bytes(), full);
        table.retain(|_| true);
        assert!(table.allocated_bytes() < full / 2, "the sweep gave memory back");
    }

    #[test]
    fn counted_bits_pack_to_one_word() {
        let counted = (1_780_000_000_123_456_i64, 0b101_u8);
        assert_eq!(<(i64, u8)>::unpack(counted.pack()), (1_780_000_000_000_000, 0b101));
    }
}
