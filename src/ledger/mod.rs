//! The billing ledger: an append-only, crash-safe log of every billable
//! tracking event.
//!
//! One file per UTC day (`billing-YYYY-MM-DD.log`) in `{data_dir}/ledger/`,
//! framed records ([`record`]). A dedicated writer thread takes records from
//! a queue, writes everything queued, calls `fdatasync` once for the whole
//! batch (group commit), and only then lets each caller answer its HTTP
//! request: nothing is acknowledged before it is durable. On open, every
//! file is read back; a torn last record (a crash mid-write) is cut off and
//! the valid records are returned so spend and deduplication can be
//! restored. Nothing unwritten is ever acknowledged: a failed write (disk
//! full) refuses the batch, cuts its partial bytes off again and marks the
//! ledger unhealthy until a later write succeeds; a failed sync (whose data
//! the kernel may have dropped) refuses every later write until a restart
//! reads the file back. A record followed by garbage *and then* valid
//! records is corruption, not a torn tail: the ledger refuses to open
//! rather than cut acknowledged records.

pub mod bids;
pub mod cube;
pub mod experiment;
pub mod losses;
pub mod query;
pub mod record;
pub mod report;
pub mod rollup;
pub mod storage;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

pub use record::{EventKind, Record};
pub use storage::{Disk, SimulatedDisk, Storage};

/// Most records written per fsync.
const MAX_BATCH: usize = 4096;

/// Why the ledger cannot open or write.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A file or directory operation failed.
    #[error("ledger I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Garbage between valid records: corruption, not a torn tail.
    #[error(
        "billing log {path} is corrupt at byte {offset}: valid records follow at byte {next}, so this is \
         not a torn tail; move the file aside or repair it (nothing was cut)"
    )]
    Corrupt {
        /// The billing-log file.
        path: String,
        /// Where the readable records end.
        offset: usize,
        /// Where valid records start again.
        next: usize,
    },
    /// The writer thread is gone (the bidder is shutting down or the thread died).
    #[error("the ledger writer has stopped")]
    Stopped,
    /// A write or sync failed: the event was not recorded and must not be acknowledged.
    #[error("the ledger could not write or sync; billing is refused")]
    WriteFailed,
}

struct Job {
    frame: Vec<u8>,
    day: String,
    done: tokio::sync::oneshot::Sender<Result<(), ()>>,
}

/// Handle to the ledger writer. Cloning shares the writer.
#[derive(Clone)]
pub struct Ledger {
    queue: mpsc::Sender<Job>,
    healthy: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
    dir: PathBuf,
}

/// The file name of a UTC day (`at` in Unix microseconds).
pub fn file_name(at_micros: i64) -> String {
    let at = jiff::Timestamp::from_microsecond(at_micros).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("billing-{}.log", at.to_zoned_datetime(jiff::tz::TimeZone::UTC).date())
}

/// Ledger files in `dir`, oldest first.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("billing-") && n.ends_with(".log"))
        })
        .collect();
    files.sort();
    files
}

/// Turns an I/O error on `path` into a [`LedgerError::Io`] naming it.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError + use<> {
    let path = path.display().to_string();
    move |source| LedgerError::Io { path, source }
}

/// Reads every record of every file in `dir` (torn tails skipped).
pub fn read_all(dir: &Path) -> Result<Vec<Record>, LedgerError> {
    let mut records = Vec::new();
    for path in files(dir) {
        let bytes = std::fs::read(&path).map_err(io_error(&path))?;
        let (found, valid) = record::decode_all(&bytes);
        check_tail(&path, &bytes, valid)?;
        records.extend(found);
    }
    Ok(records)
}

/// Day files read back at start-up: today's and yesterday's (UTC) cover
/// every window that restore needs (24 h of notices, dedup and pCTR; a
/// campaign's local day).
pub const RESTORE_DAYS: usize = 2;

/// The records of the recent day files, oldest first, read one frame at a
/// time. An I/O error ends the iteration with that error.
pub struct Recovered {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(PathBuf, record::Frames<File>)>,
}

