//! The seam for the claims that nodes of a cluster share.
//!
//! Dedup claims (a notice is recorded once per bid and event) and the bits
//! that count a bid's win and impression once go through [`SharedState`]:
//! [`Embedded`] is the single-node implementation, everything in this
//! process; `cluster::Shared` claims in Redis with an `Embedded` as its
//! cache. What else a cluster shares goes its own way: applied events and
//! control changes through the outbox (`live::replicated`), budgets through
//! the leases (`cluster::leases`, a cap in `pacing::budget::DailySpend`). The bid path never calls this trait; it reads local state
//! only, kept current in the background.
//!
//! The calls a cluster answers over the network (claims, their settlement,
//! counted bits) return a [`Pending`] future: the tracker awaits them, and
//! [`Embedded`] answers them at once (ready futures). Restoring from the
//! ledger at start (`claim_restored`, `count_restored`) stays synchronous
//! and local.

use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;

use super::dedup::{Compact, Insert, Table};

/// A (bid, event) recorded once: when, and at what clearing price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Unix microseconds when it was claimed.
    pub at_micros: i64,
    /// The notice's clearing price (micros, response currency), if any.
    pub clearing: Option<i64>,
    /// The event's record is durable in the ledger. Until then a duplicate
    /// is not acknowledged: the original may still fail.
    pub durable: bool,
    /// The event was recorded as not billable (a filtered click): its
    /// conversions are not counted.
    pub filtered: bool,
}

/// What came of a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This caller holds the claim: it records the event.
    Claimed,
    /// Already claimed: the event is a duplicate.
    Taken,
    /// The dedup set is at its bound: the event cannot be deduplicated, so
    /// it is refused (the exchange retries) rather than risk billing twice.
    Full,
}

/// The dedup set's size, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DedupStats {
    /// Claims held.
    pub held: usize,
    /// True at the bound (an alert: notices are being refused).
    pub at_capacity: bool,
    /// Claims refused at the bound since start.
    pub refused: u64,
    /// Bytes the claims' and counted bits' tables have allocated (what
    /// they add to the resident set).
    pub bytes: usize,
}

/// What a call that may cross the network gives back: a future the caller
/// awaits ([`Embedded`]'s are ready at once).
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A future that is ready with `value`.
fn ready<'a, T: Send + 'a>(value: T) -> Pending<'a, T> {
    Box::pin(std::future::ready(value))
}

/// State shared between nodes. Called from the tracking and control paths,
/// never from the bid path.
pub trait SharedState: Send + Sync {
    /// Claims `key` (a bid and event) for this node.
    fn claim(&self, key: u64, claim: Claim) -> Pending<'_, ClaimOutcome>;
    /// Re-claims an event restored from the billing log (never refused:
    /// it was recorded, and its duplicates must be recognised).
    fn claim_restored(&self, key: u64, claim: Claim);
    /// The dedup set's size.
    fn dedup_stats(&self) -> DedupStats;
    /// Gives up a claim whose event could not be recorded durably.
    fn unclaim(&self, key: u64) -> Pending<'_, ()>;
    /// Marks a claim's event durable (and whether it was filtered).
    fn confirm(&self, key: u64, filtered: bool) -> Pending<'_, ()>;
    /// The claim on `key`, if any.
    fn claimed(&self, key: u64) -> Pending<'_, Option<Claim>>;
    /// The claim on the first of `keys` that has one (a cluster asks for
    /// them together).
    fn claimed_first<'a>(&'a self, keys: &'a [u64]) -> Pending<'a, Option<Claim>> {
        Box::pin(async move {
            for &key in keys {
                if let Some(claim) = self.claimed(key).await {
                    return Some(claim);
                }
            }
            None
        })
    }
    /// Marks `flags` (bits) counted for the bid `bid_key` and returns the
    /// bits this call set: reports count a bid's win and its impression
    /// once, on whichever notice sets the bit first (see
    /// `ledger::record::Record::counts`). Not bounded by the dedup set's
    /// capacity (one small entry per counted bid, forgotten with the
    /// claims).
    fn count_once(&self, bid_key: u64, flags: u8, at: Timestamp) -> Pending<'_, u8>;
    /// Marks `flags` counted for a bid restored from the billing log
    /// (local, like [`SharedState::claim_restored`]).
    fn count_restored(&self, bid_key: u64, flags: u8, at: Timestamp);
    /// Clears bits [`SharedState::count_once`] set for a record that could
    /// not be written, so that a retry counts.
    fn uncount(&self, bid_key: u64, flags: u8) -> Pending<'_, ()>;
    /// Forgets claims (and counted bits) made before `horizon`.
    fn forget_claims_before(&self, horizon: Timestamp);
}

/// One node on its own: claims in a compact table (bounded), the whole
/// budget granted, nothing to publish.
pub struct Embedded {
    claims: Table<Claim>,
    /// Bid → (when first counted, counted bits), for reports.
    counted: Table<(i64, u8)>,
    /// Most claims held.
    max_claims: usize,
    /// Claims refused at the bound.
    refused: std::sync::atomic::AtomicU64,
}

