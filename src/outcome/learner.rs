//! The learner: trains the click and conversion models off the bid path
//! and publishes them, swapped whole.
//!
//! The tracking path hands it [`Observation`]s (a billed impression, a
//! billable click, a credited conversion) through a bounded queue; a full
//! queue drops the observation and counts it, it never waits. A thread
//! rebuilds each observation's features from what the signed tracking URL
//! carried — exchange, domain, country, device type, campaign-local hour,
//! campaign and creative — and the user's segments looked up now in the
//! audience (snapshot and overlay), trains them into the [`Trainer`], and
//! publishes a new [`Model`] every [`PUBLISH_EVERY`] (the bid path `load`s
//! it: no lock). An observation without a user (no id, or no consent)
//! trains contextual features only.
//!
//! **Feature log.** Each observation trained is appended to
//! `DATA_DIR/outcome/features-{day}.log` (UTC day; buffered, not fsynced —
//! it is not billing): time, label, bid id, campaign key, creative and the
//! impression's feature hashes, about 250 bytes. The last [`KEEP_DAYS`]
//! days are kept and replayed at start, so a restart does not forget what
//! was learned; `bullseye model evaluate` reads them.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::model::{Label, Model, Trainer, all_slots, prepare};
use super::{Candidate, Prediction, Predictor, Prepared, Subject};
use crate::audience::{AudienceStore, SegmentKey};

/// How often a new model is published.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(5);

/// Observations queued at most; more are dropped (and counted). The
/// queue's slots are allocated up front (about 200 bytes each).
pub const QUEUE: usize = 8_192;

/// Days of feature log kept and replayed at start.
pub const KEEP_DAYS: i64 = 3;

/// What the tracking path saw (see the module header).
#[derive(Clone, Debug)]
pub struct Observation {
    /// Impression, click or conversion.
    pub label: Label,
    /// When, Unix seconds.
    pub at: i64,
    /// The bid's id.
    pub bid: String,
    /// The campaign's key (`CompiledCampaign::key`).
    pub campaign_key: u64,
    /// The creative's id.
    pub creative: String,
    /// The exchange's name.
    pub exchange: String,
    /// Where the ad showed, as signed into its URL.
    pub domain: String,
    /// Country code, as signed into its URL.
    pub country: String,
    /// Device type (0 unknown).
    pub device: u8,
    /// Hour of the day at bid time in the campaign's zone.
    pub local_hour: u8,
    /// The user's key; 0 when unknown or without consent.
    pub user: u64,
}

/// What the learning thread is handed.
enum Message {
    Observe(Observation),
    /// Publish now what was trained, then answer.
    Publish(SyncSender<()>),
}

/// The learner's handle: where observations go, and the published model.
pub struct Learner {
    queue: SyncSender<Message>,
    published: Arc<ArcSwap<Model>>,
    /// Observations dropped because the queue was full.
    pub dropped: AtomicU64,
    /// A simulation: observations wait for room rather than being dropped,
    /// so that a run repeats.
    on_demand: bool,
}

/// The published model as a [`Predictor`].
pub struct Published(pub Arc<ArcSwap<Model>>);

impl Predictor for Published {
    fn prepare(&self, subject: &Subject, prepared: &mut Prepared) {
        self.0.load().prepare(subject, prepared);
    }

    fn predict(&self, _subject: &Subject, prepared: &Prepared, candidate: &Candidate) -> Option<Prediction> {
        self.0.load().predict(prepared, candidate)
    }
}

impl Learner {
    /// Starts the learning thread over `audience`, replaying and writing
    /// the feature log in `data_dir` (none: in memory only), publishing
    /// every [`PUBLISH_EVERY`], or only when asked ([`Learner::publish`])
    /// when `on_demand` (a simulation, whose time is not the wall clock's).
    pub fn start(
        audience: Arc<AudienceStore>,
        data_dir: Option<&Path>,
        now: i64,
        on_demand: bool,
    ) -> std::io::Result<Arc<Learner>> {
        let log = data_dir.map(|d| d.join("outcome"));
        let mut trainer = Trainer::default();
        if let Some(dir) = &log {
            std::fs::create_dir_all(dir)?;
            replay(dir, now, &mut trainer)?;
        }
        let published = Arc::new(ArcSwap::from_pointee(trainer.publish()));
        let (queue, observations) = std::sync::mpsc::sync_channel(QUEUE);
        let thread = Thread {
            trainer,
            audience,
            on_demand,
            published: published.clone(),
            log: log.map(|dir| FeatureLog {
                dir,
                day: i64::MIN,
                out: None,
            }),
        };
        std::thread::Builder::new()
            .name("outcome-learner".into())
            .spawn(move || thread.run(observations))?;
        Ok(Arc::new(Learner {
            queue,
            published,
            dropped: AtomicU64::new(0),
            on_demand,
        }))
    }

