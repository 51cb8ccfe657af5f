//! Learned first-price bid shading: bid the price that maximises expected
//! surplus `(value − price) × P(win | price)`, with P(win | price) learned
//! per slice from what first-price bids met.
//!
//! **Slices**: exchange (the first 7; the rest share one) × placement (the
//! impression's format: banner size or medium, hashed into 8 classes) ×
//! hour of the day (UTC). A bid's slice is signed into its tracking URLs
//! (`s`), so its notices are counted where its bid was.
//!
//! **Observations**, lock-free atomics in one preallocated table: each
//! first-price bid at its price bucket (bid path); each win at the bid's
//! bucket (its billing or win notice); and each loss notice's
//! `${AUCTION_MIN_TO_WIN}`, as one bid that would have won at that price.
//! Bids never won count as losses (so exchanges that send no loss notice
//! teach too); bids whose notice has not come yet lower the rate a little.
//! Prices are bucketed on a log scale ([`BUCKETS`] from 0.01 CPM, ×1.155
//! each: about ±7 % per bucket).
//!
//! **Learning**, off the bid path ([`Shading::rebuild`], every few seconds
//! from the tick): the counters are drained into decaying totals (half-life
//! [`HALF_LIFE_SECS`]), the win rate per bucket made non-decreasing in price
//! (pool-adjacent violators), and a new table of curves published whole
//! (arc-swap). A slice with fewer than [`Shading::min_observations`]
//! falls back to its exchange × placement over all hours, then to its
//! exchange, then to the fixed factor (`bidding.first_price_shading`).
//!
//! **Exploration**: a curve learns only where bids land, so
//! [`EXPLORE_PPM`] of first-price bids go out at a random fraction of value
//! (30–100 %, never below the floor): the price of learning, paid on one
//! bid in twenty, once the node has counted [`EXPLORE_AFTER_BIDS`]
//! first-price bids.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::money::Micros;

/// Price buckets per slice.
pub const BUCKETS: usize = 64;
/// The first bucket's upper price: 0.01 CPM.
const FIRST_MICROS: f64 = 10_000.0;
/// Each bucket's upper price is this many times the previous one's.
const STEP: f64 = 1.155;

/// Exchanges told apart (the rest share the last).
const EXCHANGES: usize = 8;
/// Placement classes.
const PLACEMENTS: usize = 8;
/// Slices in all.
pub const SLICES: usize = EXCHANGES * PLACEMENTS * 24;

/// Share of first-price bids that explore, ppm.
pub const EXPLORE_PPM: u64 = 50_000;

/// First-price bids counted before any explores: a node that has seen
/// little traffic bids the fixed factor, and stays predictable.
pub const EXPLORE_AFTER_BIDS: u64 = 1_000;

/// Half-life of the learned totals.
pub const HALF_LIFE_SECS: f64 = 6.0 * 3600.0;

/// Default observations (bids) a curve needs.
pub const MIN_OBSERVATIONS: f64 = 500.0;

/// The bucket of a price (CPM micros).
pub fn bucket(price: Micros) -> usize {
    if price.0 as f64 <= FIRST_MICROS {
        return 0;
    }
    let k = ((price.0 as f64 / FIRST_MICROS).ln() / STEP.ln()).ceil() as usize;
    k.min(BUCKETS - 1)
}

/// A bucket's upper price.
fn upper(k: usize) -> f64 {
    FIRST_MICROS * STEP.powi(k as i32)
}

/// Every bucket's upper price and the bucket that price falls in,
/// computed once (the bid path's [`Curve::best_price`] walks them with no
/// logarithm or power per bid).
static UPPERS: std::sync::LazyLock<[(f64, usize); BUCKETS]> = std::sync::LazyLock::new(|| {
    std::array::from_fn(|k| {
        let p = upper(k);
        (p, bucket(Micros(p as i64)))
    })
});

/// The slice of an auction: exchange id, placement (the impression's
/// format key, hashed), UTC hour.
pub fn slice(exchange: u32, placement: u64, hour: u8) -> u16 {
    let exchange = (exchange as usize).min(EXCHANGES - 1);
    let placement = (placement % PLACEMENTS as u64) as usize;
    ((exchange * PLACEMENTS + placement) * 24 + usize::from(hour % 24)) as u16
}

