//! The overlay's journal: real-time segment changes survive a restart.
//!
//! `{data_dir}/audience/overlay.log` holds one change a line, JSON:
//! `{"user": KEY, "segment": PATH, "op": "add"|"remove", "expires": UNIX}`
//! (the user's key, as the snapshot stores it, not their id), or
//! `{"user": KEY, "op": "erase"}` when the user was erased (everything
//! before it about that user is dropped on replay). Every change the admin
//! API accepts (bulk events, the per-user API, erasures) is appended and
//! synced before the API answers. At start-up the lines not yet expired are
//! replayed, in order, through [`Overlay::change`] — the function live
//! changes go through — and the overlay is reconciled with the snapshot.
//!
//! Bounded: once the file passes [`COMPACT_AT_LEAST`] bytes and twice its
//! size after the last compaction, it is rewritten whole from the overlay's
//! live changes (written beside it, then renamed over it: a crash leaves
//! the old file or the new one, never a mix). The overlay itself is
//! bounded in users, so the file is too. A torn last line (a crash
//! mid-append) is skipped on replay; the API had not answered for it.
//!
//! Appends take a lock: the journal is on the control path only (the admin
//! API, on the blocking pool), never on the bid path, and one request's
//! lines must not interleave with another's or with a compaction.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::events::{Change, Op};
use super::overlay::Overlay;
use super::taxonomy::SegmentPath;

/// The journal's file name in its directory.
pub const FILE_NAME: &str = "overlay.log";

/// The size under which the journal is never compacted.
pub const COMPACT_AT_LEAST: u64 = 64 * 1024 * 1024;

/// One line of the journal.
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    user: u64,
    #[serde(default, skip_serializing_if = "str::is_empty")]
    segment: &'a str,
    op: &'a str,
    #[serde(default, skip_serializing_if = "is_zero")]
    expires: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The op of an erasure line.
const ERASE: &str = "erase";

/// One line read back.
enum Entry {
    /// A segment change.
    Change(Change),
    /// The user's changes so far are erased.
    Erase(u64),
}

/// What a replay found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Changes applied again.
    pub applied: usize,
    /// Lines past their expiry, skipped.
    pub expired: usize,
    /// Lines that could not be read (a torn last line), skipped.
    pub unreadable: usize,
    /// Changes the overlay refused (full: the bound was lowered).
    pub refused: usize,
}

struct Open {
    file: File,
    len: u64,
    compact_at: u64,
}

/// The journal of an overlay: appends and compaction.
pub struct Journal {
    path: PathBuf,
    open: Mutex<Open>,
}

fn line_of(change: &Change, out: &mut Vec<u8>) {
    let line = Line {
        user: change.user,
        segment: change.segment.as_str(),
        op: change.op.as_str(),
        expires: change.expires,
    };
    // Writing JSON of integers and valid paths into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &line);
    out.push(b'\n');
}

/// Reads one journal line back.
fn parse(text: &str) -> Option<Entry> {
    let line: Line = serde_json::from_str(text).ok()?;
    let op = match line.op {
        "add" => Op::Add,
        "remove" => Op::Remove,
        ERASE => return Some(Entry::Erase(line.user)),
        _ => return None,
    };
    Some(Entry::Change(Change {
        user: line.user,
        segment: SegmentPath::parse(line.segment).ok()?,
        op,
        expires: line.expires,
    }))
}

impl Journal {
    /// Opens (creating) the journal in `dir`, replaying its live lines into
    /// `overlay` at `now` (Unix seconds).
    pub fn open(dir: &Path, overlay: &Overlay, now: i64) -> std::io::Result<(Journal, Replayed)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let replayed = match File::open(&path) {
            Ok(file) => replay(BufReader::new(file), overlay, now)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Replayed::default(),
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        let journal = Journal {
            path,
            open: Mutex::new(Open {
                file,
                len,
                compact_at: COMPACT_AT_LEAST.max(len.saturating_mul(2)),
            }),
        };
        Ok((journal, replayed))
    }

