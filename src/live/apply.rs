//! The one way a tracking or billing event changes live state.
//!
//! [`apply()`] is the single entry for events as they happen (the tracker),
//! for events restored from the billing ledger at start-up, and for events
//! replicated from other nodes once there are several: a fix here reaches
//! all three.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::clock::{local_day, local_seconds};
use crate::ledger::EventKind;
use crate::money::Micros;
use crate::pacing::FrequencyStore;
use crate::pacing::budget::expiry_minute;
use crate::pacing::cost::display_cost;

use super::contact::{AdvertiserLive, HourDayCount, Responses};
use super::state::CampaignState;

/// An event, as it changes its campaign's live state.
#[derive(Clone, Copy, Debug)]
pub struct LiveEvent<'a> {
    /// What happened.
    pub kind: EventKind,
    /// When it happened (the campaign's local day follows from it).
    pub at: Timestamp,
    /// Creative id, for the pCTR counts.
    pub creative: &'a str,
    /// Charged to the campaign's spend.
    pub charge: Micros,
    /// The charge is already in the day's spend: it was held against the
    /// budget when the event was judged (a live CPC click).
    pub precharged: bool,
    /// This is the bid's billing notice (per its exchange) for a real,
    /// not a test, bid: the impression counts for pCTR.
    pub billed_impression: bool,
    /// A click that passed the click-quality rules (for a conversion: its
    /// click did).
    pub billable_click: bool,
    /// A conversion's order value (zero otherwise, and when not given).
    pub value: Micros,
    /// The user's key (0 when unknown or not to be counted).
    pub user: u64,
    /// The reservation this event settles: set for a live billing notice,
    /// not for events restored or replicated (their reservations, if any,
    /// were made on another run or node).
    pub settles: Option<Reservation>,
    /// The impression pixel of a real bid this node made: it turns the
    /// impression its bid held (the campaign's frequency cap) and the
    /// contact (its advertiser's) into counted ones. False for a bid made
    /// by another node of a cluster: that node holds them, and releases
    /// them when the replicated impression reaches it.
    pub releases_contact: bool,
}

/// A bid's hold on its campaign's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The bid's value (CPM, base currency).
    pub bid_value: Micros,
    /// Until when its notice can be charged (Unix seconds, exclusive):
    /// the reservation expires with it.
    pub notice_until: i64,
    /// Impressions the display counts for (`imp.qty`), thousandths.
    pub qty_milli: i64,
    /// When the bid was made (Unix seconds): whether it also reserved
    /// against its advertiser's budget follows from it.
    pub issued_at: i64,
}

/// Where an event lands: the campaign's state, time zone and
/// frequency-cap key, and its advertiser.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The campaign's live counters.
    pub state: &'a CampaignState,
    /// The campaign's time zone: which local day the event counts on.
    pub time_zone: &'a TimeZone,
    /// The campaign's frequency-cap key ([`crate::campaigns::index::CompiledCampaign::key`]).
    pub campaign_key: u64,
    /// The campaign's advertiser (its spend, contacts and responses across
    /// campaigns); `None` only for tools that build no world.
    pub advertiser: Option<&'a AdvertiserLive>,
}

/// Applies one event: spend (the campaign's and its advertiser's), the
/// settled reservation, today's counts, the pCTR counts, the responses
/// capacity caps count, and the user's frequency and contacts.
pub fn apply(target: Target<'_>, frequency: &FrequencyStore, event: &LiveEvent<'_>) {
    let state = target.state;
    let day = local_day(event.at, target.time_zone);
    let advertiser = target.advertiser;
    if event.charge.0 > 0 && !event.precharged {
        state.spend.add(day, event.charge);
        if let Some(a) = advertiser {
            a.state.spend.add(a.local_day(event.at), event.charge);
        }
    }
    if let Some(reservation) = event.settles {
        settle(target, frequency, event, reservation);
    }
    if event.billed_impression {
        state.count_impression(event.creative);
    }
    let responded = |count: fn(&Responses) -> &HourDayCount| {
        count(&state.responses).add(local_seconds(event.at, target.time_zone));
        if let Some(a) = advertiser {
            count(&a.state.responses).add(a.local_seconds(event.at));
        }
    };
    match event.kind {
        EventKind::Impression => state.impressions.add(day),
        EventKind::Click if event.billable_click => {
            state.clicks.add(day);
            state.count_click(event.creative);
            responded(|r| &r.clicks);
        }
        EventKind::Conversion if event.billable_click => {
            state.count_conversion(event.value);
            responded(|r| &r.conversions);
        }
        _ => {}
    }
    if event.kind == EventKind::Impression && event.user != 0 {
        frequency.record_held(event.user, target.campaign_key, event.at, event.releases_contact);
        count_contact(target, frequency, event.at, event.user, event.releases_contact);
    }
}

