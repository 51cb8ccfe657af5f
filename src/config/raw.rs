//! The configuration files as written: serde structs, unknown keys rejected.
//!
//! Doc comments here are the user documentation of each key; the README
//! points to this file. A key with a default names it at the field (the
//! values are in `defaults.rs`); a key with a fixed set of values is an
//! enum, so a wrong value is refused naming the allowed ones. Validation
//! into typed values lives in `validate.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::defaults;
use crate::campaigns::targeting::Gender;
use crate::campaigns::{PacingMode, Pricing, Status};
use crate::openrtb::MediaType;
use crate::settings::{BillingEvent, NoBidAnswer, Role, UserIdSource};

/// `bidder-config/bullseye.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// `[server]`: the HTTP listener's limits and the tracking base URL.
    #[serde(default)]
    pub server: RawServer,
    /// `[bidding]`: base currency, bid shading, user ids, GDPR vendor id.
    #[serde(default)]
    pub bidding: RawBidding,
    /// Rates into the base currency: `EUR = "1.08"` means one euro is worth
    /// 1.08 units of the base currency.
    #[serde(default)]
    pub fx: BTreeMap<String, String>,
    /// `[audience]`: the audience snapshot file.
    #[serde(default)]
    pub audience: RawAudience,
    /// `[secrets]`: the URL-signing key and the admin API token.
    #[serde(default)]
    pub secrets: RawSecrets,
    /// `[traffic]`: traffic that gets no bid (crawlers, data centres).
    #[serde(default)]
    pub traffic: RawTraffic,
    /// `[tracking]`: click-quality rules.
    #[serde(default)]
    pub tracking: RawTracking,
    /// Exchanges, recognised by `/openrtb2/bid/{name}`. The one named
    /// `default` serves `/openrtb2/bid`; if none is named so, a default one
    /// with default settings is added.
    #[serde(default, rename = "exchange")]
    pub exchanges: Vec<RawExchange>,
    /// `[[postback]]`: each advertiser's conversion-postback secret.
    #[serde(default, rename = "postback")]
    pub postbacks: Vec<RawPostback>,
    /// `[[advertiser]]`: who owns campaigns. Every campaign names one.
    #[serde(default, rename = "advertiser")]
    pub advertisers: Vec<RawAdvertiser>,
    /// `[admin]`: the admin API's tokens.
    #[serde(default)]
    pub admin: RawAdmin,
    /// `[cluster]`: the Redis that nodes of a cluster share.
    #[serde(default)]
    pub cluster: RawCluster,
    /// `[sampling]`: the sample of bid requests kept for `bullseye forecast`.
    #[serde(default)]
    pub sampling: RawSampling,
}

/// `[sampling]`: a fraction of bid requests, pseudonymised, compressed and
/// rotated into `{data_dir}/sample/` (see `forecast::sample`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSampling {
    /// The fraction of bid requests kept, 0 to 1 (default 0.001; 0 keeps none).
    #[serde(default = "defaults::sampling_rate")]
    pub rate: f64,
    /// The most the sample directory holds, bytes (default 1 GB); the
    /// oldest files are deleted past it.
    #[serde(default = "defaults::sampling_max_bytes")]
    pub max_bytes: u64,
}

impl Default for RawSampling {
    fn default() -> RawSampling {
        RawSampling {
            rate: defaults::sampling_rate(),
            max_bytes: defaults::sampling_max_bytes(),
        }
    }
}

/// `[cluster]`: cluster mode. Left out, the node runs alone (unless
/// `--redis` or `BULLSEYE_REDIS_URL` say otherwise).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// The Redis every node shares, e.g. `redis://10.0.0.5:6379/0`
    /// (`rediss://` for TLS). The `--redis` flag and `BULLSEYE_REDIS_URL`
    /// take precedence.
    pub redis_url: Option<String>,
}

/// One `[[advertiser]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdvertiser {
    /// 1–64 letters, digits, `-`, `_` or `.`; a campaign's `advertiser`
    /// names it, and an `advertiser` admin token is bound to it.
    pub id: String,
    /// Display name (default: the id).
    pub name: Option<String>,
    /// IANA time zone of its reports and of new campaigns (default UTC);
    /// also the days and weeks of its contact rules.
    #[serde(default = "defaults::time_zone")]
    pub time_zone: String,
    /// Most its campaigns spend together per day (days in the advertiser's
    /// time zone), a decimal in the base currency; none means no limit
    /// beyond each campaign's own. Reserved at bid time like a campaign's,
    /// so it is overrun by at most one impression's price per node.
    pub daily_budget: Option<String>,
    /// `[advertiser.frequency]`: contacts (impressions) per user across
    /// all its campaigns; none by default.
    #[serde(default)]
    pub frequency: RawContactCap,
    /// A do-not-contact segment (e.g. `optout/acme`): users in it, or in a
    /// segment below it, are never bid on for this advertiser.
    pub suppress_segment: Option<String>,
    /// Segments only this advertiser's campaigns may target (its
    /// first-party lists, e.g. `crm/acme`): another advertiser's campaign
    /// naming one of them, a segment below one, or one above one (which
    /// would reach its users) is refused.
    #[serde(default)]
    pub private_segments: Vec<String>,
    /// `[advertiser.capacity]`: responses per hour or day across all its
    /// campaigns, past which they stop bidding; none by default.
    #[serde(default)]
    pub capacity: RawCapacity,
}

