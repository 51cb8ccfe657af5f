//! One campaign's page (`/admin/campaigns/{id}`): the edit form, today's
//! figures, spend by hour today and by day over 30 days, the pacing curve,
//! the why-not-bidding funnel and the campaign's audit history.
//!
//! A submitted form becomes the campaign as it should be (the current
//! document with the form's fields), then the JSON merge patch from the
//! current to that ([`merge_diff`]), sent as `PATCH
//! /admin/api/campaigns/{id}` with `If-Match` of the version the form was
//! rendered from: validation, roles, the audit entry and the stale check
//! are the API's. Problems come back `{"problems": [{"field", "why"}]}`
//! and are shown next to their fields.

use askama::Template;
use serde_json::{Map, Value, json};

use super::audit::{AuditRow, audit_rows};
use super::chart::{self, Chart, Point, Series};
use super::data::{SpendSeries, spend_series};
use super::format;
use super::page::{Cx, FilledForm, Form, Problem, Shell, TodayFigures, error_of, problems_of, render};
use super::reply::Reply;
use crate::money::Micros;

/// The form's fields that are plain strings in the campaign table, and
/// whether the table needs them (an empty optional one is removed).
const TEXT_FIELDS: [(&str, bool); 17] = [
    ("max_bid", false),
    ("daily_budget", true),
    ("status", true),
    ("pricing", false),
    ("pacing", false),
    ("time_zone", false),
    ("total_budget", false),
    ("pctr_prior", false),
    ("target_cpa", false),
    ("cps_share", false),
    ("max_cpm", false),
    ("pcvr_prior", false),
    ("order_value_prior", false),
    ("click_window", false),
    ("view_window", false),
    ("start", false),
    ("end", false),
];

/// Values a campaign has when its table leaves the key out: a form showing
/// them for an absent key changes nothing.
const DEFAULTS: [(&str, &str); 3] = [("status", "active"), ("pricing", "cpm"), ("pacing", "even")];

/// Every field of the form, for placing problems.
const FIELDS: [&str; 20] = [
    "max_bid",
    "daily_budget",
    "status",
    "pricing",
    "pacing",
    "time_zone",
    "total_budget",
    "pctr_prior",
    "target_cpa",
    "cps_share",
    "max_cpm",
    "pcvr_prior",
    "order_value_prior",
    "click_window",
    "view_window",
    "start",
    "end",
    "adomain",
    "targeting",
    "creative",
];

struct Figure {
    label: &'static str,
    value: String,
    sub: String,
}

struct Reason {
    label: String,
    count: String,
    n: u64,
    max: u64,
}

#[derive(Template)]
#[template(path = "console/campaign.html")]
struct CampaignPage {
    shell: Shell,
    id: String,
    advertiser: String,
    version: String,
    edit: FilledForm,
    notice: Option<String>,
    error: Option<String>,
    editable: bool,
    figures: Vec<Figure>,
    hourly: String,
    daily: String,
    pacing: String,
    funnel: Vec<Reason>,
    bids: String,
    forecast: Option<ForecastCard>,
    audit: Vec<AuditRow>,
}

