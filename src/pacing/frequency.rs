//! Frequency caps: impressions per user per campaign, per hour and per day;
//! and contacts per user per advertiser (across its campaigns), per day
//! and per week.
//!
//! A lock-free map (papaya) from (user, campaign) to the counts of the
//! current UTC hour and day. Reads on the bid path take no lock; impressions
//! replace the entry atomically. Entries older than a day are swept by
//! [`FrequencyStore::sweep`], which bounds memory to the users seen today.
//! A capped campaign's bid also holds a pending impression
//! ([`FrequencyStore::hold`], atomic per entry) until its pixel counts it,
//! a loss notice gives it back, or its notice window ends: so one node
//! never bids twice for a user before the first bid's pixel (in a cluster,
//! other nodes learn the impression from replicated events, within about a
//! second).
//!
//! Contacts (a second map, (user, advertiser) → `Contacts`) are counted
//! in the advertiser's local days and Monday-first weeks, and also held at
//! bid time: a bid reserves a contact ([`FrequencyStore::reserve_contact`],
//! atomic per entry) that its impression turns into a counted one, a loss
//! notice gives back, or the end of its notice window drops. So concurrent
//! bids for one user never pass the cap together. Entries older than the
//! week are swept.

use jiff::Timestamp;

use crate::campaigns::targeting::FrequencyCap;
use crate::settings::ContactCap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Window {
    hour: i64,
    hour_count: u32,
    day: i64,
    day_count: u32,
    /// Impressions held by bids in flight, until `pending_until`.
    pending: u32,
    /// Unix seconds: the last held impression's notice window ends.
    pending_until: i64,
}

impl Window {
    fn pending_at(&self, now: i64) -> u32 {
        if now < self.pending_until { self.pending } else { 0 }
    }

    /// Counted and held impressions in `hour` and on `day`.
    fn held(&self, hour: i64, day: i64, now: i64) -> (u32, u32) {
        let pending = self.pending_at(now);
        let hour_count = if self.hour == hour { self.hour_count } else { 0 };
        let day_count = if self.day == day { self.day_count } else { 0 };
        (hour_count.saturating_add(pending), day_count.saturating_add(pending))
    }

    fn allows(&self, cap: &FrequencyCap, now: Timestamp) -> bool {
        let (hour, day) = hour_and_day(now);
        let (in_hour, on_day) = self.held(hour, day, now.as_second());
        cap.per_hour.is_none_or(|max| in_hour < max) && cap.per_day.is_none_or(|max| on_day < max)
    }

    /// One more impression counted at `now`, the pending one it settles
    /// given back when `releases`.
    fn counted(self, now: Timestamp, releases: bool) -> Window {
        let (hour, day) = hour_and_day(now);
        let pending = self.pending_at(now.as_second());
        Window {
            hour,
            hour_count: if self.hour == hour { self.hour_count + 1 } else { 1 },
            day,
            day_count: if self.day == day { self.day_count + 1 } else { 1 },
            pending: if releases { pending.saturating_sub(1) } else { pending },
            pending_until: self.pending_until,
        }
    }
}

/// One user's contacts by one advertiser: counted in its local day and
/// week, and held by bids whose impression has not come yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Contacts {
    day: i64,
    day_count: u32,
    week: i64,
    week_count: u32,
    /// Contacts held by bids in flight, until `pending_until`.
    pending: u32,
    /// Unix seconds: the last held contact's notice window ends.
    pending_until: i64,
}

/// The Monday-first week of a local day number (day 0, 1970-01-01, was a
/// Thursday).
fn week_of(day: i64) -> i64 {
    (day + 3).div_euclid(7)
}

impl Contacts {
    fn pending_at(&self, now: i64) -> u32 {
        if now < self.pending_until { self.pending } else { 0 }
    }

    /// Counted and held contacts on `day` and in its week.
    fn held(&self, day: i64, now: i64) -> (u32, u32) {
        let pending = self.pending_at(now);
        let day_count = if self.day == day { self.day_count } else { 0 };
        let week_count = if self.week == week_of(day) { self.week_count } else { 0 };
        (day_count.saturating_add(pending), week_count.saturating_add(pending))
    }

    fn allows(&self, cap: &ContactCap, day: i64, now: i64) -> bool {
        let (on_day, in_week) = self.held(day, now);
        cap.per_day.is_none_or(|max| on_day < max) && cap.per_week.is_none_or(|max| in_week < max)
    }

