//! Prometheus metrics: names and types in one place.
//!
//! Hot-path counters are plain atomics (prometheus-client `Counter`s, and
//! an atomic-bucket histogram of our own, because the crate's histogram
//! takes a mutex per observation). Label sets that are known up front (no-bid
//! reasons) are created once at start-up and kept as handles, so the bid path
//! never looks a label up. Per-campaign figures are read from the current
//! campaign world at scrape time by a collector.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// Why a whole bid request got no bid. Codes follow the OpenRTB list of
/// no-bid reason codes (2.x list 5.24, 3.0) where one fits; 0 (unknown)
/// otherwise. They are the `nbr` of exchanges answered that way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NoBidReason {
    /// No campaign was eligible for any impression.
    NoMatch,
    /// The answer could not be ready inside `tmax` minus the network allowance.
    Timeout,
    /// None of the request's currencies is in the FX table.
    Currency,
    /// A known crawler's user agent (OpenRTB 3.0 code 3).
    Crawler,
    /// Suspected non-human traffic (code 4).
    NonHuman,
    /// A data-centre IP address (code 5).
    DataCenter,
    /// Every impression is a private auction without a deal for us.
    PrivateAuction,
    /// No impression got a bid and at least one had an unusable floor
    /// (negative, too large, not a number): OpenRTB 3.0 code 2, invalid
    /// request.
    InvalidFloor,
    /// A block list (`bcat`, `badv`, `bapp`, `wseat`, `bseat`, `cattax`) had
    /// the wrong type and could not be read: code 2, invalid request.
    UnreadableBlocks,
    /// No campaign matched, and only rules about the user stopped them (an
    /// unknown user, or one without the segments, age or gender sought):
    /// code 8, unmatched user.
    UnmatchedUser,
    /// No campaign matched, and only the site or app (domain, category)
    /// stopped them: code 7, blocked publisher or site.
    BlockedPublisher,
    /// No campaign matched, and only the device (type, OS, connection)
    /// stopped them: code 6, unsupported device.
    UnsupportedDevice,
    /// No impression got a bid and at least one offered native with a
    /// native request that could not be read (code 2, invalid request).
    NativeRequestUnreadable,
}

impl NoBidReason {
    /// Every reason, in declaration order (`reason as usize` indexes it).
    pub const ALL: [NoBidReason; 13] = [
        NoBidReason::NoMatch,
        NoBidReason::Timeout,
        NoBidReason::Currency,
        NoBidReason::Crawler,
        NoBidReason::NonHuman,
        NoBidReason::DataCenter,
        NoBidReason::PrivateAuction,
        NoBidReason::InvalidFloor,
        NoBidReason::UnreadableBlocks,
        NoBidReason::UnmatchedUser,
        NoBidReason::BlockedPublisher,
        NoBidReason::UnsupportedDevice,
        NoBidReason::NativeRequestUnreadable,
    ];

