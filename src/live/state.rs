//! One campaign's live counters: spend and reservations, pacing, today's
//! impressions and clicks, learned click-through rates, bids and the
//! reasons it was filtered. Atomics and a lock-free map: the bid path reads
//! and updates them without locks.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::campaigns::index::LearnedRates;
use crate::campaigns::targeting::FilterReason;
use crate::pacing::{DailySpend, Pacer};
use crate::settings::ExchangeId;

/// Live counters of one campaign, kept across config reloads.
#[derive(Debug, Default)]
pub struct CampaignState {
    /// Today's spend and outstanding reservations.
    pub spend: DailySpend,
    /// Bids since start.
    pub bids: AtomicU64,
    /// Bids since start per exchange (the report's counts per exchange and
    /// hour are flushed from them).
    pub exchange_bids: ExchangeBids,
    /// Impressions and billable clicks on the campaign's current local day.
    pub impressions: DayCount,
    /// Billable clicks on the campaign's current local day.
    pub clicks: DayCount,
    /// Billed impressions and billable clicks per creative (the last day's
    /// window, restored from the ledger), for pCTR.
    ctr: papaya::HashMap<String, CtrCounts, foldhash::fast::RandomState>,
    /// Conversions credited to the campaign (the same window as the pCTR
    /// counts), with the sum and count of their order values, for pCVR and
    /// the CPS order value.
    conversions: ConversionCounts,
    /// Even-pacing throttle and traffic curve.
    pub pacer: Pacer,
    /// How many times each rule stopped the campaign ("why not bidding").
    pub filtered: [AtomicU64; FilterReason::COUNT],
    /// Billable clicks and conversions of its current local hour and day
    /// (capacity caps).
    pub responses: super::contact::Responses,
    /// Set by the tick while one of its capacity caps is reached.
    pub at_capacity: std::sync::atomic::AtomicBool,
}

/// Bids per exchange since start, by [`ExchangeId`] (the exchange's
/// position in the settings): the first [`ExchangeBids::INLINE`] in a plain
/// array (one relaxed add on the bid path), others in a lock-free map.
#[derive(Debug, Default)]
pub struct ExchangeBids {
    inline: [AtomicU64; ExchangeBids::INLINE],
    more: papaya::HashMap<u32, AtomicU64, foldhash::fast::RandomState>,
}

impl ExchangeBids {
    /// Exchanges counted without a map lookup: most deployments have a few.
    pub const INLINE: usize = 8;

