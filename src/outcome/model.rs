//! The learned click and conversion model: logistic regression on hashed
//! features of the impression and the candidate, trained online by
//! FTRL-proximal, published as an immutable [`Model`].
//!
//! **Features.** Of the impression, hashed once into [`Prepared`]: the
//! exchange, the domain (lowercased and cut as `signing::Place` writes it),
//! the country, the device type, the local hour, each of the user's
//! segments with their ancestors (so hierarchy and `rfm/*` tiers are in; at
//! most [`MAX_SEGMENTS`]), and a marker for "no user" (no id, or no
//! consent: then no segment either, so personal features are never learned
//! from non-consented events). Of the candidate, at prediction: the
//! campaign and the creative, and the campaign crossed with the domain,
//! the hour, the device, the country and each segment — one shared model
//! whose campaign crosses let each campaign learn its own audience.
//!
//! **Model.** One weight pair (click, conversion) per hashed feature, in
//! one table of `2^BITS` pairs (8 MB published, 16 MB of training state,
//! both allocated at the first example: a node that never learns holds
//! neither), so a lookup is one cache line for both models. P = sigmoid(Σ weights), clamped to [`CLICK_RANGE`] and
//! [`CONVERSION_RANGE`]. Cold start: a campaign with fewer than
//! [`MIN_CAMPAIGN_IMPRESSIONS`] trained impressions gets no prediction
//! (`None`): the bid path uses its smoothed rate.
//!
//! **Training** ([`Trainer`], FTRL-proximal per coordinate, McMahan et al.
//! 2013, with `alpha`, `beta`, `l1`, `l2` below): each billed impression is
//! a negative example of both models; each billable click a positive click
//! example with the same features, each credited conversion a positive
//! conversion example. Positives arrive later and are trained when they
//! come, so an impression that converts counts once as a negative and once
//! as a positive: the model learns p/(1+p) rather than p, a bias under 1 %
//! at the rates of display advertising.

use std::collections::HashMap;

use super::{Candidate, Prediction, Prepared, Subject};
use crate::audience::SegmentKey;

/// log2 of the number of weight pairs.
pub const BITS: u32 = 20;
const MASK: u32 = (1 << BITS) - 1;

/// Most segments of one impression used as features.
pub const MAX_SEGMENTS: usize = 24;

/// Trained impressions a campaign needs before it is predicted.
pub const MIN_CAMPAIGN_IMPRESSIONS: u64 = 2_000;

/// Predicted P(click) is kept in this range.
pub const CLICK_RANGE: (f32, f32) = (1e-6, 0.2);
/// Predicted P(conversion | impression) is kept in this range.
pub const CONVERSION_RANGE: (f32, f32) = (1e-8, 0.1);

/// FTRL-proximal learning rate.
pub const ALPHA: f32 = 0.05;
/// FTRL-proximal smoothing of the per-coordinate learning rate.
pub const BETA: f32 = 1.0;
/// L1 regularisation (sparsity).
pub const L1: f32 = 0.5;
/// L2 regularisation.
pub const L2: f32 = 1.0;

/// Kinds of feature, mixed into the hash so they do not collide by design.
#[derive(Clone, Copy)]
#[repr(u64)]
enum Kind {
    Bias = 1,
    Exchange,
    Domain,
    Country,
    Device,
    Hour,
    Segment,
    NoUser,
    Campaign,
    Creative,
    CampaignCross,
}

fn hash(kind: Kind, value: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(&value.to_le_bytes(), kind as u64)
}

fn hash_text(kind: Kind, text: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(text, kind as u64)
}

/// The domain as `signing::Place` writes it: lowercase, cut at
/// [`crate::signing::MAX_DOMAIN_BYTES`].
fn domain_hash(domain: &str) -> u64 {
    let mut buffer = [0u8; crate::signing::MAX_DOMAIN_BYTES];
    let bytes = domain.trim().as_bytes();
    let n = bytes.len().min(buffer.len());
    for (b, out) in bytes[..n].iter().zip(buffer.iter_mut()) {
        *out = b.to_ascii_lowercase();
    }
    hash_text(Kind::Domain, &buffer[..n])
}

fn country_hash(country: &str) -> u64 {
    let mut buffer = [0u8; 3];
    let bytes = country.trim().as_bytes();
    let n = bytes.len().min(3);
    for (b, out) in bytes[..n].iter().zip(buffer.iter_mut()) {
        *out = b.to_ascii_uppercase();
    }
    hash_text(Kind::Country, &buffer[..n])
}

