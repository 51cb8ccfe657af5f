//! Index-level "why not bidding": the campaigns the selection index never
//! offered, counted per index bucket and derived per campaign when read.
//!
//! Selection looks up a few buckets per impression — one per banner size
//! and medium it offers, one per targeted segment the user holds — and
//! walks only the campaigns filed there, so the rules of `select` never see
//! (nor count) a campaign filed elsewhere. Counting those per campaign would
//! make every request O(campaigns). Instead each impression adds one to
//! the counter of how its selection ended ([`ImpOutcome`]): won in a deal,
//! a private auction, an unusable floor, or an open auction — the last
//! counted by the set of format buckets it hit (a counter per single
//! bucket, a small map for combinations), plus one per segment group it
//! hit. A campaign's counts follow, when read, from where the index filed
//! it ([`IndexEntry`], [`TallyCounts::excluded`]):
//!
//! | filed as | counted | reason |
//! |---|---|---|
//! | paused | every impression selected for | `paused` |
//! | deals only | every open auction | `deal` |
//! | segment-targeted | open auctions whose user holds none of its index segments | `segment` |
//! | by format | open auctions that hit none of its creatives' buckets | `creative` |
//! | not deals only | private auctions with no deal bid (no open auction ran) | `private_auction` |
//! | not deals only | impressions whose floor is unusable (no open auction ran) | `floor` |
//!
//! Counts are per auction, like the rules' own: an impression carrying a
//! deal holds a deal auction and (when no deal bid wins) an open one, and a
//! campaign can be counted in each. The counts live in the index they
//! describe; `live::World` folds them into the campaigns' live state when
//! an index is replaced.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use super::targeting::FilterReason;

/// Where the index filed a campaign, which decides whether an impression's
/// open auction offers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexEntry {
    /// Not active: filed nowhere.
    Paused,
    /// Bids inside its deals only, never in the open auction.
    DealsOnly,
    /// Requires a segment: offered when the user holds one of its index
    /// keys, which form segment group `n`.
    Segment(u32),
    /// Filed under these format buckets (sorted): offered when the
    /// impression hits one of them.
    Formats(Box<[u32]>),
}

/// How an impression's selection ended, as the index sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A deal bid won; the open auction did not run.
    DealWon,
    /// A private auction without a deal bid; the open auction did not run.
    PrivateAuction,
    /// The impression's floor is unusable; the open auction did not run.
    UnusableFloor,
    /// The open auction ran.
    Open,
}

impl IndexEntry {
    /// Why an impression that ended with `stop` never tried this campaign
    /// in any of its auctions: the index-level reason explain reports.
    pub fn not_offered(&self, stop: Stop) -> FilterReason {
        match (self, stop) {
            (IndexEntry::Paused, _) => FilterReason::Paused,
            (IndexEntry::DealsOnly, _) => FilterReason::Deal,
            (_, Stop::PrivateAuction) => FilterReason::PrivateAuction,
            (_, Stop::UnusableFloor) => FilterReason::Floor,
            (IndexEntry::Segment(_), _) => FilterReason::Segment,
            (IndexEntry::Formats(_), _) => FilterReason::Creative,
        }
    }
}

/// What an impression's selection touched, for [`IndexTally::count`].
#[derive(Debug)]
pub enum ImpOutcome<'s> {
    /// It ended before an open auction (never [`Stop::Open`]).
    Stopped(Stop),
    /// The open auction ran over these format buckets and segment groups
    /// (any order, repeats allowed; sorted in place).
    Open {
        /// Format buckets hit.
        formats: &'s mut Vec<u32>,
        /// Segment groups hit.
        segment_groups: &'s mut Vec<u32>,
    },
}

/// Most distinct combinations of format buckets counted; past it an open
/// auction hitting a new combination is counted in the total only (its
/// `creative` exclusions are not derived). Real traffic offers a few
/// dozen combinations of sizes and media.
pub const MAX_FORMAT_SETS: usize = 4096;

#[derive(Debug)]
struct FormatSet {
    formats: Box<[u32]>,
    count: AtomicU64,
}

/// Per-bucket counts of one index, on the bid path: a few relaxed atomic
/// increments per impression, and a map lookup when it hits several format
/// buckets.
#[derive(Debug, Default)]
pub struct IndexTally {
    deal_won: AtomicU64,
    private: AtomicU64,
    unusable_floor: AtomicU64,
    no_format: AtomicU64,
    by_format: Box<[AtomicU64]>,
    format_sets: papaya::HashMap<u64, FormatSet, foldhash::fast::RandomState>,
    format_sets_full: AtomicU64,
    by_segment_group: Box<[AtomicU64]>,
}

