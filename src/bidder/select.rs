//! Stage 3, select: the best eligible campaign and creative per impression.
//!
//! Deal bids come first (OpenRTB 2.6 §7.3): the campaigns targeting a deal
//! the impression carries are tried against that deal's floor, auction type
//! and seat/advertiser allow lists. Without a deal bid, a private auction
//! gets no bid; otherwise the open auction walks the candidate lists from
//! the [`crate::live::World`] index best value first, and the first campaign that passes
//! every rule wins (ties in value are broken by campaign id, in the rank).
//!
//! Each rule that stops a campaign is counted in its live state; how the
//! impression's selection ended (and which index buckets it hit) is counted
//! per bucket in the index's tally ([`crate::campaigns::tally`]), from
//! which the campaigns the index never offered are derived. The same code
//! runs dry for [`super::explain`], through a `Mode` that counts nothing.

use std::cell::RefCell;

use crate::campaigns::PacingMode;
use crate::campaigns::experiment::{Arm, Rotation, SplitMix, weighted_pick};
use crate::campaigns::index::MergedRanks;
use crate::campaigns::model::{Creative, Markup};
use crate::campaigns::tally::{ImpOutcome, Stop};
use crate::campaigns::targeting::{FilterReason, category_matches, domain_matches};
use crate::live::LiveCampaign;
use crate::live::World;
use crate::money::{Currency, Micros};
use crate::openrtb::{AuctionType, CreativeAttribute, Deal, Floor, Imp, MediaType, Text};
use crate::pacing::FrequencyStore;

use super::enrich::BidCtx;
use super::price::bid_price;
use super::value::Valuer;

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
    /// What the impression is worth to the campaign before shading (CPM,
    /// base currency; at least `price`): a CPC click is charged against it.
    pub value: Micros,
    /// Impressions one display counts for (`imp.qty`), thousandths.
    pub qty_milli: i64,
    /// The experiment arm the user is in (an index into the campaign's
    /// experiment's arms); `None` without an experiment.
    pub arm: Option<usize>,
    /// A first-price bid's shading slice, when shading is learned.
    pub shading_slice: Option<u16>,
}

/// What [`evaluate`] found for an eligible campaign.
struct Pick {
    creative: usize,
    price: Micros,
    value: Micros,
    arm: Option<usize>,
    shading_slice: Option<u16>,
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
    /// `imp.qty` multiplies past the exchange's `max_qty`.
    QtyAboveCap,
}

/// Terms of the auction a campaign is tried in.
struct Terms<'a, 'p> {
    floor: Micros,
    auction: AuctionType,
    deal: Option<&'a Deal<'a>>,
    pod: &'p Pod,
    /// The impression's valuer, shared by its deal and open auctions.
    valuer: &'p RefCell<Valuer<'a>>,
}

/// What the bids already made in the same ad pod rule out for the next
/// one: the same creative twice, and (in a dynamic pod) more seconds than
/// are left of its `poddur`.
#[derive(Debug, Default)]
pub struct Pod {
    /// Creatives already bid in the pod: (campaign rank, creative index).
    pub taken: Vec<(u32, usize)>,
    /// Seconds left of a dynamic pod; `None` when not limited.
    pub seconds_left: Option<i64>,
}

