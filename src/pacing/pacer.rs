//! Even pacing: spread the daily budget over the day along the traffic
//! curve.
//!
//! Each `even` campaign bids on a fraction of its opportunities — the
//! throttle, in parts per million — and a controller steers the throttle
//! from how far today's spend is ahead of or behind the target: the budget
//! times the share of the day's traffic seen so far. The traffic curve is
//! learned from the campaign's own opportunities per local hour (smoothed
//! over days; flat until a day has been seen), so the spend follows the
//! traffic, not the clock. The bid path reads one atomic and draws one
//! random number.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use crate::money::Micros;

const FULL: u32 = 1_000_000;
/// The lowest throttle: one bid per million opportunities keeps the
/// controller informed.
const FLOOR: u32 = 1;

/// Pacing state of one campaign; survives config reloads.
#[derive(Debug)]
pub struct Pacer {
    /// Probability of bidding on an opportunity, in ppm.
    throttle: AtomicU32,
    /// Opportunities per local hour today.
    today: [AtomicU64; 24],
    /// The learned traffic curve (per local hour, smoothed over days).
    curve: [AtomicU64; 24],
    day: AtomicI64,
    /// The last target spend fraction (ppm), for the admin API.
    target_ppm: AtomicU32,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            throttle: AtomicU32::new(FULL),
            today: Default::default(),
            curve: Default::default(),
            day: AtomicI64::new(i64::MIN),
            target_ppm: AtomicU32::new(0),
        }
    }
}

/// The pacing state as the admin API shows it.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct PacingView {
    /// Probability of bidding on an opportunity.
    pub throttle: f64,
    /// Share of the daily budget the curve says should be spent by now.
    pub target_fraction: f64,
}

impl Pacer {
    /// Bid path: counts an opportunity and decides whether to take it.
    /// `draw` is uniform in `0..1_000_000`.
    pub fn admit(&self, local_hour: usize, draw: u32) -> bool {
        self.today[local_hour % 24].fetch_add(1, Ordering::Relaxed);
        draw < self.throttle.load(Ordering::Relaxed)
    }

    /// Opportunities counted today (by [`Pacer::admit`]), over all hours.
    pub fn opportunities_today(&self) -> u64 {
        self.today.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }

    /// The throttle and today's target, for the admin API.
    pub fn view(&self) -> PacingView {
        PacingView {
            throttle: self.throttle.load(Ordering::Relaxed) as f64 / FULL as f64,
            target_fraction: self.target_ppm.load(Ordering::Relaxed) as f64 / FULL as f64,
        }
    }

    /// The target curve: the share of the daily budget (0–1) the pacer
    /// aims to have spent by the end of each local hour (for the console's
    /// pacing chart).
    pub fn target_by_hour(&self) -> [f64; 24] {
        std::array::from_fn(|h| match h {
            23 => 1.0,
            h => self.target_fraction((h as i64 + 1) * 3600) as f64 / FULL as f64,
        })
    }

    /// Share of the day's traffic before `second_of_day` (local), in ppm.
    fn target_fraction(&self, second_of_day: i64) -> u32 {
        let curve: Vec<u64> = self.curve.iter().map(|w| w.load(Ordering::Relaxed)).collect();
        let flat = curve.iter().all(|&w| w == 0);
        let weight = |h: usize| if flat { 1.0 } else { curve[h] as f64 };
        let total: f64 = (0..24).map(weight).sum();
        let hour = (second_of_day / 3600).clamp(0, 23) as usize;
        let within = (second_of_day % 3600) as f64 / 3600.0;
        let before: f64 = (0..hour).map(weight).sum::<f64>() + weight(hour) * within;
        ((before / total).clamp(0.0, 1.0) * FULL as f64) as u32
    }

    /// Moves to a new local day: folds today's opportunities into the curve.
    fn roll(&self, local_day: i64) {
        let day = self.day.load(Ordering::Acquire);
        if day == local_day
            || self
                .day
                .compare_exchange(day, local_day, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        if day == i64::MIN {
            return;
        }
        for hour in 0..24 {
            let seen = self.today[hour].swap(0, Ordering::AcqRel);
            let old = self.curve[hour].load(Ordering::Relaxed);
            let learned = if old == 0 { seen } else { (old + seen) / 2 };
            self.curve[hour].store(learned, Ordering::Relaxed);
        }
    }

    /// One controller step (every second): compare spend with the target
    /// and scale the throttle.
    pub fn control(&self, spent: Micros, daily_budget: Micros, local_day: i64, second_of_day: i64) {
        self.roll(local_day);
        if daily_budget.0 <= 0 {
            return;
        }
        let target = self.target_fraction(second_of_day);
        self.target_ppm.store(target, Ordering::Relaxed);
        let target_spend = daily_budget.0 as f64 * target as f64 / FULL as f64;
        let throttle = self.throttle.load(Ordering::Relaxed) as f64;
        let ahead = spent.0 as f64 - target_spend;
        // A dead band of 0.2 % of the budget keeps the throttle steady.
        let band = daily_budget.0 as f64 / 500.0;
        let next = if ahead > band {
            throttle * 0.8
        } else if ahead < -band {
            throttle * 1.25 + 1.0
        } else {
            throttle
        };
        self.throttle.store((next as u32).clamp(FLOOR, FULL), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_follows_the_learned_curve() {
        let pacer = Pacer::default();
        assert_eq!(pacer.target_fraction(12 * 3600), FULL / 2, "flat before any history");
        pacer.control(Micros(0), Micros(100), 1, 0);
        // A day with all traffic in the evening.
        for _ in 0..100 {
            pacer.admit(20, 0);
        }
        pacer.control(Micros(0), Micros(100), 2, 0);
        assert_eq!(pacer.target_fraction(12 * 3600), 0);
        assert_eq!(pacer.target_fraction(21 * 3600), FULL);
    }

    #[test]
    fn the_throttle_falls_when_ahead_and_rises_when_behind() {
        let pacer = Pacer::default();
        let start = pacer.throttle.load(Ordering::Relaxed);
        pacer.control(Micros(90), Micros(100), 1, 6 * 3600);
        assert!(pacer.throttle.load(Ordering::Relaxed) < start);
        let low = pacer.throttle.load(Ordering::Relaxed);
        pacer.control(Micros(0), Micros(100), 1, 12 * 3600);
        assert!(pacer.throttle.load(Ordering::Relaxed) > low);
    }
}
