//! The bid request: only what the bidder reads.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::native::NativeRequest;
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
    AuctionType {
        /// The winner pays its bid.
        FIRST_PRICE = 1,
        /// Second price plus: the winner pays just over the next bid or the floor.
        SECOND_PRICE = 2,
    }
);
open_enum!(
    /// AdCOM device type (`device.devicetype`).
    DeviceType {
        /// Mobile or tablet (OpenRTB 2.x general value).
        MOBILE_TABLET = 1,
        /// Desktop or laptop computer.
        PERSONAL_COMPUTER = 2,
        /// Connected TV.
        CONNECTED_TV = 3,
        /// Phone.
        PHONE = 4,
        /// Tablet.
        TABLET = 5,
        /// Other connected device (console, streaming stick).
        CONNECTED_DEVICE = 6,
        /// Set-top box.
        SET_TOP_BOX = 7,
        /// Out-of-home screen.
        OOH = 8,
    }
);
open_enum!(
    /// AdCOM connection type (`device.connectiontype`).
    ConnectionType {
        /// Wired.
        ETHERNET = 1,
        /// Wi-Fi.
        WIFI = 2,
        /// Cellular, generation unknown.
        CELLULAR_UNKNOWN = 3,
        /// 2G.
        CELL_2G = 4,
        /// 3G.
        CELL_3G = 5,
        /// 4G.
        CELL_4G = 6,
        /// 5G.
        CELL_5G = 7,
    }
);
open_enum!(
    /// AdCOM creative attribute (`battr`).
    CreativeAttribute {}
);
open_enum!(
    /// Video/audio protocol (`protocols`): which VAST/DAAST versions the
    /// player accepts (AdCOM list "Creative Subtypes - Audio/Video").
    Protocol {
        /// VAST 1.0.
        VAST_1 = 1,
        /// VAST 2.0.
        VAST_2 = 2,
        /// VAST 3.0.
        VAST_3 = 3,
        /// VAST 1.0 wrapper.
        VAST_1_WRAPPER = 4,
        /// VAST 2.0 wrapper.
        VAST_2_WRAPPER = 5,
        /// VAST 3.0 wrapper.
        VAST_3_WRAPPER = 6,
        /// VAST 4.0.
        VAST_4 = 7,
        /// VAST 4.0 wrapper.
        VAST_4_WRAPPER = 8,
        /// DAAST 1.0.
        DAAST_1 = 9,
        /// DAAST 1.0 wrapper.
        DAAST_1_WRAPPER = 10,
        /// VAST 4.1.
        VAST_4_1 = 11,
        /// VAST 4.1 wrapper.
        VAST_4_1_WRAPPER = 12,
        /// VAST 4.2.
        VAST_4_2 = 13,
        /// VAST 4.2 wrapper.
        VAST_4_2_WRAPPER = 14,
    }
);
open_enum!(
    /// API framework a slot supports (`api`): 1–2 VPAID, 3–5 MRAID, 6 ORMMA,
    /// 7 OMID, 8 SIMID.
    ApiFramework {}
);

