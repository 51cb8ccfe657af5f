//! The web console at `/admin/` on the admin listener: server-rendered
//! pages (askama templates under `templates/console/`, auto-escaped) for
//! advertisers, their agencies, data teams and operators. No JavaScript;
//! charts are inline SVG ([`chart`]); the stylesheet is embedded.
//!
//! Sign-in takes an admin token (checked as the API checks a bearer
//! token) and opens a session ([`session`]): a random id in an `HttpOnly;
//! SameSite=Strict; Path=/admin` cookie (`Secure` over https), kept in
//! memory, bounded and expiring. Every POST form carries the session's
//! CSRF token (`csrf_token`); the sign-in form a double-submit token (a
//! cookie and the same value in the form). Failed sign-ins are throttled
//! per client address ([`throttle`]). Every response carries a strict CSP
//! and the other security headers ([`reply`]).
//!
//! Every change is made through `admin::handle` with a [`crate::admin::Call`]
//! built from the form, so validation, roles and the audit log are the
//! API's; what the ledger gives (reports, spend over time) and explain go
//! through the seams in [`data`].
//!
//! Layering: `console` sits with `app` and `server`: the server reads the
//! request (body limits, the client's address, https) and calls
//! [`handle`] off the async workers; the console uses [`App`]; `app` never
//! imports `console`. The session store lives in a [`Console`] that
//! `server::start` creates.

pub mod chart;
pub mod data;
pub mod format;
pub mod reply;
pub mod session;
pub mod throttle;

mod audience;
mod audit;
mod campaign;
mod campaigns;
mod explain;
mod new;
mod page;
mod reports;
mod sign_in;

use std::net::IpAddr;

use bytes::Bytes;
use http::Method;
use http_body_util::Full;

use crate::admin::Principal;
use crate::app::App;
use crate::settings::access::same_bytes;
use page::{Cx, Form};
use reply::Reply;
use session::{IDLE_TIMEOUT, Session, Sessions};
use throttle::Throttle;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "bz_session";

/// The sign-in form's double-submit cookie.
pub const SIGN_IN_COOKIE: &str = "bz_sign_in";

/// The console's state: the sign-in throttle (sessions are signed
/// cookies; those signed out are in `live::signed_out`).
#[derive(Default)]
pub struct Console {
    throttle: Throttle,
}

impl Console {
    /// A console with no session.
    pub fn new() -> Console {
        Console::default()
    }

    /// The session of a request's cookie and its principal, if signed in
    /// with a token the settings still hold.
    fn signed_in(&self, app: &App, request: &Request) -> Option<(Session, Principal)> {
        let cookie = request.cookie(SESSION_COOKIE)?;
        let world = app.bidder.world.load();
        let now = app.bidder.clock.now().as_second();
        let session = Sessions::new(&app.live.signed_out).get(&session_keys(app), cookie, now)?;
        let token = world
            .settings
            .admin_tokens
            .iter()
            .find(|t| same_bytes(&t.sha256, &session.token_hash))?;
        Some((session, Principal::of(token)))
    }
}

/// The session keys of the current settings' URL-signing keys.
fn session_keys(app: &App) -> session::Keys {
    let world = app.bidder.world.load();
    let settings = &world.settings;
    session::Keys::new(&settings.signing_key, settings.previous_signing_key.as_deref())
}

/// A console request, read by the server.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path (`/admin/…`).
    pub path: String,
    /// The query string's pairs, decoded.
    pub query: Vec<(String, String)>,
    /// The `Cookie` header, if any.
    pub cookies: Option<String>,
    /// The body (a form).
    pub body: Bytes,
    /// The client's address (the peer's, or the forwarded one when the
    /// peer is a trusted proxy).
    pub client: IpAddr,
    /// Whether the browser reached us over https (a trusted proxy's
    /// `X-Forwarded-Proto: https`).
    pub https: bool,
}

impl Request {
    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .as_deref()?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// A query parameter (empty when absent).
    pub fn param(&self, name: &str) -> &str {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn form(&self) -> Form {
        Form::parse(&self.body)
    }
}

/// Answers a console request (blocking: pages read campaign files and
/// the ledger, changes write files).
pub fn handle(app: &App, console: &Console, request: &Request) -> http::Response<Full<Bytes>> {
    route(app, console, request).into_response()
}

fn route(app: &App, console: &Console, request: &Request) -> Reply {
    let path = request.path.trim_end_matches('/');
    let method = if request.method == Method::HEAD {
        Method::GET
    } else {
        request.method.clone()
    };
    match (&method, path) {
        (&Method::GET, "/admin/assets/console.css") => return Reply::stylesheet(),
        (&Method::POST, "/admin/sign-in") => return sign_in::submit(app, console, request),
        _ => {}
    }
    let Some((session, principal)) = console.signed_in(app, request) else {
        return match (&method, path) {
            (&Method::GET, "/admin") => sign_in::page(request, None, 200),
            (&Method::GET, _) => Reply::redirect("/admin/"),
            _ => Reply::text(403, "not signed in\n"),
        };
    };
    let form = request.form();
    if method == Method::POST && !same_bytes(form.get("csrf_token").as_bytes(), session.csrf.as_bytes()) {
        tracing::warn!(who = %principal.name, path, "console form refused: missing or wrong CSRF token");
        return Reply::text(403, "missing or invalid CSRF token: reload the page and try again\n");
    }
    let now = app.bidder.clock.now().as_second();
    if (&method, path) == (&Method::POST, "/admin/sign-out") {
        let until = Sessions::new(&app.live.signed_out).close(&session, now);
        app.live.outbox.control(crate::live::replicated::Control::SignOut {
            nonce: crate::live::signed_out::nonce_hex(&session.nonce),
            until,
        });
        tracing::info!(who = %principal.name, "console sign-out");
        return Reply::redirect("/admin/").cookie(SESSION_COOKIE, "", Some(0), request.https);
    }
    let refreshed = session.needs_refresh(now).then(|| {
        let keys = session_keys(app);
        let sessions = Sessions::new(&app.live.signed_out);
        sessions.issue(&keys, &sessions.touched(&session, now))
    });
    let cx = Cx::new(app, principal, session.csrf.clone(), request);
    let reply = page(&cx, &method, path, &form);
    match refreshed {
        Some(cookie) => reply.cookie(SESSION_COOKIE, &cookie, Some(IDLE_TIMEOUT.as_secs()), request.https),
        None => reply,
    }
}

/// The page a signed-in request asks for.
fn page(cx: &Cx, method: &Method, path: &str, form: &Form) -> Reply {
    match (method, path) {
        (&Method::GET, "/admin") => campaigns::page(cx),
        (&Method::GET, "/admin/new") => new::page(cx, &Form::default(), false),
        (&Method::POST, "/admin/new") => new::submit(cx, form),
        (&Method::GET, "/admin/reports") => reports::page(cx),
        (&Method::GET, "/admin/reports.csv") => reports::csv(cx),
        (&Method::GET, "/admin/audience") => audience::page(cx),
        (&Method::GET, "/admin/explain") => explain::page(cx, "", None),
        (&Method::POST, "/admin/explain") => explain::submit(cx, form),
        (&Method::GET, "/admin/audit") => audit::page(cx),
        (method, p) if p.starts_with("/admin/campaigns/") => {
            let id = &p["/admin/campaigns/".len()..];
            match *method {
                Method::GET => campaign::page(cx, id),
                Method::POST => campaign::submit(cx, id, form),
                _ => cx.message(405, "Method not allowed", "This page takes GET and POST only."),
            }
        }
        _ => cx.message(404, "Not found", "There is no such page in the console."),
    }
}
