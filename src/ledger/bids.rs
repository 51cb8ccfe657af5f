//! Bid counts per campaign, exchange and UTC hour, for the report.
//!
//! Bids are not billable and far too many to fsync one by one: the bid path
//! bumps an atomic per campaign and exchange, and a flusher folds the
//! increments into `{data_dir}/ledger/bids-YYYY-MM-DD.json` (UTC day) every
//! few seconds and at shutdown, under the UTC hour of the flush, with the
//! campaign's UTC offset at that hour (so reports can place the hour on the
//! campaign's local day without its config). Files are replaced whole
//! (temporary file, sync, rename, directory sync), so a crash leaves the old
//! file or the new one, never an empty one; it loses at most the last
//! interval's counts — never a billable event. A day file that cannot be
//! read is moved aside (`.damaged`), never silently overwritten.
//!
//! Day files written before counts were kept per exchange and hour hold
//! one total per campaign; they are read as [`CampaignBids::day_total`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One campaign's bids on one UTC day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct CampaignBids {
    /// Bids per exchange name, per UTC hour (0–23).
    #[serde(default)]
    pub exchanges: BTreeMap<String, [u64; 24]>,
    /// The campaign's UTC offset (seconds) at each UTC hour when its bids
    /// were counted; `None` for hours without bids.
    #[serde(default)]
    pub offsets: [Option<i32>; 24],
    /// Bids of a day file written before per-exchange, per-hour counts
    /// (exchange and hour unknown): counted in rows by day only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub day_total: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A campaign's entry as stored: today's shape, or an older file's total.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Total(u64),
    Hourly(Box<Hourly>),
}

#[derive(Deserialize)]
struct Hourly {
    #[serde(default)]
    exchanges: BTreeMap<String, [u64; 24]>,
    #[serde(default)]
    offsets: [Option<i32>; 24],
    #[serde(default)]
    day_total: u64,
}

impl From<Stored> for CampaignBids {
    fn from(stored: Stored) -> CampaignBids {
        match stored {
            Stored::Total(day_total) => CampaignBids {
                day_total,
                ..CampaignBids::default()
            },
            Stored::Hourly(hourly) => CampaignBids {
                exchanges: hourly.exchanges,
                offsets: hourly.offsets,
                day_total: hourly.day_total,
            },
        }
    }
}

/// Bids per campaign on one UTC day.
pub type DayBids = BTreeMap<String, CampaignBids>;

fn file_for(dir: &Path, date: &str) -> PathBuf {
    dir.join(format!("bids-{date}.json"))
}

/// A day's bid counts (none when the file does not exist or is damaged).
pub fn load(dir: &Path, date: &str) -> DayBids {
    read(&file_for(dir, date)).unwrap_or_default()
}

fn read(path: &Path) -> Option<DayBids> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// A day's counts for the flusher to add to. A file that exists but does
/// not parse (empty, torn) is moved aside and reported, so that the counts
/// it held are not overwritten.
fn load_for_update(dir: &Path, date: &str) -> DayBids {
    let path = file_for(dir, date);
    if !path.exists() {
        return DayBids::new();
    }
    if let Some(bids) = read(&path) {
        return bids;
    }
    let aside = path.with_extension("json.damaged");
    match std::fs::rename(&path, &aside) {
        Ok(()) => tracing::warn!(file = %path.display(), kept = %aside.display(), "unreadable bid counts moved aside"),
        Err(e) => tracing::warn!(file = %path.display(), error = %e, "unreadable bid counts could not be moved aside"),
    }
    DayBids::new()
}

/// Every day's bid counts found in `dir`.
pub fn load_all(dir: &Path) -> BTreeMap<String, DayBids> {
    let mut days = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(date) = name.strip_prefix("bids-").and_then(|n| n.strip_suffix(".json")) {
            days.insert(date.to_string(), load(dir, date));
        }
    }
    days
}

/// Writes one day's counts (to a temporary file, then renamed into place).
fn store(dir: &Path, date: &str, bids: &DayBids) -> std::io::Result<()> {
    let path = file_for(dir, date);
    crate::files::write_atomically(&path, &serde_json::to_vec(bids).unwrap_or_default())
}

/// One cumulative bid counter: a campaign's bids at an exchange since start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidCounter {
    /// Campaign id.
    pub campaign: String,
    /// Exchange name.
    pub exchange: String,
    /// The campaign's UTC offset now, seconds.
    pub utc_offset: i32,
    /// Bids since start.
    pub total: u64,
}

/// Folds cumulative per-campaign, per-exchange counters into per-day files.
pub struct BidFlusher {
    dir: PathBuf,
    /// Counter values at the last flush, by (campaign, exchange).
    seen: BTreeMap<(String, String), u64>,
    date: String,
    today: DayBids,
}

