//! The console's seams to what the ledger and the admin API offer today.
//! Each is one function, so the lead can swap its insides for the new
//! report query (`ledger::report::query`: dimensions, hours,
//! campaign-local days) or the explain call without touching a page:
//!
//! - [`report_rows`]: the reports page and its CSV. Today: the ledger's
//!   per campaign × UTC day rows (`ledger::rollup::day_rows`, rollups for
//!   closed days, the day file streamed otherwise), grouped by day or by
//!   campaign here.
//! - [`spend_series`] (and [`hourly_spend_today`] under it): spend by
//!   campaign-local hour today and by day over 30 days. Today: the hours
//!   from a pass over the current day files (O(today's events)), the days
//!   from the UTC-day rollups; the new query's hourly rows and
//!   campaign-local days replace both.
//! - [`explain`]: `POST /admin/api/explain` through `admin::handle`,
//!   answered `404` until the explain call is merged ("unavailable").

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;

use crate::admin::{Call, Principal};
use crate::app::App;
use crate::clock::{local_day, local_seconds};
use crate::config::documents;
use crate::ledger::{self, EventKind, bids, rollup};
use crate::money::Micros;

/// How report rows are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// One row per campaign and UTC day.
    Day,
    /// One row per campaign over the whole range.
    Campaign,
}

impl Grouping {
    /// From the form's `by` (`day` by default).
    pub fn parse(text: &str) -> Grouping {
        if text == "campaign" {
            Grouping::Campaign
        } else {
            Grouping::Day
        }
    }

    /// Its name in the form.
    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::Day => "day",
            Grouping::Campaign => "campaign",
        }
    }
}

/// What a report is asked for.
#[derive(Clone, Debug)]
pub struct ReportQuery {
    /// First UTC date, `YYYY-MM-DD`, inclusive.
    pub from: String,
    /// Last UTC date, inclusive.
    pub to: String,
    /// The grouping.
    pub by: Grouping,
    /// Only this advertiser's campaigns.
    pub advertiser: Option<String>,
}

/// One row of the reports page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportRow {
    /// Campaign id.
    pub campaign: String,
    /// The day, or `from – to` for a row over the range.
    pub date: String,
    /// Bids made.
    pub bids: u64,
    /// Bids won.
    pub wins: u64,
    /// Impressions.
    pub impressions: u64,
    /// Billable clicks.
    pub clicks: u64,
    /// Conversions.
    pub conversions: u64,
    /// Conversion value, base-currency micros.
    pub conversion_value: Micros,
    /// Spend, base-currency micros.
    pub spend: Micros,
}

impl ReportRow {
    fn add(&mut self, other: &ReportRow) {
        self.bids += other.bids;
        self.wins += other.wins;
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.conversions += other.conversions;
        self.conversion_value = self.conversion_value.saturating_add(other.conversion_value);
        self.spend = self.spend.saturating_add(other.spend);
    }
}

/// Campaign id → advertiser, from the campaign files.
fn advertisers_by_campaign(app: &App) -> HashMap<String, String> {
    documents::scan(&app.reloader.config_dir)
        .into_iter()
        .map(|d| (d.id.clone(), d.advertiser().to_string()))
        .collect()
}

/// Whether `principal` may see campaign `id` of the report (a campaign no
/// longer in the config is an admin's or a viewer's only).
fn may_see(principal: &Principal, advertiser: Option<&String>, only: Option<&str>) -> bool {
    match advertiser {
        Some(a) => principal.sees(a) && only.is_none_or(|o| o == a),
        None => only.is_none() && principal.sees(""),
    }
}

/// The SEAM for reports: rows the principal may see, in the date range,
/// grouped. Today's ledger offers campaign × UTC day.
pub fn report_rows(app: &App, principal: &Principal, query: &ReportQuery) -> Result<Vec<ReportRow>, String> {
    let dir = app.tracker.ledger.dir();
    let owners = advertisers_by_campaign(app);
    let bid_counts = bids::load_all(dir);
    let mut rows = Vec::new();
    for day in rollup::days(dir) {
        if day < query.from || day > query.to {
            continue;
        }
        let day_rows = rollup::day_rows(dir, &day, &bid_counts).map_err(|e| e.to_string())?;
        rows.extend(
            day_rows
                .into_iter()
                .filter(|r| may_see(principal, owners.get(&r.campaign), query.advertiser.as_deref()))
                .map(|r| ReportRow {
                    campaign: r.campaign,
                    date: r.date,
                    bids: r.bids,
                    wins: r.wins,
                    impressions: r.impressions,
                    clicks: r.clicks,
                    conversions: r.conversions,
                    conversion_value: Micros(r.conversion_value_micros),
                    spend: Micros(r.spend_micros),
                }),
        );
    }
    if query.by == Grouping::Campaign {
        let mut by_campaign: BTreeMap<String, ReportRow> = BTreeMap::new();
        for row in &rows {
            let total = by_campaign.entry(row.campaign.clone()).or_insert_with(|| ReportRow {
                campaign: row.campaign.clone(),
                date: format!("{} – {}", query.from, query.to),
                ..ReportRow::default()
            });
            total.add(row);
        }
        return Ok(by_campaign.into_values().collect());
    }
    rows.sort_by(|a, b| (&a.date, &a.campaign).cmp(&(&b.date, &b.campaign)));
    Ok(rows)
}

