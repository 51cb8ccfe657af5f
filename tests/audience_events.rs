//! Event-triggered segments (issue 16): `POST /admin/api/audience/events`
//! takes JSON Lines of segment changes for the real-time overlay, line by
//! line; the next bid request sees them, they expire after their time to
//! live, a full overlay refuses new users with 429 (counted), and only the
//! `admin` and `data` roles may send them.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const DATA_TOKEN: &str = "data-token-0123456789abcdef0123456789ab";
const VIEWER_TOKEN: &str = "viewer-token-0123456789abcdef0123456789";

/// A campaign for users in `offer/loan` (or below), bidding 5.00 over the
/// generic campaign's 1.00.
fn campaigns() -> String {
    format!(
        "{GENERIC}{}",
        r#"
[[campaign]]
id = "loan-offer"
advertiser = "Bank"
adomain = ["bank.example"]
pricing = "cpm"
max_bid = "5.00"
daily_budget = "100"
  [campaign.targeting.segments]
  any = ["offer/loan"]
  [[campaign.creative]]
  id = "l1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.bank.example/a.png"
  landing_url = "https://bank.example/"
"#
    )
}

/// Test settings with data, viewer and advertiser tokens and `extra` in
/// `[audience]`.
fn settings(audience: &str) -> String {
    let settings = TEST_SETTINGS.replace(
        "[audience]\nsnapshot = \"audience.snapshot\"\n",
        &format!("[audience]\nsnapshot = \"audience.snapshot\"\n{audience}\n"),
    );
    format!(
        "{settings}{}{}{}",
        admin_token_entry("crm-feed", "data", None, DATA_TOKEN),
        admin_token_entry("auditor", "viewer", None, VIEWER_TOKEN),
        admin_token_entry("shop", "advertiser", Some("Shop"), SHOP_TOKEN),
    )
}

async fn spawn(audience: &str) -> (TestBidder, std::sync::Arc<bullseye::clock::ManualClock>) {
    let dir = write_config(&settings(audience), &campaigns(), "someone,rfm/gold\n");
    let clock = std::sync::Arc::new(bullseye::clock::ManualClock::new(
        "2026-11-24T12:00:00Z".parse().unwrap(),
    ));
    let mut bidder = spawn_bidder_with(dir.path(), clock.clone(), false).await;
    bidder.dirs.push(dir);
    (bidder, clock)
}

/// POSTs `lines` (joined with newlines) as `token`.
async fn send(bidder: &TestBidder, lines: &[Value], token: Option<&str>) -> (StatusCode, Value) {
    let body: Vec<String> = lines.iter().map(Value::to_string).collect();
    send_text(bidder, &body.join("\n"), token).await
}

