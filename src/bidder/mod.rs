//! The bid path: one request, top to bottom.
//!
//! ```text
//! decode ─▶ enrich ─▶ select ─▶ price ─▶ encode
//! ```
//!
//! [`Bidder::bid`] runs the stages over one [`enrich::BidCtx`]; each stage
//! returns a typed outcome, and "no bid" is data ([`NoBidReason`]), recorded
//! in one place with the rest of the request's outcome. [`explain`] runs
//! the same stages dry, for the admin API.

pub mod contact;
pub mod decode;
pub mod encode;
pub mod enrich;
pub mod explain;
pub mod price;
pub mod privacy;
pub mod select;
pub mod traffic;
pub mod value;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::audience::AudienceStore;
use crate::clock::Clock;
use crate::live::World;
use crate::metrics::{Metrics, NoBidReason};
use crate::money::Micros;
use crate::pacing::FrequencyStore;
use crate::pacing::budget::expiry_minute;
use crate::pacing::cost::{display_cost, impression_cost};

pub use decode::DecodeError;

thread_local! {
    /// This thread's seeded random numbers, when a simulation asked for
    /// them ([`seed_thread`]); `None`: the thread's own random generator.
    static SEEDED: std::cell::RefCell<Option<rand::rngs::SmallRng>> = const { std::cell::RefCell::new(None) };
}

/// A random number for the bid path's draws (pacing, rotation, per-request
/// experiment arms, shading's exploration).
pub fn draw() -> u64 {
    SEEDED.with(|seeded| match seeded.borrow_mut().as_mut() {
        Some(rng) => rand::Rng::next_u64(rng),
        None => rand::random(),
    })
}

/// Makes this thread's bid-path draws a seeded sequence (the market
/// simulator, so that a run repeats for a seed).
pub fn seed_thread(seed: u64) {
    use rand::SeedableRng;
    SEEDED.with(|seeded| *seeded.borrow_mut() = Some(rand::rngs::SmallRng::seed_from_u64(seed)));
}

/// Holds the winning bid's cost against its campaign's budget for today
/// (its daily budget, capped by or derived from its lifetime budget), an
/// impression of the user under the campaign's frequency cap and, where its
/// advertiser has contact rules, its cost against the advertiser's budget
/// and a contact under its contact cap; false (and nothing held) when a
/// concurrent bid took the last of any.
fn reserve(ctx: &enrich::BidCtx, world: &World, choice: &select::Choice, frequency: &FrequencyStore) -> bool {
    let c = world.campaign(choice.rank);
    let until = notice_until(ctx, choice.imp);
    let cap = &c.campaign.targeting.frequency;
    let capped = (cap.per_hour.is_some() || cap.per_day.is_some()).then_some(ctx.user_key.unwrap_or(0));
    if let Some(user) = capped
        && !frequency.hold(cap, user, c.key, ctx.now, until)
    {
        c.state
            .count_filtered(crate::campaigns::targeting::FilterReason::Frequency);
        return false;
    }
    let reserved = reserve_budgets(ctx, world, choice, frequency, until);
    if !reserved && let Some(user) = capped {
        frequency.release(user, c.key, ctx.now.as_second());
    }
    reserved
}

/// [`reserve`]'s budgets and contact, once the impression is held.
fn reserve_budgets(
    ctx: &enrich::BidCtx,
    world: &World,
    choice: &select::Choice,
    frequency: &FrequencyStore,
    until: i64,
) -> bool {
    let c = world.campaign(choice.rank);
    let (today, _) = ctx.local_time(c.tz);
    let expires = expiry_minute(until);
    // One impression's cost, and the display's (the same unless `imp.qty`).
    let unit = impression_cost(choice.price);
    let cost = match choice.qty_milli {
        crate::signing::QTY_ONE => unit,
        qty => display_cost(choice.price, qty),
    };
    let reserved = c.state.spend.try_reserve_display(
        today,
        c.state.spend.budget_today(today, &c.campaign.day_budget()),
        cost,
        unit,
        expires,
    );
    if !reserved {
        c.state
            .count_filtered(crate::campaigns::targeting::FilterReason::Budget);
    }
    reserved && contact::reserve(ctx, world, choice, frequency, (expires, until))
}

/// The largest share of a campaign's daily budget one request may hold in
/// reservations: 1/20 (but always one impression), so that one request
/// with many matching impressions cannot starve a budget.
const REQUEST_SHARE_DIVISOR: i64 = 20;

