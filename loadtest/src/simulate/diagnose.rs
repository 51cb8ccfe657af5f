//! `--diagnose`: why a strategy buys what it buys. Every
//! [`EXPLAIN_EVERY`]th measured request is also run through the bid path
//! dry (`bullseye::bidder::explain::explain`: nothing counted, no random
//! draw, so the figures do not move), and per campaign the share of those
//! impressions it could bid on, its mean bid, how often it would win the
//! internal selection, the rules that stopped it, and the market's true
//! click and conversion rates on the same impressions are printed at the
//! end of the run.

use std::collections::BTreeMap;

use bullseye::app::App;

use super::market::Market;

/// One measured request in this many is explained.
pub const EXPLAIN_EVERY: u64 = 20;

/// One campaign's tally.
#[derive(Clone, Debug, Default)]
struct Tally {
    explained: u64,
    with_bid: u64,
    bid_sum: f64,
    winner: u64,
    true_ctr_sum: f64,
    true_conversion_sum: f64,
    reasons: BTreeMap<&'static str, u64>,
}

/// The tallies of one strategy's run.
#[derive(Debug)]
pub struct Diagnosis {
    ids: Vec<String>,
    tallies: Vec<Tally>,
}

/// Where an explained request went: its user, site and hour.
pub struct Seen {
    pub user: usize,
    pub site: usize,
    pub hour: usize,
}

impl Diagnosis {
    pub fn new(ids: Vec<String>) -> Diagnosis {
        let tallies = vec![Tally::default(); ids.len()];
        Diagnosis { ids, tallies }
    }

    /// Explains `body` and tallies each campaign's verdict.
    pub fn explain(&mut self, app: &App, market: &Market, body: &[u8], seen: &Seen) {
        let Ok(explanation) = bullseye::bidder::explain::explain(&app.bidder, None, body) else {
            return;
        };
        let Some(imp) = explanation.imp.first() else { return };
        for verdict in &imp.campaigns {
            let Some(c) = self.ids.iter().position(|id| *id == verdict.id) else {
                continue;
            };
            let t = &mut self.tallies[c];
            t.explained += 1;
            let ctr = market.ctr(seen.user, c, seen.site, seen.hour);
            t.true_ctr_sum += ctr;
            t.true_conversion_sum += ctr * market.cvr(seen.user, c);
            match (&verdict.bid, verdict.reason) {
                (Some(bid), None) => {
                    t.with_bid += 1;
                    t.bid_sum += bid.parse::<f64>().unwrap_or(0.0);
                }
                (_, reason) => *t.reasons.entry(reason.unwrap_or("outbid")).or_default() += 1,
            }
            if imp.winner.as_deref() == Some(verdict.id.as_str()) {
                t.winner += 1;
            }
        }
    }

    /// The tallies, one line per campaign, on stderr, and what the
    /// learned model holds of each campaign.
    pub fn print(&self, strategy: &str, app: &App) {
        eprintln!("== {strategy}: diagnosis over 1 in {EXPLAIN_EVERY} measured requests (dry run)");
        let model = app.learner.model();
        let dropped = app.learner.dropped.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "model: {} examples trained, {dropped} observations dropped",
            model.examples
        );
        for id in &self.ids {
            let key = bullseye::campaigns::model::key_of(id);
            eprintln!("model: {id}: {} impressions trained", model.campaign_impressions(key));
        }
        eprintln!(
            "{:<11} {:>8} {:>6} {:>8} {:>7} {:>9} {:>11}  stopped by",
            "campaign", "explained", "bid%", "mean bid", "winner%", "true CTR", "true conv/imp"
        );
        for (id, t) in self.ids.iter().zip(&self.tallies) {
            let n = t.explained.max(1) as f64;
            let reasons: Vec<String> = t.reasons.iter().map(|(r, c)| format!("{r} {c}")).collect();
            eprintln!(
                "{:<11} {:>8} {:>5.1}% {:>8.3} {:>6.1}% {:>8.4}% {:>10.5}%  {}",
                id,
                t.explained,
                100.0 * t.with_bid as f64 / n,
                t.bid_sum / t.with_bid.max(1) as f64,
                100.0 * t.winner as f64 / n,
                100.0 * t.true_ctr_sum / n,
                100.0 * t.true_conversion_sum / n,
                reasons.join(", ")
            );
        }
    }
}
