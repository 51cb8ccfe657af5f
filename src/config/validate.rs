//! Raw config → typed config, collecting every problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;

use super::defaults;
use super::env::Env;
use super::raw::*;
use super::{Config, ConfigErrors, ConfigProblem};
use crate::audience::SegmentPath;
use crate::campaigns::geo::GeoCircle;
use crate::campaigns::model::{AttributionWindows, Campaign, Creative, Goal, Markup, Pricing, parse_window};
use crate::campaigns::native::{NativeAd, NativeData, NativeImage, NativeText, image_mime_of};
use crate::campaigns::player::PlayerFit;
use crate::campaigns::targeting::{FrequencyCap, HoursOfWeek, SegmentRule, Targeting};
use crate::encrypted_price::PriceKeys;
use crate::money::{Currency, FxTable, Micros};
use crate::openrtb::MediaType;
use crate::settings::access::{parse_hex, token_hash};
use crate::settings::{
    AdminToken, Advertiser, BillingEvent, ClickRules, DEFAULT_EXCHANGE, Exchange, IpRange, MAX_NOTICE_WINDOW_MINUTES,
    MaxBidCaps, PostbackSecret, Role, Settings, UserAgentScreen,
};
use crate::settings::{Capacity, ContactCap, ContactRules};

/// The signing key bundled with the sample config; flagged at start-up.
pub const DEV_SIGNING_KEY_PREFIX: &str = "dev-only";

/// The shortest secret accepted (signing keys, current and previous, and
/// the admin token): 32 bytes, 256 bits, whatever its source.
pub const MIN_SECRET_BYTES: usize = 32;

/// The problem with a secret too short to be one.
fn too_short() -> String {
    format!("must be at least {MIN_SECRET_BYTES} bytes")
}

/// User-agent marks of browser automation (non-human traffic, code 4).
const AUTOMATION: &[&str] = &[
    "headlesschrome",
    "phantomjs",
    "selenium",
    "puppeteer",
    "playwright",
    "webdriver",
];

/// Collects problems with their location.
struct Problems {
    file: String,
    campaign: Option<String>,
    found: Vec<ConfigProblem>,
}

impl Problems {
    fn at(&mut self, field: &str, why: impl Into<String>) {
        self.found.push(ConfigProblem {
            file: self.file.clone(),
            campaign: self.campaign.clone(),
            field: field.to_string(),
            why: why.into(),
        });
    }

    /// A non-negative amount; `None` (with a problem recorded) otherwise.
    fn money(&mut self, field: &str, text: &str) -> Option<Micros> {
        Micros::parse_amount(text)
            .map_err(|e| self.at(field, e.to_string()))
            .ok()
    }

    /// A decimal ratio such as "0.85", in parts per million.
    fn ratio_ppm(&mut self, field: &str, text: &str, max: i64) -> u32 {
        match Micros::parse_amount(text) {
            Ok(v) if v.0 <= max => v.0 as u32,
            Ok(_) => {
                self.at(field, format!("must be at most {}", Micros(max)));
                0
            }
            Err(e) => {
                self.at(field, e.to_string());
                0
            }
        }
    }

    /// A ratio between 0 and 1 (six decimals at most), in parts per billion.
    fn ratio_ppb(&mut self, field: &str, text: &str) -> u32 {
        self.ratio_ppm(field, text, 1_000_000) * 1000
    }

    fn currency(&mut self, field: &str, text: &str) -> Currency {
        Currency::parse(text).unwrap_or_else(|| {
            self.at(field, format!("{text:?} is not a three-letter currency code"));
            Currency::USD
        })
    }
}

/// Reads a file, recording a problem (and returning `None`) if it cannot.
fn read_text(path: &Path, problems: &mut Vec<ConfigProblem>) -> Option<String> {
    std::fs::read_to_string(path)
        .map_err(|e| {
            problems.push(ConfigProblem {
                file: path.display().to_string(),
                campaign: None,
                field: "-".into(),
                why: format!("cannot read: {e}"),
            })
        })
        .ok()
}

fn parse_toml<T: serde::de::DeserializeOwned + Default>(
    file: String,
    text: Option<&str>,
    problems: &mut Vec<ConfigProblem>,
) -> T {
    let Some(text) = text else {
        return T::default();
    };
    toml::from_str(text).unwrap_or_else(|e: toml::de::Error| {
        let why = e.message().to_string();
        let start = e.span().map(|span| span.start.min(text.len()));
        let field = start.map_or("-".to_string(), |start| {
            let line = text[..start].lines().count().max(1);
            format!("line {line}")
        });
        problems.push(ConfigProblem {
            file,
            campaign: start.and_then(|start| campaign_at(text, start)),
            field,
            why,
        });
        T::default()
    })
}

/// The id of the `[[campaign]]` a byte offset of a campaign file falls in,
/// so that a value serde refuses (a misspelt enum, say) is still reported
/// with its campaign.
fn campaign_at(text: &str, offset: usize) -> Option<String> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let campaigns = document.get_ref().get("campaign")?.get_ref().as_array()?;
    // An array-of-tables item spans its header only: the campaign is the
    // last one that starts before the offset.
    let campaign = campaigns.iter().take_while(|c| c.span().start <= offset).last()?;
    let id = campaign.get_ref().as_table()?.get("id")?.get_ref().as_str()?;
    Some(id.to_string())
}

/// Reads and validates a config directory, with the secrets the process
/// environment holds.
pub fn load(dir: &Path) -> Result<Config, ConfigErrors> {
    load_with(dir, &Env::from_process())
}

/// Reads and validates a config directory, with `env` over the files.
pub fn load_with(dir: &Path, env: &Env) -> Result<Config, ConfigErrors> {
    load_replacing(dir, env, None)
}

/// Validates a config directory as it would be with one campaign file
/// replaced (or added): `(path, text)`. What the admin API checks before
/// it writes a change.
pub fn load_with_file(dir: &Path, path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    load_replacing(dir, &Env::from_process(), Some((path, text)))
}

fn load_replacing(dir: &Path, env: &Env, replacement: Option<(&Path, &str)>) -> Result<Config, ConfigErrors> {
    let mut unreadable = Vec::new();
    let settings_path = dir.join("bullseye.toml");
    let settings_text = read_text(&settings_path, &mut unreadable);
    let mut problems = Problems {
        file: settings_path.display().to_string(),
        campaign: None,
        found: Vec::new(),
    };
    let mut paths = campaign_files(dir, &mut problems);
    if let Some((path, _)) = replacement
        && !paths.iter().any(|p| p == path)
    {
        paths.push(path.to_path_buf());
        paths.sort();
    }
    let campaign_texts: Vec<(PathBuf, Option<String>)> = paths
        .into_iter()
        .map(|path| {
            let text = match replacement {
                Some((replaced, text)) if replaced == path => Some(text.to_string()),
                _ => read_text(&path, &mut unreadable),
            };
            (path, text)
        })
        .collect();
    problems.found.extend(unreadable);
    validate(dir, settings_text.as_deref(), &campaign_texts, env, problems)
}

/// Validates a config from its texts: the settings file and each campaign
/// file (named relative to `dir`, which also anchors relative paths), with
/// the secrets the process environment holds.
pub fn from_texts(dir: &Path, settings: &str, campaign_files: &[(PathBuf, String)]) -> Result<Config, ConfigErrors> {
    from_texts_with(dir, settings, campaign_files, &Env::from_process())
}

/// [`from_texts`] with `env` over the files.
pub fn from_texts_with(
    dir: &Path,
    settings: &str,
    campaign_files: &[(PathBuf, String)],
    env: &Env,
) -> Result<Config, ConfigErrors> {
    let problems = Problems {
        file: dir.join("bullseye.toml").display().to_string(),
        campaign: None,
        found: Vec::new(),
    };
    let campaign_texts: Vec<(PathBuf, Option<String>)> = campaign_files
        .iter()
        .map(|(path, text)| (dir.join("campaigns").join(path), Some(text.clone())))
        .collect();
    validate(dir, Some(settings), &campaign_texts, env, problems)
}

