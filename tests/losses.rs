//! Issue 13, loss and price signals: a signed `lurl` only for exchanges
//! that send loss notices; a verified loss notice gives its bid's budget
//! reservation back at once, once, and never after a win; forged ones are
//! refused; losses (and the minimum bid to win) go to a loss log of their
//! own and are counted by reason; an exchange's encrypted clearing price is
//! decrypted and billed exactly, and a tampered one is refused.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bullseye::encrypted_price::PriceKeys;
use bullseye::ledger::losses::LossRecord;
use bullseye::ledger::{EventKind, read_all};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Google's sample price keys ("Decrypt price confirmations",
/// developers.google.com/authorized-buyers/rtb/response-guide/decrypt-price).
const E_KEY: &str = "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=";
const I_KEY: &str = "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=";

/// The test settings plus `lossy` (sends loss notices) and `gdx` (sends
/// encrypted prices, its keys in files under `dir`).
fn settings(dir: &Path) -> String {
    std::fs::write(dir.join("gdx.ekey"), format!("{E_KEY}\n")).unwrap();
    std::fs::write(dir.join("gdx.ikey"), I_KEY).unwrap();
    format!(
        "{TEST_SETTINGS}\n[[exchange]]\nname = \"lossy\"\nsends_lurl = true\n\n[[exchange]]\nname = \"gdx\"\n\
         price_encryption_key_file = \"{}\"\nprice_integrity_key_file = \"{}\"\n",
        dir.join("gdx.ekey").display(),
        dir.join("gdx.ikey").display()
    )
}

struct Setup {
    bidder: TestBidder,
    data: PathBuf,
    /// The data and config directories, kept past the bidder's stop.
    _dirs: Vec<tempfile::TempDir>,
}

async fn start() -> Setup {
    let dir = write_config("", SMALL, "u,a\n");
    std::fs::write(dir.path().join("bullseye.toml"), settings(dir.path())).unwrap();
    let clock = std::sync::Arc::new(bullseye::clock::ManualClock::new(
        "2026-11-24T10:00:00Z".parse().unwrap(),
    ));
    let mut bidder = spawn_bidder_with(dir.path(), clock, false).await;
    bidder.dirs.push(dir);
    let data = bidder.dirs[0].path().to_path_buf();
    let _dirs = std::mem::take(&mut bidder.dirs);
    Setup { bidder, data, _dirs }
}

/// The bid for `user` at `exchange` (`""` for the default), if any.
async fn bid_at(bidder: &TestBidder, exchange: &str, user: &str) -> Option<Value> {
    let path = match exchange {
        "" => "/openrtb2/bid".to_string(),
        name => format!("/openrtb2/bid/{name}"),
    };
    let (status, response) = bidder
        .bid_at(&path, banner_request(user, 0.0, json!({})).to_string())
        .await;
    (status == StatusCode::OK).then(|| response.unwrap()["seatbid"][0]["bid"][0].clone())
}

fn lurl(bid: &Value, reason: &str, min_to_win: &str) -> String {
    bid["lurl"]
        .as_str()
        .expect("the bid has an lurl")
        .replace("${AUCTION_LOSS}", reason)
        .replace("${AUCTION_MIN_TO_WIN}", min_to_win)
}

fn loss_records(data: &Path) -> Vec<LossRecord> {
    let mut records = Vec::new();
    for entry in std::fs::read_dir(data.join("losses")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        records.extend(text.lines().map(|l| serde_json::from_str::<LossRecord>(l).unwrap()));
    }
    records
}

/// The loss log once it holds `n` records (it is written in the background).
async fn loss_log(data: &Path, n: usize) -> Vec<LossRecord> {
    for _ in 0..200 {
        let records = loss_records(data);
        if records.len() >= n {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the loss log never held {n} records: {:?}", loss_records(data));
}

fn losses_metric(metrics: &str, exchange: &str, reason: &str) -> f64 {
    let name = format!("bullseye_losses_total{{exchange=\"{exchange}\",reason=\"{reason}\"}}");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name.as_str())?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Serves the IAB schema files to the validator by their `$id` file name
/// (as tests/corpus.rs does).
struct SchemaFiles(HashMap<String, Value>);

impl jsonschema::Retrieve for SchemaFiles {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.as_str().rsplit('/').next().unwrap_or_default();
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| format!("no schema {name}").into())
    }
}

