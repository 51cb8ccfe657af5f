//! Learned first-price bid shading: bid the price that maximises expected
//! surplus `(value − price) × P(win | price)`, with P(win | price) learned
//! per slice from what first-price bids met.
//!
//! **Slices**: exchange (the first 7; the rest share one) × placement (the
//! impression's format: banner size or medium, hashed into 8 classes) ×
//! hour of the day (UTC). A bid's slice is signed into its tracking URLs
//! (`s`), so its notices are counted where its bid was.
//!
//! **Site classes**: competition varies most by site, which a slice does
//! not see. The site (the domain its URLs carry, `signing::Place`) is
//! hashed into [`SITE_CLASSES`] classes ([`site_class`]: FNV-1a, stable
//! across nodes and versions), and each exchange × placement × site class
//! (a *site cell*, over all hours) learns a curve of its own. A bid is
//! counted in its slice and in its site cell; its notices find the cell
//! again from the signed domain, so the URL format is unchanged (URLs
//! signed before, or without a domain, count in their slice only). A bid
//! is priced by its site cell's curve once the cell has
//! [`Shading::min_observations`], else by its slice's (and its fallbacks).
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
//! **Memory**: two `u32` counters per bucket of every slice and site cell
//! (([`SLICES`] + [`SITE_CELLS`]) × [`BUCKETS`] × 8 bytes: 768 KiB + 2 MiB),
//! and the learner's decaying totals, two `f64` per bucket (twice that),
//! all allocated once; the published curves hold at most one 256-byte
//! curve per slice, fallback and site cell.
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
use crate::signing::MAX_DOMAIN_BYTES;

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
/// Site classes per exchange × placement.
pub const SITE_CLASSES: usize = 64;
/// Site cells in all: exchange × placement × site class.
pub const SITE_CELLS: usize = EXCHANGES * PLACEMENTS * SITE_CLASSES;

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

/// The site class of a domain, as a bid's URLs carry it (lowercase, cut to
/// [`MAX_DOMAIN_BYTES`] at a character boundary: the bid path and the
/// notice find the same class): FNV-1a of its bytes, modulo
/// [`SITE_CLASSES`]. `None` for an unknown (empty) domain.
pub fn site_class(domain: &str) -> Option<u8> {
    if domain.is_empty() {
        return None;
    }
    let mut end = domain.len().min(MAX_DOMAIN_BYTES);
    while !domain.is_char_boundary(end) {
        end -= 1;
    }
    let hash = domain.as_bytes()[..end]
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte.to_ascii_lowercase())).wrapping_mul(0x0000_0100_0000_01b3)
        });
    Some((hash % SITE_CLASSES as u64) as u8)
}

