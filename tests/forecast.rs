//! The forecast end to end: a real server keeps every request
//! (`[sampling] rate = 1`), then `bullseye forecast` replays the sample;
//! at rate 1 its bids are exactly the bids the server made. The admin API
//! answers the same JSON, by role.

mod common;

use std::path::Path;
use std::sync::Arc;

use bullseye::clock::ManualClock;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SEGMENT_TOKEN: &str = "segment-token-0123456789abcdef0123456789";
const DATA_TOKEN: &str = "data-token-0123456789abcdef0123456789ab";

/// Every user id a corpus request carries (`user.id`, `buyeruid`, `ifa`).
fn corpus_users(requests: &[Value]) -> Vec<String> {
    let mut users = Vec::new();
    for r in requests {
        for pointer in ["/user/id", "/user/buyeruid", "/device/ifa"] {
            if let Some(id) = r.pointer(pointer).and_then(Value::as_str) {
                users.push(id.trim().to_string());
            }
        }
    }
    users.retain(|u| !u.is_empty() && !u.contains(','));
    users
}

/// The corpus requests that are JSON.
fn corpus_requests() -> Vec<Value> {
    ["requests/iab", "requests/prebid"]
        .iter()
        .flat_map(|dir| corpus_files(dir))
        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).ok())
        .collect()
}

/// Bids on campaign `fans` in a response.
fn fans_bids(response: &Option<Value>) -> u64 {
    let Some(response) = response else { return 0 };
    response["seatbid"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["bid"].as_array().into_iter().flatten())
        .filter(|b| b["cid"] == "fans")
        .count() as u64
}

fn run_forecast(config: &Path, data: &Path, extra: &[&str]) -> Value {
    forecast_of("fans", config, data, extra)
}

