//! The default config against every request of the shared corpus: never a
//! 400 or 5xx for a valid request, every bid a conformant BidResponse; every
//! malformed input a 400 or 413, with the server still serving.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

mod common;

use std::collections::HashMap;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

/// Serves the IAB schema files to the validator by their `$id` file name.
struct SchemaFiles(HashMap<String, Value>);

impl jsonschema::Retrieve for SchemaFiles {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.as_str().rsplit('/').next().unwrap_or_default();
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| format!("no schema {name}").into())
    }
}

fn response_validator() -> jsonschema::Validator {
    let dir = repo_root().join("../shared/openrtb-schema");
    let load =
        |name: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap() };
    let files: HashMap<String, Value> = ["Bid.json", "SeatBid.json", "BidResponse.json"]
        .iter()
        .map(|n| (n.to_string(), load(n)))
        .collect();
    let root = files["BidResponse.json"].clone();
    jsonschema::options()
        .with_retriever(SchemaFiles(files))
        .build(&root)
        .expect("schema compiles")
}

fn floor_of(imp: &Value) -> (f64, String) {
    let floor = imp.get("bidfloor").and_then(Value::as_f64).unwrap_or(0.0);
    let currency = imp
        .get("bidfloorcur")
        .and_then(Value::as_str)
        .unwrap_or("USD")
        .to_uppercase();
    (floor, currency)
}

fn banner_sizes(imp: &Value) -> Vec<(i64, i64)> {
    let Some(banner) = imp.get("banner") else {
        return vec![];
    };
    let mut sizes: Vec<(i64, i64)> = banner
        .get("format")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f.get("w")?.as_i64()?, f.get("h")?.as_i64()?)))
        .collect();
    if let (Some(w), Some(h)) = (
        banner.get("w").and_then(Value::as_i64),
        banner.get("h").and_then(Value::as_i64),
    ) {
        sizes.push((w, h));
    }
    sizes
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Checks one bid response against its request; returns the problems.
fn conformance(request: &Value, response: &Value, validator: &jsonschema::Validator) -> Vec<String> {
    let mut problems: Vec<String> = validator
        .iter_errors(response)
        .map(|e| format!("schema: {e} at {}", e.instance_path()))
        .collect();
    if response["id"] != request["id"] {
        problems.push("response id does not echo the request id".into());
    }
    let currency = response["cur"].as_str().unwrap_or("USD").to_string();
    let imps: HashMap<&str, &Value> = request["imp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), i))
        .collect();
    let badv = strings(request.get("badv"));
    let bcat = strings(request.get("bcat"));
    let mut seen = Vec::new();
    for seatbid in response["seatbid"].as_array().into_iter().flatten() {
        for bid in seatbid["bid"].as_array().into_iter().flatten() {
            let impid = bid["impid"].as_str().unwrap_or_default();
            let Some(imp) = imps.get(impid) else {
                problems.push(format!("bid for unknown imp {impid}"));
                continue;
            };
            if seen.contains(&impid) {
                problems.push(format!("two bids for imp {impid}"));
            }
            seen.push(impid);
            let price = bid["price"].as_f64().unwrap_or(-1.0);
            let (floor, floor_currency) = floor_of(imp);
            if price <= 0.0 || (floor_currency == currency && price + 1e-9 < floor) {
                problems.push(format!("price {price} {currency} under floor {floor} {floor_currency}"));
            }
            if bid["mtype"] == 1 {
                let size = (bid["w"].as_i64().unwrap_or(0), bid["h"].as_i64().unwrap_or(0));
                if !banner_sizes(imp).contains(&size) {
                    problems.push(format!("banner size {size:?} not offered"));
                }
                let adm = bid["adm"].as_str().unwrap_or_default();
                if !adm.contains("/t/imp?") || !adm.contains("/t/click?") {
                    problems.push("banner adm lacks the impression pixel or click link".into());
                }
            }
            for domain in strings(bid.get("adomain")) {
                if badv.iter().any(|b| domain.ends_with(b.as_str())) {
                    problems.push(format!("adomain {domain} is blocked"));
                }
            }
            for cat in strings(bid.get("cat")) {
                if bcat.iter().any(|b| cat == *b || cat.starts_with(&format!("{b}-"))) {
                    problems.push(format!("category {cat} is blocked"));
                }
            }
            for field in ["nurl", "burl"] {
                if !bid[field].as_str().unwrap_or_default().contains("${AUCTION_PRICE}") {
                    problems.push(format!("{field} lacks ${{AUCTION_PRICE}}"));
                }
            }
            for field in ["cid", "crid", "adid", "adm"] {
                if bid[field].as_str().is_none_or(str::is_empty) {
                    problems.push(format!("missing {field}"));
                }
            }
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_request_gets_a_conformant_answer() {
    let bidder = spawn_default_bidder().await;
    let validator = response_validator();
    let mut failures = Vec::new();
    let (mut bids, mut total) = (0, 0);
    for dir in ["requests/iab", "requests/prebid"] {
        for path in corpus_files(dir) {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let body = std::fs::read(&path).unwrap();
            let request: Value = serde_json::from_slice(&body).unwrap();
            let (status, response) = bidder.bid(body).await;
            total += 1;
            match status {
                StatusCode::OK => {
                    bids += 1;
                    let response = response.expect("200 carries JSON");
                    for problem in conformance(&request, &response, &validator) {
                        failures.push(format!("{name}: {problem}"));
                    }
                }
                StatusCode::NO_CONTENT if dir == "requests/iab" => {
                    failures.push(format!("{name}: no bid on an IAB example"))
                }
                StatusCode::NO_CONTENT => {}
                other => failures.push(format!("{name}: status {other}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        bids * 100 >= total * 85,
        "the default config bid on only {bids} of {total} corpus requests"
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_400_or_413_and_the_server_keeps_serving() {
    let bidder = spawn_default_bidder().await;
    let mut files: Vec<_> = std::fs::read_dir(corpus().join("bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (status, body) = bidder.bid(std::fs::read(&path).unwrap()).await;
        let expected = if name.starts_with("oversized") {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(status, expected, "{name}");
        let error = body.as_ref().and_then(|b| b["error"].as_str()).unwrap_or_default();
        assert!(!error.is_empty(), "{name}: no error reason");
        assert_eq!(
            bidder.get("/healthz").await.status(),
            StatusCode::OK,
            "server down after {name}"
        );
    }
    let simple = std::fs::read(corpus().join("requests/iab/simple-banner.json")).unwrap();
    assert_eq!(
        bidder.bid(simple).await.0,
        StatusCode::OK,
        "still bidding after the bad inputs"
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pmp_deal_bid_echoes_the_deal_and_respects_its_floor() {
    let bidder = spawn_default_bidder().await;
    let (status, response) = bidder
        .bid(std::fs::read(corpus().join("requests/iab/pmp-direct-deal.json")).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = response.unwrap();
    let bid = &response["seatbid"][0]["bid"][0];
    assert_eq!(bid["dealid"], "AB-Agency1-0001");
    assert_eq!(response["seatbid"][0]["seat"], "Agency1");
    // Deal at=1 (first price): 5.00 shaded by 0.85, above the 2.50 deal floor.
    assert_eq!(bid["price"], 4.25);
    bidder.stop().await;
}
