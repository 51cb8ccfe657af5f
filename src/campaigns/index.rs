//! The campaign world: every campaign compiled, ranked and indexed.
//!
//! Campaigns are ranked once, by static value (the CPM they bid at most,
//! highest first, ties by id), and the indexes hold ranks in ascending
//! order. Selection merges the few lists that can apply to an impression —
//! the banner sizes it offers, its other media, the campaigns filed under
//! the user's segments, the deals it carries — and walks them best first,
//! stopping at the first eligible campaign. Its cost grows with the number
//! of campaigns that are *tried*, not with the number that exist.
//!
//! Each format list (a banner size, a medium) is a numbered bucket, and the
//! segment-targeted campaigns form numbered segment groups (one per
//! distinct set of index keys), so that the campaigns an impression was
//! never offered can be counted per bucket ([`super::tally`]).

use std::collections::HashMap;

/// The index's maps, read on every request: keys are the index's own
/// (sizes, segments, deal and campaign ids), so a fast hash without
/// SipHash's flood resistance suits them.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

use jiff::tz::TimeZone;

use crate::audience::SegmentKey;
use crate::money::Micros;
use crate::openrtb::MediaType;
use crate::settings::{ExchangeId, ExchangeSet, Settings};

use super::model::{Campaign, PREDICTION_CLAMP, Status};
use super::tally::{IndexEntry, IndexTally};

/// Learned rates of a campaign and its creatives: what a value-based
/// campaign's value depends on. Implemented by the live campaign state (an
/// upper layer), and by `()` (no learning: the priors) for tools and tests.
pub trait LearnedRates {
    /// The predicted click-through rate of a creative (ppm).
    fn pctr(&self, creative: &str, prior: u32) -> u32;

    /// The campaign's P(conversion | impression), ppb, smoothed towards
    /// `prior` (ppb).
    fn pcvr(&self, prior: u32) -> u32 {
        prior
    }

    /// The campaign's mean order value per conversion, smoothed towards
    /// `prior`.
    fn order_value(&self, prior: Micros) -> Micros {
        prior
    }
}

impl LearnedRates for () {
    fn pctr(&self, _creative: &str, prior: u32) -> u32 {
        prior
    }
}

impl<T: LearnedRates> LearnedRates for std::sync::Arc<T> {
    fn pctr(&self, creative: &str, prior: u32) -> u32 {
        (**self).pctr(creative, prior)
    }

    fn pcvr(&self, prior: u32) -> u32 {
        (**self).pcvr(prior)
    }

    fn order_value(&self, prior: Micros) -> Micros {
        (**self).order_value(prior)
    }
}

/// What each creative of a campaign is worth (CPM, base currency), at the
/// campaign's learned rates ([`Campaign::value_at`]): the max CPM, or for
/// CPC campaigns `max_cpc × pCTR × 1000` with the creative's learned pCTR,
/// for CPA and CPS campaigns their goal times the campaign's learned
/// conversion rate (and order value), capped by `max_cpm`.
pub fn creative_values(campaign: &Campaign, rates: &impl LearnedRates) -> Vec<Micros> {
    let goal = &campaign.goal;
    let pcvr = u64::from(rates.pcvr(goal.pcvr_prior));
    let order_value = rates.order_value(goal.order_value_prior);
    campaign
        .creatives
        .iter()
        .map(|creative| {
            let pctr = u64::from(rates.pctr(&creative.id, campaign.pctr_prior)) * 1000;
            campaign.value_at(pctr, pcvr, order_value)
        })
        .collect()
}

/// The most a campaign bids: its best creative's value.
pub fn value_cpm(campaign: &Campaign, rates: &impl LearnedRates) -> Micros {
    creative_values(campaign, rates)
        .into_iter()
        .max()
        .unwrap_or(Micros::ZERO)
}

