//! Rollups: a UTC day's report aggregates ([`Cube`]) kept beside its
//! billing file, and retention.
//!
//! - `rollup-YYYY-MM-DD.partial.cube`: the current day's cube as far as
//!   the billing file had been written (its byte length, `covers`).
//!   Maintenance (every ten minutes in the server) reads the records
//!   written since and replaces it; a report reads it plus those records,
//!   so today's figures are exact without reading the whole day.
//! - `rollup-YYYY-MM-DD.cube`: a closed day's cube, written once when the
//!   day is over (from its partial rollup and the records after it).
//! - `rollup-YYYY-MM-DD.json`: a rollup written before dimensions were
//!   kept (campaign × UTC day rows): still read once its billing file is
//!   gone; while the billing file exists, a cube is built from it.
//!
//! Cubes are stored in a compact binary form ([`Cube::encode`]) with one
//! section per dimension and zone, so a report reads only its own.
//!
//! - `spend-through-YYYY-MM-DD.json`: every campaign's spend on every day
//!   up to that one (the last closed day when maintenance ran), so that a
//!   restart restores lifetime spend from one file and the rollups of the
//!   days after it ([`spend_by_campaign`]); the newest two are kept.
//!
//! Every file is replaced whole ([`crate::files::write_atomically`]). The
//! raw day file is deleted `retention_days` after its day, never before its
//! closed rollup exists. Start-up reads only the recent day files
//! ([`super::RESTORE_DAYS`]), so neither restarts nor reports grow with
//! history.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::cube::{Cube, Dim, LegacyRow, Zone};
use super::{LedgerError, files, io_error as io};

/// The closed rollup file of a UTC day.
pub fn rollup_path(dir: &Path, date: &str) -> PathBuf {
    dir.join(format!("rollup-{date}.cube"))
}

/// The partial rollup file of a UTC day (the current one).
pub fn partial_path(dir: &Path, date: &str) -> PathBuf {
    dir.join(format!("rollup-{date}.partial.cube"))
}

/// A UTC day's rollup written before dimensions were kept.
pub fn legacy_rollup_path(dir: &Path, date: &str) -> PathBuf {
    dir.join(format!("rollup-{date}.json"))
}

/// The billing file of a UTC day.
pub fn billing_path(dir: &Path, date: &str) -> PathBuf {
    dir.join(format!("billing-{date}.log"))
}

/// The date (`YYYY-MM-DD`) of a `billing-…log`, `rollup-…json` or
/// `bids-…json` file name.
fn date_of(name: &str) -> Option<&str> {
    let date = name
        .strip_prefix("billing-")
        .and_then(|n| n.strip_suffix(".log"))
        .or_else(|| name.strip_prefix("rollup-").and_then(|n| n.strip_suffix(".json")))
        .or_else(|| name.strip_prefix("rollup-").and_then(|n| n.strip_suffix(".cube")))
        .or_else(|| name.strip_prefix("bids-").and_then(|n| n.strip_suffix(".json")))?;
    (date.len() == 10).then_some(date)
}

/// Every day with a billing file, a closed rollup or bid counts, in order.
pub fn days(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| date_of(&entry.file_name().to_string_lossy()).map(str::to_string))
        .collect()
}

/// Reads a file, `None` when it does not exist.
fn read_if_any(path: &Path) -> Result<Option<Vec<u8>>, LedgerError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// A cube file read back with the sections `wanted` says, and what it
/// covers.
fn read_cube(path: &Path, wanted: &dyn Fn(Dim, Zone) -> bool) -> Result<Option<(Cube, u64)>, LedgerError> {
    let Some(bytes) = read_if_any(path)? else {
        return Ok(None);
    };
    Cube::decode(&bytes, wanted)
        .map(Some)
        .ok_or_else(|| io(path)(std::io::Error::other("not a rollup cube")))
}

/// The bytes of the day file a cube file covers, without decoding it.
fn covered(path: &Path) -> Result<Option<u64>, LedgerError> {
    Ok(read_cube(path, &|_, _| false)?.map(|(_, covers)| covers))
}

