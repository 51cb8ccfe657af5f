//! Routing, and every request's answer mapped to a status in one place.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::bidder::Outcome;
use crate::console::Console;
use crate::settings::IpRange;
use crate::tracking::notice::{PIXEL_GIF, TrackingReply};

use super::App;
use super::body::{self, BodyError};

/// Time a client has to send a whole request body.
/// Bodies smaller than this are not worth compressing.
const GZIP_MIN_BYTES: usize = 512;

/// Every kind of answer the server gives.
#[derive(Debug)]
enum Reply {
    Bid {
        body: Vec<u8>,
        gzip: bool,
        version: &'static str,
    },
    NoBid {
        version: &'static str,
    },
    BadRequest(String),
    TooLarge,
    Timeout,
    UnsupportedMediaType(String),
    MethodNotAllowed(&'static str),
    NotFound,
    Forbidden,
    Pixel,
    Redirect(String),
    /// User sync: 302 to the exchange, setting our cookie.
    SyncRedirect {
        location: String,
        cookie: String,
    },
    NoContent,
    Text(&'static str),
    Metrics(String),
    /// The billing ledger cannot write: not acknowledged, retry later.
    Unavailable,
    /// Admin API: no or wrong bearer token.
    Unauthorized,
    /// A JSON answer with a status.
    Json(u16, serde_json::Value),
    /// An admin API answer (with its `ETag`).
    Admin(crate::admin::Answer),
}

impl Reply {
    fn status(&self) -> StatusCode {
        match self {
            Reply::Bid { .. } | Reply::Pixel | Reply::Text(_) | Reply::Metrics(_) => StatusCode::OK,
            Reply::NoBid { .. } | Reply::NoContent => StatusCode::NO_CONTENT,
            Reply::BadRequest(_) => StatusCode::BAD_REQUEST,
            Reply::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reply::Timeout => StatusCode::REQUEST_TIMEOUT,
            Reply::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reply::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Reply::NotFound => StatusCode::NOT_FOUND,
            Reply::Forbidden => StatusCode::FORBIDDEN,
            Reply::Redirect(_) | Reply::SyncRedirect { .. } => StatusCode::FOUND,
            Reply::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Reply::Unauthorized => StatusCode::UNAUTHORIZED,
            Reply::Json(status, _) | Reply::Admin(crate::admin::Answer { status, .. }) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    fn error_json(message: &str) -> Full<Bytes> {
        Full::new(Bytes::from(serde_json::json!({ "error": message }).to_string()))
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one arm per kind of reply: a table, clearer whole than split"
    )]
    fn into_response(self) -> Response<Full<Bytes>> {
        let status = self.status();
        let json = HeaderValue::from_static("application/json");
        let mut builder = Response::builder().status(status);
        let body = match self {
            Reply::Bid { body, gzip, version } => {
                builder = builder.header(CONTENT_TYPE, json).header("x-openrtb-version", version);
                if gzip && body.len() >= GZIP_MIN_BYTES {
                    builder = builder.header(CONTENT_ENCODING, "gzip");
                    Full::new(Bytes::from(body::deflate(&body)))
                } else {
                    Full::new(Bytes::from(body))
                }
            }
            Reply::NoBid { version } => {
                builder = builder.header("x-openrtb-version", version);
                Full::default()
            }
            Reply::BadRequest(message) | Reply::UnsupportedMediaType(message) => {
                builder = builder.header(CONTENT_TYPE, json);
                Reply::error_json(&message)
            }
            Reply::TooLarge => {
                builder = builder.header(CONTENT_TYPE, json);
                Reply::error_json("request body too large")
            }
            Reply::Timeout => {
                builder = builder.header(CONTENT_TYPE, json);
                Reply::error_json("request body not received in time")
            }
            Reply::MethodNotAllowed(allow) => {
                builder = builder.header(ALLOW, allow).header(CONTENT_TYPE, json);
                Reply::error_json("method not allowed")
            }
            Reply::NotFound => {
                builder = builder.header(CONTENT_TYPE, json);
                Reply::error_json("not found")
            }
            Reply::Forbidden => {
                builder = builder.header(CONTENT_TYPE, json);
                Reply::error_json("invalid tracking signature")
            }
            Reply::Pixel => {
                builder = builder
                    .header(CONTENT_TYPE, "image/gif")
                    .header(CACHE_CONTROL, "no-store");
                Full::new(Bytes::from_static(PIXEL_GIF))
            }
            Reply::SyncRedirect { location, cookie } => {
                builder = builder
                    .header(LOCATION, location)
                    .header(SET_COOKIE, cookie)
                    .header(CACHE_CONTROL, "no-store");
                Full::default()
            }
            Reply::Redirect(location) => {
                builder = builder.header(LOCATION, location).header(CACHE_CONTROL, "no-store");
                Full::default()
            }
            Reply::NoContent => Full::default(),
            Reply::Unauthorized => {
                builder = builder.header(CONTENT_TYPE, json).header("www-authenticate", "Bearer");
                Reply::error_json("missing or invalid bearer token")
            }
            Reply::Json(_, value) => {
                builder = builder.header(CONTENT_TYPE, json).header(CACHE_CONTROL, "no-store");
                Full::new(Bytes::from(value.to_string()))
            }
            Reply::Admin(answer) => {
                builder = builder.header(CONTENT_TYPE, json).header(CACHE_CONTROL, "no-store");
                if let Some(etag) = answer.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
                    builder = builder.header(http::header::ETAG, etag);
                }
                Full::new(Bytes::from(answer.body.to_string()))
            }
            Reply::Unavailable => {
                builder = builder.header(CONTENT_TYPE, json).header("retry-after", "1");
                Reply::error_json("billing ledger unavailable")
            }
            Reply::Text(text) => {
                builder = builder.header(CONTENT_TYPE, "text/plain; charset=utf-8");
                Full::new(Bytes::from_static(text.as_bytes()))
            }
            Reply::Metrics(text) => {
                builder = builder.header(
                    CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                );
                Full::new(Bytes::from(text))
            }
        };
        builder.body(body).unwrap_or_else(|_| Response::new(Full::default()))
    }
}

/// The answer to a bid request on a connection admitted into the reserve
/// (kept for health checks and tracking): 503 with `Retry-After`.
pub fn bids_over_capacity() -> Response<Full<Bytes>> {
    let mut response = Response::new(Reply::error_json("bid connections at capacity; retry"));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("retry-after", HeaderValue::from_static("1"));
    response
}

/// At most ten client-error log lines a second, so a flood of bad requests
/// cannot flood the log.
fn log_client_error(status: StatusCode, path: &str, why: &str) {
    static WINDOW: AtomicU64 = AtomicU64::new(0);
    // Seconds on the monotonic clock (a rate window, not a time of day).
    static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let second = STARTED.get_or_init(Instant::now).elapsed().as_secs() + 1;
    let window = WINDOW.load(Ordering::Relaxed);
    let (start, count) = (window >> 8, window & 0xff);
    let next = if start == second { count + 1 } else { 1 };
    WINDOW.store(second << 8 | next.min(0xff), Ordering::Relaxed);
    if next <= 10 {
        tracing::info!(status = status.as_u16(), path, why, "client error");
    }
}

/// The OpenRTB version we answer in: the one asked for if we speak it.
fn openrtb_version(request: &Request<Incoming>) -> &'static str {
    match request
        .headers()
        .get("x-openrtb-version")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        Some(v) if v.starts_with("2.5") => "2.5",
        _ => "2.6",
    }
}