impl Pod {
    /// Whether creative `index` of the campaign at `rank` may take the next slot.
    fn allows(&self, rank: u32, index: usize, creative: &Creative) -> bool {
        !self.taken.contains(&(rank, index))
            && self
                .seconds_left
                .is_none_or(|left| creative.duration.is_some_and(|d| d > 0 && d <= left))
    }
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
    if creative.paused || creative.rewarded.is_some_and(|r| r != imp.rwdd.0) {
        return false;
    }
    match creative.media {
        MediaType::Banner => imp.banner.as_ref().is_some_and(|b| {
            b.sizes().any(|(w, h)| Some(w) == creative.w && Some(h) == creative.h)
                && no_overlap(&b.battr, &creative.attr)
        }),
        MediaType::Video => imp.video.as_ref().is_some_and(|v| {
            mime_fits(creative, &v.mimes)
                && duration_fits(creative, v.minduration, v.maxduration)
                && no_overlap(&v.battr, &creative.attr)
                && creative.player.fits_video(v, creative.duration)
        }),
        MediaType::Audio => imp.audio.as_ref().is_some_and(|a| {
            mime_fits(creative, &a.mimes)
                && duration_fits(creative, a.minduration, a.maxduration)
                && no_overlap(&a.battr, &creative.attr)
                && creative.player.fits_audio(a)
        }),
        MediaType::Native => imp.native.as_ref().is_some_and(|n| {
            no_overlap(&n.battr, &creative.attr)
                && match (&creative.markup, &n.request) {
                    (Markup::Native(ad), Some(request)) => ad.fits(request),
                    _ => false,
                }
        }),
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
    let blocked_category = |b: &str| campaign.cat.iter().any(|cat| category_matches(cat, b.trim()));
    let category_blocked = match &ctx.bcat_v1 {
        Some(codes) => codes.iter().any(|b| blocked_category(b)),
        None => request.bcat.iter().any(|b| blocked_category(b)),
    };
    if category_blocked {
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

/// What selection does besides choosing: the bid path counts and draws,
/// explain ([`super::explain`]) only looks. Generic, so that the bid path
/// pays nothing for the dry run.
pub(crate) trait Mode {
    /// True for a dry run: every candidate is evaluated (not only up to the
    /// first eligible), the open auction runs after a deal bid, and nothing
    /// is counted.
    const DRY_RUN: bool;

    /// Whether the even-pacing gate lets `c` bid on this opportunity.
    fn admit(&mut self, c: &LiveCampaign, local_hour: usize) -> bool;

    /// A rule stopped the campaign at `rank`.
    fn filtered(&mut self, rank: u32, c: &LiveCampaign, reason: FilterReason);

    /// The campaign at `rank` is eligible at `price` (dry runs only).
    fn eligible(&mut self, rank: u32, price: Micros);

    /// How the impression's selection ended, as the index sees it.
    fn ended(&mut self, world: &World, outcome: ImpOutcome<'_>);

    /// A random number, for creative rotation and per-request experiment
    /// assignment (a dry run draws none: it gives a fixed one).
    fn random(&mut self) -> u64;

    /// The campaign at `rank` puts this request's user in arm `arm` of its
    /// experiment.
    fn assigned(&mut self, rank: u32, arm: usize);
}

/// The bid path: pacing draws a random number, filtered campaigns and the
/// index-level outcome are counted, and the rules that stopped campaigns
/// are noted (bits by [`FilterReason`]) for the request's no-bid reason.
struct Bidding {
    stopped: u32,
}

impl Mode for Bidding {
    const DRY_RUN: bool = false;

    fn admit(&mut self, c: &LiveCampaign, local_hour: usize) -> bool {
        c.state.pacer.admit(local_hour, (super::draw() % 1_000_000) as u32)
    }

    fn filtered(&mut self, _rank: u32, c: &LiveCampaign, reason: FilterReason) {
        c.state.count_filtered(reason);
        self.stopped |= 1 << reason as u32;
    }

    fn eligible(&mut self, _rank: u32, _price: Micros) {}

    fn ended(&mut self, world: &World, outcome: ImpOutcome<'_>) {
        world.tally().count(outcome);
    }

    fn random(&mut self) -> u64 {
        super::draw()
    }

    fn assigned(&mut self, _rank: u32, _arm: usize) {}
}

/// The creative to show among those that fit the slot (and the pod), and
/// that `arm` allows, by the campaign's `rotation`.
fn choose_creative<M: Mode>(
    c: &LiveCampaign,
    imp: &Imp,
    terms: &Terms,
    rank: u32,
    (arm, rotation): (Option<&Arm>, Rotation),
    mode: &mut M,
) -> Option<usize> {
    let creatives = &c.campaign.creatives;
    let fitting = (0..creatives.len()).filter(|&i| {
        arm.is_none_or(|arm| arm.allows(i))
            && creative_fits(&creatives[i], imp)
            && terms.pod.allows(rank, i, &creatives[i])
    });
    match rotation {
        // The most valuable creative that fits (the first, for CPM campaigns).
        Rotation::Best => fitting.min_by_key(|&i| std::cmp::Reverse(c.creative_values[i])),
        Rotation::Even => weighted_pick(fitting.map(|i| (i, 1)), mode.random()),
        Rotation::Weighted => weighted_pick(fitting.map(|i| (i, u64::from(creatives[i].weight))), mode.random()),
        Rotation::Optimise => {
            let mut rng = SplitMix(mode.random());
            fitting
                .map(|i| {
                    let (impressions, clicks) = c.state.creative_counts(&creatives[i].id);
                    (i, rng.ctr_posterior(impressions, clicks))
                })
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        }
    }
}

/// Every rule, cheapest first; on success the creative and the price.
fn evaluate<M: Mode>(
    ctx: &BidCtx,
    world: &World,
    (rank, c): (u32, &LiveCampaign),
    imp: &Imp,
    terms: &Terms,
    frequency: &FrequencyStore,
    mode: &mut M,
) -> Result<Pick, FilterReason> {
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
    super::contact::admits(ctx, world, (rank, c), frequency)?;
    if !c
        .state
        .spend
        .has_budget(today, c.state.spend.budget_today(today, &campaign.day_budget()))
    {
        return Err(FilterReason::Budget);
    }
    if campaign.pacing == PacingMode::Even && !mode.admit(c, hour_of_week % 24) {
        return Err(FilterReason::Pacing);
    }
    choose_and_price(ctx, world, (rank, c), imp, terms, mode)
}

/// The last steps of [`evaluate`]: experiment arm → its creative set →
/// rotation → price (a holdout user is stopped once the campaign is known
/// to have bid: its would-be bid is what the holdout measures against).
fn choose_and_price<M: Mode>(
    ctx: &BidCtx,
    world: &World,
    (rank, c): (u32, &LiveCampaign),
    imp: &Imp,
    terms: &Terms,
    mode: &mut M,
) -> Result<Pick, FilterReason> {
    let campaign = &c.campaign;
    let arm = match campaign.experiment.as_deref() {
        None => None,
        Some(experiment) => {
            // A draw only for a user without a key.
            let random = if ctx.user_key.is_none() { mode.random() } else { 0 };
            let arm = experiment
                .assign(ctx.user_key, random)
                .ok_or(FilterReason::ExperimentNoUserId)?;
            mode.assigned(rank, arm);
            Some((arm, &experiment.arms[arm]))
        }
    };
    let holdout = arm.is_some_and(|(_, arm)| arm.holdout);
    let rotation = if holdout { Rotation::Best } else { campaign.rotation };
    let creative =
        choose_creative(c, imp, terms, rank, (arm.map(|(_, a)| a), rotation), mode).ok_or(FilterReason::Creative)?;
    let mut value = terms.valuer.borrow_mut().value(ctx, c, creative);
    if !M::DRY_RUN
        && campaign.pricing.is_value_based()
        && terms.valuer.borrow().predicting()
        && mode.random() % 1_000_000 < super::value::EXPLORE_PPM
    {
        value = value.max(campaign.value_cpm().min(c.upper_value));
    }
    if let Some((_, arm)) = arm.filter(|(_, arm)| arm.bid_multiplier_ppm != 1_000_000) {
        value = value.mul_div_floor(i64::from(arm.bid_multiplier_ppm), 1_000_000);
        // The arm's multiplier never takes a value-based bid past its
        // `max_cpm`, nor past the campaign's bound the walk stops on.
        if c.campaign.pricing.is_value_based() {
            value = value.min(c.campaign.goal.max_cpm);
        }
        value = value.min(c.upper_value);
    }
    let pace = match campaign.pacing {
        crate::campaigns::PacingMode::Even => c.state.pacer.bid_ppm(),
        _ => PACE_FULL,
    };
    let (price, shading_slice) = shaded(ctx, world, imp, (value, pace, terms), mode).ok_or(FilterReason::Floor)?;
    if holdout {
        return Err(FilterReason::Holdout);
    }
    Ok(Pick {
        creative,
        price,
        value: value.max(price),
        arm: arm.map(|(index, _)| index),
        shading_slice,
    })
}

/// A pacing multiplier that leaves the value as it is (ppm).
const PACE_FULL: u32 = 1_000_000;

/// The price for `value` under the terms (see [`bid_price`]), shaded at
/// first price by the learned curve of the auction's slice when shading is
/// learned (`ctx.shading`), exploring a random fraction of value on
/// [`crate::pacing::shading::EXPLORE_PPM`] of bids (never in a dry run);
/// with the slice, for its notices to be counted. With learned shading, the
/// curve prices `value × pace` (ppm: the even pacer's bid multiplier,
/// `pacing::pacer`), and a second-price bid is the paced value; either way
/// the bid never exceeds `value` nor falls below the floor.
fn shaded<M: Mode>(
    ctx: &BidCtx,
    world: &World,
    imp: &Imp,
    (value, pace, terms): (Micros, u32, &Terms),
    mode: &mut M,
) -> Option<(Micros, Option<u16>)> {
    use crate::pacing::shading;
    let fixed = bid_price(value, terms.floor, terms.auction, world.settings.shading_ppm)?;
    let Some(learned) = ctx.shading else {
        return Some((fixed, None));
    };
    let paced = value
        .mul_div_floor(i64::from(pace), i64::from(PACE_FULL))
        .max(terms.floor);
    if terms.auction != AuctionType::FIRST_PRICE {
        let price = bid_price(paced.min(value), terms.floor, terms.auction, world.settings.shading_ppm);
        return Some((price.unwrap_or(fixed), None));
    }
    let hour = (ctx.now.as_second().rem_euclid(86_400) / 3600) as u8;
    let slice = shading::slice(ctx.exchange_id.0, placement(imp), hour);
    let draw = if M::DRY_RUN || !learned.exploring() {
        u64::MAX
    } else {
        mode.random()
    };
    let price = if draw % 1_000_000 < shading::EXPLORE_PPM {
        // 30–100 % of value, from the draw's upper bits.
        let fraction = 300_000 + (draw >> 32) % 700_001;
        value.mul_div_floor(fraction as i64, 1_000_000).max(terms.floor)
    } else {
        let fixed_paced = bid_price(paced, terms.floor, terms.auction, world.settings.shading_ppm).unwrap_or(fixed);
        learned
            .price(slice, paced, terms.floor)
            .unwrap_or(fixed_paced)
            .min(value)
    };
    Some((price, Some(slice)))
}

/// The impression's placement for shading: its first banner size, or its
/// medium.
fn placement(imp: &Imp) -> u64 {
    if let Some((w, h)) = imp.banner.as_ref().and_then(|b| b.sizes().next()) {
        return (w as u64).wrapping_mul(10_007).wrapping_add(h as u64);
    }
    match (&imp.video, &imp.audio) {
        (Some(_), _) => 1,
        (_, Some(_)) => 2,
        _ => 3,
    }
}

/// Walks candidates best first; the first eligible one wins, unless a
/// higher-priority campaign of its advertiser is eligible further on (see
/// `contact::Reps`: then the walk goes on as far as priorities need). When
/// value-based campaigns are valued per impression ([`Valuer`]), the walk
/// goes on instead while a later campaign could still bid more (its
/// [`crate::campaigns::index::CompiledCampaign::upper_value`]), for at most
/// [`super::value::MAX_PREDICTIONS`] predictions, and the best bid wins. A
/// dry run walks on to the end.
fn first_eligible<'a, M: Mode>(
    ctx: &BidCtx<'a>,
    world: &World,
    imp: &'a Imp<'a>,
    terms: &Terms<'a, '_>,
    candidates: impl Iterator<Item = u32>,
    frequency: &FrequencyStore,
    mode: &mut M,
) -> Option<Choice<'a>> {
    let by_price = terms.valuer.borrow().predicting();
    // Eligible campaigns by advertiser, under priorities (`contact::Reps`).
    let mut reps = super::contact::Reps::new(by_price);
    for rank in candidates {
        if !M::DRY_RUN && by_price && reps.holds_at_least(world.upper_from(rank)) {
            break;
        }
        if !M::DRY_RUN && reps.skips(world, rank) {
            continue;
        }
        let c = world.campaign(rank);
        match evaluate(ctx, world, (rank, c), imp, terms, frequency, mode) {
            Ok(Pick {
                creative,
                price,
                value,
                arm,
                shading_slice,
            }) => {
                let deal_id = terms.deal.and_then(|d| d.id.as_deref());
                let choice = Choice {
                    imp,
                    rank,
                    creative,
                    deal_id,
                    price,
                    value,
                    qty_milli: imp.qty_milli(),
                    arm,
                    shading_slice,
                };
                if !M::DRY_RUN && !by_price {
                    match reps.offer(world, choice) {
                        Some(winner) => return Some(winner),
                        None => continue,
                    }
                }
                mode.eligible(rank, price);
                reps.offer_all(world, choice);
            }
            Err(reason) => mode.filtered(rank, c, reason),
        }
    }
    reps.winner()
}

fn best_deal_bid<'a, M: Mode>(
    ctx: &BidCtx<'a>,
    world: &World,
    imp: &'a Imp<'a>,
    frequency: &FrequencyStore,
    (pod, valuer): (&Pod, &RefCell<Valuer<'a>>),
    mode: &mut M,
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
            pod,
            valuer,
        };
        if let Some(choice) = first_eligible(ctx, world, imp, &terms, candidates.iter().copied(), frequency, mode)
            && best
                .as_ref()
                .is_none_or(|b| (choice.price, std::cmp::Reverse(choice.rank)) > (b.price, std::cmp::Reverse(b.rank)))
        {
            best = Some(choice);
        }
    }
    best
}

