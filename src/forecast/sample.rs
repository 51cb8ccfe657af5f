//! The request sample: a fraction of bid requests, pseudonymised,
//! compressed and rotated into `{data_dir}/sample/`, for the forecast.
//!
//! Off the bid path: the serving thread draws one random number per
//! request (`[sampling] rate`) and, for the few kept, hands the body it
//! has already read (a reference-counted `Bytes`, not a copy) with the
//! exchange and the time to a bounded queue; a full queue drops the
//! request and counts it ([`Sampler::dropped`]). A writer thread decodes
//! and enriches each request as the bid path does (privacy, user, segments
//! from the audience), then writes it pseudonymised ([`pseudonymise`]):
//!
//! - the IP address truncated to its /24 (IPv4) or /48 (IPv6), latitude and
//!   longitude rounded to two decimals (about 1 km);
//! - device ids (`ifa`, `dpidsha1`, `dpidmd5`, `didsha1`, `didmd5`,
//!   `macsha1`, `macmd5`, `device.ext`) dropped;
//! - the user object replaced: with consent it keeps only `yob`, `gender`,
//!   the consent string and a rounded `geo`; its ids (`id`, `buyeruid`,
//!   `eids`, `ext.eids`) and data segments give way to the segment keys the
//!   audience held for the user ([`Sample::segments`], with ancestors, as
//!   targeting sees them), and [`Sample::user`] says only that the user was
//!   recognised;
//! - without consent (see `bidder::privacy`) the request keeps its
//!   contextual form only: no user object, no segments.
//!
//! Files: `sample-{unix micros, 20 digits}-{sequence}.jsonl.gz`, each line
//! a [`Sample`]; every batch the writer takes from the queue is one
//! complete gzip member appended to the current file (a reader sees every
//! finished batch; a torn last member is skipped). A file is closed past
//! 1/16 of `max_bytes` (at least 4 KiB), and the oldest files are deleted
//! while the directory holds more than `max_bytes`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use arc_swap::ArcSwap;
use bytes::Bytes;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audience::AudienceStore;
use crate::bidder::{decode, enrich};
use crate::live::World;

/// Requests queued for the writer at most; past it they are dropped.
const QUEUE: usize = 1024;
/// Samples the writer takes from the queue into one gzip member at most.
const BATCH: usize = 1024;
/// The smallest file size at which a file is closed.
const MIN_FILE_BYTES: u64 = 4 * 1024;

/// One sampled bid request, as the sample keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Unix microseconds when the request came.
    pub at: i64,
    /// The name of the exchange it came from.
    pub exchange: String,
    /// The sampling rate when it was kept, requests per million: each
    /// sample stands for `1e6 / rate_ppm` requests.
    pub rate_ppm: u32,
    /// Personal data may be used (no `bidder::privacy` restriction).
    pub consent: bool,
    /// The user was recognised (nothing of the id is kept).
    #[serde(default)]
    pub user: bool,
    /// The user's segment keys with ancestors (consent only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<u64>,
    /// Why the whole request got no bid before selection, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screened: Option<String>,
    /// The bid request, pseudonymised.
    pub request: Value,
}

/// A request handed to the writer.
struct Queued {
    at: Timestamp,
    exchange: Option<String>,
    body: Bytes,
    rate_ppm: u32,
}

/// The serving threads' end: the random draw and the bounded queue.
pub struct Sampler {
    queue: Option<SyncSender<Queued>>,
    world: Arc<ArcSwap<World>>,
    dropped: AtomicU64,
}

impl Sampler {
    /// A sampler that keeps nothing (tools and tests without a data dir).
    pub fn none(world: Arc<ArcSwap<World>>) -> Sampler {
        Sampler {
            queue: None,
            world,
            dropped: AtomicU64::new(0),
        }
    }

