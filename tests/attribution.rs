//! Issue 15: conversions are credited within each campaign's attribution
//! windows (`click_window`, `view_window`), by last touch, from a store of
//! clicks and views that outlives the notice window and a restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bullseye::clock::{Clock, ManualClock};
use bullseye::ledger::{EventKind, read_all};
use common::*;
use reqwest::StatusCode;
use serde_json::json;

/// Two campaigns of one advertiser: `trips` (default windows: 7 days after
/// a click, 1 day after a view) bids more than `hotels` (2 hours after a
/// click, no view-through), which only bids where `trips` is blocked.
const TRAVEL: &str = r#"
[[campaign]]
id = "trips"
advertiser = "Travel"
adomain = ["trips.example"]
pricing = "cpm"
max_bid = "2.00"
daily_budget = "100"
pacing = "asap"
  [[campaign.creative]]
  id = "t1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.travel.example/a.png"
  landing_url = "https://travel.example/deals"

[[campaign]]
id = "hotels"
advertiser = "Travel"
adomain = ["hotels.example"]
pricing = "cpm"
max_bid = "1.00"
daily_budget = "100"
pacing = "asap"
click_window = "2h"
view_window = "0"
  [[campaign.creative]]
  id = "h1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.travel.example/h.png"
  landing_url = "https://travel.example/hotels"
"#;

struct Setup {
    bidder: Option<TestBidder>,
    clock: Arc<ManualClock>,
    config: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Setup {
        let config = write_config(TEST_SETTINGS, TRAVEL, "u,a\n");
        let settings = format!("{TEST_SETTINGS}{}", postback_settings(config.path()));
        std::fs::write(config.path().join("bullseye.toml"), settings).unwrap();
        let data = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
        let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
        Setup {
            bidder: Some(bidder),
            clock,
            config,
            data,
        }
    }

    fn bidder(&self) -> &TestBidder {
        self.bidder.as_ref().unwrap()
    }

    async fn restart(&mut self) {
        self.bidder.take().unwrap().stop().await;
        let bidder = spawn_bidder_in(self.config.path(), self.data.path(), self.clock.clone(), false).await;
        self.bidder = Some(bidder);
    }

    /// A bid for `user` (blocking `trips` when `hotels`), its impression,
    /// and a click five seconds later unless `view_only`; returns the
    /// winning campaign and the click id.
    async fn touch(&self, user: &str, hotels: bool, view_only: bool) -> (String, Option<String>) {
        let extra = if hotels {
            json!({"badv": ["trips.example"]})
        } else {
            json!({})
        };
        let (_, response) = self.bidder().bid_json(&banner_request(user, 0.0, extra)).await;
        let winner = winner(&response).unwrap();
        let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
        let pixel = self.bidder().get(&url_in_adm(&bid, "/t/imp?")).await;
        assert_eq!(pixel.status(), StatusCode::OK);
        if view_only {
            return (winner, None);
        }
        self.clock.advance(Duration::from_secs(5));
        let answer = self.bidder().get(&url_in_adm(&bid, "/t/click?")).await;
        let location = answer.headers()["location"].to_str().unwrap().to_string();
        (
            winner,
            Some(location.split("bz_click=").nth(1).unwrap().replace("%25", "%")),
        )
    }

    async fn post(&self, query: &str) -> StatusCode {
        let ts = self.clock.now().as_second();
        let url = signed_postback(POSTBACK_SECRET, &format!("{query}&ts={ts}"));
        self.bidder().get(&url).await.status()
    }

    fn advance_hours(&self, hours: u64) {
        self.clock.advance(Duration::from_secs(hours * 3600));
    }

    /// (order, campaign) of each recorded conversion.
    fn conversions(&self) -> Vec<(String, String)> {
        read_all(&self.data.path().join("ledger"))
            .unwrap()
            .into_iter()
            .filter(|r| r.event == EventKind::Conversion)
            .map(|r| (r.order.unwrap_or_default(), r.campaign))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_converts_within_its_campaigns_click_window_even_after_a_restart() {
    let mut s = Setup::new().await;
    let (trips, trips_click) = s.touch("a", false, false).await;
    let (hotels, hotels_click) = s.touch("b", true, false).await;
    assert_eq!((trips.as_str(), hotels.as_str()), ("trips", "hotels"));
    let (trips_click, hotels_click) = (trips_click.unwrap(), hotels_click.unwrap());
    s.advance_hours(1);
    assert_eq!(
        s.post(&format!("click={hotels_click}&order=h-1")).await,
        StatusCode::NO_CONTENT
    );
    s.advance_hours(2);
    assert_eq!(
        s.post(&format!("click={hotels_click}&order=h-2")).await,
        StatusCode::NOT_FOUND,
        "past hotels' two-hour click window"
    );
    // Three days on (past the notice window, whose dedup claims a restart
    // does not bring back), trips' click still converts: seven days.
    s.advance_hours(3 * 24);
    s.restart().await;
    assert_eq!(
        s.post(&format!("click={trips_click}&order=t-1")).await,
        StatusCode::NO_CONTENT
    );
    s.advance_hours(4 * 24);
    assert_eq!(
        s.post(&format!("click={trips_click}&order=t-2")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.conversions(),
        [
            ("h-1".to_string(), "hotels".to_string()),
            ("t-1".to_string(), "trips".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_conversion_goes_to_the_last_touch_within_the_windows() {
    let s = Setup::new().await;
    // User a saw trips (no click); user b clicked hotels, then saw trips.
    s.touch("a", false, true).await;
    s.touch("b", true, false).await;
    s.advance_hours(1);
    s.touch("b", false, true).await;
    assert_eq!(s.post("user=a&order=o-1").await, StatusCode::NO_CONTENT, "view-through");
    assert_eq!(
        s.post("user=b&order=o-2").await,
        StatusCode::NO_CONTENT,
        "the click beats a later view"
    );
    // Two hours on, b's click is out of hotels' window: b's view of trips
    // (a day's view window) takes the credit.
    s.advance_hours(2);
    assert_eq!(s.post("user=b&order=o-3").await, StatusCode::NO_CONTENT);
    // A day on, nothing is left to credit, and Travel runs no experiment.
    s.advance_hours(24);
    assert_eq!(s.post("user=a&order=o-4").await, StatusCode::BAD_REQUEST);
    assert_eq!(s.post("user=nobody&order=o-5").await, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.conversions(),
        [
            ("o-1".to_string(), "trips".to_string()),
            ("o-2".to_string(), "hotels".to_string()),
            ("o-3".to_string(), "trips".to_string()),
        ]
    );
}