/// A bid request (`BidRequest`), borrowing its strings from the body.
#[derive(Debug, Default, Deserialize)]
pub struct BidRequest<'a> {
    /// Request id, echoed as the response `id`; required.
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    /// The impressions offered; at least one.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub imp: Vec<Imp<'a>>,
    /// The website the ad would show on, if web inventory.
    #[serde(borrow)]
    pub site: Option<Site<'a>>,
    /// The mobile or CTV app the ad would show in, if app inventory.
    #[serde(borrow)]
    pub app: Option<App<'a>>,
    /// The out-of-home screen, if DOOH inventory.
    #[serde(borrow)]
    pub dooh: Option<Dooh<'a>>,
    /// The device the ad would show on.
    #[serde(borrow)]
    pub device: Option<Device<'a>>,
    /// The viewer.
    #[serde(borrow)]
    pub user: Option<User<'a>>,
    /// Test mode: the exchange will not bill; no budget is reserved or spent.
    #[serde(default)]
    pub test: Flag,
    /// Auction type; `None` means second price.
    pub at: Option<AuctionType>,
    /// Time allowed for the answer, milliseconds including network; `None` (or ≤ 0) takes the configured default.
    pub tmax: Option<i64>,
    /// Buyer seats allowed to bid (allowlist); empty allows all.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub wseat: Vec<Text<'a>>,
    /// Buyer seats blocked from bidding.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub bseat: Vec<Text<'a>>,
    /// Currencies the exchange accepts (ISO 4217); empty means the exchange's default.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub cur: Vec<Text<'a>>,
    /// Blocked content categories (IAB codes) of the advertiser.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub bcat: Vec<Text<'a>>,
    /// Blocked advertiser domains.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub badv: Vec<Text<'a>>,
    /// Blocked app bundles of the advertiser.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub bapp: Vec<Text<'a>>,
    /// Regulations that apply (COPPA, GDPR, US privacy, GPP).
    #[serde(borrow)]
    pub regs: Option<Regs<'a>>,
    /// Taxonomy of `bcat` (AdCOM list "Category Taxonomies"): 1 IAB
    /// Content Taxonomy 1.0 (the default), 2–7 later versions.
    pub cattax: Option<i32>,
    /// What the repair of a malformed request could not read (never from
    /// the wire: see [`super::repair`]).
    #[serde(skip)]
    pub unreadable: Unreadable,
}

/// Restrictive fields of a request that had the wrong type and could not
/// be coerced (see [`super::repair`]): the bidder takes the most
/// restrictive reading of each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unreadable {
    /// A block list (`bcat`, `badv`, `bapp`, `wseat`, `bseat`, `cattax`):
    /// no impression of the request may be bid on.
    pub blocks: bool,
    /// A privacy signal (consent string, `us_privacy`, GPP, `regs`):
    /// personal data may not be used.
    pub privacy: bool,
}

/// One impression (ad slot) on offer.
#[derive(Debug, Default, Deserialize)]
pub struct Imp<'a> {
    /// Impression id, unique within the request; echoed as the bid's `impid`.
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    /// Banner slot, if banners are accepted.
    #[serde(borrow)]
    pub banner: Option<Banner<'a>>,
    /// Video slot, if video is accepted (boxed: most impressions have
    /// none, and the impression stays small).
    #[serde(borrow)]
    pub video: Option<Box<Video<'a>>>,
    /// Audio slot, if audio is accepted.
    #[serde(borrow)]
    pub audio: Option<Box<Audio<'a>>>,
    /// Native slot, if native ads are accepted.
    #[serde(borrow)]
    pub native: Option<Box<Native<'a>>>,
    /// Private marketplace: deals and whether only they may bid.
    #[serde(borrow)]
    pub pmp: Option<Pmp<'a>>,
    /// Minimum bid, CPM in `bidfloorcur`; `None` means no floor, a value
    /// that is not a number means no bid for this impression.
    pub bidfloor: Option<Floor>,
    /// Currency of `bidfloor` (ISO 4217); `None` means USD.
    #[serde(borrow)]
    pub bidfloorcur: Option<Text<'a>>,
    /// Interstitial or full-screen slot.
    #[serde(default)]
    pub instl: Flag,
    /// The publisher's identifier of the ad slot.
    #[serde(borrow)]
    pub tagid: Option<Text<'a>>,
    /// Seconds the impression may wait between auction and display: a
    /// notice after it is late (shortens the exchange's notice window;
    /// zero, negative or absent means no such limit).
    pub exp: Option<i64>,
    /// Impression multiplier (2.6, DOOH): one won impression counts as
    /// `multiplier` impressions for billing.
    pub qty: Option<Qty>,
    /// Rewarded inventory: the user gets a reward for viewing (2.6).
    #[serde(default)]
    pub rwdd: Flag,
}

/// `imp.qty` (2.6): how many impressions one display counts for (DOOH
/// screens seen by many people at once).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct Qty {
    /// The multiplier (e.g. `3.2`); absent, zero or negative means 1.
    pub multiplier: Option<f64>,
}