fn response_validator() -> jsonschema::Validator {
    let dir = repo_root().join("../shared/openrtb-schema");
    let load =
        |name: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap() };
    let files: HashMap<String, Value> = ["Bid.json", "SeatBid.json", "BidResponse.json"]
        .iter()
        .map(|n| (n.to_string(), load(n)))
        .collect();
    let root = files["BidResponse.json"].clone();
    jsonschema::options()
        .with_retriever(SchemaFiles(files))
        .build(&root)
        .expect("schema compiles")
}

/// The `sends_lurl` defect: the key was accepted and did nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bids_carry_a_signed_lurl_only_where_the_exchange_sends_loss_notices() {
    let Setup { bidder, _dirs, .. } = start().await;
    let validator = response_validator();
    for (exchange, sends) in [("", false), ("lossy", true), ("gdx", false)] {
        let path = match exchange {
            "" => "/openrtb2/bid".to_string(),
            name => format!("/openrtb2/bid/{name}"),
        };
        let (status, response) = bidder
            .bid_at(&path, banner_request("a", 0.0, json!({})).to_string())
            .await;
        assert_eq!(status, StatusCode::OK, "{exchange}");
        let response = response.unwrap();
        let errors: Vec<String> = validator.iter_errors(&response).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{exchange}: {errors:?}");
        let bid = &response["seatbid"][0]["bid"][0];
        match sends {
            false => assert!(bid.get("lurl").is_none(), "{exchange}: {bid}"),
            true => {
                let lurl = bid["lurl"].as_str().unwrap();
                assert!(lurl.starts_with(&format!("http://{}/t/loss?", bidder.addr)), "{lurl}");
                assert!(
                    lurl.ends_with("&reason=${AUCTION_LOSS}&mtw=${AUCTION_MIN_TO_WIN}"),
                    "{lurl}"
                );
                assert!(lurl.contains(&format!("b={}&", bid["id"].as_str().unwrap())));
            }
        }
    }
    bidder.stop().await;
}

/// Three bids hold the whole budget; a loss notice gives one reservation
/// back at once, so the next request bids; a duplicate gives nothing back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_notice_releases_its_reservation_once() {
    let Setup { bidder, data, _dirs } = start().await;
    let mut bids = Vec::new();
    for user in ["a", "b", "c"] {
        bids.push(bid_at(&bidder, "lossy", user).await.expect("budget left"));
    }
    assert!(bid_at(&bidder, "lossy", "d").await.is_none(), "all held");
    let loss = lurl(&bids[0], "102", "3.75");
    assert_eq!(bidder.get(&loss).await.status(), StatusCode::NO_CONTENT);
    assert!(
        bid_at(&bidder, "lossy", "e").await.is_some(),
        "the loss gave 0.0035 back"
    );
    assert!(bid_at(&bidder, "lossy", "f").await.is_none(), "held again");
    assert_eq!(bidder.get(&loss).await.status(), StatusCode::NO_CONTENT, "a duplicate");
    assert!(
        bid_at(&bidder, "lossy", "g").await.is_none(),
        "a duplicate gives nothing back"
    );
    let metrics = bidder.metrics().await;
    assert_eq!(
        losses_metric(&metrics, "lossy", "lost_to_higher_bid"),
        1.0,
        "counted once"
    );
    // An unlisted code is kept as its number; no reason at all is `unknown`.
    assert_eq!(
        bidder.get(&lurl(&bids[1], "1042", "")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bidder.get(&lurl(&bids[2], "${AUCTION_LOSS}", "")).await.status(),
        StatusCode::NO_CONTENT
    );
    let metrics = bidder.metrics().await;
    assert_eq!(losses_metric(&metrics, "lossy", "1042"), 1.0);
    assert_eq!(losses_metric(&metrics, "lossy", "unknown"), 1.0);
    let records = loss_log(&data, 3).await;
    assert_eq!(records.len(), 3, "the duplicate is not written: {records:?}");
    bidder.stop().await;
}