fn counters(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl IndexTally {
    /// Counters for an index with `formats` format buckets and
    /// `segment_groups` segment groups.
    pub fn new(formats: usize, segment_groups: usize) -> IndexTally {
        IndexTally {
            by_format: counters(formats),
            by_segment_group: counters(segment_groups),
            ..IndexTally::default()
        }
    }

    /// Counts one impression's selection.
    pub fn count(&self, outcome: ImpOutcome<'_>) {
        let (formats, groups) = match outcome {
            ImpOutcome::Stopped(Stop::DealWon) => return add(&self.deal_won),
            ImpOutcome::Stopped(Stop::PrivateAuction) => return add(&self.private),
            ImpOutcome::Stopped(Stop::UnusableFloor) => return add(&self.unusable_floor),
            // Not sent (an open auction says what it hit): as one that hit nothing.
            ImpOutcome::Stopped(Stop::Open) => return add(&self.no_format),
            ImpOutcome::Open {
                formats,
                segment_groups,
            } => (formats, segment_groups),
        };
        if groups.len() > 1 {
            groups.sort_unstable();
            groups.dedup();
        }
        for &group in groups.iter() {
            add(&self.by_segment_group[group as usize]);
        }
        if formats.len() > 1 {
            formats.sort_unstable();
            formats.dedup();
        }
        match formats.as_slice() {
            [] => add(&self.no_format),
            [one] => add(&self.by_format[*one as usize]),
            several => self.count_format_set(several),
        }
    }

    fn count_format_set(&self, formats: &[u32]) {
        let hash = foldhash::fast::FixedState::default().hash_one(formats);
        let sets = self.format_sets.pin();
        if let Some(set) = sets.get(&hash) {
            // A 64-bit collision between two sets is not worth a branch
            // more than this check: the rare loser counts as unclassified.
            return add(if *set.formats == *formats {
                &set.count
            } else {
                &self.format_sets_full
            });
        }
        if sets.len() >= MAX_FORMAT_SETS {
            return add(&self.format_sets_full);
        }
        let set = sets.get_or_insert_with(hash, || FormatSet {
            formats: formats.into(),
            count: AtomicU64::new(0),
        });
        add(if *set.formats == *formats {
            &set.count
        } else {
            &self.format_sets_full
        });
    }

    /// The counts as they stand, to derive campaigns' counts from.
    pub fn counts(&self) -> TallyCounts {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let by_format: Vec<u64> = self.by_format.iter().map(load).collect();
        let format_sets: Vec<(Box<[u32]>, u64)> = self
            .format_sets
            .pin()
            .values()
            .map(|set| (set.formats.clone(), load(&set.count)))
            .collect();
        let single: u64 = by_format.iter().sum();
        let sets: u64 = format_sets.iter().map(|(_, n)| n).sum();
        let no_format = load(&self.no_format);
        TallyCounts {
            deal_won: load(&self.deal_won),
            private: load(&self.private),
            unusable_floor: load(&self.unusable_floor),
            open: no_format + single + sets + load(&self.format_sets_full),
            no_format,
            single,
            by_format,
            format_sets,
            by_segment_group: self.by_segment_group.iter().map(load).collect(),
        }
    }
}

/// A reading of an [`IndexTally`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TallyCounts {
    /// Impressions won in a deal.
    pub deal_won: u64,
    /// Private auctions without a deal bid.
    pub private: u64,
    /// Impressions with an unusable floor.
    pub unusable_floor: u64,
    /// Open auctions.
    pub open: u64,
    no_format: u64,
    single: u64,
    by_format: Vec<u64>,
    format_sets: Vec<(Box<[u32]>, u64)>,
    by_segment_group: Vec<u64>,
}

impl TallyCounts {
    /// Every impression selected for.
    pub fn impressions(&self) -> u64 {
        self.deal_won + self.private + self.unusable_floor + self.open
    }

