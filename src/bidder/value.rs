//! Stage 3½, value: what one impression is worth to a campaign.
//!
//! A CPM campaign's value is its max CPM. A value-based campaign (CPC, CPA,
//! CPS) is worth its goal times the predicted response: `max_cpc × P(click)`,
//! `target_cpa × P(conversion)`, `cps_share × order value × P(conversion)`,
//! per thousand impressions ([`Campaign::value_at`]). With a
//! [`Predictor`] on the request (`bidding.prediction = "impression"`), the
//! probabilities are predicted for this impression; without one, or while
//! the predictor knows too little of the campaign, they are the campaign's
//! smoothed rates (the values the index ranked it by).
//!
//! A prediction can move a bid only so far: each probability is clamped to
//! [`PREDICTION_CLAMP`] times the campaign's own rate either way and to an
//! absolute ceiling, and the value to `max_cpm` and to the campaign's
//! [`CompiledCampaign::upper_value`] (which lets selection stop walking once
//! no later campaign can beat the bid it holds). At most
//! [`MAX_PREDICTIONS`] campaigns are predicted per impression.
//!
//! A young campaign's prediction is shrunk towards its smoothed rate in
//! proportion to its evidence ([`shrunk`]): with `n` events (clicks for
//! CPC, conversions for CPA and CPS) the model weighs `n / (n +`
//! [`SHRINK_EVENTS`]`)` (a predictor that is not learned, the simulator's
//! oracle, is not shrunk: `Predictor::learned`). A model that has seen a campaign's impressions
//! but hardly any of its clicks pushes all of the campaign's coordinates
//! down together; unshrunk, the campaign lost the selection everywhere and
//! never got the data that would correct it (OUTCOMES.md).
//!
//! [`Campaign::value_at`]: crate::campaigns::model::Campaign::value_at
//! [`CompiledCampaign::upper_value`]: crate::campaigns::index::CompiledCampaign::upper_value

use crate::campaigns::index::LearnedRates;
use crate::campaigns::model::{PCTR_CEILING_PPB, PCVR_CEILING_PPB, PREDICTION_CLAMP, Pricing};
use crate::live::LiveCampaign;
use crate::money::Micros;
use crate::outcome::{Candidate, Predictor, Prepared, Subject};

use super::enrich::BidCtx;

/// Most campaigns whose value is predicted for one impression.
pub const MAX_PREDICTIONS: u32 = 8;

/// Share (ppm) of a value-based campaign's opportunities on which it bids
/// at least its prior value (`Campaign::value_cpm`: the configured
/// `pctr_prior` / `pcvr_prior`) when valued per impression: the learning
/// budget. Without it a campaign whose rate happens to be underestimated
/// early (a few thousand impressions and no click yet, the click model's
/// campaign coordinates all pushed down together) is outbid by the other
/// campaigns everywhere, wins nothing more, and its estimate never
/// recovers — the market simulator's CPC campaigns at second price
/// (OUTCOMES.md) were valued at a quarter of their true rate and bought
/// nothing.
pub const EXPLORE_PPM: u64 = 30_000;

/// Events (clicks, conversions) at which a campaign's model prediction and
/// its smoothed rate weigh the same ([`shrunk`]).
pub const SHRINK_EVENTS: u64 = 20;

/// Values an impression's candidates, predicting for value-based ones:
/// one per impression, holding the prepared impression between candidates.
pub struct Valuer<'p> {
    predictor: Option<&'p dyn Predictor>,
    prepared: Prepared,
    /// The time zone (index) `prepared` was worked out in: the hour of day
    /// is the campaign's local one.
    prepared_tz: Option<usize>,
    /// Campaigns predicted so far.
    pub predictions: u32,
}

