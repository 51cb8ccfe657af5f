//! The application value: everything wired, nothing listening.
//!
//! [`App::build`] loads the config (folding an old `overrides.json` in), the
//! audience snapshot and the billing ledger, builds the campaign world over
//! the live campaign states, restores spend, frequency and deduplication
//! from the ledger, and wires the bidder, tracker, reloader and metrics
//! together. It opens no socket and starts no task, so tests can build an
//! application and drive it (with a simulated clock) directly;
//! [`App::tick`] is the once-a-second housekeeping the server runs.
//! [`crate::server`] only binds and serves.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::admin::audit::AuditLog;
use crate::admin::{Answer, Call, Context, Principal};
use crate::audience::suppression::{self, Suppressions};
use crate::audience::{AudienceStore, SnapshotError};
use crate::bidder::Bidder;
use crate::clock::Clock;
use crate::config::overrides::{self, Overrides};
use crate::config::{self, Config, ConfigErrors};
use crate::ledger::bids::BidFlusher;
use crate::ledger::losses::LossLog;
use crate::ledger::{Ledger, LedgerError};
use crate::live::{Embedded, LiveStates, SharedState, World};
use crate::metrics::Metrics;
use crate::pacing::FrequencyStore;
use crate::reload::Reloader;
use crate::tracking::attribution::{DEFAULT_MAX_TOUCHES, Touches};
use crate::tracking::notice::{NOTICE_WINDOW_SECS, Tracker};

/// What an application is built from.
pub struct AppOptions {
    /// Directory of the TOML config files.
    pub config_dir: PathBuf,
    /// Directory of the billing ledger and the audit log; created if missing.
    pub data_dir: PathBuf,
    /// Overrides the config's audience snapshot path.
    pub segments: Option<PathBuf>,
    /// The time of day, for everything the application does.
    pub clock: Arc<dyn Clock>,
    /// The base of tracking URLs when the config sets no `public_url`.
    pub listen_url: String,
    /// This node's place in a cluster; `None` when it runs alone.
    pub cluster: Option<Arc<crate::cluster::Node>>,
    /// Replaces the learned click and conversion models on the bid path
    /// (the market simulator's oracle); `None` in production.
    pub predictor: Option<Arc<dyn crate::outcome::Predictor>>,
    /// A simulation drives the clock: the learner publishes only when
    /// [`App::learn_now`] asks. False in production.
    pub simulation: bool,
    /// Under the billing log (fault injection in tests); `None`: the disk.
    pub ledger_storage: Option<Arc<dyn crate::ledger::Storage>>,
}

/// Why an application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The config is invalid (every problem listed).
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// The audience snapshot cannot be served.
    #[error("audience snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The data directory (or a file in it) could not be created or read.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory or file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The billing ledger cannot be opened or is corrupt.
    #[error("billing ledger: {0}")]
    Ledger(#[from] LedgerError),
}

/// Shared by every connection.
pub struct App {
    /// The bid path.
    pub bidder: Bidder,
    /// The tracking path (notices, pixels, clicks, conversions) and its ledger.
    pub tracker: Tracker,
    /// Folds bid counters into the per-day files. Locked only by the
    /// flusher task and at shutdown.
    bid_flusher: Mutex<BidFlusher>,
    /// Applies advertiser changes from the admin API and file changes.
    pub reloader: Arc<Reloader>,
    /// Live campaign states by id.
    pub live: Arc<LiveStates>,
    /// What this node shares with others (embedded when alone).
    pub shared: Arc<dyn SharedState>,
    /// Every change made through the admin API and the console.
    pub audit_log: AuditLog,
    /// This node's place in a cluster; `None` when it runs alone.
    pub cluster: Option<Arc<crate::cluster::Node>>,
    /// This node's budget leases (cluster mode): `server::start` runs them
    /// in the background and gives them back at shutdown.
    pub leases: Option<Arc<crate::cluster::leases::Leases>>,
    /// Learns the click and conversion models off the bid path.
    pub learner: Arc<crate::outcome::learner::Learner>,
    /// Keeps `[sampling] rate` of the bid requests for the forecast.
    pub sampler: crate::forecast::sample::Sampler,
    /// Tracking events handled in tasks of their own
    /// (`server::routes`): shutdown waits for them.
    pub event_tasks: tokio_util::task::TaskTracker,
}

fn data_dir_error(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.display().to_string();
    move |source| BuildError::DataDir { path, source }
}

/// The loss log's writer over `{data_dir}/losses`.
fn open_loss_log(data_dir: &Path) -> Result<LossLog, BuildError> {
    let dir = data_dir.join("losses");
    LossLog::open(&dir).map_err(data_dir_error(&dir))
}

