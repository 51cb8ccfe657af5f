//! Lifetime budgets (issue 16): `total_budget` holds across days and
//! restarts, lifetime spend is restored from the billing log's rollups and
//! spend checkpoint, and a campaign without a daily budget gets one derived
//! from its total and its end date — spoken to over HTTP on a real server
//! with a simulated clock.

mod common;

use std::path::Path;
use std::sync::Arc;

use bullseye::campaigns::Pricing;
use bullseye::clock::ManualClock;
use bullseye::ledger::{EventKind, Ledger, Record, rollup};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A 2.00 CPM campaign (each impression reserves and costs 0.002) with the
/// budget lines `budget`.
fn campaign(id: &str, budget: &str) -> String {
    format!(
        r#"
[[campaign]]
id = "{id}"
advertiser = "Shop"
adomain = ["shop.example"]
pricing = "cpm"
max_bid = "2.00"
pacing = "asap"
{budget}
  [[campaign.creative]]
  id = "s1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.shop.example/a.png"
  landing_url = "https://shop.example/"
"#
    )
}

/// Bids for a new user and, when it wins, bills the bid at its price
/// (2.00: a charge of 0.002). The winning campaign, if any.
async fn bid_and_bill(bidder: &TestBidder, user: &str) -> Option<String> {
    let (_, response) = bidder.bid_json(&banner_request(user, 0.0, json!({}))).await;
    let winner = winner(&response)?;
    let bid = &response.as_ref()?["seatbid"][0]["bid"][0];
    assert_eq!(bid["price"], json!(2.0));
    let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "2.00");
    assert!(bidder.get(&burl).await.status().is_success());
    Some(winner)
}

/// How many of `n` bid-and-bill rounds won.
async fn wins(bidder: &TestBidder, prefix: &str, n: usize) -> usize {
    let mut won = 0;
    for i in 0..n {
        won += usize::from(bid_and_bill(bidder, &format!("{prefix}-{i}")).await.is_some());
    }
    won
}