/// Gives a settled bid's reservations back: its campaign's, its
/// advertiser's (if it made one) and, for a loss, the impression and the
/// contact it held.
fn settle(target: Target<'_>, frequency: &FrequencyStore, event: &LiveEvent<'_>, reservation: Reservation) {
    let cost = display_cost(reservation.bid_value, reservation.qty_milli);
    let (expires, minute) = (
        expiry_minute(reservation.notice_until),
        event.at.as_second().div_euclid(60),
    );
    target.state.spend.release(cost, expires, minute);
    if event.kind == EventKind::Loss && event.user != 0 {
        frequency.release(event.user, target.campaign_key, event.at.as_second());
    }
    let Some(a) = target.advertiser else { return };
    if a.state.reserved_for(reservation.issued_at) {
        a.state.spend.release(cost, expires, minute);
    }
    if event.kind == EventKind::Loss && event.user != 0 && !a.rules.frequency.is_none() {
        frequency.release_contact(event.user, a.key, event.at.as_second());
    }
}

/// Counts a contact (an impression) of `user` by the target's advertiser,
/// when it caps contacts; `releases` gives back the contact its bid held.
/// Restore also counts, through this alone, the impressions of the week
/// that are older than the other counts look back.
pub fn count_contact(target: Target<'_>, frequency: &FrequencyStore, at: Timestamp, user: u64, releases: bool) {
    if let Some(a) = target.advertiser
        && !a.rules.frequency.is_none()
        && user != 0
    {
        frequency.record_contact(user, a.key, a.local_day(at), releases, at.as_second());
    }
}

/// A reservation of this node's bid that another node of a cluster
/// billed, given back here: it keeps counting against this node's budget
/// leases (the campaign's and, if the bid reserved there, the
/// advertiser's) as spend elsewhere, so the room it frees is not reserved
/// again while the billing node counts the charge (see
/// `DailySpend::settled_elsewhere`). For the replicated billing notice of
/// one of this node's bids, next to the [`apply`] that releases it.
pub fn settled_elsewhere(target: Target<'_>, at: Timestamp, reservation: Reservation) {
    let cost = display_cost(reservation.bid_value, reservation.qty_milli);
    target
        .state
        .spend
        .settled_elsewhere(local_day(at, target.time_zone), cost);
    if let Some(a) = target.advertiser
        && a.state.reserved_for(reservation.issued_at)
    {
        a.state.spend.settled_elsewhere(a.local_day(at), cost);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> LiveEvent<'static> {
        LiveEvent {
            kind,
            at: "2026-03-08T12:00:00Z".parse().unwrap(),
            creative: "cr",
            charge: Micros::ZERO,
            precharged: false,
            billed_impression: false,
            billable_click: false,
            value: Micros::ZERO,
            user: 0,
            settles: None,
            releases_contact: false,
        }
    }

    #[test]
    fn each_event_changes_what_it_should() {
        let state = CampaignState::default();
        let frequency = FrequencyStore::default();
        let target = Target {
            state: &state,
            time_zone: &TimeZone::UTC,
            campaign_key: 7,
            advertiser: None,
        };
        let at = event(EventKind::Bill).at;
        let day = local_day(at, &TimeZone::UTC);
        let notice_until = at.as_second() + 900;
        assert!(
            state
                .spend
                .try_reserve(day, Micros(1_000_000), Micros(2_000), expiry_minute(notice_until))
        );
        apply(
            target,
            &frequency,
            &LiveEvent {
                charge: Micros(1_500),
                billed_impression: true,
                settles: Some(Reservation {
                    bid_value: Micros(2_000_000),
                    notice_until,
                    qty_milli: crate::signing::QTY_ONE,
                    issued_at: at.as_second(),
                }),
                ..event(EventKind::Bill)
            },
        );
        assert_eq!(state.spend.spent(day), Micros(1_500));
        assert_eq!(state.spend.outstanding(), Micros::ZERO, "the reservation is settled");
        apply(
            target,
            &frequency,
            &LiveEvent {
                user: 42,
                ..event(EventKind::Impression)
            },
        );
        assert_eq!(state.impressions.get(day), 1);
        apply(target, &frequency, &event(EventKind::Click));
        assert_eq!(state.clicks.get(day), 0, "a filtered click is not counted");
        apply(
            target,
            &frequency,
            &LiveEvent {
                billable_click: true,
                value: Micros::ZERO,
                ..event(EventKind::Click)
            },
        );
        assert_eq!(state.clicks.get(day), 1);
        assert_eq!(
            state.campaign_pctr(0),
            1_000_000 / 1001,
            "one click in one impression, smoothed"
        );
    }
}
