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

use std::net::IpAddr;
use std::sync::Arc;

use jiff::Timestamp;

use crate::campaigns::Pricing;
use crate::clock::local_day;
use crate::ledger::{EventKind, Ledger, Record};
use crate::live::LiveCampaign;
use crate::live::World;
use crate::money::Micros;
use crate::pacing::FrequencyStore;
use crate::settings::BillingEvent;

use crate::signing::{BidToken, Event, TrackingError, Verified};

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
}

/// Parses and checks a clearing price (CPM, response currency): present,
/// numeric, not negative, not above the bid.
pub fn clearing_price(raw: Option<&str>, token: &BidToken) -> Result<Micros, &'static str> {
    let raw = raw
        .filter(|p| !p.is_empty() && *p != crate::signing::AUCTION_PRICE_MACRO)
        .ok_or("missing clearing price")?;
    let price = Micros::parse_decimal(raw)
        .ok()
        .or_else(|| raw.parse::<f64>().ok().and_then(Micros::from_wire))
        .ok_or("clearing price is not a number")?;
    if price.0 < 0 {
        return Err("negative clearing price");
    }
    if price > token.bid_price {
        return Err("clearing price above the bid");
    }
    Ok(price)
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
/// How many repeated clicks of one bid are worth a log line.
const REPEAT_LOG_LIMIT: u32 = 3;

/// Tracking state: the ledger, what each bid has already recorded, click
/// rates, and the frequency counts impressions feed. Lock-free maps; entries
/// older than the notice window (or the rate window) are swept.
pub struct Tracker {
    pub ledger: Ledger,
    pub frequency: Arc<FrequencyStore>,
    /// (bid, event) → when recorded and at what clearing price.
    seen: papaya::HashMap<u64, Seen, foldhash::fast::RandomState>,
    /// (user or IP, hour) → billable clicks.
    click_rates: papaya::HashMap<u64, u32, foldhash::fast::RandomState>,
}

#[derive(Clone, Copy, Debug)]
struct Seen {
    at_micros: i64,
    clearing: Option<i64>,
}

