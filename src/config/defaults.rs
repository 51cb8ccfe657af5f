//! The default of every configuration key that has one, each written once.
//!
//! The raw structs name these functions in `#[serde(default = "…")]` at the
//! field they belong to; a table left out entirely gets the same values
//! (see [`absent`]). Defaults that depend on another key (an exchange's
//! currency, a creative's MIME type) are applied in validation, from the
//! values here.

use serde::de::DeserializeOwned;
use serde::de::value::{Error, MapDeserializer};

use crate::campaigns::{PacingMode, Status};
use crate::settings::{BillingEvent, UserIdSource};

/// A table with none of its keys: every field at its default. Deserializing
/// an empty map applies each field's `#[serde(default = "…")]`, so a left-out
/// `[server]` and an empty one mean the same thing.
pub fn absent<T: DeserializeOwned>() -> T {
    T::deserialize(MapDeserializer::<_, Error>::new(std::iter::empty::<((), ())>()))
        .expect("every key of a table that may be left out has a default")
}

/// `server.max_body_bytes`: 256 KiB.
pub fn max_body_bytes() -> usize {
    256 * 1024
}

/// `server.header_read_timeout_ms`: 30 s.
pub fn header_read_timeout_ms() -> u64 {
    30_000
}

/// `server.body_read_timeout_ms`: 5 s.
pub fn body_read_timeout_ms() -> u64 {
    5_000
}

/// `server.max_connections`.
pub fn max_connections() -> usize {
    4096
}

/// `server.default_tmax_ms`: the `tmax` of requests that carry none.
pub fn default_tmax_ms() -> u64 {
    200
}

/// `bidding.currency`.
pub fn currency() -> String {
    "USD".into()
}

/// `bidding.first_price_shading`.
pub fn first_price_shading() -> String {
    "0.85".into()
}

/// `bidding.user_id_order`.
pub fn user_id_order() -> Vec<UserIdSource> {
    vec![UserIdSource::BuyerUid, UserIdSource::UserId, UserIdSource::Ifa]
}

/// `traffic.bot_user_agents`: marks of well-known crawlers and HTTP
/// libraries.
pub fn bot_user_agents() -> Vec<String> {
    [
        "bot",
        "crawler",
        "spider",
        "slurp",
        "headlesschrome",
        "phantomjs",
        "python-requests",
        "curl/",
        "wget/",
        "go-http-client",
        "java/",
        "libwww",
        "facebookexternalhit",
        "mediapartners-google",
        "lighthouse",
    ]
    .map(String::from)
    .to_vec()
}

/// `tracking.min_click_delay_ms`: 1 s.
pub fn min_click_delay_ms() -> u64 {
    1000
}

/// `tracking.max_clicks_per_user_hour`.
pub fn max_clicks_per_user_hour() -> u32 {
    10
}

/// `tracking.max_clicks_per_ip_hour`.
pub fn max_clicks_per_ip_hour() -> u32 {
    30
}

/// `exchange.seat`.
pub fn seat() -> String {
    "bullseye".into()
}

/// `exchange.billing_event`.
pub fn billing_event() -> BillingEvent {
    BillingEvent::Burl
}

/// `exchange.network_allowance_ms`.
pub fn network_allowance_ms() -> u64 {
    30
}

/// `exchange.sends_burl`.
pub fn sends_burl() -> bool {
    true
}

/// `exchange.notice_window_minutes`.
pub fn notice_window_minutes() -> u32 {
    15
}

/// `exchange.max_qty`: a multiplier above 1 needs the exchange configured.
pub fn max_qty() -> f64 {
    1.0
}

/// `exchange.sends_lurl`.
pub fn sends_lurl() -> bool {
    false
}

/// `campaign.status`.
pub fn status() -> Status {
    Status::Active
}

/// `campaign.pacing`.
pub fn pacing() -> PacingMode {
    PacingMode::Even
}

/// `campaign.time_zone`.
pub fn time_zone() -> String {
    "UTC".into()
}

/// `targeting.age.min`.
pub fn age_min() -> u32 {
    0
}

/// `targeting.age.max`.
pub fn age_max() -> u32 {
    150
}

/// `creative.mime` of a video creative.
pub const VIDEO_MIME: &str = "video/mp4";

/// `creative.mime` of an audio creative.
pub const AUDIO_MIME: &str = "audio/mp4";

/// `bidding.max_cpm_cap`.
pub fn max_cpm_cap() -> String {
    "1000".into()
}

/// `bidding.max_cpc_cap`.
pub fn max_cpc_cap() -> String {
    "100".into()
}

/// `bidding.max_imps_per_request`.
pub fn max_imps_per_request() -> usize {
    50
}

/// `tracking.max_dedup_entries`.
pub fn max_dedup_entries() -> usize {
    crate::settings::DEFAULT_MAX_DEDUP_ENTRIES
}

/// `bidding.max_frequency_entries`.
pub fn max_frequency_entries() -> usize {
    crate::settings::DEFAULT_MAX_FREQUENCY_ENTRIES
}

/// `audience.overlay_max_users`.
pub fn overlay_max_users() -> usize {
    crate::audience::store::OVERLAY_MAX_USERS
}

/// `tracking.max_conversions_per_click`.
pub fn max_conversions_per_click() -> u32 {
    1
}

/// `tracking.max_conversion_value`.
pub fn max_conversion_value() -> String {
    "100000".into()
}

/// `tracking.postback_max_age_secs`.
pub fn postback_max_age_secs() -> i64 {
    600
}

/// `server.ledger_retention_days`.
pub fn ledger_retention_days() -> u32 {
    90
}

/// `server.reserved_connections`: a sixteenth of the connections.
pub fn reserved_connections(max_connections: usize) -> usize {
    max_connections / 16
}

/// `server.max_connections_per_ip`.
pub fn max_connections_per_ip() -> usize {
    1024
}

/// `server.first_request_timeout_ms`.
pub fn first_request_timeout_ms() -> u64 {
    5000
}

/// `[sampling] rate`: one request in a thousand.
pub fn sampling_rate() -> f64 {
    0.001
}

/// `[sampling] max_bytes`: 1 GB.
pub fn sampling_max_bytes() -> u64 {
    1_000_000_000
}
