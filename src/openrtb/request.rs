//! The bid request: only what the bidder reads.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::text::{Flag, Floor, Text};

/// Declares an open integer enumeration: any value parses, known ones are named.
macro_rules! open_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$cdoc:meta])* $konst:ident = $value:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i32);
        impl $name {
            $($(#[$cdoc])* pub const $konst: $name = $name($value);)*
        }
    };
}

open_enum!(
    /// Auction type (`at`): 1 first price, 2 second price plus; exchange values ≥ 500.
    AuctionType { FIRST_PRICE = 1, SECOND_PRICE = 2 }
);
open_enum!(
    /// AdCOM device type (`device.devicetype`).
    DeviceType { MOBILE_TABLET = 1, PERSONAL_COMPUTER = 2, CONNECTED_TV = 3, PHONE = 4, TABLET = 5, CONNECTED_DEVICE = 6, SET_TOP_BOX = 7, OOH = 8 }
);
open_enum!(
    /// AdCOM connection type (`device.connectiontype`).
    ConnectionType { ETHERNET = 1, WIFI = 2, CELLULAR_UNKNOWN = 3, CELL_2G = 4, CELL_3G = 5, CELL_4G = 6, CELL_5G = 7 }
);
open_enum!(
    /// AdCOM creative attribute (`battr`).
    CreativeAttribute {}
);
open_enum!(
    /// Video/audio protocol (`protocols`).
    Protocol {}
);

#[derive(Debug, Default, Deserialize)]
pub struct BidRequest<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub imp: Vec<Imp<'a>>,
    #[serde(borrow)]
    pub site: Option<Site<'a>>,
    #[serde(borrow)]
    pub app: Option<App<'a>>,
    #[serde(borrow)]
    pub dooh: Option<Dooh<'a>>,
    #[serde(borrow)]
    pub device: Option<Device<'a>>,
    #[serde(borrow)]
    pub user: Option<User<'a>>,
    #[serde(default)]
    pub test: Flag,
    pub at: Option<AuctionType>,
    pub tmax: Option<i64>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub wseat: Vec<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub bseat: Vec<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub cur: Vec<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub bcat: Vec<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub badv: Vec<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub bapp: Vec<Text<'a>>,
    #[serde(borrow)]
    pub regs: Option<Regs<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Imp<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub banner: Option<Banner<'a>>,
    #[serde(borrow)]
    pub video: Option<Video<'a>>,
    #[serde(borrow)]
    pub audio: Option<Audio<'a>>,
    #[serde(borrow)]
    pub native: Option<Native<'a>>,
    #[serde(borrow)]
    pub pmp: Option<Pmp<'a>>,
    pub bidfloor: Option<Floor>,
    #[serde(borrow)]
    pub bidfloorcur: Option<Text<'a>>,
    #[serde(default)]
    pub instl: Flag,
    #[serde(borrow)]
    pub tagid: Option<Text<'a>>,
}

