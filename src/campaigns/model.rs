//! The validated campaign model: what an advertiser configured.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::money::Micros;
use crate::openrtb::MediaType;

use super::targeting::Targeting;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Paused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pricing {
    /// Pays per thousand impressions; bids its max CPM at most.
    Cpm,
    /// Pays per click; bids `max_cpc × pCTR × 1000` as a CPM.
    Cpc,
}

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

#[derive(Clone, Debug)]
pub struct Campaign {
    pub id: String,
    pub advertiser: String,
    pub adomain: Vec<String>,
    /// IAB content categories of the campaign's ads.
    pub cat: Vec<String>,
    /// The advertised app's store id, checked against `bapp`.
    pub bundle: Option<String>,
    /// Buyer seat; `None` means the exchange's seat.
    pub seat: Option<String>,
    pub status: Status,
    pub pricing: Pricing,
    /// Max CPM (CPM campaigns) or max CPC (CPC campaigns), base currency.
    pub max_bid: Micros,
    /// Prior predicted click-through rate (CPC campaigns).
    pub pctr_prior: Ppm,
    pub daily_budget: Micros,
    pub total_budget: Option<Micros>,
    pub pacing: PacingMode,
    pub time_zone_name: String,
    pub time_zone: TimeZone,
    /// Flight dates: the campaign bids only in `[start, end)`.
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// Exchanges the campaign buys on; empty means all.
    pub exchanges: Vec<String>,
    pub targeting: Targeting,
    pub creatives: Vec<Creative>,
}

impl Campaign {
    /// The most this campaign will pay for one thousand impressions, before
    /// shading: the static value used to rank campaigns.
    pub fn value_cpm(&self) -> Micros {
        match self.pricing {
            Pricing::Cpm => self.max_bid,
            // max_cpc × pctr × 1000 with pctr in ppm: max_cpc × ppm / 1000.
            Pricing::Cpc => self.max_bid.mul_div_floor(self.pctr_prior as i64, 1000),
        }
    }

    pub fn in_flight(&self, now: Timestamp) -> bool {
        self.start.is_none_or(|start| now >= start) && self.end.is_none_or(|end| now < end)
    }
}

/// What a creative shows.
#[derive(Clone, Debug)]
pub enum Markup {
    /// Ready-made markup (HTML for banners, VAST for video/audio, native JSON).
    Inline(String),
    /// An image; the bidder writes the HTML around it.
    Image { url: String },
}

#[derive(Clone, Debug)]
pub struct Creative {
    pub id: String,
    pub media: MediaType,
    pub w: Option<i64>,
    pub h: Option<i64>,
    pub markup: Markup,
    /// Where a click lands (UTM parameters are appended at click time).
    pub landing_url: String,
    /// Video/audio MIME type.
    pub mime: Option<String>,
    /// Video/audio duration in seconds.
    pub duration: Option<i64>,
    /// AdCOM creative attributes, checked against `battr`.
    pub attr: Vec<i32>,
}
