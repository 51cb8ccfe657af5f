//! What a verified tracking request does.
//!
//! The impression pixel counts towards frequency caps and answers a 1×1
//! GIF; the click answers 302 to the creative's landing page with UTM
//! parameters; the win and billing notices check the clearing price.
//! Each event is recorded once per bid in the billing ledger before it is
//! acknowledged; the billable one (per the exchange's billing event) is
//! charged to the campaign's spend. Clicks go through the click-quality
//! rules: without an impression, too soon after it, or past a user's or an
//! address's hourly limit, a click is logged but not billed.
//!
//! A loss notice (`lurl`) is verified like the others, then gives its bid's
//! budget reservation back at once (unless a win or billing notice of the
//! bid came first: the win wins) and is written to the loss log, once per
//! bid ([`super::loss`]). An exchange configured with price keys sends its
//! clearing price encrypted ([`crate::encrypted_price`]): it is decrypted
//! and integrity-checked (a tampered one is refused as forged) before the
//! clearing-price rules apply.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use jiff::Timestamp;

use crate::campaigns::{Creative, Pricing};
use crate::clock::local_day;
use crate::encrypted_price::{PriceError, PriceKeys};
use crate::ledger::losses::{LossLog, LossRecord};
use crate::ledger::record::{COUNTS_IMPRESSION, COUNTS_WIN};
use crate::ledger::{EventKind, Ledger, LedgerError, Record};
use crate::live::replicated::{self, ReplicatedEvent};
use crate::live::shared::{Claim, ClaimOutcome};
use crate::live::{
    Embedded, LiveCampaign, LiveEvent, LiveStates, Reservation, Retained, SharedState, Target, World, apply,
};
use crate::money::Micros;
use crate::openrtb::LossReason;
use crate::outcome::learner::Observation;
use crate::outcome::model::Label;
use crate::pacing::budget::expiry_minute;
use crate::pacing::{FrequencyStore, cost};
use crate::settings::BillingEvent;
use crate::signing::{BidToken, Click, Event, SignedPricing, TrackingError, Verified};

use super::loss::{LossSignal, LossTaken, Settle, Settled};

/// A transparent 1×1 GIF.
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// How to answer a tracking request.
#[derive(Debug, PartialEq, Eq)]
pub enum TrackingReply {
    /// 200 with the pixel GIF.
    Pixel,
    /// 302 to this URL.
    Redirect(String),
    /// 204: notice taken.
    Accepted,
    /// 400: the exchange's clearing price is unusable.
    BadPrice(&'static str),
    /// 403: forged or altered URL.
    Forbidden(TrackingError),
    /// 404: the campaign or creative no longer exists.
    Gone,
    /// 503: the event could not be recorded durably; not acknowledged.
    Unavailable,
    /// 409: refused by a limit (conversions per click).
    Conflict(&'static str),
    /// 204: a loss notice taken, the first for its bid (counted by
    /// exchange and reason).
    Lost(LossTaken),
}

/// Parses and checks a clearing price (CPM, response currency). The
/// accepted grammar, after percent-decoding: digits, optionally a point and
/// one to six more digits (`1`, `0.85`, `1.234567`) — no sign, exponent,
/// spaces or other characters; the amount must be above zero and not above
/// the bid. Anything else is refused before the notice claims its bid, so
/// a corrected retry can still be billed.
pub fn clearing_price(raw: Option<&str>, token: &BidToken) -> Result<Micros, &'static str> {
    let raw = raw
        .filter(|p| !p.is_empty() && *p != crate::signing::AUCTION_PRICE_MACRO)
        .ok_or("missing clearing price")?;
    let text = crate::signing::decode_component(raw).ok_or("clearing price is not a decimal amount")?;
    if !is_plain_decimal(&text) {
        return Err("clearing price is not a plain decimal amount (digits, at most 6 decimals)");
    }
    let price = Micros::parse_decimal(&text).map_err(|_| "clearing price is out of range")?;
    within_bid(price, token)
}

/// The clearing price of an exchange that encrypts it (`keys`): the macro
/// value is percent-decoded, decrypted and integrity-checked, and the
/// amount (CPM micros) then meets the same rules as a plain one. A value
/// that fails its integrity check is forged or altered (403); one that is
/// not an encrypted price at all is unusable (400).
pub fn encrypted_clearing_price(
    raw: Option<&str>,
    token: &BidToken,
    keys: &PriceKeys,
) -> Result<Micros, TrackingReply> {
    let bad = TrackingReply::BadPrice;
    let raw = raw
        .filter(|p| !p.is_empty() && *p != crate::signing::AUCTION_PRICE_MACRO)
        .ok_or(bad("missing clearing price"))?;
    let text = crate::signing::decode_component(raw).ok_or(bad("clearing price is not an encrypted price"))?;
    let micros = keys.decrypt(&text).map_err(|e| match e {
        PriceError::Integrity => TrackingReply::Forbidden(TrackingError::BadPriceSignature),
        PriceError::Malformed => bad("clearing price is not an encrypted price (web-safe base64 of 28 bytes)"),
    })?;
    let price = i64::try_from(micros).map_err(|_| bad("clearing price is out of range"))?;
    within_bid(Micros(price), token).map_err(bad)
}

/// A minimum bid to win (`${AUCTION_MIN_TO_WIN}`), CPM in the response
/// currency, read with the clearing price's grammar: `Ok(None)` when the
/// exchange sent none (absent, empty, the macro left as it was), an error
/// when it sent one that cannot be read.
pub fn min_to_win(raw: Option<&str>) -> Result<Option<Micros>, &'static str> {
    const UNREADABLE: &str = "minimum bid to win is not a plain decimal amount";
    let Some(raw) = raw.filter(|p| !p.is_empty() && *p != crate::signing::AUCTION_MIN_TO_WIN_MACRO) else {
        return Ok(None);
    };
    let text = crate::signing::decode_component(raw).ok_or(UNREADABLE)?;
    if !is_plain_decimal(&text) {
        return Err(UNREADABLE);
    }
    Micros::parse_decimal(&text)
        .map(Some)
        .map_err(|_| "minimum bid to win is out of range")
}

/// A clearing price's bounds: above zero, not above the bid.
fn within_bid(price: Micros, token: &BidToken) -> Result<Micros, &'static str> {
    if price.0 <= 0 {
        return Err("clearing price is not above zero");
    }
    if price > token.bid_price {
        return Err("clearing price above the bid");
    }
    Ok(price)
}

/// `digits[.digits]`, at most six digits after the point.
fn is_plain_decimal(text: &str) -> bool {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && fraction.is_none_or(|f| digits(f) && f.len() <= 6)
}

