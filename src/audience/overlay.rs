//! The real-time overlay: segment changes that cannot wait for the next
//! snapshot (a user who just clicked joins a retargeting segment; a call
//! event triggers an offer minutes later).
//!
//! Changes come through the admin API, are merged with the snapshot at
//! lookup time (additions with their ancestors; a removal hides the segment
//! and everything below it), expire after their time to live, and are
//! dropped once a newer snapshot already says the same (or swept once
//! expired). The overlay is bounded in users, refusing new users past the
//! bound rather than evicting any, and lives in memory; the admin API keeps
//! its changes in a journal replayed at start-up ([`super::journal`]).
//! Lock-free reads; a user's changes are replaced atomically.

use std::sync::Arc;

use super::Snapshot;
use super::snapshot::UserSegments;
use super::taxonomy::{SegmentKey, SegmentPath};

/// One user's pending changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// Added segments: (path, its key and its ancestors' keys, expiry in
    /// Unix seconds).
    pub added: Vec<(String, Vec<SegmentKey>, i64)>,
    /// Removed segments: (path, key, expiry).
    pub removed: Vec<(String, SegmentKey, i64)>,
}

impl UserChanges {
    fn live(&self, now: i64) -> UserChanges {
        UserChanges {
            added: self.added.iter().filter(|a| a.2 > now).cloned().collect(),
            removed: self.removed.iter().filter(|r| r.2 > now).cloned().collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// True while any change is live after `now`.
    fn expires_after(&self, now: i64) -> bool {
        self.added.iter().any(|a| a.2 > now) || self.removed.iter().any(|r| r.2 > now)
    }

    /// Removes (segment and everything below it, overriding additions) then
    /// adds (with ancestors), each until `expires`.
    fn change(&mut self, add: &[SegmentPath], remove: &[SegmentPath], expires: i64) {
        for path in remove {
            // Removing a segment also withdraws additions below it.
            let below = format!("{}/", path.as_str());
            self.added.retain(|a| a.0 != path.as_str() && !a.0.starts_with(&below));
            self.removed.retain(|r| r.0 != path.as_str());
            self.removed.push((path.as_str().to_string(), path.key(), expires));
        }
        for path in add {
            self.removed.retain(|r| r.0 != path.as_str());
            self.added.retain(|a| a.0 != path.as_str());
            let mut lineage = vec![path.key()];
            let mut cursor = path.parent();
            while let Some(parent) = cursor {
                lineage.push(parent.key());
                cursor = parent.parent();
            }
            self.added.push((path.as_str().to_string(), lineage, expires));
        }
    }
}

/// Why an overlay change was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OverlayError {
    /// The overlay holds its maximum of users (the number) and this user is not one of them.
    #[error("the overlay holds its maximum of {0} users; try again once changes expire or after the next snapshot")]
    Full(usize),
    /// A segment path is invalid (the reason).
    #[error("{0}")]
    Path(String),
}

/// Segment changes per user, merged with the snapshot at lookup; bounded in users, in memory only.
pub struct Overlay {
    users: papaya::HashMap<u64, Arc<UserChanges>, foldhash::fast::RandomState>,
    max_users: usize,
}

impl Overlay {
    /// An empty overlay holding at most `max_users` users.
    pub fn new(max_users: usize) -> Overlay {
        Overlay {
            users: papaya::HashMap::builder().hasher(Default::default()).build(),
            max_users,
        }
    }

    /// Users with changes (expired ones included until the next reconciliation).
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when no user has changes: lookups can skip the merge.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Adds and removes segments for a user until `expires` (Unix seconds).
    pub fn apply(
        &self,
        user: u64,
        add: &[String],
        remove: &[String],
        now: i64,
        expires: i64,
    ) -> Result<(), OverlayError> {
        let parse = |text: &String| SegmentPath::parse(text).map_err(|e| OverlayError::Path(e.to_string()));
        let add: Vec<SegmentPath> = add.iter().map(parse).collect::<Result<_, _>>()?;
        let remove: Vec<SegmentPath> = remove.iter().map(parse).collect::<Result<_, _>>()?;
        self.change(user, &add, &remove, now, expires)
    }

    /// [`Overlay::apply`] with paths already parsed: the one place a user's
    /// changes are written (the admin API, bulk events, and their replay
    /// at start-up). Atomic per user: concurrent changes to one user are
    /// applied one after the other, none lost. A user not yet in the
    /// overlay is refused once it holds its maximum.
    pub fn change(
        &self,
        user: u64,
        add: &[SegmentPath],
        remove: &[SegmentPath],
        now: i64,
        expires: i64,
    ) -> Result<(), OverlayError> {
        let users = self.users.pin();
        let outcome = users.compute(user, |entry| match entry {
            None if users.len() >= self.max_users => papaya::Operation::Abort(()),
            _ => {
                let mut changes = entry.map(|(_, c)| c.live(now)).unwrap_or_default();
                changes.change(add, remove, expires);
                papaya::Operation::Insert(Arc::new(changes))
            }
        });
        match outcome {
            papaya::Compute::Aborted(()) => Err(OverlayError::Full(self.max_users)),
            _ => Ok(()),
        }
    }

    /// Forgets the users whose every change has expired (they no longer
    /// count against the bound). Returns how many were forgotten.
    pub fn sweep(&self, now: i64) -> usize {
        let users = self.users.pin();
        let before = users.len();
        users.retain(|_, changes| changes.expires_after(now));
        before.saturating_sub(users.len())
    }