/// The rows as CSV (money as decimal strings in the base currency).
pub fn report_csv(rows: &[ReportRow]) -> String {
    let mut out =
        String::from("campaign,date,bids,wins,impressions,clicks,conversions,conversion_value,spend,ctr,win_rate\n");
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    for r in rows {
        let campaign = if r.campaign.contains([',', '"']) {
            format!("\"{}\"", r.campaign.replace('"', "\"\""))
        } else {
            r.campaign.clone()
        };
        let _ = writeln!(
            out,
            "{campaign},{},{},{},{},{},{},{},{},{:.4},{:.4}",
            r.date,
            r.bids,
            r.wins,
            r.impressions,
            r.clicks,
            r.conversions,
            r.conversion_value,
            r.spend,
            ratio(r.clicks, r.impressions),
            ratio(r.wins, r.bids)
        );
    }
    out
}

/// One day of a campaign.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayFigures {
    /// UTC date.
    pub date: String,
    /// Spend.
    pub spend: Micros,
    /// Bids made.
    pub bids: u64,
    /// Bids won.
    pub wins: u64,
}

/// A campaign's spend over time.
#[derive(Clone, Debug, Default)]
pub struct SpendSeries {
    /// Spend per campaign-local hour of today; `None` for hours to come.
    pub hourly: Vec<Option<Micros>>,
    /// The last 30 UTC days, oldest first, today last.
    pub daily: Vec<DayFigures>,
}

/// Spend per campaign-local hour of today, for the campaigns given (id and
/// time zone), in one pass over the day files that today can touch (the
/// UTC days of each local midnight and of now).
pub fn hourly_spend_today(app: &App, campaigns: &[(String, jiff::tz::TimeZone)]) -> HashMap<String, [i64; 24]> {
    let now = app.bidder.clock.now();
    let mut dates: Vec<String> = vec![utc_date(now)];
    for (_, tz) in campaigns {
        let midnight = now.as_second() - local_seconds(now, tz).rem_euclid(86_400);
        let date = utc_date(jiff::Timestamp::from_second(midnight).unwrap_or(now));
        if !dates.contains(&date) {
            dates.push(date);
        }
    }
    let wanted: HashMap<&str, &jiff::tz::TimeZone> = campaigns.iter().map(|(id, tz)| (id.as_str(), tz)).collect();
    let mut hours: HashMap<String, [i64; 24]> = HashMap::new();
    let dir = app.tracker.ledger.dir();
    for date in dates {
        let Ok(frames) = ledger::stream_file(&dir.join(format!("billing-{date}.log"))) else {
            continue;
        };
        for record in frames.filter(|r| !r.test && r.charge > 0 && r.event != EventKind::Conversion) {
            let Some(tz) = wanted.get(record.campaign.as_str()) else {
                continue;
            };
            let Ok(at) = jiff::Timestamp::from_microsecond(record.at) else {
                continue;
            };
            if local_day(at, tz) != local_day(now, tz) {
                continue;
            }
            let hour = (local_seconds(at, tz).rem_euclid(86_400) / 3600) as usize;
            let slot = &mut hours.entry(record.campaign.clone()).or_insert([0; 24])[hour];
            *slot = slot.saturating_add(record.charge);
        }
    }
    hours
}

fn utc_date(at: jiff::Timestamp) -> String {
    at.to_zoned_datetime(jiff::tz::TimeZone::UTC).date().to_string()
}

