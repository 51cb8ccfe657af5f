//! Issue 16, experiments: a campaign's users are split into arms by a
//! stable hash (the same arm on every request and after a restart), each
//! arm bids with its own creatives and multiplier, the holdout never bids,
//! the arm is signed into the tracking URLs and written to the ledger, a
//! holdout user's conversion arrives through the user-level postback, and
//! the report by arm gives each arm's figures and statistics.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bullseye::clock::{Clock, ManualClock};
use bullseye::ledger::{EventKind, read_all};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Arm `a` (control) shows t1 at the campaign's 1.00, arm `b` shows t2 at
/// 1.5 × 1.00, the holdout `h` never bids.
const TRIPS: &str = r#"
[[campaign]]
id = "trips"
advertiser = "Travel"
adomain = ["travel.example"]
pricing = "cpm"
max_bid = "1.00"
daily_budget = "100"
pacing = "asap"
  [campaign.experiment]
  id = "spring-test"
  control = "a"
  [[campaign.experiment.arm]]
  name = "a"
  weight = 40
  creatives = ["t1"]
  [[campaign.experiment.arm]]
  name = "b"
  weight = 40
  creatives = ["t2"]
  bid_multiplier = "1.5"
  [[campaign.experiment.arm]]
  name = "h"
  weight = 20
  holdout = true
  [[campaign.creative]]
  id = "t1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.travel.example/1.png"
  landing_url = "https://travel.example/deals"
  [[campaign.creative]]
  id = "t2"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.travel.example/2.png"
  landing_url = "https://travel.example/deals"
"#;

struct Setup {
    bidder: TestBidder,
    clock: Arc<ManualClock>,
    config: tempfile::TempDir,
    data: tempfile::TempDir,
}

async fn start(config: tempfile::TempDir, data: tempfile::TempDir, clock: Arc<ManualClock>) -> Setup {
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    Setup {
        bidder,
        clock,
        config,
        data,
    }
}

async fn setup() -> Setup {
    let config = write_config(TEST_SETTINGS, TRIPS, "u,a\n");
    let settings = format!("{TEST_SETTINGS}{}", postback_settings(config.path()));
    std::fs::write(config.path().join("bullseye.toml"), settings).unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
    start(config, tempfile::tempdir().unwrap(), clock).await
}

/// What one user got: the arm its bid was signed with, the creative and
/// the price; `None` for no bid.
async fn answer(bidder: &TestBidder, user: &str) -> Option<(String, String, f64)> {
    let (status, response) = bidder.bid_json(&banner_request(user, 0.0, json!({}))).await;
    if status == StatusCode::NO_CONTENT {
        return None;
    }
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    let url = url_in_adm(&bid, "/t/imp?");
    let arm = url
        .split('&')
        .find_map(|p| p.strip_prefix("a="))
        .unwrap_or("none")
        .replace("%2F", "/");
    Some((
        arm,
        bid["crid"].as_str().unwrap().into(),
        bid["price"].as_f64().unwrap(),
    ))
}

