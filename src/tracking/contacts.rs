//! Restoring advertisers' contact counts (their frequency caps across
//! campaigns) from the billing log at start-up.
//!
//! The other counts need the two most recent day files
//! ([`crate::ledger::RESTORE_DAYS`]), which `Tracker::restore` applies in
//! full; a weekly contact cap looks back to the start of the advertiser's
//! week. So the impressions of the older day files of the last
//! [`CONTACT_DAYS`] days, and those of the recent files that are older
//! than the restore window, count as contacts only, through the same
//! [`crate::live::apply::count_contact`] as live impressions. Nothing is
//! read when no advertiser caps contacts.

use jiff::Timestamp;

use super::notice::Tracker;
use crate::ledger::{EventKind, Record};
use crate::live::World;

/// Days of billing log a weekly contact cap looks back over: a local week,
/// and a day for time zones.
pub const CONTACT_DAYS: i64 = 8;

impl Tracker {
    /// Counts the contacts of the day files older than those the restore
    /// applies, back to [`CONTACT_DAYS`] ago, in time order. A file that
    /// cannot be read is skipped with a warning (its billing is not
    /// restored from it anyway).
    pub fn restore_week_of_contacts(&self, world: &World, now: Timestamp) {
        if !world.contact.any_contact_cap {
            return;
        }
        let files = crate::ledger::files(self.ledger.dir());
        let older = &files[..files.len().saturating_sub(crate::ledger::RESTORE_DAYS)];
        let oldest = now
            .checked_sub(jiff::SignedDuration::from_hours(24 * CONTACT_DAYS))
            .unwrap_or(now);
        let oldest = crate::ledger::file_name(oldest.as_microsecond());
        for path in older {
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n < oldest.as_str())
            {
                continue;
            }
            match crate::ledger::stream_file(path) {
                Ok(records) => {
                    for record in records {
                        self.restore_contact(&record, world, now);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "contacts of an older billing log day not restored"),
            }
        }
    }

    /// One record's contact, if it is an impression of a campaign in the
    /// index whose advertiser caps contacts.
    pub(super) fn restore_contact(&self, record: &Record, world: &World, now: Timestamp) {
        if record.event != EventKind::Impression || record.user == 0 || !world.contact.any_contact_cap {
            return;
        }
        if let Some(rank) = world.rank_of(&record.campaign) {
            let at = Timestamp::from_microsecond(record.at).unwrap_or(now);
            crate::live::apply::count_contact(world.target(rank), &self.frequency, at, record.user, false);
        }
    }
}