    /// Calls `f` with every user's live changes at `now` (the journal's
    /// compaction).
    pub fn for_each_live(&self, now: i64, mut f: impl FnMut(u64, &UserChanges)) {
        for (user, changes) in self.users.pin().iter() {
            let live = changes.live(now);
            if !live.is_empty() {
                f(*user, &live);
            }
        }
    }

    /// Users the overlay holds at most.
    pub fn max_users(&self) -> usize {
        self.max_users
    }

    /// Forgets every change of a user (an erasure); true when it had some.
    pub fn erase(&self, user: u64) -> bool {
        self.users.pin().remove(&user).is_some()
    }

    /// The live changes for a user, if any.
    pub fn get(&self, user: u64, now: i64) -> Option<UserChanges> {
        let changes = self.users.pin().get(&user)?.live(now);
        (!changes.is_empty()).then_some(changes)
    }

    /// The user's segment keys (with ancestors): the snapshot's, less the
    /// removed segments and their descendants, plus the added ones. Sorted,
    /// in no particular order and possibly repeated, into `out`.
    pub fn merge(
        &self,
        user: u64,
        snapshot: &Snapshot,
        from_snapshot: Option<UserSegments<'_>>,
        now: i64,
        out: &mut Vec<SegmentKey>,
    ) {
        let users = self.users.pin();
        let changes = users.get(&user);
        let removed = |lineage: &[SegmentKey]| {
            changes.is_some_and(|c| c.removed.iter().any(|r| r.2 > now && lineage.contains(&r.1)))
        };
        if let Some(segments) = from_snapshot {
            for index in segments.indexes() {
                let lineage = snapshot.lineage(index);
                if !removed(lineage) {
                    out.extend_from_slice(lineage);
                }
            }
        }
        if let Some(changes) = changes {
            for (_, lineage, expires) in &changes.added {
                if *expires > now {
                    out.extend_from_slice(lineage);
                }
            }
        }
    }

    /// After a snapshot swap: forgets changes the snapshot already reflects
    /// and those that expired.
    pub fn reconcile(&self, snapshot: &Snapshot, now: i64) {
        let users = self.users.pin();
        let keys: Vec<u64> = users.keys().copied().collect();
        for user in keys {
            let Some(changes) = users.get(&user) else { continue };
            let mut changes = changes.live(now);
            let mut held = Vec::new();
            if let Some(segments) = snapshot.lookup(user) {
                held.extend(segments.keys_with_ancestors());
            }
            changes.added.retain(|a| !held.contains(&a.1[0]));
            changes.removed.retain(|r| held.contains(&r.1));
            if changes.is_empty() {
                users.remove(&user);
            } else {
                users.insert(user, Arc::new(changes));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::snapshot::SnapshotWriter;
    use crate::audience::user_key;

    fn snapshot(lines: &[(&str, &str)]) -> Snapshot {
        let mut writer = SnapshotWriter::new();
        for (user, path) in lines {
            let index = writer.segment(&SegmentPath::parse(path).unwrap());
            writer.add(user_key(user), index);
        }
        Snapshot::from_vec(writer.finish_to_vec()).unwrap()
    }

    fn keys(overlay: &Overlay, snap: &Snapshot, user: &str, now: i64) -> Vec<SegmentKey> {
        let mut out = Vec::new();
        overlay.merge(user_key(user), snap, snap.lookup(user_key(user)), now, &mut out);
        out
    }

    fn key(path: &str) -> SegmentKey {
        SegmentPath::parse(path).unwrap().key()
    }

    #[test]
    fn adds_removes_and_expiry_merge_with_the_snapshot() {
        let snap = snapshot(&[("u", "interest/finance/funds"), ("u", "rfm/gold")]);
        let overlay = Overlay::new(10);
        overlay
            .apply(
                user_key("u"),
                &["retarget/clicked/shoes".into()],
                &["interest/finance".into()],
                100,
                200,
            )
            .unwrap();
        let merged = keys(&overlay, &snap, "u", 150);
        assert!(merged.contains(&key("retarget")) && merged.contains(&key("retarget/clicked/shoes")));
        assert!(
            !merged.contains(&key("interest/finance/funds")) && !merged.contains(&key("interest")),
            "removed with descendants"
        );
        assert!(merged.contains(&key("rfm/gold")));
        let expired = keys(&overlay, &snap, "u", 250);
        assert!(expired.contains(&key("interest/finance/funds")) && !expired.contains(&key("retarget")));
    }

    #[test]
    fn bounded_and_reconciled_with_newer_snapshots() {
        let overlay = Overlay::new(1);
        overlay.apply(user_key("a"), &["x/y".into()], &[], 0, 1000).unwrap();
        assert_eq!(
            overlay.apply(user_key("b"), &["x/y".into()], &[], 0, 1000),
            Err(OverlayError::Full(1))
        );
        assert!(
            overlay
                .apply(user_key("a"), &["bad path".into()], &[], 0, 1000)
                .is_err()
        );
        overlay.reconcile(&snapshot(&[("a", "x/z")]), 10);
        assert_eq!(overlay.len(), 1, "the new snapshot does not have x/y yet");
        overlay.reconcile(&snapshot(&[("a", "x/y")]), 10);
        assert!(overlay.is_empty(), "the new snapshot includes it");
    }
}
