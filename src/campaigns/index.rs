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

use jiff::tz::TimeZone;

use crate::audience::SegmentKey;
use crate::money::Micros;
use crate::openrtb::MediaType;
use crate::settings::{ExchangeId, ExchangeSet, Settings};

use super::model::{Campaign, Pricing, Status};

/// Learned click-through rates of a campaign's creatives: what a CPC
/// campaign's value depends on. Implemented by the live campaign state (an
/// upper layer), and by `()` (no learning: the prior) for tools and tests.
pub trait LearnedRates {
    /// The predicted click-through rate of a creative (ppm).
    fn pctr(&self, creative: &str, prior: u32) -> u32;
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
}

/// What each creative of a campaign is worth (CPM, base currency): the max
/// CPM, or for CPC campaigns `max_cpc × pCTR × 1000` with the creative's
/// learned pCTR.
pub fn creative_values(campaign: &Campaign, rates: &impl LearnedRates) -> Vec<Micros> {
    campaign
        .creatives
        .iter()
        .map(|creative| match campaign.pricing {
            Pricing::Cpm => campaign.max_bid,
            Pricing::Cpc => {
                let pctr = rates.pctr(&creative.id, campaign.pctr_prior);
                campaign.max_bid.mul_div_floor(pctr as i64, 1000)
            }
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
    /// The distinct time zones of the campaigns; [`CompiledCampaign::tz`] indexes it.
    pub time_zones: Vec<TimeZone>,
    /// The default exchange's id, looked up once (requests without an
    /// exchange in their path come from it).
    pub default_exchange: ExchangeId,
    banner_by_size: HashMap<(i64, i64), Vec<u32>>,
    by_media: [Vec<u32>; 4],
    by_segment: HashMap<SegmentKey, Vec<u32>>,
    by_deal: HashMap<String, Vec<u32>>,
    by_id: HashMap<String, u32>,
}

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
            banner_by_size: HashMap::new(),
            by_media: Default::default(),
            by_segment: HashMap::new(),
            by_deal: HashMap::new(),
            by_id: HashMap::new(),
            default_exchange: settings.default_exchange_id(),
            settings,
        };
        for (rank, (campaign, state, value)) in campaigns.into_iter().enumerate() {
            let rank = rank as u32;
            let tz = match time_zones.iter().position(|t| t == &campaign.time_zone) {
                Some(i) => i,
                None => {
                    time_zones.push(campaign.time_zone.clone());
                    time_zones.len() - 1
                }
            };
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
            if campaign.status == Status::Active {
                world.index(rank, &campaign);
            }
            world.campaigns.push(CompiledCampaign {
                key: campaign.key(),
                value,
                creative_values: creative_values(&campaign, &state),
                markup: campaign.creatives.iter().map(super::markup::Template::new).collect(),
                tz,
                exchanges,
                state,
                campaign,
            });
        }
        world.time_zones = time_zones;
        world
    }
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
        for creative in campaign.creatives.iter().filter(|c| !c.paused) {
            let list = match (creative.media, creative.w, creative.h) {
                (MediaType::Banner, Some(w), Some(h)) => self.banner_by_size.entry((w, h)).or_default(),
                (media, _, _) => &mut self.by_media[media_slot(media)],
            };
            if list.last() != Some(&rank) {
                list.push(rank);
            }
        }
    }

    /// The campaign at `rank`; panics when out of range (ranks come from this index).
    pub fn campaign(&self, rank: u32) -> &CompiledCampaign<S> {
        &self.campaigns[rank as usize]
    }

    /// The campaign with this id, active or paused; `None` when it is not in the config.
    pub fn campaign_by_id(&self, id: &str) -> Option<&CompiledCampaign<S>> {
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

    /// True when some active campaign requires a segment, so selection must look the user's segments up.
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