/// Appends UTM parameters to a landing page, keeping its own query and
/// fragment.
pub fn with_utm(landing: &str, token: &BidToken, medium: &str, extra: &[(&str, &str)]) -> String {
    let (base, fragment) = match landing.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (landing, None),
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut url = String::with_capacity(landing.len() + 96);
    url.push_str(base);
    url.push(separator);
    let params = [
        ("utm_source", token.exchange.as_str()),
        ("utm_medium", medium),
        ("utm_campaign", &token.campaign),
        ("utm_content", &token.creative),
    ];
    for (i, (name, value)) in params.iter().chain(extra).enumerate() {
        if i > 0 {
            url.push('&');
        }
        url.push_str(name);
        url.push('=');
        for byte in value.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                url.push(byte as char);
            } else {
                url.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

/// How long after the bid its notices are accepted (and remembered for
/// deduplication).
pub const NOTICE_WINDOW_SECS: i64 = 24 * 3600;

/// How far back [`Tracker::restore`] rebuilds spend, counts and claims from
/// the billing log: the notice window, and the longest local day (25 hours,
/// a daylight-saving fall-back day: a restart in its last hour must restore
/// its first). Older records of the day files read count only contacts.
/// Those files (`ledger::RESTORE_DAYS`, by UTC day) hold the UTC day before
/// this one: they reach back past the start of a 25-hour local day in
/// every zone (a miss needs a standard offset strictly between UTC−1 and
/// UTC, which no zone has).
pub const RESTORE_HORIZON_SECS: i64 = NOTICE_WINDOW_SECS + 3600;
/// Longest wait of a duplicate for its original to become durable (the
/// ledger's group commit takes milliseconds); past it the duplicate gets
/// 503 and the exchange retries.
const DUPLICATE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// A duplicate whose original is held by another node (which cannot wake
/// it) looks at the claim again after this pause, doubling each time…
const RECHECK_FIRST: std::time::Duration = std::time::Duration::from_millis(20);
/// …up to this one.
const RECHECK_MAX: std::time::Duration = std::time::Duration::from_millis(320);

/// What a request's claim on its (bid, event) came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claimed {
    /// This request holds the claim: it records the event.
    New,
    /// A duplicate of an event already durable: acknowledge, do nothing.
    Durable,
    /// The original is still pending after the longest wait, or the dedup
    /// set is full: 503, the exchange retries.
    Undecided,
}

/// How many repeated clicks of one bid are worth a log line.
const REPEAT_LOG_LIMIT: u32 = 3;

/// Tracking state: the ledger, the shared-state seam (what each bid has
/// already recorded), click rates, and the frequency counts impressions
/// feed. Lock-free maps; entries older than the notice window (or the rate
/// window) are swept.
pub struct Tracker {
    /// The billing log: every billable event is written here before it is answered.
    pub ledger: Ledger,
    /// Frequency counts that impressions feed, shared with the bidder.
    pub frequency: Arc<FrequencyStore>,
    /// Dedup claims and events shared with other nodes (embedded alone).
    shared: Arc<dyn SharedState>,
    /// Campaigns' live states by id, for notices of campaigns that have
    /// left the index.
    live: Arc<LiveStates>,
    /// Woken whenever a claim settles (durable or given up), for the
    /// duplicates waiting on it.
    settled: tokio::sync::Notify,
    /// (user or IP, hour) → that hour and its billable clicks; (bid) →
    /// the hour and its repeated clicks (a log limit). Each entry expires
    /// with its own hour.
    click_rates: papaya::HashMap<u64, (i64, u32), foldhash::fast::RandomState>,
    /// Bids whose budget reservation has been given back (by a loss or
    /// billing notice), so that none is given back twice.
    settled_bids: Settled,
    /// Where loss notices are written.
    losses: LossLog,
    /// This node's tag in a cluster: bids made here carry it in their id,
    /// and only their reservations and held impressions are given back
    /// here; `None` alone (every bid is this node's).
    node_tag: Option<String>,
    /// The clicks and views conversions are credited by.
    pub touches: Arc<super::attribution::Touches>,
    /// Learns the click and conversion models from billed impressions,
    /// billable clicks and credited conversions; `None`: nothing learns.
    learner: Option<Arc<crate::outcome::learner::Learner>>,
    /// Learned first-price shading, counting wins and minimum bids to win.
    shading: Option<Arc<crate::pacing::shading::Shading>>,
}

fn claim_key(bid: &str, event: EventKind) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bid.as_bytes()) ^ (event as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The key of a bid's counted bits ([`SharedState::count_once`]).
fn counted_key(bid: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bid.as_bytes())
}

fn rate_key(kind: u8, who: &[u8], hour: i64) -> u64 {
    xxhash_rust::xxh3::xxh3_64(who) ^ ((hour << 8) | kind as i64) as u64
}

fn kind(event: Event) -> EventKind {
    match event {
        Event::Win => EventKind::Win,
        Event::Bill => EventKind::Bill,
        Event::Impression => EventKind::Impression,
        Event::Click => EventKind::Click,
        Event::Loss => EventKind::Loss,
    }
}

/// The notice that bills an impression at this exchange.
fn billing_kind(world: &World, exchange: &str) -> EventKind {
    match world.settings.exchange(exchange).map(|e| e.billing_event) {
        Some(BillingEvent::Nurl) => EventKind::Win,
        _ => EventKind::Bill,
    }
}

/// The parameters of a conversion postback.
pub(super) fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// The campaign a notice lands on: borrowed from the index, or (once it has
/// left the index) its retained live state.
enum NoticeCampaign<'w> {
    /// In the index, with where its events land.
    Indexed(&'w LiveCampaign, Target<'w>),
    Retained(Retained),
}

impl<'w> NoticeCampaign<'w> {
    /// The campaign of `id`: in the index, else retained after it left.
    fn of(world: &'w World, live: &LiveStates, id: &str) -> Option<NoticeCampaign<'w>> {
        match world.rank_of(id) {
            Some(rank) => Some(NoticeCampaign::Indexed(world.campaign(rank), world.target(rank))),
            None => live.get(id).map(NoticeCampaign::Retained),
        }
    }

    fn target(&self) -> Target<'_> {
        match self {
            NoticeCampaign::Indexed(_, target) => *target,
            NoticeCampaign::Retained(r) => r.target(),
        }
    }

    /// The campaign's advertiser.
    fn advertiser(&self) -> &str {
        match self {
            NoticeCampaign::Indexed(c, _) => &c.campaign.advertiser,
            NoticeCampaign::Retained(r) => &r.advertiser,
        }
    }

    /// What the campaign may spend on local day `today`: its daily budget,
    /// capped by or derived from its lifetime budget.
    fn budget_today(&self, today: i64) -> Micros {
        let rule = match self {
            NoticeCampaign::Indexed(c, _) => c.campaign.day_budget(),
            NoticeCampaign::Retained(r) => r.day_budget,
        };
        self.target().state.spend.budget_today(today, &rule)
    }
}

/// One verified tracking request on its way through the phases.
struct Notice<'w> {
    world: &'w World,
    now: Timestamp,
    event: Event,
    kind: EventKind,
    token: BidToken,
    /// The clearing price of a win or billing notice.
    clearing: Option<Micros>,
    /// What a loss notice says.
    loss: Option<LossSignal>,
    /// The campaign's live state, in the index or retained after it left.
    campaign: NoticeCampaign<'w>,
    /// The creative as configured now; `None` when it has been removed.
    creative: Option<&'w Creative>,
    /// The pricing at bid time (signed), else the campaign's current one.
    pricing: SignedPricing,
    /// A win or billing notice after its window: recorded, not charged.
    late: bool,
    /// The (bid, event) deduplication key.
    key: u64,
}

/// Why a conversion of a filtered click is not counted.
pub const CLICK_FILTERED: &str = "click_filtered";

/// The dedup key of an advertiser's order id.
fn order_key(advertiser: &str, order: &str) -> u64 {
    let mut text = String::with_capacity(advertiser.len() + order.len() + 1);
    text.push_str(advertiser);
    text.push('\0');
    text.push_str(order);
    claim_key(&text, EventKind::Conversion)
}

