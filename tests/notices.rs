//! Issue 17, items 1 and 2: a budget reservation lives exactly as long as
//! its notice can be charged, late notices are recorded but not charged,
//! CPC clicks stop being charged once the day's budget is spent, and a
//! notice is billed from what its URL carries even after its campaign or
//! creative has changed or gone.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bullseye::clock::ManualClock;
use bullseye::ledger::{EventKind, read_all};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn bid(bidder: &TestBidder, user: &str, extra: Value) -> Option<Value> {
    let (status, response) = bidder.bid_json(&banner_request(user, 0.0, extra)).await;
    (status == StatusCode::OK).then(|| response.unwrap()["seatbid"][0]["bid"][0].clone())
}

fn burl(bid: &Value) -> String {
    bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "3.5")
}

/// (charge, not-billed reason) of each billing record, in order.
fn bills(ledger: &std::path::Path) -> Vec<(i64, Option<String>)> {
    read_all(ledger)
        .unwrap()
        .into_iter()
        .filter(|r| r.event == EventKind::Bill)
        .map(|r| (r.charge, r.filtered))
        .collect()
}

/// The audit's reproduction: three bids reserved, eleven minutes, three
/// more bids, then all six notices: 2.1× the budget was spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_notices_cannot_overspend_a_budget() {
    let (mut bidder, clock) = spawn_test_bidder(SMALL, "u,a\n", "2026-11-24T10:00:00Z").await;
    let app = bidder.running.as_ref().unwrap().app.clone();
    let mut first = Vec::new();
    for user in ["a", "b", "c"] {
        first.push(bid(&bidder, user, json!({})).await.expect("budget left"));
    }
    assert!(bid(&bidder, "d", json!({})).await.is_none(), "all held");
    // Eleven minutes: the reservations still hold (15-minute window).
    clock.advance(Duration::from_secs(11 * 60));
    app.tick(1);
    assert!(bid(&bidder, "e", json!({})).await.is_none(), "still held at 11 minutes");
    // Past the window: they expire, and their notices can no longer charge.
    clock.advance(Duration::from_secs(5 * 60));
    app.tick(1);
    let mut second = Vec::new();
    for user in ["f", "g", "h"] {
        second.push(bid(&bidder, user, json!({})).await.expect("budget free again"));
    }
    for won in first.iter().chain(&second) {
        assert_eq!(bidder.get(&burl(won)).await.status(), StatusCode::NO_CONTENT);
    }
    let dirs = std::mem::take(&mut bidder.dirs);
    let ledger = dirs[0].path().join("ledger");
    bidder.stop().await;
    let late = (0, Some("late".to_string()));
    assert_eq!(
        bills(&ledger),
        [
            late.clone(),
            late.clone(),
            late,
            (3_500, None),
            (3_500, None),
            (3_500, None)
        ]
    );
    let rows = bullseye::ledger::report::query(&[ledger.parent().unwrap().to_path_buf()], &Default::default()).unwrap();
    // 10,500: within the budget (10,000) plus one impression (3,500).
    assert_eq!((rows[0].late_notices, rows[0].spend_micros), (3, 10_500));
}

/// `imp.exp` shortens the window: a notice after it is late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imp_exp_shortens_the_notice_window() {
    let (mut bidder, clock) = spawn_test_bidder(SMALL, "u,a\n", "2026-11-24T10:00:00Z").await;
    let app = bidder.running.as_ref().unwrap().app.clone();
    let mut request = banner_request("a", 0.0, json!({}));
    request["imp"][0]["exp"] = json!(120);
    let (_, response) = bidder.bid_json(&request).await;
    let won = response.unwrap()["seatbid"][0]["bid"][0].clone();
    clock.advance(Duration::from_secs(121));
    app.tick(1);
    assert_eq!(bidder.get(&burl(&won)).await.status(), StatusCode::NO_CONTENT);
    // Its reservation has gone too: the budget takes two more bids.
    clock.advance(Duration::from_secs(60));
    app.tick(1);
    assert!(bid(&bidder, "b", json!({})).await.is_some());
    let dirs = std::mem::take(&mut bidder.dirs);
    let ledger = dirs[0].path().join("ledger");
    bidder.stop().await;
    assert_eq!(bills(&ledger), [(0, Some("late".to_string()))]);
}

