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

/// What the bundled config answers to one request, as explain tells it:
/// `bid 1=campaign 2=campaign`, or `no bid (reason)` with, per impression,
/// the distinct reasons that kept every campaign out.
fn answer_of(explanation: &Value) -> String {
    if let Some(reason) = explanation["no_bid"].as_str() {
        return format!("no bid ({reason})");
    }
    let imps = explanation["imp"].as_array().unwrap();
    let winners: Vec<String> = imps
        .iter()
        .filter_map(|imp| Some(format!("{}={}", imp["impid"].as_str()?, imp["winner"].as_str()?)))
        .collect();
    if !winners.is_empty() {
        return format!("bid {}", winners.join(" "));
    }
    let reasons: Vec<String> = imps
        .iter()
        .map(|imp| {
            let mut why: Vec<&str> = imp["campaigns"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["reason"].as_str())
                .collect();
            why.sort_unstable();
            why.dedup();
            format!("{}: {}", imp["impid"].as_str().unwrap_or("?"), why.join(","))
        })
        .collect();
    format!("no bid ({})", reasons.join("; "))
}

/// Issue 13: a committed table (`tests/corpus-answers.tsv`) gives, for every
/// corpus request and the bundled config at a fixed time, the expected
/// answer; explain must give it, and the bid path must bid exactly where
/// the table says and with the same winners. Regenerate the table with
/// `BULLSEYE_BLESS=1 cargo test --test corpus` after a deliberate change,
/// and review its diff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_gets_the_answers_of_the_committed_table() {
    let clock = std::sync::Arc::new(bullseye::clock::ManualClock::new(
        "2026-11-19T15:00:00Z".parse().unwrap(),
    ));
    let bidder = spawn_bidder_with(&repo_root().join("bidder-config"), clock, false).await;
    let table_path = repo_root().join("tests/corpus-answers.tsv");
    let mut table = String::from("request\tanswer\n");
    let mut disagreements = Vec::new();
    for dir in ["requests/iab", "requests/prebid"] {
        for path in corpus_files(dir) {
            let name = format!("{}/{}", &dir[9..], path.file_name().unwrap().to_string_lossy());
            let body = std::fs::read(&path).unwrap();
            let explanation: Value = bidder
                .client
                .post(bidder.admin_url("/admin/api/explain"))
                .bearer_auth(bullseye::config::DEV_ADMIN_TOKEN)
                .body(body.clone())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let answer = answer_of(&explanation);
            let (status, response) = bidder.bid(body).await;
            let bid_winners = response.as_ref().filter(|_| status == StatusCode::OK).map(|r| {
                let mut winners: Vec<String> = r["seatbid"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|s| s["bid"].as_array().unwrap().clone())
                    .map(|b| format!("{}={}", b["impid"].as_str().unwrap(), b["cid"].as_str().unwrap()))
                    .collect();
                winners.sort();
                winners
            });
            let mut explained: Vec<String> = answer
                .strip_prefix("bid ")
                .map(|w| w.split(' ').map(str::to_string).collect())
                .unwrap_or_default();
            explained.sort();
            match (status, bid_winners) {
                (StatusCode::OK, Some(winners)) if winners == explained => {}
                (StatusCode::NO_CONTENT, None) if explained.is_empty() => {}
                (status, winners) => disagreements.push(format!(
                    "{name}: explain says {answer:?}, the bid path {status} {winners:?}"
                )),
            }
            table.push_str(&format!("{name}\t{answer}\n"));
        }
    }
    bidder.stop().await;
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    if std::env::var_os("BULLSEYE_BLESS").is_some() {
        std::fs::write(&table_path, &table).unwrap();
    }
    let committed = std::fs::read_to_string(&table_path).unwrap_or_default();
    let changed: Vec<String> = table
        .lines()
        .filter(|line| !committed.lines().any(|c| c == *line))
        .map(str::to_string)
        .collect();
    assert!(
        changed.is_empty() && committed.lines().count() == table.lines().count(),
        "answers differ from tests/corpus-answers.tsv (BULLSEYE_BLESS=1 to accept):\n{}",
        changed.join("\n")
    );
}