/// A forged or altered loss notice is refused and never acted on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_loss_notice_is_refused_and_releases_nothing() {
    let Setup { bidder, data, _dirs } = start().await;
    let mut bids = Vec::new();
    for user in ["a", "b", "c"] {
        bids.push(bid_at(&bidder, "lossy", user).await.expect("budget left"));
    }
    let genuine = lurl(&bids[0], "102", "");
    let bid_id = bids[0]["id"].as_str().unwrap();
    let forged = [
        genuine.replace(&format!("b={bid_id}"), "b=0000000000000000"),
        genuine.replace("p=3500000", "p=3400000"),
        // A win notice's signature on the loss path.
        bids[0]["nurl"].as_str().unwrap().replace("/t/win?", "/t/loss?"),
        format!("{}&reason=102", genuine.split("&sig=").next().unwrap()),
    ];
    for url in &forged {
        assert_eq!(bidder.get(url).await.status(), StatusCode::FORBIDDEN, "{url}");
    }
    assert!(bid_at(&bidder, "lossy", "d").await.is_none(), "nothing was released");
    let metrics = bidder.metrics().await;
    assert_eq!(metric(&metrics, "bullseye_tracking_rejected_total"), 4.0);
    assert_eq!(losses_metric(&metrics, "lossy", "lost_to_higher_bid"), 0.0);
    // The genuine one still works, and only it is written.
    assert_eq!(bidder.get(&genuine).await.status(), StatusCode::NO_CONTENT);
    let records = loss_log(&data, 1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].bid, bid_id);
    bidder.stop().await;
}

