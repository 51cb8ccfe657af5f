//! Issue 11, reports: rows by day (campaign-local or UTC), hour, exchange,
//! creative, domain, country and device; date ranges; several data
//! directories merged with each event once; CPA and ROAS; today's partial
//! rollup. Exact values, from records written directly and from a real
//! bidder.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bullseye::campaigns::Pricing;
use bullseye::clock::ManualClock;
use bullseye::ledger::bids::{BidCounter, BidFlusher};
use bullseye::ledger::cube::Zone;
use bullseye::ledger::record::{self, COUNTS_IMPRESSION, COUNTS_WIN};
use bullseye::ledger::report::{By, Flags, Group, ReportQuery, Row, query};
use bullseye::ledger::{EventKind, Record, read_all, rollup};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn at(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_microsecond()
}

/// A billing notice that counts the bid's win and impression.
fn bill(campaign: &str, bid: &str, when: &str, charge: i64, offset_hours: i32) -> Record {
    Record {
        at: at(when),
        event: EventKind::Bill,
        bid: bid.into(),
        campaign: campaign.into(),
        creative: "k1".into(),
        exchange: "default".into(),
        clearing: Some(charge * 1000),
        charge,
        billed: true,
        filtered: None,
        test: false,
        user: 0,
        pricing: Pricing::Cpm,
        value: None,
        order: None,
        domain: "news.example".into(),
        country: "FRA".into(),
        device: 4,
        utc_offset: Some(offset_hours * 3600),
        counts: Some(COUNTS_WIN | COUNTS_IMPRESSION),
        arm: None,
    }
}

fn conversion(of: &Record, order: &str, value: i64) -> Record {
    Record {
        event: EventKind::Conversion,
        at: of.at + 60_000_000,
        clearing: None,
        charge: 0,
        billed: false,
        value: Some(value),
        order: Some(order.into()),
        counts: Some(0),
        ..of.clone()
    }
}

/// Appends records to their day files in `data/ledger`.
fn write(data: &Path, records: &[Record]) {
    let ledger = data.join("ledger");
    std::fs::create_dir_all(&ledger).unwrap();
    for record in records {
        let mut frame = Vec::new();
        record::encode(record, &mut frame);
        let path = ledger.join(bullseye::ledger::file_name(record.at));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        std::io::Write::write_all(&mut file, &frame).unwrap();
    }
}

fn ask(dirs: &[&Path], flags: Flags<'_>) -> Vec<Row> {
    let dirs: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    query(&dirs, &ReportQuery::from_flags(&flags).unwrap()).unwrap()
}

/// (campaign, date, spend) per row.
fn spend(rows: &[Row]) -> Vec<(&str, &str, i64)> {
    rows.iter()
        .map(|r| (r.campaign.as_str(), r.date.as_str(), r.spend_micros))
        .collect()
}

#[test]
fn days_are_campaign_local_by_default_utc_on_request_and_ranges_select_them() {
    let data = tempfile::tempdir().unwrap();
    write(
        data.path(),
        &[
            // 22:00 on the 23rd in New York (UTC−5), 03:00 on the 24th in UTC.
            bill("ny", "b1", "2026-11-24T03:00:00Z", 100, -5),
            bill("ny", "b2", "2026-11-24T06:00:00Z", 200, -5),
            // 01:00 on the 24th in Tokyo (UTC+9), 16:00 on the 23rd in UTC.
            bill("tokyo", "b3", "2026-11-23T16:00:00Z", 300, 9),
        ],
    );
    let ledger = data.path().join("ledger");
    let mut flusher = BidFlusher::new(&ledger, "2026-11-24T03:30:00Z".parse().unwrap());
    let counter = BidCounter {
        campaign: "ny".into(),
        exchange: "default".into(),
        utc_offset: -5 * 3600,
        total: 10,
    };
    flusher
        .flush("2026-11-24T03:30:00Z".parse().unwrap(), [counter].into_iter())
        .unwrap();
    let d = data.path();
    let local = ask(&[d], Flags::default());
    assert_eq!(
        spend(&local),
        [
            ("ny", "2026-11-23", 100),
            ("ny", "2026-11-24", 200),
            ("tokyo", "2026-11-24", 300)
        ]
    );
    assert_eq!((local[0].bids, local[1].bids), (10, 0), "bids on the local day");
    assert_eq!(local[0].win_rate, Some(0.1));
    let utc = ask(
        &[d],
        Flags {
            tz: Some("utc"),
            ..Flags::default()
        },
    );
    assert_eq!(spend(&utc), [("ny", "2026-11-24", 300), ("tokyo", "2026-11-23", 300)]);
    assert_eq!(utc[0].bids, 10);
    let on_24th = ask(
        &[d],
        Flags {
            date: Some("2026-11-24"),
            ..Flags::default()
        },
    );
    assert_eq!(
        spend(&on_24th),
        [("ny", "2026-11-24", 200), ("tokyo", "2026-11-24", 300)]
    );
    let range = ask(
        &[d],
        Flags {
            from: Some("2026-11-22"),
            to: Some("2026-11-23"),
            ..Flags::default()
        },
    );
    assert_eq!(spend(&range), [("ny", "2026-11-23", 100)]);
    let open_ended = ask(
        &[d],
        Flags {
            from: Some("2026-11-24"),
            tz: Some("utc"),
            ..Flags::default()
        },
    );
    assert_eq!(spend(&open_ended), [("ny", "2026-11-24", 300)]);
    let hours = ask(
        &[d],
        Flags {
            by: Some("hour"),
            campaigns: vec!["ny"],
            ..Flags::default()
        },
    );
    let hours: Vec<(&str, &Group, u64, i64)> = hours
        .iter()
        .map(|r| (r.date.as_str(), &r.group, r.bids, r.spend_micros))
        .collect();
    assert_eq!(
        hours,
        [
            ("2026-11-23", &Group::Hour(22), 10, 100),
            ("2026-11-24", &Group::Hour(1), 0, 200)
        ]
    );
}