    /// Appends `changes` (applied to `overlay` already) and syncs them;
    /// compacts the file first when it has grown past its bound.
    pub fn append(&self, changes: &[Change], overlay: &Overlay, now: i64) -> std::io::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(changes.len() * 80);
        for change in changes {
            line_of(change, &mut bytes);
        }
        self.write(bytes, overlay, now)
    }

    /// Appends the erasure of `user` (erased from `overlay` already) and
    /// syncs it: a replay drops every earlier change of theirs.
    pub fn erase(&self, user: u64, overlay: &Overlay, now: i64) -> std::io::Result<()> {
        let line = Line {
            user,
            segment: "",
            op: ERASE,
            expires: 0,
        };
        let mut bytes = Vec::with_capacity(40);
        // Writing JSON of an integer and a constant cannot fail.
        let _ = serde_json::to_writer(&mut bytes, &line);
        bytes.push(b'\n');
        self.write(bytes, overlay, now)
    }

    /// Appends `bytes` (whole lines) and syncs them, compacting first when
    /// the file has grown past its bound.
    fn write(&self, bytes: Vec<u8>, overlay: &Overlay, now: i64) -> std::io::Result<()> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if open.len + bytes.len() as u64 > open.compact_at {
            self.compact(&mut open, overlay, now)?;
        }
        if let Err(e) = open.file.write_all(&bytes).and_then(|()| open.file.sync_data()) {
            // Cut a partial write off, so the next line starts clean.
            let _ = open.file.set_len(open.len);
            return Err(e);
        }
        open.len += bytes.len() as u64;
        Ok(())
    }

    /// Rewrites the file from the overlay's live changes (which include
    /// those about to be appended: they are applied first; a line in both
    /// replays to the same state).
    fn compact(&self, open: &mut Open, overlay: &Overlay, now: i64) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        overlay.for_each_live(now, |user, changes| {
            // Removals first: replaying them after the additions would
            // withdraw additions below them made later.
            for (path, _, expires) in &changes.removed {
                push_parsed(user, path, Op::Remove, *expires, &mut bytes);
            }
            for (path, _, expires) in &changes.added {
                push_parsed(user, path, Op::Add, *expires, &mut bytes);
            }
        });
        crate::files::write_atomically(&self.path, &bytes)?;
        let file = OpenOptions::new().append(true).open(&self.path)?;
        let len = bytes.len() as u64;
        *open = Open {
            file,
            len,
            compact_at: COMPACT_AT_LEAST.max(len.saturating_mul(2)),
        };
        Ok(())
    }
}

fn push_parsed(user: u64, path: &str, op: Op, expires: i64, out: &mut Vec<u8>) {
    if let Ok(segment) = SegmentPath::parse(path) {
        line_of(
            &Change {
                user,
                segment,
                op,
                expires,
            },
            out,
        );
    }
}