/// `[advertiser.frequency]`: most contacts one user gets from all of an
/// advertiser's campaigns together. Counted at bid time (a bid holds a
/// contact until its impression pixel or the end of its notice window), so
/// concurrent bids never overshoot. A capped advertiser does not bid for a
/// user it cannot recognise.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContactCap {
    /// Contacts per user per day in the advertiser's time zone (at least 1).
    pub per_day: Option<u32>,
    /// Contacts per user per week (Monday to Sunday) in the advertiser's
    /// time zone (at least 1).
    pub per_week: Option<u32>,
}

/// `[campaign.capacity]` or `[advertiser.capacity]`: how many responses
/// can be handled (a call centre's capacity). Once a cap is reached, the
/// campaign (or every campaign of the advertiser) stops bidding within a
/// second, until the hour or day turns (in the campaign's, or the
/// advertiser's, time zone). Responses after the cap still count and are
/// recorded. Each cap is at least 1; none by default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapacity {
    /// Billable clicks per hour.
    pub clicks_per_hour: Option<u32>,
    /// Billable clicks per day.
    pub clicks_per_day: Option<u32>,
    /// Conversions (of billable clicks) per hour.
    pub conversions_per_hour: Option<u32>,
    /// Conversions (of billable clicks) per day.
    pub conversions_per_day: Option<u32>,
}

/// `[admin]`: who may use the admin API and the console.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `[[admin.token]]`: one per person or system, minted with
    /// `bullseye admin token`.
    #[serde(default, rename = "token")]
    pub tokens: Vec<RawAdminToken>,
}

/// One `[[admin.token]]`: a name, a role, and the SHA-256 of the token
/// (never the token itself).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminToken {
    /// Who holds it; the audit log names changes after it. Unique.
    pub name: String,
    /// `admin`, `advertiser`, `data` or `viewer`.
    pub role: Role,
    /// The advertiser id an `advertiser` token is bound to (required for
    /// that role, refused for the others).
    pub advertiser: Option<String>,
    /// Lower-case hex SHA-256 of the token, as `bullseye admin token`
    /// prints it.
    pub sha256: String,
}

/// `[server]`: the HTTP listener. Left out, every key is at its default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Base URL of the tracking endpoints as exchanges and browsers reach
    /// them, e.g. `https://track.example.com`. Default: `http://` + the
    /// listen address.
    pub public_url: Option<String>,
    /// Days a raw billing-log day file is kept after its day (default 90,
    /// at least 2: the longest notice and attribution window is a day);
    /// a closed day's rollup is kept for good.
    #[serde(default = "defaults::ledger_retention_days")]
    pub ledger_retention_days: u32,
    /// Largest accepted request body, compressed or not (default 262144).
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers, which also bounds how
    /// long an idle keep-alive connection stays open (default 30000 ms).
    #[serde(default = "defaults::header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's body once its headers are in
    /// (default 5000 ms); slower bodies get 408.
    #[serde(default = "defaults::body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Most simultaneous connections (default 4096); past it, new
    /// connections get 503 with `Retry-After` and are closed.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Of `max_connections`, how many are kept for health checks and
    /// tracking (default a sixteenth of them): a connection admitted into
    /// the reserve gets 503 for bid requests, so bid traffic cannot starve
    /// notices.
    pub reserved_connections: Option<usize>,
    /// Most simultaneous connections from one address (default 1024);
    /// 127.0.0.1, ::1 and `tracking.trusted_proxies` are exempt.
    #[serde(default = "defaults::max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// How long a new connection may take to send its first bytes (default
    /// 5000 ms); later requests on it keep the long keep-alive.
    #[serde(default = "defaults::first_request_timeout_ms")]
    pub first_request_timeout_ms: u64,
    /// `tmax` assumed when a request carries none (default 200 ms).
    #[serde(default = "defaults::default_tmax_ms")]
    pub default_tmax_ms: u64,
}

