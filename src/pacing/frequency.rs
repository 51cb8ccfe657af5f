//! Frequency caps: impressions per user per campaign, per hour and per day.
//!
//! A lock-free map (papaya) from (user, campaign) to the counts of the
//! current UTC hour and day. Reads on the bid path take no lock; impressions
//! replace the entry atomically. Entries older than a day are swept by
//! [`FrequencyStore::sweep`], which bounds memory to the users seen today.

use jiff::Timestamp;

use crate::campaigns::targeting::FrequencyCap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Window {
    hour: i64,
    hour_count: u32,
    day: i64,
    day_count: u32,
}

/// Impressions per user and campaign in the current UTC hour and day,
/// lock-free, and bounded in size: at the bound, new (user, campaign)
/// pairs are not counted, and capped campaigns do not bid on them (a cap
/// that cannot be counted is not risked).
pub struct FrequencyStore {
    counts: papaya::HashMap<u64, Window, foldhash::fast::RandomState>,
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
        let (hour, day) = hour_and_day(now);
        let map = self.counts.pin();
        let Some(window) = map.get(&slot(user, campaign)) else {
            // Unseen, or not countable once the store is full.
            return !self.is_full();
        };
        let hour_count = if window.hour == hour { window.hour_count } else { 0 };
        let day_count = if window.day == day { window.day_count } else { 0 };
        cap.per_hour.is_none_or(|max| hour_count < max) && cap.per_day.is_none_or(|max| day_count < max)
    }

    /// Counts one impression.
    pub fn record(&self, user: u64, campaign: u64, now: Timestamp) {
        let (hour, day) = hour_and_day(now);
        let fresh = Window {
            hour,
            hour_count: 1,
            day,
            day_count: 1,
        };
        let map = self.counts.pin();
        let key = slot(user, campaign);
        if self.is_full() && map.get(&key).is_none() {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        map.update_or_insert(
            key,
            |w| Window {
                hour,
                hour_count: if w.hour == hour { w.hour_count + 1 } else { 1 },
                day,
                day_count: if w.day == day { w.day_count + 1 } else { 1 },
            },
            fresh,
        );
    }

    /// Drops entries from before today.
    pub fn sweep(&self, now: Timestamp) {
        let (_, day) = hour_and_day(now);
        self.counts.pin().retain(|_, w| w.day >= day);
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