/// The key of a click's `n`th conversion slot.
fn slot_key(bid: &str, n: u32) -> u64 {
    claim_key(bid, EventKind::Conversion) ^ u64::from(n + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// A verified conversion postback.
struct Postback {
    /// The click it is attributed to, as its signed id carries it.
    click: Click,
    advertiser: String,
    /// The campaign's UTC offset now (its local day in reports).
    utc_offset: i32,
    pricing: Pricing,
    order: String,
    value: Option<Micros>,
}

impl Postback {
    /// The advertiser, pricing and UTC offset now of the click's campaign
    /// (in the index, else retained after it left).
    fn campaign_of(
        world: &World,
        live: &LiveStates,
        now: Timestamp,
        campaign: &str,
    ) -> Result<(String, Pricing, i32), TrackingReply> {
        let offset = |tz: &jiff::tz::TimeZone| tz.to_offset(now).seconds();
        Ok(match world.campaign_by_id(campaign) {
            Some(c) => (
                c.campaign.advertiser.clone(),
                c.campaign.pricing,
                offset(&c.campaign.time_zone),
            ),
            None => {
                let retained = live.get(campaign).ok_or(TrackingReply::Gone)?;
                let utc_offset = offset(&retained.time_zone);
                (retained.advertiser, Pricing::Cpm, utc_offset)
            }
        })
    }

    /// The ledger record of this conversion, under its click's exchange
    /// and place.
    fn record(self, now: Timestamp, filtered: Option<&str>) -> Record {
        let Click {
            campaign,
            creative,
            bid,
            exchange,
            place,
            arm,
        } = self.click;
        Record {
            at: now.as_microsecond(),
            event: EventKind::Conversion,
            bid,
            campaign,
            creative,
            exchange,
            clearing: None,
            charge: 0,
            billed: false,
            filtered: filtered.map(str::to_string),
            test: false,
            user: 0,
            pricing: self.pricing,
            value: self.value.map(|v| v.0),
            order: Some(self.order),
            domain: place.domain,
            country: place.country,
            device: place.device,
            utc_offset: Some(self.utc_offset),
            counts: Some(0),
            arm,
        }
    }

    /// Checks a postback: the click id's signature, the advertiser's HMAC
    /// over the query before `&sig=` (parameters `click`, `order`, `value`
    /// optionally, `ts`, in that order), its age and its value.
    fn verify(world: &World, live: &LiveStates, now: Timestamp, query: &str) -> Result<Postback, TrackingReply> {
        let forbidden = || TrackingReply::Forbidden(TrackingError::BadSignature);
        let (signed, sig) = query
            .rsplit_once("&sig=")
            .ok_or(TrackingReply::BadPrice("postback is not signed (sig)"))?;
        let names: Vec<&str> = signed
            .split('&')
            .map(|p| p.split_once('=').map_or(p, |(n, _)| n))
            .collect();
        if names != ["click", "order", "ts"] && names != ["click", "order", "value", "ts"] {
            return Err(TrackingReply::BadPrice(
                "postback parameters must be click, order, [value,] ts, sig",
            ));
        }
        let param = |name| query_param(signed, name).unwrap_or_default();
        let click = world.signer.verify_click_id(param("click")).ok_or_else(forbidden)?;
        let (advertiser, pricing, utc_offset) = Self::campaign_of(world, live, now, &click.campaign)?;
        if !signed_by(world, &advertiser, signed, sig) {
            return Err(forbidden());
        }
        let (order, value) = order_and_value(world, now, signed, names.contains(&"value"))?;
        Ok(Postback {
            click,
            advertiser,
            utc_offset,
            pricing,
            order,
            value,
        })
    }
}

/// True when `sig` is the advertiser's HMAC (current or previous postback
/// secret) over `signed`.
pub(super) fn signed_by(world: &World, advertiser: &str, signed: &str, sig: &str) -> bool {
    let Some(secret) = world.settings.postback_secrets.get(advertiser) else {
        return false;
    };
    let signature_ok = |key: &[u8]| crate::signing::hmac_hex_matches(key, signed.as_bytes(), sig);
    signature_ok(&secret.current) || secret.previous.as_deref().is_some_and(signature_ok)
}

/// A signed postback's `ts` (within `postback_max_age_secs` of now), its
/// order id (1–128 bytes) and, when `with_value`, its value (at most
/// `max_conversion_value`).
pub(super) fn order_and_value(
    world: &World,
    now: Timestamp,
    signed: &str,
    with_value: bool,
) -> Result<(String, Option<Micros>), TrackingReply> {
    let param = |name| query_param(signed, name).unwrap_or_default();
    let ts: i64 = param("ts")
        .parse()
        .map_err(|_| TrackingReply::BadPrice("ts is not Unix seconds"))?;
    if (now.as_second() - ts).abs() > world.settings.postback_max_age_secs {
        return Err(TrackingReply::BadPrice("postback too old (ts)"));
    }
    let order = crate::signing::decode_component(param("order"))
        .filter(|o| !o.is_empty() && o.len() <= 128)
        .ok_or(TrackingReply::BadPrice("order id missing or longer than 128 bytes"))?;
    if !with_value {
        return Ok((order, None));
    }
    let text = crate::signing::decode_component(param("value")).unwrap_or_default();
    let value =
        Micros::parse_amount(&text).map_err(|_| TrackingReply::BadPrice("conversion value is not a decimal amount"))?;
    if value > world.settings.max_conversion_value {
        return Err(TrackingReply::BadPrice(
            "conversion value above tracking.max_conversion_value",
        ));
    }
    Ok((order, Some(value)))
}

/// Why a win or billing notice after its window is not charged.
pub const LATE: &str = "late";
/// Why a CPC click once the day's budget is spent is not charged.
pub const BUDGET_SPENT: &str = "budget_spent";

impl Notice<'_> {
    /// The charge is counted at judgement (a CPC click), not at apply.
    fn precharges(&self) -> bool {
        matches!(self.pricing, SignedPricing::Cpc { .. }) && self.kind == EventKind::Click
    }

    /// This is the bid's billing notice, in time, for a real (not a test)
    /// bid.
    fn bills_impression(&self) -> bool {
        self.kind == billing_kind(self.world, &self.token.exchange) && !self.token.test && !self.late
    }

    /// What the caller gets back once the event is taken (or was already).
    fn reply(&self) -> TrackingReply {
        match self.event {
            Event::Impression => TrackingReply::Pixel,
            Event::Click => {
                let Some(creative) = self.creative else {
                    return TrackingReply::Gone;
                };
                let medium = match self.pricing {
                    SignedPricing::Cpc { .. } => "cpc",
                    SignedPricing::Cpm => "display",
                };
                let token = &self.token;
                let click_id = self.world.signer.click_id(&Click {
                    campaign: token.campaign.clone(),
                    creative: token.creative.clone(),
                    bid: token.bid_id.clone(),
                    exchange: token.exchange.clone(),
                    place: token.place.clone(),
                    arm: token.arm.clone(),
                });
                TrackingReply::Redirect(with_utm(
                    &creative.landing_url,
                    token,
                    medium,
                    &[("bz_click", &click_id)],
                ))
            }
            Event::Win | Event::Bill | Event::Loss => TrackingReply::Accepted,
        }
    }
}

impl Tracker {
    /// A tracker over the billing ledger, alone (embedded shared state),
    /// that knows only the campaigns of the world it is given.
    pub fn new(ledger: Ledger, frequency: Arc<FrequencyStore>) -> Tracker {
        Tracker::with_shared(
            ledger,
            frequency,
            Arc::new(Embedded::default()),
            Arc::new(LiveStates::default()),
        )
    }

    /// A tracker whose dedup claims and events go through `shared`, and
    /// which bills notices of campaigns gone from the index to their state
    /// in `live`.
    pub fn with_shared(
        ledger: Ledger,
        frequency: Arc<FrequencyStore>,
        shared: Arc<dyn SharedState>,
        live: Arc<LiveStates>,
    ) -> Tracker {
        Tracker {
            ledger,
            frequency,
            shared,
            live,
            settled: tokio::sync::Notify::new(),
            click_rates: papaya::HashMap::builder().hasher(Default::default()).build(),
            settled_bids: Settled::with_limit(crate::settings::DEFAULT_MAX_DEDUP_ENTRIES),
            losses: LossLog::none(),
            node_tag: None,
            touches: Arc::new(super::attribution::Touches::in_memory(
                super::attribution::DEFAULT_MAX_TOUCHES,
            )),
            learner: None,
            shading: None,
        }
    }

    /// The tracker counting first-price wins for `shading`.
    pub fn with_shading(self, shading: Arc<crate::pacing::shading::Shading>) -> Tracker {
        Tracker {
            shading: Some(shading),
            ..self
        }
    }

    /// The tracker feeding `learner`.
    pub fn with_learner(self, learner: Arc<crate::outcome::learner::Learner>) -> Tracker {
        Tracker {
            learner: Some(learner),
            ..self
        }
    }

    /// The tracker crediting conversions by `touches`.
    pub fn with_touches(self, touches: super::attribution::Touches) -> Tracker {
        Tracker {
            touches: Arc::new(touches),
            ..self
        }
    }

    /// The tracker of the node tagged `tag` in a cluster.
    pub fn with_node_tag(self, tag: Option<String>) -> Tracker {
        Tracker { node_tag: tag, ..self }
    }

    /// True when this node made `bid` (alone: every bid).
    fn own(&self, bid: &str) -> bool {
        replicated::is_own(self.node_tag.as_deref(), bid)
    }

    /// Queues an applied event for the other nodes of a cluster (nothing
    /// alone, nor for a win or billing notice that bills nothing); with the
    /// bid's reservation when another node made the bid (that node gives
    /// it back).
    fn replicate(&self, event: &LiveEvent<'_>, campaign: &str, token: Option<&BidToken>) {
        let outbox = &self.live.outbox;
        // A win or billing notice that bills nothing (the exchange bills
        // on the other one, or it came late) changes nothing elsewhere.
        let idle = matches!(event.kind, EventKind::Win | EventKind::Bill) && !event.billed_impression;
        if !outbox.enabled() || idle {
            return;
        }
        let bid = token.map_or(String::new(), |t| t.bid_id.clone());
        let reservation = token.filter(|t| !self.own(&t.bid_id)).map(|t| {
            Reservation {
                bid_value: t.bid_value,
                notice_until: t.notice_until,
                qty_milli: t.qty_milli,
                issued_at: t.issued_at,
            }
            .into()
        });
        outbox.event(ReplicatedEvent {
            kind: event.kind,
            at_micros: event.at.as_microsecond(),
            campaign: campaign.to_string(),
            creative: event.creative.to_string(),
            bid,
            user: event.user,
            billed_impression: event.billed_impression,
            billable_click: event.billable_click,
            test: token.is_some_and(|t| t.test),
            reservation,
        });
    }

    /// Applies an event another node of the cluster applied (read from
    /// Redis by `cluster::replication`): frequency and contact counts,
    /// today's counts, pCTR counts, capacity caps' responses; never spend
    /// (each node spends only what it leased). When this node made the bid
    /// that another node billed, lost or showed, the bid's reservation, or
    /// the impression and contact it held, is given back here (once).
    pub fn apply_replicated(&self, world: &World, event: &ReplicatedEvent) {
        let Some(campaign) = NoticeCampaign::of(world, &self.live, &event.campaign) else {
            return;
        };
        let Ok(at) = Timestamp::from_microsecond(event.at_micros) else {
            return;
        };
        let own = self.node_tag.is_some() && replicated::origin_of(&event.bid) == self.node_tag.as_deref();
        let settling = event.billed_impression || event.kind == EventKind::Loss;
        let settles = match event.reservation {
            Some(r) if own && settling && !event.test => {
                let minute = at.as_second().div_euclid(60);
                let settled = self
                    .settled_bids
                    .settle(counted_key(&event.bid), expiry_minute(r.notice_until), minute);
                (settled == Settle::First).then(|| r.into())
            }
            _ => None,
        };
        if event.kind == EventKind::Loss && settles.is_none() {
            return;
        }
        let live = LiveEvent {
            kind: event.kind,
            at,
            creative: &event.creative,
            charge: Micros::ZERO,
            precharged: false,
            billed_impression: event.billed_impression,
            billable_click: event.billable_click,
            value: Micros::ZERO,
            user: event.user,
            settles,
            releases_contact: own && event.kind == EventKind::Impression && !event.test,
        };
        apply(campaign.target(), &self.frequency, &live);
        // Billed elsewhere: the released reservation stays counted against
        // this node's budget leases (the billing node counts the charge
        // too), so its room is not reserved a second time.
        if let Some(reservation) = settles
            && event.billed_impression
        {
            crate::live::apply::settled_elsewhere(campaign.target(), at, reservation);
        }
    }

    /// The tracker, writing loss notices to `losses`.
    pub fn with_loss_log(self, losses: LossLog) -> Tracker {
        Tracker { losses, ..self }
    }

    /// The loss log (its dropped count, for metrics).
    pub fn loss_log(&self) -> &LossLog {
        &self.losses
    }

    /// Rebuilds spend, live counts, frequency counts and deduplication from
    /// the ledger, through the same [`apply()`] as live events: from
    /// `records` (the recent day files, in time order), after the contacts
    /// of the older day files of the week (read from the ledger's
    /// directory, when some advertiser caps contacts: see
    /// [`Tracker::restore_week_of_contacts`]).
    pub fn restore(&self, records: impl IntoIterator<Item = Record>, world: &World, now: Timestamp) -> usize {
        self.restore_week_of_contacts(world, now);
        let mut conversions: HashMap<String, u32> = HashMap::new();
        let mut restored = 0;
        for record in records {
            let at_secs = record.at.div_euclid(1_000_000);
            if now.as_second() - at_secs > RESTORE_HORIZON_SECS {
                self.restore_contact(&record, world, now);
                continue;
            }
            restored += 1;
            let record = &record;
            self.shared.claim_restored(
                claim_key(&record.bid, record.event),
                Claim {
                    at_micros: record.at,
                    clearing: record.clearing,
                    durable: true,
                    filtered: record.filtered.is_some(),
                },
            );
            if record.event == EventKind::Conversion {
                self.restore_conversion(record, world, &mut conversions);
            }
            if let Some(counts @ 1..) = record.counts {
                let at = Timestamp::from_microsecond(record.at).unwrap_or(now);
                self.shared.count_restored(counted_key(&record.bid), counts, at);
            }
            let Some(rank) = world.rank_of(&record.campaign) else {
                continue;
            };
            let event = LiveEvent {
                kind: record.event,
                at: Timestamp::from_second(at_secs).unwrap_or(now),
                creative: &record.creative,
                charge: Micros(record.charge),
                precharged: false,
                billed_impression: record.event == billing_kind(world, &record.exchange)
                    && !record.test
                    && record.filtered.is_none(),
                billable_click: record.filtered.is_none(),
                value: Micros(record.value.unwrap_or(0)),
                user: record.user,
                settles: None,
                releases_contact: false,
            };
            apply(world.target(rank), &self.frequency, &event);
        }
        restored
    }

    /// Sets every campaign's lifetime spend (all days, today's included)
    /// from the ledger's spend checkpoint and daily rollups, after
    /// [`Tracker::restore`] and before any traffic. Every campaign's, so
    /// that a lifetime budget set later counts the past too. Returns how
    /// many campaigns have spent anything.
    pub fn restore_lifetime(&self, world: &World) -> Result<usize, LedgerError> {
        let spend = crate::ledger::rollup::spend_by_campaign(self.ledger.dir())?;
        for c in &world.campaigns {
            let amount = spend.get(&c.campaign.id).copied().unwrap_or(0);
            c.state.spend.restore_lifetime(Micros(amount));
        }
        Ok(spend.values().filter(|amount| **amount != 0).count())
    }

    /// Re-claims a recorded conversion's order id and its click's slot, so
    /// that neither counts again after a restart.
    fn restore_conversion(&self, record: &Record, world: &World, conversions: &mut HashMap<String, u32>) {
        let claim = Claim {
            at_micros: record.at,
            clearing: None,
            durable: true,
            filtered: false,
        };
        if let Some(order) = &record.order {
            let advertiser = world
                .campaign_by_id(&record.campaign)
                .map(|c| c.campaign.advertiser.clone())
                .or_else(|| self.live.get(&record.campaign).map(|r| r.advertiser))
                .unwrap_or_default();
            self.shared.claim_restored(order_key(&advertiser, order), claim);
        }
        // A user-level conversion has no click, and so no click slot.
        if record.bid.is_empty() {
            return;
        }
        let n = conversions.entry(record.bid.clone()).or_default();
        self.shared.claim_restored(slot_key(&record.bid, *n), claim);
        *n += 1;
    }

    /// Bytes the settled reservations' table has allocated.
    pub fn settled_bytes(&self) -> usize {
        self.settled_bids.allocated_bytes()
    }

    /// Forgets bids older than the notice window, and click counts of
    /// hours that have ended (the current hour's counts stay, however often
    /// this runs).
    pub fn sweep(&self, now: Timestamp) {
        let horizon = Timestamp::from_second(now.as_second() - NOTICE_WINDOW_SECS).unwrap_or(now);
        self.shared.forget_claims_before(horizon);
        let hour = now.as_second().div_euclid(3600);
        self.click_rates.pin().retain(|_, (counted_in, _)| *counted_in >= hour);
        self.settled_bids.sweep(now.as_second().div_euclid(60));
    }

    /// Handles `/t/{event}?{query}`: verify and parse, deduplicate, judge a
    /// click's quality, price, record durably, apply to live state, reply.
    /// `client` is the caller's address (click rates).
    pub async fn handle(
        &self,
        world: &World,
        now: Timestamp,
        event: &str,
        query: &str,
        client: Option<IpAddr>,
    ) -> TrackingReply {
        if event == "conv" && query.starts_with("user=") {
            return self.user_conversion(world, now, query).await;
        }
        if event == "conv" {
            return self.conversion(world, now, query).await;
        }
        let notice = match verify(world, &self.live, now, event, query) {
            Ok(notice) => notice,
            Err(reply) => return reply,
        };
        if let Some(signal) = notice.loss {
            return self.loss(&notice, signal).await;
        }
        let reply = notice.reply();
        match self.deduplicate(&notice).await {
            Claimed::New => {}
            Claimed::Durable => return reply,
            Claimed::Undecided => return TrackingReply::Unavailable,
        }
        let filtered = self.judge(&notice, client).await;
        let record = self.price(&notice, filtered).await;
        if let Err(unavailable) = self.record(&notice, &record).await {
            return unavailable;
        }
        self.apply(&notice, &record);
        reply
    }

    /// Claims the (bid, event) first, so that concurrent duplicates cannot
    /// both be recorded; a duplicate is acknowledged (never billed again)
    /// only once the original is durable.
    async fn deduplicate(&self, notice: &Notice<'_>) -> Claimed {
        let claim = Claim {
            at_micros: notice.now.as_microsecond(),
            clearing: notice.clearing.map(|p| p.0),
            durable: false,
            filtered: false,
        };
        let claimed = self.claim_once(notice.key, claim).await;
        if claimed == Claimed::Durable && notice.event == Event::Click {
            self.repeated_click(&notice.token, notice.now);
        }
        claimed
    }

    /// Claims `key`, or waits for the claim that holds it to settle: a
    /// duplicate of a durable event is [`Claimed::Durable`]; when the
    /// original fails and gives its claim up, this request claims it and
    /// records the event itself. An original held here wakes its
    /// duplicates when it settles; one held by another node is looked at
    /// again after a short pause (doubling, at most [`RECHECK_MAX`]). Past
    /// [`DUPLICATE_WAIT`] the duplicate is [`Claimed::Undecided`] (503 with
    /// `Retry-After`), wherever its original is.
    async fn claim_once(&self, key: u64, claim: Claim) -> Claimed {
        let deadline = tokio::time::Instant::now() + DUPLICATE_WAIT;
        let mut recheck = RECHECK_FIRST;
        loop {
            match self.shared.claim(key, claim).await {
                ClaimOutcome::Claimed => return Claimed::New,
                ClaimOutcome::Full => return Claimed::Undecided,
                ClaimOutcome::Taken => {}
            }
            // A duplicate (rare): register for the settlement before looking
            // again, so that one happening in between is not missed.
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            match self.shared.claimed(key).await {
                Some(existing) if existing.durable => return Claimed::Durable,
                // Given up meanwhile: claim it.
                None => continue,
                Some(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Claimed::Undecided;
            }
            let pause = tokio::time::Instant::now() + recheck;
            let _ = tokio::time::timeout_at(pause.min(deadline), settled).await;
            recheck = (recheck * 2).min(RECHECK_MAX);
        }
    }

    /// Settles a claim: durable (duplicates may be acknowledged) or given
    /// up (a retry or a waiting duplicate may record the event); wakes the
    /// duplicates waiting on it.
    async fn settle(&self, key: u64, durable: bool) {
        self.settle_as(key, durable, false).await;
    }

    /// [`Tracker::settle`], saying whether a durable event was filtered.
    async fn settle_as(&self, key: u64, durable: bool, filtered: bool) {
        if durable {
            self.shared.confirm(key, filtered).await;
        } else {
            self.shared.unclaim(key).await;
        }
        self.settled.notify_waiters();
    }

    /// Why a click should not be billed, if it should not (other events
    /// are not judged).
    async fn judge(&self, notice: &Notice<'_>, client: Option<IpAddr>) -> Option<&'static str> {
        match notice.event {
            Event::Click => self.click_filter(notice.world, &notice.token, notice.now, client).await,
            _ => None,
        }
    }

    /// The ledger record of the event, with what it costs the advertiser.
    /// A late notice is recorded with no charge; a CPC click is charged
    /// only while the day's budget is not spent, and its charge is counted
    /// in the day's spend at once (given back if it cannot be recorded).
    async fn price(&self, notice: &Notice<'_>, filtered: Option<&'static str>) -> Record {
        let (charge, filtered) = match filtered {
            Some(_) => (Micros::ZERO, filtered),
            None if notice.late => (Micros::ZERO, Some(LATE)),
            None => self.charge(notice).await,
        };
        let counts = self.counts(notice, filtered.is_some()).await;
        let token = &notice.token;
        let place = &token.place;
        Record {
            counts: Some(counts),
            domain: place.domain.clone(),
            country: place.country.clone(),
            device: place.device,
            utc_offset: Some(notice.campaign.target().time_zone.to_offset(notice.now).seconds()),
            at: notice.now.as_microsecond(),
            event: notice.kind,
            bid: token.bid_id.clone(),
            campaign: token.campaign.clone(),
            creative: token.creative.clone(),
            exchange: token.exchange.clone(),
            clearing: notice.clearing.map(|p| p.0),
            charge: charge.0,
            billed: charge.0 > 0,
            filtered: filtered.map(str::to_string),
            test: token.test,
            user: token.user,
            pricing: match notice.pricing {
                SignedPricing::Cpm => Pricing::Cpm,
                SignedPricing::Cpc { .. } => Pricing::Cpc,
            },
            value: None,
            order: None,
            arm: token.arm.clone(),
        }
    }

    /// What the event counts in reports ([`Record::counts`]): the bid's win
    /// (for the first of its win and billing notices) and its impression
    /// (for the first of its billing notice and pixel); a late or test
    /// notice counts neither. The bits are set atomically in the shared
    /// state ([`SharedState::count_once`]), so racing notices (here or, in
    /// a cluster, on another node) agree on which one counts; they are
    /// cleared again if the record cannot be written, and restored from the
    /// ledger at start-up.
    async fn counts(&self, notice: &Notice<'_>, filtered: bool) -> u8 {
        if filtered || notice.token.test {
            return 0;
        }
        let wanted = match notice.kind {
            EventKind::Win => COUNTS_WIN,
            EventKind::Bill => COUNTS_WIN | COUNTS_IMPRESSION,
            EventKind::Impression => COUNTS_IMPRESSION,
            _ => return 0,
        };
        self.shared
            .count_once(counted_key(&notice.token.bid_id), wanted, notice.now)
            .await
    }

    /// Gives back a click charge counted at judgement when its record could
    /// not be written.
    fn refund(&self, notice: &Notice<'_>, record: &Record) {
        if notice.precharges() && record.charge > 0 {
            let target = notice.campaign.target();
            let day = local_day(notice.now, target.time_zone);
            target.state.spend.add(day, Micros(-record.charge));
            if let Some(a) = target.advertiser {
                a.state.spend.add(a.local_day(notice.now), Micros(-record.charge));
            }
        }
    }

    /// Writes the record durably; on failure the claim is given up, so the
    /// exchange's retry can record it, and the caller gets 503.
    async fn record(&self, notice: &Notice<'_>, record: &Record) -> Result<(), TrackingReply> {
        if let Err(e) = self.ledger.append(record).await {
            self.refund(notice, record);
            if let Some(counts @ 1..) = record.counts {
                self.shared.uncount(counted_key(&record.bid), counts).await;
            }
            self.settle(notice.key, false).await;
            tracing::error!(error = %e, "tracking event not recorded");
            return Err(TrackingReply::Unavailable);
        }
        self.settle_as(notice.key, true, record.filtered.is_some()).await;
        if let Some(reason) = &record.filtered {
            tracing::info!(bid = %record.bid, campaign = %record.campaign, reason, "click logged, not billed");
        }
        Ok(())
    }

    /// Applies the recorded event to live state (and shares it). A billing
    /// notice settles its bid's reservation, unless a loss notice already
    /// gave it back.
    ///
    /// In a cluster, a bid made by another node is settled there (its
    /// reservation and held impression are that node's), when the
    /// replicated event reaches it.
    fn apply(&self, notice: &Notice<'_>, record: &Record) {
        let bills_impression = notice.bills_impression();
        let own = self.own(&notice.token.bid_id);
        let releases = own && bills_impression && self.settle_reservation(&notice.token, notice.now) != Settle::Again;
        let event = LiveEvent {
            kind: notice.kind,
            at: notice.now,
            creative: &notice.token.creative,
            charge: Micros(record.charge),
            precharged: notice.precharges(),
            billed_impression: bills_impression,
            billable_click: record.filtered.is_none(),
            value: Micros::ZERO,
            user: notice.token.user,
            // The bid's reservation (its value per impression) is settled.
            settles: releases.then_some(Reservation {
                bid_value: notice.token.bid_value,
                notice_until: notice.token.notice_until,
                qty_milli: notice.token.qty_milli,
                issued_at: notice.token.issued_at,
            }),
            releases_contact: own && notice.kind == EventKind::Impression && !notice.token.test,
        };
        apply(notice.campaign.target(), &self.frequency, &event);
        self.replicate(&event, &record.campaign, Some(&notice.token));
        self.touched(notice, record);
    }

    /// Notes an impression shown or a billable click for attribution, and
    /// a billed impression or a billable click for learning.
    fn touched(&self, notice: &Notice<'_>, record: &Record) {
        let token = &notice.token;
        if token.test {
            return;
        }
        if let (Some(shading), Some(slice)) = (&self.shading, token.shading_slice)
            && notice.bills_impression()
        {
            shading.count_win(slice, token.bid_value);
        }
        let learned = match notice.kind {
            EventKind::Click if record.filtered.is_none() => Some(Label::Click),
            _ if notice.bills_impression() => Some(Label::Impression),
            _ => None,
        };
        if let (Some(learner), Some(label)) = (&self.learner, learned) {
            let target = notice.campaign.target();
            let issued = Timestamp::from_second(token.issued_at).unwrap_or(notice.now);
            learner.observe(Observation {
                label,
                at: notice.now.as_second(),
                bid: token.bid_id.clone(),
                campaign_key: target.campaign_key,
                creative: token.creative.clone(),
                exchange: token.exchange.clone(),
                domain: token.place.domain.clone(),
                country: token.place.country.clone(),
                device: token.place.device,
                local_hour: (crate::clock::hour_of_week(issued, target.time_zone) % 24) as u8,
                user: token.user,
            });
        }
        let advertiser = notice.campaign.advertiser();
        match notice.kind {
            EventKind::Impression => self.touches.viewed(advertiser, token.user, &token.campaign, notice.now),
            EventKind::Click if record.filtered.is_none() => {
                self.touches
                    .clicked(&token.bid_id, advertiser, token.user, &token.campaign, notice.now);
            }
            _ => {}
        }
    }

    /// Marks the bid's reservation given back ([`Settled`]).
    fn settle_reservation(&self, token: &BidToken, now: Timestamp) -> Settle {
        self.settled_bids.settle(
            counted_key(&token.bid_id),
            expiry_minute(token.notice_until),
            now.as_second().div_euclid(60),
        )
    }

    /// A verified loss notice: ignored after a win or billing notice of the
    /// bid (the win wins) and for a duplicate; otherwise the bid's
    /// reservations are given back at once (its budget's, its advertiser's,
    /// and the contact it held under its advertiser's frequency cap;
    /// campaign frequency counts impressions only), and the loss is written
    /// to the loss log and counted.
    async fn loss(&self, notice: &Notice<'_>, signal: LossSignal) -> TrackingReply {
        let token = &notice.token;
        let notices = [EventKind::Win, EventKind::Bill].map(|kind| claim_key(&token.bid_id, kind));
        let won = self.shared.claimed_first(&notices).await.is_some();
        if won {
            tracing::debug!(bid = %token.bid_id, "loss notice after a win notice: ignored");
            return TrackingReply::Accepted;
        }
        match self.settle_reservation(token, notice.now) {
            Settle::Again => return TrackingReply::Accepted,
            // Unknown whether it was given back: leave it to expire.
            Settle::Full => {}
            Settle::First if !token.test => {
                let event = LiveEvent {
                    kind: EventKind::Loss,
                    at: notice.now,
                    creative: &token.creative,
                    charge: Micros::ZERO,
                    precharged: false,
                    billed_impression: false,
                    billable_click: false,
                    value: Micros::ZERO,
                    // The contact the bid held (an advertiser's cap) is given back too.
                    user: token.user,
                    settles: Some(Reservation {
                        bid_value: token.bid_value,
                        notice_until: token.notice_until,
                        qty_milli: token.qty_milli,
                        issued_at: token.issued_at,
                    }),
                    releases_contact: false,
                };
                // Another node's bid: that node gives its reservations back.
                if self.own(&token.bid_id) {
                    apply(notice.campaign.target(), &self.frequency, &event);
                } else {
                    self.replicate(&event, &token.campaign, Some(token));
                }
            }
            // A test bid reserved nothing.
            Settle::First => {}
        }
        // The price to beat, in the base currency as the bid's value is.
        if let (Some(shading), Some(slice), Some(min)) = (&self.shading, token.shading_slice, signal.min_to_win)
            && token.bid_price.0 > 0
        {
            shading.count_min_to_win(slice, min.mul_div_ceil(token.bid_value.0, token.bid_price.0));
        }
        self.losses.append(LossRecord {
            at: notice.now.as_microsecond(),
            bid: token.bid_id.clone(),
            campaign: token.campaign.clone(),
            creative: token.creative.clone(),
            exchange: token.exchange.clone(),
            reason: signal.reason.map(|r| r.0),
            min_to_win: signal.min_to_win.map(|m| m.0),
            bid_price: token.bid_price.0,
            currency: token.currency.clone(),
        });
        TrackingReply::Lost(LossTaken {
            exchange: token.exchange.clone(),
            reason: signal.reason,
            min_to_win_malformed: signal.min_to_win_malformed,
        })
    }

    /// Counts one more click in `hour` under `key`; returns the count.
    fn count_click(&self, key: u64, hour: i64) -> u32 {
        let rates = self.click_rates.pin();
        rates.update_or_insert(key, |&(h, n)| (h, n + 1), (hour, 1)).1
    }

    fn repeated_click(&self, token: &BidToken, now: Timestamp) {
        let key = claim_key(&token.bid_id, EventKind::Click) ^ 0x5EED;
        let repeats = self.count_click(key, now.as_second().div_euclid(3600));
        if repeats <= REPEAT_LOG_LIMIT {
            tracing::info!(bid = %token.bid_id, campaign = %token.campaign, repeats, "repeated click logged, not billed");
        }
    }

    /// Why a first click should not be billed, if it should not.
    async fn click_filter(
        &self,
        world: &World,
        token: &BidToken,
        now: Timestamp,
        client: Option<IpAddr>,
    ) -> Option<&'static str> {
        let rules = &world.settings.click_rules;
        let shown =
            [EventKind::Impression, billing_kind(world, &token.exchange)].map(|kind| claim_key(&token.bid_id, kind));
        let shown = self.shared.claimed_first(&shown).await;
        let Some(shown) = shown else {
            return Some("no_impression");
        };
        if now.as_microsecond() - shown.at_micros < rules.min_delay.as_micros() as i64 {
            return Some("too_fast");
        }
        let hour = now.as_second().div_euclid(3600);
        if token.user != 0 {
            let clicks = self.count_click(rate_key(1, &token.user.to_le_bytes(), hour), hour);
            if clicks > rules.max_per_user_hour {
                return Some("user_rate");
            }
        }
        if let Some(ip) = client {
            let clicks = self.count_click(rate_key(2, ip.to_string().as_bytes(), hour), hour);
            if clicks > rules.max_per_ip_hour {
                return Some("ip_rate");
            }
        }
        None
    }

    /// `/t/conv?user=…[&campaign=…]&order=…[&value=…]&ts=…&sig=…`: a
    /// user-level conversion ([`super::user_conversion`]), recorded once
    /// per order id (per advertiser, shared with click-level postbacks).
    async fn user_conversion(&self, world: &World, now: Timestamp, query: &str) -> TrackingReply {
        let postback = match super::user_conversion::verify(world, now, query, &self.touches) {
            Ok(postback) => postback,
            Err(reply) => return reply,
        };
        let order_key = order_key(&postback.advertiser, &postback.order);
        let claim = Claim {
            at_micros: now.as_microsecond(),
            clearing: None,
            durable: false,
            filtered: false,
        };
        match self.claim_once(order_key, claim).await {
            Claimed::New => {}
            Claimed::Durable => return TrackingReply::Accepted,
            Claimed::Undecided => return TrackingReply::Unavailable,
        }
        let record = postback.record(now);
        if let Err(e) = self.ledger.append(&record).await {
            self.settle(order_key, false).await;
            tracing::error!(error = %e, "user-level conversion not recorded");
            return TrackingReply::Unavailable;
        }
        self.settle(order_key, true).await;
        // Credited by a touch, it counts like a click's conversion (caps,
        // learned rates); a holdout's (no touch) only in reports.
        if postback.touched {
            self.apply_conversion(world, &record);
        }
        TrackingReply::Accepted
    }

    /// `/t/conv?click=…&order=…[&value=…]&ts=…&sig=…`: a conversion
    /// postback from the advertiser, signed with its postback secret and
    /// attributed to the click that led to it. One conversion per order id
    /// (per advertiser), at most `max_conversions_per_click` per click,
    /// values up to `max_conversion_value`; conversions of a filtered click
    /// are recorded but not counted.
    async fn conversion(&self, world: &World, now: Timestamp, query: &str) -> TrackingReply {
        let postback = match Postback::verify(world, &self.live, now, query) {
            Ok(postback) => postback,
            Err(reply) => return reply,
        };
        let claimed = self
            .shared
            .claimed(claim_key(&postback.click.bid, EventKind::Click))
            .await;
        let clicked_at = match (self.touches.click(&postback.click.bid), &claimed) {
            (Some(touch), _) => touch.at,
            (None, Some(claim)) => claim.at_micros.div_euclid(1_000_000),
            (None, None) => return TrackingReply::Gone,
        };
        let window = world
            .campaign_by_id(&postback.click.campaign)
            .map_or_else(Default::default, |c| c.campaign.attribution);
        if now.as_second() - clicked_at > window.click_secs {
            return TrackingReply::Gone;
        }
        // A click held only as a touch was billable (a filtered one is not).
        let filtered = claimed.is_some_and(|c| c.filtered);
        let order_key = order_key(&postback.advertiser, &postback.order);
        let claim = Claim {
            at_micros: now.as_microsecond(),
            clearing: None,
            durable: false,
            filtered: false,
        };
        match self.claim_once(order_key, claim).await {
            Claimed::New => {}
            Claimed::Durable => return TrackingReply::Accepted,
            Claimed::Undecided => return TrackingReply::Unavailable,
        }
        let Some(slot) = self
            .conversion_slot(&postback.click.bid, world.settings.max_conversions_per_click, claim)
            .await
        else {
            self.settle(order_key, false).await;
            return TrackingReply::Conflict("conversion limit for this click reached");
        };
        let record = postback.record(now, filtered.then_some(CLICK_FILTERED));
        if let Err(e) = self.ledger.append(&record).await {
            self.settle(slot, false).await;
            self.settle(order_key, false).await;
            tracing::error!(error = %e, "conversion not recorded");
            return TrackingReply::Unavailable;
        }
        self.settle(slot, true).await;
        self.settle(order_key, true).await;
        self.apply_conversion(world, &record);
        if !filtered {
            self.learn_conversion(world, &record, clicked_at);
        }
        TrackingReply::Accepted
    }

    /// A click's credited conversion, for the conversion model: the
    /// click's place, its user (when its touch is held) and the hour it
    /// was made at.
    fn learn_conversion(&self, world: &World, record: &Record, clicked_at: i64) {
        let (Some(learner), Some(campaign)) = (&self.learner, world.campaign_by_id(&record.campaign)) else {
            return;
        };
        let clicked = Timestamp::from_second(clicked_at).unwrap_or(Timestamp::UNIX_EPOCH);
        learner.observe(Observation {
            label: Label::Conversion,
            at: record.at.div_euclid(1_000_000),
            bid: record.bid.clone(),
            campaign_key: campaign.key,
            creative: record.creative.clone(),
            exchange: record.exchange.clone(),
            domain: record.domain.clone(),
            country: record.country.clone(),
            device: record.device,
            local_hour: (crate::clock::hour_of_week(clicked, &campaign.campaign.time_zone) % 24) as u8,
            user: self.touches.click(&record.bid).map_or(0, |t| t.user),
        });
    }

    /// A recorded conversion counts (unless its click was filtered) towards
    /// the capacity caps of its campaign and advertiser.
    fn apply_conversion(&self, world: &World, record: &Record) {
        let event = LiveEvent {
            kind: EventKind::Conversion,
            at: Timestamp::from_microsecond(record.at).unwrap_or(Timestamp::UNIX_EPOCH),
            creative: &record.creative,
            charge: Micros::ZERO,
            precharged: false,
            billed_impression: false,
            billable_click: record.filtered.is_none(),
            value: Micros(record.value.unwrap_or(0)),
            user: 0,
            settles: None,
            releases_contact: false,
        };
        if let Some(campaign) = NoticeCampaign::of(world, &self.live, &record.campaign) {
            apply(campaign.target(), &self.frequency, &event);
            self.replicate(&event, &record.campaign, None);
        }
    }

    /// Claims one of a click's conversion slots, if one is free.
    async fn conversion_slot(&self, bid: &str, slots: u32, claim: Claim) -> Option<u64> {
        for key in (0..slots).map(|n| slot_key(bid, n)) {
            if self.shared.claim(key, claim).await == ClaimOutcome::Claimed {
                return Some(key);
            }
        }
        None
    }

    /// What this event costs the advertiser, from what its URL carries
    /// (the bid, the pricing at bid time), and why it is not billed if a
    /// CPC click comes once the day's budget is spent.
    async fn charge(&self, notice: &Notice<'_>) -> (Micros, Option<&'static str>) {
        let token = &notice.token;
        if token.test || token.bid_price.0 <= 0 {
            return (Micros::ZERO, None);
        }
        let billing = billing_kind(notice.world, &token.exchange);
        match (notice.pricing, notice.kind) {
            (SignedPricing::Cpm, e) if e == billing => (
                notice.clearing.map_or(Micros::ZERO, |price| {
                    cost::cpm_charge_qty(price, token.bid_value, token.bid_price, token.qty_milli)
                }),
                None,
            ),
            // CPC: the click shares the auction discount of its impression
            // (and, for a shaded bid, the shading's: see `cost::cpc_charge`),
            // and counts against the budget at once (no reservation covers
            // it): at most one click's charge over the budget, and over its
            // advertiser's.
            (SignedPricing::Cpc { max_cpc, value }, EventKind::Click) => {
                let billed = self.shared.claimed(claim_key(&token.bid_id, billing)).await;
                let clearing = billed.and_then(|s| s.clearing).unwrap_or(token.bid_price.0);
                let charge = cost::cpc_charge(max_cpc, Micros(clearing), token.bid_price, value);
                let target = notice.campaign.target();
                let today = local_day(notice.now, target.time_zone);
                if !target
                    .state
                    .spend
                    .try_spend(today, notice.campaign.budget_today(today), charge)
                {
                    return (Micros::ZERO, Some(BUDGET_SPENT));
                }
                if !advertiser_spend(target, notice.now, charge) {
                    target.state.spend.add(today, Micros(-charge.0));
                    return (Micros::ZERO, Some(BUDGET_SPENT));
                }
                (charge, None)
            }
            _ => (Micros::ZERO, None),
        }
    }
}

/// Counts a CPC click's `charge` in its advertiser's spend at judgement,
/// like the campaign's: false, and nothing counted, once the advertiser's
/// daily budget is spent (atomically: at most one click's charge over).
fn advertiser_spend(target: Target<'_>, now: Timestamp, charge: Micros) -> bool {
    let Some(a) = target.advertiser else { return true };
    let day = a.local_day(now);
    match a.rules.daily_budget {
        Some(budget) => a.state.spend.try_spend(day, budget, charge),
        None => {
            a.state.spend.add(day, charge);
            true
        }
    }
}

/// Verifies the signed URL and parses the event: 403 when forged, 400 for
/// an expired URL or an unusable clearing price, 404 when the campaign or
/// creative is gone.
fn verify<'w>(
    world: &'w World,
    live: &LiveStates,
    now: Timestamp,
    event: &str,
    query: &str,
) -> Result<Notice<'w>, TrackingReply> {
    let verified = world.signer.verify(event, query).map_err(TrackingReply::Forbidden)?;
    let age = now.as_second() - verified.token.issued_at;
    if !(-300..=NOTICE_WINDOW_SECS).contains(&age) {
        return Err(TrackingReply::BadPrice("tracking URL expired"));
    }
    let (clearing, loss) = macro_values(world, &verified)?;
    let Verified { event, token, .. } = verified;
    // The campaign as it is now, if it is still in the index; else its
    // retained live state (a notice is billed from what its URL carries).
    let indexed = world.campaign_by_id(&token.campaign);
    let campaign = NoticeCampaign::of(world, live, &token.campaign).ok_or(TrackingReply::Gone)?;
    let creative = indexed.and_then(|c| c.campaign.creatives.iter().find(|cr| cr.id == token.creative));
    if event == Event::Click && creative.is_none() {
        // No landing page to send the user to: not a visit, not recorded.
        return Err(TrackingReply::Gone);
    }
    let pricing = match (token.pricing, indexed) {
        (Some(pricing), _) => pricing,
        // A URL signed before the pricing was: the campaign's current one.
        (None, Some(c)) => match c.campaign.pricing {
            // CPA and CPS campaigns pay clearing prices per impression.
            Pricing::Cpm | Pricing::Cpa | Pricing::Cps => SignedPricing::Cpm,
            Pricing::Cpc => SignedPricing::Cpc {
                max_cpc: c.campaign.max_bid,
                value: None,
            },
        },
        (None, None) => return Err(TrackingReply::Gone),
    };
    let kind = kind(event);
    Ok(Notice {
        world,
        now,
        event,
        kind,
        key: claim_key(&token.bid_id, kind),
        late: matches!(event, Event::Win | Event::Bill) && now.as_second() >= token.notice_until,
        token,
        clearing,
        loss,
        campaign,
        creative,
        pricing,
    })
}