#[test]
fn every_dimension_groups_its_own_values_exactly() {
    let data = tempfile::tempdir().unwrap();
    let a = bill("c", "b1", "2026-11-24T10:00:00Z", 100, 0);
    let b = Record {
        domain: "app.bundle".into(),
        country: "USA".into(),
        device: 2,
        exchange: "adx".into(),
        creative: "k2".into(),
        ..bill("c", "b2", "2026-11-24T11:00:00Z", 200, 0)
    };
    let c = Record {
        domain: String::new(),
        country: String::new(),
        device: 0,
        ..bill("c", "b3", "2026-11-24T11:30:00Z", 400, 0)
    };
    write(data.path(), &[a, b, c]);
    let groups = |by: &str| -> Vec<(Value, i64)> {
        let rows = ask(
            &[data.path()],
            Flags {
                by: Some(by),
                ..Flags::default()
            },
        );
        rows.iter()
            .map(|r| {
                let json = serde_json::to_value(r).unwrap();
                assert_eq!(json["date"], "2026-11-24");
                (json[by].clone(), r.spend_micros)
            })
            .collect()
    };
    assert_eq!(
        groups("domain"),
        [
            (json!(""), 400),
            (json!("app.bundle"), 200),
            (json!("news.example"), 100)
        ]
    );
    assert_eq!(
        groups("country"),
        [(json!(""), 400), (json!("FRA"), 100), (json!("USA"), 200)]
    );
    assert_eq!(
        groups("device"),
        [(json!(""), 400), (json!("pc"), 200), (json!("phone"), 100)]
    );
    assert_eq!(groups("exchange"), [(json!("adx"), 200), (json!("default"), 500)]);
    assert_eq!(groups("creative"), [(json!("k1"), 500), (json!("k2"), 200)]);
    assert_eq!(groups("hour"), [(json!(10), 100), (json!(11), 600)]);
    assert_eq!(groups("day"), [(Value::Null, 700)], "no group key by day");
}

#[test]
fn cpa_is_integer_micros_and_roas_a_ratio_null_when_undefined() {
    let data = tempfile::tempdir().unwrap();
    let first = bill("c", "b1", "2026-11-24T10:00:00Z", 1_000, 0);
    let second = bill("c", "b2", "2026-11-24T10:00:01Z", 2_001, 0);
    write(
        data.path(),
        &[
            first.clone(),
            second,
            conversion(&first, "o1", 5_000),
            conversion(&first, "o2", 1_000),
            bill("idle", "b3", "2026-11-24T10:00:00Z", 0, 0),
        ],
    );
    let rows = ask(&[data.path()], Flags::default());
    let c = &rows[0];
    assert_eq!(
        (c.conversions, c.conversion_value_micros, c.spend_micros),
        (2, 6_000, 3_001)
    );
    assert_eq!(c.cpa_micros, Some(1_501), "3,001 / 2 rounded to the nearest micro");
    assert_eq!(c.roas, Some(6_000.0 / 3_001.0));
    let idle = serde_json::to_value(&rows[1]).unwrap();
    assert_eq!((&idle["cpa_micros"], &idle["roas"]), (&Value::Null, &Value::Null));
}

