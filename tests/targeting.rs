//! Targeting, selection and pricing scenarios against the real server with
//! a test config and a fixed clock.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CAMPAIGNS: &str = r#"
[[campaign]]
id = "generic"
advertiser = "Generic"
adomain = ["generic.example"]
cat = ["IAB3-1"]
pricing = "cpm"
max_bid = "1.00"
daily_budget = "100"
  [[campaign.creative]]
  id = "g1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.generic.example/a.png"
  landing_url = "https://generic.example/"

[[campaign]]
id = "finance"
advertiser = "Bank"
adomain = ["bank.example"]
pricing = "cpm"
max_bid = "4.00"
daily_budget = "100"
  [campaign.targeting.segments]
  any = ["interest/finance"]
  [[campaign.creative]]
  id = "f1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.bank.example/a.png"
  landing_url = "https://bank.example/"

[[campaign]]
id = "not-customers"
advertiser = "Shop"
adomain = ["shop.example"]
pricing = "cpm"
max_bid = "3.00"
daily_budget = "100"
  [campaign.targeting.segments]
  any = ["rfm"]
  none = ["crm/customers"]
  [[campaign.creative]]
  id = "n1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.shop.example/a.png"
  landing_url = "https://shop.example/"

[[campaign]]
id = "nyc"
advertiser = "Deli"
adomain = ["deli.example"]
pricing = "cpm"
max_bid = "6.00"
daily_budget = "100"
  [[campaign.targeting.geo_radius]]
  lat = 40.7128
  lon = -74.0060
  radius_km = 25.0
  [[campaign.creative]]
  id = "y1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.deli.example/a.png"
  landing_url = "https://deli.example/"

[[campaign]]
id = "young"
advertiser = "Sneakers"
adomain = ["sneakers.example"]
pricing = "cpm"
max_bid = "5.00"
daily_budget = "100"
  [campaign.targeting.age]
  min = 18
  max = 24
  [[campaign.creative]]
  id = "s1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.sneakers.example/a.png"
  landing_url = "https://sneakers.example/"

[[campaign]]
id = "night"
advertiser = "Late-Show"
adomain = ["late.example"]
pricing = "cpm"
max_bid = "7.00"
daily_budget = "100"
time_zone = "America/New_York"
  [[campaign.targeting.dayparts]]
  from_hour = 0
  to_hour = 6
  [[campaign.creative]]
  id = "l1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.late.example/a.png"
  landing_url = "https://late.example/"

[[campaign]]
id = "capped"
advertiser = "Insurer"
adomain = ["insurer.example"]
pricing = "cpm"
max_bid = "8.00"
daily_budget = "100"
  [campaign.targeting.segments]
  any = ["capped-audience"]
  [campaign.targeting.frequency]
  per_hour = 2
  [[campaign.creative]]
  id = "c1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.insurer.example/a.png"
  landing_url = "https://insurer.example/quote?src=ad"

[[campaign]]
id = "deal"
advertiser = "Premium"
adomain = ["premium.example"]
pricing = "cpm"
max_bid = "0.50"
daily_budget = "100"
  [campaign.targeting]
  deals = ["D1"]
  deals_only = true
  [[campaign.creative]]
  id = "d1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.premium.example/a.png"
  landing_url = "https://premium.example/"

[[campaign]]
id = "cpc"
advertiser = "Travel"
adomain = ["travel.example"]
pricing = "cpc"
max_bid = "1.00"
pctr_prior = "0.002"
daily_budget = "100"
  [campaign.targeting]
  os = ["cpcos"]
  [[campaign.creative]]
  id = "t1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.travel.example/a.png"
  landing_url = "https://travel.example/"

[[campaign]]
id = "flight"
advertiser = "Seasonal"
adomain = ["seasonal.example"]
pricing = "cpm"
max_bid = "9.00"
daily_budget = "100"
time_zone = "Europe/Paris"
start = "2026-11-20"
end = "2026-11-24"
  [campaign.targeting]
  os = ["flightos"]
  [[campaign.creative]]
  id = "fl1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.seasonal.example/a.png"
  landing_url = "https://seasonal.example/"

