//! The application built without sockets (`App::build`) and driven
//! directly, with a simulated clock: a bid, its billing notice, the
//! housekeeping tick, and a rebuild that restores spend from the ledger
//! through the same event-application function.

mod common;

use std::sync::Arc;
use std::time::Instant;

use bullseye::app::{App, AppOptions};
use bullseye::bidder::Outcome;
use bullseye::clock::{Clock, ManualClock};
use bullseye::tracking::notice::TrackingReply;
use common::*;
use serde_json::{Value, json};

fn build(config: &std::path::Path, data: &std::path::Path, clock: Arc<ManualClock>) -> App {
    App::build(AppOptions {
        config_dir: config.to_path_buf(),
        data_dir: data.to_path_buf(),
        segments: None,
        clock,
        listen_url: "http://bidder.test".into(),
        cluster: None,
        predictor: None,
        simulation: false,
        ledger_storage: None,
    })
    .expect("the app builds")
}

fn spent_today(app: &App) -> i64 {
    let world = app.bidder.world.load();
    let c = world.campaign_by_id("generic").unwrap();
    let view = bullseye::admin::campaigns::live_view(c, app.bidder.clock.now());
    view["today"]["spend_micros"].as_i64().unwrap()
}

#[tokio::test]
async fn an_app_bids_bills_and_restores_without_a_socket() {
    let config = write_config(TEST_SETTINGS, GENERIC, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-06-01T12:00:00Z".parse().unwrap()));
    let app = build(config.path(), data.path(), clock.clone());

    let request = banner_request("u", 0.0, json!({})).to_string();
    let Outcome::Bid { body, bids: 1 } = app.bidder.bid(None, request.as_bytes(), Instant::now()) else {
        panic!("one bid expected");
    };
    let response: Value = serde_json::from_slice(&body).unwrap();
    let burl = response["seatbid"][0]["bid"][0]["burl"].as_str().unwrap();
    assert!(burl.starts_with("http://bidder.test/t/bill?"), "{burl}");
    let query = burl.split_once('?').unwrap().1.replace("${AUCTION_PRICE}", "0.50");
    let world = app.bidder.world.load();
    let reply = app.tracker.handle(&world, clock.now(), "bill", &query, None).await;
    assert_eq!(reply, TrackingReply::Accepted);
    let again = app.tracker.handle(&world, clock.now(), "bill", &query, None).await;
    assert_eq!(again, TrackingReply::Accepted, "a duplicate is acknowledged");
    assert_eq!(
        spent_today(&app),
        500,
        "0.50 CPM is 500 micros per impression, billed once"
    );
    let outstanding = |app: &App| {
        let world = app.bidder.world.load();
        world.campaign_by_id("generic").unwrap().state.spend.outstanding()
    };
    assert_eq!(outstanding(&app).0, 0, "the notice settled the reservation");
    app.tick(60);
    assert_eq!(
        app.live.len(),
        1,
        "the campaign is still in the index: its state is kept"
    );

    // A second app over the same data restores spend and deduplication.
    drop(world);
    drop(app);
    let app = build(config.path(), data.path(), clock.clone());
    assert_eq!(spent_today(&app), 500);
    let world = app.bidder.world.load();
    let replay = app.tracker.handle(&world, clock.now(), "bill", &query, None).await;
    assert_eq!(replay, TrackingReply::Accepted);
    assert_eq!(
        spent_today(&app),
        500,
        "a replayed notice is not billed again after restart"
    );
}

/// A 25-hour day (Los Angeles falls back on 2026-11-01): a restart in its
/// last hour restores the spend of its first, more than 24 hours earlier
/// (the restore used to stop at 24 hours, so that spend could be spent
/// again).
#[tokio::test]
async fn a_restart_late_on_a_25_hour_day_restores_the_whole_day() {
    let campaign = GENERIC.replace(
        "daily_budget = \"100\"",
        "daily_budget = \"100\"\ntime_zone = \"America/Los_Angeles\"",
    );
    let config = write_config(TEST_SETTINGS, &campaign, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    // 00:10 PDT.
    let clock = Arc::new(ManualClock::new("2026-11-01T07:10:00Z".parse().unwrap()));
    let app = build(config.path(), data.path(), clock.clone());
    let request = banner_request("u", 0.0, json!({})).to_string();
    let Outcome::Bid { body, .. } = app.bidder.bid(None, request.as_bytes(), Instant::now()) else {
        panic!("one bid expected");
    };
    let response: Value = serde_json::from_slice(&body).unwrap();
    let burl = response["seatbid"][0]["bid"][0]["burl"].as_str().unwrap();
    let query = burl.split_once('?').unwrap().1.replace("${AUCTION_PRICE}", "0.50");
    let world = app.bidder.world.load();
    let reply = app.tracker.handle(&world, clock.now(), "bill", &query, None).await;
    assert_eq!(reply, TrackingReply::Accepted);
    drop(world);
    drop(app);
    // 23:30 PST the same local day: 24 h 20 min later.
    clock.set("2026-11-02T07:30:00Z".parse().unwrap());
    let app = build(config.path(), data.path(), clock.clone());
    assert_eq!(spent_today(&app), 500);
}
