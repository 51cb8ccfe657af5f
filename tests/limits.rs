//! Issue 17, items 7 and 15: max bids are capped in the admin API as in the
//! config; a request is bid on for its first `max_imps_per_request`
//! impressions only, and one request cannot hold more than a twentieth of a
//! campaign's daily budget.

mod common;

use std::sync::Arc;

use bullseye::clock::ManualClock;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn many_imps(count: usize) -> Value {
    let imps: Vec<Value> = (0..count)
        .map(|i| json!({"id": i.to_string(), "banner": {"w": 300, "h": 250}}))
        .collect();
    let mut request = banner_request("u", 0.0, json!({}));
    request["imp"] = Value::Array(imps);
    request
}

fn bid_count(response: &Option<Value>) -> usize {
    response.as_ref().map_or(0, |r| {
        r["seatbid"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["bid"].as_array().unwrap().len())
            .sum()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_bid_on_for_its_first_impressions_only() {
    let settings = TEST_SETTINGS.replace("[bidding]", "[bidding]\nmax_imps_per_request = 5");
    let dir = write_config(&settings, &large_budget(), "u,a\n");
    let clock = Arc::new(ManualClock::new("2026-11-24T10:00:00Z".parse().unwrap()));
    let mut bidder = spawn_bidder_with(dir.path(), clock, false).await;
    bidder.dirs.push(dir);
    let (status, response) = bidder.bid_json(&many_imps(8)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bid_count(&response), 5);
    let impids: Vec<String> = response.unwrap()["seatbid"][0]["bid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["impid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(impids, ["0", "1", "2", "3", "4"]);
    assert_eq!(metric(&bidder.metrics().await, "bullseye_imps_ignored_total"), 3.0);
    bidder.stop().await;
}

/// 6,000 matching impressions made 6,000 reservations that starved a 50.00
/// budget: one request holds a twentieth of a budget at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_holds_a_twentieth_of_a_budget_at_most() {
    // 1.00 CPM: 0.001 an impression; a budget of 0.10 lets a request hold
    // 0.005, five impressions.
    let campaign = GENERIC.replace(r#"daily_budget = "100""#, "daily_budget = \"0.10\"\npacing = \"asap\"");
    let (bidder, _clock) = spawn_test_bidder(&campaign, "u,a\n", "2026-11-24T10:00:00Z").await;
    let (status, response) = bidder.bid_json(&many_imps(40)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bid_count(&response), 5);
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_max_bids_above_the_caps() {
    let (bidder, _clock) = spawn_test_bidder(GENERIC, "u,a\n", "2026-11-24T10:00:00Z").await;
    let patch = |max_bid: &str| {
        bidder
            .client
            .patch(bidder.admin_url("/admin/api/campaigns/generic"))
            .bearer_auth("test-admin-token-0123456789abcdefghijk")
            .body(json!({ "max_bid": max_bid }).to_string())
            .send()
    };
    let refused = patch("1000.01").await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["problems"],
        json!([{"field": "max_bid", "why": "above the cap of 1000 (bidding.max_cpm_cap)"}])
    );
    assert_eq!(patch("1000").await.unwrap().status(), StatusCode::OK);
    bidder.stop().await;
}

/// Issue 17, item 18: the dedup set was bounded by time only. At its bound
/// a new notice is refused with 503 (the exchange retries; shedding it
/// could bill twice) and the alert metric says so (the health check does
/// not fail: see `server::routes::health`); duplicates are still
/// recognised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_dedup_bound_new_notices_are_refused_and_alerted() {
    let settings = format!("{TEST_SETTINGS}\n[tracking]\nmax_dedup_entries = 2\n");
    let dir = write_config(&settings, &large_budget(), "u,a\n");
    let clock = Arc::new(ManualClock::new("2026-11-24T10:00:00Z".parse().unwrap()));
    let mut bidder = spawn_bidder_with(dir.path(), clock, false).await;
    bidder.dirs.push(dir);
    let app = bidder.running.as_ref().unwrap().app.clone();
    let mut burls = Vec::new();
    for user in ["a", "b", "c"] {
        let (_, response) = bidder.bid_json(&banner_request(user, 0.0, json!({}))).await;
        let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
        burls.push(bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.5"));
    }
    assert_eq!(bidder.get(&burls[0]).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(bidder.get(&burls[1]).await.status(), StatusCode::NO_CONTENT);
    let refused = bidder.get(&burls[2]).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        bidder.get(&burls[0]).await.status(),
        StatusCode::NO_CONTENT,
        "a duplicate"
    );
    assert_eq!(
        bidder.get("/healthz").await.status(),
        StatusCode::OK,
        "the bound is an alert, not a failed health check (it would take the bids away too)"
    );
    app.tick(1);
    let metrics = bidder.metrics().await;
    assert_eq!(metric(&metrics, "bullseye_dedup_at_capacity"), 1.0);
    assert_eq!(metric(&metrics, "bullseye_dedup_entries"), 2.0);
    assert_eq!(metric(&metrics, "bullseye_dedup_refused_total"), 1.0);
    // Two claims (a key and two words), their bids' counted bits and
    // settled reservations (a key and a word each), in hash tables of at
    // least 4 slots, with a control byte per slot and 16 more per table:
    // one table per kind if both bids fall in the same shard, two if not.
    let bytes = metric(&metrics, "bullseye_dedup_bytes");
    let one_table_each = f64::from(4 * (24 + 16 + 16) + 3 * (4 + 16));
    assert!((one_table_each..=2.0 * one_table_each).contains(&bytes), "{bytes}");
    bidder.stop().await;
}
