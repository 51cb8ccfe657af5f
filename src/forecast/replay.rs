//! The forecast: the sample replayed against one campaign.
//!
//! [`forecast`] builds a world holding only the campaign (with the bid and
//! budget asked for, and its own fresh live state: nothing it does touches
//! the serving world), and runs every sampled request through the real
//! stages — decode, enrich, and the select stage's dry run (`select::Mode`:
//! nothing reserved, counted or drawn; the pacing gate admits) — with the
//! sample's segments in place of the audience lookup and a pseudonymous
//! user for a recognised one. Per local day of the campaign:
//!
//! - `requests`: sampled requests, scaled by 1/rate;
//! - `impressions`: impressions its targeting matches (it bids, or only
//!   the floor stops it);
//! - `bids`: impressions it bids on at that bid;
//! - `wins` and `spend`: each bid's P(win) and cost from [`Market`]
//!   (clearing prices per impression; CPC campaigns pay `max_bid` per
//!   expected click instead);
//! - `clicks` and `conversions`: wins × the campaign's pCTR and pCVR per
//!   impression (its live state's smoothed rates on a server, its priors
//!   from the command line).
//!
//! The daily budget caps each day's spend: past it, wins, clicks and
//! conversions shrink in proportion (as even pacing spreads the budget).
//! The landscape repeats the replay with the bid (and for CPA and CPS
//! campaigns the target) at 0.5×, 0.75×, 1×, 1.25×, 1.5× and 2×.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use super::market::Market;
use super::sample::Sample;
use crate::audience::{AudienceStore, SegmentKey};
use crate::bidder::select::{self, Mode};
use crate::bidder::{decode, enrich};
use crate::campaigns::tally::ImpOutcome;
use crate::campaigns::targeting::FilterReason;
use crate::campaigns::{Campaign, Pricing};
use crate::config::Config;
use crate::live::{LiveCampaign, LiveStates, World};
use crate::money::Micros;
use crate::openrtb::AuctionType;
use crate::pacing::FrequencyStore;
use crate::settings::Settings;

/// The bid multipliers of the landscape, per mille.
pub const LANDSCAPE: [i64; 6] = [500, 750, 1000, 1250, 1500, 2000];

/// The campaign's response rates per impression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rates {
    /// P(click | impression), ppm.
    pub pctr_ppm: u32,
    /// P(conversion | impression), ppb.
    pub pcvr_ppb: u32,
}

impl Rates {
    /// The campaign's priors (`pctr_prior`, `pcvr_prior`).
    pub fn priors(campaign: &Campaign) -> Rates {
        Rates {
            pctr_ppm: campaign.pctr_prior,
            pcvr_ppb: campaign.goal.pcvr_prior,
        }
    }
}

/// What the forecast is asked.
pub struct Question {
    /// The validated settings (exchanges, currency, privacy).
    pub settings: Settings,
    /// The campaign, as configured.
    pub campaign: Campaign,
    /// The bid to forecast (`max_bid`; for CPA and CPS campaigns their
    /// `max_cpm`), instead of the campaign's.
    pub max_bid: Option<Micros>,
    /// The daily budget to forecast, instead of the campaign's.
    pub daily_budget: Option<Micros>,
    /// Its response rates.
    pub rates: Rates,
}

/// The forecast's answer (`bullseye forecast --json`, `GET /admin/api/forecast`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Forecast {
    /// The campaign id.
    pub campaign: String,
    /// Its pricing model.
    pub pricing: &'static str,
    /// The bid forecast (base currency, decimal string).
    pub max_bid: String,
    /// The daily budget forecast; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_budget: Option<String>,
    /// The base currency.
    pub currency: String,
    /// The sample replayed.
    pub sample: SampleSummary,
    /// Per exchange in the sample: `learned` (with the number of prices)
    /// or `default`.
    pub win_curves: BTreeMap<String, String>,
    /// The click and conversion rates per impression used.
    pub pctr: f64,
    /// P(conversion | impression).
    pub pcvr: f64,
    /// Per local day of the campaign, oldest first.
    pub days: Vec<Day>,
    /// The days added up.
    pub total: Day,
    /// Spend and wins at multiples of the bid (the budget capping each day).
    pub landscape: Vec<Point>,
}

