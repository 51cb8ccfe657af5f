//! The bid path in process, without HTTP: decode per corpus request, each
//! later stage on its own (enrich, select with pricing inside, price,
//! encode), and the whole pipeline (decode → enrich → select → price →
//! encode) on the bundled campaigns with budgets no run spends
//! (`loadtest/config`). Run with `cargo bench --bench bid_path`.
//!
//! With `BULLSEYE_BENCH_SNAPSHOTS="1000000=a1m.snapshot,100000000=a100m.snapshot"`
//! (user count = snapshot file, as `loadtest audience` and `bullseye
//! segments build` make them), the pipeline also runs on the simple banner
//! with each audience swapped in, its `buyeruid` drawn uniformly over the
//! audience (every lookup a likely cache miss) and Zipf-skewed (s = 1, as
//! the load test draws): the cost of a large audience on the bid path.

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

/// The simple banner with `user.buyeruid` set to each id.
fn bodies_for(ids: impl Iterator<Item = u64>) -> Vec<Vec<u8>> {
    let template: serde_json::Value = serde_json::from_slice(&corpus("iab/simple-banner.json")).expect("corpus JSON");
    ids.map(|n| {
        let mut request = template.clone();
        request["user"] = serde_json::json!({ "buyeruid": format!("sample-user-{n:04}") });
        serde_json::to_vec(&request).expect("serialises")
    })
    .collect()
}

/// The next value of a xorshift64 sequence.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A Zipf (s = 1) rank in `0..users` from a uniform draw, by inverting the
/// continuous approximation of the harmonic sum (no 100 M-entry table).
fn zipf_rank(users: u64, state: &mut u64) -> u64 {
    let uniform = (xorshift(state) >> 11) as f64 / (1u64 << 53) as f64;
    (((users as f64 + 1.0).ln() * uniform).exp() as u64)
        .saturating_sub(1)
        .min(users - 1)
}

/// Request bodies per audience and draw, cycled: enough distinct users
/// (about 34 MB of snapshot lines at 100 M) that a cycle does not fit in
/// the caches, as real traffic does not.
const DRAWS: usize = 1 << 18;

fn audience_bench(c: &mut Criterion) {
    let Ok(spec) = std::env::var("BULLSEYE_BENCH_SNAPSHOTS") else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("loadtest/config");
    let bidder = Bidder::from_config_dir(&dir, Arc::new(SystemClock)).expect("bundled config loads");
    let mut group = c.benchmark_group("pipeline_users");
    for entry in spec.split(',') {
        let (users, path) = entry.split_once('=').expect("USERS=PATH");
        let users: u64 = users.parse().expect("a user count");
        bidder
            .audience
            .reload(Some(std::path::Path::new(path)), 0)
            .expect("the snapshot loads");
        let mut state = 0x9E37_79B9_7F4A_7C15;
        let uniform = bodies_for((0..DRAWS).map(|_| xorshift(&mut state) % users));
        let zipf = bodies_for((0..DRAWS).map(|_| zipf_rank(users, &mut state)));
        for (draw, bodies) in [("uniform", &uniform), ("zipf", &zipf)] {
            let mut next = 0;
            group.bench_function(format!("{users}/{draw}"), |b| {
                b.iter(|| {
                    next = (next + 1) % bodies.len();
                    bidder.bid(None, std::hint::black_box(&bodies[next]), Instant::now())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decode_bench, stages_bench, pipeline_bench, audience_bench);
criterion_main!(benches);
