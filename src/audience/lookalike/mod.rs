//! `bullseye segments lookalike`: grows a seed list into the users of a
//! population who look most like it, as a segment for `segments build`.
//!
//! Two streaming passes over the population (the inputs of `segments
//! build`: CSV or JSON Lines, several files, `.gz` read through):
//!
//! 1. **Learn** ([`learn`]): find the seed users and draw a uniform sample
//!    of the other users ([`sample::BottomK`]: bounded, and a user's lines
//!    are merged), both as their segments; then fit a logistic regression
//!    that tells seed from population ([`model`]) on every segment path a
//!    user holds, its ancestors and the user's activity ([`features`]).
//! 2. **Score** ([`score`]): score every user who is not a training seed
//!    and keep the best N ([`top::Top`], bounded by N).
//!
//! Memory holds the seed keys, the two samples, the vocabulary of segments
//! and the N best users — never the population's ids — so it does not grow
//! with the population. With `--holdout F`, a fraction of the seed
//! ([`seeds`]) is hidden from training and the summary says how many of
//! the hidden users the expansion found (recall) and how that compares with
//! picking N users at random (lift).
//!
//! A user written on several lines (or in several inputs) is merged in
//! the learning pass, but scored line by line in the second (merging there
//! would mean holding every id); the output still lists each user once.

pub mod features;
pub mod model;
pub mod population;
pub mod sample;
pub mod seeds;
pub mod top;

mod run;

pub use run::{learn, run, score};

use std::path::PathBuf;

use serde::Serialize;

use crate::audience::builder::BadLine;

/// What to expand, into what.
#[derive(Clone, Debug)]
pub struct Options {
    /// The population inputs (as for `segments build`).
    pub population: Vec<PathBuf>,
    /// The seed list: one user id per line.
    pub seed: PathBuf,
    /// How many users to write.
    pub size: Size,
    /// The segment the output puts its users in (`lookalike/buyers`).
    pub segment: String,
    /// The output file: CSV `user_id,segment` (JSON Lines for a `.jsonl`
    /// name; gzip for `.gz`).
    pub output: PathBuf,
    /// The fraction of the seed to hide and look for, if any.
    pub holdout: Option<f64>,
    /// Seeds the holdout, the sample, the training and the tie-breaks.
    pub random_seed: u64,
    /// How many population users (and at most how many seed users) the
    /// model learns from.
    pub sample: usize,
    /// Fail when more than this fraction of the population's lines is bad.
    pub max_bad_fraction: f64,
}

/// The expansion's size.
#[derive(Clone, Copy, Debug)]
pub enum Size {
    /// This many users.
    Users(u64),
    /// This fraction of the population.
    Ratio(f64),
}

/// The default number of population users learnt from.
pub const DEFAULT_SAMPLE: usize = 250_000;

/// What a run did: printed as one JSON line.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Valid user lines in the population.
    pub population: u64,
    /// Lines rejected.
    pub bad_lines: u64,
    /// Distinct ids in the seed list.
    pub seed_listed: u64,
    /// Of them, found in the population.
    pub seed_found: u64,
    /// Of them, not found.
    pub seed_missing: u64,
    /// The first few missing ids.
    pub missing_examples: Vec<String>,
    /// Seed users the model learnt from (found, not hidden; at most
    /// `sample`).
    pub trained_on: u64,
    /// Population users the model learnt from.
    pub sample: u64,
    /// Users written.
    pub size: u64,
    /// The segment they were written with.
    pub segment: String,
    /// The users who could have been chosen: the population less the
    /// training seed.
    pub candidates: u64,
    /// The fraction of the seed held out.
    pub holdout: Option<f64>,
    /// Hidden seed users found in the population.
    pub hidden: Option<u64>,
    /// Of them, in the expansion.
    pub hidden_found: Option<u64>,
    /// `hidden_found / hidden`.
    pub recall: Option<f64>,
    /// Recall over that of N users drawn at random from the candidates
    /// (`recall / (size / candidates)`).
    pub lift: Option<f64>,
    /// The segments that most mark a user as seed-like, strongest first.
    pub top_segments: Vec<String>,
    /// Wall time of the run.
    pub seconds: f64,
    /// The process's peak resident memory (`VmHWM`), where the system
    /// tells it.
    pub peak_memory_bytes: Option<u64>,
    /// The first rejected lines (not in the JSON: printed apart).
    #[serde(skip)]
    pub bad_examples: Vec<BadLine>,
}

/// Why a run failed; no output was written.
#[derive(Debug, thiserror::Error)]
pub enum LookalikeError {
    /// An input or the seed list could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An option out of its range.
    #[error("{0}")]
    Option(String),
    /// No seed user to learn from.
    #[error("{0}")]
    NothingToLearn(String),
    /// More lines were bad than allowed.
    #[error("{bad} of {lines} lines rejected, over the allowed {allowed}; first: {first}")]
    TooManyBadLines {
        /// Lines rejected.
        bad: u64,
        /// Lines read.
        lines: u64,
        /// Most allowed.
        allowed: u64,
        /// The first rejected.
        first: BadLine,
    },
}

/// A keyed hash's mixing step (SplitMix64's finaliser): a bijection on
/// `u64`, so a user's rank is unique to the user.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The process's peak resident memory, from `/proc/self/status` (Linux).
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
