//! Validated settings: what `bullseye.toml` means once checked.
//!
//! The typed form of the server, bidding, FX, audience, secrets, traffic,
//! click-quality and exchange settings. It sits below [`crate::campaigns`]
//! (which may read it) and below [`crate::config`] (which builds it from
//! TOML), so every layer can use settings without importing the loader.

pub mod access;
pub mod contact;
mod ip;

use std::path::PathBuf;
use std::time::Duration;

pub use access::{AdminToken, Advertiser, Role};
pub use contact::{Capacity, ContactCap, ContactRules};
pub use ip::IpRange;

use crate::money::{Currency, FxTable, Micros};

/// The exchange of requests posted to `/openrtb2/bid` (no exchange in the
/// path); added by validation when the config does not name it.
pub const DEFAULT_EXCHANGE: &str = "default";

/// An advertiser's postback secret, and the previous one during a
/// rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostbackSecret {
    /// The secret postbacks are signed with now.
    pub current: Vec<u8>,
    /// The one before, still accepted.
    pub previous: Option<Vec<u8>>,
}

/// Sanity caps on max bids, base-currency micros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxBidCaps {
    /// The highest max CPM.
    pub cpm: Micros,
    /// The highest max CPC.
    pub cpc: Micros,
}

/// Default bound on dedup claims (bid and event): 40 M, a day of notices at
/// ~460 a second (about 150 won impressions a second), about 2 GB at most
/// (about 50 bytes a claim, `live::dedup`).
pub const DEFAULT_MAX_DEDUP_ENTRIES: usize = 40_000_000;

/// Default bound on (user, campaign) frequency counts: 50 M, a few GB at
/// most.
pub const DEFAULT_MAX_FREQUENCY_ENTRIES: usize = 50_000_000;

/// The longest notice window an exchange may set (minutes): budget
/// reservations are kept in a ring of minutes that must outlast it.
pub const MAX_NOTICE_WINDOW_MINUTES: u32 = 60;

/// An exchange's position in [`Settings::exchanges`]: what the bid path and
/// [`ExchangeSet`]s hold instead of names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExchangeId(pub u32);

/// A set of exchanges, any number of them: all, or bits by [`ExchangeId`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeSet {
    /// Every exchange, present and future.
    All,
    /// Bit `id` of word `id / 64` set for each member.
    Only(Box<[u64]>),
}

impl ExchangeSet {
    /// The set of these exchanges.
    pub fn of(ids: impl IntoIterator<Item = ExchangeId>) -> ExchangeSet {
        let mut words: Vec<u64> = Vec::new();
        for ExchangeId(id) in ids {
            let word = id as usize / 64;
            if words.len() <= word {
                words.resize(word + 1, 0);
            }
            words[word] |= 1 << (id % 64);
        }
        ExchangeSet::Only(words.into_boxed_slice())
    }

    /// True when `id` is a member.
    pub fn contains(&self, ExchangeId(id): ExchangeId) -> bool {
        match self {
            ExchangeSet::All => true,
            ExchangeSet::Only(words) => words
                .get(id as usize / 64)
                .is_some_and(|word| word & (1 << (id % 64)) != 0),
        }
    }
}

/// Which notice bills a won impression (`burl` or `nurl` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingEvent {
    /// The billing notice (`burl`): the exchange calls it when the
    /// impression is billable.
    Burl,
    /// The win notice (`nurl`): the impression is billed when the auction is
    /// won.
    Nurl,
}

/// How an exchange wants a no-bid answered (`no_bid` in the config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub enum NoBidAnswer {
    /// `204 No Content`, empty (the default).
    #[default]
    #[serde(rename = "204")]
    Empty,
    /// `200` with `{"id": <request id>, "nbr": <reason code>}`.
    #[serde(rename = "nbr")]
    Nbr,
}

/// How a CPC, CPA or CPS campaign's value per impression is predicted
/// (`bidding.prediction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionMode {
    /// Per impression, by the learned click and conversion models
    /// (`outcome`), falling back to the campaign's rate while they are cold.
    #[default]
    Impression,
    /// One smoothed rate per campaign and creative, whatever the impression.
    Campaign,
}

