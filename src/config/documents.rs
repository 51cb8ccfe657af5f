//! Campaigns as their files hold them: one `[[campaign]]` table each,
//! read, versioned and rewritten for the admin API.
//!
//! The files under `campaigns/` are the one source of truth. The API reads
//! a campaign's table from whichever file holds it (hand-written files may
//! hold several), and writes a change back into that same file, keeping
//! the other campaigns' text and comments; a new campaign
//! gets its own `campaigns/{id}.toml`. A campaign's version is a hash of
//! its content (not of its file's formatting), so a hand edit shows up as
//! a new version. Writing is temporary file, fsync, rename: a crash leaves
//! the old file or the new one.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::Digest;

use super::raw::RawCampaign;

/// Keys the API shows next to a campaign's fields and ignores when given
/// back (so a `GET` body can be edited and `PUT`).
pub const READ_ONLY_KEYS: [&str; 2] = ["version", "live"];

/// Money keys of a campaign, accepted as JSON numbers too.
const MONEY_KEYS: [&str; 9] = [
    "max_bid",
    "daily_budget",
    "total_budget",
    "pctr_prior",
    "target_cpa",
    "cps_share",
    "max_cpm",
    "pcvr_prior",
    "order_value_prior",
];

/// One campaign's table, and where it lives.
#[derive(Clone, Debug)]
pub struct CampaignDocument {
    /// Its `id`.
    pub id: String,
    /// The file holding it.
    pub file: PathBuf,
    /// Its position among the file's `[[campaign]]` tables.
    pub position: usize,
    /// The table as written.
    pub table: toml::Table,
}

/// One field a campaign document gets wrong.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldProblem {
    /// The key, dotted (`targeting.age.min`, `creative[0].w`).
    pub field: String,
    /// What is wrong.
    pub why: String,
}

impl CampaignDocument {
    /// Its content's version: the first 16 hex digits of the SHA-256 of its
    /// canonical JSON (keys sorted).
    pub fn version(&self) -> String {
        version_of(&self.table)
    }

    /// Its fields as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(&self.table).unwrap_or(Value::Null)
    }

    /// The advertiser it names.
    pub fn advertiser(&self) -> &str {
        self.table.get("advertiser").and_then(toml::Value::as_str).unwrap_or("")
    }

    /// Its status as written (`active` when left out).
    pub fn status(&self) -> &str {
        self.table
            .get("status")
            .and_then(toml::Value::as_str)
            .unwrap_or("active")
    }
}

