//! The control path: config files and the audience snapshot, reloaded.
//!
//! A watcher thread (notify, plus a one-second fingerprint poll as a
//! fallback for missed events) notices when a config file or the snapshot
//! file changes. A config change loads and validates the whole directory
//! and publishes a new [`World`] with one `store`; a snapshot change maps
//! and validates the new file and swaps it in. Anything invalid is logged,
//! counted, and the last good version keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};

use crate::audience::{AudienceStore, SnapshotError};
use crate::clock::Clock;
use crate::config::documents::{self, CampaignDocument, FieldProblem};
use crate::config::{self, ConfigErrors};
use crate::live::replicated::Control;
use crate::live::{LiveStates, World};
use crate::metrics::Metrics;

/// Where a cluster keeps the latest version of every campaign changed
/// through the admin API (compare-and-set across nodes).
pub trait CampaignVersions: Send + Sync {
    /// Moves `campaign` to version `after`, unless `expected` is given and
    /// the cluster holds another current version: then that version. A
    /// cluster that cannot be reached lets the change through (logged).
    fn advance(&self, campaign: &str, expected: Option<&str>, after: &str) -> Result<(), String>;
}

/// Why a campaign change was not made (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// `If-Match` named another version than the file holds now.
    #[error("the campaign changed since version {given}; it is now at {current}")]
    Stale {
        /// The version the caller had.
        given: String,
        /// The version on disk.
        current: String,
    },
    /// The change would make the config invalid: every problem.
    #[error("invalid campaign")]
    Invalid(Vec<FieldProblem>),
    /// No such campaign (or none the caller may see), or creative.
    #[error("{0}")]
    NotFound(&'static str),
    /// The caller's role may not make this change.
    #[error("{0}")]
    Forbidden(String),
    /// A campaign with this id exists already.
    #[error("a campaign with this id exists")]
    Exists,
    /// The file could not be written; nothing changed.
    #[error("cannot write the campaign file: {0}")]
    Write(std::io::Error),
}

/// Why a campaign file changed on another node was not mirrored here.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// Not a campaign file inside the config directory.
    #[error("{0}: not a campaign file of the config directory")]
    NotACampaignFile(String),
    /// This node's config would not be valid with it.
    #[error("the change would make this node's config invalid: {0}")]
    Invalid(ConfigErrors),
    /// The file could not be written.
    #[error("cannot write the campaign file: {0}")]
    Write(std::io::Error),
}

/// A campaign change made: the campaign before (none when created) and after.
#[derive(Debug)]
pub struct Changed {
    /// As it was.
    pub before: Option<CampaignDocument>,
    /// As it is now.
    pub after: CampaignDocument,
}

/// Rebuilds and publishes the campaign world and the audience snapshot, from the watcher and the admin API.
pub struct Reloader {
    /// Directory of the TOML config files.
    pub config_dir: PathBuf,
    /// The data directory (audit log, ledger).
    pub data_dir: PathBuf,
    /// Serialises reloads (control path only).
    pub reloading: std::sync::Mutex<()>,
    /// The last configuration published, for re-ranking.
    pub last_config: std::sync::Mutex<Option<config::Config>>,
    /// `--segments`: overrides the config's snapshot path.
    pub segments_override: Option<PathBuf>,
    /// Where new worlds are published.
    pub world: Arc<ArcSwap<World>>,
    /// Where new snapshots are published.
    pub audience: Arc<AudienceStore>,
    /// Live campaign states by id, which new worlds are built over.
    pub registry: Arc<LiveStates>,
    /// Reload counters.
    pub metrics: Arc<Metrics>,
    /// In a cluster, the latest version of every campaign, so that a
    /// stale `If-Match` is refused on every node; `None` alone.
    pub versions: Option<Arc<dyn CampaignVersions>>,
    /// The time of day (overlay reconciliation, control changes).
    pub clock: Arc<dyn Clock>,
}

/// What identifies a version of a file without reading it.
type Fingerprint = Vec<(PathBuf, Option<(u64, SystemTime, u64)>)>;

fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    paths
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok().map(|m| {
                use std::os::unix::fs::MetadataExt;
                (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.ino())
            });
            (p.clone(), meta)
        })
        .collect()
}

fn config_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![dir.join("bullseye.toml")];
    if let Ok(entries) = std::fs::read_dir(dir.join("campaigns")) {
        files.extend(
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| config::is_config_file(dir, p)),
        );
    }
    files.sort();
    files
}

