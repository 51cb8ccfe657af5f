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

/// What the advertiser pays for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pricing {
    /// Pays per thousand impressions; bids its max CPM at most.
    Cpm,
    /// Pays per click; bids `max_cpc × pCTR × 1000` as a CPM.
    Cpc,
}

impl Pricing {
    /// `cpm` or `cpc`, as in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Pricing::Cpm => "cpm",
            Pricing::Cpc => "cpc",
        }
    }
}

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
    /// Max CPM (CPM campaigns) or max CPC (CPC campaigns), base currency.
    pub max_bid: Micros,
    /// Prior predicted click-through rate (CPC campaigns).
    pub pctr_prior: Ppm,
    /// Most the campaign spends per local day, base currency.
    pub daily_budget: Micros,
    /// Lifetime budget, base currency; `None` means no limit. Validated but not enforced by the bid path.
    pub total_budget: Option<Micros>,
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
    /// Within one impression, an eligible campaign of the same advertiser
    /// with a higher priority goes first (default 0).
    pub priority: i32,
    /// Responses per hour or day past which the campaign stops bidding.
    pub capacity: crate::settings::Capacity,
}

impl Campaign {
    /// The campaign's stable key: a hash of its id (frequency caps, live
    /// state).
    pub fn key(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(self.id.as_bytes())
    }
    /// The most this campaign will pay for one thousand impressions, before
    /// shading: the static value used to rank campaigns.
    pub fn value_cpm(&self) -> Micros {
        match self.pricing {
            Pricing::Cpm => self.max_bid,
            // max_cpc × pctr × 1000 with pctr in ppm: max_cpc × ppm / 1000.
            Pricing::Cpc => self.max_bid.mul_div_floor(self.pctr_prior as i64, 1000),
        }
    }

    /// True when `now` is inside the flight dates.
    pub fn in_flight(&self, now: Timestamp) -> bool {
        self.start.is_none_or(|start| now >= start) && self.end.is_none_or(|end| now < end)
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
}