async fn send_text(bidder: &TestBidder, body: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = bidder
        .client
        .post(bidder.admin_url("/admin/api/audience/events"))
        .header("content-type", "application/x-ndjson")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A user's overlay changes, as the per-user API shows them.
async fn overlay_of(bidder: &TestBidder, user: &str) -> Value {
    let path = format!("/admin/api/audience/users/{user}");
    let response = bidder.admin(reqwest::Method::GET, &path).send().await.unwrap();
    response.json::<Value>().await.unwrap()["overlay"].clone()
}

async fn winner_for(bidder: &TestBidder, user: &str) -> Option<String> {
    winner(&bidder.bid_json(&banner_request(user, 0.0, json!({}))).await.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_are_applied_or_rejected_and_the_next_bid_sees_them_until_they_expire() {
    let (bidder, clock) = spawn("").await;
    assert_eq!(winner_for(&bidder, "walker").await.as_deref(), Some("generic"));

    let body = [
        json!({"user_id": "walker", "segment": "offer/loan/car", "op": "add", "ttl_seconds": 600}).to_string(),
        String::new(),
        json!({"user_id": "runner", "segment": "offer/loan", "op": "add", "ttl_seconds": 60, "source": "call-centre"})
            .to_string(),
        json!({"user_id": "walker", "segment": "Not A Path", "op": "add"}).to_string(),
        json!({"user_id": "walker", "segment": "offer/loan", "op": "upsert"}).to_string(),
        "{\"user_id\": \"walker\",".to_string(),
        json!({"segment": "offer/loan", "op": "add"}).to_string(),
        json!({"user_id": "walker", "segment": "offer/loan", "op": "add", "ttl_seconds": 31 * 86_400}).to_string(),
        json!({"user_id": "someone", "segment": "rfm", "op": "remove", "ttl_seconds": 120}).to_string(),
    ]
    .join("\n");
    let (status, answer) = send_text(&bidder, &body, Some(DATA_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({
            "accepted": 3,
            "rejected": [
                {"line": 4, "why": "segment path \"not a path\" contains a character outside [a-z0-9_.:-]"},
                {"line": 5, "why": "op must be \"add\" or \"remove\", not \"upsert\""},
                {"line": 6, "why": "invalid JSON: EOF while parsing a value at line 1 column 21"},
                {"line": 7, "why": "user_id is required"},
                {"line": 8, "why": "ttl_seconds must be between 1 and 2592000"},
            ],
            "rejected_total": 5,
        })
    );
    // The next request sees them: a child segment matches the parent rule.
    assert_eq!(winner_for(&bidder, "walker").await.as_deref(), Some("loan-offer"));
    assert_eq!(winner_for(&bidder, "runner").await.as_deref(), Some("loan-offer"));
    let shown = overlay_of(&bidder, "someone").await;
    assert_eq!(shown["removed"][0]["segment"], "rfm", "{shown}");

    // Each change expires after its own time to live.
    clock.advance(std::time::Duration::from_secs(60));
    assert_eq!(winner_for(&bidder, "runner").await.as_deref(), Some("generic"));
    assert_eq!(winner_for(&bidder, "walker").await.as_deref(), Some("loan-offer"));
    clock.advance(std::time::Duration::from_secs(540));
    assert_eq!(winner_for(&bidder, "walker").await.as_deref(), Some("generic"));

    // A removal takes the segment away again.
    send(
        &bidder,
        &[
            json!({"user_id": "walker", "segment": "offer/loan", "op": "add"}),
            json!({"user_id": "walker", "segment": "offer", "op": "remove"}),
        ],
        Some(DATA_TOKEN),
    )
    .await;
    assert_eq!(winner_for(&bidder, "walker").await.as_deref(), Some("generic"));
    let metrics = bidder.metrics().await;
    assert_eq!(metric(&metrics, "bullseye_audience_events_accepted_total"), 5.0);
    assert_eq!(metric(&metrics, "bullseye_audience_events_rejected_total"), 5.0);
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_overlay_refuses_new_users_with_429_and_counts_them() {
    let (bidder, clock) = spawn("overlay_max_users = 2").await;
    let add = |user: &str, ttl: i64| json!({"user_id": user, "segment": "offer/loan", "op": "add", "ttl_seconds": ttl});
    let (status, answer) = send(
        &bidder,
        &[add("a", 30), add("b", 600), add("c", 600), add("a", 30), add("d", 600)],
        Some(ADMIN_TOKEN),
    )
    .await;
    let full = "the overlay holds its maximum of 2 users; try again once changes expire or after the next snapshot";
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        answer,
        json!({
            "accepted": 3,
            "rejected": [{"line": 3, "why": full}, {"line": 5, "why": full}],
            "rejected_total": 2,
        })
    );
    // Nobody was evicted to make room.
    for user in ["a", "b"] {
        assert_eq!(winner_for(&bidder, user).await.as_deref(), Some("loan-offer"), "{user}");
    }
    assert_eq!(winner_for(&bidder, "c").await.as_deref(), Some("generic"));
    let metrics = bidder.metrics().await;
    assert_eq!(metric(&metrics, "bullseye_audience_overlay_refused_total"), 2.0);

    // Once a's change has expired, its place is free again.
    clock.advance(std::time::Duration::from_secs(31));
    let (status, answer) = send(&bidder, &[add("c", 600)], Some(ADMIN_TOKEN)).await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::OK,
            json!({"accepted": 1, "rejected": [], "rejected_total": 0})
        )
    );
    assert_eq!(winner_for(&bidder, "c").await.as_deref(), Some("loan-offer"));
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admin_and_data_tokens_may_send_events() {
    let (bidder, _clock) = spawn("").await;
    let line = [json!({"user_id": "walker", "segment": "offer/loan", "op": "add"})];
    assert_eq!(send(&bidder, &line, None).await.0, StatusCode::UNAUTHORIZED);
    for token in [VIEWER_TOKEN, SHOP_TOKEN] {
        let (status, answer) = send(&bidder, &line, Some(token)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token}");
        assert_eq!(
            answer,
            json!({"error": "this token's role may not use the audience endpoints"})
        );
    }
    assert_eq!(winner_for(&bidder, "walker").await.as_deref(), Some("generic"));
    for token in [DATA_TOKEN, ADMIN_TOKEN] {
        let (status, answer) = send(&bidder, &line, Some(token)).await;
        assert_eq!((status, answer["accepted"].clone()), (StatusCode::OK, json!(1)));
    }
    assert_eq!(winner_for(&bidder, "walker").await.as_deref(), Some("loan-offer"));
    let get = bidder
        .client
        .get(bidder.admin_url("/admin/api/audience/events"))
        .bearer_auth(DATA_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_changes_survive_a_restart_until_they_expire() {
    let config = write_config(&settings(""), &campaigns(), "someone,offer/loan\n");
    let data = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(bullseye::clock::ManualClock::new(
        "2026-11-24T12:00:00Z".parse().unwrap(),
    ));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    let (status, _) = send(
        &bidder,
        &[
            json!({"user_id": "walker", "segment": "offer/loan", "op": "add", "ttl_seconds": 3_600}),
            json!({"user_id": "runner", "segment": "offer/loan", "op": "add", "ttl_seconds": 60}),
            json!({"user_id": "someone", "segment": "offer", "op": "remove", "ttl_seconds": 3_600}),
        ],
        Some(DATA_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let per_user = bidder
        .admin(reqwest::Method::POST, "/admin/api/audience/users/strider")
        .body(json!({"add": ["offer/loan/home"], "ttl_seconds": 3_600}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(per_user.status(), StatusCode::OK);
    bidder.stop().await;

    clock.advance(std::time::Duration::from_secs(120));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    for (user, expected) in [
        ("walker", "loan-offer"),
        ("strider", "loan-offer"),
        ("runner", "generic"),
        ("someone", "generic"),
    ] {
        assert_eq!(winner_for(&bidder, user).await.as_deref(), Some(expected), "{user}");
    }
    bidder.stop().await;
}
