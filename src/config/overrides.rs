//! The old home of advertiser changes, `{data_dir}/overrides.json`
//! (max bid, daily budget, status by campaign), folded once into the
//! campaign files, which are now the one source of truth; the file is then
//! renamed `overrides.json.folded` and no longer read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::campaigns::Status;
use crate::money::Micros;

/// What an advertiser changed on one campaign.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignOverride {
    /// New max CPM (`cpm` campaigns) or max CPC (`cpc` campaigns), base
    /// currency; `None` keeps the config's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bid: Option<Micros>,
    /// New daily budget, base currency; `None` keeps the config's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_budget: Option<Micros>,
    /// `active` or `paused`; `None` keeps the config's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// Every advertiser change, by campaign id: the contents of
/// `overrides.json`. An entry whose campaign the config no longer has is
/// kept, and changes nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides(pub BTreeMap<String, CampaignOverride>);

/// The overrides file of a data directory: `{data_dir}/overrides.json`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("overrides.json")
}

impl Overrides {
    /// Reads the overrides file; a missing file is no overrides.
    pub fn load(data_dir: &Path) -> std::io::Result<Overrides> {
        match std::fs::read(path(data_dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Overrides::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes each override into its campaign's file (atomically, one
    /// file at a time; folding again gives the same files, so a crash
    /// midway is repaired by the next start), then renames the overrides
    /// file out of the way. Returns how many campaigns changed; an override
    /// whose campaign is gone is dropped (and logged).
    pub fn fold_into_files(config_dir: &Path, data_dir: &Path) -> std::io::Result<usize> {
        let overrides = Overrides::load(data_dir)?;
        if overrides.0.is_empty() && !path(data_dir).exists() {
            return Ok(0);
        }
        let documents = super::documents::scan(config_dir);
        let mut folded = 0;
        for (id, change) in &overrides.0 {
            let Some(document) = documents.iter().find(|d| &d.id == id) else {
                tracing::warn!(campaign = %id, "override of a campaign no longer configured dropped");
                continue;
            };
            let mut table = document.table.clone();
            let mut set = |key: &str, value: String| {
                table.insert(key.to_string(), toml::Value::String(value));
            };
            if let Some(max_bid) = change.max_bid {
                set("max_bid", max_bid.to_string());
            }
            if let Some(budget) = change.daily_budget {
                set("daily_budget", budget.to_string());
            }
            if let Some(status) = change.status {
                set("status", status.as_str().to_string());
            }
            if table != document.table {
                let (file, text) = super::documents::file_with(config_dir, Some(document), id, &table)?;
                crate::files::write_atomically(&file, text.as_bytes())?;
                folded += 1;
            }
        }
        let old = path(data_dir);
        std::fs::rename(&old, old.with_extension("json.folded"))?;
        tracing::info!(campaigns = folded, "overrides.json folded into the campaign files");
        Ok(folded)
    }
}