impl Imp<'_> {
    /// How many impressions one display counts for (`qty.multiplier`),
    /// thousandths, rounded: 1000 when absent, zero, negative or not finite.
    pub fn qty_milli(&self) -> i64 {
        match self.qty.and_then(|q| q.multiplier) {
            Some(m) if m.is_finite() && m > 0.0 => ((m * 1000.0).round() as i64).clamp(1, i64::MAX / 1_000_000),
            _ => 1000,
        }
    }

    /// True when the impression offers at least one media object (banner, video, audio or native).
    pub fn has_media(&self) -> bool {
        self.banner.is_some() || self.video.is_some() || self.audio.is_some() || self.native.is_some()
    }
}

/// One accepted banner size (`banner.format`), pixels.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Format {
    /// Width, pixels.
    pub w: Option<i64>,
    /// Height, pixels.
    pub h: Option<i64>,
}

/// A banner slot.
#[derive(Debug, Default, Deserialize)]
pub struct Banner<'a> {
    /// Exact width, pixels; with `h`, one more accepted size after `format`.
    pub w: Option<i64>,
    /// Exact height, pixels.
    pub h: Option<i64>,
    /// Accepted sizes.
    #[serde(default, deserialize_with = "nullable")]
    pub format: Vec<Format>,
    /// Creative attributes the slot blocks.
    #[serde(default, deserialize_with = "nullable")]
    pub battr: Vec<CreativeAttribute>,
    /// Accepted creative MIME types; empty accepts any.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub mimes: Vec<Text<'a>>,
    /// Ad position on screen (AdCOM placement position); not used for selection.
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

/// A video slot.
#[derive(Debug, Default, Deserialize)]
pub struct Video<'a> {
    /// Accepted video MIME types; empty accepts any.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub mimes: Vec<Text<'a>>,
    /// Shortest accepted duration, seconds.
    pub minduration: Option<i64>,
    /// Longest accepted duration, seconds.
    pub maxduration: Option<i64>,
    /// Accepted delivery protocols (VAST versions).
    #[serde(default, deserialize_with = "nullable")]
    pub protocols: Vec<Protocol>,
    /// Player width, pixels.
    pub w: Option<i64>,
    /// Player height, pixels.
    pub h: Option<i64>,
    /// Creative attributes the slot blocks.
    #[serde(default, deserialize_with = "nullable")]
    pub battr: Vec<CreativeAttribute>,
    /// Placement subtype (2.6 `plcmt`): 1 instream, 2 accompanying content,
    /// 3 interstitial, 4 no content (standalone).
    pub plcmt: Option<i32>,
    /// Placement type (2.5 `placement`, read when `plcmt` is absent): 1
    /// in-stream, 2 in-banner, 3 in-article, 4 in-feed, 5 interstitial.
    pub placement: Option<i32>,
    /// 1 linear (in-stream), 2 non-linear (overlay); absent allows both.
    pub linearity: Option<i32>,
    /// The player lets the viewer skip the ad (1) or not (0); absent is unknown.
    pub skip: Option<Flag>,
    /// Only ads longer than this many seconds are skippable.
    pub skipmin: Option<i64>,
    /// Seconds an ad plays before it can be skipped.
    pub skipafter: Option<i64>,
    /// Start delay, seconds: > 0 mid-roll, 0 pre-roll, −1 generic
    /// mid-roll, −2 post-roll.
    pub startdelay: Option<i64>,
    /// API frameworks the player supports.
    #[serde(default, deserialize_with = "nullable")]
    pub api: Vec<ApiFramework>,
    /// Pod the slot belongs to (2.6): impressions sharing it are one ad break.
    #[serde(borrow)]
    pub podid: Option<Text<'a>>,
    /// Total seconds of a dynamic pod (2.6); with `maxseq`, the impression
    /// may take several ads.
    pub poddur: Option<i64>,
    /// Most ads a dynamic pod may take (2.6).
    pub maxseq: Option<i64>,
}