impl Iterator for Recovered {
    type Item = Result<Record, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((path, frames)) = &mut self.current {
                if let Some(record) = frames.next() {
                    return Some(Ok(record));
                }
                if let Some(source) = frames.error.take() {
                    let error = io_error(path)(source);
                    self.current = None;
                    return Some(Err(error));
                }
            }
            let path = self.files.next()?;
            match File::open(&path) {
                Ok(file) => self.current = Some((path, record::Frames::new(file))),
                Err(source) => return Some(Err(io_error(&path)(source))),
            }
        }
    }
}

/// Every record of one day file, read one frame at a time; stops at a torn
/// tail (an I/O error is in the returned reader's `error`).
pub fn stream_file(path: &Path) -> Result<record::Frames<File>, LedgerError> {
    let file = File::open(path).map_err(io_error(path))?;
    Ok(record::Frames::new(file))
}

/// The records of one day file from byte `offset` (a frame boundary, as
/// [`record::Frames::valid_len`] gave it) on; `valid_len` then counts from
/// `offset`.
pub fn stream_file_from(path: &Path, offset: u64) -> Result<record::Frames<File>, LedgerError> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path).map_err(io_error(path))?;
    file.seek(SeekFrom::Start(offset)).map_err(io_error(path))?;
    Ok(record::Frames::new(file))
}

/// Cuts a torn last frame off `path`, refusing to cut anything followed by
/// valid records (corruption, not a crash). Reads the file a frame at a
/// time; only what follows the valid prefix is held in memory.
fn cut_torn_tail(path: &Path) -> Result<(), LedgerError> {
    let io = |source| io_error(path)(source);
    let len = std::fs::metadata(path).map_err(io)?.len();
    let mut frames = stream_file(path)?;
    for _ in frames.by_ref() {}
    if let Some(source) = frames.error.take() {
        return Err(io(source));
    }
    let valid = frames.valid_len();
    if valid == len {
        return Ok(());
    }
    let mut tail = Vec::new();
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = File::open(path).map_err(io)?;
        file.seek(SeekFrom::Start(valid)).map_err(io)?;
        file.read_to_end(&mut tail).map_err(io)?;
    }
    // `corruption_after` looks past the first byte: give it a dummy one.
    let mut probe = Vec::with_capacity(tail.len() + 1);
    probe.push(0);
    probe.extend_from_slice(&tail);
    if let Some(next) = record::corruption_after(&probe, 0) {
        return Err(LedgerError::Corrupt {
            path: path.display().to_string(),
            offset: valid as usize,
            next: valid as usize + next - 1,
        });
    }
    tracing::warn!(file = %path.display(), cut = len - valid, "torn record at the end of the billing log cut off");
    let file = OpenOptions::new().write(true).open(path).map_err(io)?;
    file.set_len(valid).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Refuses a file whose invalid part is followed by valid records.
fn check_tail(path: &Path, bytes: &[u8], valid: usize) -> Result<(), LedgerError> {
    if valid == bytes.len() {
        return Ok(());
    }
    match record::corruption_after(bytes, valid) {
        Some(next) => Err(LedgerError::Corrupt {
            path: path.display().to_string(),
            offset: valid,
            next,
        }),
        None => Ok(()),
    }
}

impl Ledger {
    /// Opens (creating) the ledger in `dir`, cuts a torn tail off its
    /// newest file, and returns the handle with the records of the last
    /// [`RESTORE_DAYS`] day files, read one at a time (never all of
    /// history: a restart costs the same after a day or a year).
    pub fn open(dir: &Path) -> Result<(Ledger, Recovered), LedgerError> {
        Ledger::open_on(dir, Arc::new(Disk))
    }