/// The audit log, and the request sample's writer over `{data_dir}/sample`.
fn open_logs(
    data_dir: &Path,
    world: &Arc<ArcSwap<World>>,
    audience: &Arc<AudienceStore>,
) -> Result<(AuditLog, crate::forecast::sample::Sampler), BuildError> {
    let dir = data_dir.join("sample");
    let sampler =
        crate::forecast::sample::Sampler::start(&dir, world.clone(), audience.clone()).map_err(data_dir_error(&dir))?;
    Ok((AuditLog::new(data_dir), sampler))
}

/// The metrics over `world`, with the audience's size.
fn metrics_of(world: &Arc<ArcSwap<World>>, audience: &AudienceStore) -> Arc<Metrics> {
    let metrics = Arc::new(Metrics::new(Box::new(world.clone())));
    metrics.audience_users.set(audience.current().user_count() as i64);
    metrics
}

/// How often the learned shading curves are rebuilt, seconds.
const SHADING_REBUILD_SECS: u64 = 10;

/// In a cluster, the budget leases of the node.
fn leases(options: &AppOptions, world: &Arc<ArcSwap<World>>) -> Option<Arc<crate::cluster::leases::Leases>> {
    let node = options.cluster.as_ref()?;
    let leases = crate::cluster::leases::Leases::new(node.clone(), world.clone(), options.clock.clone());
    Some(Arc::new(leases))
}

/// The learner of the click and conversion models, replaying the feature
/// log of `{data_dir}/outcome`.
fn start_learner(
    options: &AppOptions,
    audience: &Arc<AudienceStore>,
) -> Result<Arc<crate::outcome::learner::Learner>, BuildError> {
    let now = options.clock.now().as_second();
    crate::outcome::learner::Learner::start(audience.clone(), Some(&options.data_dir), now, options.simulation)
        .map_err(data_dir_error(&options.data_dir.join("outcome")))
}

/// The touches conversions are credited by, replayed for the longest
/// attribution window of `world`'s campaigns.
fn open_touches(data_dir: &Path, world: &World, now: jiff::Timestamp) -> Result<Touches, BuildError> {
    let horizon = attribution_horizon(world);
    Touches::open(data_dir, DEFAULT_MAX_TOUCHES, now, horizon).map_err(data_dir_error(&data_dir.join("attribution")))
}

/// The longest attribution window of the world's campaigns (a day at
/// least).
fn attribution_horizon(world: &World) -> i64 {
    world
        .campaigns
        .iter()
        .map(|c| c.campaign.attribution.click_secs.max(c.campaign.attribution.view_secs))
        .max()
        .unwrap_or(0)
        .max(86_400)
}

/// The billing log in the data directory, on the given storage (tests) or
/// the disk.
fn open_ledger(options: &AppOptions) -> Result<(Ledger, crate::ledger::Recovered), BuildError> {
    let dir = options.data_dir.join("ledger");
    Ok(match &options.ledger_storage {
        Some(storage) => Ledger::open_on(&dir, storage.clone())?,
        None => Ledger::open(&dir)?,
    })
}

/// Live states over the do-not-contact list of `{data_dir}`.
fn live_states(data_dir: &Path) -> Result<LiveStates, BuildError> {
    let suppressions = Suppressions::open(data_dir).map_err(data_dir_error(&suppression::log_path(data_dir)))?;
    Ok(LiveStates::with_suppressions(suppressions))
}

/// The validated config, once an old `overrides.json` is folded into the
/// campaign files.
fn load_config(options: &AppOptions) -> Result<Config, BuildError> {
    let data_dir = &options.data_dir;
    std::fs::create_dir_all(data_dir).map_err(data_dir_error(data_dir))?;
    Overrides::fold_into_files(&options.config_dir, data_dir).map_err(data_dir_error(&overrides::path(data_dir)))?;
    let config = config::load(&options.config_dir)?;
    if config.settings.signing_key_is_dev {
        tracing::warn!("using the bundled development URL-signing key: set BULLSEYE_SIGNING_KEY in production");
    }
    if config.settings.admin_token_is_dev {
        tracing::warn!("using the bundled development admin token: set BULLSEYE_ADMIN_TOKEN in production");
    }
    Ok(config)
}

