//! Configuration: `bidder-config/` read, validated, typed.
//!
//! `bullseye.toml` holds the server, bidding, FX, audience, secrets, traffic
//! and exchange settings; `campaigns/*.toml` hold `[[campaign]]` entries.
//! [`load`] reads the whole directory and either returns a complete
//! [`Config`] or every [`ConfigProblem`] found (file, campaign, field, why).
//! The secrets the process environment holds ([`Env`]) are read once, by
//! [`load`], before validation; [`load_with`] takes them as a value.
//! A reload swaps in a complete validated config or changes nothing.

pub mod defaults;
pub mod documents;
mod env;
pub mod experiment;
pub mod overrides;
pub mod raw;
#[cfg(test)]
mod tests;
mod validate;

use std::fmt;
use std::path::Path;

pub use env::Env;
pub use validate::{DEV_ADMIN_TOKEN, from_texts, from_texts_with, is_valid_id, load, load_with, load_with_file};

use crate::campaigns::Campaign;
use crate::settings::Settings;

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Path of the file at fault.
    pub file: String,
    /// Id of the campaign at fault; `None` for a problem outside any
    /// campaign (in `bullseye.toml`, or with a whole file).
    pub campaign: Option<String>,
    /// The key at fault, e.g. `bidding.currency` or `creative[0].adm`;
    /// `line N` when the TOML does not parse, `-` when the file cannot be read.
    pub field: String,
    /// What is wrong, for a person to read.
    pub why: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(campaign) = &self.campaign {
            write!(f, "campaign {campaign}: ")?;
        }
        write!(f, "{}: {}", self.field, self.why)
    }
}

/// All problems of a rejected configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration ({} problem(s)):\n{}", .0.len(), .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

/// A complete, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `bullseye.toml`, validated, with the environment's secrets over it.
    pub settings: Settings,
    /// Every `[[campaign]]` of `campaigns/*.toml`.
    pub campaigns: Vec<Campaign>,
}

/// Files a config directory is made of, for the watcher.
pub fn is_config_file(dir: &Path, path: &Path) -> bool {
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    is_toml && (path.parent() == Some(dir) || path.parent() == Some(&dir.join("campaigns")))
}
