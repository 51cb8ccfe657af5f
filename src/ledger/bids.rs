//! Bid counts per campaign and UTC day, for the report.
//!
//! Bids are not billable and far too many to fsync one by one: the bid path
//! bumps an atomic per campaign, and a flusher folds the increments into
//! `{data_dir}/ledger/bids-YYYY-MM-DD.json` every few seconds and at
//! shutdown (written to a temporary file, synced, renamed, and the
//! directory synced, so a crash leaves the old file or the new one, never an
//! empty one). A crash loses at most the last interval's bid counts — never
//! a billable event. A day file that cannot be read is moved aside
//! (`.damaged`), never silently overwritten with a fresh count.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bids per campaign on one day.
pub type DayBids = BTreeMap<String, u64>;

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
    crate::files::write_atomically(&path, &serde_json::to_vec_pretty(bids).unwrap_or_default())
}

/// Folds cumulative per-campaign counters into per-day files.
pub struct BidFlusher {
    dir: PathBuf,
    /// Counter values at the last flush.
    seen: BTreeMap<String, u64>,
    date: String,
    today: DayBids,
}

impl BidFlusher {
    /// A flusher adding to `date`'s file (`YYYY-MM-DD`, UTC) in `dir`, from what it already holds.
    pub fn new(dir: &Path, date: &str) -> BidFlusher {
        BidFlusher {
            dir: dir.to_path_buf(),
            seen: BTreeMap::new(),
            date: date.to_string(),
            today: load_for_update(dir, date),
        }
    }

    /// Adds what each counter gained since the last call to `date`'s file.
    pub fn flush(&mut self, date: &str, counters: impl Iterator<Item = (String, u64)>) -> std::io::Result<()> {
        if date != self.date {
            self.date = date.to_string();
            self.today = load_for_update(&self.dir, date);
        }
        let mut changed = false;
        for (campaign, total) in counters {
            let previous = self.seen.insert(campaign.clone(), total).unwrap_or(0);
            let gained = total.saturating_sub(previous);
            if gained > 0 {
                *self.today.entry(campaign).or_default() += gained;
                changed = true;
            }
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

    #[test]
    fn increments_accumulate_per_day_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut flusher = BidFlusher::new(dir.path(), "2026-11-24");
        flusher.flush("2026-11-24", [("a".to_string(), 5)].into_iter()).unwrap();
        flusher
            .flush("2026-11-24", [("a".to_string(), 8), ("b".to_string(), 1)].into_iter())
            .unwrap();
        flusher
            .flush("2026-11-25", [("a".to_string(), 10)].into_iter())
            .unwrap();
        assert_eq!(
            load(dir.path(), "2026-11-24"),
            DayBids::from([("a".into(), 8), ("b".into(), 1)])
        );
        assert_eq!(load(dir.path(), "2026-11-25"), DayBids::from([("a".into(), 2)]));
        // A restart: counters start from zero again.
        let mut flusher = BidFlusher::new(dir.path(), "2026-11-25");
        flusher.flush("2026-11-25", [("a".to_string(), 3)].into_iter()).unwrap();
        assert_eq!(load(dir.path(), "2026-11-25")["a"], 5);
        assert_eq!(load_all(dir.path()).len(), 2);
    }

    /// Issue 17, item 20: an empty day file (a crash between an unsynced
    /// write and its rename) used to reset the day's counts.
    #[test]
    fn a_damaged_day_file_is_kept_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(file_for(dir.path(), "2026-11-24"), b"").unwrap();
        let mut flusher = BidFlusher::new(dir.path(), "2026-11-24");
        flusher.flush("2026-11-24", [("a".to_string(), 2)].into_iter()).unwrap();
        assert!(dir.path().join("bids-2026-11-24.json.damaged").exists());
        assert_eq!(load(dir.path(), "2026-11-24"), DayBids::from([("a".into(), 2)]));
        assert!(!dir.path().join("bids-2026-11-24.json.tmp").exists());
    }
}
