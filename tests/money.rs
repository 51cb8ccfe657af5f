//! Money rules over HTTP: key rotation, any edit of a signed URL refused,
//! budgets reset at the campaign's local midnight, per-user click limits.

mod common;

use std::sync::Arc;

use bullseye::clock::ManualClock;
use bullseye::ledger::{EventKind, read_all};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CAMPAIGN: &str = r#"
[[campaign]]
id = "tokyo"
advertiser = "Tokyo-Tea"
adomain = ["tea.example"]
pricing = "cpm"
max_bid = "1000"
daily_budget = "3"
pacing = "asap"
time_zone = "Asia/Tokyo"
  [[campaign.creative]]
  id = "t1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.tea.example/a.png"
  landing_url = "https://tea.example/"
"#;

/// The campaign as CPC: 0.10 a click, a budget clicks cannot spend.
fn cpc_campaign() -> String {
    CAMPAIGN
        .replace(r#"pricing = "cpm""#, "pricing = \"cpc\"\npctr_prior = \"0.01\"")
        .replace(r#"max_bid = "1000""#, r#"max_bid = "0.10""#)
        .replace(r#"daily_budget = "3""#, r#"daily_budget = "1000""#)
}

async fn bid(bidder: &TestBidder, user: &str) -> Option<Value> {
    let (status, response) = bidder.bid_json(&banner_request(user, 0.0, json!({}))).await;
    (status == StatusCode::OK).then(|| response.unwrap()["seatbid"][0]["bid"][0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_single_character_change_of_a_signed_url_is_refused() {
    let (bidder, _clock) = spawn_test_bidder(CAMPAIGN, "u,a\n", "2026-11-24T00:00:00Z").await;
    let won = bid(&bidder, "someone").await.unwrap();
    let burl = won["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.5");
    let path = burl[burl.find("/t/").unwrap()..].to_string();
    let price_at = path.find("&price=").unwrap();
    let (mut refused, mut forbidden) = (0, 0);
    for i in 1..price_at {
        let original = path.as_bytes()[i];
        let replacement = if original == b'a' { b'b' } else { b'a' };
        let mut changed = path.clone().into_bytes();
        changed[i] = replacement;
        let changed = String::from_utf8(changed).unwrap();
        let status = bidder.get(&changed).await.status();
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
            "{changed}: {status}"
        );
        refused += 1;
        forbidden += usize::from(status == StatusCode::FORBIDDEN);
    }
    assert!(refused > 100);
    // Nothing was recorded; the genuine URL still works once.
    assert_eq!(bidder.get(&path).await.status(), StatusCode::NO_CONTENT);
    let metrics = bidder.metrics().await;
    assert_eq!(metric(&metrics, "bullseye_tracking_rejected_total"), forbidden as f64);
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_signing_key_is_accepted_during_a_rotation() {
    let dir = write_config(TEST_SETTINGS, CAMPAIGN, "u,a\n");
    let clock = Arc::new(ManualClock::new("2026-11-24T00:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_with(dir.path(), clock, false).await;
    let won = bid(&bidder, "someone").await.unwrap();
    let pixel = url_in_adm(&won, "/t/imp?");
    let click = url_in_adm(&won, "/t/click?");
    let settings = |key: &str, previous: &str| {
        TEST_SETTINGS.replace(
            r#"signing_key = "test-signing-key-0123456789abcdefghijkl""#,
            &format!("signing_key = \"{key}\"\n{previous}"),
        )
    };
    let reload = |text: String| {
        std::fs::write(dir.path().join("bullseye.toml"), text).unwrap();
        bidder.running.as_ref().unwrap().reloader.reload_config().unwrap();
    };
    reload(settings(
        "rotated-key-abcdefghijkl-0123456789abcdef",
        r#"previous_signing_key = "test-signing-key-0123456789abcdefghijkl""#,
    ));
    assert_eq!(
        bidder.get(&pixel).await.status(),
        StatusCode::OK,
        "old URL, previous key"
    );
    let fresh = bid(&bidder, "someone-else").await.unwrap();
    assert_eq!(
        bidder.get(&url_in_adm(&fresh, "/t/imp?")).await.status(),
        StatusCode::OK,
        "new URL, new key"
    );
    reload(settings("another-key-abcdefghijkl-0123456789abcdef", ""));
    assert_eq!(
        bidder.get(&click).await.status(),
        StatusCode::FORBIDDEN,
        "the retired key is refused"
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_budget_resets_at_midnight_in_the_campaign_time_zone() {
    // 14:00 UTC is 23:00 in Tokyo.
    let (bidder, clock) = spawn_test_bidder(CAMPAIGN, "u,a\n", "2026-11-24T14:00:00Z").await;
    // Each impression costs 1.00 (a 1000 CPM bid cleared at 1000): three
    // spend the $3 budget.
    for user in ["a", "b", "c"] {
        let won = bid(&bidder, user).await.expect("budget left");
        let burl = won["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "1000");
        assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
    }
    assert!(bid(&bidder, "d").await.is_none(), "budget spent");
    clock.set("2026-11-24T14:59:59Z".parse().unwrap());
    assert!(bid(&bidder, "e").await.is_none(), "23:59:59 in Tokyo: still spent");
    clock.set("2026-11-24T15:00:00Z".parse().unwrap());
    assert!(bid(&bidder, "f").await.is_some(), "midnight in Tokyo: a new day");
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_past_a_users_hourly_limit_are_not_billed() {
    let (mut bidder, clock) = spawn_test_bidder(&cpc_campaign(), "u,a\n", "2026-11-24T10:00:00Z").await;
    for _ in 0..12 {
        let won = bid(&bidder, "clicker").await.unwrap();
        assert_eq!(bidder.get(&url_in_adm(&won, "/t/imp?")).await.status(), StatusCode::OK);
        clock.advance(std::time::Duration::from_secs(2));
        assert_eq!(
            bidder.get(&url_in_adm(&won, "/t/click?")).await.status(),
            StatusCode::FOUND
        );
    }
    let dirs = std::mem::take(&mut bidder.dirs);
    let data = dirs[0].path().join("ledger");
    bidder.stop().await;
    let records = read_all(&data).unwrap();
    let reasons: Vec<Option<&str>> = records
        .iter()
        .filter(|r| r.event == EventKind::Click)
        .map(|r| r.filtered.as_deref())
        .collect();
    assert_eq!(reasons.iter().filter(|r| r.is_none()).count(), 10, "{reasons:?}");
    assert_eq!(
        reasons.iter().filter(|r| **r == Some("user_rate")).count(),
        2,
        "{reasons:?}"
    );
}

/// Issue 17, item 3: the sweeper used to clear every click count once a
/// minute, so the hourly limit let ~60× through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_limits_hold_for_the_whole_hour_across_sweeps() {
    let (mut bidder, clock) = spawn_test_bidder(&cpc_campaign(), "u,a\n", "2026-11-24T10:00:00Z").await;
    let app = bidder.running.as_ref().unwrap().app.clone();
    let click = async |bidder: &TestBidder| {
        let won = bid(bidder, "clicker").await.unwrap();
        assert_eq!(bidder.get(&url_in_adm(&won, "/t/imp?")).await.status(), StatusCode::OK);
        clock.advance(std::time::Duration::from_secs(2));
        assert_eq!(
            bidder.get(&url_in_adm(&won, "/t/click?")).await.status(),
            StatusCode::FOUND
        );
    };
    for _ in 0..10 {
        click(&bidder).await;
    }
    // Minutes pass inside the same hour, the sweeper runs after each.
    for _ in 0..3 {
        clock.advance(std::time::Duration::from_secs(120));
        app.tick(60);
        click(&bidder).await;
    }
    // The next hour starts afresh.
    clock.set("2026-11-24T11:00:05Z".parse().unwrap());
    app.tick(60);
    click(&bidder).await;
    let dirs = std::mem::take(&mut bidder.dirs);
    let data = dirs[0].path().join("ledger");
    bidder.stop().await;
    let reasons: Vec<Option<String>> = read_all(&data)
        .unwrap()
        .into_iter()
        .filter(|r| r.event == EventKind::Click)
        .map(|r| r.filtered)
        .collect();
    let mut expected = vec![None; 10];
    expected.extend([
        Some("user_rate".to_string()),
        Some("user_rate".into()),
        Some("user_rate".into()),
        None,
    ]);
    assert_eq!(reasons, expected);
}

/// Issue 17, item 5: `0`, `-0`, `1e-300` billed nothing yet used up the
/// bid's one billing; scientific notation and `+1` were taken; a
/// percent-encoded price was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_clearing_prices_are_refused_without_using_up_the_billing() {
    let (mut bidder, _clock) = spawn_test_bidder(CAMPAIGN, "u,a\n", "2026-11-24T00:00:00Z").await;
    let won = bid(&bidder, "someone").await.unwrap();
    let burl = won["burl"].as_str().unwrap().to_string();
    for bad in ["0", "-0", "1e-300", "1e2", "+1", "0.0000001", "%2D1"] {
        let answer = bidder.get(&burl.replace("${AUCTION_PRICE}", bad)).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "price {bad}");
    }
    // Percent-encoded `2.5`: taken, and billed (2.5 CPM = 2500 micros).
    let answer = bidder.get(&burl.replace("${AUCTION_PRICE}", "2%2E5")).await;
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    let dirs = std::mem::take(&mut bidder.dirs);
    let ledger = dirs[0].path().join("ledger");
    bidder.stop().await;
    let charges: Vec<(EventKind, i64, Option<i64>)> = read_all(&ledger)
        .unwrap()
        .into_iter()
        .map(|r| (r.event, r.charge, r.clearing))
        .collect();
    assert_eq!(charges, [(EventKind::Bill, 2_500, Some(2_500_000))]);
}

/// Issue 17, item 6: a floor of 1e13 or -5 was taken for "no floor", and
/// bids went out against both; a floor of the wrong type rejected the
/// whole request. (A numeric string such as `"0.5"` is coerced since issue
/// 13's tolerant decoding: see tests/decoding.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_floors_mean_no_bid_for_their_impression() {
    let (bidder, _clock) = spawn_test_bidder(GENERIC, "u,a\n", "2026-11-24T00:00:00Z").await;
    for floor in [
        json!(1e13),
        json!(-5),
        json!(-0.000001),
        json!("half"),
        json!(true),
        json!({"v": 1}),
    ] {
        let mut request = banner_request("u", 0.0, json!({}));
        request["imp"][0]["bidfloor"] = floor.clone();
        let (status, _) = bidder.bid_json(&request).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "floor {floor}");
    }
    // Two impressions, one with a broken floor: the other still gets its bid.
    let mut request = banner_request("u", 0.0, json!({}));
    request["imp"] = json!([
        {"id": "1", "bidfloor": -5, "banner": {"w": 300, "h": 250}},
        {"id": "2", "bidfloor": 0.5, "banner": {"w": 300, "h": 250}}
    ]);
    let (status, response) = bidder.bid_json(&request).await;
    assert_eq!(status, StatusCode::OK);
    let bids = response.unwrap()["seatbid"][0]["bid"].clone();
    assert_eq!(bids.as_array().unwrap().len(), 1);
    assert_eq!(bids[0]["impid"], "2");
    let metrics = bidder.metrics().await;
    assert_eq!(
        metric(&metrics, r#"bullseye_no_bids_total{reason="invalid_floor",code="2"}"#),
        6.0
    );
    bidder.stop().await;
}

/// Issue 15: at first price the clearing price is the bid, so a click
/// charged `max_cpc × clearing / bid` cost the max CPC whatever the
/// shading saved. A shaded bid signs its unshaded value (`w`), and its
/// click is charged `max_cpc × clearing / value`: 0.10 × 0.80 / 1.00 here
/// (value 0.10 × 1 % per mille = 1.00 CPM, shaded by the fixed 0.80). An
/// unshaded second-price bid carries no value and is charged as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shaded_first_price_cpc_click_is_charged_max_cpc_times_clearing_over_value() {
    let (mut bidder, clock) = spawn_test_bidder(&cpc_campaign(), "u,a\n", "2026-11-24T10:00:00Z").await;
    let mut clicked = Vec::new();
    for (user, at, clearing) in [("first", 1, None), ("second", 2, Some("0.50"))] {
        let request = banner_request(user, 0.0, json!({ "at": at }));
        let (status, response) = bidder.bid_json(&request).await;
        assert_eq!(status, StatusCode::OK);
        let won = response.unwrap()["seatbid"][0]["bid"][0].clone();
        let price = won["price"].as_f64().unwrap();
        let click = url_in_adm(&won, "/t/click?");
        clicked.push((price, click.contains("&w=1000000&")));
        let clearing = clearing.map_or(format!("{price}"), str::to_string);
        let burl = won["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", &clearing);
        assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
        clock.advance(std::time::Duration::from_secs(2));
        assert_eq!(bidder.get(&click).await.status(), StatusCode::FOUND);
    }
    assert_eq!(
        clicked,
        [(0.8, true), (1.0, false)],
        "shaded and signed; unshaded, none"
    );
    let dirs = std::mem::take(&mut bidder.dirs);
    let ledger = dirs[0].path().join("ledger");
    bidder.stop().await;
    let charges: Vec<(i64, Option<i64>)> = read_all(&ledger)
        .unwrap()
        .into_iter()
        .filter(|r| r.event == EventKind::Click)
        .map(|r| (r.charge, r.clearing))
        .collect();
    // 0.10 × 0.80 / 1.00 (the value; was 0.10 × 0.80 / 0.80 = 0.10), then
    // 0.10 × 0.50 / 1.00 (the bid, as before).
    assert_eq!(
        charges.iter().map(|c| c.0).collect::<Vec<_>>(),
        [80_000, 50_000],
        "{charges:?}"
    );
}
