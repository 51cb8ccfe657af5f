//! Exchanges beyond the 64th: a campaign restricted to exchanges far down
//! the configured list bids there and nowhere else, and requests without an
//! exchange in the path come from the one named `default`, wherever it is
//! listed.

mod common;

use std::sync::Arc;

use bullseye::clock::ManualClock;
use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_campaign_bids_only_on_its_exchanges_past_the_64th() {
    let mut settings = TEST_SETTINGS.replace(
        "[[exchange]]\nname = \"default\"",
        "[[exchange]]\nname = \"x-first\"\n\n[[exchange]]\nname = \"default\"",
    );
    for i in 0..70 {
        settings.push_str(&format!("\n[[exchange]]\nname = \"x{i}\"\n"));
    }
    let campaigns = GENERIC.replace(
        "pricing = \"cpm\"",
        "pricing = \"cpm\"\nexchanges = [\"x66\", \"x69\", \"default\"]",
    );
    let dir = write_config(&settings, &campaigns, "u,a\n");
    let clock = Arc::new(ManualClock::new("2026-06-01T12:00:00Z".parse().unwrap()));
    let mut bidder = spawn_bidder_with(dir.path(), clock, false).await;
    bidder.dirs.push(dir);
    let request = banner_request("u", 0.0, json!({})).to_string();
    for (path, expected) in [
        ("/openrtb2/bid/x69", StatusCode::OK),
        ("/openrtb2/bid/x66", StatusCode::OK),
        ("/openrtb2/bid", StatusCode::OK),
        ("/openrtb2/bid/x65", StatusCode::NO_CONTENT),
        ("/openrtb2/bid/x5", StatusCode::NO_CONTENT),
        ("/openrtb2/bid/x-first", StatusCode::NO_CONTENT),
    ] {
        let (status, _) = bidder.bid_at(path, request.clone()).await;
        assert_eq!(status, expected, "{path}");
    }
    bidder.stop().await;
}
