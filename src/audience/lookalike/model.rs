//! The model: L2-regularised logistic regression that tells the seed users
//! from the rest of the population, on binary features (every segment path
//! a user holds, with its ancestors, and the user's activity bucket; see
//! [`super::features`]). A user's score is the model's log-odds; only the
//! order matters.
//!
//! Why logistic regression rather than a per-segment lift: a user's
//! segments are correlated (a path and its ancestors always come together;
//! interests come in clusters), and a per-segment lift counts the same
//! evidence several times, while the regression shares it out. The
//! regulariser (a Gaussian prior on every weight) keeps a segment that a
//! handful of seed users happen to share from dominating.
//!
//! Training: stochastic gradient descent with per-feature AdaGrad steps,
//! drawing a seed user and a population user in turn (so both classes
//! weigh the same however unbalanced), and the L2 penalty applied as a
//! proximal step when a feature is seen, scaled by how rarely it is seen
//! (so in expectation it is the dense penalty). Seeded: the same inputs
//! give the same model.

use rand::{RngExt, SeedableRng};

use super::features::{ACTIVITY_BUCKETS, Expander, Node, Vocabulary, activity};

/// Prior strength: the L2 penalty is `L2 / (users in the smaller class)`,
/// i.e. a prior worth about one user's evidence per weight.
const L2: f64 = 1.0;
/// AdaGrad's base step.
const STEP: f64 = 0.2;
/// Passes over the larger class.
const EPOCHS: usize = 4;
/// Bounds on the number of SGD steps (a tiny seed still gets enough
/// steps; a huge sample no more than a few seconds).
const MIN_STEPS: usize = 200_000;
const MAX_STEPS: usize = 8_000_000;

/// Training users, their features expanded, stored flat.
#[derive(Default)]
pub struct Examples {
    features: Vec<Node>,
    ends: Vec<usize>,
    activity: Vec<u8>,
}

impl Examples {
    /// Expands each user's segments (as given) into features.
    pub fn new(users: impl Iterator<Item = Vec<Node>>, vocabulary: &Vocabulary) -> Examples {
        let mut examples = Examples::default();
        let mut expander = Expander::default();
        for given in users {
            expander.expand(vocabulary, &given, |node| examples.features.push(node));
            examples.ends.push(examples.features.len());
            examples.activity.push(activity(given.len()) as u8);
        }
        examples
    }

    /// How many users.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn get(&self, i: usize) -> (&[Node], usize) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        (&self.features[start..self.ends[i]], usize::from(self.activity[i]))
    }
}

/// A trained model: one weight per feature.
pub struct Model {
    /// Per node, then per activity bucket.
    weights: Vec<f64>,
    nodes: usize,
    bias: f64,
}

impl Model {
    /// The score of a user holding `given` segments (as given). Nodes first
    /// seen after training weigh nothing.
    pub fn score(&self, vocabulary: &Vocabulary, expander: &mut Expander, given: &[Node]) -> f64 {
        let mut score = self.bias + self.weights[self.nodes + activity(given.len())];
        expander.expand(vocabulary, given, |node| {
            if (node as usize) < self.nodes {
                score += self.weights[node as usize];
            }
        });
        score
    }

    /// The `count` segments that most mark a user out as seed-like, with
    /// their weights.
    pub fn strongest(&self, vocabulary: &Vocabulary, count: usize) -> Vec<(String, f64)> {
        let mut nodes: Vec<usize> = (0..self.nodes).filter(|&n| self.weights[n] > 0.0).collect();
        nodes.sort_unstable_by(|&a, &b| self.weights[b].total_cmp(&self.weights[a]));
        nodes
            .into_iter()
            .take(count)
            .map(|n| (vocabulary.name(n as Node).to_string(), self.weights[n]))
            .collect()
    }
}

/// Fits the model on seed users (`positives`) against population users
/// (`negatives`); `nodes` is the vocabulary's size. Both must be non-empty.
pub fn train(positives: &Examples, negatives: &Examples, nodes: usize, random_seed: u64) -> Model {
    debug_assert!(!positives.is_empty() && !negatives.is_empty());
    let width = nodes + ACTIVITY_BUCKETS;
    let frequency = frequencies(positives, negatives, width, nodes);
    let lambda = L2 / positives.len().min(negatives.len()).max(1) as f64;
    let steps = (EPOCHS * 2 * positives.len().max(negatives.len())).clamp(MIN_STEPS, MAX_STEPS);
    let mut model = Model {
        weights: vec![0.0; width],
        nodes,
        bias: 0.0,
    };
    let mut squares = vec![1e-8; width];
    let mut bias_squares = 1e-8;
    let mut rng = rand::rngs::StdRng::seed_from_u64(random_seed);
    for step in 0..steps {
        let (examples, label) = if step % 2 == 0 {
            (positives, 1.0)
        } else {
            (negatives, 0.0)
        };
        let (features, bucket) = examples.get(rng.random_range(0..examples.len()));
        let bucket = nodes + bucket;
        let z = model.bias + model.weights[bucket] + features.iter().map(|&f| model.weights[f as usize]).sum::<f64>();
        let gradient = sigmoid(z) - label;
        bias_squares += gradient * gradient;
        model.bias -= STEP * gradient / bias_squares.sqrt();
        for feature in features.iter().map(|&f| f as usize).chain(std::iter::once(bucket)) {
            squares[feature] += gradient * gradient;
            let rate = STEP / squares[feature].sqrt();
            let weight = &mut model.weights[feature];
            *weight = (*weight - rate * gradient) / (1.0 + rate * lambda / frequency[feature]);
        }
    }
    model
}

/// How often each feature is seen in a training step (seed and population
/// users drawn in turn).
fn frequencies(positives: &Examples, negatives: &Examples, width: usize, nodes: usize) -> Vec<f64> {
    let mut frequency = vec![0.0; width];
    for examples in [positives, negatives] {
        let share = 0.5 / examples.len() as f64;
        for i in 0..examples.len() {
            let (features, bucket) = examples.get(i);
            for &feature in features {
                frequency[feature as usize] += share;
            }
            frequency[nodes + bucket] += share;
        }
    }
    for f in &mut frequency {
        *f = f.max(1e-12);
    }
    frequency
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed users hold `sport/running` far more often than the population;
    /// `news` is everywhere. The model ranks a runner above a non-runner
    /// and says why.
    #[test]
    fn learns_what_marks_the_seed_out() {
        let mut vocabulary = Vocabulary::default();
        let running = vocabulary.node("sport/running").unwrap();
        let chess = vocabulary.node("games/chess").unwrap();
        let news = vocabulary.node("news").unwrap();
        let users = |runners: usize, total: usize| {
            (0..total)
                .map(|i| {
                    if i < runners {
                        vec![running, news]
                    } else {
                        vec![chess, news]
                    }
                })
                .collect::<Vec<_>>()
        };
        let positives = Examples::new(users(80, 100).into_iter(), &vocabulary);
        let negatives = Examples::new(users(100, 1000).into_iter(), &vocabulary);
        let model = train(&positives, &negatives, vocabulary.len(), 1);
        let mut expander = Expander::default();
        let runner = model.score(&vocabulary, &mut expander, &[running, news]);
        let player = model.score(&vocabulary, &mut expander, &[chess, news]);
        assert!(runner > player + 1.0, "{runner} vs {player}");
        let strongest = model.strongest(&vocabulary, 2);
        assert!(
            strongest.iter().any(|(name, _)| name.starts_with("sport")),
            "{strongest:?}"
        );
        assert!(
            !strongest
                .iter()
                .any(|(name, _)| name == "news" || name.starts_with("games"))
        );
    }
}