/// The sample a forecast replays.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleSummary {
    /// Sampled requests read.
    pub requests: usize,
    /// The first and last request's time; absent for an empty sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The last request's time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// One day's forecast (or the total, with `date` "total").
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Day {
    /// The campaign's local date.
    pub date: String,
    /// Bid requests (scaled by 1/rate).
    pub requests: u64,
    /// Impressions the campaign's targeting matches.
    pub impressions: u64,
    /// Impressions it bids on.
    pub bids: u64,
    /// Expected wins.
    pub wins: f64,
    /// Expected spend, base currency, decimal string.
    pub spend: String,
    /// Expected clicks.
    pub clicks: f64,
    /// Expected conversions.
    pub conversions: f64,
    /// The budget capped the day's spend.
    pub capped: bool,
}

/// One point of the bid landscape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// The multiple of the bid.
    pub factor: f64,
    /// The bid at that multiple.
    pub max_bid: String,
    /// Impressions bid on.
    pub bids: u64,
    /// Expected wins.
    pub wins: f64,
    /// Expected spend.
    pub spend: String,
}

/// Why a forecast cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// The empty audience could not be opened (never expected).
    #[error("audience: {0}")]
    Audience(String),
}

/// One day's sums, before rounding: counts scaled by 1/rate.
#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    requests: f64,
    impressions: f64,
    bids: f64,
    wins: f64,
    /// Expected spend, micros.
    spend: f64,
}

/// Replays `samples` against the question's campaign in `market`.
pub fn forecast(question: &Question, samples: &[Sample], market: &Market) -> Result<Forecast, ForecastError> {
    let base = with_bid(question);
    let budget = question.daily_budget.unwrap_or(question.campaign.daily_budget);
    let budget = (budget.0 > 0).then_some(budget);
    let audience = AudienceStore::open(None).map_err(|e| ForecastError::Audience(e.to_string()))?;
    let per_factor: Vec<BTreeMap<Date, Sums>> = LANDSCAPE
        .iter()
        .map(|&permille| replay(question, &scaled(&base, permille), samples, market, &audience))
        .collect();
    let at_bid = &per_factor[2];
    let days: Vec<Day> = at_bid
        .iter()
        .map(|(date, sums)| day(date.to_string(), *sums, &base, question.rates, budget))
        .collect();
    let landscape = LANDSCAPE
        .iter()
        .zip(&per_factor)
        .map(|(&permille, by_day)| point(permille, by_day, &base, question.rates, budget))
        .collect();
    Ok(Forecast {
        campaign: base.id.clone(),
        pricing: base.pricing.as_str(),
        max_bid: base.max_bid.to_string(),
        daily_budget: budget.map(|b| b.to_string()),
        currency: question.settings.base_currency().as_str().to_string(),
        sample: summary(samples),
        win_curves: win_curves(samples, market),
        pctr: question.rates.pctr_ppm as f64 / 1e6,
        pcvr: question.rates.pcvr_ppb as f64 / 1e9,
        total: total(&days),
        days,
        landscape,
    })
}

/// The campaign with the bid asked for.
fn with_bid(question: &Question) -> Campaign {
    let mut campaign = question.campaign.clone();
    if let Some(bid) = question.max_bid {
        campaign.max_bid = bid;
        if campaign.pricing.is_value_based() {
            campaign.goal.max_cpm = bid;
        }
    }
    campaign
}

/// The campaign bidding `permille`/1000 of its bid: `max_bid` (and
/// `max_cpm`), and the goal that makes a value-based bid (`target_cpa`,
/// `cps_share`).
fn scaled(campaign: &Campaign, permille: i64) -> Campaign {
    let mut c = campaign.clone();
    c.max_bid = c.max_bid.mul_div_floor(permille, 1000);
    c.goal.max_cpm = c.goal.max_cpm.mul_div_floor(permille, 1000);
    c.goal.target_cpa = c.goal.target_cpa.mul_div_floor(permille, 1000);
    c.goal.cps_share = (c.goal.cps_share as i64 * permille / 1000).min(1_000_000) as u32;
    c
}

/// The dry run of selection for the forecast: notes the last rule that
/// stopped the campaign, counts nothing, never draws.
#[derive(Default)]
struct Forecasting {
    reason: Option<FilterReason>,
}

