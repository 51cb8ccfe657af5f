//! Experiments (A/B tests with an optional holdout) and creative rotation:
//! the compiled model and the pure choices selection makes with it.
//!
//! A user is assigned to an arm by a stable hash of their user key (the
//! xxh3 of their id, [`crate::audience::user_key`]) seeded with the xxh3 of
//! the experiment id: xxh3 is a fixed specification with no per-process
//! key, so every node, every request and every restart puts a user in the
//! same arm, and two experiments split users independently. The hash is
//! mapped onto the arms' cumulative weights (a multiply-shift, no modulo
//! bias). Users without an id are left out of the campaign or drawn per
//! request ([`UsersWithoutId`]).
//!
//! Rotation chooses among the creatives that fit (those of the user's arm):
//! `best` the most valuable, `even` uniformly, `weighted` by each
//! creative's `weight`, `optimise` by Thompson sampling on each creative's
//! clicks and impressions (a draw from Beta(clicks + 1, impressions −
//! clicks + 1) per creative, the highest wins), so that the better creative
//! gets more of the traffic as evidence grows while the others keep being
//! tried. Every choice here is allocation-free and takes its randomness
//! from the caller.

/// How a campaign chooses among the creatives that fit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    /// The most valuable creative that fits (the first, for CPM campaigns).
    #[default]
    Best,
    /// Uniformly among the creatives that fit.
    Even,
    /// In proportion to each creative's `weight`.
    Weighted,
    /// Thompson sampling on each creative's clicks and impressions.
    #[serde(alias = "optimize")]
    Optimise,
}

/// What to do with users who carry no id (or may not be recognised).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsersWithoutId {
    /// The campaign does not bid for them.
    #[default]
    Exclude,
    /// Each request draws an arm at random, by the weights.
    PerRequest,
}

/// One arm of an experiment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arm {
    /// Its name, unique in the experiment.
    pub name: String,
    /// Its share of users, relative to the other arms' weights.
    pub weight: u32,
    /// Indexes of the campaign's creatives it may show; empty: all.
    pub creatives: Vec<usize>,
    /// Its bid multiplier, parts per million (1 000 000: the campaign's
    /// own value).
    pub bid_multiplier_ppm: u32,
    /// A holdout arm never bids: its users measure what the campaign adds.
    pub holdout: bool,
    /// `{experiment}/{arm}`: how the arm is signed into tracking URLs and
    /// written to the ledger.
    pub tag: String,
}

impl Arm {
    /// Whether the arm may show creative `index`.
    pub fn allows(&self, index: usize) -> bool {
        self.creatives.is_empty() || self.creatives.contains(&index)
    }
}

/// A campaign's experiment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Experiment {
    /// Its id: with the user, the key of the assignment.
    pub id: String,
    /// Index of the control arm in `arms`.
    pub control: usize,
    /// Users without an id.
    pub users_without_id: UsersWithoutId,
    /// The arms, as configured; at least one.
    pub arms: Vec<Arm>,
    /// The seed of the assignment hash: xxh3 of the id.
    seed: u64,
    /// Cumulative weights: arm `i` takes points `[ends[i-1], ends[i])`.
    ends: Vec<u64>,
}

/// The unit-less fraction of a 64-bit hash scaled to `total`.
fn scaled(hash: u64, total: u64) -> u64 {
    ((u128::from(hash) * u128::from(total)) >> 64) as u64
}

impl Experiment {
    /// An experiment over `arms` (weights positive, validated by the
    /// config).
    pub fn new(id: String, control: usize, users_without_id: UsersWithoutId, arms: Vec<Arm>) -> Experiment {
        let ends = arms
            .iter()
            .scan(0u64, |sum, arm| {
                *sum += u64::from(arm.weight);
                Some(*sum)
            })
            .collect();
        Experiment {
            seed: xxhash_rust::xxh3::xxh3_64(id.as_bytes()),
            id,
            control,
            users_without_id,
            arms,
            ends,
        }
    }