/// The forecast at the campaign's current bid and budget
/// ([`super::data::forecast`]).
struct ForecastCard {
    /// What it was made from: sampled requests and days.
    basis: String,
    /// Per day on average: label and value.
    figures: Vec<(&'static str, String)>,
    /// The landscape: factor, bid, bids, wins, spend.
    landscape: Vec<[String; 5]>,
}

/// The forecast's card from its JSON; `None` without a forecast.
fn forecast_card(forecast: Option<Value>, currency: &str) -> Option<ForecastCard> {
    let f = forecast?;
    let days = f["days"].as_array().map_or(1, Vec::len).max(1) as f64;
    let total = &f["total"];
    let per_day = |field: &str| total[field].as_f64().unwrap_or(0.0) / days;
    let money = |v: &Value| {
        let micros = Micros::parse_decimal(v.as_str().unwrap_or("0")).unwrap_or(Micros::ZERO);
        format::money(micros, currency)
    };
    let spend = Micros::parse_decimal(total["spend"].as_str().unwrap_or("0")).unwrap_or(Micros::ZERO);
    let figures = vec![
        ("Impressions matched", format!("{:.0}", per_day("impressions"))),
        ("Bids", format!("{:.0}", per_day("bids"))),
        ("Wins", format!("{:.1}", per_day("wins"))),
        ("Spend", format::money(spend.mul_div_floor(1, days as i64), currency)),
        ("Clicks", format!("{:.2}", per_day("clicks"))),
        ("Conversions", format!("{:.2}", per_day("conversions"))),
    ];
    let landscape = f["landscape"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            [
                format!("{}×", p["factor"].as_f64().unwrap_or(1.0)),
                p["max_bid"].as_str().unwrap_or_default().to_string(),
                p["bids"].to_string(),
                format!("{:.1}", p["wins"].as_f64().unwrap_or(0.0)),
                money(&p["spend"]),
            ]
        })
        .collect();
    Some(ForecastCard {
        basis: format!("{} sampled requests over {days} day(s)", f["sample"]["requests"]),
        figures,
        landscape,
    })
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The form prefilled from a campaign document.
fn form_of(document: &Value) -> Form {
    let mut fields: Vec<(String, String)> = TEXT_FIELDS
        .iter()
        .map(|(f, _)| (f.to_string(), text_of(&document[*f])))
        .collect();
    if fields[2].1.is_empty() {
        fields[2].1 = "active".into();
    }
    let list = document["adomain"]
        .as_array()
        .map(|a| a.iter().map(text_of).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    fields.push(("adomain".into(), list));
    for key in ["targeting", "creative"] {
        let text = match &document[key] {
            Value::Null => String::new(),
            v => serde_json::to_string_pretty(v).unwrap_or_default(),
        };
        fields.push((key.into(), text));
    }
    Form::of(fields)
}

/// The campaign as the form says it should be, or the fields whose JSON
/// does not parse.
fn desired(current: &Value, form: &Form) -> Result<Value, Vec<Problem>> {
    let mut document = current.clone();
    let Some(map) = document.as_object_mut() else {
        return Ok(document);
    };
    for key in crate::config::documents::READ_ONLY_KEYS {
        map.remove(key);
    }
    // A field the form does not carry is left as it is; one it carries
    // empty is removed (or, if required, refused by validation).
    for (field, required) in TEXT_FIELDS.into_iter().filter(|(f, _)| form.has(f)) {
        let value = form.get(field);
        let implied = DEFAULTS.contains(&(field, value)) && !map.contains_key(field);
        match value {
            _ if implied => None,
            "" if !required => map.remove(field),
            value => map.insert(field.into(), json!(value)),
        };
    }
    if form.has("adomain") {
        let domains: Vec<&str> = form
            .get("adomain")
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .collect();
        map.insert("adomain".into(), json!(domains));
    }
    let mut problems = Vec::new();
    for field in ["targeting", "creative"].into_iter().filter(|f| form.has(f)) {
        match form.get(field) {
            "" => {
                map.remove(field);
            }
            text => match serde_json::from_str::<Value>(text) {
                Ok(value) => {
                    map.insert(field.into(), value);
                }
                Err(e) => problems.push(Problem {
                    field: field.into(),
                    key: field.into(),
                    why: format!("not valid JSON: {e}"),
                }),
            },
        }
    }
    if problems.is_empty() {
        Ok(document)
    } else {
        Err(problems)
    }
}

/// The JSON merge patch (RFC 7396) that turns `from` into `to`: changed
/// keys with their new values, removed keys as `null`, objects diffed
/// recursively, anything else (arrays included) replaced whole.
pub fn merge_diff(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut patch = Map::new();
            for (key, old) in a {
                match b.get(key) {
                    None => {
                        patch.insert(key.clone(), Value::Null);
                    }
                    Some(new) if new != old => {
                        let diff = match (old, new) {
                            (Value::Object(_), Value::Object(_)) => merge_diff(old, new),
                            _ => new.clone(),
                        };
                        patch.insert(key.clone(), diff);
                    }
                    Some(_) => {}
                }
            }
            for (key, new) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                patch.insert(key.clone(), new.clone());
            }
            Value::Object(patch)
        }
        (_, to) => to.clone(),
    }
}

/// Reads the campaign through the API (404 for what the principal may
/// not see).
fn read(cx: &Cx, id: &str) -> Result<Value, Reply> {
    let answer = cx.call(http::Method::GET, &format!("/admin/api/campaigns/{id}"), &[], None);
    match answer.status {
        200 => Ok(answer.body),
        404 => Err(cx.message(
            404,
            "No such campaign",
            "There is no campaign with this id that you may see.",
        )),
        status => Err(cx.message(status, "Campaign unavailable", &error_of(&answer))),
    }
}

