//! The console's seams to the ledger's reports and the explain call, one
//! function each, so that pages never reach into the ledger:
//!
//! - [`report_rows`]: the reports page and its CSV, through the admin API's
//!   report ([`crate::admin::reports::rows`]: the CLI's flags, roles, an
//!   advertiser filter).
//! - [`spend_series`] and [`hourly_spend_today`]: spend by campaign-local
//!   hour today and by campaign-local day over 30 days, from
//!   [`crate::ledger::report::query`] (rollup cubes plus today's tail), for
//!   campaigns the page has already shown the caller.
//! - [`explain`]: `POST /admin/api/explain` through `admin::handle`.
//! - [`forecast`]: `GET /admin/api/forecast` through `admin::handle`.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::Value;

use crate::admin::{Call, Principal};
use crate::app::App;
use crate::ledger::cube::Zone;
use crate::ledger::query::{By, ReportQuery};
use crate::ledger::report::{self, Group, Row};
use crate::money::Micros;

/// The SEAM for reports: the rows `pairs` (the CLI's flags as query
/// parameters, and `advertiser`) ask for, as the caller may see them.
pub fn report_rows(app: &App, principal: &Principal, pairs: &[(String, String)]) -> Result<(By, Vec<Row>), String> {
    app.report(principal, pairs).map_err(|answer| {
        answer
            .body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("report failed")
            .to_string()
    })
}

/// The rows as CSV, exactly as `bullseye report --format csv` writes them.
pub fn report_csv(by: By, rows: &[Row]) -> String {
    report::csv(by, rows)
}

/// One day of a campaign.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayFigures {
    /// Campaign-local date.
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
    /// The last 30 campaign-local days, oldest first, today last.
    pub daily: Vec<DayFigures>,
}

/// Today's date in a time zone.
fn local_date(now: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> jiff::civil::Date {
    now.to_zoned_datetime(tz.clone()).date()
}

/// Rows of the campaigns `ids`, in their own time zones, over a range.
fn campaign_rows(app: &App, ids: BTreeSet<String>, by: By, from: jiff::civil::Date, to: jiff::civil::Date) -> Vec<Row> {
    let query = ReportQuery {
        from: Some(from),
        to: Some(to),
        by,
        tz: Zone::Campaign,
        campaigns: Some(ids),
    };
    let data_dirs = [app.reloader.data_dir.clone()];
    report::query(&data_dirs, &query).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "console: report unreadable");
        Vec::new()
    })
}

/// One campaign's campaign-local today, from the billing log and the bid
/// counts (flushed every 5 s).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Today {
    /// Spend per local hour, micros.
    pub hours: [i64; 24],
    /// Bids made today.
    pub bids: u64,
    /// Bids won today.
    pub wins: u64,
}

/// Spend per campaign-local hour of today, and today's bids and wins, for
/// the campaigns given (id and time zone), in one report query.
pub fn hourly_spend_today(app: &App, campaigns: &[(String, jiff::tz::TimeZone)]) -> HashMap<String, Today> {
    let now = app.bidder.clock.now();
    let today: HashMap<&str, String> = campaigns
        .iter()
        .map(|(id, tz)| (id.as_str(), local_date(now, tz).to_string()))
        .collect();
    let (Some(first), Some(last)) = (
        campaigns.iter().map(|(_, tz)| local_date(now, tz)).min(),
        campaigns.iter().map(|(_, tz)| local_date(now, tz)).max(),
    ) else {
        return HashMap::new();
    };
    let ids = campaigns.iter().map(|(id, _)| id.clone()).collect();
    let mut figures: HashMap<String, Today> = HashMap::new();
    for row in campaign_rows(app, ids, By::Hour, first, last) {
        if today.get(row.campaign.as_str()) != Some(&row.date) {
            continue;
        }
        if let Group::Hour(hour) = row.group {
            let day = figures.entry(row.campaign.clone()).or_default();
            let slot = &mut day.hours[usize::from(hour) % 24];
            *slot = slot.saturating_add(row.spend_micros);
            day.bids += row.bids;
            day.wins += row.wins;
        }
    }
    figures
}

/// The SEAM for spend over time: one campaign's spend by local hour today
/// and by local day over the last 30 days (bids and wins too).
pub fn spend_series(app: &App, campaign_id: &str, tz: &jiff::tz::TimeZone) -> SpendSeries {
    let now = app.bidder.clock.now();
    let hour_now = (crate::clock::local_seconds(now, tz).rem_euclid(86_400) / 3600) as usize;
    let today = hourly_spend_today(app, &[(campaign_id.to_string(), tz.clone())])
        .remove(campaign_id)
        .unwrap_or_default()
        .hours;
    let hourly = (0..24).map(|h| (h <= hour_now).then_some(Micros(today[h]))).collect();
    let last = local_date(now, tz);
    let first = last.checked_sub(jiff::Span::new().days(29)).unwrap_or(last);
    let rows = campaign_rows(app, BTreeSet::from([campaign_id.to_string()]), By::Day, first, last);
    let daily = (0..30i64)
        .rev()
        .map(|back| {
            let date = last
                .checked_sub(jiff::Span::new().days(back))
                .unwrap_or(last)
                .to_string();
            let row = rows.iter().find(|r| r.date == date);
            DayFigures {
                spend: Micros(row.map_or(0, |r| r.spend_micros)),
                bids: row.map_or(0, |r| r.bids),
                wins: row.map_or(0, |r| r.wins),
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

/// The SEAM for the forecast: `GET /admin/api/forecast?campaign=ID` at the
/// campaign's current bid and budget, through `admin::handle` (roles are
/// the API's). The JSON of `bullseye forecast --json`; `None` when the
/// call refused (or the sample is empty).
pub fn forecast(app: &App, principal: &Principal, campaign: &str) -> Option<Value> {
    let call = Call {
        method: http::Method::GET,
        path: "/admin/api/forecast".into(),
        query: vec![("campaign".into(), campaign.into())],
        body: bytes::Bytes::new(),
        if_match: None,
    };
    let answer = app.admin(principal, &call);
    let requests = answer.body["sample"]["requests"].as_u64().unwrap_or(0);
    (answer.status == 200 && requests > 0).then_some(answer.body)
}

#[cfg(test)]
mod tests {
    use super::*;

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
