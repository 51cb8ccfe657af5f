//! Issue 12, exactly-once billing across nodes: a notice, pixel, click or
//! conversion may reach any node; it is claimed in Redis before it is
//! acknowledged, billed once cluster-wide, and `bullseye report` over the
//! nodes' data directories counts every event once — also for events
//! acknowledged while Redis was unreachable. A real `redis-server` on an
//! ephemeral port, in-process nodes sharing one config directory, each with
//! its own data directory.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bullseye::bidder::{Bidder, Outcome};
use bullseye::campaigns::Pricing;
use bullseye::clock::{Clock, ManualClock};
use bullseye::cluster::{ClusterOptions, Node, Shared};
use bullseye::ledger::record::{self, COUNTS_IMPRESSION, COUNTS_WIN};
use bullseye::ledger::report::{Flags, ReportQuery, Row, query};
use bullseye::ledger::{EventKind, Ledger, Record, SimulatedDisk, read_all, rollup};
use bullseye::live::Embedded;
use bullseye::pacing::FrequencyStore;
use bullseye::tracking::notice::{Tracker, TrackingReply};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `url` (a tracking URL signed by any node) on `node`, as a load balancer
/// would send it there.
fn on(node: &TestBidder, url: &str) -> String {
    node.url(&url[url.find("/t/").expect("a tracking URL")..])
}

/// A config directory over `campaigns` with advertiser Travel's postback
/// secret.
fn config(campaigns: &str) -> tempfile::TempDir {
    let config = write_config(TEST_SETTINGS, campaigns, "u,a\n");
    let settings = format!("{TEST_SETTINGS}{}", postback_settings(config.path()));
    std::fs::write(config.path().join("bullseye.toml"), settings).unwrap();
    config
}

struct Cluster {
    nodes: Vec<TestBidder>,
    data: Vec<tempfile::TempDir>,
    clock: Arc<ManualClock>,
}

impl Cluster {
    async fn start(redis: &RedisServer, config: &Path, n: usize) -> Cluster {
        let clock = Arc::new(ManualClock::new("2026-11-24T12:00:00Z".parse().unwrap()));
        let mut nodes = Vec::new();
        let mut data = Vec::new();
        for i in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let id = format!("node-{}", (b'a' + i as u8) as char);
            nodes.push(spawn_node(config, dir.path(), &redis.url(), &id, clock.clone()).await);
            data.push(dir);
        }
        Cluster { nodes, data, clock }
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.data.iter().map(|d| d.path().to_path_buf()).collect()
    }

    /// Every node's ledger records.
    fn records(&self) -> Vec<Record> {
        self.data
            .iter()
            .flat_map(|d| read_all(&d.path().join("ledger")).unwrap())
            .collect()
    }

    /// A bid from node `i` for `user`.
    async fn bid(&self, i: usize, user: &str) -> Value {
        let (status, response) = self.nodes[i].bid_json(&banner_request(user, 0.0, json!({}))).await;
        assert_eq!(status, StatusCode::OK);
        response.unwrap()["seatbid"][0]["bid"][0].clone()
    }

    /// The merged report of every node's data directory.
    fn report(&self) -> Vec<Row> {
        query(&self.dirs(), &ReportQuery::default()).unwrap()
    }

    async fn stop(self) {
        for node in self.nodes {
            node.stop().await;
        }
    }
}

fn burl(bid: &Value, price: &str) -> String {
    bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", price)
}

/// The bills in `records`, by bid: how many times each was billed.
fn bills(records: &[Record]) -> HashMap<String, usize> {
    let mut bills = HashMap::new();
    for r in records.iter().filter(|r| r.event == EventKind::Bill) {
        *bills.entry(r.bid.clone()).or_default() += 1;
    }
    bills
}

/// Calls per command since the last `CONFIG RESETSTAT`, from `INFO
/// commandstats` (commands run inside scripts included).
/// Commands only the leases' rounds and replication use, left out of the
/// claims' count.
const BACKGROUND: [&str; 14] = [
    "xread",
    "xadd",
    "xtrim",
    "hgetall",
    "hget",
    "hset",
    "hdel",
    "hincrby",
    "time",
    "exists",
    "multi",
    "exec",
    "zadd",
    "zremrangebyscore",
];

fn command_calls(redis: &RedisServer) -> HashMap<String, u64> {
    let info = redis.command(&["INFO", "commandstats"]).unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .collect()
}