fn validate(
    dir: &Path,
    settings_text: Option<&str>,
    campaign_texts: &[(PathBuf, Option<String>)],
    env: &Env,
    mut problems: Problems,
) -> Result<Config, ConfigErrors> {
    let raw_settings: RawSettings = parse_toml(problems.file.clone(), settings_text, &mut problems.found);
    let settings = settings(dir, raw_settings, env, &mut problems);

    let mut campaigns: Vec<Campaign> = Vec::new();
    for (path, text) in campaign_texts {
        problems.file = path.display().to_string();
        let file: RawCampaignFile = parse_toml(problems.file.clone(), text.as_deref(), &mut problems.found);
        for raw in file.campaigns {
            problems.campaign = Some(raw.id.clone());
            if campaigns.iter().any(|c| c.id == raw.id) {
                problems.at("id", "duplicate campaign id");
            }
            if let Some(campaign) = campaign(raw, &settings, &mut problems) {
                campaigns.push(campaign);
            }
        }
        problems.campaign = None;
    }
    if problems.found.is_empty() {
        Ok(Config { settings, campaigns })
    } else {
        Err(ConfigErrors(problems.found))
    }
}

fn campaign_files(dir: &Path, problems: &mut Problems) -> Vec<PathBuf> {
    let campaigns_dir = dir.join("campaigns");
    let Ok(entries) = std::fs::read_dir(&campaigns_dir) else {
        problems.at("campaigns/", format!("cannot read {}", campaigns_dir.display()));
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

// One line per setting: long, but flat.
#[allow(clippy::too_many_lines)]
fn settings(dir: &Path, raw: RawSettings, env: &Env, p: &mut Problems) -> Settings {
    let base = p.currency("bidding.currency", &raw.bidding.currency);
    let fx = fx_table(base, &raw.fx, p);
    let (shading_ppm, max_bid_caps) = bidding_limits(&raw.bidding, p);
    let (signing_key, signing_key_is_dev) = signing_key(&raw.secrets, env, p);
    let price_key_files: Vec<KeyFiles> = raw.exchanges.iter().map(KeyFiles::of).collect();
    let previous_signing_key = previous_signing_key(&raw.secrets, p);
    let advertisers = advertisers(&raw.advertisers, p);
    let (admin_tokens, admin_token_is_dev) = admin_tokens(&raw, env, &advertisers, p);
    let mut exchanges = exchanges(raw.exchanges, base, p);
    exchange_price_keys(&mut exchanges, env, &price_key_files, p);
    let (datacenter_ranges, user_agent_screen) = traffic(raw.traffic, p);
    let server = raw.server;
    check_server(&server, p);
    Settings {
        config_dir: dir.to_path_buf(),
        public_url: server.public_url.map(|u| u.trim_end_matches('/').to_string()),
        max_body_bytes: server.max_body_bytes,
        header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
        body_read_timeout: Duration::from_millis(server.body_read_timeout_ms),
        max_connections: server.max_connections,
        reserved_connections: server
            .reserved_connections
            .unwrap_or(defaults::reserved_connections(server.max_connections))
            .min(server.max_connections.saturating_sub(1)),
        max_connections_per_ip: server.max_connections_per_ip.max(1),
        // The first request waits no longer than any later one does.
        first_request_timeout: Duration::from_millis(
            server.first_request_timeout_ms.min(server.header_read_timeout_ms),
        ),
        ledger_retention_days: server.ledger_retention_days.max(2),
        default_tmax: Duration::from_millis(server.default_tmax_ms),
        fx,
        shading_ppm,
        prediction: raw.bidding.prediction,
        shading: raw.bidding.shading,
        user_id_order: raw.bidding.user_id_order,
        gdpr_vendor_id: raw.bidding.gdpr_vendor_id,
        max_bid_caps,
        max_imps_per_request: raw.bidding.max_imps_per_request.max(1),
        max_dedup_entries: raw.tracking.max_dedup_entries,
        postback_secrets: postback_secrets(&raw.postbacks, &advertisers, env, p),
        max_conversions_per_click: raw.tracking.max_conversions_per_click,
        max_conversion_value: positive_money(p, "tracking.max_conversion_value", &raw.tracking.max_conversion_value),
        postback_max_age_secs: raw.tracking.postback_max_age_secs,
        max_frequency_entries: raw.bidding.max_frequency_entries,
        audience_snapshot: raw.audience.snapshot.map(|s| dir.join(s)),
        max_user_matches: raw
            .audience
            .max_user_matches
            .unwrap_or(crate::audience::matches::DEFAULT_CAPACITY),
        overlay_max_users: raw.audience.overlay_max_users,
        signing_key,
        previous_signing_key,
        signing_key_is_dev,
        cluster_redis_url: cluster_redis_url(raw.cluster, p),
        sampling: sampling(&raw.sampling, p),
        admin_tokens,
        admin_token_is_dev,
        advertisers,
        user_agent_screen,
        click_rules: click_rules(&raw.tracking, p),
        datacenter_ranges,
        exchanges,
    }
}

/// `[sampling]`: a rate from 0 to 1, held in ppm.
fn sampling(raw: &RawSampling, p: &mut Problems) -> crate::settings::Sampling {
    let rate_ppm = if (0.0..=1.0).contains(&raw.rate) {
        (raw.rate * 1e6).round() as u32
    } else {
        p.at("sampling.rate", "must be from 0 to 1");
        0
    };
    crate::settings::Sampling {
        rate_ppm,
        max_bytes: raw.max_bytes,
    }
}

/// `[cluster] redis_url`, blank meaning none.
fn cluster_redis_url(cluster: RawCluster, p: &mut Problems) -> Option<String> {
    let url = cluster.redis_url.filter(|url| !url.trim().is_empty())?;
    if !["redis://", "rediss://", "redis+unix://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        p.at(
            "cluster.redis_url",
            "must start with redis://, rediss:// or redis+unix://",
        );
    }
    Some(url)
}

/// Checks the `[server]` keys that need it.
fn check_server(server: &RawServer, p: &mut Problems) {
    if server.reserved_connections.is_some_and(|r| r >= server.max_connections) {
        p.at(
            "server.reserved_connections",
            "must be less than server.max_connections",
        );
    }
    if server.ledger_retention_days < 2 {
        p.at(
            "server.ledger_retention_days",
            "must be at least 2 (the longest notice and attribution window is a day)",
        );
    }
    if let Some(url) = &server.public_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        p.at("server.public_url", "must start with http:// or https://");
    }
}

/// The first-price shading (ppm, above 0) and the max-bid caps; checks the
/// impressions-per-request limit.
fn bidding_limits(raw: &RawBidding, p: &mut Problems) -> (u32, MaxBidCaps) {
    let shading_ppm = p.ratio_ppm("bidding.first_price_shading", &raw.first_price_shading, 1_000_000);
    if shading_ppm == 0 {
        p.at("bidding.first_price_shading", "must be greater than 0");
    }
    if raw.max_imps_per_request == 0 {
        p.at("bidding.max_imps_per_request", "must be at least 1");
    }
    let caps = MaxBidCaps {
        cpm: positive_money(p, "bidding.max_cpm_cap", &raw.max_cpm_cap),
        cpc: positive_money(p, "bidding.max_cpc_cap", &raw.max_cpc_cap),
    };
    (shading_ppm, caps)
}