impl Mode for Forecasting {
    const DRY_RUN: bool = true;

    fn admit(&mut self, _c: &LiveCampaign, _local_hour: usize) -> bool {
        true
    }

    fn filtered(&mut self, _rank: u32, _c: &LiveCampaign, reason: FilterReason) {
        self.reason = Some(reason);
    }

    fn eligible(&mut self, _rank: u32, _price: Micros) {}

    fn ended(&mut self, _world: &World, _outcome: ImpOutcome<'_>) {}

    fn random(&mut self) -> u64 {
        0
    }

    fn assigned(&mut self, _rank: u32, _arm: usize) {}
}

/// The sample replayed against `campaign` alone: sums per local day.
fn replay(
    question: &Question,
    campaign: &Campaign,
    samples: &[Sample],
    market: &Market,
    audience: &AudienceStore,
) -> BTreeMap<Date, Sums> {
    let config = Config {
        settings: question.settings.clone(),
        campaigns: vec![campaign.clone()],
    };
    let world = World::build(config, &LiveStates::default());
    let frequency = FrequencyStore::default();
    let snapshot = audience.load();
    let audience = enrich::Audience {
        snapshot: &snapshot,
        overlay: &audience.overlay,
        matches: &audience.matches,
    };
    let mut days: BTreeMap<Date, Sums> = BTreeMap::new();
    for (n, sample) in samples.iter().enumerate() {
        let Ok(at) = Timestamp::from_microsecond(sample.at) else {
            continue;
        };
        let sums = days
            .entry(at.to_zoned_datetime(campaign.time_zone.clone()).date())
            .or_default();
        let replayed = Replayed {
            world: &world,
            frequency: &frequency,
            audience,
            market,
        };
        replayed.sample(n, sample, at, sums);
    }
    days
}

/// What one sample is replayed in.
struct Replayed<'r> {
    world: &'r World,
    frequency: &'r FrequencyStore,
    audience: enrich::Audience<'r>,
    market: &'r Market,
}

impl Replayed<'_> {
    /// Adds sample `n` (at `at`) to its day's sums.
    fn sample(&self, n: usize, sample: &Sample, at: Timestamp, sums: &mut Sums) {
        let world = self.world;
        let weight = 1e6 / sample.rate_ppm.max(1) as f64;
        sums.requests += weight;
        if sample.screened.is_some() {
            return;
        }
        let Ok(body) = serde_json::to_vec(&sample.request) else {
            return;
        };
        let mut repaired = String::new();
        let Ok(decoded) = decode::decode(&body, &mut repaired) else {
            return;
        };
        let request = decoded.request;
        let exchange_id = world
            .settings
            .exchange_id(&sample.exchange)
            .unwrap_or(world.default_exchange);
        let Ok(mut ctx) = enrich::enrich(&request, world, exchange_id, self.audience, at) else {
            return;
        };
        if sample.consent {
            ctx.restriction = None;
            ctx.facts.segments = sample.segments.iter().map(|k| SegmentKey(*k)).collect();
            ctx.user_key = sample.user.then(|| xxhash_rust::xxh3::xxh3_64(&n.to_le_bytes()));
        } else {
            ctx.facts.segments.clear();
            ctx.user_key = None;
        }
        let first_price = ctx.auction == AuctionType::FIRST_PRICE;
        let mut scratch = select::Scratch::default();
        for imp in request.imp.iter().take(world.settings.max_imps_per_request) {
            let mut mode = Forecasting::default();
            let price = match select::select_with(&ctx, world, imp, self.frequency, &mut scratch, &mut mode) {
                Ok(choice) => choice.price,
                Err(_) => {
                    if mode.reason == Some(FilterReason::Floor) {
                        sums.impressions += weight;
                    }
                    continue;
                }
            };
            sums.impressions += weight;
            sums.bids += weight;
            let floor = floor_in_base(&world.settings, imp);
            let win = self.market.win(&sample.exchange, price, floor, first_price);
            sums.wins += weight * win.probability;
            sums.spend += weight * win.probability * win.price.0 as f64 / 1000.0;
        }
    }
}

