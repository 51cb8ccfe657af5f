//! Today's spend against the daily budget.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::money::Micros;

/// Spend for the current local day, in micros. Reset lazily: the first
/// reader on a new day swaps the day number and zeroes the counter.
#[derive(Debug, Default)]
pub struct DailySpend {
    day: AtomicI64,
    spent: AtomicI64,
}

impl DailySpend {
    fn roll(&self, today: i64) {
        let day = self.day.load(Ordering::Acquire);
        if day != today
            && self
                .day
                .compare_exchange(day, today, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.spent.store(0, Ordering::Release);
        }
    }

    /// Spend so far on `today`.
    pub fn spent(&self, today: i64) -> Micros {
        self.roll(today);
        Micros(self.spent.load(Ordering::Acquire))
    }

    /// Records spend on `today`.
    pub fn add(&self, today: i64, amount: Micros) {
        self.roll(today);
        self.spent.fetch_add(amount.0, Ordering::AcqRel);
    }

    /// True while today's spend is under the budget: a campaign may then win
    /// one more impression, so it overshoots by at most one price.
    pub fn has_budget(&self, today: i64, daily_budget: Micros) -> bool {
        self.spent(today) < daily_budget
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
    }
}
