//! The web console over plain HTTP (the browser test is tests/console.rs):
//! security headers, sign-in refused with a wrong token and throttled,
//! CSRF on every form (a missing or wrong token is 403 and changes
//! nothing), an advertiser's session sees only its own campaigns, and the
//! session cookie is `Secure` only behind a trusted https proxy.

#![allow(
    clippy::too_many_lines,
    reason = "each scenario reads best top to bottom, in one function"
)]

mod common;

use common::*;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

async fn console_bidder(extra_settings: &str) -> TestBidder {
    let token = admin_token_entry("shop-team", "advertiser", Some("Shop"), SHOP_TOKEN);
    let settings = format!("{TEST_SETTINGS}{token}{extra_settings}");
    let dir = write_config(&settings, &format!("{GENERIC}{SHOP}"), "u1,interest/sports\n");
    let mut bidder = spawn_bidder_with(dir.path(), std::sync::Arc::new(bullseye::clock::SystemClock), false).await;
    bidder.dirs.push(dir);
    bidder
}

/// A form body.
fn encode(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// A cookie set by a response (`name=value`), if any.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn value_of(cookie: &str) -> &str {
    cookie.split(';').next().unwrap().split_once('=').unwrap().1
}

/// The hidden `csrf_token` of a page.
fn csrf_in(page: &str) -> String {
    let at = page.find("name=\"csrf_token\" value=\"").expect("a CSRF input") + 25;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

/// Signs in; returns the response (headers, status) and the session cookie.
async fn sign_in(bidder: &TestBidder, token: &str, headers: &[(&str, &str)]) -> (reqwest::Response, Option<String>) {
    let page = bidder.client.get(bidder.admin_url("/admin/")).send().await.unwrap();
    let pre = set_cookie(page.headers(), "bz_sign_in").expect("a double-submit cookie");
    let csrf = csrf_in(&page.text().await.unwrap());
    assert_eq!(csrf, value_of(&pre));
    let mut request = bidder
        .client
        .post(bidder.admin_url("/admin/sign-in"))
        .header("cookie", format!("bz_sign_in={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("csrf_token", csrf.as_str()), ("token", token)]));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let session = set_cookie(response.headers(), "bz_session").map(|c| value_of(&c).to_string());
    (response, session.filter(|s| !s.is_empty()))
}

async fn get(bidder: &TestBidder, path: &str, session: &str) -> (StatusCode, HeaderMap, String) {
    let response = bidder
        .client
        .get(bidder.admin_url(path))
        .header("cookie", format!("bz_session={session}"))
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

fn assert_secure_headers(headers: &HeaderMap) {
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_sessions_their_cookie_flags() {
    let bidder = console_bidder("").await;
    let page = bidder.client.get(bidder.admin_url("/admin/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_secure_headers(page.headers());
    assert!(page.text().await.unwrap().contains("name=\"token\""));
    let (response, session) = sign_in(&bidder, ADMIN_TOKEN, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(response.headers(), "bz_session").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/admin"));
    assert!(
        !cookie.contains("Secure"),
        "X-Forwarded-Proto from an untrusted peer is not believed"
    );
    let session = session.unwrap();
    for path in [
        "/admin/",
        "/admin/campaigns/generic",
        "/admin/reports",
        "/admin/audit",
        "/admin/assets/console.css",
    ] {
        let (status, headers, _) = get(&bidder, path, &session).await;
        assert_eq!(status, 200, "{path}");
        assert_secure_headers(&headers);
    }
    bidder.stop().await;

    let behind_proxy = console_bidder("\n[tracking]\ntrusted_proxies = [\"127.0.0.1\"]\n").await;
    let (response, _) = sign_in(&behind_proxy, ADMIN_TOKEN, &[("x-forwarded-proto", "https")]).await;
    let cookie = set_cookie(response.headers(), "bz_session").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    behind_proxy.stop().await;
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_failures_are_throttled() {
    let bidder = console_bidder("").await;
    for _ in 0..5 {
        let (response, session) = sign_in(&bidder, "wrong-token-0123456789abcdefghijklmnop", &[]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(session.is_none());
        assert!(response.text().await.unwrap().contains("not valid"));
    }
    let (response, session) = sign_in(&bidder, ADMIN_TOKEN, &[]).await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right token waits"
    );
    assert!(
        response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert!(session.is_none());
    // Without its double-submit cookie the sign-in form is refused.
    let refused = bidder
        .client
        .post(bidder.admin_url("/admin/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("csrf_token", "x"), ("token", ADMIN_TOKEN)]))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        refused.status(),
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ));
    bidder.stop().await;
}

#[tokio::test]
async fn a_form_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing() {
    let bidder = console_bidder("").await;
    let (_, session) = sign_in(&bidder, ADMIN_TOKEN, &[]).await;
    let session = session.unwrap();
    let (_, _, page) = get(&bidder, "/admin/campaigns/generic", &session).await;
    let csrf = csrf_in(&page);
    let version = {
        let at = page.find("name=\"version\" value=\"").unwrap() + 22;
        page[at..at + page[at..].find('"').unwrap()].to_string()
    };
    let post = |form: Vec<(&'static str, String)>| {
        bidder
            .client
            .post(bidder.admin_url("/admin/campaigns/generic"))
            .header("cookie", format!("bz_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&form.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()))
            .send()
    };
    let fields = |csrf: Option<&str>| {
        let mut form = vec![
            ("max_bid", "1.00".to_string()),
            ("daily_budget", "555".to_string()),
            ("status", "active".to_string()),
            ("version", version.clone()),
        ];
        if let Some(csrf) = csrf {
            form.push(("csrf_token", csrf.to_string()));
        }
        form
    };
    for form in [fields(None), fields(Some("not-the-token")), fields(Some(""))] {
        let response = post(form).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let sign_out = bidder
        .client
        .post(bidder.admin_url("/admin/sign-out"))
        .header("cookie", format!("bz_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_out.status(), StatusCode::FORBIDDEN, "sign-out is a form too");
    let api = bidder
        .admin(reqwest::Method::GET, "/admin/api/campaigns/generic")
        .send()
        .await
        .unwrap();
    let campaign: serde_json::Value = api.json().await.unwrap();
    assert_eq!(campaign["daily_budget"], "100", "nothing changed");
    // With it, the change is made (through the API: validated, audited).
    let response = post(fields(Some(&csrf))).await.unwrap();
    let status = response.status();
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "{version:?} {}",
        response.text().await.unwrap()
    );
    let api = bidder
        .admin(reqwest::Method::GET, "/admin/api/campaigns/generic")
        .send()
        .await
        .unwrap();
    let campaign: serde_json::Value = api.json().await.unwrap();
    assert_eq!(campaign["daily_budget"], "555");
    // A value the API refuses comes back next to its field.
    let mut bad = fields(Some(&csrf));
    bad[1].1 = "-5".into();
    bad[3].1 = campaign["version"].as_str().unwrap().to_string();
    let response = post(bad).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("class=\"problem\""));
    bidder.stop().await;
}

#[tokio::test]
async fn an_advertiser_session_sees_only_its_own_campaigns() {
    let bidder = console_bidder("").await;
    let (_, session) = sign_in(&bidder, SHOP_TOKEN, &[]).await;
    let session = session.unwrap();
    let (status, _, page) = get(&bidder, "/admin/", &session).await;
    assert_eq!(status, 200);
    assert!(page.contains("data-campaign=\"shop-spring\""));
    assert!(!page.contains("data-campaign=\"generic\""));
    let (status, _, _) = get(&bidder, "/admin/campaigns/generic", &session).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&bidder, "/admin/audience", &session).await;
    assert_eq!(status, 403, "an advertiser may not read the audience");
    let (status, _, csv) = get(&bidder, "/admin/reports.csv", &session).await;
    assert_eq!(status, 200);
    assert!(!csv.contains("generic"));
    // Signed out, pages send the browser back to sign in.
    let response = bidder
        .client
        .get(bidder.admin_url("/admin/campaigns/shop-spring"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    bidder.stop().await;
}

/// The campaigns page shows today's win rate: today's wins over today's
/// bids (bid counts as flushed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_campaigns_page_shows_todays_win_rate() {
    let bidder = console_bidder("").await;
    let mut burls = Vec::new();
    for user in ["w1", "w2", "w3", "w4"] {
        let (_, response) = bidder.bid_json(&banner_request(user, 0.0, serde_json::json!({}))).await;
        assert_eq!(winner(&response).as_deref(), Some("generic"));
        burls.push(
            response.unwrap()["seatbid"][0]["bid"][0]["burl"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let burl = burls[0].replace("${AUCTION_PRICE}", "0.50");
    assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
    bidder.running.as_ref().unwrap().app.flush_bids();
    let (_, session) = sign_in(&bidder, ADMIN_TOKEN, &[]).await;
    let (status, _, page) = get(&bidder, "/admin/", &session.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let row = &page[page.find("data-campaign=\"generic\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(">25.00%<"), "one win of four bids: {row}");
}

/// Issue 12: console sessions are signed cookies, so every node of a
/// cluster (every bidder sharing the signing key) accepts a session opened
/// on another; one with another key does not; signing out ends it.
#[tokio::test]
async fn a_session_opened_on_one_node_is_accepted_by_another_sharing_the_key() {
    let (a, b) = (console_bidder("").await, console_bidder("").await);
    let (_, session) = sign_in(&a, ADMIN_TOKEN, &[]).await;
    let session = session.unwrap();
    let (status, _, page) = get(&b, "/admin/", &session).await;
    assert_eq!(status, 200);
    let csrf = csrf_in(&page);
    let (_, _, page_on_a) = get(&a, "/admin/", &session).await;
    assert_eq!(csrf_in(&page_on_a), csrf, "one CSRF token on every node");

    let other_key = TEST_SETTINGS.replace(
        "test-signing-key-0123456789abcdefghijkl",
        "another-key-0123456789abcdefghijklmnopq",
    );
    let dir = write_config(&other_key, GENERIC, "u1,interest/sports\n");
    let other = spawn_bidder_with(dir.path(), std::sync::Arc::new(bullseye::clock::SystemClock), false).await;
    let (status, headers, _) = get(&other, "/admin/campaigns/generic", &session).await;
    assert_eq!(
        (status, &headers["location"]),
        (
            StatusCode::SEE_OTHER,
            &"/admin/".parse::<reqwest::header::HeaderValue>().unwrap()
        ),
        "another key: not signed in"
    );

    let sign_out = b
        .client
        .post(b.admin_url("/admin/sign-out"))
        .header("cookie", format!("bz_session={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("csrf_token", &csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_out.status(), StatusCode::SEE_OTHER);
    let (status, _, _) = get(&b, "/admin/campaigns/generic", &session).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out");
    for bidder in [a, b, other] {
        bidder.stop().await;
    }
    drop(dir);
}
