//! Config hot reload and audience snapshot swaps while requests flow:
//! no failed request, invalid files rejected with the old version serving.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bullseye::clock::SystemClock;
use common::*;
use reqwest::StatusCode;
use serde_json::json;

fn campaigns(generic_bid: &str) -> String {
    let generic = GENERIC.replace(r#"max_bid = "1.00""#, &format!("max_bid = \"{generic_bid}\""));
    format!(
        r#"{generic}
[[campaign]]
id = "segment"
advertiser = "Segment"
adomain = ["segment.example"]
pricing = "cpm"
max_bid = "30.00"
daily_budget = "100"
  [campaign.targeting.segments]
  any = ["interest/x"]
  [[campaign.creative]]
  id = "s1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.segment.example/a.png"
  landing_url = "https://segment.example/"
"#
    )
}

/// Writes a file the way operators should: elsewhere, then rename.
fn replace(path: &Path, contents: &[u8]) {
    let temporary = path.with_extension("incoming");
    std::fs::write(&temporary, contents).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// Polls until `check` holds, for at most five seconds.
async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_and_swaps_under_load_without_a_failed_request() {
    let dir = write_config(TEST_SETTINGS, &campaigns("1.00"), "someone,interest/y\n");
    let bidder = Arc::new(spawn_bidder_with(dir.path(), Arc::new(SystemClock), true).await);

    // Background load: four clients, counting anything but 200/204.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for client in 0..4 {
        let (bidder, stop, sent, failed) = (bidder.clone(), stop.clone(), sent.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let request = banner_request(&format!("load-{client}"), 0.0, json!({})).to_string();
            while !stop.load(Ordering::Relaxed) {
                let (status, _) = bidder.bid(request.clone()).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if status != StatusCode::OK && status != StatusCode::NO_CONTENT {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let price_for = |user: &'static str| {
        let bidder = bidder.clone();
        async move {
            let (_, response) = bidder.bid_json(&banner_request(user, 0.0, json!({}))).await;
            let bid = response?["seatbid"][0]["bid"][0].clone();
            Some((bid["cid"].as_str()?.to_string(), bid["price"].as_f64()?))
        }
    };
    assert_eq!(price_for("u1").await, Some(("generic".into(), 1.0)));

    // A valid edit is picked up.
    replace(&dir.path().join("campaigns/test.toml"), campaigns("2.00").as_bytes());
    eventually("the new max bid", async || {
        price_for("u1").await == Some(("generic".into(), 2.0))
    })
    .await;

    // An invalid edit is rejected; the last good config keeps serving.
    replace(
        &dir.path().join("campaigns/test.toml"),
        campaigns("two dollars").as_bytes(),
    );
    eventually("the rejection", async || {
        metric(&bidder.metrics().await, "bullseye_config_reload_failures_total") == 1.0
    })
    .await;
    assert_eq!(price_for("u1").await, Some(("generic".into(), 2.0)));

    // A new audience snapshot is swapped in: u1 joins interest/x/deep.
    let staging = tempfile::tempdir().unwrap();
    write_snapshot(staging.path(), "u1,interest/x/deep\nsomeone,interest/y\n");
    let snapshot = std::fs::read(staging.path().join("audience.snapshot")).unwrap();
    replace(&dir.path().join("audience.snapshot"), &snapshot);
    eventually("the new snapshot", async || {
        price_for("u1").await == Some(("segment".into(), 30.0))
    })
    .await;

    // A corrupt snapshot is rejected; the current one keeps serving.
    let mut corrupt = snapshot.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    replace(&dir.path().join("audience.snapshot"), &corrupt);
    eventually("the snapshot rejection", async || {
        bidder
            .metrics()
            .await
            .lines()
            .any(|line| line == "bullseye_audience_snapshot_failures_total 1")
    })
    .await;
    assert_eq!(price_for("u1").await, Some(("segment".into(), 30.0)));

    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert!(
        sent.load(Ordering::Relaxed) > 100,
        "too little load: {}",
        sent.load(Ordering::Relaxed)
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed during reloads");
    let metrics = bidder.metrics().await;
    assert_eq!(metric(&metrics, "bullseye_config_reloads_total"), 1.0);
    assert_eq!(metric(&metrics, "bullseye_audience_snapshot_swaps_total"), 1.0);
    drop(dir);
}