/// The SEAM for spend over time: one campaign's spend by local hour today
/// and by UTC day over the last 30 days (bids and wins too).
pub fn spend_series(app: &App, campaign_id: &str, tz: &jiff::tz::TimeZone) -> SpendSeries {
    let now = app.bidder.clock.now();
    let hour_now = (local_seconds(now, tz).rem_euclid(86_400) / 3600) as usize;
    let today = hourly_spend_today(app, &[(campaign_id.to_string(), tz.clone())])
        .remove(campaign_id)
        .unwrap_or([0; 24]);
    let hourly = (0..24).map(|h| (h <= hour_now).then_some(Micros(today[h]))).collect();
    let dir = app.tracker.ledger.dir();
    let known = rollup::days(dir);
    let bid_counts = bids::load_all(dir);
    let today_utc = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let daily = (0..30i64)
        .rev()
        .map(|back| {
            let date = today_utc
                .checked_sub(jiff::Span::new().days(back))
                .unwrap_or(today_utc)
                .to_string();
            let row = known
                .contains(&date)
                .then(|| rollup::day_rows(dir, &date, &bid_counts).ok())
                .flatten()
                .and_then(|rows| rows.into_iter().find(|r| r.campaign == campaign_id));
            DayFigures {
                spend: Micros(row.as_ref().map_or(0, |r| r.spend_micros)),
                bids: row.as_ref().map_or(0, |r| r.bids),
                wins: row.as_ref().map_or(0, |r| r.wins),
                date,
            }
        })
        .collect();
    SpendSeries { hourly, daily }
}

/// One campaign's verdict for one impression.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CampaignVerdict {
    /// Campaign id.
    pub id: String,
    /// What it would bid (a decimal string), if it would.
    #[serde(default)]
    pub bid: Option<Value>,
    /// The rule that excluded it, if one did.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The verdicts for one impression.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ImpVerdict {
    /// The impression's id.
    pub impid: String,
    /// The campaign that would win it, if any.
    #[serde(default)]
    pub winner: Option<String>,
    /// Every campaign's verdict.
    #[serde(default)]
    pub campaigns: Vec<CampaignVerdict>,
}

#[derive(Deserialize)]
struct Explanation {
    imp: Vec<ImpVerdict>,
}

/// What explaining a bid request gave.
#[derive(Clone, Debug, PartialEq)]
pub enum Explained {
    /// The explain call does not exist on this build.
    Unavailable,
    /// It refused (an invalid request, a role that may not).
    Refused(String),
    /// Verdicts per impression.
    Verdicts(Vec<ImpVerdict>),
}

/// The SEAM for explain: `POST /admin/api/explain` with the bid request,
/// through `admin::handle` (roles, validation and "no side effect" are the
/// API's). Answers `{"imp": [{"impid", "winner", "campaigns": [{"id",
/// "bid", "reason"}]}]}`; a 404 means the call is not there yet.
pub fn explain(app: &App, principal: &Principal, request: &str) -> Explained {
    let call = Call {
        method: http::Method::POST,
        path: "/admin/api/explain".into(),
        query: Vec::new(),
        body: bytes::Bytes::from(request.to_string()),
        if_match: None,
    };
    let answer = app.admin(principal, &call);
    match answer.status {
        200 => match serde_json::from_value::<Explanation>(answer.body) {
            Ok(explanation) => Explained::Verdicts(explanation.imp),
            Err(e) => Explained::Refused(format!("unexpected explain answer: {e}")),
        },
        404 if answer.body.get("error").and_then(Value::as_str) == Some("not found") => Explained::Unavailable,
        _ => Explained::Refused(
            answer
                .body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("explain failed")
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_header_and_decimal_money() {
        let rows = [ReportRow {
            campaign: "a,b".into(),
            date: "2026-11-28".into(),
            bids: 10,
            wins: 4,
            impressions: 4,
            clicks: 1,
            conversions: 0,
            conversion_value: Micros(0),
            spend: Micros(2_500_000),
        }];
        let csv = report_csv(&rows);
        let mut lines = csv.lines();
        assert!(lines.next().unwrap().starts_with("campaign,date,bids"));
        assert_eq!(
            lines.next().unwrap(),
            "\"a,b\",2026-11-28,10,4,4,1,0,0,2.5,0.2500,0.4000"
        );
    }

    #[test]
    fn an_explanation_reads_the_api_shape() {
        let body = serde_json::json!({"imp": [{"impid": "1", "winner": "c1", "campaigns": [
            {"id": "c1", "bid": "2.5", "reason": null},
            {"id": "c2", "bid": null, "reason": "size"}
        ]}]});
        let explanation: Explanation = serde_json::from_value(body).unwrap();
        assert_eq!(explanation.imp[0].winner.as_deref(), Some("c1"));
        assert_eq!(explanation.imp[0].campaigns[1].reason.as_deref(), Some("size"));
    }
}