/// The feature hashes of an impression, in `prepared.features`: full
/// 64-bit hashes cut to 32 bits (the slot is `hash & MASK`; the campaign
/// crosses rehash them). The first four (domain, hour, device, country) are crossed with the
/// campaign, as are the segments after them.
pub fn prepare(subject: &Subject, prepared: &mut Prepared) {
    let mut n = 0;
    let mut push = |h: u64| {
        if n < Prepared::CAPACITY {
            prepared.features[n] = h as u32;
            n += 1;
        }
    };
    push(domain_hash(subject.domain));
    push(hash(Kind::Hour, u64::from(subject.local_hour)));
    push(hash(Kind::Device, u64::from(subject.device)));
    push(country_hash(subject.country));
    push(hash_text(Kind::Exchange, subject.exchange.as_bytes()));
    push(hash(Kind::Bias, 0));
    if subject.user_key.is_none() {
        push(hash(Kind::NoUser, 0));
    }
    for SegmentKey(key) in subject.segments.iter().take(MAX_SEGMENTS) {
        push(hash(Kind::Segment, *key));
    }
    prepared.len = n;
    prepared.partial = [f32::NAN; 2];
}

/// How many of the first impression features are crossed with the campaign
/// (domain, hour, device, country); the segments are crossed too.
const CROSSED: usize = 4;
/// Position after the context features and the bias: the "no user"
/// marker, when present, then the segments, crossed with the campaign (at
/// most [`MAX_CROSSED_SEGMENTS`] of them).
const CONTEXT: usize = 6;
/// Most segment features crossed with a campaign.
pub const MAX_CROSSED_SEGMENTS: usize = 8;

/// Most slots of one candidate ([`candidate_slots`]).
pub const CANDIDATE_SLOTS: usize = 2 + CROSSED + 1 + MAX_CROSSED_SEGMENTS;

/// The slots of an impression's own features.
pub fn impression_slots(prepared: &Prepared) -> impl Iterator<Item = u32> + '_ {
    prepared.features[..prepared.len].iter().map(|f| f & MASK)
}

/// The slots of a candidate on a prepared impression (its campaign and
/// creative, and the campaign crossed with the impression), written into
/// `out`; returns how many.
pub fn candidate_slots(
    prepared: &Prepared,
    campaign_key: u64,
    creative: &str,
    out: &mut [u32; CANDIDATE_SLOTS],
) -> usize {
    let features = &prepared.features[..prepared.len];
    let campaign = hash(Kind::Campaign, campaign_key);
    out[0] = campaign as u32 & MASK;
    out[1] = hash_text(Kind::Creative, creative.as_bytes()) as u32 & MASK;
    let mut n = 2;
    let crossed = features
        .iter()
        .take(CROSSED)
        .chain(features.iter().skip(CONTEXT).take(1 + MAX_CROSSED_SEGMENTS));
    for f in crossed {
        let seed = campaign ^ Kind::CampaignCross as u64;
        out[n] = xxhash_rust::xxh3::xxh3_64_with_seed(&u64::from(*f).to_le_bytes(), seed) as u32 & MASK;
        n += 1;
    }
    n
}

/// Every slot of a candidate on a prepared impression (training).
pub fn all_slots(prepared: &Prepared, campaign_key: u64, creative: &str) -> Vec<u32> {
    let mut out = [0u32; CANDIDATE_SLOTS];
    let n = candidate_slots(prepared, campaign_key, creative, &mut out);
    impression_slots(prepared).chain(out[..n].iter().copied()).collect()
}

/// A published model: the weights of both models and each campaign's
/// trained impressions. Immutable: the trainer publishes a new one.
pub struct Model {
    weights: Box<[[f32; 2]]>,
    impressions: HashMap<u64, u64, foldhash::fast::RandomState>,
    /// Examples trained into it.
    pub examples: u64,
}

impl Default for Model {
    /// The model of nothing learned: no weights at all (a node that never
    /// trains never holds the table), every campaign cold.
    fn default() -> Self {
        Model {
            weights: Box::default(),
            impressions: HashMap::default(),
            examples: 0,
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-30.0, 30.0)).exp())
}

impl Model {
    /// The raw probabilities for `slots` (no cold-start rule).
    pub fn probabilities(&self, slots: &[u32]) -> (f32, f32) {
        let (mut click, mut conversion) = (0.0f32, 0.0f32);
        for &slot in slots {
            let [c, v] = self.weights.get(slot as usize).copied().unwrap_or_default();
            click += c;
            conversion += v;
        }
        (sigmoid(click), sigmoid(conversion))
    }

