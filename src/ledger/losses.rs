//! The loss log: one JSON line per loss notice, apart from the billing log.
//!
//! Exchanges that send loss notices send one for almost every bid, many
//! more than wins, and a loss bills nothing: the log is written for
//! reports and for learning (bid shading learns from the minimum bid to
//! win), not for money. So it is not the billing log's durable group
//! commit: a writer thread appends each record to a buffered file and
//! flushes whenever its queue runs empty, never fsyncs, and a full queue
//! drops the record (counted) rather than hold up the tracker. A crash may
//! lose the last lines the kernel had not written.
//!
//! One file per UTC day, `{data_dir}/losses/losses-YYYY-MM-DD.jsonl`, each
//! line a [`LossRecord`]; files past the billing log's retention are
//! deleted with it. [`report`] reads them back as rows per campaign,
//! exchange and reason (`bullseye report --losses`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::openrtb::LossReason;

/// Records queued for the writer at most; past it they are dropped.
const QUEUE: usize = 64 * 1024;
/// The writer's buffer per file.
const BUFFER_BYTES: usize = 256 * 1024;

/// One loss notice, as the loss log keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossRecord {
    /// Unix microseconds when the notice came.
    pub at: i64,
    /// Bid id.
    pub bid: String,
    /// Campaign id.
    pub campaign: String,
    /// Creative id.
    pub creative: String,
    /// Name of the exchange the bid went to.
    pub exchange: String,
    /// The loss reason code (`${AUCTION_LOSS}`); `None` when the exchange
    /// sent none that could be read.
    pub reason: Option<u32>,
    /// The minimum bid that would have won (`${AUCTION_MIN_TO_WIN}`), CPM
    /// micros in the response currency, when the exchange sent a readable
    /// one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_to_win: Option<i64>,
    /// Our bid, CPM micros in the response currency.
    pub bid_price: i64,
    /// The response currency (ISO 4217).
    pub currency: String,
}

/// The file name of a UTC day (`at` in Unix microseconds).
pub fn file_name(at_micros: i64) -> String {
    format!("losses-{}.jsonl", utc_date(at_micros))
}

fn utc_date(at_micros: i64) -> Date {
    let at = jiff::Timestamp::from_microsecond(at_micros).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    at.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()
}

/// The day of a loss-log file name, if it is one.
fn file_date(path: &Path) -> Option<Date> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("losses-")?.strip_suffix(".jsonl")?.parse().ok()
}

/// Handle to the loss log's writer; cloning shares it. [`LossLog::none`]
/// writes nothing (a tracker built without a data directory).
#[derive(Clone)]
pub struct LossLog {
    queue: Option<mpsc::SyncSender<LossRecord>>,
    dropped: Arc<AtomicU64>,
}