/// Click-quality rules and the proxies whose `X-Forwarded-For` is believed.
fn click_rules(raw: &RawTracking, p: &mut Problems) -> ClickRules {
    ClickRules {
        min_delay: Duration::from_millis(raw.min_click_delay_ms),
        max_per_user_hour: raw.max_clicks_per_user_hour,
        max_per_ip_hour: raw.max_clicks_per_ip_hour,
        trusted_proxies: ip_ranges(&raw.trusted_proxies, "tracking.trusted_proxies", p),
    }
}

/// A positive amount of money; a problem (and a huge cap) otherwise.
fn positive_money(p: &mut Problems, field: &str, text: &str) -> Micros {
    match p.money(field, text) {
        Some(amount) if amount.0 > 0 => amount,
        Some(_) => {
            p.at(field, "must be greater than 0");
            Micros(i64::MAX)
        }
        None => Micros(i64::MAX),
    }
}

/// The FX table: the base currency and each configured rate (positive).
fn fx_table(base: Currency, raw: &std::collections::BTreeMap<String, String>, p: &mut Problems) -> FxTable {
    let mut rates = Vec::new();
    for (code, rate) in raw {
        let currency = p.currency(&format!("fx.{code}"), code);
        let Some(rate) = p.money(&format!("fx.{code}"), rate) else {
            continue;
        };
        if rate.0 == 0 {
            p.at(&format!("fx.{code}"), "rate must be positive");
        }
        rates.push((currency, rate));
    }
    FxTable::new(base, rates)
}

/// CIDR ranges, each checked.
fn ip_ranges(raw: &[String], field: &str, p: &mut Problems) -> Vec<IpRange> {
    raw.iter()
        .filter_map(|r| {
            let parsed = IpRange::parse(r);
            if parsed.is_none() {
                p.at(field, format!("{r:?} is not a CIDR range"));
            }
            parsed
        })
        .collect()
}

/// Data-centre ranges (CIDR) and the user-agent screen.
fn traffic(raw: RawTraffic, p: &mut Problems) -> (Vec<IpRange>, UserAgentScreen) {
    let datacenter_ranges = ip_ranges(&raw.datacenter_ranges, "traffic.datacenter_ranges", p);
    let crawlers: Vec<String> = raw
        .bot_user_agents
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .collect();
    (datacenter_ranges, UserAgentScreen::new(AUTOMATION, &crawlers))
}

fn signing_key(raw: &RawSecrets, env: &Env, p: &mut Problems) -> (Vec<u8>, bool) {
    let checked = |p: &mut Problems, field: &str, key: &str| -> (Vec<u8>, bool) {
        if key.len() < MIN_SECRET_BYTES {
            p.at(field, too_short());
            return (Vec::new(), false);
        }
        (key.as_bytes().to_vec(), key.starts_with(DEV_SIGNING_KEY_PREFIX))
    };
    if let Some(key) = &env.signing_key {
        return checked(p, super::env::SIGNING_KEY_VAR, key);
    }
    if let Some(file) = &raw.signing_key_file {
        return match std::fs::read_to_string(file) {
            Ok(text) if !text.trim().is_empty() => checked(p, "secrets.signing_key_file", text.trim()),
            Ok(_) => {
                p.at("secrets.signing_key_file", "file is empty");
                (Vec::new(), false)
            }
            Err(e) => {
                p.at("secrets.signing_key_file", format!("cannot read {file}: {e}"));
                (Vec::new(), false)
            }
        };
    }
    match &raw.signing_key {
        Some(key) => checked(p, "secrets.signing_key", key),
        None => {
            p.at(
                "secrets.signing_key",
                "no URL-signing key: set BULLSEYE_SIGNING_KEY, signing_key_file or signing_key",
            );
            (Vec::new(), false)
        }
    }
}

/// The previous signing key (accepted during a rotation), if any: a real
/// key too — an empty one would make every URL forgeable.
fn previous_signing_key(raw: &RawSecrets, p: &mut Problems) -> Option<Vec<u8>> {
    let key = raw.previous_signing_key.as_deref()?;
    if key.len() < MIN_SECRET_BYTES {
        p.at("secrets.previous_signing_key", too_short());
        return None;
    }
    Some(key.as_bytes().to_vec())
}

/// Each advertiser's postback secret: from its environment variable, else
/// its file; at least [`MIN_SECRET_BYTES`], like every secret.
fn postback_secrets(
    raw: &[RawPostback],
    advertisers: &[Advertiser],
    env: &Env,
    p: &mut Problems,
) -> BTreeMap<String, PostbackSecret> {
    let mut secrets = BTreeMap::new();
    for (i, postback) in raw.iter().enumerate() {
        let field = |name: &str| format!("postback[{i}].{name}");
        if !advertisers.iter().any(|a| a.id == postback.advertiser) {
            p.at(
                &field("advertiser"),
                format!("unknown advertiser {:?}", postback.advertiser),
            );
        }
        let read = |p: &mut Problems, name: &str, file: &str| -> Option<Vec<u8>> {
            match std::fs::read_to_string(file) {
                Ok(text) if text.trim().len() >= MIN_SECRET_BYTES => Some(text.trim().as_bytes().to_vec()),
                Ok(_) => {
                    p.at(&field(name), too_short());
                    None
                }
                Err(e) => {
                    p.at(&field(name), format!("cannot read {file}: {e}"));
                    None
                }
            }
        };
        let var = super::env::postback_var(&postback.advertiser);
        let current = match (env.postback_secrets.get(&var), &postback.secret_file) {
            (Some(secret), _) if secret.len() >= MIN_SECRET_BYTES => Some(secret.as_bytes().to_vec()),
            (Some(_), _) => {
                p.at(&var, too_short());
                None
            }
            (None, Some(file)) => read(p, "secret_file", file),
            (None, None) => {
                p.at(&field("secret_file"), format!("no secret: set {var} or secret_file"));
                None
            }
        };
        let previous = postback
            .previous_secret_file
            .as_deref()
            .and_then(|file| read(p, "previous_secret_file", file));
        if secrets.contains_key(&postback.advertiser) {
            p.at(&field("advertiser"), "duplicate advertiser");
        }
        if let Some(current) = current {
            secrets.insert(postback.advertiser.clone(), PostbackSecret { current, previous });
        }
    }
    secrets
}

/// The bundled development admin token: its hash in a config marks the
/// config as development-only (see `bidder-config/bullseye.toml`).
pub const DEV_ADMIN_TOKEN: &str = "dev-only-admin-token-do-not-use-in-production";

/// The admin tokens: `[[admin.token]]` entries, and `BULLSEYE_ADMIN_TOKEN`
/// as an admin named `env`; and whether one is a development token.
fn admin_tokens(raw: &RawSettings, env: &Env, advertisers: &[Advertiser], p: &mut Problems) -> (Vec<AdminToken>, bool) {
    if raw.secrets.admin_token.is_some() {
        p.at(
            "secrets.admin_token",
            "a clear admin token in a file is no longer accepted: mint one with `bullseye admin token --name NAME \
             --role admin` and put its [[admin.token]] (name, role, sha256) in bullseye.toml, or set \
             BULLSEYE_ADMIN_TOKEN",
        );
    }
    let mut tokens = Vec::new();
    let mut is_dev = false;
    if let Some(token) = &env.admin_token {
        if token.len() < MIN_SECRET_BYTES {
            p.at(super::env::ADMIN_TOKEN_VAR, too_short());
        } else {
            is_dev |= token.starts_with(DEV_SIGNING_KEY_PREFIX);
            tokens.push(AdminToken {
                name: "env".into(),
                role: Role::Admin,
                advertiser: None,
                sha256: token_hash(token),
            });
        }
    }
    let dev_hash = token_hash(DEV_ADMIN_TOKEN);
    for (i, token) in raw.admin.tokens.iter().enumerate() {
        let field = |key: &str| format!("admin.token[{i}].{key}");
        if token.name.trim().is_empty() || tokens.iter().any(|t: &AdminToken| t.name == token.name) {
            p.at(&field("name"), "must be non-empty and unique");
        }
        let Some(sha256) = parse_hex(&token.sha256) else {
            p.at(
                &field("sha256"),
                "must be 64 hex digits (the SHA-256 `bullseye admin token` prints)",
            );
            continue;
        };
        match (token.role, &token.advertiser) {
            (Role::Advertiser, None) => p.at(&field("advertiser"), "an advertiser token names its advertiser"),
            (Role::Advertiser, Some(id)) if !advertisers.iter().any(|a| &a.id == id) => {
                p.at(&field("advertiser"), format!("unknown advertiser {id:?}"));
            }
            (Role::Admin | Role::Data | Role::Viewer, Some(_)) => {
                p.at(
                    &field("advertiser"),
                    "only an advertiser token is bound to an advertiser",
                );
            }
            _ => {}
        }
        is_dev |= sha256 == dev_hash;
        tokens.push(AdminToken {
            name: token.name.clone(),
            role: token.role,
            advertiser: token.advertiser.clone(),
            sha256,
        });
    }
    (tokens, is_dev)
}

