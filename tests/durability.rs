//! Durability on a simulated disk (`ledger::SimulatedDisk`), which keeps
//! only synced bytes on a power loss and can hold syncs back or fail them:
//! what `kill -9` tests cannot show, since the page cache survives a
//! process. Acknowledged events survive a power loss; a failing fsync
//! refuses every later acknowledgement; and a duplicate is acknowledged
//! only once its original is durable (issue 17, item 8).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bullseye::bidder::{Bidder, Outcome};
use bullseye::clock::ManualClock;
use bullseye::ledger::{EventKind, Ledger, SimulatedDisk, read_all};
use bullseye::pacing::FrequencyStore;
use bullseye::tracking::notice::{Tracker, TrackingReply};
use common::*;
use serde_json::{Value, json};

struct Rig {
    bidder: Bidder,
    tracker: Arc<Tracker>,
    disk: Arc<SimulatedDisk>,
    ledger_dir: std::path::PathBuf,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn rig() -> Rig {
    let config = write_config(TEST_SETTINGS, &large_budget(), "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-06-01T12:00:00Z".parse().unwrap()));
    let bidder = Bidder::from_config_dir(config.path(), clock).unwrap();
    let disk = Arc::new(SimulatedDisk::default());
    let ledger_dir = data.path().join("ledger");
    let (ledger, _) = Ledger::open_on(&ledger_dir, disk.clone()).unwrap();
    let tracker = Arc::new(Tracker::new(ledger, Arc::new(FrequencyStore::default())));
    Rig {
        bidder,
        tracker,
        disk,
        ledger_dir,
        _dirs: (config, data),
    }
}

impl Rig {
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

    fn bill(&self, query: String) -> tokio::task::JoinHandle<TrackingReply> {
        let (tracker, world, now) = (
            self.tracker.clone(),
            self.bidder.world.load_full(),
            self.bidder.clock.now(),
        );
        tokio::spawn(async move { tracker.handle(&world, now, "bill", &query, None).await })
    }

    async fn wait_for_held_syncs(&self, n: usize) {
        wait_for_held_syncs(&self.disk, n).await;
    }

    fn bills_on_disk(&self) -> usize {
        bills_on_disk(&self.ledger_dir)
    }
}