    /// One more counted contact on `day` (an earlier day or week than the
    /// entry's is not counted in it: restores may come out of order).
    fn counted(self, day: i64) -> Contacts {
        let week = week_of(day);
        let (day, day_count) = match day.cmp(&self.day) {
            std::cmp::Ordering::Greater => (day, 1),
            std::cmp::Ordering::Equal => (day, self.day_count.saturating_add(1)),
            std::cmp::Ordering::Less => (self.day, self.day_count),
        };
        let (week, week_count) = match week.cmp(&self.week) {
            std::cmp::Ordering::Greater => (week, 1),
            std::cmp::Ordering::Equal => (week, self.week_count.saturating_add(1)),
            std::cmp::Ordering::Less => (self.week, self.week_count),
        };
        Contacts {
            day,
            day_count,
            week,
            week_count,
            ..self
        }
    }

    /// One held contact fewer (its bid's impression came, or it lost).
    fn released(self, now: i64) -> Contacts {
        Contacts {
            pending: self.pending_at(now).saturating_sub(1),
            ..self
        }
    }
}

/// Impressions per user and campaign in the current UTC hour and day,
/// lock-free, and bounded in size: at the bound, new (user, campaign)
/// pairs are not counted, and capped campaigns do not bid on them (a cap
/// that cannot be counted is not risked). Contacts per user and advertiser
/// likewise, in a map of their own with the same bound.
pub struct FrequencyStore {
    counts: papaya::HashMap<u64, Window, foldhash::fast::RandomState>,
    contacts: papaya::HashMap<u64, Contacts, foldhash::fast::RandomState>,
    /// Most (user, campaign) entries held.
    max_entries: usize,
    /// Impressions of new pairs not counted because the store was full.
    refused: std::sync::atomic::AtomicU64,
}

/// Default bound on (user, campaign) entries.
pub const DEFAULT_MAX_ENTRIES: usize = crate::settings::DEFAULT_MAX_FREQUENCY_ENTRIES;

