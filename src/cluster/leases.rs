//! Budget leases: every budget-like limit is handed out to the nodes of a
//! cluster in slices, so that together they never spend more than it
//! allows (give or take one impression per node).
//!
//! Each budget has a hash in Redis per day (`bullseye:lease:c:{campaign}:{day}`
//! for a campaign's daily budget, `bullseye:lease:a:{advertiser}:{day}` for
//! an advertiser's, `bullseye:lease:t:{campaign}` for a lifetime budget),
//! with one field per node: what it was granted, what it spent, its usage
//! (spend plus outstanding reservations), what it billed, and when its
//! lease expires. A node's *hold* is the larger of its grant and its usage
//! while its lease lives, and its spend once it expired. The [`LEASE`]
//! script, run atomically by Redis, grants a node at most the budget minus
//! every other node's hold (and minus what nodes lost in a Redis restart
//! held: see below), so the grants never add up to more than the budget.
//!
//! The bid path never waits for Redis: a node's grant reaches it as the cap
//! in the budget's `DailySpend` (one atomic), against which reservations
//! are made exactly as alone (at most one impression over). A background
//! task ([`Leases::run`]) renews every budget that is due in one atomic
//! pipelined round trip, once a second (sooner, every [`CHECK_EVERY`],
//! when a budget runs short):
//!
//! - **Slices** follow the node's recent usage rate: a node asks for its
//!   usage plus [`SLICE_SECS`] of its rate (never less than one
//!   impression's maximum price, so that it can bid; [`GROWTH`] times its
//!   last slice when it used the whole grant), and renews when what is
//!   left of its grant falls under [`LEAD_SECS`] of its rate (or one
//!   impression; not after a refusal), when the day turns, and at least
//!   every [`REPORT_EVERY`] (to report its spend, give back what it no
//!   longer needs, and learn the cluster's spend for pacing). A busy node
//!   renews rarely for its rate; an idle one holds one impression.
//! - **Shrinking** lowers the local cap before asking, so that the node
//!   never spends what Redis already handed to another.
//! - **Expiry**: a lease lives [`Leases::ttl`] (twice the longest notice
//!   window plus a minute) after its last renewal. A node that cannot
//!   renew stops reserving once its reservations could outlive its lease
//!   (the TTL minus the notice window, less a margin), so a dead node's
//!   bids are covered until their notices can no longer be charged.
//! - **Restart**: a node restarted with the same id takes its lease back
//!   (its first renewal replaces its previous run's record). Its ledger
//!   restores only what it billed itself, so it takes over from that
//!   record what the previous run's bids spent when other nodes billed
//!   them (its spend minus what it billed), as spend elsewhere for the
//!   rest of the day (the billing nodes may not have reported those
//!   charges yet), and holds what the previous run may still have had in
//!   flight (its hold, the larger of its grant and usage, minus its spend,
//!   while its lease lived) until the notice window has passed.
//! - **Shutdown** ([`Leases::give_back`]): every grant goes back down to
//!   the node's usage.
//! - **Redis restarted empty** ([`ROUND`]): the first node to notice (its
//!   epoch is gone) starts a recovery that lasts until it and every node
//!   seen in the last [`PEER_WINDOW`] have renewed knowing the new epoch
//!   (re-asserting every budget they hold), or [`RECOVERY`] at most. During
//!   it nodes only re-assert what they hold (a grant is never more than the
//!   node's current one); each re-assertion records the node's last known
//!   total of all holds, and once recovery ends the part of the largest of
//!   those that no node re-asserted stays counted as spent for the day.
//! - **Redis unreachable**: nothing changes on the bid path; the node
//!   keeps spending within what it holds, never more, until its hold runs
//!   out or its lease would expire.
//!
//! Capacity caps (clicks and conversions per hour and day) stay per node.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::campaigns::Status;
use crate::clock::Clock;
use crate::live::{AdvertiserState, World};
use crate::money::Micros;
use crate::pacing::DailySpend;
use crate::pacing::budget::expiry_minute;
use crate::pacing::cost::impression_cost;

use super::{Node, Purpose};