    /// Snake-case name, the `reason` label of `bullseye_no_bids_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoBidReason::NoMatch => "no_match",
            NoBidReason::Timeout => "timeout",
            NoBidReason::Currency => "currency",
            NoBidReason::Crawler => "crawler",
            NoBidReason::NonHuman => "non_human",
            NoBidReason::DataCenter => "data_center",
            NoBidReason::PrivateAuction => "private_auction",
            NoBidReason::InvalidFloor => "invalid_floor",
            NoBidReason::UnreadableBlocks => "unreadable_blocks",
            NoBidReason::UnmatchedUser => "unmatched_user",
            NoBidReason::BlockedPublisher => "blocked_publisher",
            NoBidReason::UnsupportedDevice => "unsupported_device",
            NoBidReason::NativeRequestUnreadable => "native_request_unreadable",
        }
    }

    /// The OpenRTB 3.0 no-bid reason code (`nbr`).
    pub fn code(self) -> u32 {
        match self {
            NoBidReason::Timeout => 1,
            NoBidReason::InvalidFloor | NoBidReason::UnreadableBlocks | NoBidReason::NativeRequestUnreadable => 2,
            NoBidReason::Crawler => 3,
            NoBidReason::NonHuman => 4,
            NoBidReason::DataCenter => 5,
            NoBidReason::UnsupportedDevice => 6,
            NoBidReason::BlockedPublisher => 7,
            NoBidReason::UnmatchedUser => 8,
            _ => 0,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
    code: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FieldLabel {
    field: &'static str,
    how: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExchangeLabel {
    exchange: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LossLabel {
    exchange: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PurposeLabel {
    purpose: &'static str,
}

/// Cluster mode's exactly-once claims (`cluster::claims`): handles the
/// claims code counts through.
#[derive(Clone, Debug, Default)]
pub struct ClaimMetrics {
    /// Claims made on this node alone because Redis did not answer in time
    /// (acknowledged, reconciled later; the merged report deduplicates).
    pub local: Counter,
    /// Events or counted bits found held by another node when this node's
    /// local claims were reconciled (billed on two nodes: the merged report
    /// counts them once).
    pub conflicts: Counter,
    /// Claims and counted bits waiting to be written to Redis.
    pub backlog: Gauge,
    /// 1 while Redis answers the claims, 0 while they are made locally.
    pub redis_up: Gauge,
}

/// A fixed-bucket histogram of durations, lock-free; clones share counts.
#[derive(Clone, Debug, Default)]
pub struct LatencyHistogram(Arc<HistogramInner>);

#[derive(Debug)]
struct HistogramInner {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// Bucket upper bounds in seconds: 50 µs to 1 s.
const LATENCY_BOUNDS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

impl Default for HistogramInner {
    fn default() -> Self {
        HistogramInner {
            bounds: LATENCY_BOUNDS,
            buckets: (0..=LATENCY_BOUNDS.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    /// Counts one duration in its bucket.
    pub fn observe(&self, elapsed: Duration) {
        let h = &self.0;
        let seconds = elapsed.as_secs_f64();
        let bucket = h.bounds.iter().position(|&b| seconds <= b).unwrap_or(h.bounds.len());
        h.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_nanos.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = &self.0;
        // Per-bucket counts: the encoder accumulates them.
        let buckets: Vec<(f64, u64)> = h
            .buckets
            .iter()
            .enumerate()
            .map(|(i, count)| {
                (
                    h.bounds.get(i).copied().unwrap_or(f64::INFINITY),
                    count.load(Ordering::Relaxed),
                )
            })
            .collect();
        let count = buckets.iter().map(|(_, c)| c).sum();
        let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Every metric the bidder exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<ExchangeLabel, Counter>,
    /// Bids made, one per impression bid on (test requests included).
    pub bids: Counter,
    no_bids: Vec<Counter>,
    fields_repaired: Family<FieldLabel, Counter>,
    responses: Family<StatusLabel, Counter>,
    /// Time from request headers to response, bid requests only.
    pub bid_latency: LatencyHistogram,
    /// Configuration reloads applied.
    pub config_reloads: Counter,
    /// Configuration reloads rejected (the old world kept serving).
    pub config_reload_failures: Counter,
    /// Audience snapshots swapped in.
    pub snapshot_swaps: Counter,
    /// Audience snapshots rejected (the old snapshot kept serving).
    pub snapshot_failures: Counter,
    /// Users in the current audience snapshot.
    pub audience_users: Gauge,
    /// Users with changes in the real-time audience overlay.
    pub overlay_users: Gauge,
    /// Segment events (lines) applied to the overlay.
    pub audience_events_accepted: Counter,
    /// Segment events (lines) rejected, the overlay's refusals included.
    pub audience_events_rejected: Counter,
    /// Overlay changes refused because the overlay was full (answered 429).
    pub overlay_refused: Counter,
    /// Tracking requests with a forged or malformed URL.
    pub tracking_rejected: Counter,
    /// Impressions past `max_imps_per_request`, not bid on.
    pub imps_ignored: Counter,
    /// Impressions offering native whose native request could not be read.
    pub native_unreadable: Counter,
    /// Dedup claims held, and 1 at their bound (an alert).
    pub dedup_entries: Gauge,
    /// 1 while the dedup set is at its bound and notices are refused.
    pub dedup_at_capacity: Gauge,
    /// Bytes the dedup tables (claims, counted bits, settled
    /// reservations) have allocated.
    pub dedup_bytes: Gauge,
    /// Notices refused because the dedup set was full.
    pub dedup_refused: Counter,
    /// (User, campaign) frequency counts held.
    pub frequency_entries: Gauge,
    /// 1 while the frequency store is at its bound.
    pub frequency_at_capacity: Gauge,
    /// Impressions not counted for frequency because the store was full.
    pub frequency_refused: Counter,
    /// Impression pixels served.
    pub impressions: Counter,
    losses: Family<LossLabel, Counter>,
    /// Loss notices whose minimum bid to win could not be read (ignored).
    pub min_to_win_ignored: Counter,
    loss_log_dropped: Counter,
    sample_dropped: Counter,
    ledger_healthy: Gauge,
    ledger_write_failures: Counter,
    user_matches: Gauge,
    user_matches_evicted: Counter,
    connections_refused: Counter,
    status_counters: Vec<std::sync::OnceLock<Counter>>,
    redis_round_trips: Family<PurposeLabel, Counter>,
    /// Cluster mode's exactly-once claims.
    pub claims: ClaimMetrics,
    exchange_counters: papaya::HashMap<String, Counter, foldhash::fast::RandomState>,
    replication: ReplicationMetrics,
}

/// A cluster node's replication figures at scrape time (totals since
/// start), from `cluster::Node::replication` and the outbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicationFigures {
    /// Events published to the other nodes.
    pub events_published: u64,
    /// Other nodes' events applied here.
    pub events_applied: u64,
    /// Control changes published.
    pub control_published: u64,
    /// Other nodes' control changes applied here.
    pub control_applied: u64,
    /// Publications and reads that failed (Redis unreachable).
    pub failures: u64,
    /// Events and control changes waiting to be published.
    pub backlog: u64,
    /// Events and control changes dropped because the outbox was full.
    pub dropped: u64,
    /// Milliseconds from the oldest event of the last batch read (or a
    /// control change's publication) to its application here.
    pub lag_ms: u64,
}

/// `bullseye_replication_*`: zero on a node alone.
#[derive(Debug)]
struct ReplicationMetrics {
    events_published: Counter,
    events_applied: Counter,
    control_published: Counter,
    control_applied: Counter,
    failures: Counter,
    dropped: Counter,
    backlog: Gauge,
    lag_ms: Gauge,
}

impl ReplicationMetrics {
    fn register(registry: &mut Registry) -> ReplicationMetrics {
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let events_published = counter(
            "replication_events_published",
            "Events published to the other nodes of the cluster",
        );
        let events_applied = counter("replication_events_applied", "Other nodes' events applied here");
        let control_published = counter(
            "replication_control_published",
            "Control changes (campaign files, suppressions, audience) published to the other nodes",
        );
        let control_applied = counter(
            "replication_control_applied",
            "Other nodes' control changes applied here",
        );
        let failures = counter(
            "replication_failures",
            "Replication round trips that failed (Redis unreachable or too slow)",
        );
        let dropped = counter(
            "replication_dropped",
            "Events and control changes not published because the outbox was full",
        );
        let backlog = Gauge::default();
        registry.register(
            "replication_backlog",
            "Events and control changes waiting to be published",
            backlog.clone(),
        );
        let lag_ms = Gauge::default();
        registry.register(
            "replication_lag_ms",
            "Milliseconds from the oldest event of the last replicated batch (or a control change's publication) to its application here",
            lag_ms.clone(),
        );
        ReplicationMetrics {
            events_published,
            events_applied,
            control_published,
            control_applied,
            failures,
            dropped,
            backlog,
            lag_ms,
        }
    }
}

impl Metrics {
    /// The metrics, with per-campaign figures read from `campaigns` at
    /// scrape time.
    #[allow(
        clippy::too_many_lines,
        reason = "a flat list of metric registrations, one per metric"
    )]
    pub fn new(campaigns: Box<dyn CampaignFigures>) -> Metrics {
        let mut registry = Registry::with_prefix("bullseye");
        let requests = Family::<ExchangeLabel, Counter>::default();
        registry.register("bid_requests", "Bid requests received, by exchange", requests.clone());
        let bids = Counter::default();
        registry.register("bids", "Bids made (one per impression bid on)", bids.clone());
        let no_bid_family = Family::<ReasonLabel, Counter>::default();
        let no_bids = NoBidReason::ALL
            .iter()
            .map(|r| {
                no_bid_family
                    .get_or_create(&ReasonLabel {
                        reason: r.as_str(),
                        code: r.code(),
                    })
                    .clone()
            })
            .collect();
        registry.register("no_bids", "Bid requests answered with no bid, by reason", no_bid_family);
        let fields_repaired = Family::<FieldLabel, Counter>::default();
        registry.register(
            "request_fields_ignored",
            "Request fields of the wrong type, by field and how they were read: coerced, restricted (the most restrictive reading) or ignored",
            fields_repaired.clone(),
        );
        let responses = Family::<StatusLabel, Counter>::default();
        registry.register("http_responses", "HTTP responses, by status code", responses.clone());
        let bid_latency = LatencyHistogram::default();
        registry.register(
            "bid_latency_seconds",
            "Time from request headers to response for bid requests",
            bid_latency.clone(),
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let config_reloads = counter(&mut registry, "config_reloads", "Configuration reloads applied");
        let config_reload_failures = counter(
            &mut registry,
            "config_reload_failures",
            "Configuration reloads rejected",
        );
        let snapshot_swaps = counter(
            &mut registry,
            "audience_snapshot_swaps",
            "Audience snapshots swapped in",
        );
        let snapshot_failures = counter(
            &mut registry,
            "audience_snapshot_failures",
            "Audience snapshots rejected",
        );
        let tracking_rejected = counter(
            &mut registry,
            "tracking_rejected",
            "Tracking requests with a forged or malformed URL",
        );
        let impressions = counter(&mut registry, "impressions", "Impression pixels served");
        let losses = Family::<LossLabel, Counter>::default();
        registry.register(
            "losses",
            "Loss notices taken (once per bid), by exchange and OpenRTB 2.6 loss reason",
            losses.clone(),
        );
        let min_to_win_ignored = counter(
            &mut registry,
            "min_to_win_ignored",
            "Loss notices whose ${AUCTION_MIN_TO_WIN} could not be read (ignored)",
        );
        let loss_log_dropped = counter(
            &mut registry,
            "loss_log_dropped",
            "Loss notices not written to the loss log because its queue was full",
        );
        let sample_dropped = counter(
            &mut registry,
            "sample_dropped",
            "Bid requests drawn for the forecast's sample but dropped because its queue was full",
        );
        let dedup_entries = gauge(&mut registry, "dedup_entries", "Dedup claims (bid and event) held");
        let dedup_at_capacity = gauge(
            &mut registry,
            "dedup_at_capacity",
            "1 while the dedup set is at tracking.max_dedup_entries and notices are refused (503)",
        );
        let dedup_bytes = gauge(
            &mut registry,
            "dedup_bytes",
            "Bytes the dedup tables (claims, counted bits, settled reservations) have allocated",
        );
        let dedup_refused = counter(
            &mut registry,
            "dedup_refused",
            "Notices refused because the dedup set was full",
        );
        let frequency_entries = gauge(
            &mut registry,
            "frequency_entries",
            "(User, campaign) frequency counts held",
        );
        let frequency_at_capacity = gauge(
            &mut registry,
            "frequency_at_capacity",
            "1 while the frequency store is at bidding.max_frequency_entries",
        );
        let frequency_refused = counter(
            &mut registry,
            "frequency_refused",
            "Impressions not counted for frequency because the store was full",
        );
        let imps_ignored = counter(
            &mut registry,
            "imps_ignored",
            "Impressions past bidding.max_imps_per_request, not bid on",
        );
        let native_unreadable = counter(
            &mut registry,
            "native_requests_unreadable",
            "Impressions offering native whose native request could not be read (no native bid for them)",
        );
        let ledger_write_failures = counter(
            &mut registry,
            "ledger_write_failures",
            "Billing-log batches refused because a write or sync failed",
        );
        let connections_refused = counter(
            &mut registry,
            "connections_refused",
            "Connections answered 503 because max_connections were open",
        );
        let user_matches = gauge(
            &mut registry,
            "user_matches",
            "User-sync matches held (an exchange's id of a user → ours)",
        );
        let user_matches_evicted = counter(
            &mut registry,
            "user_matches_evicted",
            "User-sync matches evicted, least recently used first, past audience.max_user_matches",
        );
        let ledger_healthy = Gauge::default();
        registry.register(
            "ledger_healthy",
            "1 while the billing log accepts writes, 0 after a failed write or sync",
            ledger_healthy.clone(),
        );
        let audience_users = Gauge::default();
        registry.register(
            "audience_users",
            "Users in the current audience snapshot",
            audience_users.clone(),
        );
        let overlay_users = gauge(
            &mut registry,
            "audience_overlay_users",
            "Users with changes in the real-time audience overlay",
        );
        let audience_events_accepted = counter(
            &mut registry,
            "audience_events_accepted",
            "Segment events (JSON lines) applied to the audience overlay",
        );
        let audience_events_rejected = counter(
            &mut registry,
            "audience_events_rejected",
            "Segment events (JSON lines) rejected, overlay refusals included",
        );
        let overlay_refused = counter(
            &mut registry,
            "audience_overlay_refused",
            "Overlay changes for new users refused because the overlay held audience.overlay_max_users (429)",
        );
        let redis_round_trips = Family::<PurposeLabel, Counter>::default();
        registry.register(
            "redis_round_trips",
            "Redis round trips (a command or a pipeline) made by this node, by purpose (cluster mode)",
            redis_round_trips.clone(),
        );
        let claims = ClaimMetrics {
            local: counter(
                &mut registry,
                "cluster_claims_local",
                "Notices claimed on this node alone because Redis did not answer in time (cluster mode)",
            ),
            conflicts: counter(
                &mut registry,
                "cluster_claims_conflicts",
                "Local claims found held by another node when reconciled with Redis (cluster mode)",
            ),
            backlog: gauge(
                &mut registry,
                "cluster_claims_backlog",
                "Claims and counted bits waiting to be written to Redis (cluster mode)",
            ),
            redis_up: gauge(
                &mut registry,
                "cluster_claims_redis_up",
                "1 while Redis answers notice claims, 0 while they are made locally (cluster mode)",
            ),
        };
        registry.register_collector(Box::new(CampaignCollector { campaigns }));
        let replication = ReplicationMetrics::register(&mut registry);
        Metrics {
            registry,
            requests,
            bids,
            no_bids,
            fields_repaired,
            responses,
            bid_latency,
            config_reloads,
            config_reload_failures,
            snapshot_swaps,
            snapshot_failures,
            audience_users,
            overlay_users,
            audience_events_accepted,
            audience_events_rejected,
            overlay_refused,
            tracking_rejected,
            imps_ignored,
            native_unreadable,
            dedup_entries,
            dedup_at_capacity,
            dedup_bytes,
            dedup_refused,
            frequency_entries,
            frequency_at_capacity,
            frequency_refused,
            impressions,
            losses,
            min_to_win_ignored,
            loss_log_dropped,
            sample_dropped,
            ledger_healthy,
            ledger_write_failures,
            user_matches,
            user_matches_evicted,
            connections_refused,
            status_counters: (0..600).map(|_| std::sync::OnceLock::new()).collect(),
            redis_round_trips,
            claims,
            exchange_counters: papaya::HashMap::builder().hasher(Default::default()).build(),
            replication,
        }
    }

    /// Counts a connection refused at `max_connections`, and its 503 response.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
        self.response(503);
    }

    /// Records the user-sync match table's size and evictions, read at scrape time.
    pub fn observe_user_matches(&self, held: usize, evicted: u64) {
        self.user_matches.set(held as i64);
        self.user_matches_evicted
            .inner()
            .fetch_max(evicted, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records the billing log's state, read at scrape time.
    pub fn observe_ledger(&self, healthy: bool, write_failures: u64) {
        self.ledger_healthy.set(i64::from(healthy));
        self.ledger_write_failures
            .inner()
            .fetch_max(write_failures, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records the Redis round trips made for `purpose` so far (a label of
    /// `cluster::Purpose`), read from the cluster handle.
    pub fn observe_round_trips(&self, purpose: &'static str, total: u64) {
        self.redis_round_trips
            .get_or_create(&PurposeLabel { purpose })
            .inner()
            .fetch_max(total, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a loss notice taken at `exchange` for `reason` (a name from
    /// `openrtb::LossReason`).
    pub fn loss(&self, exchange: &str, reason: &str) {
        self.losses
            .get_or_create(&LossLabel {
                exchange: exchange.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Records a cluster node's replication figures, read at scrape time.
    pub fn observe_replication(&self, figures: &ReplicationFigures) {
        let r = &self.replication;
        for (counter, total) in [
            (&r.events_published, figures.events_published),
            (&r.events_applied, figures.events_applied),
            (&r.control_published, figures.control_published),
            (&r.control_applied, figures.control_applied),
            (&r.failures, figures.failures),
            (&r.dropped, figures.dropped),
        ] {
            counter.inner().fetch_max(total, std::sync::atomic::Ordering::Relaxed);
        }
        r.backlog.set(figures.backlog as i64);
        r.lag_ms.set(figures.lag_ms as i64);
    }

    /// Records the loss log's dropped count, read at scrape time.
    pub fn observe_loss_log(&self, dropped: u64) {
        self.loss_log_dropped
            .inner()
            .fetch_max(dropped, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records the request sample's dropped count, read at scrape time.
    pub fn observe_sample(&self, dropped: u64) {
        self.sample_dropped
            .inner()
            .fetch_max(dropped, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a bid request answered with no bid, by reason.
    pub fn no_bid(&self, reason: NoBidReason) {
        self.no_bids[reason as usize].inc();
    }

    /// Counts a request field of the wrong type, and how it was read
    /// (`coerced`, `restricted` or `ignored`). Off the fast path: only
    /// requests that needed repair get here.
    pub fn field_repaired(&self, field: &'static str, how: &'static str) {
        self.fields_repaired.get_or_create(&FieldLabel { field, how }).inc();
    }

    /// Counts an HTTP response by status code.
    pub fn response(&self, status: u16) {
        // The handle is looked up once per status code, then kept: the
        // request path increments an atomic and takes no lock.
        match self.status_counters.get(status as usize) {
            Some(slot) => slot
                .get_or_init(|| self.responses.get_or_create(&StatusLabel { status }).clone())
                .inc(),
            None => self.responses.get_or_create(&StatusLabel { status }).inc(),
        };
    }

    /// Counts a bid request for `exchange`, without allocating or locking
    /// once the exchange has been seen.
    pub fn request(&self, exchange: &str) {
        let counters = self.exchange_counters.pin();
        if let Some(counter) = counters.get(exchange) {
            counter.inc();
            return;
        }
        let counter = self
            .requests
            .get_or_create(&ExchangeLabel {
                exchange: exchange.to_string(),
            })
            .clone();
        counter.inc();
        counters.insert(exchange.to_string(), counter);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CampaignReasonLabel {
    campaign: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CampaignLabel {
    campaign: String,
}

/// One campaign's figures at scrape time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CampaignFigure {
    /// The campaign id (the `campaign` label).
    pub campaign: String,
    /// Bids made since start.
    pub bids: u64,
    /// Times each rule stopped the campaign, by rule name (zero counts left
    /// out).
    pub filtered: Vec<(&'static str, u64)>,
}

/// Where per-campaign figures come from: an upper layer (the live campaign
/// state) implements it, so that metrics stay names and types only.
pub trait CampaignFigures: Send + Sync + 'static {
    /// Every current campaign's figures.
    fn figures(&self) -> Vec<CampaignFigure>;
}

/// Per-campaign bids and "why not bidding", read at scrape time.
struct CampaignCollector {
    campaigns: Box<dyn CampaignFigures>,
}

impl std::fmt::Debug for CampaignCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CampaignCollector")
    }
}

impl prometheus_client::collector::Collector for CampaignCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = self.campaigns.figures();
        {
            let mut bids =
                encoder.encode_descriptor("campaign_bids", "Bids made, by campaign", None, MetricType::Counter)?;
            for figure in &figures {
                bids.encode_family(&CampaignLabel {
                    campaign: figure.campaign.clone(),
                })?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&figure.bids, None)?;
            }
        }
        let mut filtered = encoder.encode_descriptor(
            "campaign_filtered",
            "Times a rule stopped a campaign from bidding, by campaign and rule",
            None,
            MetricType::Counter,
        )?;
        for figure in &figures {
            for &(reason, value) in &figure.filtered {
                let label = CampaignReasonLabel {
                    campaign: figure.campaign.clone(),
                    reason,
                };
                filtered
                    .encode_family(&label)?
                    .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&value, None)?;
            }
        }
        Ok(())
    }
}
