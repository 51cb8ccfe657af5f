//! The user-sync match table: an exchange's id for a user → ours.
//!
//! Filled by cookie sync (`GET /sync/{exchange}/return?uid=…` with our
//! `bz_uid` cookie), read on the bid path when a request's `buyeruid` is
//! the exchange's id rather than ours. Reads are lock-free (a concurrent map
//! keyed by exchange and a hash of its id; a hit refreshes the entry's
//! last-use second, a relaxed store). The table is bounded: past its
//! capacity the least recently used entries are evicted (counted), by
//! last-use second, in batches. It survives restarts: every match is
//! appended to `{data-dir}/user-matches.log` (`exchange\tid\tour id` lines,
//! written through but not fsynced — a match is not billing; one lost in a
//! crash is made again at the user's next sync), replayed at start and
//! rewritten compactly when it holds twice the table. Cluster mode will
//! share it through the same seam as the other live state.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::user_key;

/// One match: our user's key, and when it was last used (Unix seconds).
#[derive(Debug)]
struct Entry {
    ours: u64,
    our_id: Box<str>,
    last_used: AtomicU32,
}

/// The key of an exchange's id: the exchange's name and its id, hashed.
fn key(exchange: &str, their_id: &str) -> u64 {
    user_key(exchange) ^ user_key(their_id).rotate_left(17)
}

/// The log and how many lines it holds.
#[derive(Debug)]
struct Log {
    path: PathBuf,
    file: std::fs::File,
    lines: usize,
}

/// The match table.
#[derive(Debug)]
pub struct UserMatches {
    map: papaya::HashMap<u64, Entry, foldhash::fast::FixedState>,
    capacity: usize,
    evicted: AtomicU64,
    log: Mutex<Option<Log>>,
}

/// How many matches a table holds by default.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

impl UserMatches {
    /// An empty table in memory only, holding at most `capacity` matches.
    pub fn in_memory(capacity: usize) -> UserMatches {
        UserMatches {
            map: papaya::HashMap::builder()
                .hasher(foldhash::fast::FixedState::default())
                .build(),
            capacity: capacity.max(1),
            evicted: AtomicU64::new(0),
            log: Mutex::new(None),
        }
    }