/// The UTC date (`YYYY-MM-DD`) and hour of `now`.
fn utc_date_hour(now: jiff::Timestamp) -> (String, usize) {
    let utc = now.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    (utc.date().to_string(), utc.hour() as usize)
}

impl BidFlusher {
    /// A flusher adding to `now`'s UTC day file in `dir`, from what it already holds.
    pub fn new(dir: &Path, now: jiff::Timestamp) -> BidFlusher {
        let (date, _) = utc_date_hour(now);
        BidFlusher {
            dir: dir.to_path_buf(),
            seen: BTreeMap::new(),
            today: load_for_update(dir, &date),
            date,
        }
    }

    /// Adds what each counter gained since the last call to `now`'s UTC
    /// day and hour.
    pub fn flush(&mut self, now: jiff::Timestamp, counters: impl Iterator<Item = BidCounter>) -> std::io::Result<()> {
        let (date, hour) = utc_date_hour(now);
        if date != self.date {
            self.today = load_for_update(&self.dir, &date);
            self.date = date;
        }
        let mut changed = false;
        for counter in counters {
            let key = (counter.campaign, counter.exchange);
            let previous = self.seen.get(&key).copied().unwrap_or(0);
            let gained = counter.total.saturating_sub(previous);
            if gained > 0 {
                let campaign = self.today.entry(key.0.clone()).or_default();
                campaign.exchanges.entry(key.1.clone()).or_insert([0; 24])[hour] += gained;
                campaign.offsets[hour] = Some(counter.utc_offset);
                changed = true;
            }
            self.seen.insert(key, counter.total);
        }
        if changed {
            store(&self.dir, &self.date, &self.today)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    fn counter(campaign: &str, exchange: &str, total: u64) -> BidCounter {
        BidCounter {
            campaign: campaign.into(),
            exchange: exchange.into(),
            utc_offset: 3600,
            total,
        }
    }

    #[test]
    fn increments_accumulate_per_exchange_and_hour_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut flusher = BidFlusher::new(dir.path(), at("2026-11-24T10:00:00Z"));
        flusher
            .flush(at("2026-11-24T10:00:05Z"), [counter("a", "x", 5)].into_iter())
            .unwrap();
        flusher
            .flush(
                at("2026-11-24T11:30:00Z"),
                [counter("a", "x", 8), counter("a", "y", 1), counter("b", "x", 1)].into_iter(),
            )
            .unwrap();
        flusher
            .flush(at("2026-11-25T00:00:05Z"), [counter("a", "x", 10)].into_iter())
            .unwrap();
        let day = load(dir.path(), "2026-11-24");
        let a = &day["a"];
        assert_eq!(
            (a.exchanges["x"][10], a.exchanges["x"][11], a.exchanges["y"][11]),
            (5, 3, 1)
        );
        assert_eq!((a.offsets[10], a.offsets[12]), (Some(3600), None));
        assert_eq!(day["b"].exchanges["x"].iter().sum::<u64>(), 1);
        assert_eq!(load(dir.path(), "2026-11-25")["a"].exchanges["x"][0], 2);
        // A restart: counters start from zero again.
        let mut flusher = BidFlusher::new(dir.path(), at("2026-11-25T00:10:00Z"));
        flusher
            .flush(at("2026-11-25T00:10:00Z"), [counter("a", "x", 3)].into_iter())
            .unwrap();
        assert_eq!(load(dir.path(), "2026-11-25")["a"].exchanges["x"][0], 5);
        assert_eq!(load_all(dir.path()).len(), 2);
    }

    #[test]
    fn older_day_files_read_as_day_totals() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(file_for(dir.path(), "2026-11-24"), br#"{"a": 7}"#).unwrap();
        let day = load(dir.path(), "2026-11-24");
        assert_eq!(day["a"].day_total, 7);
        assert!(day["a"].exchanges.is_empty());
    }

    /// Issue 17, item 20: an empty day file (a crash between an unsynced
    /// write and its rename) used to reset the day's counts.
    #[test]
    fn a_damaged_day_file_is_kept_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(file_for(dir.path(), "2026-11-24"), b"").unwrap();
        let now = at("2026-11-24T10:00:00Z");
        let mut flusher = BidFlusher::new(dir.path(), now);
        flusher.flush(now, [counter("a", "x", 2)].into_iter()).unwrap();
        assert!(dir.path().join("bids-2026-11-24.json.damaged").exists());
        assert_eq!(load(dir.path(), "2026-11-24")["a"].exchanges["x"][10], 2);
        assert!(!dir.path().join("bids-2026-11-24.json.tmp").exists());
    }
}