/// How first-price bids are shaded below value (`bidding.shading`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShadingMode {
    /// Learned per exchange, placement and hour from win and loss signals,
    /// the fixed factor until a slice has data.
    #[default]
    Learned,
    /// Always `bidding.first_price_shading`.
    Fixed,
}

/// Where the user id is read from (`buyeruid`, `user_id` or `ifa` in the
/// config, or `eid:<source>` for an extended id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserIdSource {
    /// `user.buyeruid`: our id for the user, as the exchange maps it (or
    /// the exchange's own id, resolved to ours through user sync).
    BuyerUid,
    /// `user.id`: the exchange's id for the user.
    UserId,
    /// `device.ifa`: the device's advertising id; an all-zero one (sent when
    /// tracking is limited) is no id.
    Ifa,
    /// The first id of `user.eids` (or `user.ext.eids`) from this source
    /// (`eid:liveramp.com`), e.g. a universal id preferred to `buyeruid`.
    Eid(String),
}

impl<'de> serde::Deserialize<'de> for UserIdSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "buyeruid" => Ok(UserIdSource::BuyerUid),
            "user_id" | "user.id" => Ok(UserIdSource::UserId),
            "ifa" => Ok(UserIdSource::Ifa),
            _ => match text.strip_prefix("eid:").map(str::trim) {
                Some(source) if !source.is_empty() => Ok(UserIdSource::Eid(source.to_ascii_lowercase())),
                _ => Err(serde::de::Error::custom(format!(
                    "unknown user id source {text:?}: expected buyeruid, user_id, ifa or eid:<source>"
                ))),
            },
        }
    }
}

/// An exchange's data segment mapped to one of ours (`[[exchange.segment_map]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentMapping {
    /// The data provider, by `user.data[].id` or `.name`.
    pub data: String,
    /// The provider's segment id (`user.data[].segment[].id`).
    pub segment: String,
    /// Our segment and its ancestors.
    pub to: Vec<crate::audience::SegmentKey>,
}

/// One exchange's settings, from its `[[exchange]]` table.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Unique name, as in `/openrtb2/bid/{name}`.
    pub name: String,
    /// Our seat id at this exchange (checked against `wseat`/`bseat`); the
    /// seat of campaigns that name none.
    pub seat: String,
    /// The notice that bills a won impression.
    pub billing_event: BillingEvent,
    /// Time taken off the request's `tmax` for the network.
    pub network_allowance: Duration,
    /// Whether the exchange calls `burl`; `burl` billing needs it.
    pub sends_burl: bool,
    /// Whether the exchange calls `lurl` (loss notices).
    pub sends_lurl: bool,
    /// How long after a bid its win or billing notice is charged (and its
    /// budget reservation held).
    pub notice_window: Duration,
    /// Currency of requests that carry no `cur`: the configured one, else the
    /// base currency.
    pub currency: Currency,
    /// How a no-bid is answered.
    pub no_bid: NoBidAnswer,
    /// Largest `imp.qty.multiplier` bid on, thousandths (1000 = 1).
    pub max_qty_milli: i64,
    /// Where user sync sends the browser (`{UID}` and privacy macros);
    /// `None`: the exchange has no sync.
    pub sync_url: Option<String>,
    /// The exchange's data segments that stand for ours.
    pub segment_map: Vec<SegmentMapping>,
    /// The keys of the exchange's encrypted `${AUCTION_PRICE}` (Google-style
    /// price confirmation); `None` when it sends clearing prices in the
    /// clear. Secrets: their `Debug` form is redacted.
    pub price_keys: Option<crate::encrypted_price::PriceKeys>,
}