/// A round at least this often (heartbeat, recovery, reports).
pub const ROUND_EVERY: Duration = Duration::from_secs(1);
/// How often the background task looks for budgets due: a round is sent
/// sooner than [`ROUND_EVERY`] only when a budget runs short.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);
/// A node that used up its whole grant asks for at least this many times
/// its last slice (its demand is unknown: the grant held it back).
pub const GROWTH: i64 = 4;
/// A node's first slice of a budget is this fraction of it (at least one
/// impression): 1 %.
pub const FIRST_SLICE_SHARE: i64 = 100;
/// A slice is this many seconds of the node's recent usage rate.
pub const SLICE_SECS: f64 = 20.0;
/// Renew when what is left of a grant would last less than this.
pub const LEAD_SECS: f64 = 4.0;
/// Renew at least this often (reports spend, adjusts the slice).
pub const REPORT_EVERY: Duration = Duration::from_secs(5);
/// A round that takes longer fails (Redis paused or unreachable).
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest recovery after Redis restarted empty.
pub const RECOVERY: Duration = Duration::from_secs(30);
/// Nodes seen within this are waited for during a recovery.
pub const PEER_WINDOW: Duration = Duration::from_secs(300);
/// A lease this node no longer renews is forgotten after this.
const FORGET_AFTER: Duration = Duration::from_secs(2 * 86_400);
/// How long a day's lease hash is kept in Redis.
const DAY_KEY_MILLIS: u64 = 3 * 86_400_000;
/// Lifetime lease hashes: a year.
const LIFETIME_KEY_MILLIS: u64 = 366 * 86_400_000;

/// One budget's lease, atomically: `KEYS[1]` the lease hash, `KEYS[2]` the
/// recovery hash; `ARGV`: node, budget, want, spent, usage, billed, TTL
/// (ms), held (the node's current grant), known (its last known total of
/// all holds), fresh (`1` on a process's first renewal), key TTL (ms).
/// Returns the grant, the other nodes' billed total, the total of all
/// holds, whether a recovery is on, and (fresh: a process's first renewal
/// replaces the record of the node's previous run) what that run may still
/// have had in flight (its hold less its spend, while its lease lived) and
/// what its bids spent when other nodes billed them (its spend less what it
/// billed: its ledger does not hold it). The record written and the grant
/// asked for include both.
pub const LEASE: &str = r"
local node = 'n:' .. ARGV[1]
local budget, want = tonumber(ARGV[2]), tonumber(ARGV[3])
local spent, usage, billed = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ttl, held, known = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local fresh = ARGV[10] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function parse(v)
  local g, s, u, b, x = string.match(v, '^(%-?%d+),(%-?%d+),(%-?%d+),(%-?%d+),(%-?%d+)$')
  if not g then return nil end
  return tonumber(g), tonumber(s), tonumber(u), tonumber(b), tonumber(x)
end
local recovering = redis.call('EXISTS', KEYS[2]) == 1
local others, others_billed, mine = 0, 0, nil
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local f = fields[i]
  if f == node then
    mine = fields[i + 1]
  elseif string.sub(f, 1, 2) == 'n:' then
    local g, s, u, b, x = parse(fields[i + 1])
    if g then
      if x > now then others = others + math.max(g, u) else others = others + s end
      others_billed = others_billed + b
    end
  end
end
local floor = tonumber(redis.call('HGET', KEYS[1], '_floor')) or 0
local ghost = math.max(0, floor - (tonumber(redis.call('HGET', KEYS[1], '_re')) or 0))
local inherited, carried = 0, 0
if fresh and mine then
  local g, s, u, b, x = parse(mine)
  if g then
    carried = math.max(0, s - b)
    if x > now then inherited = math.max(0, math.max(g, u) - s) end
  end
end
local taken = inherited + carried
local grant
if recovering then
  grant = math.max(0, math.min(want, held))
  if not mine then
    redis.call('HINCRBY', KEYS[1], '_re', math.max(grant, usage))
    if known > floor then redis.call('HSET', KEYS[1], '_floor', known) end
  end
else
  grant = math.max(0, math.min(want + taken, budget - others - ghost))
end
redis.call('HSET', KEYS[1], node,
  string.format('%d,%d,%d,%d,%d', grant, spent + carried, usage + taken, billed, now + ttl))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[11]))
return {grant, others_billed, others + ghost + math.max(grant, usage + taken), recovering and 1 or 0, inherited, carried}
";

/// A node's round, before its leases in the same transaction: `KEYS[1]`
/// the epoch, `KEYS[2]` the nodes seen (id → ms), `KEYS[3]` the recovery
/// hash; `ARGV`: node, the epoch it knew (empty: none), recovery (ms),
/// peer window (ms), then the peers it saw. An epoch missing while the
/// node knew one means Redis lost its data: a recovery starts, waiting for
/// this node and those peers, each done once it comes knowing the new
/// epoch (in that round it re-asserts every budget it holds). Returns the epoch, whether a recovery is on, and the nodes
/// seen within the peer window.
pub const ROUND: &str = r"
local node = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('GET', KEYS[1])
local start = false
if not epoch then
  epoch = string.format('%d', now) .. '/' .. node
  redis.call('SET', KEYS[1], epoch)
  start = ARGV[2] ~= ''