/// `[bidding]`: how bids are priced and users recognised. Left out, every
/// key is at its default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBidding {
    /// Base currency of campaigns, budgets and the FX table (default USD).
    #[serde(default = "defaults::currency")]
    pub currency: String,
    /// First-price bids are the value times this factor (default "0.85"),
    /// never below the floor.
    #[serde(default = "defaults::first_price_shading")]
    pub first_price_shading: String,
    /// `impression` (default): CPC, CPA and CPS values predicted per
    /// impression; `campaign`: one rate per campaign and creative.
    #[serde(default)]
    pub prediction: crate::settings::PredictionMode,
    /// `learned` (default): first-price shading learned from win and loss
    /// signals; `fixed`: always `first_price_shading`.
    #[serde(default)]
    pub shading: crate::settings::ShadingMode,
    /// Where the user id is taken from, first found wins: `buyeruid`,
    /// `user_id` (also spelled `user.id`), `ifa` (default
    /// `["buyeruid", "user_id", "ifa"]`).
    #[serde(default = "defaults::user_id_order")]
    pub user_id_order: Vec<UserIdSource>,
    /// Our IAB TCF vendor id; when set, GDPR consent must include it.
    pub gdpr_vendor_id: Option<u16>,
    /// The highest max bid a CPM campaign may have, base currency (default
    /// "1000"): a sanity cap against typos, in config and the admin API.
    #[serde(default = "defaults::max_cpm_cap")]
    pub max_cpm_cap: String,
    /// The highest max CPC a CPC campaign may have, base currency (default
    /// "100").
    #[serde(default = "defaults::max_cpc_cap")]
    pub max_cpc_cap: String,
    /// Impressions of one request bid on, the first ones (default 50); the
    /// rest are counted (`bullseye_imps_ignored_total`) and get no bid.
    #[serde(default = "defaults::max_imps_per_request")]
    pub max_imps_per_request: usize,
    /// Most (user, campaign) frequency counts held (default 50,000,000). At
    /// the bound, campaigns with a frequency cap do not bid on users they
    /// have no count for.
    #[serde(default = "defaults::max_frequency_entries")]
    pub max_frequency_entries: usize,
}

/// `[audience]`: who is in which segment. Left out, there is no snapshot:
/// the audience is empty unless `bullseye serve --segments` names one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudience {
    /// Audience snapshot file (built by `bullseye segments build`), relative
    /// to the config directory. Replacing it (write, then rename) swaps it in.
    pub snapshot: Option<String>,
    /// Most user-sync matches kept (exchange id → ours); the least recently
    /// used are evicted past it (default 1,000,000).
    pub max_user_matches: Option<usize>,
    /// Users the real-time overlay holds at most (read at start-up): a
    /// change for a user it does not hold is refused past it (429), never
    /// by evicting another.
    #[serde(default = "defaults::overlay_max_users")]
    pub overlay_max_users: usize,
}

/// `[secrets]`. The URL-signing key must come from somewhere: the
/// environment, `signing_key_file` or `signing_key`, in that order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecrets {
    /// URL-signing key. Overridden by `BULLSEYE_SIGNING_KEY` or
    /// `signing_key_file`. The bundled value is for development only.
    pub signing_key: Option<String>,
    /// A file holding the URL-signing key (first line).
    pub signing_key_file: Option<String>,
    /// The key before the last rotation, still accepted when verifying.
    pub previous_signing_key: Option<String>,
    /// No longer accepted (a clear token in a file): use `[[admin.token]]`
    /// with its hash, or `BULLSEYE_ADMIN_TOKEN`. Kept here to answer with a
    /// migration hint rather than "unknown field".
    pub admin_token: Option<String>,
}

/// `[traffic]`: requests that get no bid. Left out, the built-in crawler
/// list applies and no IP range is blocked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraffic {
    /// User-agent substrings (case-insensitive) of known crawlers; requests
    /// from them get no bid. Blank entries are ignored. Default: a built-in
    /// list.
    #[serde(default = "defaults::bot_user_agents")]
    pub bot_user_agents: Vec<String>,
    /// Data-centre IP ranges (CIDR); requests from them get no bid.
    #[serde(default)]
    pub datacenter_ranges: Vec<String>,
}

