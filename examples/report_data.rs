//! Writes a data directory with one day of billing events, for timing
//! `bullseye report` (PERFORMANCE.md, "Reports").
//!
//! ```text
//! cargo run --release --example report_data -- DIR [EVENTS] [CAMPAIGNS] [TAIL]
//! ```
//!
//! Defaults: 10,000,000 billing notices over 1,000 campaigns on
//! 2026-11-24 (UTC), plus a click for 2 % of them and a conversion for 10 %
//! of the clicks; 3 exchanges, 3 creatives per campaign, 500 domains
//! (Zipf-distributed), 40 countries, 7 device types, campaign time zones
//! from UTC−5 to UTC+9 (one half-hour offset); bid counts per campaign ×
//! exchange × hour. Seeded: the same arguments write the same files.
//! Then rolls the day up as the server's maintenance would: with `TAIL` = 0
//! as a closed day (`rollup-2026-11-24.json`); with `TAIL` > 0 as the
//! current day (a partial rollup, then `TAIL` more notices written after
//! it, as ten minutes of traffic would be before the next maintenance).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bullseye::campaigns::Pricing;
use bullseye::ledger::bids::{BidCounter, BidFlusher};
use bullseye::ledger::record::{self, COUNTS_IMPRESSION, COUNTS_WIN};
use bullseye::ledger::{EventKind, Record, rollup};

const DATE: &str = "2026-11-24";
/// 2026-11-24T00:00:00Z, Unix seconds.
const DAY_START: i64 = 1_795_478_400;
const OFFSETS: [i32; 5] = [-5 * 3600, 0, 3600, 19_800, 9 * 3600];
const EXCHANGES: [&str; 3] = ["default", "adx", "openx"];

/// xorshift64*: seeded, fast, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Cumulative Zipf(1) weights over `n` ranks.
fn zipf(n: usize) -> Vec<f64> {
    let mut cdf: Vec<f64> = (1..=n).map(|k| 1.0 / k as f64).collect();
    let total: f64 = cdf.iter().sum();
    let mut sum = 0.0;
    for w in &mut cdf {
        sum += *w / total;
        *w = sum;
    }
    cdf
}

struct Generator {
    rng: Rng,
    domains: Vec<f64>,
    campaigns: u64,
}

impl Generator {
    fn bill(&mut self, i: u64) -> Record {
        let campaign = self.rng.below(self.campaigns);
        let u = (self.rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let domain = self.domains.partition_point(|&c| c < u);
        let price = 200_000 + self.rng.below(3_000_000) as i64;
        Record {
            at: (DAY_START + self.rng.below(86_400) as i64) * 1_000_000 + self.rng.below(1_000_000) as i64,
            event: EventKind::Bill,
            bid: format!("{:016x}", self.rng.next() ^ i),
            campaign: format!("c{campaign:04}"),
            creative: format!("k{}", self.rng.below(3)),
            exchange: EXCHANGES[self.rng.below(3) as usize].to_string(),
            clearing: Some(price),
            charge: price / 1000,
            billed: true,
            filtered: None,
            test: false,
            user: self.rng.next(),
            pricing: Pricing::Cpm,
            value: None,
            order: None,
            domain: format!("site{domain}.example"),
            country: format!("C{:02}", self.rng.below(40)),
            device: 1 + self.rng.below(7) as u8,
            utc_offset: Some(OFFSETS[(campaign % OFFSETS.len() as u64) as usize]),
            counts: Some(COUNTS_WIN | COUNTS_IMPRESSION),
            arm: None,
        }
    }

    /// A bill and, sometimes, its click and conversion.
    fn write(&mut self, i: u64, out: &mut impl Write, frame: &mut Vec<u8>) -> std::io::Result<u64> {
        let bill = self.bill(i);
        frame.clear();
        record::encode(&bill, frame);
        let mut written = 1;
        if self.rng.below(50) == 0 {
            let click = Record {
                at: bill.at + 5_000_000,
                event: EventKind::Click,
                clearing: None,
                charge: 0,
                billed: false,
                counts: Some(0),
                ..bill.clone()
            };
            record::encode(&click, frame);
            written += 1;
            if self.rng.below(10) == 0 {
                let conversion = Record {
                    at: click.at + 60_000_000,
                    event: EventKind::Conversion,
                    value: Some(1_000_000 + self.rng.below(50_000_000) as i64),
                    order: Some(format!("o{i}")),
                    ..click
                };
                record::encode(&conversion, frame);
                written += 1;
            }
        }
        out.write_all(frame)?;
        Ok(written)
    }
}

fn write_bids(ledger: &Path, campaigns: u64, rng: &mut Rng) -> std::io::Result<()> {
    let mut flusher = BidFlusher::new(ledger, jiff::Timestamp::from_second(DAY_START).expect("a date"));
    let mut totals = vec![0u64; campaigns as usize * EXCHANGES.len()];
    for hour in 0..24 {
        let now = jiff::Timestamp::from_second(DAY_START + hour * 3600 + 1800).expect("a date");
        let counters: Vec<BidCounter> = (0..campaigns)
            .flat_map(|c| EXCHANGES.iter().enumerate().map(move |(x, name)| (c, x, name)))
            .map(|(c, x, name)| {
                let total = &mut totals[c as usize * EXCHANGES.len() + x];
                *total += 1_000 + rng.below(1_000);
                BidCounter {
                    campaign: format!("c{c:04}"),
                    exchange: name.to_string(),
                    utc_offset: OFFSETS[(c % OFFSETS.len() as u64) as usize],
                    total: *total,
                }
            })
            .collect();
        flusher.flush(now, counters.into_iter())?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .ok_or("usage: report_data DIR [EVENTS] [CAMPAIGNS] [TAIL]")?,
    );
    let number = |i: usize, default: u64| args.get(i).map_or(Ok(default), |a| a.parse::<u64>());
    let (events, campaigns, tail) = (number(1, 10_000_000)?, number(2, 1_000)?, number(3, 0)?);
    let ledger = dir.join("ledger");
    std::fs::create_dir_all(&ledger)?;
    let mut generator = Generator {
        rng: Rng(0x5EED_0000_0000_0001),
        domains: zipf(500),
        campaigns,
    };
    let started = Instant::now();
    let path = rollup::billing_path(&ledger, DATE);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let mut frame = Vec::with_capacity(1024);
    let mut records = 0;
    for i in 0..events {
        records += generator.write(i, &mut out, &mut frame)?;
    }
    out.flush()?;
    drop(out);
    write_bids(&ledger, campaigns, &mut generator.rng)?;
    let bytes = std::fs::metadata(&path)?.len();
    println!(
        "wrote {records} records ({} MB) in {:.1} s",
        bytes >> 20,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    if tail == 0 {
        rollup::maintain(&ledger, "2026-11-25", 3650)?;
        println!("closed-day rollup in {:.1} s", started.elapsed().as_secs_f64());
    } else {
        rollup::maintain(&ledger, DATE, 3650)?;
        println!("partial rollup in {:.1} s", started.elapsed().as_secs_f64());
        let mut out = std::fs::OpenOptions::new().append(true).open(&path)?;
        for i in events..events + tail {
            generator.write(i, &mut out, &mut frame)?;
        }
        println!("then {tail} notices more after it");
    }
    for entry in std::fs::read_dir(&ledger)? {
        let entry = entry?;
        println!(
            "  {} {} MB",
            entry.file_name().to_string_lossy(),
            entry.metadata()?.len() >> 20
        );
    }
    Ok(())
}
