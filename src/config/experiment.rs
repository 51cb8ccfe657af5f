//! `[campaign.experiment]` and creative rotation as written, and their
//! validation into [`crate::campaigns::experiment`].
//!
//! ```toml
//! rotation = "optimise"          # best (default) | even | weighted | optimise
//! [campaign.experiment]
//! id = "spring-test"             # with the user id, the key of the assignment
//! control = "a"                  # the arm lifts are measured against
//! users_without_id = "exclude"   # or "per_request"
//! [[campaign.experiment.arm]]
//! name = "a"
//! weight = 45
//! [[campaign.experiment.arm]]
//! name = "b"
//! weight = 45
//! creatives = ["banner-b"]       # a subset of the campaign's creatives; empty: all
//! bid_multiplier = "1.2"
//! [[campaign.experiment.arm]]
//! name = "holdout"
//! weight = 10
//! holdout = true                 # never bids: measures incremental lift
//! ```

use serde::Deserialize;

use crate::campaigns::Creative;
use crate::campaigns::experiment::{Arm, Experiment, UsersWithoutId};
use crate::money::Micros;

/// `[campaign.experiment]`: an A/B test of the campaign's creatives or bids,
/// with an optional holdout arm that never bids.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExperiment {
    /// 1–64 letters, digits, `-`, `_` or `.`. Users are assigned by a hash
    /// of their id and this id: a new id splits users anew.
    pub id: String,
    /// The arm lifts and p-values are measured against (not the holdout).
    pub control: String,
    /// `exclude` (default: no bid for users without an id, or who may not
    /// be recognised) or `per_request` (each request draws an arm).
    #[serde(default)]
    pub users_without_id: UsersWithoutId,
    /// `[[campaign.experiment.arm]]`: at least two.
    #[serde(default, rename = "arm")]
    pub arms: Vec<RawArm>,
}

/// One `[[campaign.experiment.arm]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArm {
    /// 1–64 letters, digits, `-`, `_` or `.`; unique in the experiment.
    pub name: String,
    /// Its share of users relative to the other arms (a positive integer).
    pub weight: u32,
    /// Ids of the campaign's creatives it shows; empty or absent: all.
    #[serde(default)]
    pub creatives: Vec<String>,
    /// Multiplies the campaign's value when bidding, a decimal (`"1.2"`,
    /// at most six decimals, above 0, at most 10); default 1.
    pub bid_multiplier: Option<String>,
    /// `true`: the arm's users never get a bid (at most one such arm).
    #[serde(default)]
    pub holdout: bool,
}

/// The largest bid multiplier, parts per million.
const MAX_MULTIPLIER_PPM: i64 = 10_000_000;

/// One problem: the field (dotted, as the config loader names it) and why.
pub type Problem = (String, String);

/// Compiles `[campaign.experiment]` against the campaign's creatives; the
/// campaign's `max_bid` times an arm's multiplier must stay within `cap`
/// (the pricing's `bidding.max_*_cap`). Every problem found goes to
/// `problems`.
pub fn experiment(
    raw: RawExperiment,
    creatives: &[Creative],
    max_bid: Micros,
    cap: Micros,
    problems: &mut Vec<Problem>,
) -> Option<Box<Experiment>> {
    let known = problems.len();
    let mut at = |field: String, why: &str| problems.push((field, why.to_string()));
    if !super::is_valid_id(&raw.id) {
        at("experiment.id".into(), "must be 1–64 letters, digits, '-', '_' or '.'");
    }
    if raw.arms.len() < 2 {
        at("experiment.arm".into(), "an experiment needs at least two arms");
    }
    let mut arms: Vec<Arm> = Vec::with_capacity(raw.arms.len());
    for (i, arm) in raw.arms.into_iter().enumerate() {
        if arms.iter().any(|a| a.name == arm.name) {
            at(format!("experiment.arm[{i}].name"), "duplicate arm name");
        }
        let bids = (creatives, max_bid, cap);
        arms.push(compile_arm(i, arm, &raw.id, bids, &mut at));
    }
    if arms.iter().filter(|a| a.holdout).count() > 1 {
        at("experiment.arm".into(), "at most one arm may be the holdout");
    }
    if arms.iter().all(|a| a.holdout) {
        at("experiment.arm".into(), "at least one arm must bid (not a holdout)");
    }
    let control = match arms.iter().position(|a| a.name == raw.control) {
        Some(i) if arms[i].holdout => {
            at("experiment.control".into(), "the control arm cannot be the holdout");
            i
        }
        Some(i) => i,
        None => {
            at("experiment.control".into(), &format!("no arm named {:?}", raw.control));
            0
        }
    };
    let valid = problems.len() == known;
    valid.then(|| Box::new(Experiment::new(raw.id, control, raw.users_without_id, arms)))
}

/// One arm, checked against the campaign's creatives and its `max_bid`
/// and cap (`bids`); problems go to `at`.
fn compile_arm(
    i: usize,
    arm: RawArm,
    experiment: &str,
    (creatives, max_bid, cap): (&[Creative], Micros, Micros),
    at: &mut impl FnMut(String, &str),
) -> Arm {
    let field = |name: &str| format!("experiment.arm[{i}].{name}");
    if !super::is_valid_id(&arm.name) {
        at(field("name"), "must be 1–64 letters, digits, '-', '_' or '.'");
    }
    if arm.weight == 0 {
        at(field("weight"), "must be a positive integer");
    }
    let mut indexes = Vec::new();
    for id in &arm.creatives {
        match creatives.iter().position(|c| &c.id == id) {
            Some(index) if !indexes.contains(&index) => indexes.push(index),
            Some(_) => {}
            None => at(field("creatives"), &format!("no creative {id:?} in this campaign")),
        }
    }
    let multiplier = match arm.bid_multiplier.as_deref().map(Micros::parse_amount) {
        None => 1_000_000,
        Some(Ok(m)) if m.0 > 0 && m.0 <= MAX_MULTIPLIER_PPM => m.0,
        Some(_) => {
            at(field("bid_multiplier"), "must be a decimal above 0 and at most 10");
            1_000_000
        }
    };
    if max_bid.mul_div_floor(multiplier, 1_000_000) > cap {
        at(
            field("bid_multiplier"),
            &format!("max_bid times it is above the cap of {cap}"),
        );
    }
    if arm.holdout && (!arm.creatives.is_empty() || arm.bid_multiplier.is_some()) {
        at(
            field("holdout"),
            "a holdout arm never bids: it takes no creatives or bid_multiplier",
        );
    }
    Arm {
        tag: format!("{experiment}/{}", arm.name),
        name: arm.name,
        weight: arm.weight,
        creatives: indexes,
        bid_multiplier_ppm: multiplier as u32,
        holdout: arm.holdout,
    }
}
