//! `/admin/api/campaigns`: list (by id), read, create, replace, patch and archive
//! campaigns, and add, replace or pause their creatives.
//!
//! A campaign is shown as the fields of its `[[campaign]]` table, plus its
//! `version` (also the `ETag`) and `live` figures; both are ignored when a
//! body is sent back. Every change goes through
//! [`crate::reload::Reloader::change_campaign`]: validated as `check-config` validates,
//! written atomically to the campaign's file, effective on the next bid
//! request, and audit-logged.

use serde_json::{Value, json};

use super::access::Principal;
use super::audit::AuditEntry;
use super::{Answer, Call, Context};
use crate::clock::local_day;
use crate::config::documents::{self, CampaignDocument, FieldProblem};
use crate::live::{LiveCampaign, World};
use crate::money::Micros;
use crate::reload::{ChangeError, Changed};

/// Campaigns per page when `limit` is not given, and the most allowed.
const PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// Today's figures of a campaign being served.
pub fn live_view(c: &LiveCampaign, now: jiff::Timestamp) -> Value {
    let campaign = &c.campaign;
    let today = local_day(now, &campaign.time_zone);
    let spend = c.state.spend.spent(today);
    let budget = c.state.spend.budget_today(today, &campaign.day_budget());
    let (impressions, clicks) = (c.state.impressions.get(today), c.state.clicks.get(today));
    let mut view = json!({
        "today": {
            "date": today.to_string(),
            "spend": spend.to_string(),
            "spend_micros": spend.0,
            "outstanding": c.state.spend.outstanding().to_string(),
            "budget": budget.to_string(),
            "budget_micros": budget.0,
            "budget_left": budget.saturating_sub(spend).max(Micros::ZERO).to_string(),
            "impressions": impressions,
            "clicks": clicks,
            "ctr": if impressions == 0 { 0.0 } else { clicks as f64 / impressions as f64 },
        },
        "bids_since_start": c.state.bids.load(std::sync::atomic::Ordering::Relaxed),
        "pacing_state": c.state.pacer.view(),
        "pctr": c.state.campaign_pctr(campaign.pctr_prior) as f64 / 1_000_000.0,
        "value_cpm": c.value.to_string(),
    });
    if let Some(total) = campaign.total_budget {
        let spent = c.state.spend.lifetime_spent();
        view["lifetime"] = json!({
            "budget": total.to_string(),
            "spend": spent.to_string(),
            "spend_micros": spent.0,
            "budget_left": total.saturating_sub(spent).max(Micros::ZERO).to_string(),
        });
    }
    view
}

/// Requests each rule kept the campaign from bidding since start, by
/// reason label (index-level reasons included), zeros left out.
pub fn why_not_bidding(world: &World, id: &str) -> serde_json::Map<String, Value> {
    world
        .why_not_bidding(id)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(label, n)| (label.to_string(), json!(n)))
        .collect()
}

/// A campaign as the API shows it: its fields, `version`, `live`.
pub fn campaign_view(document: &CampaignDocument, cx: &Context, detail: bool) -> Value {
    let mut value = document.to_json();
    value["version"] = json!(document.version());
    let world = cx.reloader.world.load();
    value["live"] = world
        .campaign_by_id(&document.id)
        .map_or(Value::Null, |c| live_view(c, cx.now));
    if detail && let Some(live) = value["live"].as_object_mut() {
        live.insert(
            "why_not_bidding".into(),
            Value::Object(why_not_bidding(&world, &document.id)),
        );
    }
    value
}

fn etag(document: &CampaignDocument) -> String {
    format!("\"{}\"", document.version())
}

/// The version an `If-Match` header names (quotes and `W/` dropped).
fn version_in(if_match: Option<&str>) -> Option<String> {
    let text = if_match?.trim();
    if text == "*" {
        return None;
    }
    Some(text.trim_start_matches("W/").trim_matches('"').to_string())
}

/// `GET /admin/api/campaigns?advertiser=&status=&offset=&limit=`.
fn list(cx: &Context, call: &Call) -> Answer {
    let advertiser = call.param("advertiser");
    let status = call.param("status");
    let offset = call.param("offset").and_then(|o| o.parse().ok()).unwrap_or(0usize);
    let limit = call
        .param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(PAGE)
        .clamp(1, MAX_PAGE);
    let mut visible: Vec<CampaignDocument> = documents::scan(&cx.reloader.config_dir)
        .into_iter()
        .filter(|d| cx.principal.sees(d.advertiser()))
        .filter(|d| advertiser.is_none_or(|a| d.advertiser() == a))
        .filter(|d| status.is_none_or(|s| d.status() == s))
        .collect();
    visible.sort_by(|a, b| a.id.cmp(&b.id));
    let page: Vec<Value> = visible
        .iter()
        .skip(offset)
        .take(limit)
        .map(|d| campaign_view(d, cx, false))
        .collect();
    Answer::ok(json!({
        "campaigns": page,
        "total": visible.len(),
        "offset": offset,
        "limit": limit,
    }))
}