    /// [`Ledger::open`] over the given storage (fault injection in tests).
    pub fn open_on(dir: &Path, storage: Arc<dyn Storage>) -> Result<(Ledger, Recovered), LedgerError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let all = files(dir);
        // Only the file being written when the process stopped can have a
        // torn tail: files are written in time order, one day after another.
        if let Some(newest) = all.last() {
            cut_torn_tail(newest)?;
        }
        let recent = all[all.len().saturating_sub(RESTORE_DAYS)..].to_vec();
        let (queue, jobs) = mpsc::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let failures = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            storage,
            dir: dir.to_path_buf(),
            open: None,
            healthy: healthy.clone(),
            failures: failures.clone(),
            broken: false,
        };
        std::thread::Builder::new()
            .name("bullseye-ledger".into())
            .spawn(move || writer.run(jobs))
            .map_err(io_error(dir))?;
        Ok((
            Ledger {
                queue,
                healthy,
                failures,
                dir: dir.to_path_buf(),
            },
            Recovered {
                files: recent.into_iter(),
                current: None,
            },
        ))
    }

    /// The ledger directory (`{data_dir}/ledger`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Batches refused because a write or sync failed.
    pub fn write_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// False after a failed write or sync, until a write succeeds again.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Appends a record; resolves once it is on disk.
    pub async fn append(&self, record: &Record) -> Result<(), LedgerError> {
        let mut frame = Vec::with_capacity(256);
        record::encode(record, &mut frame);
        let (done, durable) = tokio::sync::oneshot::channel();
        let job = Job {
            frame,
            day: file_name(record.at),
            done,
        };
        self.queue.send(job).map_err(|_| LedgerError::Stopped)?;
        match durable.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(())) => Err(LedgerError::WriteFailed),
            Err(_) => Err(LedgerError::Stopped),
        }
    }
}

struct Writer {
    /// Where durability comes from (the real disk, or a simulated one).
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    /// Today's file and its length after the last durable write.
    open: Option<OpenFile>,
    healthy: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
    /// Set when a failed write could not be undone or a sync failed: after a
    /// failed `fdatasync` the kernel may have dropped dirty pages, so what
    /// is on disk is unknown until the file is read back at restart.
    /// Every later write is refused.
    broken: bool,
}

struct OpenFile {
    day: String,
    file: File,
    len: u64,
}

/// Why a batch was refused.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// A write failed (disk full, file too large) and the partial bytes
    /// were cut off again: later batches may succeed.
    #[error("{0}")]
    Write(std::io::Error),
    /// A sync failed, or a partial write could not be cut off.
    #[error("{0}; the log is left as it is and every later event is refused until a restart")]
    Broken(std::io::Error),
    #[error("an earlier failure left the log in an unknown state; restart to recover it")]
    AlreadyBroken,
}

