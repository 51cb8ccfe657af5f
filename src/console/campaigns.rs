//! The campaigns page (`/admin/`): every campaign the principal sees, with
//! status, today's spend against the daily budget, the pacing curve,
//! impressions, clicks, CTR, eCPC and win rate; filtered by advertiser.
//!
//! The list is the API's (`GET /admin/api/campaigns`, so an advertiser
//! sees only its own); the pacing curves add the pacer's target curve and
//! today's spend by hour and today's bids and wins for the win rate
//! ([`super::data::hourly_spend_today`], one report query for the whole
//! page).

use std::collections::HashMap;

use askama::Template;
use serde_json::Value;

use super::chart::{self, Chart, Point, Series};
use super::data::{Today, hourly_spend_today};
use super::format;
use super::page::{Cx, Shell, TodayFigures, error_of, render};
use super::reply::Reply;
use crate::clock::local_seconds;
use crate::live::LiveCampaign;
use crate::money::Micros;

struct Row {
    id: String,
    advertiser: String,
    status: String,
    pricing: String,
    max_bid: String,
    spend: String,
    budget: String,
    spend_micros: i64,
    budget_micros: i64,
    impressions: String,
    clicks: String,
    ctr: String,
    ecpc: String,
    win_rate: String,
    pacing: String,
}

struct Totals {
    spend: String,
    budget: String,
    impressions: String,
    clicks: String,
    active: usize,
}

#[derive(Template)]
#[template(path = "console/campaigns.html")]
struct CampaignsPage {
    shell: Shell,
    rows: Vec<Row>,
    totals: Totals,
    advertisers: Vec<(String, String)>,
    advertiser: String,
    error: Option<String>,
}

/// The pacing chart of a campaign: the target (daily budget × the share
/// of the day's traffic by the end of each local hour) and the actual
/// spend, cumulative, up to the current hour.
pub fn pacing_chart(cx: &Cx, live: &LiveCampaign, hourly: &[i64; 24], size: (u32, u32)) -> String {
    let campaign = &live.campaign;
    let now = cx.app.bidder.clock.now();
    let hour_now = (local_seconds(now, &campaign.time_zone).rem_euclid(86_400) / 3600) as usize;
    let today = crate::clock::local_day(now, &campaign.time_zone);
    let budget = live.state.spend.budget_today(today, &campaign.day_budget());
    let shown = |m: Micros| cx.money(m);
    let target = live
        .state
        .pacer
        .target_by_hour()
        .iter()
        .map(|share| {
            let m = Micros((budget.0 as f64 * share).round() as i64);
            Some(Point::money(m, shown(m)))
        })
        .collect();
    let mut spent = Micros::ZERO;
    let actual = (0..24)
        .map(|h| {
            spent = spent.saturating_add(Micros(hourly[h]));
            (h <= hour_now).then(|| Point::money(spent, shown(spent)))
        })
        .collect();
    chart::line(&Chart {
        name: "pacing",
        title: format!("Pacing of {}: spend so far against the target curve", campaign.id),
        labels: (0..24).map(|h| format!("{h:02}h")).collect(),
        series: vec![
            Series {
                name: "Target".into(),
                class: "target",
                points: target,
            },
            Series {
                name: "Spend".into(),
                class: "actual",
                points: actual,
            },
        ],
        size,
        y_label: |v| format::amount(Micros((v * 1_000_000.0).round() as i64)),
    })
}

fn row(cx: &Cx, c: &Value, days: &HashMap<String, Today>) -> Row {
    let id = c["id"].as_str().unwrap_or_default().to_string();
    let TodayFigures {
        spend,
        budget,
        impressions,
        clicks,
    } = TodayFigures::of(c);
    let world = cx.app.bidder.world.load();
    let pacing = world.campaign_by_id(&id).map_or_else(String::new, |live| {
        pacing_chart(cx, live, &days.get(&id).copied().unwrap_or_default().hours, (300, 110))
    });
    let day = days.get(&id).copied().unwrap_or_default();
    Row {
        advertiser: c["advertiser"].as_str().unwrap_or_default().to_string(),
        status: c["status"].as_str().unwrap_or("active").to_string(),
        pricing: c["pricing"].as_str().unwrap_or("cpm").to_uppercase(),
        max_bid: c["max_bid"]
            .as_str()
            .and_then(|b| Micros::parse_decimal(b).ok())
            .map_or_else(|| "—".into(), |m| cx.money(m)),
        spend: cx.money(spend),
        budget: cx.money(budget),
        spend_micros: spend.0.min(budget.0.max(0)),
        budget_micros: budget.0.max(1),
        impressions: format::count(impressions),
        clicks: format::count(clicks),
        ctr: format::percent(clicks as f64, impressions as f64),
        ecpc: format::per(spend, clicks, &cx.currency),
        win_rate: format::percent(day.wins as f64, day.bids as f64),
        pacing,
        id,
    }
}

fn totals(cx: &Cx, campaigns: &[Value]) -> Totals {
    let sum = campaigns
        .iter()
        .map(TodayFigures::of)
        .fold(TodayFigures::default(), |a, c| TodayFigures {
            spend: a.spend.saturating_add(c.spend),
            budget: a.budget.saturating_add(c.budget),
            impressions: a.impressions.saturating_add(c.impressions),
            clicks: a.clicks.saturating_add(c.clicks),
        });
    Totals {
        spend: cx.money(sum.spend),
        budget: cx.money(sum.budget),
        impressions: format::count(sum.impressions),
        clicks: format::count(sum.clicks),
        active: campaigns
            .iter()
            .filter(|c| c["status"].as_str().unwrap_or("active") == "active")
            .count(),
    }
}

/// `GET /admin/?advertiser=`.
pub fn page(cx: &Cx) -> Reply {
    let advertiser = cx.request.param("advertiser").to_string();
    let advertisers = cx.call(http::Method::GET, "/admin/api/advertisers", &[], None);
    let advertisers: Vec<(String, String)> = advertisers.body["advertisers"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| {
                    let id = a["id"].as_str().unwrap_or_default().to_string();
                    let name = a["name"].as_str().filter(|n| !n.is_empty()).unwrap_or(&id).to_string();
                    (id, name)
                })
                .collect()
        })
        .unwrap_or_default();
    let answer = cx.call(
        http::Method::GET,
        "/admin/api/campaigns",
        &[("advertiser", &advertiser), ("limit", "500")],
        None,
    );
    let error = (answer.status != 200).then(|| error_of(&answer));
    let campaigns = answer.body["campaigns"].as_array().cloned().unwrap_or_default();
    let world = cx.app.bidder.world.load();
    let zones: Vec<(String, jiff::tz::TimeZone)> = campaigns
        .iter()
        .filter_map(|c| world.campaign_by_id(c["id"].as_str()?))
        .map(|live| (live.campaign.id.clone(), live.campaign.time_zone.clone()))
        .collect();
    let days = hourly_spend_today(cx.app, &zones);
    let rows = campaigns.iter().map(|c| row(cx, c, &days)).collect();
    let page = CampaignsPage {
        shell: cx.shell("Campaigns", "campaigns"),
        totals: totals(cx, &campaigns),
        rows,
        advertisers,
        advertiser,
        error,
    };
    render(200, &page)
}