/// The minimum bid to win goes to the loss log with the bid's facts; an
/// unreadable one is ignored (counted), not fatal; `report --losses`
/// reads the log back by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_to_win_is_recorded_in_the_loss_log() {
    let Setup { bidder, data, _dirs } = start().await;
    let first = bid_at(&bidder, "lossy", "a").await.unwrap();
    let second = bid_at(&bidder, "lossy", "b").await.unwrap();
    assert_eq!(
        bidder.get(&lurl(&first, "102", "3.75")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bidder.get(&lurl(&second, "102", "1e3")).await.status(),
        StatusCode::NO_CONTENT,
        "a malformed min-to-win is no reason to refuse the loss"
    );
    let mut records = loss_log(&data, 2).await;
    records.sort_by_key(|r| r.bid != first["id"].as_str().unwrap());
    let expected = LossRecord {
        at: "2026-11-24T10:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_microsecond(),
        bid: first["id"].as_str().unwrap().into(),
        campaign: "small".into(),
        creative: "s1".into(),
        exchange: "lossy".into(),
        reason: Some(102),
        min_to_win: Some(3_750_000),
        bid_price: 3_500_000,
        currency: "USD".into(),
    };
    assert_eq!(records[0], expected);
    assert_eq!(records[1].min_to_win, None, "ignored");
    assert_eq!(
        metric(&bidder.metrics().await, "bullseye_min_to_win_ignored_total"),
        1.0
    );
    // Not in the billing log.
    assert!(read_all(&data.join("ledger")).unwrap().is_empty());
    bidder.stop().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bullseye"))
        .args([
            "report",
            "--losses",
            "--format",
            "json",
            "--date",
            "2026-11-24",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        rows,
        json!([{
            "campaign": "small", "exchange": "lossy", "reason": "lost_to_higher_bid", "code": 102,
            "losses": 2, "with_min_to_win": 1, "mean_min_to_win_micros": 3_750_000
        }])
    );
}

/// The win wins: a loss notice after the billing notice undoes neither the
/// charge nor the settled reservation; nor does a billing notice after a
/// loss give the reservation back twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_after_a_bill_does_not_undo_the_charge() {
    let Setup { bidder, data, _dirs } = start().await;
    let mut bids = Vec::new();
    for user in ["a", "b", "c"] {
        bids.push(bid_at(&bidder, "lossy", user).await.expect("budget left"));
    }
    let burl = |bid: &Value| bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", "3.5");
    // Billed, then a contradicting loss: ignored.
    assert_eq!(bidder.get(&burl(&bids[0])).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        bidder.get(&lurl(&bids[0], "102", "")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(
        bid_at(&bidder, "lossy", "d").await.is_none(),
        "spent 3,500 + held 7,000: the loss released nothing"
    );
    // Lost, then billed anyway: charged, but released once only.
    assert_eq!(
        bidder.get(&lurl(&bids[1], "102", "")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(bidder.get(&burl(&bids[1])).await.status(), StatusCode::NO_CONTENT);
    assert!(
        bid_at(&bidder, "lossy", "e").await.is_none(),
        "spent 7,000 + held 3,500: the bill after the loss released nothing more"
    );
    // A win notice (this exchange bills on burl), then a loss: the win
    // wins, the reservation stays for the billing notice to come.
    let nurl = bids[2]["nurl"].as_str().unwrap().replace("${AUCTION_PRICE}", "3.5");
    assert_eq!(bidder.get(&nurl).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        bidder.get(&lurl(&bids[2], "102", "")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(
        bid_at(&bidder, "lossy", "f").await.is_none(),
        "still held for its billing notice"
    );
    let metrics = bidder.metrics().await;
    assert_eq!(losses_metric(&metrics, "lossy", "lost_to_higher_bid"), 1.0);
    bidder.stop().await;
    let bills: Vec<(String, i64)> = read_all(&data.join("ledger"))
        .unwrap()
        .into_iter()
        .filter(|r| r.event == EventKind::Bill)
        .map(|r| (r.bid, r.charge))
        .collect();
    let id = |bid: &Value| bid["id"].as_str().unwrap().to_string();
    assert_eq!(bills, [(id(&bids[0]), 3_500), (id(&bids[1]), 3_500)]);
    let losses = loss_records(&data);
    assert_eq!(losses.iter().map(|r| r.bid.clone()).collect::<Vec<_>>(), [id(&bids[1])]);
}

/// An exchange that encrypts `${AUCTION_PRICE}`: the decrypted price is
/// billed exactly; a tampered one is refused and never billed; a clear one
/// is not accepted from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_prices_are_billed_exactly_and_tampered_ones_refused() {
    let Setup { bidder, data, _dirs } = start().await;
    let keys = PriceKeys::new(
        &PriceKeys::decode_key(E_KEY).unwrap(),
        &PriceKeys::decode_key(I_KEY).unwrap(),
    );
    let won = bid_at(&bidder, "gdx", "a").await.unwrap();
    let tampered_bid = bid_at(&bidder, "gdx", "b").await.unwrap();
    let burl = |bid: &Value, price: &str| bid["burl"].as_str().unwrap().replace("${AUCTION_PRICE}", price);
    let price = keys.encrypt(2_345_678, b"2026-11-24-10:00");
    // Altered in its encrypted price bytes (character 25 of 38).
    let mut tampered = price.clone().into_bytes();
    tampered[25] = if tampered[25] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        bidder.get(&burl(&tampered_bid, &tampered)).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bidder.get(&burl(&tampered_bid, "3.5")).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(bidder.get(&burl(&won, &price)).await.status(), StatusCode::NO_CONTENT);
    // Above the bid (3.50), even though genuine: refused like a clear one.
    let too_high = keys.encrypt(3_500_001, b"2026-11-24-10:01");
    assert_eq!(
        bidder.get(&burl(&tampered_bid, &too_high)).await.status(),
        StatusCode::BAD_REQUEST
    );
    bidder.stop().await;
    let bills: Vec<(String, Option<i64>, i64)> = read_all(&data.join("ledger"))
        .unwrap()
        .into_iter()
        .filter(|r| r.event == EventKind::Bill)
        .map(|r| (r.bid, r.clearing, r.charge))
        .collect();
    assert_eq!(
        bills,
        [(won["id"].as_str().unwrap().to_string(), Some(2_345_678), 2_345)],
        "billed at the decrypted price (2.345678 CPM → 0.002345 per impression), the tampered bid never"
    );
}
