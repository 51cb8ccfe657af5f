//! Issue 17, item 4: conversions could be forged (the click id is visible
//! in the landing page's URL), each new free-text order counted again (500
//! conversions from one click, even a filtered one), values were unbounded,
//! and order ids were not in the ledger, so dedup was lost on restart.
//! Postbacks are now signed per advertiser and bounded.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bullseye::clock::{Clock, ManualClock};
use bullseye::ledger::{EventKind, read_all};
use common::*;
use reqwest::StatusCode;
use serde_json::json;

const TRAVEL: &str = r#"
[[campaign]]
id = "trips"
advertiser = "Travel"
adomain = ["travel.example"]
pricing = "cpm"
max_bid = "1.00"
daily_budget = "100"
pacing = "asap"
  [[campaign.creative]]
  id = "t1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.travel.example/a.png"
  landing_url = "https://travel.example/deals"
"#;

struct Setup {
    bidder: TestBidder,
    clock: Arc<ManualClock>,
    config: tempfile::TempDir,
    data: tempfile::TempDir,
}

async fn setup(extra_settings: &str) -> Setup {
    let config = write_config(TEST_SETTINGS, TRAVEL, "u,a\n");
    let settings = format!("{TEST_SETTINGS}{}{extra_settings}", postback_settings(config.path()));
    std::fs::write(config.path().join("bullseye.toml"), settings).unwrap();
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    Setup {
        bidder,
        clock,
        config,
        data,
    }
}

/// A bid, its impression, and a click on it a few seconds later (a
/// billable click unless `too_fast`); returns the click id.
async fn click(s: &Setup, user: &str, too_fast: bool) -> String {
    let (_, response) = s.bidder.bid_json(&banner_request(user, 0.0, json!({}))).await;
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    assert_eq!(
        s.bidder.get(&url_in_adm(&bid, "/t/imp?")).await.status(),
        StatusCode::OK
    );
    if !too_fast {
        s.clock.advance(Duration::from_secs(5));
    }
    let answer = s.bidder.get(&url_in_adm(&bid, "/t/click?")).await;
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    location.split("bz_click=").nth(1).unwrap().to_string()
}

fn postback(s: &Setup, click: &str, order: &str, value: &str) -> String {
    let ts = s.clock.now().as_second();
    signed_postback(
        POSTBACK_SECRET,
        &format!("click={click}&order={order}&value={value}&ts={ts}"),
    )
}

