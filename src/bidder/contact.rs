//! Contact rules on the bid path: an advertiser's do-not-contact list,
//! contact cap and daily budget across its campaigns, capacity caps, and
//! the priority of campaigns within an advertiser.
//!
//! [`admits`] runs in `select` for each campaign tried; a campaign whose
//! advertiser has no rules (the world's [`crate::live::contact::RankContact`]
//! says so in one byte) and a user on no suppression list cost one load and
//! a branch. [`reserve`] holds the winner's share of its advertiser's budget
//! and a contact of the user, atomically, after the campaign's own
//! reservation. [`Reps`] orders an auction's eligible campaigns: each
//! advertiser is represented by its highest-priority eligible campaign (the
//! best ranked among equals), and the best ranked representative wins, so
//! priority reorders campaigns within an advertiser and never across
//! advertisers.

use std::sync::atomic::Ordering;

use crate::campaigns::targeting::FilterReason;
use crate::live::contact::{RankContact, rule};
use crate::live::{LiveCampaign, World};
use crate::money::Micros;
use crate::pacing::FrequencyStore;
use crate::pacing::cost::display_cost;

use super::enrich::BidCtx;
use super::select::Choice;

// The bid path notes the rules that stopped campaigns in a u32.
const _: () = assert!(FilterReason::COUNT <= 32);

/// Whether the advertiser's contact rules let the campaign at `rank` bid
/// on this request; the rule that stops it otherwise.
#[inline]
pub fn admits(
    ctx: &BidCtx,
    world: &World,
    (rank, c): (u32, &LiveCampaign),
    frequency: &FrequencyStore,
) -> Result<(), FilterReason> {
    let link = world.contact.of(rank);
    if link.rules == 0 && ctx.suppressed.is_none() {
        return Ok(());
    }
    check(ctx, world, link, c, frequency)
}

fn check(
    ctx: &BidCtx,
    world: &World,
    link: RankContact,
    c: &LiveCampaign,
    frequency: &FrequencyStore,
) -> Result<(), FilterReason> {
    let a = &world.contact.advertisers[link.advertiser as usize];
    let on_list = ctx.suppressed.as_ref().is_some_and(|s| s.covers(a.key));
    let in_segment = a.suppress_segment.is_some_and(|key| ctx.facts.segments.contains(&key));
    if on_list || in_segment {
        return Err(FilterReason::Suppressed);
    }
    if link.rules & rule::CAPACITY != 0 && c.state.at_capacity.load(Ordering::Relaxed) {
        return Err(FilterReason::Capacity);
    }
    if link.rules & rule::ADVERTISER_CAPACITY != 0 && a.state.at_capacity.load(Ordering::Relaxed) {
        return Err(FilterReason::AdvertiserCapacity);
    }
    if link.rules & (rule::FREQUENCY | rule::BUDGET) == 0 {
        return Ok(());
    }
    let day = a.local_day(ctx.now);
    if link.rules & rule::FREQUENCY != 0 {
        let now = ctx.now.as_second();
        let allowed = ctx
            .user_key
            .is_some_and(|user| frequency.contact_allows(&a.rules.frequency, user, a.key, day, now));
        if !allowed {
            return Err(FilterReason::AdvertiserFrequency);
        }
    }
    if let Some(budget) = a.rules.daily_budget
        && !a.state.spend.has_budget(day, budget)
    {
        return Err(FilterReason::AdvertiserBudget);
    }
    Ok(())
}

