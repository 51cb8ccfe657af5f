//! Tolerant decoding (issue 13): a known field of the wrong type is
//! coerced, given its most restrictive reading, or ignored, and counted in
//! `bullseye_request_fields_ignored_total{field, how}`; only a body that
//! cannot be a bid request is refused.

mod common;

use bullseye::bidder::decode::{DecodeError, decode};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The generic campaign, and one targeting the `sports` segment.
fn campaigns() -> String {
    fans_campaign("sports", "cat = [\"IAB17\"]\n", "") + GENERIC
}

const AUDIENCE: &str = "fan-1,sports\n";

async fn bidder() -> TestBidder {
    spawn_test_bidder(&campaigns(), AUDIENCE, "2026-11-19T14:00:00Z")
        .await
        .0
}

fn counted(metrics: &str, field: &str, how: &str) -> f64 {
    metric(
        metrics,
        &format!(r#"bullseye_request_fields_ignored_total{{field="{field}",how="{how}"}}"#),
    )
}

#[tokio::test]
async fn coercible_fields_are_coerced_and_the_request_bid() {
    let bidder = bidder().await;
    let mut request = banner_request("fan-1", 0.5, json!({"user": {"yob": "1984"}, "site": {"cat": "IAB12"}}));
    request["imp"][0]["id"] = json!(1);
    request["imp"][0]["banner"]["w"] = json!("300");
    let (status, response) = bidder.bid_json(&request).await;
    assert_eq!(status, StatusCode::OK, "{response:?}");
    assert_eq!(winner(&response).as_deref(), Some("fans"));
    let bid = &response.as_ref().unwrap()["seatbid"][0]["bid"][0];
    assert_eq!(bid["impid"], "1", "the numeric impression id is echoed as a string");
    let metrics = bidder.metrics().await;
    assert_eq!(counted(&metrics, "user.yob", "coerced"), 1.0);
    assert_eq!(counted(&metrics, "site.cat", "coerced"), 1.0);
    assert_eq!(counted(&metrics, "imp[].id", "coerced"), 1.0);
    assert_eq!(counted(&metrics, "imp[].banner.w", "coerced"), 1.0);
    bidder.stop().await;
}

#[tokio::test]
async fn a_string_bcat_never_lets_a_blocked_category_through() {
    let bidder = bidder().await;
    // One string where a list is expected: coerced, and it blocks.
    let (status, response) = bidder
        .bid_json(&banner_request("fan-1", 0.5, json!({"bcat": "IAB17"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(winner(&response).as_deref(), Some("generic"));
    // A block list that cannot be read: nothing is bid.
    for unreadable in [json!({"x": 1}), json!(true), json!(["IAB1", {"x": 1}])] {
        let (status, response) = bidder
            .bid_json(&banner_request("fan-1", 0.5, json!({"bcat": unreadable})))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{unreadable}: {response:?}");
    }
    let (status, _) = bidder
        .bid_json(&banner_request("fan-1", 0.5, json!({"badv": false})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "an unreadable badv blocks");
    let metrics = bidder.metrics().await;
    assert_eq!(counted(&metrics, "bcat", "coerced"), 1.0);
    assert_eq!(counted(&metrics, "bcat", "restricted"), 3.0);
    assert_eq!(
        metric(
            &metrics,
            r#"bullseye_no_bids_total{reason="unreadable_blocks",code="2"}"#
        ),
        4.0
    );
    bidder.stop().await;
}

#[tokio::test]
async fn privacy_fields_of_the_wrong_type_mean_no_personal_data() {
    let bidder = bidder().await;
    // The segment campaign bids (3.00) over the generic one with personal data.
    let (_, response) = bidder.bid_json(&banner_request("fan-1", 0.5, json!({}))).await;
    assert_eq!(winner(&response).as_deref(), Some("fans"));
    for regs in [
        json!({"coppa": "1"}),
        json!({"coppa": "yes"}),
        json!({"coppa": {"x": 1}}),
        json!({"gdpr": "sure"}),
        json!({"us_privacy": {"x": 1}}),
        json!({"gpp": ["a"]}),
        json!("not an object"),
    ] {
        let (status, response) = bidder
            .bid_json(&banner_request("fan-1", 0.5, json!({"regs": regs})))
            .await;
        assert_eq!(status, StatusCode::OK, "{regs}");
        assert_eq!(
            winner(&response).as_deref(),
            Some("generic"),
            "{regs}: personal segments must not be used"
        );
    }
    let (_, response) = bidder
        .bid_json(&banner_request("fan-1", 0.5, json!({"device": {"lmt": "maybe"}})))
        .await;
    assert_eq!(
        winner(&response).as_deref(),
        Some("generic"),
        "an unreadable lmt is set"
    );
    let metrics = bidder.metrics().await;
    assert_eq!(counted(&metrics, "regs.coppa", "restricted"), 2.0);
    assert_eq!(counted(&metrics, "regs", "restricted"), 1.0);
    assert_eq!(counted(&metrics, "device.lmt", "restricted"), 1.0);
    bidder.stop().await;
}

#[tokio::test]
async fn floors_that_cannot_be_read_mean_no_bid_for_their_impression() {
    let bidder = bidder().await;
    let mut request = banner_request("x", 0.5, json!({}));
    request["imp"] = json!([
        {"id": "a", "bidfloor": "0.75", "banner": {"w": 300, "h": 250}},
        {"id": "b", "bidfloor": "cheap", "banner": {"w": 300, "h": 250}},
        {"id": "c", "bidfloor": 0.5, "bidfloorcur": {"code": "USD"}, "banner": {"w": 300, "h": 250}},
        {"id": "d", "bidfloor": 0.5, "pmp": "private", "banner": {"w": 300, "h": 250}}
    ]);
    let (status, response) = bidder.bid_json(&request).await;
    assert_eq!(status, StatusCode::OK);
    let bids = response.as_ref().unwrap()["seatbid"][0]["bid"]
        .as_array()
        .unwrap()
        .clone();
    let imps: Vec<&str> = bids.iter().map(|b| b["impid"].as_str().unwrap()).collect();
    assert_eq!(imps, ["a"], "only the impression whose floor could be read");
    let metrics = bidder.metrics().await;
    assert_eq!(counted(&metrics, "imp[].bidfloor", "coerced"), 1.0);
    assert_eq!(counted(&metrics, "imp[].bidfloor", "restricted"), 1.0);
    assert_eq!(counted(&metrics, "imp[].bidfloorcur", "restricted"), 1.0);
    assert_eq!(counted(&metrics, "imp[].pmp", "restricted"), 1.0);
    bidder.stop().await;
}

#[tokio::test]
async fn other_fields_of_the_wrong_type_are_ignored_and_counted() {
    let bidder = bidder().await;
    let request = banner_request(
        "fan-1",
        0.5,
        json!({"tmax": "soon", "device": {"geo": "Paris", "devicetype": {"x": 1}}, "site": {"page": ["x"]}}),
    );
    let (status, response) = bidder.bid_json(&request).await;
    assert_eq!(status, StatusCode::OK, "{response:?}");
    assert_eq!(winner(&response).as_deref(), Some("fans"));
    let metrics = bidder.metrics().await;
    for field in ["tmax", "device.geo", "device.devicetype", "site.page"] {
        assert_eq!(counted(&metrics, field, "ignored"), 1.0, "{field}");
    }
    // What cannot be a request is still refused, with its reason.
    let (status, body) = bidder.bid(r#"{"id":"r","imp":[{"id":"1","banner":{}},"x"]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body.unwrap()["error"], "impression 1 is not an object");
    bidder.stop().await;
}

/// Every leaf and object of every corpus request, given each wrong type in
/// turn, still decodes: only the fields a bid needs (`id`, `imp`, an
/// impression's `id` and media) may refuse the request, and with their
/// own reason, never a JSON error. This is what keeps the repair table
/// complete as the decoder learns new fields.
#[test]
fn no_field_of_the_wrong_type_refuses_a_corpus_request() {
    let wrong = [
        json!({"x": 1}),
        json!("zz"),
        json!([{"x": 1}]),
        json!(true),
        json!(-1.5),
    ];
    let mut tried = 0;
    for file in corpus_files("requests/iab")
        .into_iter()
        .chain(corpus_files("requests/prebid"))
    {
        let original: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let mut pointers = Vec::new();
        collect_pointers(&original, String::new(), &mut pointers);
        for pointer in pointers {
            for value in &wrong {
                let mut request = original.clone();
                *request.pointer_mut(&pointer).unwrap() = value.clone();
                let body = request.to_string();
                tried += 1;
                match decode(body.as_bytes(), &mut String::new()) {
                    Ok(_) => {}
                    Err(
                        DecodeError::MissingId
                        | DecodeError::NoImpressions
                        | DecodeError::ImpMissingId(_)
                        | DecodeError::ImpNoMedia(_)
                        | DecodeError::ImpNotObject(_),
                    ) if is_required(&pointer) => {}
                    Err(e) => panic!("{}: {pointer} = {value}: {e}", file.display()),
                }
            }
        }
    }
    assert!(tried > 10_000, "only {tried} cases");
}

/// The fields whose absence refuses a request: `id`, `imp`, each
/// impression's `id`, and the media objects (an impression left without
/// any is refused).
fn is_required(pointer: &str) -> bool {
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    matches!(
        parts.as_slice(),
        ["id" | "imp"] | ["imp", _] | ["imp", _, "id" | "banner" | "video" | "audio" | "native"]
    )
}

fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    if !at.is_empty() {
        out.push(at.clone());
    }
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                collect_pointers(
                    inner,
                    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                collect_pointers(inner, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The README lists every field the bidder reads, from the repair table.
#[test]
fn the_readme_lists_the_fields_the_bidder_reads() {
    let path = repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find("<!-- openrtb-fields -->")
        .expect("README has the field table marker")
        + 23;
    let end = readme
        .find("<!-- /openrtb-fields -->")
        .expect("README has the closing marker");
    if std::env::var_os("BULLSEYE_BLESS").is_some() {
        let table = bullseye::openrtb::repair::markdown_table();
        std::fs::write(&path, format!("{}\n{table}{}", &readme[..start], &readme[end..])).unwrap();
        return;
    }
    assert_eq!(
        readme[start..end].trim(),
        bullseye::openrtb::repair::markdown_table().trim(),
        "README's field table is out of date: run this test with BULLSEYE_BLESS=1"
    );
}