/// Whether an id is 1–64 letters, digits, `-`, `_` or `.` (campaigns,
/// creatives and advertisers: they appear in URLs and file names).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The advertisers, each id valid and unique, each time zone known.
fn advertisers(raw: &[RawAdvertiser], p: &mut Problems) -> Vec<Advertiser> {
    let mut advertisers: Vec<Advertiser> = Vec::new();
    for (i, advertiser) in raw.iter().enumerate() {
        let field = |key: &str| format!("advertiser[{i}].{key}");
        if !is_valid_id(&advertiser.id) {
            p.at(&field("id"), "must be 1–64 letters, digits, '-', '_' or '.'");
        }
        if advertisers.iter().any(|a| a.id == advertiser.id) {
            p.at(&field("id"), format!("duplicate advertiser id {:?}", advertiser.id));
        }
        if TimeZone::get(&advertiser.time_zone).is_err() {
            p.at(
                &field("time_zone"),
                format!("unknown IANA time zone {:?}", advertiser.time_zone),
            );
        }
        let private_segments = private_segments(&advertiser.private_segments, &advertisers, &field, p);
        advertisers.push(Advertiser {
            id: advertiser.id.clone(),
            name: advertiser.name.clone().unwrap_or_else(|| advertiser.id.clone()),
            time_zone: advertiser.time_zone.clone(),
            rules: contact_rules(advertiser, &field, p),
            private_segments,
        });
    }
    for (i, advertiser) in advertisers.iter().enumerate() {
        // As the live index reads it (trimmed, lower case).
        let Some(suppress) = advertiser
            .rules
            .suppress_segment
            .as_deref()
            .and_then(|s| SegmentPath::parse(s).ok())
        else {
            continue;
        };
        let suppress = suppress.as_str();
        if let Some(owner) = advertisers
            .iter()
            .find(|a| a.id != advertiser.id && a.private_overlap(suppress).is_some())
        {
            p.at(
                &format!("advertiser[{i}].suppress_segment"),
                format!("{suppress:?} overlaps advertiser {:?}'s private segments", owner.id),
            );
        }
    }
    advertisers
}

/// An advertiser's private segments: valid paths, none overlapping an
/// earlier advertiser's.
fn private_segments(
    raw: &[String],
    earlier: &[Advertiser],
    field: &dyn Fn(&str) -> String,
    p: &mut Problems,
) -> Vec<String> {
    let mut paths = Vec::new();
    for text in raw {
        match SegmentPath::parse(text) {
            Ok(path) => {
                let path = path.as_str().to_string();
                if let Some(owner) = earlier.iter().find(|a| a.private_overlap(&path).is_some()) {
                    p.at(
                        &field("private_segments"),
                        format!("{path:?} overlaps advertiser {:?}'s private segments", owner.id),
                    );
                }
                paths.push(path);
            }
            Err(e) => p.at(&field("private_segments"), e.to_string()),
        }
    }
    paths
}

/// A campaign may not target (nor an advertiser suppress by) another
/// advertiser's private segments.
fn check_private_segments(advertiser: &str, paths: &[String], field: &str, settings: &Settings, p: &mut Problems) {
    for path in paths {
        // Neither the owner nor its list is named: advertiser tokens read
        // this answer.
        if settings
            .advertisers
            .iter()
            .any(|a| a.id != advertiser && a.private_overlap(path).is_some())
        {
            p.at(
                field,
                format!("segment {path:?} reaches another advertiser's private segments"),
            );
        }
    }
}

/// An advertiser's contact rules: a positive budget, caps of at least one,
/// a valid segment path.
fn contact_rules(raw: &RawAdvertiser, field: &dyn Fn(&str) -> String, p: &mut Problems) -> ContactRules {
    let daily_budget = raw.daily_budget.as_deref().and_then(|text| {
        let budget = p.money(&field("daily_budget"), text)?;
        if budget == Micros::ZERO {
            p.at(
                &field("daily_budget"),
                "must be greater than 0 (leave it out for no limit)",
            );
        }
        Some(budget)
    });
    let frequency = ContactCap {
        per_day: at_least_one(raw.frequency.per_day, &field("frequency.per_day"), p),
        per_week: at_least_one(raw.frequency.per_week, &field("frequency.per_week"), p),
    };
    if let Some(segment) = &raw.suppress_segment
        && let Err(e) = SegmentPath::parse(segment)
    {
        p.at(&field("suppress_segment"), e.to_string());
    }
    ContactRules {
        daily_budget,
        frequency,
        suppress_segment: raw.suppress_segment.clone(),
        capacity: capacity(&raw.capacity, &|key| field(&format!("capacity.{key}")), p),
    }
}

/// A cap that must be at least 1 when given.
fn at_least_one(cap: Option<u32>, field: &str, p: &mut Problems) -> Option<u32> {
    if cap == Some(0) {
        p.at(field, "must be at least 1 (leave it out for no cap)");
    }
    cap
}

/// A `capacity` table: each cap at least 1.
fn capacity(raw: &RawCapacity, field: &dyn Fn(&str) -> String, p: &mut Problems) -> Capacity {
    Capacity {
        clicks_per_hour: at_least_one(raw.clicks_per_hour, &field("clicks_per_hour"), p),
        clicks_per_day: at_least_one(raw.clicks_per_day, &field("clicks_per_day"), p),
        conversions_per_hour: at_least_one(raw.conversions_per_hour, &field("conversions_per_hour"), p),
        conversions_per_day: at_least_one(raw.conversions_per_day, &field("conversions_per_day"), p),
    }
}

/// The exchanges, the default one first (added if none is named so).
fn exchanges(raw: Vec<RawExchange>, base: Currency, p: &mut Problems) -> Vec<Exchange> {
    let mut exchanges: Vec<Exchange> = Vec::new();
    for (i, raw) in raw.into_iter().enumerate() {
        let field = |name: &str| format!("exchange[{i}].{name}");
        if raw.name.is_empty()
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            p.at(&field("name"), "must be non-empty letters, digits, - or _");
        }
        if exchanges.iter().any(|e| e.name == raw.name) {
            p.at(&field("name"), "duplicate exchange name");
        }
        exchanges.push(exchange(raw, base, field, p));
    }
    match exchanges.iter().position(|e| e.name == DEFAULT_EXCHANGE) {
        Some(i) => exchanges.swap(0, i),
        None => {
            // Every key at its default: valid, so no problem to locate.
            let field = |name: &str| format!("exchange[{}].{name}", DEFAULT_EXCHANGE);
            exchanges.insert(0, exchange(RawExchange::named(DEFAULT_EXCHANGE), base, field, p));
        }
    }
    exchanges
}

