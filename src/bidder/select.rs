//! Stage 3, select: the best eligible campaign and creative per impression.
//!
//! Deal bids come first (OpenRTB 2.6 §7.3): the campaigns targeting a deal
//! the impression carries are tried against that deal's floor, auction type
//! and seat/advertiser allow lists. Without a deal bid, a private auction
//! gets no bid; otherwise the open auction walks the candidate lists from
//! the [`crate::live::World`] index best value first, and the first campaign that passes
//! every rule wins (ties in value are broken by campaign id, in the rank).

use crate::campaigns::PacingMode;
use crate::campaigns::index::MergedRanks;
use crate::campaigns::model::Creative;
use crate::campaigns::targeting::{FilterReason, category_matches, domain_matches};
use crate::live::LiveCampaign;
use crate::live::World;
use crate::money::{Currency, Micros};
use crate::openrtb::{AuctionType, CreativeAttribute, Deal, Floor, Imp, MediaType, Text};
use crate::pacing::FrequencyStore;

use super::enrich::BidCtx;
use super::price::bid_price;

/// The winner for one impression.
#[derive(Debug)]
pub struct Choice<'a> {
    /// The impression bid on.
    pub imp: &'a Imp<'a>,
    /// The campaign's rank in the world's index.
    pub rank: u32,
    /// Index of the chosen creative in the campaign's creatives.
    pub creative: usize,
    /// The deal bid in; `None` for the open auction.
    pub deal_id: Option<&'a str>,
    /// Bid price, CPM, base currency.
    pub price: Micros,
}

/// Why an impression got no bid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImpNoBid {
    /// No campaign was eligible.
    NoMatch,
    /// A private auction without an eligible deal campaign.
    PrivateAuction,
    /// The floor's currency is not in the FX table.
    FloorCurrency,
    /// The floor is negative, too large for micro-units, or not a number.
    InvalidFloor,
}

/// Terms of the auction a campaign is tried in.
struct Terms<'a> {
    floor: Micros,
    auction: AuctionType,
    deal: Option<&'a Deal<'a>>,
}

/// A wire floor in `currency` (default USD, per OpenRTB), in base micros.
/// No floor is zero; a negative one, one too large for micro-units, or one
/// that is not a number is [`ImpNoBid::InvalidFloor`] (never "no floor");
/// an unknown currency is [`ImpNoBid::FloorCurrency`].
fn floor_in_base(world: &World, floor: Option<Floor>, currency: Option<&str>) -> Result<Micros, ImpNoBid> {
    let amount = match floor {
        None => return Ok(Micros::ZERO),
        Some(Floor::Amount(amount)) => Micros::from_wire(amount).ok_or(ImpNoBid::InvalidFloor)?,
        Some(Floor::Invalid) => return Err(ImpNoBid::InvalidFloor),
    };
    if amount == Micros::ZERO {
        return Ok(Micros::ZERO);
    }
    let currency = match currency.map(str::trim).filter(|c| !c.is_empty()) {
        Some(code) => Currency::parse(code).ok_or(ImpNoBid::FloorCurrency)?,
        None => Currency::USD,
    };
    world
        .settings
        .fx
        .floor_to_base(amount, currency)
        .ok_or(ImpNoBid::FloorCurrency)
}

fn no_overlap(blocked: &[CreativeAttribute], attrs: &[i32]) -> bool {
    blocked.is_empty() || !attrs.iter().any(|a| blocked.contains(&CreativeAttribute(*a)))
}

fn duration_fits(creative: &Creative, min: Option<i64>, max: Option<i64>) -> bool {
    let Some(duration) = creative.duration else {
        return true;
    };
    min.is_none_or(|m| duration >= m) && max.is_none_or(|m| m <= 0 || duration <= m)
}

fn mime_fits(creative: &Creative, mimes: &[Text]) -> bool {
    mimes.is_empty()
        || creative
            .mime
            .as_deref()
            .is_some_and(|m| mimes.iter().any(|x| x.eq_ignore_ascii_case(m)))
}