fn accepts_gzip(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            e.trim()
                .split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("gzip"))
        })
}

fn json_content_type(request: &Request<Incoming>) -> bool {
    let Some(value) = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return true; // Many exchanges send none.
    };
    let mime = value.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/json") || mime.eq_ignore_ascii_case("text/plain") || mime.is_empty()
}

async fn bid(app: &App, request: Request<Incoming>, exchange: Option<String>, received: Instant) -> Reply {
    if request.method() != Method::POST {
        return Reply::MethodNotAllowed("POST");
    }
    if !json_content_type(&request) {
        return Reply::UnsupportedMediaType("bid requests are application/json".into());
    }
    let version = openrtb_version(&request);
    let gzip = accepts_gzip(&request);
    let (limit, timeout) = {
        let world = app.bidder.world.load();
        (world.settings.max_body_bytes, world.settings.body_read_timeout)
    };
    let (parts, incoming) = request.into_parts();
    let bytes = match body::read(&parts.headers, incoming, limit, timeout).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge(_)) => return Reply::TooLarge,
        Err(BodyError::Timeout) => return Reply::Timeout,
        Err(e @ BodyError::UnsupportedEncoding(_)) => {
            return Reply::UnsupportedMediaType(e.to_string());
        }
        Err(e) => return Reply::BadRequest(e.to_string()),
    };
    app.sampler
        .offer(exchange.as_deref(), &bytes, || app.bidder.clock.now());
    let reply = match app.bidder.bid(exchange.as_deref(), &bytes, received) {
        Outcome::Bid { body, .. } | Outcome::NoBidExplained { body, .. } => Reply::Bid { body, gzip, version },
        Outcome::NoBid(_) => Reply::NoBid { version },
        Outcome::Invalid(e) => Reply::BadRequest(e.to_string()),
        Outcome::UnknownExchange => Reply::NotFound,
    };
    app.bidder.metrics.bid_latency.observe(received.elapsed());
    reply
}