/// A learned P(win | price) per bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    win: [f32; BUCKETS],
}

impl Curve {
    /// The price in `[floor, value]` with the most expected surplus:
    /// each bucket's upper price, the floor and the value are tried.
    pub fn best_price(&self, value: Micros, floor: Micros) -> Micros {
        let at = |p: f64| self.win[bucket(Micros(p as i64))] as f64;
        let (value_f, floor_f) = (value.0 as f64, floor.0 as f64);
        let mut best = (floor_f, (value_f - floor_f) * at(floor_f));
        for &(p, k) in UPPERS.iter() {
            if p < floor_f || p > value_f {
                continue;
            }
            let surplus = (value_f - p) * self.win[k] as f64;
            if surplus > best.1 {
                best = (p, surplus);
            }
        }
        Micros(best.0 as i64).clamp(floor, value)
    }

    /// P(win) at a price.
    pub fn win_rate(&self, price: Micros) -> f32 {
        self.win[bucket(price)]
    }
}

/// The published curves: by slice, with the fallbacks already chosen.
#[derive(Debug, Default)]
pub struct Curves {
    by_slice: Vec<Option<std::sync::Arc<Curve>>>,
    /// Slices with a curve of their own.
    pub learned: usize,
}

impl Curves {
    /// The curve of a slice (its own or a fallback's), if any.
    pub fn of(&self, slice: u16) -> Option<&Curve> {
        self.by_slice.get(slice as usize)?.as_deref()
    }
}

/// Raw counts since the last rebuild: bids and wins per slice and bucket.
struct Counters {
    bids: Box<[AtomicU32]>,
    wins: Box<[AtomicU32]>,
}

/// Learned shading: the bid path's counters and published curves, and the
/// learner's totals.
pub struct Shading {
    counters: Counters,
    published: ArcSwap<Curves>,
    /// Decaying totals (bids, wins) per slice and bucket, and when they
    /// were last decayed; touched by the rebuild only.
    totals: Mutex<(Vec<[f64; 2]>, Option<i64>)>,
    /// Bids a curve needs.
    pub min_observations: f64,
    /// First-price bids counted.
    pub bids: AtomicU64,
}

impl Default for Shading {
    fn default() -> Self {
        Shading::new(MIN_OBSERVATIONS)
    }
}

fn zeroes(n: usize) -> Box<[AtomicU32]> {
    (0..n).map(|_| AtomicU32::new(0)).collect()
}

impl Shading {
    /// Shading whose curves need `min_observations` bids.
    pub fn new(min_observations: f64) -> Shading {
        Shading {
            counters: Counters {
                bids: zeroes(SLICES * BUCKETS),
                wins: zeroes(SLICES * BUCKETS),
            },
            published: ArcSwap::from_pointee(Curves::default()),
            totals: Mutex::new((Vec::new(), None)),
            min_observations,
            bids: AtomicU64::new(0),
        }
    }

    /// The price to bid for `value` over `floor` in `slice`: learned, or
    /// `None` while the slice (and its fallbacks) know too little.
    pub fn price(&self, slice: u16, value: Micros, floor: Micros) -> Option<Micros> {
        let curves = self.published.load();
        curves.of(slice).map(|curve| curve.best_price(value, floor))
    }

