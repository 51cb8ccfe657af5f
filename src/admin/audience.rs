//! `/admin/api/audience/users/{id}`: one user's segments (snapshot and
//! overlay), changes to them now, and the user's erasure (`DELETE`: the
//! overlay's changes forgotten, the user suppressed for every advertiser;
//! [`super::suppressions::erase`]). `admin` and `data` tokens only: an
//! advertiser must not read segments built from another advertiser's lists.

use serde::Deserialize;
use serde_json::{Value, json};

use super::audit::AuditEntry;
use super::{Answer, Call, Context};
use crate::audience::overlay::OverlayError;
use crate::audience::{AudienceStore, user_key};
use crate::live::replicated::{Control, OverlayChange};

const OVERLAY_TTL_DEFAULT: i64 = 7 * 86_400;
const OVERLAY_TTL_MAX: i64 = 30 * 86_400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentChange {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
    ttl_seconds: Option<i64>,
}

/// A user's segments: from the snapshot, and the overlay's changes.
fn user_view(user_id: &str, audience: &AudienceStore, now: i64) -> Value {
    let key = user_key(user_id);
    let snapshot = audience.current();
    let from_snapshot: Vec<&str> = snapshot
        .lookup(key)
        .map(|segments| segments.indexes().map(|i| snapshot.segment_path(i)).collect())
        .unwrap_or_default();
    let changes = audience.overlay.get(key, now).unwrap_or_default();
    json!({
        "user_id": user_id,
        "snapshot": from_snapshot,
        "overlay": {
            "added": changes.added.iter().map(|a| json!({"segment": a.0, "expires": a.2})).collect::<Vec<_>>(),
            "removed": changes.removed.iter().map(|r| json!({"segment": r.0, "expires": r.2})).collect::<Vec<_>>(),
        },
    })
}

/// Sends a user's overlay change (removals first, as the overlay applies
/// them) to the other nodes of a cluster.
fn replicate(cx: &Context, user: u64, (add, remove): (&[String], &[String]), expires: i64) {
    let changes = |paths: &[String], add: bool| {
        paths
            .iter()
            .map(|segment| OverlayChange {
                user,
                segment: segment.clone(),
                add,
                expires,
            })
            .collect::<Vec<_>>()
    };
    let mut all = changes(remove, false);
    all.extend(changes(add, true));
    cx.reloader.registry.outbox.control(Control::Overlay { changes: all });
}

/// Whether the user is erased (suppressed for every advertiser).
fn erased(cx: &Context, user_id: &str) -> bool {
    cx.reloader
        .registry
        .suppressions
        .lookup(user_key(user_id))
        .is_some_and(|s| s.everyone)
}

/// `/admin/api/audience/users/{user_id}`: `GET` shows the user's segments,
/// `POST {"add": [...], "remove": [...], "ttl_seconds": N}` changes them now.
pub fn handle(cx: &Context, call: &Call, user_id: &str) -> Answer {
    if !cx.principal.uses_audience() {
        return Answer::error(403, "this token's role may not use the audience endpoints");
    }
    if user_id.is_empty() || user_id.contains('/') {
        return Answer::error(404, "not found");
    }
    let audience = &cx.reloader.audience;
    let now = cx.now.as_second();
    match call.method {
        http::Method::GET => {
            let mut view = user_view(user_id, audience, now);
            view["erased"] = json!(erased(cx, user_id));
            Answer::ok(view)
        }
        http::Method::DELETE => super::suppressions::erase(cx, user_id),
        http::Method::POST | http::Method::PATCH => {
            let change: SegmentChange = match serde_json::from_slice(&call.body) {
                Ok(change) => change,
                Err(e) => return Answer::error(400, &format!("invalid JSON: {e}")),
            };
            if change.add.is_empty() && change.remove.is_empty() {
                return Answer::error(400, "nothing to change: give add or remove");
            }
            let ttl = change.ttl_seconds.unwrap_or(OVERLAY_TTL_DEFAULT);
            if !(1..=OVERLAY_TTL_MAX).contains(&ttl) {
                return Answer::error(400, &format!("ttl_seconds must be between 1 and {OVERLAY_TTL_MAX}"));
            }
            let before = user_view(user_id, audience, now);
            match audience
                .overlay
                .apply(user_key(user_id), &change.add, &change.remove, now, now + ttl)
            {
                Ok(()) => {
                    let (add, remove) = (&change.add, &change.remove);
                    replicate(cx, user_key(user_id), (add, remove), now + ttl);
                    // Audited once applied (and sent to the other nodes),
                    // whether or not the journal write succeeds: the change
                    // is live either way.
                    let after = user_view(user_id, audience, now);
                    cx.audit(AuditEntry {
                        at: cx.now.to_string(),
                        who: cx.principal.name.clone(),
                        role: cx.principal.role.as_str().into(),
                        action: "audience.change".into(),
                        target: user_id.into(),
                        advertiser: None,
                        before,
                        after: after.clone(),
                    });
                    if let Err(e) = audience.record_user(user_key(user_id), add, remove, now + ttl, now) {
                        tracing::error!(error = %e, "audience change not written to the overlay journal");
                        return Answer::error(503, "the change was applied but not saved; send it again");
                    }
                    Answer::ok(after)
                }
                Err(e @ OverlayError::Full(_)) => Answer::error(503, &e.to_string()),
                Err(e) => Answer::error(400, &e.to_string()),
            }
        }
        _ => Answer::error(405, "method not allowed"),
    }
}
