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

    /// Counts one time `reason` stopped the campaign.
    pub fn count_filtered(&self, reason: FilterReason) {
        self.filtered[reason as usize].fetch_add(1, Ordering::Relaxed);
    }
}

impl LearnedRates for CampaignState {
    fn pctr(&self, creative: &str, prior: u32) -> u32 {
        self.creative_pctr(creative, prior)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
