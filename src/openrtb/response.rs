//! The bid response, as Bullseye writes it.

use serde::Serialize;

/// Markup type of a bid (`bid.mtype`, OpenRTB 2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    /// Banner (HTML or image) ad.
    Banner,
    /// Video ad (VAST).
    Video,
    /// Audio ad (VAST/DAAST).
    Audio,
    /// Native ad (native response JSON).
    Native,
}

impl MediaType {
    /// The `mtype` code: 1 banner, 2 video, 3 audio, 4 native.
    pub fn mtype(self) -> u8 {
        match self {
            MediaType::Banner => 1,
            MediaType::Video => 2,
            MediaType::Audio => 3,
            MediaType::Native => 4,
        }
    }

    /// Lower-case name, as in config and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Banner => "banner",
            MediaType::Video => "video",
            MediaType::Audio => "audio",
            MediaType::Native => "native",
        }
    }
}

/// The bid response: one seat bid per buyer seat.
#[derive(Debug, Serialize)]
pub struct BidResponse<'a> {
    /// The bid request's id.
    pub id: &'a str,
    /// Bids grouped by buyer seat.
    pub seatbid: Vec<SeatBid<'a>>,
    /// Response id, random per response.
    pub bidid: String,
    /// Currency of every price in the response (ISO 4217).
    pub cur: &'a str,
}

/// The bids of one buyer seat.
#[derive(Debug, Serialize)]
pub struct SeatBid<'a> {
    /// At most one bid per impression.
    pub bid: Vec<Bid<'a>>,
    /// Buyer seat id; `None` leaves it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat: Option<&'a str>,
}

/// One bid on one impression.
#[derive(Debug, Serialize)]
pub struct Bid<'a> {
    /// Bid id, random and unguessable; also in the signed tracking URLs.
    pub id: String,
    /// Id of the impression bid on.
    pub impid: &'a str,
    /// CPM in the response currency.
    pub price: f64,
    /// Ad id (the creative id).
    pub adid: &'a str,
    /// Campaign id.
    pub cid: &'a str,
    /// Creative id.
    pub crid: &'a str,
    /// Advertiser domains, for the exchange's blocklists.
    pub adomain: &'a [String],
    /// IAB content categories of the creative; left out when empty.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub cat: &'a [String],
    /// Markup type: 1 banner, 2 video, 3 audio, 4 native ([`MediaType::mtype`]).
    pub mtype: u8,
    /// Creative width, pixels (banner and video only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<i64>,
    /// Creative height, pixels (banner and video only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h: Option<i64>,
    /// Deal id when the bid is for a private-marketplace deal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dealid: Option<&'a str>,
    /// Video/audio: the creative's duration, seconds (2.6; pods need it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dur: Option<i64>,
    /// Video/audio: the creative's VAST/DAAST protocol (2.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<i32>,
    /// The markup as a ready JSON string ([`crate::campaigns::markup`]).
    pub adm: Box<serde_json::value::RawValue>,
    /// Win notice URL, signed.
    pub nurl: String,
    /// Billing notice URL, signed; carries `${AUCTION_PRICE}`.
    pub burl: String,
    /// Loss notice URL, signed; carries `${AUCTION_LOSS}` and
    /// `${AUCTION_MIN_TO_WIN}`. Only for exchanges that send loss notices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lurl: Option<String>,
}
