//! Signing in: the form (with its double-submit CSRF token), checking the
//! token as the API does, throttling failures per address, opening the
//! session, and auditing it (`console.sign_in`).

use std::time::Instant;

use askama::Template;

use super::page::{Form, render};
use super::reply::Reply;
use super::session::{IDLE_TIMEOUT, random_token};
use super::{Console, Request, SESSION_COOKIE, SIGN_IN_COOKIE};
use crate::admin::Principal;
use crate::admin::audit::AuditEntry;
use crate::app::App;
use crate::settings::access::same_bytes;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
}

/// The sign-in page, with a fresh double-submit token in a cookie and in
/// the form.
pub fn page(request: &Request, error: Option<&str>, status: u16) -> Reply {
    let csrf = random_token();
    render(status, &SignInPage { csrf: &csrf, error }).cookie(SIGN_IN_COOKIE, &csrf, None, request.https)
}

/// `POST /admin/sign-in`.
pub fn submit(app: &App, console: &Console, request: &Request) -> Reply {
    let now = Instant::now();
    if let Err(wait) = console.throttle.check(request.client, now) {
        tracing::warn!(client = %request.client, "console sign-in refused: too many failures");
        return Reply::text(429, "too many failed sign-ins; try again later\n")
            .header(http::header::RETRY_AFTER, wait.to_string());
    }
    let form = Form::parse(&request.body);
    let expected = request.cookie(SIGN_IN_COOKIE).unwrap_or("");
    if expected.is_empty() || !same_bytes(form.get("csrf_token").as_bytes(), expected.as_bytes()) {
        tracing::warn!(client = %request.client, "console sign-in refused: missing or wrong CSRF token");
        return Reply::text(403, "missing or invalid CSRF token: reload the sign-in page\n");
    }
    let world = app.bidder.world.load();
    let Some(token) = crate::settings::access::find_token(&world.settings.admin_tokens, form.get("token")) else {
        console.throttle.fail(request.client, now);
        // The token itself is never logged.
        tracing::warn!(client = %request.client, "console sign-in failed: unknown token");
        return page(request, Some("That token is not valid."), 401);
    };
    let principal = Principal::of(token);
    let keys = super::session_keys(app);
    let id = super::Sessions::new(&app.live.signed_out).open(&keys, token.sha256, app.bidder.clock.now().as_second());
    audit(app, &principal, request);
    tracing::info!(who = %principal.name, client = %request.client, "console sign-in");
    Reply::redirect("/admin/")
        .cookie(SESSION_COOKIE, &id, Some(IDLE_TIMEOUT.as_secs()), request.https)
        .cookie(SIGN_IN_COOKIE, "", Some(0), request.https)
}

fn audit(app: &App, principal: &Principal, request: &Request) {
    let entry = AuditEntry {
        at: app.bidder.clock.now().to_string(),
        who: principal.name.clone(),
        role: principal.role.as_str().into(),
        action: "console.sign_in".into(),
        target: "console".into(),
        advertiser: principal.advertiser.clone(),
        before: serde_json::Value::Null,
        after: serde_json::json!({ "client": request.client.to_string(), "https": request.https }),
    };
    if let Err(e) = app.audit_log.append(&entry) {
        tracing::error!(error = %e, "console sign-in not audited");
    }
}