/// The audience snapshot (`--segments`, else the config's), the overlay,
/// its changes replayed from the journal in `{data_dir}/audience`, and the
/// user-sync match table in `{data_dir}/user-matches.log`.
fn open_audience(options: &AppOptions, config: &Config) -> Result<AudienceStore, BuildError> {
    let settings = &config.settings;
    let snapshot = options.segments.clone().or_else(|| settings.audience_snapshot.clone());
    let now = options.clock.now().as_second() as u32;
    let matches = crate::audience::matches::UserMatches::open(&options.data_dir, settings.max_user_matches, now)
        .map_err(|source| BuildError::DataDir {
            path: options.data_dir.join("user-matches.log").display().to_string(),
            source,
        })?;
    let mut audience = AudienceStore::open(snapshot.as_deref())?
        .with_overlay_limit(settings.overlay_max_users)
        .with_matches(matches);
    let dir = options.data_dir.join("audience");
    let replayed = audience
        .open_journal(&dir, options.clock.now().as_second())
        .map_err(data_dir_error(&dir))?;
    if replayed.applied + replayed.refused + replayed.unreadable > 0 {
        tracing::info!(
            applied = replayed.applied,
            expired = replayed.expired,
            refused = replayed.refused,
            unreadable = replayed.unreadable,
            "audience overlay changes replayed from the journal"
        );
    }
    Ok(audience)
}

/// Restores live state from the billing ledger: spend, frequency and
/// deduplication from the recent records, lifetime spend from the rollups.
fn restore(
    tracker: &Tracker,
    recovered: crate::ledger::Recovered,
    world: &World,
    now: jiff::Timestamp,
) -> Result<(), BuildError> {
    let mut failure = None;
    let records = recovered.map_while(|record| record.map_err(|e| failure = Some(e)).ok());
    let restored = tracker.restore(records, world, now);
    if let Some(e) = failure {
        return Err(BuildError::Ledger(e));
    }
    if restored > 0 {
        tracing::info!(
            records = restored,
            "spend, frequency and deduplication restored from the billing log"
        );
    }
    let lifetimes = tracker.restore_lifetime(world)?;
    if lifetimes > 0 {
        tracing::info!(
            campaigns = lifetimes,
            "lifetime spend restored from the billing log's rollups"
        );
    }
    Ok(())
}

/// In a cluster, live state queues what the other nodes need and every
/// budget waits for its lease; the node's tag (for bid ids), if any.
fn in_cluster(node: Option<&crate::cluster::Node>, live: &LiveStates) -> Option<String> {
    let node = node?;
    live.outbox.enable();
    live.lease_all();
    Some(node.tag.clone())
}

/// Alone, claims stay here; in a cluster, they go to Redis with `local`
/// as their cache.
fn shared_state(node: Option<&Arc<crate::cluster::Node>>, local: Embedded, metrics: &Metrics) -> Arc<dyn SharedState> {
    match node {
        Some(node) => Arc::new(crate::cluster::Shared::new(node.clone(), local, metrics.claims.clone())),
        None => Arc::new(local),
    }
}

/// In a cluster, campaign versions are compared and set in Redis.
fn campaign_versions(node: Option<&Arc<crate::cluster::Node>>) -> Option<Arc<dyn crate::reload::CampaignVersions>> {
    let versions = crate::cluster::replication::Versions::new(node?.clone());
    Some(Arc::new(versions))
}

impl App {
    /// Loads and wires everything, and restores live state from the
    /// billing ledger. Opens no socket, starts no task.
    pub fn build(options: AppOptions) -> Result<App, BuildError> {
        let config = load_config(&options)?;
        let audience = Arc::new(open_audience(&options, &config)?);
        let live = Arc::new(live_states(&options.data_dir)?);
        let node_tag = in_cluster(options.cluster.as_deref(), &live);
        let local = Embedded::with_limit(config.settings.max_dedup_entries);
        let frequency = Arc::new(FrequencyStore::with_limit(config.settings.max_frequency_entries));
        let last_config = Mutex::new(Some(config.clone()));
        let world = Arc::new(ArcSwap::from_pointee(World::build(config, &live)));
        let metrics = metrics_of(&world, &audience);
        let shared = shared_state(options.cluster.as_ref(), local, &metrics);
        let learner = start_learner(&options, &audience)?;
        let shading = Arc::new(crate::pacing::shading::Shading::default());
        let (ledger, recovered) = open_ledger(&options)?;
        let tracker = Tracker::with_shared(ledger, frequency.clone(), shared.clone(), live.clone())
            .with_loss_log(open_loss_log(&options.data_dir)?)
            .with_touches(open_touches(&options.data_dir, &world.load(), options.clock.now())?)
            .with_learner(learner.clone())
            .with_shading(shading.clone())
            .with_node_tag(node_tag.clone());
        restore(&tracker, recovered, &world.load(), options.clock.now())?;
        let leases = leases(&options, &world);
        let (audit_log, sampler) = open_logs(&options.data_dir, &world, &audience)?;
        let reloader = Arc::new(Reloader {
            config_dir: options.config_dir,
            data_dir: options.data_dir,
            reloading: Mutex::new(()),
            last_config,
            segments_override: options.segments,
            world: world.clone(),
            audience: audience.clone(),
            registry: live.clone(),
            metrics: metrics.clone(),
            versions: campaign_versions(options.cluster.as_ref()),
            clock: options.clock.clone(),
        });
        let bidder = Bidder {
            world,
            audience,
            frequency,
            clock: options.clock,
            metrics,
            listen_url: options.listen_url,
            node_tag,
            // The simulator's oracle, else the learned models.
            predictor: Some(options.predictor.unwrap_or_else(|| learner.predictor())),
            shading: shading.clone(),
        };
        Ok(App {
            // Before `bidder` and `tracker` move in (fields are built in
            // the order written).
            bid_flusher: Mutex::new(BidFlusher::new(tracker.ledger.dir(), bidder.clock.now())),
            bidder,
            tracker,
            reloader,
            live,
            shared,
            audit_log,
            cluster: options.cluster,
            leases,
            learner,
            sampler,
            event_tasks: tokio_util::task::TaskTracker::new(),
        })
    }