/// An audio slot.
#[derive(Debug, Default, Deserialize)]
pub struct Audio<'a> {
    /// Accepted audio MIME types; empty accepts any.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub mimes: Vec<Text<'a>>,
    /// Shortest accepted duration, seconds.
    pub minduration: Option<i64>,
    /// Longest accepted duration, seconds.
    pub maxduration: Option<i64>,
    /// Creative attributes the slot blocks.
    #[serde(default, deserialize_with = "nullable")]
    pub battr: Vec<CreativeAttribute>,
    /// Accepted delivery protocols (DAAST/VAST versions).
    #[serde(default, deserialize_with = "nullable")]
    pub protocols: Vec<Protocol>,
    /// API frameworks the player supports.
    #[serde(default, deserialize_with = "nullable")]
    pub api: Vec<ApiFramework>,
    /// Start delay, seconds (as for video).
    pub startdelay: Option<i64>,
}

/// A native slot.
#[derive(Debug, Default)]
pub struct Native<'a> {
    /// The native request, read while decoding ([`NativeRequest::read`]);
    /// `None` when absent or unreadable: the slot gets no native bid.
    pub request: Option<NativeRequest>,
    /// Version of the native request spec.
    pub ver: Option<Text<'a>>,
    /// Creative attributes the slot blocks.
    pub battr: Vec<CreativeAttribute>,
}

/// `imp.native` as sent: the native request still raw.
#[derive(Deserialize)]
struct WireNative<'a> {
    #[serde(borrow)]
    request: Option<&'a RawValue>,
    #[serde(borrow)]
    ver: Option<Text<'a>>,
    #[serde(default, deserialize_with = "nullable")]
    battr: Vec<CreativeAttribute>,
}

/// Reads the native request once, here: only impressions that offer
/// native pay for it, and a native request that cannot be read never
/// fails the bid request.
impl<'de: 'a, 'a> Deserialize<'de> for Native<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireNative::deserialize(deserializer)?;
        Ok(Native {
            request: wire
                .request
                .and_then(|raw| NativeRequest::read(raw, wire.ver.as_deref())),
            ver: wire.ver,
            battr: wire.battr,
        })
    }
}

/// Private marketplace terms of an impression.
#[derive(Debug, Default, Deserialize)]
pub struct Pmp<'a> {
    /// Only the listed deals may bid; open-auction bids are refused.
    #[serde(default)]
    pub private_auction: Flag,
    /// Deals on offer for the impression.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub deals: Vec<Deal<'a>>,
}

/// One private-marketplace deal.
#[derive(Debug, Default, Deserialize)]
pub struct Deal<'a> {
    /// Deal id, echoed as the bid's `dealid`.
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    /// Deal floor, CPM in `bidfloorcur`; `None` means no floor (not the impression's).
    pub bidfloor: Option<Floor>,
    /// Currency of the deal floor (ISO 4217); `None` means the impression's `bidfloorcur`, then USD.
    #[serde(borrow)]
    pub bidfloorcur: Option<Text<'a>>,
    /// Auction type of the deal; `None` means the request's.
    pub at: Option<AuctionType>,
    /// Buyer seats allowed on the deal; empty allows all.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub wseat: Vec<Text<'a>>,
    /// Advertiser domains allowed on the deal; empty allows all.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub wadomain: Vec<Text<'a>>,
}

/// The publisher of a site or app.
#[derive(Debug, Default, Deserialize)]
pub struct Publisher<'a> {
    /// Publisher id at the exchange.
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    /// Publisher's domain; for sites, a targeting domain of the request.
    #[serde(borrow)]
    pub domain: Option<Text<'a>>,
}

/// The website of a web request.
#[derive(Debug, Default, Deserialize)]
pub struct Site<'a> {
    /// Site id at the exchange.
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    /// Site domain; when absent, the host of `page` stands in.
    #[serde(borrow)]
    pub domain: Option<Text<'a>>,
    /// URL of the page the ad shows on.
    #[serde(borrow)]
    pub page: Option<Text<'a>>,
    /// Content categories of the site (IAB codes).
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub cat: Vec<Text<'a>>,
    /// Content categories of the section.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub sectioncat: Vec<Text<'a>>,
    /// Content categories of the page.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub pagecat: Vec<Text<'a>>,
    /// Taxonomy of the categories (2.6); absent means IAB 1.0.
    pub cattax: Option<i32>,
    /// The site's publisher.
    #[serde(borrow)]
    pub publisher: Option<Publisher<'a>>,
}