/// Reusable buffers of [`select`], one per request.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Candidates filed under the user's segments.
    ranks: Vec<u32>,
    /// Format buckets hit.
    formats: Vec<u32>,
    /// Segment groups hit.
    groups: Vec<u32>,
    /// The ad pod the impression belongs to, set by the caller (empty
    /// outside pods).
    pub pod: Pod,
    /// The rules that stopped a campaign in this request so far (a bit per
    /// [`FilterReason`]).
    pub stopped: u32,
    /// Whether the index offered any campaign to the open auction of an
    /// impression of this request so far.
    pub offered: bool,
}

/// The candidate lists of the open auction for `imp`: the campaigns filed
/// under the user's segments (gathered in `ranks`), then under each banner
/// size and medium the impression offers. Notes the format buckets and
/// segment groups hit.
fn open_lists<'w>(
    ctx: &BidCtx,
    world: &'w World,
    imp: &Imp,
    ranks: &'w mut Vec<u32>,
    formats: &mut Vec<u32>,
    groups: &mut Vec<u32>,
) -> Vec<&'w [u32]> {
    ranks.clear();
    formats.clear();
    groups.clear();
    if world.has_segment_targeting() {
        for key in &ctx.facts.segments {
            if let Some((filed, in_groups)) = world.segment_targeted(*key) {
                ranks.extend_from_slice(filed);
                groups.extend_from_slice(in_groups);
            }
        }
        ranks.sort_unstable();
        ranks.dedup();
    }
    let mut lists: Vec<&[u32]> = Vec::with_capacity(8);
    lists.push(ranks.as_slice());
    if let Some(banner) = &imp.banner {
        for (bucket, filed) in banner.sizes().filter_map(|(w, h)| world.banner_open(w, h)) {
            lists.push(filed);
            formats.push(bucket);
        }
    }
    for (present, media) in [
        (imp.video.is_some(), MediaType::Video),
        (imp.audio.is_some(), MediaType::Audio),
        // A native request that could not be read offers nothing.
        (
            imp.native.as_ref().is_some_and(|n| n.request.is_some()),
            MediaType::Native,
        ),
    ] {
        if present {
            let (bucket, filed) = world.media_open(media);
            lists.push(filed);
            formats.push(bucket);
        }
    }
    lists
}

