//! Closed days: per-day rollups and retention.
//!
//! When a UTC day closes, its report rows (per campaign: bids, wins,
//! impressions, clicks, conversions, spend…) are written once to
//! `rollup-YYYY-MM-DD.json` (temporary file, fsync, rename). Reports of
//! past days read the rollup instead of the raw day file, and the raw file
//! is deleted `retention_days` after its day, never before its rollup
//! exists. Start-up reads only the recent day files ([`super::RESTORE_DAYS`]),
//! so neither restarts nor reports grow with history.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::report::{self, Row};
use super::{LedgerError, bids, files, io_error as io};

/// The rollup file of a UTC day.
pub fn rollup_path(dir: &Path, date: &str) -> PathBuf {
    dir.join(format!("rollup-{date}.json"))
}

/// The date (`YYYY-MM-DD`) of a `billing-…log`, `rollup-…json` or
/// `bids-…json` file name.
fn date_of(name: &str) -> Option<&str> {
    let date = name
        .strip_prefix("billing-")
        .and_then(|n| n.strip_suffix(".log"))
        .or_else(|| name.strip_prefix("rollup-").and_then(|n| n.strip_suffix(".json")))
        .or_else(|| name.strip_prefix("bids-").and_then(|n| n.strip_suffix(".json")))?;
    (date.len() == 10).then_some(date)
}

/// Every day with a billing file, a rollup or bid counts, in order.
pub fn days(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| date_of(&entry.file_name().to_string_lossy()).map(str::to_string))
        .collect()
}

/// One day's rows: from its rollup if the day has one, else from its
/// billing file, streamed.
pub fn day_rows(dir: &Path, date: &str, bids: &BTreeMap<String, bids::DayBids>) -> Result<Vec<Row>, LedgerError> {
    let rollup = rollup_path(dir, date);
    if rollup.exists() {
        let bytes = std::fs::read(&rollup).map_err(io(&rollup))?;
        return serde_json::from_slice(&bytes).map_err(|e| io(&rollup)(std::io::Error::other(e)));
    }
    let path = dir.join(format!("billing-{date}.log"));
    if !path.exists() {
        return Ok(report::rows(std::iter::empty(), bids, Some(date)));
    }
    let mut frames = super::stream_file(&path)?;
    let rows = report::rows(frames.by_ref(), bids, Some(date));
    match frames.error.take() {
        Some(source) => Err(io(&path)(source)),
        None => Ok(rows),
    }
}

/// What one maintenance pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Closed days rolled up.
    pub rolled_up: usize,
    /// Raw day files deleted past retention.
    pub deleted: usize,
}

/// Rolls up every closed day (before `today`, UTC) that has no rollup yet,
/// then deletes raw day files more than `retention_days` old whose rollup
/// exists.
pub fn maintain(dir: &Path, today: &str, retention_days: u32) -> Result<Maintenance, LedgerError> {
    let mut done = Maintenance::default();
    let bids = bids::load_all(dir);
    let oldest_kept = jiff::civil::Date::strptime("%Y-%m-%d", today)
        .ok()
        .and_then(|d| d.checked_sub(jiff::Span::new().days(i64::from(retention_days))).ok())
        .map(|d| d.to_string());
    for path in files(dir) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let Some(date) = date_of(&name).map(str::to_string) else {
            continue;
        };
        if date.as_str() >= today {
            continue;
        }
        let rollup = rollup_path(dir, &date);
        if !rollup.exists() {
            let rows = day_rows(dir, &date, &bids)?;
            crate::files::write_atomically(&rollup, &serde_json::to_vec_pretty(&rows).unwrap_or_default())
                .map_err(io(&rollup))?;
            done.rolled_up += 1;
        }
        if oldest_kept.as_deref().is_some_and(|oldest| date.as_str() < oldest) {
            std::fs::remove_file(&path).map_err(io(&path))?;
            done.deleted += 1;
        }
    }
    Ok(done)
}
