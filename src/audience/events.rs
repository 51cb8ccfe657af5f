//! Event-triggered segment changes, in bulk: JSON Lines of
//! `{"user_id", "segment", "op": "add"|"remove", "ttl_seconds"}` applied to
//! the real-time [`Overlay`] line by line.
//!
//! Each line is one change and is judged on its own: a bad line is
//! rejected with its number (from 1) and why, the others still apply.
//! Blank lines are skipped; unknown fields are ignored. A segment is any
//! valid path (as the per-user overlay API takes it; there is no closed
//! taxonomy). `ttl_seconds` defaults to [`TTL_DEFAULT_SECONDS`] and may be at
//! most [`TTL_MAX_SECONDS`]; the change expires after it (a removal stops
//! hiding the snapshot's segment). When the overlay holds its maximum of
//! users, a line for a user it does not hold is refused
//! ([`Ingested::refused_full`]), never by evicting another: expired users
//! are swept once first, so only live ones count.

use std::borrow::Cow;

use serde::Deserialize;

use super::overlay::{Overlay, OverlayError};
use super::taxonomy::SegmentPath;
use super::user_key;

/// Time to live of a change without `ttl_seconds`: a week.
pub const TTL_DEFAULT_SECONDS: i64 = 7 * 86_400;
/// The longest time to live: thirty days (the next snapshot carries what
/// should last).
pub const TTL_MAX_SECONDS: i64 = 30 * 86_400;

/// Rejected lines listed in an answer at most; [`Ingested::rejected_count`]
/// counts them all.
pub const MAX_LISTED_REJECTIONS: usize = 1000;

/// What a change does to its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The user joins the segment (and its ancestors).
    Add,
    /// The user leaves the segment and everything below it.
    Remove,
}

impl Op {
    /// `add` or `remove`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
        }
    }
}

/// One line as sent. Borrowed where it can be: ids and paths are short.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    segment: Option<Cow<'a, str>>,
    #[serde(borrow)]
    op: Option<Cow<'a, str>>,
    ttl_seconds: Option<i64>,
}

/// A change accepted and applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The user's key ([`user_key`] of the id).
    pub user: u64,
    /// The segment.
    pub segment: SegmentPath,
    /// Add or remove.
    pub op: Op,
    /// When it expires (Unix seconds).
    pub expires: i64,
}

/// A line not applied: its number (from 1) and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// Line number in the body, from 1.
    pub line: usize,
    /// Why it was not applied.
    pub why: String,
}

/// What a body did.
#[derive(Debug, Default)]
pub struct Ingested {
    /// The changes applied, in order.
    pub applied: Vec<Change>,
    /// The first [`MAX_LISTED_REJECTIONS`] lines not applied.
    pub rejected: Vec<Rejected>,
    /// How many lines were not applied.
    pub rejected_count: usize,
    /// How many of them were refused because the overlay was full.
    pub refused_full: usize,
}

impl Ingested {
    fn reject(&mut self, line: usize, why: String) {
        self.rejected_count += 1;
        if self.rejected.len() < MAX_LISTED_REJECTIONS {
            self.rejected.push(Rejected { line, why });
        }
    }
}

/// Reads one line into a change (its expiry from `now`), or why not.
fn parse(text: &str, now: i64) -> Result<Change, String> {
    let line: Line = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let user_id = line.user_id.filter(|id| !id.is_empty()).ok_or("user_id is required")?;
    let segment = line.segment.ok_or("segment is required")?;
    let segment = SegmentPath::parse(&segment).map_err(|e| e.to_string())?;
    let op = match line.op.as_deref() {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some(other) => return Err(format!("op must be \"add\" or \"remove\", not {other:?}")),
        None => return Err("op is required (\"add\" or \"remove\")".into()),
    };
    let ttl = line.ttl_seconds.unwrap_or(TTL_DEFAULT_SECONDS);
    if !(1..=TTL_MAX_SECONDS).contains(&ttl) {
        return Err(format!("ttl_seconds must be between 1 and {TTL_MAX_SECONDS}"));
    }
    Ok(Change {
        user: user_key(&user_id),
        segment,
        op,
        expires: now + ttl,
    })
}

/// Applies one change to the overlay.
pub fn apply(overlay: &Overlay, change: &Change, now: i64) -> Result<(), OverlayError> {
    let one = std::slice::from_ref(&change.segment);
    match change.op {
        Op::Add => overlay.change(change.user, one, &[], now, change.expires),
        Op::Remove => overlay.change(change.user, &[], one, now, change.expires),
    }
}