/// The client's address: the peer's, unless the peer is a trusted proxy;
/// then the rightmost `X-Forwarded-For` address that is not a trusted proxy
/// (addresses to its left were written by the client and prove nothing).
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip.to_canonical()));
    let peer = peer.to_canonical();
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.unwrap_or_default().rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // An unreadable hop: stop at the last trusted one we know.
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    client
}

/// A tracking event, handled in a task of its own: once its record is on
/// its way to the billing log, the live spend, the reservation and the
/// claim must follow it even if the exchange hangs up before the answer (a
/// handler dropped with its connection left a record durable but
/// uncounted, its claim stuck and every retry refused).
async fn tracking(
    app: &Arc<App>,
    request: &Request<Incoming>,
    event: &str,
    peer: Option<std::net::SocketAddr>,
) -> Reply {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Reply::MethodNotAllowed("GET, HEAD");
    }
    let world = app.bidder.world.load_full();
    let query = request.uri().query().unwrap_or("");
    let now = app.bidder.clock.now();
    let forwarded_for = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = peer.map(|p| client_address(p.ip(), forwarded_for, &world.settings.click_rules.trusted_proxies));
    let handling = {
        let (tracked, event, query) = (app.clone(), event.to_string(), query.to_string());
        app.event_tasks
            .spawn(async move { tracked.tracker.handle(&world, now, &event, &query, client).await })
    };
    let reply = match handling.await {
        Ok(reply) => reply,
        Err(failed) => {
            tracing::error!(error = %failed, event, "tracking event handler failed");
            TrackingReply::Unavailable
        }
    };
    match reply {
        TrackingReply::Pixel => {
            app.bidder.metrics.impressions.inc();
            Reply::Pixel
        }
        TrackingReply::Redirect(url) => Reply::Redirect(url),
        TrackingReply::Accepted => Reply::NoContent,
        TrackingReply::BadPrice(why) => Reply::BadRequest(why.to_string()),
        TrackingReply::Forbidden(_) => {
            app.bidder.metrics.tracking_rejected.inc();
            Reply::Forbidden
        }
        TrackingReply::Gone => Reply::NotFound,
        TrackingReply::Unavailable => Reply::Unavailable,
        TrackingReply::Conflict(why) => Reply::Json(409, serde_json::json!({ "error": why })),
        TrackingReply::Lost(loss) => {
            let metrics = &app.bidder.metrics;
            metrics.loss(&loss.exchange, &crate::openrtb::LossReason::name_of(loss.reason));
            if loss.min_to_win_malformed {
                metrics.min_to_win_ignored.inc();
            }
            Reply::NoContent
        }
    }
}