/// The validated `bullseye.toml`, with the environment's secrets applied.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The config directory the settings were read from.
    pub config_dir: PathBuf,
    /// Base URL of the tracking endpoints, without a trailing `/`; `None`
    /// means `http://` + the listen address.
    pub public_url: Option<String>,
    /// Largest accepted request body, bytes, compressed or not.
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers; it also bounds how long
    /// an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body once its headers are in.
    pub body_read_timeout: Duration,
    /// Most simultaneous connections; past it, new ones get 503.
    pub max_connections: usize,
    /// Of those, kept for health checks and tracking.
    pub reserved_connections: usize,
    /// Most simultaneous connections from one (non-exempt) address.
    pub max_connections_per_ip: usize,
    /// How long a new connection may take to send its first bytes.
    pub first_request_timeout: Duration,
    /// The time to answer a bid request that carries no `tmax` (or 0).
    pub default_tmax: Duration,
    /// The base currency and the rates of the other currencies into it.
    pub fx: FxTable,
    /// First-price shading factor in parts per million.
    pub shading_ppm: u32,
    /// Per-impression or per-campaign prediction (`bidding.prediction`).
    pub prediction: PredictionMode,
    /// Learned or fixed first-price shading (`bidding.shading`).
    pub shading: ShadingMode,
    /// Where the user id is read from, first found wins.
    pub user_id_order: Vec<UserIdSource>,
    /// Our IAB TCF vendor id; when `Some`, GDPR consent must include it.
    pub gdpr_vendor_id: Option<u16>,
    /// Caps on campaigns' max bids (base currency): CPM and CPC.
    pub max_bid_caps: MaxBidCaps,
    /// Impressions of one request bid on (the first ones).
    pub max_imps_per_request: usize,
    /// Most dedup claims remembered.
    pub max_dedup_entries: usize,
    /// Days a raw billing-log day file is kept after its day.
    pub ledger_retention_days: u32,
    /// Advertisers' conversion-postback secrets, by advertiser name.
    pub postback_secrets: std::collections::BTreeMap<String, PostbackSecret>,
    /// Conversions counted per click.
    pub max_conversions_per_click: u32,
    /// The largest conversion value accepted, base currency.
    pub max_conversion_value: Micros,
    /// How old a signed postback may be, seconds.
    pub postback_max_age_secs: i64,
    /// Most (user, campaign) frequency counts held.
    pub max_frequency_entries: usize,
    /// The audience snapshot file (a relative path in the config is taken
    /// from the config directory); `None` means none configured.
    pub audience_snapshot: Option<PathBuf>,
    /// Most user-sync matches kept.
    pub max_user_matches: usize,
    /// Users the real-time audience overlay holds at most.
    pub overlay_max_users: usize,
    /// `[cluster] redis_url`: the Redis of the cluster this node joins,
    /// unless `--redis` or `BULLSEYE_REDIS_URL` name another.
    pub cluster_redis_url: Option<String>,
    /// `[sampling]`: the sample of bid requests kept for the forecast.
    pub sampling: Sampling,
    /// The URL-signing key.
    pub signing_key: Vec<u8>,
    /// The key before the last rotation, still accepted when verifying;
    /// `None` when there is none.
    pub previous_signing_key: Option<Vec<u8>>,
    /// True when the signing key is the bundled development one.
    pub signing_key_is_dev: bool,
    /// Admin API tokens (`[[admin.token]]`, and `BULLSEYE_ADMIN_TOKEN` as
    /// an admin named `env`); none means the admin API refuses every
    /// request (401).
    pub admin_tokens: Vec<AdminToken>,
    /// True when an admin token is the bundled development one.
    pub admin_token_is_dev: bool,
    /// Every advertiser (`[[advertiser]]`), in config order.
    pub advertisers: Vec<Advertiser>,
    /// Finds crawler and automation marks in user agents.
    pub user_agent_screen: UserAgentScreen,
    /// Data-centre IP ranges; requests from them get no bid.
    pub datacenter_ranges: Vec<IpRange>,
    /// Every configured exchange, [`DEFAULT_EXCHANGE`] among them; an
    /// [`ExchangeId`] is a position in this list.
    pub exchanges: Vec<Exchange>,
    /// Which clicks are billed.
    pub click_rules: ClickRules,
}