/// The app of an app request.
#[derive(Debug, Default, Deserialize)]
pub struct App<'a> {
    /// App id at the exchange.
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    /// Store bundle or package name (e.g. `com.example.game`); a targeting domain of the request.
    #[serde(borrow)]
    pub bundle: Option<Text<'a>>,
    /// App domain.
    #[serde(borrow)]
    pub domain: Option<Text<'a>>,
    /// Content categories of the app (IAB codes).
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub cat: Vec<Text<'a>>,
    /// Content categories of the section.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub sectioncat: Vec<Text<'a>>,
    /// Content categories of the page.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub pagecat: Vec<Text<'a>>,
    /// Taxonomy of the categories (2.6); absent means IAB 1.0.
    pub cattax: Option<i32>,
    /// The app's publisher.
    #[serde(borrow)]
    pub publisher: Option<Publisher<'a>>,
}

/// Digital out-of-home inventory (2.6).
#[derive(Debug, Default, Deserialize)]
pub struct Dooh<'a> {
    /// Venue id at the exchange.
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    /// Domain of the venue or screen owner.
    #[serde(borrow)]
    pub domain: Option<Text<'a>>,
}

/// A location (`device.geo` or `user.geo`).
#[derive(Debug, Default, Deserialize)]
pub struct Geo<'a> {
    /// Latitude, degrees (−90 to 90).
    pub lat: Option<f64>,
    /// Longitude, degrees (−180 to 180).
    pub lon: Option<f64>,
    /// Country code as the exchange sends it (ISO 3166-1 alpha-3 in OpenRTB).
    #[serde(borrow)]
    pub country: Option<Text<'a>>,
    /// Region or state code.
    #[serde(borrow)]
    pub region: Option<Text<'a>>,
    /// City name.
    #[serde(borrow)]
    pub city: Option<Text<'a>>,
}

/// The device the ad would show on.
#[derive(Debug, Default, Deserialize)]
pub struct Device<'a> {
    /// User agent string.
    #[serde(borrow)]
    pub ua: Option<Text<'a>>,
    /// IPv4 address.
    #[serde(borrow)]
    pub ip: Option<Text<'a>>,
    /// IPv6 address, read when `ip` is absent.
    #[serde(borrow)]
    pub ipv6: Option<Text<'a>>,
    /// Device type.
    pub devicetype: Option<DeviceType>,
    /// Operating system (e.g. `iOS`, `Android`).
    #[serde(borrow)]
    pub os: Option<Text<'a>>,
    /// Network connection type.
    pub connectiontype: Option<ConnectionType>,
    /// Advertising id (IDFA/GAID); all zeros means none.
    #[serde(borrow)]
    pub ifa: Option<Text<'a>>,
    /// Limit ad tracking: the user opted out of tracking on the device.
    #[serde(default)]
    pub lmt: Flag,
    /// Do not track: the browser asks not to be tracked.
    #[serde(default)]
    pub dnt: Flag,
    /// Device location; preferred over `user.geo`.
    #[serde(borrow)]
    pub geo: Option<Geo<'a>>,
    /// Structured user agent (2.6).
    #[serde(borrow)]
    pub sua: Option<StructuredUserAgent<'a>>,
}

/// `device.sua`: only the browser brands are read (automation screening).
#[derive(Debug, Default, Deserialize)]
pub struct StructuredUserAgent<'a> {
    /// Browser brands, for spotting headless and automated browsers.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub browsers: Vec<BrandVersion<'a>>,
}

/// One brand of a structured user agent.
#[derive(Debug, Default, Deserialize)]
pub struct BrandVersion<'a> {
    /// Brand name (e.g. `Chromium`, `HeadlessChrome`).
    #[serde(borrow)]
    pub brand: Option<Text<'a>>,
}