/// Largest admin API request body.
const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

/// The principal of a request's bearer token, if any.
fn bearer_principal(app: &App, request: &Request<Incoming>) -> Option<crate::admin::Principal> {
    let header = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    crate::admin::access::authenticate(header, &app.bidder.world.load().settings.admin_tokens)
}

async fn admin_api(app: &Arc<App>, request: Request<Incoming>) -> Reply {
    let Some(principal) = bearer_principal(app, &request) else {
        return Reply::Unauthorized;
    };
    let (parts, incoming) = request.into_parts();
    let timeout = app.bidder.world.load().settings.body_read_timeout;
    let limit = if parts.uri.path() == crate::admin::audience_events::PATH {
        crate::admin::audience_events::BODY_LIMIT
    } else {
        ADMIN_BODY_LIMIT
    };
    let body = match body::read(&parts.headers, incoming, limit, timeout).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(_)) => return Reply::TooLarge,
        Err(e) => return Reply::BadRequest(e.to_string()),
    };
    let call = crate::admin::Call {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: crate::admin::query_pairs(parts.uri.query().unwrap_or("")),
        body,
        if_match: parts
            .headers
            .get(http::header::IF_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let app = app.clone();
    // Campaign changes and the audit log fsync: keep them off the async workers.
    match tokio::task::spawn_blocking(move || app.admin(&principal, &call)).await {
        Ok(answer) => Reply::Admin(answer),
        Err(_) => Reply::Json(500, serde_json::json!({"error": "internal error"})),
    }
}

/// `/healthz`: 503 while the billing log cannot write. The dedup set at
/// its bound does not fail it: behind one balancer for bids and notices
/// that would take the node's bids away too, nodes filling at the same
/// pace would all fail together, and the set drains only as claims age
/// out (a check flapping every minute); `bullseye_dedup_at_capacity` is
/// the alert.
fn health(app: &App, request: &Request<Incoming>) -> Reply {
    match *request.method() {
        Method::GET | Method::HEAD if !app.tracker.ledger.is_healthy() => Reply::Unavailable,
        Method::GET | Method::HEAD => Reply::Text("ok\n"),
        _ => Reply::MethodNotAllowed("GET"),
    }
}

/// Logs a client error and counts the status.
fn finish(app: &App, path: &str, reply: Reply) -> Response<Full<Bytes>> {
    let status = reply.status();
    if status.is_client_error() {
        let why = match &reply {
            Reply::BadRequest(why) | Reply::UnsupportedMediaType(why) => why.as_str(),
            _ => status.canonical_reason().unwrap_or(""),
        };
        log_client_error(status, path, why);
    }
    app.bidder.metrics.response(status.as_u16());
    reply.into_response()
}

/// Answers one request on the exchange listener: bids, tracking, health.
pub async fn handle(
    app: &Arc<App>,
    request: Request<Incoming>,
    peer: Option<std::net::SocketAddr>,
) -> Response<Full<Bytes>> {
    let received = Instant::now();
    let path = request.uri().path().to_string();
    let reply = if let Some(rest) = path.strip_prefix("/openrtb2/bid") {
        match rest.strip_prefix('/') {
            _ if rest.is_empty() => bid(app, request, None, received).await,
            Some(name) if !name.is_empty() && !name.contains('/') => {
                bid(app, request, Some(name.to_string()), received).await
            }
            _ => Reply::NotFound,
        }
    } else if let Some(event) = path.strip_prefix("/t/") {
        tracking(app, &request, event, peer).await
    } else if let Some(rest) = path.strip_prefix("/sync/") {
        user_sync(app, &request, rest, peer)
    } else if path == "/healthz" {
        health(app, &request)
    } else {
        Reply::NotFound
    };
    finish(app, &path, reply)
}

/// Whether a request came over https: said by a trusted proxy's
/// `X-Forwarded-Proto` (the first value), never believed from anyone else.
fn forwarded_https<B>(request: &Request<B>, peer: std::net::IpAddr, trusted: &[IpRange]) -> bool {
    trusted.iter().any(|range| range.contains(peer.to_canonical()))
        && request
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|p| p.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// `GET /sync/{exchange}` and `GET /sync/{exchange}/return?uid=…`
/// ([`super::sync`]).
fn user_sync(app: &App, request: &Request<Incoming>, rest: &str, peer: Option<std::net::SocketAddr>) -> Reply {
    use super::sync;
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Reply::MethodNotAllowed("GET, HEAD");
    }
    let (name, returning) = match rest.split_once('/') {
        None => (rest, false),
        Some((name, "return")) => (name, true),
        Some(_) => return Reply::NotFound,
    };
    let world = app.bidder.world.load();
    let settings = &world.settings;
    let Some(exchange) = sync::syncing(&settings.exchanges, name) else {
        return Reply::NotFound;
    };
    let query = sync::SyncQuery::from_pairs(&crate::admin::query_pairs(request.uri().query().unwrap_or("")));
    if !query.consents(settings.gdpr_vendor_id) {
        return Reply::NoContent;
    }
    let cookies = request.headers().get("cookie").and_then(|v| v.to_str().ok());
    let ours = sync::our_id(cookies);
    if returning {
        let Some(ours) = ours else {
            return Reply::BadRequest(format!("no {} cookie: a sync starts at /sync/{name}", sync::COOKIE));
        };
        let theirs = match sync::check_their_id(query.uid.as_deref()) {
            Ok(theirs) => theirs,
            Err(why) => return Reply::BadRequest(why.to_string()),
        };
        let now = app.bidder.clock.now().as_second() as u32;
        return match app.bidder.audience.matches.record(&exchange.name, theirs, &ours, now) {
            Ok(()) => {
                app.live.outbox.control(crate::live::replicated::Control::UserMatch {
                    exchange: exchange.name.clone(),
                    theirs: theirs.to_string(),
                    ours: ours.clone(),
                });
                Reply::Pixel
            }
            Err(e) => {
                tracing::warn!(error = %e, "user sync: the match log cannot be written");
                Reply::Unavailable
            }
        };
    }
    let ours = ours.unwrap_or_else(sync::new_id);
    let https = peer.is_some_and(|p| forwarded_https(request, p.ip(), &settings.click_rules.trusted_proxies));
    let template = exchange.sync_url.as_deref().unwrap_or_default();
    Reply::SyncRedirect {
        location: sync::redirect_url(template, &ours, &query),
        cookie: sync::set_cookie(&ours, https),
    }
}

/// Largest console form body.
const CONSOLE_BODY_LIMIT: usize = 1024 * 1024;

/// A console request: the body read, the client's address and whether it
/// came over https (believed only from a trusted proxy), then the page
/// made off the async workers (pages read files, changes write them).
async fn console_page(
    app: &Arc<App>,
    console: &Arc<Console>,
    request: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Response<Full<Bytes>> {
    let trusted = app.bidder.world.load().settings.click_rules.trusted_proxies.clone();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let client = client_address(peer.ip(), header("x-forwarded-for").as_deref(), &trusted);
    let https = forwarded_https(&request, peer.ip(), &trusted);
    let cookies = header("cookie");
    let (parts, incoming) = request.into_parts();
    let timeout = app.bidder.world.load().settings.body_read_timeout;
    let body = match body::read(&parts.headers, incoming, CONSOLE_BODY_LIMIT, timeout).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(_)) => return Reply::TooLarge.into_response(),
        Err(e) => return Reply::BadRequest(e.to_string()).into_response(),
    };
    let request = crate::console::Request {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: crate::admin::query_pairs(parts.uri.query().unwrap_or("")),
        cookies,
        body,
        client,
        https,
    };
    let (app, console) = (app.clone(), console.clone());
    tokio::task::spawn_blocking(move || crate::console::handle(&app, &console, &request))
        .await
        .unwrap_or_else(|_| Reply::Json(500, serde_json::json!({"error": "internal error"})).into_response())
}

