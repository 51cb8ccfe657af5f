//! `bullseye segments build`: CSV or JSON Lines in, snapshot file out.
//!
//! CSV lines are `user_id,segment|segment|...` (an optional header line
//! `user_id,segments` is skipped); JSON Lines are
//! `{"user_id": "...", "segments": ["..."]}`. The format is chosen by the
//! file extension (`.jsonl`/`.ndjson` → JSON Lines, otherwise CSV). Inputs are
//! read line by line; several inputs are merged (a user's segments are the
//! union over all inputs). Bad lines are reported with their line number.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::snapshot::SnapshotWriter;
use super::taxonomy::SegmentPath;
use super::user_key;

/// One rejected input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// Input file the line is in.
    pub file: String,
    /// Line number, from 1.
    pub line: usize,
    /// Why the line was rejected.
    pub reason: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// What a snapshot build read and wrote.
#[derive(Debug, Default)]
pub struct BuildReport {
    /// Input lines read, over all inputs (blank, comment and header lines included).
    pub lines: usize,
    /// Users in the snapshot.
    pub users: usize,
    /// Segments in the snapshot, ancestors included.
    pub segments: usize,
    /// Size of the snapshot file, bytes.
    pub bytes: usize,
    /// How many lines were rejected.
    pub bad: usize,
    /// The first [`BAD_LINES_KEPT`] of them (memory stays bounded whatever
    /// the input).
    pub bad_lines: Vec<BadLine>,
}

/// Rejected lines kept for the report; the rest are counted.
pub const BAD_LINES_KEPT: usize = 1000;

/// Progress on stderr for builds that take long (every 5 s; a short build
/// prints nothing).
struct Progress {
    started: std::time::Instant,
    last: std::time::Instant,
}

impl Progress {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(5);

    fn new() -> Progress {
        let now = std::time::Instant::now();
        Progress {
            started: now,
            last: now,
        }
    }

    fn due(&mut self) -> bool {
        if self.last.elapsed() < Self::EVERY {
            return false;
        }
        self.last = std::time::Instant::now();
        true
    }

