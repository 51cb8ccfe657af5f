//! Stage 5, encode: choices → BidResponse JSON, with signed tracking URLs.
//!
//! Every bid carries `nurl` and `burl` (with `${AUCTION_PRICE}`) and, in its
//! markup, the impression pixel and the click-through link; bids to an
//! exchange that sends loss notices (`sends_lurl`) carry `lurl` too (with
//! `${AUCTION_LOSS}` and `${AUCTION_MIN_TO_WIN}`). The markup comes from the
//! creative's compiled template ([`crate::campaigns::markup`]), or for a
//! native creative is its native response to the impression's native
//! request ([`crate::campaigns::native`]).
//! The URLs also carry where the ad was to show ([`Place`]: the first of
//! the site domain, app bundle and app domain; the country; the device
//! type), for reports.

use crate::campaigns::Pricing;
use crate::campaigns::markup::push_attr;
use crate::campaigns::model::Markup;
use crate::live::{LiveCampaign, World};
use crate::money::Micros;
use crate::openrtb::{Bid, BidResponse, Imp, MediaType, SeatBid, json_plain};
use crate::signing::{BidToken, Event, Place, SignedPricing, Signer};

use super::enrich::BidCtx;
use super::select::{Choice, seat};

/// A fresh, unguessable bid id: 16 hex digits, after the origin node's
/// 8-hex-digit tag in cluster mode (`{tag}{16 hex}`), so that whichever
/// node gets its notices knows which node made the bid
/// ([`crate::live::replicated::origin_of`]).
pub fn bid_id(origin: Option<&str>) -> String {
    match origin {
        Some(tag) => format!("{tag}{:016x}", rand::random::<u64>()),
        None => format!("{:016x}", rand::random::<u64>()),
    }
}

/// Builds the response body. `base_url` is where tracking URLs point;
/// `origin` is this node's tag in a cluster (its bid ids carry it).
pub fn encode(ctx: &BidCtx, world: &World, choices: &[Choice], base_url: &str, origin: Option<&str>) -> Vec<u8> {
    let Some(response) = response(ctx, world, choices, base_url, origin) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(response_capacity(&response));
    response.write_json(&mut out);
    out
}

/// The response to write, `None` when no choice makes a bid.
pub fn response<'a>(
    ctx: &'a BidCtx<'a>,
    world: &'a World,
    choices: &[Choice<'a>],
    base_url: &str,
    origin: Option<&str>,
) -> Option<BidResponse<'a>> {
    let bids: Vec<(&str, Bid)> = choices
        .iter()
        .filter_map(|choice| one_bid(ctx, world, choice, (base_url, origin)))
        .collect();
    if bids.is_empty() {
        return None;
    }
    Some(BidResponse {
        id: ctx.request.id.as_deref().unwrap_or_default(),
        seatbid: by_seat(bids),
        bidid: bid_id(origin),
        cur: ctx.currency.as_str(),
    })
}

/// One impression's bid, with its signed tracking URLs, and its seat;
/// `None` when its price is nothing in the response currency.
fn one_bid<'a>(
    ctx: &BidCtx<'a>,
    world: &'a World,
    choice: &Choice<'a>,
    (base_url, origin): (&str, Option<&str>),
) -> Option<(&'a str, Bid<'a>)> {
    let c = world.campaign(choice.rank);
    let creative = &c.campaign.creatives[choice.creative];
    let price = world
        .settings
        .fx
        .bid_from_base(choice.price, ctx.currency)
        .filter(|p| p.0 > 0)?;
    let imp_id = choice.imp.id.as_deref().unwrap_or_default();
    let bid_id = bid_id(origin);
    let token = token(ctx, world, choice, (price, &bid_id));
    let urls = urls(
        ctx,
        world,
        base_url,
        &payload(ctx, &token),
        c.markup[choice.creative].html() && native_response(c, choice.creative, choice.imp).is_none(),
    );
    let Shape { w, h, dur, protocol } = shape(creative);
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
        dur,
        protocol,
        adm: markup(c, choice.creative, choice.imp, &urls),
        urls_plain: urls.plain,
        nurl: urls.win,
        burl: urls.bill,
        lurl: urls.loss,
        id: bid_id,
    };
    Some((seat(ctx, c), bid))
}

