//! What a node of a cluster tells the others: the events it applied and
//! the control changes made through its admin API, queued here by the
//! tracking and control paths (never the bid path) and published in
//! batches by a background task (`cluster::replication`).
//!
//! The [`Outbox`] is disabled on a node alone: nothing is queued. It is
//! bounded: while Redis cannot be reached, events past
//! [`MAX_QUEUED_EVENTS`] are dropped (and counted), control changes past
//! [`MAX_QUEUED_CONTROL`] too; what was queued goes out once Redis answers
//! again.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::ledger::EventKind;
use crate::money::Micros;

use super::apply::Reservation;

/// Events queued at most while they cannot be published.
pub const MAX_QUEUED_EVENTS: usize = 200_000;
/// Control changes queued at most while they cannot be published.
pub const MAX_QUEUED_CONTROL: usize = 10_000;

/// The origin node's tag of a bid id made in cluster mode (`{tag}{16
/// hex}`, 24 characters); `None` for a 16-character id (made by a node
/// alone, or before cluster mode).
pub fn origin_of(bid: &str) -> Option<&str> {
    (bid.len() == 24).then(|| &bid[..8])
}

/// True when `bid` was made by the node tagged `tag` (`None`: alone, every
/// bid is its own). In a cluster, a bid id without an origin (made before
/// the node joined) is no node's: it holds no reservation now (reservations
/// do not outlive a restart), so none is given back for it.
pub fn is_own(tag: Option<&str>, bid: &str) -> bool {
    match (tag, origin_of(bid)) {
        (Some(tag), Some(origin)) => tag == origin,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// An event applied on one node, as the others apply it: everything
/// [`super::LiveEvent`] needs except the charge (budgets are leased per
/// node: others' spend is not added), plus the bid and its reservation
/// (the origin node gives it back when another node bills or loses it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicatedEvent {
    /// What happened.
    #[serde(rename = "k")]
    pub kind: EventKind,
    /// When (Unix microseconds).
    #[serde(rename = "t")]
    pub at_micros: i64,
    /// Campaign id.
    #[serde(rename = "c")]
    pub campaign: String,
    /// Creative id (pCTR counts).
    #[serde(rename = "r")]
    pub creative: String,
    /// The bid id (its origin node in its first 8 hex digits).
    #[serde(rename = "b")]
    pub bid: String,
    /// The user's key (0: unknown or not counted).
    #[serde(rename = "u", default)]
    pub user: u64,
    /// The bid's billing notice for a real bid: counts for pCTR.
    #[serde(rename = "i", default)]
    pub billed_impression: bool,
    /// A click (or a conversion of a click) that passed the rules.
    #[serde(rename = "q", default)]
    pub billable_click: bool,
    /// A test bid's event (it held nothing).
    #[serde(rename = "x", default)]
    pub test: bool,
    /// The bid's reservation, as its signed URL carries it, for billing
    /// notices, impressions and losses.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<WireReservation>,
}

/// [`Reservation`] on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireReservation {
    /// Bid value (CPM micros, base currency).
    #[serde(rename = "v")]
    pub bid_value: i64,
    /// Unix seconds.
    #[serde(rename = "n")]
    pub notice_until: i64,
    /// Thousandths of an impression.
    #[serde(rename = "q")]
    pub qty_milli: i64,
    /// Unix seconds.
    #[serde(rename = "i")]
    pub issued_at: i64,
}

impl From<Reservation> for WireReservation {
    fn from(r: Reservation) -> WireReservation {
        WireReservation {
            bid_value: r.bid_value.0,
            notice_until: r.notice_until,
            qty_milli: r.qty_milli,
            issued_at: r.issued_at,
        }
    }
}

impl From<WireReservation> for Reservation {
    fn from(r: WireReservation) -> Reservation {
        Reservation {
            bid_value: Micros(r.bid_value),
            notice_until: r.notice_until,
            qty_milli: r.qty_milli,
            issued_at: r.issued_at,
        }
    }
}

/// A control change made through one node's admin API (or console), for
/// the others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// A campaign file's new text (the whole file, as written).
    CampaignFile {
        /// The file, relative to the config directory (`campaigns/x.toml`).
        file: String,
        /// The campaign changed (for logs).
        campaign: String,
        /// The file's text.
        text: String,
    },
    /// An advertiser's do-not-contact list changed for one user
    /// (`advertiser` is `*` for everyone: an erasure).
    Suppression {
        /// The user's key.
        user: u64,
        /// The advertiser id, or `*`.
        advertiser: String,
        /// Suppressed (true) or lifted (false).
        suppressed: bool,
    },
    /// A user erased: the overlay's changes forgotten (the suppression for
    /// everyone travels as a [`Control::Suppression`]).
    Erase {
        /// The user's key.
        user: u64,
    },
    /// A user-sync match: the exchange knows our user `ours` as `theirs`.
    UserMatch {
        /// The exchange's name.
        exchange: String,
        /// The exchange's id of the user.
        theirs: String,
        /// Our id of the user.
        ours: String,
    },
    /// A console session signed out (its nonce, hex), refused until
    /// `until` (Unix seconds), when it would have idled out anyway.
    SignOut {
        /// The session's nonce, 32 hex digits.
        nonce: String,
        /// Unix seconds.
        until: i64,
    },
    /// Real-time audience overlay changes, in the order applied.
    Overlay {
        /// The changes.
        changes: Vec<OverlayChange>,
    },
}

