//! Replication between the nodes of a cluster, through two Redis streams,
//! never on the bid path.
//!
//! - **Events** (`bullseye:events`): every event a node applies
//!   (impressions, billing and win notices, clicks, conversions, and the
//!   loss notices of other nodes' bids) is queued in its
//!   [`Outbox`] by the tracker and published every [`PUBLISH_EVERY`] in
//!   one pipelined round trip: one stream entry per [`EVENTS_PER_ENTRY`]
//!   events (JSON lines), the stream trimmed with `MAXLEN ~`
//!   [`EVENTS_MAXLEN`]. Every other node reads them and applies them
//!   through `Tracker::apply_replicated` (frequency and contact counts,
//!   today's counts, pCTR counts, capacity caps' responses; never spend:
//!   budgets are leased per node). When another node billed, showed or
//!   lost a bid this node made, this node gives back the bid's reservation
//!   and the impression and contact it held (the data travels in the
//!   event).
//! - **Control** (`bullseye:control`): campaign files changed through a
//!   node's admin API or console (the whole file), suppressions and
//!   erasures, real-time audience overlay changes. The latest text of each
//!   campaign file is also kept in the hash `bullseye:control:files`, and
//!   each (user, advertiser) suppression's latest state in
//!   `bullseye:control:suppressions`, so that a node that starts later
//!   catches up ([`catch_up`]) before it serves. Other nodes write a file
//!   into their own config directory atomically (validated first) and
//!   publish the new world at once (their watcher would also see it).
//!
//! One reader task per node blocks on `XREAD` over both streams on a
//! dedicated connection (a blocking read on the shared multiplexed
//! connection would hold up claims and leases). A node skips its own
//! entries and starts reading at the streams' ends as they were when it
//! started (its own state comes from its ledger). While Redis cannot be
//! reached, the outbox keeps what this node has to say (bounded) and the
//! reader retries; what other nodes published meanwhile is read on
//! reconnection as long as the stream still holds it (see
//! docs/cluster.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audience::events::{self, Change, Op};
use crate::audience::taxonomy::SegmentPath;
use crate::clock::Clock;
use crate::live::replicated::{Control, Outbox, ReplicatedEvent};
use crate::reload::Reloader;

use super::{ClusterError, Node, Purpose};

/// How often queued events and control changes are published.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Events in one stream entry at most.
pub const EVENTS_PER_ENTRY: usize = 500;
/// Events published in one round trip at most (the rest wait a turn).
pub const EVENTS_PER_ROUND: usize = 20_000;
/// Entries the event stream keeps, about (`XADD MAXLEN ~`).
pub const EVENTS_MAXLEN: usize = 10_000;
/// Entries the control stream keeps, about.
pub const CONTROL_MAXLEN: usize = 1_000;
/// How long a blocking read waits for new entries.
const READ_BLOCK_MS: u64 = 1_000;
/// Entries read per stream per round trip at most.
const READ_COUNT: usize = 200;
/// A round trip taking longer fails (Redis paused or unreachable).
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(3);
/// After a read that returned entries, wait this long before the next one,
/// so that a busy cluster reads in batches.
const READ_PAUSE: Duration = Duration::from_millis(50);

/// A stream entry's fields, (name, value).
type Fields = Vec<(String, String)>;
/// A stream entry: its id and fields.
type Entry = (String, Fields);
/// A hash's fields and values.
type Hash = Vec<(String, String)>;

/// What a replicated campaign file holds in Redis.
#[derive(Serialize, Deserialize)]
struct FileEntry {
    text: String,
    campaign: String,
    node: String,
    at: i64,
}