/// A notice for a creative renamed, or a campaign removed, by a hot reload
/// was answered 404 and lost: the exchange charged us, the advertiser was
/// never billed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_are_billed_after_their_campaign_changed_or_went() {
    let config = write_config(TEST_SETTINGS, &large_budget(), "u,a\n");
    let clock = Arc::new(ManualClock::new("2026-11-24T10:00:00Z".parse().unwrap()));
    let mut bidder = spawn_bidder_with(config.path(), clock, false).await;
    let reloader = bidder.running.as_ref().unwrap().reloader.clone();
    let renamed = bid(&bidder, "a", json!({})).await.unwrap();
    let removed = bid(&bidder, "b", json!({})).await.unwrap();
    let campaigns = config.path().join("campaigns/test.toml");
    std::fs::write(&campaigns, large_budget().replace(r#"id = "g1""#, r#"id = "g2""#)).unwrap();
    reloader.reload_config().unwrap();
    let renamed_bill = renamed["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.5");
    assert_eq!(bidder.get(&renamed_bill).await.status(), StatusCode::NO_CONTENT);
    // The campaign goes altogether (another takes its place).
    std::fs::write(&campaigns, GENERIC.replace(r#"id = "generic""#, r#"id = "other""#)).unwrap();
    reloader.reload_config().unwrap();
    let removed_bill = removed["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.8");
    assert_eq!(bidder.get(&removed_bill).await.status(), StatusCode::NO_CONTENT);
    // Its click has no landing page any more: not a visit, not billed.
    assert_eq!(
        bidder.get(&url_in_adm(&removed, "/t/click?")).await.status(),
        StatusCode::NOT_FOUND
    );
    let dirs = std::mem::take(&mut bidder.dirs);
    let ledger = dirs[0].path().join("ledger");
    bidder.stop().await;
    let charges: Vec<(String, String, i64)> = read_all(&ledger)
        .unwrap()
        .into_iter()
        .map(|r| (r.campaign, r.creative, r.charge))
        .collect();
    assert_eq!(
        charges,
        [
            ("generic".to_string(), "g1".to_string(), 500),
            ("generic".to_string(), "g1".to_string(), 800)
        ]
    );
}

/// CPC clicks were never reserved: once the day's budget is spent, a
/// click is recorded but not charged, so spend stays within the budget plus
/// one click's charge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpc_clicks_stop_charging_at_the_budget() {
    let cpc = GENERIC
        .replace(
            r#"pricing = "cpm""#,
            "pricing = \"cpc\"\npctr_prior = \"0.05\"\npacing = \"asap\"",
        )
        .replace(r#"max_bid = "1.00""#, r#"max_bid = "0.40""#)
        .replace(r#"daily_budget = "100""#, r#"daily_budget = "1""#);
    let (mut bidder, clock) = spawn_test_bidder(&cpc, "u,a\n", "2026-11-24T10:00:00Z").await;
    let mut won = Vec::new();
    for i in 0..6 {
        let bid = bid(&bidder, &format!("user-{i}"), json!({})).await.expect("a bid");
        assert_eq!(bidder.get(&url_in_adm(&bid, "/t/imp?")).await.status(), StatusCode::OK);
        won.push(bid);
    }
    clock.advance(Duration::from_secs(5));
    for bid in &won {
        assert_eq!(
            bidder.get(&url_in_adm(bid, "/t/click?")).await.status(),
            StatusCode::FOUND
        );
    }
    let dirs = std::mem::take(&mut bidder.dirs);
    let ledger = dirs[0].path().join("ledger");
    bidder.stop().await;
    let clicks: Vec<(i64, Option<String>)> = read_all(&ledger)
        .unwrap()
        .into_iter()
        .filter(|r| r.event == EventKind::Click)
        .map(|r| (r.charge, r.filtered))
        .collect();
    // Each click costs 0.40 (no clearing price: the max CPC); a budget of
    // 1.00 takes three (the third goes over by 0.20), then none.
    let spent = (400_000, None);
    let refused = (0, Some("budget_spent".to_string()));
    assert_eq!(
        clicks,
        [
            spent.clone(),
            spent.clone(),
            spent,
            refused.clone(),
            refused.clone(),
            refused
        ]
    );
}