/// Click-quality limits: clicks breaking them are logged, not billed.
#[derive(Clone, Debug)]
pub struct ClickRules {
    /// A click sooner than this after its impression is implausible.
    pub min_delay: Duration,
    /// Billable clicks per user per clock hour.
    pub max_per_user_hour: u32,
    /// Billable clicks per client IP address per clock hour.
    pub max_per_ip_hour: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpRange>,
}

impl Settings {
    /// The currency of budgets, bids and spend.
    pub fn base_currency(&self) -> Currency {
        self.fx.base()
    }

    /// The advertiser with this id, if configured.
    pub fn advertiser(&self, id: &str) -> Option<&Advertiser> {
        self.advertisers.iter().find(|a| a.id == id)
    }

    /// The exchange called `name`, if it is configured.
    pub fn exchange(&self, name: &str) -> Option<&Exchange> {
        self.exchanges.iter().find(|e| e.name == name)
    }

    /// The exchange of requests whose path names none
    /// ([`DEFAULT_EXCHANGE`], which validation always provides).
    pub fn default_exchange(&self) -> &Exchange {
        self.exchange_at(self.default_exchange_id())
    }

    /// The id of [`DEFAULT_EXCHANGE`].
    pub fn default_exchange_id(&self) -> ExchangeId {
        self.exchange_id(DEFAULT_EXCHANGE).unwrap_or(ExchangeId(0))
    }

    /// The id of the exchange called `name`, if it is configured.
    pub fn exchange_id(&self, name: &str) -> Option<ExchangeId> {
        let position = self.exchanges.iter().position(|e| e.name == name)?;
        Some(ExchangeId(position as u32))
    }

    /// The exchange with this id (ids come from these settings).
    pub fn exchange_at(&self, id: ExchangeId) -> &Exchange {
        &self.exchanges[id.0 as usize]
    }
}

/// Case-insensitive user-agent marks: automation tools (non-human traffic)
/// and crawlers, matched in one pass (Aho-Corasick).
#[derive(Clone, Debug)]
pub struct UserAgentScreen {
    matcher: aho_corasick::AhoCorasick,
    /// Patterns below this index are automation marks; the rest crawlers.
    automation: usize,
}

/// What a user agent gives away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UserAgentKind {
    /// A browser-automation tool (headless browser, WebDriver): non-human
    /// traffic.
    Automation,
    /// A crawler or an HTTP library.
    Crawler,
}

impl UserAgentScreen {
    /// A screen for these automation marks and these crawler marks, each
    /// found anywhere in a user agent, in any case.
    pub fn new(automation: &[&str], crawlers: &[String]) -> UserAgentScreen {
        let patterns: Vec<&str> = automation
            .iter()
            .copied()
            .chain(crawlers.iter().map(String::as_str))
            .collect();
        let matcher = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(patterns)
            .expect("a few short literal patterns always build");
        UserAgentScreen {
            matcher,
            automation: automation.len(),
        }
    }

    /// What `user_agent` gives away; `None` when it carries no mark.
    pub fn classify(&self, user_agent: &str) -> Option<UserAgentKind> {
        let found = self.matcher.find(user_agent)?;
        Some(if found.pattern().as_usize() < self.automation {
            UserAgentKind::Automation
        } else {
            UserAgentKind::Crawler
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_sets_hold_any_number_of_exchanges() {
        let set = ExchangeSet::of([ExchangeId(0), ExchangeId(63), ExchangeId(64), ExchangeId(200)]);
        for id in [0, 63, 64, 200] {
            assert!(set.contains(ExchangeId(id)), "{id}");
        }
        for id in [1, 62, 65, 128, 199, 201, 10_000] {
            assert!(!set.contains(ExchangeId(id)), "{id}");
        }
        assert!(ExchangeSet::All.contains(ExchangeId(10_000)));
        assert!(!ExchangeSet::of([]).contains(ExchangeId(0)));
    }
}

/// `[sampling]`, validated: which share of bid requests is kept for the
/// forecast, and how much disk the sample may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sampling {
    /// Requests kept per million (0: none; 1,000,000: all).
    pub rate_ppm: u32,
    /// The most `{data_dir}/sample/` holds, bytes.
    pub max_bytes: u64,
}