/// (order, value, not-counted reason) of each recorded conversion.
fn conversions(ledger: &std::path::Path) -> Vec<(Option<String>, Option<i64>, Option<String>)> {
    read_all(ledger)
        .unwrap()
        .into_iter()
        .filter(|r| r.event == EventKind::Conversion)
        .map(|r| (r.order, r.value, r.filtered))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_advertiser_can_post_a_conversion() {
    let s = setup("").await;
    let click = click(&s, "a", false).await;
    let ts = s.clock.now().as_second();
    // The old, unsigned form.
    let unsigned = format!("/t/conv?click={click}&value=1&order=A1");
    assert_eq!(s.bidder.get(&unsigned).await.status(), StatusCode::BAD_REQUEST);
    // Signed with another secret, or altered after signing.
    let query = format!("click={click}&order=A1&value=1&ts={ts}");
    let wrong = signed_postback("someone-else-entirely-0123456789abcdef", &query);
    assert_eq!(s.bidder.get(&wrong).await.status(), StatusCode::FORBIDDEN);
    let altered = signed_postback(POSTBACK_SECRET, &query).replace("value=1&", "value=9999&");
    assert_eq!(s.bidder.get(&altered).await.status(), StatusCode::FORBIDDEN);
    // Parameters out of the documented order.
    let shuffled = signed_postback(POSTBACK_SECRET, &format!("order=A1&click={click}&value=1&ts={ts}"));
    assert_eq!(s.bidder.get(&shuffled).await.status(), StatusCode::BAD_REQUEST);
    // Stale.
    let stale = signed_postback(
        POSTBACK_SECRET,
        &format!("click={click}&order=A1&value=1&ts={}", ts - 3600),
    );
    assert_eq!(s.bidder.get(&stale).await.status(), StatusCode::BAD_REQUEST);
    // The real one.
    assert_eq!(
        s.bidder.get(&postback(&s, &click, "A1", "1")).await.status(),
        StatusCode::NO_CONTENT
    );
    let ledger = s.data.path().join("ledger");
    s.bidder.stop().await;
    assert_eq!(conversions(&ledger), [(Some("A1".into()), Some(1_000_000), None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_converts_once_and_values_are_bounded() {
    let s = setup("").await;
    let click = click(&s, "a", false).await;
    assert_eq!(
        s.bidder.get(&postback(&s, &click, "A1", "12.50")).await.status(),
        StatusCode::NO_CONTENT
    );
    // The same order again: acknowledged, not counted.
    assert_eq!(
        s.bidder.get(&postback(&s, &click, "A1", "12.50")).await.status(),
        StatusCode::NO_CONTENT
    );
    // 500 new orders on the same click: refused past the one allowed.
    for i in 0..500 {
        let answer = s.bidder.get(&postback(&s, &click, &format!("B{i}"), "1")).await;
        assert_eq!(answer.status(), StatusCode::CONFLICT, "order B{i}");
    }
    // A value above tracking.max_conversion_value (100000).
    let other = self::click(&s, "b", false).await;
    let huge = postback(&s, &other, "C1", "100000.01");
    assert_eq!(s.bidder.get(&huge).await.status(), StatusCode::BAD_REQUEST);
    let ledger = s.data.path().join("ledger");
    s.bidder.stop().await;
    assert_eq!(conversions(&ledger), [(Some("A1".into()), Some(12_500_000), None)]);
    let rows = bullseye::ledger::report::query(&[ledger.parent().unwrap().to_path_buf()], &Default::default()).unwrap();
    assert_eq!((rows[0].conversions, rows[0].conversion_value_micros), (1, 12_500_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_clicks_conversions_are_recorded_not_counted() {
    let s = setup("").await;
    let hasty = click(&s, "a", true).await;
    assert_eq!(
        s.bidder.get(&postback(&s, &hasty, "A1", "5")).await.status(),
        StatusCode::NO_CONTENT
    );
    let ledger = s.data.path().join("ledger");
    s.bidder.stop().await;
    assert_eq!(
        conversions(&ledger),
        [(Some("A1".into()), Some(5_000_000), Some("click_filtered".into()))]
    );
    let rows = bullseye::ledger::report::query(&[ledger.parent().unwrap().to_path_buf()], &Default::default()).unwrap();
    assert_eq!((rows[0].conversions, rows[0].conversion_value_micros), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_dedup_survives_a_restart_and_the_previous_secret_is_accepted() {
    let s = setup("[tracking]\nmax_conversions_per_click = 5\n").await;
    let click = click(&s, "a", false).await;
    let first = postback(&s, &click, "A1", "3");
    assert_eq!(s.bidder.get(&first).await.status(), StatusCode::NO_CONTENT);
    let Setup {
        bidder,
        clock,
        config,
        data,
    } = s;
    bidder.stop().await;
    // Restart, with the secret rotated: the old one is still accepted.
    let previous = config.path().join("travel.postback");
    let rotated = config.path().join("travel.new.postback");
    std::fs::write(&rotated, "rotated-travel-secret-0123456789abcdef").unwrap();
    let settings = std::fs::read_to_string(config.path().join("bullseye.toml"))
        .unwrap()
        .replace(
            &format!("secret_file = \"{}\"", previous.display()),
            &format!(
                "secret_file = \"{}\"\nprevious_secret_file = \"{}\"",
                rotated.display(),
                previous.display()
            ),
        );
    std::fs::write(config.path().join("bullseye.toml"), settings).unwrap();
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    let s = Setup {
        bidder,
        clock,
        config,
        data,
    };
    assert_eq!(s.bidder.get(&first).await.status(), StatusCode::NO_CONTENT, "a replay");
    assert_eq!(
        s.bidder.get(&postback(&s, &click, "A2", "4")).await.status(),
        StatusCode::NO_CONTENT
    );
    let ledger = s.data.path().join("ledger");
    s.bidder.stop().await;
    assert_eq!(
        conversions(&ledger),
        [
            (Some("A1".into()), Some(3_000_000), None),
            (Some("A2".into()), Some(4_000_000), None)
        ]
    );
}
