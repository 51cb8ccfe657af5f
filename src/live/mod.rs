//! Live state: what changes while the bidder runs, apart from the
//! immutable campaign index.
//!
//! - [`state`]: one campaign's counters (spend, pacing, counts, pCTR).
//! - [`registry`]: those states by campaign id, kept across index rebuilds
//!   and retired only after the campaign's last event window has closed.
//! - [`mod@apply`]: the one function through which an event changes live state.
//! - [`shared`]: the seam for what nodes of a cluster share (dedup claims,
//!   events, budget grants, control changes), embedded on a single node.
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
pub mod registry;
pub mod shared;
pub mod state;

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;

pub use apply::{LiveEvent, Reservation, Target, apply};
pub use registry::{LiveStates, Retained};
pub use shared::{Embedded, SharedState};
pub use state::{CampaignState, DayCount};

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
/// index (with live-state handles) and the signer of tracking URLs.
pub struct World {
    /// Campaigns ranked and indexed, with the settings.
    pub index: CampaignIndex<Arc<CampaignState>>,
    /// Signs the tracking URLs of bids made with this world's key.
    pub signer: Signer,
}

impl World {
    /// Compiles a validated config; each campaign's state comes from (or is
    /// created in) `live`.
    pub fn build(config: Config, live: &LiveStates) -> World {
        let Config { settings, campaigns } = config;
        let signer = Signer::new(&settings.signing_key, settings.previous_signing_key.as_deref());
        World {
            index: CampaignIndex::build(settings, campaigns, |c| live.state(c)),
            signer,
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

impl LiveCampaign {
    /// Where this campaign's events land.
    pub fn target(&self) -> Target<'_> {
        Target {
            state: &self.state,
            time_zone: &self.campaign.time_zone,
            campaign_key: self.key,
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