impl Writer {
    fn run(mut self, jobs: mpsc::Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let durable = match self.write(&batch) {
                Ok(()) => {
                    self.healthy.store(true, Ordering::Relaxed);
                    batch.len()
                }
                Err((durable, e)) => {
                    self.healthy.store(false, Ordering::Relaxed);
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    if matches!(e, WriteError::Broken(_)) {
                        self.broken = true;
                    }
                    tracing::error!(error = %e, records = batch.len() - durable, "billing log write failed; events refused");
                    durable
                }
            };
            for (i, job) in batch.into_iter().enumerate() {
                let _ = job.done.send(if i < durable { Ok(()) } else { Err(()) });
            }
        }
        // All handles dropped: every queued record has been answered.
    }

    fn file(&mut self, day: &str) -> std::io::Result<&mut OpenFile> {
        if self.open.as_ref().is_none_or(|open| open.day != day) {
            let path = self.dir.join(day);
            let created = !path.exists();
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            if created {
                // Make the new file's directory entry durable too.
                self.storage.sync_dir(&self.dir)?;
            }
            let len = file.metadata()?.len();
            self.storage.opened(&path, len);
            self.open = Some(OpenFile {
                day: day.to_string(),
                file,
                len,
            });
        }
        Ok(self.open.as_mut().expect("just opened"))
    }

    /// Writes a batch, one day's file at a time; on failure, also says how
    /// many of its jobs (a prefix: the earlier days) are durable.
    fn write(&mut self, batch: &[Job]) -> Result<(), (usize, WriteError)> {
        if self.broken {
            return Err((0, WriteError::AlreadyBroken));
        }
        let mut start = 0;
        while start < batch.len() {
            let day = batch[start].day.clone();
            let end = batch[start..]
                .iter()
                .position(|j| j.day != day)
                .map_or(batch.len(), |n| start + n);
            let mut bytes = Vec::with_capacity(batch[start..end].iter().map(|j| j.frame.len()).sum());
            for job in &batch[start..end] {
                bytes.extend_from_slice(&job.frame);
            }
            let storage = self.storage.clone();
            let path = self.dir.join(&day);
            let open = self.file(&day).map_err(|e| (start, WriteError::Write(e)))?;
            if let Err(e) = open.file.write_all(&bytes) {
                // Cut the partial frames off, so the next record does not
                // land after garbage (which recovery would take for
                // corruption). Earlier days' jobs in the batch are durable
                // and acknowledged.
                let undone = open
                    .file
                    .set_len(open.len)
                    .and_then(|()| storage.sync(&path, &open.file, open.len));
                self.open = None;
                return Err((
                    start,
                    match undone {
                        Ok(()) => WriteError::Write(e),
                        Err(_) => WriteError::Broken(e),
                    },
                ));
            }
            let len = open.len + bytes.len() as u64;
            if let Err(e) = storage.sync(&path, &open.file, len) {
                self.open = None;
                return Err((start, WriteError::Broken(e)));
            }
            open.len = len;
            start = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bid: &str, at: i64) -> Record {
        Record {
            at,
            event: EventKind::Bill,
            bid: bid.into(),
            campaign: "c".into(),
            creative: "k".into(),
            exchange: "default".into(),
            clearing: Some(1_000_000),
            charge: 1_000,
            billed: true,
            filtered: None,
            test: false,
            user: 0,
            pricing: crate::campaigns::Pricing::Cpm,
            value: None,
            order: None,
            domain: String::new(),
            country: String::new(),
            device: 0,
            utc_offset: None,
            counts: None,
            arm: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_are_durable_and_recovered_with_torn_tails_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, recovered) = Ledger::open(dir.path()).unwrap();
        assert_eq!(recovered.count(), 0);
        let day = 1_795_000_000_000_000; // 2026-11-18
        let mut tasks = Vec::new();
        for i in 0..200 {
            let ledger = ledger.clone();
            tasks.push(tokio::spawn(async move {
                ledger.append(&record(&format!("b{i}"), day)).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        ledger.append(&record("next-day", day + 86_400_000_000)).await.unwrap();
        drop(ledger);
        assert_eq!(files(dir.path()).len(), 2);
        // A crash mid-write leaves half a record at the end of the file
        // being written: the newest.
        let newest = files(dir.path())[1].clone();
        let whole = std::fs::metadata(&newest).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&newest).unwrap();
        file.write_all(&[42, 0, 0, 0, 1, 2]).unwrap();
        drop(file);
        let (_, recovered) = Ledger::open(dir.path()).unwrap();
        assert_eq!(recovered.map(Result::unwrap).count(), 201);
        assert_eq!(
            std::fs::metadata(&newest).unwrap().len(),
            whole,
            "the torn tail was cut"
        );
        let (_, again) = Ledger::open(dir.path()).unwrap();
        assert_eq!(again.count(), 201);
    }

    /// Issue 17, item 14: a restart read the whole billing history into
    /// memory. Only the last `RESTORE_DAYS` day files are read back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_reads_only_the_recent_day_files() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = Ledger::open(dir.path()).unwrap();
        let day = 1_795_000_000_000_000; // 2026-11-18
        for d in 0..5 {
            ledger
                .append(&record(&format!("b{d}"), day + d * 86_400_000_000))
                .await
                .unwrap();
        }
        drop(ledger);
        let (_, recovered) = Ledger::open(dir.path()).unwrap();
        let bids: Vec<String> = recovered.map(|r| r.unwrap().bid).collect();
        assert_eq!(bids, ["b3", "b4"]);
    }

    #[test]
    fn corruption_before_valid_records_is_refused_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(1_795_000_000_000_000));
        let mut bytes = Vec::new();
        record::encode(&record("first", 1), &mut bytes);
        let damaged_at = bytes.len();
        record::encode(&record("second", 2), &mut bytes);
        record::encode(&record("third", 3), &mut bytes);
        // A flipped byte inside the second record: the third is still valid.
        bytes[damaged_at + 20] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        let error = Ledger::open(dir.path()).err().expect("a corrupt log is refused");
        assert!(
            matches!(error, LedgerError::Corrupt { offset, .. } if offset == damaged_at),
            "{error}"
        );
        assert!(read_all(dir.path()).is_err(), "the report refuses it too");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was cut");
    }
}