/// One exchange's settings; its name is checked by the caller.
fn exchange(raw: RawExchange, base: Currency, field: impl Fn(&str) -> String, p: &mut Problems) -> Exchange {
    if raw.billing_event == BillingEvent::Burl && !raw.sends_burl {
        p.at(
            &field("billing_event"),
            "burl billing needs an exchange that sends burl",
        );
    }
    let window = raw.notice_window_minutes;
    if !(1..=MAX_NOTICE_WINDOW_MINUTES).contains(&window) {
        p.at(
            &field("notice_window_minutes"),
            format!("must be 1 to {} minutes", MAX_NOTICE_WINDOW_MINUTES),
        );
    }
    Exchange {
        notice_window: Duration::from_secs(60 * u64::from(window.clamp(1, MAX_NOTICE_WINDOW_MINUTES))),
        seat: raw.seat,
        billing_event: raw.billing_event,
        network_allowance: Duration::from_millis(raw.network_allowance_ms),
        sends_burl: raw.sends_burl,
        sends_lurl: raw.sends_lurl,
        no_bid: raw.no_bid,
        max_qty_milli: qty_milli(raw.max_qty).unwrap_or_else(|| {
            p.at(&field("max_qty"), "must be a number from 1 to 1,000,000");
            1000
        }),
        currency: raw
            .currency
            .as_deref()
            .map_or(base, |c| p.currency(&field("currency"), c)),
        price_keys: None,
        sync_url: sync_url(raw.sync_url, &field, p),
        segment_map: segment_map(raw.segment_map, &field, p),
        name: raw.name,
    }
}

/// The user-sync URL: http(s), with `{UID}` where our id goes.
fn sync_url(url: Option<String>, field: &impl Fn(&str) -> String, p: &mut Problems) -> Option<String> {
    let url = url?;
    if !(url.starts_with("https://") || url.starts_with("http://")) || !url.contains("{UID}") {
        p.at(
            &field("sync_url"),
            "must be an http(s) URL with {UID} where our user id goes",
        );
    }
    Some(url)
}

/// The exchange's data segments mapped to ours, each a valid segment path.
fn segment_map(
    raw: Vec<RawSegmentMap>,
    field: &impl Fn(&str) -> String,
    p: &mut Problems,
) -> Vec<crate::settings::SegmentMapping> {
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, entry)| match SegmentPath::parse(&entry.to) {
            Ok(path) => Some(crate::settings::SegmentMapping {
                data: entry.data,
                segment: entry.segment,
                to: std::iter::successors(Some(path), SegmentPath::parent)
                    .map(|p| p.key())
                    .collect(),
            }),
            Err(e) => {
                p.at(&field(&format!("segment_map[{i}].to")), e.to_string());
                None
            }
        })
        .collect()
}

/// A multiplier (1 to 1,000,000) in thousandths, rounded down.
fn qty_milli(multiplier: f64) -> Option<i64> {
    (multiplier.is_finite() && (1.0..=1_000_000.0).contains(&multiplier)).then(|| (multiplier * 1000.0).floor() as i64)
}

/// An `[[exchange]]`'s price key files, as configured.
struct KeyFiles {
    exchange: String,
    encryption: Option<String>,
    integrity: Option<String>,
}

impl KeyFiles {
    fn of(raw: &RawExchange) -> KeyFiles {
        KeyFiles {
            exchange: raw.name.clone(),
            encryption: raw.price_encryption_key_file.clone(),
            integrity: raw.price_integrity_key_file.clone(),
        }
    }
}

/// Each exchange's price keys (encrypted `${AUCTION_PRICE}`): both or
/// neither, each from its environment variable, else its file
/// (`files`, in config order); base64 of at least [`crate::encrypted_price::MIN_KEY_BYTES`]
/// bytes.
fn exchange_price_keys(exchanges: &mut [Exchange], env: &Env, files: &[KeyFiles], p: &mut Problems) {
    use super::env::{PRICE_ENCRYPTION_KEY_PREFIX, PRICE_INTEGRITY_KEY_PREFIX};
    for exchange in exchanges.iter_mut() {
        let position = files.iter().position(|f| f.exchange == exchange.name);
        let field = |name: &str| match position {
            Some(i) => format!("exchange[{i}].{name}"),
            None => format!("exchange[{}].{name}", exchange.name),
        };
        let (encryption_file, integrity_file) = position.map_or((None, None), |i| {
            (files[i].encryption.as_deref(), files[i].integrity.as_deref())
        });
        let name = &exchange.name;
        let encryption_field = field("price_encryption_key_file");
        let integrity_field = field("price_integrity_key_file");
        let encryption = price_key(
            env,
            PRICE_ENCRYPTION_KEY_PREFIX,
            name,
            encryption_file,
            &encryption_field,
            p,
        );
        let integrity = price_key(
            env,
            PRICE_INTEGRITY_KEY_PREFIX,
            name,
            integrity_file,
            &integrity_field,
            p,
        );
        exchange.price_keys = match (encryption, integrity) {
            ((_, Some(encryption)), (_, Some(integrity))) => Some(PriceKeys::new(&encryption, &integrity)),
            ((true, _), (false, _)) => {
                p.at(&integrity_field, "an encryption key needs an integrity key");
                None
            }
            ((false, _), (true, _)) => {
                p.at(&encryption_field, "an integrity key needs an encryption key");
                None
            }
            // Neither, or one unreadable (a problem already).
            _ => None,
        };
    }
}

/// One of an exchange's price keys: whether it is configured at all (its
/// variable `{prefix}{EXCHANGE}`, else its `file` at `field`), and its
/// bytes if readable. The key itself is never part of a problem.
fn price_key(
    env: &Env,
    prefix: &str,
    exchange: &str,
    file: Option<&str>,
    field: &str,
    p: &mut Problems,
) -> (bool, Option<Vec<u8>>) {
    let var = super::env::price_key_var(prefix, exchange);
    let (place, text) = match (env.price_keys.get(&var), file) {
        (Some(text), _) => (var.as_str(), text.clone()),
        (None, Some(file)) => match std::fs::read_to_string(file) {
            Ok(text) => (field, text),
            Err(e) => {
                p.at(field, format!("cannot read {file}: {e}"));
                return (true, None);
            }
        },
        (None, None) => return (false, None),
    };
    let bytes = PriceKeys::decode_key(&text)
        .map_err(|why| p.at(place, format!("the price key {why}")))
        .ok();
    (true, bytes)
}

/// A campaign's id, and the advertiser and exchanges it names.
fn check_names(raw: &RawCampaign, settings: &Settings, p: &mut Problems) {
    if !is_valid_id(&raw.id) {
        p.at("id", "must be 1–64 letters, digits, '-', '_' or '.'");
    }
    if settings.advertiser(&raw.advertiser).is_none() {
        p.at(
            "advertiser",
            format!(
                "unknown advertiser {:?}: declare it with [[advertiser]] in bullseye.toml",
                raw.advertiser
            ),
        );
    }
    for name in &raw.exchanges {
        if settings.exchange(name).is_none() {
            p.at("exchanges", format!("unknown exchange {name:?}"));
        }
    }
}

