//! Measures event-triggered segments against a running bidder
//! (PERFORMANCE.md, "Audience events"): the bulk ingest rate of
//! `POST /admin/api/audience/events`, and the delay until a bid reflects an
//! event.
//!
//! ```text
//! cargo run --release --example audience_events -- BID_URL ADMIN_URL TOKEN [LINES] [REQUESTS] [PROBES]
//! ```
//!
//! Ingest: `REQUESTS` bodies (default 5) of `LINES` lines each (default
//! 200,000; distinct users, 50 segments `event/visit/pN`, one-hour time to
//! live), each posted once; prints each body's lines per second, measured
//! from sending the body to the answer (transfer, parse, apply, journal
//! sync). Delay: `PROBES` times (default 200), one event puts a new user in
//! `interest/finance/loans` (the bundled `globex-finance` campaign targets
//! `interest/finance`), then a 300×250 bid request for that user is sent at
//! once; prints the event's round trip (p50, p99) and how many of the
//! following bids went to `globex-finance`. User ids carry the process id,
//! so that runs rarely reuse an overlay user.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A body of `lines` add events for users `{prefix}-{i}`.
fn body(prefix: &str, lines: usize) -> String {
    let mut body = String::with_capacity(lines * 100);
    for i in 0..lines {
        body.push_str(&format!(
            "{{\"user_id\":\"{prefix}-{i}\",\"segment\":\"event/visit/p{}\",\"op\":\"add\",\"ttl_seconds\":3600}}\n",
            i % 50
        ));
    }
    body
}

fn bid_request(user: &str) -> Value {
    json!({
        "id": "probe",
        "at": 2,
        "tmax": 500,
        "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
        "site": {"id": "s1", "domain": "news.example", "page": "https://news.example/a"},
        "device": {"ua": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "ip": "203.0.113.7", "devicetype": 2},
        "user": {"buyeruid": user},
        "test": 1
    })
}

async fn ingest(client: &reqwest::Client, admin: &str, token: &str, run: u32, lines: usize, requests: usize) {
    let url = format!("{admin}/admin/api/audience/events");
    let mut rates = Vec::new();
    for r in 0..requests {
        let body = body(&format!("ingest-{run}-{r}"), lines);
        let started = Instant::now();
        let response = client
            .post(&url)
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .expect("sent");
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let took = started.elapsed();
        let rate = lines as f64 / took.as_secs_f64();
        println!(
            "ingest: {lines} lines in {:.1} ms: {rate:.0} lines/s ({status}, accepted {})",
            took.as_secs_f64() * 1e3,
            answer["accepted"]
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "ingest: median {:.0} lines/s over {requests} requests",
        rates[rates.len() / 2]
    );
}

async fn delay(client: &reqwest::Client, bid: &str, admin: &str, token: &str, run: u32, probes: usize) {
    let url = format!("{admin}/admin/api/audience/events");
    let (mut round_trips, mut reflected) = (Vec::new(), 0);
    for p in 0..probes {
        let user = format!("probe-{run}-{p}");
        let event = json!({"user_id": user, "segment": "interest/finance/loans", "op": "add", "ttl_seconds": 600});
        let started = Instant::now();
        let response = client
            .post(&url)
            .bearer_auth(token)
            .body(event.to_string())
            .send()
            .await
            .expect("sent");
        assert!(response.status().is_success(), "{}", response.status());
        round_trips.push(started.elapsed());
        let answer = client
            .post(format!("{bid}/openrtb2/bid"))
            .body(bid_request(&user).to_string())
            .send()
            .await
            .expect("bid sent");
        let answer: Value = answer.json().await.unwrap_or(Value::Null);
        if answer.pointer("/seatbid/0/bid/0/cid").and_then(Value::as_str) == Some("globex-finance") {
            reflected += 1;
        }
    }
    round_trips.sort();
    println!(
        "delay: event round trip p50 {:.3} ms, p99 {:.3} ms; the next bid reflected it {reflected} of {probes} times",
        percentile(&round_trips, 0.5).as_secs_f64() * 1e3,
        percentile(&round_trips, 0.99).as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bid, admin, token, rest @ ..] = &args[..] else {
        eprintln!("usage: audience_events BID_URL ADMIN_URL TOKEN [LINES] [REQUESTS] [PROBES]");
        std::process::exit(2);
    };
    let number = |i: usize, default: usize| rest.get(i).and_then(|n| n.parse().ok()).unwrap_or(default);
    let run = std::process::id();
    let client = reqwest::Client::new();
    ingest(&client, admin, token, run, number(0, 200_000), number(1, 5)).await;
    delay(&client, bid, admin, token, run, number(2, 200)).await;
}