/// Click quality: clicks breaking these rules are logged, not billed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracking {
    /// A click sooner than this after its impression is implausible
    /// (default 1000 ms).
    #[serde(default = "defaults::min_click_delay_ms")]
    pub min_click_delay_ms: u64,
    /// Billable clicks per user per hour (default 10).
    #[serde(default = "defaults::max_clicks_per_user_hour")]
    pub max_clicks_per_user_hour: u32,
    /// Billable clicks per IP address per hour (default 30).
    #[serde(default = "defaults::max_clicks_per_ip_hour")]
    pub max_clicks_per_ip_hour: u32,
    /// Conversions counted per click (default 1); more get 409.
    #[serde(default = "defaults::max_conversions_per_click")]
    pub max_conversions_per_click: u32,
    /// The largest conversion value accepted, base currency (default
    /// "100000"); more gets 400.
    #[serde(default = "defaults::max_conversion_value")]
    pub max_conversion_value: String,
    /// How old (by its `ts`) a signed postback may be, seconds (default
    /// 600); older ones get 400.
    #[serde(default = "defaults::postback_max_age_secs")]
    pub postback_max_age_secs: i64,
    /// Most dedup claims (bid and event) remembered (default 20,000,000).
    /// At the bound, new notices are refused with 503 (exchanges retry)
    /// and `bullseye_dedup_at_capacity` is 1: shedding would bill twice.
    #[serde(default = "defaults::max_dedup_entries")]
    pub max_dedup_entries: usize,
    /// Proxies and load balancers in front of the bidder (CIDR ranges,
    /// default none). Only from a peer in them is `X-Forwarded-For` read,
    /// and the client is its rightmost address not in them (the leftmost
    /// is whatever the client wrote).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// One `[[postback]]`: where an advertiser's conversion-postback secret
/// comes from. The secret is `BULLSEYE_POSTBACK_SECRET_{ADVERTISER}` (the
/// advertiser's name upper-cased, other characters `_`) when set, else the
/// first line of `secret_file`; at least 32 bytes either way. Conversions
/// of an advertiser without one are refused (403).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostback {
    /// The advertiser, as campaigns name it (`campaign.advertiser`).
    pub advertiser: String,
    /// A file holding the secret.
    pub secret_file: Option<String>,
    /// A file holding the previous secret, still accepted during a
    /// rotation.
    pub previous_secret_file: Option<String>,
}

/// One `[[exchange]]`: an ad exchange that sends us bid requests.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExchange {
    /// Unique name, the `{name}` of `/openrtb2/bid/{name}`: letters, digits,
    /// `-` or `_`. The exchange named `default` serves `/openrtb2/bid`.
    pub name: String,
    /// Our seat id at this exchange (checked against `wseat`/`bseat`;
    /// default `bullseye`).
    #[serde(default = "defaults::seat")]
    pub seat: String,
    /// The notice that bills an impression: `burl` (default) or `nurl`.
    #[serde(default = "defaults::billing_event")]
    pub billing_event: BillingEvent,
    /// Milliseconds subtracted from `tmax` for the network (default 30).
    #[serde(default = "defaults::network_allowance_ms")]
    pub network_allowance_ms: u64,
    /// Whether the exchange calls `burl` (default true).
    #[serde(default = "defaults::sends_burl")]
    pub sends_burl: bool,
    /// Whether the exchange calls `lurl` (default false).
    #[serde(default = "defaults::sends_lurl")]
    pub sends_lurl: bool,
    /// Minutes after a bid in which its win or billing notice is charged
    /// (1 to 60, default 15); the bid's budget reservation lives as long.
    /// A notice after it is recorded as late and not charged. `imp.exp`
    /// shortens it for an impression.
    #[serde(default = "defaults::notice_window_minutes")]
    pub notice_window_minutes: u32,
    /// Currency the exchange assumes when a request has no `cur` (default:
    /// the base currency).
    pub currency: Option<String>,
    /// How a no-bid is answered: `"204"` (default, an empty 204) or
    /// `"nbr"` (200 with `{"id", "nbr"}`, the OpenRTB no-bid reason code).
    #[serde(default)]
    pub no_bid: NoBidAnswer,
    /// Largest `imp.qty.multiplier` bid on (DOOH: one display seen by
    /// several people, billed as that many impressions); default 1, so a
    /// multiplier above 1 gets no bid unless the exchange is configured.
    #[serde(default = "defaults::max_qty")]
    pub max_qty: f64,
    /// The exchange's user-sync URL, where `GET /sync/{exchange}` sends the
    /// browser: `{UID}` is replaced with our id, `{GDPR}`, `{GDPR_CONSENT}`,
    /// `{US_PRIVACY}`, `{GPP}` and `{GPP_SID}` with the sync request's own
    /// parameters (percent-encoded). Without it the exchange has no sync.
    pub sync_url: Option<String>,
    /// `[[exchange.segment_map]]`: the exchange's data segments
    /// (`user.data`) that stand for ours.
    #[serde(default)]
    pub segment_map: Vec<RawSegmentMap>,
    /// A file holding the exchange's price encryption key (base64, as the
    /// exchange hands it out), for exchanges that encrypt
    /// `${AUCTION_PRICE}`; `BULLSEYE_PRICE_ENCRYPTION_KEY_{EXCHANGE}`
    /// overrides it. Needs the integrity key too.
    pub price_encryption_key_file: Option<String>,
    /// A file holding the exchange's price integrity key;
    /// `BULLSEYE_PRICE_INTEGRITY_KEY_{EXCHANGE}` overrides it.
    pub price_integrity_key_file: Option<String>,
}

