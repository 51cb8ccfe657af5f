//! The admin API under `/admin/api/`, on the admin listener: campaigns and
//! creatives, advertisers, the audit log, reports, explain and the
//! audience, for advertisers, their agencies, data teams and operators.
//!
//! Every call is made by a [`Principal`] (a bearer token, or a console
//! session) whose role [`access`] checks; the transport (HTTP, the
//! console's forms) lives in `server` and `console`. Answers are JSON with
//! a status; a change answers the thing changed, with its version as
//! `ETag`.
//!
//! - `GET /admin/api/campaigns?advertiser=&status=&offset=&limit=`,
//!   `POST /admin/api/campaigns`,
//!   `GET|PUT|PATCH|DELETE /admin/api/campaigns/{id}`,
//!   `GET|PUT|PATCH|DELETE /admin/api/campaigns/{id}/creatives/{crid}`
//!   ([`campaigns`]);
//! - `GET /admin/api/advertisers[/{id}]` (with their contact rules and
//!   today's figures across their campaigns),
//!   `GET|PUT|DELETE /admin/api/advertisers/{id}/suppressions/{user_id}`
//!   ([`suppressions`]);
//! - `GET /admin/api/audit?target=&limit=`;
//! - `POST /admin/api/explain[?exchange=]` (a dry run of the bid path);
//! - `GET /admin/api/forecast?campaign=ID[&max_bid=X&daily_budget=Y]` (the
//!   request sample replayed against a campaign, [`crate::forecast`]);
//! - `GET /admin/api/reports?…` (the CLI's flags; [`reports`]);
//! - `GET|POST|DELETE /admin/api/audience/users/{id}` ([`audience`]; `DELETE`
//!   erases the user, [`suppressions::erase`]).
//! - `POST /admin/api/audience/events` (JSON Lines; [`audience_events`]).

pub mod access;
pub mod audience;
pub mod audience_events;
pub mod audit;
pub mod campaigns;
pub mod reports;
pub mod suppressions;

use serde_json::{Value, json};

pub use access::Principal;
use audit::{AuditEntry, AuditLog};

use crate::bidder::Bidder;
use crate::bidder::explain::ExplainError;
use crate::config::documents::{self, FieldProblem};
use crate::reload::{ChangeError, Reloader};

/// An admin answer: status, JSON body, and the version of what it shows.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
    /// `ETag`: the version of the campaign shown.
    pub etag: Option<String>,
}

impl Answer {
    /// 200 with a body.
    pub fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            body,
            etag: None,
        }
    }

    /// An error: `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Answer {
        Answer {
            status,
            body: json!({ "error": message }),
            etag: None,
        }
    }

    /// 400 with every problem: `{"error", "problems": [{"field", "why"}]}`.
    pub fn problems(problems: Vec<FieldProblem>) -> Answer {
        Answer {
            status: 400,
            body: json!({ "error": "invalid campaign", "problems": problems }),
            etag: None,
        }
    }

    /// The problems a 400 answer lists (none for any other answer).
    pub fn problem_list(&self) -> Vec<FieldProblem> {
        self.body
            .get("problems")
            .and_then(|problems| serde_json::from_value(problems.clone()).ok())
            .unwrap_or_default()
    }

    /// The answer to a change that was not made.
    pub fn from_change_error(error: ChangeError) -> Answer {
        match error {
            ChangeError::Stale { .. } => Answer::error(412, &error.to_string()),
            ChangeError::Invalid(problems) => Answer::problems(problems),
            ChangeError::NotFound(what) => Answer::error(404, what),
            ChangeError::Forbidden(why) => Answer::error(403, &why),
            ChangeError::Exists => Answer::error(409, &error.to_string()),
            ChangeError::Write(e) => {
                tracing::error!(error = %e, "campaign change not written");
                Answer::error(503, "change not saved; try again")
            }
        }
    }
}

/// One admin API call, transport aside.
#[derive(Debug)]
pub struct Call {
    /// The HTTP method.
    pub method: http::Method,
    /// The path, from `/admin/api/`.
    pub path: String,
    /// The query string's pairs, decoded.
    pub query: Vec<(String, String)>,
    /// The body.
    pub body: bytes::Bytes,
    /// `If-Match`, if sent.
    pub if_match: Option<String>,
}

impl Call {
    /// The first value of a query parameter, if given and not empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or a 400.
    pub fn json(&self) -> Result<Value, Answer> {
        serde_json::from_slice(&self.body).map_err(|e| Answer::error(400, &format!("invalid JSON: {e}")))
    }
}