/// Reserves each choice's cost, keeping the choices reserved (in order).
/// A campaign's second and later impressions in one request are reserved
/// only within its per-request share. In place, without allocating: a
/// request has at most `max_imps_per_request` choices, usually one.
fn reserve_all(ctx: &enrich::BidCtx, world: &World, choices: &mut Vec<select::Choice>, frequency: &FrequencyStore) {
    let mut kept = 0;
    for i in 0..choices.len() {
        let choice = &choices[i];
        let held = choices[..kept]
            .iter()
            .filter(|earlier| earlier.rank == choice.rank)
            .fold(Micros::ZERO, |sum, earlier| {
                sum.saturating_add(display_cost(earlier.price, earlier.qty_milli))
            });
        let c = world.campaign(choice.rank);
        let today = ctx.local_time(c.tz).0;
        let share = c
            .state
            .spend
            .budget_today(today, &c.campaign.day_budget())
            .mul_div_floor(1, REQUEST_SHARE_DIVISOR);
        let within_share =
            held == Micros::ZERO || held.saturating_add(display_cost(choice.price, choice.qty_milli)) <= share;
        if within_share && reserve(ctx, world, choice, frequency) {
            choices.swap(kept, i);
            kept += 1;
        }
    }
    choices.truncate(kept);
}

/// Until when (Unix seconds, exclusive) a bid on `imp` can be charged:
/// the exchange's notice window after the bid, or the impression's `exp`
/// when the exchange sends a shorter one. The bid's budget reservation
/// lives exactly as long.
pub fn notice_until(ctx: &enrich::BidCtx, imp: &crate::openrtb::Imp) -> i64 {
    let window = ctx.exchange.notice_window.as_secs() as i64;
    let window = imp.exp.filter(|exp| *exp > 0).map_or(window, |exp| exp.min(window));
    ctx.now.as_second().saturating_add(window)
}

/// Why nothing matched, from the rules that stopped campaigns: the user
/// (unknown, or without what was sought), the publisher, or the device, when
/// only rules of that kind stopped them; otherwise plain "no match". A user
/// without segments to whom the index offered no campaign at all, where
/// campaigns target segments, is also unmatched.
fn no_match_reason(scratch: &select::Scratch, ctx: &enrich::BidCtx, world: &World) -> NoBidReason {
    use crate::campaigns::targeting::FilterReason as F;
    let stopped = scratch.stopped;
    let bits = |reasons: &[F]| reasons.iter().fold(0u32, |bits, r| bits | 1 << *r as u32);
    let only = |reasons: &[F]| stopped != 0 && stopped & !bits(reasons) == 0;
    let user_unknown = ctx.user_key.is_none() || ctx.facts.segments.is_empty();
    let nothing_offered = stopped == 0 && !scratch.offered && world.has_segment_targeting();
    let about_the_user = [
        F::Segment,
        F::Age,
        F::Gender,
        F::Frequency,
        F::ExperimentNoUserId,
        F::AdvertiserFrequency,
    ];
    if user_unknown && (nothing_offered || only(&about_the_user)) {
        NoBidReason::UnmatchedUser
    } else if only(&[F::Domain, F::Category]) {
        NoBidReason::BlockedPublisher
    } else if only(&[F::Device, F::Os, F::Connection]) {
        NoBidReason::UnsupportedDevice
    } else {
        NoBidReason::NoMatch
    }
}

/// Most bids one dynamic pod takes, whatever its `maxseq`.
const MAX_POD_BIDS: i64 = 10;

/// A dynamic video pod (2.6: `poddur`, with `maxseq` above one or
/// absent): its seconds and how many bids it may take.
fn dynamic_pod(video: &crate::openrtb::Video) -> Option<(i64, i64)> {
    let seconds = video.poddur.filter(|d| *d > 0)?;
    let slots = video.maxseq.map_or(MAX_POD_BIDS, |n| n.min(MAX_POD_BIDS));
    (slots > 1).then_some((seconds, slots))
}

/// When the answer must be ready: `tmax` (or the default) minus the
/// exchange's network allowance after the headers arrived; `None` when
/// nothing is left.
fn deadline(
    request: &crate::openrtb::BidRequest,
    world: &World,
    exchange: &crate::settings::Exchange,
    received: Instant,
) -> Option<Instant> {
    let tmax = request
        .tmax
        .filter(|t| *t > 0)
        .map_or(world.settings.default_tmax, |t| Duration::from_millis(t as u64));
    let budget = tmax.saturating_sub(exchange.network_allowance);
    (!budget.is_zero()).then(|| received + budget)
}