impl LossLog {
    /// A log that writes nothing.
    pub fn none() -> LossLog {
        LossLog {
            queue: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Starts the writer thread over `dir` (created if missing).
    pub fn open(dir: &Path) -> std::io::Result<LossLog> {
        std::fs::create_dir_all(dir)?;
        let (queue, records) = mpsc::sync_channel(QUEUE);
        let dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("loss-log".into())
            .spawn(move || write_loop(&dir, &records))?;
        Ok(LossLog {
            queue: Some(queue),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues a record for the writer, without waiting; a full queue (or a
    /// stopped writer) drops it and counts it.
    pub fn append(&self, record: LossRecord) {
        let Some(queue) = &self.queue else {
            return;
        };
        if queue.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The writer: appends each record to its day's file, flushing whenever
/// the queue runs empty; ends (flushed) when every handle is gone.
fn write_loop(dir: &Path, records: &mpsc::Receiver<LossRecord>) {
    let mut open: Option<(String, BufWriter<File>)> = None;
    let mut failing = false;
    while let Ok(first) = records.recv() {
        let mut next = Some(first);
        while let Some(record) = next {
            let result = write_one(dir, &mut open, &record);
            report_failure(&mut failing, result);
            next = records.try_recv().ok();
        }
        if let Some((_, file)) = &mut open {
            report_failure(&mut failing, file.flush());
        }
    }
}

fn write_one(dir: &Path, open: &mut Option<(String, BufWriter<File>)>, record: &LossRecord) -> std::io::Result<()> {
    let name = file_name(record.at);
    if open.as_ref().is_none_or(|(current, _)| *current != name) {
        if let Some((_, mut previous)) = open.take() {
            previous.flush()?;
        }
        let file = OpenOptions::new().create(true).append(true).open(dir.join(&name))?;
        *open = Some((name, BufWriter::with_capacity(BUFFER_BYTES, file)));
    }
    let Some((_, file)) = open else {
        return Ok(());
    };
    // A struct of strings and integers always serialises.
    serde_json::to_writer(&mut *file, record).map_err(std::io::Error::other)?;
    file.write_all(b"\n")
}

/// Logs the first failure of a streak (and the recovery), not every one.
fn report_failure(failing: &mut bool, result: std::io::Result<()>) {
    match result {
        Err(e) if !*failing => {
            *failing = true;
            tracing::warn!(error = %e, "loss log not written (losses are not billing: serving goes on)");
        }
        Ok(()) if *failing => {
            *failing = false;
            tracing::info!("loss log written again");
        }
        _ => {}
    }
}

/// Deletes loss-log files of days more than `retention_days` before
/// `today` (UTC); returns how many.
pub fn prune(dir: &Path, today: Date, retention_days: u32) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let oldest = today.saturating_sub(jiff::Span::new().days(i64::from(retention_days)));
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|path| file_date(path).is_some_and(|day| day < oldest))
        .filter(|path| std::fs::remove_file(path).is_ok())
        .count()
}

/// Losses of one campaign at one exchange for one reason, over the days
/// asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LossRow {
    /// Campaign id.
    pub campaign: String,
    /// Exchange name.
    pub exchange: String,
    /// The reason's name (OpenRTB 2.6 list 5.25, snake case), its number
    /// for an unlisted code, `unknown` when none was sent.
    pub reason: String,
    /// The reason code; `None` when none was sent.
    pub code: Option<u32>,
    /// Loss notices counted (each bid once per log).
    pub losses: u64,
    /// Of them, those that carried a minimum bid to win.
    pub with_min_to_win: u64,
    /// The mean minimum bid to win, CPM micros in the response currency
    /// (rounded down); `None` when none carried one.
    pub mean_min_to_win_micros: Option<i64>,
}

/// One row's counts while the logs are read.
#[derive(Default)]
struct Tally {
    losses: u64,
    with_min_to_win: u64,
    min_to_win_sum: i128,
}

/// Why the loss log cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LossReportError {
    /// A file could not be read.
    #[error("cannot read loss log {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Rows per campaign, exchange and reason from the loss logs in
/// `{data_dir}/losses/` of each data directory, for the UTC days `from` to
/// `to` (inclusive; `None` is open-ended), only `campaigns` when any are
/// named. Each bid counts once, however many logs hold it; unreadable
/// lines (a torn last line) are skipped.
pub fn report(
    data_dirs: &[PathBuf],
    from: Option<Date>,
    to: Option<Date>,
    campaigns: &[String],
) -> Result<Vec<LossRow>, LossReportError> {
    let mut rows: BTreeMap<(String, String, Option<u32>), Tally> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for path in log_files(data_dirs, from, to) {
        let file = File::open(&path).map_err(|source| LossReportError::Io {
            path: path.display().to_string(),
            source,
        })?;
        for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
            let Ok(record) = serde_json::from_str::<LossRecord>(&line) else {
                continue;
            };
            if (!campaigns.is_empty() && !campaigns.contains(&record.campaign)) || !seen.insert(record.bid.clone()) {
                continue;
            }
            let row = rows
                .entry((record.campaign, record.exchange, record.reason))
                .or_default();
            row.losses += 1;
            if let Some(micros) = record.min_to_win {
                row.with_min_to_win += 1;
                row.min_to_win_sum += i128::from(micros);
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|((campaign, exchange, code), tally)| LossRow {
            campaign,
            exchange,
            reason: LossReason::name_of(code.map(LossReason)).into_owned(),
            code,
            losses: tally.losses,
            with_min_to_win: tally.with_min_to_win,
            mean_min_to_win_micros: (tally.with_min_to_win > 0)
                .then(|| (tally.min_to_win_sum / i128::from(tally.with_min_to_win)) as i64),
        })
        .collect())
}

/// The loss-log files of the days asked for, in every data directory
/// (each directory once), oldest first.
fn log_files(data_dirs: &[PathBuf], from: Option<Date>, to: Option<Date>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = data_dirs.iter().map(|d| d.join("losses")).collect();
    dirs.sort();
    dirs.dedup();
    let mut files: Vec<(Date, PathBuf)> = dirs
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|path| Some((file_date(&path)?, path)))
        .filter(|(day, _)| from.is_none_or(|from| *day >= from) && to.is_none_or(|to| *day <= to))
        .collect();
    files.sort();
    files.into_iter().map(|(_, path)| path).collect()
}

/// The rows as a table: one line each, columns aligned.
pub fn table(rows: &[LossRow]) -> String {
    let mut lines = vec![[
        "campaign".to_string(),
        "exchange".into(),
        "reason".into(),
        "code".into(),
        "losses".into(),
        "with_min_to_win".into(),
        "mean_min_to_win".into(),
    ]];
    for row in rows {
        lines.push([
            row.campaign.clone(),
            row.exchange.clone(),
            row.reason.clone(),
            row.code.map(|c| c.to_string()).unwrap_or_default(),
            row.losses.to_string(),
            row.with_min_to_win.to_string(),
            row.mean_min_to_win_micros
                .map(|m| crate::money::Micros(m).to_string())
                .unwrap_or_default(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The rows as CSV, with a header line.
pub fn csv(rows: &[LossRow]) -> String {
    let mut out = String::from("campaign,exchange,reason,code,losses,with_min_to_win,mean_min_to_win_micros\n");
    for row in rows {
        let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            quoted(&row.campaign),
            quoted(&row.exchange),
            row.reason,
            row.code.map(|c| c.to_string()).unwrap_or_default(),
            row.losses,
            row.with_min_to_win,
            row.mean_min_to_win_micros.map(|m| m.to_string()).unwrap_or_default(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bid: &str, reason: Option<u32>, min_to_win: Option<i64>) -> LossRecord {
        LossRecord {
            at: 1_764_000_000_000_000,
            bid: bid.into(),
            campaign: "c".into(),
            creative: "k".into(),
            exchange: "x".into(),
            reason,
            min_to_win,
            bid_price: 2_000_000,
            currency: "USD".into(),
        }
    }

    fn wait_for_lines(path: &Path, lines: usize) -> String {
        for _ in 0..500 {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.lines().count() >= lines {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{} never had {lines} lines", path.display());
    }

    #[test]
    fn records_are_written_as_json_lines_and_reported_by_reason() {
        let data = tempfile::tempdir().unwrap();
        let log = LossLog::open(&data.path().join("losses")).unwrap();
        log.append(record("b1", Some(102), Some(2_500_000)));
        log.append(record("b2", Some(102), Some(1_500_001)));
        log.append(record("b3", Some(102), None));
        log.append(record("b4", None, None));
        log.append(record("b1", Some(102), Some(9)));
        let path = data.path().join("losses").join(file_name(record("b", None, None).at));
        let text = wait_for_lines(&path, 5);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["reason"], 102);
        assert_eq!(first["min_to_win"], 2_500_000);
        let rows = report(&[data.path().to_path_buf()], None, None, &[]).unwrap();
        let summary: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.reason.as_str(),
                    r.code,
                    r.losses,
                    r.with_min_to_win,
                    r.mean_min_to_win_micros,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("unknown", None, 1, 0, None),
                ("lost_to_higher_bid", Some(102), 3, 2, Some(2_000_000)),
            ],
            "b1 once; the mean rounded down"
        );
        let day = utc_date(record("b", None, None).at);
        assert!(
            report(&[data.path().to_path_buf()], day.tomorrow().ok(), None, &[])
                .unwrap()
                .is_empty()
        );
        assert!(
            report(&[data.path().to_path_buf()], None, None, &["other".into()])
                .unwrap()
                .is_empty()
        );
        assert!(table(&rows).contains("lost_to_higher_bid  102"));
        assert!(csv(&rows).ends_with("\"c\",\"x\",lost_to_higher_bid,102,3,2,2000000\n"));
        let later = day.checked_add(jiff::Span::new().days(10)).unwrap();
        assert_eq!(prune(&data.path().join("losses"), later, 9), 1);
        assert_eq!(prune(&data.path().join("losses"), later, 9), 0);
    }
}
