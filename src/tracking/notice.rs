//! What a verified tracking request does.
//!
//! The impression pixel counts towards frequency caps and answers a 1×1
//! GIF; the click answers 302 to the creative's landing page with UTM
//! parameters; the win and billing notices check the clearing price.
//! (The billing ledger, deduplication and budgets behind these events are
//! the money work; this module is where they plug in.)

use jiff::Timestamp;

use crate::campaigns::World;
use crate::money::Micros;
use crate::pacing::FrequencyStore;

use super::sign::{BidToken, Event, Signer, TrackingError, Verified};

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

/// Handles `/t/{event}?{query}`.
pub fn handle(
    signer: &Signer,
    world: &World,
    frequency: &FrequencyStore,
    now: Timestamp,
    event: &str,
    query: &str,
) -> TrackingReply {
    let Verified { event, token, price } = match signer.verify(event, query) {
        Ok(verified) => verified,
        Err(e) => return TrackingReply::Forbidden(e),
    };
    match event {
        Event::Impression => {
            if token.user != 0
                && let Some(c) = world.campaign_by_id(&token.campaign)
            {
                frequency.record(token.user, c.key, now);
            }
            TrackingReply::Pixel
        }
        Event::Click => {
            let Some(c) = world.campaign_by_id(&token.campaign) else {
                return TrackingReply::Gone;
            };
            let Some(creative) = c.campaign.creatives.iter().find(|cr| cr.id == token.creative) else {
                return TrackingReply::Gone;
            };
            let medium = match c.campaign.pricing {
                crate::campaigns::Pricing::Cpc => "cpc",
                crate::campaigns::Pricing::Cpm => "display",
            };
            TrackingReply::Redirect(with_utm(&creative.landing_url, &token, medium))
        }
        Event::Win | Event::Bill => match clearing_price(price.as_deref(), &token) {
            Ok(_) => TrackingReply::Accepted,
            Err(why) => TrackingReply::BadPrice(why),
        },
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
