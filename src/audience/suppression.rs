//! The do-not-contact list: users never to be bid on, for one advertiser
//! (`PUT /admin/api/advertisers/{adv}/suppressions/{user}`) or for every
//! advertiser (a global erasure, `DELETE /admin/api/audience/users/{id}`).
//!
//! Users are held by their key ([`super::user_key`], a hash of the id):
//! the raw id is neither kept in memory nor written. The bid path reads a
//! lock-free map, once per request, and only when the list is not empty
//! (one relaxed load otherwise). Changes are durable before they are
//! answered: one JSON line per change appended to
//! `{data_dir}/suppressions.jsonl` and fsynced, replayed at start-up (a
//! torn last line is skipped), and the file is rewritten compactly
//! (atomically) at start-up once most of its lines are superseded.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The advertiser name of a suppression for everyone in the log.
pub const EVERYONE: &str = "*";

/// The stable key of an advertiser id, as suppressions hold it.
pub fn advertiser_key(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// For whom one user is suppressed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suppressed {
    /// For every advertiser (erased); cannot be lifted through the API.
    pub everyone: bool,
    /// The keys ([`advertiser_key`]) of the advertisers it is suppressed
    /// for.
    pub advertisers: Box<[u64]>,
}

impl Suppressed {
    /// True when the user must not be bid on for the advertiser with this
    /// key.
    pub fn covers(&self, advertiser: u64) -> bool {
        self.everyone || self.advertisers.contains(&advertiser)
    }

    /// With the advertiser added; `None` when nothing changes.
    fn with(&self, advertiser: u64) -> Option<Suppressed> {
        if self.covers(advertiser) {
            return None;
        }
        let mut advertisers = self.advertisers.to_vec();
        advertisers.push(advertiser);
        Some(Suppressed {
            everyone: false,
            advertisers: advertisers.into(),
        })
    }

    /// With the advertiser taken off; `None` when it was not on.
    fn without(&self, advertiser: u64) -> Option<Suppressed> {
        if !self.advertisers.contains(&advertiser) {
            return None;
        }
        Some(Suppressed {
            everyone: self.everyone,
            advertisers: self.advertisers.iter().copied().filter(|a| *a != advertiser).collect(),
        })
    }

    fn is_empty(&self) -> bool {
        !self.everyone && self.advertisers.is_empty()
    }
}

/// One line of the log.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    op: Op,
    /// The user's key, 16 lower-case hex digits.
    user: String,
    /// An advertiser id, or [`EVERYONE`].
    advertiser: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Add,
    Remove,
}

/// Users suppressed, by key; lock-free reads, changes logged durably.
#[derive(Debug, Default)]
pub struct Suppressions {
    users: papaya::HashMap<u64, Arc<Suppressed>, foldhash::fast::RandomState>,
    /// Users held (read by the bid path instead of the map's own count).
    held: AtomicUsize,
    /// The log file, and the advertiser ids met (for compaction). Locked
    /// by changes (control path) only: one change at a time, so the log's
    /// order is the map's.
    log: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    path: Option<PathBuf>,
    names: HashMap<u64, String>,
}

/// The log file in a data directory.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("suppressions.jsonl")
}