/// One overlay change on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayChange {
    /// The user's key.
    #[serde(rename = "u")]
    pub user: u64,
    /// The segment path.
    #[serde(rename = "s")]
    pub segment: String,
    /// Added (true) or removed (false).
    #[serde(rename = "a")]
    pub add: bool,
    /// When it expires (Unix seconds).
    #[serde(rename = "e")]
    pub expires: i64,
}

/// Events and control changes waiting to be published.
#[derive(Debug, Default)]
pub struct Outbox {
    enabled: AtomicBool,
    events: Mutex<VecDeque<ReplicatedEvent>>,
    control: Mutex<VecDeque<Control>>,
    dropped: AtomicU64,
}

impl Outbox {
    /// Starts queueing (cluster mode).
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// True in cluster mode.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Queues an applied event.
    pub fn event(&self, event: ReplicatedEvent) {
        if !self.enabled() {
            return;
        }
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.len() >= MAX_QUEUED_EVENTS {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        events.push_back(event);
    }

    /// Queues a control change.
    pub fn control(&self, change: Control) {
        if !self.enabled() {
            return;
        }
        let mut control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        if control.len() >= MAX_QUEUED_CONTROL {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!("control change not queued for the other nodes: the queue is full");
            return;
        }
        control.push_back(change);
    }

    /// Takes up to `max` queued events, oldest first.
    pub fn take_events(&self, max: usize) -> Vec<ReplicatedEvent> {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let n = events.len().min(max);
        events.drain(..n).collect()
    }

    /// Takes every queued control change.
    pub fn take_control(&self) -> Vec<Control> {
        let mut control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        control.drain(..).collect()
    }

    /// Puts back what could not be published, ahead of what came since
    /// (bounded like the queue: the newest are dropped past it).
    pub fn requeue(&self, events: Vec<ReplicatedEvent>, control: Vec<Control>) {
        let mut queued = self.events.lock().unwrap_or_else(|p| p.into_inner());
        for event in events.into_iter().rev() {
            queued.push_front(event);
        }
        while queued.len() > MAX_QUEUED_EVENTS {
            queued.pop_back();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        drop(queued);
        let mut queued = self.control.lock().unwrap_or_else(|p| p.into_inner());
        for change in control.into_iter().rev() {
            queued.push_front(change);
        }
    }

    /// Events (and control changes) waiting.
    pub fn backlog(&self) -> usize {
        self.events.lock().map_or(0, |e| e.len()) + self.control.lock().map_or(0, |c| c.len())
    }

    /// Events and control changes dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_the_outbox() {
        assert_eq!(origin_of("0a1b2c3d0123456789abcdef"), Some("0a1b2c3d"));
        assert_eq!(origin_of("0123456789abcdef"), None);
        assert!(is_own(Some("0a1b2c3d"), "0a1b2c3d0123456789abcdef"));
        assert!(!is_own(Some("ffffffff"), "0a1b2c3d0123456789abcdef"));
        assert!(
            !is_own(Some("ffffffff"), "0123456789abcdef"),
            "made alone, before joining"
        );
        assert!(is_own(None, "0a1b2c3d0123456789abcdef"));

        let outbox = Outbox::default();
        let event = ReplicatedEvent {
            kind: EventKind::Impression,
            at_micros: 1,
            campaign: "c".into(),
            creative: "k".into(),
            bid: "b".into(),
            user: 7,
            billed_impression: false,
            billable_click: false,
            test: false,
            reservation: None,
        };
        outbox.event(event.clone());
        assert_eq!(outbox.backlog(), 0, "disabled alone");
        outbox.enable();
        outbox.event(event.clone());
        outbox.event(ReplicatedEvent {
            at_micros: 2,
            ..event.clone()
        });
        let first = outbox.take_events(1);
        assert_eq!(first[0].at_micros, 1);
        outbox.requeue(first, vec![]);
        assert_eq!(outbox.take_events(10).len(), 2);
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<ReplicatedEvent>(&json).unwrap(), event);
    }
}
