//! Today's spend and outstanding bids against the daily budget.
//!
//! Spend is counted when an impression (or a CPC click) is billed. Between
//! a bid and its billing notice, the bid's cost is held as *outstanding*:
//! a campaign may bid only while `spent + outstanding` is under the daily
//! budget, and each bid reserves its cost atomically, so concurrent bids
//! cannot push spend past the budget by more than one impression's price.
//! A reservation is released by the bid's billing notice, or expires after
//! [`RESERVATION_MINUTES`] (lost auctions send no notice): reservations are
//! kept in per-minute buckets that a sweeper drains.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::money::Micros;

/// How long an unanswered bid holds budget.
pub const RESERVATION_MINUTES: i64 = 10;
/// Ring of per-minute buckets; longer than the reservation window so a
/// bucket is always drained before it is reused.
const BUCKETS: usize = 16;

/// Spend for the current local day and the outstanding reservations, in
/// micros. The day rolls lazily: the first caller on a new day zeroes the
/// spend (reservations carry over: those bids are still in flight).
#[derive(Debug, Default)]
pub struct DailySpend {
    day: AtomicI64,
    spent: AtomicI64,
    outstanding: AtomicI64,
    bucket_minute: [AtomicI64; BUCKETS],
    bucket_amount: [AtomicI64; BUCKETS],
}

impl DailySpend {
    /// Moves to `today` if it is later than the current day. False when
    /// `today` is an earlier day (its spend no longer counts).
    fn roll(&self, today: i64) -> bool {
        let day = self.day.load(Ordering::Acquire);
        if today > day
            && self
                .day
                .compare_exchange(day, today, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.spent.store(0, Ordering::Release);
        }
        today >= self.day.load(Ordering::Acquire)
    }

    /// Spend so far on `today`.
    pub fn spent(&self, today: i64) -> Micros {
        if !self.roll(today) {
            return Micros::ZERO;
        }
        Micros(self.spent.load(Ordering::Acquire))
    }

    /// Reserved for bids not yet billed.
    pub fn outstanding(&self) -> Micros {
        Micros(self.outstanding.load(Ordering::Acquire).max(0))
    }

    /// Records spend on `day` (ignored for a day already past).
    pub fn add(&self, day: i64, amount: Micros) {
        if self.roll(day) {
            self.spent.fetch_add(amount.0, Ordering::AcqRel);
        }
    }

    /// True while today's spend plus outstanding bids is under the budget.
    pub fn has_budget(&self, today: i64, daily_budget: Micros) -> bool {
        self.spent(today).saturating_add(self.outstanding()) < daily_budget
    }

    /// Reserves `cost` for a bid made in `minute` (Unix minutes), if the
    /// budget still has room before it: at most one cost goes over.
    pub fn try_reserve(&self, today: i64, daily_budget: Micros, cost: Micros, minute: i64) -> bool {
        let spent = self.spent(today);
        let before = self.outstanding.fetch_add(cost.0, Ordering::AcqRel);
        if spent.0.saturating_add(before.max(0)) >= daily_budget.0 {
            self.outstanding.fetch_sub(cost.0, Ordering::AcqRel);
            return false;
        }
        let slot = minute.rem_euclid(BUCKETS as i64) as usize;
        let stamp = self.bucket_minute[slot].load(Ordering::Acquire);
        if stamp != minute {
            // A stale bucket was drained by the sweeper long ago.
            let _ = self.bucket_minute[slot].compare_exchange(stamp, minute, Ordering::AcqRel, Ordering::Acquire);
        }
        self.bucket_amount[slot].fetch_add(cost.0, Ordering::AcqRel);
        true
    }

    /// Releases a reservation made in `minute`, unless it already expired.
    pub fn release(&self, cost: Micros, minute: i64, now_minute: i64) {
        if now_minute - minute >= RESERVATION_MINUTES {
            return;
        }
        let slot = minute.rem_euclid(BUCKETS as i64) as usize;
        if self.bucket_minute[slot].load(Ordering::Acquire) == minute {
            self.bucket_amount[slot].fetch_sub(cost.0, Ordering::AcqRel);
            self.outstanding.fetch_sub(cost.0, Ordering::AcqRel);
        }
    }

    /// Drains buckets older than the reservation window.
    pub fn expire(&self, now_minute: i64) {
        for slot in 0..BUCKETS {
            let minute = self.bucket_minute[slot].load(Ordering::Acquire);
            if now_minute - minute >= RESERVATION_MINUTES {
                let amount = self.bucket_amount[slot].swap(0, Ordering::AcqRel);
                if amount != 0 {
                    self.outstanding.fetch_sub(amount, Ordering::AcqRel);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::local_day;
    use jiff::Timestamp;
    use jiff::tz::TimeZone;

    #[test]
    fn resets_at_local_midnight() {
        let tz = TimeZone::get("America/New_York").unwrap();
        let before: Timestamp = "2026-03-08T04:59:00Z".parse().unwrap(); // 23:59 EST
        let after: Timestamp = "2026-03-08T05:00:00Z".parse().unwrap(); // 00:00 EST
        let (d1, d2) = (local_day(before, &tz), local_day(after, &tz));
        assert_eq!(d2, d1 + 1);
        let spend = DailySpend::default();
        spend.add(d1, Micros(700));
        assert_eq!(spend.spent(d1), Micros(700));
        assert!(!spend.has_budget(d1, Micros(700)));
        assert_eq!(spend.spent(d2), Micros(0));
        assert!(spend.has_budget(d2, Micros(700)));
        spend.add(d1, Micros(5));
        assert_eq!(
            spend.spent(d2),
            Micros(0),
            "a late charge for yesterday does not count today"
        );
    }

    #[test]
    fn reservations_hold_budget_until_released_or_expired() {
        let spend = DailySpend::default();
        let budget = Micros(1000);
        assert!(spend.try_reserve(1, budget, Micros(400), 100));
        assert!(spend.try_reserve(1, budget, Micros(400), 100));
        assert!(
            spend.try_reserve(1, budget, Micros(400), 101),
            "800 < 1000: one more, going over by at most one"
        );
        assert!(!spend.try_reserve(1, budget, Micros(400), 101));
        assert_eq!(spend.outstanding(), Micros(1200));
        spend.release(Micros(400), 100, 102);
        spend.add(1, Micros(300));
        assert_eq!(spend.outstanding(), Micros(800));
        assert!(!spend.has_budget(1, budget));
        spend.expire(100 + RESERVATION_MINUTES);
        assert_eq!(spend.outstanding(), Micros(400), "minute 100 expired");
        spend.release(Micros(400), 100, 100 + RESERVATION_MINUTES);
        assert_eq!(
            spend.outstanding(),
            Micros(400),
            "an expired reservation is not released twice"
        );
        spend.expire(101 + RESERVATION_MINUTES);
        assert_eq!(spend.outstanding(), Micros::ZERO);
    }
}