    /// Counts one bid at exchange `id`.
    pub fn add(&self, ExchangeId(id): ExchangeId) {
        match self.inline.get(id as usize) {
            Some(count) => count.fetch_add(1, Ordering::Relaxed),
            None => self
                .more
                .pin()
                .get_or_insert_with(id, AtomicU64::default)
                .fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Every exchange's count, those never bid on left out.
    pub fn totals(&self) -> Vec<(ExchangeId, u64)> {
        let inline = self
            .inline
            .iter()
            .enumerate()
            .map(|(id, n)| (id as u32, n.load(Ordering::Relaxed)));
        let more = self.more.pin();
        let more: Vec<(u32, u64)> = more.iter().map(|(id, n)| (*id, n.load(Ordering::Relaxed))).collect();
        inline
            .chain(more)
            .filter(|(_, n)| *n > 0)
            .map(|(id, n)| (ExchangeId(id), n))
            .collect()
    }
}

/// A counter that restarts each local day.
#[derive(Debug, Default)]
pub struct DayCount {
    day: std::sync::atomic::AtomicI64,
    count: AtomicU64,
}

impl DayCount {
    /// Adds one for local day `day`; a later day restarts the count, an earlier one is ignored.
    pub fn add(&self, day: i64) {
        let current = self.day.load(Ordering::Acquire);
        if day > current
            && self
                .day
                .compare_exchange(current, day, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.count.store(0, Ordering::Release);
        }
        if day == self.day.load(Ordering::Acquire) {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The count for local day `day` (0 when the counter is on another day).
    pub fn get(&self, day: i64) -> u64 {
        if self.day.load(Ordering::Acquire) == day {
            self.count.load(Ordering::Acquire)
        } else {
            0
        }
    }
}

/// Weight of the prior pCTR, in impressions: the learned rate takes over as
/// a campaign's impressions grow past this.
pub const PCTR_PRIOR_IMPRESSIONS: u64 = 1000;

/// Weight of the prior pCVR, in impressions: conversions are rarer than
/// clicks, so the prior holds longer.
pub const PCVR_PRIOR_IMPRESSIONS: u64 = 20_000;

/// Weight of the prior order value, in conversions.
pub const ORDER_VALUE_PRIOR_CONVERSIONS: u64 = 5;

#[derive(Debug, Default)]
struct ConversionCounts {
    count: AtomicU64,
    valued: AtomicU64,
    value_micros: AtomicU64,
}

#[derive(Debug, Default)]
struct CtrCounts {
    impressions: AtomicU64,
    clicks: AtomicU64,
}

/// Clicks over impressions smoothed towards `prior` (all in ppm).
fn smoothed(impressions: u64, clicks: u64, prior: u32) -> u32 {
    let clicks = clicks.min(impressions);
    let numerator = clicks as u128 * 1_000_000 + prior as u128 * PCTR_PRIOR_IMPRESSIONS as u128;
    (numerator / (impressions + PCTR_PRIOR_IMPRESSIONS) as u128) as u32
}

impl CampaignState {
    /// Counts a billed impression of `creative` (tracking path).
    pub fn count_impression(&self, creative: &str) {
        let map = self.ctr.pin();
        map.get_or_insert_with(creative.to_string(), CtrCounts::default)
            .impressions
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a billable click on `creative` (tracking path).
    pub fn count_click(&self, creative: &str) {
        let map = self.ctr.pin();
        map.get_or_insert_with(creative.to_string(), CtrCounts::default)
            .clicks
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The predicted click-through rate of a creative (ppm).
    fn creative_pctr(&self, creative: &str, prior: u32) -> u32 {
        let map = self.ctr.pin();
        match map.get(creative) {
            Some(c) => smoothed(
                c.impressions.load(Ordering::Relaxed),
                c.clicks.load(Ordering::Relaxed),
                prior,
            ),
            None => prior,
        }
    }

    /// A creative's billed impressions and billable clicks in the pCTR
    /// window (creative rotation's evidence); (0, 0) when it has none.
    pub fn creative_counts(&self, creative: &str) -> (u64, u64) {
        let map = self.ctr.pin();
        map.get(creative).map_or((0, 0), |c| {
            (c.impressions.load(Ordering::Relaxed), c.clicks.load(Ordering::Relaxed))
        })
    }

    /// The campaign's predicted click-through rate over all creatives (ppm).
    pub fn campaign_pctr(&self, prior: u32) -> u32 {
        let map = self.ctr.pin();
        let (impressions, clicks) = map.values().fold((0, 0), |(i, c), counts| {
            (
                i + counts.impressions.load(Ordering::Relaxed),
                c + counts.clicks.load(Ordering::Relaxed),
            )
        });
        smoothed(impressions, clicks, prior)
    }

    /// Credited conversions counted so far (the evidence of its pCVR).
    pub fn conversions(&self) -> u64 {
        self.conversions.count.load(Ordering::Relaxed)
    }

    /// Counts a credited conversion and its order value (tracking path).
    pub fn count_conversion(&self, value: crate::money::Micros) {
        self.conversions.count.fetch_add(1, Ordering::Relaxed);
        if value.0 > 0 {
            self.conversions.valued.fetch_add(1, Ordering::Relaxed);
            self.conversions
                .value_micros
                .fetch_add(value.0 as u64, Ordering::Relaxed);
        }
    }

    /// Billed impressions over all creatives in the pCTR window.
    fn impressions(&self) -> u64 {
        self.ctr
            .pin()
            .values()
            .map(|c| c.impressions.load(Ordering::Relaxed))
            .sum()
    }

    /// Counts one time `reason` stopped the campaign.
    pub fn count_filtered(&self, reason: FilterReason) {
        self.filtered[reason as usize].fetch_add(1, Ordering::Relaxed);
    }
}

impl LearnedRates for CampaignState {
    fn pctr(&self, creative: &str, prior: u32) -> u32 {
        self.creative_pctr(creative, prior)
    }

    /// Conversions over billed impressions, smoothed towards `prior` (ppb)
    /// with the weight of [`PCVR_PRIOR_IMPRESSIONS`].
    fn pcvr(&self, prior: u32) -> u32 {
        let impressions = self.impressions();
        let conversions = self.conversions.count.load(Ordering::Relaxed).min(impressions);
        let numerator = conversions as u128 * 1_000_000_000 + prior as u128 * PCVR_PRIOR_IMPRESSIONS as u128;
        (numerator / (impressions + PCVR_PRIOR_IMPRESSIONS) as u128) as u32
    }

    /// The mean order value of valued conversions, smoothed towards
    /// `prior` with the weight of [`ORDER_VALUE_PRIOR_CONVERSIONS`].
    fn order_value(&self, prior: crate::money::Micros) -> crate::money::Micros {
        let valued = self.conversions.valued.load(Ordering::Relaxed);
        let sum = self.conversions.value_micros.load(Ordering::Relaxed);
        let numerator = sum as u128 + prior.0.max(0) as u128 * ORDER_VALUE_PRIOR_CONVERSIONS as u128;
        crate::money::Micros((numerator / (valued + ORDER_VALUE_PRIOR_CONVERSIONS) as u128) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcvr_and_order_value_are_learned_and_smoothed_towards_their_priors() {
        let state = CampaignState::default();
        assert_eq!(state.pcvr(100_000), 100_000, "no data: the prior");
        assert_eq!(state.order_value(crate::money::Micros(50_000_000)).0, 50_000_000);
        for _ in 0..20_000 {
            state.count_impression("a");
        }
        for _ in 0..10 {
            state.count_conversion(crate::money::Micros(80_000_000));
        }
        state.count_conversion(crate::money::Micros::ZERO);
        // (11 × 10^9 + 10^5 × 20,000) / 40,000 = 325,000 ppb.
        assert_eq!(state.pcvr(100_000), 325_000);
        // (10 × 80 + 5 × 50) / 15 = 70.
        assert_eq!(state.order_value(crate::money::Micros(50_000_000)).0, 70_000_000);
    }

    #[test]
    fn pctr_is_learned_per_creative_and_smoothed_towards_the_prior() {
        let state = CampaignState::default();
        assert_eq!(state.creative_pctr("a", 2_000), 2_000, "no data: the prior");
        for i in 0..1000 {
            state.count_impression("a");
            if i % 20 == 0 {
                state.count_click("a");
            }
        }
        // (50 clicks + 0.2 % × 1000 prior impressions) / 2000 = 2.6 %.
        assert_eq!(state.creative_pctr("a", 2_000), 26_000);
        assert_eq!(
            state.creative_pctr("b", 2_000),
            2_000,
            "another creative keeps the prior"
        );
        assert_eq!(state.campaign_pctr(2_000), 26_000);
        assert_eq!(smoothed(10, 50, 0), 9_900, "clicks never exceed impressions");
    }
}
