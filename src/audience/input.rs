//! Audience inputs, read line by line: CSV (`user_id,segment|segment|...`,
//! an optional header line `user_id,segments`) or JSON Lines
//! (`{"user_id": "...", "segments": ["..."]}`), chosen by the file extension
//! (`.jsonl`/`.ndjson`/`.json` → JSON Lines, otherwise CSV), either of them
//! gzip-compressed when the name ends in `.gz` (`users.csv.gz`).
//!
//! `segments build` and `segments lookalike` read through here, so both
//! accept and reject the same lines. A line is read into one reused buffer
//! and parsed without copying ([`parse_line`]); segment paths come out raw
//! (the caller validates them with [`SegmentPath::parse`](super::SegmentPath::parse),
//! or looks them up in a cache of already validated ones).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How an input's lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `user_id,segment|segment|...`
    Csv,
    /// `{"user_id": "...", "segments": ["..."]}`
    JsonLines,
}

impl Format {
    /// The format of `path`, by extension (a trailing `.gz` is looked through).
    pub fn of(path: &Path) -> Format {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let name = name.strip_suffix(".gz").unwrap_or(name);
        match name.rsplit_once('.').map(|(_, extension)| extension) {
            Some("jsonl" | "ndjson" | "json") => Format::JsonLines,
            _ => Format::Csv,
        }
    }
}

/// Whether `path` is gzip-compressed (by its name).
fn gzipped(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Opens `path` for reading with a large buffer, decompressing a `.gz`
/// on the fly.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let file = File::open(path)?;
    Ok(if gzipped(path) {
        let decoder = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file));
        Box::new(BufReader::with_capacity(1 << 20, decoder))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    })
}

/// One user line, borrowed from the line buffer.
#[derive(Debug)]
pub struct Entry<'a> {
    /// The user id, trimmed, not empty.
    pub user: Cow<'a, str>,
    segments: RawSegments<'a>,
}

#[derive(Debug)]
enum RawSegments<'a> {
    /// The text after the first comma.
    Csv(&'a str),
    Json(Vec<Cow<'a, str>>),
}

impl Entry<'_> {
    /// The line's segment paths as written (not yet validated or
    /// normalised), blank ones skipped; at least one.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        let (csv, json) = match &self.segments {
            RawSegments::Csv(text) => (Some(text.split('|')), None),
            RawSegments::Json(list) => (None, Some(list.iter().map(|s| s.as_ref()))),
        };
        csv.into_iter()
            .flatten()
            .chain(json.into_iter().flatten())
            .filter(|s| !s.trim().is_empty())
    }
}

#[derive(Deserialize)]
struct JsonLine<'a> {
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(borrow)]
    segments: Vec<Cow<'a, str>>,
}

/// Parses one line: `Ok(None)` for a blank or `#` comment line, `Err` with
/// the reason for a bad one (no user id, no segment, not JSON).
pub fn parse_line(line: &str, format: Format) -> Result<Option<Entry<'_>>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let entry = match format {
        Format::JsonLines => {
            let parsed: JsonLine = serde_json::from_str(line).map_err(|e| format!("invalid JSON line: {e}"))?;
            let user = match parsed.user_id {
                Cow::Borrowed(user) => Cow::Borrowed(user.trim()),
                Cow::Owned(user) => Cow::Owned(user.trim().to_string()),
            };
            Entry {
                user,
                segments: RawSegments::Json(parsed.segments),
            }
        }
        Format::Csv => {
            let (user, segments) = line.split_once(',').ok_or("expected user_id,segment|segment")?;
            Entry {
                user: Cow::Borrowed(user.trim()),
                segments: RawSegments::Csv(segments),
            }
        }
    };
    if entry.user.is_empty() {
        return Err("empty user id".into());
    }
    if entry.segments().next().is_none() {
        return Err("no segments".into());
    }
    Ok(Some(entry))
}

/// The lines of one input, numbered from 1, read into one reused buffer.
pub struct Lines {
    reader: Box<dyn BufRead>,
    buffer: Vec<u8>,
    format: Format,
    number: usize,
    consumed: u64,
    /// The file's size, unless it is compressed.
    size: Option<u64>,
}

/// What [`Lines::next_line`] found.
pub enum Line<'a> {
    /// A line's text (a CSV header line is skipped).
    Text(&'a str),
    /// A line that is not UTF-8.
    NotUtf8,
}