    /// Starts the writer thread over `dir` (created if missing).
    pub fn start(dir: &Path, world: Arc<ArcSwap<World>>, audience: Arc<AudienceStore>) -> std::io::Result<Sampler> {
        std::fs::create_dir_all(dir)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let writer = Writer {
            files: Files::new(dir),
            world: world.clone(),
            audience,
        };
        std::thread::Builder::new()
            .name("sample-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(Sampler {
            queue: Some(tx),
            world,
            dropped: AtomicU64::new(0),
        })
    }

    /// Called for every bid request with its body: keeps it at the
    /// configured rate. One random number, and for a kept request a
    /// reference to the body; never waits.
    pub fn offer(&self, exchange: Option<&str>, body: &Bytes, now: impl FnOnce() -> Timestamp) {
        let Some(queue) = &self.queue else { return };
        let rate_ppm = self.world.load().settings.sampling.rate_ppm;
        if rate_ppm == 0 || (rate_ppm < 1_000_000 && rand::random::<u32>() % 1_000_000 >= rate_ppm) {
            return;
        }
        let queued = Queued {
            at: now(),
            exchange: exchange.map(str::to_string),
            body: body.clone(),
            rate_ppm,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = queue.try_send(queued) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests drawn but dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The writer thread: enriches, pseudonymises, compresses, rotates.
struct Writer {
    files: Files,
    world: Arc<ArcSwap<World>>,
    audience: Arc<AudienceStore>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Queued>) {
        let max_bytes = || self.world.load().settings.sampling.max_bytes;
        while let Ok(first) = rx.recv() {
            let mut lines = Vec::new();
            let first_at = first.at.as_microsecond();
            for queued in std::iter::once(first).chain(rx.try_iter().take(BATCH - 1)) {
                if let Some(sample) = self.sample(&queued) {
                    // A `Value` always serialises.
                    serde_json::to_writer(&mut lines, &sample).expect("JSON");
                    lines.push(b'\n');
                }
            }
            if lines.is_empty() {
                continue;
            }
            if let Err(e) = self.files.append(&gzip(&lines), first_at, max_bytes()) {
                tracing::warn!(error = %e, dir = %self.files.dir.display(), "request sample not written");
            }
        }
    }

    /// The sample of one request; `None` when it is not a bid request.
    fn sample(&self, queued: &Queued) -> Option<Sample> {
        let world = self.world.load();
        let exchange_id = match queued.exchange.as_deref() {
            None => world.default_exchange,
            Some(name) => world.settings.exchange_id(name)?,
        };
        let mut repaired = String::new();
        let request = decode::decode(&queued.body, &mut repaired).ok()?.request;
        let snapshot = self.audience.load();
        let audience = enrich::Audience {
            snapshot: &snapshot,
            overlay: &self.audience.overlay,
            matches: &self.audience.matches,
        };
        let (consent, user, mut segments, screened) =
            match enrich::enrich(&request, &world, exchange_id, audience, queued.at) {
                Ok(ctx) => (
                    ctx.restriction.is_none(),
                    ctx.user_key.is_some(),
                    ctx.facts.segments.iter().map(|s| s.0).collect::<Vec<u64>>(),
                    None,
                ),
                Err(reason) => (false, false, Vec::new(), Some(reason.as_str().to_string())),
            };
        segments.sort_unstable();
        segments.dedup();
        let mut request: Value = serde_json::from_slice(&queued.body).ok()?;
        pseudonymise(&mut request, consent);
        Some(Sample {
            at: queued.at.as_microsecond(),
            exchange: world.settings.exchange_at(exchange_id).name.clone(),
            rate_ppm: queued.rate_ppm,
            consent,
            user: consent && user,
            segments: if consent { segments } else { Vec::new() },
            screened,
            request,
        })
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::default());
    // Writing to a Vec cannot fail.
    encoder.write_all(bytes).expect("in memory");
    encoder.finish().expect("in memory")
}

/// Device fields that identify the device.
const DEVICE_IDS: [&str; 8] = [
    "ifa", "dpidsha1", "dpidmd5", "didsha1", "didmd5", "macsha1", "macmd5", "ext",
];

/// Drops or pseudonymises every personal field of a bid request (see the
/// module's header); `consent`: personal data may be used.
pub fn pseudonymise(request: &mut Value, consent: bool) {
    let Some(fields) = request.as_object_mut() else { return };
    if let Some(device) = fields.get_mut("device").and_then(Value::as_object_mut) {
        for id in DEVICE_IDS {
            device.remove(id);
        }
        truncate_ip(device, "ip");
        truncate_ip(device, "ipv6");
        round_geo(device);
    }
    let user = fields.remove("user");
    if consent && let Some(Value::Object(user)) = user {
        fields.insert("user".into(), Value::Object(contextual_user(user)));
    }
}

/// What a consented user object keeps: age, gender, consent, coarse place.
fn contextual_user(mut user: Map<String, Value>) -> Map<String, Value> {
    let mut kept = Map::new();
    for field in ["yob", "gender", "consent"] {
        if let Some(value) = user.remove(field) {
            kept.insert(field.into(), value);
        }
    }
    if let Some(consent) = user.get("ext").and_then(|ext| ext.get("consent")) {
        kept.insert("ext".into(), serde_json::json!({ "consent": consent }));
    }
    if let Some(Value::Object(mut geo)) = user.remove("geo") {
        round_lat_lon(&mut geo);
        kept.insert("geo".into(), Value::Object(geo));
    }
    kept
}

fn truncate_ip(device: &mut Map<String, Value>, field: &str) {
    let Some(value) = device.remove(field) else { return };
    let truncated = match value.as_str().and_then(|ip| ip.trim().parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(ip)) => {
            let [a, b, c, _] = ip.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        Some(IpAddr::V6(ip)) => {
            let s = ip.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
        None => return,
    };
    device.insert(field.into(), Value::String(truncated.to_string()));
}

fn round_geo(device: &mut Map<String, Value>) {
    if let Some(Value::Object(geo)) = device.get_mut("geo") {
        round_lat_lon(geo);
    }
}

/// Latitude and longitude to two decimals (about a kilometre).
fn round_lat_lon(geo: &mut Map<String, Value>) {
    for field in ["lat", "lon"] {
        if let Some(value) = geo.get(field).and_then(Value::as_f64) {
            geo.insert(field.into(), serde_json::json!((value * 100.0).round() / 100.0));
        }
    }
    geo.remove("ext");
}

/// The sample's files: the one written, rotation and the size bound.
struct Files {
    dir: PathBuf,
    current: Option<(File, u64)>,
    sequence: u64,
}

impl Files {
    fn new(dir: &Path) -> Files {
        Files {
            dir: dir.to_path_buf(),
            current: None,
            sequence: 0,
        }
    }

    /// Appends one gzip member (its first sample at `first_at`, naming a
    /// new file), closing the file past its share of
    /// `max_bytes` and deleting the oldest files past `max_bytes`.
    fn append(&mut self, member: &[u8], first_at: i64, max_bytes: u64) -> std::io::Result<()> {
        let file_bytes = (max_bytes / 16).max(MIN_FILE_BYTES);
        if self.current.as_ref().is_some_and(|(_, size)| *size >= file_bytes) {
            self.current = None;
        }
        if self.current.is_none() {
            self.sequence += 1;
            let name = format!(
                "sample-{:020}-{:06}.jsonl.gz",
                first_at.max(0),
                self.sequence % 1_000_000
            );
            let file = OpenOptions::new().create(true).append(true).open(self.dir.join(name))?;
            self.current = Some((file, 0));
        }
        let (file, size) = self.current.as_mut().expect("opened above");
        file.write_all(member)?;
        *size += member.len() as u64;
        prune(&self.dir, max_bytes);
        Ok(())
    }
}

/// The sample's files, oldest first.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sample-") && n.ends_with(".jsonl.gz"))
        })
        .collect();
    files.sort();
    files
}

