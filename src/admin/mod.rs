//! The admin API under `/admin/api/`, for advertisers and their agencies.
//!
//! Every request needs `Authorization: Bearer <token>` (the token from
//! `BULLSEYE_ADMIN_TOKEN` or the config), compared in constant time; the
//! token is never logged. Without a configured token the API refuses all.
//!
//! - `GET /admin/api/campaigns` — every campaign with today's live figures.
//! - `GET /admin/api/campaigns/{id}` — one, with the "why not bidding"
//!   breakdown.
//! - `PATCH /admin/api/campaigns/{id}` — `{"max_bid": "2.50",
//!   "daily_budget": "100", "status": "paused"}` (any subset): validated,
//!   persisted to `overrides.json`, effective on the next bid request.

use std::sync::atomic::Ordering;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::audience::overlay::OverlayError;
use crate::audience::{AudienceStore, user_key};
use crate::campaigns::targeting::FilterReason;
use crate::campaigns::{Pricing, Status};
use crate::clock::local_day;
use crate::config::overrides::CampaignOverride;
use crate::live::LiveCampaign;
use crate::live::World;
use crate::money::Micros;
use crate::reload::{ReloadError, Reloader};
use crate::settings::MaxBidCaps;

/// An admin answer: status code and JSON body.
pub type Answer = (u16, Value);

fn error(status: u16, message: &str) -> Answer {
    (status, json!({ "error": message }))
}

/// Constant-time equality of two byte strings (length leaks, content not).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Checks `Authorization: Bearer <token>`.
pub fn authorised(header: Option<&str>, token: Option<&str>) -> bool {
    let (Some(header), Some(token)) = (header, token) else {
        return false;
    };
    // Only `Bearer <token>` with a non-empty token: anything else (Basic,
    // an empty bearer) is refused before any comparison.
    let Some(presented) = header.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()) else {
        return false;
    };
    // Hash both so that the comparison time does not depend on the length
    // of the real token either.
    use sha2::Digest;
    same(
        &sha2::Sha256::digest(presented.as_bytes()),
        &sha2::Sha256::digest(token.as_bytes()),
    )
}

/// A campaign as the API shows it.
pub fn view(c: &LiveCampaign, now: jiff::Timestamp, detail: bool) -> Value {
    let campaign = &c.campaign;
    let today = local_day(now, &campaign.time_zone);
    let spend = c.state.spend.spent(today);
    let (impressions, clicks) = (c.state.impressions.get(today), c.state.clicks.get(today));
    let mut value = json!({
        "id": campaign.id,
        "advertiser": campaign.advertiser,
        "status": campaign.status,
        "pricing": campaign.pricing,
        "max_bid": campaign.max_bid.to_string(),
        "daily_budget": campaign.daily_budget.to_string(),
        "pacing": campaign.pacing,
        "time_zone": campaign.time_zone_name,
        "today": {
            "spend": spend.to_string(),
            "spend_micros": spend.0,
            "outstanding": c.state.spend.outstanding().to_string(),
            "budget_left": campaign.daily_budget.saturating_sub(spend).max(Micros::ZERO).to_string(),
            "impressions": impressions,
            "clicks": clicks,
            "ctr": if impressions == 0 { 0.0 } else { clicks as f64 / impressions as f64 },
        },
        "bids_since_start": c.state.bids.load(Ordering::Relaxed),
        "pacing_state": c.state.pacer.view(),
        "pctr": c.state.campaign_pctr(campaign.pctr_prior) as f64 / 1_000_000.0,
        "value_cpm": c.value.to_string(),
    });
    if detail {
        let filtered: serde_json::Map<String, Value> = FilterReason::ALL
            .iter()
            .map(|r| {
                (
                    r.as_str().to_string(),
                    json!(c.state.filtered[*r as usize].load(Ordering::Relaxed)),
                )
            })
            .filter(|(_, n)| n != &json!(0))
            .collect();
        value["why_not_bidding"] = Value::Object(filtered);
    }
    value
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    max_bid: Option<Value>,
    daily_budget: Option<Value>,
    status: Option<Status>,
}

/// Reads a money value given as a decimal string or a JSON number.
fn money(value: &Value, field: &str) -> Result<Micros, String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(format!("{field} must be a decimal string such as \"2.50\"")),
    };
    Micros::parse_amount(&text).map_err(|e| format!("{field}: {e}"))
}

fn parse_change(body: &[u8], c: &LiveCampaign, caps: MaxBidCaps) -> Result<CampaignOverride, String> {
    let change: Change = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let max_bid = change.max_bid.as_ref().map(|v| money(v, "max_bid")).transpose()?;
    let daily_budget = change
        .daily_budget
        .as_ref()
        .map(|v| money(v, "daily_budget"))
        .transpose()?;
    if max_bid.is_some_and(|m| m.0 == 0) {
        return Err("max_bid must be greater than 0".into());
    }
    let pricing = c.campaign.pricing;
    let cap = match pricing {
        Pricing::Cpm => caps.cpm,
        Pricing::Cpc => caps.cpc,
    };
    if let Some(max_bid) = max_bid
        && max_bid > cap
    {
        return Err(format!(
            "max_bid {max_bid} is above the cap of {cap} (bidding.max_{}_cap)",
            pricing.as_str()
        ));
    }
    if max_bid.is_none() && daily_budget.is_none() && change.status.is_none() {
        return Err("nothing to change: give max_bid, daily_budget or status".into());
    }
    Ok(CampaignOverride {
        max_bid,
        daily_budget,
        status: change.status,
    })
}

