//! The audit log page (`/admin/audit`), newest first, and the rows a
//! campaign's page shows of its own history. Read through
//! `GET /admin/api/audit`, so an advertiser sees its own entries only.

use askama::Template;
use serde_json::Value;

use super::page::{Cx, Shell, error_of, render};
use super::reply::Reply;

/// One entry as shown: what changed, key by key.
pub struct AuditRow {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The token's name.
    pub who: String,
    /// Its role.
    pub role: String,
    /// `campaign.patch`, `console.sign_in`, ….
    pub action: String,
    /// A campaign id, a user id.
    pub target: String,
    /// `key: before → after`, one per changed top-level key.
    pub changes: Vec<String>,
}

fn short(value: Option<&Value>) -> String {
    let text = match value {
        None | Some(Value::Null) => "—".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// The top-level keys that differ between `before` and `after`.
fn changes(before: &Value, after: &Value) -> Vec<String> {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return if before.is_null() && after.is_object() {
            vec!["created".into()]
        } else {
            Vec::new()
        };
    };
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| format!("{k}: {} → {}", short(b.get(k)), short(a.get(k))))
        .collect()
}

/// The rows of the API's entries.
pub fn audit_rows(entries: &[Value]) -> Vec<AuditRow> {
    entries
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            AuditRow {
                at: text("at"),
                who: text("who"),
                role: text("role"),
                action: text("action"),
                target: text("target"),
                changes: changes(&e["before"], &e["after"]),
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    shell: Shell,
    audit: Vec<AuditRow>,
    error: Option<String>,
}

/// `GET /admin/audit`.
pub fn page(cx: &Cx) -> Reply {
    let answer = cx.call(http::Method::GET, "/admin/api/audit", &[("limit", "200")], None);
    let error = (answer.status != 200).then(|| error_of(&answer));
    let entries = answer.body["entries"].as_array().cloned().unwrap_or_default();
    let page = AuditPage {
        shell: cx.shell("Audit log", "audit"),
        audit: audit_rows(&entries),
        error,
    };
    render(if answer.status == 200 { 200 } else { answer.status }, &page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_are_listed_key_by_key() {
        let before = json!({"max_bid": "1", "daily_budget": "100"});
        let after = json!({"max_bid": "2", "daily_budget": "100", "end": "2026-12-31"});
        assert_eq!(changes(&before, &after), vec!["end: — → 2026-12-31", "max_bid: 1 → 2"]);
        assert_eq!(changes(&Value::Null, &after), vec!["created"]);
    }
}