/// One `[[exchange.segment_map]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegmentMap {
    /// The data provider: `user.data[].id`, or its `name`.
    pub data: String,
    /// The provider's segment id (`user.data[].segment[].id`).
    pub segment: String,
    /// Our segment (a taxonomy path such as `interest/sports`).
    pub to: String,
}

impl RawExchange {
    /// An exchange with every key but its name at the default.
    pub fn named(name: &str) -> RawExchange {
        RawExchange {
            name: name.to_string(),
            seat: defaults::seat(),
            billing_event: defaults::billing_event(),
            network_allowance_ms: defaults::network_allowance_ms(),
            sends_burl: defaults::sends_burl(),
            sends_lurl: defaults::sends_lurl(),
            no_bid: NoBidAnswer::default(),
            max_qty: defaults::max_qty(),
            sync_url: None,
            segment_map: Vec::new(),
            notice_window_minutes: defaults::notice_window_minutes(),
            currency: None,
            price_encryption_key_file: None,
            price_integrity_key_file: None,
        }
    }
}

/// A file in `bidder-config/campaigns/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCampaignFile {
    /// The file's `[[campaign]]` entries; a file may hold none.
    #[serde(default, rename = "campaign")]
    pub campaigns: Vec<RawCampaign>,
}

/// One `[[campaign]]`: what an advertiser buys, at what price, within what
/// budget, with which ads. Amounts are decimal strings (e.g. `"2.50"`, at
/// most six decimals) in the base currency (`bidding.currency`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCampaign {
    /// Unique across all campaign files: 1–64 letters, digits, `-`, `_` or
    /// `.`. It keys the campaign's live state (spend, pacing) and its billing
    /// records.
    pub id: String,
    /// Advertiser name, shown by the admin API.
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
    /// `active` (default) or `paused`.
    #[serde(default = "defaults::status")]
    pub status: Status,
    /// `cpm`, `cpc`, `cpa` or `cps`.
    pub pricing: Pricing,
    /// Max CPM (`cpm`) or max CPC (`cpc`), a decimal in the base currency;
    /// not used by `cpa` and `cps` campaigns (their cap is `max_cpm`).
    pub max_bid: Option<String>,
    /// Prior predicted CTR for `cpc` campaigns, e.g. "0.002".
    pub pctr_prior: Option<String>,
    /// The cost per conversion a `cpa` campaign aims at, base currency.
    pub target_cpa: Option<String>,
    /// The share of a sale's value a `cps` campaign pays, e.g. "0.08".
    pub cps_share: Option<String>,
    /// The most a value-based (`cpc`, `cpa`, `cps`) campaign bids per
    /// thousand impressions whatever the prediction, base currency:
    /// required for `cpa` and `cps`; `cpc` defaults to
    /// `bidding.max_cpm_cap`.
    pub max_cpm: Option<String>,
    /// Prior P(conversion | impression) of `cpa` and `cps` campaigns
    /// (default "0.0001"), until conversions are learned.
    pub pcvr_prior: Option<String>,
    /// How long after a click its conversions are credited to the campaign
    /// (default "7d"; days, hours or minutes: "7d", "12h", "30m").
    pub click_window: Option<String>,
    /// How long after an impression a conversion without a click is
    /// credited to the campaign (default "1d"; "0": no view-through).
    pub view_window: Option<String>,
    /// Prior order value of a `cps` campaign's conversion, base currency
    /// (required for `cps`), until conversion values are learned.
    pub order_value_prior: Option<String>,
    /// Most the campaign spends per day (days in its `time_zone`), a decimal
    /// in the base currency. May be left out only with both `total_budget`
    /// and `end`: each day's budget is then what is left of the total spread
    /// evenly over the flight days left.
    pub daily_budget: Option<String>,
    /// Lifetime budget across every day, a decimal in the base currency;
    /// none means no limit.
    pub total_budget: Option<String>,
    /// `even` (default) or `asap`.
    #[serde(default = "defaults::pacing")]
    pub pacing: PacingMode,
    /// IANA time zone of day-parting and the daily budget reset (default UTC).
    #[serde(default = "defaults::time_zone")]
    pub time_zone: String,
    /// Flight dates `YYYY-MM-DD` in the campaign's time zone; `end` inclusive.
    pub start: Option<String>,
    /// Last flight day, inclusive, `YYYY-MM-DD` in the campaign's time zone;
    /// none means open-ended.
    pub end: Option<String>,
    /// Exchanges to buy on (default: all).
    #[serde(default)]
    pub exchanges: Vec<String>,
    /// `[campaign.targeting]`: which impressions to bid on. Left out, no
    /// restriction.
    #[serde(default)]
    pub targeting: RawTargeting,
    /// `[[campaign.creative]]`: the ads; at least one.
    #[serde(default, rename = "creative")]
    pub creatives: Vec<RawCreative>,
    /// How the campaign chooses among its creatives that fit: `best`
    /// (default: the most valuable), `even`, `weighted` (by each creative's
    /// `weight`) or `optimise` (Thompson sampling on each creative's clicks
    /// and impressions).
    #[serde(default)]
    pub rotation: crate::campaigns::experiment::Rotation,
    /// `[campaign.experiment]`: an A/B test with an optional holdout (see
    /// `config/experiment.rs`).
    pub experiment: Option<super::experiment::RawExperiment>,
    /// Within one impression, an eligible campaign of the same advertiser
    /// with a higher priority goes before this one, even if it bids less
    /// (default 0; any integer). Across advertisers the best bid still
    /// wins: each advertiser competes with its highest-priority eligible
    /// campaign.
    #[serde(default)]
    pub priority: i32,
    /// `[campaign.capacity]`: responses per hour or day this campaign can
    /// take, past which it stops bidding; none by default.
    #[serde(default)]
    pub capacity: RawCapacity,
}

