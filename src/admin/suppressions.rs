//! `/admin/api/advertisers/{adv}/suppressions/{user_id}`: an advertiser's
//! do-not-contact list, one user at a time, and the global erasure
//! (`DELETE /admin/api/audience/users/{user_id}`, in [`super::audience`]).
//!
//! `PUT` suppresses the user for the advertiser, `DELETE` lifts it, `GET`
//! says whether the user is suppressed (for the advertiser, or for everyone
//! after an erasure). An `admin` token, or the advertiser's own token, may
//! change the list; a `viewer` reads it; another advertiser's token gets
//! 404, a `data` token 403. Each change is durable before it is answered
//! (the list's log in the data directory) and effective for the next bid
//! request, and it is audit-logged (`suppression.add`,
//! `suppression.remove`). In a cluster, each change reaches the other
//! nodes' lists through Redis (`cluster::replication`), audit-logged here
//! only.

use serde_json::{Value, json};

use super::audit::AuditEntry;
use super::{Answer, Call, Context};
use crate::audience::suppression::{EVERYONE, advertiser_key};
use crate::audience::user_key;
use crate::live::replicated::Control;

/// Whether `user_id` is suppressed for `advertiser`, and for everyone.
fn view(cx: &Context, advertiser: &str, user_id: &str) -> Value {
    let suppressed = cx.reloader.registry.suppressions.lookup(user_key(user_id));
    json!({
        "advertiser": advertiser,
        "user_id": user_id,
        "suppressed": suppressed.as_ref().is_some_and(|s| s.covers(advertiser_key(advertiser))),
        "everyone": suppressed.as_ref().is_some_and(|s| s.everyone),
    })
}

/// Answers `/admin/api/advertisers/{advertiser}/suppressions/{user_id}`.
pub fn handle(cx: &Context, call: &Call, advertiser: &str, user_id: &str) -> Answer {
    if !cx.principal.reads_campaigns() {
        return Answer::error(403, "this token's role may not use advertisers' suppressions");
    }
    let known = cx.reloader.world.load().settings.advertiser(advertiser).is_some();
    if !known || !cx.principal.sees(advertiser) {
        return Answer::error(404, "no such advertiser");
    }
    if user_id.is_empty() || user_id.contains('/') {
        return Answer::error(404, "not found");
    }
    let change = match call.method {
        http::Method::GET => return Answer::ok(view(cx, advertiser, user_id)),
        http::Method::PUT => Change::Add,
        http::Method::DELETE => Change::Remove,
        _ => return Answer::error(405, "method not allowed"),
    };
    if !cx.principal.changes_campaigns() {
        return Answer::error(403, "this token's role may not change suppressions");
    }
    let before = view(cx, advertiser, user_id);
    let list = &cx.reloader.registry.suppressions;
    let key = user_key(user_id);
    let written = match change {
        Change::Add => list.suppress(key, advertiser),
        Change::Remove => list.lift(key, advertiser),
    };
    match written {
        Ok(changed) => {
            let after = view(cx, advertiser, user_id);
            cx.reloader.registry.outbox.control(Control::Suppression {
                user: key,
                advertiser: advertiser.to_string(),
                suppressed: matches!(change, Change::Add),
            });
            if changed {
                cx.audit(AuditEntry {
                    at: cx.now.to_string(),
                    who: cx.principal.name.clone(),
                    role: cx.principal.role.as_str().into(),
                    action: change.action().into(),
                    target: user_id.into(),
                    advertiser: Some(advertiser.into()),
                    before,
                    after: after.clone(),
                });
            }
            Answer::ok(after)
        }
        Err(e) => {
            tracing::error!(error = %e, "suppression not written");
            Answer::error(503, "change not saved; try again")
        }
    }
}

/// A change to an advertiser's list.
#[derive(Clone, Copy)]
enum Change {
    Add,
    Remove,
}

impl Change {
    fn action(self) -> &'static str {
        match self {
            Change::Add => "suppression.add",
            Change::Remove => "suppression.remove",
        }
    }
}

/// `DELETE /admin/api/audience/users/{user_id}` (`admin` or `data`, checked
/// by the caller): forgets the user's real-time overlay changes and
/// suppresses the user for every advertiser, durably, for good (the next
/// snapshot should leave the user out; until then the suppression keeps
/// every campaign off them). Audit-logged as `audience.erase`.
pub fn erase(cx: &Context, user_id: &str) -> Answer {
    let key = user_key(user_id);
    let suppressed_before = cx
        .reloader
        .registry
        .suppressions
        .lookup(key)
        .is_some_and(|s| s.everyone);
    if let Err(e) = cx.reloader.registry.suppressions.suppress(key, EVERYONE) {
        tracing::error!(error = %e, "erasure not written");
        return Answer::error(503, "change not saved; try again");
    }
    let overlay_erased = match cx.reloader.audience.erase(key, cx.now.as_second()) {
        Ok(erased) => erased,
        Err(e) => {
            tracing::error!(error = %e, "erasure not written to the overlay journal");
            return Answer::error(503, "change not saved; try again");
        }
    };
    let outbox = &cx.reloader.registry.outbox;
    outbox.control(Control::Suppression {
        user: key,
        advertiser: EVERYONE.to_string(),
        suppressed: true,
    });
    outbox.control(Control::Erase { user: key });
    let after = json!({"user_id": user_id, "erased": true, "suppressed": "everyone"});
    cx.audit(AuditEntry {
        at: cx.now.to_string(),
        who: cx.principal.name.clone(),
        role: cx.principal.role.as_str().into(),
        action: "audience.erase".into(),
        target: user_id.into(),
        advertiser: None,
        before: json!({"user_id": user_id, "overlay": overlay_erased, "suppressed_everywhere": suppressed_before}),
        after: after.clone(),
    });
    Answer::ok(after)
}