    /// The index-level counts of a campaign filed as `entry`, by reason
    /// (zero counts included).
    pub fn excluded(&self, entry: &IndexEntry) -> Vec<(FilterReason, u64)> {
        let open_auction_only = || {
            vec![
                (FilterReason::PrivateAuction, self.private),
                (FilterReason::Floor, self.unusable_floor),
            ]
        };
        match entry {
            IndexEntry::Paused => vec![(FilterReason::Paused, self.impressions())],
            IndexEntry::DealsOnly => vec![(FilterReason::Deal, self.open)],
            IndexEntry::Segment(group) => {
                let hit = self.by_segment_group.get(*group as usize).copied().unwrap_or(0);
                let mut counts = open_auction_only();
                counts.push((FilterReason::Segment, self.open.saturating_sub(hit)));
                counts
            }
            IndexEntry::Formats(formats) => {
                let filed = |id: &u32| formats.binary_search(id).is_ok();
                let hit_single: u64 = formats.iter().filter_map(|&id| self.by_format.get(id as usize)).sum();
                let missed_sets: u64 = self
                    .format_sets
                    .iter()
                    .filter(|(set, _)| !set.iter().any(filed))
                    .map(|(_, n)| n)
                    .sum();
                let mut counts = open_auction_only();
                counts.push((
                    FilterReason::Creative,
                    self.no_format + (self.single - hit_single) + missed_sets,
                ));
                counts
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(tally: &IndexTally, formats: &[u32], groups: &[u32]) {
        tally.count(ImpOutcome::Open {
            formats: &mut formats.to_vec(),
            segment_groups: &mut groups.to_vec(),
        });
    }

    fn reason(counts: &TallyCounts, entry: &IndexEntry, reason: FilterReason) -> u64 {
        counts
            .excluded(entry)
            .into_iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| n)
    }

    #[test]
    fn a_campaign_is_counted_once_per_open_auction_that_missed_all_its_buckets() {
        let tally = IndexTally::new(4, 2);
        open(&tally, &[0], &[]);
        open(&tally, &[0, 1, 1], &[1, 1]); // repeats count once
        open(&tally, &[1, 0], &[0, 1]);
        open(&tally, &[2], &[]);
        open(&tally, &[], &[]);
        tally.count(ImpOutcome::Stopped(Stop::PrivateAuction));
        tally.count(ImpOutcome::Stopped(Stop::DealWon));
        let counts = tally.counts();
        assert_eq!((counts.open, counts.impressions()), (5, 7));
        let creative = |formats: &[u32]| reason(&counts, &IndexEntry::Formats(formats.into()), FilterReason::Creative);
        assert_eq!(creative(&[0]), 2, "missed by [2] and []");
        assert_eq!(creative(&[1]), 3);
        assert_eq!(creative(&[0, 1]), 2, "a set hitting both buckets counts once");
        assert_eq!(creative(&[3]), 5);
        let formats = IndexEntry::Formats([0].into());
        assert_eq!(reason(&counts, &formats, FilterReason::PrivateAuction), 1);
        assert_eq!(reason(&counts, &IndexEntry::Segment(1), FilterReason::Segment), 3);
        assert_eq!(reason(&counts, &IndexEntry::Segment(0), FilterReason::Segment), 4);
        assert_eq!(reason(&counts, &IndexEntry::DealsOnly, FilterReason::Deal), 5);
        assert_eq!(reason(&counts, &IndexEntry::Paused, FilterReason::Paused), 7);
    }

    #[test]
    fn past_the_set_limit_open_auctions_are_only_totalled() {
        let tally = IndexTally::new(MAX_FORMAT_SETS + 2, 0);
        for i in 0..MAX_FORMAT_SETS as u32 + 1 {
            open(&tally, &[i, i + 1], &[]);
        }
        let counts = tally.counts();
        assert_eq!(counts.open, MAX_FORMAT_SETS as u64 + 1);
        assert_eq!(counts.format_sets.len(), MAX_FORMAT_SETS);
    }

    #[test]
    fn explain_names_the_index_level_reason() {
        let formats = IndexEntry::Formats([0].into());
        assert_eq!(formats.not_offered(Stop::Open), FilterReason::Creative);
        assert_eq!(formats.not_offered(Stop::PrivateAuction), FilterReason::PrivateAuction);
        assert_eq!(IndexEntry::Segment(0).not_offered(Stop::Open), FilterReason::Segment);
        assert_eq!(
            IndexEntry::DealsOnly.not_offered(Stop::PrivateAuction),
            FilterReason::Deal
        );
        assert_eq!(IndexEntry::Paused.not_offered(Stop::DealWon), FilterReason::Paused);
    }
}