/// `bullseye forecast --campaign CAMPAIGN --json` with `extra` flags.
fn forecast_of(campaign: &str, config: &Path, data: &Path, extra: &[&str]) -> Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bullseye"))
        .args(["forecast", "--campaign", campaign, "--json", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// A server with campaign `fans` (segment `interest/sports`, 3.00), every
/// request sampled; half the synthetic users and every corpus user hold
/// the segment. Its config and data directories.
async fn serve(corpus: &[Value]) -> (TestBidder, tempfile::TempDir, tempfile::TempDir) {
    let mut audience: Vec<String> = (0..40).step_by(2).map(|i| format!("u{i},interest/sports")).collect();
    audience.extend(corpus_users(corpus).iter().map(|u| format!("{u},interest/sports")));
    let settings = format!(
        "{TEST_SETTINGS}{}{}\n[sampling]\nrate = 1\n",
        admin_token_entry("segment", "advertiser", Some("Segment"), SEGMENT_TOKEN),
        admin_token_entry("shop", "advertiser", Some("Shop"), SHOP_TOKEN),
    ) + &admin_token_entry("data", "data", None, DATA_TOKEN);
    let campaign = fans_campaign("interest/sports", "pacing = \"asap\"\n", "");
    let config = write_config(&settings, &campaign, &(audience.join("\n") + "\n"));
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-28T12:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock, false).await;
    (bidder, config, data)
}

/// What was sent and bid.
#[derive(Default)]
struct Sent {
    /// Valid bid requests.
    requests: usize,
    /// Bids of `fans`.
    bids: u64,
    /// Impressions `fans` matched but bid under the floor.
    below_floor: u64,
}

/// 40 synthetic requests (every fifth floored above the bid, every seventh
/// without consent), then the corpus.
async fn send(bidder: &TestBidder, corpus: &[Value]) -> Sent {
    let mut sent = Sent::default();
    for i in 0..40 {
        let floor = if i % 5 == 4 { 5.0 } else { 0.5 };
        let extra = if i % 7 == 3 {
            json!({"regs": {"coppa": 1}})
        } else {
            json!({})
        };
        let (status, response) = bidder.bid_json(&banner_request(&format!("u{i}"), floor, extra)).await;
        assert!(status.is_success(), "{status}");
        sent.requests += 1;
        sent.bids += fans_bids(&response);
        if i % 2 == 0 && i % 5 == 4 && i % 7 != 3 {
            sent.below_floor += 1;
        }
    }
    assert_eq!(sent.bids, 14, "20 fans, 3 without consent, 3 below the floor");
    for request in corpus {
        let (status, response) = bidder.bid(request.to_string()).await;
        if status.is_success() {
            sent.requests += 1;
        }
        sent.bids += fans_bids(&response);
    }
    assert!(sent.bids > 14, "the corpus is bid on too: {}", sent.bids);
    sent
}

/// The samples once the writer has written `n`.
async fn samples(data: &Path, n: usize) -> Vec<bullseye::forecast::sample::Sample> {
    let dir = data.join("sample");
    for _ in 0..500 {
        if bullseye::forecast::sample::read(&dir).len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    bullseye::forecast::sample::read(&dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forecast_at_rate_one_bids_exactly_where_the_bidder_did() {
    let corpus = corpus_requests();
    let (bidder, config, data) = serve(&corpus).await;
    let sent = send(&bidder, &corpus).await;
    let (bids, below_floor) = (sent.bids, sent.below_floor);
    let samples = samples(data.path(), sent.requests).await;
    assert_eq!(samples.len(), sent.requests, "every request kept");
    for sample in &samples {
        let request = sample.request.to_string();
        assert!(
            !request.contains("buyeruid") && !request.contains("\"ifa\""),
            "{request}"
        );
    }

    let forecast = run_forecast(config.path(), data.path(), &[]);
    let total = &forecast["total"];
    assert_eq!(total["requests"], sent.requests as u64);
    assert_eq!(total["bids"], bids, "{forecast}");
    assert_eq!(total["impressions"], bids + below_floor, "{forecast}");
    assert_eq!(forecast["days"].as_array().unwrap().len(), 1);
    assert_eq!(forecast["days"][0]["date"], "2026-11-28");
    assert_eq!(forecast["max_bid"], "3");
    assert_eq!(forecast["win_curves"]["default"], "default");
    let landscape = forecast["landscape"].as_array().unwrap();
    assert_eq!(landscape.len(), 6);
    assert_eq!(landscape[2]["bids"], bids);
    assert_eq!(landscape[5]["max_bid"], "6");
    assert_eq!(landscape[5]["bids"], bids + below_floor, "6.00 clears the 5.00 floors");
    let file = config.path().join("campaigns/test.toml");
    let from_file = forecast_of(file.to_str().unwrap(), config.path(), data.path(), &[]);
    assert_eq!(from_file, forecast, "a campaign file forecasts as its id does");
    let higher = run_forecast(
        config.path(),
        data.path(),
        &["--max-bid", "6", "--daily-budget", "0.01"],
    );
    assert_eq!(higher["total"]["bids"], bids + below_floor);
    assert_eq!(higher["total"]["spend"], "0.01", "the budget caps the day");
    assert_eq!(higher["total"]["capped"], true);
    the_api_answers_the_same_by_role(&bidder, &forecast, &higher).await;
    assert_eq!(metric(&bidder.metrics().await, "bullseye_sample_dropped_total"), 0.0);
    let page = console_page(&bidder, SEGMENT_TOKEN, "/admin/campaigns/fans").await;
    assert!(page.contains("data-forecast=\"fans\""), "{page}");
    let row = format!(
        "<tr data-landscape=\"2×\"><td>2×</td><td>6</td><td class=\"num\">{}</td>",
        bids + below_floor
    );
    assert!(page.contains(&row), "{row} in {page}");
    bidder.stop().await;
}

async fn the_api_answers_the_same_by_role(bidder: &TestBidder, forecast: &Value, higher: &Value) {
    let path = "/admin/api/forecast?campaign=fans";
    let answer = bidder.admin(Method::GET, path).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(&answer.json::<Value>().await.unwrap(), forecast);
    let own = bidder.client.get(bidder.admin_url(path)).bearer_auth(SEGMENT_TOKEN);
    let own = own.send().await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(&own.json::<Value>().await.unwrap(), forecast);
    let higher_api = bidder
        .admin(Method::GET, &format!("{path}&max_bid=6&daily_budget=0.01"))
        .send()
        .await
        .unwrap();
    assert_eq!(&higher_api.json::<Value>().await.unwrap(), higher);
    for (token, status) in [
        (Some(SHOP_TOKEN), StatusCode::NOT_FOUND),
        (Some(DATA_TOKEN), StatusCode::FORBIDDEN),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let mut request = bidder.client.get(bidder.admin_url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        assert_eq!(request.send().await.unwrap().status(), status, "{token:?}");
    }
    let missing = bidder.admin(Method::GET, "/admin/api/forecast?campaign=nope");
    assert_eq!(missing.send().await.unwrap().status(), StatusCode::NOT_FOUND);
    for query in ["max_bid=-5", "max_bid=0", "daily_budget=-1", "max_bid=x"] {
        let answer = bidder
            .admin(Method::GET, &format!("{path}&{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{query}");
    }
}

/// A cookie's value from a response's `set-cookie` headers.
fn cookie(response: &reqwest::Response, name: &str) -> String {
    let prefix = format!("{name}=");
    let header = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} cookie"));
    header.split(';').next().unwrap()[prefix.len()..].to_string()
}

/// A console page, signed in with `token`.
async fn console_page(bidder: &TestBidder, token: &str, path: &str) -> String {
    let page = bidder.client.get(bidder.admin_url("/admin/")).send().await.unwrap();
    let csrf = cookie(&page, "bz_sign_in");
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("csrf_token", csrf.as_str()), ("token", token)])
        .finish();
    let signed_in = bidder
        .client
        .post(bidder.admin_url("/admin/sign-in"))
        .header("cookie", format!("bz_sign_in={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let session = cookie(&signed_in, "bz_session");
    let response = bidder
        .client
        .get(bidder.admin_url(path))
        .header("cookie", format!("bz_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}
