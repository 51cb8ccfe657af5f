//! `loadtest simulate`: what a bidding strategy buys per unit budget on a
//! synthetic market, through the real bid path.
//!
//! Each strategy runs the Bullseye library in-process ([`bullseye::app::App`])
//! on a simulated clock: bid requests from the market ([`market`]) go to
//! the bidder; a bid wins when it beats the market's competitors and the
//! floor (first or second price); its billing notice, impression pixel,
//! click (drawn from the market's true click-through rate, ten seconds
//! later) and conversion postback (signed with the advertiser's secret,
//! ten minutes after the click) go through the tracker as production
//! receives them, and lost bids get their loss notice with the minimum bid
//! to win. The bidder learns only from those. The first `--warmup-hours`
//! teach it; the figures are taken from the ledger over the next
//! `--hours`.
//!
//! Strategies: `flat` (every campaign bids its max CPM, asap, fixed
//! shading), `per_campaign` (one smoothed rate per campaign, fixed
//! shading), `fixed_shading` (per-impression prediction, fixed shading),
//! `bullseye` (per-impression prediction, learned shading) and `oracle`
//! (the market's true propensities in place of the model, learned
//! shading: the limit no real bidder reaches). All see the same market and
//! the same traffic; a run repeats exactly for a seed.

mod chart;
mod config;
mod diagnose;
mod figures;
pub mod market;
mod oracle;
mod strategy;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;

use chart::chart;
use config::{build_audience, configured, default_campaigns};
use figures::{CampaignFigures, print_table};
use market::Market;
use strategy::Run;

/// What the table's columns say.
const LEGEND: &str = "\
Per campaign over the measured hours: spend (charged to the advertiser) and its share of the
budget; impressions, clicks, conversions; clicks and conversions per 1,000 of spend; eCPC and
CPA; win rate (wins / bids); media (what the exchange was paid: the clearing prices) and clicks
and conversions per 1,000 of it; gap: the largest difference, in percentage points, between
an hour's share of the spend and its share of the traffic.";

/// The strategies, in the order they are reported.
pub const STRATEGIES: [&str; 5] = ["flat", "per_campaign", "fixed_shading", "bullseye", "oracle"];

#[derive(clap::Args, Clone, Debug)]
pub struct SimArgs {
    /// Seed of the market and the traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Hours the bidder learns before the figures are taken.
    #[arg(long, default_value_t = 24)]
    pub warmup_hours: u32,
    /// Hours the figures are taken over.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// Users in the market.
    #[arg(long, default_value_t = 1_000_000)]
    pub users: usize,
    /// Campaigns (`bidder-config` TOML); default: the bundled set.
    #[arg(long)]
    pub campaigns: Option<PathBuf>,
    /// Competing bidders per auction.
    #[arg(long, default_value_t = 5)]
    pub competitors: usize,
    /// Median of the campaigns' base click-through rates (the market's
    /// shape).
    #[arg(long, default_value_t = 0.002)]
    pub base_ctr: f64,
    /// Median of the campaigns' conversion rates after a click (the
    /// market's shape).
    #[arg(long, default_value_t = 0.03)]
    pub base_cvr: f64,
    /// Median of a competitor's value of an impression, CPM (the market's
    /// shape).
    #[arg(long, default_value_t = 1.0)]
    pub competitor_cpm: f64,
    /// `first` or `second` price.
    #[arg(long, default_value = "first")]
    pub auction: String,
    /// Bid requests per simulated hour, on average over the day.
    #[arg(long, default_value_t = 12_000)]
    pub requests_per_hour: usize,
    /// Run only these strategies (repeatable); default: all five.
    #[arg(long)]
    pub strategy: Vec<String>,
    /// Write a chart (SVG) of the even-paced campaigns' hourly spend against
    /// the traffic here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// The last line is one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also explain one measured request in twenty (a dry run: the figures
    /// do not move) and print, per strategy and campaign, how often it
    /// could bid, its mean bid, how often it won the selection, what
    /// stopped it, and the market's true rates on those impressions.
    #[arg(long)]
    pub diagnose: bool,
    /// Write every measured bid to DIR/STRATEGY.csv: campaign, site, hour,
    /// the price to beat (the highest competing bid or the floor), the bid,
    /// and whether it won (`loadtest/simulate/kept-bound.py` reads it).
    #[arg(long, value_name = "DIR")]
    pub bids_log: Option<PathBuf>,
}

