//! Outcome prediction: how likely an impression is to be clicked, and to
//! convert, for a campaign's creative.
//!
//! The bid path asks a [`Predictor`] for each of the few best candidates of
//! an impression (see `bidder::select`); a prediction of `None` means "no
//! opinion yet" and the campaign's smoothed rate is used instead. The
//! production predictor is a model learned online from billed impressions,
//! clicks and conversions, trained off the bid path and swapped whole; the
//! market simulator (`loadtest simulate`) installs an oracle that knows the
//! market's true propensities.
//!
//! A prediction is asked in two steps so that what depends only on the
//! impression is worked out once: [`Predictor::prepare`] fills the
//! request's [`Prepared`] scratch from the [`Subject`], then
//! [`Predictor::predict`] is called per candidate. Neither may allocate,
//! lock or do I/O.

pub mod evaluate;
pub mod learner;
pub mod model;

use crate::audience::taxonomy::SegmentKey;

/// What is known of an impression, in the form a billed event's signed
/// tracking URL carries it too (so that training sees the same features
/// as bidding): the place as [`crate::signing::Place`] writes it.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The user's key; `None` when unknown or when privacy forbids
    /// recognising them (then only contextual features may be used).
    pub user_key: Option<u64>,
    /// The user's segments with their ancestors; empty without consent.
    pub segments: &'a [SegmentKey],
    /// The exchange's name.
    pub exchange: &'a str,
    /// Site domain, else app bundle or app domain (any case, uncut:
    /// predictors normalise as `signing::Place` does).
    pub domain: &'a str,
    /// `device.geo.country` as sent; empty when unknown.
    pub country: &'a str,
    /// AdCOM device type; 0 when unknown.
    pub device: u8,
    /// Hour of the day, 0–23, in the campaign's time zone.
    pub local_hour: u8,
    /// When the impression was offered, Unix seconds.
    pub at: i64,
}

/// A candidate campaign and creative for an impression.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// The campaign's id.
    pub campaign: &'a str,
    /// Stable hash of the campaign id (`CompiledCampaign::key`).
    pub campaign_key: u64,
    /// The creative's id.
    pub creative: &'a str,
}

/// Probabilities for one impression of one candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// P(click | impression).
    pub click: f32,
    /// P(conversion | impression), through a click or not.
    pub conversion: f32,
}

/// Per-request scratch a predictor fills once per impression (hashed
/// contextual and user features, partial sums). Fixed size: no allocation.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Feature hashes of the impression, the first `len` valid.
    pub features: [u32; Prepared::CAPACITY],
    /// How many of `features` are valid.
    pub len: usize,
    /// A predictor's partial result over `features` (e.g. the sum of
    /// their weights), for reuse across candidates.
    pub partial: [f32; 2],
}

impl Prepared {
    /// Most features of one impression.
    pub const CAPACITY: usize = 48;
}

impl Default for Prepared {
    fn default() -> Self {
        Prepared {
            features: [0; Prepared::CAPACITY],
            len: 0,
            partial: [0.0; 2],
        }
    }
}

/// Predicts clicks and conversions per impression (see the module header).
pub trait Predictor: Send + Sync {
    /// Works out once what depends only on the impression.
    fn prepare(&self, subject: &Subject, prepared: &mut Prepared);

    /// The prediction for `candidate` on the prepared impression; `None`
    /// while the predictor knows too little of the campaign (cold start).
    fn predict(&self, subject: &Subject, prepared: &Prepared, candidate: &Candidate) -> Option<Prediction>;

    /// Whether the predictions are learned from the campaigns' own events,
    /// and so are shrunk towards a campaign's smoothed rate while it has
    /// few of them (`bidder::value::shrunk`). A predictor that knows the
    /// propensities (the simulator's oracle) says `false`.
    fn learned(&self) -> bool {
        true
    }
}