/// What the exchange filled the macros with: the clearing price of a win
/// or billing notice (decrypted first where the exchange encrypts it), or
/// what a loss notice says.
fn macro_values(world: &World, verified: &Verified) -> Result<(Option<Micros>, Option<LossSignal>), TrackingReply> {
    let token = &verified.token;
    match verified.event {
        Event::Win | Event::Bill => {
            let price = verified.price.as_deref();
            let keys = world
                .settings
                .exchange(&token.exchange)
                .and_then(|e| e.price_keys.as_ref());
            let clearing = match keys {
                Some(keys) => encrypted_clearing_price(price, token, keys)?,
                None => clearing_price(price, token).map_err(TrackingReply::BadPrice)?,
            };
            Ok((Some(clearing), None))
        }
        Event::Loss => {
            let reason = verified.loss_reason.as_deref().and_then(LossReason::parse);
            let min_to_win = min_to_win(verified.min_to_win.as_deref());
            let signal = LossSignal {
                reason,
                min_to_win: min_to_win.unwrap_or(None),
                min_to_win_malformed: min_to_win.is_err(),
            };
            Ok((None, Some(signal)))
        }
        Event::Impression | Event::Click => Ok((None, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> BidToken {
        BidToken::parse(
            "b=1&r=r&i=1&c=acme&k=cr%201&x=default&cur=USD&p=2000000&v=2000000&t=0&u=0000000000000000&test=0",
        )
        .unwrap()
    }

    #[test]
    fn utm_parameters_keep_query_and_fragment() {
        let t = token();
        assert_eq!(
            with_utm("https://shop.example/p?id=7#top", &t, "cpc", &[]),
            "https://shop.example/p?id=7&utm_source=default&utm_medium=cpc&utm_campaign=acme&utm_content=cr%201#top"
        );
        assert!(with_utm("https://shop.example/", &t, "display", &[]).starts_with("https://shop.example/?utm_source="));
    }

    /// The encrypted price goes through the same rules once decrypted;
    /// a tampered one is forged (403), a garbled one unusable (400).
    #[test]
    fn encrypted_clearing_prices_are_decrypted_then_checked() {
        let keys = PriceKeys::new(b"encryption-key-0123456789abcdef", b"integrity-key-0123456789abcdef");
        let iv = *b"0123456789abcdef";
        let t = token();
        let price = |micros: u64| keys.encrypt(micros, &iv);
        assert_eq!(
            encrypted_clearing_price(Some(&price(1_250_000)), &t, &keys),
            Ok(Micros(1_250_000))
        );
        assert_eq!(
            encrypted_clearing_price(Some(&price(2_000_000)), &t, &keys),
            Ok(Micros(2_000_000))
        );
        assert_eq!(
            encrypted_clearing_price(Some(&price(2_000_001)), &t, &keys),
            Err(TrackingReply::BadPrice("clearing price above the bid"))
        );
        assert_eq!(
            encrypted_clearing_price(Some(&price(0)), &t, &keys),
            Err(TrackingReply::BadPrice("clearing price is not above zero"))
        );
        assert_eq!(
            encrypted_clearing_price(Some(&price(u64::MAX)), &t, &keys),
            Err(TrackingReply::BadPrice("clearing price is out of range"))
        );
        let mut tampered = price(1_250_000).into_bytes();
        tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            encrypted_clearing_price(Some(std::str::from_utf8(&tampered).unwrap()), &t, &keys),
            Err(TrackingReply::Forbidden(TrackingError::BadPriceSignature))
        );
        for plain in ["1.25", "${AUCTION_PRICE}", ""] {
            assert!(
                matches!(
                    encrypted_clearing_price(Some(plain), &t, &keys),
                    Err(TrackingReply::BadPrice(_))
                ),
                "{plain}: a clear price is refused where prices are encrypted"
            );
        }
    }

    #[test]
    fn min_to_win_uses_the_clearing_price_grammar() {
        assert_eq!(min_to_win(Some("1.75")), Ok(Some(Micros(1_750_000))));
        assert_eq!(min_to_win(Some("1%2E75")), Ok(Some(Micros(1_750_000))));
        assert_eq!(min_to_win(Some("0")), Ok(Some(Micros::ZERO)));
        for absent in [None, Some(""), Some("${AUCTION_MIN_TO_WIN}")] {
            assert_eq!(min_to_win(absent), Ok(None), "{absent:?}");
        }
        for bad in ["-1", "1e3", "1.2345678", "abc", "%zz", "NaN"] {
            assert!(min_to_win(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn clearing_prices_are_checked() {
        let t = token();
        assert_eq!(clearing_price(Some("1.5"), &t), Ok(Micros(1_500_000)));
        assert_eq!(clearing_price(Some("2"), &t), Ok(Micros(2_000_000)));
        assert_eq!(clearing_price(Some("0.000001"), &t), Ok(Micros(1)));
        assert_eq!(
            clearing_price(Some("1%2E25"), &t),
            Ok(Micros(1_250_000)),
            "percent-decoded"
        );
        assert_eq!(
            clearing_price(Some("2.000001"), &t),
            Err("clearing price above the bid")
        );
        assert_eq!(clearing_price(Some("0"), &t), Err("clearing price is not above zero"));
        assert_eq!(
            clearing_price(Some("0.000000"), &t),
            Err("clearing price is not above zero")
        );
        let not_plain = Err("clearing price is not a plain decimal amount (digits, at most 6 decimals)");
        for bad in [
            "-0",
            "-1",
            "+1",
            "1e0",
            "1e-300",
            "1E2",
            " 1",
            "1 ",
            "abc",
            "1.",
            ".5",
            "1.2345678",
            "0x1",
            "1,5",
            "inf",
            "NaN",
            "%2B1",
        ] {
            assert_eq!(clearing_price(Some(bad), &t), not_plain, "{bad}");
        }
        assert_eq!(
            clearing_price(Some("1%2"), &t),
            Err("clearing price is not a decimal amount")
        );
        assert_eq!(clearing_price(None, &t), Err("missing clearing price"));
        assert_eq!(
            clearing_price(Some("${AUCTION_PRICE}"), &t),
            Err("missing clearing price")
        );
    }
}