    /// Trains what the learner was handed and publishes the model, waiting
    /// for it (a simulation's step; production publishes on its own).
    pub fn learn_now(&self) {
        self.learner.publish();
    }

    /// Report rows for `principal` from query pairs (the CLI's flags, and
    /// `advertiser`), as `GET /admin/api/reports` gives them (blocking).
    pub fn report(
        &self,
        principal: &Principal,
        pairs: &[(String, String)],
    ) -> Result<(crate::ledger::query::By, Vec<crate::ledger::report::Row>), Answer> {
        crate::admin::reports::rows(&self.admin_context(principal), pairs)
    }

    fn admin_context<'a>(&'a self, principal: &'a Principal) -> Context<'a> {
        Context {
            principal,
            reloader: &self.reloader,
            bidder: &self.bidder,
            audit_log: &self.audit_log,
            now: self.bidder.clock.now(),
        }
    }

    /// Answers an admin API call made by `principal` (blocking: campaign
    /// changes and the audit log write files).
    pub fn admin(&self, principal: &Principal, call: &Call) -> Answer {
        crate::admin::handle(&self.admin_context(principal), call)
    }

    /// Once a second: drains expired budget reservations, sets capacity
    /// caps' flags and steps pacing;
    /// every 5 s flushes bid counts; once a minute drops frequency windows
    /// from past days, deduplication entries past the notice window, overlay
    /// users whose changes all expired and the
    /// live state of campaigns gone longer than it, and re-ranks (learned
    /// pCTRs move CPC campaigns' values).
    pub fn tick(&self, second: u64) {
        self.bidder.expire_reservations();
        self.bidder.world.load().check_capacity(self.bidder.clock.now());
        self.report_sizes();
        self.bidder.control_pacing();
        self.tracker.touches.flush();
        // Fixed shading counts nothing: no curves to rebuild.
        if second.is_multiple_of(SHADING_REBUILD_SECS)
            && self.bidder.world.load().settings.shading == crate::settings::ShadingMode::Learned
        {
            self.bidder.shading.rebuild(self.bidder.clock.now().as_second());
        }
        if second.is_multiple_of(5) {
            self.flush_bids();
        }
        if second.is_multiple_of(60) {
            let now = self.bidder.clock.now();
            self.tracker.frequency.sweep(now);
            self.bidder.audience.overlay.sweep(now.as_second());
            self.tracker.sweep(now);
            let world = self.bidder.world.load();
            self.tracker.touches.sweep(now, attribution_horizon(&world));
            let retired = self
                .live
                .retire(|id| world.campaign_by_id(id).is_some(), now, NOTICE_WINDOW_SECS);
            if retired > 0 {
                tracing::info!(retired, "live state of removed campaigns retired");
            }
            // Let the world go first: re-ranking replaces it and waits (up
            // to 100 ms) for its last reader to let it go.
            drop(world);
            self.reloader.rerank();
        }
    }

    /// The metrics in the OpenMetrics text format, the cluster's leases
    /// included.
    pub fn metrics_text(&self) -> String {
        let mut text = self.bidder.metrics.render();
        let end = text.rfind("# EOF").unwrap_or(text.len());
        text.insert_str(end, &self.outcome_metrics());
        if let Some(leases) = &self.leases {
            let end = text.rfind("# EOF").unwrap_or(text.len());
            text.insert_str(end, &leases.render());
        }
        text
    }

