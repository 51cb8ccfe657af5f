//! The campaign world: every campaign compiled, ranked and indexed.
//!
//! Campaigns are ranked once, by static value (the CPM they bid at most,
//! highest first, ties by id), and the indexes hold ranks in ascending
//! order. Selection merges the few lists that can apply to an impression —
//! the banner sizes it offers, its other media, the campaigns filed under
//! the user's segments, the deals it carries — and walks them best first,
//! stopping at the first eligible campaign. Its cost grows with the number
//! of campaigns that are *tried*, not with the number that exist.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::tz::TimeZone;

use crate::audience::SegmentKey;
use crate::config::Config;
use crate::money::Micros;
use crate::openrtb::MediaType;
use crate::pacing::DailySpend;
use crate::settings::Settings;
use crate::tracking::Signer;

use super::model::{Campaign, Pricing, Status};
use super::targeting::FilterReason;

/// Live counters of one campaign, kept across config reloads.
#[derive(Debug, Default)]
pub struct CampaignState {
    pub spend: DailySpend,
    /// Bids since start (the report's per-day counts are flushed from it).
    pub bids: AtomicU64,
    /// Impressions and billable clicks on the campaign's current local day.
    pub impressions: DayCount,
    pub clicks: DayCount,
    /// Billed impressions and billable clicks per creative (the last day's
    /// window, restored from the ledger), for pCTR.
    ctr: papaya::HashMap<String, CtrCounts, foldhash::fast::RandomState>,
    pub pacer: crate::pacing::Pacer,
    /// How many times each rule stopped the campaign ("why not bidding").
    pub filtered: [AtomicU64; FilterReason::COUNT],
}

/// A counter that restarts each local day.
#[derive(Debug, Default)]
pub struct DayCount {
    day: std::sync::atomic::AtomicI64,
    count: AtomicU64,
}