/// A duplicate billing notice sent to two nodes at the same moment is
/// billed once; each node's pixel and billing notice of one bid count its
/// impression once; the merged report is exact. Also measures the Redis
/// commands per notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_sent_to_two_nodes_at_once_is_billed_once() {
    let redis = RedisServer::start();
    let config = config(&large_budget());
    let cluster = Cluster::start(&redis, config.path(), 2).await;
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    redis.command(&["CONFIG", "RESETSTAT"]);
    const BIDS: usize = 40;
    for i in 0..BIDS {
        let bid = cluster.bid(i % 2, &format!("user-{i}")).await;
        let url = burl(&bid, "0.50");
        let (at_a, at_b) = (on(a, &url), on(b, &url));
        let (first, second) = tokio::join!(a.get(&at_a), b.get(&at_b));
        assert_eq!(first.status(), StatusCode::NO_CONTENT, "bid {i} at node a");
        assert_eq!(second.status(), StatusCode::NO_CONTENT, "bid {i} at node b");
        // The pixel lands on the other node than the bid: its impression
        // is already counted by the billing notice.
        let pixel = url_in_adm(&bid, "/t/imp?");
        let other = &cluster.nodes[(i + 1) % 2];
        assert_eq!(other.get(&on(other, &pixel)).await.status(), StatusCode::OK);
    }
    let calls = command_calls(&redis);
    let total: u64 = calls.values().sum();
    // Per bid: two billing notices (one claims, one is the duplicate) and a pixel.
    eprintln!(
        "Redis commands for {BIDS} bids × (billing notice + its duplicate on another node + pixel): {total} \
         ({:.2} per notice): {calls:?}",
        total as f64 / (3 * BIDS) as f64
    );

    let records = cluster.records();
    let billed = bills(&records);
    assert_eq!(billed.len(), BIDS);
    assert!(billed.values().all(|&n| n == 1), "a bid billed twice: {billed:?}");
    let pixels = records.iter().filter(|r| r.event == EventKind::Impression).count();
    assert_eq!(pixels, BIDS, "each pixel recorded once");
    let spend: i64 = records.iter().map(|r| r.charge).sum();
    let rows = cluster.report();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.wins, row.impressions, row.spend_micros),
        (BIDS as u64, BIDS as u64, spend)
    );
    assert!(spend > 0);
    // Round trips per purpose are exported (read once a second).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = a.metrics().await;
        if let Some(line) = metrics
            .lines()
            .find(|l| l.starts_with("bullseye_redis_round_trips_total{purpose=\"claim\"}"))
            && line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                > 0.0
        {
            break;
        }
        assert!(Instant::now() < deadline, "no claim round trips in\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.stop().await;
}

const CPC_CAMPAIGN: &str = r#"
[[campaign]]
id = "cpc"
advertiser = "Travel"
adomain = ["travel.example"]
pricing = "cpc"
max_bid = "1.00"
pctr_prior = "0.002"
daily_budget = "100"
  [[campaign.creative]]
  id = "t1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.travel.example/a.png"
  landing_url = "https://travel.example/deals?x=1"
"#;