/// `GET /admin/campaigns/{id}`.
pub fn page(cx: &Cx, id: &str) -> Reply {
    let document = match read(cx, id) {
        Ok(document) => document,
        Err(reply) => return reply,
    };
    let notice = match (cx.request.param("saved"), cx.request.param("created")) {
        (_, "1") => Some("Campaign created. It bids from the next request on.".to_string()),
        ("1", _) => Some("Saved. The change applies from the next bid request.".to_string()),
        ("0", _) => Some("Nothing changed.".to_string()),
        _ => None,
    };
    let edit = FilledForm {
        form: form_of(&document),
        problems: Vec::new(),
    };
    show(cx, id, &document, edit, notice, None, 200)
}

/// `POST /admin/campaigns/{id}`: the edit form.
pub fn submit(cx: &Cx, id: &str, form: &Form) -> Reply {
    let document = match read(cx, id) {
        Ok(document) => document,
        Err(reply) => return reply,
    };
    let current = {
        let mut d = document.clone();
        if let Some(map) = d.as_object_mut() {
            for key in crate::config::documents::READ_ONLY_KEYS {
                map.remove(key);
            }
        }
        d
    };
    let retry = |problems: Vec<Problem>, error: Option<String>, status: u16| {
        let edit = FilledForm {
            form: form.clone(),
            problems,
        };
        show(cx, id, &document, edit, None, error, status)
    };
    let wanted = match desired(&current, form) {
        Ok(wanted) => wanted,
        Err(problems) => return retry(problems, Some("Some fields need fixing.".into()), 400),
    };
    let patch = merge_diff(&current, &wanted);
    if patch.as_object().is_some_and(Map::is_empty) {
        return Reply::redirect(&format!("/admin/campaigns/{id}?saved=0"));
    }
    let path = format!("/admin/api/campaigns/{id}");
    let answer = cx.call_if_match(http::Method::PATCH, &path, &patch, form.get("version"));
    match answer.status {
        200 => Reply::redirect(&format!("/admin/campaigns/{id}?saved=1")),
        400 => retry(
            problems_of(&answer, &FIELDS),
            Some("The change was refused; nothing was saved.".into()),
            400,
        ),
        412 => retry(
            Vec::new(),
            Some("Someone changed this campaign since you opened it; nothing was saved. Reload to see the current version.".into()),
            412,
        ),
        status => retry(Vec::new(), Some(error_of(&answer)), status),
    }
}

