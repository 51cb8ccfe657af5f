//! Exactly-once billing across nodes: [`Shared`], the Redis-backed
//! [`SharedState`], over this node's [`Embedded`] state as its local cache.
//!
//! A notice, pixel, click or conversion may reach any node: its signed URL
//! carries everything needed to bill it. Before the tracker records an
//! event it claims the (bid, event) key here, and the claim goes to Redis:
//!
//! - **claim**: `SET bullseye:claim:{key} "{tag} p {filtered} {clearing}
//!   {at}" NX GET PX 30000` — one command that either takes the claim
//!   (pending, for [`PENDING_TTL_MS`]: a node that dies mid-write does not
//!   block the event for long) or returns the claim that holds it. Another
//!   node's claim is a duplicate: durable, it is acknowledged (and cached
//!   here, since a durable claim never changes); pending, the tracker
//!   looks again after a pause and answers 503 with `Retry-After` past its
//!   wait, as for a duplicate of a local pending claim.
//! - **confirm**: once the record is durable in this node's ledger, a
//!   script rewrites the claim durable (`d`) for [`DURABLE_TTL_MS`] (the
//!   notice window and an hour) — unless another node holds it, which can
//!   only happen when this node's pending claim expired (a disk stalled for
//!   30 s) or was made while Redis was unreachable: a conflict, counted.
//! - **unclaim**: a record that could not be written gives its claim up
//!   (a script deletes it if it is still this node's pending claim).
//! - **claimed** (click judgement, CPC charges, conversion attribution,
//!   loss notices): the local claim if there is one, else `GET` (`MGET`
//!   for the pixel-or-billing-notice and win-or-billing-notice questions)
//!   — so a click at node B sees the pixel taken at node A.
//! - **count_once** / **uncount**: a bid's win and impression are counted
//!   once in reports, whichever node sees them first: `BITFIELD
//!   bullseye:counted:{bid} SET u1 #bit 1` returns the bits' old values
//!   atomically (with a `PEXPIRE` in the same round trip).
//!
//! **Redis unreachable.** Every call waits at most [`REDIS_TIMEOUT`]. A
//! claim that gets no answer in time is made locally: the event is
//! recorded and acknowledged (counted in `bullseye_cluster_claims_local_total`)
//! and its key goes to a backlog; from then on calls go local at once
//! (no waiting) while a background task pings Redis every
//! [`PROBE_EVERY`], and once Redis answers it writes the backlog (durable
//! claims, counted bits), counting those another node holds too
//! (`bullseye_cluster_claims_conflicts_total`). An event billed on two
//! nodes while Redis was away is in both ledgers; `bullseye report` over
//! every node's data directory counts it once (`ledger::report`).
//!
//! Claims restored from the ledger at start stay local, and are written
//! to Redis in the background too (`SET NX`: never over another claim),
//! for a Redis that restarted empty. The background task starts with the
//! first call made inside the runtime (a notice, or the tick's
//! `dedup_stats`), and ends when the state is dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use jiff::Timestamp;

use crate::live::shared::{Claim, ClaimOutcome, DedupStats, Pending};
use crate::live::{Embedded, SharedState};
use crate::metrics::ClaimMetrics;
use crate::tracking::notice::NOTICE_WINDOW_SECS;

use super::{Node, Purpose};

/// Longest wait for Redis on the tracking path; past it the event is
/// claimed locally.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a pending claim holds its event (a node that dies between
/// claim and confirm blocks its event's duplicates this long at most).
pub const PENDING_TTL_MS: u64 = 30_000;
/// How long a durable claim (and counted bits) is remembered: the notice
/// window and an hour.
pub const DURABLE_TTL_MS: u64 = (NOTICE_WINDOW_SECS as u64 + 3600) * 1000;
/// While Redis is unreachable, how often it is pinged.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// Most claims and counted bids waiting to be written to Redis; past it
/// the oldest are dropped (the report still deduplicates).
pub const MAX_BACKLOG: usize = 1_000_000;
/// Backlog entries written per round trip.
const BATCH: usize = 256;

/// Rewrites a claim durable unless another node holds it: `KEYS[1]` the
/// claim, `ARGV[1]` this node's tag and a space, `ARGV[2]` the durable
/// value, `ARGV[3]` its TTL (ms). 1 when written, 0 when another node's.
const CONFIRM: &str = r"
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