fn campaign(raw: RawCampaign, settings: &Settings, p: &mut Problems) -> Option<Campaign> {
    check_names(&raw, settings, p);
    let (max_bid, goal) = bid_limits(&raw, settings, p);
    let attribution = attribution(&raw, p);
    let (daily_budget, total_budget) = budgets(&raw, p);
    let pctr_prior = pctr_prior(raw.pricing, raw.pctr_prior.as_deref(), p);
    let tz_name = raw.time_zone;
    let time_zone = TimeZone::get(&tz_name).unwrap_or_else(|_| {
        p.at("time_zone", format!("unknown IANA time zone {tz_name:?}"));
        TimeZone::UTC
    });
    let start = raw
        .start
        .as_deref()
        .and_then(|s| flight_day(p, "start", s, &time_zone, false));
    let end = raw
        .end
        .as_deref()
        .and_then(|s| flight_day(p, "end", s, &time_zone, true));
    let creatives = creatives(raw.creatives, p);
    let targeting = targeting(raw.targeting, p);
    check_private_segments(
        &raw.advertiser,
        &targeting.segment_paths,
        "targeting.segments",
        settings,
        p,
    );
    Some(Campaign {
        id: raw.id,
        advertiser: raw.advertiser,
        adomain: raw.adomain.into_iter().map(|d| d.to_ascii_lowercase()).collect(),
        cat: raw.cat,
        bundle: raw.bundle,
        seat: raw.seat,
        status: raw.status,
        pricing: raw.pricing,
        max_bid,
        pctr_prior,
        goal,
        attribution,
        daily_budget: daily_budget.unwrap_or(Micros::ZERO),
        total_budget,
        derived_budget_days: derived_budget_days(daily_budget, (start, end), &time_zone),
        pacing: raw.pacing,
        time_zone_name: tz_name,
        time_zone,
        start,
        end,
        exchanges: raw.exchanges,
        targeting,
        experiment: experiment(raw.experiment, &creatives, (max_bid, raw.pricing), settings, p),
        creatives,
        rotation: raw.rotation,
        priority: raw.priority,
        capacity: capacity(&raw.capacity, &|key| format!("capacity.{key}"), p),
    })
}

/// A campaign's experiment ([`super::experiment::experiment`]), its arms'
/// multiplied bids within the cap of its pricing.
fn experiment(
    raw: Option<super::experiment::RawExperiment>,
    creatives: &[Creative],
    (max_bid, pricing): (Micros, Pricing),
    settings: &Settings,
    p: &mut Problems,
) -> Option<Box<crate::campaigns::experiment::Experiment>> {
    let cap = match pricing {
        Pricing::Cpc => settings.max_bid_caps.cpc,
        Pricing::Cpm | Pricing::Cpa | Pricing::Cps => settings.max_bid_caps.cpm,
    };
    let mut found = Vec::new();
    let experiment = raw.and_then(|raw| super::experiment::experiment(raw, creatives, max_bid, cap, &mut found));
    for (field, why) in found {
        p.at(&field, why);
    }
    experiment
}

/// The daily and lifetime budgets. A campaign may leave the daily budget
/// out only with both a total budget and an end date: each day's is then
/// derived from them ([`crate::campaigns::model::DayBudget`]).
fn budgets(raw: &RawCampaign, p: &mut Problems) -> (Option<Micros>, Option<Micros>) {
    let daily = raw.daily_budget.as_deref().and_then(|d| p.money("daily_budget", d));
    let total = raw.total_budget.as_deref().and_then(|t| p.money("total_budget", t));
    if raw.daily_budget.is_none() && (raw.total_budget.is_none() || raw.end.is_none()) {
        p.at(
            "daily_budget",
            "required unless the campaign has both total_budget and end (then each day's budget is derived from them)",
        );
    }
    (daily, total)
}

/// Without a daily budget, the flight's first and last local days (the
/// first is `i64::MIN` without a start), over which the total is spread;
/// `None` without an end (a problem already).
fn derived_budget_days(
    daily: Option<Micros>,
    (start, end): (Option<jiff::Timestamp>, Option<jiff::Timestamp>),
    time_zone: &TimeZone,
) -> Option<(i64, i64)> {
    if daily.is_some() {
        return None;
    }
    // `end` is the start of the day after the last one.
    let last = crate::clock::local_day(end?, time_zone) - 1;
    let first = start.map_or(i64::MIN, |start| crate::clock::local_day(start, time_zone));
    Some((first, last))
}

/// A campaign's max bid: given, positive, and not above its pricing's cap.
fn max_bid(text: Option<&str>, pricing: Pricing, settings: &Settings, p: &mut Problems) -> Micros {
    let Some(text) = text else {
        p.at("max_bid", format!("required for {} campaigns", pricing.as_str()));
        return Micros::ZERO;
    };
    let max_bid = p.money("max_bid", text);
    if max_bid == Some(Micros::ZERO) {
        p.at("max_bid", "must be greater than 0");
    }
    let max_bid = max_bid.unwrap_or(Micros::ZERO);
    let cap = match pricing {
        Pricing::Cpc => settings.max_bid_caps.cpc,
        Pricing::Cpm | Pricing::Cpa | Pricing::Cps => settings.max_bid_caps.cpm,
    };
    if max_bid > cap {
        p.at(
            "max_bid",
            format!("above the cap of {cap} (bidding.max_{}_cap)", pricing.as_str()),
        );
    }
    max_bid
}

/// The max bid and the value-based goal: CPA and CPS campaigns have no
/// `max_bid` (their `max_cpm` is the most they bid); a CPM campaign's
/// `max_cpm` is its max bid.
fn bid_limits(raw: &RawCampaign, settings: &Settings, p: &mut Problems) -> (Micros, Goal) {
    let goal = goal(raw, settings, p);
    match raw.pricing {
        Pricing::Cpm => {
            let max_bid = max_bid(raw.max_bid.as_deref(), raw.pricing, settings, p);
            (
                max_bid,
                Goal {
                    max_cpm: max_bid,
                    ..goal
                },
            )
        }
        Pricing::Cpc => (max_bid(raw.max_bid.as_deref(), raw.pricing, settings, p), goal),
        Pricing::Cpa | Pricing::Cps => {
            if raw.max_bid.is_some() {
                p.at(
                    "max_bid",
                    format!(
                        "not used by {} campaigns (max_cpm caps their bids)",
                        raw.pricing.as_str()
                    ),
                );
            }
            (goal.max_cpm, goal)
        }
    }
}

/// The campaign's attribution windows (defaults: 7 days after a click, a
/// day after a view).
fn attribution(raw: &RawCampaign, p: &mut Problems) -> AttributionWindows {
    let defaults = AttributionWindows::default();
    let mut window = |field: &str, text: Option<&str>, default: i64| {
        text.map_or(default, |text| {
            parse_window(text).unwrap_or_else(|why| {
                p.at(field, why);
                default
            })
        })
    };
    AttributionWindows {
        click_secs: window("click_window", raw.click_window.as_deref(), defaults.click_secs),
        view_secs: window("view_window", raw.view_window.as_deref(), defaults.view_secs),
    }
}

/// Default prior P(conversion | impression): one in ten thousand.
const DEFAULT_PCVR_PRIOR_PPB: u32 = 100_000;

/// The value-based goal of a campaign: `target_cpa` (CPA), `cps_share` and
/// `order_value_prior` (CPS) are required where they apply and refused
/// elsewhere; `max_cpm` is required for CPA and CPS, defaults to the CPM
/// cap for CPC, and is not for CPM campaigns (their `max_bid` is it).
fn goal(raw: &RawCampaign, settings: &Settings, p: &mut Problems) -> Goal {
    let pricing = raw.pricing;
    let mut amount = |field: &str, text: Option<&str>, wanted: bool| -> Option<Micros> {
        match (text, wanted) {
            (Some(text), true) => {
                let amount = p.money(field, text)?;
                if amount <= Micros::ZERO {
                    p.at(field, "must be greater than 0");
                }
                Some(amount)
            }
            (None, true) => {
                p.at(field, format!("required for {} campaigns", pricing.as_str()));
                None
            }
            (Some(_), false) => {
                p.at(field, format!("not used by {} campaigns", pricing.as_str()));
                None
            }
            (None, false) => None,
        }
    };
    let target_cpa = amount("target_cpa", raw.target_cpa.as_deref(), pricing == Pricing::Cpa);
    let order_value_prior = amount(
        "order_value_prior",
        raw.order_value_prior.as_deref(),
        pricing == Pricing::Cps,
    );
    let max_cpm = match (pricing, raw.max_cpm.as_deref()) {
        (Pricing::Cpc, None) => Some(settings.max_bid_caps.cpm),
        (_, text) => amount("max_cpm", text, pricing != Pricing::Cpm),
    };
    if max_cpm.is_some_and(|m| m > settings.max_bid_caps.cpm) {
        p.at(
            "max_cpm",
            format!("above the cap of {} (bidding.max_cpm_cap)", settings.max_bid_caps.cpm),
        );
    }
    let (cps_share, pcvr_prior) = conversion_terms(raw, p);
    Goal {
        max_cpm: max_cpm.unwrap_or(Micros::ZERO),
        target_cpa: target_cpa.unwrap_or(Micros::ZERO),
        cps_share,
        pcvr_prior,
        order_value_prior: order_value_prior.unwrap_or(Micros::ZERO),
    }
}