    /// The table kept in `dir/user-matches.log`: replayed now (`now`, Unix
    /// seconds, counts as the replayed matches' last use), appended to on
    /// every new match.
    pub fn open(dir: &Path, capacity: usize, now: u32) -> std::io::Result<UserMatches> {
        let matches = UserMatches::in_memory(capacity);
        std::fs::create_dir_all(dir)?;
        let path = dir.join("user-matches.log");
        let mut lines = 0;
        if let Ok(file) = std::fs::File::open(&path) {
            for line in std::io::BufReader::new(file).lines() {
                let line = line?;
                let mut fields = line.split('\t');
                if let (Some(exchange), Some(theirs), Some(ours), None) =
                    (fields.next(), fields.next(), fields.next(), fields.next())
                {
                    matches.put(exchange, theirs, ours, now);
                    lines += 1;
                }
            }
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        *matches.log.lock().unwrap_or_else(|e| e.into_inner()) = Some(Log { path, file, lines });
        Ok(matches)
    }

    /// Our user's key for the exchange's id, if synced; marks it used at
    /// `now` (Unix seconds).
    pub fn lookup(&self, exchange: &str, their_id: &str, now: u32) -> Option<u64> {
        let map = self.map.pin();
        let entry = map.get(&key(exchange, their_id))?;
        entry.last_used.store(now, Ordering::Relaxed);
        Some(entry.ours)
    }

    /// Our user id for the exchange's id, if synced.
    pub fn our_id(&self, exchange: &str, their_id: &str) -> Option<String> {
        self.map
            .pin()
            .get(&key(exchange, their_id))
            .map(|e| e.our_id.to_string())
    }

    fn put(&self, exchange: &str, their_id: &str, our_id: &str, now: u32) {
        let entry = Entry {
            ours: user_key(our_id),
            our_id: our_id.into(),
            last_used: AtomicU32::new(now),
        };
        self.map.pin().insert(key(exchange, their_id), entry);
        if self.map.len() > self.capacity {
            self.evict();
        }
    }

    /// Records, at `now` (Unix seconds), that the exchange knows our user
    /// `our_id` as `their_id`, durably in the log (written, not fsynced).
    pub fn record(&self, exchange: &str, their_id: &str, our_id: &str, now: u32) -> std::io::Result<()> {
        if self.our_id(exchange, their_id).as_deref() == Some(our_id) {
            self.lookup(exchange, their_id, now);
            return Ok(());
        }
        self.put(exchange, their_id, our_id, now);
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let Some(log) = log.as_mut() else { return Ok(()) };
        writeln!(log.file, "{exchange}\t{their_id}\t{our_id}")?;
        log.lines += 1;
        if log.lines > 2 * self.capacity.max(self.map.len()) {
            self.compact(log)?;
        }
        Ok(())
    }

    /// Rewrites the log with what the table holds (atomically).
    fn compact(&self, log: &mut Log) -> std::io::Result<()> {
        // The table keys are hashes: the log is rewritten from itself,
        // keeping the lines whose match is still held.
        let text = std::fs::read_to_string(&log.path)?;
        let mut kept = String::with_capacity(text.len() / 2);
        let mut seen = std::collections::HashSet::new();
        for line in text.lines().rev() {
            let mut fields = line.split('\t');
            let (Some(exchange), Some(theirs), Some(ours)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            let k = key(exchange, theirs);
            if seen.insert(k) && self.map.pin().get(&k).is_some_and(|e| &*e.our_id == ours) {
                kept.insert_str(0, &format!("{line}\n"));
            }
        }
        crate::files::write_atomically(&log.path, kept.as_bytes())?;
        log.file = std::fs::OpenOptions::new().append(true).open(&log.path)?;
        log.lines = kept.lines().count();
        Ok(())
    }

    /// Drops the least recently used tenth of the table (by last-use
    /// second), counting each.
    fn evict(&self) {
        let map = self.map.pin();
        let excess = map.len().saturating_sub(self.capacity) + self.capacity / 10;
        let mut by_age: Vec<(u32, u64)> = map
            .iter()
            .map(|(k, e)| (e.last_used.load(Ordering::Relaxed), *k))
            .collect();
        by_age.sort_unstable();
        for (_, k) in by_age.into_iter().take(excess.max(1)) {
            if map.remove(&k).is_some() {
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Matches held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no match is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Matches evicted since start.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_survive_a_restart_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let matches = UserMatches::open(dir.path(), 10, 100).unwrap();
        matches.record("ex", "their-1", "ours-1", 100).unwrap();
        assert_eq!(matches.lookup("ex", "their-1", 101), Some(user_key("ours-1")));
        assert_eq!(matches.lookup("other", "their-1", 101), None, "per exchange");
        drop(matches);
        let matches = UserMatches::open(dir.path(), 10, 200).unwrap();
        assert_eq!(matches.our_id("ex", "their-1").as_deref(), Some("ours-1"));
        for i in 0..30 {
            matches
                .record("ex", &format!("t{i}"), &format!("o{i}"), 300 + i)
                .unwrap();
        }
        assert!(matches.len() <= 10, "{}", matches.len());
        assert!(matches.evicted() >= 21);
        // The log was compacted along the way and still replays.
        let lines = std::fs::read_to_string(dir.path().join("user-matches.log"))
            .unwrap()
            .lines()
            .count();
        assert!(lines <= 31, "{lines}");
        let replayed = UserMatches::open(dir.path(), 10, 400).unwrap();
        assert_eq!(replayed.our_id("ex", "t29").as_deref(), Some("o29"));
    }
}