    /// Hands an observation to the learner, never waiting (except in a
    /// simulation, where it waits for room).
    pub fn observe(&self, observation: Observation) {
        if self.on_demand {
            let _ = self.queue.send(Message::Observe(observation));
            return;
        }
        if let Err(TrySendError::Full(_)) = self.queue.try_send(Message::Observe(observation)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Trains what was handed so far and publishes the model, waiting for
    /// it (a simulation's clock step).
    pub fn publish(&self) {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if self.queue.send(Message::Publish(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// The published model, as the bid path predicts with it.
    pub fn predictor(&self) -> Arc<dyn Predictor> {
        Arc::new(Published(self.published.clone()))
    }

    /// The model published last.
    pub fn model(&self) -> Arc<Model> {
        self.published.load_full()
    }
}

struct Thread {
    trainer: Trainer,
    audience: Arc<AudienceStore>,
    on_demand: bool,
    published: Arc<ArcSwap<Model>>,
    log: Option<FeatureLog>,
}

impl Thread {
    fn run(mut self, messages: Receiver<Message>) {
        let mut last = Instant::now();
        let mut trained = self.trainer.examples();
        loop {
            let asked = match messages.recv_timeout(PUBLISH_EVERY) {
                Ok(Message::Observe(observation)) => {
                    self.learn(&observation);
                    None
                }
                Ok(Message::Publish(done)) => Some(done),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let new = self.trainer.examples() != trained;
            let due = !self.on_demand && last.elapsed() >= PUBLISH_EVERY;
            if new && (asked.is_some() || due) {
                if let Some(log) = &mut self.log {
                    log.flush();
                }
                self.published.store(Arc::new(self.trainer.publish()));
                trained = self.trainer.examples();
                last = Instant::now();
            }
            if let Some(done) = asked {
                let _ = done.send(());
            }
        }
    }

    fn learn(&mut self, o: &Observation) {
        let mut segments: Vec<SegmentKey> = Vec::new();
        if o.user != 0 {
            let snapshot = self.audience.load();
            let from_snapshot = snapshot.lookup(o.user);
            if self.audience.overlay.is_empty() {
                if let Some(found) = from_snapshot {
                    segments.extend(found.keys_with_ancestors());
                }
            } else {
                self.audience
                    .overlay
                    .merge(o.user, &snapshot, from_snapshot, o.at, &mut segments);
            }
        }
        let subject = Subject {
            user_key: (o.user != 0).then_some(o.user),
            segments: &segments,
            exchange: &o.exchange,
            domain: &o.domain,
            country: &o.country,
            device: o.device,
            local_hour: o.local_hour,
            at: o.at,
        };
        let mut prepared = Prepared::default();
        prepare(&subject, &mut prepared);
        let slots = all_slots(&prepared, o.campaign_key, &o.creative);
        self.trainer.train(&slots, o.campaign_key, o.label);
        if let Some(log) = &mut self.log {
            log.write(o, &prepared);
        }
    }
}

/// The feature log's day files (see the module header).
struct FeatureLog {
    dir: PathBuf,
    day: i64,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl FeatureLog {
    fn write(&mut self, o: &Observation, prepared: &Prepared) {
        let day = o.at.div_euclid(86_400);
        if day != self.day {
            self.flush();
            let path = self.dir.join(format!("features-{day}.log"));
            self.out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map(std::io::BufWriter::new)
                .map_err(|e| tracing::warn!(error = %e, path = %path.display(), "feature log not written"))
                .ok();
            self.day = day;
            prune(&self.dir, day - KEEP_DAYS + 1);
        }
        let Some(out) = self.out.as_mut() else { return };
        let label = label_code(o.label);
        let mut line = format!(
            "{}\t{label}\t{}\t{:x}\t{}\t",
            o.at,
            o.bid,
            o.campaign_key,
            o.creative.replace(['\t', '\n'], " ")
        );
        for (i, f) in prepared.features[..prepared.len].iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&format!("{f:x}"));
        }
        line.push('\n');
        if let Err(e) = out.write_all(line.as_bytes()) {
            tracing::warn!(error = %e, "feature log not written");
        }
    }

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut() {
            let _ = out.flush();
        }
    }
}

fn label_code(label: Label) -> char {
    match label {
        Label::Impression => 'i',
        Label::Click => 'c',
        Label::Conversion => 'v',
    }
}

/// Deletes day files before `first_day`.
fn prune(dir: &Path, first_day: i64) {
    for (day, path) in day_files(dir) {
        if day < first_day {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The feature log's day files, oldest first.
pub fn day_files(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut files: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let day = p
                .file_name()?
                .to_str()?
                .strip_prefix("features-")?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            Some((day, p))
        })
        .collect();
    files.sort();
    files
}

/// One line of the feature log.
#[derive(Clone, Debug, PartialEq)]
pub struct Logged {
    /// When, Unix seconds.
    pub at: i64,
    /// Impression, click or conversion.
    pub label: Label,
    /// The bid's id.
    pub bid: String,
    /// The campaign's key.
    pub campaign_key: u64,
    /// The creative's id.
    pub creative: String,
    /// The impression's features, as [`Prepared`] holds them.
    pub prepared: Prepared,
}

impl PartialEq for Prepared {
    fn eq(&self, other: &Self) -> bool {
        self.features[..self.len] == other.features[..other.len]
    }
}

impl Logged {
    /// Reads a line; `None` for a malformed one.
    pub fn parse(line: &str) -> Option<Logged> {
        let mut fields = line.split('\t');
        let at = fields.next()?.parse().ok()?;
        let label = match fields.next()? {
            "i" => Label::Impression,
            "c" => Label::Click,
            "v" => Label::Conversion,
            _ => return None,
        };
        let bid = fields.next()?.to_string();
        let campaign_key = u64::from_str_radix(fields.next()?, 16).ok()?;
        let creative = fields.next()?.to_string();
        let mut prepared = Prepared::default();
        for f in fields.next()?.split(',').filter(|f| !f.is_empty()) {
            if prepared.len == Prepared::CAPACITY {
                break;
            }
            prepared.features[prepared.len] = u32::from_str_radix(f, 16).ok()?;
            prepared.len += 1;
        }
        Some(Logged {
            at,
            label,
            bid,
            campaign_key,
            creative,
            prepared,
        })
    }

    /// Every slot the line trains.
    pub fn slots(&self) -> Vec<u32> {
        all_slots(&self.prepared, self.campaign_key, &self.creative)
    }
}

/// Reads the log lines of the day files from `first_day` on, oldest first.
pub fn read_log(dir: &Path, first_day: i64, mut each: impl FnMut(i64, Logged)) -> std::io::Result<()> {
    for (day, path) in day_files(dir) {
        if day < first_day {
            continue;
        }
        // Not fsynced: a crash may leave a torn last line, skipped.
        let file = std::io::BufReader::new(std::fs::File::open(&path)?);
        for line in file.split(b'\n') {
            if let Some(logged) = std::str::from_utf8(&line?).ok().and_then(Logged::parse) {
                each(day, logged);
            }
        }
    }
    Ok(())
}

/// Trains the kept days of the log into `trainer`.
fn replay(dir: &Path, now: i64, trainer: &mut Trainer) -> std::io::Result<()> {
    let first_day = now.div_euclid(86_400) - KEEP_DAYS + 1;
    let started = Instant::now();
    read_log(dir, first_day, |_, logged| {
        trainer.train(&logged.slots(), logged.campaign_key, logged.label);
    })?;
    if trainer.examples() > 0 {
        tracing::info!(
            examples = trainer.examples(),
            seconds = started.elapsed().as_secs_f64(),
            "click and conversion models replayed from the feature log"
        );
    }
    Ok(())
}
