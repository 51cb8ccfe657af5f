//! Replays the fuzz corpus on stable: every seed, every input the fuzzer
//! kept (`fuzz/corpus`, minimised and committed) and every crash it ever
//! found (`fuzz/regressions`) runs through the same target bodies as
//! `cargo fuzz`, so a regression fails `cargo test` without nightly.
//! `fuzz/regressions/` must exist: a crash the fuzzer finds is minimised
//! (`cargo fuzz tmin`) and moved there, named after what broke.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut dirs: Vec<_> = ["seeds", "corpus", "regressions"]
        .iter()
        .map(|kind| root.join(kind).join(target))
        .collect();
    if matches!(target, "decode_request" | "bid_path") {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
        dirs.push(shared.join("bad"));
        dirs.push(shared.join("requests/iab"));
        dirs.push(shared.join("requests/prebid"));
    }
    assert!(
        root.join("regressions").is_dir(),
        "fuzz/regressions is missing: past crashes would silently not be replayed"
    );
    let mut count = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                continue;
            }
            // A running fuzzer renames and removes corpus files.
            let Ok(data) = std::fs::read(&path) else {
                continue;
            };
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target} fails on {}", path.display());
            count += 1;
        }
    }
    assert!(count > 0, "no inputs for {target}");
}

#[test]
fn decode_request() {
    replay("decode_request", bullseye::fuzzing::decode_request);
}

#[test]
fn bid_path() {
    replay("bid_path", bullseye::fuzzing::bid_path);
}

#[test]
fn tracking_url() {
    replay("tracking_url", bullseye::fuzzing::tracking_url);
}

#[test]
fn config() {
    replay("config", bullseye::fuzzing::config);
}

#[test]
fn snapshot() {
    replay("snapshot", bullseye::fuzzing::snapshot);
}

#[test]
fn ledger_recovery() {
    replay("ledger_recovery", bullseye::fuzzing::ledger_recovery);
}

#[test]
fn past_crashes_are_replayed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/tracking_url");
    let found = std::fs::read_dir(&root).map_or(0, |entries| entries.count());
    assert!(found >= 3, "{} holds {found} inputs", root.display());
}