[[campaign]]
id = "paused"
advertiser = "Paused"
adomain = ["paused.example"]
status = "paused"
pricing = "cpm"
max_bid = "50.00"
daily_budget = "100"
  [[campaign.creative]]
  id = "p1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.paused.example/a.png"
  landing_url = "https://paused.example/"
"#;

const AUDIENCE: &str = "\
u-fin-child,interest/finance/investment/funds
u-rfm,rfm/gold
u-rfm-customer,rfm/gold|crm/customers
u-capped,capped-audience
";

/// 13:00 in New York, a Tuesday.
const AFTERNOON: &str = "2026-11-24T18:00:00Z";

async fn bidder() -> TestBidder {
    spawn_test_bidder(CAMPAIGNS, AUDIENCE, AFTERNOON).await.0
}

async fn winner_for(bidder: &TestBidder, request: Value) -> Option<String> {
    let (status, response) = bidder.bid_json(&request).await;
    match status {
        StatusCode::OK => winner(&response),
        StatusCode::NO_CONTENT => None,
        other => panic!("unexpected status {other}: {response:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_in_a_child_segment_wins_the_parent_targeted_campaign() {
    let bidder = bidder().await;
    assert_eq!(
        winner_for(&bidder, banner_request("u-fin-child", 0.0, json!({})))
            .await
            .as_deref(),
        Some("finance")
    );
    assert_eq!(
        winner_for(&bidder, banner_request("stranger", 0.0, json!({})))
            .await
            .as_deref(),
        Some("generic")
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_none_of_segment_blocks() {
    let bidder = bidder().await;
    assert_eq!(
        winner_for(&bidder, banner_request("u-rfm", 0.0, json!({})))
            .await
            .as_deref(),
        Some("not-customers")
    );
    assert_eq!(
        winner_for(&bidder, banner_request("u-rfm-customer", 0.0, json!({})))
            .await
            .as_deref(),
        Some("generic")
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floor_above_every_max_bid_gets_no_bid_and_is_counted() {
    let bidder = bidder().await;
    assert_eq!(
        winner_for(&bidder, banner_request("u-fin-child", 9.5, json!({}))).await,
        None
    );
    let metrics = bidder.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"bullseye_campaign_filtered_total{campaign="finance",reason="floor"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(&metrics, r#"bullseye_no_bids_total{reason="no_match",code="0"}"#),
        1.0
    );
    // A floor in euros is converted: 0.95 EUR = 1.045 USD, above generic's 1.00.
    let eur = banner_request(
        "stranger",
        0.95,
        json!({"imp": [{"id": "1", "bidfloor": 0.95, "bidfloorcur": "EUR", "banner": {"w": 300, "h": 250}}]}),
    );
    assert_eq!(winner_for(&bidder, eur).await, None);
    let eur = banner_request(
        "stranger",
        0.9,
        json!({"imp": [{"id": "1", "bidfloor": 0.9, "bidfloorcur": "EUR", "banner": {"w": 300, "h": 250}}]}),
    );
    assert_eq!(winner_for(&bidder, eur).await.as_deref(), Some("generic"));
    let unknown = banner_request(
        "stranger",
        0.1,
        json!({"imp": [{"id": "1", "bidfloor": 0.1, "bidfloorcur": "XYZ", "banner": {"w": 300, "h": 250}}]}),
    );
    assert_eq!(
        winner_for(&bidder, unknown).await,
        None,
        "unknown floor currency: no bid"
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geo_radius_in_and_out() {
    let bidder = bidder().await;
    let at = |lat: f64, lon: f64| {
        banner_request(
            "stranger",
            0.0,
            json!({"device": {"geo": {"lat": lat, "lon": lon, "country": "USA"}}}),
        )
    };
    assert_eq!(
        winner_for(&bidder, at(40.75, -73.99)).await.as_deref(),
        Some("nyc"),
        "Manhattan"
    );
    assert_eq!(
        winner_for(&bidder, at(42.36, -71.06)).await.as_deref(),
        Some("generic"),
        "Boston"
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_band_from_year_of_birth() {
    let bidder = bidder().await;
    let born = |yob: i64| banner_request("stranger", 0.0, json!({"user": {"yob": yob}}));
    assert_eq!(
        winner_for(&bidder, born(2005)).await.as_deref(),
        Some("young"),
        "21 in 2026"
    );
    assert_eq!(winner_for(&bidder, born(1980)).await.as_deref(), Some("generic"));
    assert_eq!(winner_for(&bidder, born(2010)).await.as_deref(), Some("generic"), "16");
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_parting_in_the_campaign_time_zone() {
    let (bidder, clock) = spawn_test_bidder(CAMPAIGNS, AUDIENCE, AFTERNOON).await;
    assert_eq!(
        winner_for(&bidder, banner_request("stranger", 0.0, json!({})))
            .await
            .as_deref(),
        Some("generic")
    );
    clock.set("2026-11-24T08:00:00Z".parse().unwrap()); // 03:00 in New York
    assert_eq!(
        winner_for(&bidder, banner_request("stranger", 0.0, json!({})))
            .await
            .as_deref(),
        Some("night")
    );
    clock.set("2026-11-24T11:00:00Z".parse().unwrap()); // 06:00: the part ends
    assert_eq!(
        winner_for(&bidder, banner_request("stranger", 0.0, json!({})))
            .await
            .as_deref(),
        Some("generic")
    );
    bidder.stop().await;
}

fn impression_url(response: &Value) -> String {
    url_in_adm(&response["seatbid"][0]["bid"][0], "/t/imp?")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frequency_cap_reached_means_no_bid_for_that_campaign() {
    let (bidder, clock) = spawn_test_bidder(CAMPAIGNS, AUDIENCE, AFTERNOON).await;
    for _ in 0..2 {
        let (status, response) = bidder.bid_json(&banner_request("u-capped", 0.0, json!({}))).await;
        assert_eq!(status, StatusCode::OK);
        let response = response.unwrap();
        assert_eq!(winner(&Some(response.clone())).as_deref(), Some("capped"));
        let pixel = bidder.get(&impression_url(&response)).await;
        assert_eq!(pixel.status(), StatusCode::OK);
        assert_eq!(pixel.headers()["content-type"], "image/gif");
    }
    assert_eq!(
        winner_for(&bidder, banner_request("u-capped", 0.0, json!({})))
            .await
            .as_deref(),
        Some("generic")
    );
    let metrics = bidder.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"bullseye_campaign_filtered_total{campaign="capped",reason="frequency"}"#
        ),
        1.0
    );
    clock.advance(std::time::Duration::from_secs(3600));
    assert_eq!(
        winner_for(&bidder, banner_request("u-capped", 0.0, json!({})))
            .await
            .as_deref(),
        Some("capped"),
        "next hour"
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_auction_without_a_matching_deal_gets_no_bid() {
    let bidder = bidder().await;
    let pmp = |deal: &str, private: u8| {
        banner_request(
            "stranger",
            0.0,
            json!({"imp": [{"id": "1", "banner": {"w": 300, "h": 250},
            "pmp": {"private_auction": private, "deals": [{"id": deal, "bidfloor": 0.2, "at": 2}]}}]}),
        )
    };
    assert_eq!(winner_for(&bidder, pmp("OTHER", 1)).await, None);
    let metrics = bidder.metrics().await;
    assert_eq!(
        metric(&metrics, r#"bullseye_no_bids_total{reason="private_auction",code="0"}"#),
        1.0
    );
    // Open auction allowed: the open campaign bids.
    assert_eq!(winner_for(&bidder, pmp("OTHER", 0)).await.as_deref(), Some("generic"));
    // Our deal: deal bids come first, even below an open bid, and echo the deal.
    let (status, response) = bidder.bid_json(&pmp("D1", 0)).await;
    assert_eq!(status, StatusCode::OK);
    let bid = &response.unwrap()["seatbid"][0]["bid"][0];
    assert_eq!(
        (bid["cid"].as_str(), bid["dealid"].as_str(), bid["price"].as_f64()),
        (Some("deal"), Some("D1"), Some(0.5))
    );
    // A deal floor above the deal campaign's value: back to the open auction.
    let high = banner_request(
        "stranger",
        0.0,
        json!({"imp": [{"id": "1", "banner": {"w": 300, "h": 250},
        "pmp": {"private_auction": 0, "deals": [{"id": "D1", "bidfloor": 0.75}]}}]}),
    );
    assert_eq!(winner_for(&bidder, high).await.as_deref(), Some("generic"));
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coppa_and_missing_consent_strip_personal_targeting() {
    let bidder = bidder().await;
    for privacy in [
        json!({"regs": {"coppa": 1}}),
        json!({"regs": {"ext": {"gdpr": 1}}, "user": {"ext": {"consent": ""}}}),
        json!({"regs": {"us_privacy": "1YYN"}}),
        json!({"device": {"lmt": 1}}),
    ] {
        let request = banner_request("u-fin-child", 0.0, privacy.clone());
        assert_eq!(
            winner_for(&bidder, request).await.as_deref(),
            Some("generic"),
            "{privacy}"
        );
    }
    let request = banner_request("stranger", 0.0, json!({"regs": {"coppa": 1}, "user": {"yob": 2005}}));
    assert_eq!(
        winner_for(&bidder, request).await.as_deref(),
        Some("generic"),
        "age is personal too"
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pricing_first_price_shading_and_cpc() {
    let bidder = bidder().await;
    let price = |response: &Option<Value>| {
        response.as_ref().unwrap()["seatbid"][0]["bid"][0]["price"]
            .as_f64()
            .unwrap()
    };
    let (_, second) = bidder
        .bid_json(&banner_request("u-fin-child", 0.0, json!({"at": 2})))
        .await;
    assert_eq!(price(&second), 4.0);
    let (_, first) = bidder
        .bid_json(&banner_request("u-fin-child", 0.0, json!({"at": 1})))
        .await;
    assert_eq!(price(&first), 3.2, "4.00 × 0.80");
    let (_, floored) = bidder
        .bid_json(&banner_request("u-fin-child", 3.5, json!({"at": 1})))
        .await;
    assert_eq!(price(&floored), 3.5, "shaded to the floor, not below");
    // CPC: 1.00 max CPC × 0.002 pCTR × 1000 = 2.00 CPM.
    let (_, cpc) = bidder
        .bid_json(&banner_request("stranger", 0.0, json!({"device": {"os": "CPCOS"}})))
        .await;
    assert_eq!((winner(&cpc).as_deref(), price(&cpc)), (Some("cpc"), 2.0));
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_seats_and_traffic_quality() {
    let bidder = bidder().await;
    let blocked_cat = banner_request("stranger", 0.0, json!({"bcat": ["IAB3"]}));
    assert_eq!(
        winner_for(&bidder, blocked_cat).await,
        None,
        "IAB3 blocks generic's IAB3-1"
    );
    let blocked_adv = banner_request("u-fin-child", 0.0, json!({"badv": ["bank.example"]}));
    assert_eq!(winner_for(&bidder, blocked_adv).await.as_deref(), Some("generic"));
    let other_seat = banner_request("stranger", 0.0, json!({"wseat": ["someone-else"]}));
    assert_eq!(winner_for(&bidder, other_seat).await, None);
    let our_seat = banner_request("stranger", 0.0, json!({"wseat": ["testseat"]}));
    assert_eq!(winner_for(&bidder, our_seat).await.as_deref(), Some("generic"));
    let crawler = banner_request(
        "stranger",
        0.0,
        json!({"device": {"ua": "Mozilla/5.0 (compatible; Googlebot/2.1)"}}),
    );
    assert_eq!(winner_for(&bidder, crawler).await, None);
    let headless = json!({"device": {"sua": {"browsers": [{"brand": "HeadlessChrome", "version": ["120"]}]}}});
    assert_eq!(
        winner_for(&bidder, banner_request("stranger", 0.0, headless)).await,
        None
    );
    let data_centre = json!({"device": {"ip": "198.51.100.23"}});
    assert_eq!(
        winner_for(&bidder, banner_request("stranger", 0.0, data_centre)).await,
        None
    );
    let metrics = bidder.metrics().await;
    assert_eq!(
        metric(&metrics, r#"bullseye_no_bids_total{reason="non_human",code="4"}"#),
        1.0
    );
    assert_eq!(
        metric(&metrics, r#"bullseye_no_bids_total{reason="data_center",code="5"}"#),
        1.0
    );
    let size = banner_request(
        "stranger",
        0.0,
        json!({"imp": [{"id": "1", "banner": {"w": 728, "h": 90}}]}),
    );
    assert_eq!(winner_for(&bidder, size).await, None, "no creative of that size");
    let metrics = bidder.metrics().await;
    assert_eq!(
        metric(&metrics, r#"bullseye_no_bids_total{reason="crawler",code="3"}"#),
        1.0
    );
    assert_eq!(
        metric(&metrics, r#"bullseye_campaign_bids_total{campaign="paused"}"#),
        0.0,
        "a paused campaign never bids"
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_dates_in_the_campaign_time_zone() {
    let (bidder, clock) = spawn_test_bidder(CAMPAIGNS, AUDIENCE, "2026-11-19T22:59:00Z").await;
    let request = || banner_request("stranger", 0.0, json!({"device": {"os": "FlightOS"}}));
    assert_eq!(
        winner_for(&bidder, request()).await.as_deref(),
        Some("generic"),
        "23:59 in Paris, the day before"
    );
    clock.set("2026-11-19T23:00:00Z".parse().unwrap());
    assert_eq!(
        winner_for(&bidder, request()).await.as_deref(),
        Some("flight"),
        "midnight in Paris: first day"
    );
    clock.set("2026-11-24T22:59:00Z".parse().unwrap());
    assert_eq!(
        winner_for(&bidder, request()).await.as_deref(),
        Some("flight"),
        "last minute of the end date"
    );
    clock.set("2026-11-24T23:00:00Z".parse().unwrap());
    assert_eq!(
        winner_for(&bidder, request()).await.as_deref(),
        Some("generic"),
        "after the end date"
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bid_when_tmax_leaves_no_time() {
    let bidder = bidder().await;
    // tmax 20 ms minus the exchange's 30 ms network allowance: no time left.
    assert_eq!(
        winner_for(&bidder, banner_request("stranger", 0.0, json!({"tmax": 20}))).await,
        None
    );
    let roomy = banner_request("stranger", 0.0, json!({"tmax": 300}));
    assert_eq!(winner_for(&bidder, roomy).await.as_deref(), Some("generic"));
    let metrics = bidder.metrics().await;
    assert_eq!(
        metric(&metrics, r#"bullseye_no_bids_total{reason="timeout",code="1"}"#),
        1.0
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_imp_requests_get_one_bid_per_imp() {
    let bidder = bidder().await;
    let request = banner_request(
        "stranger",
        0.0,
        json!({"imp": [
            {"id": "a", "banner": {"format": [{"w": 728, "h": 90}, {"w": 300, "h": 250}]}},
            {"id": "b", "banner": {"w": 300, "h": 250}, "bidfloor": 99},
            {"id": "c", "banner": {"w": 300, "h": 250}}
        ]}),
    );
    let (status, response) = bidder.bid_json(&request).await;
    assert_eq!(status, StatusCode::OK);
    let bids = response.unwrap()["seatbid"][0]["bid"].as_array().unwrap().clone();
    let imps: Vec<&str> = bids.iter().map(|b| b["impid"].as_str().unwrap()).collect();
    assert_eq!(imps, ["a", "c"]);
    assert!(bids.iter().all(|b| b["w"] == 300 && b["h"] == 250));
    bidder.stop().await;
}