/// A CPS campaign's share (ppm), and a CPA or CPS campaign's prior pCVR
/// (ppb); refused on other campaigns.
fn conversion_terms(raw: &RawCampaign, p: &mut Problems) -> (u32, u32) {
    let pricing = raw.pricing;
    let cps_share = match (pricing, raw.cps_share.as_deref()) {
        (Pricing::Cps, Some(text)) => p.ratio_ppm("cps_share", text, 1_000_000),
        (Pricing::Cps, None) => {
            p.at("cps_share", "required for cps campaigns");
            0
        }
        (_, Some(_)) => {
            p.at("cps_share", format!("not used by {} campaigns", pricing.as_str()));
            0
        }
        (_, None) => 0,
    };
    let converts = matches!(pricing, Pricing::Cpa | Pricing::Cps);
    let pcvr_prior = match (converts, raw.pcvr_prior.as_deref()) {
        (true, Some(text)) => p.ratio_ppb("pcvr_prior", text),
        (true, None) => DEFAULT_PCVR_PRIOR_PPB,
        (false, Some(_)) => {
            p.at("pcvr_prior", format!("not used by {} campaigns", pricing.as_str()));
            0
        }
        (false, None) => 0,
    };
    (cps_share, pcvr_prior)
}

/// The prior pCTR (ppm) a CPC campaign must give; other campaigns have none.
fn pctr_prior(pricing: Pricing, text: Option<&str>, p: &mut Problems) -> u32 {
    match (pricing, text) {
        (Pricing::Cpc, Some(text)) => p.ratio_ppm("pctr_prior", text, 1_000_000),
        (Pricing::Cpc, None) => {
            p.at("pctr_prior", "required for cpc campaigns");
            0
        }
        (_, Some(_)) => {
            p.at("pctr_prior", format!("not used by {} campaigns", pricing.as_str()));
            0
        }
        (_, None) => 0,
    }
}

/// The start of a flight day (`YYYY-MM-DD`) in the campaign's time zone,
/// or of the day after it (`next`: an end date includes its day).
fn flight_day(p: &mut Problems, field: &str, text: &str, time_zone: &TimeZone, next: bool) -> Option<jiff::Timestamp> {
    let date: jiff::civil::Date = match text.parse() {
        Ok(d) => d,
        Err(_) => {
            p.at(field, format!("{text:?} is not a YYYY-MM-DD date"));
            return None;
        }
    };
    let date = if next { date.tomorrow().ok()? } else { date };
    date.to_zoned_datetime(time_zone.clone()).ok().map(|z| z.timestamp())
}

/// A campaign's creatives: at least one, each valid.
fn creatives(raw: Vec<RawCreative>, p: &mut Problems) -> Vec<Creative> {
    if raw.is_empty() {
        p.at("creative", "a campaign needs at least one creative");
    }
    for (i, c) in raw.iter().enumerate() {
        if raw[..i].iter().any(|other| other.id == c.id) {
            p.at(
                &format!("creative[{i}].id"),
                format!("duplicate creative id {:?}", c.id),
            );
        }
    }
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, c)| creative(i, c, p))
        .collect()
}

fn creative(i: usize, raw: RawCreative, p: &mut Problems) -> Option<Creative> {
    let field = |name: &str| format!("creative[{i}].{name}");
    if !is_valid_id(&raw.id) {
        p.at(&field("id"), "must be 1–64 letters, digits, '-', '_' or '.'");
    }
    let player = player_fit(i, &raw, p);
    let markup = if raw.format == MediaType::Native {
        let parts = NativeParts {
            adm: raw.adm.is_some(),
            image_url: raw.image_url.is_some(),
            title: raw.title,
            images: raw.image,
            data: raw.data,
        };
        Markup::Native(native_ad(parts, &field, p))
    } else {
        if let Some(key) = [
            ("title", raw.title.is_some()),
            ("image", !raw.image.is_empty()),
            ("data", !raw.data.is_empty()),
        ]
        .iter()
        .find_map(|(key, given)| given.then_some(key))
        {
            p.at(&field(key), "title, image and data are for native creatives");
        }
        other_markup(raw.format, raw.adm, raw.image_url, &field, p)?
    };
    if raw.format == MediaType::Banner && (raw.w.is_none_or(|w| w <= 0) || raw.h.is_none_or(|h| h <= 0)) {
        p.at(&field("w"), "banner creatives need positive w and h");
    }
    if !(raw.landing_url.starts_with("http://") || raw.landing_url.starts_with("https://")) {
        p.at(&field("landing_url"), "must be an http(s) URL");
    }
    let mime = match raw.format {
        MediaType::Video => Some(raw.mime.unwrap_or_else(|| defaults::VIDEO_MIME.into())),
        MediaType::Audio => Some(raw.mime.unwrap_or_else(|| defaults::AUDIO_MIME.into())),
        _ => raw.mime,
    };
    Some(Creative {
        id: raw.id,
        media: raw.format,
        w: raw.w,
        h: raw.h,
        markup,
        landing_url: raw.landing_url,
        mime,
        duration: raw.duration,
        attr: raw.attr,
        paused: raw.status == CreativeStatus::Paused,
        player,
        rewarded: raw.rewarded,
        weight: creative_weight(&field("weight"), raw.weight, p),
    })
}

/// A creative's `weight` (`weighted` rotation): at least 1, 1 when absent.
fn creative_weight(field: &str, weight: Option<u32>, p: &mut Problems) -> u32 {
    if weight == Some(0) {
        p.at(field, "must be at least 1 (pause a creative with status = \"paused\")");
    }
    weight.unwrap_or(1).max(1)
}

/// The bits of the names listed, from `table`; unknown names are problems.
fn bits(p: &mut Problems, field: &str, names: &[String], table: &[(&str, u8)]) -> u8 {
    let mut bits = 0;
    for text in names {
        match table.iter().find(|(known, _)| known == text) {
            Some((_, bit)) => bits |= bit,
            None => {
                let known: Vec<&str> = table.iter().map(|(k, _)| *k).collect();
                p.at(field, format!("{text:?} is not one of {}", known.join(", ")));
            }
        }
    }
    bits
}

