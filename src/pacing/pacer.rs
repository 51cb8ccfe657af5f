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
//!
//! **Pacing by the bid** (`steer_bid`: learned shading, campaigns charged
//! per impression): a campaign whose budget binds is better off bidding
//! lower on every opportunity than bidding its full value on a random few —
//! it then buys the cheapest impressions of the day instead of a sample of
//! all of them (for a budget-bound bidder, value / (1 + λ) is the bid that
//! buys the most value for the budget). So the controller first moves a
//! multiplier on the value the shading curve sees ([`Pacer::bid_ppm`],
//! [`BID_MIN_PPM`]–[`BID_MAX_PPM`]), once per [`BID_WINDOW_SECS`], by how the
//! window's spend compares with the plan (the budget left, spread over the
//! traffic left); the throttle falls only once the multiplier is at its
//! lowest (or the spend runs far ahead), and rises first when behind. Above
//! 1 the multiplier raises a shaded first-price bid towards the value (a
//! curve that prices the campaign too low to spend); the bid never exceeds
//! the value. Per-click charged campaigns keep the throttle alone: 40
//! clicks a day give a window a click or none, too lumpy to steer a price
//! by.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use crate::money::Micros;

const FULL: u32 = 1_000_000;
/// The lowest throttle: one bid per million opportunities keeps the
/// controller informed.
const FLOOR: u32 = 1;
/// The lowest bid multiplier: a tenth of the value.
pub const BID_MIN_PPM: u32 = 100_000;
/// The highest bid multiplier: the shading curve sees three times the value
/// (the bid itself stays at most the value).
pub const BID_MAX_PPM: u32 = 3_000_000;
/// Seconds between two moves of the bid multiplier: long enough for a
/// window to hold tens of wins at a small campaign's rate, short enough for
/// an hour to hold twelve.
pub const BID_WINDOW_SECS: i64 = 300;
/// The most the multiplier moves in one window, either way (×1.25, ÷1.25).
const BID_STEP: f64 = 1.25;

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
    /// Multiplier (ppm) on the value the shading curve sees; [`FULL`]
    /// unless the bid is steered.
    bid_ppm: AtomicU32,
    /// The bid multiplier's window: its start (local second of day) and
    /// the spend then; a start of -1 until the first step of the pacer's
    /// first day (see [`Pacer::steer_bid`]).
    window: [AtomicI64; 2],
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            throttle: AtomicU32::new(FULL),
            today: Default::default(),
            curve: Default::default(),
            day: AtomicI64::new(i64::MIN),
            target_ppm: AtomicU32::new(0),
            bid_ppm: AtomicU32::new(FULL),
            window: [AtomicI64::new(-1), AtomicI64::new(0)],
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
    /// Multiplier on the value the shading curve sees (1 unless the bid is
    /// steered: see the module's docs).
    pub bid_multiplier: f64,
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

    /// Bid path: the multiplier (ppm) on the value the shading curve sees.
    pub fn bid_ppm(&self) -> u32 {
        self.bid_ppm.load(Ordering::Relaxed)
    }

    /// The throttle and today's target, for the admin API.
    pub fn view(&self) -> PacingView {
        PacingView {
            throttle: self.throttle.load(Ordering::Relaxed) as f64 / FULL as f64,
            target_fraction: self.target_ppm.load(Ordering::Relaxed) as f64 / FULL as f64,
            bid_multiplier: self.bid_ppm() as f64 / FULL as f64,
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
        self.window[0].store(0, Ordering::Relaxed);
        self.window[1].store(0, Ordering::Relaxed);
        for hour in 0..24 {
            let seen = self.today[hour].swap(0, Ordering::AcqRel);
            let old = self.curve[hour].load(Ordering::Relaxed);
            let learned = if old == 0 { seen } else { (old + seen) / 2 };
            self.curve[hour].store(learned, Ordering::Relaxed);
        }
    }

    /// One controller step (every second): compare spend with the target
    /// and scale the throttle and, when `steer_bid`, the bid multiplier
    /// (see the module's docs).
    pub fn control(
        &self,
        spent: Micros,
        daily_budget: Micros,
        (local_day, second_of_day): (i64, i64),
        steer_bid: bool,
    ) {
        self.roll(local_day);
        if daily_budget.0 <= 0 {
            return;
        }
        let target = self.target_fraction(second_of_day);
        self.target_ppm.store(target, Ordering::Relaxed);
        if steer_bid {
            self.steer_bid(spent, daily_budget, second_of_day);
        } else {
            self.bid_ppm.store(FULL, Ordering::Relaxed);
        }
        let target_spend = daily_budget.0 as f64 * target as f64 / FULL as f64;
        let throttle = self.throttle.load(Ordering::Relaxed) as f64;
        let ahead = spent.0 as f64 - target_spend;
        // A dead band of 0.2 % of the budget keeps the throttle steady.
        let band = daily_budget.0 as f64 / 500.0;
        // A steered bid is lowered before the throttle, unless far ahead.
        let bid_can_fall = steer_bid && self.bid_ppm() > BID_MIN_PPM && ahead < 5.0 * band;
        let next = if ahead > band && !bid_can_fall {
            throttle * 0.8
        } else if ahead < -band {
            throttle * 1.25 + 1.0
        } else {
            throttle
        };
        self.throttle.store((next as u32).clamp(FLOOR, FULL), Ordering::Relaxed);
    }

    /// Moves the bid multiplier once a window: by the square root of the
    /// window's planned spend over its actual spend (at most [`BID_STEP`]
    /// either way), where the plan spreads what is left of the budget over
    /// what is left of the day's traffic. It rises only once the throttle
    /// is full.
    fn steer_bid(&self, spent: Micros, daily_budget: Micros, second_of_day: i64) {
        let [start, spent_then] = [&self.window[0], &self.window[1]].map(|w| w.load(Ordering::Relaxed));
        if start < 0 {
            // The first step of a pacer that starts mid-day (a new campaign,
            // a restart): the first window starts now, at today's spend, so
            // the part of the day before it is not taken for under-delivery
            // (a new campaign would otherwise raise its bid at once).
            self.window[0].store(second_of_day - second_of_day % BID_WINDOW_SECS, Ordering::Relaxed);
            self.window[1].store(spent.0, Ordering::Relaxed);
            return;
        }
        if second_of_day - start < BID_WINDOW_SECS {
            return;
        }
        self.window[0].store(second_of_day, Ordering::Relaxed);
        self.window[1].store(spent.0, Ordering::Relaxed);
        let (done_then, done_now) = (
            self.target_fraction(start) as f64 / FULL as f64,
            self.target_fraction(second_of_day) as f64 / FULL as f64,
        );
        let left = (daily_budget.0 - spent_then).max(0) as f64;
        let planned = left * (done_now - done_then) / (1.0 - done_then).max(1e-6);
        let actual = (spent.0 - spent_then).max(0) as f64;
        // A thousandth of the budget keeps an empty window from dividing by zero.
        let epsilon = daily_budget.0 as f64 / 1000.0;
        let step = ((planned + epsilon) / (actual + epsilon))
            .sqrt()
            .clamp(1.0 / BID_STEP, BID_STEP);
        if step > 1.0 && self.throttle.load(Ordering::Relaxed) < FULL {
            return;
        }
        let bid = (self.bid_ppm() as f64 * step) as u32;
        self.bid_ppm
            .store(bid.clamp(BID_MIN_PPM, BID_MAX_PPM), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_follows_the_learned_curve() {
        let pacer = Pacer::default();
        assert_eq!(pacer.target_fraction(12 * 3600), FULL / 2, "flat before any history");
        pacer.control(Micros(0), Micros(100), (1, 0), false);
        // A day with all traffic in the evening.
        for _ in 0..100 {
            pacer.admit(20, 0);
        }
        pacer.control(Micros(0), Micros(100), (2, 0), false);
        assert_eq!(pacer.target_fraction(12 * 3600), 0);
        assert_eq!(pacer.target_fraction(21 * 3600), FULL);
    }

    /// A campaign that starts mid-day does not take the hours before it
    /// for under-delivery: its bid moves only with what it spends after.
    #[test]
    fn a_pacer_started_mid_day_does_not_raise_its_bid_at_once() {
        let pacer = Pacer::default();
        let budget = Micros(1_000_000);
        pacer.control(Micros(0), budget, (1, 12 * 3600), true);
        pacer.control(Micros(0), budget, (1, 12 * 3600 + BID_WINDOW_SECS - 1), true);
        assert_eq!(pacer.bid_ppm(), FULL, "nothing planned yet for this pacer");
        // A window that spent twice its plan (the budget left over the half
        // day left, flat traffic) lowers the bid.
        let planned = budget.0 * BID_WINDOW_SECS / (12 * 3600);
        pacer.control(Micros(2 * planned), budget, (1, 12 * 3600 + BID_WINDOW_SECS), true);
        assert!(pacer.bid_ppm() < FULL, "{}", pacer.bid_ppm());
    }

    #[test]
    fn the_throttle_falls_when_ahead_and_rises_when_behind() {
        let pacer = Pacer::default();
        let start = pacer.throttle.load(Ordering::Relaxed);
        pacer.control(Micros(90), Micros(100), (1, 6 * 3600), false);
        assert!(pacer.throttle.load(Ordering::Relaxed) < start);
        let low = pacer.throttle.load(Ordering::Relaxed);
        pacer.control(Micros(0), Micros(100), (1, 12 * 3600), false);
        assert!(pacer.throttle.load(Ordering::Relaxed) > low);
    }
}
