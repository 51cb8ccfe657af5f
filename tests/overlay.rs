//! The real-time audience overlay through the admin API: a user joins a
//! segment now and is targeted on the next request; privacy rules still
//! apply; removals and expiry take effect.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "test-admin-token-0123456789abcdefghijk";

fn campaigns() -> String {
    format!(
        "{GENERIC}{}",
        r#"
[[campaign]]
id = "retarget"
advertiser = "Shoes"
adomain = ["shoes.example"]
pricing = "cpm"
max_bid = "5.00"
daily_budget = "100"
  [campaign.targeting.segments]
  any = ["retarget/shoes"]
  [[campaign.creative]]
  id = "r1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.shoes.example/a.png"
  landing_url = "https://shoes.example/"
"#
    )
}

async fn change(bidder: &TestBidder, user: &str, body: Value, token: &str) -> (StatusCode, Value) {
    let response = bidder
        .client
        .post(bidder.admin_url(&format!("/admin/api/audience/users/{user}")))
        .bearer_auth(token)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn winner_of(bidder: &TestBidder, request: Value) -> Option<String> {
    winner(&bidder.bid_json(&request).await.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_joins_a_segment_now_and_is_targeted_on_the_next_request() {
    let (bidder, clock) = spawn_test_bidder(&campaigns(), "someone,rfm/gold\n", "2026-11-24T12:00:00Z").await;
    let request = || banner_request("walker", 0.0, json!({}));
    assert_eq!(winner_of(&bidder, request()).await.as_deref(), Some("generic"));

    assert_eq!(
        change(&bidder, "walker", json!({"add": ["retarget/shoes/red"]}), "wrong")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    for bad in [
        json!({"add": ["not a path"]}),
        json!({}),
        json!({"add": ["a/b"], "ttl_seconds": 0}),
        json!({"nope": 1}),
    ] {
        assert_eq!(
            change(&bidder, "walker", bad.clone(), TOKEN).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let (status, view) = change(
        &bidder,
        "walker",
        json!({"add": ["retarget/shoes/red"], "ttl_seconds": 600}),
        TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["overlay"]["added"][0]["segment"], "retarget/shoes/red");
    assert_eq!(
        winner_of(&bidder, request()).await.as_deref(),
        Some("retarget"),
        "the child segment matches the parent rule"
    );

    // Privacy applies to overlay segments like any other personal data.
    let coppa = banner_request("walker", 0.0, json!({"regs": {"coppa": 1}}));
    assert_eq!(winner_of(&bidder, coppa).await.as_deref(), Some("generic"));

    // Expiry.
    clock.advance(std::time::Duration::from_secs(601));
    assert_eq!(winner_of(&bidder, request()).await.as_deref(), Some("generic"));

    // Removal hides a snapshot segment too.
    change(&bidder, "walker", json!({"add": ["retarget/shoes"]}), TOKEN).await;
    assert_eq!(winner_of(&bidder, request()).await.as_deref(), Some("retarget"));
    let (_, view) = change(&bidder, "walker", json!({"remove": ["retarget"]}), TOKEN).await;
    assert_eq!(view["overlay"]["removed"][0]["segment"], "retarget", "{view}");
    assert_eq!(winner_of(&bidder, request()).await.as_deref(), Some("generic"));
    let shown = bidder
        .client
        .get(bidder.admin_url("/admin/api/audience/users/someone"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let shown: Value = shown.json().await.unwrap();
    assert_eq!(shown["snapshot"], json!(["rfm/gold"]));
    bidder.stop().await;
}