#[test]
fn two_data_dirs_merge_with_each_event_once() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b1 = bill("c", "b1", "2026-11-24T10:00:00Z", 100, 0);
    let shared_conversion = conversion(&b1, "o1", 1_000);
    write(
        a.path(),
        &[
            b1.clone(),
            bill("c", "b2", "2026-11-24T10:00:00Z", 200, 0),
            shared_conversion.clone(),
        ],
    );
    write(
        b.path(),
        &[
            b1.clone(),
            bill("c", "b3", "2026-11-24T11:00:00Z", 400, 0),
            shared_conversion,
            conversion(&b1, "o2", 3_000),
        ],
    );
    let now = "2026-11-24T10:00:00Z".parse().unwrap();
    for (dir, total) in [(&a, 5), (&b, 7)] {
        let mut flusher = BidFlusher::new(&dir.path().join("ledger"), now);
        let counter = BidCounter {
            campaign: "c".into(),
            exchange: "default".into(),
            utc_offset: 0,
            total,
        };
        flusher.flush(now, [counter].into_iter()).unwrap();
    }
    let check = |rows: Vec<Row>| {
        let r = &rows[0];
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                r.wins,
                r.impressions,
                r.spend_micros,
                r.conversions,
                r.conversion_value_micros,
                r.bids
            ),
            (3, 3, 700, 2, 4_000, 12)
        );
    };
    check(ask(&[a.path(), b.path()], Flags::default()));
    // Rolled up (raw files kept): still each event once.
    for dir in [&a, &b] {
        rollup::maintain(&dir.path().join("ledger"), "2026-11-25", 90).unwrap();
    }
    check(ask(&[a.path(), b.path()], Flags::default()));
    // The same directory twice is read once.
    let alone = ask(&[a.path(), a.path()], Flags::default());
    assert_eq!((alone[0].spend_micros, alone[0].bids), (300, 5));
}