/// A campaign ready for the bid path. `S` is the handle to its live state
/// (spend, pacing, counts), which an upper layer owns; the index only
/// carries it so that the bid path reaches it in one step.
#[derive(Debug)]
pub struct CompiledCampaign<S> {
    /// The validated campaign.
    pub campaign: Campaign,
    /// Stable hash of the id (frequency-cap key).
    pub key: u64,
    /// Static value: the CPM it bids at most, base currency.
    pub value: Micros,
    /// Value of each creative (differs for CPC campaigns, by pCTR).
    pub creative_values: Vec<Micros>,
    /// The most a bid of this campaign is worth on any impression: its
    /// value, or for a value-based campaign [`PREDICTION_CLAMP`] times it
    /// (a prediction's most), capped by `max_cpm`; times its experiment's
    /// largest bid multiplier.
    pub upper_value: Micros,
    /// Each creative's markup, compiled for the response.
    pub markup: Vec<super::markup::Template>,
    /// Index into [`CampaignIndex::time_zones`].
    pub tz: usize,
    /// The exchanges the campaign buys on.
    pub exchanges: ExchangeSet,
    /// The campaign's live state (owned by a registry keyed by id).
    pub state: S,
}

/// Every campaign compiled, ranked and indexed, with the settings it was
/// validated against: immutable, built off the hot path.
pub struct CampaignIndex<S> {
    /// The settings the campaigns were validated against.
    pub settings: Settings,
    /// In rank order: best static value first.
    pub campaigns: Vec<CompiledCampaign<S>>,
    /// By rank: the largest [`CompiledCampaign::upper_value`] of the
    /// campaigns from that rank on; a walk in rank order that already holds
    /// a better bid can stop there.
    upper_from: Vec<Micros>,
    /// Whether any active campaign is value-based (CPC, CPA, CPS): only then
    /// does selection predict per impression.
    value_based: bool,
    /// The distinct time zones of the campaigns, their offsets worked out
    /// once; [`CompiledCampaign::tz`] indexes it.
    pub time_zones: Vec<crate::clock::Zone>,
    /// The default exchange's id, looked up once (requests without an
    /// exchange in their path come from it).
    pub default_exchange: ExchangeId,
    /// Banner sizes: (format bucket, ranks); buckets from [`MEDIA_BUCKETS`] on.
    banner_by_size: FastMap<(i64, i64), (u32, Vec<u32>)>,
    /// Other media, by [`media_slot`] (which is also their format bucket).
    by_media: [Vec<u32>; MEDIA_BUCKETS],
    by_segment: FastMap<SegmentKey, SegmentBucket>,
    by_deal: FastMap<String, Vec<u32>>,
    by_id: FastMap<String, u32>,
    /// Where each campaign is filed, by rank.
    entries: Vec<IndexEntry>,
    tally: IndexTally,
}

/// The campaigns filed under one segment key: their ranks, and the
/// segment groups they belong to.
#[derive(Debug, Default)]
struct SegmentBucket {
    ranks: Vec<u32>,
    groups: Vec<u32>,
}

/// Format buckets `0..4` are the media lists; banner sizes follow.
const MEDIA_BUCKETS: usize = 4;

fn media_slot(media: MediaType) -> usize {
    media.mtype() as usize - 1
}

