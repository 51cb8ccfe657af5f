//! Bulk segment events into the real-time overlay, in process: parse and
//! apply 100,000 JSON lines (distinct users, one segment each) into an
//! empty overlay, as `POST /admin/api/audience/events` does before the
//! journal (PERFORMANCE.md, "Audience events"). Run with
//! `cargo bench --bench audience_events`.

use bullseye::audience::events::ingest;
use bullseye::audience::overlay::Overlay;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const LINES: usize = 100_000;

fn body() -> String {
    (0..LINES)
        .map(|i| {
            format!(
                "{{\"user_id\":\"user-{i}\",\"segment\":\"event/visit/p{}\",\"op\":\"add\",\"ttl_seconds\":3600}}\n",
                i % 50
            )
        })
        .collect()
}

fn events(c: &mut Criterion) {
    let body = body();
    let mut group = c.benchmark_group("audience_events");
    group.throughput(Throughput::Elements(LINES as u64));
    group.sample_size(10);
    group.bench_function("ingest_100k_new_users", |b| {
        b.iter_with_large_drop(|| {
            let overlay = Overlay::new(1_000_000);
            let done = ingest(&overlay, body.as_bytes(), 1_000);
            assert_eq!(done.applied.len(), LINES);
            overlay
        });
    });
    let overlay = Overlay::new(1_000_000);
    ingest(&overlay, body.as_bytes(), 1_000);
    group.bench_function("ingest_100k_known_users", |b| {
        b.iter(|| ingest(&overlay, body.as_bytes(), 1_000).applied.len());
    });
    group.finish();
}

criterion_group!(benches, events);
criterion_main!(benches);
