//! `bullseye report`: per campaign and UTC day, from the billing log and
//! the bid counts.
//!
//! Counts exclude test traffic. `wins` are bids with a win or billing
//! notice, `impressions` bids with an impression pixel or billing notice,
//! `clicks` clicks that passed the click-quality rules (`filtered_clicks`
//! the others: filtered, or after the day's budget was spent), `late_notices`
//! win or billing notices after their window (recorded, never charged),
//! `spend_micros` the sum of charges (saturating, never wrapping). Ratios are for reading;
//! money stays in integer micros.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::record::{EventKind, Record};
use super::{LedgerError, bids};
use crate::campaigns::Pricing;
use crate::money::Micros;

/// One campaign on one UTC day (test traffic excluded).
#[derive(Debug, Default, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Row {
    /// Campaign id.
    pub campaign: String,
    /// UTC date, `YYYY-MM-DD`.
    pub date: String,
    /// `cpm` or `cpc`: the pricing of the day's last record.
    pub pricing: String,
    /// Bids made (from the bid-count files).
    pub bids: u64,
    /// Bids with a win or billing notice.
    pub wins: u64,
    /// Bids with an impression pixel or billing notice.
    pub impressions: u64,
    /// Clicks that passed the click-quality rules.
    pub clicks: u64,
    /// Clicks not billed: filtered out by the click-quality rules, or
    /// after the day's budget was spent.
    pub filtered_clicks: u64,
    /// Win or billing notices after their window: recorded, not charged.
    pub late_notices: u64,
    /// Conversions recorded.
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
    /// Wins per bid (0 without bids).
    pub win_rate: f64,
}

fn date_of(at_micros: i64) -> String {
    let at = jiff::Timestamp::from_microsecond(at_micros).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    at.to_zoned_datetime(jiff::tz::TimeZone::UTC).date().to_string()
}

#[derive(Default)]
struct Tally {
    pricing: Option<Pricing>,
    won: HashSet<String>,
    shown: HashSet<String>,
    clicks: u64,
    filtered_clicks: u64,
    late_notices: u64,
    conversions: u64,
    conversion_value: i64,
    spend: i64,
}

fn ratio(numerator: f64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator / denominator as f64
    }
}

impl Tally {
    /// Counts one record of the campaign and day.
    fn add(&mut self, record: &Record) {
        self.pricing = Some(record.pricing);
        self.spend = self.spend.saturating_add(record.charge);
        match record.event {
            EventKind::Win | EventKind::Bill if record.filtered.is_some() => self.late_notices += 1,
            EventKind::Win => {
                self.won.insert(record.bid.clone());
            }
            EventKind::Bill => {
                self.won.insert(record.bid.clone());
                self.shown.insert(record.bid.clone());
            }
            EventKind::Impression => {
                self.shown.insert(record.bid.clone());
            }
            EventKind::Click if record.filtered.is_some() => self.filtered_clicks += 1,
            EventKind::Click => self.clicks += 1,
            // A filtered click's conversions are recorded, not counted.
            EventKind::Conversion if record.filtered.is_some() => {}
            EventKind::Conversion => {
                self.conversions += 1;
                self.conversion_value = self.conversion_value.saturating_add(record.value.unwrap_or(0));
            }
        }
    }
}

/// Builds the rows from records (read one at a time: a day file streamed)
/// and bid counts, optionally for one date.
pub fn rows(
    records: impl Iterator<Item = Record>,
    bids: &BTreeMap<String, bids::DayBids>,
    date: Option<&str>,
) -> Vec<Row> {
    let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for record in records.filter(|r| !r.test) {
        let day = date_of(record.at);
        if date.is_some_and(|d| d != day) {
            continue;
        }
        tallies.entry((record.campaign.clone(), day)).or_default().add(&record);
    }
    for (day, campaigns) in bids {
        if date.is_some_and(|d| d != day) {
            continue;
        }
        for campaign in campaigns.keys() {
            tallies.entry((campaign.clone(), day.clone())).or_default();
        }
    }
    tallies
        .into_iter()
        .map(|((campaign, date), t)| {
            let bid_count = bids.get(&date).and_then(|d| d.get(&campaign)).copied().unwrap_or(0);
            let (wins, impressions) = (t.won.len() as u64, t.shown.len() as u64);
            let spend = Micros(t.spend).to_wire();
            Row {
                pricing: match t.pricing {
                    Some(Pricing::Cpc) => "cpc",
                    _ => "cpm",
                }
                .to_string(),
                bids: bid_count,
                wins,
                impressions,
                clicks: t.clicks,
                filtered_clicks: t.filtered_clicks,
                late_notices: t.late_notices,
                conversions: t.conversions,
                conversion_value_micros: t.conversion_value,
                spend_micros: t.spend,
                ctr: ratio(t.clicks as f64, impressions),
                ecpm: ratio(spend * 1000.0, impressions),
                ecpc: ratio(spend, t.clicks),
                win_rate: ratio(wins as f64, bid_count),
                campaign,
                date,
            }
        })
        .collect()
}

/// Reads the ledger directory and builds the rows, a day at a time: a
/// closed day from its rollup, else from its day file streamed.
pub fn build(ledger_dir: &Path, date: Option<&str>) -> Result<Vec<Row>, LedgerError> {
    let bids = bids::load_all(ledger_dir);
    let mut rows = Vec::new();
    for day in super::rollup::days(ledger_dir) {
        if date.is_some_and(|d| d != day) {
            continue;
        }
        rows.extend(super::rollup::day_rows(ledger_dir, &day, &bids)?);
    }
    rows.sort_by(|a, b| (&a.campaign, &a.date).cmp(&(&b.campaign, &b.date)));
    Ok(rows)
}

const HEADER: [&str; 16] = [
    "campaign",
    "date",
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
    "win_rate",
];

fn cells(row: &Row) -> [String; 16] {
    [
        row.campaign.clone(),
        row.date.clone(),
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
        format!("{:.4}", row.win_rate),
    ]
}

/// The rows as CSV, with a header line.
pub fn csv(rows: &[Row]) -> String {
    let mut out = HEADER.join(",") + "\n";
    for row in rows {
        out.push_str(
            &cells(row)
                .map(|c| {
                    if c.contains([',', '"']) {
                        format!("\"{}\"", c.replace('"', "\"\""))
                    } else {
                        c
                    }
                })
                .join(","),
        );
        out.push('\n');
    }
    out
}

/// The rows as an aligned plain-text table, with a header line.
pub fn table(rows: &[Row]) -> String {
    let all: Vec<[String; 16]> = rows.iter().map(cells).collect();
    let widths: Vec<usize> = (0..15)
        .map(|i| {
            all.iter()
                .map(|r| r[i].len())
                .chain([HEADER[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&mut out, &HEADER.map(String::from));
    for row in &all {
        line(&mut out, row);
    }
    out
}