/// Counters of this node's replication, for metrics and tests.
#[derive(Debug, Default)]
pub struct ReplicationStats {
    /// Events published.
    pub events_published: AtomicU64,
    /// Other nodes' events applied here.
    pub events_applied: AtomicU64,
    /// Control changes published.
    pub control_published: AtomicU64,
    /// Other nodes' control changes applied here.
    pub control_applied: AtomicU64,
    /// Failed publications or reads (Redis unreachable).
    pub failures: AtomicU64,
    /// Milliseconds from the oldest event of the last batch applied here
    /// to its application (the event delay), or for a control change from
    /// its publication (its stream id's time).
    pub last_lag_ms: AtomicU64,
}

/// What the reader does with other nodes' events (the application
/// applies them through its tracker and current world).
pub type EventSink = Arc<dyn Fn(&[ReplicatedEvent]) + Send + Sync>;

/// The streams' and hashes' keys.
struct Keys {
    events: String,
    control: String,
    files: String,
    suppressions: String,
    signed_out: String,
}

impl Keys {
    fn of(node: &Node) -> Keys {
        Keys {
            events: node.key(&["events"]),
            control: node.key(&["control"]),
            files: node.key(&["control", "files"]),
            suppressions: node.key(&["control", "suppressions"]),
            signed_out: node.key(&["control", "signed-out"]),
        }
    }
}

/// Starts replicating: notes where the streams end, brings this node's
/// campaign files and suppressions up to what the cluster holds
/// ([`catch_up`]), then spawns the publisher and the reader. Call before
/// the node serves. Their counters are [`Node::replication`].
pub async fn start(
    node: Arc<Node>,
    outbox: Arc<Outbox>,
    reloader: Arc<Reloader>,
    sink: EventSink,
) -> Result<Arc<ReplicationStats>, ClusterError> {
    let keys = Keys::of(&node);
    let from = (
        last_id(&node, &keys.events).await?,
        last_id(&node, &keys.control).await?,
    );
    let caught_up = catch_up(&node, &reloader).await?;
    if caught_up > 0 {
        tracing::info!(
            changes = caught_up,
            "caught up with the cluster's campaign files and suppressions"
        );
    }
    let stats = node.replication.clone();
    tokio::spawn(publish_loop(
        node.clone(),
        outbox,
        reloader.clock.clone(),
        stats.clone(),
    ));
    tokio::spawn(read_loop(node, reloader, sink, stats.clone(), from));
    Ok(stats)
}

/// The id of a stream's last entry (`0-0` when empty): reading from it
/// gets what comes after.
async fn last_id(node: &Node, key: &str) -> Result<String, ClusterError> {
    let mut redis = node.redis(Purpose::Events);
    let reply: redis::Value = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut redis)
        .await?;
    let id = entries(&reply).into_iter().next().map(|(id, _)| id);
    Ok(id.unwrap_or_else(|| "0-0".to_string()))
}

/// Writes the campaign files and suppressions the cluster holds that differ
/// here (files validated first; an invalid one is logged and left).
/// Returns how many changed.
pub async fn catch_up(node: &Node, reloader: &Arc<Reloader>) -> Result<usize, ClusterError> {
    let keys = Keys::of(node);
    let mut redis = node.redis(Purpose::Control);
    let now = reloader.clock.now().as_second();
    let (files, suppressions, signed_out): (Hash, Hash, Vec<(String, i64)>) = redis::pipe()
        .cmd("HGETALL")
        .arg(&keys.files)
        .cmd("HGETALL")
        .arg(&keys.suppressions)
        .cmd("ZRANGEBYSCORE")
        .arg(&keys.signed_out)
        .arg(now)
        .arg("+inf")
        .arg("WITHSCORES")
        .query_async(&mut redis)
        .await?;
    let reloader = reloader.clone();
    let changed = tokio::task::spawn_blocking(move || {
        let mut changed = 0;
        for (file, entry) in files {
            let Ok(entry) = serde_json::from_str::<FileEntry>(&entry) else {
                continue;
            };
            changed += usize::from(mirror(&reloader, &file, &entry.campaign, &entry.text));
        }
        for (nonce, until) in signed_out {
            apply_control(&reloader, Control::SignOut { nonce, until });
        }
        for (field, state) in suppressions {
            let Some((user, advertiser)) = field.split_once(':') else {
                continue;
            };
            let Ok(user) = u64::from_str_radix(user, 16) else {
                continue;
            };
            let change = Control::Suppression {
                user,
                advertiser: advertiser.to_string(),
                suppressed: state == "1",
            };
            changed += usize::from(apply_control(&reloader, change));
        }
        changed
    })
    .await
    .unwrap_or(0);
    Ok(changed)
}