/// Pixel and billing notice at node A, the click at node B, the conversion
/// at node C: the click is judged with A's impression time and charged
/// with A's clearing price; the conversion is attributed to B's click.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_click_and_a_conversion_on_other_nodes_see_the_impression() {
    let redis = RedisServer::start();
    let config = config(CPC_CAMPAIGN);
    let cluster = Cluster::start(&redis, config.path(), 3).await;
    let (a, b, c) = (&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]);
    let clock = &cluster.clock;

    // No impression anywhere: logged at B, not billed.
    let orphan = cluster.bid(0, "a").await;
    let click = b.get(&on(b, &url_in_adm(&orphan, "/t/click?"))).await;
    assert_eq!(click.status(), StatusCode::FOUND);
    // Too fast after A's impression.
    let hasty = cluster.bid(0, "b").await;
    assert_eq!(
        a.get(&on(a, &url_in_adm(&hasty, "/t/imp?"))).await.status(),
        StatusCode::OK
    );
    let click = b.get(&on(b, &url_in_adm(&hasty, "/t/click?"))).await;
    assert_eq!(click.status(), StatusCode::FOUND);
    // A good click: charged max_cpc × clearing / bid = 1.00 × 1.50 / 2.00,
    // the clearing price known from A's billing notice.
    let good = cluster.bid(0, "c").await;
    assert_eq!(good["price"], 2.0);
    assert_eq!(
        a.get(&on(a, &burl(&good, "1.50"))).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        a.get(&on(a, &url_in_adm(&good, "/t/imp?"))).await.status(),
        StatusCode::OK
    );
    clock.advance(Duration::from_secs(5));
    let click = b.get(&on(b, &url_in_adm(&good, "/t/click?"))).await;
    assert_eq!(click.status(), StatusCode::FOUND);
    let location = click.headers()["location"].to_str().unwrap().to_string();
    // The same click again at C: it lands, it is not billed again.
    let again = c.get(&on(c, &url_in_adm(&good, "/t/click?"))).await;
    assert_eq!(again.status(), StatusCode::FOUND);

    // The conversion at C, attributed through B's click; once per order
    // id, wherever the advertiser's retry lands.
    let click_id = location.split("bz_click=").nth(1).unwrap().to_string();
    let ts = clock.now().as_second();
    let postback = signed_postback(
        POSTBACK_SECRET,
        &format!("click={click_id}&order=A1&value=12.50&ts={ts}"),
    );
    assert_eq!(c.get(&postback).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(a.get(&postback).await.status(), StatusCode::NO_CONTENT);

    let by_node: Vec<Vec<Record>> = cluster
        .data
        .iter()
        .map(|d| read_all(&d.path().join("ledger")).unwrap())
        .collect();
    let clicks: Vec<&Record> = by_node[1].iter().filter(|r| r.event == EventKind::Click).collect();
    let reasons: Vec<Option<&str>> = clicks.iter().map(|r| r.filtered.as_deref()).collect();
    assert_eq!(reasons, [Some("no_impression"), Some("too_fast"), None], "judged at B");
    assert_eq!(clicks[2].charge, 750_000, "charged with A's clearing price");
    assert!(
        !by_node[2].iter().any(|r| r.event == EventKind::Click),
        "the repeated click at C is not recorded"
    );
    let conversions: Vec<Record> = cluster
        .records()
        .into_iter()
        .filter(|r| r.event == EventKind::Conversion)
        .collect();
    assert_eq!(conversions.len(), 1, "one conversion, once");
    assert_eq!(conversions[0].filtered, None, "attributed to a billable click");
    assert!(
        by_node[2].iter().any(|r| r.event == EventKind::Conversion),
        "recorded at C"
    );

    let rows = cluster.report();
    let row = &rows[0];
    assert_eq!(
        (
            row.clicks,
            row.filtered_clicks,
            row.conversions,
            row.conversion_value_micros,
            row.spend_micros
        ),
        (1, 2, 1, 12_500_000, 750_000)
    );
    cluster.stop().await;
}

/// Node A: a tracker built in the test over a simulated disk whose syncs
/// can be held, claiming through the cluster's Redis.
struct SlowNode {
    bidder: Bidder,
    tracker: Arc<Tracker>,
    disk: Arc<SimulatedDisk>,
    ledger_dir: PathBuf,
    _data: tempfile::TempDir,
}

impl SlowNode {
    async fn join(config: &Path, redis: &RedisServer, clock: Arc<ManualClock>) -> SlowNode {
        let bidder = Bidder::from_config_dir(config, clock).unwrap();
        let signing_key = bidder.world.load().settings.signing_key.clone();
        let options = ClusterOptions {
            redis_url: redis.url(),
            node_id: "slow-a".into(),
        };
        let node = Arc::new(Node::join(&options, &signing_key).await.unwrap());
        let shared = Arc::new(Shared::new(node, Embedded::default(), Default::default()));
        let data = tempfile::tempdir().unwrap();
        let disk = Arc::new(SimulatedDisk::default());
        let ledger_dir = data.path().join("ledger");
        let (ledger, _) = Ledger::open_on(&ledger_dir, disk.clone()).unwrap();
        let tracker = Tracker::with_shared(
            ledger,
            Arc::new(FrequencyStore::default()),
            shared,
            Arc::new(Default::default()),
        );
        SlowNode {
            bidder,
            tracker: Arc::new(tracker),
            disk,
            ledger_dir,
            _data: data,
        }
    }

