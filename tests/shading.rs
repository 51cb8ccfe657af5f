//! Issue 15: first-price bids are shaded by a curve learned from the
//! bidder's own wins and losses; `shading = "fixed"` keeps the factor.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bullseye::clock::ManualClock;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A CPM campaign worth 3.00.
const CAMPAIGN: &str = r#"
[[campaign]]
id = "brand"
advertiser = "A"
adomain = ["brand.example"]
pricing = "cpm"
max_bid = "3.00"
daily_budget = "100000"
pacing = "asap"
  [[campaign.creative]]
  id = "b1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.brand.example/a.png"
  landing_url = "https://brand.example/"
"#;

fn first_price(n: usize) -> Value {
    let mut request = banner_request(&format!("user-{n}"), 0.0, json!({"at": 1}));
    request["id"] = json!(format!("req-{n}"));
    request
}

/// Bids at first price; the exchange's other bidders bid 1.00, so a bid
/// above it wins (billing notice) and one below loses (loss notice with
/// the minimum bid to win). Returns the price.
async fn auction(bidder: &TestBidder, n: usize) -> f64 {
    let (status, response) = bidder.bid_json(&first_price(n)).await;
    assert_eq!(status, StatusCode::OK);
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    let price = bid["price"].as_f64().unwrap();
    if price > 1.0 {
        let burl = bid["burl"]
            .as_str()
            .unwrap()
            .replace("${AUCTION_PRICE}", &format!("{price}"));
        assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
    } else if let Some(lurl) = bid["lurl"].as_str() {
        let lurl = lurl
            .replace("${AUCTION_MIN_TO_WIN}", "1.01")
            .replace("${AUCTION_LOSS}", "102");
        bidder.get(&lurl).await;
    }
    price
}

async fn spawn(shading: &str) -> (TestBidder, Arc<ManualClock>, tempfile::TempDir) {
    let settings = TEST_SETTINGS
        .replace(
            "first_price_shading = \"0.80\"",
            &format!("first_price_shading = \"0.80\"\nshading = \"{shading}\""),
        )
        .replace(
            "network_allowance_ms = 30",
            "network_allowance_ms = 30\nsends_lurl = true",
        );
    let config = write_config(&settings, CAMPAIGN, "u,a\n");
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_with(config.path(), clock.clone(), false).await;
    (bidder, clock, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learned_shading_moves_first_price_bids_towards_the_surplus_optimum() {
    let (bidder, _clock, _config) = spawn("learned").await;
    // Until the node has seen traffic: the fixed factor (0.80 × 3.00).
    assert_eq!(auction(&bidder, 0).await, 2.4);
    // 1,500 auctions: after the first thousand, one bid in twenty explores
    // 30–100 % of value; every bid above 1.00 wins.
    let mut prices = Vec::new();
    for n in 1..=1_500 {
        prices.push(auction(&bidder, n).await);
    }
    let explored = prices.iter().filter(|p| **p != 2.4).count();
    assert!(explored > 0, "some bids explored");
    // The curves are rebuilt every ten seconds of real time; on a slow
    // machine one may have been published while the auctions were still
    // going (a curve of part of them: 1.34 was seen in CI). Rebuilt now,
    // from all of them, as the next tick would: the best price against a
    // market that always bids 1.00 is just above it, far below 2.40. One
    // bid in twenty still explores, so the learned price is the one three
    // bids in a row agree on.
    let app = bidder.running.as_ref().unwrap().app.clone();
    app.bidder.shading.rebuild(app.bidder.clock.now().as_second());
    let mut last: Vec<f64> = Vec::new();
    let mut learned = 2.4;
    for n in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last.push(auction(&bidder, 10_000 + n).await);
        if let [.., a, b, c] = last[..]
            && a == b
            && b == c
            && c != 2.4
        {
            learned = c;
            break;
        }
    }
    assert!(learned > 1.0 && learned < 1.3, "learned first-price bid {learned}");
    let metrics = bidder.metrics().await;
    assert!(metric(&metrics, "bullseye_shading_slices_learned") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_shading_keeps_the_factor() {
    let (bidder, _clock, _config) = spawn("fixed").await;
    for n in 0..1_200 {
        assert_eq!(auction(&bidder, n).await, 2.4, "auction {n}");
    }
}