/// Writes a file another node changed; true when it changed here.
fn mirror(reloader: &Reloader, file: &str, campaign: &str, text: &str) -> bool {
    match reloader.mirror_file(file, text) {
        Ok(changed) => {
            if changed {
                tracing::info!(file, campaign, "campaign file changed on another node: mirrored");
            }
            changed
        }
        Err(e) => {
            tracing::error!(file, campaign, error = %e, "campaign file changed on another node not mirrored");
            false
        }
    }
}

/// Applies another node's control change (blocking: files are written
/// and synced); true when it changed something here.
fn apply_control(reloader: &Reloader, change: Control) -> bool {
    let now = reloader.clock.now().as_second();
    match change {
        Control::CampaignFile { file, campaign, text } => mirror(reloader, &file, &campaign, &text),
        Control::Suppression {
            user,
            advertiser,
            suppressed,
        } => {
            let list = &reloader.registry.suppressions;
            let done = match suppressed {
                true => list.suppress(user, &advertiser),
                false => list.lift(user, &advertiser),
            };
            done.unwrap_or_else(|e| {
                tracing::error!(error = %e, "suppression from another node not written");
                false
            })
        }
        Control::Erase { user } => match reloader.audience.erase(user, now) {
            Ok(erased) => erased,
            Err(e) => {
                tracing::error!(error = %e, "an erasure from another node not written to the journal");
                true
            }
        },
        Control::UserMatch { exchange, theirs, ours } => record_match(reloader, &exchange, &theirs, &ours, now),
        Control::SignOut { nonce, until } => crate::live::signed_out::parse_nonce(&nonce)
            .map(|nonce| reloader.registry.signed_out.insert(nonce, until, now))
            .is_some(),
        Control::Overlay { changes } => {
            let overlay = &reloader.audience.overlay;
            let applied: Vec<Change> = changes
                .into_iter()
                .filter_map(|c| {
                    let change = Change {
                        user: c.user,
                        segment: SegmentPath::parse(&c.segment).ok()?,
                        op: if c.add { Op::Add } else { Op::Remove },
                        expires: c.expires,
                    };
                    events::apply(overlay, &change, now).ok().map(|()| change)
                })
                .collect();
            if let Err(e) = reloader.audience.record(&applied, now) {
                tracing::error!(error = %e, "audience changes from another node not written to the journal");
            }
            !applied.is_empty()
        }
    }
}

/// Records a user-sync match made on another node; true when written.
fn record_match(reloader: &Reloader, exchange: &str, theirs: &str, ours: &str, now: i64) -> bool {
    let now = u32::try_from(now).unwrap_or(u32::MAX);
    match reloader.audience.matches.record(exchange, theirs, ours, now) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "a user-sync match from another node not written to the match log");
            false
        }
    }
}