/// What the bid's URLs carry, borrowed from the request and the campaign.
fn token<'a>(
    ctx: &'a BidCtx,
    world: &'a World,
    choice: &Choice<'a>,
    (price, bid_id): (Micros, &'a str),
) -> BidToken<&'a str> {
    let c = world.campaign(choice.rank);
    let creative = &c.campaign.creatives[choice.creative];
    BidToken {
        user: world.signer.mask_user(ctx.user_key.unwrap_or(0), bid_id),
        bid_id,
        request_id: ctx.request.id.as_deref().unwrap_or_default(),
        imp_id: choice.imp.id.as_deref().unwrap_or_default(),
        campaign: c.campaign.id.as_str(),
        creative: creative.id.as_str(),
        exchange: ctx.exchange.name.as_str(),
        bid_price: price,
        bid_value: choice.price,
        currency: ctx.currency.as_str(),
        issued_at: ctx.now.as_second(),
        test: ctx.request.test.0,
        notice_until: super::notice_until(ctx, choice.imp),
        pricing: Some(match c.campaign.pricing {
            // CPA and CPS campaigns pay clearing prices per impression.
            Pricing::Cpm | Pricing::Cpa | Pricing::Cps => SignedPricing::Cpm,
            Pricing::Cpc => SignedPricing::Cpc {
                max_cpc: c.campaign.max_bid,
                value: shaded_from(ctx, world, choice, price),
            },
        }),
        // Written below from the request's own text, not copied.
        place: Place::default(),
        qty_milli: choice.qty_milli,
        arm: arm_tag(c, choice),
        shading_slice: choice.shading_slice,
    }
}

/// The value a bid at `price` (response currency) was shaded from, in the
/// response currency, when shading took the bid below it: a CPC click is
/// then charged `max_cpc × clearing / value` (see `pacing::cost::cpc_charge`).
fn shaded_from(ctx: &BidCtx, world: &World, choice: &Choice, price: Micros) -> Option<Micros> {
    if choice.value <= choice.price {
        return None;
    }
    let value = world.settings.fx.bid_from_base(choice.value, ctx.currency)?;
    (value > price).then_some(value)
}

/// The tag of the experiment arm the bid was made in, for its URLs.
fn arm_tag<'a>(c: &'a LiveCampaign, choice: &Choice) -> Option<&'a str> {
    Some(&c.campaign.experiment.as_deref()?.arms.get(choice.arm?)?.tag)
}

/// A no-bid as a BidResponse: the request's `id` and the `nbr` code.
pub fn no_bid(request: &crate::openrtb::BidRequest, reason: crate::metrics::NoBidReason) -> Vec<u8> {
    let id = request.id.as_deref().unwrap_or_default();
    serde_json::to_vec(&serde_json::json!({"id": id, "nbr": reason.code()})).unwrap_or_default()
}

/// What a bid says of its creative's shape, by medium.
struct Shape {
    w: Option<i64>,
    h: Option<i64>,
    dur: Option<i64>,
    protocol: Option<i32>,
}

fn shape(creative: &crate::campaigns::Creative) -> Shape {
    let (w, h) = match creative.media {
        MediaType::Banner | MediaType::Video => (creative.w, creative.h),
        _ => (None, None),
    };
    let (dur, protocol) = match creative.media {
        MediaType::Video | MediaType::Audio => (creative.duration, creative.player.protocol),
        _ => (None, None),
    };
    Shape { w, h, dur, protocol }
}

/// Room for the response's JSON: its long parts plus the short fields.
fn response_capacity(response: &BidResponse) -> usize {
    let bids = response.seatbid.iter().flat_map(|s| &s.bid);
    let long: usize = bids
        .map(|b| b.adm.len() + b.nurl.len() + b.burl.len() + b.lurl.as_ref().map_or(0, String::len) + 256)
        .sum();
    long + response.id.len() + 96
}