    fn say(&self, what: std::fmt::Arguments) {
        eprintln!(
            "segments build [{:>5.0} s] {what}",
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Why a snapshot build failed; no file was written.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An input could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The input file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The snapshot could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The output file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// More lines were bad than the build allows.
    #[error("{bad} of {lines} lines rejected, over the allowed {allowed}; first: {first}")]
    TooManyBadLines {
        /// Lines rejected.
        bad: usize,
        /// Lines read.
        lines: usize,
        /// Most bad lines allowed (`max_bad_fraction` of `lines`).
        allowed: usize,
        /// The first line rejected.
        first: BadLine,
    },
}

#[derive(Deserialize)]
struct JsonLine {
    user_id: String,
    segments: Vec<String>,
}

/// Parses one input line into a user id and its segment paths.
fn parse_line(line: &str, json: bool) -> Result<Option<(String, Vec<SegmentPath>)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (user, raw_segments): (String, Vec<String>) = if json {
        let parsed: JsonLine = serde_json::from_str(line).map_err(|e| format!("invalid JSON line: {e}"))?;
        (parsed.user_id, parsed.segments)
    } else {
        let (user, segments) = line.split_once(',').ok_or("expected user_id,segment|segment")?;
        (
            user.trim().to_string(),
            segments.split('|').map(str::to_string).collect(),
        )
    };
    if user.is_empty() {
        return Err("empty user id".into());
    }
    let segments = raw_segments
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| SegmentPath::parse(s).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    if segments.is_empty() {
        return Err("no segments".into());
    }
    Ok(Some((user, segments)))
}

/// Reads every input into `writer`, collecting bad lines.
fn read_input(
    path: &Path,
    writer: &mut SnapshotWriter,
    report: &mut BuildReport,
    progress: &mut Progress,
) -> Result<(), BuildError> {
    let name = path.display().to_string();
    let read_err = |source| BuildError::Read {
        path: name.clone(),
        source,
    };
    let json = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "ndjson" | "json")
    );
    let file = File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len().max(1);
    let reader = BufReader::with_capacity(1 << 20, file);
    let mut consumed = 0u64;
    for (number, line) in reader.lines().enumerate() {
        let line = line.map_err(read_err)?;
        report.lines += 1;
        consumed += line.len() as u64 + 1;
        if number % 65_536 == 0 && progress.due() {
            progress.say(format_args!(
                "{name}: {} lines, {:.0} % of the file, {} segments so far",
                number + 1,
                consumed as f64 * 100.0 / size as f64,
                writer.segment_count()
            ));
        }
        if number == 0 && !json && line.trim().eq_ignore_ascii_case("user_id,segments") {
            continue;
        }
        match parse_line(&line, json) {
            Ok(None) => {}
            Ok(Some((user, segments))) => {
                let key = user_key(&user);
                for segment in &segments {
                    let index = writer.segment(segment);
                    writer.add(key, index);
                }
            }
            Err(reason) => {
                report.bad += 1;
                if report.bad_lines.len() < BAD_LINES_KEPT {
                    report.bad_lines.push(BadLine {
                        file: name.clone(),
                        line: number + 1,
                        reason,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Builds a snapshot from `inputs` into `output` (written to a temporary
/// file, then renamed into place so a running bidder never sees half a file).
/// The build fails when more than `max_bad_fraction` of lines are bad.
pub fn build(inputs: &[PathBuf], output: &Path, max_bad_fraction: f64) -> Result<BuildReport, BuildError> {
    let mut writer = SnapshotWriter::new();
    let mut report = BuildReport::default();
    let mut progress = Progress::new();
    for input in inputs {
        read_input(input, &mut writer, &mut report, &mut progress)?;
    }
    let allowed = (report.lines as f64 * max_bad_fraction).floor() as usize;
    if report.bad > allowed {
        return Err(BuildError::TooManyBadLines {
            bad: report.bad,
            lines: report.lines,
            allowed,
            first: report.bad_lines[0].clone(),
        });
    }
    let write_err = |source| BuildError::Write {
        path: output.display().to_string(),
        source,
    };
    if progress.started.elapsed() >= Progress::EVERY {
        progress.say(format_args!(
            "{} lines read; sorting memberships and writing the file",
            report.lines
        ));
    }
    let temporary = output.with_extension("tmp");
    let mut file = io::BufWriter::new(File::create(&temporary).map_err(write_err)?);
    let (users, segments, bytes) = writer.finish(&mut file).map_err(write_err)?;
    let file = file.into_inner().map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    std::fs::rename(&temporary, output).map_err(write_err)?;
    report.users = users;
    report.segments = segments;
    report.bytes = bytes;
    Ok(report)
}

/// Writes a human summary of a build.
pub fn print_report(report: &BuildReport, out: &mut impl Write) -> io::Result<()> {
    if report.bad > report.bad_lines.len() {
        writeln!(
            out,
            "(the first {} of {} rejected lines)",
            report.bad_lines.len(),
            report.bad
        )?;
    }
    for bad in &report.bad_lines {
        writeln!(out, "rejected {bad}")?;
    }
    writeln!(
        out,
        "built snapshot: {} users, {} segments, {} bytes ({} lines read, {} rejected)",
        report.users, report.segments, report.bytes, report.lines, report.bad
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_lines_are_counted_and_a_bounded_number_kept() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        let mut text = String::from("good,interest/x\n");
        for i in 0..1500 {
            text.push_str(&format!("bad{i}\n"));
        }
        std::fs::write(&input, text).unwrap();
        let report = build(&[input], &dir.path().join("out.snapshot"), 1.0).unwrap();
        assert_eq!((report.lines, report.users, report.bad), (1501, 1, 1500));
        assert_eq!(report.bad_lines.len(), BAD_LINES_KEPT);
        assert_eq!(report.bad_lines[0].line, 2);
    }

    #[test]
    fn parses_csv_and_json_lines() {
        let (user, segments) = parse_line("u1,interest/finance|rfm/gold", false).unwrap().unwrap();
        assert_eq!(user, "u1");
        assert_eq!(segments.len(), 2);
        let (user, segments) = parse_line(r#"{"user_id":"u2","segments":["a/b"]}"#, true)
            .unwrap()
            .unwrap();
        assert_eq!((user.as_str(), segments[0].as_str()), ("u2", "a/b"));
        assert!(parse_line("", false).unwrap().is_none());
        assert!(parse_line("no-comma", false).is_err());
        assert!(parse_line(",a", false).is_err());
        assert!(parse_line("u,a/b/c/d/e", false).is_err());
        assert!(parse_line("{oops", true).is_err());
    }
}