impl<S: LearnedRates> CampaignIndex<S> {
    /// Compiles validated campaigns; `state_of` gives each its live-state
    /// handle (whose learned rates set CPC values). Paused campaigns are
    /// left out of the indexes (a status change rebuilds the index).
    pub fn build(settings: Settings, campaigns: Vec<Campaign>, state_of: impl FnMut(&Campaign) -> S) -> Self {
        let mut campaigns: Vec<(Campaign, S, Micros)> = campaigns.into_iter().map(with_state(state_of)).collect();
        campaigns.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.id.cmp(&b.0.id)));
        let mut time_zones: Vec<TimeZone> = Vec::new();
        let mut world = CampaignIndex {
            campaigns: Vec::with_capacity(campaigns.len()),
            time_zones: Vec::new(),
            banner_by_size: FastMap::default(),
            by_media: Default::default(),
            by_segment: FastMap::default(),
            by_deal: FastMap::default(),
            by_id: FastMap::default(),
            entries: Vec::with_capacity(campaigns.len()),
            tally: IndexTally::default(),
            upper_from: Vec::new(),
            value_based: false,
            default_exchange: settings.default_exchange_id(),
            settings,
        };
        let mut segment_groups = HashMap::new();
        for (rank, (campaign, state, value)) in campaigns.into_iter().enumerate() {
            let rank = rank as u32;
            let tz = zone_index(&mut time_zones, &campaign.time_zone);
            let exchanges = if campaign.exchanges.is_empty() {
                ExchangeSet::All
            } else {
                ExchangeSet::of(
                    campaign
                        .exchanges
                        .iter()
                        .filter_map(|name| world.settings.exchange_id(name)),
                )
            };
            world.by_id.insert(campaign.id.clone(), rank);
            let entry = if campaign.status == Status::Active {
                world.index(rank, &campaign, &mut segment_groups)
            } else {
                IndexEntry::Paused
            };
            world.entries.push(entry);
            world.campaigns.push(CompiledCampaign {
                key: campaign.key(),
                value,
                upper_value: upper_value(&campaign, value),
                creative_values: creative_values(&campaign, &state),
                markup: campaign.creatives.iter().map(super::markup::Template::new).collect(),
                tz,
                exchanges,
                state,
                campaign,
            });
        }
        world.time_zones = time_zones.into_iter().map(crate::clock::Zone::new).collect();
        world.note_values();
        world.tally = IndexTally::new(MEDIA_BUCKETS + world.banner_by_size.len(), segment_groups.len());
        world
    }
}

impl<S> CampaignIndex<S> {
    /// Works out what selection needs of the campaigns' values: the upper
    /// bounds from each rank on, and whether any is value-based.
    fn note_values(&mut self) {
        self.upper_from = suffix_maxima(self.campaigns.iter().map(|c| c.upper_value));
        self.value_based = self
            .campaigns
            .iter()
            .any(|c| c.campaign.status == Status::Active && c.campaign.pricing.is_value_based());
    }
}

/// The position of `zone` in `zones`, added if new.
fn zone_index(zones: &mut Vec<TimeZone>, zone: &TimeZone) -> usize {
    match zones.iter().position(|t| t == zone) {
        Some(i) => i,
        None => {
            zones.push(zone.clone());
            zones.len() - 1
        }
    }
}

/// See [`CompiledCampaign::upper_value`].
fn upper_value(campaign: &Campaign, value: Micros) -> Micros {
    let predicted_most = if campaign.pricing.is_value_based() {
        value
            .mul_div_floor(PREDICTION_CLAMP as i64, 1)
            .min(campaign.goal.max_cpm)
    } else {
        value
    };
    let multiplier = campaign
        .experiment
        .as_ref()
        .and_then(|e| e.arms.iter().map(|a| a.bid_multiplier_ppm).max())
        .unwrap_or(1_000_000)
        .max(1_000_000);
    predicted_most.mul_div_floor(i64::from(multiplier), 1_000_000)
}

/// `out[i]` is the largest of `values[i..]` (and zero past the end).
fn suffix_maxima(values: impl DoubleEndedIterator<Item = Micros> + ExactSizeIterator) -> Vec<Micros> {
    let mut out = vec![Micros::ZERO; values.len()];
    let mut most = Micros::ZERO;
    for (i, value) in values.enumerate().rev() {
        most = most.max(value);
        out[i] = most;
    }
    out
}

/// Pairs a campaign with its live-state handle and its value.
fn with_state<S: LearnedRates>(
    mut state_of: impl FnMut(&Campaign) -> S,
) -> impl FnMut(Campaign) -> (Campaign, S, Micros) {
    move |campaign| {
        let state = state_of(&campaign);
        let value = value_cpm(&campaign, &state);
        (campaign, state, value)
    }
}