/// Answers one request on the admin listener: the admin API, the console,
/// metrics, health.
pub async fn handle_admin(
    app: &Arc<App>,
    console: &Arc<Console>,
    request: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let reply = if path.starts_with("/admin/api/") || path == "/admin/api" {
        admin_api(app, request).await
    } else if path == "/admin" || path.starts_with("/admin/") {
        let response = console_page(app, console, request, peer).await;
        if response.status().is_client_error() {
            log_client_error(response.status(), &path, "console");
        }
        app.bidder.metrics.response(response.status().as_u16());
        return response;
    } else {
        match (request.method(), path.as_str()) {
            (_, "/healthz") => health(app, &request),
            (&Method::GET, "/metrics") => {
                let ledger = &app.tracker.ledger;
                app.bidder
                    .metrics
                    .observe_ledger(ledger.is_healthy(), ledger.write_failures());
                app.bidder.metrics.observe_loss_log(app.tracker.loss_log().dropped());
                app.bidder.metrics.observe_sample(app.sampler.dropped());
                let matches = &app.bidder.audience.matches;
                app.bidder
                    .metrics
                    .observe_user_matches(matches.len(), matches.evicted());
                if let Some(node) = &app.cluster {
                    app.bidder
                        .metrics
                        .observe_replication(&replication_figures(node, &app.live.outbox));
                }
                Reply::Metrics(app.metrics_text())
            }
            (_, "/metrics") => Reply::MethodNotAllowed("GET"),
            _ => Reply::NotFound,
        }
    };
    finish(app, &path, reply)
}

