//! `POST /admin/api/audience/events`: event-triggered segment changes in
//! bulk, JSON Lines `{"user_id", "segment", "op": "add"|"remove",
//! "ttl_seconds"}` ([`crate::audience::events`]), for `admin` and `data`
//! tokens only.
//!
//! Answers `{"accepted": N, "rejected": [{"line", "why"}], "rejected_total":
//! M}`: every valid line is applied, each bad one is listed (the first
//! thousand; `rejected_total` counts them all). `200`, or `429` when the
//! overlay was full and refused lines for users it does not hold (those
//! lines are in `rejected`; the others were applied): the caller retries
//! just those, later. One audit entry per request. The accepted changes
//! are in the overlay's journal (synced) before the answer; `503` when they
//! could not be written (they apply until a restart: send them again).

use serde_json::json;

use super::audit::AuditEntry;
use super::{Answer, Call, Context};
use crate::audience::events::{self, Change, Op};
use crate::live::replicated::{Control, OverlayChange};

/// An applied change, for the other nodes of a cluster.
pub fn overlay_change(change: &Change) -> OverlayChange {
    OverlayChange {
        user: change.user,
        segment: change.segment.as_str().to_string(),
        add: change.op == Op::Add,
        expires: change.expires,
    }
}

/// The path, under the admin listener.
pub const PATH: &str = "/admin/api/audience/events";

/// Largest body taken: about 400,000 lines of 80 bytes, a second or two
/// of work on the blocking pool.
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Applies a body of segment events to the overlay.
pub fn handle(cx: &Context, call: &Call) -> Answer {
    if !cx.principal.uses_audience() {
        return Answer::error(403, "this token's role may not use the audience endpoints");
    }
    if call.method != http::Method::POST {
        return Answer::error(405, "method not allowed");
    }
    let (audience, now) = (&cx.reloader.audience, cx.now.as_second());
    let done = events::ingest(&audience.overlay, &call.body, now);
    let metrics = &cx.bidder.metrics;
    metrics.audience_events_accepted.inc_by(done.applied.len() as u64);
    metrics.audience_events_rejected.inc_by(done.rejected_count as u64);
    metrics.overlay_refused.inc_by(done.refused_full as u64);
    metrics.overlay_users.set(audience.overlay.len() as i64);
    let summary = json!({
        "accepted": done.applied.len(),
        "rejected_total": done.rejected_count,
        "refused_full": done.refused_full,
    });
    cx.reloader.registry.outbox.control(Control::Overlay {
        changes: done.applied.iter().map(overlay_change).collect(),
    });
    // Audited once applied (and sent to the other nodes), whether or not
    // the journal write below succeeds: the change is live either way.
    cx.audit(AuditEntry {
        at: cx.now.to_string(),
        who: cx.principal.name.clone(),
        role: cx.principal.role.as_str().into(),
        action: "audience.events".into(),
        target: "audience/events".into(),
        advertiser: None,
        before: serde_json::Value::Null,
        after: summary,
    });
    if let Err(e) = audience.record(&done.applied, now) {
        tracing::error!(error = %e, "audience events not written to the overlay journal");
        return Answer::error(503, "the changes were applied but not saved; send them again");
    }
    Answer {
        status: if done.refused_full > 0 { 429 } else { 200 },
        body: json!({
            "accepted": done.applied.len(),
            "rejected": done.rejected,
            "rejected_total": done.rejected_count,
        }),
        etag: None,
    }
}
