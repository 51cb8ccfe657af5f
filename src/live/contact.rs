//! Contact rules' live side: each advertiser's spend and reservations
//! across its campaigns, the responses counted for capacity caps (per
//! campaign and per advertiser), and the per-world [`ContactIndex`] that
//! links each ranked campaign to its advertiser.
//!
//! [`AdvertiserState`] lives in [`super::LiveStates`] by advertiser id,
//! beside the campaign states: a new world (a reload) links to the same
//! state, so spend and counts survive config changes. [`ContactIndex`] is
//! immutable and built with the world: the bid path reads a campaign's
//! entry by rank (a byte of rule bits decides whether anything else is
//! read), and an advertiser without rules costs it nothing more.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::audience::suppression::advertiser_key;
use crate::audience::{SegmentKey, SegmentPath};
use crate::campaigns::{Campaign, Status};
use crate::clock::local_seconds;
use crate::pacing::DailySpend;
use crate::settings::contact::ResponseCounts;
use crate::settings::{Advertiser, Capacity, ContactRules};

/// One advertiser's live counters, kept across config reloads.
#[derive(Debug)]
pub struct AdvertiserState {
    /// Today's spend of all its campaigns (its local day) and the bids'
    /// reservations against its daily budget.
    pub spend: DailySpend,
    /// Unix second of the first reservation made against its daily budget
    /// since the budget was (re)configured; `i64::MAX` while none is
    /// configured. A settled notice gives an advertiser reservation back
    /// only for bids made after it, so bids that reserved nothing (made
    /// before the budget existed, or before a restart) give nothing back.
    reserving_since: AtomicI64,
    /// Billable clicks and conversions of its current hour and day.
    pub responses: Responses,
    /// Set by the tick while a capacity cap of the advertiser is reached.
    pub at_capacity: AtomicBool,
}

impl Default for AdvertiserState {
    fn default() -> Self {
        AdvertiserState {
            spend: DailySpend::default(),
            reserving_since: AtomicI64::new(i64::MAX),
            responses: Responses::default(),
            at_capacity: AtomicBool::new(false),
        }
    }
}