/// After the campaign's own reservation (made for `choice`, expiring at
/// the start of minute `expires`): reserves its cost against the
/// advertiser's daily budget and holds a contact of the user under the
/// advertiser's cap, each atomically (at most one impression's price over
/// the budget, never a contact over the cap). When either is refused,
/// everything reserved for the choice (the campaign's included) is given
/// back, the rule is counted, and the answer is false.
pub fn reserve(
    ctx: &BidCtx,
    world: &World,
    choice: &Choice,
    frequency: &FrequencyStore,
    (expires, notice_until): (i64, i64),
) -> bool {
    let link = world.contact.of(choice.rank);
    if link.rules & (rule::FREQUENCY | rule::BUDGET) == 0 {
        return true;
    }
    let a = &world.contact.advertisers[link.advertiser as usize];
    let c = world.campaign(choice.rank);
    let cost = display_cost(choice.price, choice.qty_milli);
    let minute = ctx.now.as_second().div_euclid(60);
    let day = a.local_day(ctx.now);
    if let Some(budget) = a.rules.daily_budget {
        let unit = display_cost(choice.price, crate::signing::QTY_ONE);
        if !a.state.spend.try_reserve_display(day, budget, cost, unit, expires) {
            c.state.spend.release(cost, expires, minute);
            c.state.count_filtered(FilterReason::AdvertiserBudget);
            return false;
        }
        a.state.note_reserving(ctx.now.as_second());
    }
    if link.rules & rule::FREQUENCY != 0 {
        let held = ctx.user_key.is_some_and(|user| {
            frequency.reserve_contact(&a.rules.frequency, user, a.key, day, ctx.now.as_second(), notice_until)
        });
        if !held {
            if a.rules.daily_budget.is_some() {
                a.state.spend.release(cost, expires, minute);
            }
            c.state.spend.release(cost, expires, minute);
            c.state.count_filtered(FilterReason::AdvertiserFrequency);
            return false;
        }
    }
    true
}

/// One advertiser's choice so far in an auction.
#[derive(Debug)]
struct Rep<'a> {
    advertiser: u32,
    priority: i32,
    choice: Choice<'a>,
}

/// The eligible campaigns of one auction, one per advertiser: its
/// highest-priority one, the best ranked among equals. The winner is the
/// best ranked of them. Empty (and allocation-free) until a campaign is
/// eligible whose advertiser has a higher-priority campaign: in a world
/// without priorities, the first eligible campaign wins at once, as it
/// always did.
#[derive(Debug, Default)]
pub struct Reps<'a> {
    reps: Vec<Rep<'a>>,
    /// Bids are valued per impression: the best bid wins (not the best
    /// ranked), and an advertiser's campaign of equal priority replaces its
    /// choice when it bids more.
    by_price: bool,
}

impl<'a> Reps<'a> {
    /// Reps for one walk; `by_price` when values are predicted per
    /// impression.
    pub fn new(by_price: bool) -> Reps<'a> {
        Reps {
            reps: Vec::new(),
            by_price,
        }
    }

    /// True when the campaign at `rank` cannot change the outcome: its
    /// advertiser already has an eligible campaign of at least its
    /// priority (by price: of a higher priority), better ranked. The walk
    /// need not evaluate it.
    #[inline]
    pub fn skips(&self, world: &World, rank: u32) -> bool {
        if self.reps.is_empty() {
            return false;
        }
        let link = world.contact.of(rank);
        self.reps.iter().any(|r| {
            r.advertiser == link.advertiser
                && (r.priority > link.priority || (!self.by_price && r.priority == link.priority))
        })
    }

    /// True when some choice held bids at least `price`: a walk by price
    /// can stop once no later campaign can bid more.
    #[inline]
    pub fn holds_at_least(&self, price: Micros) -> bool {
        self.reps.iter().any(|r| r.choice.price >= price)
    }

    /// An eligible campaign, offered in rank order (after [`Reps::skips`]):
    /// the winner when the walk can stop — the best ranked choice so far
    /// is its advertiser's highest priority, so nothing later can take its
    /// place or outrank it.
    #[inline]
    pub fn offer(&mut self, world: &World, choice: Choice<'a>) -> Option<Choice<'a>> {
        let link = world.contact.of(choice.rank);
        if self.reps.is_empty() && link.top {
            return Some(choice);
        }
        self.note(link, choice);
        let best = self.best()?;
        if world.contact.of(self.reps[best].choice.rank).top {
            return Some(self.reps.swap_remove(best).choice);
        }
        None
    }

    /// An eligible campaign in a walk that evaluates every candidate (a dry
    /// run, or a walk by price): kept if it is its advertiser's best so far.
    pub fn offer_all(&mut self, world: &World, choice: Choice<'a>) {
        let link = world.contact.of(choice.rank);
        let by_price = self.by_price;
        let better = self
            .reps
            .iter()
            .find(|r| r.advertiser == link.advertiser)
            .is_none_or(|r| {
                link.priority > r.priority || (by_price && link.priority == r.priority && choice.price > r.choice.price)
            });
        if better {
            self.note(link, choice);
        }
    }

    /// The choice of the advertiser of `link`, replaced.
    fn note(&mut self, link: RankContact, choice: Choice<'a>) {
        let rep = Rep {
            advertiser: link.advertiser,
            priority: link.priority,
            choice,
        };
        match self.reps.iter_mut().find(|r| r.advertiser == link.advertiser) {
            Some(current) => *current = rep,
            None => self.reps.push(rep),
        }
    }

    /// The position of the best choice: the best ranked, or by price the
    /// highest bid (ties to the best ranked).
    fn best(&self) -> Option<usize> {
        let key = |i: &usize| {
            let choice = &self.reps[*i].choice;
            let price = if self.by_price { choice.price } else { Micros::ZERO };
            (std::cmp::Reverse(price), choice.rank)
        };
        (0..self.reps.len()).min_by_key(key)
    }

    /// The winner once the walk is over: the best choice.
    pub fn winner(mut self) -> Option<Choice<'a>> {
        let best = self.best()?;
        Some(self.reps.swap_remove(best).choice)
    }
}

