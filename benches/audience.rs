//! Audience lookup: user id hash → segment list → hierarchy match for a
//! campaign rule. On a generated 1 M-user snapshot by default, or on the
//! file named by `BULLSEYE_BENCH_SNAPSHOT` (e.g. one built from
//! `loadtest audience --users 10000000`). Members are drawn uniformly (every
//! lookup a cache miss: the worst case) and Zipf-skewed like the load
//! test's traffic. Run with `cargo bench --bench audience`.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

use bullseye::audience::snapshot::SnapshotWriter;
use bullseye::audience::{SegmentKey, SegmentPath, Snapshot, user_key};
use bullseye::campaigns::targeting::SegmentRule;
use criterion::{Criterion, criterion_group, criterion_main};

const USERS: u64 = 1_000_000;

fn generated() -> Snapshot {
    let mut writer = SnapshotWriter::new();
    let mut segments = Vec::new();
    for a in 0..18 {
        for b in 0..7 {
            for c in 0..3 {
                segments.push(writer.segment(&SegmentPath::parse(&format!("i{a:02}/t1-{b}/t2-{c}")).unwrap()));
            }
        }
    }
    let mut state = 7u64;
    for user in 0..USERS {
        let key = user_key(&format!("sample-user-{user:04}"));
        for _ in 0..8 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            writer.add(key, segments[(state >> 33) as usize % segments.len()]);
        }
    }
    Snapshot::from_vec(writer.finish_to_vec()).unwrap()
}

/// Uniformly random members (the worst case for caches: real traffic is
/// Zipf-skewed towards users seen often) and strangers, ids formatted ahead.
fn sample_ids(users: u64, prefix: &str, count: usize, seed: u64) -> Vec<String> {
    let mut state = seed;
    (0..count)
        .map(|_| format!("{prefix}{:04}", xorshift(&mut state) % users))
        .collect()
}

/// The next value of a xorshift64 sequence (no RNG crate needed).
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Members drawn as the load test's traffic draws them: Zipf (s = 1) over
/// user numbers, user 0 the most frequent (inverse of the continuous CDF,
/// rank = (N + 1)^u − 1).
fn zipf_ids(users: u64, prefix: &str, count: usize, seed: u64) -> Vec<String> {
    let mut state = seed;
    let span = (users as f64 + 1.0).ln();
    (0..count)
        .map(|_| {
            let u = (xorshift(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            let rank = ((u * span).exp() - 1.0) as u64;
            format!("{prefix}{:04}", rank.min(users - 1))
        })
        .collect()
}

/// Per-lookup latency percentiles, printed next to criterion's figures
/// (criterion reports central values of batches, not tails). Each lookup is
/// timed with `Instant`; the timer's own cost, measured the same way, is
/// reported alongside.
fn percentiles(label: &str, mut run: impl FnMut(usize) -> bool, count: usize) {
    let mut nanos = Vec::with_capacity(count);
    let mut overhead = Vec::with_capacity(count);
    let mut found = 0;
    for i in 0..count {
        let start = std::time::Instant::now();
        found += usize::from(std::hint::black_box(run(i)));
        nanos.push(start.elapsed().as_nanos() as u64);
        let start = std::time::Instant::now();
        overhead.push(std::hint::black_box(start.elapsed()).as_nanos() as u64);
    }
    nanos.sort_unstable();
    overhead.sort_unstable();
    let at = |v: &[u64], q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    println!(
        "{label}: {count} lookups, p50 {} ns, p90 {} ns, p99 {} ns, p99.9 {} ns (timer alone: p50 {} ns); {found} matched",
        at(&nanos, 0.5),
        at(&nanos, 0.9),
        at(&nanos, 0.99),
        at(&nanos, 0.999),
        at(&overhead, 0.5),
    );
}

fn lookup(c: &mut Criterion) {
    let snapshot = match std::env::var("BULLSEYE_BENCH_SNAPSHOT") {
        Ok(path) if std::env::var("BULLSEYE_BENCH_LOAD").as_deref() == Ok("memory") => {
            Snapshot::load(std::path::Path::new(&path)).unwrap()
        }
        Ok(path) => Snapshot::open(std::path::Path::new(&path)).unwrap(),
        Err(_) => generated(),
    };
    let users = snapshot.user_count() as u64;
    let rule = SegmentRule {
        any: vec![
            SegmentPath::parse("i03").unwrap().key(),
            SegmentPath::parse("i07/t1-007").unwrap().key(),
        ],
        all: vec![],
        none: vec![SegmentPath::parse("rfm/bronze").unwrap().key()],
    };
    let members = sample_ids(users, "sample-user-", 1 << 20, 0x9E37_79B9_7F4A_7C15);
    let traffic = zipf_ids(users, "sample-user-", 1 << 20, 0x6A09_E667_F3BC_C909);
    let strangers = sample_ids(u64::MAX, "stranger-", 1 << 20, 0x2545_F491_4F6C_DD1D);
    let mut keys: Vec<SegmentKey> = Vec::with_capacity(64);
    let mut lookup_and_match = |id: &str| {
        keys.clear();
        if let Some(segments) = snapshot.lookup(user_key(id)) {
            keys.extend(segments.keys_with_ancestors());
        }
        rule.matches(&keys)
    };
    let mut next = 0;
    c.bench_function(&format!("audience/lookup+match ({users} users)"), |b| {
        b.iter(|| {
            next = (next + 1) % members.len();
            lookup_and_match(&members[next])
        })
    });
    let mut next = 0;
    c.bench_function(&format!("audience/lookup+match, Zipf ({users} users)"), |b| {
        b.iter(|| {
            next = (next + 1) % traffic.len();
            lookup_and_match(&traffic[next])
        })
    });
    let mut next = 0;
    c.bench_function(&format!("audience/miss ({users} users)"), |b| {
        b.iter(|| {
            next = (next + 1) % strangers.len();
            snapshot.lookup(user_key(&strangers[next])).is_some()
        })
    });
    percentiles(
        &format!("audience/lookup+match ({users} users)"),
        |i| lookup_and_match(&members[i]),
        members.len(),
    );
    percentiles(
        &format!("audience/lookup+match, Zipf ({users} users)"),
        |i| lookup_and_match(&traffic[i]),
        traffic.len(),
    );
    percentiles(
        &format!("audience/miss ({users} users)"),
        |i| snapshot.lookup(user_key(&strangers[i])).is_some(),
        strangers.len(),
    );
}

criterion_group!(benches, lookup);
criterion_main!(benches);