/// The impression's floor in the base currency, as selection reads it
/// (no currency: USD; zero when unusable — selection refused it then).
fn floor_in_base(settings: &Settings, imp: &crate::openrtb::Imp) -> Micros {
    let Some(crate::openrtb::Floor::Amount(amount)) = imp.bidfloor else {
        return Micros::ZERO;
    };
    let currency = imp
        .bidfloorcur
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map_or(Some(crate::money::Currency::USD), crate::money::Currency::parse);
    Micros::from_wire(amount)
        .zip(currency)
        .and_then(|(amount, currency)| settings.fx.floor_to_base(amount, currency))
        .unwrap_or(Micros::ZERO)
}

/// A day's figures: clicks and conversions from wins, CPC spend per
/// click, the budget's cap.
fn day(date: String, sums: Sums, campaign: &Campaign, rates: Rates, budget: Option<Micros>) -> Day {
    let (wins, spend, capped) = capped(sums, campaign, rates, budget);
    Day {
        date,
        requests: sums.requests.round() as u64,
        impressions: sums.impressions.round() as u64,
        bids: sums.bids.round() as u64,
        wins: round2(wins),
        spend: Micros(spend.round() as i64).to_string(),
        clicks: round2(wins * rates.pctr_ppm as f64 / 1e6),
        conversions: round2(wins * rates.pcvr_ppb as f64 / 1e9),
        capped,
    }
}

/// Wins and spend (micros) once the budget caps the day.
fn capped(sums: Sums, campaign: &Campaign, rates: Rates, budget: Option<Micros>) -> (f64, f64, bool) {
    let spend = match campaign.pricing {
        Pricing::Cpc => sums.wins * rates.pctr_ppm as f64 / 1e6 * campaign.max_bid.0 as f64,
        _ => sums.spend,
    };
    match budget {
        Some(budget) if spend > budget.0 as f64 => {
            let share = budget.0 as f64 / spend;
            (sums.wins * share, budget.0 as f64, true)
        }
        _ => (sums.wins, spend, false),
    }
}

fn point(permille: i64, by_day: &BTreeMap<Date, Sums>, base: &Campaign, rates: Rates, budget: Option<Micros>) -> Point {
    let campaign = scaled(base, permille);
    let (mut bids, mut wins, mut spend) = (0.0, 0.0, 0.0);
    for sums in by_day.values() {
        let (w, s, _) = capped(*sums, &campaign, rates, budget);
        (bids, wins, spend) = (bids + sums.bids, wins + w, spend + s);
    }
    Point {
        factor: permille as f64 / 1000.0,
        max_bid: campaign.max_bid.to_string(),
        bids: bids.round() as u64,
        wins: round2(wins),
        spend: Micros(spend.round() as i64).to_string(),
    }
}

fn total(days: &[Day]) -> Day {
    let spend = days
        .iter()
        .filter_map(|d| Micros::parse_decimal(&d.spend).ok())
        .fold(Micros::ZERO, Micros::saturating_add);
    Day {
        date: "total".into(),
        requests: days.iter().map(|d| d.requests).sum(),
        impressions: days.iter().map(|d| d.impressions).sum(),
        bids: days.iter().map(|d| d.bids).sum(),
        wins: round2(days.iter().map(|d| d.wins).sum()),
        spend: spend.to_string(),
        clicks: round2(days.iter().map(|d| d.clicks).sum()),
        conversions: round2(days.iter().map(|d| d.conversions).sum()),
        capped: days.iter().any(|d| d.capped),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn summary(samples: &[Sample]) -> SampleSummary {
    let time = |at: Option<i64>| {
        at.and_then(|at| Timestamp::from_microsecond(at).ok())
            .map(|t| t.to_string())
    };
    SampleSummary {
        requests: samples.len(),
        from: time(samples.iter().map(|s| s.at).min()),
        to: time(samples.iter().map(|s| s.at).max()),
    }
}

fn win_curves(samples: &[Sample], market: &Market) -> BTreeMap<String, String> {
    samples
        .iter()
        .map(|s| {
            let source = match market.observations(&s.exchange) {
                Some(n) => format!("learned from {n} prices"),
                None => "default".to_string(),
            };
            (s.exchange.clone(), source)
        })
        .collect()
}