/// What became of a bid request.
#[derive(Debug)]
pub enum Outcome {
    /// A BidResponse body with `bids` bids.
    Bid {
        /// The BidResponse JSON.
        body: Vec<u8>,
        /// Number of bids in it, one per impression bid on.
        bids: usize,
    },
    /// No bid (answered 204).
    NoBid(NoBidReason),
    /// No bid, answered 200 with this `{"id", "nbr"}` body (exchanges
    /// configured with `no_bid = "nbr"`).
    NoBidExplained {
        /// The BidResponse JSON with the no-bid reason code.
        body: Vec<u8>,
        /// Why.
        reason: NoBidReason,
    },
    /// Not a usable bid request (answered 400).
    Invalid(DecodeError),
    /// The path names an exchange the settings do not know (answered 404).
    UnknownExchange,
}

/// The shared state of the bid path. Everything in it is immutable behind
/// an `ArcSwap`, atomic, or a lock-free map.
pub struct Bidder {
    /// The campaign world: campaigns, index, settings and signer.
    pub world: Arc<ArcSwap<World>>,
    /// Audience snapshot and overlay.
    pub audience: Arc<AudienceStore>,
    /// Frequency counts, shared with the tracker.
    pub frequency: Arc<FrequencyStore>,
    /// The time of day.
    pub clock: Arc<dyn Clock>,
    /// Where outcomes are counted.
    pub metrics: Arc<Metrics>,
    /// Tracking base URL when the config sets no `public_url`.
    pub listen_url: String,
    /// This node's tag in a cluster (bid ids start with it); `None` alone.
    pub node_tag: Option<String>,
    /// Predicts clicks and conversions per impression for value-based
    /// campaigns when `bidding.prediction = "impression"`; `None`: every
    /// campaign is valued at its smoothed rates.
    pub predictor: Option<Arc<dyn crate::outcome::Predictor>>,
    /// Learned first-price shading: its curves, and the bids it counts.
    pub shading: Arc<crate::pacing::shading::Shading>,
}

impl Bidder {
    /// The predictor a request in `world` values its campaigns with: none
    /// under `bidding.prediction = "campaign"`, or when no campaign is
    /// value-based.
    pub fn predictor_for(&self, world: &World) -> Option<&dyn crate::outcome::Predictor> {
        let wanted =
            world.settings.prediction == crate::settings::PredictionMode::Impression && world.has_value_based();
        self.predictor.as_deref().filter(|_| wanted)
    }

    /// The learned shading a request in `world` is priced with, unless
    /// `bidding.shading = "fixed"`.
    pub fn shading_for(&self, world: &World) -> Option<&crate::pacing::shading::Shading> {
        (world.settings.shading == crate::settings::ShadingMode::Learned).then_some(&*self.shading)
    }

    /// A bidder over a config directory, for benchmarks and tools that run
    /// the bid path without the HTTP server.
    pub fn from_config_dir(dir: &std::path::Path, clock: Arc<dyn Clock>) -> anyhow::Result<Bidder> {
        let config = crate::config::load(dir)?;
        let audience = Arc::new(AudienceStore::open(config.settings.audience_snapshot.as_deref())?);
        let registry = crate::live::LiveStates::default();
        let world = Arc::new(ArcSwap::from_pointee(World::build(config, &registry)));
        Ok(Bidder {
            metrics: Arc::new(Metrics::new(Box::new(world.clone()))),
            world,
            audience,
            frequency: Arc::new(FrequencyStore::default()),
            clock,
            listen_url: "http://127.0.0.1:8080".into(),
            node_tag: None,
            predictor: None,
            shading: Default::default(),
        })
    }