/// The site cell of a slice's exchange × placement and a site class
/// (out of range for a slice out of range).
fn site_cell(slice: u16, site: u8) -> usize {
    slice as usize / 24 * SITE_CLASSES + usize::from(site) % SITE_CLASSES
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

/// The published curves: by slice, with the fallbacks already chosen, and
/// by site cell (their own only).
#[derive(Debug, Default)]
pub struct Curves {
    by_slice: Vec<Option<std::sync::Arc<Curve>>>,
    by_site: Vec<Option<std::sync::Arc<Curve>>>,
    /// Slices with a curve of their own.
    pub learned: usize,
    /// Site cells with a curve of their own.
    pub learned_sites: usize,
}

impl Curves {
    /// The curve of a slice (its own or a fallback's), if any.
    pub fn of(&self, slice: u16) -> Option<&Curve> {
        self.by_slice.get(slice as usize)?.as_deref()
    }

    /// The curve of a bid in `slice` on a site of class `site`: its site
    /// cell's when the cell has learned one, else its slice's.
    pub fn of_site(&self, slice: u16, site: Option<u8>) -> Option<&Curve> {
        site.and_then(|site| self.by_site.get(site_cell(slice, site))?.as_deref())
            .or_else(|| self.of(slice))
    }
}

/// Raw counts since the last rebuild: bids and wins per bucket, of the
/// slices ([`SLICES`] × [`BUCKETS`]) then of the site cells
/// ([`SITE_CELLS`] × [`BUCKETS`]).
struct Counters {
    bids: Box<[AtomicU32]>,
    wins: Box<[AtomicU32]>,
}

/// The counters' indices of a bid at price bucket `k`: its slice's, and
/// its site cell's when the site is known (out of range for a slice out
/// of range: such counts are dropped).
fn indices(slice: u16, site: Option<u8>, k: usize) -> [Option<usize>; 2] {
    let own = (usize::from(slice) < SLICES).then(|| usize::from(slice) * BUCKETS + k);
    let cell = own.and(site).map(|site| (SLICES + site_cell(slice, site)) * BUCKETS + k);
    [own, cell]
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
                bids: zeroes((SLICES + SITE_CELLS) * BUCKETS),
                wins: zeroes((SLICES + SITE_CELLS) * BUCKETS),
            },
            published: ArcSwap::from_pointee(Curves::default()),
            totals: Mutex::new((Vec::new(), None)),
            min_observations,
            bids: AtomicU64::new(0),
        }
    }

    /// The price to bid for `value` over `floor` in `slice` on a site of
    /// class `site` ([`site_class`]; `None`: unknown): by the site cell's
    /// curve, else the slice's (or its fallbacks'); `None` while they all
    /// know too little.
    pub fn price(&self, slice: u16, site: Option<u8>, value: Micros, floor: Micros) -> Option<Micros> {
        let curves = self.published.load();
        curves.of_site(slice, site).map(|curve| curve.best_price(value, floor))
    }

    /// A first-price bid at `price` (bid path), in its slice and its site
    /// cell.
    pub fn count_bid(&self, slice: u16, site: Option<u8>, price: Micros) {
        let [own, cell] = indices(slice, site, bucket(price));
        if let Some(i) = own {
            self.counters.bids[i].fetch_add(1, Ordering::Relaxed);
            self.bids.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(i) = cell {
            self.counters.bids[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A won first-price bid that was at `price` (tracking path); `domain`
    /// as its URLs carry it (empty when they carry none).
    pub fn count_win(&self, slice: u16, domain: &str, price: Micros) {
        for i in indices(slice, site_class(domain), bucket(price)).into_iter().flatten() {
            self.counters.wins[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A lost first-price bid whose loss notice says `min_to_win`: at that
    /// price it would have won (tracking path); `domain` as for
    /// [`Shading::count_win`].
    pub fn count_min_to_win(&self, slice: u16, domain: &str, min_to_win: Micros) {
        for i in indices(slice, site_class(domain), bucket(min_to_win))
            .into_iter()
            .flatten()
        {
            self.counters.bids[i].fetch_add(1, Ordering::Relaxed);
            self.counters.wins[i].fetch_add(1, Ordering::Relaxed);
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
            totals.resize((SLICES + SITE_CELLS) * BUCKETS, [0.0; 2]);
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

    /// Site cells with a curve of their own.
    pub fn learned_sites(&self) -> usize {
        self.published.load().learned_sites
    }
}

/// The curves of every slice from the totals, with fallbacks: the slice,
/// its exchange × placement over all hours, its exchange; and of every
/// site cell that has enough observations of its own.
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
    let by_site: Vec<_> = (0..SITE_CELLS)
        .map(|cell| learn(sum(&mut std::iter::once(SLICES + cell))))
        .collect();
    let learned_sites = by_site.iter().filter(|c| c.is_some()).count();
    Curves {
        by_slice,
        by_site,
        learned,
        learned_sites,
    }
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
        assert_eq!(shading.price(slice, None, value, floor), None, "nothing learned yet");
        for round in 0..40 {
            for _ in 0..1_000 {
                let learned = shading.price(slice, None, value, floor);
                // Bid the learned price (0.85 × value before), exploring 5 %
                // (everything in the first round).
                let explore = round == 0 || rng.random_range(0..1_000_000) < EXPLORE_PPM;
                let price = match learned {
                    _ if explore => Micros((value.0 as f64 * rng.random_range(0.3..1.0)) as i64),
                    Some(p) => p,
                    None => Micros(value.0 * 85 / 100),
                };
                shading.count_bid(slice, None, price);
                let competing = 1_000_000.0 * (0.5 * normal(&mut rng)).exp();
                if (price.0 as f64) > competing {
                    shading.count_win(slice, "", price);
                }
            }
            shading.rebuild(round * 10);
        }
        let learned = shading.price(slice, None, value, floor).unwrap().0 as f64;
        println!("learned {learned}, optimum {optimum}");
        assert!(
            (learned / optimum - 1.0).abs() <= 0.10,
            "learned {learned} vs optimum {optimum}"
        );
        // Never above value nor below the floor.
        assert_eq!(
            shading
                .price(slice, None, Micros(500_000), Micros(450_000))
                .map(|p| p.0 >= 450_000 && p.0 <= 500_000),
            Some(true)
        );
        assert_eq!(
            shading.price(slice, None, Micros(2_000_000), Micros(2_000_000)),
            Some(Micros(2_000_000))
        );
        assert_eq!(shading.learned_slices(), 1);
        // Another hour of the same exchange and placement falls back to it.
        assert!(shading.price(super::slice(0, 7, 3), None, value, floor).is_some());
        assert_eq!(
            shading.price(super::slice(1, 7, 12), None, value, floor),
            None,
            "another exchange"
        );
    }

    /// Bids in `slice` on `domain` at every 0.10 CPM from 0.10 to 3.00,
    /// `rounds` times; each above `competing` (CPM micros) wins.
    fn auctions(shading: &Shading, slice: u16, domain: &str, competing: i64, rounds: usize) {
        for _ in 0..rounds {
            for price in (100_000..=3_000_000).step_by(100_000).map(Micros) {
                shading.count_bid(slice, site_class(domain), price);
                if price.0 > competing {
                    shading.count_win(slice, domain, price);
                }
            }
        }
    }

    #[test]
    fn site_classes_are_stable_and_found_again_from_the_carried_domain() {
        assert_eq!(site_class(""), None);
        // FNV-1a, modulo 64: the same on every node and version.
        assert_eq!(site_class("site000.example"), Some(CHEAP_CLASS));
        assert_eq!(site_class("site001.example"), Some(DEAR_CLASS));
        // As the URL carries it: lowercase, cut to 64 bytes.
        assert_eq!(site_class("SITE000.Example"), site_class("site000.example"));
        let long = "a".repeat(80);
        assert_eq!(site_class(&long), site_class(&long[..MAX_DOMAIN_BYTES]));
        assert_ne!(site_class(&long), site_class(&long[..MAX_DOMAIN_BYTES - 1]));
    }

    const CHEAP_CLASS: u8 = 2;
    const DEAR_CLASS: u8 = 29;

    #[test]
    fn a_site_class_learns_its_own_curve_and_falls_back_to_its_slice_until_then() {
        let (slice, value, floor) = (super::slice(0, 7, 12), Micros(5_000_000), Micros(50_000));
        let (cheap, dear) = ("site000.example", "site001.example");
        let shading = Shading::new(300.0);
        // The cheap site's competition bids 0.50, the dear site's 1.50.
        auctions(&shading, slice, cheap, 500_000, 10);
        auctions(&shading, slice, dear, 1_500_000, 9);
        shading.rebuild(0);
        // 300 bids on the cheap site: a curve of its own, which wins at
        // the bucket above 0.50; 270 on the dear one: its slice's (570
        // bids, both sites), which wins everything only above 1.50.
        assert_eq!((shading.learned_slices(), shading.learned_sites()), (1, 1));
        let (just_above_cheap, just_above_dear) = (Micros(652_946), Micros(1_790_405));
        let price = |site| shading.price(slice, site, value, floor);
        assert_eq!(price(site_class(cheap)), Some(just_above_cheap));
        assert_eq!(price(None), Some(just_above_dear));
        assert_eq!(price(site_class(dear)), Some(just_above_dear));
        // A class never seen falls back to the slice; the site cell spans
        // the hours (another hour's slice, unlearned, finds it).
        assert_eq!(price(Some(CHEAP_CLASS + 1)), Some(just_above_dear));
        assert_eq!(
            shading.price(super::slice(0, 7, 3), site_class(cheap), value, floor),
            Some(just_above_cheap)
        );
        // Thirty more rounds on the cheap site move the slice's curve to
        // the cheap price; the dear site, with 300 bids now, bids by its own.
        auctions(&shading, slice, cheap, 500_000, 30);
        auctions(&shading, slice, dear, 1_500_000, 1);
        shading.rebuild(0);
        assert_eq!((shading.learned_slices(), shading.learned_sites()), (1, 2));
        assert_eq!(price(None), Some(just_above_cheap));
        assert_eq!(price(site_class(dear)), Some(just_above_dear));
        assert_eq!(price(site_class(cheap)), Some(just_above_cheap));
    }

    #[test]
    fn notices_without_a_domain_count_in_their_slice_only() {
        // A payload as URLs were signed before site classes (and before
        // the place was carried): the format is unchanged, so it parses
        // and counts in its slice.
        let token = crate::signing::BidToken::parse(
            "b=bid-1&r=req-1&i=1&c=brand&k=b1&x=ex&cur=USD&p=1000000&v=1000000&t=1700000000&u=0000000000000000&test=0&e=1700000300&m=cpm&s=300",
        )
        .unwrap();
        assert_eq!((token.shading_slice, token.place.domain.as_str()), (Some(300), ""));
        let shading = Shading::new(1.0);
        shading.count_bid(300, None, token.bid_value);
        shading.count_win(token.shading_slice.unwrap(), &token.place.domain, token.bid_value);
        shading.rebuild(0);
        assert_eq!((shading.learned_slices(), shading.learned_sites()), (1, 0));
        assert_eq!(
            shading.published.load().of(300).map(|c| c.win_rate(Micros(1_000_000))),
            Some(1.0)
        );
        // With a domain (`d`), the same notice also counts in its site cell.
        let token = crate::signing::BidToken::parse(
            "b=bid-2&r=req-2&i=1&c=brand&k=b1&x=ex&cur=USD&p=1000000&v=1000000&t=1700000000&u=0000000000000000&test=0&e=1700000300&m=cpm&s=300&d=site000.example",
        )
        .unwrap();
        let site = site_class(&token.place.domain);
        shading.count_bid(300, site, token.bid_value);
        shading.count_min_to_win(300, &token.place.domain, Micros(2_000_000));
        shading.rebuild(0);
        assert_eq!((shading.learned_slices(), shading.learned_sites()), (1, 1));
        let cell = shading.published.load();
        let cell = cell.of_site(300, site).unwrap();
        assert_eq!((cell.win_rate(Micros(1_000_000)), cell.win_rate(Micros(2_000_000))), (0.0, 1.0));
        // A slice out of range counts nowhere.
        shading.count_win(u16::MAX, "site000.example", Micros(1_000_000));
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
