//! Today's spend and outstanding bids against the daily budget.
//!
//! Spend is counted when an impression (or a CPC click) is billed. Between
//! a bid and its billing notice, the bid's cost is held as *outstanding*:
//! a campaign may bid only while `spent + outstanding` is under the daily
//! budget, and each bid reserves its cost atomically, so concurrent bids
//! cannot push spend past the budget by more than one impression's price.
//! A reservation lives exactly as long as its notice can still be charged
//! (the exchange's notice window, shortened by `imp.exp`): its billing
//! notice releases it, or it expires with the window (lost auctions send no
//! notice), and a notice after the window is not charged. Reservations are
//! kept in per-minute buckets by the minute they expire, which a sweeper
//! drains.
//!
//! A lifetime budget needs no second reservation: spend on earlier days is
//! counted too (`lifetime`), and the budget a campaign is held to today is
//! its daily budget capped by what is left of the total after those days
//! ([`DailySpend::budget_today`]). That cap stays fixed all day, so the
//! daily reservation's bound (one impression's price over) is also the
//! lifetime bound.
//!
//! In a cluster, each node may use only the share of a budget it leases
//! (`cluster::leases`): its *cap* for the day, one atomic that every check
//! here reads ([`DailySpend::capped`]; a node alone has none and pays one
//! relaxed load). The node's usage (today's spend plus its outstanding
//! reservations) stays within its cap exactly as it stays within the daily
//! budget alone: at most one impression over. Two more figures serve the
//! leases: what this node's bids spent when another node billed them
//! ([`DailySpend::settled_elsewhere`], which keeps counting against the cap
//! what no longer counts in the reservations), and the other nodes' spend
//! today, for pacing the cluster's curve ([`DailySpend::cluster_spent`]).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::campaigns::model::DayBudget;
use crate::money::Micros;
use crate::settings::MAX_NOTICE_WINDOW_MINUTES;

/// Ring of per-minute buckets, by expiry minute; longer than the longest
/// reservation, so a bucket is always drained before it is reused.
const BUCKETS: usize = MAX_NOTICE_WINDOW_MINUTES as usize + 4;

/// The minute (Unix minutes) at whose start a reservation for a notice
/// chargeable until `notice_until` (Unix seconds, exclusive) expires: the
/// first minute boundary at or after it.
pub fn expiry_minute(notice_until: i64) -> i64 {
    notice_until.div_euclid(60) + i64::from(notice_until.rem_euclid(60) != 0)
}

/// Spend for the current local day and the outstanding reservations, in
/// micros. The day rolls lazily: the first caller on a new day zeroes the
/// spend (reservations carry over: those bids are still in flight).
#[derive(Debug)]
pub struct DailySpend {
    day: AtomicI64,
    spent: AtomicI64,
    outstanding: AtomicI64,
    bucket_minute: [AtomicI64; BUCKETS],
    bucket_amount: [AtomicI64; BUCKETS],
    /// Spend on every day, today's included. Always added to before
    /// `spent` (and read after it), so that `lifetime - spent` never
    /// understates the spend of earlier days.
    lifetime: AtomicI64,
    /// The node's leased cap: [`UNCAPPED`], or the local day (low 16 bits)
    /// in the top 16 bits and the cap in micros in the low 48.
    cap: AtomicU64,
    /// Today's reservations of this node's bids settled by another node's
    /// billing notice (zeroed with `spent` when the day rolls).
    elsewhere: AtomicI64,
    /// The other nodes' spend on `others_day`, as last reported by the
    /// leases (pacing only).
    others: AtomicI64,
    others_day: AtomicI64,
}

/// No leased cap: a node alone.
pub const UNCAPPED: u64 = u64::MAX;
/// The low 48 bits of a packed cap: micros (about 281 million units).
const CAP_MASK: u64 = (1 << 48) - 1;

