//! Notices are recorded once, durably, with the right charge, and survive a
//! restart (spend and deduplication restored from the billing log).

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

mod common;

use std::sync::Arc;

use bullseye::clock::Clock;
use bullseye::clock::ManualClock;
use bullseye::ledger::{EventKind, read_all};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CAMPAIGNS: &str = GENERIC;

fn pixel(bid: &Value) -> String {
    url_in_adm(bid, "/t/imp?")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_are_recorded_once_and_survive_a_restart() {
    let config = write_config(TEST_SETTINGS, CAMPAIGNS, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;

    let (status, response) = bidder.bid_json(&banner_request("someone", 0.0, json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.80");
    let nurl = bid["nurl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.80");
    for url in [&burl, &burl, &nurl, &nurl, &pixel(&bid), &pixel(&bid)] {
        let status = bidder.get(url).await.status();
        assert!(
            status == StatusCode::NO_CONTENT || status == StatusCode::OK,
            "{url}: {status}"
        );
    }
    // Test requests are answered and recorded, never billed.
    let (_, test) = bidder
        .bid_json(&banner_request("someone", 0.0, json!({"test": 1})))
        .await;
    let test_burl = test.unwrap()["seatbid"][0]["bid"][0]["burl"]
        .as_str()
        .unwrap()
        .replace("${AUCTION_PRICE}", "0.80");
    assert_eq!(bidder.get(&test_burl).await.status(), StatusCode::NO_CONTENT);
    bidder.stop().await;

    let records = read_all(&data.path().join("ledger")).unwrap();
    let count = |kind| records.iter().filter(|r| r.event == kind).count();
    assert_eq!(
        (
            count(EventKind::Bill),
            count(EventKind::Win),
            count(EventKind::Impression)
        ),
        (2, 1, 1)
    );
    let billed: Vec<_> = records.iter().filter(|r| r.billed).collect();
    assert_eq!(billed.len(), 1, "{records:?}");
    // 0.80 CPM = 0.0008 per impression = 800 micros.
    assert_eq!((billed[0].charge, billed[0].clearing), (800, Some(800_000)));
    assert!(records.iter().any(|r| r.test && !r.billed));

    // The report, through the CLI, matches what was acknowledged.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bullseye"))
        .args(["report", "--format", "json", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows: Value = serde_json::from_slice(&output.stdout).unwrap();
    let row = &rows[0];
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(
        (row["campaign"].as_str(), row["date"].as_str(), row["pricing"].as_str()),
        (Some("generic"), Some("2026-11-24"), Some("cpm"))
    );
    let counts: Vec<i64> = [
        "bids",
        "wins",
        "impressions",
        "clicks",
        "filtered_clicks",
        "conversions",
        "spend_micros",
    ]
    .iter()
    .map(|k| row[k].as_i64().unwrap())
    .collect();
    assert_eq!(counts, [1, 1, 1, 0, 0, 0, 800], "{row}");

    // After a restart, the same notice is still a duplicate.
    let bidder = spawn_bidder_in(config.path(), data.path(), clock, false).await;
    let path = &burl[burl.find("/t/").unwrap()..];
    assert_eq!(bidder.get(path).await.status(), StatusCode::NO_CONTENT);
    bidder.stop().await;
    let records = read_all(&data.path().join("ledger")).unwrap();
    assert_eq!(records.iter().filter(|r| r.event == EventKind::Bill).count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bids_and_notices_never_overspend_by_more_than_one_impression() {
    // $1 per impression (the 1000 CPM cap) against a $100 budget: 100
    // impressions.
    let campaigns = CAMPAIGNS.replace(r#"max_bid = "1.00""#, r#"max_bid = "1000""#);
    let config = write_config(TEST_SETTINGS, &campaigns, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let bidder = Arc::new(spawn_bidder_in(config.path(), data.path(), clock, false).await);
    let mut clients = Vec::new();
    for client in 0..64 {
        let bidder = bidder.clone();
        clients.push(tokio::spawn(async move {
            let mut won = 0;
            for round in 0..20 {
                let request = banner_request(&format!("user-{client}-{round}"), 0.0, json!({}));
                let (status, response) = bidder.bid_json(&request).await;
                if status != StatusCode::OK {
                    continue;
                }
                let bid = &response.unwrap()["seatbid"][0]["bid"][0];
                let price = bid["price"].as_f64().unwrap().to_string();
                let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", &price);
                assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
                won += 1;
            }
            won
        }));
    }
    let mut won = 0;
    for client in clients {
        won += client.await.unwrap();
    }
    let records = read_all(&data.path().join("ledger")).unwrap();
    let spend: i64 = records.iter().map(|r| r.charge).sum();
    let (budget, price) = (100_000_000, 1_000_000);
    assert!(spend <= budget + price, "spent {spend} µ with {won} wins");
    assert!(
        spend >= budget - price,
        "stopped early: spent {spend} µ with {won} wins"
    );
    assert_eq!(spend, won * price);
    // Budget spent: no more bids.
    let (status, _) = bidder.bid_json(&banner_request("late", 0.0, json!({}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

const CPC_CAMPAIGN: &str = r#"
[[campaign]]
id = "cpc"
advertiser = "Travel"
adomain = ["travel.example"]
pricing = "cpc"
max_bid = "1.00"
pctr_prior = "0.002"
daily_budget = "100"
  [[campaign.creative]]
  id = "t1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.travel.example/a.png"
  landing_url = "https://travel.example/deals?x=1"
"#;

fn click_url(bid: &Value) -> String {
    url_in_adm(bid, "/t/click?")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_quality_cpc_charges_and_conversions() {
    let config = write_config(TEST_SETTINGS, CPC_CAMPAIGN, "u,a\n");
    let settings = format!("{TEST_SETTINGS}{}", postback_settings(config.path()));
    std::fs::write(config.path().join("bullseye.toml"), settings).unwrap();
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    let bid_for = |user: &'static str| {
        let bidder = &bidder;
        async move {
            let (status, response) = bidder.bid_json(&banner_request(user, 0.0, json!({}))).await;
            assert_eq!(status, StatusCode::OK);
            response.unwrap()["seatbid"][0]["bid"][0].clone()
        }
    };

    // No impression: logged, not billed.
    let orphan = bid_for("a").await;
    assert_eq!(bidder.get(&click_url(&orphan)).await.status(), StatusCode::FOUND);
    // Too fast after the impression.
    let hasty = bid_for("b").await;
    assert_eq!(bidder.get(&pixel(&hasty)).await.status(), StatusCode::OK);
    assert_eq!(bidder.get(&click_url(&hasty)).await.status(), StatusCode::FOUND);
    // A good click: charged max_cpc × clearing / bid = 1.00 × 1.50 / 2.00.
    let good = bid_for("c").await;
    assert_eq!(good["price"], 2.0);
    let burl = good["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "1.50");
    assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(bidder.get(&pixel(&good)).await.status(), StatusCode::OK);
    clock.advance(std::time::Duration::from_secs(5));
    let click = bidder.get(&click_url(&good)).await;
    assert_eq!(click.status(), StatusCode::FOUND);
    let location = click.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("https://travel.example/deals?x=1&utm_source=default&utm_medium=cpc&utm_campaign=cpc&utm_content=t1&bz_click="), "{location}");
    assert_eq!(
        bidder.get(&click_url(&good)).await.status(),
        StatusCode::FOUND,
        "a repeated click still lands"
    );

    // The conversion postback, signed by the advertiser, attributed through
    // the signed click id.
    let click_id = location.split("bz_click=").nth(1).unwrap().to_string();
    let ts = clock.now().as_second();
    let postback = signed_postback(
        POSTBACK_SECRET,
        &format!("click={click_id}&order=A1&value=12.50&ts={ts}"),
    );
    for _ in 0..2 {
        assert_eq!(bidder.get(&postback).await.status(), StatusCode::NO_CONTENT);
    }
    let forged = click_id.replace("cpc~", "cpd~");
    let forged = signed_postback(POSTBACK_SECRET, &format!("click={forged}&order=A2&value=1&ts={ts}"));
    assert_eq!(bidder.get(&forged).await.status(), StatusCode::FORBIDDEN);
    let bad_value = signed_postback(POSTBACK_SECRET, &format!("click={click_id}&order=A3&value=abc&ts={ts}"));
    assert_eq!(bidder.get(&bad_value).await.status(), StatusCode::BAD_REQUEST);
    bidder.stop().await;

    let records = read_all(&data.path().join("ledger")).unwrap();
    let clicks: Vec<_> = records.iter().filter(|r| r.event == EventKind::Click).collect();
    let reasons: Vec<Option<&str>> = clicks.iter().map(|r| r.filtered.as_deref()).collect();
    assert_eq!(reasons, [Some("no_impression"), Some("too_fast"), None]);
    assert_eq!(clicks[2].charge, 750_000);
    assert_eq!(
        records.iter().map(|r| r.charge).sum::<i64>(),
        750_000,
        "CPC impressions are not charged"
    );
    let rows = bullseye::ledger::report::query(&[data.path().to_path_buf()], &Default::default()).unwrap();
    let row = &rows[0];
    assert_eq!(
        (
            row.clicks,
            row.filtered_clicks,
            row.conversions,
            row.conversion_value_micros,
            row.spend_micros
        ),
        (1, 2, 1, 12_500_000, 750_000)
    );
}