impl Reloader {
    /// Rebuilds the world from the last good config, so that campaign values
    /// that changed (learned pCTRs) are ranked anew.
    pub fn rerank(&self) {
        let _one = self.reloading.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let config = self
            .last_config
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(config) = config
            && config.campaigns.iter().any(|c| c.pricing.is_value_based())
        {
            self.replace_world(World::build(config, &self.registry));
        }
    }

    /// Publishes a new world and lets the old one go on this (control)
    /// thread: dropping a world folds its index tally into the live
    /// states, work the bid path should not do. Readers still holding the
    /// old world (a notice in flight) are given a moment; past it, the last
    /// of them drops it.
    fn replace_world(&self, world: World) {
        let mut old = self.world.swap(Arc::new(world));
        for _ in 0..100 {
            match Arc::try_unwrap(old) {
                Ok(world) => return drop(world),
                Err(shared) => old = shared,
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Changes one campaign's file, under the reload lock: reads the
    /// campaign as its file holds it now, checks `if_match` against its
    /// version, lets `change` make the new table, validates the whole
    /// config with it (the same code as `check-config`), writes the file
    /// atomically, and publishes the new world; the next bid request sees
    /// it. Nothing is written unless all of that succeeds.
    pub fn change_campaign(
        &self,
        id: &str,
        if_match: Option<&str>,
        change: impl FnOnce(Option<&CampaignDocument>) -> Result<toml::Table, ChangeError>,
    ) -> Result<Changed, ChangeError> {
        let _one = self.reloading.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = documents::scan(&self.config_dir).into_iter().find(|d| d.id == id);
        if let (Some(given), Some(current)) = (if_match, &current) {
            let now = current.version();
            if given != now {
                return Err(ChangeError::Stale {
                    given: given.to_string(),
                    current: now,
                });
            }
        }
        let table = change(current.as_ref())?;
        let (file, text) =
            documents::file_with(&self.config_dir, current.as_ref(), id, &table).map_err(ChangeError::Write)?;
        let config = config::load_with_file(&self.config_dir, &file, &text).map_err(|errors| {
            ChangeError::Invalid(
                errors
                    .0
                    .into_iter()
                    .map(|p| FieldProblem {
                        field: match p.campaign.as_deref() {
                            Some(other) if other != id => format!("campaign {other}: {}", p.field),
                            _ if p.field.starts_with("line ") || p.field == "-" => format!("{}: {}", p.file, p.field),
                            _ => p.field,
                        },
                        why: p.why,
                    })
                    .collect(),
            )
        })?;
        if let Some(versions) = &self.versions {
            let after = documents::version_of(&table);
            versions
                .advance(id, if_match, &after)
                .map_err(|current| ChangeError::Stale {
                    given: if_match.unwrap_or_default().to_string(),
                    current,
                })?;
        }
        crate::files::write_atomically(&file, text.as_bytes()).map_err(ChangeError::Write)?;
        if let Ok(relative) = file.strip_prefix(&self.config_dir) {
            self.registry.outbox.control(Control::CampaignFile {
                file: relative.display().to_string(),
                campaign: id.to_string(),
                text: text.clone(),
            });
        }
        self.publish(config);
        let position = current.as_ref().map_or(0, |c| c.position);
        Ok(Changed {
            before: current,
            after: CampaignDocument {
                id: id.to_string(),
                file,
                position,
                table,
            },
        })
    }

    /// Writes a campaign file another node of the cluster changed (its
    /// whole text; `file` relative to the config directory, a campaign
    /// file only), under the reload lock: unless this node's copy holds the
    /// same text already, the directory is validated with it (as
    /// `check-config` would), the file written atomically and the new
    /// world published. True when something changed; nothing is written
    /// when the change would make this node's config invalid.
    pub fn mirror_file(&self, file: &str, text: &str) -> Result<bool, MirrorError> {
        let relative = Path::new(file);
        let plain = relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        let path = self.config_dir.join(relative);
        if !plain || !config::is_config_file(&self.config_dir, &path) || relative == Path::new("bullseye.toml") {
            return Err(MirrorError::NotACampaignFile(file.to_string()));
        }
        let _one = self.reloading.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if std::fs::read_to_string(&path).is_ok_and(|current| current == text) {
            return Ok(false);
        }
        let config = config::load_with_file(&self.config_dir, &path, text).map_err(MirrorError::Invalid)?;
        crate::files::write_atomically(&path, text.as_bytes()).map_err(MirrorError::Write)?;
        self.publish(config);
        Ok(true)
    }

    /// The snapshot file to serve: `--segments` if given, else the config's; `None` means an empty audience.
    pub fn snapshot_path(&self) -> Option<PathBuf> {
        self.segments_override
            .clone()
            .or_else(|| self.world.load().settings.audience_snapshot.clone())
    }

    /// Loads the config directory and publishes it if valid.
    pub fn reload_config(&self) -> Result<(), ConfigErrors> {
        // One reload at a time: the watcher and the admin API both come here.
        let _one = self.reloading.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.publish(config::load(&self.config_dir)?);
        Ok(())
    }

    /// Publishes a validated config (the caller holds the reload lock).
    fn publish(&self, config: config::Config) {
        *self.last_config.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(config.clone());
        let world = World::build(config, &self.registry);
        tracing::info!(campaigns = world.campaigns.len(), "configuration reloaded");
        self.replace_world(world);
        self.metrics.config_reloads.inc();
    }

    /// Loads the snapshot file and swaps it in if valid.
    pub fn reload_snapshot(&self) -> Result<(), SnapshotError> {
        let path = self.snapshot_path();
        let snapshot = self.audience.reload(path.as_deref(), self.clock.now().as_second())?;
        tracing::info!(
            users = snapshot.user_count(),
            segments = snapshot.segment_count(),
            "audience snapshot swapped in"
        );
        self.metrics.snapshot_swaps.inc();
        self.metrics.audience_users.set(snapshot.user_count() as i64);
        Ok(())
    }

    /// Starts the watcher thread, which also loads new files; it runs for
    /// the life of the process.
    pub fn watch(self: Arc<Self>) -> notify::Result<()> {
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })?;
        watcher.watch(&self.config_dir, RecursiveMode::Recursive)?;
        // What the files are now, taken before this returns: a change made
        // once the server has started is never taken for the baseline
        // (the watcher thread may start late on a busy machine).
        let config_seen = fingerprint(&config_files(&self.config_dir));
        let snapshot_path = self.snapshot_path();
        let snapshot_seen = fingerprint(snapshot_path.as_slice());
        std::thread::Builder::new()
            .name("bullseye-reload".into())
            .spawn(move || self.watch_loop(watcher, rx, config_seen, (snapshot_path, snapshot_seen)))
            .map_err(notify::Error::io)?;
        Ok(())
    }

    fn watch_loop(
        &self,
        mut watcher: notify::RecommendedWatcher,
        rx: mpsc::Receiver<notify::Result<notify::Event>>,
        mut config_seen: Fingerprint,
        (mut snapshot_path, mut snapshot_seen): (Option<PathBuf>, Fingerprint),
    ) {
        // Loading a 100 M-user snapshot is seconds of CPU: at a lower
        // priority it takes the cores' spare time, not the bid path's
        // (PERFORMANCE.md: swap under load).
        lower_this_threads_priority();
        let mut watched_dir = None;
        loop {
            // Keep the snapshot's directory watched (it may live elsewhere).
            let dir = snapshot_path.as_deref().and_then(Path::parent).map(Path::to_path_buf);
            if dir != watched_dir {
                if let Some(dir) = &dir
                    && !dir.starts_with(&self.config_dir)
                {
                    let _ = watcher.watch(dir, RecursiveMode::NonRecursive);
                }
                watched_dir = dir;
            }
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(_) => {
                    // Let a burst of writes settle, then look once.
                    std::thread::sleep(Duration::from_millis(100));
                    while rx.try_recv().is_ok() {}
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            let config_now = fingerprint(&config_files(&self.config_dir));
            if config_now != config_seen {
                config_seen = config_now;
                if let Err(errors) = self.reload_config() {
                    self.metrics.config_reload_failures.inc();
                    for problem in &errors.0 {
                        tracing::error!(%problem, "configuration change rejected; the last good configuration keeps serving");
                    }
                }
            }
            let path_now = self.snapshot_path();
            let snapshot_now = fingerprint(path_now.as_slice());
            if path_now != snapshot_path || snapshot_now != snapshot_seen {
                snapshot_path = path_now;
                snapshot_seen = snapshot_now;
                if let Err(e) = self.reload_snapshot() {
                    self.metrics.snapshot_failures.inc();
                    tracing::error!(error = %e, "audience snapshot rejected; the current one keeps serving");
                }
            }
        }
    }
}

/// Nice 10 for the calling thread only (Linux applies `setpriority` to a
/// thread id); elsewhere, nothing.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take plain integers and touch no
        // memory of ours.
        let done = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10)
        };
        if done != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "reload thread keeps its priority");
        }
    }
}
