//! Audience lookup: user id hash → segment list → hierarchy match for a
//! campaign rule. On a generated 1 M-user snapshot by default, or on the
//! file named by `BULLSEYE_BENCH_SNAPSHOT` (e.g. one built from
//! `loadtest audience --users 10000000`). Run with `cargo bench --bench audience`.

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

fn lookup(c: &mut Criterion) {
    let snapshot = match std::env::var("BULLSEYE_BENCH_SNAPSHOT") {
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
    let ids: Vec<String> = (0..4096u64)
        .map(|i| format!("sample-user-{:04}", (i * 7919) % users))
        .collect();
    let mut next = 0;
    let mut keys: Vec<SegmentKey> = Vec::with_capacity(64);
    c.bench_function(&format!("audience/lookup+match ({users} users)"), |b| {
        b.iter(|| {
            next = (next + 1) % ids.len();
            keys.clear();
            if let Some(segments) = snapshot.lookup(user_key(&ids[next])) {
                keys.extend(segments.keys_with_ancestors());
            }
            rule.matches(&keys)
        })
    });
    c.bench_function(&format!("audience/miss ({users} users)"), |b| {
        b.iter(|| {
            snapshot
                .lookup(user_key(std::hint::black_box("nobody-at-all")))
                .is_some()
        })
    });
}

criterion_group!(benches, lookup);
criterion_main!(benches);
