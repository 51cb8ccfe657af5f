//! The figures of each campaign, read back from the billing ledger over
//! the measured hours, and their table.

use std::collections::HashMap;
use std::path::Path;

use super::SimArgs;
use super::config::Configured;
use super::market::Market;

/// One campaign's figures over the measured hours.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CampaignFigures {
    pub id: String,
    pub pricing: String,
    pub pacing: String,
    /// Budget over the measured hours.
    pub budget_micros: i64,
    pub spend_micros: i64,
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
    pub bids: u64,
    pub wins: u64,
    /// What the exchange was paid for the impressions (clearing prices):
    /// the strategy's buying efficiency, whatever the campaign is charged.
    pub media_cost_micros: i64,
    pub spend_fraction: f64,
    /// Clicks and conversions per 1,000 (currency units) of media cost.
    pub clicks_per_1000_media: f64,
    pub conversions_per_1000_media: f64,
    pub clicks_per_1000: f64,
    pub conversions_per_1000: f64,
    pub impressions_per_1000: f64,
    pub ecpc: Option<f64>,
    pub cpa: Option<f64>,
    pub win_rate: f64,
    pub hourly_spend_micros: Vec<i64>,
    pub hourly_traffic_share: Vec<f64>,
    /// The largest gap, in percentage points, between an hour's share of
    /// the spend and its share of the traffic.
    pub hourly_share_gap_pp: f64,
}

/// The figures of each campaign from the ledger, over the measured hours.
pub fn figures(
    ledger: &Path,
    configured: &[Configured],
    bids: &[[u64; 2]],
    measured_from: i64,
    args: &SimArgs,
    market: &Market,
) -> anyhow::Result<Vec<CampaignFigures>> {
    use bullseye::ledger::EventKind;
    let records = bullseye::ledger::read_all(ledger).map_err(|e| anyhow::anyhow!("{e}"))?;
    let index: HashMap<&str, usize> = configured.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
    let mut out: Vec<CampaignFigures> = configured
        .iter()
        .enumerate()
        .map(|(i, c)| CampaignFigures {
            id: c.id.clone(),
            pricing: c.pricing.clone(),
            pacing: c.pacing.clone(),
            budget_micros: c.daily_budget * i64::from(args.hours) / 24,
            bids: bids[i][0],
            wins: bids[i][1],
            hourly_spend_micros: vec![0; 24],
            ..Default::default()
        })
        .collect();
    for record in records.iter().filter(|r| r.at >= measured_from * 1_000_000) {
        let Some(&c) = index.get(record.campaign.as_str()) else {
            continue;
        };
        let f = &mut out[c];
        f.spend_micros += record.charge;
        f.hourly_spend_micros[(record.at / 3_600_000_000 % 24) as usize] += record.charge;
        match record.event {
            // Every won bid gets its billing notice: one impression, and
            // what the exchange was paid (the clearing CPM / 1000).
            EventKind::Bill => {
                f.impressions += 1;
                f.media_cost_micros += record.clearing.unwrap_or(0) / 1000;
            }
            EventKind::Click if record.filtered.is_none() => f.clicks += 1,
            EventKind::Conversion if record.filtered.is_none() => f.conversions += 1,
            _ => {}
        }
    }
    for f in &mut out {
        let spend = f.spend_micros as f64 / 1e6;
        let per_1000 = |n: u64| if spend > 0.0 { n as f64 / spend * 1000.0 } else { 0.0 };
        f.spend_fraction = if f.budget_micros > 0 {
            f.spend_micros as f64 / f.budget_micros as f64
        } else {
            0.0
        };
        f.clicks_per_1000 = per_1000(f.clicks);
        f.conversions_per_1000 = per_1000(f.conversions);
        f.impressions_per_1000 = per_1000(f.impressions);
        let media = f.media_cost_micros as f64 / 1e6;
        let per_1000_media = |n: u64| if media > 0.0 { n as f64 / media * 1000.0 } else { 0.0 };
        f.clicks_per_1000_media = per_1000_media(f.clicks);
        f.conversions_per_1000_media = per_1000_media(f.conversions);
        f.ecpc = (f.clicks > 0).then(|| spend / f.clicks as f64);
        f.cpa = (f.conversions > 0).then(|| spend / f.conversions as f64);
        f.win_rate = if f.bids > 0 { f.wins as f64 / f.bids as f64 } else { 0.0 };
        f.hourly_traffic_share = market.traffic.to_vec();
        f.hourly_share_gap_pp = share_gap_pp(&f.hourly_spend_micros, &market.traffic);
    }
    Ok(out)
}

/// The largest gap between an hour's share of `spend` and its share of
/// `traffic`, in percentage points (0 without spend).
fn share_gap_pp(spend: &[i64], traffic: &[f64]) -> f64 {
    let total: i64 = spend.iter().sum();
    if total <= 0 {
        return 0.0;
    }
    spend
        .iter()
        .zip(traffic)
        .map(|(s, t)| (*s as f64 / total as f64 - t).abs() * 100.0)
        .fold(0.0, f64::max)
}

/// The figures as a table, one line per campaign.
pub fn print_table(strategy: &str, figures: &[CampaignFigures]) {
    println!("== {strategy}");
    println!(
        "{:<10} {:<4} {:<4} {:>8} {:>6} {:>7} {:>6} {:>5} {:>8} {:>8} {:>7} {:>7} {:>5} {:>8} {:>9} {:>9} {:>5}",
        "campaign",
        "goal",
        "pace",
        "spend",
        "of cap",
        "imps",
        "clicks",
        "convs",
        "clk/1000",
        "cnv/1000",
        "eCPC",
        "CPA",
        "win%",
        "media",
        "clk/1000m",
        "cnv/1000m",
        "gap"
    );
    for f in figures {
        let money = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        println!(
            "{:<10} {:<4} {:<4} {:>8.2} {:>5.1}% {:>7} {:>6} {:>5} {:>8.1} {:>8.2} {:>7} {:>7} {:>4.1}% {:>8.2} {:>9.1} {:>9.2} {:>5.1}",
            f.id,
            f.pricing,
            f.pacing,
            f.spend_micros as f64 / 1e6,
            f.spend_fraction * 100.0,
            f.impressions,
            f.clicks,
            f.conversions,
            f.clicks_per_1000,
            f.conversions_per_1000,
            money(f.ecpc),
            money(f.cpa),
            f.win_rate * 100.0,
            f.media_cost_micros as f64 / 1e6,
            f.clicks_per_1000_media,
            f.conversions_per_1000_media,
            f.hourly_share_gap_pp
        );
    }
}
