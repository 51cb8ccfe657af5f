//! The bid path in process, without HTTP: decode per corpus request, and the
//! whole pipeline (decode → enrich → select → price → encode) on the
//! bundled config. Run with `cargo bench --bench bid_path`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bullseye::bidder::{Bidder, Outcome, decode};
use bullseye::clock::SystemClock;
use criterion::{Criterion, criterion_group, criterion_main};

fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/requests")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const REQUESTS: &[&str] = &[
    "iab/simple-banner.json",
    "iab/video.json",
    "iab/mobile-app.json",
    "iab/pmp-direct-deal.json",
    "prebid/017-amx-display-multiple.json",
    "prebid/030-bwx-native.json",
];

fn decode_bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for name in REQUESTS {
        let body = corpus(name);
        group.bench_function(*name, |b| {
            b.iter(|| decode::decode(std::hint::black_box(&body)).is_ok())
        });
    }
    group.finish();
}

fn pipeline_bench(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bidder-config");
    let bidder = Bidder::from_config_dir(&dir, Arc::new(SystemClock)).expect("bundled config loads");
    let mut group = c.benchmark_group("pipeline");
    for name in REQUESTS {
        let body = corpus(name);
        assert!(
            matches!(bidder.bid(None, &body, Instant::now()), Outcome::Bid { .. }),
            "{name} should bid"
        );
        group.bench_function(*name, |b| {
            b.iter(|| bidder.bid(None, std::hint::black_box(&body), Instant::now()))
        });
    }
    group.finish();
}

criterion_group!(benches, decode_bench, pipeline_bench);
criterion_main!(benches);
