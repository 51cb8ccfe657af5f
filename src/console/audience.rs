//! The audience page (`/admin/audience`), for `admin` and `data` tokens:
//! the snapshot's facts (users, segments, size, when the file was
//! written), its segment taxonomy, and one user's segments looked up
//! through `GET /admin/api/audience/users/{id}`.
//!
//! The snapshot format keeps no per-segment user counts (only the
//! dictionary and each user's list), so the taxonomy is shown without
//! them; the page says so.

use askama::Template;
use serde_json::Value;

use super::format;
use super::page::{Cx, Shell, error_of, render};
use super::reply::Reply;

/// Segments listed at most.
const MAX_LISTED: usize = 2000;

struct Segment {
    path: String,
    depth: usize,
}

struct Lookup {
    user: String,
    snapshot: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/audience.html")]
struct AudiencePage {
    shell: Shell,
    users: String,
    segments: String,
    bytes: String,
    file: String,
    built: String,
    taxonomy: Vec<Segment>,
    more: usize,
    lookup: Option<Lookup>,
}

fn segments_of(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|s| s.as_str().or_else(|| s["segment"].as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn lookup(cx: &Cx, user: &str) -> Lookup {
    let answer = cx.call(
        http::Method::GET,
        &format!("/admin/api/audience/users/{user}"),
        &[],
        None,
    );
    let body = &answer.body;
    Lookup {
        user: user.to_string(),
        snapshot: segments_of(&body["snapshot"]),
        added: segments_of(&body["overlay"]["added"]),
        removed: segments_of(&body["overlay"]["removed"]),
        error: (answer.status != 200).then(|| error_of(&answer)),
    }
}

/// When the snapshot file was last written, if it can be told.
fn built(cx: &Cx) -> (String, String) {
    let Some(path) = cx.app.reloader.snapshot_path() else {
        return ("none (an empty audience)".into(), "—".into());
    };
    let written = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
        .map_or_else(|| "unknown".into(), |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string());
    (path.display().to_string(), written)
}

/// `GET /admin/audience?user=`.
pub fn page(cx: &Cx) -> Reply {
    if !cx.principal.uses_audience() {
        return cx.message(
            403,
            "Not allowed",
            "The audience is for admin and data tokens: segments may be built from other advertisers' lists.",
        );
    }
    let snapshot = cx.app.reloader.audience.current();
    let count = snapshot.segment_count();
    let mut taxonomy: Vec<Segment> = (0..count.min(MAX_LISTED))
        .map(|i| {
            let path = snapshot.segment_path(i as u32).to_string();
            Segment {
                depth: path.matches('/').count(),
                path,
            }
        })
        .collect();
    taxonomy.sort_by(|a, b| a.path.cmp(&b.path));
    let (file, built) = built(cx);
    let user = cx.request.param("user");
    let page = AudiencePage {
        shell: cx.shell("Audience", "audience"),
        users: format::count(snapshot.user_count() as u64),
        segments: format::count(count as u64),
        bytes: format::count(snapshot.byte_len() as u64),
        file,
        built,
        taxonomy,
        more: count.saturating_sub(MAX_LISTED),
        lookup: (!user.is_empty()).then(|| lookup(cx, user)),
    };
    render(200, &page)
}