/// Adds the records of `path` from byte `from` to `cube`; returns where
/// the valid records end.
fn add_records(cube: &mut Cube, path: &Path, from: u64) -> Result<u64, LedgerError> {
    if !path.exists() {
        return Ok(from);
    }
    let mut frames = super::stream_file_from(path, from)?;
    for record in frames.by_ref() {
        cube.add(&record);
    }
    match frames.error.take() {
        Some(source) => Err(io(path)(source)),
        None => Ok(from + frames.valid_len()),
    }
}

/// A day's cube (the sections `wanted` says): its closed rollup if it has
/// one, else its partial rollup and the records written after it, else its
/// whole billing file, else an older rollup's rows. Also returns the bytes
/// of the billing file it covers.
pub fn day_cube(dir: &Path, date: &str, wanted: &dyn Fn(Dim, Zone) -> bool) -> Result<(Cube, u64), LedgerError> {
    if let Some(closed) = read_cube(&rollup_path(dir, date), wanted)? {
        return Ok(closed);
    }
    let billing = billing_path(dir, date);
    if !billing.exists() {
        let legacy = legacy_rollup_path(dir, date);
        if let Some(bytes) = read_if_any(&legacy)? {
            let rows: Vec<LegacyRow> =
                serde_json::from_slice(&bytes).map_err(|e| io(&legacy)(std::io::Error::other(e)))?;
            return Ok((Cube::from_legacy_rows(&rows), 0));
        }
        return Ok((Cube::default(), 0));
    }
    let len = std::fs::metadata(&billing).map_or(0, |m| m.len());
    // Records after the partial rollup are added to every section: read
    // them all, so the cube extends consistently.
    let (mut cube, covers) = match read_cube(&partial_path(dir, date), &|_, _| true)? {
        Some((cube, covers)) if covers <= len => (cube, covers),
        _ => (Cube::default(), 0),
    };
    let covers = add_records(&mut cube, &billing, covers)?;
    cube.cells.retain(|key, _| wanted(key.dim, key.zone));
    Ok((cube, covers))
}

fn write_cube(path: &Path, cube: &Cube, covers: u64) -> Result<(), LedgerError> {
    crate::files::write_atomically(path, &cube.encode(covers)).map_err(io(path))
}

/// What one maintenance pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Closed days rolled up.
    pub rolled_up: usize,
    /// Raw day files deleted past retention.
    pub deleted: usize,
    /// Partial rollups of the current day brought up to date.
    pub extended: usize,
    /// A spend checkpoint written (through the last closed day).
    pub checkpointed: bool,
}

/// Rolls up every closed day (before `today`, UTC) that has no rollup yet
/// (or only an older one), brings the partial rollup of `today` (and any
/// later day) up to date, then deletes raw day files more than
/// `retention_days` old whose rollup exists.
pub fn maintain(dir: &Path, today: &str, retention_days: u32) -> Result<Maintenance, LedgerError> {
    let mut done = Maintenance::default();
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
            let partial = partial_path(dir, &date);
            let before = covered(&partial)?;
            let (cube, covers) = day_cube(dir, &date, &|_, _| true)?;
            if before != Some(covers) {
                write_cube(&partial, &cube, covers)?;
                done.extended += 1;
            }
            continue;
        }
        let rollup = rollup_path(dir, &date);
        if !rollup.exists() {
            let (cube, covers) = day_cube(dir, &date, &|_, _| true)?;
            write_cube(&rollup, &cube, covers)?;
            done.rolled_up += 1;
        }
        let partial = partial_path(dir, &date);
        if partial.exists() {
            std::fs::remove_file(&partial).map_err(io(&partial))?;
        }
        if oldest_kept.as_deref().is_some_and(|oldest| date.as_str() < oldest) {
            std::fs::remove_file(&path).map_err(io(&path))?;
            done.deleted += 1;
        }
    }
    done.checkpointed = checkpoint_spend(dir, today)?;
    Ok(done)
}

/// The spend checkpoint through a UTC day (that day included).
pub fn spend_checkpoint_path(dir: &Path, date: &str) -> PathBuf {
    dir.join(format!("spend-through-{date}.json"))
}