elseif ARGV[2] ~= '' and ARGV[2] ~= epoch and redis.call('HEXISTS', KEYS[2], node) == 0
    and redis.call('EXISTS', KEYS[3]) == 0 then
  start = true
end
if start then
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[3], '_until', now + tonumber(ARGV[3]))
  redis.call('HSET', KEYS[3], node, '1')
  for i = 5, #ARGV do redis.call('HSET', KEYS[3], ARGV[i], '1') end
end
redis.call('HSET', KEYS[2], node, now)
local recovering = 0
if redis.call('EXISTS', KEYS[3]) == 1 then
  if ARGV[2] == epoch then redis.call('HDEL', KEYS[3], node) end
  local ends = tonumber(redis.call('HGET', KEYS[3], '_until')) or 0
  if now >= ends or redis.call('HLEN', KEYS[3]) <= 1 then
    redis.call('DEL', KEYS[3])
  else
    recovering = 1
  end
end
local out = {epoch, recovering}
local seen = redis.call('HGETALL', KEYS[2])
for i = 1, #seen, 2 do
  if now - tonumber(seen[i + 1]) <= tonumber(ARGV[4]) then
    table.insert(out, seen[i])
  else
    redis.call('HDEL', KEYS[2], seen[i])
  end
end
return out
";

/// Which limit a lease is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// A campaign's budget for its local day.
    Daily,
    /// A campaign's lifetime budget.
    Lifetime,
    /// An advertiser's daily budget.
    Advertiser,
}

/// What this node knows of one lease.
#[derive(Debug)]
struct Slot {
    /// The grant Redis holds for this node (as far as it knows).
    grant: Micros,
    /// Local day of the grant (daily kinds).
    day: i64,
    /// Usage at the last round and when.
    last_usage: Micros,
    last_at: Option<Instant>,
    /// Recent usage rate, micros per second (smoothed).
    rate: f64,
    renewed_at: Option<Instant>,
    /// Last successful renewal (the local cap stops counting after it by
    /// the validity).
    confirmed_at: Option<Instant>,
    /// The total of all holds at the last renewal.
    known_total: Micros,
    /// The other nodes' billed total at the last renewal.
    others_billed: Micros,
    /// The slice asked for last (beyond the usage).
    slice: Micros,
    /// The last renewal granted less than asked for one impression: the
    /// budget is used up, ask again only with the reports.
    refused: bool,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            grant: Micros::ZERO,
            day: i64::MIN,
            last_usage: Micros::ZERO,
            last_at: None,
            rate: 0.0,
            renewed_at: None,
            confirmed_at: None,
            known_total: Micros::ZERO,
            others_billed: Micros::ZERO,
            slice: Micros::ZERO,
            refused: false,
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Default)]
struct Stats {
    rounds: AtomicU64,
    renewals: AtomicU64,
    refusals: AtomicU64,
    failures: AtomicU64,
    recovering: AtomicI64,
    redis_up: AtomicI64,
}

/// Where the cluster stands, as this node saw it last.
#[derive(Debug, Default)]
struct View {
    epoch: String,
    peers: Vec<String>,
    /// Redis lost the leases: the next round re-asserts every budget.
    reassert: bool,
}

/// One budget this round: its key, figures and what it covers.
struct Budget {
    key: String,
    kind: Kind,
    /// The campaign or advertiser id.
    owner: String,
    day: i64,
    budget: Micros,
    min_slice: Micros,
    spent: Micros,
    usage: Micros,
    billed: Micros,
}

/// The leases of this node.
pub struct Leases {
    node: Arc<Node>,
    world: Arc<ArcSwap<World>>,
    clock: Arc<dyn Clock>,
    slots: Mutex<HashMap<String, Slot>>,
    view: Mutex<View>,
    stats: Stats,
    lease: redis::Script,
    round: redis::Script,
    /// Set once the grants were given back: no more rounds.
    stopped: std::sync::atomic::AtomicBool,
}

/// The reply of [`LEASE`].
type LeaseReply = (i64, i64, i64, i64, i64, i64);