    /// A first-price bid at `price` (bid path).
    pub fn count_bid(&self, slice: u16, price: Micros) {
        let i = slice as usize * BUCKETS + bucket(price);
        if let Some(count) = self.counters.bids.get(i) {
            count.fetch_add(1, Ordering::Relaxed);
            self.bids.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A won first-price bid that was at `price` (tracking path).
    pub fn count_win(&self, slice: u16, price: Micros) {
        if let Some(count) = self.counters.wins.get(slice as usize * BUCKETS + bucket(price)) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A lost first-price bid whose loss notice says `min_to_win`: at that
    /// price it would have won (tracking path).
    pub fn count_min_to_win(&self, slice: u16, min_to_win: Micros) {
        let i = slice as usize * BUCKETS + bucket(min_to_win);
        if let (Some(bids), Some(wins)) = (self.counters.bids.get(i), self.counters.wins.get(i)) {
            bids.fetch_add(1, Ordering::Relaxed);
            wins.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drains the counters into the decaying totals and publishes the
    /// curves they give (off the bid path; `now` in Unix seconds).
    pub fn rebuild(&self, now: i64) {
        if self.bids.load(Ordering::Relaxed) == 0 {
            // Nothing counted yet: no totals to hold.
            return;
        }
        let mut guard = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let (totals, last) = &mut *guard;
        if totals.is_empty() {
            totals.resize(SLICES * BUCKETS, [0.0; 2]);
        }
        let decay = last.map_or(1.0, |last| 0.5f64.powf((now - last).max(0) as f64 / HALF_LIFE_SECS));
        *last = Some(now);
        for (i, total) in totals.iter_mut().enumerate() {
            let bids = f64::from(self.counters.bids[i].swap(0, Ordering::Relaxed));
            let wins = f64::from(self.counters.wins[i].swap(0, Ordering::Relaxed));
            total[0] = total[0] * decay + bids;
            total[1] = total[1] * decay + wins;
        }
        self.published
            .store(std::sync::Arc::new(curves(totals, self.min_observations)));
    }

    /// Whether a bid may explore yet.
    pub fn exploring(&self) -> bool {
        self.bids.load(Ordering::Relaxed) >= EXPLORE_AFTER_BIDS
    }

    /// Slices with a curve of their own.
    pub fn learned_slices(&self) -> usize {
        self.published.load().learned
    }
}

/// The curves of every slice from the totals, with fallbacks: the slice,
/// its exchange × placement over all hours, its exchange.
fn curves(totals: &[[f64; 2]], min_observations: f64) -> Curves {
    let sum = |slices: &mut dyn Iterator<Item = usize>| {
        let mut buckets = [[0.0f64; 2]; BUCKETS];
        for s in slices {
            for (k, b) in buckets.iter_mut().enumerate() {
                let t = totals[s * BUCKETS + k];
                b[0] += t[0];
                b[1] += t[1];
            }
        }
        buckets
    };
    let learn = |buckets: [[f64; 2]; BUCKETS]| {
        let bids: f64 = buckets.iter().map(|b| b[0]).sum();
        (bids >= min_observations).then(|| std::sync::Arc::new(monotone(&buckets)))
    };
    let mut by_slice = vec![None; SLICES];
    let mut learned = 0;
    for exchange in 0..EXCHANGES {
        let of_exchange = learn(sum(&mut (exchange * PLACEMENTS * 24..(exchange + 1) * PLACEMENTS * 24)));
        for placement in 0..PLACEMENTS {
            let first = (exchange * PLACEMENTS + placement) * 24;
            let of_placement = learn(sum(&mut (first..first + 24)));
            for hour in 0..24 {
                let own = learn(sum(&mut std::iter::once(first + hour)));
                learned += usize::from(own.is_some());
                by_slice[first + hour] = own.or_else(|| of_placement.clone()).or_else(|| of_exchange.clone());
            }
        }
    }
    Curves { by_slice, learned }
}

/// P(win) per bucket, non-decreasing in price: the win rate of the buckets
/// with bids, pooled where they go down (pool-adjacent violators); buckets
/// without bids take the rate of the nearest one below (zero below all).
fn monotone(buckets: &[[f64; 2]; BUCKETS]) -> Curve {
    // Blocks of (first bucket, bids, wins).
    let mut blocks: Vec<(usize, f64, f64)> = Vec::new();
    for (k, [bids, wins]) in buckets.iter().enumerate() {
        if *bids <= 0.0 {
            continue;
        }
        blocks.push((k, *bids, wins.min(*bids)));
        while blocks.len() >= 2 {
            let (b, a) = (blocks[blocks.len() - 1], blocks[blocks.len() - 2]);
            if a.2 / a.1 <= b.2 / b.1 {
                break;
            }
            blocks.pop();
            let merged = blocks.last_mut().expect("two blocks");
            merged.1 += b.1;
            merged.2 += b.2;
        }
    }
    let mut win = [0.0f32; BUCKETS];
    for (i, block) in blocks.iter().enumerate() {
        let end = blocks.get(i + 1).map_or(BUCKETS, |next| next.0);
        for w in &mut win[block.0..end] {
            *w = (block.2 / block.1) as f32;
        }
    }
    Curve { win }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// A standard normal draw (Box–Muller).
    fn normal(rng: &mut rand::rngs::StdRng) -> f64 {
        let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// P(highest other bid ≤ p) for a log-normal of median 1.00 CPM, σ 0.5.
    fn true_win(p: f64) -> f64 {
        // Φ(ln(p / 1.0) / 0.5), Φ by the Abramowitz–Stegun erf.
        let x = (p / 1_000_000.0).ln() / 0.5 / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
        let y = 1.0
            - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t + 0.254_829_592)
                * t
                * (-x * x).exp();
        0.5 * (1.0 + x.signum() * y)
    }

    #[test]
    fn the_learned_bid_is_near_the_surplus_optimum_on_a_known_market() {
        let (value, floor, slice) = (Micros(3_000_000), Micros(100_000), super::slice(0, 7, 12));
        let optimum = (100_000..3_000_000)
            .step_by(1_000)
            .map(|p| (p, (3_000_000.0 - p as f64) * true_win(p as f64)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
            .0 as f64;
        let shading = Shading::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        assert_eq!(shading.price(slice, value, floor), None, "nothing learned yet");
        for round in 0..40 {
            for _ in 0..1_000 {
                let learned = shading.price(slice, value, floor);
                // Bid the learned price (0.85 × value before), exploring 5 %
                // (everything in the first round).
                let explore = round == 0 || rng.random_range(0..1_000_000) < EXPLORE_PPM;
                let price = match learned {
                    _ if explore => Micros((value.0 as f64 * rng.random_range(0.3..1.0)) as i64),
                    Some(p) => p,
                    None => Micros(value.0 * 85 / 100),
                };
                shading.count_bid(slice, price);
                let competing = 1_000_000.0 * (0.5 * normal(&mut rng)).exp();
                if (price.0 as f64) > competing {
                    shading.count_win(slice, price);
                }
            }
            shading.rebuild(round * 10);
        }
        let learned = shading.price(slice, value, floor).unwrap().0 as f64;
        println!("learned {learned}, optimum {optimum}");
        assert!(
            (learned / optimum - 1.0).abs() <= 0.10,
            "learned {learned} vs optimum {optimum}"
        );
        // Never above value nor below the floor.
        assert_eq!(
            shading
                .price(slice, Micros(500_000), Micros(450_000))
                .map(|p| p.0 >= 450_000 && p.0 <= 500_000),
            Some(true)
        );
        assert_eq!(
            shading.price(slice, Micros(2_000_000), Micros(2_000_000)),
            Some(Micros(2_000_000))
        );
        assert_eq!(shading.learned_slices(), 1);
        // Another hour of the same exchange and placement falls back to it.
        assert!(shading.price(super::slice(0, 7, 3), value, floor).is_some());
        assert_eq!(
            shading.price(super::slice(1, 7, 12), value, floor),
            None,
            "another exchange"
        );
    }

    #[test]
    fn win_rates_never_fall_as_the_price_rises() {
        let mut buckets = [[0.0; 2]; BUCKETS];
        buckets[10] = [100.0, 30.0];
        buckets[12] = [100.0, 20.0];
        buckets[14] = [100.0, 60.0];
        let curve = monotone(&buckets);
        assert_eq!(curve.win[9], 0.0);
        assert_eq!((curve.win[10], curve.win[12], curve.win[13]), (0.25, 0.25, 0.25));
        assert_eq!((curve.win[14], curve.win[63]), (0.6, 0.6));
    }

    #[test]
    fn buckets_are_log_spaced() {
        assert_eq!(bucket(Micros(5_000)), 0);
        assert_eq!(bucket(Micros(1_000_000)), 32);
        assert!(upper(32) >= 1_000_000.0 && upper(31) < 1_000_000.0);
        assert_eq!(bucket(Micros(i64::MAX)), BUCKETS - 1);
    }
}