/// Decodes a query string (`a=1&b=x%20y`).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// What a call is answered with: the caller, the control path, the time.
pub struct Context<'a> {
    /// Who is calling.
    pub principal: &'a Principal,
    /// Campaign files, the world, the audience.
    pub reloader: &'a Reloader,
    /// The bid path, for explain (dry runs only).
    pub bidder: &'a Bidder,
    /// Where changes are recorded.
    pub audit_log: &'a AuditLog,
    /// Now.
    pub now: jiff::Timestamp,
}

impl Context<'_> {
    /// Records a change; a failure is logged (the change is made already).
    pub fn audit(&self, entry: AuditEntry) {
        if let Err(e) = self.audit_log.append(&entry) {
            tracing::error!(error = %e, action = %entry.action, target = %entry.target, "audit entry not written");
        }
    }
}

/// `GET /admin/api/advertisers[/{id}]`: the advertisers the caller sees,
/// each with its campaigns' count.
fn advertisers(cx: &Context, call: &Call, id: &str) -> Answer {
    if call.method != http::Method::GET {
        return Answer::error(405, "method not allowed");
    }
    if !cx.principal.reads_campaigns() {
        return Answer::error(403, "this token's role may not read advertisers");
    }
    let world = cx.reloader.world.load();
    let campaigns = documents::scan(&cx.reloader.config_dir);
    let view = |a: &crate::settings::Advertiser| {
        let mut value = json!(a);
        value["campaigns"] = json!(campaigns.iter().filter(|d| d.advertiser() == a.id).count());
        if let Some(live) = world.contact.advertiser(&a.id) {
            value["live"] = advertiser_live_view(live, cx.now);
        }
        value
    };
    let visible = world.settings.advertisers.iter().filter(|a| cx.principal.sees(&a.id));
    if id.is_empty() {
        return Answer::ok(json!({ "advertisers": visible.map(view).collect::<Vec<_>>() }));
    }
    visible
        .into_iter()
        .find(|a| a.id == id)
        .map_or_else(|| Answer::error(404, "no such advertiser"), |a| Answer::ok(view(a)))
}