/// Default and longest time to live of an overlay change.
const OVERLAY_TTL_DEFAULT: i64 = 7 * 86_400;
const OVERLAY_TTL_MAX: i64 = 30 * 86_400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentChange {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
    ttl_seconds: Option<i64>,
}

/// A user's segments: from the snapshot, and the overlay's changes.
fn user_view(user_id: &str, audience: &AudienceStore, now: i64) -> Value {
    let key = user_key(user_id);
    let snapshot = audience.current();
    let from_snapshot: Vec<&str> = snapshot
        .lookup(key)
        .map(|segments| segments.indexes().map(|i| snapshot.segment_path(i)).collect())
        .unwrap_or_default();
    let changes = audience.overlay.get(key, now).unwrap_or_default();
    json!({
        "user_id": user_id,
        "snapshot": from_snapshot,
        "overlay": {
            "added": changes.added.iter().map(|a| json!({"segment": a.0, "expires": a.2})).collect::<Vec<_>>(),
            "removed": changes.removed.iter().map(|r| json!({"segment": r.0, "expires": r.2})).collect::<Vec<_>>(),
        },
    })
}

/// `/admin/api/audience/users/{user_id}`: `GET` shows the user's segments,
/// `POST {"add": [...], "remove": [...], "ttl_seconds": N}` changes them now.
fn audience_api(method: &http::Method, user_id: &str, body: &[u8], audience: &AudienceStore, now: i64) -> Answer {
    if user_id.is_empty() || user_id.contains('/') {
        return error(404, "not found");
    }
    match *method {
        http::Method::GET => (200, user_view(user_id, audience, now)),
        http::Method::POST | http::Method::PATCH => {
            let change: SegmentChange = match serde_json::from_slice(body) {
                Ok(change) => change,
                Err(e) => return error(400, &format!("invalid JSON: {e}")),
            };
            if change.add.is_empty() && change.remove.is_empty() {
                return error(400, "nothing to change: give add or remove");
            }
            let ttl = change.ttl_seconds.unwrap_or(OVERLAY_TTL_DEFAULT);
            if !(1..=OVERLAY_TTL_MAX).contains(&ttl) {
                return error(400, &format!("ttl_seconds must be between 1 and {OVERLAY_TTL_MAX}"));
            }
            match audience
                .overlay
                .apply(user_key(user_id), &change.add, &change.remove, now, now + ttl)
            {
                Ok(()) => (200, user_view(user_id, audience, now)),
                Err(e @ OverlayError::Full(_)) => error(503, &e.to_string()),
                Err(e) => error(400, &e.to_string()),
            }
        }
        _ => error(405, "method not allowed"),
    }
}

/// Answers an authorised admin API request.
pub fn handle(
    method: &http::Method,
    path: &str,
    body: &[u8],
    world: &World,
    reloader: &Reloader,
    now: jiff::Timestamp,
) -> Answer {
    if let Some(user_id) = path.strip_prefix("/admin/api/audience/users/") {
        return audience_api(method, user_id, body, &reloader.audience, now.as_second());
    }
    let Some(rest) = path.strip_prefix("/admin/api/campaigns") else {
        return error(404, "not found");
    };
    if rest.is_empty() || rest == "/" {
        if method != http::Method::GET {
            return error(405, "method not allowed");
        }
        let list: Vec<Value> = world.campaigns.iter().map(|c| view(c, now, false)).collect();
        return (200, Value::Array(list));
    }
    let id = rest.trim_start_matches('/');
    let Some(c) = world.campaign_by_id(id) else {
        return error(404, "no such campaign");
    };
    match *method {
        http::Method::GET => (200, view(c, now, true)),
        http::Method::PATCH | http::Method::POST => {
            let change = match parse_change(body, c, world.settings.max_bid_caps) {
                Ok(change) => change,
                Err(why) => return error(400, &why),
            };
            tracing::info!(campaign = id, ?change, "campaign changed through the admin API");
            match reloader.apply_override(id, change) {
                Ok(()) => {
                    let world = reloader.world.load();
                    match world.campaign_by_id(id) {
                        Some(updated) => (200, view(updated, now, true)),
                        None => error(404, "no such campaign"),
                    }
                }
                Err(ReloadError::Overrides(e)) => {
                    tracing::error!(error = %e, "overrides not written");
                    error(503, "change not saved; try again")
                }
                Err(ReloadError::Config(e)) => error(409, &format!("the configuration on disk is invalid: {e}")),
            }
        }
        _ => error(405, "method not allowed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_checked() {
        assert!(authorised(Some("Bearer s3cret"), Some("s3cret")));
        assert!(!authorised(Some("Bearer s3cre"), Some("s3cret")));
        assert!(!authorised(Some("s3cret"), Some("s3cret")));
        assert!(!authorised(None, Some("s3cret")));
        assert!(!authorised(Some("Bearer "), None));
    }

    /// Issue 17, item 9: with an empty configured token, any header (even
    /// `Basic …` or an empty bearer) was let in.
    #[test]
    fn only_a_non_empty_bearer_token_is_ever_compared() {
        for header in ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer    ", "", "bearer x"] {
            assert!(!authorised(Some(header), Some("")), "{header:?}");
        }
    }
}
