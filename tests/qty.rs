//! `imp.qty` (issue 13, DOOH): a display that counts as several
//! impressions reserves and bills `multiplier ×` the price; the multiplier
//! is capped per exchange (`max_qty`, default 1).

mod common;

use bullseye::ledger::{EventKind, read_all};
use common::*;
use reqwest::StatusCode;
use serde_json::json;

const CAMPAIGN: &str = r#"
[[campaign]]
id = "screens"
advertiser = "Generic"
adomain = ["screens.example"]
pricing = "cpm"
max_bid = "2.00"
daily_budget = "0.011"
pacing = "asap"
  [[campaign.creative]]
  id = "s1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.screens.example/a.png"
  landing_url = "https://screens.example/"
"#;

fn display(multiplier: f64) -> serde_json::Value {
    let mut request = banner_request("u", 0.0, json!({}));
    request["imp"][0]["qty"] = json!({"multiplier": multiplier, "sourcetype": 1});
    request
}

#[tokio::test]
async fn a_multiplied_display_reserves_and_bills_its_multiple() {
    let settings = format!("{TEST_SETTINGS}\n[[exchange]]\nname = \"dooh\"\nmax_qty = 10\n");
    let dir = write_config(&settings, CAMPAIGN, "u,a\n");
    let clock = std::sync::Arc::new(bullseye::clock::ManualClock::new(
        "2026-11-19T14:00:00Z".parse().unwrap(),
    ));
    let mut bidder = spawn_bidder_with(dir.path(), clock, false).await;
    // Over the exchange's cap (and over the default exchange's 1): no bid.
    let (status, _) = bidder.bid_at("/openrtb2/bid/dooh", display(12.0).to_string()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = bidder.bid_json(&display(2.0)).await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "the default exchange takes no multiplier"
    );
    // 2.00 CPM × 3.5 reserves 7,000 micros of the 11,000 budget.
    let (status, response) = bidder.bid_at("/openrtb2/bid/dooh", display(3.5).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    // A second display would need 7,000 more: refused while the first is held.
    let (status, _) = bidder.bid_at("/openrtb2/bid/dooh", display(3.5).to_string()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the budget holds the whole multiple");
    // Billed at 1.50 CPM: 1.50 / 1000 × 3.5 = 5,250 micros.
    let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "1.50");
    assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
    // 5,250 spent. At most one impression's price (2,000) may go over the
    // budget, whatever the multiplier: a display of 5 (10,000) may not, one
    // of 1.5 (3,000) may.
    let (status, _) = bidder.bid_at("/openrtb2/bid/dooh", display(5.0).to_string()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = bidder.bid_at("/openrtb2/bid/dooh", display(1.5).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let data = std::mem::take(&mut bidder.dirs);
    let ledger = bidder_data_dir(&data);
    bidder.stop().await;
    let bills = bills_in(&ledger);
    assert_eq!(bills, [(5_250, Some(1_500_000))]);
    drop(dir);
}

/// A display that counts for less than one impression (a multiplier under
/// 1, which every exchange may send) is billed that fraction: its tracking
/// URLs used to be refused as forged (403), so the exchange billed us for
/// wins nothing recorded.
#[tokio::test]
async fn a_display_counting_for_half_an_impression_is_billed_half() {
    let dir = write_config(TEST_SETTINGS, CAMPAIGN, "u,a\n");
    let clock = std::sync::Arc::new(bullseye::clock::ManualClock::new(
        "2026-11-19T14:00:00Z".parse().unwrap(),
    ));
    let mut bidder = spawn_bidder_with(dir.path(), clock, false).await;
    let (status, response) = bidder.bid_json(&display(0.5)).await;
    assert_eq!(status, StatusCode::OK);
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    // Billed at 1.50 CPM: 1.50 / 1000 × 0.5 = 750 micros.
    let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "1.50");
    assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
    let data = std::mem::take(&mut bidder.dirs);
    let ledger = bidder_data_dir(&data);
    bidder.stop().await;
    let bills = bills_in(&ledger);
    assert_eq!(bills, [(750, Some(1_500_000))]);
    drop(dir);
}

/// The billing log of a bidder started by `spawn_bidder_with` (its data
/// directory is the first kept).
fn bidder_data_dir(dirs: &[tempfile::TempDir]) -> std::path::PathBuf {
    dirs[0].path().join("ledger")
}

/// The billing log's bills: charge and clearing price (micros).
fn bills_in(ledger: &std::path::Path) -> Vec<(i64, Option<i64>)> {
    read_all(ledger)
        .unwrap()
        .into_iter()
        .filter(|r| r.event == EventKind::Bill)
        .map(|r| (r.charge, r.clearing))
        .collect()
}
