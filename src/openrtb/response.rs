//! The bid response, as Bullseye writes it.

use serde::Serialize;

/// Markup type of a bid (`bid.mtype`, OpenRTB 2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    Banner,
    Video,
    Audio,
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

    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Banner => "banner",
            MediaType::Video => "video",
            MediaType::Audio => "audio",
            MediaType::Native => "native",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BidResponse<'a> {
    pub id: &'a str,
    pub seatbid: Vec<SeatBid<'a>>,
    pub bidid: String,
    pub cur: &'a str,
}

#[derive(Debug, Serialize)]
pub struct SeatBid<'a> {
    pub bid: Vec<Bid<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct Bid<'a> {
    pub id: String,
    pub impid: &'a str,
    /// CPM in the response currency.
    pub price: f64,
    pub adid: &'a str,
    pub cid: &'a str,
    pub crid: &'a str,
    pub adomain: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub cat: &'a [String],
    pub mtype: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dealid: Option<&'a str>,
    /// The markup as a ready JSON string ([`crate::campaigns::markup`]).
    pub adm: Box<serde_json::value::RawValue>,
    pub nurl: String,
    pub burl: String,
}
