//! The report's aggregates: counts per campaign, date and dimension value,
//! built from billing records and kept in rollup files.
//!
//! One [`Cube`] covers one UTC day file of the billing log. Each record is
//! added once per time zone (the campaign's, from the record's
//! `utc_offset`, and UTC) and per dimension ([`Dim`]: hour, exchange,
//! creative, domain, country, device), under the date it falls on in that
//! zone; rows by day are the sum of the rows by hour. A report on a day of
//! ten million events then reads a few hundred thousand cells instead of
//! the events. Strings (campaigns, exchanges, creatives, domains,
//! countries) are interned once per cube.
//!
//! Wins and impressions count bids, not notices: a record says which it
//! counts ([`Record::counts`]); a record written before that was carried
//! is deduplicated by its bid id within the cube instead.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::record::{COUNTS_IMPRESSION, COUNTS_WIN, EventKind, Record};
use crate::campaigns::Pricing;

/// A dimension a cube is cut by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Dim {
    /// Hour of the day (0–23) in the zone; rows by day sum these.
    Hour = 0,
    /// Exchange name.
    Exchange = 1,
    /// Creative id.
    Creative = 2,
    /// Site domain or app bundle/domain.
    Domain = 3,
    /// Country code.
    Country = 4,
    /// AdCOM device type (its number).
    Device = 5,
    /// Day totals without an hour: only from rollups written before
    /// dimensions were kept (see [`Cube::from_legacy_rows`]).
    DayOnly = 6,
    /// Experiment arm (`{experiment}/{arm}`): only records made in one.
    Arm = 7,
}

impl Dim {
    const ALL: [Dim; 8] = [
        Dim::Hour,
        Dim::Exchange,
        Dim::Creative,
        Dim::Domain,
        Dim::Country,
        Dim::Device,
        Dim::DayOnly,
        Dim::Arm,
    ];

    fn from_u8(n: u8) -> Option<Dim> {
        Dim::ALL.get(n as usize).copied()
    }

    /// True when the value is an interned string (else a number).
    fn is_text(self) -> bool {
        matches!(
            self,
            Dim::Exchange | Dim::Creative | Dim::Domain | Dim::Country | Dim::Arm
        )
    }
}

/// Whose calendar dates and hours are in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Zone {
    /// The campaign's time zone (the UTC offset each record carries).
    #[default]
    Campaign = 0,
    /// UTC.
    Utc = 1,
}

/// Where a cell is: dimension, zone, date (days since 1970-01-01 in the
/// zone), campaign (interned) and value (interned string, or the hour or
/// device number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// The dimension.
    pub dim: Dim,
    /// The zone of `date` (and of the hour).
    pub zone: Zone,
    /// Days since 1970-01-01 in the zone.
    pub date: i32,
    /// The campaign, as an index into [`Cube::strings`].
    pub campaign: u32,
    /// The value: an index into [`Cube::strings`] for text dimensions, else
    /// the hour or the device type.
    pub value: u32,
}

/// What one cell counts (test traffic excluded). Money in micros.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Bids won (a win or billing notice).
    pub wins: u64,
    /// Bids shown (a billing notice or pixel).
    pub impressions: u64,
    /// Clicks that passed the click-quality rules.
    pub clicks: u64,
    /// Clicks not billed (filtered, or after the budget was spent).
    pub filtered_clicks: u64,
    /// Win or billing notices after their window.
    pub late_notices: u64,
    /// Conversions counted (those of filtered clicks are not).
    pub conversions: u64,
    /// Their values, base-currency micros.
    pub conversion_value: i64,
    /// Charges, base-currency micros.
    pub spend: i64,
    /// Time of the latest record (Unix micros): whose pricing `cpc` is.
    pub last_at: i64,
    /// The latest record's pricing was per click.
    pub cpc: bool,
}

