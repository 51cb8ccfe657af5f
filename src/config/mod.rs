//! Configuration: `bidder-config/` read, validated, typed.
//!
//! `bullseye.toml` holds the server, bidding, FX, audience, secrets, traffic
//! and exchange settings; `campaigns/*.toml` hold `[[campaign]]` entries.
//! [`load`] reads the whole directory and either returns a complete
//! [`Config`] or every [`ConfigProblem`] found (file, campaign, field, why).
//! A reload swaps in a complete validated config or changes nothing.

mod ip;
pub mod overrides;
pub mod raw;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use ip::IpRange;
pub use validate::{from_texts, load};

use crate::campaigns::Campaign;
use crate::money::{Currency, FxTable};

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub file: String,
    pub campaign: Option<String>,
    pub field: String,
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

/// Which notice bills a won impression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillingEvent {
    Burl,
    Nurl,
}

/// Where the user id is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserIdSource {
    BuyerUid,
    UserId,
    Ifa,
}

#[derive(Clone, Debug)]
pub struct Exchange {
    pub name: String,
    pub seat: String,
    pub billing_event: BillingEvent,
    pub network_allowance: Duration,
    pub sends_burl: bool,
    pub sends_lurl: bool,
    pub currency: Currency,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub config_dir: PathBuf,
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    pub default_tmax: Duration,
    pub fx: FxTable,
    /// First-price shading factor in parts per million.
    pub shading_ppm: u32,
    pub user_id_order: Vec<UserIdSource>,
    pub gdpr_vendor_id: Option<u16>,
    pub audience_snapshot: Option<PathBuf>,
    pub signing_key: Vec<u8>,
    pub previous_signing_key: Option<Vec<u8>>,
    /// True when the signing key is the bundled development one.
    pub signing_key_is_dev: bool,
    pub admin_token: Option<String>,
    /// Finds crawler and automation marks in user agents.
    pub user_agent_screen: UserAgentScreen,
    pub datacenter_ranges: Vec<IpRange>,
    /// Index 0 is the default exchange.
    pub exchanges: Vec<Exchange>,
    pub click_rules: ClickRules,
}

/// Click-quality limits.
#[derive(Clone, Copy, Debug)]
pub struct ClickRules {
    pub min_delay: Duration,
    pub max_per_user_hour: u32,
    pub max_per_ip_hour: u32,
    pub trust_forwarded_for: bool,
}

impl Settings {
    pub fn base_currency(&self) -> Currency {
        self.fx.base()
    }

    pub fn exchange(&self, name: &str) -> Option<&Exchange> {
        self.exchanges.iter().find(|e| e.name == name)
    }

    pub fn default_exchange(&self) -> &Exchange {
        &self.exchanges[0]
    }
}

/// Case-insensitive user-agent marks: automation tools (non-human traffic)
/// and crawlers, matched in one pass (Aho-Corasick).
#[derive(Clone, Debug)]
pub struct UserAgentScreen {
    matcher: aho_corasick::AhoCorasick,
    /// Patterns below this index are automation marks; the rest crawlers.
    automation: usize,
}

/// What a user agent gives away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UserAgentKind {
    Automation,
    Crawler,
}

impl UserAgentScreen {
    pub fn new(automation: &[&str], crawlers: &[String]) -> UserAgentScreen {
        let patterns: Vec<&str> = automation
            .iter()
            .copied()
            .chain(crawlers.iter().map(String::as_str))
            .collect();
        let matcher = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(patterns)
            .expect("a few short literal patterns always build");
        UserAgentScreen {
            matcher,
            automation: automation.len(),
        }
    }

    pub fn classify(&self, user_agent: &str) -> Option<UserAgentKind> {
        let found = self.matcher.find(user_agent)?;
        Some(if found.pattern().as_usize() < self.automation {
            UserAgentKind::Automation
        } else {
            UserAgentKind::Crawler
        })
    }
}

/// A complete, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub settings: Settings,
    pub campaigns: Vec<Campaign>,
}

/// Files a config directory is made of, for the watcher.
pub fn is_config_file(dir: &Path, path: &Path) -> bool {
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    is_toml && (path.parent() == Some(dir) || path.parent() == Some(&dir.join("campaigns")))
}