impl Leases {
    /// The leases of `node` over the budgets of `world`. Until its first
    /// round, the node holds nothing (the live states start capped at
    /// zero: `LiveStates::lease_all`).
    pub fn new(node: Arc<Node>, world: Arc<ArcSwap<World>>, clock: Arc<dyn Clock>) -> Leases {
        Leases {
            node,
            world,
            clock,
            slots: Mutex::new(HashMap::new()),
            view: Mutex::new(View::default()),
            stats: Stats::default(),
            lease: redis::Script::new(LEASE),
            round: redis::Script::new(ROUND),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// How long a lease lives after its last renewal: twice the longest
    /// notice window plus a minute.
    pub fn ttl(&self) -> Duration {
        self.window() * 2 + Duration::from_secs(60)
    }

    /// The longest notice window of the configured exchanges.
    fn window(&self) -> Duration {
        let world = self.world.load();
        world
            .settings
            .exchanges
            .iter()
            .map(|e| e.notice_window)
            .max()
            .unwrap_or(Duration::from_secs(900))
    }

    /// How long after its last renewal a grant may still be spent: until
    /// the reservations made under it would outlive the lease.
    fn validity(&self) -> Duration {
        self.ttl().saturating_sub(self.window() + Duration::from_secs(30))
    }

    /// Renews what is due — looking every [`CHECK_EVERY`], a round at
    /// least every [`ROUND_EVERY`] — until the grants are given back.
    pub async fn run(self: Arc<Self>) {
        let mut every = tokio::time::interval(CHECK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<Instant> = None;
        while !self.stopped.load(Ordering::Acquire) {
            every.tick().await;
            if self.stopped.load(Ordering::Acquire) {
                break;
            }
            let heartbeat = last.is_none_or(|at| at.elapsed() >= ROUND_EVERY);
            if self.round_once(false, heartbeat).await {
                last = Some(Instant::now());
            }
        }
    }

    /// The first round, before the node serves: every budget gets its
    /// first slice (false when Redis did not answer; the node then starts
    /// with nothing to spend and [`Leases::run`] keeps asking).
    pub async fn first_round(&self) -> bool {
        self.round_once(false, true).await
    }

    /// Gives every grant back down to the node's usage (shutdown): the
    /// local caps first, then one round; no round follows.
    pub async fn give_back(&self) {
        self.stopped.store(true, Ordering::Release);
        self.round_once(true, true).await;
    }

    /// Every budget of the current world, with this node's figures.
    fn budgets(&self) -> Vec<Budget> {
        let now = self.clock.now();
        let world = self.world.load();
        let mut budgets = Vec::new();
        let mut advertiser_slice: HashMap<&str, Micros> = HashMap::new();
        {
            let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            for c in &world.campaigns {
                let unit = impression_cost(c.campaign.max_bid);
                let slice = advertiser_slice.entry(c.campaign.advertiser.as_str()).or_default();
                *slice = (*slice).max(unit);
                if c.campaign.status == Status::Active {
                    self.campaign_budgets(c, now, &slots, &mut budgets);
                }
            }
        }
        for a in &world.contact.advertisers {
            let Some(budget) = a.rules.daily_budget else { continue };
            let spend = &a.state.spend;
            let today = a.local_day(now);
            let spent = spend.spent(today).saturating_add(spend.elsewhere(today));
            budgets.push(Budget {
                key: self.node.key(&["lease", "a", &a.id, &today.to_string()]),
                kind: Kind::Advertiser,
                owner: a.id.clone(),
                day: today,
                budget,
                min_slice: advertiser_slice.get(a.id.as_str()).copied().unwrap_or(Micros(1)),
                spent,
                usage: spent.saturating_add(spend.outstanding()),
                billed: spend.spent(today),
            });
        }
        budgets
    }

    /// A campaign's daily budget and, if it has one, its lifetime budget.
    /// The day's budget follows from the cluster's spend before today
    /// (this node's and the others' as their lifetime leases report it).
    fn campaign_budgets(
        &self,
        c: &crate::live::LiveCampaign,
        now: jiff::Timestamp,
        slots: &HashMap<String, Slot>,
        budgets: &mut Vec<Budget>,
    ) {
        let campaign = &c.campaign;
        let unit = impression_cost(campaign.max_bid);
        let spend = &c.state.spend;
        let today = crate::clock::local_day(now, &campaign.time_zone);
        let spent_today = spend.spent(today);
        let elsewhere = spend.elsewhere(today);
        let outstanding = spend.outstanding();
        let rule = campaign.day_budget();
        let mut before = Micros::ZERO;
        if let Some(total) = rule.total {
            let key = self.node.key(&["lease", "t", &campaign.id]);
            let others = slots.get(&key).map_or(Micros::ZERO, |s| s.others_billed);
            before = spend.spent_before(today).saturating_add(others);
            let lifetime = spend.lifetime_spent().saturating_add(elsewhere);
            budgets.push(Budget {
                key,
                kind: Kind::Lifetime,
                owner: campaign.id.clone(),
                day: today,
                budget: total,
                min_slice: unit,
                spent: lifetime,
                usage: lifetime.saturating_add(outstanding),
                billed: spend.spent_before(today),
            });
        }
        let spent = spent_today.saturating_add(elsewhere);
        budgets.push(Budget {
            key: self.node.key(&["lease", "c", &campaign.id, &today.to_string()]),
            kind: Kind::Daily,
            owner: campaign.id.clone(),
            day: today,
            budget: rule.on(today, before),
            min_slice: unit,
            spent,
            usage: spent.saturating_add(outstanding),
            billed: spent_today,
        });
    }

    /// The slice `budget` asks for beyond its usage: [`SLICE_SECS`] of its
    /// rate, at least one impression, and [`GROWTH`] times the last slice
    /// when the whole grant was used (the rate, held back by the grant,
    /// understates the demand).
    fn slice(slot: &Slot, budget: &Budget) -> Micros {
        let mut slice = Micros((slot.rate * SLICE_SECS) as i64).max(budget.min_slice);
        if slot.renewed_at.is_none() {
            // No rate known yet (a node starting, a new day or budget):
            // a share of the budget, so that the node bids at once; an
            // idle node gives it back at its next report.
            slice = slice.max(Micros(budget.budget.0 / FIRST_SLICE_SHARE));
        }
        if !slot.refused && slot.renewed_at.is_some() && budget.usage >= slot.grant {
            slice = slice.max(Micros(slot.slice.0.saturating_mul(GROWTH)));
        }
        slice
    }

    /// Whether `budget` must be renewed this round.
    fn due(slot: &Slot, budget: &Budget, now: Instant) -> bool {
        let Some(renewed) = slot.renewed_at else { return true };
        if slot.day != budget.day || now.duration_since(renewed) >= REPORT_EVERY {
            return true;
        }
        let lead = Micros((slot.rate * LEAD_SECS) as i64).max(budget.min_slice);
        !slot.refused && slot.grant.saturating_sub(budget.usage) < lead
    }

    /// One round: updates rates, renews every owner with a budget due (all
    /// of an owner's budgets together), sets the local caps. `returning`:
    /// every budget, asking for its usage only (shutdown).
    async fn round_once(&self, returning: bool, heartbeat: bool) -> bool {
        let budgets = self.budgets();
        let (due, wants) = self.plan(&budgets, returning);
        if due.is_empty() && !heartbeat {
            return false;
        }
        self.apply_caps(&budgets);
        self.stats.rounds.fetch_add(1, Ordering::Relaxed);
        let due: Vec<&Budget> = due.into_iter().map(|i| &budgets[i]).collect();
        match tokio::time::timeout(ROUND_TIMEOUT, self.send(&due, &wants)).await {
            Ok(Ok(replies)) => {
                self.stats.redis_up.store(1, Ordering::Relaxed);
                self.record(&due, &wants, &replies, returning);
            }
            Ok(Err(e)) => self.failed(&e.to_string()),
            Err(_) => self.failed("timed out"),
        }
        self.apply_caps(&budgets);
        true
    }

    /// Updates each budget's rate and picks those due (by position), with
    /// what each asks for. A grant not confirmed within the validity no
    /// longer counts; one that shrinks is lowered here first, so that the
    /// local cap never exceeds what Redis holds for this node.
    fn plan(&self, budgets: &[Budget], returning: bool) -> (Vec<usize>, Vec<Micros>) {
        let now = Instant::now();
        let validity = self.validity();
        let reassert = self.view.lock().unwrap_or_else(|p| p.into_inner()).reassert;
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut due_owners: Vec<(Kind, &str)> = Vec::new();
        for b in budgets {
            let slot = slots.entry(b.key.clone()).or_default();
            if let Some(at) = slot.last_at {
                let secs = now.duration_since(at).as_secs_f64().max(0.001);
                let grown = (b.usage.0 - slot.last_usage.0).max(0) as f64 / secs;
                slot.rate = 0.7 * slot.rate + 0.3 * grown;
            }
            slot.last_usage = b.usage;
            slot.last_at = Some(now);
            if slot.confirmed_at.is_some_and(|at| now.duration_since(at) > validity) {
                slot.grant = Micros::ZERO;
            }
            let owner = (owner_kind(b.kind), b.owner.as_str());
            if (returning || reassert || Self::due(slot, b, now)) && !due_owners.contains(&owner) {
                due_owners.push(owner);
            }
        }
        // Leases of past days (and of campaigns gone) are forgotten after
        // two days unseen.
        slots.retain(|_, s| s.last_at.is_none_or(|at| now.duration_since(at) < FORGET_AFTER));
        let mut due = Vec::new();
        let mut wants = Vec::new();
        for (i, b) in budgets.iter().enumerate() {
            if !due_owners.contains(&(owner_kind(b.kind), b.owner.as_str())) {
                continue;
            }
            let slot = slots.entry(b.key.clone()).or_default();
            let slice = Self::slice(slot, b);
            let want = if returning {
                b.usage
            } else {
                b.usage.saturating_add(slice)
            };
            slot.slice = slice;
            slot.grant = if slot.day == b.day {
                slot.grant.min(want)
            } else {
                Micros::ZERO
            };
            due.push(i);
            wants.push(want);
        }
        (due, wants)
    }

    /// Notes what Redis granted.
    fn record(&self, due: &[&Budget], wants: &[Micros], replies: &[LeaseReply], returning: bool) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let done = Instant::now();
        for ((b, want), reply) in due.iter().zip(wants).zip(replies) {
            let (grant, others_billed, total, recovering, inherited, carried) = *reply;
            let slot = slots.entry(b.key.clone()).or_default();
            let first = slot.renewed_at.is_none();
            slot.grant = Micros(grant);
            slot.day = b.day;
            slot.renewed_at = Some(done);
            slot.confirmed_at = Some(done);
            slot.known_total = Micros(total);
            slot.others_billed = Micros(others_billed);
            self.stats.renewals.fetch_add(1, Ordering::Relaxed);
            slot.refused = !returning && Micros(grant) < (*want).min(b.usage.saturating_add(b.min_slice));
            if slot.refused {
                self.stats.refusals.fetch_add(1, Ordering::Relaxed);
            }
            self.stats.recovering.store(recovering, Ordering::Relaxed);
            if first && (inherited > 0 || carried > 0) && b.kind != Kind::Lifetime {
                self.inherit(b, Micros(inherited), Micros(carried));
            }
        }
    }

    /// A round that could not reach Redis: the grants stay (until their
    /// validity runs out).
    fn failed(&self, why: &str) {
        if self.stats.redis_up.swap(0, Ordering::Relaxed) != 0 {
            tracing::warn!(
                error = why,
                "budget leases cannot be renewed: spending within what this node holds"
            );
        }
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes over what the previous run of this node left in its record:
    /// `inherited`, what it may still have had in flight, is held until its
    /// notices can no longer be charged; `spent_elsewhere`, what its bids
    /// spent when other nodes billed them, counts as this run's spend
    /// elsewhere for the rest of the day (see [`take_back`]). A lifetime
    /// budget shares the daily budget's `DailySpend`: taken there.
    fn inherit(&self, b: &Budget, inherited: Micros, spent_elsewhere: Micros) {
        let until = self.clock.now().as_second() + self.window().as_secs() as i64;
        let world = self.world.load();
        let spend = match b.kind {
            Kind::Advertiser => world.contact.advertiser(&b.owner).map(|a| &a.state.spend),
            _ => world.campaign_by_id(&b.owner).map(|c| &c.state.spend),
        };
        if let Some(spend) = spend {
            take_back(spend, b.day, inherited, spent_elsewhere, expiry_minute(until));
            tracing::info!(
                budget = %b.key,
                micros = inherited.0,
                elsewhere = spent_elsewhere.0,
                "holding what this node's previous run had in flight or spent elsewhere"
            );
        }
    }

    /// Sets every budget's local cap from the slots: a campaign's is the
    /// smaller of its daily grant and what its lifetime grant leaves today.
    fn apply_caps(&self, budgets: &[Budget]) {
        let world = self.world.load();
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        for b in budgets {
            let Some(slot) = slots.get(&b.key) else { continue };
            match b.kind {
                Kind::Daily => {
                    let Some(c) = world.campaign_by_id(&b.owner) else {
                        continue;
                    };
                    let spend: &DailySpend = &c.state.spend;
                    let mut cap = if slot.day == b.day { slot.grant } else { Micros::ZERO };
                    if c.campaign.total_budget.is_some() {
                        let key = self.node.key(&["lease", "t", &b.owner]);
                        let lifetime = slots.get(&key).map_or(Micros::ZERO, |s| s.grant);
                        cap = cap.min(lifetime.saturating_sub(spend.spent_before(b.day)));
                    }
                    spend.set_cap(b.day, cap);
                    spend.set_others_spent(b.day, slot.others_billed);
                }
                Kind::Advertiser => {
                    if let Some(a) = world.contact.advertiser(&b.owner) {
                        let state: &AdvertiserState = &a.state;
                        let cap = if slot.day == b.day { slot.grant } else { Micros::ZERO };
                        state.spend.set_cap(b.day, cap);
                        state.spend.set_others_spent(b.day, slot.others_billed);
                    }
                }
                Kind::Lifetime => {}
            }
        }
    }

    /// Sends one atomic pipeline: the round script, then one lease per
    /// budget due. Loads the scripts and tries again when Redis lost them.
    async fn send(&self, due: &[&Budget], wants: &[Micros]) -> redis::RedisResult<Vec<LeaseReply>> {
        match self.send_once(due, wants).await {
            Err(e) if is_noscript(&e) => {
                let mut redis = self.node.redis(Purpose::Lease);
                self.lease.prepare_invoke().load_async(&mut redis).await?;
                self.round.prepare_invoke().load_async(&mut redis).await?;
                self.send_once(due, wants).await
            }
            other => other,
        }
    }

    async fn send_once(&self, due: &[&Budget], wants: &[Micros]) -> redis::RedisResult<Vec<LeaseReply>> {
        let pipe = self.pipeline(due, wants);
        let mut redis = self.node.redis(Purpose::Lease);
        let mut values: Vec<redis::Value> = pipe.query_async(&mut redis).await?;
        if values.is_empty() {
            return Err(redis::RedisError::from((redis::ErrorKind::Client, "empty reply")));
        }
        let rest = values.split_off(1);
        self.note_round(values.remove(0))?;
        rest.into_iter()
            .map(|v| redis::from_redis_value(v).map_err(redis::RedisError::from))
            .collect()
    }

    /// The round's transaction: [`ROUND`], then [`LEASE`] per budget due.
    fn pipeline(&self, due: &[&Budget], wants: &[Micros]) -> redis::Pipeline {
        let (epoch, peers) = {
            let view = self.view.lock().unwrap_or_else(|p| p.into_inner());
            (view.epoch.clone(), view.peers.clone())
        };
        let ttl = self.ttl().as_millis() as u64;
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut round = self.round.prepare_invoke();
        round
            .key(self.node.key(&["lease", "epoch"]))
            .key(self.node.key(&["lease", "seen"]))
            .key(self.node.key(&["lease", "recovery"]))
            .arg(&self.node.id)
            .arg(&epoch)
            .arg(RECOVERY.as_millis() as u64)
            .arg(PEER_WINDOW.as_millis() as u64);
        for peer in &peers {
            round.arg(peer);
        }
        pipe.invoke_script(&round);
        let recovery_key = self.node.key(&["lease", "recovery"]);
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        for (b, want) in due.iter().zip(wants) {
            let slot = slots.get(&b.key);
            let mut lease = self.lease.prepare_invoke();
            lease
                .key(&b.key)
                .key(&recovery_key)
                .arg(&self.node.id)
                .arg(b.budget.0)
                .arg(want.0)
                .arg(b.spent.0)
                .arg(b.usage.0)
                .arg(b.billed.0)
                .arg(ttl)
                .arg(slot.map_or(0, |s| s.grant.0))
                .arg(slot.map_or(0, |s| s.known_total.0))
                .arg(if slot.is_none_or(|s| s.renewed_at.is_none()) {
                    "1"
                } else {
                    "0"
                })
                .arg(if b.kind == Kind::Lifetime {
                    LIFETIME_KEY_MILLIS
                } else {
                    DAY_KEY_MILLIS
                });
            pipe.invoke_script(&lease);
        }
        pipe
    }

    /// Notes the epoch, the recovery and the peers [`ROUND`] returned.
    fn note_round(&self, reply: redis::Value) -> redis::RedisResult<()> {
        let mut parts: Vec<redis::Value> = redis::from_redis_value(reply)?;
        if parts.len() < 2 {
            return Err(redis::RedisError::from((redis::ErrorKind::Client, "short round reply")));
        }
        let seen: Vec<String> = parts
            .split_off(2)
            .into_iter()
            .filter_map(|v| redis::from_redis_value(v).ok())
            .collect();
        let recovering: i64 = redis::from_redis_value(parts.pop().unwrap_or(redis::Value::Nil))?;
        let epoch: String = redis::from_redis_value(parts.pop().unwrap_or(redis::Value::Nil))?;
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        if !view.epoch.is_empty() && view.epoch != epoch {
            tracing::warn!(
                before = %view.epoch,
                now = %epoch,
                "Redis lost the leases (restarted empty?): re-asserting what this node holds"
            );
        }
        view.reassert = !view.epoch.is_empty() && view.epoch != epoch;
        view.epoch = epoch;
        view.peers = seen;
        self.stats.recovering.store(recovering, Ordering::Relaxed);
        Ok(())
    }

    /// The leases' metrics, in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let s = &self.stats;
        let counters = [
            ("lease_rounds", "Lease rounds (one round trip each)", &s.rounds),
            ("lease_renewals", "Budget leases renewed", &s.renewals),
            (
                "lease_refusals",
                "Lease renewals granted less than one impression beyond the node's usage",
                &s.refusals,
            ),
            ("lease_failures", "Lease rounds that could not reach Redis", &s.failures),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP bullseye_{name} {help}.\n# TYPE bullseye_{name} counter\nbullseye_{name}_total {}",
                value.load(Ordering::Relaxed)
            );
        }
        let gauges = [
            (
                "lease_recovering",
                "1 while the cluster recovers from a Redis restart",
                s.recovering.load(Ordering::Relaxed),
            ),
            (
                "lease_redis_up",
                "1 when the last lease round reached Redis",
                s.redis_up.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP bullseye_{name} {help}.\n# TYPE bullseye_{name} gauge\nbullseye_{name} {value}"
            );
        }
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut held: Vec<(&String, &Slot)> = slots.iter().filter(|(_, s)| s.renewed_at.is_some()).collect();
        held.sort_by(|a, b| a.0.cmp(b.0));
        out.push_str(
            "# HELP bullseye_lease_granted_micros What this node holds of each budget (micros).\n\
             # TYPE bullseye_lease_granted_micros gauge\n",
        );
        for (key, slot) in held {
            let budget = key.strip_prefix(&self.node.key(&["lease", ""])).unwrap_or(key);
            let _ = writeln!(
                out,
                "bullseye_lease_granted_micros{{budget=\"{}\"}} {}",
                budget.replace('\\', "\\\\").replace('"', "\\\""),
                slot.grant.0
            );
        }
        out
    }
}

/// A restarted node takes back, on `day`, what its previous run left in
/// its lease record: `inherited` (possibly in flight) is held as
/// outstanding until the start of minute `expires`, and `spent_elsewhere`
/// (its bids billed by other nodes, which its ledger does not hold) counts
/// as settled elsewhere, so that this run's cap, usage and reports keep
/// counting both.
fn take_back(spend: &DailySpend, day: i64, inherited: Micros, spent_elsewhere: Micros, expires: i64) {
    spend.hold(inherited, expires);
    spend.settled_elsewhere(day, spent_elsewhere);
}

/// Budgets of one owner renew together (a campaign's daily and lifetime
/// budgets make one cap).
fn owner_kind(kind: Kind) -> Kind {
    match kind {
        Kind::Lifetime => Kind::Daily,
        other => other,
    }
}

fn is_noscript(e: &redis::RedisError) -> bool {
    e.code() == Some("NOSCRIPT") || e.to_string().contains("NOSCRIPT")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A restarted node whose previous run's bids were billed elsewhere
    /// (45 500, from its lease record) and which may have had 3 500 in
    /// flight counts both against the grant that covers them: one more
    /// impression of room, not 49 000.
    #[test]
    fn what_a_previous_run_left_counts_against_the_new_grant() {
        let spend = DailySpend::default();
        spend.cap_if_uncapped();
        let budget = Micros(50_000);
        spend.add(5, Micros(3_500)); // restored from its ledger
        take_back(&spend, 5, Micros(3_500), Micros(45_500), 100);
        assert_eq!(spend.outstanding(), Micros(3_500), "held");
        assert_eq!(spend.elsewhere(5), Micros(45_500), "spent elsewhere");
        // Asked for usage (3 500) + one slice (3 500) + what it took over.
        spend.set_cap(5, Micros(56_000));
        assert!(spend.try_reserve(5, budget, Micros(3_500), 100), "one slice of room");
        assert!(!spend.try_reserve(5, budget, Micros(3_500), 100));
        spend.expire(100);
        assert_eq!(spend.outstanding(), Micros::ZERO, "held for the notice window only");
        assert_eq!(spend.elsewhere(5), Micros(45_500), "spend elsewhere stays for the day");
        spend.add(6, Micros::ZERO);
        assert_eq!(spend.elsewhere(6), Micros::ZERO, "a new day");
    }
}