/// A cap packed with its local day (see `DailySpend::cap`).
fn pack_cap(day: i64, cap: Micros) -> u64 {
    ((day as u64 & 0xFFFF) << 48) | (cap.0.max(0) as u64).min(CAP_MASK)
}

impl Default for DailySpend {
    fn default() -> Self {
        DailySpend {
            day: AtomicI64::new(0),
            spent: AtomicI64::new(0),
            outstanding: AtomicI64::new(0),
            bucket_minute: std::array::from_fn(|_| AtomicI64::new(0)),
            bucket_amount: std::array::from_fn(|_| AtomicI64::new(0)),
            lifetime: AtomicI64::new(0),
            cap: AtomicU64::new(UNCAPPED),
            elsewhere: AtomicI64::new(0),
            others: AtomicI64::new(0),
            others_day: AtomicI64::new(i64::MIN),
        }
    }
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
            self.elsewhere.store(0, Ordering::Release);
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

    /// Records spend on `day` (ignored by today's spend for a day already
    /// past; counted in the lifetime spend either way).
    pub fn add(&self, day: i64, amount: Micros) {
        // Lifetime first when adding, last when giving back (a refund), so
        // that `lifetime - spent` never dips below the earlier days' spend.
        if amount.0 >= 0 {
            self.lifetime.fetch_add(amount.0, Ordering::AcqRel);
        }
        if self.roll(day) {
            self.spent.fetch_add(amount.0, Ordering::AcqRel);
        }
        if amount.0 < 0 {
            self.lifetime.fetch_add(amount.0, Ordering::AcqRel);
        }
    }

