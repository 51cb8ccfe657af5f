//! Live campaign states by campaign id, kept across index rebuilds.
//!
//! A campaign's state outlives its place in the index: a paused, archived or
//! renamed-away campaign still has bids in flight whose notices bill it, so
//! its state is retired only once it has been out of the index for longer
//! than the longest window in which an event can still reach it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::apply::Target;
use super::contact::{AdvertiserLive, AdvertiserState};
use super::state::CampaignState;
use crate::audience::suppression::Suppressions;
use crate::campaigns::Campaign;
use crate::campaigns::model::DayBudget;
use crate::money::Micros;

/// Campaign states by id. Locked only while an index is built or swept
/// (control path, a few times a minute at most), never by the bid path.
/// Beside them: advertisers' states by id (never retired: there are few),
/// and the do-not-contact list, which every world shares.
#[derive(Debug, Default)]
pub struct LiveStates {
    states: Mutex<HashMap<String, Entry>>,
    advertisers: Mutex<HashMap<String, Arc<AdvertiserState>>>,
    /// Users never to be bid on, per advertiser or for everyone.
    pub suppressions: Arc<Suppressions>,
    /// Events and control changes for the other nodes of a cluster
    /// (disabled alone).
    pub outbox: Arc<super::replicated::Outbox>,
    /// Console sessions signed out here or on another node.
    pub signed_out: super::signed_out::SignedOut,
    /// Budgets are leased (cluster mode): every state starts with nothing
    /// to spend until the leases grant it some.
    leased: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct Entry {
    retained: Retained,
    /// When a sweep first found the campaign missing from the index.
    left_index: Option<Timestamp>,
}

/// A campaign's live state with what its events need once the campaign
/// may have left the index: where they land and the budget they count
/// against, as last configured.
#[derive(Clone, Debug)]
pub struct Retained {
    /// The live state.
    pub state: Arc<CampaignState>,
    /// The campaign's time zone (its local day).
    pub time_zone: TimeZone,
    /// The frequency-cap key of the campaign.
    pub campaign_key: u64,
    /// The daily budget, base-currency micros.
    pub daily_budget: Micros,
    /// The daily and lifetime budgets, as last configured.
    pub day_budget: DayBudget,
    /// The advertiser (its postback secret signs its conversions).
    pub advertiser: String,
    /// The advertiser as last configured, with its live state: where the
    /// campaign's events count across the advertiser's campaigns.
    pub advertiser_live: Option<Arc<AdvertiserLive>>,
}

impl Retained {
    /// Where this campaign's events land.
    pub fn target(&self) -> Target<'_> {
        Target {
            state: &self.state,
            time_zone: &self.time_zone,
            campaign_key: self.campaign_key,
            advertiser: self.advertiser_live.as_deref(),
        }
    }
}

impl LiveStates {
    /// Live states over this do-not-contact list (read from the data
    /// directory by the application).
    pub fn with_suppressions(suppressions: Suppressions) -> LiveStates {
        LiveStates {
            suppressions: Arc::new(suppressions),
            ..LiveStates::default()
        }
    }

    /// The state of `campaign` (created on first use), noting its time
    /// zone and budget as now configured.
    pub fn state(&self, campaign: &Campaign) -> Arc<CampaignState> {
        self.state_with(campaign, None)
    }

    /// [`LiveStates::state`], noting its advertiser as now configured
    /// (`None` keeps the one noted before).
    pub fn state_with(&self, campaign: &Campaign, advertiser: Option<Arc<AdvertiserLive>>) -> Arc<CampaignState> {
        let mut states = self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let retained = Retained {
            state: Arc::default(),
            time_zone: campaign.time_zone.clone(),
            campaign_key: campaign.key(),
            daily_budget: campaign.daily_budget,
            day_budget: campaign.day_budget(),
            advertiser: campaign.advertiser.clone(),
            advertiser_live: advertiser.clone(),
        };
        let entry = states.entry(campaign.id.clone()).or_insert_with(|| Entry {
            retained: retained.clone(),
            left_index: None,
        });
        entry.left_index = None;
        entry.retained = Retained {
            state: entry.retained.state.clone(),
            advertiser_live: advertiser.or_else(|| entry.retained.advertiser_live.clone()),
            ..retained
        };
        if self.leased.load(std::sync::atomic::Ordering::Relaxed) {
            entry.retained.state.spend.cap_if_uncapped();
        }
        entry.retained.state.clone()
    }

