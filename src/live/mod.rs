//! Live state: what changes while the bidder runs, apart from the
//! immutable campaign index.
//!
//! - [`state`]: one campaign's counters (spend, pacing, counts, pCTR).
//! - [`registry`]: those states by campaign id, kept across index rebuilds
//!   and retired only after the campaign's last event window has closed.
//! - [`mod@apply`]: the one function through which an event changes live state.
//! - [`shared`]: the seam for what nodes of a cluster share (dedup claims,
//!   events, budget grants, control changes), embedded on a single node.
//! - [`dedup`]: the compact, sharded table an embedded node keeps its
//!   dedup claims and counted bits in.
//! - [`replicated`]: what a node of a cluster tells the others (applied
//!   events, control changes), queued for the publisher.
//! - [`contact`]: advertisers' live state (spend across their campaigns,
//!   responses for capacity caps) and each world's link from campaigns to
//!   their advertisers' contact rules ([`contact::ContactIndex`]).
//! - [`World`]: what the bid and tracking paths load once per request —
//!   the campaign index with each campaign's live-state handle, and the URL
//!   signer for this config's keys. Immutable, swapped whole. It also
//!   gives each campaign's "why not bidding" breakdown
//!   ([`World::why_not_bidding`]): the rules' counts in its live state plus
//!   the index-level counts derived from the index's per-bucket tally
//!   ([`crate::campaigns::tally`]), which a world folds into the live
//!   state when it is dropped (replaced by a new one; the reloader drops
//!   the old world on its own thread, not a bid thread).

pub mod apply;
pub mod contact;
pub mod dedup;
pub mod registry;
pub mod replicated;
pub mod shared;
pub mod signed_out;
pub mod state;

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;

pub use apply::{LiveEvent, Reservation, Target, apply};
pub use contact::{AdvertiserLive, AdvertiserState, ContactIndex};
pub use registry::{LiveStates, Retained};
pub use shared::{Embedded, SharedState};
pub use state::{CampaignState, DayCount};

use crate::audience::suppression::Suppressions;
use crate::campaigns::index::{CampaignIndex, CompiledCampaign};
use crate::campaigns::tally::TallyCounts;
use crate::campaigns::targeting::FilterReason;
use crate::config::Config;
use crate::ledger::bids::BidCounter;
use crate::metrics::{CampaignFigure, CampaignFigures};
use crate::signing::Signer;

/// A compiled campaign with its live state.
pub type LiveCampaign = CompiledCampaign<Arc<CampaignState>>;

/// Everything the bid path needs, immutable, swapped whole: the campaign
/// index (with live-state handles), the signer of tracking URLs, and the
/// contact rules of each campaign's advertiser.
pub struct World {
    /// Campaigns ranked and indexed, with the settings.
    pub index: CampaignIndex<Arc<CampaignState>>,
    /// Signs the tracking URLs of bids made with this world's key.
    pub signer: Signer,
    /// Each ranked campaign's advertiser (rules and live state) and
    /// priority.
    pub contact: ContactIndex,
    /// Users never to be bid on (the live list, shared by every world).
    pub suppressions: Arc<Suppressions>,
}

impl World {
    /// Compiles a validated config; each campaign's and advertiser's state
    /// comes from (or is created in) `live`.
    pub fn build(config: Config, live: &LiveStates) -> World {
        let Config { settings, campaigns } = config;
        let signer = Signer::new(&settings.signing_key, settings.previous_signing_key.as_deref());
        let advertisers = contact::advertisers(&settings.advertisers, |id| live.advertiser(id));
        let index = CampaignIndex::build(settings, campaigns, |c| {
            let advertiser = advertisers.iter().find(|a| a.id == c.advertiser).cloned();
            live.state_with(c, advertiser)
        });
        let contact = ContactIndex::build(advertisers, index.campaigns.iter().map(|c| &c.campaign), |id| {
            live.advertiser(id)
        });
        World {
            index,
            signer,
            contact,
            suppressions: live.suppressions.clone(),
        }
    }