/// The viewer.
#[derive(Debug, Default, Deserialize)]
pub struct User<'a> {
    /// Exchange's user id.
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    /// Buyer's user id, as mapped by the exchange's cookie sync.
    #[serde(borrow)]
    pub buyeruid: Option<Text<'a>>,
    /// Year of birth (four digits).
    pub yob: Option<i64>,
    /// Gender: `M`, `F` or `O`.
    #[serde(borrow)]
    pub gender: Option<Text<'a>>,
    /// TCF consent string (2.6 placement).
    #[serde(borrow)]
    pub consent: Option<Text<'a>>,
    /// User's home location; used when the device has none.
    #[serde(borrow)]
    pub geo: Option<Geo<'a>>,
    /// Extended ids (2.6): ids of the user from identity providers, by source.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub eids: Vec<Eid<'a>>,
    /// Data segments the exchange (or its data providers) knows the user in.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub data: Vec<Data<'a>>,
    /// `user.ext` (2.5 placements).
    #[serde(borrow)]
    pub ext: Option<UserExt<'a>>,
}

/// `user.ext` keys the bidder reads (2.5 placements of `consent` and `eids`).
#[derive(Debug, Default, Deserialize)]
pub struct UserExt<'a> {
    /// TCF consent string (2.5 placement).
    #[serde(borrow)]
    pub consent: Option<Text<'a>>,
    /// Extended ids (2.5 placement, as Prebid sends them).
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub eids: Vec<Eid<'a>>,
}

/// One identity provider's ids of the user (`user.eids[]`).
#[derive(Debug, Default, Deserialize)]
pub struct Eid<'a> {
    /// The provider's domain (e.g. `liveramp.com`, `id5-sync.com`).
    #[serde(borrow)]
    pub source: Option<Text<'a>>,
    /// Its ids of the user; the first is used.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub uids: Vec<Uid<'a>>,
}

/// One id of an extended-id source.
#[derive(Debug, Default, Deserialize)]
pub struct Uid<'a> {
    /// The id.
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
}

/// One data provider's segments of the user (`user.data[]`).
#[derive(Debug, Default, Deserialize)]
pub struct Data<'a> {
    /// The provider's id at the exchange.
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    /// The provider's name.
    #[serde(borrow)]
    pub name: Option<Text<'a>>,
    /// Its segments the user is in.
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub segment: Vec<DataSegment<'a>>,
}

/// One segment of a data provider.
#[derive(Debug, Default, Deserialize)]
pub struct DataSegment<'a> {
    /// The segment's id at the provider.
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    /// Its name.
    #[serde(borrow)]
    pub name: Option<Text<'a>>,
}

/// Regulations that apply to the request.
#[derive(Debug, Default, Deserialize)]
pub struct Regs<'a> {
    /// The request is subject to COPPA (a child-directed audience).
    #[serde(default)]
    pub coppa: Flag,
    /// GDPR applies (2.6 placement); `None` means not said (`regs.ext.gdpr` is read next).
    pub gdpr: Option<Flag>,
    /// US Privacy (CCPA) string, e.g. `1YNN` (2.6 placement).
    #[serde(borrow)]
    pub us_privacy: Option<Text<'a>>,
    /// IAB Global Privacy Platform string.
    #[serde(borrow)]
    pub gpp: Option<Text<'a>>,
    /// GPP section ids that apply to the request.
    pub gpp_sid: Option<Vec<i32>>,
    /// `regs.ext` (2.5 placements).
    #[serde(borrow)]
    pub ext: Option<RegsExt<'a>>,
}

/// `regs.ext` keys the bidder reads (2.5 placements).
#[derive(Debug, Default, Deserialize)]
pub struct RegsExt<'a> {
    /// GDPR applies (2.5 placement).
    pub gdpr: Option<Flag>,
    /// US Privacy (CCPA) string (2.5 placement).
    #[serde(borrow)]
    pub us_privacy: Option<Text<'a>>,
    /// IAB Global Privacy Platform string (2.5 placement).
    #[serde(borrow)]
    pub gpp: Option<Text<'a>>,
    /// GPP section ids that apply (2.5 placement).
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
