//! `bullseye report` and `GET /admin/api/reports`: rows per campaign, date
//! and group, from one or several data directories.
//!
//! [`query`] reads each UTC day of each billing log as a [`Cube`] (its
//! rollup, or its partial rollup and the records after it: see
//! [`super::rollup`]) and the bid counts, and folds them into rows for the
//! [`ReportQuery`]:
//!
//! - **Dates** are in the campaign's time zone by default: every record
//!   carries its campaign's UTC offset when it was written, so the log
//!   alone says which local day an event fell on, with no config needed
//!   and the same answer from every node's log (`--tz utc`: UTC days).
//!   Records written before the offset was carried count as UTC.
//! - **Several data directories** (the logs of several nodes) are merged
//!   and deduplicated by event (bid, event, order id): a day whose billing
//!   file is in two or more of them is read from those files (closed and
//!   rolled up or not: raw files are kept until retention), each event
//!   once and each bid's win and impression once; a day in one directory
//!   only comes from its rollup. Days whose raw files are gone past
//!   retention are summed from their rollups (cluster nodes record
//!   disjoint events except while Redis is unreachable, so only those
//!   events, or a log given twice, could count twice: the same directory
//!   given twice is read once). Bid counts are summed (each node counts
//!   its own bids).
//! - **Bids** are counted per campaign × exchange × UTC hour, so rows by
//!   day, hour and exchange carry `bids` and `win_rate`; rows by creative,
//!   domain, country, device and arm have `bids` 0 and no `win_rate` key.
//! - **Arms** (`--by arm`): rows of events made in an experiment arm, the
//!   arm as `{experiment}/{arm}`; [`super::experiment`] folds them over the
//!   dates into one row per campaign and arm, with the statistics.
//!   Bid counts of non-whole-hour offsets land on the local hour in which
//!   their UTC hour starts.
//!
//! Counts exclude test traffic. `wins` are bids with a win or billing
//! notice, `impressions` bids with an impression pixel or billing notice,
//! `clicks` clicks that passed the click-quality rules (`filtered_clicks`
//! the others: filtered, or after the day's budget was spent),
//! `late_notices` win or billing notices after their window (recorded,
//! never charged), `spend_micros` the sum of charges (saturating). Money
//! stays in integer micros: `cpa_micros` is spend per conversion rounded
//! to the nearest micro, `null` without conversions; `roas` (conversion
//! value / spend), `ctr`, `ecpm`, `ecpc` and `win_rate` are ratios for
//! reading, `roas` `null` without spend. An unknown domain, country or
//! device is the empty string.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::cube::{Counts, Cube, Dim, Zone};
pub use super::query::{By, Flags, QueryError, ReportQuery};
use super::{LedgerError, bids, rollup};
use crate::money::Micros;
use crate::signing::Place;

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A data directory without a billing log.
    #[error("no billing log in {0}")]
    NoLedger(String),
    /// The parameters are refused.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A log or rollup could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// A row's group within its campaign and date.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// Rows by day.
    Day,
    /// The hour of the day (0–23).
    Hour(u8),
    /// An exchange, creative, domain, country or device type name.
    Text(String),
}

/// One row: a campaign, a date and a group (test traffic excluded). Its
/// JSON object has the group under the key named after [`By`] (`"hour":
/// 13`, `"domain": "news.example"`; none by day).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Campaign id.
    pub campaign: String,
    /// Date, `YYYY-MM-DD`, in the report's zone.
    pub date: String,
    /// What the rows are grouped by.
    pub by: By,
    /// The group.
    pub group: Group,
    /// `cpm` or `cpc`: the pricing of the group's latest record.
    pub pricing: &'static str,
    /// Bids made (0 where bids are not counted: see the module header).
    pub bids: u64,
    /// Bids with a win or billing notice.
    pub wins: u64,
    /// Bids with an impression pixel or billing notice.
    pub impressions: u64,
    /// Clicks that passed the click-quality rules.
    pub clicks: u64,
    /// Clicks not billed (filtered, or after the day's budget was spent).
    pub filtered_clicks: u64,
    /// Win or billing notices after their window: recorded, not charged.
    pub late_notices: u64,
    /// Conversions counted.
    pub conversions: u64,
    /// Sum of the conversions' values, base-currency micros.
    pub conversion_value_micros: i64,
    /// Sum of the charges, base-currency micros.
    pub spend_micros: i64,
    /// Clicks per impression (0 without impressions).
    pub ctr: f64,
    /// Spend per thousand impressions, base currency (0 without impressions).
    pub ecpm: f64,
    /// Spend per click, base currency (0 without clicks).
    pub ecpc: f64,
    /// Spend per conversion, micros rounded to the nearest; `None` without
    /// conversions.
    pub cpa_micros: Option<i64>,
    /// Conversion value per unit of spend; `None` without spend.
    pub roas: Option<f64>,
    /// Wins per bid (0 without bids); `None` where bids are not counted.
    pub win_rate: Option<f64>,
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("campaign", &self.campaign)?;
        map.serialize_entry("date", &self.date)?;
        match &self.group {
            Group::Day => {}
            Group::Hour(hour) => map.serialize_entry("hour", hour)?,
            Group::Text(text) => map.serialize_entry(self.by.name(), text)?,
        }
        map.serialize_entry("pricing", self.pricing)?;
        map.serialize_entry("bids", &self.bids)?;
        map.serialize_entry("wins", &self.wins)?;
        map.serialize_entry("impressions", &self.impressions)?;
        map.serialize_entry("clicks", &self.clicks)?;
        map.serialize_entry("filtered_clicks", &self.filtered_clicks)?;
        map.serialize_entry("late_notices", &self.late_notices)?;
        map.serialize_entry("conversions", &self.conversions)?;
        map.serialize_entry("conversion_value_micros", &self.conversion_value_micros)?;
        map.serialize_entry("spend_micros", &self.spend_micros)?;
        map.serialize_entry("ctr", &self.ctr)?;
        map.serialize_entry("ecpm", &self.ecpm)?;
        map.serialize_entry("ecpc", &self.ecpc)?;
        map.serialize_entry("cpa_micros", &self.cpa_micros)?;
        map.serialize_entry("roas", &self.roas)?;
        if let Some(win_rate) = self.win_rate {
            map.serialize_entry("win_rate", &win_rate)?;
        }
        map.end()
    }
}