/// Replays the lines of `reader` not expired at `now` into `overlay`.
fn replay(reader: impl BufRead, overlay: &Overlay, now: i64) -> std::io::Result<Replayed> {
    let mut done = Replayed::default();
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let change = match parse(&line) {
            Some(Entry::Change(change)) => change,
            Some(Entry::Erase(user)) => {
                overlay.erase(user);
                continue;
            }
            None => {
                done.unreadable += 1;
                continue;
            }
        };
        if change.expires <= now {
            done.expired += 1;
        } else if super::events::apply(overlay, &change, now).is_ok() {
            done.applied += 1;
        } else {
            done.refused += 1;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::events::ingest;
    use crate::audience::user_key;

    fn view(overlay: &Overlay, user: &str, now: i64) -> (Vec<String>, Vec<String>) {
        let changes = overlay.get(user_key(user), now).unwrap_or_default();
        (
            changes.added.iter().map(|a| a.0.clone()).collect(),
            changes.removed.iter().map(|r| r.0.clone()).collect(),
        )
    }

    #[test]
    fn changes_are_replayed_until_they_expire_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let overlay = Overlay::new(10);
        let (journal, replayed) = Journal::open(dir.path(), &overlay, 0).unwrap();
        assert_eq!(replayed, Replayed::default());
        let body = concat!(
            r#"{"user_id": "u", "segment": "a", "op": "remove", "ttl_seconds": 500}"#,
            "\n",
            r#"{"user_id": "u", "segment": "a/b", "op": "add", "ttl_seconds": 100}"#,
            "\n",
            r#"{"user_id": "v", "segment": "c", "op": "add", "ttl_seconds": 10}"#,
        );
        let done = ingest(&overlay, body.as_bytes(), 0);
        journal.append(&done.applied, &overlay, 0).unwrap();
        drop(journal);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap();
        file.write_all(br#"{"user": 1, "segm"#).unwrap();

        let restored = Overlay::new(10);
        let (_, replayed) = Journal::open(dir.path(), &restored, 50).unwrap();
        assert_eq!(
            replayed,
            Replayed {
                applied: 2,
                expired: 1,
                unreadable: 1,
                refused: 0
            }
        );
        assert_eq!(view(&restored, "u", 50), view(&overlay, "u", 50));
        assert_eq!(view(&restored, "u", 50), (vec!["a/b".into()], vec!["a".into()]));
        assert_eq!(view(&restored, "v", 50), (vec![], vec![]));
    }

    #[test]
    fn a_compacted_journal_replays_to_the_same_overlay() {
        let dir = tempfile::tempdir().unwrap();
        let overlay = Overlay::new(100);
        let (journal, _) = Journal::open(dir.path(), &overlay, 0).unwrap();
        for round in 0..50 {
            let body = format!(
                "{}\n{}",
                format_args!(
                    r#"{{"user_id": "u{}", "segment": "s/{round}", "op": "add", "ttl_seconds": 1000}}"#,
                    round % 5
                ),
                format_args!(
                    r#"{{"user_id": "u{}", "segment": "s", "op": "remove", "ttl_seconds": 50}}"#,
                    round % 3
                ),
            );
            let done = ingest(&overlay, body.as_bytes(), round);
            journal.append(&done.applied, &overlay, round).unwrap();
        }
        let before = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        {
            let mut open = journal.open.lock().unwrap();
            journal.compact(&mut open, &overlay, 60).unwrap();
        }
        let after = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        assert!(after < before, "{after} < {before}");
        let restored = Overlay::new(100);
        Journal::open(dir.path(), &restored, 60).unwrap();
        for user in ["u0", "u1", "u2", "u3", "u4"] {
            assert_eq!(view(&restored, user, 60), view(&overlay, user, 60), "{user}");
        }
    }

    #[test]
    fn an_erasure_drops_the_users_earlier_changes_on_replay() {
        let dir = tempfile::tempdir().unwrap();
        let overlay = Overlay::new(10);
        let (journal, _) = Journal::open(dir.path(), &overlay, 0).unwrap();
        let body = concat!(
            r#"{"user_id": "u", "segment": "a", "op": "add", "ttl_seconds": 500}"#,
            "\n",
            r#"{"user_id": "v", "segment": "b", "op": "add", "ttl_seconds": 500}"#,
        );
        let done = ingest(&overlay, body.as_bytes(), 0);
        journal.append(&done.applied, &overlay, 0).unwrap();
        assert!(overlay.erase(user_key("u")));
        journal.erase(user_key("u"), &overlay, 1).unwrap();
        let later = concat!(
            r#"{"user_id": "u", "segment": "c", "op": "add", "ttl_seconds": 500}"#,
            "\n"
        );
        let done = ingest(&overlay, later.as_bytes(), 2);
        journal.append(&done.applied, &overlay, 2).unwrap();
        drop(journal);

        let restored = Overlay::new(10);
        let (_, replayed) = Journal::open(dir.path(), &restored, 3).unwrap();
        assert_eq!(replayed.applied, 3, "the erasure itself is not a change");
        assert_eq!(
            view(&restored, "u", 3),
            (vec!["c".into()], vec![]),
            "only what came after"
        );
        assert_eq!(view(&restored, "v", 3), (vec!["b".into()], vec![]));
    }
}