/// A bid's markup as a JSON string literal: a native creative's response
/// to the impression's native request, else the creative's compiled
/// template (taking the URLs' attribute forms where they were made).
fn markup(c: &LiveCampaign, creative: usize, imp: &Imp, urls: &Urls) -> String {
    let template = &c.markup[creative];
    if let Some((click, impression)) = &urls.attr {
        return template.render_ready(click, impression);
    }
    match native_response(c, creative, imp) {
        Some((ad, request)) => Box::<str>::from(ad.response(request, &urls.click, &urls.impression)).into_string(),
        None => template.render(&urls.click, &urls.impression, urls.plain),
    }
}

/// The native creative and the impression's native request, when the bid's
/// markup is the creative's response to it.
fn native_response<'a>(
    c: &'a LiveCampaign,
    creative: usize,
    imp: &'a Imp,
) -> Option<(
    &'a crate::campaigns::native::NativeAd,
    &'a crate::openrtb::NativeRequest,
)> {
    let request = imp.native.as_ref().and_then(|n| n.request.as_ref())?;
    match &c.campaign.creatives[creative].markup {
        Markup::Native(ad) => Some((ad, request)),
        _ => None,
    }
}

/// A bid's signed URLs.
struct Urls {
    /// The click and impression URLs, unescaped: empty when the markup
    /// takes their attribute forms (`attr`) instead.
    click: String,
    impression: String,
    win: String,
    bill: String,
    /// The loss notice, where the exchange sends them (`sends_lurl`).
    loss: Option<String>,
    /// They all need no JSON escaping.
    plain: bool,
    /// The click and impression URLs escaped for an HTML attribute, made
    /// from the payload escaped once, when the markup wants them and they
    /// are plain.
    attr: Option<(String, String)>,
}

/// The bid's signed URLs: click, impression, win and billing notice, and
/// the loss notice where the exchange sends them; the payload hashed once (`Signer::tags`).
/// `html`: the markup puts the click and impression URLs in HTML
/// attributes (and is no native response, which takes them unescaped).
fn urls(ctx: &BidCtx, world: &World, base_url: &str, payload: &str, html: bool) -> Urls {
    // The signed URLs are the base, a fixed path, this payload, a base64url
    // tag and fixed macros: JSON-plain when the base and the payload are,
    // checked once here for all of them.
    let plain = json_plain(base_url) && json_plain(payload);
    let events = [Event::Click, Event::Impression, Event::Win, Event::Bill, Event::Loss];
    let tags = if ctx.exchange.sends_lurl {
        world.signer.tags(events, payload).map(Some)
    } else {
        let [click, impression, win, bill] = world.signer.tags([events[0], events[1], events[2], events[3]], payload);
        [Some(click), Some(impression), Some(win), Some(bill), None]
    };
    let url = |i: usize| tags[i].map(|tag| Signer::assemble(base_url, events[i], payload, tag.as_str()));
    let attr = (html && plain).then(|| {
        let (mut base_attr, mut payload_attr) = (String::with_capacity(base_url.len() + 8), String::new());
        push_attr(&mut base_attr, base_url);
        payload_attr.reserve(payload.len() + payload.len() / 3);
        push_attr(&mut payload_attr, payload);
        let attr_url = |i: usize| {
            let tag = tags[i].expect("click and impression are always signed");
            Signer::assemble_attr(&base_attr, events[i], &payload_attr, tag.as_str())
        };
        (attr_url(0), attr_url(1))
    });
    let markup_url = |i: usize| match attr {
        Some(_) => String::new(),
        None => url(i).unwrap_or_default(),
    };
    Urls {
        click: markup_url(0),
        impression: markup_url(1),
        win: url(2).unwrap_or_default(),
        bill: url(3).unwrap_or_default(),
        loss: url(4),
        plain,
        attr,
    }
}