impl AdvertiserState {
    /// Notes that its budget's reservations are tracked: from the first
    /// one (`now`, Unix seconds) on.
    pub fn note_reserving(&self, now: i64) {
        if self.reserving_since.load(Ordering::Relaxed) == i64::MAX {
            let _ = self
                .reserving_since
                .compare_exchange(i64::MAX, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Whether a bid made at `issued_at` (Unix seconds) reserved against
    /// the advertiser's budget, as far as can be known: only bids made
    /// strictly after the first reservation are given back (those of that
    /// second expire instead: the safe side).
    pub fn reserved_for(&self, issued_at: i64) -> bool {
        let since = self.reserving_since.load(Ordering::Acquire);
        since != i64::MAX && issued_at > since
    }

    /// Called with each new world: without a budget, nothing is reserved,
    /// so nothing is given back either.
    fn configure(&self, has_budget: bool) {
        if !has_budget {
            self.reserving_since.store(i64::MAX, Ordering::Release);
        }
    }
}

/// A count per local hour and per local day, restarting lazily when
/// either turns (a later event, or a read, moves it on; an earlier one is
/// ignored).
#[derive(Debug, Default)]
pub struct HourDayCount {
    hour: AtomicI64,
    hour_count: AtomicU64,
    day: AtomicI64,
    day_count: AtomicU64,
}

/// Moves `(period, count)` on to `now` if later; true when `now` is the
/// current period (so it may be counted).
fn roll(period: &AtomicI64, count: &AtomicU64, now: i64) -> bool {
    let current = period.load(Ordering::Acquire);
    if now > current
        && period
            .compare_exchange(current, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        count.store(0, Ordering::Release);
    }
    period.load(Ordering::Acquire) == now
}

impl HourDayCount {
    /// Counts one at `local` (local seconds since the epoch).
    pub fn add(&self, local: i64) {
        let (hour, day) = (local.div_euclid(3600), local.div_euclid(86_400));
        if roll(&self.hour, &self.hour_count, hour) {
            self.hour_count.fetch_add(1, Ordering::AcqRel);
        }
        if roll(&self.day, &self.day_count, day) {
            self.day_count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The counts of the hour and day `local` falls in.
    pub fn get(&self, local: i64) -> (u64, u64) {
        let (hour, day) = (local.div_euclid(3600), local.div_euclid(86_400));
        let of = |period: &AtomicI64, count: &AtomicU64, now: i64| {
            if period.load(Ordering::Acquire) == now {
                count.load(Ordering::Acquire)
            } else {
                0
            }
        };
        (
            of(&self.hour, &self.hour_count, hour),
            of(&self.day, &self.day_count, day),
        )
    }
}

/// Billable clicks and counted conversions per local hour and day: what
/// capacity caps compare with.
#[derive(Debug, Default)]
pub struct Responses {
    /// Billable clicks.
    pub clicks: HourDayCount,
    /// Conversions of billable clicks.
    pub conversions: HourDayCount,
}

impl Responses {
    /// The counts of the hour and day `local` (local seconds) falls in.
    pub fn counts(&self, local: i64) -> ResponseCounts {
        let (clicks_hour, clicks_day) = self.clicks.get(local);
        let (conversions_hour, conversions_day) = self.conversions.get(local);
        ResponseCounts {
            clicks_hour,
            clicks_day,
            conversions_hour,
            conversions_day,
        }
    }
}

/// An advertiser as a world sees it: its rules as configured now, compiled,
/// and its live state.
#[derive(Debug)]
pub struct AdvertiserLive {
    /// The advertiser id.
    pub id: String,
    /// A stable hash of the id: the frequency store's and the suppression
    /// list's key for it.
    pub key: u64,
    /// Its time zone: the days and weeks of its budget and caps.
    pub time_zone: TimeZone,
    /// Its rules as configured.
    pub rules: ContactRules,
    /// The key of its do-not-contact segment, if any.
    pub suppress_segment: Option<SegmentKey>,
    /// Its live counters.
    pub state: Arc<AdvertiserState>,
}

impl AdvertiserLive {
    /// The advertiser as configured, over its live state.
    fn new(advertiser: &Advertiser, state: Arc<AdvertiserState>) -> AdvertiserLive {
        state.configure(advertiser.rules.daily_budget.is_some());
        AdvertiserLive {
            id: advertiser.id.clone(),
            key: advertiser_key(&advertiser.id),
            time_zone: TimeZone::get(&advertiser.time_zone).unwrap_or(TimeZone::UTC),
            suppress_segment: advertiser
                .rules
                .suppress_segment
                .as_deref()
                .and_then(|s| SegmentPath::parse(s).ok())
                .map(|path| path.key()),
            rules: advertiser.rules.clone(),
            state,
        }
    }

    /// Seconds since the epoch on the advertiser's local clock.
    pub fn local_seconds(&self, now: Timestamp) -> i64 {
        local_seconds(now, &self.time_zone)
    }

    /// Its local day number at `now`.
    pub fn local_day(&self, now: Timestamp) -> i64 {
        self.local_seconds(now).div_euclid(86_400)
    }
}

/// Which contact rules a campaign is subject to (bits of
/// [`RankContact::rules`]).
pub mod rule {
    /// The advertiser has a daily budget.
    pub const BUDGET: u8 = 1;
    /// The advertiser caps contacts per user.
    pub const FREQUENCY: u8 = 1 << 1;
    /// The advertiser has a do-not-contact segment.
    pub const SUPPRESS_SEGMENT: u8 = 1 << 2;
    /// The campaign has capacity caps.
    pub const CAPACITY: u8 = 1 << 3;
    /// The advertiser has capacity caps.
    pub const ADVERTISER_CAPACITY: u8 = 1 << 4;
}

/// A ranked campaign's link to its advertiser, and its priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankContact {
    /// Index into [`ContactIndex::advertisers`].
    pub advertiser: u32,
    /// The campaign's priority.
    pub priority: i32,
    /// No campaign of its advertiser has a higher priority: when eligible,
    /// it is its advertiser's choice without looking further.
    pub top: bool,
    /// Bits of [`rule`]: the contact rules it is subject to (0 for most).
    pub rules: u8,
}

/// Every advertiser of a world, and each ranked campaign's link to one.
#[derive(Debug, Default)]
pub struct ContactIndex {
    /// The advertisers (configured ones, then any a campaign names that is
    /// not configured, with no rules).
    pub advertisers: Vec<Arc<AdvertiserLive>>,
    /// By campaign rank.
    by_rank: Vec<RankContact>,
    /// Some advertiser's campaigns have different priorities.
    pub any_priority: bool,
    /// Some advertiser caps contacts per user.
    pub any_contact_cap: bool,
}

/// The configured advertisers, compiled over their live states (from, or
/// created in, `state_of`).
pub fn advertisers(
    configured: &[Advertiser],
    state_of: impl Fn(&str) -> Arc<AdvertiserState>,
) -> Vec<Arc<AdvertiserLive>> {
    configured
        .iter()
        .map(|a| Arc::new(AdvertiserLive::new(a, state_of(&a.id))))
        .collect()
}

impl ContactIndex {
    /// Links `campaigns` (in rank order) to `advertisers` (see
    /// [`advertisers`]); an advertiser a campaign names that is not among
    /// them is added without rules, its state from `state_of`.
    pub fn build<'c>(
        advertisers: Vec<Arc<AdvertiserLive>>,
        campaigns: impl Iterator<Item = &'c Campaign> + Clone,
        state_of: impl Fn(&str) -> Arc<AdvertiserState>,
    ) -> ContactIndex {
        let mut index = ContactIndex {
            any_contact_cap: advertisers.iter().any(|a| !a.rules.frequency.is_none()),
            advertisers,
            ..ContactIndex::default()
        };
        let mut max_priority: Vec<i32> = vec![i32::MIN; index.advertisers.len()];
        let mut positions = Vec::new();
        for campaign in campaigns.clone() {
            let position = index.position_of(&campaign.advertiser, &state_of);
            if position >= max_priority.len() {
                max_priority.push(i32::MIN);
            }
            // Paused campaigns never bid: their priority does not count.
            if campaign.status == Status::Active {
                max_priority[position] = max_priority[position].max(campaign.priority);
            }
            positions.push(position);
        }
        let mut priorities: Vec<Option<i32>> = vec![None; index.advertisers.len()];
        for (campaign, &position) in campaigns.zip(&positions) {
            let advertiser = &index.advertisers[position];
            let (rules, capacity) = (&advertiser.rules, &campaign.capacity);
            let bits = [
                (rules.daily_budget.is_some(), rule::BUDGET),
                (!rules.frequency.is_none(), rule::FREQUENCY),
                (advertiser.suppress_segment.is_some(), rule::SUPPRESS_SEGMENT),
                (!capacity.is_none(), rule::CAPACITY),
                (!rules.capacity.is_none(), rule::ADVERTISER_CAPACITY),
            ];
            let active = campaign.status == Status::Active;
            if active {
                let seen = priorities[position].get_or_insert(campaign.priority);
                index.any_priority |= *seen != campaign.priority;
            }
            index.by_rank.push(RankContact {
                advertiser: position as u32,
                priority: campaign.priority,
                top: !active || campaign.priority >= max_priority[position],
                rules: bits.iter().filter(|(on, _)| *on).fold(0, |all, (_, bit)| all | bit),
            });
        }
        index
    }

    /// The position of advertiser `id`, added without rules if a campaign
    /// names one that is not configured (validation refuses that; tools
    /// may not validate).
    fn position_of(&mut self, id: &str, state_of: &impl Fn(&str) -> Arc<AdvertiserState>) -> usize {
        if let Some(position) = self.advertisers.iter().position(|a| a.id == id) {
            return position;
        }
        let unconfigured = Advertiser {
            id: id.to_string(),
            name: id.to_string(),
            time_zone: "UTC".into(),
            rules: ContactRules::default(),
            private_segments: Vec::new(),
        };
        self.advertisers
            .push(Arc::new(AdvertiserLive::new(&unconfigured, state_of(id))));
        self.advertisers.len() - 1
    }

    /// The campaign at `rank`'s link (ranks come from the same world).
    pub fn of(&self, rank: u32) -> RankContact {
        self.by_rank[rank as usize]
    }

    /// The advertiser of the campaign at `rank`.
    pub fn advertiser_of(&self, rank: u32) -> &Arc<AdvertiserLive> {
        &self.advertisers[self.of(rank).advertiser as usize]
    }

    /// The advertiser with this id.
    pub fn advertiser(&self, id: &str) -> Option<&Arc<AdvertiserLive>> {
        self.advertisers.iter().find(|a| a.id == id)
    }
}

/// Whether these counts, at `local` seconds, reach `capacity`.
pub fn capacity_reached(capacity: &Capacity, responses: &Responses, local: i64) -> bool {
    !capacity.is_none() && capacity.reached(responses.counts(local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_and_day_counts_restart_when_they_turn() {
        let count = HourDayCount::default();
        let t = 1_000 * 86_400 + 10 * 3600;
        count.add(t);
        count.add(t + 60);
        assert_eq!(count.get(t), (2, 2));
        count.add(t + 3600);
        assert_eq!(count.get(t + 3600), (1, 3), "a new hour, the same day");
        assert_eq!(count.get(t), (0, 3), "the past hour reads 0");
        count.add(t);
        assert_eq!(
            count.get(t + 3600),
            (1, 4),
            "a late event of a past hour counts in its day only"
        );
        assert_eq!(count.get(t + 86_400), (0, 0), "the next day");
    }

    #[test]
    fn a_budget_tracks_the_reservations_made_after_its_first() {
        let state = AdvertiserState::default();
        assert!(!state.reserved_for(100), "no budget: nothing to give back");
        state.note_reserving(100);
        state.note_reserving(200);
        assert!(!state.reserved_for(100), "the first second expires instead");
        assert!(state.reserved_for(101));
        state.configure(false);
        assert!(!state.reserved_for(300), "the budget removed");
        state.configure(true);
        assert!(!state.reserved_for(300), "re-added: from its first reservation on");
        state.note_reserving(400);
        assert!(state.reserved_for(401) && !state.reserved_for(399));
    }
}
