//! The current audience snapshot, swapped whole.
//!
//! The bid path calls [`AudienceStore::current`] once per request and keeps
//! the `Arc` for the request's life; a reload maps and validates the new
//! file off the request path and publishes it with one `store`. A snapshot
//! that fails validation is reported and the old one keeps serving. The
//! last request holding an old snapshot drops (unmaps) it.
//!
//! With a [`Journal`] (the server opens one in its data directory), the
//! overlay's changes survive a restart: [`AudienceStore::record`] appends
//! what the admin API changed, and [`AudienceStore::open_journal`] replays
//! it at start-up.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::events::{Change, Op};
use super::journal::{Journal, Replayed};
use super::overlay::Overlay;
use super::snapshot::{Snapshot, SnapshotError};
use super::taxonomy::SegmentPath;

/// The audience the bid path reads: the current snapshot, swapped whole, and the real-time overlay.
pub struct AudienceStore {
    current: ArcSwap<Snapshot>,
    /// Real-time segment changes, merged at lookup.
    pub overlay: Overlay,
    /// Exchanges' ids of our users, from user sync.
    pub matches: super::matches::UserMatches,
    /// Where overlay changes are kept across restarts, if anywhere.
    journal: Option<Journal>,
}

/// Users the overlay holds at most.
pub const OVERLAY_MAX_USERS: usize = 1_000_000;

impl AudienceStore {
    /// A store serving `snapshot`, with an empty overlay of at most [`OVERLAY_MAX_USERS`] users.
    pub fn new(snapshot: Snapshot) -> AudienceStore {
        AudienceStore {
            current: ArcSwap::from_pointee(snapshot),
            overlay: Overlay::new(OVERLAY_MAX_USERS),
            matches: super::matches::UserMatches::in_memory(super::matches::DEFAULT_CAPACITY),
            journal: None,
        }
    }

    /// The store with an empty overlay of at most `max_users` users.
    pub fn with_overlay_limit(self, max_users: usize) -> AudienceStore {
        AudienceStore {
            overlay: Overlay::new(max_users),
            ..self
        }
    }

    /// Opens the overlay's journal in `dir` and replays its changes not
    /// expired at `now` (Unix seconds), then drops those the snapshot
    /// already includes.
    pub fn open_journal(&mut self, dir: &Path, now: i64) -> std::io::Result<Replayed> {
        let (journal, replayed) = Journal::open(dir, &self.overlay, now)?;
        self.overlay.reconcile(&self.current.load(), now);
        self.journal = Some(journal);
        Ok(replayed)
    }

    /// Keeps `changes` (applied to the overlay already) in the journal,
    /// synced; nothing to do without one.
    pub fn record(&self, changes: &[Change], now: i64) -> std::io::Result<()> {
        match &self.journal {
            Some(journal) => journal.append(changes, &self.overlay, now),
            None => Ok(()),
        }
    }

    /// Erases `user`'s overlay changes and keeps the erasure in the journal
    /// (synced), so a restart does not bring them back. True when the
    /// overlay held changes of theirs.
    pub fn erase(&self, user: u64, now: i64) -> std::io::Result<bool> {
        let erased = self.overlay.erase(user);
        if let Some(journal) = &self.journal {
            journal.erase(user, &self.overlay, now)?;
        }
        Ok(erased)
    }

    /// [`AudienceStore::record`] for one user's removals and additions, in
    /// the order the overlay applied them (paths already validated).
    pub fn record_user(
        &self,
        user: u64,
        add: &[String],
        remove: &[String],
        expires: i64,
        now: i64,
    ) -> std::io::Result<()> {
        if self.journal.is_none() {
            return Ok(());
        }
        let change = |op: Op| {
            move |path: &String| {
                SegmentPath::parse(path).ok().map(|segment| Change {
                    user,
                    segment,
                    op,
                    expires,
                })
            }
        };
        let removals = remove.iter().filter_map(change(Op::Remove));
        let changes: Vec<Change> = removals.chain(add.iter().filter_map(change(Op::Add))).collect();
        self.record(&changes, now)
    }

    /// The store with this match table (a persistent one, at start-up).
    pub fn with_matches(mut self, matches: super::matches::UserMatches) -> AudienceStore {
        self.matches = matches;
        self
    }

    /// A store serving the snapshot at `path`, or an empty audience.
    pub fn open(path: Option<&Path>) -> Result<AudienceStore, SnapshotError> {
        Ok(AudienceStore::new(match path {
            Some(path) => Snapshot::open(path)?,
            None => Snapshot::empty(),
        }))
    }

    /// The current snapshot, counted: for holding beyond a synchronous scope (a reload waits until it is dropped).
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The current snapshot for a synchronous scope (no reference-count
    /// traffic; never hold it across an await).
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Loads `path` (or an empty audience) and swaps it in if it is valid.
    /// Runs on the reload thread, which also releases the old snapshot:
    /// unmapping gigabytes takes milliseconds that no bid request should
    /// wait for.
    /// `now` (Unix seconds) dates the reconciliation of the overlay.
    pub fn reload(&self, path: Option<&Path>, now: i64) -> Result<Arc<Snapshot>, SnapshotError> {
        let snapshot = Arc::new(match path {
            Some(path) => Snapshot::open(path)?,
            None => Snapshot::empty(),
        });
        let old = self.current.swap(snapshot.clone());
        // Forget overlay changes the new snapshot already includes.
        self.overlay.reconcile(&snapshot, now);
        // `swap` turned every request's borrowed guard into a counted
        // reference; they end within a request's lifetime.
        while Arc::strong_count(&old) > 1 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(old);
        Ok(snapshot)
    }
}
