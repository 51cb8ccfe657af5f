//! The validated campaign model: what an advertiser configured.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::money::Micros;
use crate::openrtb::MediaType;

use super::targeting::Targeting;

/// Whether a campaign may bid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Bids when its other rules allow.
    Active,
    /// Never bids; left out of the selection index.
    Paused,
    /// Retired (`DELETE` through the admin API): never bids, stays in
    /// reports and in its file.
    Archived,
}

impl Status {
    /// Its name in config and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Paused => "paused",
            Status::Archived => "archived",
        }
    }
}

/// What the advertiser pays for, and the goal its bids aim at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pricing {
    /// Pays per thousand impressions; bids its max CPM at most.
    Cpm,
    /// Pays per click; bids `max_cpc × pCTR × 1000` as a CPM.
    Cpc,
    /// Aims at a cost per conversion (`target_cpa`): bids
    /// `target_cpa × pCVR × 1000` as a CPM, capped by `max_cpm`, and pays
    /// clearing prices per impression.
    Cpa,
    /// Aims at a share of sales (`cps_share`): bids
    /// `cps_share × order value × pCVR × 1000` as a CPM, capped by
    /// `max_cpm`, and pays clearing prices per impression.
    Cps,
}

impl Pricing {
    /// `cpm`, `cpc`, `cpa` or `cps`, as in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Pricing::Cpm => "cpm",
            Pricing::Cpc => "cpc",
            Pricing::Cpa => "cpa",
            Pricing::Cps => "cps",
        }
    }

    /// True when the advertiser pays per click; every other pricing pays
    /// clearing prices per impression.
    pub fn pays_per_click(self) -> bool {
        self == Pricing::Cpc
    }

    /// True when the bid is a predicted value (clicks or conversions), not
    /// a fixed CPM.
    pub fn is_value_based(self) -> bool {
        self != Pricing::Cpm
    }
}

/// Parts per billion, for rates as small as a conversion per impression.
pub type Ppb = u32;

/// A value-based campaign's goal: what one predicted response is worth, and
/// the rates it starts from before anything is learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Goal {
    /// The most a value-based campaign bids per thousand impressions,
    /// whatever the prediction (`max_cpm`); for CPM campaigns, `max_bid`.
    pub max_cpm: Micros,
    /// CPA campaigns: the cost per conversion aimed at (`target_cpa`).
    pub target_cpa: Micros,
    /// CPS campaigns: the share of the order value paid for a sale
    /// (`cps_share`), ppm.
    pub cps_share: Ppm,
    /// Prior P(conversion | impression) (`pcvr_prior`), ppb.
    pub pcvr_prior: Ppb,
    /// Prior order value of a conversion (`order_value_prior`), CPS only.
    pub order_value_prior: Micros,
}

/// How long after a touch a campaign's conversions are credited to it
/// (`click_window`, `view_window`; see `tracking::attribution`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttributionWindows {
    /// How long after a click its conversions are credited, seconds.
    pub click_secs: i64,
    /// How long after an impression a conversion without a click is
    /// credited to it, seconds (0: never).
    pub view_secs: i64,
}

impl Default for AttributionWindows {
    /// Seven days after a click, one day after a view.
    fn default() -> Self {
        AttributionWindows {
            click_secs: 7 * 86_400,
            view_secs: 86_400,
        }
    }
}

/// Longest attribution window a campaign may set.
pub const MAX_WINDOW_SECS: i64 = 90 * 86_400;

/// Reads a window: a whole number of days (`"7d"`), hours (`"12h"`) or
/// minutes (`"30m"`), or `"0"`; at most 90 days.
pub fn parse_window(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(0);
    }
    let malformed = || format!("{text:?} is not a window like \"7d\", \"12h\", \"30m\" or \"0\"");
    let (number, unit_secs) = if let Some(n) = text.strip_suffix('d') {
        (n, 86_400)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60)
    } else {
        return Err(malformed());
    };
    let number: i64 = number.parse().map_err(|_| malformed())?;
    let secs = number.saturating_mul(unit_secs);
    if !(0..=MAX_WINDOW_SECS).contains(&secs) {
        return Err("must be between 0 and 90 days".into());
    }
    Ok(secs)
}

/// Clamps of a per-impression prediction around the campaign's own rate:
/// a miscalibrated model moves a bid at most this many times up or down
/// (and never past `max_cpm`).
pub const PREDICTION_CLAMP: u64 = 10;

/// Absolute ceilings of a per-impression prediction: P(click) at most 20 %,
/// P(conversion | impression) at most 5 %.
pub const PCTR_CEILING_PPB: u64 = 200_000_000;
/// See [`PCTR_CEILING_PPB`].
pub const PCVR_CEILING_PPB: u64 = 50_000_000;

/// How a campaign spends its daily budget over the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PacingMode {
    /// Spread the daily budget over the day, following the traffic curve.
    Even,
    /// Bid whenever possible until the budget is spent.
    Asap,
}

