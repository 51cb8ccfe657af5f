//! Prediction cost on the bid path: preparing one impression (its features
//! hashed and their weights summed) and predicting clicks and conversions
//! for 1 and 8 candidates, on a model trained on 200,000 examples.
//! The budget (issue 15): at most 1 µs per request for 8 candidates.
//! Run with `cargo bench --bench outcome`.

use std::hint::black_box;

use bullseye::audience::SegmentKey;
use bullseye::outcome::model::{Label, Trainer, all_slots, prepare};
use bullseye::outcome::{Candidate, Prepared, Subject};
use criterion::{Criterion, criterion_group, criterion_main};

fn subject(segments: &[SegmentKey]) -> Subject<'_> {
    Subject {
        user_key: Some(42),
        segments,
        exchange: "default",
        domain: "news.example",
        country: "USA",
        device: 2,
        local_hour: 20,
        at: 0,
    }
}

fn bench(c: &mut Criterion) {
    // Ten segments with ancestors, as a recognised user has.
    let segments: Vec<SegmentKey> = (1..=10).map(|k| SegmentKey(k * 7919)).collect();
    let mut trainer = Trainer::default();
    let mut prepared = Prepared::default();
    for i in 0..200_000u64 {
        let segments: Vec<SegmentKey> = (0..10).map(|k| SegmentKey((i * 31 + k) % 500)).collect();
        let domain = format!("site{}.example", i % 300);
        let subject = Subject {
            domain: &domain,
            local_hour: (i % 24) as u8,
            ..subject(&segments)
        };
        prepare(&subject, &mut prepared);
        let campaign = i % 16;
        let slots = all_slots(&prepared, campaign, "creative");
        trainer.train(&slots, campaign, Label::Impression);
        if i % 97 == 0 {
            trainer.train(&slots, campaign, Label::Click);
        }
    }
    let model = trainer.publish();
    let subject = subject(&segments);
    let candidates: Vec<Candidate> = (0..8u64)
        .map(|k| Candidate {
            campaign: "c",
            campaign_key: k,
            creative: "creative",
        })
        .collect();
    let mut group = c.benchmark_group("predict");
    group.bench_function("prepare", |b| {
        b.iter(|| {
            let mut prepared = Prepared::default();
            model.prepare(black_box(&subject), &mut prepared);
            black_box(prepared.partial)
        })
    });
    for n in [1, 8] {
        group.bench_function(format!("prepare + {n} candidates"), |b| {
            b.iter(|| {
                let mut prepared = Prepared::default();
                model.prepare(black_box(&subject), &mut prepared);
                let mut sum = 0.0f32;
                for candidate in &candidates[..n] {
                    sum += model.predict(&prepared, black_box(candidate)).map_or(0.0, |p| p.click);
                }
                black_box(sum)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
