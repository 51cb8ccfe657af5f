//! Issue 17, item 14: a restart read the whole billing history into memory
//! (1 M two-month-old records: 2.8 s and 758 MB at start-up). Now start-up
//! reads the recent day files only, closed days are rolled up, raw day files
//! are deleted past retention once rolled up, and reports read rollups.

mod common;

use std::time::Duration;

use bullseye::campaigns::Pricing;
use bullseye::ledger::{EventKind, Ledger, Record, record, report, rollup};
use common::*;

const DAY: i64 = 86_400_000_000;

fn bill(bid: String, at: i64) -> Record {
    Record {
        at,
        event: EventKind::Bill,
        bid,
        campaign: "generic".into(),
        creative: "g1".into(),
        exchange: "default".into(),
        clearing: Some(500_000),
        charge: 500,
        billed: true,
        filtered: None,
        test: false,
        user: 0,
        pricing: Pricing::Cpm,
        value: None,
        order: None,
        domain: String::new(),
        country: String::new(),
        device: 0,
        utc_offset: None,
        counts: None,
        arm: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_days_are_rolled_up_and_raw_files_retired_without_changing_reports() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("ledger");
    let dirs = [data.path().to_path_buf()];
    let utc = report::ReportQuery {
        tz: bullseye::ledger::cube::Zone::Utc,
        ..Default::default()
    };
    let today: jiff::Timestamp = "2026-11-24T12:00:00Z".parse().unwrap();
    let now = today.as_microsecond();
    {
        let (ledger, _) = Ledger::open(&dir).unwrap();
        for (days_ago, count) in [(100, 3), (95, 2), (3, 4), (1, 1), (0, 5)] {
            for i in 0..count {
                ledger
                    .append(&bill(format!("b{days_ago}-{i}"), now - days_ago * DAY))
                    .await
                    .unwrap();
            }
        }
    }
    let before = report::query(&dirs, &utc).unwrap();
    let spend: Vec<(String, i64)> = before.iter().map(|r| (r.date.clone(), r.spend_micros)).collect();
    assert_eq!(
        spend,
        [
            ("2026-08-16".to_string(), 1_500),
            ("2026-08-21".to_string(), 1_000),
            ("2026-11-21".to_string(), 2_000),
            ("2026-11-23".to_string(), 500),
            ("2026-11-24".to_string(), 2_500)
        ]
    );
    let done = rollup::maintain(&dir, "2026-11-24", 90).unwrap();
    assert_eq!((done.rolled_up, done.deleted), (4, 2));
    let raw: Vec<String> = bullseye::ledger::files(&dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        raw,
        [
            "billing-2026-11-21.log",
            "billing-2026-11-23.log",
            "billing-2026-11-24.log"
        ]
    );
    assert_eq!(report::query(&dirs, &utc).unwrap(), before, "reports read the rollups");
    let again = rollup::maintain(&dir, "2026-11-24", 90).unwrap();
    assert_eq!((again.rolled_up, again.deleted), (0, 0));
}

/// `GET /healthz` answered 200.
fn healthz(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: bidder\r\nconnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// Peak resident memory of a process, in kB (`VmHWM`).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The stated bound: a restart over 300,000 two-month-old records (70 MB of
/// log) peaks under 80 MB resident, as a restart over none does.
#[test]
fn a_restart_over_a_large_old_ledger_stays_within_its_memory_bound() {
    let config = write_config(TEST_SETTINGS, GENERIC, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let ledger = data.path().join("ledger");
    std::fs::create_dir_all(&ledger).unwrap();
    #[allow(
        clippy::disallowed_methods,
        reason = "the binary runs on the wall clock: its ledger is dated against it"
    )]
    let old = jiff::Timestamp::now().as_microsecond() - 60 * DAY;
    let mut bytes = Vec::with_capacity(80 << 20);
    for i in 0..300_000 {
        record::encode(&bill(format!("old-bid-{i:08}"), old + i), &mut bytes);
    }
    std::fs::write(ledger.join(bullseye::ledger::file_name(old)), &bytes).unwrap();
    drop(bytes);
    let (mut child, addr) = spawn_binary(config.path(), data.path());
    let healthy = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        healthz(&addr)
    });
    assert!(healthy, "the bidder came up");
    let peak = peak_rss_kb(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(peak < 80 * 1024, "peak RSS {peak} kB at start-up over an old ledger");
}