/// Deletes a claim if it is still this node's pending one: `ARGV[1]` the
/// tag and ` p `.
const UNCLAIM: &str = r"
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Something to write to Redis once it answers: a claim's key (its state
/// is read from the local cache then) or a counted bid; `restored` when it
/// was read from the ledger at start (held elsewhere is no news then).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backlog {
    Claim { key: u64, restored: bool },
    Counted { bid_key: u64, restored: bool },
}

/// A claim as Redis holds it: who holds it, and the [`Claim`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The holding node's tag.
    pub tag: String,
    /// The claim.
    pub claim: Claim,
}

/// `{tag} {p|d} {0|1 filtered} {clearing|-} {at micros}`.
pub fn encode(tag: &str, claim: &Claim) -> String {
    let state = if claim.durable { 'd' } else { 'p' };
    let clearing = claim.clearing.map_or_else(|| "-".to_string(), |c| c.to_string());
    format!(
        "{tag} {state} {} {clearing} {}",
        u8::from(claim.filtered),
        claim.at_micros
    )
}

/// Reads a value written by [`encode`]; `None` when it is not one.
pub fn decode(value: &str) -> Option<Held> {
    let mut parts = value.split(' ');
    let tag = parts.next()?.to_string();
    let durable = match parts.next()? {
        "d" => true,
        "p" => false,
        _ => return None,
    };
    let filtered = match parts.next()? {
        "1" => true,
        "0" => false,
        _ => return None,
    };
    let clearing = match parts.next()? {
        "-" => None,
        n => Some(n.parse().ok()?),
    };
    let at_micros = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(Held {
        tag,
        claim: Claim {
            at_micros,
            clearing,
            durable,
            filtered,
        },
    })
}

/// The `BITFIELD` arguments that set (`to` 1) or clear (0) `flags`' bits.
fn bitfield(key: &str, flags: u8, to: u8) -> redis::Cmd {
    let mut cmd = redis::cmd("BITFIELD");
    cmd.arg(key);
    for bit in (0..8).filter(|bit| flags & (1 << bit) != 0) {
        cmd.arg("SET").arg("u1").arg(format!("#{bit}")).arg(to);
    }
    cmd
}

/// The bits of `flags` whose old values (in `BITFIELD`'s order) were 0.
fn newly_set(flags: u8, old: &[u8]) -> u8 {
    (0..8)
        .filter(|bit| flags & (1 << bit) != 0)
        .zip(old)
        .filter(|(_, old)| **old == 0)
        .fold(0, |bits, (bit, _)| bits | (1 << bit))
}

/// The cluster's shared state: claims in Redis, this node's
/// [`Embedded`] as their local cache (see the module header).
pub struct Shared {
    inner: Arc<Inner>,
}

struct Inner {
    node: Arc<Node>,
    local: Embedded,
    /// False once Redis failed to answer in time, until a ping succeeds.
    up: AtomicBool,
    backlog: Mutex<VecDeque<Backlog>>,
    /// The background task (ping, backlog) has been started.
    started: AtomicBool,
    metrics: ClaimMetrics,
    confirm: redis::Script,
    unclaim: redis::Script,
}

impl Shared {
    /// Claims through `node`'s Redis over `local`, counting in `metrics`.
    pub fn new(node: Arc<Node>, local: Embedded, metrics: ClaimMetrics) -> Shared {
        metrics.redis_up.set(1);
        Shared {
            inner: Arc::new(Inner {
                node,
                local,
                up: AtomicBool::new(true),
                backlog: Mutex::new(VecDeque::new()),
                started: AtomicBool::new(false),
                metrics,
                confirm: redis::Script::new(CONFIRM),
                unclaim: redis::Script::new(UNCLAIM),
            }),
        }
    }

    /// Entries waiting to be written to Redis.
    pub fn backlog(&self) -> usize {
        self.inner.queue().len()
    }
}

