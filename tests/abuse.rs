//! Abusive clients: slow headers and bodies, oversized headers, pipelined
//! garbage, connection floods, admin token guessing. Limits and timeouts
//! cut them off while well-behaved clients keep getting bids.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bullseye::clock::SystemClock;
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_CONNECTIONS: usize = 16;

/// Tight limits so that the test sees them act within a second.
fn settings() -> String {
    format!(
        "[server]\nheader_read_timeout_ms = 400\nbody_read_timeout_ms = 400\nmax_connections = {MAX_CONNECTIONS}\n{TEST_SETTINGS}"
    )
}

async fn spawn() -> TestBidder {
    let dir = write_config(&settings(), GENERIC, "u1,a\n");
    let mut bidder = spawn_bidder_with(dir.path(), Arc::new(SystemClock), false).await;
    bidder.dirs.push(dir);
    bidder
}

/// A well-behaved client still gets its bid.
async fn assert_serving(bidder: &TestBidder) {
    let (status, body) = bidder.bid_json(&banner_request("u1", 0.1, json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
}

/// Everything the server sends until it closes the connection (or `limit`
/// passes); the time it took.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!(
                "connection still open after {limit:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), started.elapsed())
}

/// Sends `request` on a fresh connection (the server may close it before
/// all is written) and returns everything answered until it closes.
async fn send_raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    read_until_closed(&mut stream, Duration::from_secs(3)).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let bidder = spawn().await;

    // Slowloris: headers one byte at a time, never finished.
    let mut slow_headers = TcpStream::connect(bidder.addr).await.unwrap();
    let dripping = tokio::spawn(async move {
        let started = Instant::now();
        for byte in b"POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle() {
            if slow_headers.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            if started.elapsed() > Duration::from_secs(5) {
                panic!("the server let a slow client drip headers for 5 s");
            }
        }
        // The server closed it: the rest of the read sees the end.
        read_until_closed(&mut slow_headers, Duration::from_secs(2)).await;
        started.elapsed()
    });

    // A body promised but never finished: 408 after the body timeout.
    let mut slow_body = TcpStream::connect(bidder.addr).await.unwrap();
    slow_body
        .write_all(b"POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":")
        .await
        .unwrap();
    let (answer, took) = read_until_closed(&mut slow_body, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(2), "slow body cut after {took:?}");

    // Meanwhile others are served.
    for _ in 0..20 {
        assert_serving(&bidder).await;
    }
    let cut_after = dripping.await.unwrap();
    assert!(
        cut_after < Duration::from_secs(2),
        "slow headers cut after {cut_after:?}"
    );
    assert_serving(&bidder).await;
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_and_pipelined_garbage_get_errors_not_crashes() {
    let bidder = spawn().await;

    // One enormous header line (past the 64 KiB header buffer).
    let mut request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 100_000));
    request.extend_from_slice(b"\r\n\r\n");
    let answer = send_raw(bidder.addr, &request).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Too many headers.
    let mut request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..200 {
        request.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let answer = send_raw(bidder.addr, &request).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");

    // A good request pipelined with garbage: the first is answered, the
    // garbage gets 400, and the connection is closed.
    let answer = send_raw(
        bidder.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\xfe garbage \r\n\r\n\x16\x03\x01",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\r\n\r\nok\n"), "{answer}");
    assert!(answer.contains("\nHTTP/1.1 400"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 2, "{answer}");

    // Garbage alone: 400, then close.
    let answer = send_raw(bidder.addr, b"\x00\xff\xfe garbage\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // A TLS handshake on the plain port.
    let answer = send_raw(
        bidder.addr,
        &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03],
    )
    .await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 400"), "{answer}");

    assert_serving(&bidder).await;
    let metrics = bidder.metrics().await;
    assert!(metric(&metrics, r#"bullseye_http_responses_total{status="200"}"#) >= 1.0);
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_is_shed_with_503_and_idle_connections_expire() {
    let bidder = spawn().await;
    // Idle connections up to the cap (the test client's pooled connection
    // may hold one more slot; a few spares are opened to be sure).
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS + 4 {
        idle.push(TcpStream::connect(bidder.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Past the cap: an immediate 503 with Retry-After, then close.
    let mut refused = TcpStream::connect(bidder.addr).await.unwrap();
    let (answer, took) = read_until_closed(&mut refused, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    assert!(took < Duration::from_millis(300), "shedding took {took:?}");

    // Idle connections are closed after the header-read timeout, which
    // frees the slots: a new client is served again.
    for stream in &mut idle {
        let (answer, _) = read_until_closed(stream, Duration::from_secs(3)).await;
        assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let fresh = client();
    let response = fresh
        .post(bidder.url("/openrtb2/bid"))
        .body(banner_request("u1", 0.1, json!({})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = bidder.metrics().await;
    assert!(metric(&metrics, "bullseye_connections_refused_total") >= 1.0);
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_tokens_are_checked_and_never_logged() {
    use bullseye::settings::access::{hex, token_hash};
    let settings = settings().replace(
        &hex(&token_hash(ADMIN_TOKEN)),
        &hex(&token_hash("s3cret-admin-token-0123456789abcdef-71")),
    );
    let config = write_config(&settings, GENERIC, "u1,a\n");
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr, log) = spawn_binary_logged(config.path(), data.path(), "debug", |_| {});
    let client = client();
    let _ = addr;
    let admin = admin_addr_in(&log.lock().unwrap());
    let url = format!("http://{admin}/admin/api/campaigns");
    let guesses = [
        None,
        Some("Bearer guess-token-42"),
        Some("Bearer s3cret-admin-token-7"),
        Some("Bearer s3cret-admin-token-0123456789abcdef-711"),
        Some("Basic czNjcmV0"),
        Some("bearer"),
    ];
    for guess in guesses {
        let mut request = client.get(&url);
        if let Some(value) = guess {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{guess:?}");
    }
    let response = client
        .get(&url)
        .bearer_auth("s3cret-admin-token-0123456789abcdef-71")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    child.kill().unwrap();
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = log.lock().unwrap().clone();
    assert!(log.contains("listening on"), "the log was captured: {log}");
    for secret in [
        "s3cret-admin-token",
        "guess-token-42",
        "czNjcmV0",
        "test-signing-key-0123456789abcdefghijkl",
    ] {
        assert!(!log.contains(secret), "{secret} appears in the log:\n{log}");
    }
}
