//! Loss notices: what a verified `lurl` call carries, and the bids whose
//! budget reservations have been given back early.
//!
//! A loss notice gives its bid's reservation back at once, instead of at
//! the end of the notice window; a billing notice gives it back too. Each
//! reservation must be given back once only, whichever comes first (an
//! exchange that sends both for one bid contradicts itself: the billing
//! notice is still charged, but the reservation is not released twice).
//! [`Settled`] remembers, per bid, that its reservation was given back,
//! until the reservation would have expired anyway (at least a minute, so
//! that an immediate duplicate of a late loss notice is still recognised).
//! It is bounded: at the bound a loss notice releases nothing (its
//! reservation expires with its window, as before loss notices existed)
//! and a billing notice releases as it always did.

use crate::live::dedup::{Insert, Table};
use crate::money::Micros;
use crate::openrtb::LossReason;

/// What a verified loss notice says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossSignal {
    /// `${AUCTION_LOSS}`, when readable.
    pub reason: Option<LossReason>,
    /// `${AUCTION_MIN_TO_WIN}`, when the exchange sent a readable one.
    pub min_to_win: Option<Micros>,
    /// The exchange sent a minimum bid to win that could not be read: it
    /// is ignored, and counted.
    pub min_to_win_malformed: bool,
}

/// A loss notice taken (the first for its bid), for the metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LossTaken {
    /// The exchange the bid went to.
    pub exchange: String,
    /// The loss reason, when readable.
    pub reason: Option<LossReason>,
    /// The minimum bid to win was sent but unreadable.
    pub min_to_win_malformed: bool,
}

/// What came of settling a bid's reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// This call settles it: release the reservation.
    First,
    /// Already settled (a duplicate, or the other notice came first).
    Again,
    /// The set is at its bound: whether it was settled is unknown.
    Full,
}

/// Bids whose reservation has been given back, each until the minute its
/// reservation would have expired. Kept compactly (one per won or lost
/// bid of the last hour: `live::dedup`); swept once a minute.
pub struct Settled {
    bids: Table<i64>,
    max: usize,
}

impl Settled {
    /// A set holding at most `max` bids.
    pub fn with_limit(max: usize) -> Settled {
        Settled {
            bids: Table::default(),
            max,
        }
    }

    /// Settles `bid_key`'s reservation, remembered until `until_minute`
    /// (Unix minutes) and at least a minute past `now_minute`.
    pub fn settle(&self, bid_key: u64, until_minute: i64, now_minute: i64) -> Settle {
        match self
            .bids
            .insert_new(bid_key, until_minute.max(now_minute + 1), self.max)
        {
            Insert::New => Settle::First,
            Insert::Held(_) => Settle::Again,
            Insert::Full => Settle::Full,
        }
    }

    /// Forgets bids whose reservations have expired by `now_minute`.
    pub fn sweep(&self, now_minute: i64) {
        self.bids.retain(|until| until > now_minute);
    }

    /// Bids remembered.
    pub fn len(&self) -> usize {
        self.bids.len()
    }

    /// True when none is remembered.
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty()
    }

    /// Bytes its table has allocated.
    pub fn allocated_bytes(&self) -> usize {
        self.bids.allocated_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reservation_settles_once_and_is_forgotten_after_it_expires() {
        let settled = Settled::with_limit(2);
        assert_eq!(settled.settle(1, 115, 100), Settle::First);
        assert_eq!(settled.settle(1, 115, 101), Settle::Again);
        assert_eq!(settled.settle(2, 90, 100), Settle::First, "expired: kept a minute");
        assert_eq!(settled.settle(3, 115, 100), Settle::Full);
        assert_eq!(settled.settle(1, 115, 102), Settle::Again, "a known bid at the bound");
        settled.sweep(101);
        assert_eq!(settled.len(), 1, "bid 2 forgotten");
        settled.sweep(115);
        assert!(settled.is_empty());
        assert_eq!(settled.settle(3, 130, 116), Settle::First);
    }
}
