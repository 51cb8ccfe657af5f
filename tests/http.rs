//! The HTTP surface: methods, content types, limits, gzip, OpenRTB version
//! header, exchanges by path, health, metrics, and signed tracking URLs.

mod common;

use std::io::Write;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn simple_banner() -> Vec<u8> {
    std::fs::read(corpus().join("requests/iab/simple-banner.json")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_content_type_and_unknown_paths() {
    let bidder = spawn_default_bidder().await;
    let get = bidder.get("/openrtb2/bid").await;
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.headers()["allow"], "POST");
    let xml = bidder
        .client
        .post(bidder.url("/openrtb2/bid"))
        .header("content-type", "application/xml")
        .body(simple_banner())
        .send()
        .await
        .unwrap();
    assert_eq!(xml.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let brotli = bidder
        .client
        .post(bidder.url("/openrtb2/bid"))
        .header("content-encoding", "br")
        .body(simple_banner())
        .send()
        .await
        .unwrap();
    assert_eq!(brotli.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(bidder.get("/nowhere").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        bidder.bid_at("/openrtb2/bid/no-such-exchange", simple_banner()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(bidder.get("/healthz").await.status(), StatusCode::OK);
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_requests_and_responses() {
    let bidder = spawn_default_bidder().await;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&simple_banner()).unwrap();
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = raw
        .post(bidder.url("/openrtb2/bid"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("accept-encoding", "gzip")
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let body = response.bytes().await.unwrap();
    let inflated = bullseye::server::body::inflate(&body, 1 << 20).unwrap();
    let json: Value = serde_json::from_slice(&inflated).unwrap();
    assert_eq!(json["id"], "80ce30c53c16e6ede735f123ef6e32361bfc7b22");
    // Without Accept-Encoding the answer is plain JSON.
    let plain = raw
        .post(bidder.url("/openrtb2/bid"))
        .body(simple_banner())
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    // A gzip bomb inflating past the body limit is refused.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(&vec![b' '; 2 << 20]).unwrap();
    let bomb = raw
        .post(bidder.url("/openrtb2/bid"))
        .header("content-encoding", "gzip")
        .body(bomb.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(bomb.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let broken = raw
        .post(bidder.url("/openrtb2/bid"))
        .header("content-encoding", "gzip")
        .body("not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openrtb_version_header_and_exchange_paths() {
    let bidder = spawn_default_bidder().await;
    let response = bidder
        .client
        .post(bidder.url("/openrtb2/bid"))
        .header("x-openrtb-version", "2.5")
        .body(simple_banner())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-openrtb-version"], "2.5");
    let response = bidder
        .client
        .post(bidder.url("/openrtb2/bid"))
        .body(simple_banner())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-openrtb-version"], "2.6");
    // The second exchange has its own seat.
    let (status, body) = bidder.bid_at("/openrtb2/bid/examplex", simple_banner()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.unwrap()["seatbid"][0]["seat"], "bullseye-x");
    let metrics = bidder.metrics().await;
    assert_eq!(
        metric(&metrics, r#"bullseye_bid_requests_total{exchange="examplex"}"#),
        1.0
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let bidder = spawn_default_bidder().await;
    let mut request: Value = serde_json::from_slice(&simple_banner()).unwrap();
    request["ext"] = json!({"padding": "x".repeat(300_000)});
    let (status, body) = bidder.bid(request.to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body.unwrap()["error"].as_str().unwrap().contains("too large"));
    // Chunked, without Content-Length: the limit still holds.
    let mut raw = String::from("POST /openrtb2/bid HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n");
    for _ in 0..40 {
        raw.push_str(&format!("2710\r\n{}\r\n", " ".repeat(10_000)));
    }
    raw.push_str("0\r\n\r\n");
    let answer = raw_http(bidder.addr, raw.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(bidder.get("/healthz").await.status(), StatusCode::OK);
    bidder.stop().await;
}

/// Sends raw bytes, returns what the server answered before closing (or
/// within a second).
async fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_urls_are_signed_and_land_where_they_should() {
    let bidder = spawn_default_bidder().await;
    let (status, response) = bidder.bid(simple_banner()).await;
    assert_eq!(status, StatusCode::OK);
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    let nurl = bid["nurl"].as_str().unwrap();
    assert!(nurl.starts_with(&bidder.url("/t/win?")), "{nurl}");
    // The win notice with a clearing price under the bid is taken.
    let win = bidder.get(&nurl.replace("${AUCTION_PRICE}", "1.10")).await;
    assert_eq!(win.status(), StatusCode::NO_CONTENT);
    // Above the bid, negative, or missing: refused, not billed.
    let price = bid["price"].as_f64().unwrap();
    for bad in [
        format!("{}", price + 1.0),
        "-1".to_string(),
        "abc".to_string(),
        "${AUCTION_PRICE}".to_string(),
    ] {
        let answer = bidder.get(&nurl.replace("${AUCTION_PRICE}", &bad)).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "price {bad}");
    }
    // The click redirects to the landing page with UTM parameters.
    let click = url_in_adm(&bid, "/t/click?");
    let answer = bidder.get(&click).await;
    assert_eq!(answer.status(), StatusCode::FOUND);
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("https://globex-bank.example/savings?utm_source=default&utm_medium=display&utm_campaign=globex-finance&utm_content=globex-300x250"), "{location}");
    // Forged or altered URLs: 403, counted.
    let forged = [
        click.replace("c=globex-finance", "c=acme-display"),
        click.replace("/t/click?", "/t/imp?"),
        format!("{}x", click),
        click[..click.len() - 1].to_string(),
    ];
    for url in &forged {
        assert_eq!(bidder.get(url).await.status(), StatusCode::FORBIDDEN, "{url}");
    }
    let metrics = bidder.metrics().await;
    assert_eq!(metric(&metrics, "bullseye_tracking_rejected_total"), 4.0);
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_bidder_on_the_same_port_fails_instead_of_sharing_it() {
    let first = spawn_default_bidder().await;
    let data = tempfile::tempdir().unwrap();
    let options = bullseye::server::ServeOptions {
        config_dir: repo_root().join("bidder-config"),
        listen: first.addr,
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_path_buf(),
        segments: None,
        clock: std::sync::Arc::new(bullseye::clock::SystemClock),
        watch: false,
        allow_dev_secrets: false,
        redis_url: None,
        node_id: None,
        ledger_storage: None,
    };
    match bullseye::server::start(options).await {
        Err(bullseye::server::StartError::Bind { .. }) => {}
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a second bidder started on {}", first.addr),
    }
    let (status, _) = first.bid(simple_banner()).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    first.stop().await;
}

/// Issue 17 (test honesty): the per-campaign metrics had a doubled prefix
/// (`bullseye_bullseye_campaign_bids_total`) that substring assertions hid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_campaign_metric_names_have_one_prefix() {
    let bidder = spawn_default_bidder().await;
    let metrics = bidder.metrics().await;
    let families: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .filter(|name| name.contains("campaign"))
        .collect();
    assert_eq!(
        families.into_iter().collect::<Vec<_>>(),
        ["bullseye_campaign_bids", "bullseye_campaign_filtered"]
    );
    bidder.stop().await;
}

/// Issue 17, item 11: the bundled development secrets are refused on an
/// address others can reach, unless asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_secrets_are_refused_off_loopback() {
    let start = |allow_dev_secrets: bool| {
        let data = tempfile::tempdir().unwrap();
        let options = bullseye::server::ServeOptions {
            config_dir: repo_root().join("bidder-config"),
            listen: "0.0.0.0:0".parse().unwrap(),
            admin_listen: "0.0.0.0:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            segments: None,
            clock: std::sync::Arc::new(bullseye::clock::SystemClock),
            watch: false,
            allow_dev_secrets,
            redis_url: None,
            node_id: None,
            ledger_storage: None,
        };
        async move { (bullseye::server::start(options).await, data) }
    };
    match start(false).await.0 {
        Err(bullseye::server::StartError::DevSecrets { which, .. }) => {
            assert_eq!(which, "signing key and admin token");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("started with development secrets on 0.0.0.0"),
    }
    let (running, _data) = start(true).await;
    running.expect("allowed with --allow-dev-secrets").shutdown().await;
}