/// The campaign's live figures from the admin API.
async fn live(bidder: &TestBidder, id: &str) -> Value {
    let response = bidder
        .admin(Method::GET, &format!("/admin/api/campaigns/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["live"].clone()
}

/// (today's budget, today's spend, lifetime spend) as the API shows them.
async fn budgets(bidder: &TestBidder, id: &str) -> (String, String, String) {
    let live = live(bidder, id).await;
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    (
        text(&live["today"]["budget"]),
        text(&live["today"]["spend"]),
        text(&live["lifetime"]["spend"]),
    )
}

fn owned(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifetime_budget_holds_across_a_day_boundary_and_a_restart() {
    let config = write_config(
        TEST_SETTINGS,
        &campaign("lifetime", "daily_budget = \"0.006\"\ntotal_budget = \"0.010\""),
        "u,a\n",
    );
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T20:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;

    // Day one: the daily budget binds (three impressions of 0.002).
    assert_eq!(wins(&bidder, "one", 5).await, 3);
    assert_eq!(budgets(&bidder, "lifetime").await, owned("0.006", "0.006", "0.006"));

    // Day two: 0.004 of the total is left, less than the daily budget.
    clock.set("2026-11-25T09:00:00Z".parse().unwrap());
    assert_eq!(budgets(&bidder, "lifetime").await, owned("0.004", "0", "0.006"));
    assert_eq!(wins(&bidder, "two", 5).await, 2);
    assert_eq!(budgets(&bidder, "lifetime").await, owned("0.004", "0.004", "0.01"));
    assert_eq!(live(&bidder, "lifetime").await["lifetime"]["budget_left"], "0");
    bidder.stop().await;

    // Day three, after a restart: day one's records are past the 24 hours
    // that a restart replays, and still count.
    clock.set("2026-11-26T09:00:00Z".parse().unwrap());
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    assert_eq!(budgets(&bidder, "lifetime").await, owned("0", "0", "0.01"));
    assert_eq!(wins(&bidder, "three", 3).await, 0);
    bidder.stop().await;
}

/// A billed impression of `campaign` at `at` (Unix micros), charged `charge`.
fn bill(campaign: &str, bid: String, at: i64, charge: i64) -> Record {
    Record {
        at,
        event: EventKind::Bill,
        bid,
        campaign: campaign.into(),
        creative: "s1".into(),
        exchange: "default".into(),
        clearing: Some(2_000_000),
        charge,
        billed: true,
        filtered: None,
        test: false,
        user: 0,
        pricing: Pricing::Cpm,
        value: None,
        order: None,
        domain: String::new(),
        country: String::new(),
        device: 0,
        utc_offset: Some(0),
        counts: None,
        arm: None,
    }
}

const DAY: i64 = 86_400_000_000;

/// Writes the campaign's history: 0.003 ten days ago, 0.002 five days ago
/// and 0.001 yesterday.
async fn write_history(ledger_dir: &Path, campaign: &str, now: i64) {
    let (ledger, _) = Ledger::open(ledger_dir).unwrap();
    for (days_ago, charges) in [(10, &[1_500, 1_500][..]), (5, &[2_000]), (1, &[1_000])] {
        for (i, charge) in charges.iter().enumerate() {
            let record = bill(campaign, format!("old-{days_ago}-{i}"), now - days_ago * DAY, *charge);
            ledger.append(&record).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifetime_spend_is_restored_from_the_rollups_and_the_spend_checkpoint() {
    let now: jiff::Timestamp = "2026-11-24T12:00:00Z".parse().unwrap();
    let config = write_config(
        TEST_SETTINGS,
        &campaign("lifetime", "daily_budget = \"0.005\"\ntotal_budget = \"0.010\""),
        "u,a\n",
    );
    let data = tempfile::tempdir().unwrap();
    let ledger_dir = data.path().join("ledger");
    write_history(&ledger_dir, "lifetime", now.as_microsecond()).await;

    // Before any maintenance: the old days are read from their raw files.
    let clock = Arc::new(ManualClock::new(now));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    assert_eq!(budgets(&bidder, "lifetime").await, owned("0.004", "0", "0.006"));
    bidder.stop().await;

    // Closed days rolled up, raw files past three days deleted, and a spend
    // checkpoint written through yesterday. With the old days' rollups gone
    // too, the checkpoint is all that is left of them.
    let done = rollup::maintain(&ledger_dir, "2026-11-24", 3).unwrap();
    assert_eq!((done.rolled_up, done.deleted, done.checkpointed), (3, 2, true));
    assert!(rollup::spend_checkpoint_path(&ledger_dir, "2026-11-23").exists());
    for date in ["2026-11-14", "2026-11-19"] {
        std::fs::remove_file(rollup::rollup_path(&ledger_dir, date)).unwrap();
    }
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    assert_eq!(budgets(&bidder, "lifetime").await, owned("0.004", "0", "0.006"));
    assert_eq!(wins(&bidder, "today", 4).await, 2);
    bidder.stop().await;

    // A restart the next day: the checkpoint, yesterday's raw file and
    // today's — 0.010 in all, nothing left.
    clock.set("2026-11-25T08:00:00Z".parse().unwrap());
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    assert_eq!(budgets(&bidder, "lifetime").await, owned("0", "0", "0.01"));
    assert_eq!(wins(&bidder, "tomorrow", 2).await, 0);
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_daily_budget_each_day_gets_what_is_left_spread_over_the_days_left() {
    // Five days, 24 to 28 November, 0.010 in all.
    let flight = campaign(
        "flight",
        "total_budget = \"0.010\"\nstart = \"2026-11-24\"\nend = \"2026-11-28\"",
    );
    let (bidder, clock) = spawn_test_bidder(&flight, "u,a\n", "2026-11-24T10:00:00Z").await;
    assert_eq!(live(&bidder, "flight").await["today"]["budget"], "0.002");
    assert_eq!(wins(&bidder, "first", 3).await, 1);

    // Day three (nothing spent on day two): 0.008 over three days, rounded
    // down to the micro. Bidding stops once spend and reservations reach
    // it: the second impression goes over by less than its price.
    clock.set("2026-11-26T10:00:00Z".parse().unwrap());
    assert_eq!(live(&bidder, "flight").await["today"]["budget"], "0.002666");
    assert_eq!(wins(&bidder, "third", 4).await, 2);

    // Day four: 0.004 over two days; the last day gets all that is left.
    clock.set("2026-11-27T10:00:00Z".parse().unwrap());
    assert_eq!(live(&bidder, "flight").await["today"]["budget"], "0.002");
    assert_eq!(wins(&bidder, "fourth", 1).await, 1);
    clock.set("2026-11-28T23:00:00Z".parse().unwrap());
    assert_eq!(live(&bidder, "flight").await["today"]["budget"], "0.002");
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_without_a_daily_budget_is_refused_unless_it_has_a_total_budget_and_an_end() {
    let (bidder, _clock) = spawn_test_bidder(GENERIC, "u,a\n", "2026-11-24T10:00:00Z").await;
    let new = |extra: Value| {
        let mut campaign = json!({
            "id": "derived",
            "advertiser": "Shop",
            "pricing": "cpm",
            "max_bid": "2",
            "creative": [{
                "id": "d1", "format": "banner", "w": 300, "h": 250,
                "image_url": "https://cdn.shop.example/d.png",
                "landing_url": "https://shop.example/",
            }],
        });
        merge(&mut campaign, extra);
        campaign
    };
    let why =
        "required unless the campaign has both total_budget and end (then each day's budget is derived from them)";
    for extra in [json!({}), json!({"total_budget": "70"}), json!({"end": "2026-11-30"})] {
        let response = bidder
            .admin(Method::POST, "/admin/api/campaigns")
            .json(&new(extra.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{extra}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["problems"],
            json!([{"field": "daily_budget", "why": why}]),
            "{extra}"
        );
    }
    // 70 over the seven days from 24 to 30 November.
    let response = bidder
        .admin(Method::POST, "/admin/api/campaigns")
        .json(&new(json!({"total_budget": "70", "end": "2026-11-30"})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["live"]["today"]["budget"], "10", "{created}");
    assert_eq!(created["live"]["lifetime"]["budget"], "70");
    assert!(
        created.get("daily_budget").is_none(),
        "nothing invented in the file: {created}"
    );
    bidder.stop().await;
}