/// For explain: the campaigns with a bid that lost to a higher-priority
/// campaign of their own advertiser, given which ranks could bid.
pub fn outranked_by_priority(world: &World, can_bid: &[bool]) -> Vec<bool> {
    let mut outranked = vec![false; can_bid.len()];
    if !world.contact.any_priority {
        return outranked;
    }
    let mut best: Vec<Option<i32>> = vec![None; world.contact.advertisers.len()];
    for (rank, _) in can_bid.iter().enumerate().filter(|(_, bid)| **bid) {
        let link = world.contact.of(rank as u32);
        let top = &mut best[link.advertiser as usize];
        *top = Some(top.map_or(link.priority, |p| p.max(link.priority)));
    }
    for (rank, _) in can_bid.iter().enumerate().filter(|(_, bid)| **bid) {
        let link = world.contact.of(rank as u32);
        outranked[rank] = best[link.advertiser as usize].is_some_and(|top| top > link.priority);
    }
    outranked
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::audience::Snapshot;
    use crate::audience::overlay::Overlay;
    use crate::bidder::{decode, enrich, select};
    use crate::config::{Env, from_texts_with};

    const SETTINGS: &str = "[[advertiser]]\nid = \"A\"\n[[advertiser]]\nid = \"B\"\n\
                            [secrets]\nsigning_key = \"test-signing-key-0123456789abcdefghijkl\"\n";

    /// A CPM campaign of `advertiser` bidding `max_bid` on 300×250, with
    /// this priority.
    fn campaign(id: &str, advertiser: &str, max_bid: &str, priority: i32) -> String {
        format!(
            "[[campaign]]\nid = \"{id}\"\nadvertiser = \"{advertiser}\"\npricing = \"cpm\"\nmax_bid = \"{max_bid}\"\n\
             daily_budget = \"1000\"\npacing = \"asap\"\npriority = {priority}\n\
             [[campaign.creative]]\nid = \"{id}-c\"\nformat = \"banner\"\nw = 300\nh = 250\n\
             image_url = \"https://ads.example/{id}.png\"\nlanding_url = \"https://{id}.example/\"\n"
        )
    }

    fn world(campaigns: &[String]) -> World {
        let files = [("test.toml".into(), campaigns.concat())];
        let config =
            from_texts_with(Path::new("cfg"), SETTINGS, &files, &Env::default()).unwrap_or_else(|e| panic!("{e}"));
        World::build(config, &crate::live::LiveStates::default())
    }

    /// The winner of one 300×250 impression with this floor.
    fn winner(world: &World, floor: f64) -> Option<String> {
        let body = format!(
            r#"{{"id": "r", "imp": [{{"id": "1", "bidfloor": {floor}, "banner": {{"w": 300, "h": 250}}}}],
                "site": {{"domain": "news.example"}},
                "device": {{"ua": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "ip": "203.0.113.7"}},
                "user": {{"buyeruid": "u1"}}}}"#
        );
        let mut repaired = String::new();
        let request = decode::decode(body.as_bytes(), &mut repaired).unwrap().request;
        let (snapshot, overlay) = (Snapshot::empty(), Overlay::new(16));
        let matches = crate::audience::matches::UserMatches::in_memory(16);
        let audience = enrich::Audience {
            snapshot: &snapshot,
            overlay: &overlay,
            matches: &matches,
        };
        let now = "2025-06-02T12:00:00Z".parse().unwrap();
        let ctx = enrich::enrich(&request, world, world.settings.default_exchange_id(), audience, now).unwrap();
        let frequency = FrequencyStore::default();
        select::select(
            &ctx,
            world,
            &request.imp[0],
            &frequency,
            &mut select::Scratch::default(),
        )
        .ok()
        .map(|choice| world.campaign(choice.rank).campaign.id.clone())
    }

    #[test]
    fn a_higher_priority_campaign_of_the_same_advertiser_goes_first() {
        let world = world(&[
            campaign("a-promo", "A", "3.00", 0),
            campaign("a-retention", "A", "1.00", 5),
        ]);
        assert_eq!(winner(&world, 0.5).as_deref(), Some("a-retention"));
        assert_eq!(
            winner(&world, 2.0).as_deref(),
            Some("a-promo"),
            "under the floor, the higher priority is not eligible"
        );
        let flat = self::world(&[
            campaign("a-promo", "A", "3.00", 0),
            campaign("a-retention", "A", "1.00", 0),
        ]);
        assert_eq!(
            winner(&flat, 0.5).as_deref(),
            Some("a-promo"),
            "no priorities: the best value"
        );
        assert!(!flat.contact.any_priority && world.contact.any_priority);
    }

    #[test]
    fn across_advertisers_the_best_bid_still_wins() {
        // A competes with its priority campaign (1.00), B with its best (2.00).
        let campaigns = [
            campaign("a-promo", "A", "3.00", 0),
            campaign("b", "B", "2.00", 0),
            campaign("a-retention", "A", "1.00", 5),
        ];
        assert_eq!(winner(&world(&campaigns), 0.5).as_deref(), Some("b"));
        let campaigns = [
            campaign("a-promo", "A", "3.00", 0),
            campaign("a-retention", "A", "2.50", 5),
            campaign("b", "B", "2.00", 0),
        ];
        assert_eq!(winner(&world(&campaigns), 0.5).as_deref(), Some("a-retention"));
        let campaigns = [
            campaign("b-low", "B", "4.00", 0),
            campaign("a-promo", "A", "3.00", 0),
            campaign("b-high", "B", "1.00", 1),
            campaign("a-retention", "A", "2.50", 5),
        ];
        assert_eq!(
            winner(&world(&campaigns), 0.5).as_deref(),
            Some("a-retention"),
            "B competes with b-high (1.00), A with a-retention (2.50)"
        );
    }

    #[test]
    fn explain_marks_the_campaigns_that_yield_to_a_priority() {
        let world = world(&[
            campaign("a-promo", "A", "3.00", 0),
            campaign("b", "B", "2.00", 0),
            campaign("a-retention", "A", "1.00", 5),
        ]);
        assert_eq!(outranked_by_priority(&world, &[true, true, true]), [true, false, false]);
        assert_eq!(
            outranked_by_priority(&world, &[true, true, false]),
            [false, false, false]
        );
    }
}