/// `[campaign.targeting.segments]`: audience segment rules, by segment path
/// (e.g. `interest/finance`). A user in a segment is also in the segments
/// above it, so `interest` matches a user in `interest/finance`. Without
/// consent to use personal data, a user is in no segment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegments {
    /// The user must be in at least one of these; empty means no such rule.
    #[serde(default)]
    pub any: Vec<String>,
    /// The user must be in every one of these.
    #[serde(default)]
    pub all: Vec<String>,
    /// The user must be in none of these.
    #[serde(default)]
    pub none: Vec<String>,
}

/// One `[[campaign.targeting.geo_radius]]` circle on the globe.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircle {
    /// Latitude of the centre, degrees, -90 to 90.
    pub lat: f64,
    /// Longitude of the centre, degrees, -180 to 180.
    pub lon: f64,
    /// Radius, kilometres, greater than 0.
    pub radius_km: f64,
}

/// `[campaign.targeting.age]`: an age range in years, from the request's
/// year of birth; requests without one do not match.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAge {
    /// Youngest age, inclusive (default 0).
    #[serde(default = "defaults::age_min")]
    pub min: u32,
    /// Oldest age, inclusive (default 150).
    #[serde(default = "defaults::age_max")]
    pub max: u32,
}

/// One `[[campaign.targeting.dayparts]]` entry: hours of the week, in the
/// campaign's time zone, when it may bid. The campaign bids in any hour one
/// of its entries covers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaypart {
    /// `mon` … `sun` (any case; only the first three letters count, so
    /// `Monday` is `mon`); none listed is every day.
    #[serde(default)]
    pub days: Vec<Day>,
    /// First hour (0–23, inclusive).
    pub from_hour: u32,
    /// Last hour (1–24, exclusive).
    pub to_hour: u32,
}

/// `[campaign.targeting.frequency]`: most impressions one user sees from the
/// campaign. A capped campaign does not bid for a user it cannot recognise.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFrequency {
    /// Impressions per user per UTC clock hour; none means no hourly cap.
    pub per_hour: Option<u32>,
    /// Impressions per user per UTC day; none means no daily cap.
    pub per_day: Option<u32>,
}

