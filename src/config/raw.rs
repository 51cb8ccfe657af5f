//! The configuration files as written: serde structs, unknown keys rejected.
//!
//! Doc comments here are the user documentation of each key; the README
//! points to this file. Validation into typed values lives in
//! `validate.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::campaigns::{PacingMode, Pricing, Status};
use crate::openrtb::MediaType;

/// `bidder-config/bullseye.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub bidding: RawBidding,
    /// Rates into the base currency: `EUR = "1.08"` means one euro is worth
    /// 1.08 units of the base currency.
    #[serde(default)]
    pub fx: BTreeMap<String, String>,
    #[serde(default)]
    pub audience: RawAudience,
    #[serde(default)]
    pub secrets: RawSecrets,
    #[serde(default)]
    pub traffic: RawTraffic,
    #[serde(default)]
    pub tracking: RawTracking,
    /// Exchanges, recognised by `/openrtb2/bid/{name}`. The one named
    /// `default` serves `/openrtb2/bid`; if none is named so, a default one
    /// with default settings is added.
    #[serde(default, rename = "exchange")]
    pub exchanges: Vec<RawExchange>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Base URL of the tracking endpoints as exchanges and browsers reach
    /// them, e.g. `https://track.example.com`. Default: `http://` + the
    /// listen address.
    pub public_url: Option<String>,
    /// Largest accepted request body, compressed or not (default 262144).
    pub max_body_bytes: Option<usize>,
    /// Time a client has to send a request's headers, which also bounds how
    /// long an idle keep-alive connection stays open (default 30000 ms).
    pub header_read_timeout_ms: Option<u64>,
    /// Time a client has to send a request's body once its headers are in
    /// (default 5000 ms); slower bodies get 408.
    pub body_read_timeout_ms: Option<u64>,
    /// Most simultaneous connections (default 4096); past it, new
    /// connections get 503 with `Retry-After` and are closed.
    pub max_connections: Option<usize>,
    /// `tmax` assumed when a request carries none (default 200 ms).
    pub default_tmax_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBidding {
    /// Base currency of campaigns, budgets and the FX table (default USD).
    pub currency: Option<String>,
    /// First-price bids are the value times this factor (default "0.85"),
    /// never below the floor.
    pub first_price_shading: Option<String>,
    /// Where the user id is taken from, first found wins (default
    /// `["buyeruid", "user_id", "ifa"]`).
    pub user_id_order: Option<Vec<String>>,
    /// Our IAB TCF vendor id; when set, GDPR consent must include it.
    pub gdpr_vendor_id: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudience {
    /// Audience snapshot file (built by `bullseye segments build`), relative
    /// to the config directory. Replacing it (write, then rename) swaps it in.
    pub snapshot: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecrets {
    /// URL-signing key. Overridden by `BULLSEYE_SIGNING_KEY` or
    /// `signing_key_file`. The bundled value is for development only.
    pub signing_key: Option<String>,
    /// A file holding the URL-signing key (first line).
    pub signing_key_file: Option<String>,
    /// The key before the last rotation, still accepted when verifying.
    pub previous_signing_key: Option<String>,
    /// Admin API bearer token. Overridden by `BULLSEYE_ADMIN_TOKEN`. The
    /// bundled value is for development only.
    pub admin_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraffic {
    /// User-agent substrings (case-insensitive) of known crawlers; requests
    /// from them get no bid. Default: a built-in list.
    pub bot_user_agents: Option<Vec<String>>,
    /// Data-centre IP ranges (CIDR); requests from them get no bid.
    #[serde(default)]
    pub datacenter_ranges: Vec<String>,
}

/// Click quality: clicks breaking these rules are logged, not billed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracking {
    /// A click sooner than this after its impression is implausible
    /// (default 1000 ms).
    pub min_click_delay_ms: Option<u64>,
    /// Billable clicks per user per hour (default 10).
    pub max_clicks_per_user_hour: Option<u32>,
    /// Billable clicks per IP address per hour (default 30).
    pub max_clicks_per_ip_hour: Option<u32>,
    /// Take the client address from `X-Forwarded-For` (behind a trusted
    /// proxy only; default false).
    pub trust_forwarded_for: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExchange {
    pub name: String,
    /// Our seat id at this exchange (checked against `wseat`/`bseat`).
    pub seat: Option<String>,
    /// The notice that bills an impression: `burl` (default) or `nurl`.
    pub billing_event: Option<String>,
    /// Milliseconds subtracted from `tmax` for the network (default 30).
    pub network_allowance_ms: Option<u64>,
    /// Whether the exchange calls `burl` (default true).
    pub sends_burl: Option<bool>,
    /// Whether the exchange calls `lurl` (default false).
    pub sends_lurl: Option<bool>,
    /// Currency the exchange assumes when a request has no `cur`.
    pub currency: Option<String>,
}

/// A file in `bidder-config/campaigns/`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCampaignFile {
    #[serde(default, rename = "campaign")]
    pub campaigns: Vec<RawCampaign>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCampaign {
    pub id: String,
    pub advertiser: String,
    /// Advertiser domains, checked against `badv`.
    #[serde(default)]
    pub adomain: Vec<String>,
    /// IAB categories of the ads, checked against `bcat`.
    #[serde(default)]
    pub cat: Vec<String>,
    /// Store id of an advertised app, checked against `bapp`.
    pub bundle: Option<String>,
    /// The buyer seat this campaign bids under (an agency's or advertiser's
    /// seat at the exchange); default: the exchange's seat.
    pub seat: Option<String>,
    #[serde(default = "default_status")]
    pub status: Status,
    pub pricing: Pricing,
    /// Max CPM (`cpm`) or max CPC (`cpc`), a decimal in the base currency.
    pub max_bid: String,
    /// Prior predicted CTR for `cpc` campaigns, e.g. "0.002".
    pub pctr_prior: Option<String>,
    pub daily_budget: String,
    pub total_budget: Option<String>,
    #[serde(default = "default_pacing")]
    pub pacing: PacingMode,
    /// IANA time zone of day-parting and the daily budget reset (default UTC).
    pub time_zone: Option<String>,
    /// Flight dates `YYYY-MM-DD` in the campaign's time zone; `end` inclusive.
    pub start: Option<String>,
    pub end: Option<String>,
    /// Exchanges to buy on (default: all).
    #[serde(default)]
    pub exchanges: Vec<String>,
    #[serde(default)]
    pub targeting: RawTargeting,
    #[serde(default, rename = "creative")]
    pub creatives: Vec<RawCreative>,
}

fn default_status() -> Status {
    Status::Active
}

fn default_pacing() -> PacingMode {
    PacingMode::Even
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegments {
    #[serde(default)]
    pub any: Vec<String>,
    #[serde(default)]
    pub all: Vec<String>,
    #[serde(default)]
    pub none: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircle {
    pub lat: f64,
    pub lon: f64,
    pub radius_km: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAge {
    pub min: Option<u32>,
    pub max: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaypart {
    /// `mon` … `sun`; default every day.
    #[serde(default)]
    pub days: Vec<String>,
    /// First hour (0–23, inclusive).
    pub from_hour: u32,
    /// Last hour (1–24, exclusive).
    pub to_hour: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFrequency {
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargeting {
    #[serde(default)]
    pub segments: RawSegments,
    /// ISO-3166-1 alpha-3 country codes, as OpenRTB sends them.
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub cities: Vec<String>,
    #[serde(default)]
    pub geo_radius: Vec<RawCircle>,
    pub age: Option<RawAge>,
    /// `M`, `F`, `O`.
    #[serde(default)]
    pub genders: Vec<String>,
    /// AdCOM device types (1 mobile/tablet, 2 PC, 3 CTV, 4 phone, 5 tablet…).
    #[serde(default)]
    pub device_types: Vec<i32>,
    #[serde(default)]
    pub os: Vec<String>,
    /// AdCOM connection types (1 ethernet, 2 wifi, 3–7 cellular).
    #[serde(default)]
    pub connection_types: Vec<i32>,
    #[serde(default)]
    pub categories_allow: Vec<String>,
    #[serde(default)]
    pub categories_block: Vec<String>,
    #[serde(default)]
    pub domains_allow: Vec<String>,
    #[serde(default)]
    pub domains_block: Vec<String>,
    #[serde(default)]
    pub dayparts: Vec<RawDaypart>,
    #[serde(default)]
    pub frequency: RawFrequency,
    /// Deal ids this campaign may bid in.
    #[serde(default)]
    pub deals: Vec<String>,
    /// Bid only inside the listed deals.
    #[serde(default)]
    pub deals_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCreative {
    pub id: String,
    pub format: MediaType,
    pub w: Option<i64>,
    pub h: Option<i64>,
    /// Ready-made markup: HTML (banner), VAST (video/audio), native JSON.
    pub adm: Option<String>,
    /// An image for a banner; the bidder writes the HTML around it.
    pub image_url: Option<String>,
    /// Where a click lands.
    pub landing_url: String,
    /// Video/audio MIME type (default `video/mp4` / `audio/mp4`).
    pub mime: Option<String>,
    /// Video/audio duration in seconds.
    pub duration: Option<i64>,
    /// AdCOM creative attributes, checked against `battr`.
    #[serde(default)]
    pub attr: Vec<i32>,
}