impl Counts {
    /// Adds `other` (sums; the pricing of the later record).
    pub fn add(&mut self, other: &Counts) {
        self.wins += other.wins;
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.filtered_clicks += other.filtered_clicks;
        self.late_notices += other.late_notices;
        self.conversions += other.conversions;
        self.conversion_value = self.conversion_value.saturating_add(other.conversion_value);
        self.spend = self.spend.saturating_add(other.spend);
        if other.last_at >= self.last_at {
            (self.last_at, self.cpc) = (other.last_at, other.cpc);
        }
    }

    fn numbers(&self) -> [i64; 10] {
        [
            self.wins as i64,
            self.impressions as i64,
            self.clicks as i64,
            self.filtered_clicks as i64,
            self.late_notices as i64,
            self.conversions as i64,
            self.conversion_value,
            self.spend,
            self.last_at,
            i64::from(self.cpc),
        ]
    }

    fn from_numbers(n: [i64; 10]) -> Counts {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Counts {
            wins: count(n[0]),
            impressions: count(n[1]),
            clicks: count(n[2]),
            filtered_clicks: count(n[3]),
            late_notices: count(n[4]),
            conversions: count(n[5]),
            conversion_value: n[6],
            spend: n[7],
            last_at: n[8],
            cpc: n[9] != 0,
        }
    }
}

/// A UTC day's aggregates (see the module header).
#[derive(Debug, Default)]
pub struct Cube {
    /// Interned strings: campaigns and text values.
    pub strings: Vec<String>,
    interned: HashMap<String, u32>,
    /// The cells.
    pub cells: HashMap<Key, Counts>,
    /// Bid ids (hashed) already counted as won or shown, for records
    /// without [`Record::counts`] (kept in memory only).
    legacy_won: HashSet<u64>,
    legacy_shown: HashSet<u64>,
}

/// Splits Unix micros plus an offset into (days since epoch, hour).
fn date_hour(at_micros: i64, offset_secs: i32) -> (i32, u32) {
    let local = at_micros.div_euclid(1_000_000) + i64::from(offset_secs);
    (
        local.div_euclid(86_400) as i32,
        (local.rem_euclid(86_400) / 3600) as u32,
    )
}

impl Cube {
    /// Interns `text` as the next index (reading a stored cube).
    fn intern_new(&mut self, text: &str) {
        self.interned.insert(text.to_string(), self.strings.len() as u32);
        self.strings.push(text.to_string());
    }

