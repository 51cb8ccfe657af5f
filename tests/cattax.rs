//! `cattax` (issue 13): block lists and site/app categories sent in IAB
//! Content Taxonomy 2.x are understood through the IAB Tech Lab's mapping;
//! a block list in a taxonomy the bidder cannot read blocks everything.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CAMPAIGNS: &str = r#"
[[campaign]]
id = "parts"
advertiser = "Generic"
adomain = ["parts.example"]
cat = ["IAB2-1"]
pricing = "cpm"
max_bid = "2.00"
daily_budget = "100"
  [campaign.targeting]
  categories_allow = ["IAB2"]
  [[campaign.creative]]
  id = "p1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.parts.example/a.png"
  landing_url = "https://parts.example/"
"#;

fn request(extra: Value) -> Value {
    let mut request = banner_request("u", 0.1, json!({"site": {"cat": ["IAB2"]}}));
    merge(&mut request, extra);
    request
}

#[tokio::test]
async fn block_lists_and_site_categories_in_taxonomy_2_are_understood() {
    let (bidder, _) = spawn_test_bidder(CAMPAIGNS, "u,a\n", "2026-11-19T14:00:00Z").await;
    let cases = [
        (
            "1.0 block of the parent",
            json!({"bcat": ["IAB2"]}),
            StatusCode::NO_CONTENT,
        ),
        (
            "a 2.x id read as 1.0 blocks nothing",
            json!({"bcat": ["1"]}),
            StatusCode::OK,
        ),
        (
            "2.2: Automotive covers Auto Parts",
            json!({"bcat": ["1"], "cattax": 6}),
            StatusCode::NO_CONTENT,
        ),
        (
            "2.0: Auto Parts itself",
            json!({"bcat": ["32"], "cattax": 2}),
            StatusCode::NO_CONTENT,
        ),
        (
            "2.1: Business and Finance",
            json!({"bcat": ["52"], "cattax": 5}),
            StatusCode::OK,
        ),
        (
            "an id in no table",
            json!({"bcat": ["no-such"], "cattax": 6}),
            StatusCode::NO_CONTENT,
        ),
        (
            "ad product taxonomy: unreadable",
            json!({"bcat": ["1"], "cattax": 3}),
            StatusCode::NO_CONTENT,
        ),
        ("no block list at all", json!({"bcat": [], "cattax": 3}), StatusCode::OK),
        (
            "site in 2.2: Auto Parts is under IAB2",
            json!({"site": {"cat": ["32"], "cattax": 6}}),
            StatusCode::OK,
        ),
        (
            "site in 2.2: Business",
            json!({"site": {"cat": ["52"], "cattax": 6}}),
            StatusCode::NO_CONTENT,
        ),
        (
            "site in an unknown taxonomy",
            json!({"site": {"cat": ["IAB2"], "cattax": 4}}),
            StatusCode::NO_CONTENT,
        ),
    ];
    for (case, extra, expected) in cases {
        let (status, _) = bidder.bid_json(&request(extra)).await;
        assert_eq!(status, expected, "{case}");
    }
    bidder.stop().await;
}
