//! A full disk under the billing log: writes fail (here through a file-size
//! limit, `RLIMIT_FSIZE`, which makes `write` fail with EFBIG exactly like
//! ENOSPC would), notices get 503 and are never acknowledged, health and
//! metrics say so, and once space is back the refused notices are taken on
//! retry. The log holds exactly the acknowledged notices, once each.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

mod common;

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use bullseye::ledger::read_all;
use common::*;
use reqwest::StatusCode;
use serde_json::json;

const FILE_SIZE_LIMIT: u64 = 24 * 1024;

fn set_file_size_limit(pid: i32, limit: u64) {
    let limit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads `limit` and writes nothing (null old limit).
    let done = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(done, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_billing_and_recovers_without_loss() {
    let config = write_config(TEST_SETTINGS, &large_budget(), "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr, log) = spawn_binary_logged(config.path(), data.path(), "info", |command| {
        // SAFETY: the closure only calls setrlimit, which is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: FILE_SIZE_LIMIT,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    });
    let client = client();
    let base = format!("http://{addr}");
    let mut acknowledged = HashSet::new();
    let mut refused = Vec::new();
    for round in 0..2000 {
        let request = banner_request(&format!("user-{round}"), 0.0, json!({}));
        let response = client
            .post(format!("{base}/openrtb2/bid"))
            .body(request.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "bidding goes on");
        let body: serde_json::Value = response.json().await.unwrap();
        let bid = &body["seatbid"][0]["bid"][0];
        let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.50");
        let answer = client.get(&burl).send().await.unwrap();
        let id = bid["id"].as_str().unwrap().to_string();
        match answer.status() {
            StatusCode::NO_CONTENT => {
                assert!(
                    refused.is_empty(),
                    "acknowledged after a refusal while the disk is still full"
                );
                acknowledged.insert(id);
            }
            StatusCode::SERVICE_UNAVAILABLE => refused.push((id, burl)),
            other => panic!("unexpected {other}"),
        }
        if refused.len() == 5 {
            break;
        }
    }
    assert!(acknowledged.len() > 10, "{} acknowledged", acknowledged.len());
    assert_eq!(refused.len(), 5, "the file-size limit never hit");

    // Visible in health and metrics; the server still answers.
    assert_eq!(
        client.get(format!("{base}/healthz")).send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let admin = admin_addr_in(&log.lock().unwrap());
    let metrics = client
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&metrics, "bullseye_ledger_healthy"), 0.0);
    assert!(metric(&metrics, "bullseye_ledger_write_failures_total") >= 5.0);
    assert!(log.lock().unwrap().contains("billing log write failed"));

    // Space is back: the exchange's retries are taken, once.
    set_file_size_limit(child.id() as i32, libc::RLIM_INFINITY);
    for (id, burl) in &refused {
        let answer = client.get(burl).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::NO_CONTENT, "retry of {id}");
        acknowledged.insert(id.clone());
        let again = client.get(burl).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NO_CONTENT, "duplicate of {id}");
    }
    assert_eq!(
        client.get(format!("{base}/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );

    child.kill().unwrap();
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // No partial frame was left behind by the failed writes: the log reads
    // cleanly and holds exactly the acknowledged bills, once each.
    let records = read_all(&data.path().join("ledger")).expect("the log is intact");
    assert_eq!(
        billed_once(&records),
        acknowledged,
        "the log differs from what was acknowledged"
    );
}
