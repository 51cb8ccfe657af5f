//! Billing-log records and their on-disk framing.
//!
//! A frame is `length: u32 LE | crc32: u32 LE | payload`, the payload one
//! JSON object (readable with standard tools once the 8-byte header is
//! skipped, and tolerant of fields added later). A torn or corrupt frame —
//! short header, short payload, CRC mismatch, unreadable JSON — ends the
//! readable part of a file.

use serde::{Deserialize, Serialize};

use crate::campaigns::Pricing;

/// Largest payload accepted when reading (a record is a few hundred bytes).
const MAX_PAYLOAD: usize = 64 * 1024;

/// What happened to a bid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Win notice (`nurl`) received.
    Win,
    /// Billing notice (`burl`) received.
    Bill,
    /// Impression pixel loaded.
    Impression,
    /// Click-through followed.
    Click,
    /// A conversion attributed to a click (`clearing` holds its value).
    Conversion,
    /// Loss notice (`lurl`) received: written to the loss log
    /// ([`super::losses`]), never to the billing log.
    Loss,
}

/// One acknowledged tracking event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Unix microseconds when the event was recorded.
    pub at: i64,
    /// What happened.
    pub event: EventKind,
    /// Bid id; with `event`, the deduplication key.
    pub bid: String,
    /// Campaign id.
    pub campaign: String,
    /// Creative id.
    pub creative: String,
    /// Name of the exchange the bid went to.
    pub exchange: String,
    /// Clearing price (CPM, response currency, micros), for notices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearing: Option<i64>,
    /// What the advertiser is charged for this event, base-currency micros.
    pub charge: i64,
    /// True when this event is the bid's billable one.
    pub billed: bool,
    /// Why a click was not billed (fraud rules), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtered: Option<String>,
    /// The bid came from a test request: never billed, left out of reports.
    pub test: bool,
    /// The user's key (0 when unknown), to restore frequency counts.
    #[serde(default)]
    pub user: u64,
    /// The campaign's pricing model when the event was recorded.
    #[serde(default = "cpm")]
    pub pricing: Pricing,
    /// A conversion's value, base-currency micros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// A conversion's order id (its dedup key, restored at start-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Where the ad showed: site domain or app bundle/domain, as signed
    /// into the bid's URLs ([`crate::signing::Place`]); empty when unknown
    /// (and in records written before it was carried).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// The country (`device.geo.country`, as signed); empty when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub country: String,
    /// The AdCOM device type (as signed); 0 when unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub device: u8,
    /// The campaign's UTC offset (seconds, DST included) when the event was
    /// recorded: the event's local day and hour in reports, with no time
    /// zone database or config needed to read the log. `None` in records
    /// written before it was carried (read as UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset: Option<i32>,
    /// What the event counts in reports ([`COUNTS_WIN`], [`COUNTS_IMPRESSION`]):
    /// a bid is won once however many of its win and billing notices come,
    /// and shown once for its billing notice and pixel, so the tracker
    /// marks the first of them (it knows the bid's other events from its
    /// dedup claims). `None` in records written before it was carried: a
    /// report then deduplicates those by bid id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<u8>,
    /// The experiment arm the event belongs to, `{experiment}/{arm}`: as
    /// signed into the bid's URLs (or click id), or for a user-level
    /// conversion the user's arm when it came. Fixed when written, so a
    /// later change of weights does not move past events between arms.
    /// `None` without an experiment (and in records written before arms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
}

/// [`Record::counts`]: this event is its bid's win.
pub const COUNTS_WIN: u8 = 1;
/// [`Record::counts`]: this event is its bid's impression.
pub const COUNTS_IMPRESSION: u8 = 2;

fn cpm() -> Pricing {
    Pricing::Cpm
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// Appends `record` to `out` as one frame (length, CRC-32, JSON payload).
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let payload = serde_json::to_vec(record).unwrap_or_default();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Reads frames from the start of `bytes`; returns the records and the
/// length of the valid prefix (where a torn tail begins).
pub fn decode_all(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if len > MAX_PAYLOAD || bytes.len() - at - 8 < len {
            break;
        }
        let payload = &bytes[at + 8..at + 8 + len];
        // Fuzzing skips the CRC so that mutations reach the JSON decoding.
        if crc32fast::hash(payload) != crc && !cfg!(fuzzing) {
            break;
        }
        let Ok(record) = serde_json::from_slice(payload) else {
            break;
        };
        records.push(record);
        at += 8 + len;
    }
    (records, at)
}

/// Frames read one at a time from a reader (a file), never the whole file:
/// yields records until the end or the first frame that is not whole and
/// valid; [`Frames::valid_len`] then says where the valid prefix ends.
pub struct Frames<R> {
    reader: std::io::BufReader<R>,
    valid: u64,
    payload: Vec<u8>,
    /// An I/O error that ended the reading (not a torn or invalid frame).
    pub error: Option<std::io::Error>,
}