/// Does this creative fit the impression's slot?
pub fn creative_fits(creative: &Creative, imp: &Imp) -> bool {
    match creative.media {
        MediaType::Banner => imp.banner.as_ref().is_some_and(|b| {
            b.sizes().any(|(w, h)| Some(w) == creative.w && Some(h) == creative.h)
                && no_overlap(&b.battr, &creative.attr)
        }),
        MediaType::Video => imp.video.as_ref().is_some_and(|v| {
            mime_fits(creative, &v.mimes)
                && duration_fits(creative, v.minduration, v.maxduration)
                && no_overlap(&v.battr, &creative.attr)
        }),
        MediaType::Audio => imp.audio.as_ref().is_some_and(|a| {
            mime_fits(creative, &a.mimes)
                && duration_fits(creative, a.minduration, a.maxduration)
                && no_overlap(&a.battr, &creative.attr)
        }),
        MediaType::Native => imp
            .native
            .as_ref()
            .is_some_and(|n| no_overlap(&n.battr, &creative.attr)),
    }
}

/// Request-level blocks: advertiser domains, categories, apps.
fn blocked(ctx: &BidCtx, c: &LiveCampaign) -> Option<FilterReason> {
    let request = ctx.request;
    let campaign = &c.campaign;
    if request
        .badv
        .iter()
        .any(|b| campaign.adomain.iter().any(|d| domain_matches(d, b.trim())))
    {
        return Some(FilterReason::BlockedAdvertiser);
    }
    if request
        .bcat
        .iter()
        .any(|b| campaign.cat.iter().any(|cat| category_matches(cat, b.trim())))
    {
        return Some(FilterReason::BlockedCategory);
    }
    if campaign
        .bundle
        .as_deref()
        .is_some_and(|bundle| request.bapp.iter().any(|b| &**b == bundle))
    {
        return Some(FilterReason::BlockedApp);
    }
    None
}

/// The seat a campaign bids under at this exchange.
pub fn seat<'a>(ctx: &BidCtx<'a>, c: &'a LiveCampaign) -> &'a str {
    c.campaign.seat.as_deref().unwrap_or(&ctx.exchange.seat)
}

/// `wseat` lists the seats allowed, `bseat` those refused.
fn seat_allowed(allowed: &[Text], refused: &[Text], seat: &str) -> bool {
    (allowed.is_empty() || allowed.iter().any(|s| &**s == seat)) && !refused.iter().any(|s| &**s == seat)
}

/// Every rule, cheapest first; on success the creative and the price.
fn evaluate(
    ctx: &BidCtx,
    world: &World,
    c: &LiveCampaign,
    imp: &Imp,
    terms: &Terms,
    frequency: &FrequencyStore,
) -> Result<(usize, Micros), FilterReason> {
    let campaign = &c.campaign;
    if !c.exchanges.contains(ctx.exchange_id) {
        return Err(FilterReason::Exchange);
    }
    if !campaign.in_flight(ctx.now) {
        return Err(FilterReason::Flight);
    }
    if !seat_allowed(&ctx.request.wseat, &ctx.request.bseat, seat(ctx, c)) {
        return Err(FilterReason::Seat);
    }
    if let Some(reason) = blocked(ctx, c) {
        return Err(reason);
    }
    if let Some(deal) = terms.deal {
        let advertiser_allowed = deal.wadomain.is_empty()
            || campaign
                .adomain
                .iter()
                .any(|d| deal.wadomain.iter().any(|w| domain_matches(d, w.trim())));
        if !advertiser_allowed || !seat_allowed(&deal.wseat, &[], seat(ctx, c)) {
            return Err(FilterReason::Deal);
        }
    }
    campaign.targeting.check(&ctx.facts)?;
    let (today, hour_of_week) = ctx.local_time(c.tz);
    if campaign
        .targeting
        .hours
        .is_some_and(|hours| !hours.contains(hour_of_week))
    {
        return Err(FilterReason::Daypart);
    }
    let cap = &campaign.targeting.frequency;
    if cap.per_hour.is_some() || cap.per_day.is_some() {
        let allowed = ctx
            .user_key
            .is_some_and(|user| frequency.allows(cap, user, c.key, ctx.now));
        if !allowed {
            return Err(FilterReason::Frequency);
        }
    }
    if !c.state.spend.has_budget(today, campaign.daily_budget) {
        return Err(FilterReason::Budget);
    }
    if campaign.pacing == PacingMode::Even && !c.state.pacer.admit(hour_of_week % 24, rand::random_range(0..1_000_000))
    {
        return Err(FilterReason::Pacing);
    }
    // The most valuable creative that fits (the first, for CPM campaigns).
    let creative = (0..campaign.creatives.len())
        .filter(|&i| creative_fits(&campaign.creatives[i], imp))
        .min_by_key(|&i| std::cmp::Reverse(c.creative_values[i]))
        .ok_or(FilterReason::Creative)?;
    let value = c.creative_values[creative];
    let price = bid_price(value, terms.floor, terms.auction, world.settings.shading_ppm).ok_or(FilterReason::Floor)?;
    Ok((creative, price))
}

