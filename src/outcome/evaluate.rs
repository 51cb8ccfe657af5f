//! Offline evaluation of the click and conversion models
//! (`bullseye model evaluate`): train on the feature log's earlier days,
//! predict its last days, and compare log loss and AUC with the campaign's
//! smoothed rate — what the bid path would use without the model.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::learner::{Logged, day_files, read_log};
use super::model::{Label, Trainer};

/// Weight of the prior in the per-campaign baseline, in impressions (as
/// the live pCTR's).
const PRIOR_IMPRESSIONS: f64 = 1000.0;

/// Area under the ROC curve of `scores` against `labels` (ties share
/// their rank); `None` without both classes.
pub fn auc(scored: &[(f64, bool)]) -> Option<f64> {
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = sorted.iter().filter(|(_, y)| *y).count() as f64;
    let negatives = sorted.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their mean.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * sorted[i..j].iter().filter(|(_, y)| *y).count() as f64;
        i = j;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Mean log loss of probabilities against labels.
pub fn log_loss(scored: &[(f64, bool)]) -> f64 {
    let total: f64 = scored
        .iter()
        .map(|&(p, y)| {
            let p = p.clamp(1e-9, 1.0 - 1e-9);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / scored.len().max(1) as f64
}

/// One model's figures on the held-out impressions.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Figures {
    /// Held-out impressions.
    pub impressions: u64,
    /// Of which positive (clicked, or converted).
    pub positives: u64,
    /// Log loss of the learned model.
    pub model_log_loss: f64,
    /// Log loss of the campaign's smoothed rate.
    pub campaign_log_loss: f64,
    /// AUC of the learned model (`None` without both classes).
    pub model_auc: Option<f64>,
    /// AUC of the campaign's smoothed rate.
    pub campaign_auc: Option<f64>,
}

/// The evaluation of both models.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Days trained on (UTC day numbers, first and last).
    pub train_days: Option<(i64, i64)>,
    /// Days held out.
    pub test_days: Option<(i64, i64)>,
    /// Examples trained.
    pub trained: u64,
    /// The click model.
    pub click: Figures,
    /// The conversion model.
    pub conversion: Figures,
}

/// Evaluates on the feature log in `data_dir/outcome`, holding out its last
/// `holdout_days` days.
pub fn evaluate(data_dir: &Path, holdout_days: i64) -> std::io::Result<Evaluation> {
    let dir = data_dir.join("outcome");
    let days: Vec<i64> = day_files(&dir).into_iter().map(|(d, _)| d).collect();
    let cut = days.last().map_or(i64::MAX, |last| last - holdout_days + 1);
    let mut trainer = Trainer::default();
    // Per campaign: impressions, clicks, conversions of the training days.
    let mut counts: HashMap<u64, [f64; 3]> = HashMap::new();
    let mut held: Vec<Logged> = Vec::new();
    let (mut clicked, mut converted) = (HashSet::new(), HashSet::new());
    read_log(&dir, i64::MIN, |day, logged| {
        if day < cut {
            let c = counts.entry(logged.campaign_key).or_default();
            c[logged.label as usize] += 1.0;
            trainer.train(&logged.slots(), logged.campaign_key, logged.label);
            return;
        }
        match logged.label {
            Label::Impression => held.push(logged),
            Label::Click => {
                clicked.insert(logged.bid);
            }
            Label::Conversion => {
                converted.insert(logged.bid);
            }
        }
    })?;
    let model = trainer.publish();
    let total = counts
        .values()
        .fold([0.0; 3], |t, c| [t[0] + c[0], t[1] + c[1], t[2] + c[2]]);
    let prior = |k: usize| if total[0] > 0.0 { total[k] / total[0] } else { 0.001 };
    let baseline = |key: u64, k: usize| {
        let c = counts.get(&key).copied().unwrap_or_default();
        (c[k] + prior(k) * PRIOR_IMPRESSIONS) / (c[0] + PRIOR_IMPRESSIONS)
    };
    let mut scored = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for logged in &held {
        let (click, conversion) = model.probabilities(&logged.slots());
        let (was_clicked, was_converted) = (clicked.contains(&logged.bid), converted.contains(&logged.bid));
        scored[0].push((f64::from(click), was_clicked));
        scored[1].push((baseline(logged.campaign_key, 1), was_clicked));
        scored[2].push((f64::from(conversion), was_converted));
        scored[3].push((baseline(logged.campaign_key, 2), was_converted));
    }
    let figures = |model: &[(f64, bool)], campaign: &[(f64, bool)]| Figures {
        impressions: model.len() as u64,
        positives: model.iter().filter(|(_, y)| *y).count() as u64,
        model_log_loss: log_loss(model),
        campaign_log_loss: log_loss(campaign),
        model_auc: auc(model),
        campaign_auc: auc(campaign),
    };
    Ok(Evaluation {
        train_days: span(&days, |d| d < cut),
        test_days: span(&days, |d| d >= cut),
        trained: trainer.examples(),
        click: figures(&scored[0], &scored[1]),
        conversion: figures(&scored[2], &scored[3]),
    })
}

/// The first and last of `days` that `inside` keeps.
fn span(days: &[i64], inside: impl Fn(i64) -> bool) -> Option<(i64, i64)> {
    let mut kept = days.iter().copied().filter(|d| inside(*d));
    let first = kept.next()?;
    Some((first, kept.last().unwrap_or(first)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ordered_pairs_and_shares_ties() {
        assert_eq!(auc(&[(0.1, false), (0.9, true)]), Some(1.0));
        assert_eq!(auc(&[(0.9, false), (0.1, true)]), Some(0.0));
        assert_eq!(auc(&[(0.5, false), (0.5, true)]), Some(0.5));
        assert_eq!(auc(&[(0.1, false), (0.4, true), (0.3, false), (0.8, true)]), Some(1.0));
        assert_eq!(auc(&[(0.1, false), (0.2, false)]), None);
    }

    #[test]
    fn log_loss_is_the_mean_negative_log_likelihood() {
        let loss = log_loss(&[(0.5, true), (0.5, false)]);
        assert!((loss - std::f64::consts::LN_2).abs() < 1e-12);
    }
}