    /// Answers one bid request. `exchange` is the path's exchange name
    /// (`None` for `/openrtb2/bid`); `received` is when its headers arrived.
    pub fn bid(&self, exchange: Option<&str>, body: &[u8], received: Instant) -> Outcome {
        // A guard, not an Arc clone: no shared reference count to bounce
        // between cores. The bid path is synchronous, so it is never held
        // across an await.
        let world = self.world.load();
        let exchange_id = match exchange {
            None => world.default_exchange,
            Some(name) => match world.settings.exchange_id(name) {
                Some(id) => id,
                None => return Outcome::UnknownExchange,
            },
        };
        let exchange = world.settings.exchange_at(exchange_id);
        self.metrics.request(&exchange.name);
        let (mut repaired, mut repairs) = (String::new(), Vec::new());
        let request = match decode::decode_noting(body, &mut repaired, &mut repairs) {
            Ok(request) => request,
            Err(e) => return Outcome::Invalid(e),
        };
        for repair in &repairs {
            self.metrics.field_repaired(repair.field, repair.how.as_str());
        }
        let outcome = self.bid_on(&request, &world, exchange_id, received);
        match outcome {
            Outcome::NoBid(reason) if exchange.no_bid == crate::settings::NoBidAnswer::Nbr => Outcome::NoBidExplained {
                body: encode::no_bid(&request, reason),
                reason,
            },
            outcome => outcome,
        }
    }

    /// Stages 2 to 5 over a decoded request.
    fn bid_on(
        &self,
        request: &crate::openrtb::BidRequest,
        world: &World,
        exchange_id: crate::settings::ExchangeId,
        received: Instant,
    ) -> Outcome {
        let exchange = world.settings.exchange_at(exchange_id);
        let Some(deadline) = deadline(request, world, exchange, received) else {
            return self.no_bid(NoBidReason::Timeout);
        };
        let snapshot = self.audience.load();
        let audience = enrich::Audience {
            snapshot: &snapshot,
            overlay: &self.audience.overlay,
            matches: &self.audience.matches,
        };
        let mut ctx = match enrich::enrich(request, world, exchange_id, audience, self.clock.now()) {
            Ok(ctx) => ctx,
            Err(reason) => return self.no_bid(reason),
        };
        ctx.predictor = self.predictor_for(world);
        ctx.shading = self.shading_for(world);
        let choices = match self.select_and_reserve(&ctx, world) {
            Ok(choices) => choices,
            Err(reason) => return self.no_bid(reason),
        };
        if Instant::now() >= deadline {
            return self.no_bid(NoBidReason::Timeout);
        }
        self.encode(&ctx, world, &choices)
    }

