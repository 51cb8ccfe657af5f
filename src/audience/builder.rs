//! `bullseye segments build`: CSV or JSON Lines in, snapshot file out.
//!
//! CSV lines are `user_id,segment|segment|...` (an optional header line
//! `user_id,segments` is skipped); JSON Lines are
//! `{"user_id": "...", "segments": ["..."]}`. The format is chosen by the
//! file extension (`.jsonl`/`.ndjson` → JSON Lines, otherwise CSV; `.gz`
//! is decompressed on the fly). Inputs are read line by line
//! ([`super::input`], shared with `segments lookalike`); several inputs are
//! merged (a user's segments are the union over all inputs). Bad lines are
//! reported with their line number.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::input::{self, Format, Line, Lines, Progress};
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

/// Parses one input line into a user id and its segment paths.
fn parse_line(line: &str, format: Format) -> Result<Option<(String, Vec<SegmentPath>)>, String> {
    let Some(entry) = input::parse_line(line, format)? else {
        return Ok(None);
    };
    let segments = entry
        .segments()
        .map(|s| SegmentPath::parse(s).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((entry.user.into_owned(), segments)))
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
    let mut lines = Lines::open(path).map_err(read_err)?;
    let format = lines.format();
    loop {
        let (number, line) = match lines.next_line().map_err(read_err)? {
            None => break,
            Some((number, Line::Text(text))) => (number, parse_line(text, format)),
            Some((number, Line::NotUtf8)) => (number, Err("not UTF-8".to_string())),
        };
        if number % 65_536 == 0 && progress.due() {
            progress.say(format_args!(
                "{name}: {number} lines, {}, {} segments so far",
                lines.position(),
                writer.segment_count()
            ));
        }
        match line {
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
                        line: number,
                        reason,
                    });
                }
            }
        }
    }
    // Every line counts, a skipped header line included.
    report.lines += lines.number();
    Ok(())
}

/// Builds a snapshot from `inputs` into `output` (written to a temporary
/// file, then renamed into place so a running bidder never sees half a file).
/// The build fails when more than `max_bad_fraction` of lines are bad.
pub fn build(inputs: &[PathBuf], output: &Path, max_bad_fraction: f64) -> Result<BuildReport, BuildError> {
    let mut writer = SnapshotWriter::new();
    let mut report = BuildReport::default();
    let mut progress = Progress::new("segments build");
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
    if progress.long() {
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
        let (user, segments) = parse_line("u1,interest/finance|rfm/gold", Format::Csv)
            .unwrap()
            .unwrap();
        assert_eq!(user, "u1");
        assert_eq!(segments.len(), 2);
        let (user, segments) = parse_line(r#"{"user_id":"u2","segments":["a/b"]}"#, Format::JsonLines)
            .unwrap()
            .unwrap();
        assert_eq!((user.as_str(), segments[0].as_str()), ("u2", "a/b"));
        assert!(parse_line("", Format::Csv).unwrap().is_none());
        assert!(parse_line("no-comma", Format::Csv).is_err());
        assert!(parse_line(",a", Format::Csv).is_err());
        assert!(parse_line("u,a/b/c/d/e", Format::Csv).is_err());
        assert!(parse_line("{oops", Format::JsonLines).is_err());
    }
}