    /// The sum of the arms' weights.
    pub fn total_weight(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// The arm at a point of `[0, total_weight)`.
    fn arm_at(&self, point: u64) -> usize {
        self.ends.partition_point(|&end| end <= point).min(self.arms.len() - 1)
    }

    /// The arm of the user with key `user_key`: the same on every node,
    /// request and restart.
    pub fn arm_of_user(&self, user_key: u64) -> usize {
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(&user_key.to_le_bytes(), self.seed);
        self.arm_at(scaled(hash, self.total_weight()))
    }

    /// The arm for a request: the user's, or for a user without a key a
    /// draw from `random` (or `None`: excluded).
    pub fn assign(&self, user_key: Option<u64>, random: u64) -> Option<usize> {
        match (user_key, self.users_without_id) {
            (Some(user), _) => Some(self.arm_of_user(user)),
            (None, UsersWithoutId::PerRequest) => Some(self.arm_at(scaled(random, self.total_weight()))),
            (None, UsersWithoutId::Exclude) => None,
        }
    }

    /// The arm tagged `tag` (`{experiment}/{arm}`), if it is one of this
    /// experiment's.
    pub fn arm_by_tag(&self, tag: &str) -> Option<&Arm> {
        self.arms.iter().find(|arm| arm.tag == tag)
    }
}

/// A uniform float in `[0, 1)` from 53 random bits.
fn unit(random: u64) -> f64 {
    (random >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Picks among `weights` (index, weight) in proportion to the weights,
/// with one random number; `None` when there is nothing with weight.
pub fn weighted_pick(weights: impl Iterator<Item = (usize, u64)> + Clone, random: u64) -> Option<usize> {
    let total: u64 = weights.clone().map(|(_, w)| w).sum();
    if total == 0 {
        return None;
    }
    let mut point = scaled(random, total);
    for (index, weight) in weights {
        if point < weight {
            return Some(index);
        }
        point -= weight;
    }
    None
}

/// A small random source for a sampler: splitmix64 over a seed, so a
/// Thompson draw needs one random number from the caller.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `(0, 1)`.
    fn open_unit(&mut self) -> f64 {
        loop {
            let u = unit(self.next_u64());
            if u > 0.0 {
                return u;
            }
        }
    }

    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.open_unit(), self.open_unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// A Gamma(shape, 1) draw, shape ≥ 1 (Marsaglia and Tsang, 2000).
    fn gamma(&mut self, shape: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.open_unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// A Beta(clicks + 1, impressions − clicks + 1) draw: the posterior
    /// click-through rate of a creative under a uniform prior.
    pub fn ctr_posterior(&mut self, impressions: u64, clicks: u64) -> f64 {
        let clicks = clicks.min(impressions);
        let a = self.gamma(clicks as f64 + 1.0);
        let b = self.gamma((impressions - clicks) as f64 + 1.0);
        a / (a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment(weights: &[u32], without_id: UsersWithoutId) -> Experiment {
        let arms = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Arm {
                name: format!("arm{i}"),
                weight,
                creatives: Vec::new(),
                bid_multiplier_ppm: 1_000_000,
                holdout: false,
                tag: format!("x/arm{i}"),
            })
            .collect();
        Experiment::new("spring-test".into(), 0, without_id, arms)
    }

    /// Over 100 000 users each arm gets its weight's share within ±1 %
    /// (of all users).
    #[test]
    fn the_split_follows_the_weights() {
        let x = experiment(&[50, 30, 15, 5], UsersWithoutId::Exclude);
        let mut counts = [0u32; 4];
        for n in 0..100_000 {
            let user = crate::audience::user_key(&format!("user-{n}"));
            counts[x.arm_of_user(user)] += 1;
        }
        for (count, weight) in counts.iter().zip([50, 30, 15, 5]) {
            let share = f64::from(*count) / 100_000.0;
            assert!((share - f64::from(weight) / 100.0).abs() < 0.01, "{counts:?}");
        }
    }

    /// The assignment depends only on the user, the experiment id and the
    /// weights: a fresh experiment (a restart, another node) agrees, and
    /// these values are pinned, so a change of hash (which would move
    /// users between arms in the middle of a test) fails here.
    #[test]
    fn assignment_is_stable_across_restarts_and_experiments_are_independent() {
        let arms = |x: &Experiment| -> Vec<usize> {
            (0..16)
                .map(|n| x.arm_of_user(crate::audience::user_key(&format!("u{n}"))))
                .collect()
        };
        let first = experiment(&[1, 1], UsersWithoutId::Exclude);
        let again = experiment(&[1, 1], UsersWithoutId::Exclude);
        assert_eq!(arms(&first), arms(&again));
        assert_eq!(arms(&first), [1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1]);
        let other = Experiment::new("autumn-test".into(), 0, UsersWithoutId::Exclude, first.arms.clone());
        assert_ne!(arms(&first), arms(&other), "another experiment splits users anew");
    }

    #[test]
    fn users_without_an_id_are_excluded_or_drawn_per_request() {
        let excluded = experiment(&[1, 3], UsersWithoutId::Exclude);
        assert_eq!(excluded.assign(None, 0), None);
        let drawn = experiment(&[1, 3], UsersWithoutId::PerRequest);
        assert_eq!(drawn.assign(None, 0), Some(0));
        assert_eq!(drawn.assign(None, u64::MAX / 4 - 1), Some(0));
        assert_eq!(drawn.assign(None, u64::MAX / 4 + 1), Some(1));
        assert_eq!(drawn.assign(None, u64::MAX), Some(1));
    }

    #[test]
    fn weighted_picks_follow_the_weights() {
        let weights = [(3, 1u64), (5, 0), (7, 3)];
        assert_eq!(weighted_pick(weights.iter().copied(), 0), Some(3));
        assert_eq!(weighted_pick(weights.iter().copied(), u64::MAX / 4 + 1), Some(7));
        assert_eq!(weighted_pick(weights.iter().copied(), u64::MAX), Some(7));
        assert_eq!(weighted_pick([(1, 0u64)].into_iter(), 5), None);
    }

    #[test]
    fn the_ctr_posterior_centres_on_the_observed_rate() {
        let mut rng = SplitMix(7);
        let n = 4000;
        let mean: f64 = (0..n).map(|_| rng.ctr_posterior(10_000, 300)).sum::<f64>() / f64::from(n);
        // Beta(301, 9701): mean 0.03009.
        assert!((mean - 0.0301).abs() < 0.0005, "{mean}");
        let fresh: f64 = (0..n).map(|_| rng.ctr_posterior(0, 0)).sum::<f64>() / f64::from(n);
        assert!((fresh - 0.5).abs() < 0.02, "no data: uniform, {fresh}");
    }
}