    /// Stage 3 and 4 for every impression: the winner and its price, each
    /// holding its cost against the campaign's budget (test requests
    /// reserve nothing).
    fn select_and_reserve<'r>(
        &self,
        ctx: &enrich::BidCtx<'r>,
        world: &World,
    ) -> Result<Vec<select::Choice<'r>>, NoBidReason> {
        let request = ctx.request;
        let max_imps = world.settings.max_imps_per_request;
        if request.imp.len() > max_imps {
            self.metrics.imps_ignored.inc_by((request.imp.len() - max_imps) as u64);
        }
        let mut scratch = select::Scratch::default();
        let mut choices = Vec::with_capacity(request.imp.len().min(max_imps));
        let (mut private_only, mut invalid_floor, mut native_unreadable) = (true, false, false);
        // Structured pods: the creatives already bid in each, by `podid`.
        let mut pods: Vec<(&str, Vec<(u32, usize)>)> = Vec::new();
        for imp in request.imp.iter().take(max_imps) {
            let unreadable = imp.native.as_ref().is_some_and(|n| n.request.is_none());
            if unreadable {
                self.metrics.native_unreadable.inc();
            }
            match self.select_imp(ctx, world, imp, &mut scratch, &mut pods, &mut choices) {
                None | Some(select::ImpNoBid::PrivateAuction) => {}
                Some(select::ImpNoBid::InvalidFloor) => (private_only, invalid_floor) = (false, true),
                Some(_) => (private_only, native_unreadable) = (false, native_unreadable || unreadable),
            }
        }
        if !request.test.0 {
            reserve_all(ctx, world, &mut choices, &self.frequency);
            for choice in &choices {
                if let Some(slice) = choice.shading_slice {
                    self.shading.count_bid(slice, choice.price);
                }
            }
        }
        if choices.is_empty() {
            return Err(if private_only {
                NoBidReason::PrivateAuction
            } else if invalid_floor {
                NoBidReason::InvalidFloor
            } else if native_unreadable {
                NoBidReason::NativeRequestUnreadable
            } else {
                no_match_reason(&scratch, ctx, world)
            });
        }
        Ok(choices)
    }

    /// Selects for one impression: one bid, or up to a dynamic pod's
    /// bids; in a structured pod (`pods`, by `podid`), never a creative
    /// already bid in it. `None` when it got a bid, else why not.
    fn select_imp<'r>(
        &self,
        ctx: &enrich::BidCtx<'r>,
        world: &World,
        imp: &'r crate::openrtb::Imp<'r>,
        scratch: &mut select::Scratch,
        pods: &mut Vec<(&'r str, Vec<(u32, usize)>)>,
        choices: &mut Vec<select::Choice<'r>>,
    ) -> Option<select::ImpNoBid> {
        let video = imp.video.as_ref();
        let pod_id = video.and_then(|v| v.podid.as_deref());
        let dynamic = video.and_then(|v| dynamic_pod(v));
        let earlier = pod_id.and_then(|id| pods.iter_mut().find(|(p, _)| *p == id));
        scratch.pod = select::Pod {
            taken: earlier.map(|(_, taken)| std::mem::take(taken)).unwrap_or_default(),
            seconds_left: dynamic.map(|(seconds, _)| seconds),
        };
        let mut outcome = None;
        for slot in 0..dynamic.map_or(1, |(_, slots)| slots) {
            match select::select(ctx, world, imp, &self.frequency, scratch) {
                Ok(choice) => {
                    let creative = &world.campaign(choice.rank).campaign.creatives[choice.creative];
                    let pod = &mut scratch.pod;
                    pod.taken.push((choice.rank, choice.creative));
                    pod.seconds_left = pod.seconds_left.map(|s| s - creative.duration.unwrap_or(s));
                    choices.push(choice);
                }
                Err(_) if slot > 0 => break,
                Err(no_bid) => {
                    outcome = Some(no_bid);
                    break;
                }
            }
        }
        if let Some(id) = pod_id {
            let taken = std::mem::take(&mut scratch.pod.taken);
            match pods.iter_mut().find(|(p, _)| *p == id) {
                Some((_, slot)) => *slot = taken,
                None => pods.push((id, taken)),
            }
        }
        outcome
    }

    /// Stage 5: the response, and the bids counted.
    fn encode(&self, ctx: &enrich::BidCtx, world: &World, choices: &[select::Choice]) -> Outcome {
        let base_url = world.settings.public_url.as_deref().unwrap_or(&self.listen_url);
        let body = encode::encode(ctx, world, choices, base_url, self.node_tag.as_deref());
        if body.is_empty() {
            return self.no_bid(NoBidReason::Currency);
        }
        if !ctx.request.test.0 {
            for choice in choices {
                let state = &world.campaign(choice.rank).state;
                state.bids.fetch_add(1, Ordering::Relaxed);
                state.exchange_bids.add(ctx.exchange_id);
            }
        }
        self.metrics.bids.inc_by(choices.len() as u64);
        Outcome::Bid {
            body,
            bids: choices.len(),
        }
    }

    /// One pacing controller step for every `even` campaign (every second):
    /// the spend against the target curve. In a cluster, the cluster's
    /// spend (this node's and the others' as the leases last reported it)
    /// against the whole budget, so that every node's throttle agrees and
    /// each paces its share of the curve.
    ///
    /// With learned shading, the bid of a campaign charged per impression
    /// is steered too (see `pacing::pacer`).
    pub fn control_pacing(&self) {
        let now = self.clock.now();
        let world = self.world.load();
        let learned = self.shading_for(&world).is_some();
        for c in &world.campaigns {
            if c.campaign.pacing != crate::campaigns::PacingMode::Even {
                continue;
            }
            let local = crate::clock::local_seconds(now, &c.campaign.time_zone);
            let (today, second_of_day) = (local.div_euclid(86_400), local.rem_euclid(86_400));
            let spent = c.state.spend.cluster_spent(today);
            let budget = c.state.spend.budget_today(today, &c.campaign.day_budget());
            let steer_bid = learned && c.campaign.pricing != crate::campaigns::Pricing::Cpc;
            c.state.pacer.control(spent, budget, (today, second_of_day), steer_bid);
        }
    }

    /// Drains expired budget reservations (called every second): the
    /// campaigns' and their advertisers' (`contact::reserve`).
    pub fn expire_reservations(&self) {
        let minute = self.clock.now().as_second().div_euclid(60);
        let world = self.world.load();
        for c in &world.campaigns {
            c.state.spend.expire(minute);
        }
        for a in &world.contact.advertisers {
            a.state.spend.expire(minute);
        }
    }

    fn no_bid(&self, reason: NoBidReason) -> Outcome {
        self.metrics.no_bid(reason);
        Outcome::NoBid(reason)
    }
}