/// What a video or audio creative needs of its player: from its keys, and
/// from its VAST where `vast_version` is absent.
fn player_fit(i: usize, raw: &RawCreative, p: &mut Problems) -> PlayerFit {
    use crate::campaigns::player::{placement, protocol_code, sniff, start};
    let field = |name: &str| format!("creative[{i}].{name}");
    let given = [
        ("vast_version", raw.vast_version.is_some(), true),
        ("api", !raw.api.is_empty(), true),
        ("skippable", raw.skippable.is_some(), false),
        ("placements", !raw.placements.is_empty(), false),
        ("start_delays", !raw.start_delays.is_empty(), true),
    ];
    for (name, _, audio_too) in given.iter().filter(|(_, given, _)| *given) {
        match raw.format {
            MediaType::Video => {}
            MediaType::Audio if *audio_too => {}
            MediaType::Audio => p.at(&field(name), "is for video creatives"),
            _ => p.at(&field(name), "is for video and audio creatives"),
        }
    }
    if !matches!(raw.format, MediaType::Video | MediaType::Audio) {
        return PlayerFit::default();
    }
    let sniffed = raw.adm.as_deref().map(sniff).unwrap_or_default();
    let protocol = match &raw.vast_version {
        Some(version) => {
            let code = protocol_code(version, sniffed.daast, sniffed.wrapper);
            if code.is_none() {
                p.at(
                    &field("vast_version"),
                    format!("{version:?} is not a VAST 1.0–4.2 or DAAST 1.0 version"),
                );
            }
            code
        }
        None => sniffed
            .version
            .as_deref()
            .and_then(|v| protocol_code(v, sniffed.daast, sniffed.wrapper)),
    };
    let placements = bits(p, &field("placements"), &raw.placements, placement::NAMES);
    let start_delays = bits(p, &field("start_delays"), &raw.start_delays, start::NAMES);
    PlayerFit {
        protocol,
        linearity: sniffed.linearity,
        api: raw.api.clone(),
        skippable: raw.skippable,
        placements,
        start_delays,
    }
}

/// The markup of a banner, video or audio creative: `adm`, or a banner's
/// `image_url`.
fn other_markup(
    format: MediaType,
    adm: Option<String>,
    image_url: Option<String>,
    field: &impl Fn(&str) -> String,
    p: &mut Problems,
) -> Option<Markup> {
    match (adm, image_url) {
        (Some(adm), None) => Some(Markup::Inline(adm)),
        (None, Some(url)) if format == MediaType::Banner => Some(Markup::Image { url }),
        (None, Some(_)) => {
            p.at(&field("image_url"), "image_url is for banners; give adm");
            None
        }
        _ => {
            p.at(&field("adm"), "give exactly one of adm or image_url");
            None
        }
    }
}

/// What a native creative's table gives.
struct NativeParts {
    adm: bool,
    image_url: bool,
    title: Option<String>,
    images: Vec<RawNativeImage>,
    data: Vec<RawNativeData>,
}

/// A native creative's assets: at least one; a non-blank title; images
/// at https URLs with a positive size; non-blank data texts.
fn native_ad(parts: NativeParts, field: &impl Fn(&str) -> String, p: &mut Problems) -> NativeAd {
    if parts.adm {
        p.at(
            &field("adm"),
            "a native creative gives its assets (title, [[campaign.creative.image]], [[campaign.creative.data]]), not adm: its response is written for each request's assets",
        );
    }
    if parts.image_url {
        p.at(
            &field("image_url"),
            "image_url is for banners; give a native image as [[campaign.creative.image]]",
        );
    }
    if parts.title.is_none() && parts.images.is_empty() && parts.data.is_empty() {
        p.at(
            &field("title"),
            "a native creative needs a title, an image or a data asset",
        );
    }
    if parts.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
        p.at(&field("title"), "must not be blank");
    }
    let images = parts
        .images
        .into_iter()
        .enumerate()
        .map(|(j, image)| native_image(image, &|key: &str| field(&format!("image[{j}].{key}")), p))
        .collect();
    let data = parts
        .data
        .into_iter()
        .enumerate()
        .map(|(j, data)| {
            if data.value.trim().is_empty() {
                p.at(&field(&format!("data[{j}].value")), "must not be blank");
            }
            NativeData {
                kind: data.kind,
                value: NativeText::new(data.value),
            }
        })
        .collect();
    NativeAd {
        title: parts.title.map(NativeText::new),
        images,
        data,
    }
}

/// A native image at an https URL with a positive size; its MIME type
/// from its extension unless given.
fn native_image(image: RawNativeImage, at: &impl Fn(&str) -> String, p: &mut Problems) -> NativeImage {
    if !image.url.starts_with("https://") || image.url.len() <= "https://".len() {
        p.at(&at("url"), "must be an https URL");
    }
    if image.w <= 0 || image.h <= 0 {
        p.at(&at("w"), "w and h must be positive");
    }
    if image.mime.as_deref().is_some_and(|m| !m.starts_with("image/")) {
        p.at(&at("mime"), "must be an image MIME type (image/…)");
    }
    NativeImage {
        kind: image.kind,
        mime: image.mime.or_else(|| image_mime_of(&image.url).map(String::from)),
        url: NativeText::new(image.url),
        w: image.w,
        h: image.h,
    }
}

fn segment_keys(
    paths: &[String],
    field: &str,
    p: &mut Problems,
    all_paths: &mut Vec<String>,
) -> Vec<crate::audience::SegmentKey> {
    paths
        .iter()
        .filter_map(|text| match SegmentPath::parse(text) {
            Ok(path) => {
                all_paths.push(path.as_str().to_string());
                Some(path.key())
            }
            Err(e) => {
                p.at(field, e.to_string());
                None
            }
        })
        .collect()
}

fn targeting(raw: RawTargeting, p: &mut Problems) -> Targeting {
    let mut segment_paths = Vec::new();
    let segments = SegmentRule {
        any: segment_keys(&raw.segments.any, "targeting.segments.any", p, &mut segment_paths),
        all: segment_keys(&raw.segments.all, "targeting.segments.all", p, &mut segment_paths),
        none: segment_keys(&raw.segments.none, "targeting.segments.none", p, &mut segment_paths),
    };
    let circles = geo_circles(&raw.geo_radius, p);
    let age = raw.age.map(|a| {
        if a.min > a.max {
            p.at("targeting.age", "min is greater than max");
        }
        (a.min, a.max)
    });
    for country in &raw.countries {
        if country.len() != 3 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            p.at(
                "targeting.countries",
                format!("{country:?} is not an ISO-3166-1 alpha-3 code"),
            );
        }
    }
    Targeting {
        segments,
        segment_paths,
        countries: raw.countries,
        regions: raw.regions,
        cities: raw.cities,
        circles,
        age,
        genders: raw.genders.into_iter().map(|g| g.0).collect(),
        device_types: raw.device_types,
        os: raw.os,
        connection_types: raw.connection_types,
        categories_allow: raw.categories_allow,
        categories_block: raw.categories_block,
        domains_allow: raw.domains_allow,
        domains_block: raw.domains_block,
        hours: dayparts(&raw.dayparts, p),
        frequency: FrequencyCap {
            per_hour: raw.frequency.per_hour,
            per_day: raw.frequency.per_day,
        },
        deals_only: raw.deals_only,
        deals: raw.deals,
    }
}

/// Radius-targeting circles, each on the globe with a positive radius.
fn geo_circles(raw: &[RawCircle], p: &mut Problems) -> Vec<GeoCircle> {
    raw.iter()
        .filter_map(|c| {
            let valid = (-90.0..=90.0).contains(&c.lat) && (-180.0..=180.0).contains(&c.lon) && c.radius_km > 0.0;
            if !valid {
                p.at(
                    "targeting.geo_radius",
                    "lat in [-90, 90], lon in [-180, 180], radius_km > 0",
                );
            }
            valid.then_some(GeoCircle {
                lat: c.lat,
                lon: c.lon,
                radius_km: c.radius_km,
            })
        })
        .collect()
}

fn dayparts(raw: &[RawDaypart], p: &mut Problems) -> Option<HoursOfWeek> {
    if raw.is_empty() {
        return None;
    }
    let mut hours = HoursOfWeek::NONE;
    for part in raw {
        if part.from_hour >= part.to_hour || part.to_hour > 24 {
            p.at("targeting.dayparts", "need 0 <= from_hour < to_hour <= 24");
            continue;
        }
        let days: Vec<usize> = if part.days.is_empty() {
            (0..7).collect()
        } else {
            part.days.iter().map(|d| d.index()).collect()
        };
        for day in days {
            for hour in part.from_hour..part.to_hour {
                hours.set(day * 24 + hour as usize);
            }
        }
    }
    Some(hours)
}