/// Spend per campaign (micros) on every UTC day up to `through`, included:
/// a running total kept so that a restart reads one file, not every
/// day's rollup, for lifetime budgets.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct SpendCheckpoint {
    through: String,
    spend_micros: HashMap<String, i64>,
}

/// The dates of the spend checkpoints in `dir`, oldest first.
fn checkpoint_dates(dir: &Path) -> Vec<String> {
    let mut dates: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            let date = name.strip_prefix("spend-through-")?.strip_suffix(".json")?;
            (date.len() == 10).then(|| date.to_string())
        })
        .collect();
    dates.sort();
    dates
}

fn read_checkpoint(dir: &Path, date: &str) -> Result<SpendCheckpoint, LedgerError> {
    let path = spend_checkpoint_path(dir, date);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    serde_json::from_slice(&bytes).map_err(|e| io(&path)(std::io::Error::other(e)))
}

/// Adds each campaign's spend on `date` to `spend`.
fn add_day_spend(dir: &Path, date: &str, spend: &mut HashMap<String, i64>) -> Result<(), LedgerError> {
    let wanted = |dim: Dim, zone: Zone| zone == Zone::Utc && matches!(dim, Dim::Hour | Dim::DayOnly);
    let (cube, _) = day_cube(dir, date, &wanted)?;
    for (key, counts) in &cube.cells {
        if wanted(key.dim, key.zone) && counts.spend != 0 {
            let total = spend.entry(cube.campaign(key).to_string()).or_default();
            *total = total.saturating_add(counts.spend);
        }
    }
    Ok(())
}

/// Spend per campaign (micros) on every day of the billing log, today's
/// included, for lifetime budgets: the latest spend checkpoint, plus the
/// days after it from their rollups (today's partial one and the records
/// after it; see [`day_cube`]); every day's rollup when there is no
/// checkpoint yet.
pub fn spend_by_campaign(dir: &Path) -> Result<HashMap<String, i64>, LedgerError> {
    let (mut spend, through) = match checkpoint_dates(dir).pop() {
        Some(date) => {
            let checkpoint = read_checkpoint(dir, &date)?;
            (checkpoint.spend_micros, Some(checkpoint.through))
        }
        None => (HashMap::new(), None),
    };
    for date in days(dir) {
        if through.as_ref().is_none_or(|through| date > *through) {
            add_day_spend(dir, &date, &mut spend)?;
        }
    }
    Ok(spend)
}

/// Spend checkpoints kept: the newest, and one before it.
const CHECKPOINTS_KEPT: usize = 2;

/// Writes the spend checkpoint through the last closed day (the day before
/// `today`) if it is missing, and deletes older checkpoints but one. True
/// when one was written.
fn checkpoint_spend(dir: &Path, today: &str) -> Result<bool, LedgerError> {
    let Some(last_closed) = days(dir).into_iter().rfind(|d| d.as_str() < today) else {
        return Ok(false);
    };
    let dates = checkpoint_dates(dir);
    if dates.last().is_some_and(|d| *d >= last_closed) {
        return Ok(false);
    }
    let mut spend = match dates.last() {
        Some(date) => read_checkpoint(dir, date)?.spend_micros,
        None => HashMap::new(),
    };
    for date in days(dir) {
        if dates.last().is_none_or(|through| date > *through) && date <= last_closed {
            add_day_spend(dir, &date, &mut spend)?;
        }
    }
    let checkpoint = SpendCheckpoint {
        through: last_closed.clone(),
        spend_micros: spend,
    };
    let path = spend_checkpoint_path(dir, &last_closed);
    let bytes = serde_json::to_vec(&checkpoint).map_err(|e| io(&path)(std::io::Error::other(e)))?;
    crate::files::write_atomically(&path, &bytes).map_err(io(&path))?;
    for old in dates.iter().rev().skip(CHECKPOINTS_KEPT - 1) {
        let old = spend_checkpoint_path(dir, old);
        std::fs::remove_file(&old).map_err(io(&old))?;
    }
    Ok(true)
}
