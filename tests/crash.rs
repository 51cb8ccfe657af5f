//! Crash safety: notices under load, `kill -9`, a torn last record, restart.
//! Every acknowledged billing notice is in the log exactly once, and after
//! the restart deduplication still holds.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "a random seed from the wall clock, not a time of day"
)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bullseye::ledger::read_all;
use common::*;
use reqwest::StatusCode;
use serde_json::json;

/// One bid for `user` and its billing notice at 0.50; the bid id and the
/// billing URL once the notice is acknowledged, `None` when the server is
/// gone (killed) or refused.
async fn bid_and_bill(client: &reqwest::Client, addr: &str, user: &str) -> Option<(String, String)> {
    let request = banner_request(user, 0.0, json!({}));
    let response = client
        .post(format!("http://{addr}/openrtb2/bid"))
        .body(request.to_string())
        .send()
        .await
        .ok()?;
    let body = response.json::<serde_json::Value>().await.ok()?;
    let bid = &body["seatbid"][0]["bid"][0];
    let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.50");
    let answer = client.get(&burl).send().await.ok()?;
    (answer.status() == StatusCode::NO_CONTENT).then(|| (bid["id"].as_str().unwrap().to_string(), burl))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_notices_survive_kill_9_and_a_torn_tail() {
    let config = write_config(TEST_SETTINGS, &large_budget(), "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_binary(config.path(), data.path());
    let client = client();
    // bid id → its billing URL, for every notice the server acknowledged.
    let acknowledged: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let mut workers = Vec::new();
    for worker in 0..16 {
        let (client, addr, acknowledged) = (client.clone(), addr.clone(), acknowledged.clone());
        workers.push(tokio::spawn(async move {
            for round in 0.. {
                let Some((bid, burl)) = bid_and_bill(&client, &addr, &format!("u{worker}-{round}")).await else {
                    break;
                };
                acknowledged.lock().unwrap().insert(bid, burl);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for worker in workers {
        let _ = worker.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "too little traffic before the kill: {}",
        acknowledged.len()
    );

    // A crash in the middle of a write leaves a torn record.
    let ledger_dir = data.path().join("ledger");
    let file = bullseye::ledger::files(&ledger_dir).pop().unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(&[200, 0, 0, 0, 7, 7, 7])
        .unwrap();

    let records = read_all(&ledger_dir).unwrap();
    let bills = billed_once(&records);
    for bid in acknowledged.keys() {
        assert!(bills.contains(bid), "acknowledged bid {bid} missing from the log");
    }
    assert!(
        bills.len() - acknowledged.len() <= 16,
        "more unacknowledged records than requests in flight"
    );

    // Restart on the same data: the torn tail is cut, duplicates still refused.
    let (mut child, addr) = spawn_binary(config.path(), data.path());
    for burl in acknowledged.values().take(200) {
        let path = &burl[burl.find("/t/").unwrap()..];
        let answer = client.get(format!("http://{addr}{path}")).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let after = read_all(&ledger_dir).unwrap();
    assert_eq!(after.len(), records.len(), "a replayed notice was recorded again");
    let spend: i64 = after.iter().map(|r| r.charge).sum();
    assert_eq!(
        spend,
        500 * bills.len() as i64,
        "0.50 CPM = 500 micros per billed impression"
    );
}

/// A small xorshift generator: the kill moments vary per run, and the seed
/// is printed so that a failing run can be repeated.
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, range: std::ops::Range<u64>) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        range.start + self.0 % (range.end - range.start)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9_cycles_lose_nothing_acknowledged() {
    const CYCLES: usize = 20;
    let seed = std::env::var("BULLSEYE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash cycles with BULLSEYE_CRASH_SEED={seed}");
    let mut moments = Moments(seed);
    let config = write_config(TEST_SETTINGS, &large_budget(), "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let client = client();
    // bid id → billing URL of every acknowledged notice, over all cycles.
    let acknowledged: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    for cycle in 0..CYCLES {
        let (mut child, addr) = spawn_binary(config.path(), data.path());
        let mut workers = Vec::new();
        for worker in 0..8 {
            let (client, addr, acknowledged) = (client.clone(), addr.clone(), acknowledged.clone());
            workers.push(tokio::spawn(async move {
                for round in 0.. {
                    // Now and then, replay an old notice: still refused as a
                    // duplicate (204, not recorded again) after restarts.
                    if round % 10 == 9 {
                        let old = acknowledged.lock().unwrap().values().next().cloned();
                        if let Some(burl) = old {
                            let path = &burl[burl.find("/t/").unwrap()..];
                            match client.get(format!("http://{addr}{path}")).send().await {
                                Ok(answer) => assert_eq!(answer.status(), StatusCode::NO_CONTENT),
                                Err(_) => break,
                            }
                        }
                    }
                    let user = format!("u{cycle}-{worker}-{round}");
                    let Some((bid, burl)) = bid_and_bill(&client, &addr, &user).await else {
                        break;
                    };
                    acknowledged.lock().unwrap().insert(bid, burl);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(moments.next_ms(50..700))).await;
        child.kill().unwrap(); // SIGKILL, at a random moment
        child.wait().unwrap();
        for worker in workers {
            let _ = worker.await;
        }
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 200, "too little traffic: {}", acknowledged.len());

    let ledger_dir = data.path().join("ledger");
    let records = read_all(&ledger_dir).expect("the log opens after 20 crashes");
    let bills = billed_once(&records);
    for bid in acknowledged.keys() {
        assert!(bills.contains(bid), "acknowledged bid {bid} lost");
    }
    // Records written but not acknowledged: at most one in flight per
    // worker per crash.
    assert!(bills.len() - acknowledged.len() <= 8 * CYCLES);

    // A last restart: spend is the log's, to the micro, and the report agrees.
    let (mut child, _, log) = spawn_binary_logged(config.path(), data.path(), "info", |_| {});
    let admin = admin_addr_in(&log.lock().unwrap());
    let campaign: serde_json::Value = client
        .get(format!("http://{admin}/admin/api/campaigns/generic"))
        .bearer_auth("test-admin-token-0123456789abcdefghijk")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let logged: i64 = records.iter().map(|r| r.charge).sum();
    assert_eq!(logged, 500 * bills.len() as i64);
    assert_eq!(
        campaign["live"]["today"]["spend_micros"].as_i64(),
        Some(logged),
        "{campaign}"
    );
    eprintln!(
        "{CYCLES} crashes: {} acknowledged, {} billed, spend {logged} micros restored",
        acknowledged.len(),
        bills.len()
    );
}