    /// The learner's, shading's and attribution's metrics, as text.
    fn outcome_metrics(&self) -> String {
        use std::fmt::Write;
        use std::sync::atomic::Ordering::Relaxed;
        let counters = [
            (
                "outcome_examples",
                "Examples the published click and conversion model was trained on",
                self.learner.model().examples,
            ),
            (
                "outcome_observations_dropped",
                "Observations the learner's full queue dropped",
                self.learner.dropped.load(Relaxed),
            ),
            (
                "shading_first_price_bids",
                "First-price bids counted for learned shading",
                self.bidder.shading.bids.load(Relaxed),
            ),
            (
                "attribution_touches_dropped",
                "Clicks and views not kept for attribution (at the bound)",
                self.tracker.touches.dropped.load(Relaxed),
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP bullseye_{name} {help}.\n# TYPE bullseye_{name} counter\nbullseye_{name}_total {value}"
            );
        }
        let gauges = [
            (
                "shading_slices_learned",
                "Shading slices (exchange, placement, hour) with a win-rate curve of their own",
                self.bidder.shading.learned_slices() as u64,
            ),
            (
                "attribution_touches",
                "Clicks and views held for attribution",
                self.tracker.touches.len() as u64,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP bullseye_{name} {help}.\n# TYPE bullseye_{name} gauge\nbullseye_{name} {value}"
            );
        }
        out
    }

    /// The dedup set's and the frequency store's sizes, in metrics.
    fn report_sizes(&self) {
        let metrics = &self.bidder.metrics;
        let dedup = self.shared.dedup_stats();
        metrics.dedup_entries.set(dedup.held as i64);
        metrics.dedup_at_capacity.set(i64::from(dedup.at_capacity));
        metrics
            .dedup_bytes
            .set((dedup.bytes + self.tracker.settled_bytes()) as i64);
        metrics
            .dedup_refused
            .inc_by(dedup.refused.saturating_sub(metrics.dedup_refused.get()));
        if let Some(node) = &self.cluster {
            for purpose in crate::cluster::Purpose::ALL {
                metrics.observe_round_trips(purpose.label(), node.round_trips(purpose));
            }
        }
        let frequency = &self.tracker.frequency;
        metrics.overlay_users.set(self.bidder.audience.overlay.len() as i64);
        metrics.frequency_entries.set(frequency.len() as i64);
        metrics.frequency_at_capacity.set(i64::from(frequency.is_full()));
        metrics
            .frequency_refused
            .inc_by(frequency.refused().saturating_sub(metrics.frequency_refused.get()));
    }

    /// Rolls up closed days of the billing log and deletes raw day files
    /// past retention (blocking file I/O: run it off the serving threads).
    pub fn ledger_maintenance(&self) {
        let today = utc_date(&*self.bidder.clock);
        let retention = self.bidder.world.load().settings.ledger_retention_days;
        match crate::ledger::rollup::maintain(self.tracker.ledger.dir(), &today, retention) {
            Ok(done) if done.rolled_up + done.deleted > 0 => {
                tracing::info!(
                    rolled_up = done.rolled_up,
                    deleted = done.deleted,
                    "billing log maintained"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "billing log maintenance failed"),
        }
        if let Ok(today) = today.parse() {
            let losses = self.tracker.ledger.dir().with_file_name("losses");
            let pruned = crate::ledger::losses::prune(&losses, today, retention);
            if pruned > 0 {
                tracing::info!(deleted = pruned, "loss log maintained");
            }
        }
    }

    /// Which bundled development secrets are in use, if any: the signing
    /// key if `signing_exposed`, an admin token if `admin_exposed`.
    pub fn dev_secrets(&self, signing_exposed: bool, admin_exposed: bool) -> Option<&'static str> {
        let settings = &self.bidder.world.load().settings;
        match (
            settings.signing_key_is_dev && signing_exposed,
            settings.admin_token_is_dev && admin_exposed,
        ) {
            (true, true) => Some("signing key and admin token"),
            (true, false) => Some("signing key"),
            (false, true) => Some("admin token"),
            (false, false) => None,
        }
    }

    /// Writes bid counts gained since the last flush.
    pub fn flush_bids(&self) {
        let now = self.bidder.clock.now();
        let counters = self.bidder.world.load().bid_counters(now);
        let mut flusher = self.bid_flusher.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(e) = flusher.flush(now, counters.into_iter()) {
            tracing::warn!(error = %e, "bid counts not written");
        }
    }
}

/// Today's UTC date, `YYYY-MM-DD` (the billing log's day files).
fn utc_date(clock: &dyn Clock) -> String {
    clock
        .now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}