/// Parts per million, for rates such as a predicted click-through rate.
pub type Ppm = u32;

/// A validated campaign, as configured (with admin overrides applied).
#[derive(Clone, Debug)]
pub struct Campaign {
    /// Campaign id, unique in the config; key of its live state and ledger records.
    pub id: String,
    /// Advertiser name, for reports and the admin API.
    pub advertiser: String,
    /// Advertiser domains, sent as `adomain` and checked against `badv`.
    pub adomain: Vec<String>,
    /// IAB content categories of the campaign's ads.
    pub cat: Vec<String>,
    /// The advertised app's store id, checked against `bapp`.
    pub bundle: Option<String>,
    /// Buyer seat; `None` means the exchange's seat.
    pub seat: Option<String>,
    /// Paused campaigns never bid (set in config or through the admin API).
    pub status: Status,
    /// What the advertiser pays for; decides how `max_bid` reads.
    pub pricing: Pricing,
    /// Max CPM (CPM campaigns) or max CPC (CPC campaigns), base currency;
    /// for CPA and CPS campaigns, their `max_cpm`.
    pub max_bid: Micros,
    /// Prior predicted click-through rate (CPC campaigns).
    pub pctr_prior: Ppm,
    /// The value-based goal: `max_cpm`, target CPA, CPS share, conversion
    /// priors.
    pub goal: Goal,
    /// How long after a click or a view conversions are credited to it.
    pub attribution: AttributionWindows,
    /// Most the campaign spends per local day, base currency; zero when it
    /// is derived from the total budget (see [`Campaign::day_budget`]).
    pub daily_budget: Micros,
    /// Lifetime budget, base currency, across every day; `None` means no limit.
    pub total_budget: Option<Micros>,
    /// Set when the config gives no daily budget (only allowed with a total
    /// budget and an end date): the flight's first and last local days
    /// (days since 1970-01-01 in the campaign's zone; the first is
    /// `i64::MIN` without a start), over which the total is spread.
    pub derived_budget_days: Option<(i64, i64)>,
    /// How the daily budget is spread over the day.
    pub pacing: PacingMode,
    /// IANA name of the campaign's time zone (e.g. `Europe/Paris`), as configured.
    pub time_zone_name: String,
    /// The campaign's time zone: its days (budget) and hours (day-parting) are local to it.
    pub time_zone: TimeZone,
    /// Flight dates: the campaign bids only in `[start, end)`.
    pub start: Option<Timestamp>,
    /// End of the flight, exclusive; `None` means open-ended (and a `None` start, already started).
    pub end: Option<Timestamp>,
    /// Exchanges the campaign buys on; empty means all.
    pub exchanges: Vec<String>,
    /// Who and where the campaign may bid on.
    pub targeting: Targeting,
    /// The ads; at least one.
    pub creatives: Vec<Creative>,
    /// How it chooses among the creatives that fit.
    pub rotation: super::experiment::Rotation,
    /// Its experiment, if it runs one.
    pub experiment: Option<Box<super::experiment::Experiment>>,
    /// Within one impression, an eligible campaign of the same advertiser
    /// with a higher priority goes first (default 0).
    pub priority: i32,
    /// Responses per hour or day past which the campaign stops bidding.
    pub capacity: crate::settings::Capacity,
}

/// The stable key of the campaign with id `id` (see [`Campaign::key`]).
pub fn key_of(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

impl Campaign {
    /// The campaign's stable key: a hash of its id (frequency caps, live
    /// state).
    pub fn key(&self) -> u64 {
        key_of(&self.id)
    }
    /// The most this campaign will pay for one thousand impressions, before
    /// shading, at its prior rates: the static value used to rank campaigns.
    pub fn value_cpm(&self) -> Micros {
        self.value_at(
            self.pctr_prior as u64 * 1000,
            self.goal.pcvr_prior as u64,
            self.goal.order_value_prior,
        )
    }

    /// The value of one thousand impressions (CPM, base currency) with
    /// P(click) `pctr` and P(conversion | impression) `pcvr` (ppb), and a
    /// conversion's order value `order_value` (CPS): `max_cpc × pCTR`,
    /// `target_cpa × pCVR` or `cps_share × order value × pCVR`, times
    /// 1000, capped by `max_cpm`. Integer micros, rounded down.
    pub fn value_at(&self, pctr: u64, pcvr: u64, order_value: Micros) -> Micros {
        // amount × ppb / 10^9 per impression, × 1000 per mille.
        let per_mille = |amount: Micros, ppb: u64| amount.mul_div_floor(ppb.min(1_000_000_000) as i64, 1_000_000);
        let value = match self.pricing {
            Pricing::Cpm => return self.max_bid,
            Pricing::Cpc => per_mille(self.max_bid, pctr),
            Pricing::Cpa => per_mille(self.goal.target_cpa, pcvr),
            Pricing::Cps => per_mille(order_value.mul_div_floor(self.goal.cps_share as i64, 1_000_000), pcvr),
        };
        value.min(self.goal.max_cpm)
    }

    /// True when `now` is inside the flight dates.
    pub fn in_flight(&self, now: Timestamp) -> bool {
        self.start.is_none_or(|start| now >= start) && self.end.is_none_or(|end| now < end)
    }

    /// The rule that sets what the campaign may spend on each local day.
    #[inline]
    pub fn day_budget(&self) -> DayBudget {
        DayBudget {
            daily: self.daily_budget,
            total: self.total_budget,
            derived_days: self.derived_budget_days,
        }
    }
}

/// What a campaign may spend on one local day: its daily budget, capped by
/// what is left of its lifetime budget; or, when it has no daily budget,
/// what is left of the lifetime budget spread evenly over the flight days
/// left (today included). Integer micros, rounded down: what rounding holds
/// back carries to later days, and the last day gets all that is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayBudget {
    /// The configured daily budget (unused when derived).
    pub daily: Micros,
    /// The lifetime budget, if any.
    pub total: Option<Micros>,
    /// The flight's first and last local days when the daily budget is
    /// derived from the total.
    pub derived_days: Option<(i64, i64)>,
}