/// The best bid for `imp`, or why there is none.
pub fn select<'a>(
    ctx: &BidCtx<'a>,
    world: &World,
    imp: &'a Imp<'a>,
    frequency: &FrequencyStore,
    scratch: &mut Scratch,
) -> Result<Choice<'a>, ImpNoBid> {
    let mut bidding = Bidding { stopped: 0 };
    let choice = select_with(ctx, world, imp, frequency, scratch, &mut bidding);
    scratch.stopped |= bidding.stopped;
    choice
}

/// [`select`] in a [`Mode`].
pub(crate) fn select_with<'a, M: Mode>(
    ctx: &BidCtx<'a>,
    world: &World,
    imp: &'a Imp<'a>,
    frequency: &FrequencyStore,
    scratch: &mut Scratch,
    mode: &mut M,
) -> Result<Choice<'a>, ImpNoBid> {
    if imp.qty.is_some() && imp.qty_milli() > ctx.exchange.max_qty_milli {
        return Err(ImpNoBid::QtyAboveCap);
    }
    let valuer = RefCell::new(Valuer::new(ctx.predictor));
    // Past this, only a dry run can hold a deal bid.
    let deal = match best_deal_bid(ctx, world, imp, frequency, (&scratch.pod, &valuer), mode) {
        Some(choice) if !M::DRY_RUN => {
            mode.ended(world, ImpOutcome::Stopped(Stop::DealWon));
            return Ok(choice);
        }
        deal => deal,
    };
    if imp.pmp.as_ref().is_some_and(|p| p.private_auction.0) {
        mode.ended(world, ImpOutcome::Stopped(Stop::PrivateAuction));
        return deal.ok_or(ImpNoBid::PrivateAuction);
    }
    let floor = match floor_in_base(world, imp.bidfloor, imp.bidfloorcur.as_deref()) {
        Ok(floor) => floor,
        Err(unusable) => {
            mode.ended(world, ImpOutcome::Stopped(Stop::UnusableFloor));
            return deal.ok_or(unusable);
        }
    };
    let Scratch {
        ranks,
        formats,
        groups,
        pod,
        offered,
        ..
    } = scratch;
    let terms = Terms {
        floor,
        auction: ctx.auction,
        deal: None,
        pod,
        valuer: &valuer,
    };
    let lists = open_lists(ctx, world, imp, ranks, formats, groups);
    *offered |= lists.iter().any(|list| !list.is_empty());
    mode.ended(
        world,
        ImpOutcome::Open {
            formats,
            segment_groups: groups,
        },
    );
    let open = first_eligible(ctx, world, imp, &terms, MergedRanks::new(lists), frequency, mode);
    deal.or(open).ok_or(ImpNoBid::NoMatch)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::audience::Snapshot;
    use crate::audience::overlay::Overlay;
    use crate::bidder::{decode, enrich};
    use crate::config::{Env, from_texts_with};

    /// Shading 0.80, one euro worth 1.10 dollars, our seat `ourseat`.
    const SETTINGS: &str = r#"