impl Imp<'_> {
    pub fn has_media(&self) -> bool {
        self.banner.is_some() || self.video.is_some() || self.audio.is_some() || self.native.is_some()
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Format {
    pub w: Option<i64>,
    pub h: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Banner<'a> {
    pub w: Option<i64>,
    pub h: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub format: Vec<Format>,
    #[serde(default, deserialize_with = "nullable")]
    pub battr: Vec<CreativeAttribute>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub mimes: Vec<Text<'a>>,
    pub pos: Option<i32>,
}

impl Banner<'_> {
    /// Every size the slot accepts: `format` first, then `w`×`h`.
    pub fn sizes(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        let fixed = match (self.w, self.h) {
            (Some(w), Some(h)) => Some((w, h)),
            _ => None,
        };
        self.format.iter().filter_map(|f| Some((f.w?, f.h?))).chain(fixed)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Video<'a> {
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub mimes: Vec<Text<'a>>,
    pub minduration: Option<i64>,
    pub maxduration: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub protocols: Vec<Protocol>,
    pub w: Option<i64>,
    pub h: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub battr: Vec<CreativeAttribute>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Audio<'a> {
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub mimes: Vec<Text<'a>>,
    pub minduration: Option<i64>,
    pub maxduration: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub battr: Vec<CreativeAttribute>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Native<'a> {
    /// The native request, a JSON document inside a string; not decoded.
    #[serde(borrow)]
    pub request: Option<Text<'a>>,
    #[serde(borrow)]
    pub ver: Option<Text<'a>>,
    #[serde(default, deserialize_with = "nullable")]
    pub battr: Vec<CreativeAttribute>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Pmp<'a> {
    #[serde(default)]
    pub private_auction: Flag,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub deals: Vec<Deal<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Deal<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    pub bidfloor: Option<Floor>,
    #[serde(borrow)]
    pub bidfloorcur: Option<Text<'a>>,
    pub at: Option<AuctionType>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub wseat: Vec<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub wadomain: Vec<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Publisher<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub domain: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Site<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub domain: Option<Text<'a>>,
    #[serde(borrow)]
    pub page: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub cat: Vec<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub sectioncat: Vec<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub pagecat: Vec<Text<'a>>,
    #[serde(borrow)]
    pub publisher: Option<Publisher<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct App<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub bundle: Option<Text<'a>>,
    #[serde(borrow)]
    pub domain: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub cat: Vec<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub sectioncat: Vec<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub pagecat: Vec<Text<'a>>,
    #[serde(borrow)]
    pub publisher: Option<Publisher<'a>>,
}

/// Digital out-of-home inventory (2.6).
#[derive(Debug, Default, Deserialize)]
pub struct Dooh<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub domain: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Geo<'a> {
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    #[serde(borrow)]
    pub country: Option<Text<'a>>,
    #[serde(borrow)]
    pub region: Option<Text<'a>>,
    #[serde(borrow)]
    pub city: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Device<'a> {
    #[serde(borrow)]
    pub ua: Option<Text<'a>>,
    #[serde(borrow)]
    pub ip: Option<Text<'a>>,
    #[serde(borrow)]
    pub ipv6: Option<Text<'a>>,
    pub devicetype: Option<DeviceType>,
    #[serde(borrow)]
    pub os: Option<Text<'a>>,
    pub connectiontype: Option<ConnectionType>,
    #[serde(borrow)]
    pub ifa: Option<Text<'a>>,
    #[serde(default)]
    pub lmt: Flag,
    #[serde(default)]
    pub dnt: Flag,
    #[serde(borrow)]
    pub geo: Option<Geo<'a>>,
    /// Structured user agent (2.6).
    #[serde(borrow)]
    pub sua: Option<StructuredUserAgent<'a>>,
}

/// `device.sua`: only the browser brands are read (automation screening).
#[derive(Debug, Default, Deserialize)]
pub struct StructuredUserAgent<'a> {
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub browsers: Vec<BrandVersion<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct BrandVersion<'a> {
    #[serde(borrow)]
    pub brand: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct User<'a> {
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub buyeruid: Option<Text<'a>>,
    pub yob: Option<i64>,
    #[serde(borrow)]
    pub gender: Option<Text<'a>>,
    /// TCF consent string (2.6 placement).
    #[serde(borrow)]
    pub consent: Option<Text<'a>>,
    #[serde(borrow)]
    pub geo: Option<Geo<'a>>,
    #[serde(borrow)]
    pub ext: Option<&'a RawValue>,
}

/// `user.ext` keys the bidder reads (2.5 placement of `consent`).
#[derive(Debug, Default, Deserialize)]
pub struct UserExt<'a> {
    #[serde(borrow)]
    pub consent: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Regs<'a> {
    #[serde(default)]
    pub coppa: Flag,
    pub gdpr: Option<Flag>,
    #[serde(borrow)]
    pub us_privacy: Option<Text<'a>>,
    #[serde(borrow)]
    pub gpp: Option<Text<'a>>,
    pub gpp_sid: Option<Vec<i32>>,
    #[serde(borrow)]
    pub ext: Option<&'a RawValue>,
}

/// `regs.ext` keys the bidder reads (2.5 placements).
#[derive(Debug, Default, Deserialize)]
pub struct RegsExt<'a> {
    pub gdpr: Option<Flag>,
    #[serde(borrow)]
    pub us_privacy: Option<Text<'a>>,
    #[serde(borrow)]
    pub gpp: Option<Text<'a>>,
    pub gpp_sid: Option<Vec<i32>>,
}

/// A list that may be sent as `null`: read as empty.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Decodes an `ext` object leniently: an `ext` the bidder cannot read is
/// treated as absent, never as a bad request.
pub fn decode_ext<'a, T: Deserialize<'a> + Default>(raw: Option<&'a RawValue>) -> T {
    raw.and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or_default()
}