const EPOCH: Date = jiff::civil::date(1970, 1, 1);

fn days_of(date: Date) -> i32 {
    date.since(EPOCH).map_or(0, |span| span.get_days())
}

fn date_of_days(days: i32) -> Date {
    EPOCH.checked_add(jiff::Span::new().days(days)).unwrap_or(EPOCH)
}

/// True when cells of `dim` make rows grouped `by`.
fn group_of(by: By, dim: Dim) -> bool {
    matches!(
        (by, dim),
        (By::Day, Dim::Hour | Dim::DayOnly)
            | (By::Hour, Dim::Hour)
            | (By::Exchange, Dim::Exchange)
            | (By::Creative, Dim::Creative)
            | (By::Domain, Dim::Domain)
            | (By::Country, Dim::Country)
            | (By::Device, Dim::Device)
            | (By::Arm, Dim::Arm)
    )
}

/// Rows being summed, by (campaign, date in days, group).
#[derive(Default)]
struct Tally {
    /// Hashed, then sorted once at the end (a B-tree spent a third of a
    /// half-million-row report comparing strings).
    rows: HashMap<(String, i32, Group), (Counts, u64), foldhash::fast::RandomState>,
}

impl Tally {
    fn add(&mut self, q: &ReportQuery, campaign: &str, days: i32, group: Group, counts: &Counts, bids: u64) {
        if !q.has_date(date_of_days(days)) || !q.has_campaign(campaign) {
            return;
        }
        let row = self.rows.entry((campaign.to_string(), days, group)).or_default();
        row.0.add(counts);
        row.1 += bids;
    }

    /// Adds the cells of `cube` that the query's grouping and zone read.
    fn add_cube(&mut self, q: &ReportQuery, cube: &Cube) {
        for (key, counts) in &cube.cells {
            if key.zone != q.tz {
                continue;
            }
            let group = match (q.by, key.dim) {
                (By::Day, Dim::Hour | Dim::DayOnly) => Group::Day,
                (By::Hour, Dim::Hour) => Group::Hour(key.value as u8),
                (By::Device, Dim::Device) => Group::Text(Place::device_name(key.value as u8).into_owned()),
                (By::Exchange, Dim::Exchange)
                | (By::Creative, Dim::Creative)
                | (By::Domain, Dim::Domain)
                | (By::Country, Dim::Country)
                | (By::Arm, Dim::Arm) => Group::Text(cube.text(key).unwrap_or_default().to_string()),
                _ => continue,
            };
            self.add(q, cube.campaign(key), key.date, group, counts, 0);
        }
    }

