//! What a strategy's bidder is given: the campaigns (the bundled set,
//! rewritten for `flat`), `bullseye.toml` for the strategy, the advertisers'
//! postback secret and the audience snapshot of the market's users.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::market::Market;

/// The bundled campaigns.
pub const DEFAULT_CAMPAIGNS: &str = include_str!("../../simulate/campaigns.toml");
/// The bundled CPA campaigns, added when this build validates them.
pub const DEFAULT_CPA_CAMPAIGNS: &str = include_str!("../../simulate/campaigns-cpa.toml");

/// The advertisers' postback secret in the simulation.
pub const POSTBACK_SECRET: &str = "simulation-postback-secret-0123456789abcdef";

/// A campaign as configured, what the simulation needs of it.
#[derive(Clone, Debug)]
pub struct Configured {
    pub id: String,
    pub advertiser: String,
    pub pricing: String,
    pub pacing: String,
    pub daily_budget: i64,
}

/// The campaigns as the bidder validates them.
pub fn configured(work: &Path, campaigns: &str) -> anyhow::Result<Vec<Configured>> {
    let dir = work.join("check");
    let advertisers = advertisers_of(campaigns)?;
    write_config(
        &dir,
        &settings("impression", "learned", &advertisers, &dir, None),
        campaigns,
    )?;
    let config = bullseye::config::load(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(config
        .campaigns
        .iter()
        .map(|c| Configured {
            id: c.id.clone(),
            advertiser: c.advertiser.clone(),
            pricing: c.pricing.as_str().to_string(),
            pacing: match c.pacing {
                bullseye::campaigns::PacingMode::Even => "even".into(),
                bullseye::campaigns::PacingMode::Asap => "asap".into(),
            },
            daily_budget: c.daily_budget.0,
        })
        .collect())
}

/// The bundled campaigns, with the CPA ones when they validate.
pub fn default_campaigns(work: &Path) -> anyhow::Result<(String, Vec<Configured>)> {
    let with_cpa = format!("{DEFAULT_CAMPAIGNS}\n{DEFAULT_CPA_CAMPAIGNS}");
    match configured(work, &with_cpa) {
        Ok(configured) => Ok((with_cpa, configured)),
        Err(e) => {
            eprintln!("CPA campaigns left out: {e:#}");
            Ok((DEFAULT_CAMPAIGNS.to_string(), configured(work, DEFAULT_CAMPAIGNS)?))
        }
    }
}

/// The advertisers a campaigns file names.
pub fn advertisers_of(campaigns: &str) -> anyhow::Result<Vec<String>> {
    let table: toml::Table = campaigns.parse().context("campaigns file is not TOML")?;
    let mut out: Vec<String> = table
        .get("campaign")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("advertiser")?.as_str().map(String::from))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// `bullseye.toml` for a strategy.
pub fn settings(
    prediction: &str,
    shading: &str,
    advertisers: &[String],
    dir: &Path,
    snapshot: Option<&Path>,
) -> String {
    let mut out = format!(
        "[bidding]\nprediction = \"{prediction}\"\nshading = \"{shading}\"\n\n\
         [secrets]\nsigning_key = \"simulation-signing-key-0123456789abcdef\"\n\n\
         [tracking]\nmax_clicks_per_user_hour = 1000000\nmax_clicks_per_ip_hour = 1000000\nmax_conversions_per_click = 5\n\n\
         [[exchange]]\nname = \"default\"\nseat = \"sim\"\nsends_lurl = true\n"
    );
    if let Some(snapshot) = snapshot {
        out.push_str(&format!("\n[audience]\nsnapshot = \"{}\"\n", snapshot.display()));
    }
    let secret = dir.join("postback.secret");
    for advertiser in advertisers {
        out.push_str(&format!(
            "\n[[advertiser]]\nid = \"{advertiser}\"\n\n[[postback]]\nadvertiser = \"{advertiser}\"\nsecret_file = \"{}\"\n",
            secret.display()
        ));
    }
    out
}

pub fn write_config(dir: &Path, settings: &str, campaigns: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("campaigns"))?;
    std::fs::write(dir.join("postback.secret"), POSTBACK_SECRET)?;
    std::fs::write(dir.join("bullseye.toml"), settings)?;
    std::fs::write(dir.join("campaigns/sim.toml"), campaigns)?;
    Ok(())
}

/// The flat strategy's campaigns: every campaign a CPM one at its most
/// (`max_cpm` for value-based ones), asap.
pub fn flat(campaigns: &str) -> anyhow::Result<String> {
    let mut table: toml::Table = campaigns.parse()?;
    if let Some(list) = table.get_mut("campaign").and_then(|c| c.as_array_mut()) {
        for campaign in list.iter_mut().filter_map(|c| c.as_table_mut()) {
            let pricing = campaign
                .get("pricing")
                .and_then(|p| p.as_str())
                .unwrap_or("cpm")
                .to_string();
            if pricing != "cpm" {
                let most = campaign
                    .get("max_cpm")
                    .cloned()
                    .context("value-based campaigns need max_cpm")?;
                campaign.insert("max_bid".into(), most);
            }
            for key in [
                "pctr_prior",
                "target_cpa",
                "cps_share",
                "max_cpm",
                "pcvr_prior",
                "order_value_prior",
            ] {
                campaign.remove(key);
            }
            campaign.insert("pricing".into(), "cpm".into());
            campaign.insert("pacing".into(), "asap".into());
        }
    }
    Ok(toml::to_string(&table)?)
}

/// Writes the market's users as CSV and builds the audience snapshot.
pub fn build_audience(work: &Path, market: &Market) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    let csv = work.join("audience.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    for user in 0..market.users.len() {
        writeln!(out, "u{user},{}", market.segments(user))?;
    }
    out.flush()?;
    drop(out);
    let snapshot = work.join("audience.snapshot");
    bullseye::audience::builder::build(std::slice::from_ref(&csv), &snapshot, 0.0)
        .map_err(|e| anyhow::anyhow!("building the audience: {e}"))?;
    std::fs::remove_file(&csv)?;
    Ok(snapshot)
}