impl Inner {
    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Backlog>> {
        self.backlog.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn claim_key(&self, key: u64) -> String {
        self.node.key(&["claim", &format!("{key:016x}")])
    }

    fn counted_key(&self, bid_key: u64) -> String {
        self.node.key(&["counted", &format!("{bid_key:016x}")])
    }

    /// Queues an entry for Redis (the oldest dropped at the bound).
    fn defer(&self, entry: Backlog) {
        let mut queue = self.queue();
        if queue.len() >= MAX_BACKLOG {
            queue.pop_front();
        }
        queue.push_back(entry);
        self.metrics.backlog.set(queue.len() as i64);
    }

    /// Runs one Redis round trip for `purpose` within [`REDIS_TIMEOUT`]:
    /// `None` at once while Redis is known unreachable, and when it fails
    /// or does not answer in time (then it is known unreachable).
    async fn ask<T, F>(&self, purpose: Purpose, call: impl FnOnce(redis::aio::ConnectionManager) -> F) -> Option<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        if !self.up.load(Ordering::Relaxed) {
            return None;
        }
        match tokio::time::timeout(REDIS_TIMEOUT, call(self.node.redis(purpose))).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(e)) => {
                self.went_down(&e.to_string());
                None
            }
            Err(_) => {
                self.went_down("no answer within 200 ms");
                None
            }
        }
    }

    fn went_down(&self, why: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            self.metrics.redis_up.set(0);
            tracing::warn!(
                error = why,
                "Redis unreachable: notices are claimed on this node alone until it answers"
            );
        }
    }

    /// Takes `key` for this node in Redis (its local claim is held).
    async fn claim(&self, key: u64, claim: Claim) -> ClaimOutcome {
        let value = encode(&self.node.tag, &claim);
        let redis_key = self.claim_key(key);
        let held: Option<Option<String>> = self
            .ask(Purpose::Claim, |mut redis| async move {
                redis::cmd("SET")
                    .arg(&redis_key)
                    .arg(&value)
                    .arg("NX")
                    .arg("GET")
                    .arg("PX")
                    .arg(PENDING_TTL_MS)
                    .query_async(&mut redis)
                    .await
            })
            .await;
        let Some(held) = held else {
            self.metrics.local.inc();
            self.defer(Backlog::Claim { key, restored: false });
            return ClaimOutcome::Claimed;
        };
        let Some(held) = held else {
            return ClaimOutcome::Claimed;
        };
        match decode(&held) {
            // This node's own claim, from before a restart or a timeout:
            // nobody else records it.
            Some(h) if h.tag == self.node.tag && !h.claim.durable => ClaimOutcome::Claimed,
            Some(h) => {
                self.local.unclaim_here(key);
                if h.claim.durable {
                    self.local.hold(key, h.claim);
                }
                ClaimOutcome::Taken
            }
            None => {
                self.local.unclaim_here(key);
                ClaimOutcome::Taken
            }
        }
    }

    /// The claim on `key`: the local one, else Redis's (cached once durable).
    async fn claimed(&self, key: u64) -> Option<Claim> {
        if let Some(claim) = self.local.claimed_here(key) {
            return Some(claim);
        }
        let redis_key = self.claim_key(key);
        let held: Option<String> = self
            .ask(Purpose::Claim, |mut redis| async move {
                redis::cmd("GET").arg(&redis_key).query_async(&mut redis).await
            })
            .await
            .flatten();
        let held = decode(&held?)?;
        if held.claim.durable {
            self.local.hold(key, held.claim);
        }
        Some(held.claim)
    }

    /// The claim on the first of `keys` that has one: the local ones, else
    /// Redis's in one `MGET`.
    async fn claimed_first(&self, keys: &[u64]) -> Option<Claim> {
        if let Some(claim) = keys.iter().find_map(|&key| self.local.claimed_here(key)) {
            return Some(claim);
        }
        let redis_keys: Vec<String> = keys.iter().map(|&key| self.claim_key(key)).collect();
        let held: Vec<Option<String>> = self
            .ask(Purpose::Claim, |mut redis| async move {
                redis::cmd("MGET").arg(&redis_keys).query_async(&mut redis).await
            })
            .await?;
        let (key, held) = keys
            .iter()
            .zip(held)
            .find_map(|(&key, held)| Some((key, decode(&held?)?)))?;
        if held.claim.durable {
            self.local.hold(key, held.claim);
        }
        Some(held.claim)
    }

    /// Rewrites this node's claim on `key` durable in Redis.
    async fn confirm(&self, key: u64) {
        let Some(claim) = self.local.claimed_here(key).filter(|c| c.durable) else {
            return;
        };
        let redis_key = self.claim_key(key);
        let tag = format!("{} ", self.node.tag);
        let value = encode(&self.node.tag, &claim);
        let written: Option<i64> = self
            .ask(Purpose::Claim, |mut redis| async move {
                self.confirm
                    .key(&redis_key)
                    .arg(&tag)
                    .arg(&value)
                    .arg(DURABLE_TTL_MS)
                    .invoke_async(&mut redis)
                    .await
            })
            .await;
        match written {
            None => self.defer(Backlog::Claim { key, restored: false }),
            Some(0) => self.conflict(key),
            Some(_) => {}
        }
    }

    fn conflict(&self, key: u64) {
        self.metrics.conflicts.inc();
        tracing::warn!(
            key = format!("{key:016x}"),
            "an event recorded here was claimed by another node too (Redis unreachable or a claim expired): \
             the merged report counts it once"
        );
    }

    async fn unclaim(&self, key: u64) {
        let redis_key = self.claim_key(key);
        let pending = format!("{} p ", self.node.tag);
        let _: Option<i64> = self
            .ask(Purpose::Claim, |mut redis| async move {
                self.unclaim
                    .key(&redis_key)
                    .arg(&pending)
                    .invoke_async(&mut redis)
                    .await
            })
            .await;
    }

    /// Sets `flags` (counted here first) in Redis: the bits this call set
    /// cluster-wide.
    async fn count(&self, bid_key: u64, flags: u8) -> u8 {
        let redis_key = self.counted_key(bid_key);
        let old: Option<(Vec<u8>,)> = self
            .ask(Purpose::Claim, |mut redis| async move {
                redis::pipe()
                    .add_command(bitfield(&redis_key, flags, 1))
                    .cmd("PEXPIRE")
                    .arg(&redis_key)
                    .arg(DURABLE_TTL_MS)
                    .ignore()
                    .query_async(&mut redis)
                    .await
            })
            .await;
        match old {
            Some((old,)) => newly_set(flags, &old),
            None => {
                self.defer(Backlog::Counted {
                    bid_key,
                    restored: false,
                });
                flags
            }
        }
    }

    async fn uncount(&self, bid_key: u64, flags: u8) {
        let redis_key = self.counted_key(bid_key);
        let _: Option<redis::Value> = self
            .ask(Purpose::Claim, |mut redis| async move {
                bitfield(&redis_key, flags, 0).query_async(&mut redis).await
            })
            .await;
    }

    /// Starts the background task once, inside a runtime.
    fn start(self: &Arc<Self>) {
        if self.started.load(Ordering::Relaxed) || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if self.started.swap(true, Ordering::Relaxed) {
            return;
        }
        tokio::spawn(background(Arc::downgrade(self)));
    }

    /// Pings Redis; true (and marked up) when it answers.
    async fn probe(&self) -> bool {
        let mut redis = self.node.redis(Purpose::Claim);
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut redis);
        let answered = matches!(tokio::time::timeout(REDIS_TIMEOUT, ping).await, Ok(Ok(_)));
        if answered && !self.up.swap(true, Ordering::Relaxed) {
            self.metrics.redis_up.set(1);
            tracing::info!(
                backlog = self.queue().len(),
                "Redis answers again: writing local claims to it"
            );
        }
        answered
    }

    /// Writes one batch of the backlog; false when Redis did not take it
    /// (the batch is queued again).
    async fn drain_batch(&self) -> bool {
        let batch: Vec<Backlog> = {
            let mut queue = self.queue();
            let n = queue.len().min(BATCH);
            queue.drain(..n).collect()
        };
        let mut later = Vec::new();
        let (pipe, sent) = self.batch_commands(&batch, &mut later);
        let answers: Option<Vec<redis::Value>> = if sent.is_empty() {
            Some(Vec::new())
        } else {
            let pipe = &pipe;
            self.ask(
                Purpose::Claim,
                |mut redis| async move { pipe.query_async(&mut redis).await },
            )
            .await
        };
        let Some(answers) = answers else {
            let mut queue = self.queue();
            for entry in batch.into_iter().rev() {
                queue.push_front(entry);
            }
            return false;
        };
        let mut overwrite = Vec::new();
        for ((entry, claim), answer) in sent.into_iter().zip(answers) {
            self.reconciled(entry, claim, answer, &mut overwrite);
        }
        self.overwrite(overwrite).await;
        let mut queue = self.queue();
        queue.extend(later);
        self.metrics.backlog.set(queue.len() as i64);
        true
    }

    /// The commands that write `batch`: `SET NX GET` per durable claim
    /// (one still being written goes to `later`), `BITFIELD` and
    /// `PEXPIRE` per counted bid; and what each answer is for.
    fn batch_commands(
        &self,
        batch: &[Backlog],
        later: &mut Vec<Backlog>,
    ) -> (redis::Pipeline, Vec<(Backlog, Option<Claim>)>) {
        let mut pipe = redis::pipe();
        let mut sent = Vec::new();
        for &entry in batch {
            match entry {
                Backlog::Claim { key, .. } => match self.local.claimed_here(key) {
                    Some(claim) if !claim.durable => later.push(entry),
                    Some(claim) => {
                        pipe.cmd("SET")
                            .arg(self.claim_key(key))
                            .arg(encode(&self.node.tag, &claim))
                            .arg("NX")
                            .arg("GET")
                            .arg("PX")
                            .arg(DURABLE_TTL_MS);
                        sent.push((entry, Some(claim)));
                    }
                    // Given up (its record failed), or forgotten.
                    None => {}
                },
                Backlog::Counted { bid_key, .. } => {
                    let bits = self.local.counted_here(bid_key);
                    if bits == 0 {
                        continue;
                    }
                    let key = self.counted_key(bid_key);
                    pipe.add_command(bitfield(&key, bits, 1));
                    pipe.cmd("PEXPIRE").arg(&key).arg(DURABLE_TTL_MS).ignore();
                    sent.push((entry, None));
                }
            }
        }
        (pipe, sent)
    }

    /// What Redis said to one backlog entry: a claim another node holds,
    /// or bits another node counted, is a conflict (unless restored from
    /// the ledger: then it was counted when it happened); this node's own
    /// pending claim (a `SET` that reached Redis after its timeout) is
    /// rewritten durable.
    fn reconciled(
        &self,
        entry: Backlog,
        claim: Option<Claim>,
        answer: redis::Value,
        overwrite: &mut Vec<(u64, Claim)>,
    ) {
        match (entry, claim) {
            (Backlog::Claim { key, restored }, Some(claim)) => {
                let held: Option<String> = redis::from_redis_value(answer).unwrap_or(None);
                match held.as_deref().map(decode) {
                    None => {}
                    Some(Some(h)) if h.tag == self.node.tag && !h.claim.durable => overwrite.push((key, claim)),
                    Some(Some(h)) if h.tag == self.node.tag => {}
                    Some(_) if restored => {}
                    Some(_) => self.conflict(key),
                }
            }
            (Backlog::Counted { bid_key, restored }, _) => {
                let old: Vec<u8> = redis::from_redis_value(answer).unwrap_or_default();
                if old.contains(&1) && !restored {
                    self.metrics.conflicts.inc();
                    tracing::debug!(bid = format!("{bid_key:016x}"), "a bid counted on two nodes");
                }
            }
            (Backlog::Claim { .. }, None) => {}
        }
    }

    /// Rewrites this node's own pending claims durable.
    async fn overwrite(&self, claims: Vec<(u64, Claim)>) {
        if claims.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (key, claim) in &claims {
            pipe.cmd("SET")
                .arg(self.claim_key(*key))
                .arg(encode(&self.node.tag, claim))
                .arg("PX")
                .arg(DURABLE_TTL_MS)
                .ignore();
        }
        let pipe = &pipe;
        let done: Option<()> = self
            .ask(
                Purpose::Claim,
                |mut redis| async move { pipe.query_async(&mut redis).await },
            )
            .await;
        if done.is_none() {
            for (key, _) in claims {
                self.defer(Backlog::Claim { key, restored: false });
            }
        }
    }
}