    /// The index of `text`, interning it if new.
    pub fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.interned.get(text) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(text.to_string());
        self.interned.insert(text.to_string(), id);
        id
    }

    /// What one record adds to each of its cells.
    fn counts_of(&mut self, record: &Record) -> Counts {
        let mut c = Counts {
            spend: record.charge,
            last_at: record.at,
            cpc: record.pricing == Pricing::Cpc,
            ..Counts::default()
        };
        let late = record.filtered.is_some();
        let (won, shown) = match record.counts {
            Some(flags) => (flags & COUNTS_WIN != 0, flags & COUNTS_IMPRESSION != 0),
            None => {
                let bid = xxhash_rust::xxh3::xxh3_64(record.bid.as_bytes());
                let (won, shown) = match record.event {
                    _ if late => (false, false),
                    EventKind::Win => (true, false),
                    EventKind::Bill => (true, true),
                    EventKind::Impression => (false, true),
                    _ => (false, false),
                };
                (
                    won && self.legacy_won.insert(bid),
                    shown && self.legacy_shown.insert(bid),
                )
            }
        };
        (c.wins, c.impressions) = (u64::from(won), u64::from(shown));
        match record.event {
            EventKind::Win | EventKind::Bill if late => c.late_notices = 1,
            EventKind::Click if record.filtered.is_some() => c.filtered_clicks = 1,
            EventKind::Click => c.clicks = 1,
            // A filtered click's conversions are recorded, not counted.
            EventKind::Conversion if record.filtered.is_some() => {}
            EventKind::Conversion => {
                c.conversions = 1;
                c.conversion_value = record.value.unwrap_or(0);
            }
            _ => {}
        }
        c
    }

    /// Adds one record (test traffic is left out).
    pub fn add(&mut self, record: &Record) {
        if record.test {
            return;
        }
        let counts = self.counts_of(record);
        let campaign = self.intern(&record.campaign);
        let texts = [
            (Dim::Exchange, self.intern(&record.exchange)),
            (Dim::Creative, self.intern(&record.creative)),
            (Dim::Domain, self.intern(&record.domain)),
            (Dim::Country, self.intern(&record.country)),
            (Dim::Device, u32::from(record.device)),
        ];
        let arm = record.arm.as_deref().map(|arm| (Dim::Arm, self.intern(arm)));
        for (zone, offset) in [(Zone::Campaign, record.utc_offset.unwrap_or(0)), (Zone::Utc, 0)] {
            let (date, hour) = date_hour(record.at, offset);
            for (dim, value) in [(Dim::Hour, hour)].into_iter().chain(texts).chain(arm) {
                let key = Key {
                    dim,
                    zone,
                    date,
                    campaign,
                    value,
                };
                self.cells.entry(key).or_default().add(&counts);
            }
        }
    }

    /// A cube of rollup rows written before dimensions were kept (campaign
    /// × UTC day): each row becomes a day total ([`Dim::DayOnly`]) and an
    /// empty value in every other dimension but the hour, in both zones
    /// (its UTC date stands for the campaign's).
    pub fn from_legacy_rows(rows: &[LegacyRow]) -> Cube {
        let mut cube = Cube::default();
        for row in rows {
            let Ok(date) = row.date.parse::<jiff::civil::Date>() else {
                continue;
            };
            let days = date.since(jiff::civil::date(1970, 1, 1)).map_or(0, |s| s.get_days());
            let counts = Counts {
                wins: row.wins,
                impressions: row.impressions,
                clicks: row.clicks,
                filtered_clicks: row.filtered_clicks,
                late_notices: row.late_notices,
                conversions: row.conversions,
                conversion_value: row.conversion_value_micros,
                spend: row.spend_micros,
                last_at: 0,
                cpc: row.pricing == "cpc",
            };
            let campaign = cube.intern(&row.campaign);
            let empty = cube.intern("");
            for zone in [Zone::Campaign, Zone::Utc] {
                for (dim, value) in [
                    (Dim::DayOnly, 0),
                    (Dim::Exchange, empty),
                    (Dim::Creative, empty),
                    (Dim::Domain, empty),
                    (Dim::Country, empty),
                    (Dim::Device, 0),
                ] {
                    let key = Key {
                        dim,
                        zone,
                        date: days,
                        campaign,
                        value,
                    };
                    cube.cells.entry(key).or_default().add(&counts);
                }
            }
        }
        cube
    }

    /// The text of a cell's value (`None` for numeric dimensions).
    pub fn text(&self, key: &Key) -> Option<&str> {
        key.dim
            .is_text()
            .then(|| self.strings.get(key.value as usize).map_or("", String::as_str))
    }

    /// The campaign id of a cell.
    pub fn campaign(&self, key: &Key) -> &str {
        self.strings.get(key.campaign as usize).map_or("", String::as_str)
    }

    /// The cube as stored, covering `covers` bytes of its day file: a
    /// magic line, the covered length, the interned strings, then one
    /// section per dimension and zone with its byte length (so a report
    /// skips the others), numbers as LEB128 varints.
    pub fn encode(&self, covers: u64) -> Vec<u8> {
        codec::encode(self, covers)
    }

    /// A stored cube read back with the sections `wanted` says (all for a
    /// cube to extend, one dimension and zone for a report), and the bytes
    /// of the day file it covers; `None` when the bytes are not a cube.
    pub fn decode(bytes: &[u8], wanted: impl Fn(Dim, Zone) -> bool) -> Option<(Cube, u64)> {
        codec::decode(bytes, wanted)
    }
}