fn slot(user: u64, campaign: u64) -> u64 {
    user ^ campaign.rotate_left(29).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn hour_and_day(now: Timestamp) -> (i64, i64) {
    let secs = now.as_second();
    (secs.div_euclid(3600), secs.div_euclid(86_400))
}

impl Default for FrequencyStore {
    fn default() -> Self {
        FrequencyStore::with_limit(DEFAULT_MAX_ENTRIES)
    }
}

impl FrequencyStore {
    /// A store holding at most `max_entries` (user, campaign) pairs.
    pub fn with_limit(max_entries: usize) -> FrequencyStore {
        FrequencyStore {
            counts: papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .build(),
            contacts: papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .build(),
            max_entries,
            refused: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// True once the store holds its most entries.
    pub fn is_full(&self) -> bool {
        self.counts.len() >= self.max_entries
    }

    /// Impressions of new pairs not counted because the store was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True when the user may see the campaign once more.
    pub fn allows(&self, cap: &FrequencyCap, user: u64, campaign: u64, now: Timestamp) -> bool {
        if cap.per_hour.is_none() && cap.per_day.is_none() {
            return true;
        }
        let map = self.counts.pin();
        let Some(window) = map.get(&slot(user, campaign)) else {
            // Unseen, or not countable once the store is full.
            return !self.is_full();
        };
        window.allows(cap, now)
    }

    /// Counts one impression.
    pub fn record(&self, user: u64, campaign: u64, now: Timestamp) {
        self.record_held(user, campaign, now, false);
    }

    /// Counts one impression; `releases` gives back the impression its bid
    /// held ([`FrequencyStore::hold`]): the pixel of a bid this node made.
    pub fn record_held(&self, user: u64, campaign: u64, now: Timestamp, releases: bool) {
        let map = self.counts.pin();
        let key = slot(user, campaign);
        if self.is_full() && map.get(&key).is_none() {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        map.update_or_insert(key, |w| w.counted(now, releases), Window::default().counted(now, false));
    }

    /// Holds an impression of `user` for a capped campaign's bid whose
    /// notice window ends at `until` (Unix seconds), if the cap allows one
    /// more counting those already held: atomically, so that concurrent
    /// bids never pass the cap together. False, and nothing held, otherwise.
    pub fn hold(&self, cap: &FrequencyCap, user: u64, campaign: u64, now: Timestamp, until: i64) -> bool {
        let map = self.counts.pin();
        let key = slot(user, campaign);
        if map.get(&key).is_none() && self.is_full() {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return false;
        }
        let secs = now.as_second();
        let held = map.compute(key, |entry| {
            let current = entry.map(|(_, w)| *w).unwrap_or_default();
            if !current.allows(cap, now) {
                return papaya::Operation::Abort(());
            }
            papaya::Operation::Insert(Window {
                pending: current.pending_at(secs) + 1,
                pending_until: current.pending_until.max(until),
                ..current
            })
        });
        !matches!(held, papaya::Compute::Aborted(()))
    }

    /// Gives back an impression held by a bid that lost (or whose other
    /// reservations were refused).
    pub fn release(&self, user: u64, campaign: u64, now: i64) {
        self.counts.pin().update(slot(user, campaign), |w| Window {
            pending: w.pending_at(now).saturating_sub(1),
            ..*w
        });
    }

    /// Drops entries from before today, and contacts from before last week
    /// with nothing held.
    pub fn sweep(&self, now: Timestamp) {
        let (_, day) = hour_and_day(now);
        let secs = now.as_second();
        self.counts.pin().retain(|_, w| w.day >= day || w.pending_at(secs) > 0);
        // Local weeks are at most a day off the UTC one.
        let week = week_of(day - 1);
        let now = secs;
        self.contacts
            .pin()
            .retain(|_, c| c.week >= week || c.pending_at(now) > 0);
    }

    /// True when `user` may be contacted once more by the advertiser
    /// `advertiser` (a key) under `cap`, on the advertiser's local `day`
    /// at `now` (Unix seconds); held contacts count.
    pub fn contact_allows(&self, cap: &ContactCap, user: u64, advertiser: u64, day: i64, now: i64) -> bool {
        match self.contacts.pin().get(&slot(user, advertiser)) {
            Some(contacts) => contacts.allows(cap, day, now),
            None => !self.contacts_full(),
        }
    }

    /// Holds a contact for a bid whose notice window ends at `until` (Unix
    /// seconds), if the cap allows one more: atomically, so concurrent bids
    /// never pass the cap together. False, and nothing held, otherwise.
    pub fn reserve_contact(
        &self,
        cap: &ContactCap,
        user: u64,
        advertiser: u64,
        day: i64,
        now: i64,
        until: i64,
    ) -> bool {
        let contacts = self.contacts.pin();
        let key = slot(user, advertiser);
        if contacts.get(&key).is_none() && self.contacts_full() {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return false;
        }
        let held = contacts.compute(key, |entry| {
            let current = entry.map(|(_, c)| *c).unwrap_or_default();
            if !current.allows(cap, day, now) {
                return papaya::Operation::Abort(());
            }
            papaya::Operation::Insert(Contacts {
                pending: current.pending_at(now) + 1,
                pending_until: current.pending_until.max(until),
                ..current
            })
        });
        !matches!(held, papaya::Compute::Aborted(()))
    }

    /// Counts a contact of `user` by `advertiser` on its local `day` (an
    /// impression); `releases` gives back the contact its bid held.
    pub fn record_contact(&self, user: u64, advertiser: u64, day: i64, releases: bool, now: i64) {
        let contacts = self.contacts.pin();
        let key = slot(user, advertiser);
        if contacts.get(&key).is_none() && self.contacts_full() {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        contacts.update_or_insert(
            key,
            |c| {
                let c = if releases { c.released(now) } else { *c };
                c.counted(day)
            },
            Contacts::default().counted(day),
        );
    }

    /// Gives back a contact held by a bid that lost.
    pub fn release_contact(&self, user: u64, advertiser: u64, now: i64) {
        self.contacts.pin().update(slot(user, advertiser), |c| c.released(now));
    }

    /// True once the contacts map holds its most entries.
    fn contacts_full(&self) -> bool {
        self.contacts.len() >= self.max_entries
    }

    /// (User, advertiser) contact entries held.
    pub fn contacts_len(&self) -> usize {
        self.contacts.len()
    }

    /// (User, campaign) entries held.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17, item 18: the map was bounded by time only.
    #[test]
    fn at_its_bound_the_store_counts_no_new_pair_and_capped_campaigns_skip_them() {
        let store = FrequencyStore::with_limit(2);
        let cap = FrequencyCap {
            per_hour: Some(5),
            per_day: None,
        };
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        store.record(1, 7, now);
        store.record(2, 7, now);
        assert!(store.is_full());
        store.record(3, 7, now);
        assert_eq!((store.len(), store.refused()), (2, 1));
        assert!(store.allows(&cap, 1, 7, now), "a known user is still counted");
        store.record(1, 7, now);
        assert!(!store.allows(&cap, 3, 7, now), "an uncountable user is not risked");
        assert!(
            store.allows(&FrequencyCap::default(), 3, 7, now),
            "uncapped campaigns still bid"
        );
    }

    #[test]
    fn contacts_are_held_by_bids_and_counted_by_impressions_per_day_and_week() {
        let store = FrequencyStore::default();
        let cap = ContactCap {
            per_day: Some(2),
            per_week: Some(3),
        };
        let (day, now) = (20_000, 20_000 * 86_400 + 3600);
        assert!(store.reserve_contact(&cap, 1, 9, day, now, now + 900));
        assert!(store.reserve_contact(&cap, 1, 9, day, now, now + 900));
        assert!(!store.reserve_contact(&cap, 1, 9, day, now, now + 900), "two held");
        assert!(!store.contact_allows(&cap, 1, 9, day, now));
        assert!(store.contact_allows(&cap, 1, 8, day, now), "another advertiser");
        store.release_contact(1, 9, now);
        assert!(store.contact_allows(&cap, 1, 9, day, now), "a loss gives one back");
        store.record_contact(1, 9, day, true, now);
        assert!(
            store.contact_allows(&cap, 1, 9, day, now),
            "the other one's impression: one counted"
        );
        assert!(store.reserve_contact(&cap, 1, 9, day, now, now + 900));
        assert!(!store.contact_allows(&cap, 1, 9, day, now), "one counted, one held");
        assert!(
            store.contact_allows(&cap, 1, 9, day, now + 900),
            "the held one dropped at the end of its window"
        );
        store.record_contact(1, 9, day, false, now);
        assert!(!store.contact_allows(&cap, 1, 9, day, now + 900), "two counted today");
        assert!(store.contact_allows(&cap, 1, 9, day + 1, now + 86_400), "a new day");
        store.record_contact(1, 9, day + 1, false, now + 86_400);
        assert!(
            !store.contact_allows(&cap, 1, 9, day + 1, now + 86_400),
            "three this week"
        );
        assert!(
            store.contact_allows(&cap, 1, 9, day + 3, now + 3 * 86_400),
            "day 20_000 is a Friday, 20_003 a Monday: a new week"
        );
        assert_eq!(week_of(20_002), week_of(20_000), "Sunday, the same week");
        assert_eq!(week_of(20_003), week_of(20_000) + 1);
        assert_eq!(week_of(4), 1, "1970-01-05, the first Monday");
    }

    /// 64 bids for one user at once: exactly the cap's contacts are held.
    #[test]
    fn concurrent_bids_hold_no_more_contacts_than_the_cap() {
        let store = FrequencyStore::default();
        let cap = ContactCap {
            per_day: Some(3),
            per_week: None,
        };
        let start = std::sync::Barrier::new(64);
        let held = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|threads| {
            for _ in 0..64 {
                threads.spawn(|| {
                    start.wait();
                    if store.reserve_contact(&cap, 1, 9, 20_000, 1_000, 1_900) {
                        held.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(held.into_inner(), 3);
    }

    /// A capped campaign's bids hold impressions: a second bid for the
    /// user waits for the first one's pixel (or loss, or window end).
    #[test]
    fn bids_hold_impressions_until_their_pixel_loss_or_window_end() {
        let store = FrequencyStore::default();
        let cap = FrequencyCap {
            per_hour: Some(1),
            per_day: None,
        };
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        let until = now.as_second() + 300;
        assert!(store.hold(&cap, 1, 7, now, until));
        assert!(!store.allows(&cap, 1, 7, now), "one held");
        assert!(!store.hold(&cap, 1, 7, now, until));
        store.release(1, 7, now.as_second());
        assert!(store.allows(&cap, 1, 7, now), "the loss gave it back");
        assert!(store.hold(&cap, 1, 7, now, until));
        store.record_held(1, 7, now, true);
        assert!(!store.allows(&cap, 1, 7, now), "counted now, no longer held");
        let later = now + jiff::SignedDuration::from_hours(1);
        assert!(store.allows(&cap, 1, 7, later), "a new hour, nothing held");
        assert!(store.hold(&cap, 2, 7, now, until));
        let after_window = Timestamp::from_second(until).unwrap();
        assert!(store.allows(&cap, 2, 7, after_window), "dropped with its window");
        let start = std::sync::Barrier::new(32);
        let held = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|threads| {
            for _ in 0..32 {
                threads.spawn(|| {
                    start.wait();
                    if store.hold(&cap, 3, 7, now, until) {
                        held.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(held.into_inner(), 1, "concurrent bids hold one");
    }

    #[test]
    fn caps_per_hour_and_day() {
        let store = FrequencyStore::default();
        let cap = FrequencyCap {
            per_hour: Some(2),
            per_day: Some(3),
        };
        let t0: Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        assert!(store.allows(&cap, 1, 7, t0));
        store.record(1, 7, t0);
        store.record(1, 7, t0);
        assert!(!store.allows(&cap, 1, 7, t0));
        assert!(store.allows(&cap, 2, 7, t0), "other user");
        assert!(store.allows(&cap, 1, 8, t0), "other campaign");
        let t1 = t0 + jiff::SignedDuration::from_hours(1);
        assert!(store.allows(&cap, 1, 7, t1));
        store.record(1, 7, t1);
        assert!(!store.allows(&cap, 1, 7, t1), "daily cap");
        let t2 = t0 + jiff::SignedDuration::from_hours(24);
        assert!(store.allows(&cap, 1, 7, t2));
        store.sweep(t2);
        assert!(store.is_empty());
    }
}