    /// Budgets are leased from now on (cluster mode): every campaign's and
    /// advertiser's state, those to come included, may spend nothing until
    /// the leases set its cap.
    pub fn lease_all(&self) {
        self.leased.store(true, std::sync::atomic::Ordering::Relaxed);
        let states = self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for entry in states.values() {
            entry.retained.state.spend.cap_if_uncapped();
        }
        let advertisers = self.advertisers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for state in advertisers.values() {
            state.spend.cap_if_uncapped();
        }
    }

    /// The live state of advertiser `id` (created on first use).
    pub fn advertiser(&self, id: &str) -> Arc<AdvertiserState> {
        let mut advertisers = self.advertisers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let state = advertisers.entry(id.to_string()).or_default().clone();
        if self.leased.load(std::sync::atomic::Ordering::Relaxed) {
            state.spend.cap_if_uncapped();
        }
        state
    }

    /// The state of a campaign that has one, in the index or not.
    pub fn get(&self, campaign_id: &str) -> Option<Retained> {
        let states = self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        states.get(campaign_id).map(|entry| entry.retained.clone())
    }

    /// Notes which campaigns have left the index, and retires those that
    /// left more than `keep_for_secs` ago (no event can reach them any more).
    /// Returns how many were retired.
    pub fn retire(&self, in_index: impl Fn(&str) -> bool, now: Timestamp, keep_for_secs: i64) -> usize {
        let mut states = self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = states.len();
        states.retain(|id, entry| {
            if in_index(id) {
                entry.left_index = None;
                return true;
            }
            let left = *entry.left_index.get_or_insert(now);
            now.as_second() - left.as_second() <= keep_for_secs
        });
        before - states.len()
    }

    /// How many campaigns have live state.
    pub fn len(&self) -> usize {
        self.states
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// True when no campaign has live state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign(id: &str) -> Campaign {
        let campaigns = format!(
            "[[campaign]]\nid = \"{id}\"\nadvertiser = \"A\"\npricing = \"cpm\"\nmax_bid = \"1\"\ndaily_budget = \"10\"\n\
             [[campaign.creative]]\nid = \"c\"\nformat = \"banner\"\nw = 1\nh = 1\n\
             image_url = \"https://a.example/i.png\"\nlanding_url = \"https://a.example/\"\n"
        );
        let settings =
            "[[advertiser]]\nid = \"A\"\n[secrets]\nsigning_key = \"test-signing-key-0123456789abcdefghijkl\"\n";
        let files = [(std::path::PathBuf::from("a.toml"), campaigns)];
        let config = crate::config::from_texts_with(
            std::path::Path::new("cfg"),
            settings,
            &files,
            &crate::config::Env::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        config.campaigns.into_iter().next().unwrap()
    }

    #[test]
    fn state_outlives_the_index_until_its_window_closes() {
        let states = LiveStates::default();
        let kept = states.state(&campaign("a"));
        let _ = states.state(&campaign("b"));
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let at = |s: i64| Timestamp::from_second(t0.as_second() + s).unwrap();
        assert_eq!(states.retire(|id| id == "a", t0, 60), 0, "b just left");
        assert_eq!(states.retire(|id| id == "a", at(60), 60), 0, "b within its window");
        assert_eq!(states.retire(|id| id == "a", at(61), 60), 1, "b retired");
        assert!(states.get("b").is_none());
        assert!(
            Arc::ptr_eq(&states.get("a").unwrap().state, &kept),
            "a kept, the same state"
        );
        assert_eq!(states.len(), 1);
    }

    #[test]
    fn a_campaign_back_in_the_index_keeps_its_state() {
        let states = LiveStates::default();
        let first = states.state(&campaign("a"));
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        states.retire(|_| false, t0, 60);
        let again = states.state(&campaign("a"));
        assert!(Arc::ptr_eq(&first, &again));
        let later = Timestamp::from_second(t0.as_second() + 3600).unwrap();
        assert_eq!(
            states.retire(|_| true, later, 60),
            0,
            "its clock restarted when it came back"
        );
    }
}
