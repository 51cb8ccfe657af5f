//! Selection cost against the number of campaigns: the whole pipeline on
//! one banner request with 1, 100, 1,000 and 10,000 generated campaigns
//! (open, country-targeted and segment-targeted, ten banner sizes, random
//! max bids). The index should keep 10,000 within 2× of 100.
//! Run with `cargo bench --bench selection`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bullseye::bidder::{Bidder, Outcome};
use bullseye::clock::SystemClock;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const SIZES: [(u32, u32); 10] = [
    (300, 250),
    (320, 50),
    (728, 90),
    (300, 600),
    (160, 600),
    (300, 50),
    (970, 250),
    (336, 280),
    (468, 60),
    (320, 100),
];
const COUNTRIES: [&str; 6] = ["USA", "GBR", "DEU", "FRA", "JPN", "BRA"];

/// A small deterministic generator (no dependency on a seeded RNG crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// `budget`: each campaign's daily budget (a decimal string).
fn write_config(dir: &Path, campaigns: usize, budget: &str) {
    let settings =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bidder-config/bullseye.toml"))
            .unwrap()
            .replace(
                "snapshot = \"audience.snapshot\"",
                &format!(
                    "snapshot = \"{}\"",
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("bidder-config/audience.snapshot")
                        .display()
                ),
            );
    let advertisers: String = (0..campaigns)
        .map(|i| format!("\n[[advertiser]]\nid = \"a{i}\"\n"))
        .collect();
    std::fs::write(dir.join("bullseye.toml"), settings + &advertisers).unwrap();
    std::fs::create_dir_all(dir.join("campaigns")).unwrap();
    let mut rng = Lcg(42);
    let mut toml = String::new();
    for i in 0..campaigns {
        let max_bid = 0.5 + rng.next(950) as f64 / 100.0;
        let _ = write!(
            toml,
            "[[campaign]]\nid = \"c{i}\"\nadvertiser = \"a{i}\"\nadomain = [\"a{i}.example\"]\npricing = \"cpm\"\nmax_bid = \"{max_bid:.2}\"\ndaily_budget = \"{budget}\"\npacing = \"asap\"\n"
        );
        match i % 3 {
            1 => {
                let _ = write!(
                    toml,
                    "  [campaign.targeting]\n  countries = [\"{}\"]\n",
                    COUNTRIES[rng.next(6) as usize]
                );
            }
            2 => {
                let _ = write!(
                    toml,
                    "  [campaign.targeting.segments]\n  any = [\"interest/topic-{}\"]\n",
                    rng.next(700)
                );
            }
            _ => {}
        }
        let (w, h) = SIZES[rng.next(SIZES.len() as u64) as usize];
        let _ = write!(
            toml,
            "  [[campaign.creative]]\n  id = \"k{i}\"\n  format = \"banner\"\n  w = {w}\n  h = {h}\n  image_url = \"https://cdn.example/{i}.png\"\n  landing_url = \"https://a{i}.example/\"\n\n"
        );
    }
    std::fs::write(dir.join("campaigns/generated.toml"), toml).unwrap();
}

fn selection(c: &mut Criterion) {
    let body = br#"{"id":"r1","at":2,"tmax":200,"imp":[{"id":"1","bidfloor":0.5,"banner":{"format":[{"w":300,"h":250},{"w":336,"h":280}]}}],
        "site":{"domain":"news.example","cat":["IAB12"]},"device":{"ua":"Mozilla/5.0 Firefox/120.0","ip":"203.0.113.9","geo":{"country":"FRA"}},
        "user":{"buyeruid":"sample-user-0001"}}"#;
    let mut group = c.benchmark_group("selection");
    for campaigns in [1usize, 100, 1_000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), campaigns, "1000000");
        let bidder = Bidder::from_config_dir(dir.path(), Arc::new(SystemClock)).unwrap();
        let outcome = bidder.bid(None, body, Instant::now());
        assert!(
            matches!(outcome, Outcome::Bid { .. } | Outcome::NoBid(_)),
            "{outcome:?}"
        );
        group.bench_with_input(BenchmarkId::from_parameter(campaigns), &campaigns, |b, _| {
            b.iter(|| bidder.bid(None, std::hint::black_box(body), Instant::now()))
        });
    }
    group.finish();
}

/// The worst case: every campaign's budget holds one impression, so within
/// the warm-up each fitting campaign has bid once and is spent (its
/// reservation lives for the notice window). The walk then tries every
/// candidate the index offers and filters each late (on budget), and the
/// request gets no bid: the cost grows with the candidates, not with the
/// campaigns that exist.
fn selection_spent(c: &mut Criterion) {
    let body = br#"{"id":"r1","at":2,"tmax":200,"imp":[{"id":"1","bidfloor":0.5,"banner":{"format":[{"w":300,"h":250},{"w":336,"h":280}]}}],
        "site":{"domain":"news.example","cat":["IAB12"]},"device":{"ua":"Mozilla/5.0 Firefox/120.0","ip":"203.0.113.9","geo":{"country":"FRA"}},
        "user":{"buyeruid":"sample-user-0001"}}"#;
    let mut group = c.benchmark_group("selection-spent");
    for campaigns in [100usize, 1_000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), campaigns, "0.000001");
        let bidder = Bidder::from_config_dir(dir.path(), Arc::new(SystemClock)).unwrap();
        // Spend every fitting campaign once.
        while matches!(bidder.bid(None, body, Instant::now()), Outcome::Bid { .. }) {}
        group.bench_with_input(BenchmarkId::from_parameter(campaigns), &campaigns, |b, _| {
            b.iter(|| bidder.bid(None, std::hint::black_box(body), Instant::now()))
        });
    }
    group.finish();
}

criterion_group!(benches, selection, selection_spent);
criterion_main!(benches);
