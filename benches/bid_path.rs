//! The bid path in process, without HTTP: decode per corpus request, each
//! later stage on its own (enrich, select with pricing inside, price,
//! encode), and the whole pipeline (decode → enrich → select → price →
//! encode) on the bundled campaigns with budgets no run spends
//! (`loadtest/config`). Run with `cargo bench --bench bid_path`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bullseye::bidder::{Bidder, Outcome, decode, encode, enrich, price, select};
use bullseye::clock::SystemClock;
use bullseye::money::Micros;
use bullseye::openrtb::AuctionType;
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
            b.iter(|| decode::decode(std::hint::black_box(&body), &mut String::new()).is_ok())
        });
    }
    group.finish();
}

fn pipeline_bench(c: &mut Criterion) {
    // The bundled campaigns with budgets a benchmark cannot spend: every
    // bid reserves budget, and the bundled budgets would turn the loop into
    // no-bids within a second.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("loadtest/config");
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

/// The stages after decode, one by one, on the requests above.
fn stages_bench(c: &mut Criterion) {
    // The bundled campaigns with budgets a benchmark cannot spend: every
    // bid reserves budget, and the bundled budgets would turn the loop into
    // no-bids within a second.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("loadtest/config");
    let bidder = Bidder::from_config_dir(&dir, Arc::new(SystemClock)).expect("bundled config loads");
    let world = bidder.world.load();
    let snapshot = bidder.audience.load();
    let audience = || enrich::Audience {
        snapshot: &snapshot,
        overlay: &bidder.audience.overlay,
        matches: &bidder.audience.matches,
    };
    let now = bidder.clock.now();
    let mut group = c.benchmark_group("stages");
    for name in REQUESTS {
        let body = corpus(name);
        let mut repaired = String::new();
        let request = decode::decode(&body, &mut repaired).expect("decodes").request;
        group.bench_function(format!("enrich/{name}"), |b| {
            b.iter(|| {
                enrich::enrich(
                    std::hint::black_box(&request),
                    &world,
                    world.settings.default_exchange_id(),
                    audience(),
                    now,
                )
                .is_ok()
            })
        });
        let ctx =
            enrich::enrich(&request, &world, world.settings.default_exchange_id(), audience(), now).expect("enriches");
        let mut scratch = select::Scratch::default();
        group.bench_function(format!("select+price/{name}"), |b| {
            b.iter(|| {
                request
                    .imp
                    .iter()
                    .filter(|imp| select::select(&ctx, &world, imp, &bidder.frequency, &mut scratch).is_ok())
                    .count()
            })
        });
        let choices: Vec<_> = request
            .imp
            .iter()
            .filter_map(|imp| select::select(&ctx, &world, imp, &bidder.frequency, &mut scratch).ok())
            .collect();
        group.bench_function(format!("encode/{name}"), |b| {
            let url = "http://127.0.0.1:8080";
            b.iter(|| encode::encode(&ctx, &world, std::hint::black_box(&choices), url, None).len())
        });
    }
    group.bench_function("price", |b| {
        b.iter(|| {
            price::bid_price(
                std::hint::black_box(Micros(2_350_000)),
                Micros(1_100_000),
                AuctionType::FIRST_PRICE,
                850_000,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, decode_bench, stages_bench, pipeline_bench);
criterion_main!(benches);