/// A row of a rollup written before dimensions were kept (campaign × UTC
/// day), as it was stored.
#[derive(Debug, Deserialize)]
pub struct LegacyRow {
    /// Campaign id.
    pub campaign: String,
    /// UTC date.
    pub date: String,
    /// `cpm` or `cpc`.
    #[serde(default)]
    pub pricing: String,
    /// Bids won.
    #[serde(default)]
    pub wins: u64,
    /// Bids shown.
    #[serde(default)]
    pub impressions: u64,
    /// Billable clicks.
    #[serde(default)]
    pub clicks: u64,
    /// Clicks not billed.
    #[serde(default)]
    pub filtered_clicks: u64,
    /// Late notices.
    #[serde(default)]
    pub late_notices: u64,
    /// Conversions.
    #[serde(default)]
    pub conversions: u64,
    /// Conversion value, micros.
    #[serde(default)]
    pub conversion_value_micros: i64,
    /// Spend, micros.
    #[serde(default)]
    pub spend_micros: i64,
}

/// The rollup file format: `BZCUBE2\n`, the covered length, the
/// interned strings, then one section per (dimension, zone) with its byte
/// length, so that a report skips the sections it does not read. Numbers
/// are LEB128 varints (signed ones zigzagged): a day of ten million events
/// over a thousand campaigns is about a million cells and 30 MB, decoded
/// in tens of milliseconds (JSON took seconds).
mod codec {
    use super::{Counts, Cube, Dim, Key, Zone};

    const MAGIC: &[u8; 8] = b"BZCUBE2\n";