async fn wait_for_held_syncs(disk: &SimulatedDisk, n: usize) {
    for _ in 0..500 {
        if disk.waiting() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("no sync reached the disk");
}

fn bills_on_disk(ledger_dir: &std::path::Path) -> usize {
    let records = read_all(ledger_dir).unwrap();
    records.iter().filter(|r| r.event == EventKind::Bill).count()
}

/// The real server over a simulated disk, with one bid made: its billing
/// URL, cleared at 0.50.
struct Served {
    bidder: TestBidder,
    disk: Arc<SimulatedDisk>,
    burl: String,
    data: tempfile::TempDir,
    _config: tempfile::TempDir,
}

async fn served() -> Served {
    let config = write_config(TEST_SETTINGS, &large_budget(), "u,a\n");
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-06-01T12:00:00Z".parse().unwrap()));
    let disk = Arc::new(SimulatedDisk::default());
    let bidder = spawn_bidder_on(config.path(), data.path(), clock, false, Some(disk.clone())).await;
    let (_, response) = bidder.bid_json(&banner_request("u", 0.0, json!({}))).await;
    let burl = response.unwrap()["seatbid"][0]["bid"][0]["burl"]
        .as_str()
        .unwrap()
        .replace("${AUCTION_PRICE}", "0.50");
    Served {
        bidder,
        disk,
        burl,
        data,
        _config: config,
    }
}

impl Served {
    /// Sends the billing notice with the disk's syncs held, and hangs up
    /// once its sync waits (the connection's end is seen before the disk
    /// answers). The syncs stay held.
    async fn bill_and_hang_up_mid_sync(&self) {
        use tokio::io::AsyncWriteExt;
        self.disk.hold();
        let addr = self.bidder.addr;
        let path_and_query = self.burl.split_once(&addr.to_string()).unwrap().1;
        let mut exchange = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        exchange.write_all(request.as_bytes()).await.unwrap();
        wait_for_held_syncs(&self.disk, 1).await;
        assert_eq!(self.disk.waiting(), 1, "the notice's sync is held");
        drop(exchange);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_a_power_loss() {
    let rig = rig();
    for i in 0..20 {
        let reply = rig.bill(rig.billing_query(&format!("user-{i}"))).await.unwrap();
        assert_eq!(reply, TrackingReply::Accepted);
    }
    // One more is written but its sync never completes: not acknowledged.
    rig.disk.hold();
    let pending = rig.bill(rig.billing_query("late"));
    rig.wait_for_held_syncs(1).await;
    rig.disk.power_loss().unwrap();
    assert_eq!(rig.bills_on_disk(), 20, "every acknowledged bill, nothing else");
    let (_, recovered) = Ledger::open(&rig.ledger_dir).unwrap();
    assert_eq!(recovered.count(), 20);
    assert!(!pending.is_finished(), "the unsynced notice was never acknowledged");
    rig.disk.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fsync_refuses_every_later_acknowledgement() {
    let rig = rig();
    assert_eq!(rig.bill(rig.billing_query("a")).await.unwrap(), TrackingReply::Accepted);
    rig.disk.fail_next_syncs(1);
    assert_eq!(
        rig.bill(rig.billing_query("b")).await.unwrap(),
        TrackingReply::Unavailable
    );
    // The kernel may have dropped the failed sync's pages: nothing more is
    // acknowledged until a restart reads the file back.
    for user in ["c", "d"] {
        assert_eq!(
            rig.bill(rig.billing_query(user)).await.unwrap(),
            TrackingReply::Unavailable
        );
    }
    assert!(!rig.tracker.ledger.is_healthy());
    rig.disk.power_loss().unwrap();
    assert_eq!(rig.bills_on_disk(), 1, "only the acknowledged bill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_waits_for_its_original_to_be_durable() {
    let rig = rig();
    // The original's sync is held back; its duplicate arrives meanwhile.
    rig.disk.hold();
    let query = rig.billing_query("a");
    let original = rig.bill(query.clone());
    rig.wait_for_held_syncs(1).await;
    let duplicate = rig.bill(query.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !duplicate.is_finished(),
        "a duplicate is not acknowledged before its original is durable"
    );
    // The original's fsync fails: neither may be acknowledged.
    rig.disk.fail_next_syncs(1);
    rig.disk.release();
    assert_eq!(original.await.unwrap(), TrackingReply::Unavailable);
    assert_eq!(duplicate.await.unwrap(), TrackingReply::Unavailable);
    rig.disk.power_loss().unwrap();
    assert_eq!(rig.bills_on_disk(), 0, "nothing durable, nothing acknowledged");

    // On a healthy disk a waiting duplicate is acknowledged once the
    // original is durable, and billed once.
    let rig = self::rig();
    rig.disk.hold();
    let query = rig.billing_query("b");
    let original = rig.bill(query.clone());
    rig.wait_for_held_syncs(1).await;
    let duplicate = rig.bill(query);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!duplicate.is_finished());
    rig.disk.release();
    assert_eq!(original.await.unwrap(), TrackingReply::Accepted);
    assert_eq!(duplicate.await.unwrap(), TrackingReply::Accepted);
    assert_eq!(rig.bills_on_disk(), 1);
}

/// An exchange that hangs up while its billing notice waits for the disk
/// (an fsync slower than its timeout) does not leave the notice half done:
/// once the sync completes, the record is counted in the live spend, the
/// bid's reservation is settled, and the exchange's retry is acknowledged
/// as the duplicate it is. The handler used to be dropped with the
/// connection: the record durable, the spend and reservation untouched,
/// every retry refused with 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_whose_exchange_hangs_up_mid_sync_is_still_counted() {
    let served = served().await;
    let bidder = &served.bidder;
    let live = || async {
        let answer = bidder
            .admin(reqwest::Method::GET, "/admin/api/campaigns/generic")
            .send()
            .await
            .unwrap();
        answer.json::<Value>().await.unwrap()["live"]["today"].clone()
    };
    assert_eq!(live().await["outstanding"], json!("0.001"), "the bid's reservation");

    served.bill_and_hang_up_mid_sync().await;
    served.disk.release();

    let mut today = Value::Null;
    for _ in 0..500 {
        today = live().await;
        if today["spend_micros"] == json!(500) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(today["spend_micros"], json!(500), "0.50 CPM counted: {today}");
    assert_eq!(today["outstanding"], json!("0"), "the reservation settled: {today}");
    let retry = bidder.get(&served.burl).await;
    assert_eq!(
        retry.status(),
        reqwest::StatusCode::NO_CONTENT,
        "the retry is a duplicate"
    );
    let Served {
        bidder, data, _config, ..
    } = served;
    bidder.stop().await;
    assert_eq!(bills_on_disk(&data.path().join("ledger")), 1);
}

/// A shutdown (SIGTERM) waits for a tracking event whose exchange has hung
/// up: its task outlives its connection, and the serving thread's runtime
/// must not be dropped under it between the record and the live update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_waits_for_a_notice_whose_exchange_hung_up() {
    let served = served().await;
    served.bill_and_hang_up_mid_sync().await;
    let Served {
        bidder,
        disk,
        data: _data,
        _config,
        ..
    } = served;
    let app = bidder.running.as_ref().unwrap().app.clone();
    let stopping = tokio::spawn(bidder.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stopping.is_finished(), "the shutdown waits for the notice");
    disk.release();
    stopping.await.unwrap();
    let world = app.bidder.world.load();
    let generic = world.campaign_by_id("generic").unwrap();
    assert_eq!(generic.state.spend.outstanding().0, 0, "the reservation settled");
}