    /// Adds a UTC day's bid counts where the grouping counts bids.
    fn add_bids(&mut self, q: &ReportQuery, utc_days: i32, day: &bids::DayBids) {
        let none = Counts::default();
        for (campaign, counts) in day {
            if q.by == By::Day && counts.day_total > 0 {
                self.add(q, campaign, utc_days, Group::Day, &none, counts.day_total);
            }
            if !q.by.counts_bids() {
                continue;
            }
            for (exchange, hours) in &counts.exchanges {
                for (hour, &n) in hours.iter().enumerate().filter(|(_, n)| **n > 0) {
                    let offset = match q.tz {
                        Zone::Campaign => counts.offsets[hour].unwrap_or(0),
                        Zone::Utc => 0,
                    };
                    let at = i64::from(utc_days) * 86_400 + hour as i64 * 3600 + i64::from(offset);
                    let (days, local_hour) = (at.div_euclid(86_400) as i32, at.rem_euclid(86_400) / 3600);
                    let group = match q.by {
                        By::Hour => Group::Hour(local_hour as u8),
                        By::Exchange => Group::Text(exchange.clone()),
                        _ => Group::Day,
                    };
                    self.add(q, campaign, days, group, &none, n);
                }
            }
        }
    }

    fn rows(self, by: By) -> Vec<Row> {
        let mut rows: Vec<_> = self.rows.into_iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        rows.into_iter()
            .map(|((campaign, days, group), (c, bids))| row(campaign, days, by, group, &c, bids))
            .collect()
    }
}

fn ratio(numerator: f64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator / denominator as f64
    }
}

fn row(campaign: String, days: i32, by: By, group: Group, c: &Counts, bids: u64) -> Row {
    let spend = Micros(c.spend).to_wire();
    let conversions = i128::from(c.conversions);
    Row {
        campaign,
        date: date_of_days(days).to_string(),
        by,
        group,
        pricing: if c.cpc { "cpc" } else { "cpm" },
        bids,
        wins: c.wins,
        impressions: c.impressions,
        clicks: c.clicks,
        filtered_clicks: c.filtered_clicks,
        late_notices: c.late_notices,
        conversions: c.conversions,
        conversion_value_micros: c.conversion_value,
        spend_micros: c.spend,
        ctr: ratio(c.clicks as f64, c.impressions),
        ecpm: ratio(spend * 1000.0, c.impressions),
        ecpc: ratio(spend, c.clicks),
        cpa_micros: (conversions > 0).then(|| ((i128::from(c.spend) * 2 + conversions) / (2 * conversions)) as i64),
        roas: (c.spend > 0).then(|| c.conversion_value as f64 / c.spend as f64),
        win_rate: by.counts_bids().then(|| ratio(c.wins as f64, bids)),
    }
}

/// The ledger directories of `data_dirs`, each once.
fn ledgers(data_dirs: &[PathBuf]) -> Result<Vec<PathBuf>, ReportError> {
    let mut seen = HashSet::new();
    let mut ledgers = Vec::new();
    for dir in data_dirs {
        let ledger = dir.join("ledger");
        let Ok(canonical) = ledger.canonicalize().map(|p| p.is_dir().then_some(p)) else {
            return Err(ReportError::NoLedger(ledger.display().to_string()));
        };
        let canonical = canonical.ok_or_else(|| ReportError::NoLedger(ledger.display().to_string()))?;
        if seen.insert(canonical.clone()) {
            ledgers.push(canonical);
        }
    }
    Ok(ledgers)
}

/// True when UTC day `utc_days` can hold events of the query's dates
/// (a campaign's local day spans at most the UTC days either side).
fn relevant(q: &ReportQuery, utc_days: i32) -> bool {
    let slack = match q.tz {
        Zone::Campaign => 1,
        Zone::Utc => 0,
    };
    (utc_days - slack..=utc_days + slack).any(|d| q.has_date(date_of_days(d)))
}

/// A UTC day's records from the billing files of several logs, each event
/// (bid, event, order id) once, and each bid's win and impression counted
/// once ([`super::Record::counts`]): two nodes that each counted them (a
/// bid's billing notice at one, its pixel at the other, while Redis was
/// unreachable) count once together.
fn merged_day(ledgers: &[&Path], date: &str) -> Result<Cube, LedgerError> {
    let mut cube = Cube::default();
    let mut seen: HashSet<u128> = HashSet::new();
    let mut counted: HashMap<u64, u8> = HashMap::new();
    for ledger in ledgers {
        let path = rollup::billing_path(ledger, date);
        let mut frames = super::stream_file(&path)?;
        for mut record in frames.by_ref() {
            let mut key = Vec::with_capacity(record.bid.len() + 40);
            key.extend_from_slice(record.bid.as_bytes());
            key.push(0);
            key.push(record.event as u8);
            key.extend_from_slice(record.order.as_deref().unwrap_or_default().as_bytes());
            if !seen.insert(xxhash_rust::xxh3::xxh3_128(&key)) {
                continue;
            }
            if let Some(flags) = record.counts.filter(|f| *f != 0) {
                let bits = counted
                    .entry(xxhash_rust::xxh3::xxh3_64(record.bid.as_bytes()))
                    .or_default();
                record.counts = Some(flags & !*bits);
                *bits |= flags;
            }
            cube.add(&record);
        }
        if let Some(source) = frames.error.take() {
            return Err(super::io_error(&path)(source));
        }
    }
    Ok(cube)
}