    fn put(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push(n as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn put_signed(out: &mut Vec<u8>, n: i64) {
        put(out, ((n << 1) ^ (n >> 63)) as u64);
    }

    struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl Reader<'_> {
        fn get(&mut self) -> Option<u64> {
            let mut n = 0u64;
            for shift in (0..64).step_by(7) {
                let byte = *self.bytes.get(self.at)?;
                self.at += 1;
                n |= u64::from(byte & 0x7F) << shift;
                if byte & 0x80 == 0 {
                    return Some(n);
                }
            }
            None
        }

        fn get_signed(&mut self) -> Option<i64> {
            let n = self.get()?;
            Some((n >> 1) as i64 ^ -((n & 1) as i64))
        }

        fn take(&mut self, len: usize) -> Option<&[u8]> {
            let slice = self.bytes.get(self.at..self.at.checked_add(len)?)?;
            self.at += len;
            Some(slice)
        }
    }

    pub(super) fn encode(cube: &Cube, covers: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(cube.cells.len() * 24 + 1024);
        out.extend_from_slice(MAGIC);
        put(&mut out, covers);
        put(&mut out, cube.strings.len() as u64);
        for text in &cube.strings {
            put(&mut out, text.len() as u64);
            out.extend_from_slice(text.as_bytes());
        }
        let mut cells: Vec<(&Key, &Counts)> = cube.cells.iter().collect();
        cells.sort_unstable_by_key(|(k, _)| (k.dim as u8, k.zone as u8, k.campaign, k.date, k.value));
        for chunk in cells.chunk_by(|a, b| (a.0.dim, a.0.zone) == (b.0.dim, b.0.zone)) {
            let mut section = Vec::with_capacity(chunk.len() * 24);
            for (key, counts) in chunk {
                put_signed(&mut section, i64::from(key.date));
                put(&mut section, u64::from(key.campaign));
                put(&mut section, u64::from(key.value));
                for n in counts.numbers() {
                    put_signed(&mut section, n);
                }
            }
            out.push(chunk[0].0.dim as u8);
            out.push(chunk[0].0.zone as u8);
            put(&mut out, chunk.len() as u64);
            put(&mut out, section.len() as u64);
            out.extend_from_slice(&section);
        }
        out
    }

    pub(super) fn decode(bytes: &[u8], wanted: impl Fn(Dim, Zone) -> bool) -> Option<(Cube, u64)> {
        let mut r = Reader {
            bytes: bytes.strip_prefix(MAGIC)?,
            at: 0,
        };
        let covers = r.get()?;
        let mut cube = Cube::default();
        for _ in 0..r.get()? {
            let len = r.get()? as usize;
            let text = std::str::from_utf8(r.take(len)?).ok()?;
            cube.intern_new(text);
        }
        while r.at < r.bytes.len() {
            let (dim, zone) = (Dim::from_u8(*r.take(1)?.first()?)?, *r.take(1)?.first()?);
            let zone = if zone == 0 { Zone::Campaign } else { Zone::Utc };
            let (count, len) = (r.get()? as usize, r.get()? as usize);
            let section = r.take(len)?;
            if !wanted(dim, zone) {
                continue;
            }
            let mut s = Reader { bytes: section, at: 0 };
            cube.cells.reserve(count);
            for _ in 0..count {
                let key = Key {
                    dim,
                    zone,
                    date: i32::try_from(s.get_signed()?).ok()?,
                    campaign: u32::try_from(s.get()?).ok()?,
                    value: u32::try_from(s.get()?).ok()?,
                };
                let mut numbers = [0i64; 10];
                for n in &mut numbers {
                    *n = s.get_signed()?;
                }
                cube.cells.insert(key, Counts::from_numbers(numbers));
            }
        }
        Some((cube, covers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event: EventKind, bid: &str, at: i64) -> Record {
        Record {
            at,
            event,
            bid: bid.into(),
            campaign: "c".into(),
            creative: "k".into(),
            exchange: "x".into(),
            clearing: None,
            charge: 100,
            billed: true,
            filtered: None,
            test: false,
            user: 0,
            pricing: Pricing::Cpm,
            value: None,
            order: None,
            domain: "news.example".into(),
            country: "FRA".into(),
            device: 4,
            utc_offset: Some(-5 * 3600),
            counts: None,
            arm: None,
        }
    }

    #[test]
    fn a_record_lands_in_each_dimension_in_both_zones_and_survives_storage() {
        let mut cube = Cube::default();
        // 2026-11-24 03:00 UTC is 2026-11-23 22:00 at UTC−5.
        let at = 1_795_489_200_000_000;
        cube.add(&Record {
            counts: Some(COUNTS_WIN | COUNTS_IMPRESSION),
            ..record(EventKind::Bill, "b1", at)
        });
        assert_eq!(cube.cells.len(), 12);
        let hour = |zone| {
            cube.cells
                .iter()
                .find(|(k, _)| k.dim == Dim::Hour && k.zone == zone)
                .map(|(k, c)| (k.date, k.value, c.wins, c.spend))
        };
        assert_eq!(hour(Zone::Utc), Some((20_781, 3, 1, 100)));
        assert_eq!(hour(Zone::Campaign), Some((20_780, 22, 1, 100)));
        let (back, covers) = Cube::decode(&cube.encode(7), |_, _| true).unwrap();
        assert_eq!((back.cells, covers), (cube.cells.clone(), 7));
        assert_eq!(back.strings, cube.strings);
        let (domains, _) = Cube::decode(&cube.encode(7), |dim, zone| (dim, zone) == (Dim::Domain, Zone::Utc)).unwrap();
        assert_eq!(domains.cells.len(), 1, "only the sections asked for");
        assert!(Cube::decode(b"[{}]", |_, _| true).is_none());
    }

    #[test]
    fn older_records_are_deduplicated_by_bid() {
        let mut cube = Cube::default();
        for event in [EventKind::Win, EventKind::Bill, EventKind::Impression] {
            cube.add(&record(event, "b1", 1_795_489_200_000_000));
        }
        let day: Vec<&Counts> = cube
            .cells
            .iter()
            .filter(|(k, _)| k.dim == Dim::Hour && k.zone == Zone::Utc)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(
            (day.len(), day[0].wins, day[0].impressions, day[0].spend),
            (1, 1, 1, 300)
        );
    }
}