/// Today's figures of an advertiser across its campaigns: spend and
/// reservations against its daily budget, and the responses its capacity
/// caps count (its local day and hour).
fn advertiser_live_view(a: &crate::live::AdvertiserLive, now: jiff::Timestamp) -> Value {
    let (local, today) = (a.local_seconds(now), a.local_day(now));
    let spend = a.state.spend.spent(today);
    let responses = a.state.responses.counts(local);
    json!({
        "today": {
            "spend": spend.to_string(),
            "spend_micros": spend.0,
            "outstanding": a.state.spend.outstanding().to_string(),
            "budget_left": a.rules.daily_budget.map(|b| b.saturating_sub(spend).max(crate::money::Micros::ZERO).to_string()),
            "clicks_this_hour": responses.clicks_hour,
            "clicks": responses.clicks_day,
            "conversions_this_hour": responses.conversions_hour,
            "conversions": responses.conversions_day,
        },
        "at_capacity": a.state.at_capacity.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// `GET /admin/api/audit?target=&limit=`: changes, newest first; an
/// advertiser sees its own campaigns' only.
fn audit(cx: &Context, call: &Call) -> Answer {
    if call.method != http::Method::GET {
        return Answer::error(405, "method not allowed");
    }
    if !cx.principal.reads_campaigns() {
        return Answer::error(403, "this token's role may not read the audit log");
    }
    let limit = call
        .param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100usize)
        .min(1000);
    let target = call.param("target");
    let keep = |e: &AuditEntry| {
        target.is_none_or(|t| e.target == t)
            && match &e.advertiser {
                Some(advertiser) => cx.principal.sees(advertiser),
                None => cx.principal.role != crate::settings::Role::Advertiser,
            }
    };
    match cx.audit_log.read(limit, keep) {
        Ok(entries) => Answer::ok(json!({ "entries": entries })),
        Err(e) => {
            tracing::error!(error = %e, "audit log unreadable");
            Answer::error(503, "audit log unreadable")
        }
    }
}

/// `POST /admin/api/explain[?exchange=NAME]` with a bid request: what each
/// campaign would bid on each impression, or the rule that excludes it.
/// Nothing is reserved, counted or drawn. An advertiser sees its own
/// campaigns' verdicts only (and the winner only when it is one of them).
fn explain(cx: &Context, call: &Call) -> Answer {
    if call.method != http::Method::POST {
        return Answer::error(405, "method not allowed");
    }
    if !cx.principal.reads_campaigns() {
        return Answer::error(403, "this token's role may not explain bids");
    }
    let explanation = match crate::bidder::explain::explain(cx.bidder, call.param("exchange"), &call.body) {
        Ok(explanation) => explanation,
        Err(e @ ExplainError::UnknownExchange(_)) => return Answer::error(404, &e.to_string()),
        Err(e @ ExplainError::Invalid(_)) => return Answer::error(400, &e.to_string()),
    };
    let mut body = json!(explanation);
    if cx.principal.role == crate::settings::Role::Advertiser {
        let world = cx.reloader.world.load();
        let own = |id: &Value| {
            id.as_str()
                .and_then(|id| world.campaign_by_id(id))
                .is_some_and(|c| cx.principal.sees(&c.campaign.advertiser))
        };
        for imp in body["imp"].as_array_mut().into_iter().flatten() {
            if !own(&imp["winner"]) {
                imp["winner"] = Value::Null;
            }
            if let Some(campaigns) = imp["campaigns"].as_array_mut() {
                campaigns.retain(|c| own(&c["id"]));
            }
        }
    }
    Answer::ok(body)
}

/// `GET /admin/api/forecast?campaign=ID[&max_bid=X&daily_budget=Y]`: what
/// the campaign would buy at that bid and budget, from the request sample
/// (the JSON of `bullseye forecast --json`). Read like the campaign: an
/// advertiser's token sees its own campaigns only (others answer 404).
fn forecast(cx: &Context, call: &Call) -> Answer {
    if call.method != http::Method::GET {
        return Answer::error(405, "method not allowed");
    }
    if !cx.principal.reads_campaigns() {
        return Answer::error(403, "this token's role may not read campaigns");
    }
    let Some(id) = call.param("campaign") else {
        return Answer::error(400, "campaign is required");
    };
    let world = cx.reloader.world.load();
    let Some(c) = world
        .campaign_by_id(id)
        .filter(|c| cx.principal.sees(&c.campaign.advertiser))
    else {
        return Answer::error(404, "no such campaign");
    };
    let money = |name: &str| {
        call.param(name)
            .map(|text| match crate::money::Micros::parse_decimal(text) {
                Ok(amount) if amount.0 > 0 => Ok(amount),
                Ok(_) => Err(Answer::error(400, &format!("{name}: must be more than 0"))),
                Err(e) => Err(Answer::error(400, &format!("{name}: {e}"))),
            })
            .transpose()
    };
    let (max_bid, daily_budget) = match (money("max_bid"), money("daily_budget")) {
        (Ok(max_bid), Ok(daily_budget)) => (max_bid, daily_budget),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    use crate::campaigns::index::LearnedRates;
    let question = crate::forecast::Question {
        settings: world.settings.clone(),
        campaign: c.campaign.clone(),
        max_bid,
        daily_budget,
        rates: crate::forecast::Rates {
            pctr_ppm: c.state.campaign_pctr(c.campaign.pctr_prior),
            pcvr_ppb: c.state.pcvr(c.campaign.goal.pcvr_prior),
        },
    };
    match crate::forecast::forecast_in(&cx.reloader.data_dir, &question) {
        Ok(forecast) => Answer::ok(json!(forecast)),
        Err(e) => {
            tracing::error!(error = %e, "forecast failed");
            Answer::error(503, "forecast unavailable")
        }
    }
}

/// Answers an authenticated admin API call.
pub fn handle(cx: &Context, call: &Call) -> Answer {
    let path = call.path.trim_end_matches('/');
    let Some(rest) = path.strip_prefix("/admin/api/") else {
        return Answer::error(404, "not found");
    };
    let (resource, rest) = rest.split_once('/').unwrap_or((rest, ""));
    match resource {
        "campaigns" => campaigns::handle(cx, call, rest),
        "advertisers" => match rest.split_once("/suppressions/") {
            Some((advertiser, user_id)) => suppressions::handle(cx, call, advertiser, user_id),
            None => advertisers(cx, call, rest),
        },
        "audit" if rest.is_empty() => audit(cx, call),
        "explain" if rest.is_empty() => explain(cx, call),
        "forecast" if rest.is_empty() => forecast(cx, call),
        "reports" if rest.is_empty() => reports::handle(cx, call),
        "audience" if rest == "events" => audience_events::handle(cx, call),
        "audience" => match rest.strip_prefix("users/") {
            Some(user_id) => audience::handle(cx, call, user_id),
            None => Answer::error(404, "not found"),
        },
        _ => Answer::error(404, "not found"),
    }
}