    /// Where the events of the campaign at `rank` land (its advertiser
    /// included).
    pub fn target(&self, rank: u32) -> Target<'_> {
        let c = self.index.campaign(rank);
        Target {
            state: &c.state,
            time_zone: &c.campaign.time_zone,
            campaign_key: c.key,
            advertiser: Some(self.contact.advertiser_of(rank)),
        }
    }

    /// Sets each capacity-capped campaign's and advertiser's "at capacity"
    /// flag from its responses of the current local hour and day: run once
    /// a second (`App::tick`), so bidding stops within a second of a cap
    /// being reached and resumes within a second of the hour (or day)
    /// turning.
    pub fn check_capacity(&self, now: jiff::Timestamp) {
        for c in &self.index.campaigns {
            if !c.campaign.capacity.is_none() {
                let local = crate::clock::local_seconds(now, &c.campaign.time_zone);
                let reached = contact::capacity_reached(&c.campaign.capacity, &c.state.responses, local);
                c.state.at_capacity.store(reached, Ordering::Relaxed);
            }
        }
        for a in &self.contact.advertisers {
            if !a.rules.capacity.is_none() {
                let reached = contact::capacity_reached(&a.rules.capacity, &a.state.responses, a.local_seconds(now));
                a.state.at_capacity.store(reached, Ordering::Relaxed);
            }
        }
    }

    /// Every campaign's bids per exchange since start, with its UTC offset
    /// at `now`, for the bid-count flusher. Exchange ids are read against
    /// this world's settings: were the exchange list reordered by a reload,
    /// the counts since the last flush (a few seconds) would be filed under
    /// the new names.
    pub fn bid_counters(&self, now: jiff::Timestamp) -> Vec<BidCounter> {
        let mut counters = Vec::new();
        for c in &self.campaigns {
            let utc_offset = c.campaign.time_zone.to_offset(now).seconds();
            for (id, total) in c.state.exchange_bids.totals() {
                let Some(exchange) = self.settings.exchanges.get(id.0 as usize) else {
                    continue;
                };
                counters.push(BidCounter {
                    campaign: c.campaign.id.clone(),
                    exchange: exchange.name.clone(),
                    utc_offset,
                    total,
                });
            }
        }
        counters
    }
}

impl World {
    /// A campaign's "why not bidding" breakdown since start: how many times
    /// each rule stopped it, by the rule's label (as in
    /// `bullseye_campaign_filtered_total`), index-level reasons included,
    /// zero counts left out; `None` when no campaign has this id.
    pub fn why_not_bidding(&self, id: &str) -> Option<Vec<(&'static str, u64)>> {
        let rank = self.index.rank_of(id)?;
        Some(self.breakdown(&self.index.tally().counts(), rank))
    }

    /// The breakdown of the campaign at `rank`, given this index's counts.
    fn breakdown(&self, counts: &TallyCounts, rank: u32) -> Vec<(&'static str, u64)> {
        let c = self.index.campaign(rank);
        let mut filtered: [u64; FilterReason::COUNT] =
            std::array::from_fn(|i| c.state.filtered[i].load(Ordering::Relaxed));
        for (reason, count) in counts.excluded(self.index.entry(rank)) {
            filtered[reason as usize] += count;
        }
        FilterReason::ALL
            .iter()
            .map(|&reason| (reason.as_str(), filtered[reason as usize]))
            .filter(|&(_, count)| count > 0)
            .collect()
    }
}

/// The index-level counts live in the index they describe; when a world is
/// replaced (and its last reader done), they move into the campaigns' live
/// state, which outlives it. Until then a breakdown misses them: it never
/// counts them twice.
impl Drop for World {
    fn drop(&mut self) {
        let counts = self.index.tally().counts();
        if counts.impressions() == 0 {
            return;
        }
        for (rank, c) in self.index.campaigns.iter().enumerate() {
            for (reason, count) in counts.excluded(self.index.entry(rank as u32)) {
                if count > 0 {
                    c.state.filtered[reason as usize].fetch_add(count, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Deref for World {
    type Target = CampaignIndex<Arc<CampaignState>>;

    fn deref(&self) -> &Self::Target {
        &self.index
    }
}

/// Per-campaign metrics from the current world.
impl CampaignFigures for Arc<ArcSwap<World>> {
    fn figures(&self) -> Vec<CampaignFigure> {
        let world = self.load();
        let counts = world.index.tally().counts();
        world
            .campaigns
            .iter()
            .enumerate()
            .map(|(rank, c)| CampaignFigure {
                campaign: c.campaign.id.clone(),
                bids: c.state.bids.load(Ordering::Relaxed),
                filtered: world.breakdown(&counts, rank as u32),
            })
            .collect()
    }
}