impl<R: std::io::Read> Frames<R> {
    /// Frames from the start of `reader`.
    pub fn new(reader: R) -> Frames<R> {
        Frames {
            reader: std::io::BufReader::with_capacity(256 * 1024, reader),
            valid: 0,
            payload: Vec::new(),
            error: None,
        }
    }

    /// Bytes of whole, valid frames read so far.
    pub fn valid_len(&self) -> u64 {
        self.valid
    }

    /// Fills `buf` completely; false at the end of the input (or a torn
    /// frame), with an I/O error kept in `self.error`.
    fn fill(&mut self, len: usize) -> bool {
        use std::io::Read;
        self.payload.resize(len, 0);
        match self.reader.read_exact(&mut self.payload) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }
}

impl<R: std::io::Read> Iterator for Frames<R> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if !self.fill(8) {
            return None;
        }
        let len = u32::from_le_bytes(self.payload[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(self.payload[4..8].try_into().expect("4 bytes"));
        if len > MAX_PAYLOAD || !self.fill(len) {
            return None;
        }
        if crc32fast::hash(&self.payload) != crc && !cfg!(fuzzing) {
            return None;
        }
        let record = serde_json::from_slice(&self.payload).ok()?;
        self.valid += 8 + len as u64;
        Some(record)
    }
}

/// Where a whole, valid frame starts after `from`, if one does.
///
/// A crash can only tear the *last* frame (frames are acknowledged after
/// they are synced, in order), so garbage followed by a valid frame is
/// corruption of acknowledged records, not a torn tail: recovery must not
/// cut it off. The scan tries every offset, but a frame is only checked
/// when its length fits and its CRC matches, so it is linear in practice
/// and bounded by `MAX_PAYLOAD` per offset.
pub fn corruption_after(bytes: &[u8], from: usize) -> Option<usize> {
    (from + 1..bytes.len().saturating_sub(8)).find(|&at| {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        len > 0
            && len <= MAX_PAYLOAD
            && bytes.len() - at - 8 >= len
            && bytes[at + 8] == b'{'
            && crc32fast::hash(&bytes[at + 8..at + 8 + len]) == crc
            && serde_json::from_slice::<Record>(&bytes[at + 8..at + 8 + len]).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bid: &str) -> Record {
        Record {
            at: 1,
            event: EventKind::Bill,
            bid: bid.into(),
            campaign: "c".into(),
            creative: "k".into(),
            exchange: "default".into(),
            clearing: Some(1_500_000),
            charge: 1_500,
            billed: true,
            filtered: None,
            test: false,
            user: 0,
            pricing: Pricing::Cpm,
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

    #[test]
    fn frames_round_trip_and_torn_tails_are_cut() {
        let mut bytes = Vec::new();
        encode(&record("a"), &mut bytes);
        encode(&record("b"), &mut bytes);
        let whole = bytes.len();
        let (records, valid) = decode_all(&bytes);
        assert_eq!((records.len(), valid), (2, whole));
        for cut in 1..whole {
            let (records, valid) = decode_all(&bytes[..cut]);
            assert!(valid <= cut && records.len() < 2 || cut == whole);
            assert!(records.iter().all(|r| r.bid == "a"));
        }
        let mut flipped = bytes.clone();
        flipped[whole - 2] ^= 1;
        assert_eq!(decode_all(&flipped).0.len(), 1);
    }

    #[test]
    fn the_report_fields_round_trip_and_older_records_read_without_them() {
        let mut with = record("a");
        (with.domain, with.country, with.device) = ("news.example".into(), "FRA".into(), 4);
        (with.utc_offset, with.counts) = (Some(3600), Some(COUNTS_WIN | COUNTS_IMPRESSION));
        let json = serde_json::to_string(&with).unwrap();
        assert!(
            json.contains(r#""domain":"news.example","country":"FRA","device":4,"utc_offset":3600,"counts":3"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), with);
        let older = r#"{"at":1,"event":"bill","bid":"a","campaign":"c","creative":"k","exchange":"default","clearing":1500000,"charge":1500,"billed":true,"test":false}"#;
        assert_eq!(serde_json::from_str::<Record>(older).unwrap(), record("a"));
        let plain = serde_json::to_string(&record("a")).unwrap();
        assert!(!plain.contains("domain") && !plain.contains("counts"), "{plain}");
        assert!(!plain.contains("arm"), "{plain}");
        let in_arm = Record {
            arm: Some("spring-test/b".into()),
            ..record("a")
        };
        let json = serde_json::to_string(&in_arm).unwrap();
        assert!(json.ends_with(r#","arm":"spring-test/b"}"#), "{json}");
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), in_arm);
    }
}
