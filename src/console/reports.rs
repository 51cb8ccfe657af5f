//! The reports page (`/admin/reports`): the CLI's report — per campaign
//! and day (campaign-local or UTC), hour, exchange, creative, domain,
//! country or device type, over a date range, for an advertiser — as a
//! table and as the CLI's CSV (`/admin/reports.csv`, same parameters).
//! Rows come from [`super::data::report_rows`], which is the admin API's
//! report: the same roles, the same rows.

use askama::Template;

use super::data::{report_csv, report_rows};
use super::format;
use super::page::{Cx, Shell, render};
use super::reply::Reply;
use crate::ledger::query::By;
use crate::ledger::report::{Group, Row};
use crate::money::Micros;

struct Line {
    campaign: String,
    date: String,
    group: String,
    bids: String,
    wins: String,
    impressions: String,
    clicks: String,
    conversions: String,
    conversion_value: String,
    spend: String,
    ctr: String,
    ecpm: String,
    ecpc: String,
    cpa: String,
    roas: String,
    win_rate: String,
}

#[derive(Template)]
#[template(path = "console/reports.html")]
struct ReportsPage {
    shell: Shell,
    from: String,
    to: String,
    by: &'static str,
    tz: String,
    groupings: Vec<&'static str>,
    group_heading: String,
    advertiser: String,
    advertisers: Vec<String>,
    lines: Vec<Line>,
    total: Option<Line>,
    csv: String,
    error: Option<String>,
}

/// The form's values: `from`, `to` (the last 7 days by default), `by`,
/// `tz` (`campaign` or `utc`), `advertiser`.
struct Form {
    from: String,
    to: String,
    by: &'static str,
    tz: String,
    advertiser: String,
}

impl Form {
    fn of(cx: &Cx) -> Form {
        let today = cx
            .app
            .bidder
            .clock
            .now()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date();
        let week_ago = today.checked_sub(jiff::Span::new().days(6)).unwrap_or(today);
        let date = |name: &str, default: jiff::civil::Date| {
            cx.request
                .param(name)
                .parse::<jiff::civil::Date>()
                .unwrap_or(default)
                .to_string()
        };
        let by = By::ALL
            .into_iter()
            .map(By::name)
            .find(|name| *name == cx.request.param("by"))
            .unwrap_or("day");
        Form {
            from: date("from", week_ago),
            to: date("to", today),
            by,
            tz: if cx.request.param("tz") == "utc" {
                "utc"
            } else {
                "campaign"
            }
            .into(),
            advertiser: cx.request.param("advertiser").to_string(),
        }
    }

    /// The report's query parameters (the CLI's flags, and `advertiser`).
    fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = [
            ("from", &self.from),
            ("to", &self.to),
            ("by", &self.by.to_string()),
            ("tz", &self.tz),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        if !self.advertiser.is_empty() {
            pairs.push(("advertiser".into(), self.advertiser.clone()));
        }
        pairs
    }
}

/// A ratio to show, or a dash where there is none.
fn ratio(value: Option<f64>, percent: bool) -> String {
    match value {
        Some(v) if percent => format!("{:.2} %", v * 100.0),
        Some(v) => format!("{v:.2}"),
        None => "—".into(),
    }
}

fn line(cx: &Cx, r: &Row, counts_bids: bool) -> Line {
    let spend = Micros(r.spend_micros);
    let ecpm = if r.impressions == 0 {
        "—".into()
    } else {
        cx.money(Micros(spend.0.saturating_mul(1000) / r.impressions as i64))
    };
    Line {
        campaign: r.campaign.clone(),
        date: r.date.clone(),
        group: match &r.group {
            Group::Day => String::new(),
            Group::Hour(h) => format!("{h:02}:00"),
            Group::Text(t) if t.is_empty() => "(unknown)".into(),
            Group::Text(t) => t.clone(),
        },
        bids: if counts_bids {
            format::count(r.bids)
        } else {
            "—".into()
        },
        wins: format::count(r.wins),
        impressions: format::count(r.impressions),
        clicks: format::count(r.clicks),
        conversions: format::count(r.conversions),
        conversion_value: cx.money(Micros(r.conversion_value_micros)),
        spend: cx.money(spend),
        ctr: format::percent(r.clicks as f64, r.impressions as f64),
        ecpm,
        ecpc: format::per(spend, r.clicks, &cx.currency),
        cpa: r.cpa_micros.map_or_else(|| "—".into(), |m| cx.money(Micros(m))),
        roas: ratio(r.roas, false),
        win_rate: ratio(r.win_rate, true),
    }
}

/// The sums of the rows, as a last line.
fn total(cx: &Cx, rows: &[Row], counts_bids: bool) -> Line {
    let mut sum = rows
        .first()
        .cloned()
        .unwrap_or_else(|| unreachable!("rows are not empty"));
    sum.campaign = "Total".into();
    sum.date = String::new();
    sum.group = Group::Day;
    for r in &rows[1..] {
        sum.bids += r.bids;
        sum.wins += r.wins;
        sum.impressions += r.impressions;
        sum.clicks += r.clicks;
        sum.conversions += r.conversions;
        sum.conversion_value_micros = sum.conversion_value_micros.saturating_add(r.conversion_value_micros);
        sum.spend_micros = sum.spend_micros.saturating_add(r.spend_micros);
    }
    sum.cpa_micros = (sum.conversions > 0).then(|| sum.spend_micros / sum.conversions as i64);
    sum.roas = (sum.spend_micros > 0).then(|| sum.conversion_value_micros as f64 / sum.spend_micros as f64);
    sum.win_rate = (counts_bids && sum.bids > 0).then(|| sum.wins as f64 / sum.bids as f64);
    line(cx, &sum, counts_bids)
}

/// `GET /admin/reports`.
pub fn page(cx: &Cx) -> Reply {
    let form = Form::of(cx);
    let (by, rows, error) = match report_rows(cx.app, &cx.principal, &form.pairs()) {
        Ok((by, rows)) => (by, rows, None),
        Err(e) => (By::Day, Vec::new(), Some(format!("The report could not be made: {e}"))),
    };
    let counts_bids = by.counts_bids();
    let advertisers = cx.call(http::Method::GET, "/admin/api/advertisers", &[], None).body["advertisers"]
        .as_array()
        .map(|l| l.iter().filter_map(|a| a["id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let csv = format!(
        "/admin/reports.csv?{}",
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.pairs())
            .finish()
    );
    let page = ReportsPage {
        shell: cx.shell("Reports", "reports"),
        lines: rows.iter().map(|r| line(cx, r, counts_bids)).collect(),
        total: (!rows.is_empty()).then(|| total(cx, &rows, counts_bids)),
        groupings: By::ALL.into_iter().map(By::name).collect(),
        group_heading: if by == By::Day {
            String::new()
        } else {
            by.name().to_string()
        },
        from: form.from,
        to: form.to,
        by: form.by,
        tz: form.tz,
        advertiser: form.advertiser,
        advertisers,
        csv,
        error,
    };
    render(200, &page)
}

/// `GET /admin/reports.csv`: the CLI's CSV.
pub fn csv(cx: &Cx) -> Reply {
    let form = Form::of(cx);
    match report_rows(cx.app, &cx.principal, &form.pairs()) {
        Ok((by, rows)) => Reply::csv(
            &format!("bullseye-{}-{}-{}.csv", form.by, form.from, form.to),
            report_csv(by, &rows),
        ),
        Err(e) => cx.message(400, "Report unavailable", &e),
    }
}