impl DayCount {
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
    pub fn pctr(&self, creative: &str, prior: u32) -> u32 {
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

    pub fn count_filtered(&self, reason: FilterReason) {
        self.filtered[reason as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Campaign states by id. Locked only while a world is built (control path,
/// a few times a minute at most), never by the bid path.
#[derive(Debug, Default)]
pub struct StateRegistry {
    states: Mutex<HashMap<String, Arc<CampaignState>>>,
}

impl StateRegistry {
    pub fn state(&self, campaign_id: &str) -> Arc<CampaignState> {
        let mut states = self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        states.entry(campaign_id.to_string()).or_default().clone()
    }
}

/// What each creative of a campaign is worth (CPM, base currency): the max
/// CPM, or for CPC campaigns `max_cpc × pCTR × 1000` with the creative's
/// learned pCTR.
pub fn creative_values(campaign: &Campaign, state: &CampaignState) -> Vec<Micros> {
    campaign
        .creatives
        .iter()
        .map(|creative| match campaign.pricing {
            Pricing::Cpm => campaign.max_bid,
            Pricing::Cpc => {
                let pctr = state.pctr(&creative.id, campaign.pctr_prior);
                campaign.max_bid.mul_div_floor(pctr as i64, 1000)
            }
        })
        .collect()
}

/// The most a campaign bids: its best creative's value.
pub fn value_cpm(campaign: &Campaign, state: &CampaignState) -> Micros {
    creative_values(campaign, state)
        .into_iter()
        .max()
        .unwrap_or(Micros::ZERO)
}

/// A campaign ready for the bid path.
#[derive(Debug)]
pub struct CompiledCampaign {
    pub campaign: Campaign,
    /// Stable hash of the id (frequency-cap key).
    pub key: u64,
    /// Static value: the CPM it bids at most, base currency.
    pub value: Micros,
    /// Value of each creative (differs for CPC campaigns, by pCTR).
    pub creative_values: Vec<Micros>,
    /// Each creative's markup, compiled for the response.
    pub markup: Vec<super::markup::Template>,
    /// Index into [`World::time_zones`].
    pub tz: usize,
    /// Bit `i` set when the campaign buys on exchange `i` of the settings.
    pub exchange_mask: u64,
    pub state: Arc<CampaignState>,
}

/// Everything the bid path needs, immutable, swapped whole.
pub struct World {
    pub settings: Settings,
    /// Signs the tracking URLs of bids made with this world's key.
    pub signer: Signer,
    /// In rank order: best static value first.
    pub campaigns: Vec<CompiledCampaign>,
    pub time_zones: Vec<TimeZone>,
    banner_by_size: HashMap<(i64, i64), Vec<u32>>,
    by_media: [Vec<u32>; 4],
    by_segment: HashMap<SegmentKey, Vec<u32>>,
    by_deal: HashMap<String, Vec<u32>>,
    by_id: HashMap<String, u32>,
}

fn media_slot(media: MediaType) -> usize {
    media.mtype() as usize - 1
}

impl World {
    /// Compiles a validated config. Paused campaigns are left out of the
    /// indexes (a status change rebuilds the world).
    pub fn build(config: Config, registry: &StateRegistry) -> World {
        let Config {
            settings,
            mut campaigns,
        } = config;
        let values: HashMap<String, Micros> = campaigns
            .iter()
            .map(|c| (c.id.clone(), value_cpm(c, &registry.state(&c.id))))
            .collect();
        campaigns.sort_by(|a, b| values[&b.id].cmp(&values[&a.id]).then_with(|| a.id.cmp(&b.id)));
        let mut time_zones: Vec<TimeZone> = Vec::new();
        let mut world = World {
            campaigns: Vec::with_capacity(campaigns.len()),
            time_zones: Vec::new(),
            banner_by_size: HashMap::new(),
            by_media: Default::default(),
            by_segment: HashMap::new(),
            by_deal: HashMap::new(),
            by_id: HashMap::new(),
            signer: Signer::new(&settings.signing_key, settings.previous_signing_key.as_deref()),
            settings,
        };
        for (rank, campaign) in campaigns.into_iter().enumerate() {
            let rank = rank as u32;
            let tz = match time_zones.iter().position(|t| t == &campaign.time_zone) {
                Some(i) => i,
                None => {
                    time_zones.push(campaign.time_zone.clone());
                    time_zones.len() - 1
                }
            };
            let exchange_mask = if campaign.exchanges.is_empty() {
                u64::MAX
            } else {
                world
                    .settings
                    .exchanges
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| campaign.exchanges.contains(&e.name))
                    .fold(0, |m, (i, _)| m | 1 << i)
            };
            world.by_id.insert(campaign.id.clone(), rank);
            if campaign.status == Status::Active {
                world.index(rank, &campaign);
            }
            let state = registry.state(&campaign.id);
            world.campaigns.push(CompiledCampaign {
                key: xxhash_rust::xxh3::xxh3_64(campaign.id.as_bytes()),
                value: value_cpm(&campaign, &state),
                creative_values: creative_values(&campaign, &state),
                markup: campaign.creatives.iter().map(super::markup::Template::new).collect(),
                tz,
                exchange_mask,
                state,
                campaign,
            });
        }
        world.time_zones = time_zones;
        world
    }

    fn index(&mut self, rank: u32, campaign: &Campaign) {
        for deal in &campaign.targeting.deals {
            self.by_deal.entry(deal.clone()).or_default().push(rank);
        }
        if campaign.targeting.deals_only {
            return;
        }
        let rule = &campaign.targeting.segments;
        if rule.requires_membership() {
            for key in rule.index_keys() {
                self.by_segment.entry(*key).or_default().push(rank);
            }
            return;
        }
        for creative in &campaign.creatives {
            let list = match (creative.media, creative.w, creative.h) {
                (MediaType::Banner, Some(w), Some(h)) => self.banner_by_size.entry((w, h)).or_default(),
                (media, _, _) => &mut self.by_media[media_slot(media)],
            };
            if list.last() != Some(&rank) {
                list.push(rank);
            }
        }
    }

    pub fn campaign(&self, rank: u32) -> &CompiledCampaign {
        &self.campaigns[rank as usize]
    }

    pub fn campaign_by_id(&self, id: &str) -> Option<&CompiledCampaign> {
        self.by_id.get(id).map(|&rank| self.campaign(rank))
    }

    /// Open-auction campaigns without segment requirements that have a
    /// banner creative of this size.
    pub fn banner_open(&self, w: i64, h: i64) -> &[u32] {
        self.banner_by_size.get(&(w, h)).map_or(&[], Vec::as_slice)
    }

    /// Open-auction campaigns without segment requirements for a non-banner
    /// medium.
    pub fn media_open(&self, media: MediaType) -> &[u32] {
        &self.by_media[media_slot(media)]
    }

    /// Campaigns that need one of the user's segments, filed under `key`.
    pub fn segment_targeted(&self, key: SegmentKey) -> &[u32] {
        self.by_segment.get(&key).map_or(&[], Vec::as_slice)
    }

    pub fn has_segment_targeting(&self) -> bool {
        !self.by_segment.is_empty()
    }

    /// Campaigns that may bid in a deal.
    pub fn deal_campaigns(&self, deal_id: &str) -> &[u32] {
        self.by_deal.get(deal_id).map_or(&[], Vec::as_slice)
    }
}

/// Walks several ascending rank lists as one, without duplicates.
pub struct MergedRanks<'a> {
    lists: Vec<&'a [u32]>,
}

impl<'a> MergedRanks<'a> {
    pub fn new(lists: Vec<&'a [u32]>) -> MergedRanks<'a> {
        MergedRanks { lists }
    }
}

impl Iterator for MergedRanks<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let next = self.lists.iter().filter_map(|l| l.first().copied()).min()?;
        for list in &mut self.lists {
            if list.first() == Some(&next) {
                *list = &list[1..];
            }
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pctr_is_learned_per_creative_and_smoothed_towards_the_prior() {
        let state = CampaignState::default();
        assert_eq!(state.pctr("a", 2_000), 2_000, "no data: the prior");
        for i in 0..1000 {
            state.count_impression("a");
            if i % 20 == 0 {
                state.count_click("a");
            }
        }
        // (50 clicks + 0.2 % × 1000 prior impressions) / 2000 = 2.6 %.
        assert_eq!(state.pctr("a", 2_000), 26_000);
        assert_eq!(state.pctr("b", 2_000), 2_000, "another creative keeps the prior");
        assert_eq!(state.campaign_pctr(2_000), 26_000);
        assert_eq!(smoothed(10, 50, 0), 9_900, "clicks never exceed impressions");
    }

    #[test]
    fn merged_ranks_are_ascending_and_unique() {
        let (a, b, c) = ([1, 4, 9], [2, 4, 5], [9, 10]);
        let merged: Vec<u32> = MergedRanks::new(vec![&a, &b, &c, &[]]).collect();
        assert_eq!(merged, [1, 2, 4, 5, 9, 10]);
    }
}