impl<S> CampaignIndex<S> {
    /// Files an active campaign; `segment_groups` numbers the distinct
    /// sets of index keys seen so far.
    fn index(
        &mut self,
        rank: u32,
        campaign: &Campaign,
        segment_groups: &mut HashMap<Vec<SegmentKey>, u32>,
    ) -> IndexEntry {
        for deal in &campaign.targeting.deals {
            self.by_deal.entry(deal.clone()).or_default().push(rank);
        }
        if campaign.targeting.deals_only {
            return IndexEntry::DealsOnly;
        }
        let rule = &campaign.targeting.segments;
        if rule.requires_membership() {
            let mut keys = rule.index_keys().to_vec();
            keys.sort_unstable();
            keys.dedup();
            let next = segment_groups.len() as u32;
            let group = *segment_groups.entry(keys).or_insert(next);
            for key in rule.index_keys() {
                let bucket = self.by_segment.entry(*key).or_default();
                bucket.ranks.push(rank);
                if !bucket.groups.contains(&group) {
                    bucket.groups.push(group);
                }
            }
            return IndexEntry::Segment(group);
        }
        let mut formats = Vec::with_capacity(campaign.creatives.len());
        for creative in campaign.creatives.iter().filter(|c| !c.paused) {
            let next = (MEDIA_BUCKETS + self.banner_by_size.len()) as u32;
            let (bucket, list) = match (creative.media, creative.w, creative.h) {
                (MediaType::Banner, Some(w), Some(h)) => {
                    let (bucket, list) = self.banner_by_size.entry((w, h)).or_insert_with(|| (next, Vec::new()));
                    (*bucket, list)
                }
                (media, _, _) => (media_slot(media) as u32, &mut self.by_media[media_slot(media)]),
            };
            if list.last() != Some(&rank) {
                list.push(rank);
            }
            formats.push(bucket);
        }
        formats.sort_unstable();
        formats.dedup();
        IndexEntry::Formats(formats.into())
    }

    /// The campaign at `rank`; panics when out of range (ranks come from this index).
    pub fn campaign(&self, rank: u32) -> &CompiledCampaign<S> {
        &self.campaigns[rank as usize]
    }

    /// The most any campaign from `rank` on can bid (see
    /// [`CompiledCampaign::upper_value`]).
    #[inline]
    pub fn upper_from(&self, rank: u32) -> Micros {
        self.upper_from.get(rank as usize).copied().unwrap_or(Micros::ZERO)
    }

    /// Whether any active campaign's value is predicted per impression.
    #[inline]
    pub fn has_value_based(&self) -> bool {
        self.value_based
    }

    /// The rank of the campaign with this id, active or paused.
    pub fn rank_of(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// The campaign with this id, active or paused; `None` when it is not in the config.
    pub fn campaign_by_id(&self, id: &str) -> Option<&CompiledCampaign<S>> {
        self.by_id.get(id).map(|&rank| self.campaign(rank))
    }

    /// Open-auction campaigns without segment requirements that have a
    /// banner creative of this size, with their format bucket.
    pub fn banner_open(&self, w: i64, h: i64) -> Option<(u32, &[u32])> {
        self.banner_by_size
            .get(&(w, h))
            .map(|(bucket, ranks)| (*bucket, ranks.as_slice()))
    }

    /// Open-auction campaigns without segment requirements for a non-banner
    /// medium, with their format bucket.
    pub fn media_open(&self, media: MediaType) -> (u32, &[u32]) {
        let slot = media_slot(media);
        (slot as u32, &self.by_media[slot])
    }

    /// Campaigns that need one of the user's segments, filed under `key`,
    /// and the segment groups they form.
    pub fn segment_targeted(&self, key: SegmentKey) -> Option<(&[u32], &[u32])> {
        self.by_segment
            .get(&key)
            .map(|bucket| (bucket.ranks.as_slice(), bucket.groups.as_slice()))
    }

    /// True when some active campaign requires a segment, so selection must look the user's segments up.
    pub fn has_segment_targeting(&self) -> bool {
        !self.by_segment.is_empty()
    }

    /// Where the campaign at `rank` is filed.
    pub fn entry(&self, rank: u32) -> &IndexEntry {
        &self.entries[rank as usize]
    }

    /// The index-level counts of this index (see [`super::tally`]).
    pub fn tally(&self) -> &IndexTally {
        &self.tally
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
    /// Merges `lists`, each in ascending rank order.
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
    fn merged_ranks_are_ascending_and_unique() {
        let (a, b, c) = ([1, 4, 9], [2, 4, 5], [9, 10]);
        let merged: Vec<u32> = MergedRanks::new(vec![&a, &b, &c, &[]]).collect();
        assert_eq!(merged, [1, 2, 4, 5, 9, 10]);
    }
}