/// Every grouping in both zones: the same rows from the raw log, from
/// today's partial rollup plus the records written after it, and from the
/// closed day's rollup.
#[test]
fn partial_and_closed_rollups_report_what_the_raw_log_says() {
    let (rolled, raw) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut records = Vec::new();
    for i in 0..60 {
        let mut r = bill(
            ["a", "b", "c"][i % 3],
            &format!("b{i}"),
            &format!("2026-11-24T{:02}:{:02}:00Z", i % 24, i),
            10 + i as i64,
            [-5, 0, 9][i % 3],
        );
        r.domain = format!("d{}.example", i % 4);
        r.device = (i % 5) as u8;
        r.exchange = ["default", "adx"][i % 2].into();
        if i % 7 == 0 {
            r.counts = Some(0);
            r.event = EventKind::Click;
        }
        records.push(r);
    }
    records.push(conversion(&records[1], "o1", 777));
    let (before, after) = records.split_at(40);
    write(rolled.path(), before);
    write(raw.path(), &records);
    let ledger = rolled.path().join("ledger");
    let done = rollup::maintain(&ledger, "2026-11-24", 90).unwrap();
    assert_eq!(done.extended, 1);
    assert!(rollup::partial_path(&ledger, "2026-11-24").exists());
    write(rolled.path(), after);
    let all = |dir: &Path| -> Vec<Vec<Row>> {
        let mut rows = Vec::new();
        for by in By::ALL {
            for tz in [Zone::Campaign, Zone::Utc] {
                let q = ReportQuery {
                    by,
                    tz,
                    ..ReportQuery::default()
                };
                rows.push(query(&[dir.to_path_buf()], &q).unwrap());
            }
        }
        rows
    };
    let expected = all(raw.path());
    assert_eq!(expected[0].iter().map(|r| r.spend_micros).sum::<i64>(), 2_370);
    assert_eq!(all(rolled.path()), expected, "partial rollup + the records after it");
    let done = rollup::maintain(&ledger, "2026-11-25", 90).unwrap();
    assert_eq!(done.rolled_up, 1);
    assert!(!rollup::partial_path(&ledger, "2026-11-24").exists());
    assert_eq!(all(rolled.path()), expected, "closed rollup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_place_travels_signed_into_the_ledger_and_the_report() {
    let campaigns = GENERIC.replace(
        r#"pricing = "cpm""#,
        "pricing = \"cpm\"\ntime_zone = \"America/New_York\"",
    );
    let config = write_config(TEST_SETTINGS, &campaigns, "u,a\n");
    let data = tempfile::tempdir().unwrap();
    // 22:00 on the 23rd in New York.
    let clock = Arc::new(ManualClock::new("2026-11-24T03:00:00Z".parse().unwrap()));
    let bidder = spawn_bidder_in(config.path(), data.path(), clock.clone(), false).await;
    let request = banner_request(
        "someone",
        0.0,
        json!({"site": {"domain": "News.Example"}, "device": {"devicetype": 4, "geo": {"country": "fra"}}}),
    );
    let (status, response) = bidder.bid_json(&request).await;
    assert_eq!(status, StatusCode::OK);
    let bid = response.unwrap()["seatbid"][0]["bid"][0].clone();
    let burl = bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.80");
    let nurl = bid["nurl"].as_str().unwrap().replace("${AUCTION_PRICE}", "0.80");
    let pixel = url_in_adm(&bid, "/t/imp?");
    assert!(pixel.contains("&d=news.example&g=FRA&y=4&sig="), "{pixel}");
    let relabelled = pixel.replace("g=FRA", "g=USA");
    assert_eq!(bidder.get(&relabelled).await.status(), StatusCode::FORBIDDEN);
    for url in [&burl, &nurl, &pixel] {
        assert!(bidder.get(url).await.status().is_success(), "{url}");
    }
    clock.advance(std::time::Duration::from_secs(5));
    assert_eq!(
        bidder.get(&url_in_adm(&bid, "/t/click?")).await.status(),
        StatusCode::FOUND
    );
    bidder.running.as_ref().unwrap().app.flush_bids();
    bidder.stop().await;

    let records = read_all(&data.path().join("ledger")).unwrap();
    type Facts<'a> = (EventKind, &'a str, &'a str, u8, Option<i32>, Option<u8>);
    let facts: Vec<Facts> = records
        .iter()
        .map(|r| {
            (
                r.event,
                r.domain.as_str(),
                r.country.as_str(),
                r.device,
                r.utc_offset,
                r.counts,
            )
        })
        .collect();
    let place = ("news.example", "FRA", 4, Some(-5 * 3600));
    assert_eq!(
        facts,
        [
            (
                EventKind::Bill,
                place.0,
                place.1,
                place.2,
                place.3,
                Some(COUNTS_WIN | COUNTS_IMPRESSION)
            ),
            (EventKind::Win, place.0, place.1, place.2, place.3, Some(0)),
            (EventKind::Impression, place.0, place.1, place.2, place.3, Some(0)),
            (EventKind::Click, place.0, place.1, place.2, place.3, Some(0)),
        ]
    );

    let report = |args: &[&str]| -> Value {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_bullseye"))
            .args(["report", "--format", "json", "--data-dir"])
            .arg(data.path())
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let by_domain = report(&["--by", "domain"]);
    let row = &by_domain[0];
    assert_eq!(by_domain.as_array().unwrap().len(), 1, "{by_domain}");
    assert_eq!(
        (&row["domain"], &row["date"]),
        (&json!("news.example"), &json!("2026-11-23"))
    );
    let counts: Vec<i64> = ["bids", "wins", "impressions", "clicks", "spend_micros"]
        .iter()
        .map(|k| row[k].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [0, 1, 1, 1, 800], "{row}");
    assert!(row.get("win_rate").is_none(), "no win rate where bids are not counted");
    let by_exchange = report(&["--by", "exchange"]);
    assert_eq!(
        (
            &by_exchange[0]["exchange"],
            &by_exchange[0]["bids"],
            &by_exchange[0]["win_rate"]
        ),
        (&json!("default"), &json!(1), &json!(1.0))
    );
    assert_eq!(report(&["--by", "country"])[0]["country"], "FRA");
    assert_eq!(report(&["--by", "device"])[0]["device"], "phone");
    let utc_hours = report(&["--by", "hour", "--tz", "utc"]);
    assert_eq!(
        (&utc_hours[0]["date"], &utc_hours[0]["hour"], &utc_hours[0]["bids"]),
        (&json!("2026-11-24"), &json!(3), &json!(1))
    );
}

#[test]
fn the_cli_refuses_bad_flags_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    write(data.path(), &[bill("c", "b1", "2026-11-24T10:00:00Z", 100, 0)]);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bullseye"))
            .args(["report", "--data-dir"])
            .arg(data.path())
            .args(args)
            .output()
            .unwrap()
    };
    let arm = run(&["--by", "arm", "--format", "csv"]);
    assert!(arm.status.success());
    assert!(String::from_utf8_lossy(&arm.stdout).starts_with("campaign,date,experiment,arm,role,"));
    let converters = run(&["--converters", "converters.txt"]);
    assert!(!converters.status.success());
    assert!(String::from_utf8_lossy(&converters.stderr).contains("--converters goes with --by arm"));
    let both = run(&["--date", "2026-11-24", "--from", "2026-11-20"]);
    assert!(!both.status.success());
    let csv = run(&["--by", "domain", "--format", "csv"]);
    let text = String::from_utf8(csv.stdout).unwrap();
    assert!(text.starts_with("campaign,date,domain,pricing,bids,"), "{text}");
    assert!(text.contains("c,2026-11-24,news.example,cpm,0,1,1,"), "{text}");
}