/// Deletes the oldest files while the directory holds more than
/// `max_bytes` (the newest, being written, is kept).
fn prune(dir: &Path, max_bytes: u64) {
    let files = files(dir);
    let sizes: Vec<u64> = files
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .collect();
    let mut total: u64 = sizes.iter().sum();
    for (path, size) in files.iter().zip(&sizes).take(files.len().saturating_sub(1)) {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(path).is_ok() {
            total -= size;
        }
    }
}

/// Every sample in `dir`, oldest file first; an unreadable line or a torn
/// last member ends its file.
pub fn read(dir: &Path) -> Vec<Sample> {
    let mut samples = Vec::new();
    for path in files(dir) {
        let Ok(file) = File::open(&path) else { continue };
        for line in BufReader::new(MultiGzDecoder::new(file)).lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str(&line) {
                Ok(sample) => samples.push(sample),
                Err(_) => break,
            }
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn personal_request() -> Value {
        json!({
            "id": "r1",
            "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
            "site": {"domain": "news.example"},
            "device": {"ua": "Mozilla/5.0", "ip": "203.0.113.77", "ipv6": "2001:db8:1234:5678::9",
                       "ifa": "6d92078a-8246-4ba4-ae5b-76104861e7dc", "dpidsha1": "aa", "dpidmd5": "bb",
                       "didsha1": "cc", "didmd5": "dd", "macsha1": "ee", "macmd5": "ff",
                       "ext": {"ifv": "x"}, "geo": {"country": "USA", "lat": 40.712776, "lon": -74.005974}},
            "user": {"id": "our-user-9", "buyeruid": "buyer-9", "yob": 1990, "gender": "F",
                     "consent": "CONSENT", "keywords": "cats",
                     "eids": [{"source": "liveramp.com", "uids": [{"id": "ramp-9"}]}],
                     "data": [{"id": "dmp", "segment": [{"id": "s1"}]}],
                     "ext": {"consent": "CONSENT", "eids": [{"source": "id5-sync.com", "uids": [{"id": "id5-9"}]}]}},
            "regs": {"gdpr": 1}
        })
    }

    #[test]
    fn pseudonymisation_drops_every_personal_field() {
        let mut request = personal_request();
        pseudonymise(&mut request, true);
        assert_eq!(
            request,
            json!({
                "id": "r1",
                "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
                "site": {"domain": "news.example"},
                "device": {"ua": "Mozilla/5.0", "ip": "203.0.113.0", "ipv6": "2001:db8:1234::",
                           "geo": {"country": "USA", "lat": 40.71, "lon": -74.01}},
                "user": {"yob": 1990, "gender": "F", "consent": "CONSENT", "ext": {"consent": "CONSENT"}},
                "regs": {"gdpr": 1}
            })
        );
        let text = request.to_string();
        for secret in [
            "our-user-9",
            "buyer-9",
            "ramp-9",
            "id5-9",
            "6d92078a",
            "203.0.113.77",
            "cats",
            "s1",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn without_consent_only_the_contextual_form_is_kept() {
        let mut request = personal_request();
        pseudonymise(&mut request, false);
        assert_eq!(request.get("user"), None);
        assert_eq!(request["device"]["ip"], "203.0.113.0");
        assert_eq!(request["site"]["domain"], "news.example");
    }

    /// A world with `[sampling] max_bytes` and the corpus' default exchange.
    fn world(max_bytes: u64, rate: &str) -> Arc<ArcSwap<World>> {
        let settings = format!(
            "[secrets]\nsigning_key = \"test-signing-key-0123456789abcdefghijkl\"\n[sampling]\nrate = {rate}\nmax_bytes = {max_bytes}\n"
        );
        let config = crate::config::from_texts_with(Path::new("cfg"), &settings, &[], &crate::config::Env::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let live = crate::live::LiveStates::default();
        Arc::new(ArcSwap::from_pointee(World::build(config, &live)))
    }

    /// Waits for the writer to have written `n` samples.
    fn wait_for(dir: &Path, n: usize) -> Vec<Sample> {
        for _ in 0..500 {
            let samples = read(dir);
            if samples.len() >= n {
                return samples;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{} samples written, not {n}", read(dir).len());
    }

    #[test]
    fn the_writer_keeps_segments_only_with_consent() {
        let dir = tempfile::tempdir().unwrap();
        let world = world(1_000_000, "1");
        let audience = Arc::new(AudienceStore::open(None).unwrap());
        let sampler = Sampler::start(dir.path(), world, audience).unwrap();
        let at: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let mut consented = personal_request();
        consented.as_object_mut().unwrap().remove("regs");
        let gdpr = personal_request();
        let mut coppa = personal_request();
        coppa["regs"] = json!({"coppa": 1});
        for request in [&consented, &gdpr, &coppa] {
            sampler.offer(Some("default"), &Bytes::from(request.to_string()), || at);
        }
        let samples = wait_for(dir.path(), 3);
        assert!(samples[0].consent && samples[0].user);
        assert_eq!(
            samples[0].request["user"],
            json!({"yob": 1990, "gender": "F", "consent": "CONSENT", "ext": {"consent": "CONSENT"}})
        );
        // GDPR without a consent string granting the purposes, and COPPA:
        // the contextual form.
        for sample in &samples[1..] {
            assert!(!sample.consent && sample.segments.is_empty() && !sample.user);
            assert_eq!(sample.request.get("user"), None);
        }
        assert_eq!(samples[0].at, at.as_microsecond());
        assert_eq!(
            (samples[0].exchange.as_str(), samples[0].rate_ppm),
            ("default", 1_000_000)
        );
        assert_eq!(sampler.dropped(), 0);
    }

    #[test]
    fn rotation_bounds_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Files::new(dir.path());
        let max_bytes = 64 * 1024;
        for i in 0..400 {
            // Incompressible: about 1 KB of random hex per member.
            let line: String = (0..64).map(|_| format!("{:016x}", rand::random::<u64>())).collect();
            let member = gzip(line.as_bytes());
            files.append(&member, i, max_bytes).unwrap();
        }
        let total: u64 = super::files(dir.path())
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert!(total <= max_bytes, "{total} bytes");
        assert!(super::files(dir.path()).len() > 1, "rotated");
        let first = super::files(dir.path())[0].clone();
        assert_ne!(
            first.file_name().unwrap().to_str().unwrap(),
            "sample-00000000000000000000-000001.jsonl.gz",
            "the oldest deleted"
        );
    }
}