/// The token's payload with the request's place written after it, from
/// the request's own text (no copy).
fn payload(ctx: &BidCtx, token: &BidToken<&str>) -> String {
    let mut payload = token.payload();
    let facts = &ctx.facts;
    Place::write(
        &mut payload,
        facts.domains.first().copied().unwrap_or_default(),
        facts.country.unwrap_or_default(),
        facts.device_type,
    );
    payload
}

/// One seatbid per buyer seat, in order of first appearance.
fn by_seat<'a>(bids: Vec<(&'a str, Bid<'a>)>) -> Vec<SeatBid<'a>> {
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
    seatbid
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use super::*;
    use crate::bidder::{Bidder, decode, enrich, select};
    use crate::clock::SystemClock;

    fn corpus_requests() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/requests");
        let mut files = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("the corpus is at ../shared/corpus") {
                let path = entry.expect("a corpus entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }

    /// The differential test of the response writer: on every corpus
    /// request that bids, the one-pass writer gives exactly the bytes of
    /// the `serde_json` serializer the bidder used before it, on the same
    /// response.
    #[test]
    fn the_response_writer_writes_what_serde_json_wrote_on_the_corpus() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("loadtest/config");
        let bidder = Bidder::from_config_dir(&dir, Arc::new(SystemClock)).expect("loadtest config loads");
        let world = bidder.world.load();
        let snapshot = bidder.audience.load();
        let mut responses = 0;
        for path in corpus_requests() {
            let body = std::fs::read(&path).unwrap();
            let mut repaired = String::new();
            let Ok(decoded) = decode::decode(&body, &mut repaired) else {
                continue;
            };
            let audience = enrich::Audience {
                snapshot: &snapshot,
                overlay: &bidder.audience.overlay,
                matches: &bidder.audience.matches,
            };
            let now = bidder.clock.now();
            let exchange = world.settings.default_exchange_id();
            let Ok(ctx) = enrich::enrich(&decoded.request, &world, exchange, audience, now) else {
                continue;
            };
            let mut scratch = select::Scratch::default();
            let choices: Vec<_> = decoded
                .request
                .imp
                .iter()
                .filter_map(|imp| select::select(&ctx, &world, imp, &bidder.frequency, &mut scratch).ok())
                .collect();
            let Some(response) = response(&ctx, &world, &choices, "http://127.0.0.1:8080", Some("0a1b2c3d")) else {
                continue;
            };
            let mut written = Vec::new();
            response.write_json(&mut written);
            let reference = serde_json::to_vec(&response).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(reference).unwrap(),
                "{}",
                path.display()
            );
            responses += 1;
        }
        assert!(responses >= 60, "only {responses} corpus requests got a bid");
    }

    /// Strings that need escaping come out escaped as `serde_json` does.
    #[test]
    fn the_response_writer_escapes_what_needs_escaping() {
        let adomain = vec!["a\"b.example".to_string()];
        let cat = vec![];
        let bid = Bid {
            id: "b\u{1}".into(),
            impid: "i\\1",
            price: 0.1 + 0.2,
            adid: "ad é",
            cid: "c",
            crid: "k",
            adomain: &adomain,
            cat: &cat,
            mtype: 1,
            w: None,
            h: Some(250),
            dealid: Some("d\n"),
            dur: None,
            protocol: Some(7),
            adm: r#""<b>\"x\"</b>""#.into(),
            nurl: "http://x/t/win?a=\"".into(),
            burl: "http://x/t/bill?a=1&price=${AUCTION_PRICE}".into(),
            lurl: Some("http://x/t/loss?é".into()),
            urls_plain: false,
        };
        let response = BidResponse {
            id: "r\t",
            seatbid: vec![SeatBid {
                bid: vec![bid],
                seat: None,
            }],
            bidid: "x".into(),
            cur: "USD",
        };
        let mut written = Vec::new();
        response.write_json(&mut written);
        assert_eq!(written, serde_json::to_vec(&response).unwrap());
    }
}