/// The campaign `id` if the caller may see it.
fn visible(cx: &Context, id: &str) -> Option<CampaignDocument> {
    documents::scan(&cx.reloader.config_dir)
        .into_iter()
        .find(|d| d.id == id && cx.principal.sees(d.advertiser()))
}

fn refused(principal: &Principal) -> Option<Answer> {
    (!principal.changes_campaigns()).then(|| Answer::error(403, "this token's role may not change campaigns"))
}

/// Checks, under the reload lock, that the caller may change `current`
/// (when there is one) into `table`.
fn may_change(
    principal: &Principal,
    current: Option<&CampaignDocument>,
    table: &toml::Table,
) -> Result<(), ChangeError> {
    if current.is_some_and(|c| !principal.sees(c.advertiser())) {
        return Err(ChangeError::NotFound("no such campaign"));
    }
    let advertiser = table.get("advertiser").and_then(toml::Value::as_str).unwrap_or("");
    if !principal.sees(advertiser) {
        return Err(ChangeError::Forbidden(format!(
            "this token may not give campaigns to advertiser {advertiser:?}"
        )));
    }
    Ok(())
}

/// A JSON body as a campaign table with the id of the path (an
/// advertiser's own advertiser filled in when left out).
fn table_from(body: Value, id: &str, principal: &Principal) -> Result<toml::Table, Vec<FieldProblem>> {
    let mut body = body;
    if let Value::Object(map) = &mut body {
        match map.get("id") {
            None => {
                map.insert("id".into(), json!(id));
            }
            Some(given) if given != &json!(id) => {
                return Err(vec![FieldProblem {
                    field: "id".into(),
                    why: format!("the body's id {given} is not the path's {id:?}; a campaign's id cannot change"),
                }]);
            }
            Some(_) => {}
        }
        if let (None, Some(own)) = (map.get("advertiser"), &principal.advertiser) {
            map.insert("advertiser".into(), json!(own));
        }
    }
    documents::from_json(body)
}

/// What a change's outcome answers, and its audit entry.
fn changed(cx: &Context, action: &str, outcome: Result<Changed, ChangeError>, status: u16) -> Answer {
    let changed = match outcome {
        Ok(changed) => changed,
        Err(e) => return Answer::from_change_error(e),
    };
    let entry = |advertiser: &str, before: Value, after: Value| AuditEntry {
        at: cx.now.to_string(),
        who: cx.principal.name.clone(),
        role: cx.principal.role.as_str().into(),
        action: action.into(),
        target: changed.after.id.clone(),
        advertiser: Some(advertiser.to_string()),
        before,
        after,
    };
    let (to, after) = (changed.after.advertiser(), changed.after.to_json());
    match &changed.before {
        // Moved to another advertiser (an admin's change): each side reads
        // its own half, the old owner the campaign as it had it, the new
        // one the campaign as it is now.
        Some(before) if before.advertiser() != to => {
            cx.audit(entry(before.advertiser(), before.to_json(), Value::Null));
            cx.audit(entry(to, Value::Null, after));
        }
        before => cx.audit(entry(
            to,
            before.as_ref().map_or(Value::Null, CampaignDocument::to_json),
            after,
        )),
    }
    let mut answer = Answer::ok(campaign_view(&changed.after, cx, true));
    answer.status = status;
    answer.etag = Some(etag(&changed.after));
    answer
}