/// `[campaign.targeting]`: which impressions the campaign may bid on. Every
/// key is optional; an empty list (the default) is no restriction.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargeting {
    /// `[campaign.targeting.segments]`: who, by audience segment.
    #[serde(default)]
    pub segments: RawSegments,
    /// ISO-3166-1 alpha-3 country codes, as OpenRTB sends them.
    #[serde(default)]
    pub countries: Vec<String>,
    /// Region codes, as the request's `geo.region`.
    #[serde(default)]
    pub regions: Vec<String>,
    /// City names, as the request's `geo.city`.
    #[serde(default)]
    pub cities: Vec<String>,
    /// Circles; the request's reported location must fall inside one.
    #[serde(default)]
    pub geo_radius: Vec<RawCircle>,
    /// Age range; none means any age, unknown included.
    pub age: Option<RawAge>,
    /// `M`, `F`, `O` (either case).
    #[serde(default)]
    pub genders: Vec<GenderCode>,
    /// AdCOM device types (1 mobile/tablet, 2 PC, 3 CTV, 4 phone, 5 tablet…).
    #[serde(default)]
    pub device_types: Vec<i32>,
    /// Operating systems, as the request's `device.os` (e.g. `iOS`).
    #[serde(default)]
    pub os: Vec<String>,
    /// AdCOM connection types (1 ethernet, 2 wifi, 3–7 cellular).
    #[serde(default)]
    pub connection_types: Vec<i32>,
    /// IAB content categories of the site or app to bid on; a category
    /// covers its sub-categories (`IAB3` covers `IAB3-1`).
    #[serde(default)]
    pub categories_allow: Vec<String>,
    /// IAB content categories never to bid on, sub-categories included.
    #[serde(default)]
    pub categories_block: Vec<String>,
    /// Site domains or app bundles to bid on; a domain covers its
    /// sub-domains (`example.com` covers `www.example.com`).
    #[serde(default)]
    pub domains_allow: Vec<String>,
    /// Site domains or app bundles never to bid on, sub-domains included.
    #[serde(default)]
    pub domains_block: Vec<String>,
    /// `[[campaign.targeting.dayparts]]`: when to bid; none means every hour.
    #[serde(default)]
    pub dayparts: Vec<RawDaypart>,
    /// `[campaign.targeting.frequency]`: per-user impression caps; none by
    /// default.
    #[serde(default)]
    pub frequency: RawFrequency,
    /// Deal ids this campaign may bid in.
    #[serde(default)]
    pub deals: Vec<String>,
    /// Bid only inside the listed deals.
    #[serde(default)]
    pub deals_only: bool,
}

/// One `[[campaign.creative]]`: an ad. Give exactly one of `adm` and
/// `image_url`, except for native creatives, which give their assets
/// (`title`, `[[campaign.creative.image]]`, `[[campaign.creative.data]]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCreative {
    /// Creative id, sent to the exchange as `adid` and `crid`; it also names
    /// the creative in tracking URLs and learned CTRs.
    pub id: String,
    /// `banner`, `video`, `audio` or `native`.
    pub format: MediaType,
    /// Width, pixels; required for banners, which must match a slot's size
    /// exactly.
    pub w: Option<i64>,
    /// Height, pixels; required for banners.
    pub h: Option<i64>,
    /// Ready-made markup: HTML (banner), VAST (video/audio); not for native
    /// creatives, whose response is written from their assets.
    pub adm: Option<String>,
    /// An image for a banner; the bidder writes the HTML around it.
    pub image_url: Option<String>,
    /// Native: the title (headline), filling title assets of at least its
    /// length in characters.
    pub title: Option<String>,
    /// Native: `[[campaign.creative.image]]`, the images (main image,
    /// icon), tried in order for each image asset.
    #[serde(default)]
    pub image: Vec<RawNativeImage>,
    /// Native: `[[campaign.creative.data]]`, the data texts (sponsored by,
    /// description, call to action, …), tried in order for each data asset.
    #[serde(default)]
    pub data: Vec<RawNativeData>,
    /// Where a click lands.
    pub landing_url: String,
    /// Video/audio MIME type (default `video/mp4` / `audio/mp4`).
    pub mime: Option<String>,
    /// Video/audio duration in seconds.
    pub duration: Option<i64>,
    /// AdCOM creative attributes, checked against `battr`.
    #[serde(default)]
    pub attr: Vec<i32>,
    /// `active` (default) or `paused`: a paused creative is never chosen.
    #[serde(default)]
    pub status: CreativeStatus,
    /// Video/audio: the VAST (or DAAST) version of `adm`, e.g. `"4.1"`;
    /// read from its root element when absent. A slot's `protocols` must
    /// allow it.
    pub vast_version: Option<String>,
    /// Video/audio: API frameworks the creative needs (AdCOM codes: 2
    /// VPAID 2, 7 OMID, 8 SIMID); the slot's `api` must list each.
    #[serde(default)]
    pub api: Vec<i32>,
    /// Video: `true` only where the player lets viewers skip it, `false`
    /// never where it would be skippable; absent: either.
    pub skippable: Option<bool>,
    /// Video: placements it may run in (`instream`, `accompanying`,
    /// `interstitial`, `standalone`); empty: any.
    #[serde(default)]
    pub placements: Vec<String>,
    /// Video/audio: when in the content it may run (`pre`, `mid`, `post`);
    /// empty: any.
    #[serde(default)]
    pub start_delays: Vec<String>,
    /// `true` only in rewarded slots (`imp.rwdd`), `false` never in them;
    /// absent: either.
    pub rewarded: Option<bool>,
    /// Its share under `rotation = "weighted"`, relative to the other
    /// creatives' (a positive integer, default 1).
    pub weight: Option<u32>,
}