/// Publishes the outbox every [`PUBLISH_EVERY`], in one pipelined round
/// trip; what fails is queued again (at least once: a round trip that
/// timed out may have been applied, so another node may count an event
/// twice, which errs on the side of the caps).
async fn publish_loop(node: Arc<Node>, outbox: Arc<Outbox>, clock: Arc<dyn Clock>, stats: Arc<ReplicationStats>) {
    let keys = Keys::of(&node);
    let mut every = tokio::time::interval(PUBLISH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        every.tick().await;
        let control = outbox.take_control();
        let events = outbox.take_events(EVENTS_PER_ROUND);
        if control.is_empty() && events.is_empty() {
            continue;
        }
        let pipe = publication(&node, &keys, (&events, &control), clock.now().as_second());
        let purpose = if events.is_empty() {
            Purpose::Control
        } else {
            Purpose::Events
        };
        let mut redis = node.redis(purpose);
        match tokio::time::timeout(ROUND_TRIP_TIMEOUT, pipe.query_async::<()>(&mut redis)).await {
            Ok(Ok(())) => {
                if failing {
                    tracing::info!("publishing to the cluster again");
                    failing = false;
                }
                stats.events_published.fetch_add(events.len() as u64, Ordering::Relaxed);
                stats
                    .control_published
                    .fetch_add(control.len() as u64, Ordering::Relaxed);
            }
            outcome => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                if !failing {
                    let error = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_string(),
                    };
                    tracing::warn!(%error, queued = outbox.backlog(), "cannot publish to the cluster; kept to retry");
                    failing = true;
                }
                outbox.requeue(events, control);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// One pipeline: the events in entries of [`EVENTS_PER_ENTRY`], each
/// control change on the control stream (and the latest file text or
/// suppression state in its hash).
fn publication(
    node: &Node,
    keys: &Keys,
    (events, control): (&[ReplicatedEvent], &[Control]),
    now: i64,
) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for chunk in events.chunks(EVENTS_PER_ENTRY) {
        let mut body = String::with_capacity(chunk.len() * 160);
        for event in chunk {
            if let Ok(line) = serde_json::to_string(event) {
                body.push_str(&line);
                body.push('\n');
            }
        }
        pipe.cmd("XADD")
            .arg(&keys.events)
            .arg("MAXLEN")
            .arg("~")
            .arg(EVENTS_MAXLEN)
            .arg("*")
            .arg("n")
            .arg(&node.tag)
            .arg("e")
            .arg(body)
            .ignore();
    }
    for change in control {
        keep_latest(&mut pipe, node, keys, change, now);
        let Ok(message) = serde_json::to_string(change) else {
            continue;
        };
        pipe.cmd("XADD")
            .arg(&keys.control)
            .arg("MAXLEN")
            .arg("~")
            .arg(CONTROL_MAXLEN)
            .arg("*")
            .arg("n")
            .arg(&node.tag)
            .arg("m")
            .arg(message)
            .ignore();
    }
    pipe
}

/// Keeps a campaign file's latest text, or a suppression's latest state,
/// in its hash (for nodes that start later).
fn keep_latest(pipe: &mut redis::Pipeline, node: &Node, keys: &Keys, change: &Control, now: i64) {
    match change {
        Control::CampaignFile { file, campaign, text } => {
            let entry = FileEntry {
                text: text.clone(),
                campaign: campaign.clone(),
                node: node.id.clone(),
                at: now,
            };
            if let Ok(entry) = serde_json::to_string(&entry) {
                pipe.cmd("HSET").arg(&keys.files).arg(file).arg(entry).ignore();
            }
        }
        Control::Suppression {
            user,
            advertiser,
            suppressed,
        } => {
            pipe.cmd("HSET")
                .arg(&keys.suppressions)
                .arg(format!("{user:016x}:{advertiser}"))
                .arg(if *suppressed { "1" } else { "0" })
                .ignore();
        }
        Control::SignOut { nonce, until } => {
            pipe.cmd("ZADD").arg(&keys.signed_out).arg(until).arg(nonce).ignore();
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(&keys.signed_out)
                .arg("-inf")
                .arg(now)
                .ignore();
        }
        Control::Erase { .. } | Control::Overlay { .. } | Control::UserMatch { .. } => {}
    }
}

/// Reads both streams on a dedicated connection and applies the other
/// nodes' entries; reconnects after a failure, from where it left off.
async fn read_loop(
    node: Arc<Node>,
    reloader: Arc<Reloader>,
    sink: EventSink,
    stats: Arc<ReplicationStats>,
    from: (String, String),
) {
    let mut reader = Reader {
        keys: Keys::of(&node),
        node,
        reloader,
        sink,
        stats,
        from,
        failing: false,
    };
    loop {
        let mut redis = match tokio::time::timeout(ROUND_TRIP_TIMEOUT, reader.node.dedicated()).await {
            Ok(Ok(redis)) => redis,
            Ok(Err(e)) => {
                reader.failed(&e.to_string()).await;
                continue;
            }
            Err(_) => {
                reader.failed("timed out").await;
                continue;
            }
        };
        while reader.read(&mut redis).await {}
    }
}

/// The reader's state: where each stream was read up to.
struct Reader {
    node: Arc<Node>,
    keys: Keys,
    reloader: Arc<Reloader>,
    sink: EventSink,
    stats: Arc<ReplicationStats>,
    /// The last ids read from the event and control streams.
    from: (String, String),
    failing: bool,
}

impl Reader {
    /// Notes a failure (logged once until reads work again) and waits.
    async fn failed(&mut self, error: &str) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        if !self.failing {
            tracing::warn!(%error, "cannot read the cluster's events; retrying");
            self.failing = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    /// One blocking read and what it brought applied; false when the
    /// connection failed.
    async fn read(&mut self, redis: &mut redis::aio::MultiplexedConnection) -> bool {
        let read = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(READ_BLOCK_MS)
            .arg("STREAMS")
            .arg(&self.keys.events)
            .arg(&self.keys.control)
            .arg(&self.from.0)
            .arg(&self.from.1)
            .to_owned();
        self.node.count_round_trip(Purpose::Events);
        let timeout = ROUND_TRIP_TIMEOUT + Duration::from_millis(READ_BLOCK_MS);
        let reply: redis::Value = match tokio::time::timeout(timeout, read.query_async(redis)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                self.failed(&e.to_string()).await;
                return false;
            }
            Err(_) => {
                self.failed("timed out").await;
                return false;
            }
        };
        if self.failing {
            tracing::info!("reading the cluster's events again");
            self.failing = false;
        }
        let mut read_any = false;
        for (stream, entries) in streams(&reply) {
            let is_events = stream == self.keys.events;
            for (id, fields) in entries {
                read_any = true;
                if !is_events {
                    note_lag(&self.stats, &id, &self.reloader);
                }
                if is_events {
                    self.from.0 = id;
                } else {
                    self.from.1 = id;
                }
                if field(&fields, "n") != Some(self.node.tag.as_str()) {
                    self.apply(is_events, &fields).await;
                }
            }
        }
        if read_any {
            tokio::time::sleep(READ_PAUSE).await;
        }
        true
    }

    /// Applies another node's entry: a batch of events, or a control
    /// change (on the blocking pool: it writes files).
    async fn apply(&self, is_events: bool, fields: &Fields) {
        if is_events {
            let batch: Vec<ReplicatedEvent> = field(fields, "e")
                .unwrap_or_default()
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect();
            (self.sink)(&batch);
            self.stats
                .events_applied
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            // The event delay: from the oldest event's time to now.
            if let Some(oldest) = batch.iter().map(|e| e.at_micros).min() {
                let now = self.reloader.clock.now().as_microsecond();
                let lag = now.saturating_sub(oldest).max(0) / 1000;
                self.stats.last_lag_ms.store(lag as u64, Ordering::Relaxed);
            }
        } else if let Some(change) = field(fields, "m").and_then(|m| serde_json::from_str(m).ok()) {
            let reloader = self.reloader.clone();
            let _ = tokio::task::spawn_blocking(move || apply_control(&reloader, change)).await;
            self.stats.control_applied.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The time from an entry's publication (its id's milliseconds) to now.
fn note_lag(stats: &ReplicationStats, id: &str, reloader: &Reloader) {
    let published = id.split('-').next().and_then(|ms| ms.parse::<i64>().ok());
    if let Some(published) = published {
        let now = reloader.clock.now().as_millisecond();
        stats
            .last_lag_ms
            .store(now.saturating_sub(published).max(0) as u64, Ordering::Relaxed);
    }
}

/// A field's value in an entry's fields.
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Text of a bulk or simple string.
fn text(value: &redis::Value) -> Option<String> {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The items of an array (or a map's pairs, flattened).
fn items(value: &redis::Value) -> Vec<&redis::Value> {
    match value {
        redis::Value::Array(items) | redis::Value::Set(items) => items.iter().collect(),
        redis::Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

/// Stream entries `[[id, [field, value, …]], …]` as (id, fields).
fn entries(value: &redis::Value) -> Vec<Entry> {
    items(value)
        .into_iter()
        .filter_map(|entry| {
            let parts = items(entry);
            let id = text(parts.first()?)?;
            let flat: Vec<String> = parts
                .get(1)
                .map(|f| items(f))
                .unwrap_or_default()
                .into_iter()
                .filter_map(text)
                .collect();
            let fields = flat
                .chunks(2)
                .filter(|p| p.len() == 2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect();
            Some((id, fields))
        })
        .collect()
}

/// An `XREAD` reply (RESP2 array or RESP3 map) as (stream, entries).
fn streams(reply: &redis::Value) -> Vec<(String, Vec<Entry>)> {
    match reply {
        redis::Value::Map(pairs) => pairs.iter().filter_map(|(k, v)| Some((text(k)?, entries(v)))).collect(),
        _ => items(reply)
            .into_iter()
            .filter_map(|stream| {
                let parts = items(stream);
                Some((text(parts.first()?)?, entries(parts.get(1)?)))
            })
            .collect(),
    }
}

/// Compare-and-set of campaign versions: `KEYS[1]` the versions hash;
/// `ARGV`: campaign, the version expected (empty: any), the new version.
/// Returns the current version when it is not the one expected (nothing
/// changed), else an empty string (the new version is current).
const ADVANCE: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and current and current ~= ARGV[2] then
  return current
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return ''
";

/// The cluster's latest version of every campaign changed through the
/// admin API (`bullseye:control:versions`): a change made with a stale
/// `If-Match` is refused (412) on whichever node it reaches, even before
/// the newer file has been replicated there.
pub struct Versions {
    node: Arc<Node>,
    script: redis::Script,
}

impl Versions {
    /// Versions kept in `node`'s Redis.
    pub fn new(node: Arc<Node>) -> Versions {
        Versions {
            node,
            script: redis::Script::new(ADVANCE),
        }
    }

    async fn advance_async(&self, campaign: &str, expected: &str, after: &str) -> redis::RedisResult<String> {
        let mut redis = self.node.redis(Purpose::Control);
        self.script
            .key(self.node.key(&["control", "versions"]))
            .arg(campaign)
            .arg(expected)
            .arg(after)
            .invoke_async(&mut redis)
            .await
    }
}

impl crate::reload::CampaignVersions for Versions {
    fn advance(&self, campaign: &str, expected: Option<&str>, after: &str) -> Result<(), String> {
        // Called on the blocking pool (admin and console changes): wait
        // for Redis there, at most a round-trip timeout.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Ok(());
        };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Ok(());
        }
        let call = self.advance_async(campaign, expected.unwrap_or_default(), after);
        let answer = tokio::task::block_in_place(|| handle.block_on(tokio::time::timeout(ROUND_TRIP_TIMEOUT, call)));
        match answer {
            Ok(Ok(current)) if current.is_empty() => Ok(()),
            Ok(Ok(current)) => Err(current),
            Ok(Err(e)) => {
                tracing::warn!(campaign, error = %e, "campaign version not checked in the cluster: Redis refused");
                Ok(())
            }
            Err(_) => {
                tracing::warn!(
                    campaign,
                    "campaign version not checked in the cluster: Redis did not answer"
                );
                Ok(())
            }
        }
    }
}