/// The version of a campaign table.
pub fn version_of(table: &toml::Table) -> String {
    let canonical = serde_json::to_vec(table).unwrap_or_default();
    let digest = sha2::Sha256::digest(&canonical);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The campaign files of a config directory, sorted.
fn campaign_files(config_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(config_dir.join("campaigns"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Every campaign table of the config directory. A file that cannot be
/// read or parsed is skipped (and logged): validation reports it.
pub fn scan(config_dir: &Path) -> Vec<CampaignDocument> {
    let mut documents = Vec::new();
    for file in campaign_files(config_dir) {
        let table = match std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|text| text.parse::<toml::Table>().map_err(|e| e.to_string()))
        {
            Ok(table) => table,
            Err(why) => {
                tracing::warn!(file = %file.display(), %why, "campaign file skipped");
                continue;
            }
        };
        let Some(toml::Value::Array(campaigns)) = table.get("campaign") else {
            continue;
        };
        for (position, campaign) in campaigns.iter().enumerate() {
            if let toml::Value::Table(table) = campaign {
                let id = table.get("id").and_then(toml::Value::as_str).unwrap_or_default();
                documents.push(CampaignDocument {
                    id: id.to_string(),
                    file: file.clone(),
                    position,
                    table: table.clone(),
                });
            }
        }
    }
    documents
}

/// Drops JSON nulls (a merge patch's "remove this key"), recursively.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().filter(|v| !v.is_null()).map(without_nulls).collect()),
        other => other,
    }
}

/// Applies a JSON merge patch (RFC 7396): objects merge, anything else
/// (arrays included) replaces, `null` removes.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// A campaign's JSON (as the API takes it) as a TOML table: read-only keys
/// dropped, money given as a number turned into its decimal text, and
/// every key and type checked as the config loader checks them.
pub fn from_json(value: Value) -> Result<toml::Table, Vec<FieldProblem>> {
    let mut value = without_nulls(value);
    let Value::Object(map) = &mut value else {
        return Err(vec![FieldProblem {
            field: "-".into(),
            why: "a campaign is a JSON object".into(),
        }]);
    };
    for key in READ_ONLY_KEYS {
        map.remove(key);
    }
    for key in MONEY_KEYS {
        if let Some(Value::Number(n)) = map.get(key) {
            let text = n.to_string();
            map.insert(key.to_string(), Value::String(text));
        }
    }
    // An experiment arm's bid multiplier is a decimal too.
    if let Some(Value::Array(arms)) = map.get_mut("experiment").and_then(|x| x.get_mut("arm")) {
        for arm in arms.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Number(n)) = arm.get("bid_multiplier") {
                let text = n.to_string();
                arm.insert("bid_multiplier".into(), Value::String(text));
            }
        }
    }
    if let Err(e) = serde_path_to_error::deserialize::<_, RawCampaign>(&value) {
        let field = e.path().to_string();
        return Err(vec![FieldProblem {
            field: if field == "." { "-".into() } else { field },
            why: e.into_inner().to_string(),
        }]);
    }
    toml::Table::try_from(value).map_err(|e| {
        vec![FieldProblem {
            field: "-".into(),
            why: e.to_string(),
        }]
    })
}

/// The text of a file holding just this campaign.
fn single_campaign_text(table: &toml::Table) -> Result<String, toml::ser::Error> {
    let mut file = toml::Table::new();
    file.insert(
        "campaign".into(),
        toml::Value::Array(vec![toml::Value::Table(table.clone())]),
    );
    toml::to_string(&file)
}

/// Where a campaign's new table goes and the file's new text: into the
/// file that holds it now (its other campaigns untouched), or a new file,
/// `campaigns/{id}.toml` unless that name is taken (a hand-written file
/// may hold other campaigns: it is never written over), then
/// `campaigns/{id}.2.toml`, `.3`, …
pub fn file_with(
    config_dir: &Path,
    current: Option<&CampaignDocument>,
    id: &str,
    table: &toml::Table,
) -> std::io::Result<(PathBuf, String)> {
    let own_text = single_campaign_text(table).map_err(std::io::Error::other)?;
    let Some(current) = current else {
        let campaigns = config_dir.join("campaigns");
        let free = std::iter::once(format!("{id}.toml"))
            .chain((2..).map(|n| format!("{id}.{n}.toml")))
            .map(|name| campaigns.join(name))
            .find(|file| !file.exists())
            .expect("an unbounded sequence of names");
        return Ok((free, own_text));
    };
    let old_text = std::fs::read_to_string(&current.file)?;
    let (start, end) = campaign_span(&old_text, current.position)
        .ok_or_else(|| std::io::Error::other("the campaign moved in its file; try again"))?;
    let mut text = String::with_capacity(old_text.len() + own_text.len());
    text.push_str(&old_text[..start]);
    text.push_str(&own_text);
    if end < old_text.len() {
        text.push('\n');
    }
    text.push_str(&old_text[end..]);
    Ok((current.file.clone(), text))
}