impl SimArgs {
    pub fn shape(&self) -> market::Shape {
        market::Shape {
            users: self.users,
            competitors: self.competitors,
            base_ctr: self.base_ctr,
            base_cvr: self.base_cvr,
            competitor_cpm: self.competitor_cpm,
        }
    }
}

/// One strategy's figures, per campaign.
pub type Results = Vec<(String, Vec<CampaignFigures>)>;

/// Runs the simulation and prints its figures.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let campaigns = match &args.campaigns {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let results = simulate(&args, campaigns.as_deref())?;
    println!("{LEGEND}");
    let mut report = serde_json::Map::new();
    for (strategy, figures) in results {
        print_table(&strategy, &figures);
        report.insert(strategy, json!({ "campaigns": figures }));
    }
    if let Some(svg) = &args.svg {
        std::fs::write(svg, chart(&report))?;
    }
    eprintln!("simulated in {:.1} s", started.elapsed().as_secs_f64());
    if args.json {
        println!(
            "{}",
            json!({ "strategies": report, "seed": args.seed, "auction": args.auction })
        );
    }
    Ok(())
}

/// Runs every strategy asked for (in parallel threads) on one market, over
/// `campaigns` (TOML; `None`: the bundled set).
pub fn simulate(args: &SimArgs, campaigns: Option<&str>) -> anyhow::Result<Results> {
    let started = Instant::now();
    let first_price = match args.auction.as_str() {
        "first" => true,
        "second" => false,
        other => bail!("--auction {other:?}: first or second"),
    };
    let strategies: Vec<&str> = if args.strategy.is_empty() {
        STRATEGIES.to_vec()
    } else {
        let unknown: Vec<&String> = args
            .strategy
            .iter()
            .filter(|s| !STRATEGIES.contains(&s.as_str()))
            .collect();
        if !unknown.is_empty() {
            bail!("unknown strategies {unknown:?}: {STRATEGIES:?}");
        }
        STRATEGIES
            .iter()
            .copied()
            .filter(|s| args.strategy.iter().any(|a| a == s))
            .collect()
    };
    let work = work_dir()?;
    let (campaigns_text, configured) = match campaigns {
        Some(text) => (text.to_string(), configured(work.path(), text)?),
        None => default_campaigns(work.path())?,
    };
    let market = Arc::new(Market::new(args.seed, configured.len(), &args.shape()));
    let snapshot = build_audience(work.path(), &market)?;
    eprintln!(
        "market: {} users, {} campaigns, {} competitors, {} price; audience built in {:.1} s",
        args.users,
        configured.len(),
        args.competitors,
        args.auction,
        started.elapsed().as_secs_f64()
    );
    let results: Vec<(String, anyhow::Result<Vec<CampaignFigures>>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = strategies
            .iter()
            .map(|&strategy| {
                let run = Run {
                    args,
                    strategy,
                    first_price,
                    market: market.clone(),
                    configured: &configured,
                    campaigns_text: &campaigns_text,
                    snapshot: &snapshot,
                    dir: work.path().join(strategy),
                };
                scope.spawn(move || (strategy.to_string(), run.go()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a strategy panicked"))
            .collect()
    });
    results
        .into_iter()
        .map(|(strategy, figures)| {
            let figures = figures.with_context(|| format!("strategy {strategy}"))?;
            Ok((strategy, figures))
        })
        .collect()
}

/// A scratch directory, in memory when `/dev/shm` exists (the ledger's
/// syncs are then cheap).
fn work_dir() -> anyhow::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    Ok(if shm.is_dir() {
        tempfile::Builder::new().prefix("bullseye-sim").tempdir_in(shm)?
    } else {
        tempfile::tempdir()?
    })
}
