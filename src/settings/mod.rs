//! Validated settings: what `bullseye.toml` means once checked.
//!
//! The typed form of the server, bidding, FX, audience, secrets, traffic,
//! click-quality and exchange settings. It sits below [`crate::campaigns`]
//! (which may read it) and below [`crate::config`] (which builds it from
//! TOML), so every layer can use settings without importing the loader.

mod ip;

use std::path::PathBuf;
use std::time::Duration;

pub use ip::IpRange;

use crate::money::{Currency, FxTable};

/// Which notice bills a won impression (`burl` or `nurl` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingEvent {
    Burl,
    Nurl,
}

/// Where the user id is read from (`buyeruid`, `user_id` or `ifa` in the
/// config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub enum UserIdSource {
    #[serde(rename = "buyeruid")]
    BuyerUid,
    #[serde(rename = "user_id", alias = "user.id")]
    UserId,
    #[serde(rename = "ifa")]
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
