//! Fuzz-target bodies, shared by the cargo-fuzz targets in `fuzz/` and by
//! `tests/fuzz_corpus.rs`, which replays the committed corpus on stable.
//!
//! The request targets are seeded from `../shared/corpus` (passed to the
//! fuzzer and replayed by the test from there, never copied here).
//!
//! Each function takes arbitrary bytes and must neither panic nor hang; the
//! assertions inside are the properties the fuzzer checks on what it finds.
//! Under `cfg(fuzzing)` the snapshot checksum and ledger CRCs are not
//! enforced, so that mutations reach the structural checks behind them.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use crate::audience::Snapshot;
use crate::bidder::{Bidder, Outcome, decode};
use crate::clock::SystemClock;
use crate::ledger::record;
use crate::money::Micros;
use crate::signing::{BidToken, Event, Signer};
use crate::tracking::notice::clearing_price;

fn bundled_config() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bidder-config")
}

/// The bundled default config's bidder, built once per process.
static BIDDER: LazyLock<Bidder> = LazyLock::new(|| {
    Bidder::from_config_dir(&bundled_config(), Arc::new(SystemClock)).expect("the bundled config loads")
});

/// Request decoding and validation: a decoded request has what the
/// pipeline relies on (an id, at least one impression, unique imp ids).
pub fn decode_request(data: &[u8]) {
    if let Ok(decoded) = decode::decode(data, &mut String::new()) {
        assert!(!decoded.request.imp.is_empty(), "a decoded request has impressions");
    }
}

/// The whole bid path in process: any body gets an outcome, and a bid is a
/// JSON object naming the request.
pub fn bid_path(data: &[u8]) {
    // Some inputs go to the named exchange (nurl billing, its own seat).
    let exchange = data.len().is_multiple_of(5).then_some("examplex");
    let body = data;
    match BIDDER.bid(exchange, body, Instant::now()) {
        Outcome::Bid { body: response, bids } => {
            assert!(bids > 0);
            let response: serde_json::Value = serde_json::from_slice(&response).expect("bid responses are JSON");
            let mut repaired = String::new();
            let request = decode::decode(body, &mut repaired)
                .expect("a bid answers a valid request")
                .request;
            assert_eq!(response["id"].as_str(), request.id.as_deref());
        }
        Outcome::NoBidExplained { body: response, .. } => {
            let response: serde_json::Value = serde_json::from_slice(&response).expect("no-bid answers are JSON");
            assert!(response["nbr"].is_u64() && response.get("seatbid").is_none());
        }
        Outcome::NoBid(_) | Outcome::Invalid(_) | Outcome::UnknownExchange => {}
    }
}

static PRICE_KEYS: LazyLock<crate::encrypted_price::PriceKeys> =
    LazyLock::new(|| crate::encrypted_price::PriceKeys::new(b"fuzzing encryption key", b"fuzzing integrity key"));

static SIGNER: LazyLock<Signer> = LazyLock::new(|| Signer::new(b"fuzzing key", Some(b"previous fuzzing key")));

/// Tracking URLs: verification of arbitrary queries, payload parsing,
/// clearing prices and click ids never panic; anything signed verifies and
/// parses back to itself.
pub fn tracking_url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    let _ = SIGNER.verify(path, query);
    let _ = SIGNER.verify_click_id(text);
    if let Ok(token) = BidToken::parse(text) {
        let _ = clearing_price(Some(query), &token);
        let _ = crate::tracking::notice::min_to_win(Some(query));
        let _ = PRICE_KEYS.decrypt(query);
        // Whatever parses survives a sign → verify round trip.
        let payload = token.payload();
        for event in [Event::Win, Event::Bill, Event::Impression, Event::Click, Event::Loss] {
            let url = SIGNER.url("http://h", event, &payload);
            let (path, query) = url
                .split_once("/t/")
                .expect("a tracking path")
                .1
                .split_once('?')
                .expect("a query");
            let verified = SIGNER.verify(path, query).expect("our own signature verifies");
            // `u` is unmasked on verification (an involution: masking again).
            let unmasked = BidToken {
                user: SIGNER.mask_user(token.user, &token.bid_id),
                ..token.clone()
            };
            assert_eq!(verified.token, unmasked);
        }
    }
    let click = crate::signing::Click {
        campaign: text.to_string(),
        creative: path.to_string(),
        bid: query.to_string(),
        exchange: query.to_string(),
        place: crate::signing::Place {
            domain: path.to_string(),
            country: text.to_string(),
            device: data.first().copied().unwrap_or(0),
        },
        arm: data.len().is_multiple_of(2).then(|| text.to_string()),
    };
    let id = SIGNER.click_id(&click);
    assert_eq!(SIGNER.verify_click_id(&id), Some(click));
    let _ = Micros::parse_decimal(text);
}

/// Config parsing and validation: a campaign file of arbitrary text next
/// to the bundled settings is either accepted or rejected with problems.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    static SETTINGS: LazyLock<String> =
        LazyLock::new(|| std::fs::read_to_string(bundled_config().join("bullseye.toml")).expect("bundled settings"));
    match crate::config::from_texts(&bundled_config(), &SETTINGS, &[("fuzz.toml".into(), text.to_string())]) {
        Ok(config) => {
            // A valid config builds a selection index.
            let registry = crate::live::LiveStates::default();
            let _ = crate::live::World::build(config, &registry);
        }
        Err(errors) => assert!(!errors.0.is_empty()),
    }
}

/// Snapshot loading: arbitrary bytes are rejected or give a snapshot whose
/// every lookup, path and lineage stays in bounds.
pub fn snapshot(data: &[u8]) {
    let Ok(snapshot) = Snapshot::from_vec(data.to_vec()) else {
        return;
    };
    for index in 0..snapshot.segment_count() as u32 {
        let _ = snapshot.segment_path(index);
        assert!(snapshot.lineage(index).len() <= 4);
    }
    for chunk in data.chunks_exact(8).take(64) {
        let key = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        if let Some(segments) = snapshot.lookup(key) {
            for index in segments.indexes() {
                assert!((index as usize) < snapshot.segment_count());
            }
        }
    }
}

/// Ledger recovery: the valid prefix is within the file, its records
/// re-encode to exactly that prefix, and recovery is idempotent.
pub fn ledger_recovery(data: &[u8]) {
    let (records, valid) = record::decode_all(data);
    assert!(valid <= data.len());
    let (again, valid_again) = record::decode_all(&data[..valid]);
    assert_eq!(valid_again, valid);
    assert_eq!(again.len(), records.len());
    let _ = record::corruption_after(data, valid);
}
