//! No-bid answers (issue 13): `204` by default; for an exchange configured
//! with `no_bid = "nbr"`, `200 {"id", "nbr"}` with the OpenRTB no-bid reason
//! code — unmatched user (8), blocked publisher (7), unsupported device
//! (6), known spider (3), data-centre address (5), invalid request (2).

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn campaigns() -> String {
    fans_campaign(
        "sports",
        "",
        "  domains_block = [\"blocked.example\"]\n  device_types = [2, 4]\n",
    )
}

async fn bidder() -> TestBidder {
    let settings = format!("{TEST_SETTINGS}\n[[exchange]]\nname = \"nbrx\"\nno_bid = \"nbr\"\n");
    let dir = write_config(&settings, &campaigns(), "fan-1,sports\n");
    let clock = std::sync::Arc::new(bullseye::clock::ManualClock::new(
        "2026-11-19T14:00:00Z".parse().unwrap(),
    ));
    let mut bidder = spawn_bidder_with(dir.path(), clock, false).await;
    bidder.dirs.push(dir);
    bidder
}

async fn nbr(bidder: &TestBidder, request: &Value) -> Value {
    let (status, response) = bidder.bid_at("/openrtb2/bid/nbrx", request.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{request}");
    let response = response.unwrap();
    let errors: Vec<String> = response_validator()
        .iter_errors(&response)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(response.get("seatbid").is_none(), "{response}");
    assert_eq!(response["id"], request["id"]);
    response["nbr"].clone()
}

#[tokio::test]
async fn each_no_bid_carries_its_reason_code() {
    let bidder = bidder().await;
    // The segment campaign bids on its user.
    let (status, _) = bidder
        .bid_at(
            "/openrtb2/bid/nbrx",
            banner_request("fan-1", 0.5, json!({})).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let cases = [
        ("unknown user", banner_request("stranger", 0.5, json!({})), 8),
        (
            "blocked publisher",
            banner_request("fan-1", 0.5, json!({"site": {"domain": "www.blocked.example"}})),
            7,
        ),
        (
            "unsupported device",
            banner_request("fan-1", 0.5, json!({"device": {"devicetype": 3}})),
            6,
        ),
        (
            "known spider",
            banner_request(
                "fan-1",
                0.5,
                json!({"device": {"ua": "Googlebot/2.1 (+http://www.google.com/bot.html)"}}),
            ),
            3,
        ),
        (
            "data-centre address",
            banner_request("fan-1", 0.5, json!({"device": {"ip": "198.51.100.9"}})),
            5,
        ),
        (
            "unreadable block list",
            banner_request("fan-1", 0.5, json!({"bcat": {"x": 1}})),
            2,
        ),
        ("floor above the value", banner_request("fan-1", 9.0, json!({})), 0),
    ];
    for (case, request, code) in cases {
        assert_eq!(nbr(&bidder, &request).await, json!(code), "{case}");
    }
    // The default exchange keeps the empty 204.
    let (status, body) = bidder.bid_json(&banner_request("stranger", 0.5, json!({}))).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, None));
    let metrics = bidder.metrics().await;
    assert_eq!(
        metric(&metrics, r#"bullseye_no_bids_total{reason="unmatched_user",code="8"}"#),
        2.0
    );
    bidder.stop().await;
}