/// The bytes of a file's `position`-th `[[campaign]]`: from its header to
/// the next campaign's header (or the end), less the comments and blank
/// lines just above that header, which belong to the next campaign.
fn campaign_span(text: &str, position: usize) -> Option<(usize, usize)> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let campaigns = document.get_ref().get("campaign")?.get_ref().as_array()?;
    let start = campaigns.get(position)?.span().start;
    let Some(next) = campaigns.get(position + 1).map(|c| c.span().start) else {
        return Some((start, text.len()));
    };
    let mut end = next;
    for line in text[start..next].lines().rev() {
        let trimmed = line.trim();
        if !(trimmed.is_empty() || trimmed.starts_with('#')) {
            break;
        }
        end = end.saturating_sub(line.len() + 1).max(start);
    }
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_merges_objects_and_replaces_arrays() {
        let mut doc = json!({"a": 1, "t": {"x": 1, "y": 2}, "list": [1, 2]});
        merge_patch(&mut doc, &json!({"t": {"y": null, "z": 3}, "list": [9], "a": null}));
        assert_eq!(doc, json!({"t": {"x": 1, "z": 3}, "list": [9]}));
    }

    #[test]
    fn json_money_numbers_become_decimal_text_and_types_are_checked() {
        let table = from_json(json!({
            "id": "c1", "advertiser": "a", "pricing": "cpm", "max_bid": 2.5, "daily_budget": "10",
            "version": "ignored", "live": {"x": 1}, "creative": [],
        }))
        .unwrap();
        assert_eq!(table.get("max_bid"), Some(&toml::Value::String("2.5".into())));
        assert!(!table.contains_key("version") && !table.contains_key("live"));

        let problems = from_json(json!({
            "id": "c1", "advertiser": "a", "pricing": "cpm", "max_bid": "1", "daily_budget": "10",
            "targeting": {"age": {"min": "old"}},
        }))
        .unwrap_err();
        assert_eq!(problems[0].field, "targeting.age.min");
        let unknown = from_json(json!({"id": "c1", "colour": "red"})).unwrap_err();
        assert!(unknown[0].why.contains("unknown field `colour`"), "{unknown:?}");
    }

    #[test]
    fn a_change_keeps_the_other_campaigns_text_of_a_shared_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("campaigns")).unwrap();
        let text = "# two campaigns\n[[campaign]]\nid = \"a\" # first\nmax_bid = \"1\"\n\n[[campaign]]\nid = \"b\"\nmax_bid = \"2\"\n";
        std::fs::write(dir.path().join("campaigns/both.toml"), text).unwrap();
        let documents = scan(dir.path());
        assert_eq!(documents.len(), 2);
        let b = &documents[1];
        let before = b.version();
        let mut table = b.table.clone();
        table.insert("max_bid".into(), toml::Value::String("3".into()));
        assert_ne!(version_of(&table), before);
        let (path, new_text) = file_with(dir.path(), Some(b), "b", &table).unwrap();
        assert_eq!(path, dir.path().join("campaigns/both.toml"));
        assert!(
            new_text.starts_with("# two campaigns\n[[campaign]]\nid = \"a\" # first\n"),
            "{new_text}"
        );
        assert!(new_text.contains("max_bid = \"3\""), "{new_text}");
        let nested = "[[campaign]]\nid = \"a\"\n  [[campaign.creative]]\n  id = \"x\"\n\n[[campaign]]\nid = \"b\"\n  [[campaign.creative]]\n  id = \"y\"\n";
        std::fs::write(dir.path().join("campaigns/both.toml"), nested).unwrap();
        let documents = scan(dir.path());
        let mut table = documents[1].table.clone();
        table.insert("max_bid".into(), toml::Value::String("3".into()));
        let (_, new_text) = file_with(dir.path(), Some(&documents[1]), "b", &table).unwrap();
        let reread: toml::Table = new_text.parse().unwrap();
        let campaigns = reread["campaign"].as_array().unwrap();
        assert_eq!(campaigns[0]["creative"][0]["id"].as_str(), Some("x"), "{new_text}");
        assert_eq!(campaigns[1]["creative"][0]["id"].as_str(), Some("y"), "{new_text}");
        assert_eq!(campaigns[1]["max_bid"].as_str(), Some("3"), "{new_text}");
        let (path, _) = file_with(dir.path(), None, "c", &table).unwrap();
        assert_eq!(path, dir.path().join("campaigns/c.toml"));
    }
}