/// Default bound on dedup claims.
pub const DEFAULT_MAX_CLAIMS: usize = crate::settings::DEFAULT_MAX_DEDUP_ENTRIES;

impl Default for Embedded {
    fn default() -> Self {
        Embedded::with_limit(DEFAULT_MAX_CLAIMS)
    }
}

/// The flags of a packed claim, in the top bits of its first word (the
/// time, in microseconds, takes the 61 below them).
const DURABLE: u64 = 1 << 63;
const FILTERED: u64 = 1 << 62;
const CLEARING: u64 = 1 << 61;

/// A claim in two words: the time with the flags, and the clearing price.
impl Compact for Claim {
    type Packed = [u64; 2];

    fn pack(self) -> [u64; 2] {
        let flags = (if self.durable { DURABLE } else { 0 })
            | (if self.filtered { FILTERED } else { 0 })
            | (if self.clearing.is_some() { CLEARING } else { 0 });
        [
            (self.at_micros as u64 & (CLEARING - 1)) | flags,
            self.clearing.unwrap_or(0) as u64,
        ]
    }

    fn unpack([at, clearing]: [u64; 2]) -> Claim {
        Claim {
            // Sign-extended from its 61 bits.
            at_micros: ((at << 3) as i64) >> 3,
            clearing: (at & CLEARING != 0).then_some(clearing as i64),
            durable: at & DURABLE != 0,
            filtered: at & FILTERED != 0,
        }
    }
}

impl Embedded {
    /// An embedded state holding at most `max_claims` dedup claims.
    pub fn with_limit(max_claims: usize) -> Embedded {
        Embedded {
            claims: Table::default(),
            counted: Table::default(),
            max_claims,
            refused: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Claims `key` here.
    pub fn claim_here(&self, key: u64, claim: Claim) -> ClaimOutcome {
        match self.claims.insert_new(key, claim, self.max_claims) {
            Insert::New => ClaimOutcome::Claimed,
            Insert::Held(_) => ClaimOutcome::Taken,
            Insert::Full => {
                self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ClaimOutcome::Full
            }
        }
    }

    /// Holds `claim` on `key` unless one is held (never refused).
    pub fn hold(&self, key: u64, claim: Claim) {
        self.claims.insert_new(key, claim, usize::MAX);
    }

    /// The dedup set's size.
    pub fn stats(&self) -> DedupStats {
        let held = self.claims.len();
        DedupStats {
            held,
            at_capacity: held >= self.max_claims,
            refused: self.refused.load(std::sync::atomic::Ordering::Relaxed),
            bytes: self.claims.allocated_bytes() + self.counted.allocated_bytes(),
        }
    }

    /// Gives up the claim on `key` here.
    pub fn unclaim_here(&self, key: u64) {
        self.claims.remove(key);
    }

    /// Marks the claim on `key` durable here.
    pub fn confirm_here(&self, key: u64, filtered: bool) {
        self.claims.update(key, |claim| {
            claim.map(|claim| Claim {
                durable: true,
                filtered,
                ..claim
            })
        });
    }

    /// The claim on `key` held here.
    pub fn claimed_here(&self, key: u64) -> Option<Claim> {
        self.claims.get(key)
    }

    /// [`SharedState::count_once`] here.
    pub fn count_here(&self, bid_key: u64, flags: u8, at: Timestamp) -> u8 {
        if flags == 0 {
            return 0;
        }
        let at = at.as_microsecond();
        let (before, after) = self.counted.update(bid_key, |entry| {
            let (first, bits) = entry.unwrap_or((at, 0));
            Some((first, bits | flags))
        });
        let old = before.map_or(0, |(_, bits)| bits);
        let new = after.map_or(0, |(_, bits)| bits);
        (new & !old) & flags
    }

    /// The bits counted here for the bid `bid_key`.
    pub fn counted_here(&self, bid_key: u64) -> u8 {
        self.counted.get(bid_key).map_or(0, |(_, bits)| bits)
    }

    /// [`SharedState::uncount`] here.
    pub fn uncount_here(&self, bid_key: u64, flags: u8) {
        self.counted.update(bid_key, |entry| match entry {
            Some((first, bits)) if bits & !flags != 0 => Some((first, bits & !flags)),
            _ => None,
        });
    }

    /// Forgets claims (and counted bits) made before `horizon`.
    pub fn forget_before(&self, horizon: Timestamp) {
        let horizon = horizon.as_microsecond();
        self.claims.retain(|claim| claim.at_micros >= horizon);
        self.counted.retain(|(first, _)| first >= horizon);
    }
}

impl SharedState for Embedded {
    fn claim(&self, key: u64, claim: Claim) -> Pending<'_, ClaimOutcome> {
        ready(self.claim_here(key, claim))
    }

    fn claim_restored(&self, key: u64, claim: Claim) {
        self.hold(key, claim);
    }

    fn dedup_stats(&self) -> DedupStats {
        self.stats()
    }

    fn unclaim(&self, key: u64) -> Pending<'_, ()> {
        self.unclaim_here(key);
        ready(())
    }

