//! Stage 5, encode: choices → BidResponse JSON, with signed tracking URLs.
//!
//! Every bid carries `nurl` and `burl` (with `${AUCTION_PRICE}`) and, in its
//! markup, the impression pixel and the click-through link. Banner markup is
//! HTML: an image creative is wrapped in a link and followed by the pixel;
//! inline HTML may place `{{CLICK_URL}}` and `{{IMPRESSION_URL}}` itself,
//! otherwise it is wrapped the same way. Video, audio and native markup use
//! the two macros (inside CDATA for VAST).

use crate::campaigns::World;
use crate::campaigns::model::{Creative, Markup};
use crate::money::Micros;
use crate::openrtb::{Bid, BidResponse, MediaType, SeatBid};
use crate::tracking::{BidToken, Event};

use super::enrich::BidCtx;
use super::select::{Choice, seat};

pub const CLICK_MACRO: &str = "{{CLICK_URL}}";
pub const IMPRESSION_MACRO: &str = "{{IMPRESSION_URL}}";

/// Escapes a URL for an HTML attribute value.
fn attr(url: &str) -> String {
    url.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;")
}

fn pixel(impression_url: &str) -> String {
    format!(
        r#"<img src="{}" width="1" height="1" alt="" style="position:absolute;left:-10000px;border:0">"#,
        attr(impression_url)
    )
}

/// The markup of a winning creative.
pub fn markup(creative: &Creative, click_url: &str, impression_url: &str) -> String {
    match (&creative.markup, creative.media) {
        (Markup::Image { url }, _) => format!(
            r#"<a href="{}" target="_blank" rel="noopener"><img src="{}" width="{}" height="{}" alt="" style="border:0"></a>{}"#,
            attr(click_url),
            attr(url),
            creative.w.unwrap_or(0),
            creative.h.unwrap_or(0),
            pixel(impression_url)
        ),
        (Markup::Inline(html), MediaType::Banner) => {
            let mut out = if html.contains(CLICK_MACRO) {
                html.replace(CLICK_MACRO, &attr(click_url))
            } else {
                format!(
                    r#"<a href="{}" target="_blank" rel="noopener">{html}</a>"#,
                    attr(click_url)
                )
            };
            if out.contains(IMPRESSION_MACRO) {
                out = out.replace(IMPRESSION_MACRO, &attr(impression_url));
            } else {
                out.push_str(&pixel(impression_url));
            }
            out
        }
        (Markup::Inline(text), _) => text
            .replace(CLICK_MACRO, click_url)
            .replace(IMPRESSION_MACRO, impression_url),
    }
}

/// A fresh, unguessable bid id.
fn bid_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Builds the response body. `base_url` is where tracking URLs point.
pub fn encode(ctx: &BidCtx, world: &World, choices: &[Choice], base_url: &str) -> Vec<u8> {
    let fx = &world.settings.fx;
    let signer = &world.signer;
    let currency = ctx.currency.as_str();
    let request_id = ctx.request.id.as_deref().unwrap_or_default();
    let issued_at = ctx.now.as_second();
    let bids: Vec<(&str, Bid)> = choices
        .iter()
        .filter_map(|choice| {
            let c = world.campaign(choice.rank);
            let creative = &c.campaign.creatives[choice.creative];
            let price = fx.bid_from_base(choice.price, ctx.currency).filter(|p| p.0 > 0)?;
            let imp_id = choice.imp.id.as_deref().unwrap_or_default();
            let token = BidToken {
                bid_id: bid_id(),
                request_id: request_id.to_string(),
                imp_id: imp_id.to_string(),
                campaign: c.campaign.id.clone(),
                creative: creative.id.clone(),
                exchange: ctx.exchange.name.clone(),
                bid_price: price,
                bid_value: choice.price,
                currency: currency.to_string(),
                issued_at,
                user: ctx.user_key.unwrap_or(0),
                test: ctx.request.test.0,
            };
            let payload = token.payload();
            let url = |event| signer.url(base_url, event, &payload);
            let (click, impression) = (url(Event::Click), url(Event::Impression));
            let (w, h) = match creative.media {
                MediaType::Banner | MediaType::Video => (creative.w, creative.h),
                _ => (None, None),
            };
            let bid = Bid {
                price: Micros::to_wire(price),
                impid: imp_id,
                adid: &creative.id,
                cid: &c.campaign.id,
                crid: &creative.id,
                adomain: &c.campaign.adomain,
                cat: &c.campaign.cat,
                mtype: creative.media.mtype(),
                w,
                h,
                dealid: choice.deal_id,
                adm: markup(creative, &click, &impression),
                nurl: url(Event::Win),
                burl: url(Event::Bill),
                id: token.bid_id,
            };
            Some((seat(ctx, c), bid))
        })
        .collect();
    if bids.is_empty() {
        return Vec::new();
    }
    // One seatbid per buyer seat, in order of first appearance.
    let mut seatbid: Vec<SeatBid> = Vec::new();
    for (seat, bid) in bids {
        match seatbid.iter_mut().find(|s| s.seat == Some(seat)) {
            Some(group) => group.bid.push(bid),
            None => seatbid.push(SeatBid {
                bid: vec![bid],
                seat: Some(seat),
            }),
        }
    }
    let response = BidResponse {
        id: request_id,
        seatbid,
        bidid: bid_id(),
        cur: currency,
    };
    // Serialising plain structs into a Vec cannot fail.
    serde_json::to_vec(&response).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creative(markup: Markup, media: MediaType) -> Creative {
        Creative {
            id: "cr".into(),
            media,
            w: Some(300),
            h: Some(250),
            markup,
            landing_url: "https://x".into(),
            mime: None,
            duration: None,
            attr: vec![],
        }
    }

    #[test]
    fn banner_markup_has_link_and_pixel() {
        let html = markup(
            &creative(
                Markup::Image {
                    url: "https://cdn/a.png".into(),
                },
                MediaType::Banner,
            ),
            "http://t/click?a=1&b=2",
            "http://t/imp?a=1",
        );
        assert!(html.contains(r#"<a href="http://t/click?a=1&amp;b=2""#));
        assert!(html.contains(r#"<img src="http://t/imp?a=1""#));
        let inline = markup(
            &creative(Markup::Inline("<b>hi</b>".into()), MediaType::Banner),
            "C",
            "I",
        );
        assert!(inline.starts_with(r#"<a href="C""#) && inline.contains(r#"src="I""#));
        let vast = markup(
            &creative(
                Markup::Inline("<VAST><![CDATA[{{IMPRESSION_URL}}]]>{{CLICK_URL}}</VAST>".into()),
                MediaType::Video,
            ),
            "C&x",
            "I&y",
        );
        assert_eq!(vast, "<VAST><![CDATA[I&y]]>C&x</VAST>");
    }
}
