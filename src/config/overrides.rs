//! Advertiser changes made through the admin API, persisted in
//! `{data_dir}/overrides.json` and applied on top of the config files at
//! every load, so they survive restarts and config reloads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Config;
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

    /// Writes durably: temporary file, fsync, rename, fsync of the directory.
    pub fn store(&self, data_dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::files::write_atomically(&path(data_dir), &bytes)
    }

    /// Applies the overrides to a loaded config.
    pub fn apply(&self, config: &mut Config) {
        for campaign in &mut config.campaigns {
            let Some(change) = self.0.get(&campaign.id) else {
                continue;
            };
            if let Some(max_bid) = change.max_bid {
                campaign.max_bid = max_bid;
            }
            if let Some(budget) = change.daily_budget {
                campaign.daily_budget = budget;
            }
            if let Some(status) = change.status {
                campaign.status = status;
            }
        }
    }
}