    fn confirm(&self, key: u64, filtered: bool) -> Pending<'_, ()> {
        self.confirm_here(key, filtered);
        ready(())
    }

    fn claimed(&self, key: u64) -> Pending<'_, Option<Claim>> {
        ready(self.claimed_here(key))
    }

    fn count_once(&self, bid_key: u64, flags: u8, at: Timestamp) -> Pending<'_, u8> {
        ready(self.count_here(bid_key, flags, at))
    }

    fn count_restored(&self, bid_key: u64, flags: u8, at: Timestamp) {
        self.count_here(bid_key, flags, at);
    }

    fn uncount(&self, bid_key: u64, flags: u8) -> Pending<'_, ()> {
        self.uncount_here(bid_key, flags);
        ready(())
    }

    fn forget_claims_before(&self, horizon: Timestamp) {
        self.forget_before(horizon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_claimed_once_until_given_up_or_forgotten() {
        let shared = Embedded::default();
        let claim = Claim {
            at_micros: 1_000_000,
            clearing: Some(5),
            durable: false,
            filtered: false,
        };
        assert_eq!(shared.claim_here(1, claim), ClaimOutcome::Claimed);
        assert_eq!(shared.claim_here(1, claim), ClaimOutcome::Taken, "a duplicate");
        assert_eq!(shared.claimed_here(1), Some(claim));
        shared.confirm_here(1, false);
        assert_eq!(shared.claimed_here(1), Some(Claim { durable: true, ..claim }));
        shared.unclaim_here(1);
        assert_eq!(
            shared.claim_here(1, claim),
            ClaimOutcome::Claimed,
            "given up, claimable again"
        );
        shared.forget_before(Timestamp::from_second(1).unwrap());
        assert!(shared.claimed_here(1).is_some(), "not older than the horizon");
        shared.forget_before(Timestamp::from_microsecond(1_000_001).unwrap());
        assert_eq!(shared.claimed_here(1), None);
    }

    #[test]
    fn a_claim_packs_to_two_words_and_back() {
        for claim in [
            Claim {
                at_micros: 1_780_000_000_123_456,
                clearing: Some(2_500_000),
                durable: true,
                filtered: false,
            },
            Claim {
                at_micros: 1,
                clearing: Some(0),
                durable: false,
                filtered: true,
            },
            Claim {
                at_micros: -5,
                clearing: None,
                durable: true,
                filtered: true,
            },
            Claim {
                at_micros: 0,
                clearing: Some(-7),
                durable: false,
                filtered: false,
            },
        ] {
            assert_eq!(Claim::unpack(claim.pack()), claim);
        }
    }

    #[test]
    fn counted_bits_are_set_once_and_cleared_whole() {
        let shared = Embedded::default();
        let at = Timestamp::from_second(1_000).unwrap();
        assert_eq!(shared.count_here(9, 0, at), 0);
        assert_eq!(shared.counted.len(), 0, "no bits: no entry");
        assert_eq!(shared.count_here(9, 0b01, at), 0b01);
        assert_eq!(shared.count_here(9, 0b11, at), 0b10, "only the bit not yet set");
        assert_eq!(shared.count_here(9, 0b01, at), 0);
        shared.uncount_here(9, 0b01);
        assert_eq!(shared.counted_here(9), 0b10);
        shared.uncount_here(9, 0b10);
        assert_eq!(
            (shared.counted_here(9), shared.counted.len()),
            (0, 0),
            "nothing left: removed"
        );
        shared.count_here(9, 0b01, at);
        shared.forget_before(Timestamp::from_second(1_000).unwrap());
        assert_eq!(shared.counted_here(9), 0b01, "not older than the horizon");
        shared.forget_before(Timestamp::from_second(1_001).unwrap());
        assert_eq!(shared.counted_here(9), 0);
    }

    /// Issue 17, item 18: the dedup map was bounded by time only.
    #[test]
    fn at_its_bound_new_claims_are_refused_but_duplicates_recognised() {
        let shared = Embedded::with_limit(2);
        let claim = Claim {
            at_micros: 1,
            clearing: None,
            durable: true,
            filtered: false,
        };
        assert_eq!(shared.claim_here(1, claim), ClaimOutcome::Claimed);
        assert_eq!(shared.claim_here(2, claim), ClaimOutcome::Claimed);
        assert_eq!(shared.claim_here(3, claim), ClaimOutcome::Full);
        assert_eq!(
            shared.claim_here(1, claim),
            ClaimOutcome::Taken,
            "a duplicate is still a duplicate"
        );
        shared.hold(4, claim);
        let stats = shared.stats();
        assert_eq!(
            (stats.held, stats.at_capacity, stats.refused),
            (3, true, 1),
            "{stats:?}"
        );
        // Three claims in (at most) three shards' tables of 4 slots: a key
        // and two words, and a control byte, each.
        assert!(stats.bytes > 0 && stats.bytes <= 3 * 4 * 25, "{stats:?}");
    }
}
