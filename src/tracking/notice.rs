//! What a verified tracking request does.
//!
//! The impression pixel counts towards frequency caps and answers a 1×1
//! GIF; the click answers 302 to the creative's landing page with UTM
//! parameters; the win and billing notices check the clearing price.
//! (The billing ledger, deduplication and budgets behind these events are
//! the money work; this module is where they plug in.)

use std::sync::Arc;

use jiff::Timestamp;

use crate::campaigns::index::CompiledCampaign;
use crate::campaigns::{Pricing, World};
use crate::clock::local_day;
use crate::config::BillingEvent;
use crate::ledger::{EventKind, Ledger, Record};
use crate::money::Micros;
use crate::pacing::FrequencyStore;

use super::sign::{BidToken, Event, TrackingError, Verified};

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
        .filter(|p| !p.is_empty() && *p != super::sign::AUCTION_PRICE_MACRO)
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
pub fn with_utm(landing: &str, token: &BidToken, medium: &str) -> String {
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
    for (i, (name, value)) in params.iter().enumerate() {
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

/// Tracking state: the ledger, what each bid has already recorded, and the
/// frequency counts impressions feed.
pub struct Tracker {
    pub ledger: Ledger,
    pub frequency: Arc<FrequencyStore>,
    /// (bid, event) → when recorded and at what clearing price. Lock-free;
    /// entries older than the notice window are swept.
    seen: papaya::HashMap<u64, Seen, foldhash::fast::RandomState>,
}

#[derive(Clone, Copy, Debug)]
struct Seen {
    at_secs: i64,
    clearing: Option<i64>,
}

fn seen_key(bid: &str, event: EventKind) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bid.as_bytes()) ^ (event as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
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

impl Tracker {
    pub fn new(ledger: Ledger, frequency: Arc<FrequencyStore>) -> Tracker {
        Tracker {
            ledger,
            frequency,
            seen: papaya::HashMap::builder().hasher(Default::default()).build(),
        }
    }

    /// Rebuilds spend, frequency counts and deduplication from the ledger.
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
                    at_secs,
                    clearing: record.clearing,
                },
            );
            let Some(c) = world.campaign_by_id(&record.campaign) else {
                continue;
            };
            let at = Timestamp::from_second(at_secs).unwrap_or(now);
            if record.charge > 0 {
                c.state
                    .spend
                    .add(local_day(at, &c.campaign.time_zone), Micros(record.charge));
            }
            let day = local_day(at, &c.campaign.time_zone);
            match record.event {
                EventKind::Impression => c.state.impressions.add(day),
                EventKind::Click if record.filtered.is_none() => c.state.clicks.add(day),
                _ => {}
            }
            if record.event == EventKind::Impression && record.user != 0 {
                self.frequency.record(record.user, c.key, at);
            }
        }
    }

    /// Forgets bids older than the notice window.
    pub fn sweep(&self, now: Timestamp) {
        let horizon = now.as_second() - NOTICE_WINDOW_SECS;
        self.seen.pin().retain(|_, s| s.at_secs >= horizon);
    }

    /// Handles `/t/{event}?{query}`: verify, deduplicate, record durably,
    /// then count spend.
    pub async fn handle(&self, world: &World, now: Timestamp, event: &str, query: &str) -> TrackingReply {
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
                TrackingReply::Redirect(with_utm(&creative.landing_url, &token, medium))
            }
            Event::Win | Event::Bill => TrackingReply::Accepted,
        };
        let event_kind = kind(event);
        let key = seen_key(&token.bid_id, event_kind);
        let claim = Seen {
            at_secs: now.as_second(),
            clearing: clearing.map(|p| p.0),
        };
        // Claim the (bid, event) first, so that concurrent duplicates cannot
        // both be recorded; a duplicate is acknowledged, never billed again.
        if self.seen.pin().try_insert(key, claim).is_err() {
            return answer;
        }
        let (charge, filtered) = self.charge(world, c, &token, event_kind, clearing);
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
            filtered,
            test: token.test,
            user: token.user,
            pricing: c.campaign.pricing,
        };
        if let Err(e) = self.ledger.append(&record).await {
            self.seen.pin().remove(&key);
            tracing::error!(error = %e, "tracking event not recorded");
            return TrackingReply::Unavailable;
        }
        if charge.0 > 0 {
            c.state.spend.add(local_day(now, &c.campaign.time_zone), charge);
        }
        if event_kind == billing_kind(world, &token.exchange) && !token.test {
            // The bid's reservation (its value per impression) is settled.
            let reserved = token.bid_value.mul_div_ceil(1, 1000);
            c.state
                .spend
                .release(reserved, token.issued_at.div_euclid(60), now.as_second().div_euclid(60));
        }
        let today = local_day(now, &c.campaign.time_zone);
        match event_kind {
            EventKind::Impression => c.state.impressions.add(today),
            EventKind::Click if record.filtered.is_none() => c.state.clicks.add(today),
            _ => {}
        }
        if event == Event::Impression && token.user != 0 {
            self.frequency.record(token.user, c.key, now);
        }
        answer
    }

    /// What this event costs the advertiser, or why a click is not billed.
    fn charge(
        &self,
        world: &World,
        c: &CompiledCampaign,
        token: &BidToken,
        event: EventKind,
        clearing: Option<Micros>,
    ) -> (Micros, Option<String>) {
        if token.test || token.bid_price.0 <= 0 {
            return (Micros::ZERO, None);
        }
        let billing = billing_kind(world, &token.exchange);
        match (c.campaign.pricing, event) {
            // CPM: the clearing price (a CPM, in the response currency)
            // brought back to base currency in proportion to the bid, per
            // impression.
            (Pricing::Cpm, e) if e == billing => match clearing {
                Some(price) => (price.mul_div_floor(token.bid_value.0, token.bid_price.0 * 1000), None),
                None => (Micros::ZERO, None),
            },
            // CPC: a click is charged max_cpc × clearing / bid, once the
            // impression was billed.
            (Pricing::Cpc, EventKind::Click) => {
                let billed = self.seen.pin().get(&seen_key(&token.bid_id, billing)).copied();
                match billed.and_then(|s| s.clearing) {
                    Some(price) => (
                        c.campaign
                            .max_bid
                            .mul_div_floor(price.min(token.bid_price.0), token.bid_price.0),
                        None,
                    ),
                    None => (Micros::ZERO, Some("no_impression".into())),
                }
            }
            _ => (Micros::ZERO, None),
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
            with_utm("https://shop.example/p?id=7#top", &t, "cpc"),
            "https://shop.example/p?id=7&utm_source=default&utm_medium=cpc&utm_campaign=acme&utm_content=cr%201#top"
        );
        assert!(with_utm("https://shop.example/", &t, "display").starts_with("https://shop.example/?utm_source="));
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
