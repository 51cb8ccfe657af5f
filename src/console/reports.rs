//! The reports page (`/admin/reports`): per campaign by day or over the
//! range, for a date range and an advertiser, as a table and as CSV
//! (`/admin/reports.csv`, same parameters). Rows come from
//! [`super::data::report_rows`], the one seam to the ledger's reports.

use askama::Template;

use super::data::{Grouping, ReportQuery, ReportRow, report_csv, report_rows};
use super::format;
use super::page::{Cx, Shell, render};
use super::reply::Reply;

struct Line {
    campaign: String,
    date: String,
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
    win_rate: String,
}

#[derive(Template)]
#[template(path = "console/reports.html")]
struct ReportsPage {
    shell: Shell,
    from: String,
    to: String,
    by: &'static str,
    advertiser: String,
    advertisers: Vec<String>,
    lines: Vec<Line>,
    total: Option<Line>,
    csv: String,
    error: Option<String>,
}

/// The query of the request: `from`, `to` (UTC dates; the last 7 days by
/// default), `by` (`day` or `campaign`), `advertiser`.
fn query(cx: &Cx) -> ReportQuery {
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
    let advertiser = cx.request.param("advertiser");
    ReportQuery {
        from: date("from", week_ago),
        to: date("to", today),
        by: Grouping::parse(cx.request.param("by")),
        advertiser: (!advertiser.is_empty()).then(|| advertiser.to_string()),
    }
}

fn line(cx: &Cx, r: &ReportRow) -> Line {
    let ecpm = if r.impressions == 0 {
        "—".into()
    } else {
        cx.money(crate::money::Micros(
            r.spend.0.saturating_mul(1000) / r.impressions as i64,
        ))
    };
    Line {
        campaign: r.campaign.clone(),
        date: r.date.clone(),
        bids: format::count(r.bids),
        wins: format::count(r.wins),
        impressions: format::count(r.impressions),
        clicks: format::count(r.clicks),
        conversions: format::count(r.conversions),
        conversion_value: cx.money(r.conversion_value),
        spend: cx.money(r.spend),
        ctr: format::percent(r.clicks as f64, r.impressions as f64),
        ecpm,
        ecpc: format::per(r.spend, r.clicks, &cx.currency),
        win_rate: format::percent(r.wins as f64, r.bids as f64),
    }
}

/// `GET /admin/reports`.
pub fn page(cx: &Cx) -> Reply {
    let q = query(cx);
    let (rows, error) = match report_rows(cx.app, &cx.principal, &q) {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(format!("The billing log could not be read: {e}"))),
    };
    let total = (!rows.is_empty()).then(|| {
        let mut sum = ReportRow {
            campaign: "Total".into(),
            ..ReportRow::default()
        };
        for r in &rows {
            sum.bids += r.bids;
            sum.wins += r.wins;
            sum.impressions += r.impressions;
            sum.clicks += r.clicks;
            sum.conversions += r.conversions;
            sum.conversion_value = sum.conversion_value.saturating_add(r.conversion_value);
            sum.spend = sum.spend.saturating_add(r.spend);
        }
        line(cx, &sum)
    });
    let advertisers = cx.call(http::Method::GET, "/admin/api/advertisers", &[], None).body["advertisers"]
        .as_array()
        .map(|l| l.iter().filter_map(|a| a["id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let csv = format!(
        "/admin/reports.csv?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("from", &q.from)
            .append_pair("to", &q.to)
            .append_pair("by", q.by.as_str())
            .append_pair("advertiser", q.advertiser.as_deref().unwrap_or(""))
            .finish()
    );
    let page = ReportsPage {
        shell: cx.shell("Reports", "reports"),
        lines: rows.iter().map(|r| line(cx, r)).collect(),
        total,
        from: q.from,
        to: q.to,
        by: q.by.as_str(),
        advertiser: q.advertiser.unwrap_or_default(),
        advertisers,
        csv,
        error,
    };
    render(200, &page)
}

/// `GET /admin/reports.csv`.
pub fn csv(cx: &Cx) -> Reply {
    if !cx.principal.reads_campaigns() {
        return cx.message(403, "Not allowed", "Your role may not read reports.");
    }
    let q = query(cx);
    match report_rows(cx.app, &cx.principal, &q) {
        Ok(rows) => Reply::csv(&format!("bullseye-{}-{}.csv", q.from, q.to), report_csv(&rows)),
        Err(e) => cx.message(503, "Report unavailable", &e),
    }
}