impl Suppressions {
    /// The list kept in `{data_dir}/suppressions.jsonl`: replayed (created
    /// on the first change), and rewritten compactly when most of it is
    /// superseded.
    pub fn open(data_dir: &Path) -> std::io::Result<Suppressions> {
        let path = log_path(data_dir);
        let suppressions = Suppressions::default();
        let lines = match std::fs::read_to_string(&path) {
            Ok(text) => suppressions.replay(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let mut log = suppressions.lock();
        log.path = Some(path);
        if lines > 2 * suppressions.len() + 1024 {
            suppressions.compact(&log)?;
        }
        drop(log);
        Ok(suppressions)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies the log's lines; returns how many there were. Lines that
    /// do not parse (a torn last line) are skipped.
    fn replay(&self, text: &str) -> usize {
        let mut log = self.lock();
        let mut lines = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            lines += 1;
            let Ok(line) = serde_json::from_str::<Line>(line) else {
                tracing::warn!("suppression log: a line that does not parse skipped");
                continue;
            };
            let Ok(user) = u64::from_str_radix(&line.user, 16) else {
                continue;
            };
            log.names
                .insert(advertiser_key(&line.advertiser), line.advertiser.clone());
            self.change(user, line.op, &line.advertiser);
        }
        lines
    }

    /// Rewrites the log with one line per (user, advertiser) held.
    fn compact(&self, log: &Log) -> std::io::Result<()> {
        let Some(path) = &log.path else { return Ok(()) };
        let mut text = Vec::new();
        for (user, suppressed) in self.users.pin().iter() {
            let everyone = suppressed.everyone.then(|| EVERYONE.to_string());
            let named = suppressed
                .advertisers
                .iter()
                .filter_map(|key| log.names.get(key).cloned());
            for advertiser in everyone.into_iter().chain(named) {
                let line = Line {
                    op: Op::Add,
                    user: format!("{user:016x}"),
                    advertiser,
                };
                serde_json::to_writer(&mut text, &line).map_err(std::io::Error::other)?;
                text.push(b'\n');
            }
        }
        crate::files::write_atomically(path, &text)
    }

    /// Users held.
    pub fn len(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// True when no user is suppressed: the bid path looks nothing up.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// For whom `user` is suppressed, if for anyone.
    pub fn lookup(&self, user: u64) -> Option<Arc<Suppressed>> {
        if self.is_empty() {
            return None;
        }
        self.users.pin().get(&user).cloned()
    }

    /// Suppresses `user` for `advertiser` (an id, or [`EVERYONE`]), durably
    /// first; false when it already was.
    pub fn suppress(&self, user: u64, advertiser: &str) -> std::io::Result<bool> {
        self.logged(user, Op::Add, advertiser)
    }

    /// Lifts `user`'s suppression for `advertiser`, durably first; false
    /// when there was none (a suppression for everyone is not lifted).
    pub fn lift(&self, user: u64, advertiser: &str) -> std::io::Result<bool> {
        self.logged(user, Op::Remove, advertiser)
    }

    /// Writes the change to the log (when it changes anything), then makes
    /// it.
    fn logged(&self, user: u64, op: Op, advertiser: &str) -> std::io::Result<bool> {
        let mut log = self.lock();
        let current = self.users.pin().get(&user).cloned().unwrap_or_default();
        if next(&current, op, advertiser).is_none() {
            return Ok(false);
        }
        if let Some(path) = &log.path {
            let line = Line {
                op,
                user: format!("{user:016x}"),
                advertiser: advertiser.to_string(),
            };
            let mut bytes = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
            append(path, &bytes)?;
        }
        log.names.insert(advertiser_key(advertiser), advertiser.to_string());
        self.change(user, op, advertiser);
        Ok(true)
    }

    /// Makes a change in memory.
    fn change(&self, user: u64, op: Op, advertiser: &str) {
        let users = self.users.pin();
        let current = users.get(&user).cloned().unwrap_or_default();
        let Some(next) = next(&current, op, advertiser) else {
            return;
        };
        if next.is_empty() {
            if users.remove(&user).is_some() {
                self.held.fetch_sub(1, Ordering::Relaxed);
            }
        } else if users.insert(user, Arc::new(next)).is_none() {
            self.held.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What `op` makes of `current`; `None` when nothing changes.
fn next(current: &Suppressed, op: Op, advertiser: &str) -> Option<Suppressed> {
    match (op, advertiser) {
        (Op::Add, EVERYONE) if current.everyone => None,
        (Op::Add, EVERYONE) => Some(Suppressed {
            everyone: true,
            advertisers: Box::new([]),
        }),
        (Op::Add, id) => current.with(advertiser_key(id)),
        (Op::Remove, EVERYONE) => None,
        (Op::Remove, id) => current.without(advertiser_key(id)),
    }
}

/// Appends `bytes` to `path` and syncs it; a line torn by a crash is
/// closed first, so it spoils only itself.
fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    let len = file.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut last, len - 1)?;
    }
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    file.write_all(bytes)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppressions_survive_a_reopen_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let list = Suppressions::open(dir.path()).unwrap();
        assert!(list.is_empty() && list.lookup(1).is_none());
        assert!(list.suppress(1, "acme").unwrap());
        assert!(!list.suppress(1, "acme").unwrap(), "already");
        assert!(list.suppress(1, "globex").unwrap());
        assert!(list.suppress(2, "acme").unwrap());
        assert!(list.lift(2, "acme").unwrap());
        assert!(!list.lift(2, "acme").unwrap(), "not any more");
        assert!(list.suppress(3, EVERYONE).unwrap());
        assert!(!list.lift(3, EVERYONE).unwrap(), "an erasure is not lifted");
        let (acme, globex, initech) = (
            advertiser_key("acme"),
            advertiser_key("globex"),
            advertiser_key("initech"),
        );
        let check = |list: &Suppressions| {
            assert_eq!(list.len(), 2);
            let one = list.lookup(1).unwrap();
            assert!(one.covers(acme) && one.covers(globex) && !one.covers(initech));
            assert!(list.lookup(2).is_none());
            assert!(list.lookup(3).unwrap().covers(initech));
        };
        check(&list);
        let path = log_path(dir.path());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"op\": \"add\", \"us")
            .unwrap();
        let reopened = Suppressions::open(dir.path()).unwrap();
        check(&reopened);
        assert!(reopened.suppress(4, "acme").unwrap(), "appends after the torn line");
        let again = Suppressions::open(dir.path()).unwrap();
        assert!(again.lookup(4).unwrap().covers(acme));
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with(r#"{"op":"add","user":"0000000000000001","advertiser":"acme"}"#),
            "users by key"
        );
    }

    #[test]
    fn a_superseded_log_is_compacted_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let list = Suppressions::open(dir.path()).unwrap();
        for _ in 0..600 {
            list.suppress(7, "acme").unwrap();
            list.lift(7, "acme").unwrap();
        }
        list.suppress(8, "acme").unwrap();
        list.suppress(9, EVERYONE).unwrap();
        let path = log_path(dir.path());
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1202);
        let reopened = Suppressions::open(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2, "compacted");
        assert_eq!(reopened.len(), 2);
        let again = Suppressions::open(dir.path()).unwrap();
        assert!(again.lookup(8).unwrap().covers(advertiser_key("acme")));
        assert!(again.lookup(9).unwrap().everyone && again.lookup(7).is_none());
    }
}
