//! Issue 17, item 16: 4,096 idle sockets from one client got every request
//! 503 for 30 s, health checks and notices included. Now one address holds
//! at most `max_connections_per_ip`, a connection that sends nothing is
//! closed after `first_request_timeout_ms`, and a reserve of connections
//! serves health checks and tracking but not bids.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bullseye::clock::ManualClock;
use common::*;

/// A connection from `source` (a loopback address other than 127.0.0.1,
/// which is exempt from the per-address limit).
fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&format!("{source}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.connect(&to.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

/// Sends one keep-alive request on `stream`; returns the status line.
fn request(stream: &mut TcpStream, method: &str, path: &str, body: &str) -> String {
    try_request(stream, method, path, body).unwrap()
}

/// [`request`], with the error of a connection the server closed (a write
/// or read that fails; a read at the end: an empty status line).
fn try_request(stream: &mut TcpStream, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    // One write: the server has the whole request when it answers.
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: bidder\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut buffer = vec![0u8; 16 * 1024];
    let n = stream.read(&mut buffer)?;
    let text = String::from_utf8_lossy(&buffer[..n]).to_string();
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// True for what a write or read on a connection the server closed fails
/// with.
fn closed_by_server(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
}

/// A connection from `source` admitted into the reserve (it answers a
/// health check): tried again while the slot of a connection the server
/// closed is not free yet (refused, past the reserve).
fn reserve_connection(source: &str, to: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = connect_from(source, to);
        if try_request(&mut stream, "GET", "/healthz", "").is_ok_and(|status| status == "HTTP/1.1 200 OK") {
            return stream;
        }
        assert!(Instant::now() < deadline, "the reserve slot was not freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn bidder(server: &str) -> TestBidder {
    let settings = format!("[server]\n{server}\n{TEST_SETTINGS}");
    let dir = write_config(&settings, &large_budget(), "u,a\n");
    let clock = Arc::new(ManualClock::new("2026-11-24T10:00:00Z".parse().unwrap()));
    let mut bidder = spawn_bidder_with(dir.path(), clock, false).await;
    bidder.dirs.push(dir);
    bidder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let bidder = bidder("max_connections_per_ip = 3").await;
    let addr = bidder.addr;
    let statuses = tokio::task::spawn_blocking(move || {
        let mut held: Vec<TcpStream> = (0..3)
            .map(|_| {
                let mut stream = connect_from("127.0.0.2", addr);
                assert_eq!(request(&mut stream, "GET", "/healthz", ""), "HTTP/1.1 200 OK");
                stream
            })
            .collect();
        let mut fourth = connect_from("127.0.0.2", addr);
        let refused = request(&mut fourth, "GET", "/healthz", "");
        let mut other = connect_from("127.0.0.3", addr);
        let other_address = request(&mut other, "GET", "/healthz", "");
        let mut local = TcpStream::connect(addr).unwrap();
        let exempt = request(&mut local, "GET", "/healthz", "");
        // One closes: its slot is free again.
        held.pop();
        std::thread::sleep(Duration::from_millis(100));
        let mut again = connect_from("127.0.0.2", addr);
        let freed = request(&mut again, "GET", "/healthz", "");
        (refused, other_address, exempt, freed)
    })
    .await
    .unwrap();
    assert_eq!(
        statuses,
        (
            "HTTP/1.1 503 Service Unavailable".to_string(),
            "HTTP/1.1 200 OK".to_string(),
            "HTTP/1.1 200 OK".to_string(),
            "HTTP/1.1 200 OK".to_string()
        )
    );
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_soon_but_keep_alive_stays_long() {
    let bidder = bidder("first_request_timeout_ms = 300\nheader_read_timeout_ms = 5000").await;
    let addr = bidder.addr;
    let (silent_closed_after, kept_alive) = tokio::task::spawn_blocking(move || {
        let mut silent = connect_from("127.0.0.2", addr);
        let started = Instant::now();
        let mut buffer = [0u8; 64];
        let n = silent.read(&mut buffer).unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
        let silent_closed_after = started.elapsed();
        // A connection that spoke once may idle longer than that.
        let mut busy = connect_from("127.0.0.3", addr);
        assert_eq!(request(&mut busy, "GET", "/healthz", ""), "HTTP/1.1 200 OK");
        std::thread::sleep(Duration::from_millis(800));
        (silent_closed_after, request(&mut busy, "GET", "/healthz", ""))
    })
    .await
    .unwrap();
    assert!(silent_closed_after < Duration::from_secs(3), "{silent_closed_after:?}");
    assert_eq!(kept_alive, "HTTP/1.1 200 OK");
    bidder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bid_connections_cannot_starve_health_checks_and_notices() {
    let bidder = bidder("max_connections = 6\nreserved_connections = 2").await;
    let addr = bidder.addr;
    let body = banner_request("u", 0.0, serde_json::json!({})).to_string();
    let (bids, reserve_bid, reserve_health, reserve_tracking, full) = tokio::task::spawn_blocking(move || {
        // Four bid connections take the general slots.
        let mut bids = Vec::new();
        let held: Vec<TcpStream> = (0..4)
            .map(|i| {
                let mut stream = connect_from(&format!("127.0.0.{}", 10 + i), addr);
                bids.push(request(&mut stream, "POST", "/openrtb2/bid", &body));
                stream
            })
            .collect();
        // The next ones land in the reserve: no bids, health and tracking
        // yes. The server may close a reserve connection that asked for a
        // bid (allowed: it is one of a flood; hyper does when the request's
        // body arrives after the 503), so the health check comes first; one
        // after the refused bid is answered 200 too, unless the server
        // closed the connection (the write then fails with EPIPE): then a
        // new connection takes the slot it freed back, for the check past
        // the reserve below.
        let mut reserve = connect_from("127.0.0.20", addr);
        let reserve_health = request(&mut reserve, "GET", "/healthz", "");
        let reserve_bid = request(&mut reserve, "POST", "/openrtb2/bid", &body);
        let closed = match try_request(&mut reserve, "GET", "/healthz", "") {
            Ok(status) if status.is_empty() => true,
            Ok(status) => {
                assert_eq!(status, "HTTP/1.1 200 OK", "a health check after a refused bid");
                false
            }
            Err(e) => {
                assert!(closed_by_server(&e), "{e}");
                true
            }
        };
        if closed {
            reserve = reserve_connection("127.0.0.20", addr);
        }
        let mut tracking = connect_from("127.0.0.21", addr);
        let reserve_tracking = request(&mut tracking, "GET", "/t/imp?forged", "");
        // Past the reserve: refused with a 503 as soon as it is accepted,
        // before any request (sending one could race the close: EPIPE).
        let mut past = connect_from("127.0.0.22", addr);
        let mut answer = vec![0u8; 1024];
        let n = past.read(&mut answer).unwrap();
        let full = String::from_utf8_lossy(&answer[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        drop(held);
        drop(reserve);
        (bids, reserve_bid, reserve_health, reserve_tracking, full)
    })
    .await
    .unwrap();
    assert_eq!(bids, vec!["HTTP/1.1 200 OK".to_string(); 4]);
    assert_eq!(reserve_bid, "HTTP/1.1 503 Service Unavailable");
    assert_eq!(reserve_health, "HTTP/1.1 200 OK");
    assert_eq!(
        reserve_tracking, "HTTP/1.1 403 Forbidden",
        "tracking is served (and refuses the forgery)"
    );
    assert_eq!(full, "HTTP/1.1 503 Service Unavailable");
    bidder.stop().await;
}