/// Walks candidates best first; the first eligible one wins.
fn first_eligible<'a>(
    ctx: &BidCtx<'a>,
    world: &World,
    imp: &'a Imp<'a>,
    terms: &Terms<'a>,
    candidates: impl Iterator<Item = u32>,
    frequency: &FrequencyStore,
) -> Option<Choice<'a>> {
    for rank in candidates {
        let c = world.campaign(rank);
        match evaluate(ctx, world, c, imp, terms, frequency) {
            Ok((creative, price)) => {
                let deal_id = terms.deal.and_then(|d| d.id.as_deref());
                return Some(Choice {
                    imp,
                    rank,
                    creative,
                    deal_id,
                    price,
                });
            }
            Err(reason) => c.state.count_filtered(reason),
        }
    }
    None
}

fn best_deal_bid<'a>(
    ctx: &BidCtx<'a>,
    world: &World,
    imp: &'a Imp<'a>,
    frequency: &FrequencyStore,
) -> Option<Choice<'a>> {
    let pmp = imp.pmp.as_ref()?;
    let mut best: Option<Choice> = None;
    for deal in &pmp.deals {
        let Some(id) = deal.id.as_deref() else {
            continue;
        };
        let candidates = world.deal_campaigns(id);
        if candidates.is_empty() {
            continue;
        }
        let currency = deal.bidfloorcur.as_deref().or(imp.bidfloorcur.as_deref());
        let Ok(floor) = floor_in_base(world, deal.bidfloor, currency) else {
            continue;
        };
        let terms = Terms {
            floor,
            auction: deal.at.unwrap_or(ctx.auction),
            deal: Some(deal),
        };
        if let Some(choice) = first_eligible(ctx, world, imp, &terms, candidates.iter().copied(), frequency)
            && best
                .as_ref()
                .is_none_or(|b| (choice.price, std::cmp::Reverse(choice.rank)) > (b.price, std::cmp::Reverse(b.rank)))
        {
            best = Some(choice);
        }
    }
    best
}

/// The best bid for `imp`, or why there is none.
pub fn select<'a>(
    ctx: &BidCtx<'a>,
    world: &World,
    imp: &'a Imp<'a>,
    frequency: &FrequencyStore,
    scratch: &mut Vec<u32>,
) -> Result<Choice<'a>, ImpNoBid> {
    if let Some(choice) = best_deal_bid(ctx, world, imp, frequency) {
        return Ok(choice);
    }
    if imp.pmp.as_ref().is_some_and(|p| p.private_auction.0) {
        return Err(ImpNoBid::PrivateAuction);
    }
    let floor = floor_in_base(world, imp.bidfloor, imp.bidfloorcur.as_deref())?;
    let terms = Terms {
        floor,
        auction: ctx.auction,
        deal: None,
    };

    scratch.clear();
    if world.has_segment_targeting() {
        for key in &ctx.facts.segments {
            scratch.extend_from_slice(world.segment_targeted(*key));
        }
        scratch.sort_unstable();
        scratch.dedup();
    }
    let mut lists: Vec<&[u32]> = Vec::with_capacity(8);
    lists.push(scratch.as_slice());
    if let Some(banner) = &imp.banner {
        lists.extend(banner.sizes().map(|(w, h)| world.banner_open(w, h)));
    }
    for (present, media) in [
        (imp.video.is_some(), MediaType::Video),
        (imp.audio.is_some(), MediaType::Audio),
        (imp.native.is_some(), MediaType::Native),
    ] {
        if present {
            lists.push(world.media_open(media));
        }
    }
    first_eligible(ctx, world, imp, &terms, MergedRanks::new(lists), frequency).ok_or(ImpNoBid::NoMatch)
}