/// `POST /admin/api/campaigns`: a new campaign, in its own file.
fn create(cx: &Context, call: &Call) -> Answer {
    if let Some(refusal) = refused(cx.principal) {
        return refusal;
    }
    let body = match call.json() {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let Some(id) = body.get("id").and_then(Value::as_str).map(str::to_string) else {
        return Answer::problems(vec![FieldProblem {
            field: "id".into(),
            why: "a new campaign needs an id".into(),
        }]);
    };
    if !crate::config::is_valid_id(&id) {
        return Answer::problems(vec![FieldProblem {
            field: "id".into(),
            why: "must be 1–64 letters, digits, '-', '_' or '.'".into(),
        }]);
    }
    let table = match table_from(body, &id, cx.principal) {
        Ok(table) => table,
        Err(problems) => return Answer::problems(problems),
    };
    let outcome = cx.reloader.change_campaign(&id, None, |current| {
        if current.is_some() {
            return Err(ChangeError::Exists);
        }
        may_change(cx.principal, None, &table)?;
        Ok(table)
    });
    changed(cx, "campaign.create", outcome, 201)
}

/// `PUT` (whole) or `PATCH` (JSON merge patch) of one campaign.
fn replace(cx: &Context, call: &Call, id: &str, merge: bool) -> Answer {
    if let Some(refusal) = refused(cx.principal) {
        return refusal;
    }
    let body = match call.json() {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let if_match = version_in(call.if_match.as_deref());
    let outcome = cx.reloader.change_campaign(id, if_match.as_deref(), |current| {
        let current = current
            .filter(|c| cx.principal.sees(c.advertiser()))
            .ok_or(ChangeError::NotFound("no such campaign"))?;
        let new = if merge {
            let mut document = current.to_json();
            documents::merge_patch(&mut document, &body);
            document
        } else {
            body
        };
        let table = table_from(new, id, cx.principal).map_err(ChangeError::Invalid)?;
        may_change(cx.principal, Some(current), &table)?;
        Ok(table)
    });
    changed(
        cx,
        if merge { "campaign.patch" } else { "campaign.replace" },
        outcome,
        200,
    )
}

/// `DELETE`: archived (never bids again, stays in reports and its file).
fn archive(cx: &Context, call: &Call, id: &str) -> Answer {
    if let Some(refusal) = refused(cx.principal) {
        return refusal;
    }
    let if_match = version_in(call.if_match.as_deref());
    let outcome = cx.reloader.change_campaign(id, if_match.as_deref(), |current| {
        let current = current
            .filter(|c| cx.principal.sees(c.advertiser()))
            .ok_or(ChangeError::NotFound("no such campaign"))?;
        let mut table = current.table.clone();
        table.insert("status".into(), toml::Value::String("archived".into()));
        Ok(table)
    });
    changed(cx, "campaign.archive", outcome, 200)
}

/// `/admin/api/campaigns/{id}/creatives/{crid}`: `GET` one; `PUT` adds or
/// replaces it; `PATCH` merges into it (`{"status": "paused"}` pauses it);
/// `DELETE` pauses it (earlier bids keep tracking to it).
fn creative(cx: &Context, call: &Call, id: &str, crid: &str) -> Answer {
    let method = call.method.clone();
    if method == http::Method::GET {
        let Some(document) = visible(cx, id) else {
            return Answer::error(404, "no such campaign");
        };
        return creatives_of(&document.to_json())
            .into_iter()
            .find(|c| c.get("id") == Some(&json!(crid)))
            .map_or_else(|| Answer::error(404, "no such creative"), Answer::ok);
    }
    if let Some(refusal) = refused(cx.principal) {
        return refusal;
    }
    let patch = match method {
        http::Method::DELETE => json!({"status": "paused"}),
        http::Method::PUT | http::Method::PATCH => match call.json() {
            Ok(body) if body.is_object() => body,
            Ok(_) => return Answer::error(400, "a creative is a JSON object"),
            Err(answer) => return answer,
        },
        _ => return Answer::error(405, "method not allowed"),
    };
    let if_match = version_in(call.if_match.as_deref());
    let outcome = cx.reloader.change_campaign(id, if_match.as_deref(), |current| {
        let current = current
            .filter(|c| cx.principal.sees(c.advertiser()))
            .ok_or(ChangeError::NotFound("no such campaign"))?;
        let mut document = current.to_json();
        let mut creatives = creatives_of(&document);
        let position = creatives.iter().position(|c| c.get("id") == Some(&json!(crid)));
        let mut creative = match (position, &method) {
            (Some(i), &http::Method::PATCH | &http::Method::DELETE) => creatives[i].clone(),
            (None, &http::Method::PATCH | &http::Method::DELETE) => {
                return Err(ChangeError::NotFound("no such creative"));
            }
            _ => json!({}),
        };
        documents::merge_patch(&mut creative, &patch);
        creative["id"] = json!(crid);
        match position {
            Some(i) => creatives[i] = creative,
            None => creatives.push(creative),
        }
        document["creative"] = Value::Array(creatives);
        let table = table_from(document, id, cx.principal).map_err(ChangeError::Invalid)?;
        may_change(cx.principal, Some(current), &table)?;
        Ok(table)
    });
    let action = if method == http::Method::PUT {
        "creative.put"
    } else {
        "creative.patch"
    };
    changed(cx, action, outcome, 200)
}

fn creatives_of(document: &Value) -> Vec<Value> {
    document
        .get("creative")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Answers `/admin/api/campaigns…`; `rest` is the path after it.
pub fn handle(cx: &Context, call: &Call, rest: &str) -> Answer {
    if !cx.principal.reads_campaigns() {
        return Answer::error(403, "this token's role may not use campaigns");
    }
    let rest = rest.trim_start_matches('/');
    let mut parts = rest.splitn(3, '/');
    let (id, sub, crid) = (parts.next().unwrap_or(""), parts.next(), parts.next());
    match (id, sub, crid) {
        ("", None, None) => match call.method {
            http::Method::GET => list(cx, call),
            http::Method::POST => create(cx, call),
            _ => Answer::error(405, "method not allowed"),
        },
        (id, None, None) => match call.method {
            http::Method::GET => match visible(cx, id) {
                Some(document) => {
                    let mut answer = Answer::ok(campaign_view(&document, cx, true));
                    answer.etag = Some(etag(&document));
                    answer
                }
                None => Answer::error(404, "no such campaign"),
            },
            http::Method::PUT => replace(cx, call, id, false),
            http::Method::PATCH => replace(cx, call, id, true),
            http::Method::DELETE => archive(cx, call, id),
            _ => Answer::error(405, "method not allowed"),
        },
        (id, Some("creatives"), Some(crid)) if !crid.is_empty() && !crid.contains('/') => creative(cx, call, id, crid),
        _ => Answer::error(404, "not found"),
    }
}