impl<'p> Valuer<'p> {
    /// A valuer for one impression; `predictor` `None` values every
    /// campaign at its smoothed rates.
    pub fn new(predictor: Option<&'p dyn Predictor>) -> Valuer<'p> {
        Valuer {
            predictor,
            prepared: Prepared::default(),
            prepared_tz: None,
            predictions: 0,
        }
    }

    /// Whether this impression is valued per impression: a predictor is
    /// set and some campaign is value-based.
    pub fn predicting(&self) -> bool {
        self.predictor.is_some()
    }

    /// Whether the walk has predicted as many campaigns as it may.
    pub fn exhausted(&self) -> bool {
        self.predictions >= MAX_PREDICTIONS
    }

    /// The value (CPM, base currency) of `creative` of `c` on this
    /// impression.
    pub fn value(&mut self, ctx: &BidCtx, c: &LiveCampaign, creative: usize) -> Micros {
        let fallback = c.creative_values[creative];
        let campaign = &c.campaign;
        // Past the predictions an impression may take, the smoothed rates.
        let exhausted = self.exhausted();
        let Some(predictor) = self
            .predictor
            .filter(|_| campaign.pricing.is_value_based() && !exhausted)
        else {
            return fallback;
        };
        let (_, hour_of_week) = ctx.local_time(c.tz);
        let facts = &ctx.facts;
        let subject = Subject {
            user_key: ctx.user_key,
            segments: &facts.segments,
            exchange: &ctx.exchange.name,
            domain: facts.domains.first().copied().unwrap_or_default(),
            country: facts.country.unwrap_or_default(),
            device: facts.device_type.filter(|d| (1..=99).contains(d)).unwrap_or(0) as u8,
            local_hour: (hour_of_week % 24) as u8,
            at: ctx.now.as_second(),
        };
        if self.prepared_tz != Some(c.tz) {
            predictor.prepare(&subject, &mut self.prepared);
            self.prepared_tz = Some(c.tz);
        }
        self.predictions += 1;
        let candidate = Candidate {
            campaign: &campaign.id,
            campaign_key: c.key,
            creative: &campaign.creatives[creative].id,
        };
        let Some(prediction) = predictor.predict(&subject, &self.prepared, &candidate) else {
            return fallback;
        };
        let goal = &campaign.goal;
        // A predictor that knows the propensities is taken at its word.
        let shrink = |predicted: u64, rate: u64, events: u64| {
            if predictor.learned() {
                shrunk(predicted, rate, events)
            } else {
                predicted
            }
        };
        let value = match campaign.pricing {
            Pricing::Cpm => return fallback,
            Pricing::Cpc => {
                let rate = u64::from(c.state.pctr(candidate.creative, campaign.pctr_prior)) * 1000;
                let (_, clicks) = c.state.creative_counts(candidate.creative);
                let pctr = shrink(clamped(prediction.click, rate, PCTR_CEILING_PPB), rate, clicks);
                campaign.value_at(pctr, 0, Micros::ZERO)
            }
            Pricing::Cpa | Pricing::Cps => {
                let rate = u64::from(c.state.pcvr(goal.pcvr_prior));
                let predicted = clamped(prediction.conversion, rate, PCVR_CEILING_PPB);
                let pcvr = shrink(predicted, rate, c.state.conversions());
                campaign.value_at(0, pcvr, c.state.order_value(goal.order_value_prior))
            }
        };
        value.min(c.upper_value)
    }
}

/// A predicted probability in parts per billion, within
/// [`PREDICTION_CLAMP`] times `rate` (ppb) either way and at most
/// `ceiling`; a probability that is not a number is the rate.
pub fn clamped(probability: f32, rate: u64, ceiling: u64) -> u64 {
    let ppb = if probability.is_nan() {
        rate
    } else {
        (f64::from(probability.clamp(0.0, 1.0)) * 1e9).round() as u64
    };
    let low = rate / PREDICTION_CLAMP;
    let high = rate.saturating_mul(PREDICTION_CLAMP).min(ceiling).max(low);
    ppb.clamp(low, high)
}

/// A predicted probability (ppb) shrunk towards the campaign's smoothed
/// `rate` (ppb) by its evidence: `(events × predicted + SHRINK_EVENTS ×
/// rate) / (events + SHRINK_EVENTS)`, rounded down.
pub fn shrunk(predicted: u64, rate: u64, events: u64) -> u64 {
    let weighted = u128::from(events) * u128::from(predicted) + u128::from(SHRINK_EVENTS) * u128::from(rate);
    (weighted / (u128::from(events) + u128::from(SHRINK_EVENTS))) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_young_campaigns_prediction_is_shrunk_towards_its_rate_by_its_evidence() {
        let rate = 2_000_000; // 0.2 %
        let predicted = 500_000; // the model's 0.05 %
        assert_eq!(shrunk(predicted, rate, 0), rate, "no event: the rate");
        // (5 × 0.5 + 20 × 2) / 25 = 1.7 million ppb.
        assert_eq!(shrunk(predicted, rate, 5), 1_700_000);
        // Even evidence: halfway.
        assert_eq!(shrunk(predicted, rate, SHRINK_EVENTS), 1_250_000);
        // (980 × 0.5 + 20 × 2) / 1000 = 0.53 million ppb: the model rules.
        assert_eq!(shrunk(predicted, rate, 980), 530_000);
        assert_eq!(shrunk(7, 8, 1), 7, "(7 + 160) / 21 rounds down");
        assert_eq!(
            shrunk(1_000_000_000, 1_000_000_000, u64::MAX),
            1_000_000_000,
            "no overflow"
        );
    }

    #[test]
    fn predictions_are_clamped_around_the_campaign_rate_and_under_the_ceiling() {
        let rate = 2_000_000; // 0.2 %
        assert_eq!(clamped(0.004, rate, PCTR_CEILING_PPB), 4_000_000);
        assert_eq!(clamped(1.0, rate, PCTR_CEILING_PPB), 20_000_000, "10× the rate at most");
        assert_eq!(
            clamped(0.0, rate, PCTR_CEILING_PPB),
            200_000,
            "a tenth of the rate at least"
        );
        assert_eq!(clamped(f32::NAN, rate, PCTR_CEILING_PPB), rate);
        assert_eq!(clamped(f32::INFINITY, rate, PCTR_CEILING_PPB), 20_000_000);
        assert_eq!(clamped(-3.0, rate, PCTR_CEILING_PPB), 200_000);
        // A campaign whose own rate is high is held by the absolute ceiling.
        assert_eq!(clamped(0.9, 150_000_000, PCTR_CEILING_PPB), PCTR_CEILING_PPB);
        assert_eq!(clamped(0.9, 150_000_000, PCVR_CEILING_PPB), PCVR_CEILING_PPB);
    }
}
