//! Issue 15: the click model learns per impression from the real tracking
//! events, writes its feature log, prices bids by it once warm, and
//! `bullseye model evaluate` reads the log.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bullseye::clock::ManualClock;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A CPC campaign: max CPC 1.00, prior CTR 1 % (a 10.00 CPM value).
const CPC: &str = r#"
[[campaign]]
id = "clicks"
advertiser = "A"
adomain = ["clicks.example"]
pricing = "cpc"
max_bid = "1.00"
pctr_prior = "0.01"
max_cpm = "100"
daily_budget = "100000"
pacing = "asap"
  [[campaign.creative]]
  id = "c1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.clicks.example/a.png"
  landing_url = "https://clicks.example/"
"#;

/// Click rules loose enough for one test client to click a lot.
const LOOSE_CLICKS: &str = "\n[tracking]\nmax_clicks_per_ip_hour = 1000000\nmax_clicks_per_user_hour = 1000000\n";

fn request(n: usize, domain: &str) -> Value {
    let mut request = banner_request(&format!("user-{n}"), 0.0, json!({"site": {"domain": domain}}));
    request["id"] = json!(format!("req-{n}"));
    request
}

/// Bids, bills and shows an impression on `domain`, and clicks it when
/// `click`: returns the bid price.
async fn impression(bidder: &TestBidder, clock: &ManualClock, n: usize, domain: &str, click: bool) -> f64 {
    let (status, response) = bidder.bid_json(&request(n, domain)).await;
    assert_eq!(status, StatusCode::OK);
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.10");
    assert_eq!(bidder.get(&burl).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(bidder.get(&url_in_adm(&bid, "/t/imp?")).await.status(), StatusCode::OK);
    if click {
        clock.advance(Duration::from_secs(2));
        let answer = bidder.get(&url_in_adm(&bid, "/t/click?")).await;
        assert_eq!(answer.status(), StatusCode::FOUND);
    }
    bid["price"].as_f64().unwrap()
}

/// `bullseye model evaluate --json` on a data directory.
fn evaluate(data: &std::path::Path) -> Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bullseye"))
        .args(["model", "evaluate", "--json", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_click_model_learns_from_tracking_events_and_prices_by_the_impression() {
    let config = write_config(&format!("{TEST_SETTINGS}{LOOSE_CLICKS}"), CPC, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    // Cold: the campaign's rate prices every impression alike (1 % × 1.00 ×
    // 1000 = 10.00).
    assert_eq!(impression(&bidder, &clock, 0, "hot.example", false).await, 10.0);
    // 2,400 impressions: one in five on hot.example is clicked (240
    // clicks), none on cold.example.
    for n in 1..=2_400 {
        let hot = n % 2 == 0;
        impression(
            &bidder,
            &clock,
            n,
            if hot { "hot.example" } else { "cold.example" },
            hot && n % 10 == 0,
        )
        .await;
        if n == 1_200 {
            // The next day: the log holds two days, the last held out.
            clock.advance(Duration::from_secs(86_400));
        }
    }
    // The learner publishes every five seconds.
    // A model published between the two probes would give a mixed pair:
    // the prices are read once two rounds in a row agree.
    let mut prices = (0.0, 0.0);
    for attempt in 0..60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let previous = prices;
        prices = (
            impression(&bidder, &clock, 10_000 + attempt * 2, "hot.example", false).await,
            impression(&bidder, &clock, 10_001 + attempt * 2, "cold.example", false).await,
        );
        if prices.0 != prices.1 && prices == previous {
            break;
        }
    }
    assert!(
        prices.0 > prices.1,
        "hot.example {} vs cold.example {}",
        prices.0,
        prices.1
    );
    bidder.stop().await;

    let log = data.path().join("outcome");
    let files: Vec<_> = std::fs::read_dir(&log).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 2, "a file per day: {files:?}");
    let lines: usize = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    // 2,400 + the cold first one + the probes' impressions, and 240 clicks.
    assert!(lines >= 2_401 + 240, "{lines} lines");

    let evaluation = evaluate(data.path());
    let click = &evaluation["click"];
    // The second day held out: 1,200 impressions (and the probes'), 120 clicks.
    assert_eq!(click["positives"], 120, "{evaluation}");
    assert!(
        click["model_auc"].as_f64().unwrap() > click["campaign_auc"].as_f64().unwrap(),
        "{evaluation}"
    );
    assert!(
        click["model_log_loss"].as_f64().unwrap() < click["campaign_log_loss"].as_f64().unwrap(),
        "{evaluation}"
    );
}