    /// Trained impressions of a campaign.
    pub fn campaign_impressions(&self, campaign_key: u64) -> u64 {
        self.impressions.get(&campaign_key).copied().unwrap_or(0)
    }

    /// Works out the impression's features and their weights' sums.
    pub fn prepare(&self, subject: &Subject, prepared: &mut Prepared) {
        prepare(subject, prepared);
        let (mut click, mut conversion) = (0.0f32, 0.0f32);
        for slot in impression_slots(prepared) {
            let [c, v] = self.weights.get(slot as usize).copied().unwrap_or_default();
            click += c;
            conversion += v;
        }
        prepared.partial = [click, conversion];
    }

    /// The prediction for a candidate on an impression prepared by this
    /// model; `None` while the campaign is cold.
    pub fn predict(&self, prepared: &Prepared, candidate: &Candidate) -> Option<Prediction> {
        if self.weights.is_empty() || self.campaign_impressions(candidate.campaign_key) < MIN_CAMPAIGN_IMPRESSIONS {
            return None;
        }
        let mut slots = [0u32; CANDIDATE_SLOTS];
        let n = candidate_slots(prepared, candidate.campaign_key, candidate.creative, &mut slots);
        let [mut click, mut conversion] = prepared.partial;
        for &slot in &slots[..n] {
            let [c, v] = self.weights[slot as usize];
            click += c;
            conversion += v;
        }
        Some(Prediction {
            click: sigmoid(click).clamp(CLICK_RANGE.0, CLICK_RANGE.1),
            conversion: sigmoid(conversion).clamp(CONVERSION_RANGE.0, CONVERSION_RANGE.1),
        })
    }
}

impl super::Predictor for Model {
    fn prepare(&self, subject: &Subject, prepared: &mut Prepared) {
        Model::prepare(self, subject, prepared);
    }

    fn predict(&self, _subject: &Subject, prepared: &Prepared, candidate: &Candidate) -> Option<Prediction> {
        Model::predict(self, prepared, candidate)
    }
}

/// Which model an example trains, and its label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// A billed impression: no click and no conversion (yet).
    Impression,
    /// A billable click.
    Click,
    /// A credited conversion.
    Conversion,
}

/// FTRL-proximal state of both models (see the module header).
#[derive(Default)]
pub struct Trainer {
    /// Per slot: (z, n) of the click model, then of the conversion model;
    /// allocated at the first example.
    state: Vec<[f32; 4]>,
    /// Per slot, the weights the state gives, kept up to date as slots are
    /// trained (publishing copies them).
    weights: Vec<[f32; 2]>,
    impressions: HashMap<u64, u64, foldhash::fast::RandomState>,
    examples: u64,
}

/// The FTRL-proximal weight of a coordinate with state (z, n).
fn weight(z: f32, n: f32) -> f32 {
    if z.abs() <= L1 {
        0.0
    } else {
        -(z - z.signum() * L1) / ((BETA + n.sqrt()) / ALPHA + L2)
    }
}

impl Trainer {
    /// The probabilities the current weights give `slots`.
    fn current(&self, slots: &[u32]) -> (f32, f32) {
        let (mut click, mut conversion) = (0.0f32, 0.0f32);
        for &slot in slots {
            let [c, v] = self.weights[slot as usize];
            click += c;
            conversion += v;
        }
        (sigmoid(click), sigmoid(conversion))
    }

    /// Trains one example over `slots` of a candidate of `campaign_key`.
    pub fn train(&mut self, slots: &[u32], campaign_key: u64, label: Label) {
        if self.state.is_empty() {
            self.state = vec![[0.0; 4]; 1 << BITS];
            self.weights = vec![[0.0; 2]; 1 << BITS];
        }
        let (click, conversion) = self.current(slots);
        // (model, gradient) for each model trained.
        let updates: [(usize, Option<f32>); 2] = match label {
            Label::Impression => {
                *self.impressions.entry(campaign_key).or_default() += 1;
                [(0, Some(click)), (1, Some(conversion))]
            }
            Label::Click => [(0, Some(click - 1.0)), (1, None)],
            Label::Conversion => [(0, None), (1, Some(conversion - 1.0))],
        };
        for (model, gradient) in updates {
            let Some(g) = gradient else { continue };
            for &slot in slots {
                let cell = &mut self.state[slot as usize];
                let (z, n) = (cell[2 * model], cell[2 * model + 1]);
                let sigma = ((n + g * g).sqrt() - n.sqrt()) / ALPHA;
                let (z, n) = (z + g - sigma * self.weights[slot as usize][model], n + g * g);
                cell[2 * model] = z;
                cell[2 * model + 1] = n;
                self.weights[slot as usize][model] = weight(z, n);
            }
        }
        self.examples += 1;
    }