/// Pings Redis while it is unreachable and writes the backlog once it
/// answers; ends when the state is dropped.
async fn background(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Some(inner) = inner.upgrade() else { return };
        if !inner.up.load(Ordering::Relaxed) && !inner.probe().await {
            continue;
        }
        // One pass over what is queued now; what is still being written
        // waits for the next.
        let rounds = inner.queue().len().div_ceil(BATCH);
        for _ in 0..rounds {
            if !inner.drain_batch().await {
                break;
            }
        }
    }
}

impl SharedState for Shared {
    fn claim(&self, key: u64, claim: Claim) -> Pending<'_, ClaimOutcome> {
        Box::pin(async move {
            self.inner.start();
            match self.inner.local.claim_here(key, claim) {
                ClaimOutcome::Claimed => self.inner.claim(key, claim).await,
                taken_or_full => taken_or_full,
            }
        })
    }

    fn claim_restored(&self, key: u64, claim: Claim) {
        self.inner.local.hold(key, claim);
        self.inner.defer(Backlog::Claim { key, restored: true });
    }

    fn dedup_stats(&self) -> DedupStats {
        self.inner.start();
        self.inner.local.stats()
    }

    fn unclaim(&self, key: u64) -> Pending<'_, ()> {
        self.inner.local.unclaim_here(key);
        Box::pin(self.inner.unclaim(key))
    }

    fn confirm(&self, key: u64, filtered: bool) -> Pending<'_, ()> {
        self.inner.local.confirm_here(key, filtered);
        Box::pin(self.inner.confirm(key))
    }

    fn claimed(&self, key: u64) -> Pending<'_, Option<Claim>> {
        Box::pin(self.inner.claimed(key))
    }

    fn claimed_first<'a>(&'a self, keys: &'a [u64]) -> Pending<'a, Option<Claim>> {
        Box::pin(self.inner.claimed_first(keys))
    }

    fn count_once(&self, bid_key: u64, flags: u8, at: Timestamp) -> Pending<'_, u8> {
        let here = self.inner.local.count_here(bid_key, flags, at);
        Box::pin(async move {
            if here == 0 {
                return 0;
            }
            self.inner.count(bid_key, here).await
        })
    }

    fn count_restored(&self, bid_key: u64, flags: u8, at: Timestamp) {
        self.inner.local.count_here(bid_key, flags, at);
        self.inner.defer(Backlog::Counted {
            bid_key,
            restored: true,
        });
    }

    fn uncount(&self, bid_key: u64, flags: u8) -> Pending<'_, ()> {
        self.inner.local.uncount_here(bid_key, flags);
        Box::pin(self.inner.uncount(bid_key, flags))
    }

    fn forget_claims_before(&self, horizon: Timestamp) {
        // Redis forgets by itself (each key's TTL).
        self.inner.local.forget_before(horizon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_written_and_read_back() {
        let claim = Claim {
            at_micros: 1_780_000_000_123_456,
            clearing: Some(500_000),
            durable: false,
            filtered: false,
        };
        let text = encode("0a1b2c3d", &claim);
        assert_eq!(text, "0a1b2c3d p 0 500000 1780000000123456");
        assert_eq!(
            decode(&text),
            Some(Held {
                tag: "0a1b2c3d".into(),
                claim
            })
        );
        let durable = Claim {
            clearing: None,
            durable: true,
            filtered: true,
            ..claim
        };
        assert_eq!(decode(&encode("t", &durable)).map(|h| h.claim), Some(durable));
        for bad in ["", "t", "t x 0 - 1", "t p 2 - 1", "t p 0 x 1", "t p 0 - 1 extra"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_bits_newly_set_are_those_whose_old_value_was_zero() {
        assert_eq!(newly_set(0b11, &[0, 0]), 0b11);
        assert_eq!(newly_set(0b11, &[1, 0]), 0b10);
        assert_eq!(newly_set(0b10, &[0]), 0b10);
        assert_eq!(newly_set(0b10, &[1]), 0);
        let cmd = bitfield("k", 0b11, 1);
        let args: Vec<String> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(args, ["BITFIELD", "k", "SET", "u1", "#0", "1", "SET", "u1", "#1", "1"]);
    }
}