impl Lines {
    /// Opens `path` (decompressing a `.gz` on the fly).
    pub fn open(path: &Path) -> io::Result<Lines> {
        let size = Some(std::fs::metadata(path)?.len().max(1)).filter(|_| !gzipped(path));
        let reader = open(path)?;
        Ok(Lines {
            reader,
            buffer: Vec::with_capacity(256),
            format: Format::of(path),
            number: 0,
            consumed: 0,
            size,
        })
    }

    /// The input's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// How many lines were read so far.
    pub fn number(&self) -> usize {
        self.number
    }

    /// How far into the input the reader is: a percentage of the file, or
    /// for a `.gz` (whose decompressed size is unknown) the bytes
    /// decompressed so far.
    pub fn position(&self) -> String {
        match self.size {
            Some(size) => format!("{:.0} % of the file", self.consumed as f64 * 100.0 / size as f64),
            None => format!("{:.1} GB decompressed", self.consumed as f64 / 1e9),
        }
    }

    /// The next line and its number (from 1), `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<(usize, Line<'_>)>> {
        loop {
            self.buffer.clear();
            let read = self.reader.read_until(b'\n', &mut self.buffer)?;
            if read == 0 {
                return Ok(None);
            }
            self.number += 1;
            self.consumed += read as u64;
            let header = self.number == 1
                && self.format == Format::Csv
                && self.buffer.trim_ascii().eq_ignore_ascii_case(b"user_id,segments");
            if header {
                continue;
            }
            let line = match std::str::from_utf8(&self.buffer) {
                Ok(text) => Line::Text(text),
                Err(_) => Line::NotUtf8,
            };
            return Ok(Some((self.number, line)));
        }
    }
}

/// Progress on stderr for a long read (every 5 s; a short one prints nothing).
pub struct Progress {
    label: &'static str,
    started: Instant,
    last: Instant,
}

impl Progress {
    const EVERY: Duration = Duration::from_secs(5);

    /// A progress reporter whose lines start with `label`.
    pub fn new(label: &'static str) -> Progress {
        let now = Instant::now();
        Progress {
            label,
            started: now,
            last: now,
        }
    }

    /// Whether a line is due (and resets the interval if so).
    pub fn due(&mut self) -> bool {
        if self.last.elapsed() < Self::EVERY {
            return false;
        }
        self.last = Instant::now();
        true
    }

    /// Whether the work has taken long enough to have printed progress.
    pub fn long(&self) -> bool {
        self.started.elapsed() >= Self::EVERY
    }

    /// Prints one progress line.
    pub fn say(&self, what: std::fmt::Arguments) {
        eprintln!(
            "{} [{:>5.0} s] {what}",
            self.label,
            self.started.elapsed().as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension_through_gz() {
        assert_eq!(Format::of(Path::new("a/users.csv")), Format::Csv);
        assert_eq!(Format::of(Path::new("users.jsonl.gz")), Format::JsonLines);
        assert_eq!(Format::of(Path::new("users.ndjson")), Format::JsonLines);
        assert_eq!(Format::of(Path::new("users.csv.gz")), Format::Csv);
        assert_eq!(Format::of(Path::new("users")), Format::Csv);
    }

    #[test]
    fn csv_and_json_lines_parse_alike() {
        let csv = parse_line(" u1 , interest/finance|| rfm/gold\n", Format::Csv)
            .unwrap()
            .unwrap();
        assert_eq!(csv.user, "u1");
        assert_eq!(csv.segments().collect::<Vec<_>>(), [" interest/finance", " rfm/gold"]);
        let json = parse_line(
            r#"{"user_id":"u\u0032","segments":["a/b"," "],"extra":1}"#,
            Format::JsonLines,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (json.user.as_ref(), json.segments().collect::<Vec<_>>()),
            ("u2", vec!["a/b"])
        );
        assert!(parse_line("  # comment", Format::Csv).unwrap().is_none());
        assert_eq!(parse_line("u1,|", Format::Csv).unwrap_err(), "no segments");
        assert_eq!(parse_line(" ,a", Format::Csv).unwrap_err(), "empty user id");
    }

    #[test]
    fn gzip_inputs_are_read_through_and_headers_skipped() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.csv.gz");
        let mut encoder = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        encoder.write_all(b"user_id,segments\nu1,a\n\xff\nu2,b").unwrap();
        encoder.finish().unwrap();
        let mut lines = Lines::open(&path).unwrap();
        let mut seen = Vec::new();
        while let Some((_, line)) = lines.next_line().unwrap() {
            seen.push(match line {
                Line::Text(text) => text.trim().to_string(),
                Line::NotUtf8 => "not utf-8".to_string(),
            });
        }
        assert_eq!(seen, ["u1,a", "not utf-8", "u2,b"]);
        assert_eq!(lines.number(), 4);
    }
}