fn seen_key(bid: &str, event: EventKind) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bid.as_bytes()) ^ (event as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
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
fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

impl Tracker {
    pub fn new(ledger: Ledger, frequency: Arc<FrequencyStore>) -> Tracker {
        Tracker {
            ledger,
            frequency,
            seen: papaya::HashMap::builder().hasher(Default::default()).build(),
            click_rates: papaya::HashMap::builder().hasher(Default::default()).build(),
        }
    }

    /// Rebuilds spend, live counts, frequency counts and deduplication from
    /// the ledger.
    pub fn restore(&self, records: &[Record], world: &World, now: Timestamp) {
        let seen = self.seen.pin();
        for record in records {
            let at_secs = record.at.div_euclid(1_000_000);
            if now.as_second() - at_secs > NOTICE_WINDOW_SECS {
                continue;
            }
            seen.insert(
                seen_key(&record.bid, record.event),
                Seen {
                    at_micros: record.at,
                    clearing: record.clearing,
                },
            );
            let Some(c) = world.campaign_by_id(&record.campaign) else {
                continue;
            };
            let at = Timestamp::from_second(at_secs).unwrap_or(now);
            let day = local_day(at, &c.campaign.time_zone);
            if record.charge > 0 {
                c.state.spend.add(day, Micros(record.charge));
            }
            if record.event == billing_kind(world, &record.exchange) && !record.test {
                c.state.count_impression(&record.creative);
            }
            match record.event {
                EventKind::Impression => c.state.impressions.add(day),
                EventKind::Click if record.filtered.is_none() => {
                    c.state.clicks.add(day);
                    c.state.count_click(&record.creative);
                }
                _ => {}
            }
            if record.event == EventKind::Impression && record.user != 0 {
                self.frequency.record(record.user, c.key, at);
            }
        }
    }

    /// Forgets bids older than the notice window and past click-rate hours.
    pub fn sweep(&self, now: Timestamp) {
        let horizon = (now.as_second() - NOTICE_WINDOW_SECS) * 1_000_000;
        self.seen.pin().retain(|_, s| s.at_micros >= horizon);
        self.click_rates.pin().clear();
    }

    /// Handles `/t/{event}?{query}`: verify, deduplicate, record durably,
    /// then count spend. `client` is the caller's address (click rates).
    pub async fn handle(
        &self,
        world: &World,
        now: Timestamp,
        event: &str,
        query: &str,
        client: Option<IpAddr>,
    ) -> TrackingReply {
        if event == "conv" {
            return self.conversion(world, now, query).await;
        }
        let Verified { event, token, price } = match world.signer.verify(event, query) {
            Ok(verified) => verified,
            Err(e) => return TrackingReply::Forbidden(e),
        };
        let age = now.as_second() - token.issued_at;
        if !(-300..=NOTICE_WINDOW_SECS).contains(&age) {
            return TrackingReply::BadPrice("tracking URL expired");
        }
        let clearing = match event {
            Event::Win | Event::Bill => match clearing_price(price.as_deref(), &token) {
                Ok(price) => Some(price),
                Err(why) => return TrackingReply::BadPrice(why),
            },
            _ => None,
        };
        let Some(c) = world.campaign_by_id(&token.campaign) else {
            return TrackingReply::Gone;
        };
        let Some(creative) = c.campaign.creatives.iter().find(|cr| cr.id == token.creative) else {
            return TrackingReply::Gone;
        };
        let answer = match event {
            Event::Impression => TrackingReply::Pixel,
            Event::Click => {
                let medium = match c.campaign.pricing {
                    Pricing::Cpc => "cpc",
                    Pricing::Cpm => "display",
                };
                let click_id = world.signer.click_id(&token.campaign, &token.creative, &token.bid_id);
                TrackingReply::Redirect(with_utm(
                    &creative.landing_url,
                    &token,
                    medium,
                    &[("bz_click", &click_id)],
                ))
            }
            Event::Win | Event::Bill => TrackingReply::Accepted,
        };
        let event_kind = kind(event);
        let key = seen_key(&token.bid_id, event_kind);
        let claim = Seen {
            at_micros: now.as_microsecond(),
            clearing: clearing.map(|p| p.0),
        };
        // Claim the (bid, event) first, so that concurrent duplicates cannot
        // both be recorded; a duplicate is acknowledged, never billed again.
        if self.seen.pin().try_insert(key, claim).is_err() {
            if event == Event::Click {
                self.repeated_click(&token);
            }
            return answer;
        }
        let filtered = match event {
            Event::Click => self.click_filter(world, &token, now, client),
            _ => None,
        };
        let charge = if filtered.is_some() {
            Micros::ZERO
        } else {
            self.charge(world, c, &token, event_kind, clearing)
        };
        let record = Record {
            at: now.as_microsecond(),
            event: event_kind,
            bid: token.bid_id.clone(),
            campaign: token.campaign.clone(),
            creative: token.creative.clone(),
            exchange: token.exchange.clone(),
            clearing: clearing.map(|p| p.0),
            charge: charge.0,
            billed: charge.0 > 0,
            filtered: filtered.map(str::to_string),
            test: token.test,
            user: token.user,
            pricing: c.campaign.pricing,
            value: None,
        };
        if let Err(e) = self.ledger.append(&record).await {
            self.seen.pin().remove(&key);
            tracing::error!(error = %e, "tracking event not recorded");
            return TrackingReply::Unavailable;
        }
        if let Some(reason) = filtered {
            tracing::info!(bid = %token.bid_id, campaign = %token.campaign, reason, "click logged, not billed");
        }
        let today = local_day(now, &c.campaign.time_zone);
        if charge.0 > 0 {
            c.state.spend.add(today, charge);
        }
        if event_kind == billing_kind(world, &token.exchange) && !token.test {
            // The bid's reservation (its value per impression) is settled.
            let reserved = token.bid_value.mul_div_ceil(1, 1000);
            c.state
                .spend
                .release(reserved, token.issued_at.div_euclid(60), now.as_second().div_euclid(60));
        }
        let billed_impression = event_kind == billing_kind(world, &token.exchange) && !token.test;
        if billed_impression {
            c.state.count_impression(&token.creative);
        }
        match event_kind {
            EventKind::Impression => c.state.impressions.add(today),
            EventKind::Click if filtered.is_none() => {
                c.state.clicks.add(today);
                c.state.count_click(&token.creative);
            }
            _ => {}
        }
        if event == Event::Impression && token.user != 0 {
            self.frequency.record(token.user, c.key, now);
        }
        answer
    }

    fn repeated_click(&self, token: &BidToken) {
        let key = seen_key(&token.bid_id, EventKind::Click) ^ 0x5EED;
        let repeats = self.click_rates.pin().update_or_insert(key, |n| n + 1, 1).to_owned();
        if repeats <= REPEAT_LOG_LIMIT {
            tracing::info!(bid = %token.bid_id, campaign = %token.campaign, repeats, "repeated click logged, not billed");
        }
    }

    /// Why a first click should not be billed, if it should not.
    fn click_filter(
        &self,
        world: &World,
        token: &BidToken,
        now: Timestamp,
        client: Option<IpAddr>,
    ) -> Option<&'static str> {
        let rules = world.settings.click_rules;
        let seen = self.seen.pin();
        let shown = seen
            .get(&seen_key(&token.bid_id, EventKind::Impression))
            .or_else(|| seen.get(&seen_key(&token.bid_id, billing_kind(world, &token.exchange))));
        let Some(shown) = shown else {
            return Some("no_impression");
        };
        if now.as_microsecond() - shown.at_micros < rules.min_delay.as_micros() as i64 {
            return Some("too_fast");
        }
        let hour = now.as_second().div_euclid(3600);
        let rates = self.click_rates.pin();
        if token.user != 0 {
            let clicks = *rates.update_or_insert(rate_key(1, &token.user.to_le_bytes(), hour), |n| n + 1, 1);
            if clicks > rules.max_per_user_hour {
                return Some("user_rate");
            }
        }
        if let Some(ip) = client {
            let clicks = *rates.update_or_insert(rate_key(2, ip.to_string().as_bytes(), hour), |n| n + 1, 1);
            if clicks > rules.max_per_ip_hour {
                return Some("ip_rate");
            }
        }
        None
    }

    /// `/t/conv?click={click id}[&value=12.50][&order={id}]`: a conversion
    /// postback, attributed to the click that led to it. One conversion per
    /// click and order id.
    async fn conversion(&self, world: &World, now: Timestamp, query: &str) -> TrackingReply {
        let Some((campaign, creative, bid)) =
            query_param(query, "click").and_then(|id| world.signer.verify_click_id(id))
        else {
            return TrackingReply::Forbidden(TrackingError::BadSignature);
        };
        let value = match query_param(query, "value") {
            Some(text) => match Micros::parse_amount(text) {
                Ok(value) => Some(value.0),
                Err(_) => return TrackingReply::BadPrice("conversion value is not a decimal amount"),
            },
            None => None,
        };
        if self.seen.pin().get(&seen_key(&bid, EventKind::Click)).is_none() {
            return TrackingReply::Gone;
        }
        let order = query_param(query, "order").unwrap_or("");
        let key = seen_key(&bid, EventKind::Conversion) ^ xxhash_rust::xxh3::xxh3_64(order.as_bytes());
        if self
            .seen
            .pin()
            .try_insert(
                key,
                Seen {
                    at_micros: now.as_microsecond(),
                    clearing: None,
                },
            )
            .is_err()
        {
            return TrackingReply::Accepted;
        }
        let pricing = world
            .campaign_by_id(&campaign)
            .map_or(Pricing::Cpm, |c| c.campaign.pricing);
        let record = Record {
            at: now.as_microsecond(),
            event: EventKind::Conversion,
            bid,
            campaign,
            creative,
            exchange: String::new(),
            clearing: None,
            charge: 0,
            billed: false,
            filtered: None,
            test: false,
            user: 0,
            pricing,
            value,
        };
        if let Err(e) = self.ledger.append(&record).await {
            self.seen.pin().remove(&key);
            tracing::error!(error = %e, "conversion not recorded");
            return TrackingReply::Unavailable;
        }
        TrackingReply::Accepted
    }

    /// What this event costs the advertiser.
    fn charge(
        &self,
        world: &World,
        c: &LiveCampaign,
        token: &BidToken,
        event: EventKind,
        clearing: Option<Micros>,
    ) -> Micros {
        if token.test || token.bid_price.0 <= 0 {
            return Micros::ZERO;
        }
        let billing = billing_kind(world, &token.exchange);
        match (c.campaign.pricing, event) {
            // CPM: the clearing price (a CPM, in the response currency)
            // brought back to base currency in proportion to the bid, per
            // impression.
            (Pricing::Cpm, e) if e == billing => clearing.map_or(Micros::ZERO, |price| {
                price.mul_div_floor(token.bid_value.0, token.bid_price.0 * 1000)
            }),
            // CPC: a click is charged max_cpc × clearing / bid (never above
            // max CPC; the advertiser shares the auction discount).
            (Pricing::Cpc, EventKind::Click) => {
                let billed = self.seen.pin().get(&seen_key(&token.bid_id, billing)).copied();
                let clearing = billed.and_then(|s| s.clearing).unwrap_or(token.bid_price.0);
                c.campaign
                    .max_bid
                    .mul_div_floor(clearing.min(token.bid_price.0), token.bid_price.0)
            }
            _ => Micros::ZERO,
        }
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

    #[test]
    fn clearing_prices_are_checked() {
        let t = token();
        assert_eq!(clearing_price(Some("1.5"), &t), Ok(Micros(1_500_000)));
        assert_eq!(clearing_price(Some("2"), &t), Ok(Micros(2_000_000)));
        assert_eq!(clearing_price(Some("1e0"), &t), Ok(Micros(1_000_000)));
        assert!(clearing_price(Some("2.000001"), &t).is_err());
        assert!(clearing_price(Some("-1"), &t).is_err());
        assert!(clearing_price(Some("abc"), &t).is_err());
        assert!(clearing_price(None, &t).is_err());
        assert!(clearing_price(Some("${AUCTION_PRICE}"), &t).is_err());
    }
}
