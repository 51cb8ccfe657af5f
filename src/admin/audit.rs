//! The audit log: every change made through the admin API or the console,
//! who made it, when, and the thing before and after.
//!
//! One JSON object per line in `{data_dir}/audit.jsonl`, appended and
//! fsynced before the change is acknowledged as audited. Reads scan the
//! file (a control-path read, newest first); a torn last line (a crash
//! mid-append) is skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The token's name.
    pub who: String,
    /// The token's role.
    pub role: String,
    /// What was done: `campaign.create`, `campaign.replace`,
    /// `campaign.patch`, `campaign.archive`, `creative.put`,
    /// `creative.patch`, `audience.change`, `console.sign_in`, ….
    pub action: String,
    /// What it was done to: a campaign id, a user id.
    pub target: String,
    /// The advertiser it belongs to, if any (who may read the entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertiser: Option<String>,
    /// The thing before (`null` when created).
    pub before: Value,
    /// The thing after.
    pub after: Value,
}

/// The audit log of a data directory.
pub struct AuditLog {
    path: PathBuf,
    appending: Mutex<()>,
}

impl AuditLog {
    /// The log at `{data_dir}/audit.jsonl` (created on first append).
    pub fn new(data_dir: &Path) -> AuditLog {
        AuditLog {
            path: data_dir.join("audit.jsonl"),
            appending: Mutex::new(()),
        }
    }

    /// Appends an entry durably (written and fsynced).
    pub fn append(&self, entry: &AuditEntry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _one = self.appending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)?;
        // A line torn by a crash is closed first, so it spoils only itself.
        let len = file.metadata()?.len();
        let mut last = [b'\n'];
        if len > 0 {
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut last, len - 1)?;
        }
        if last[0] != b'\n' {
            line.insert(0, b'\n');
        }
        file.write_all(&line)?;
        file.sync_data()
    }

    /// Entries that `keep` accepts, newest first, at most `limit`.
    pub fn read(&self, limit: usize, keep: impl Fn(&AuditEntry) -> bool) -> std::io::Result<Vec<AuditEntry>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(text
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<AuditEntry>(line).ok())
            .filter(|entry| keep(entry))
            .take(limit)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(target: &str) -> AuditEntry {
        AuditEntry {
            at: "2026-11-28T12:00:00Z".into(),
            who: "ops".into(),
            role: "admin".into(),
            action: "campaign.patch".into(),
            target: target.into(),
            advertiser: Some("acme".into()),
            before: serde_json::json!({"max_bid": "1"}),
            after: serde_json::json!({"max_bid": "2"}),
        }
    }

    #[test]
    fn entries_read_back_newest_first_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        log.append(&entry("a")).unwrap();
        log.append(&entry("b")).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("audit.jsonl"))
            .unwrap()
            .write_all(b"{\"at\": \"torn")
            .unwrap();
        log.append(&entry("c")).unwrap();
        let read = log.read(10, |_| true).unwrap();
        assert_eq!(read, vec![entry("c"), entry("b"), entry("a")]);
        assert_eq!(log.read(10, |e| e.target == "a").unwrap(), vec![entry("a")]);
    }
}