[bidding]
first_price_shading = "0.80"
[fx]
EUR = "1.10"
[secrets]
signing_key = "test-signing-key-0123456789abcdefghijkl"
[[exchange]]
name = "default"
seat = "ourseat"
[[advertiser]]
id = "A"
"#;

    /// The one place a test world is built (and the only mention of how).
    fn world(settings: &str, campaigns: &str) -> World {
        let files = [("test.toml".into(), campaigns.to_string())];
        let config =
            from_texts_with(Path::new("cfg"), settings, &files, &Env::default()).unwrap_or_else(|e| panic!("{e}"));
        World::build(config, &crate::live::LiveStates::default())
    }

    /// A CPM campaign bidding `max_bid` with a 300×250 banner (creative 0);
    /// `more` adds tables and creatives after it. `asap` pacing: no random
    /// pacing gate.
    fn campaign(id: &str, max_bid: &str, more: &str) -> String {
        format!(
            r#"
[[campaign]]
id = "{id}"
advertiser = "A"
adomain = ["{id}.example"]
pricing = "cpm"
max_bid = "{max_bid}"
daily_budget = "1000"
pacing = "asap"
[[campaign.creative]]
id = "{id}-300x250"
format = "banner"
w = 300
h = 250
image_url = "https://ads.example/{id}.png"
landing_url = "https://{id}.example/"
{more}
"#
        )
    }

    /// Targeting that makes a campaign bid only in deal `D1`.
    const IN_DEAL_D1: &str = "[campaign.targeting]\ndeals = [\"D1\"]\ndeals_only = true\n";

    /// A bid request with these impressions and extra top-level fields.
    fn request(imps: &str, extra: &str) -> String {
        format!(
            r#"{{"id": "r1", "imp": [{imps}], {extra}
              "site": {{"domain": "news.example"}},
              "device": {{"ua": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "ip": "203.0.113.7"}},
              "user": {{"buyeruid": "u1"}}}}"#
        )
    }

    /// A 300×250 banner impression with these extra fields.
    fn banner(extra: &str) -> String {
        format!(r#"{{"id": "1", "banner": {{"w": 300, "h": 250}} {extra}}}"#)
    }

    /// What select chose for one impression.
    #[derive(Debug, PartialEq, Eq)]
    struct Bid {
        campaign: String,
        creative: usize,
        deal: Option<String>,
        price: Micros,
    }

    fn bid(campaign: &str, creative: usize, price: i64) -> Result<Bid, ImpNoBid> {
        Ok(Bid {
            campaign: campaign.into(),
            creative,
            deal: None,
            price: Micros(price),
        })
    }

    fn deal_bid(campaign: &str, deal: &str, price: i64) -> Result<Bid, ImpNoBid> {
        Ok(Bid {
            deal: Some(deal.into()),
            ..bid(campaign, 0, price)?
        })
    }

    /// Enriches the request (no audience, a fixed time) and selects for each
    /// of its impressions, as the bid path does.
    fn select_all(world: &World, request: &str) -> Vec<Result<Bid, ImpNoBid>> {
        select_all_with(world, request, None)
    }

    /// [`select_all`] with a predictor valuing value-based campaigns per
    /// impression.
    fn select_all_with(
        world: &World,
        request: &str,
        predictor: Option<&dyn crate::outcome::Predictor>,
    ) -> Vec<Result<Bid, ImpNoBid>> {
        // The same draws every call, so prices are exact, not flaky: the
        // learning budget draws for every value-based candidate (3 % of
        // draws explore), and with this seed none of these tests' draws
        // does.
        crate::bidder::seed_thread(2);
        let mut repaired = String::new();
        let request = decode::decode(request.as_bytes(), &mut repaired)
            .unwrap_or_else(|e| panic!("{e}: {request}"))
            .request;
        let (snapshot, overlay) = (Snapshot::empty(), Overlay::new(16));
        let matches = crate::audience::matches::UserMatches::in_memory(16);
        let audience = enrich::Audience {
            snapshot: &snapshot,
            overlay: &overlay,
            matches: &matches,
        };
        let now = "2025-06-02T12:00:00Z".parse().unwrap();
        let mut ctx = enrich::enrich(&request, world, world.settings.default_exchange_id(), audience, now)
            .unwrap_or_else(|r| panic!("{r:?}"));
        ctx.predictor = predictor;
        let (frequency, mut scratch) = (FrequencyStore::default(), Scratch::default());
        request
            .imp
            .iter()
            .map(|imp| {
                select(&ctx, world, imp, &frequency, &mut scratch).map(|choice| Bid {
                    campaign: world.campaign(choice.rank).campaign.id.clone(),
                    creative: choice.creative,
                    deal: choice.deal_id.map(String::from),
                    price: choice.price,
                })
            })
            .collect()
    }

    /// The choice for a request with one impression.
    fn select_one(world: &World, request: &str) -> Result<Bid, ImpNoBid> {
        let [choice] = <[_; 1]>::try_from(select_all(world, request)).expect("one impression");
        choice
    }

    /// A value-based campaign (`pricing` gives its pricing keys) with a
    /// 300×250 banner, asap.
    fn valued(id: &str, pricing: &str) -> String {
        format!(
            r#"
[[campaign]]
id = "{id}"
advertiser = "A"
adomain = ["{id}.example"]
{pricing}
daily_budget = "1000"
pacing = "asap"
[[campaign.creative]]
id = "{id}-300x250"
format = "banner"
w = 300
h = 250
image_url = "https://ads.example/{id}.png"
landing_url = "https://{id}.example/"
"#
        )
    }

    /// Predicts the same for every impression, per campaign id; counts the
    /// predictions asked. Not learned (taken at its word, as the
    /// simulator's oracle) unless `learned` is set.
    struct Fixed {
        by_campaign: Vec<(&'static str, Option<crate::outcome::Prediction>)>,
        asked: std::sync::atomic::AtomicU32,
        learned: bool,
    }

    impl Fixed {
        fn new(by_campaign: &[(&'static str, f32, f32)]) -> Fixed {
            let by_campaign = by_campaign
                .iter()
                .map(|&(id, click, conversion)| (id, Some(crate::outcome::Prediction { click, conversion })))
                .collect();
            Fixed {
                by_campaign,
                asked: Default::default(),
                learned: false,
            }
        }
    }

    impl crate::outcome::Predictor for Fixed {
        fn prepare(&self, _: &crate::outcome::Subject, _: &mut crate::outcome::Prepared) {}

        fn predict(
            &self,
            subject: &crate::outcome::Subject,
            _: &crate::outcome::Prepared,
            candidate: &crate::outcome::Candidate,
        ) -> Option<crate::outcome::Prediction> {
            assert_eq!((subject.domain, subject.local_hour), ("news.example", 12));
            self.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.by_campaign
                .iter()
                .find(|(id, _)| *id == candidate.campaign)
                .and_then(|(_, p)| *p)
        }

        fn learned(&self) -> bool {
            self.learned
        }
    }

    const CPC_2: &str = "pricing = \"cpc\"\nmax_bid = \"2.00\"\npctr_prior = \"0.002\"\nmax_cpm = \"20\"";
    const CPA_25: &str = "pricing = \"cpa\"\ntarget_cpa = \"25.00\"\npcvr_prior = \"0.0001\"\nmax_cpm = \"10\"";
    const CPS_10: &str = "pricing = \"cps\"\ncps_share = \"0.10\"\norder_value_prior = \"80\"\npcvr_prior = \"0.0002\"\nmax_cpm = \"10\"";

    #[test]
    fn value_based_campaigns_bid_their_goal_times_the_prior_rate_without_a_predictor() {
        let world = world(SETTINGS, &[valued("cpc", CPC_2)].concat());
        // 2.00 × 0.002 × 1000 = 4.00 CPM.
        assert_eq!(select_one(&world, &request(&banner(""), "")), bid("cpc", 0, 4_000_000));
        let world = world_of(&[valued("cpa", CPA_25)]);
        // 25.00 × 0.0001 × 1000 = 2.50 CPM.
        assert_eq!(select_one(&world, &request(&banner(""), "")), bid("cpa", 0, 2_500_000));
        let world = world_of(&[valued("cps", CPS_10)]);
        // 0.10 × 80 × 0.0002 × 1000 = 1.60 CPM.
        assert_eq!(select_one(&world, &request(&banner(""), "")), bid("cps", 0, 1_600_000));
    }

    fn world_of(campaigns: &[String]) -> World {
        world(SETTINGS, &campaigns.concat())
    }

    #[test]
    fn a_prediction_prices_the_impression_within_its_clamps_and_max_cpm() {
        let world = world_of(&[valued("cpc", CPC_2), valued("cpa", CPA_25), valued("cps", CPS_10)]);
        let one = |predictor: &Fixed| select_all_with(&world, &request(&banner(""), ""), Some(predictor)).remove(0);
        // P(click) 0.5 % on the CPC campaign: 2.00 × 0.005 × 1000 = 10.00.
        let predictor = Fixed::new(&[("cpc", 0.005, 0.0), ("cpa", 0.0, 0.0), ("cps", 0.0, 0.0)]);
        assert_eq!(one(&predictor), bid("cpc", 0, 10_000_000));
        // P(conversion) 0.03 % on the CPA campaign: 25 × 0.0003 × 1000 = 7.50.
        let predictor = Fixed::new(&[("cpc", 0.0, 0.0), ("cpa", 0.0, 0.0003), ("cps", 0.0, 0.0)]);
        assert_eq!(one(&predictor), bid("cpa", 0, 7_500_000));
        // A wild model: P = 1 everywhere. The CPC rate is clamped to 10× its
        // own (2 %: 40.00), then to its max_cpm of 20; the CPA and CPS ones
        // to their max_cpm of 10.
        let predictor = Fixed::new(&[("cpc", 1.0, 1.0), ("cpa", 1.0, 1.0), ("cps", 1.0, 1.0)]);
        assert_eq!(one(&predictor), bid("cpc", 0, 20_000_000));
        let world = world_of(&[valued("cpa", CPA_25), valued("cps", CPS_10)]);
        let only = select_all_with(&world, &request(&banner(""), ""), Some(&predictor)).remove(0);
        assert_eq!(only, bid("cpa", 0, 10_000_000));
        // A model that says "never": a tenth of the rate at least (CPA: 0.25).
        let never = Fixed::new(&[("cpa", 0.0, 0.0)]);
        let world = world_of(&[valued("cpa", CPA_25)]);
        let low = select_all_with(&world, &request(&banner(""), ""), Some(&never)).remove(0);
        assert_eq!(low, bid("cpa", 0, 250_000));
    }

    #[test]
    fn a_learned_prediction_for_a_campaign_without_events_is_shrunk_to_its_rate() {
        let world = world_of(&[valued("cpc", CPC_2), valued("cpa", CPA_25)]);
        // A learned model's 0.5 % on a CPC campaign with no click yet: its
        // smoothed rate (the prior 0.2 %) prices it, 2.00 × 0.002 × 1000.
        let mut predictor = Fixed::new(&[("cpc", 0.005, 0.0), ("cpa", 0.0, 0.0)]);
        predictor.learned = true;
        let choice = select_all_with(&world, &request(&banner(""), ""), Some(&predictor)).remove(0);
        assert_eq!(choice, bid("cpc", 0, 4_000_000));
        // Taken at its word (not learned): 2.00 × 0.005 × 1000.
        predictor.learned = false;
        let choice = select_all_with(&world, &request(&banner(""), ""), Some(&predictor)).remove(0);
        assert_eq!(choice, bid("cpc", 0, 10_000_000));
    }

    #[test]
    fn without_an_opinion_the_campaign_rate_prices_it() {
        let world = world_of(&[valued("cpc", CPC_2)]);
        let cold = Fixed::new(&[]);
        let choice = select_all_with(&world, &request(&banner(""), ""), Some(&cold)).remove(0);
        assert_eq!(choice, bid("cpc", 0, 4_000_000));
        assert_eq!(cold.asked.into_inner(), 1);
    }

    #[test]
    fn the_walk_stops_when_no_later_campaign_can_bid_more_and_predicts_eight_at_most() {
        // A CPM campaign at 50 outranks every value-based one, whose most
        // (10× a 4.00 value, capped at max_cpm 20) is below it: none is
        // predicted.
        let mut campaigns: Vec<String> = (0..12).map(|i| valued(&format!("cpc{i:02}"), CPC_2)).collect();
        campaigns.push(campaign("cpm", "50.00", ""));
        let world = world_of(&campaigns);
        let predictor = Fixed::new(&[("cpc11", 0.02, 0.0)]);
        let choice = select_all_with(&world, &request(&banner(""), ""), Some(&predictor)).remove(0);
        assert_eq!(choice, bid("cpm", 0, 50_000_000));
        assert_eq!(predictor.asked.load(std::sync::atomic::Ordering::Relaxed), 0);
        // Without it, twelve CPC campaigns: eight are predicted, the best of
        // them wins (the lowest ranked ones are never asked).
        let world = world_of(&campaigns[..12]);
        let predictor = Fixed::new(&[("cpc03", 0.004, 0.0), ("cpc11", 0.02, 0.0)]);
        let choice = select_all_with(&world, &request(&banner(""), ""), Some(&predictor)).remove(0);
        assert_eq!(choice, bid("cpc03", 0, 8_000_000));
        assert_eq!(predictor.asked.load(std::sync::atomic::Ordering::Relaxed), 8);
    }

    #[test]
    fn the_most_valuable_campaign_wins_at_its_value() {
        let campaigns = [
            campaign("low", "1.00", ""),
            campaign("high", "3.00", ""),
            campaign("mid", "2.00", ""),
        ];
        let world = world(SETTINGS, &campaigns.concat());
        assert_eq!(select_one(&world, &request(&banner(""), "")), bid("high", 0, 3_000_000));
    }

    #[test]
    fn equal_values_rank_by_campaign_id() {
        let campaigns = [
            campaign("b", "2.00", ""),
            campaign("a", "2.00", ""),
            campaign("c", "1.00", ""),
        ];
        let world = world(SETTINGS, &campaigns.concat());
        assert_eq!(select_one(&world, &request(&banner(""), "")), bid("a", 0, 2_000_000));
    }

    #[test]
    fn no_bid_under_the_floor() {
        let world = world(SETTINGS, &campaign("c", "2.00", ""));
        let at_floor = request(&banner(r#", "bidfloor": 2.0"#), "");
        assert_eq!(select_one(&world, &at_floor), bid("c", 0, 2_000_000));
        let above = request(&banner(r#", "bidfloor": 2.01"#), "");
        assert_eq!(select_one(&world, &above), Err(ImpNoBid::NoMatch));
    }

    #[test]
    fn floors_in_another_currency_are_converted() {
        let world = world(SETTINGS, &campaign("c", "2.00", ""));
        // 1.80 EUR is 1.98 USD, 1.85 EUR is 2.035 USD.
        let under = request(&banner(r#", "bidfloor": 1.80, "bidfloorcur": "EUR""#), "");
        assert_eq!(select_one(&world, &under), bid("c", 0, 2_000_000));
        let over = request(&banner(r#", "bidfloor": 1.85, "bidfloorcur": "eur""#), "");
        assert_eq!(select_one(&world, &over), Err(ImpNoBid::NoMatch));
        // First price: 2.00 × 0.80 = 1.60 USD, raised to the floor, 1.50 EUR = 1.65 USD.
        let first_price = request(&banner(r#", "bidfloor": 1.50, "bidfloorcur": "EUR""#), r#""at": 1,"#);
        assert_eq!(select_one(&world, &first_price), bid("c", 0, 1_650_000));
    }

    #[test]
    fn an_unknown_floor_currency_gets_no_bid() {
        let world = world(SETTINGS, &campaign("c", "2.00", ""));
        let unknown = request(&banner(r#", "bidfloor": 0.1, "bidfloorcur": "XYZ""#), "");
        assert_eq!(select_one(&world, &unknown), Err(ImpNoBid::FloorCurrency));
        let malformed = request(&banner(r#", "bidfloor": 0.1, "bidfloorcur": "dollars""#), "");
        assert_eq!(select_one(&world, &malformed), Err(ImpNoBid::FloorCurrency));
        // A zero floor needs no conversion.
        let free = request(&banner(r#", "bidfloor": 0, "bidfloorcur": "XYZ""#), "");
        assert_eq!(select_one(&world, &free), bid("c", 0, 2_000_000));
    }

    #[test]
    fn first_price_bids_are_shaded_but_not_below_the_floor() {
        let world = world(SETTINGS, &campaign("c", "2.00", ""));
        let low_floor = request(&banner(r#", "bidfloor": 1.0"#), r#""at": 1,"#);
        assert_eq!(select_one(&world, &low_floor), bid("c", 0, 1_600_000));
        let high_floor = request(&banner(r#", "bidfloor": 1.9"#), r#""at": 1,"#);
        assert_eq!(select_one(&world, &high_floor), bid("c", 0, 1_900_000));
    }

    /// A deal campaign worth 1.00 and an open one worth 3.00.
    fn deal_world() -> World {
        world(
            SETTINGS,
            &[campaign("deal", "1.00", IN_DEAL_D1), campaign("open", "3.00", "")].concat(),
        )
    }

    fn with_deal(deal: &str) -> String {
        request(&banner(&format!(r#", "pmp": {{"deals": [{deal}]}}"#)), "")
    }

    #[test]
    fn deal_bids_come_first_and_name_the_deal() {
        let world = deal_world();
        let in_deal = with_deal(r#"{"id": "D1", "bidfloor": 0.5}"#);
        assert_eq!(select_one(&world, &in_deal), deal_bid("deal", "D1", 1_000_000));
        let other_deal = with_deal(r#"{"id": "D2", "bidfloor": 0.5}"#);
        assert_eq!(select_one(&world, &other_deal), bid("open", 0, 3_000_000));
    }

    #[test]
    fn a_deal_floor_above_the_value_leaves_the_open_auction() {
        let world = deal_world();
        // The impression's own floor is not the deal's.
        let deal_floor = request(
            &banner(r#", "bidfloor": 2.5, "pmp": {"deals": [{"id": "D1", "bidfloor": 1.5}]}"#),
            "",
        );
        assert_eq!(select_one(&world, &deal_floor), bid("open", 0, 3_000_000));
        let imp_floor = request(
            &banner(r#", "bidfloor": 1.5, "pmp": {"deals": [{"id": "D1", "bidfloor": 0.5}]}"#),
            "",
        );
        assert_eq!(select_one(&world, &imp_floor), deal_bid("deal", "D1", 1_000_000));
    }

    #[test]
    fn a_deal_wseat_must_list_our_seat() {
        let world = deal_world();
        let theirs = with_deal(r#"{"id": "D1", "wseat": ["someone-else"]}"#);
        assert_eq!(select_one(&world, &theirs), bid("open", 0, 3_000_000));
        let ours = with_deal(r#"{"id": "D1", "wseat": ["someone-else", "ourseat"]}"#);
        assert_eq!(select_one(&world, &ours), deal_bid("deal", "D1", 1_000_000));
    }

    #[test]
    fn a_deal_wadomain_must_list_the_advertiser() {
        let world = deal_world();
        let theirs = with_deal(r#"{"id": "D1", "wadomain": ["brand.example"]}"#);
        assert_eq!(select_one(&world, &theirs), bid("open", 0, 3_000_000));
        let ours = with_deal(r#"{"id": "D1", "wadomain": ["brand.example", "deal.example"]}"#);
        assert_eq!(select_one(&world, &ours), deal_bid("deal", "D1", 1_000_000));
    }

    #[test]
    fn a_deal_auction_type_overrides_the_request() {
        let world = deal_world();
        let fixed = with_deal(r#"{"id": "D1", "bidfloor": 0.7, "at": 3}"#);
        assert_eq!(select_one(&world, &fixed), deal_bid("deal", "D1", 700_000));
        // First price in the deal, second price in the request: 1.00 × 0.80.
        let first_price = with_deal(r#"{"id": "D1", "bidfloor": 0.5, "at": 1}"#);
        assert_eq!(select_one(&world, &first_price), deal_bid("deal", "D1", 800_000));
    }

    #[test]
    fn a_private_auction_without_our_deal_gets_no_bid() {
        let world = deal_world();
        let private = |deal: &str, flag: u8| {
            request(
                &banner(&format!(
                    r#", "pmp": {{"private_auction": {flag}, "deals": [{{"id": "{deal}"}}]}}"#
                )),
                "",
            )
        };
        assert_eq!(select_one(&world, &private("D2", 1)), Err(ImpNoBid::PrivateAuction));
        assert_eq!(select_one(&world, &private("D2", 0)), bid("open", 0, 3_000_000));
        assert_eq!(select_one(&world, &private("D1", 1)), deal_bid("deal", "D1", 1_000_000));
    }

    #[test]
    fn a_native_creative_is_chosen_only_where_it_fills_every_required_asset() {
        let native = "[[campaign.creative]]\nid = \"n\"\nformat = \"native\"\ntitle = \"Twelve chars\"\nlanding_url = \"https://n.example/\"\n";
        let world = world(SETTINGS, &campaign("n", "2.00", native));
        let imp = |native_request: &str| {
            let request = serde_json::to_string(native_request).unwrap();
            format!(r#"{{"id": "1", "native": {{"request": {request}}}}}"#)
        };
        let title = |len: u32, required: u8| {
            imp(&format!(
                r#"{{"assets": [{{"id": 1, "required": {required}, "title": {{"len": {len}}}}}, {{"id": 2, "data": {{"type": 1}}}}]}}"#
            ))
        };
        assert_eq!(select_one(&world, &request(&title(12, 1), "")), bid("n", 1, 2_000_000));
        assert_eq!(select_one(&world, &request(&title(11, 1), "")), Err(ImpNoBid::NoMatch));
        // Optional and too short: nothing of the request filled.
        assert_eq!(select_one(&world, &request(&title(11, 0), "")), Err(ImpNoBid::NoMatch));
        assert_eq!(
            select_one(&world, &request(&imp("{assets"), "")),
            Err(ImpNoBid::NoMatch)
        );
    }

    /// Two 300×250 creatives, `r1` and `r2`, with `more` keys at the
    /// campaign's level.
    fn rotating(more: &str) -> String {
        let second = "[[campaign.creative]]\nid = \"r2\"\nformat = \"banner\"\nw = 300\nh = 250\nweight = 3\nimage_url = \"https://ads.example/r2.png\"\nlanding_url = \"https://r.example/\"\n";
        campaign("r", "2.00", second).replacen("pacing = \"asap\"", &format!("pacing = \"asap\"\n{more}"), 1)
    }

    /// The creative chosen for one banner request, `n` times over (the
    /// request decoded and enriched once), each choice handed to `seen`.
    fn choose_repeatedly(world: &World, n: usize, mut seen: impl FnMut(usize)) {
        let text = request(&banner(""), "");
        let mut repaired = String::new();
        let request = decode::decode(text.as_bytes(), &mut repaired).unwrap().request;
        let (snapshot, overlay) = (Snapshot::empty(), Overlay::new(16));
        let matches = crate::audience::matches::UserMatches::in_memory(16);
        let audience = enrich::Audience {
            snapshot: &snapshot,
            overlay: &overlay,
            matches: &matches,
        };
        let now = "2025-06-02T12:00:00Z".parse().unwrap();
        let ctx = enrich::enrich(&request, world, world.settings.default_exchange_id(), audience, now)
            .unwrap_or_else(|r| panic!("{r:?}"));
        let (frequency, mut scratch) = (FrequencyStore::default(), Scratch::default());
        for _ in 0..n {
            seen(
                select(&ctx, world, &request.imp[0], &frequency, &mut scratch)
                    .unwrap()
                    .creative,
            );
        }
    }

    /// How often each creative of `world`'s campaign is chosen in `n` requests.
    fn picks(world: &World, n: usize) -> [usize; 2] {
        let mut counts = [0; 2];
        choose_repeatedly(world, n, |creative| counts[creative] += 1);
        counts
    }

    #[test]
    fn even_and_weighted_rotation_share_the_traffic() {
        let best = world(SETTINGS, &rotating(""));
        assert_eq!(picks(&best, 100), [100, 0], "best: the first of equal values");
        let even = world(SETTINGS, &rotating("rotation = \"even\""));
        let [first, _] = picks(&even, 4000);
        assert!((1800..=2200).contains(&first), "{first}");
        let weighted = world(SETTINGS, &rotating("rotation = \"weighted\""));
        let [first, _] = picks(&weighted, 4000);
        assert!((800..=1200).contains(&first), "weights 1 and 3: {first}");
    }

    /// Thompson sampling on synthetic clicks: creative 1 is clicked 8 % of
    /// the time, creative 0 2 %; as evidence grows, creative 1 gets most of
    /// the traffic.
    #[test]
    fn optimise_rotation_converges_to_the_better_creative() {
        let world = world(SETTINGS, &rotating("rotation = \"optimise\""));
        let state = &world.campaign(0).state;
        let ids = ["r-300x250", "r2"];
        let mut rng = crate::campaigns::experiment::SplitMix(42);
        let (mut late, mut round) = ([0usize; 2], 0);
        choose_repeatedly(&world, 3000, |creative| {
            state.count_impression(ids[creative]);
            let ctr = [0.02, 0.08][creative];
            if ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < ctr {
                state.count_click(ids[creative]);
            }
            if round >= 2000 {
                late[creative] += 1;
            }
            round += 1;
        });
        assert!(late[1] >= 850, "the better creative's share of the last 1000: {late:?}");
        let (impressions, _) = state.creative_counts(ids[0]);
        assert!(impressions >= 10, "the worse one was still tried: {impressions}");
    }

    #[test]
    fn an_arm_bids_with_its_creatives_and_multiplier_and_a_holdout_not_at_all() {
        let experiment = |weights: [u32; 2], holdout: bool| {
            let second = if holdout {
                "holdout = true".to_string()
            } else {
                "creatives = [\"r2\"]\nbid_multiplier = \"1.25\"".to_string()
            };
            rotating(&format!(
                "[campaign.experiment]\nid = \"x\"\ncontrol = \"a\"\n\
                 [[campaign.experiment.arm]]\nname = \"a\"\nweight = {}\n\
                 [[campaign.experiment.arm]]\nname = \"b\"\nweight = {}\n{second}\n",
                weights[0], weights[1]
            ))
        };
        // Weights 0 and 1 are refused: a tiny arm a makes every user b.
        let world_b = world(SETTINGS, &experiment([1, 1_000_000], false));
        assert_eq!(select_one(&world_b, &request(&banner(""), "")), bid("r", 1, 2_500_000));
        let holdout = world(SETTINGS, &experiment([1, 1_000_000], true));
        assert_eq!(select_one(&holdout, &request(&banner(""), "")), Err(ImpNoBid::NoMatch));
        let world_a = world(SETTINGS, &experiment([1_000_000, 1], false));
        assert_eq!(select_one(&world_a, &request(&banner(""), "")), bid("r", 0, 2_000_000));
    }

    #[test]
    fn each_impression_gets_its_own_winner_and_creative() {
        let leaderboard = "[[campaign.creative]]\nid = \"lb\"\nformat = \"banner\"\nw = 728\nh = 90\nimage_url = \"https://ads.example/lb.png\"\nlanding_url = \"https://both.example/\"\n";
        let campaigns = [
            campaign("box", "2.00", ""),
            campaign("both", "1.50", leaderboard),
            campaign("cheap", "1.00", leaderboard),
        ];
        let world = world(SETTINGS, &campaigns.concat());
        let imps = [
            banner(""),
            r#"{"id": "2", "banner": {"format": [{"w": 728, "h": 90}]}}"#.to_string(),
            r#"{"id": "3", "video": {"mimes": ["video/mp4"]}}"#.to_string(),
        ];
        assert_eq!(
            select_all(&world, &request(&imps.join(","), "")),
            [
                bid("box", 0, 2_000_000),
                bid("both", 1, 1_500_000),
                Err(ImpNoBid::NoMatch)
            ]
        );
    }
}
