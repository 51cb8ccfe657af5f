//! The admin API: bearer auth, live stats, validated changes that take
//! effect on the next bid request and survive a restart.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

mod common;

use std::sync::Arc;

use bullseye::clock::ManualClock;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CAMPAIGNS: &str = GENERIC;

const TOKEN: &str = "test-admin-token-0123456789abcdefghijk";

async fn call(
    bidder: &TestBidder,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = bidder.client.request(method, bidder.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn price(response: &Option<Value>) -> Option<f64> {
    response.as_ref()?["seatbid"][0]["bid"][0]["price"].as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_auth_stats_and_changes() {
    let config = write_config(TEST_SETTINGS, CAMPAIGNS, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    let get = reqwest::Method::GET;
    let patch = reqwest::Method::PATCH;

    for token in [None, Some("wrong"), Some("")] {
        let (status, body) = call(&bidder, get.clone(), "/admin/api/campaigns", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(body["error"].is_string());
    }
    let (status, list) = call(&bidder, get.clone(), "/admin/api/campaigns", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], "generic");
    assert_eq!(list[0]["max_bid"], "1");

    // Live stats: a billed impression shows as today's spend.
    let (_, response) = bidder.bid_json(&banner_request("someone", 0.0, json!({}))).await;
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.50");
    assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
    let (_, one) = call(&bidder, get.clone(), "/admin/api/campaigns/generic", Some(TOKEN), None).await;
    assert_eq!(one["today"]["spend_micros"], 500, "{one}");
    assert_eq!(
        one["today"]["outstanding"], "0",
        "the notice settled the reservation: {one}"
    );

    // Changes: validated, effective on the next request.
    for bad in [
        json!({"max_bid": "abc"}),
        json!({"max_bid": "-1"}),
        json!({"max_bid": 0}),
        json!({"daily_budget": "1.0000001"}),
        json!({"colour": "red"}),
        json!({"status": "sleeping"}),
        json!({}),
    ] {
        let (status, body) = call(
            &bidder,
            patch.clone(),
            "/admin/api/campaigns/generic",
            Some(TOKEN),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string());
    }
    let (status, _) = call(
        &bidder,
        patch.clone(),
        "/admin/api/campaigns/nope",
        Some(TOKEN),
        Some(json!({"max_bid": "2"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, updated) = call(
        &bidder,
        patch.clone(),
        "/admin/api/campaigns/generic",
        Some(TOKEN),
        Some(json!({"max_bid": "2.50", "daily_budget": "50"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["max_bid"].as_str(), updated["daily_budget"].as_str()),
        (Some("2.5"), Some("50"))
    );
    let (_, response) = bidder.bid_json(&banner_request("someone", 0.0, json!({}))).await;
    assert_eq!(price(&response), Some(2.5));
    let (status, _) = call(
        &bidder,
        patch.clone(),
        "/admin/api/campaigns/generic",
        Some(TOKEN),
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        bidder.bid_json(&banner_request("someone", 0.0, json!({}))).await.0,
        StatusCode::NO_CONTENT
    );
    bidder.stop().await;

    // Persisted across a restart; spend restored from the billing log.
    let bidder = spawn_bidder_in(config.path(), data.path(), clock, false).await;
    let (_, one) = call(&bidder, get.clone(), "/admin/api/campaigns/generic", Some(TOKEN), None).await;
    assert_eq!(
        (one["status"].as_str(), one["max_bid"].as_str()),
        (Some("paused"), Some("2.5")),
        "{one}"
    );
    assert_eq!(one["today"]["spend_micros"], 500, "{one}");
    let (status, _) = call(
        &bidder,
        patch,
        "/admin/api/campaigns/generic",
        Some(TOKEN),
        Some(json!({"status": "active"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, response) = bidder.bid_json(&banner_request("someone", 0.0, json!({}))).await;
    assert_eq!(price(&response), Some(2.5));
    bidder.stop().await;
}

/// Issue 17, item 19: an unreadable `overrides.json` at reload was taken
/// for "no overrides" (a paused campaign resumed) and the next PATCH wiped
/// every other override.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_overrides_file_keeps_the_last_good_state() {
    let config = write_config(TEST_SETTINGS, CAMPAIGNS, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock, false).await;
    let reloader = bidder.running.as_ref().unwrap().reloader.clone();
    let patch = reqwest::Method::PATCH;
    let path = "/admin/api/campaigns/generic";
    let (status, _) = call(
        &bidder,
        patch.clone(),
        path,
        Some(TOKEN),
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let saved = std::fs::read(data.path().join("overrides.json")).unwrap();
    std::fs::write(data.path().join("overrides.json"), b"{ torn").unwrap();
    let errors = reloader
        .reload_config()
        .expect_err("an unreadable overrides file is an error");
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].field, "overrides");
    let (_, campaign) = call(&bidder, reqwest::Method::GET, path, Some(TOKEN), None).await;
    assert_eq!(campaign["status"], "paused", "the last good state keeps serving");
    // A change now is refused rather than written over the others.
    let (status, _) = call(&bidder, patch, path, Some(TOKEN), Some(json!({"max_bid": "2.00"}))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(std::fs::read(data.path().join("overrides.json")).unwrap(), b"{ torn");
    assert!(!saved.is_empty());
    bidder.stop().await;
}