fn time_zone(document: &Value) -> jiff::tz::TimeZone {
    document["time_zone"]
        .as_str()
        .and_then(|name| jiff::tz::TimeZone::get(name).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

fn money_point(cx: &Cx, m: Micros) -> Point {
    Point::money(m, cx.money(m))
}

fn y_money(v: f64) -> String {
    format::amount(Micros((v * 1_000_000.0).round() as i64))
}

fn spend_charts(cx: &Cx, series: &SpendSeries) -> (String, String) {
    let hourly = chart::bar(&Chart {
        name: "spend-hourly",
        title: "Spend by hour today (campaign time zone)".into(),
        labels: (0..24).map(|h| format!("{h:02}h")).collect(),
        series: vec![Series {
            name: "Spend".into(),
            class: "spend",
            points: series.hourly.iter().map(|m| m.map(|m| money_point(cx, m))).collect(),
        }],
        size: (560, 200),
        y_label: y_money,
    });
    let daily = chart::bar(&Chart {
        name: "spend-daily",
        title: "Spend by day, last 30 days (UTC days)".into(),
        labels: series.daily.iter().map(|d| d.date[5..].to_string()).collect(),
        series: vec![Series {
            name: "Spend".into(),
            class: "spend",
            points: series.daily.iter().map(|d| Some(money_point(cx, d.spend))).collect(),
        }],
        size: (560, 200),
        y_label: y_money,
    });
    (hourly, daily)
}

fn figures(cx: &Cx, document: &Value, series: &SpendSeries) -> Vec<Figure> {
    let TodayFigures {
        spend,
        budget,
        impressions,
        clicks,
    } = TodayFigures::of(document);
    let (bids, wins) = series
        .daily
        .iter()
        .fold((0u64, 0u64), |(b, w), d| (b + d.bids, w + d.wins));
    let throttle = document["live"]["pacing_state"]["throttle"].as_f64();
    vec![
        Figure {
            label: "Spend today",
            value: cx.money(spend),
            sub: format!("of {} daily budget", cx.money(budget)),
        },
        Figure {
            label: "Impressions today",
            value: format::count(impressions),
            sub: format!("{} clicks", format::count(clicks)),
        },
        Figure {
            label: "CTR / eCPC today",
            value: format::percent(clicks as f64, impressions as f64),
            sub: format!("eCPC {}", format::per(spend, clicks, &cx.currency)),
        },
        Figure {
            label: "Win rate, 30 days",
            value: format::percent(wins as f64, bids as f64),
            sub: format!("{} wins of {} bids", format::count(wins), format::count(bids)),
        },
        Figure {
            label: "Pacing throttle",
            value: throttle.map_or_else(|| "—".into(), |t| format!("{:.1}%", t * 100.0)),
            sub: "share of opportunities bid on".into(),
        },
    ]
}

fn funnel(document: &Value) -> (String, Vec<Reason>) {
    let live = &document["live"];
    let bids = live["bids_since_start"].as_u64().unwrap_or(0);
    let mut reasons: Vec<(String, u64)> = live["why_not_bidding"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let max = reasons.iter().map(|r| r.1).chain([bids]).max().unwrap_or(0).max(1);
    let rows = reasons
        .into_iter()
        .map(|(label, n)| Reason {
            label: label.replace('_', " "),
            count: format::count(n),
            n,
            max,
        })
        .collect();
    (format::count(bids), rows)
}

fn show(
    cx: &Cx,
    id: &str,
    document: &Value,
    edit: FilledForm,
    notice: Option<String>,
    error: Option<String>,
    status: u16,
) -> Reply {
    let tz = time_zone(document);
    let series = spend_series(cx.app, id, &tz);
    let (hourly, daily) = spend_charts(cx, &series);
    let world = cx.app.bidder.world.load();
    let pacing = world.campaign_by_id(id).map_or_else(String::new, |live| {
        let mut hours = [0i64; 24];
        for (h, m) in series.hourly.iter().enumerate() {
            hours[h] = m.map_or(0, |m| m.0);
        }
        super::campaigns::pacing_chart(cx, live, &hours, (560, 200))
    });
    let (bids, funnel) = funnel(document);
    let audit = cx.call(
        http::Method::GET,
        "/admin/api/audit",
        &[("target", id), ("limit", "50")],
        None,
    );
    let page = CampaignPage {
        shell: cx.shell(id, "campaigns"),
        id: id.to_string(),
        advertiser: document["advertiser"].as_str().unwrap_or_default().to_string(),
        version: document["version"].as_str().unwrap_or_default().to_string(),
        edit,
        notice,
        error,
        editable: cx.principal.changes_campaigns(),
        figures: figures(cx, document, &series),
        hourly,
        daily,
        pacing,
        funnel,
        bids,
        forecast: forecast_card(super::data::forecast(cx.app, &cx.principal, id), &cx.currency),
        audit: audit_rows(&answer_entries(&audit.body)),
    };
    render(status, &page)
}

fn answer_entries(body: &Value) -> Vec<Value> {
    body["entries"].as_array().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_merge_diff_turns_one_document_into_the_other() {
        let from = json!({"max_bid": "1", "end": "2026-12-31", "targeting": {"age": {"min": 18}, "os": ["ios"]}, "creative": [{"id": "a"}]});
        let to = json!({"max_bid": "2", "targeting": {"age": {"min": 18}, "device": [2]}, "creative": [{"id": "a"}], "pacing": "asap"});
        let patch = merge_diff(&from, &to);
        assert_eq!(
            patch,
            json!({"max_bid": "2", "end": null, "targeting": {"os": null, "device": [2]}, "pacing": "asap"})
        );
        let mut applied = from.clone();
        crate::config::documents::merge_patch(&mut applied, &patch);
        assert_eq!(applied, to);
        assert_eq!(merge_diff(&to, &to), json!({}));
    }

    #[test]
    fn the_form_round_trips_a_document() {
        let document = json!({"id": "c", "max_bid": "1.5", "daily_budget": "100", "adomain": ["a.example", "b.example"],
            "creative": [{"id": "x", "w": 300}], "version": "abc", "live": null});
        let form = form_of(&document);
        assert_eq!(form.get("status"), "active");
        assert_eq!(form.get("adomain"), "a.example, b.example");
        let mut current = document.clone();
        current.as_object_mut().unwrap().remove("version");
        current.as_object_mut().unwrap().remove("live");
        let wanted = desired(&current, &form).unwrap();
        let patch = merge_diff(&current, &wanted);
        assert_eq!(patch, json!({}), "an untouched form changes nothing");
        let bad = Form::parse(b"max_bid=1&creative=%5B");
        let problems = desired(&current, &bad).unwrap_err();
        assert_eq!(problems[0].field, "creative");
    }
}