/// A cluster node's replication figures, for the metrics scrape.
fn replication_figures(
    node: &crate::cluster::Node,
    outbox: &crate::live::replicated::Outbox,
) -> crate::metrics::ReplicationFigures {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = &node.replication;
    crate::metrics::ReplicationFigures {
        events_published: stats.events_published.load(Relaxed),
        events_applied: stats.events_applied.load(Relaxed),
        control_published: stats.control_published.load(Relaxed),
        control_applied: stats.control_applied.load(Relaxed),
        failures: stats.failures.load(Relaxed),
        backlog: outbox.backlog() as u64,
        dropped: outbox.dropped(),
        lag_ms: stats.last_lag_ms.load(Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17, item 12: the leftmost (client-written) address was taken.
    #[test]
    fn the_client_is_the_rightmost_untrusted_forwarded_address() {
        let trusted = [
            IpRange::parse("10.0.0.0/8").unwrap(),
            IpRange::parse("192.0.2.1").unwrap(),
        ];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let forwarded = Some("1.2.3.4, 203.0.113.9, 10.1.1.1");
        assert_eq!(client_address(ip("10.0.0.5"), forwarded, &trusted), ip("203.0.113.9"));
        assert_eq!(
            client_address(ip("198.51.100.7"), forwarded, &trusted),
            ip("198.51.100.7"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(client_address(ip("10.0.0.5"), None, &trusted), ip("10.0.0.5"));
        assert_eq!(
            client_address(ip("10.0.0.5"), Some("garbage, 10.2.2.2"), &trusted),
            ip("10.2.2.2")
        );
        assert_eq!(
            client_address(ip("::ffff:10.0.0.5"), Some("203.0.113.9"), &trusted),
            ip("203.0.113.9"),
            "IPv4-mapped peers are matched as IPv4"
        );
        assert_eq!(
            client_address(ip("10.0.0.5"), forwarded, &[]),
            ip("10.0.0.5"),
            "no proxies trusted"
        );
    }
}
