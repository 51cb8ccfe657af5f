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
//!   signer for this config's keys. Immutable, swapped whole.

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
        world
            .campaigns
            .iter()
            .map(|c| CampaignFigure {
                campaign: c.campaign.id.clone(),
                bids: c.state.bids.load(Ordering::Relaxed),
                filtered: FilterReason::ALL
                    .iter()
                    .map(|&reason| {
                        (
                            reason.as_str(),
                            c.state.filtered[reason as usize].load(Ordering::Relaxed),
                        )
                    })
                    .filter(|&(_, count)| count > 0)
                    .collect(),
            })
            .collect()
    }
}