    /// A fresh bid's billing-notice query, cleared at 0.50.
    fn billing_query(&self, user: &str) -> String {
        let request = banner_request(user, 0.0, json!({})).to_string();
        let Outcome::Bid { body, .. } = self.bidder.bid(None, request.as_bytes(), Instant::now()) else {
            panic!("a bid expected");
        };
        let response: Value = serde_json::from_slice(&body).unwrap();
        let burl = response["seatbid"][0]["bid"][0]["burl"].as_str().unwrap();
        burl.split_once('?').unwrap().1.replace("${AUCTION_PRICE}", "0.50")
    }

    fn bill(&self, query: &str) -> tokio::task::JoinHandle<TrackingReply> {
        let (tracker, world, now) = (
            self.tracker.clone(),
            self.bidder.world.load_full(),
            self.bidder.clock.now(),
        );
        let query = query.to_string();
        tokio::spawn(async move { tracker.handle(&world, now, "bill", &query, None).await })
    }

    async fn wait_for_held_syncs(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.disk.waiting() < n {
            assert!(Instant::now() < deadline, "no sync reached the disk");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A duplicate reaching node B while node A's original is still being
/// written waits like a local duplicate: 503 with `Retry-After` past the
/// wait, acknowledged (and not billed again) once A's is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_of_a_pending_notice_on_another_node_waits_then_gets_503() {
    let redis = RedisServer::start();
    let config = config(&large_budget());
    let cluster = Cluster::start(&redis, config.path(), 1).await;
    let b = &cluster.nodes[0];
    let slow = SlowNode::join(config.path(), &redis, cluster.clock.clone()).await;

    slow.disk.hold();
    let query = slow.billing_query("user-1");
    let original = slow.bill(&query);
    slow.wait_for_held_syncs(1).await;
    let started = Instant::now();
    let duplicate = b.get(&format!("/t/bill?{query}")).await;
    assert_eq!(duplicate.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(duplicate.headers()["retry-after"], "1");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "it waited for the original"
    );
    assert!(!original.is_finished(), "the original is still pending");

    // Another duplicate waits; the original becomes durable meanwhile.
    let waiting = {
        let (client, url) = (b.client.clone(), b.url(&format!("/t/bill?{query}")));
        tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    slow.disk.release();
    assert_eq!(original.await.unwrap(), TrackingReply::Accepted);
    assert_eq!(waiting.await.unwrap(), StatusCode::NO_CONTENT);
    assert_eq!(
        b.get(&format!("/t/bill?{query}")).await.status(),
        StatusCode::NO_CONTENT,
        "a later retry too"
    );
    let at_a = read_all(&slow.ledger_dir).unwrap();
    let at_b = cluster.records();
    assert_eq!(bills(&at_a).len(), 1);
    assert!(bills(&at_b).is_empty(), "billed at A only: {at_b:?}");
    cluster.stop().await;
}

fn set_paused(redis: &RedisServer, paused: bool) {
    let signal = if paused { libc::SIGSTOP } else { libc::SIGCONT };
    // SAFETY: kill sends a signal to the test's own child process.
    let done = unsafe { libc::kill(redis.pid() as i32, signal) };
    assert_eq!(done, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Resumes a paused Redis when dropped (a failing assertion must not leave
/// it stopped).
struct Resume<'r>(&'r RedisServer);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        set_paused(self.0, false);
    }
}

/// Polls a node's metric until `done` holds (10 s at most).
async fn wait_for_metric(node: &TestBidder, name: &str, done: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = metric(&node.metrics().await, name);
        if done(value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{name} stayed at {value}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Redis paused (`SIGSTOP`): notices are still acknowledged, claimed on
/// each node alone and counted; one billed on two nodes meanwhile is in
/// both ledgers, and the merged report still counts it once. Once Redis
/// resumes, the local claims are written to it (a duplicate after that is
/// recognised on any node) and the conflict is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_paused_notices_are_acknowledged_and_the_merged_report_stays_exact() {
    let redis = RedisServer::start();
    let config = config(&large_budget());
    let cluster = Cluster::start(&redis, config.path(), 2).await;
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    // Some traffic first, with Redis up.
    let before = cluster.bid(0, "before").await;
    assert_eq!(
        a.get(&on(a, &burl(&before, "0.50"))).await.status(),
        StatusCode::NO_CONTENT
    );

    set_paused(&redis, true);
    let resume = Resume(&redis);
    let mut bids = Vec::new();
    let started = Instant::now();
    for i in 0..10 {
        let bid = cluster.bid(i % 2, &format!("user-{i}")).await;
        let node = &cluster.nodes[i % 2];
        assert_eq!(
            node.get(&on(node, &burl(&bid, "0.50"))).await.status(),
            StatusCode::NO_CONTENT
        );
        let pixel = url_in_adm(&bid, "/t/imp?");
        let other = &cluster.nodes[(i + 1) % 2];
        assert_eq!(other.get(&on(other, &pixel)).await.status(), StatusCode::OK);
        bids.push(bid);
    }
    // The same notice at both nodes while Redis is away: billed on each.
    let twice = burl(&bids[0], "0.50");
    assert_eq!(b.get(&on(b, &twice)).await.status(), StatusCode::NO_CONTENT);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "acknowledged without waiting for Redis each time: {:?}",
        started.elapsed()
    );
    for node in [a, b] {
        wait_for_metric(node, "bullseye_cluster_claims_local_total", |v| v >= 1.0).await;
        assert_eq!(metric(&node.metrics().await, "bullseye_cluster_claims_redis_up"), 0.0);
    }
    let locally = metric(&a.metrics().await, "bullseye_cluster_claims_local_total")
        + metric(&b.metrics().await, "bullseye_cluster_claims_local_total");
    assert!(
        locally >= 21.0,
        "every claim made while Redis was away is counted: {locally}"
    );

    drop(resume);
    for node in [a, b] {
        wait_for_metric(node, "bullseye_cluster_claims_redis_up", |v| v == 1.0).await;
        wait_for_metric(node, "bullseye_cluster_claims_backlog", |v| v == 0.0).await;
    }
    let conflicts = metric(&a.metrics().await, "bullseye_cluster_claims_conflicts_total")
        + metric(&b.metrics().await, "bullseye_cluster_claims_conflicts_total");
    assert!(conflicts >= 1.0, "the notice billed on both nodes is a conflict");
    // Reconciled: a retry of a notice taken while Redis was away is a
    // duplicate on the other node too.
    let taken_at_b = burl(&bids[1], "0.50");
    assert_eq!(a.get(&on(a, &taken_at_b)).await.status(), StatusCode::NO_CONTENT);

    let records = cluster.records();
    let billed = bills(&records);
    assert_eq!(billed.len(), 11);
    let doubly: Vec<_> = billed.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(doubly.len(), 1, "only the notice sent to both nodes is in both ledgers");
    let per_bid: HashMap<&str, i64> = records
        .iter()
        .filter(|r| r.event == EventKind::Bill)
        .map(|r| (r.bid.as_str(), r.charge))
        .collect();
    let rows = cluster.report();
    let row = &rows[0];
    assert_eq!(
        (row.wins, row.impressions, row.spend_micros),
        (11, 11, per_bid.values().sum::<i64>()),
        "each event once in the merged report"
    );
    // The same through the command line.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bullseye"))
        .args(["report", "--format", "json", "--data-dir"])
        .arg(cluster.data[0].path())
        .arg("--data-dir")
        .arg(cluster.data[1].path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let cli: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (&cli[0]["wins"], &cli[0]["impressions"], &cli[0]["spend_micros"]),
        (&json!(11), &json!(11), &json!(row.spend_micros))
    );
    cluster.stop().await;
}

fn at(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_microsecond()
}

fn event(kind: EventKind, bid: &str, when: &str, charge: i64, counts: u8) -> Record {
    Record {
        at: at(when),
        event: kind,
        bid: bid.into(),
        campaign: "c".into(),
        creative: "k1".into(),
        exchange: "default".into(),
        clearing: (charge > 0).then_some(charge * 1000),
        charge,
        billed: charge > 0,
        filtered: None,
        test: false,
        user: 0,
        pricing: Pricing::Cpm,
        value: None,
        order: None,
        domain: "news.example".into(),
        country: "FRA".into(),
        device: 4,
        utc_offset: Some(0),
        counts: Some(counts),
        arm: None,
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

/// What two nodes record of the same bids while Redis is unreachable: the
/// same billing notice in both ledgers, and one bid's win counted by its
/// win notice on one node and its impression by the pixel on the other
/// while the billing notice on the first counted both. The merged report
/// counts every event, win and impression once — from the raw day files,
/// and once the day is closed and rolled up on one node or both.
#[test]
fn two_data_dirs_holding_the_same_events_count_them_once() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let both = COUNTS_WIN | COUNTS_IMPRESSION;
    write(
        a.path(),
        &[
            event(EventKind::Bill, "b1", "2026-11-24T10:00:00Z", 500, both),
            event(EventKind::Bill, "b2", "2026-11-24T10:00:01Z", 700, both),
        ],
    );
    write(
        b.path(),
        &[
            // b1's billing notice again (retried at B, Redis unreachable).
            event(EventKind::Bill, "b1", "2026-11-24T10:00:02Z", 500, both),
            // b2's pixel, counted at B too (its bit was not seen).
            event(
                EventKind::Impression,
                "b2",
                "2026-11-24T10:00:03Z",
                0,
                COUNTS_IMPRESSION,
            ),
            event(EventKind::Bill, "b3", "2026-11-24T10:00:04Z", 300, both),
        ],
    );
    let dirs = [a.path().to_path_buf(), b.path().to_path_buf()];
    let check = |what: &str| {
        let rows = query(&dirs, &ReportQuery::from_flags(&Flags::default()).unwrap()).unwrap();
        assert_eq!(rows.len(), 1, "{what}");
        let r = &rows[0];
        assert_eq!((r.wins, r.impressions, r.spend_micros), (3, 3, 1_500), "{what}");
    };
    check("raw day files");
    rollup::maintain(&a.path().join("ledger"), "2026-11-25", 90).unwrap();
    check("one node's day closed and rolled up");
    rollup::maintain(&b.path().join("ledger"), "2026-11-25", 90).unwrap();
    check("both closed");
}

/// The claim round trips made so far by `nodes` (the metric is refreshed
/// once a second).
async fn claim_round_trips(nodes: &[TestBidder]) -> f64 {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let mut total = 0.0;
    for node in nodes {
        total += metric(
            &node.metrics().await,
            "bullseye_redis_round_trips_total{purpose=\"claim\"}",
        );
    }
    total
}

/// Redis commands (from `INFO commandstats`, script bodies included) and
/// round trips per tracking event of each kind, on three nodes, each event
/// where the fewest claims are already cached (the billing notice at the
/// next node after the bidder, its duplicate and pixel at the third, the
/// click at the bidder, the conversion at the next): printed for
/// docs/cluster.md, and bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_commands_per_notice_are_measured() {
    let redis = RedisServer::start();
    let config = config(CPC_CAMPAIGN);
    let settings = std::fs::read_to_string(config.path().join("bullseye.toml")).unwrap();
    let settings = format!("{settings}\n[[exchange]]\nname = \"lossy\"\nsends_lurl = true\n");
    std::fs::write(config.path().join("bullseye.toml"), settings).unwrap();
    let cluster = Cluster::start(&redis, config.path(), 3).await;
    let nodes = &cluster.nodes;
    const N: usize = 20;
    let mut bids = Vec::new();
    for i in 0..N {
        bids.push(cluster.bid(i % 3, &format!("user-{i}")).await);
    }
    let next = |i: usize| &nodes[(i + 1) % 3];
    let third = |i: usize| &nodes[(i + 2) % 3];
    let mut table = Vec::new();
    let mut measure = |what: &'static str, calls: HashMap<String, u64>, trips: f64| {
        let commands: u64 = calls
            .iter()
            // Leases and replication run beside the claims: their rounds
            // (streams, lease hashes, the lease epoch's clock) are theirs.
            .filter(|(c, _)| !c.starts_with("config") && !BACKGROUND.contains(&c.as_str()))
            .map(|(_, n)| n)
            .sum();
        let line = format!(
            "{what:<44} {:>5.2} commands {:>5.2} round trips  {calls:?}",
            commands as f64 / N as f64,
            trips / N as f64
        );
        eprintln!("{line}");
        table.push((what, commands as f64 / N as f64, trips / N as f64));
    };
    let phase = |redis: &RedisServer| {
        redis.command(&["CONFIG", "RESETSTAT"]);
    };

    let mut trips = claim_round_trips(nodes).await;
    phase(&redis);
    for (i, bid) in bids.iter().enumerate() {
        let node = next(i);
        assert_eq!(
            node.get(&on(node, &burl(bid, "1.50"))).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    let now = claim_round_trips(nodes).await;
    measure("billing notice", command_calls(&redis), now - trips);
    trips = now;

    phase(&redis);
    for (i, bid) in bids.iter().enumerate() {
        let node = third(i);
        assert_eq!(
            node.get(&on(node, &burl(bid, "1.50"))).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    let now = claim_round_trips(nodes).await;
    measure(
        "its duplicate on another node (durable)",
        command_calls(&redis),
        now - trips,
    );
    trips = now;

    phase(&redis);
    for (i, bid) in bids.iter().enumerate() {
        let node = third(i);
        let pixel = url_in_adm(bid, "/t/imp?");
        assert_eq!(node.get(&on(node, &pixel)).await.status(), StatusCode::OK);
    }
    let now = claim_round_trips(nodes).await;
    measure(
        "pixel (billing notice on another node)",
        command_calls(&redis),
        now - trips,
    );
    trips = now;

    cluster.clock.advance(Duration::from_secs(5));
    phase(&redis);
    let mut click_ids = Vec::new();
    for (i, bid) in bids.iter().enumerate() {
        let node = &nodes[i % 3];
        let click = node.get(&on(node, &url_in_adm(bid, "/t/click?"))).await;
        assert_eq!(click.status(), StatusCode::FOUND);
        let location = click.headers()["location"].to_str().unwrap().to_string();
        click_ids.push(location.split("bz_click=").nth(1).unwrap().to_string());
    }
    let now = claim_round_trips(nodes).await;
    measure(
        "CPC click (its impression on another node)",
        command_calls(&redis),
        now - trips,
    );
    trips = now;

    phase(&redis);
    let ts = cluster.clock.now().as_second();
    for (i, click) in click_ids.iter().enumerate() {
        let postback = signed_postback(POSTBACK_SECRET, &format!("click={click}&order=o{i}&value=1&ts={ts}"));
        assert_eq!(next(i).get(&postback).await.status(), StatusCode::NO_CONTENT);
    }
    let now = claim_round_trips(nodes).await;
    measure(
        "conversion (on the other node than the click)",
        command_calls(&redis),
        now - trips,
    );
    trips = now;

    let mut lost = Vec::new();
    for i in 0..N {
        let (status, response) = nodes[i % 3]
            .bid_at(
                "/openrtb2/bid/lossy",
                banner_request(&format!("loser-{i}"), 0.0, json!({})).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        lost.push(
            response.unwrap()["seatbid"][0]["bid"][0]["lurl"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    phase(&redis);
    for (i, lurl) in lost.iter().enumerate() {
        let node = next(i);
        let url = lurl
            .replace("${AUCTION_LOSS}", "102")
            .replace("${AUCTION_MIN_TO_WIN}", "");
        assert_eq!(node.get(&on(node, &url)).await.status(), StatusCode::NO_CONTENT);
    }
    let now = claim_round_trips(nodes).await;
    measure("loss notice", command_calls(&redis), now - trips);

    for (what, commands, round_trips) in table {
        assert!(commands <= 10.0, "{what}: {commands} commands per event");
        assert!(round_trips <= 6.0, "{what}: {round_trips} round trips per event");
    }
    let records = cluster.records();
    assert_eq!(bills(&records).len(), N);
    assert!(bills(&records).values().all(|&n| n == 1));
    cluster.stop().await;
}

/// A node restarted against a Redis that lost its data (restarted empty)
/// writes the claims it restores from its ledger back to it, so another
/// node still recognises their duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restored_claims_are_written_back_to_an_emptied_redis() {
    let redis = RedisServer::start();
    let config = config(&large_budget());
    let mut cluster = Cluster::start(&redis, config.path(), 2).await;
    let bid = cluster.bid(0, "user-1").await;
    let url = burl(&bid, "0.50");
    let a = &cluster.nodes[0];
    assert_eq!(a.get(&on(a, &url)).await.status(), StatusCode::NO_CONTENT);

    cluster.nodes.remove(0).stop().await;
    assert_eq!(redis.command(&["FLUSHALL"]).as_deref(), Some("OK"));
    let a = spawn_node(
        config.path(),
        cluster.data[0].path(),
        &redis.url(),
        "node-a",
        cluster.clock.clone(),
    )
    .await;
    wait_for_metric(&a, "bullseye_cluster_claims_backlog", |v| v == 0.0).await;
    let b = &cluster.nodes[0];
    assert_eq!(b.get(&on(b, &url)).await.status(), StatusCode::NO_CONTENT);
    cluster.nodes.insert(0, a);
    let billed = bills(&cluster.records());
    assert_eq!(
        billed.values().copied().collect::<Vec<_>>(),
        [1],
        "billed once: {billed:?}"
    );
    cluster.stop().await;
}