/// Every user's answer, over 60 users.
async fn answers(bidder: &TestBidder) -> BTreeMap<String, Option<(String, String, f64)>> {
    let mut all = BTreeMap::new();
    for n in 0..60 {
        let user = format!("traveller-{n}");
        all.insert(user.clone(), answer(bidder, &user).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arms_are_stable_the_holdout_never_bids_and_each_arm_bids_its_own_way() {
    let s = setup().await;
    let first = answers(&s.bidder).await;
    let mut per_arm: BTreeMap<String, usize> = BTreeMap::new();
    for answer in first.values() {
        let arm = answer
            .as_ref()
            .map_or("holdout (no bid)".to_string(), |(arm, _, _)| arm.clone());
        *per_arm.entry(arm).or_default() += 1;
        match answer {
            Some((arm, creative, price)) if arm == "spring-test/a" => {
                assert_eq!((creative.as_str(), *price), ("t1", 1.0))
            }
            Some((arm, creative, price)) if arm == "spring-test/b" => {
                assert_eq!((creative.as_str(), *price), ("t2", 1.5))
            }
            Some(other) => panic!("unexpected bid {other:?}"),
            None => {}
        }
    }
    assert_eq!(per_arm.len(), 3, "all three arms among 60 users: {per_arm:?}");
    // The same users, again: the same arms (no per-request draw).
    assert_eq!(answers(&s.bidder).await, first);
    // A user without an id is left out (users_without_id = "exclude").
    let mut anonymous = banner_request("", 0.0, json!({}));
    anonymous["user"] = json!({});
    assert_eq!(s.bidder.bid_json(&anonymous).await.0, StatusCode::NO_CONTENT);

    // Each time a holdout user came, the campaign would have bid: counted.
    let holdouts = first.values().filter(|a| a.is_none()).count() as u64;
    let campaign: Value = s
        .bidder
        .admin(Method::GET, "/admin/api/campaigns/trips")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let why = &campaign["live"]["why_not_bidding"];
    assert_eq!(why["holdout"], json!(2 * holdouts), "{why}");
    assert_eq!(why["experiment_no_user_id"], json!(1), "{why}");

    // Explain names the arm, and the holdout's reason.
    let holdout_user = first.iter().find(|(_, a)| a.is_none()).unwrap().0.clone();
    let explained: Value = s
        .bidder
        .admin(Method::POST, "/admin/api/explain")
        .json(&banner_request(&holdout_user, 0.0, json!({})))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verdict = &explained["imp"][0]["campaigns"][0];
    assert_eq!(
        (&verdict["arm"], &verdict["reason"]),
        (&json!("h"), &json!("holdout")),
        "{explained}"
    );

    // After a restart (and so on any node: nothing but the config and the
    // user decides), every user is in the same arm.
    let Setup {
        bidder,
        clock,
        config,
        data,
    } = s;
    bidder.stop().await;
    let s = start(config, data, clock).await;
    assert_eq!(answers(&s.bidder).await, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arm_reaches_the_ledger_and_the_report_with_holdout_conversions() {
    let s = setup().await;
    let first = answers(&s.bidder).await;
    let in_arm = |arm: &str| {
        first
            .iter()
            .find(|(_, a)| a.as_ref().is_some_and(|(x, _, _)| x == arm))
            .map(|(user, _)| user.clone())
            .unwrap()
    };
    let (user_a, holdout_user) = (
        in_arm("spring-test/a"),
        first.iter().find(|(_, a)| a.is_none()).unwrap().0.clone(),
    );
    // Arm a: an impression and a click, three seconds apart.
    let (_, response) = s.bidder.bid_json(&banner_request(&user_a, 0.0, json!({}))).await;
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    assert_eq!(
        s.bidder.get(&url_in_adm(&bid, "/t/imp?")).await.status(),
        StatusCode::OK
    );
    s.clock.advance(Duration::from_secs(3));
    let click = s.bidder.get(&url_in_adm(&bid, "/t/click?")).await;
    assert_eq!(click.status(), StatusCode::FOUND);
    let location = click.headers()["location"].to_str().unwrap().to_string();
    // The landing page reads its `bz_click` parameter (percent-decoded once).
    let click_id = location.split("bz_click=").nth(1).unwrap().replace("%25", "%");
    let ts = s.clock.now().as_second();
    // A click-level conversion of arm a, and a user-level one of the
    // holdout user (who never saw an ad).
    let by_click = signed_postback(POSTBACK_SECRET, &format!("click={click_id}&order=o-1&value=50&ts={ts}"));
    assert_eq!(s.bidder.get(&by_click).await.status(), StatusCode::NO_CONTENT);
    let by_user = signed_postback(
        POSTBACK_SECRET,
        &format!("user={holdout_user}&campaign=trips&order=o-2&ts={ts}"),
    );
    assert_eq!(s.bidder.get(&by_user).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.bidder.get(&by_user).await.status(),
        StatusCode::NO_CONTENT,
        "a duplicate"
    );
    // Without the campaign: the advertiser's one experiment.
    let unnamed = signed_postback(
        POSTBACK_SECRET,
        &format!("user={holdout_user}&order=o-3&value=20&ts={ts}"),
    );
    assert_eq!(s.bidder.get(&unnamed).await.status(), StatusCode::NO_CONTENT);
    let forged = signed_postback(
        "not-the-secret-0123456789abcdef0123",
        &format!("user={holdout_user}&order=o-4&ts={ts}"),
    );
    assert_eq!(s.bidder.get(&forged).await.status(), StatusCode::FORBIDDEN);
    let unknown = signed_postback(
        POSTBACK_SECRET,
        &format!("user={holdout_user}&campaign=gone&order=o-5&ts={ts}"),
    );
    assert_eq!(s.bidder.get(&unknown).await.status(), StatusCode::NOT_FOUND);

    let records = read_all(&s.data.path().join("ledger")).unwrap();
    let arms: Vec<(EventKind, Option<&str>)> = records.iter().map(|r| (r.event, r.arm.as_deref())).collect();
    assert_eq!(
        arms,
        [
            (EventKind::Impression, Some("spring-test/a")),
            (EventKind::Click, Some("spring-test/a")),
            (EventKind::Conversion, Some("spring-test/a")),
            (EventKind::Conversion, Some("spring-test/h")),
            (EventKind::Conversion, Some("spring-test/h")),
        ]
    );

    let rows: Vec<Value> = s
        .bidder
        .admin(Method::GET, "/admin/api/reports?by=arm&date=2026-11-24")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = |arm: &str| {
        rows.iter()
            .find(|r| r["arm"] == json!(arm))
            .unwrap_or_else(|| panic!("{rows:?}"))
    };
    let (a, b, h) = (row("a"), row("b"), row("h"));
    assert_eq!(
        [&a["role"], &a["impressions"], &a["clicks"], &a["conversions"]],
        [&json!("control"), &json!(1), &json!(1), &json!(1)]
    );
    assert_eq!([&b["role"], &b["impressions"]], [&json!("treatment"), &json!(0)]);
    assert_eq!(
        [&h["role"], &h["impressions"], &h["conversions"], &h["weight"]],
        [&json!("holdout"), &json!(0), &json!(2), &json!(20)]
    );
    // One click in one impression: rate 1, Wilson interval [1/(1+z²), 1].
    let z2 = 1.959_963_984_540_054_f64.powi(2);
    assert_eq!(a["ctr"]["rate"], json!(1.0));
    assert!(
        (a["ctr"]["ci_low"].as_f64().unwrap() - 1.0 / (1.0 + z2)).abs() < 1e-9,
        "{a}"
    );
    assert_eq!(a["ctr"]["ci_high"], json!(1.0));
    // Exposed arms (weight 80): 1 conversion; holdout (weight 20): 2.
    let incremental = &h["incremental"];
    assert_eq!(incremental["basis"], json!("conversions"));
    assert!(
        (incremental["lift"].as_f64().unwrap() - ((1.0 / 80.0) / (2.0 / 20.0) - 1.0)).abs() < 1e-9,
        "{h}"
    );
}

/// A config with a broken experiment is refused, each problem named.
#[test]
fn experiments_are_validated_at_load() {
    let broken = TRIPS
        .replace("control = \"a\"", "control = \"z\"")
        .replace("creatives = [\"t2\"]", "creatives = [\"t9\"]")
        .replace(
            "weight = 40\n  creatives = [\"t1\"]",
            "weight = 0\n  creatives = [\"t1\"]",
        )
        .replace("holdout = true", "holdout = true\n  bid_multiplier = \"2\"");
    let dir = write_config(TEST_SETTINGS, &broken, "u,a\n");
    let problems = match bullseye::config::load(dir.path()) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    for expected in [
        "campaign trips: experiment.control: no arm named \"z\"",
        "experiment.arm[1].creatives: no creative \"t9\" in this campaign",
        "experiment.arm[0].weight: must be a positive integer",
        "experiment.arm[2].holdout: a holdout arm never bids",
    ] {
        assert!(problems.contains(expected), "{expected} not in {problems}");
    }
}

/// The admin API takes an experiment in a campaign's JSON (the TOML
/// table's fields; a bid multiplier as a number too), validates it like the
/// config loader, and gives it back as it was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_takes_and_gives_back_experiments() {
    let s = setup().await;
    let mut campaign = json!({
        "id": "trips-2", "advertiser": "Travel", "pricing": "cpm", "max_bid": "1", "daily_budget": "10",
        "rotation": "optimise",
        "experiment": {"id": "autumn", "control": "a", "users_without_id": "per_request", "arm": [
            {"name": "a", "weight": 1},
            {"name": "b", "weight": 1, "bid_multiplier": 1.2, "creatives": ["k"]},
        ]},
        "creative": [{"id": "k", "format": "banner", "w": 300, "h": 250, "weight": 2,
                      "image_url": "https://cdn.travel.example/k.png", "landing_url": "https://travel.example/"}],
    });
    let created = s
        .bidder
        .admin(Method::POST, "/admin/api/campaigns")
        .json(&campaign)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let read: Value = s
        .bidder
        .admin(Method::GET, "/admin/api/campaigns/trips-2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["experiment"]["arm"][1]["bid_multiplier"], json!("1.2"), "{read}");
    assert_eq!(read["experiment"]["users_without_id"], json!("per_request"));
    assert_eq!(read["rotation"], json!("optimise"));
    campaign["id"] = json!("trips-3");
    campaign["experiment"]["control"] = json!("nobody");
    let refused = s
        .bidder
        .admin(Method::POST, "/admin/api/campaigns")
        .json(&campaign)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["problems"][0]["field"], json!("experiment.control"), "{body}");
}