impl DayBudget {
    /// The budget of local day `today`, given the campaign's spend on the
    /// days before it.
    pub fn on(&self, today: i64, spent_before: Micros) -> Micros {
        let Some(total) = self.total else {
            return self.daily;
        };
        let left = total.saturating_sub(spent_before).max(Micros::ZERO);
        match self.derived_days {
            Some((first, last)) => {
                let days_left = last.saturating_sub(today.max(first)).saturating_add(1).max(1);
                Micros(left.0 / days_left)
            }
            None => self.daily.min(left),
        }
    }
}

/// What a creative shows.
#[derive(Clone, Debug)]
pub enum Markup {
    /// Ready-made markup (HTML for banners, VAST for video/audio).
    Inline(String),
    /// An image; the bidder writes the HTML around it.
    Image {
        /// Address of the image file.
        url: String,
    },
    /// A native ad's assets; the bidder writes the native response for
    /// each request's assets ([`super::native`]).
    Native(super::native::NativeAd),
}

/// One ad of a campaign.
#[derive(Clone, Debug)]
pub struct Creative {
    /// Creative id, sent as `adid` and `crid`; names the creative in tracking URLs and learned CTRs.
    pub id: String,
    /// Banner, video, audio or native.
    pub media: MediaType,
    /// Width, pixels (banner: must match a slot size exactly).
    pub w: Option<i64>,
    /// Height, pixels.
    pub h: Option<i64>,
    /// What the creative shows.
    pub markup: Markup,
    /// Where a click lands (UTM parameters are appended at click time).
    pub landing_url: String,
    /// Video/audio MIME type.
    pub mime: Option<String>,
    /// Video/audio duration in seconds.
    pub duration: Option<i64>,
    /// AdCOM creative attributes, checked against `battr`.
    pub attr: Vec<i32>,
    /// A paused creative is never chosen; its earlier bids still track.
    pub paused: bool,
    /// What a video or audio creative needs of its player (VAST version,
    /// linearity, APIs, skippability, placement, start delay).
    pub player: super::player::PlayerFit,
    /// `Some(true)`: only rewarded slots (`imp.rwdd`); `Some(false)`: never
    /// rewarded ones; `None`: either.
    pub rewarded: Option<bool>,
    /// Its share under `weighted` rotation, relative to the others' (1 by
    /// default).
    pub weight: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daily_budget_is_capped_by_what_is_left_of_the_total() {
        let rule = DayBudget {
            daily: Micros(100),
            total: Some(Micros(250)),
            derived_days: None,
        };
        assert_eq!(rule.on(7, Micros(0)), Micros(100));
        assert_eq!(rule.on(9, Micros(200)), Micros(50));
        assert_eq!(
            rule.on(9, Micros(300)),
            Micros::ZERO,
            "overspent: nothing, never negative"
        );
        let no_total = DayBudget { total: None, ..rule };
        assert_eq!(no_total.on(9, Micros(1_000)), Micros(100));
    }

    #[test]
    fn a_derived_daily_budget_spreads_what_is_left_over_the_days_left() {
        // A flight of days 10..=14 with 1000 to spend.
        let rule = DayBudget {
            daily: Micros::ZERO,
            total: Some(Micros(1_000)),
            derived_days: Some((10, 14)),
        };
        assert_eq!(rule.on(8, Micros(0)), Micros(200), "before the start: the whole flight");
        assert_eq!(rule.on(10, Micros(0)), Micros(200));
        assert_eq!(rule.on(11, Micros(150)), Micros(212), "850 over 4 days, rounded down");
        assert_eq!(
            rule.on(14, Micros(999)),
            Micros(1),
            "the last day gets all that is left"
        );
        assert_eq!(
            rule.on(15, Micros(990)),
            Micros(10),
            "after the end (the flight stops bidding)"
        );
        assert_eq!(rule.on(12, Micros(1_200)), Micros::ZERO);
    }
}