    /// Counts `amount` as spent on `today` if today's spend is still under
    /// `daily_budget` (atomically: of concurrent callers, at most one goes
    /// over, by at most its amount). For charges no reservation covers
    /// (CPC clicks). False, and nothing counted, once the budget is spent.
    pub fn try_spend(&self, today: i64, daily_budget: Micros, amount: Micros) -> bool {
        if !self.roll(today) {
            return false;
        }
        let daily_budget = self.capped(today, daily_budget);
        self.lifetime.fetch_add(amount.0, Ordering::AcqRel);
        let spent = self
            .spent
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |spent| {
                (spent < daily_budget.0).then(|| spent.saturating_add(amount.0))
            })
            .is_ok();
        if !spent {
            self.lifetime.fetch_sub(amount.0, Ordering::AcqRel);
        }
        spent
    }

    /// Spend on every day so far, today's included.
    pub fn lifetime_spent(&self) -> Micros {
        Micros(self.lifetime.load(Ordering::Acquire))
    }

    /// Spend on the days before `today` (never less than it was: see
    /// `lifetime`).
    pub fn spent_before(&self, today: i64) -> Micros {
        let spent = self.spent(today);
        Micros(self.lifetime.load(Ordering::Acquire).saturating_sub(spent.0))
    }

    /// Sets the lifetime spend to what the billing log holds (start-up,
    /// after today's records were replayed and before any traffic).
    pub fn restore_lifetime(&self, total: Micros) {
        self.lifetime.store(total.0, Ordering::Release);
    }

    /// What the campaign may spend on `today` under `rule`: the daily budget
    /// itself when there is no lifetime budget (no atomic read), else
    /// capped by, or derived from, what is left of it after earlier days.
    #[inline]
    pub fn budget_today(&self, today: i64, rule: &DayBudget) -> Micros {
        if rule.total.is_none() {
            return rule.daily;
        }
        rule.on(today, self.spent_before(today))
    }

    /// True while today's spend plus outstanding bids is under the budget.
    pub fn has_budget(&self, today: i64, daily_budget: Micros) -> bool {
        self.spent(today).saturating_add(self.outstanding()) < self.capped(today, daily_budget)
    }

    /// Reserves `cost` for a bid whose notice can be charged until the
    /// start of `expires` (Unix minutes), if the budget still has room
    /// before it: at most one cost goes over.
    pub fn try_reserve(&self, today: i64, daily_budget: Micros, cost: Micros, expires: i64) -> bool {
        self.try_reserve_display(today, daily_budget, cost, cost, expires)
    }

    /// [`Self::try_reserve`] for a display that counts as several
    /// impressions (`imp.qty`): `cost` is the whole display's, `unit` one
    /// impression's, and at most one `unit` goes over the budget (so the
    /// bound stays one impression's price, whatever the multiplier).
    pub fn try_reserve_display(
        &self,
        today: i64,
        daily_budget: Micros,
        cost: Micros,
        unit: Micros,
        expires: i64,
    ) -> bool {
        let daily_budget = self.capped(today, daily_budget);
        let spent = self.spent(today);
        let before = self.outstanding.fetch_add(cost.0, Ordering::AcqRel);
        let beyond_one = cost.0.saturating_sub(unit.0).max(0);
        if spent.0.saturating_add(before.max(0)).saturating_add(beyond_one) >= daily_budget.0 {
            self.outstanding.fetch_sub(cost.0, Ordering::AcqRel);
            return false;
        }
        let slot = expires.rem_euclid(BUCKETS as i64) as usize;
        let stamp = self.bucket_minute[slot].load(Ordering::Acquire);
        if stamp != expires {
            // A stale bucket was drained by the sweeper long ago.
            let _ = self.bucket_minute[slot].compare_exchange(stamp, expires, Ordering::AcqRel, Ordering::Acquire);
        }
        self.bucket_amount[slot].fetch_add(cost.0, Ordering::AcqRel);
        true
    }

    /// The budget a check on `today` holds to: `budget`, or this node's
    /// leased cap when it is lower (nothing while the cap is for another
    /// day: a new day's lease comes within a second). One relaxed load.
    #[inline]
    pub fn capped(&self, today: i64, budget: Micros) -> Micros {
        let packed = self.cap.load(Ordering::Relaxed);
        if packed == UNCAPPED {
            return budget;
        }
        if (packed >> 48) as i64 != today & 0xFFFF {
            return Micros::ZERO;
        }
        budget.min(Micros((packed & CAP_MASK) as i64))
    }

    /// Sets this node's cap for local day `day` (the leases, in the
    /// background): its usage (spend and reservations) may reach it,
    /// today's reservations settled elsewhere deducted.
    pub fn set_cap(&self, day: i64, cap: Micros) {
        let before = self.elsewhere(day);
        self.cap
            .store(pack_cap(day, cap.saturating_sub(before)), Ordering::Relaxed);
        // Settled while the cap was being set: deducted again (at worst
        // twice, the safe side).
        let after = self.elsewhere(day);
        if after != before {
            self.lower_cap(day, after.saturating_sub(before));
        }
    }

    /// The cap as it stands for `day` (reservations settled elsewhere
    /// deducted); `None` alone or for another day.
    pub fn cap(&self, day: i64) -> Option<Micros> {
        let packed = self.cap.load(Ordering::Relaxed);
        (packed != UNCAPPED && (packed >> 48) as i64 == day & 0xFFFF).then_some(Micros((packed & CAP_MASK) as i64))
    }

    /// A cap of nothing unless a cap is set already: a leased budget
    /// spends nothing before its first grant.
    pub fn cap_if_uncapped(&self) {
        let _ = self
            .cap
            .compare_exchange(UNCAPPED, 0, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Back to no cap (a node leaving its cluster; tests).
    pub fn uncap(&self) {
        self.cap.store(UNCAPPED, Ordering::Relaxed);
    }

    fn lower_cap(&self, day: i64, amount: Micros) {
        let _ = self.cap.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
            (packed != UNCAPPED && (packed >> 48) as i64 == day & 0xFFFF)
                .then(|| pack_cap(day, Micros((packed & CAP_MASK) as i64).saturating_sub(amount)))
        });
    }

    /// A reservation of this node's bid (made on `day`) that another node
    /// billed and that is given back here ([`Self::release`]): it still
    /// counts against this node's lease, or the room it frees would be
    /// spent twice (once billed there, once reserved again here).
    pub fn settled_elsewhere(&self, day: i64, amount: Micros) {
        if !self.roll(day) || amount.0 <= 0 {
            return;
        }
        self.elsewhere.fetch_add(amount.0, Ordering::AcqRel);
        self.lower_cap(day, amount);
    }

    /// Today's reservations settled by other nodes (see
    /// [`Self::settled_elsewhere`]).
    pub fn elsewhere(&self, today: i64) -> Micros {
        if !self.roll(today) {
            return Micros::ZERO;
        }
        Micros(self.elsewhere.load(Ordering::Acquire))
    }

    /// Holds `amount` as outstanding until the start of minute `expires`
    /// without checking any budget: a restarted node takes back what its
    /// previous run had in flight.
    pub fn hold(&self, amount: Micros, expires: i64) {
        if amount.0 <= 0 {
            return;
        }
        self.outstanding.fetch_add(amount.0, Ordering::AcqRel);
        let slot = expires.rem_euclid(BUCKETS as i64) as usize;
        let stamp = self.bucket_minute[slot].load(Ordering::Acquire);
        if stamp != expires {
            let _ = self.bucket_minute[slot].compare_exchange(stamp, expires, Ordering::AcqRel, Ordering::Acquire);
        }
        self.bucket_amount[slot].fetch_add(amount.0, Ordering::AcqRel);
    }

    /// Notes the other nodes' spend on `day` (the leases).
    pub fn set_others_spent(&self, day: i64, spent: Micros) {
        self.others.store(spent.0, Ordering::Relaxed);
        self.others_day.store(day, Ordering::Relaxed);
    }

    /// The cluster's spend on `today` as far as this node knows: its own
    /// and the others' as last reported (its own alone).
    pub fn cluster_spent(&self, today: i64) -> Micros {
        let others = if self.others_day.load(Ordering::Relaxed) == today {
            self.others.load(Ordering::Relaxed)
        } else {
            0
        };
        self.spent(today).saturating_add(Micros(others))
    }

    /// Releases a reservation expiring at `expires`, unless it already
    /// expired (`now_minute` is at or past it).
    pub fn release(&self, cost: Micros, expires: i64, now_minute: i64) {
        if now_minute >= expires {
            return;
        }
        let slot = expires.rem_euclid(BUCKETS as i64) as usize;
        if self.bucket_minute[slot].load(Ordering::Acquire) == expires {
            self.bucket_amount[slot].fetch_sub(cost.0, Ordering::AcqRel);
            self.outstanding.fetch_sub(cost.0, Ordering::AcqRel);
        }
    }

    /// Drains the buckets whose reservations have expired by `now_minute`.
    pub fn expire(&self, now_minute: i64) {
        for slot in 0..BUCKETS {
            let minute = self.bucket_minute[slot].load(Ordering::Acquire);
            if minute <= now_minute {
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
        // Bids at minute 100 with a 15-minute notice window expire at 115.
        assert!(spend.try_reserve(1, budget, Micros(400), 115));
        assert!(spend.try_reserve(1, budget, Micros(400), 115));
        assert!(
            spend.try_reserve(1, budget, Micros(400), 116),
            "800 < 1000: one more, going over by at most one"
        );
        assert!(!spend.try_reserve(1, budget, Micros(400), 116));
        assert_eq!(spend.outstanding(), Micros(1200));
        spend.release(Micros(400), 115, 102);
        spend.add(1, Micros(300));
        assert_eq!(spend.outstanding(), Micros(800));
        assert!(!spend.has_budget(1, budget));
        spend.expire(114);
        assert_eq!(spend.outstanding(), Micros(800), "held for the whole window");
        spend.expire(115);
        assert_eq!(spend.outstanding(), Micros(400), "minute 115 expired");
        spend.release(Micros(400), 115, 115);
        assert_eq!(
            spend.outstanding(),
            Micros(400),
            "an expired reservation is not released twice"
        );
        spend.expire(116);
        assert_eq!(spend.outstanding(), Micros::ZERO);
    }

    #[test]
    fn spending_without_a_reservation_stops_at_the_budget() {
        let spend = DailySpend::default();
        assert!(spend.try_spend(1, Micros(1000), Micros(600)));
        assert!(spend.try_spend(1, Micros(1000), Micros(600)), "600 < 1000: one more");
        assert!(!spend.try_spend(1, Micros(1000), Micros(1)));
        assert_eq!(spend.spent(1), Micros(1200), "over by at most one amount");
        assert!(spend.try_spend(2, Micros(1000), Micros(1)), "a new day");
    }

    #[test]
    fn a_reservation_expires_at_the_first_minute_boundary_after_its_window() {
        assert_eq!(expiry_minute(6_000), 100, "on a boundary: that minute");
        assert_eq!(expiry_minute(6_001), 101);
        assert_eq!(expiry_minute(6_059), 101);
        assert_eq!(expiry_minute(-1), 0);
    }

    /// Windows of any length up to the longest share the ring.
    #[test]
    fn windows_up_to_the_longest_share_the_ring() {
        let spend = DailySpend::default();
        let budget = Micros(1_000_000);
        let now = 1_000;
        assert!(spend.try_reserve(1, budget, Micros(1), now + 1));
        assert!(spend.try_reserve(1, budget, Micros(10), now + i64::from(MAX_NOTICE_WINDOW_MINUTES)));
        spend.expire(now + 1);
        assert_eq!(spend.outstanding(), Micros(10));
        spend.expire(now + i64::from(MAX_NOTICE_WINDOW_MINUTES) - 1);
        assert_eq!(spend.outstanding(), Micros(10));
        spend.expire(now + i64::from(MAX_NOTICE_WINDOW_MINUTES));
        assert_eq!(spend.outstanding(), Micros::ZERO);
    }

    /// A leased cap bounds every check like a smaller budget, for its day
    /// only; reservations settled elsewhere keep counting against it.
    #[test]
    fn a_leased_cap_bounds_reservations_for_its_day() {
        let spend = DailySpend::default();
        let budget = Micros(10_000);
        assert_eq!(spend.capped(5, budget), budget, "alone: no cap");
        spend.cap_if_uncapped();
        assert_eq!(spend.capped(5, budget), Micros::ZERO, "leased: nothing before a grant");
        assert!(!spend.try_reserve(5, budget, Micros(1), 100));
        spend.set_cap(5, Micros(3_000));
        spend.cap_if_uncapped();
        assert_eq!(spend.cap(5), Some(Micros(3_000)), "a cap set stays");
        assert!(spend.try_reserve(5, budget, Micros(2_000), 100));
        assert!(spend.try_reserve(5, budget, Micros(2_000), 100), "one over the cap");
        assert!(!spend.try_reserve(5, budget, Micros(1), 100));
        assert!(!spend.has_budget(5, budget));
        assert_eq!(
            spend.capped(6, budget),
            Micros::ZERO,
            "the next day waits for its lease"
        );
        spend.release(Micros(2_000), 100, 90);
        spend.settled_elsewhere(5, Micros(2_000));
        assert_eq!(spend.elsewhere(5), Micros(2_000));
        assert_eq!(
            spend.cap(5),
            Some(Micros(1_000)),
            "given back here, billed there: still counted"
        );
        assert!(!spend.try_reserve(5, budget, Micros(1), 100));
        spend.set_cap(5, Micros(6_000));
        assert_eq!(
            spend.cap(5),
            Some(Micros(4_000)),
            "a new grant less what was settled elsewhere"
        );
        assert!(spend.try_reserve(5, budget, Micros(1_000), 100));
        spend.set_cap(6, Micros(500));
        assert_eq!(spend.elsewhere(6), Micros::ZERO, "a new day");
        assert!(spend.try_spend(6, budget, Micros(600)), "a click: one over the cap");
        assert!(!spend.try_spend(6, budget, Micros(1)));
        spend.uncap();
        assert_eq!(spend.capped(6, budget), budget);
    }

    #[test]
    fn a_held_amount_counts_until_its_minute() {
        let spend = DailySpend::default();
        spend.hold(Micros(700), 120);
        assert_eq!(spend.outstanding(), Micros(700));
        assert!(!spend.has_budget(1, Micros(700)));
        spend.expire(119);
        assert_eq!(spend.outstanding(), Micros(700));
        spend.expire(120);
        assert_eq!(spend.outstanding(), Micros::ZERO);
        spend.set_others_spent(1, Micros(300));
        spend.add(1, Micros(100));
        assert_eq!(spend.cluster_spent(1), Micros(400));
        assert_eq!(spend.cluster_spent(2), Micros::ZERO, "others' spend of another day");
    }

    fn lifetime(total: i64) -> DayBudget {
        DayBudget {
            daily: Micros(1_000),
            total: Some(Micros(total)),
            derived_days: None,
        }
    }

    #[test]
    fn lifetime_spend_counts_every_day_and_caps_the_day_budget() {
        let spend = DailySpend::default();
        let rule = lifetime(2_500);
        spend.restore_lifetime(Micros(300));
        spend.add(1, Micros(1_000));
        assert_eq!(
            spend.budget_today(1, &rule),
            Micros(1_000),
            "2200 left, the daily budget binds"
        );
        spend.add(2, Micros(900));
        assert_eq!(spend.spent_before(2), Micros(1_300));
        assert_eq!(spend.budget_today(2, &rule), Micros(1_000));
        assert_eq!(spend.budget_today(3, &rule), Micros(300), "the total binds");
        spend.add(2, Micros(5));
        assert_eq!(
            spend.lifetime_spent(),
            Micros(2_205),
            "a late charge for a past day still counts"
        );
        assert_eq!(spend.budget_today(3, &rule), Micros(295));
        assert!(spend.try_spend(3, spend.budget_today(3, &rule), Micros(200)));
        spend.add(3, Micros(-200));
        assert_eq!(spend.lifetime_spent(), Micros(2_205), "a refund gives back");
        assert!(spend.try_spend(3, spend.budget_today(3, &rule), Micros(400)));
        assert_eq!(spend.lifetime_spent(), Micros(2_605), "one click over at most");
        assert!(!spend.try_spend(3, spend.budget_today(3, &rule), Micros(1)));
        assert_eq!(spend.lifetime_spent(), Micros(2_605), "a refused click is not counted");
        let no_total = DayBudget { total: None, ..rule };
        assert_eq!(spend.budget_today(3, &no_total), Micros(1_000));
    }

    /// 64 threads race to reserve against a lifetime budget whose earlier
    /// days left little: lifetime spend plus outstanding goes over the total
    /// by less than one impression's price.
    #[test]
    fn concurrent_reservations_overshoot_a_lifetime_budget_by_at_most_one_price() {
        let spend = std::sync::Arc::new(DailySpend::default());
        let rule = lifetime(10_000);
        spend.restore_lifetime(Micros(9_000));
        let cost = Micros(70);
        let threads: Vec<_> = (0..64)
            .map(|_| {
                let spend = spend.clone();
                std::thread::spawn(move || {
                    let mut held = 0;
                    for _ in 0..100 {
                        if spend.try_reserve(5, spend.budget_today(5, &rule), cost, 1_000) {
                            held += 1;
                        }
                    }
                    held
                })
            })
            .collect();
        let held: i64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let committed = spend.lifetime_spent().0 + spend.outstanding().0;
        assert_eq!(committed, 9_000 + held * cost.0);
        assert!(committed < 10_000 + cost.0, "{committed}");
        assert!(committed >= 10_000, "{committed}: the budget is used up");
    }
}