/// Whether a creative may be chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreativeStatus {
    /// Chosen when it fits.
    #[default]
    Active,
    /// Never chosen.
    Paused,
}

/// One `[[campaign.creative.image]]` of a native creative.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNativeImage {
    /// `main` (3), `icon` (1), or an image asset type number (500+: an
    /// exchange's own). An icon also answers a Native 1.1 logo (2).
    #[serde(rename = "type", deserialize_with = "image_type")]
    pub kind: i32,
    /// Where the image is; https.
    pub url: String,
    /// Width, pixels.
    pub w: i64,
    /// Height, pixels.
    pub h: i64,
    /// MIME type (default: from the URL's extension: `.jpg`, `.png`,
    /// `.gif`, `.webp`, `.avif`, `.svg`); an image of unknown type fills
    /// no asset that lists `mimes`.
    pub mime: Option<String>,
}

/// One `[[campaign.creative.data]]` of a native creative.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNativeData {
    /// `sponsored` (1), `desc` (2), `rating`, `likes`, `downloads`,
    /// `price`, `saleprice`, `phone`, `address`, `desc2`, `displayurl`,
    /// `ctatext` (12), or a data asset type number.
    #[serde(rename = "type", deserialize_with = "data_type")]
    pub kind: i32,
    /// The text shown.
    pub value: String,
}

/// An asset type as a name or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum NameOrNumber {
    Number(i64),
    Name(String),
}

/// An asset type: one of `names`, or a positive number.
fn asset_type<'de, D: Deserializer<'de>>(deserializer: D, names: &[(&str, i32)]) -> Result<i32, D::Error> {
    let known = || names.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
    match NameOrNumber::deserialize(deserializer)? {
        NameOrNumber::Number(n) if n > 0 && n <= i64::from(i32::MAX) => Ok(n as i32),
        NameOrNumber::Number(n) => Err(serde::de::Error::custom(format!(
            "type {n} is not a positive asset type number"
        ))),
        NameOrNumber::Name(name) => names
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name.trim()))
            .map(|(_, number)| *number)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("unknown type {name:?}: expected {} or a number", known()))
            }),
    }
}

fn image_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    asset_type(deserializer, &crate::openrtb::native::image_type::NAMES)
}

fn data_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    asset_type(deserializer, &crate::openrtb::native::data_type::NAMES)
}

/// A table left out means every key at its default: the same values as the
/// `#[serde(default = "…")]` of its fields, written nowhere else.
macro_rules! default_when_absent {
    ($($table:ty),*) => {$(
        impl Default for $table {
            fn default() -> Self {
                defaults::absent()
            }
        }
    )*};
}

default_when_absent!(
    RawSettings,
    RawServer,
    RawBidding,
    RawAudience,
    RawSecrets,
    RawTraffic,
    RawTracking,
    RawAdmin,
    RawCampaignFile,
    RawSegments,
    RawFrequency,
    RawTargeting
);

/// A targeted gender, `M`, `F` or `O` in either case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenderCode(pub Gender);

impl<'de> Deserialize<'de> for GenderCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Gender::parse(&text)
            .map(GenderCode)
            .ok_or_else(|| serde::de::Error::unknown_variant(&text, &["M", "F", "O"]))
    }
}

/// A day of the week, Monday first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Day {
    /// Monday (`mon`).
    Mon,
    /// Tuesday (`tue`).
    Tue,
    /// Wednesday (`wed`).
    Wed,
    /// Thursday (`thu`).
    Thu,
    /// Friday (`fri`).
    Fri,
    /// Saturday (`sat`).
    Sat,
    /// Sunday (`sun`).
    Sun,
}

impl Day {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    const ALL: [Day; 7] = [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri, Day::Sat, Day::Sun];

    /// Its first three letters, in any case: `mon`, `Monday`, `MON`.
    fn parse(text: &str) -> Option<Day> {
        let prefix = text.get(..3)?;
        let i = Day::NAMES.iter().position(|name| prefix.eq_ignore_ascii_case(name))?;
        Some(Day::ALL[i])
    }

    /// 0 for Monday … 6 for Sunday.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Day::parse(&text).ok_or_else(|| serde::de::Error::unknown_variant(&text, &Day::NAMES))
    }
}