    /// The model as trained so far (a copy of the weights).
    pub fn publish(&self) -> Model {
        if self.state.is_empty() {
            return Model::default();
        }
        Model {
            weights: self.weights.clone().into_boxed_slice(),
            impressions: self.impressions.clone(),
            examples: self.examples,
        }
    }

    /// Examples trained so far.
    pub fn examples(&self) -> u64 {
        self.examples
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::evaluate::{auc, log_loss};
    use rand::{RngExt, SeedableRng};

    /// A market with known propensities: per-campaign base rates, domain,
    /// hour and device effects, and each campaign's affinity for a few of
    /// 40 interest segments (up to ×3).
    struct Market {
        rng: rand::rngs::StdRng,
        base: Vec<f64>,
        domain: Vec<f64>,
        hour: Vec<f64>,
        affinity: Vec<Vec<f64>>,
    }

    struct Shown {
        subject_segments: Vec<SegmentKey>,
        domain: String,
        hour: u8,
        device: u8,
        campaign: u64,
        ctr: f64,
    }

    impl Market {
        fn new(seed: u64) -> Market {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let base = (0..10)
                .map(|_| 0.002 * (rng.random_range(-0.8f64..0.8)).exp())
                .collect();
            let domain = (0..30).map(|_| rng.random_range(0.5..1.5)).collect();
            let hour = (0..24)
                .map(|h| 1.0 + 0.3 * (h as f64 / 24.0 * std::f64::consts::TAU).sin())
                .collect();
            let affinity = (0..10)
                .map(|_| {
                    (0..40)
                        .map(|_| {
                            if rng.random_bool(0.15) {
                                rng.random_range(1.5..3.0)
                            } else {
                                1.0
                            }
                        })
                        .collect()
                })
                .collect();
            Market {
                rng,
                base,
                domain,
                hour,
                affinity,
            }
        }

        fn impression(&mut self) -> Shown {
            let campaign = self.rng.random_range(0..10u64);
            let d = self.rng.random_range(0..30usize);
            let hour = self.rng.random_range(0..24u8);
            let device = self.rng.random_range(1..4u8);
            let segments: Vec<usize> = (0..4).map(|_| self.rng.random_range(0..40usize)).collect();
            let lift = segments
                .iter()
                .map(|s| self.affinity[campaign as usize][*s])
                .fold(1.0f64, f64::max);
            let device_effect = [1.0, 1.3, 0.8][device as usize - 1];
            let ctr = (self.base[campaign as usize] * lift * self.domain[d] * self.hour[hour as usize] * device_effect)
                .min(1.0);
            Shown {
                subject_segments: segments.iter().map(|s| SegmentKey(*s as u64 + 1)).collect(),
                domain: format!("site{d}.example"),
                hour,
                device,
                campaign,
                ctr,
            }
        }
    }

    fn prepared(shown: &Shown) -> Prepared {
        let subject = Subject {
            user_key: Some(7),
            segments: &shown.subject_segments,
            exchange: "x",
            domain: &shown.domain,
            country: "USA",
            device: shown.device,
            local_hour: shown.hour,
            at: 0,
        };
        let mut prepared = Prepared::default();
        prepare(&subject, &mut prepared);
        prepared
    }

    #[test]
    fn the_learned_click_model_ranks_nearly_as_well_as_the_true_propensities() {
        let mut market = Market::new(11);
        let mut trainer = Trainer::default();
        for _ in 0..400_000 {
            let shown = market.impression();
            let slots = all_slots(&prepared(&shown), shown.campaign, "c");
            trainer.train(&slots, shown.campaign, Label::Impression);
            if market.rng.random_bool(shown.ctr) {
                trainer.train(&slots, shown.campaign, Label::Click);
            }
        }
        let model = trainer.publish();
        let (mut learned, mut truth) = (Vec::new(), Vec::new());
        let mut mean = (0.0, 0.0);
        for _ in 0..200_000 {
            let shown = market.impression();
            let clicked = market.rng.random_bool(shown.ctr);
            let mut prepared = prepared(&shown);
            model.prepare(
                &Subject {
                    user_key: Some(7),
                    segments: &shown.subject_segments,
                    exchange: "x",
                    domain: &shown.domain,
                    country: "USA",
                    device: shown.device,
                    local_hour: shown.hour,
                    at: 0,
                },
                &mut prepared,
            );
            let candidate = Candidate {
                campaign: "",
                campaign_key: shown.campaign,
                creative: "c",
            };
            let p = model.predict(&prepared, &candidate).expect("warm").click as f64;
            learned.push((p, clicked));
            truth.push((shown.ctr, clicked));
            mean = (mean.0 + p, mean.1 + shown.ctr);
        }
        let (learned_auc, true_auc) = (auc(&learned).unwrap(), auc(&truth).unwrap());
        println!(
            "AUC learned {learned_auc:.4}, true {true_auc:.4}; log loss {:.5} vs {:.5}; mean p {:.5} vs {:.5}",
            log_loss(&learned),
            log_loss(&truth),
            mean.0 / 200_000.0,
            mean.1 / 200_000.0
        );
        assert!(learned_auc >= 0.9 * true_auc, "{learned_auc} < 0.9 × {true_auc}");
        let calibration = mean.0 / mean.1;
        assert!(
            (0.8..1.2).contains(&calibration),
            "mean prediction / mean truth = {calibration}"
        );
    }

    #[test]
    fn a_cold_campaign_gets_no_prediction_and_predictions_are_clamped() {
        let mut trainer = Trainer::default();
        let shown = Market::new(1).impression();
        let slots = all_slots(&prepared(&shown), 5, "c");
        for _ in 0..MIN_CAMPAIGN_IMPRESSIONS - 1 {
            trainer.train(&slots, 5, Label::Impression);
        }
        let candidate = Candidate {
            campaign: "",
            campaign_key: 5,
            creative: "c",
        };
        assert_eq!(trainer.publish().predict(&prepared(&shown), &candidate), None);
        // Every impression clicked and converted: a wild rate, clamped.
        for _ in 0..5_000 {
            trainer.train(&slots, 5, Label::Impression);
            trainer.train(&slots, 5, Label::Click);
            trainer.train(&slots, 5, Label::Click);
            trainer.train(&slots, 5, Label::Conversion);
            trainer.train(&slots, 5, Label::Conversion);
        }
        let model = trainer.publish();
        let mut prepared = prepared(&shown);
        model.prepare(
            &Subject {
                user_key: Some(7),
                segments: &shown.subject_segments,
                exchange: "x",
                domain: &shown.domain,
                country: "USA",
                device: shown.device,
                local_hour: shown.hour,
                at: 0,
            },
            &mut prepared,
        );
        let prediction = model.predict(&prepared, &candidate).unwrap();
        assert_eq!(
            (prediction.click, prediction.conversion),
            (CLICK_RANGE.1, CONVERSION_RANGE.1)
        );
    }

    #[test]
    fn models_swapped_under_load_lose_no_prediction() {
        let published = std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(Model::default()));
        let predictor = crate::outcome::learner::Published(published.clone());
        let shown = Market::new(2).impression();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let readers: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        let mut answered = 0u64;
                        while !done.load(std::sync::atomic::Ordering::Relaxed) {
                            let subject = Subject {
                                user_key: None,
                                segments: &shown.subject_segments,
                                exchange: "x",
                                domain: &shown.domain,
                                country: "",
                                device: 1,
                                local_hour: 3,
                                at: 0,
                            };
                            let mut prepared = Prepared::default();
                            crate::outcome::Predictor::prepare(&predictor, &subject, &mut prepared);
                            let candidate = Candidate {
                                campaign: "",
                                campaign_key: 9,
                                creative: "c",
                            };
                            // Cold, then warm: either way an answer, never a panic.
                            let _ = crate::outcome::Predictor::predict(&predictor, &subject, &prepared, &candidate);
                            answered += 1;
                        }
                        answered
                    })
                })
                .collect();
            let mut trainer = Trainer::default();
            let slots = all_slots(&prepared(&shown), 9, "c");
            for round in 0..20 {
                for _ in 0..200 {
                    trainer.train(&slots, 9, Label::Impression);
                }
                if round % 3 == 0 {
                    trainer.train(&slots, 9, Label::Click);
                }
                published.store(std::sync::Arc::new(trainer.publish()));
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            for reader in readers {
                assert!(reader.join().unwrap() > 0);
            }
        });
        assert_eq!(published.load().campaign_impressions(9), 4_000);
    }
}