/// The rows for `q` from the data directories (each holding `ledger/`),
/// sorted by campaign, date and group.
pub fn query(data_dirs: &[PathBuf], q: &ReportQuery) -> Result<Vec<Row>, ReportError> {
    let ledgers = ledgers(data_dirs)?;
    let mut days = std::collections::BTreeSet::new();
    for ledger in &ledgers {
        days.extend(rollup::days(ledger));
    }
    let mut tally = Tally::default();
    let wanted = |dim: Dim, zone: Zone| zone == q.tz && group_of(q.by, dim);
    for date in days {
        let Ok(parsed) = Date::strptime("%Y-%m-%d", &date) else {
            continue;
        };
        let utc_days = days_of(parsed);
        if !relevant(q, utc_days) {
            continue;
        }
        let (raw, rolled): (Vec<&Path>, Vec<&Path>) = ledgers
            .iter()
            .map(PathBuf::as_path)
            .partition(|l| rollup::billing_path(l, &date).exists());
        if raw.len() >= 2 {
            tally.add_cube(q, &merged_day(&raw, &date)?);
        } else {
            for ledger in &raw {
                tally.add_cube(q, &rollup::day_cube(ledger, &date, &wanted)?.0);
            }
        }
        for ledger in rolled {
            tally.add_cube(q, &rollup::day_cube(ledger, &date, &wanted)?.0);
        }
        for ledger in &ledgers {
            tally.add_bids(q, utc_days, &bids::load(ledger, &date));
        }
    }
    Ok(tally.rows(q.by))
}

fn header(by: By) -> Vec<&'static str> {
    let mut header = vec!["campaign", "date"];
    if by != By::Day {
        header.push(by.name());
    }
    header.extend([
        "pricing",
        "bids",
        "wins",
        "impressions",
        "clicks",
        "filtered_clicks",
        "late_notices",
        "conversions",
        "conversion_value",
        "spend",
        "ctr",
        "ecpm",
        "ecpc",
        "cpa",
        "roas",
        "win_rate",
    ]);
    header
}

fn cells(row: &Row) -> Vec<String> {
    let mut cells = vec![row.campaign.clone(), row.date.clone()];
    match &row.group {
        Group::Day => {}
        Group::Hour(hour) => cells.push(hour.to_string()),
        Group::Text(text) => cells.push(text.clone()),
    }
    let ratio = |r: Option<f64>| r.map_or(String::new(), |r| format!("{r:.4}"));
    cells.extend([
        row.pricing.to_string(),
        row.bids.to_string(),
        row.wins.to_string(),
        row.impressions.to_string(),
        row.clicks.to_string(),
        row.filtered_clicks.to_string(),
        row.late_notices.to_string(),
        row.conversions.to_string(),
        Micros(row.conversion_value_micros).to_string(),
        Micros(row.spend_micros).to_string(),
        format!("{:.4}", row.ctr),
        format!("{:.4}", row.ecpm),
        format!("{:.4}", row.ecpc),
        row.cpa_micros.map_or(String::new(), |cpa| Micros(cpa).to_string()),
        ratio(row.roas),
        ratio(row.win_rate),
    ]);
    cells
}

/// The rows as a JSON array, one row per line.
pub fn json(rows: &[Row], out: &mut impl std::io::Write) -> std::io::Result<()> {
    out.write_all(b"[")?;
    for (i, row) in rows.iter().enumerate() {
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut *out, row)?;
    }
    out.write_all(b"\n]\n")
}

/// The rows as CSV, with a header line (money in base-currency units;
/// empty cells where a ratio is undefined).
pub fn csv(by: By, rows: &[Row]) -> String {
    csv_of(&header(by), rows.iter().map(cells))
}

/// Lines of cells as CSV under a header line, a cell quoted when it holds
/// a comma, a quote or a line break.
pub(crate) fn csv_of(header: &[&str], lines: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = header.join(",") + "\n";
    for line in lines {
        let quoted: Vec<String> = line
            .into_iter()
            .map(|c| {
                if c.contains([',', '"', '\n']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c
                }
            })
            .collect();
        out.push_str(&quoted.join(","));
        out.push('\n');
    }
    out
}

/// The rows as an aligned plain-text table, with a header line.
pub fn table(by: By, rows: &[Row]) -> String {
    aligned(&header(by), rows.iter().map(cells).collect())
}

/// Lines of cells as a plain-text table under a header line, each column
/// as wide as its widest cell.
pub(crate) fn aligned(header: &[&str], lines: Vec<Vec<String>>) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            lines
                .iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in std::iter::once(&header).chain(&lines) {
        let padded: Vec<String> = line.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    }
    out
}