/// Parses `body` (JSON Lines) and applies each valid line to `overlay` at
/// `now` (Unix seconds).
pub fn ingest(overlay: &Overlay, body: &[u8], now: i64) -> Ingested {
    let mut done = Ingested::default();
    let mut swept = false;
    for (index, bytes) in body.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let Ok(text) = std::str::from_utf8(bytes) else {
            done.reject(line, "not UTF-8".into());
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let change = match parse(text, now) {
            Ok(change) => change,
            Err(why) => {
                done.reject(line, why);
                continue;
            }
        };
        let mut outcome = apply(overlay, &change, now);
        if matches!(outcome, Err(OverlayError::Full(_))) && !swept {
            swept = true;
            if overlay.sweep(now) > 0 {
                outcome = apply(overlay, &change, now);
            }
        }
        match outcome {
            Ok(()) => done.applied.push(change),
            Err(e @ OverlayError::Full(_)) => {
                done.refused_full += 1;
                done.reject(line, e.to_string());
            }
            Err(e) => done.reject(line, e.to_string()),
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::Snapshot;

    fn segments(overlay: &Overlay, user: &str, now: i64) -> Vec<String> {
        let changes = overlay.get(user_key(user), now).unwrap_or_default();
        let mut added: Vec<String> = changes.added.iter().map(|a| a.0.clone()).collect();
        added.extend(changes.removed.iter().map(|r| format!("-{}", r.0)));
        added
    }

    #[test]
    fn each_line_is_applied_or_rejected_with_its_number() {
        let overlay = Overlay::new(10);
        let body = concat!(
            r#"{"user_id": "u1", "segment": "Offer/Loan", "op": "add", "ttl_seconds": 60, "source": "crm"}"#,
            "\n\n",
            r#"{"user_id": "u1", "segment": "bad path!", "op": "add"}"#,
            "\n",
            r#"{"user_id": "u2", "segment": "a/b", "op": "drop"}"#,
            "\n",
            "not json\n",
            r#"{"user_id": "", "segment": "a", "op": "add"}"#,
            "\n",
            r#"{"user_id": "u2", "segment": "a", "op": "add", "ttl_seconds": 0}"#,
            "\n",
            r#"{"user_id": "u2", "segment": "rfm/gold", "op": "remove"}"#,
        );
        let done = ingest(&overlay, body.as_bytes(), 1_000);
        assert_eq!(done.applied.len(), 2);
        let lines: Vec<usize> = done.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7]);
        assert_eq!(
            done.rejected[0].why,
            r#"segment path "bad path!" contains a character outside [a-z0-9_.:-]"#
        );
        assert_eq!(done.rejected[1].why, r#"op must be "add" or "remove", not "drop""#);
        assert!(
            done.rejected[2].why.starts_with("invalid JSON: "),
            "{:?}",
            done.rejected[2]
        );
        assert_eq!(done.rejected[3].why, "user_id is required");
        assert_eq!(done.rejected[4].why, "ttl_seconds must be between 1 and 2592000");
        assert_eq!(segments(&overlay, "u1", 1_059), ["offer/loan"]);
        assert!(segments(&overlay, "u1", 1_060).is_empty(), "expired after 60 s");
        assert_eq!(segments(&overlay, "u2", 1_000 + TTL_DEFAULT_SECONDS - 1), ["-rfm/gold"]);
    }

    #[test]
    fn a_full_overlay_refuses_new_users_and_keeps_the_ones_it_holds() {
        let overlay = Overlay::new(2);
        let line = |user: &str, ttl: i64| {
            format!(r#"{{"user_id": "{user}", "segment": "s", "op": "add", "ttl_seconds": {ttl}}}"#)
        };
        let body = [line("a", 10), line("b", 1_000), line("c", 1_000), line("b", 2_000)].join("\n");
        let done = ingest(&overlay, body.as_bytes(), 0);
        assert_eq!(
            (done.applied.len(), done.refused_full),
            (3, 1),
            "b, already held, still changes"
        );
        assert_eq!(
            done.rejected,
            [Rejected {
                line: 3,
                why:
                    "the overlay holds its maximum of 2 users; try again once changes expire or after the next snapshot"
                        .into()
            }]
        );
        // Once a's change has expired, it no longer holds a place.
        let done = ingest(&overlay, line("d", 1_000).as_bytes(), 50);
        assert_eq!((done.applied.len(), done.refused_full), (1, 0));
        let done = ingest(&overlay, line("e", 1_000).as_bytes(), 50);
        assert_eq!((done.applied.len(), done.refused_full), (0, 1), "b and d are live");
        assert_eq!(overlay.sweep(5_000), 2);
        assert_eq!(overlay.len(), 0);
    }

    #[test]
    fn events_merge_with_the_snapshot_like_the_per_user_api() {
        let overlay = Overlay::new(10);
        let body = concat!(
            r#"{"user_id": "u", "segment": "retarget/shoes", "op": "add"}"#,
            "\n",
            r#"{"user_id": "u", "segment": "retarget", "op": "remove", "ttl_seconds": 30}"#,
        );
        assert_eq!(ingest(&overlay, body.as_bytes(), 0).applied.len(), 2);
        let mut keys = Vec::new();
        overlay.merge(user_key("u"), &Snapshot::empty(), None, 10, &mut keys);
        assert!(keys.is_empty(), "the removal withdrew the addition below it");
    }
}
