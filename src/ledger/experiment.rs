//! The report by experiment arm: `bullseye report --by arm` and
//! `GET /admin/api/reports?by=arm`.
//!
//! [`super::report::query`] gives rows per campaign, date and arm (events
//! carry the arm they were made in, `{experiment}/{arm}`); [`arm_rows`]
//! folds them over the dates asked for into one row per campaign and arm —
//! an experiment is judged on its whole run, not day by day — and adds,
//! for each arm of the campaign's experiment as configured now:
//!
//! - `ctr` (clicks per impression) and `conversion_rate` (conversions per
//!   impression), each `{"rate", "ci_low", "ci_high", "lift", "p_value"}`:
//!   the rate with its 95 % Wilson score interval, the lift against the
//!   control arm (`rate / control rate − 1`) and the two-sided p-value of
//!   a pooled two-proportion z-test against the control (null for the
//!   control itself, and where a rate is undefined: no impressions, or a
//!   control rate of 0).
//! - `incremental` (experiments with a holdout arm): what the campaign
//!   adds over not advertising at all. A holdout user never sees an ad, so
//!   there is no impression to divide by; but users are split by a hash,
//!   independently of everything else, so each arm holds its weight's
//!   share of the campaign's audience. The conversion rate per assigned
//!   user of an arm is then proportional to its conversions divided by its
//!   weight, and the incremental lift of an arm (or, on the holdout's row,
//!   of all the exposed arms together) is `(conversions / weight) /
//!   (holdout conversions / holdout weight) − 1`. Its p-value tests the
//!   holdout's share of the conversions against its share of the weights
//!   (the z-test of one proportion, which is the pooled two-proportion test
//!   when both groups are large and rates small). Holdout conversions come
//!   from user-level postbacks ([`crate::tracking::user_conversion`]) —
//!   for a fair comparison the advertiser reports every conversion that
//!   way — or, offline, from a `--converters` file of user ids, each
//!   placed in its arm by the same hash as bidding (`basis`:
//!   `"converters"`, distinct users, instead of `"conversions"`).
//!
//! The weights are those configured now: changing an experiment's weights
//! in the middle of a test invalidates its incremental lift (start a new
//! experiment id instead). Arms of an experiment no longer configured
//! keep their counts and intervals, without role, lift or p-value.
//! Impressions, clicks and conversions within one user are correlated;
//! the tests treat them as independent, so their p-values are optimistic
//! when users see many impressions.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Serialize;

use super::report::{Group, Row};
use crate::campaigns::experiment::Experiment;

/// The normal quantile of a two-sided 95 % interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// A rate with its interval and its comparison with the control arm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rate {
    /// Successes per trial; `None` without trials.
    pub rate: Option<f64>,
    /// Lower end of the 95 % Wilson interval.
    pub ci_low: Option<f64>,
    /// Upper end of the 95 % Wilson interval.
    pub ci_high: Option<f64>,
    /// `rate / control rate − 1`.
    pub lift: Option<f64>,
    /// Two-sided p-value of the pooled two-proportion z-test against the
    /// control.
    pub p_value: Option<f64>,
}

/// What an arm (or all exposed arms) adds over the holdout.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Incremental {
    /// `"conversions"` (from the ledger) or `"converters"` (distinct users
    /// of a `--converters` file).
    pub basis: &'static str,
    /// Conversion rate per assigned user over the holdout's, minus one.
    pub lift: Option<f64>,
    /// Two-sided p-value of the holdout's share of conversions against its
    /// share of the weights.
    pub p_value: Option<f64>,
}

/// One campaign's arm over the dates asked for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArmRow {
    /// Campaign id.
    pub campaign: String,
    /// The dates with events: `YYYY-MM-DD`, or `first/last` (ISO 8601).
    pub date: String,
    /// The experiment id.
    pub experiment: String,
    /// The arm's name.
    pub arm: String,
    /// `control`, `treatment` or `holdout`; `None` for an experiment no
    /// longer configured.
    pub role: Option<&'static str>,
    /// Its weight as configured now.
    pub weight: Option<u32>,
    /// `cpm` or `cpc` (the latest pricing of its rows).
    pub pricing: &'static str,
    /// Always 0: bids are not counted per arm.
    pub bids: u64,
    /// Bids won.
    pub wins: u64,
    /// Impressions.
    pub impressions: u64,
    /// Clicks that passed the click-quality rules.
    pub clicks: u64,
    /// Clicks not billed.
    pub filtered_clicks: u64,
    /// Conversions counted (click-level and user-level).
    pub conversions: u64,
    /// Sum of the conversions' values, base-currency micros.
    pub conversion_value_micros: i64,
    /// Sum of the charges, base-currency micros.
    pub spend_micros: i64,
    /// Clicks per impression.
    pub ctr: Rate,
    /// Conversions per impression.
    pub conversion_rate: Rate,
    /// Users of the `--converters` file in this arm, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converters: Option<u64>,
    /// Lift over the holdout (experiments with one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
}

/// `erfc(x)`, fractional error below 1.2e-7 (Numerical Recipes' `erfcc`,
/// a Chebyshev fit).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The two-sided p-value of a standard normal statistic.
pub fn two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// The 95 % Wilson score interval of `successes` in `trials`.
pub fn wilson(successes: u64, trials: u64) -> Option<(f64, f64)> {
    if trials == 0 {
        return None;
    }
    let (n, p) = (trials as f64, successes.min(trials) as f64 / trials as f64);
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// The two-sided p-value of the pooled two-proportion z-test of `x1/n1`
/// against `x2/n2`; `None` without trials on either side, 1 when every
/// trial of both succeeded or none did.
pub fn pooled_z_test((x1, n1): (u64, u64), (x2, n2): (u64, u64)) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se == 0.0 {
        return Some(1.0);
    }
    Some(two_sided_p((x1 as f64 / n1f - x2 as f64 / n2f) / se))
}

/// A rate's figures, compared with `control` (`None`: this is the control
/// or there is none).
fn rate(successes: u64, trials: u64, control: Option<(u64, u64)>) -> Rate {
    let value = (trials > 0).then(|| successes as f64 / trials as f64);
    let interval = wilson(successes, trials);
    let (lift, p_value) = match control {
        Some((cx, cn)) if cn > 0 && cx > 0 && trials > 0 => (
            value.map(|v| v / (cx as f64 / cn as f64) - 1.0),
            pooled_z_test((successes, trials), (cx, cn)),
        ),
        Some((cx, cn)) => (None, pooled_z_test((successes, trials), (cx, cn))),
        None => (None, None),
    };
    Rate {
        rate: value,
        ci_low: interval.map(|i| i.0),
        ci_high: interval.map(|i| i.1),
        lift,
        p_value,
    }
}

/// The incremental lift of `exposed` (count, weight) over `holdout`.
pub fn incremental(basis: &'static str, (a, wa): (u64, u64), (h, wh): (u64, u64)) -> Incremental {
    let lift = (h > 0 && wa > 0 && wh > 0).then(|| (a as f64 / wa as f64) / (h as f64 / wh as f64) - 1.0);
    let n = a + h;
    let p_value = (n > 0 && wa > 0 && wh > 0).then(|| {
        let expected = wa as f64 / (wa + wh) as f64;
        let observed = a as f64 / n as f64;
        two_sided_p((observed - expected) / (expected * (1.0 - expected) / n as f64).sqrt())
    });
    Incremental { basis, lift, p_value }
}

/// The distinct user keys of a `--converters` file: one user id per line
/// (blank lines and lines starting with `#` skipped).
#[derive(Clone, Debug, Default)]
pub struct Converters {
    users: Vec<u64>,
}

impl Converters {
    /// Reads a converters file.
    pub fn read(path: &Path) -> std::io::Result<Converters> {
        let text = std::fs::read_to_string(path)?;
        Ok(Converters::from_ids(text.lines()))
    }

    /// Converters from their user ids.
    pub fn from_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Converters {
        let mut seen = HashSet::new();
        let users = ids
            .into_iter()
            .map(str::trim)
            .filter(|id| !id.is_empty() && !id.starts_with('#'))
            .map(crate::audience::user_key)
            .filter(|key| seen.insert(*key))
            .collect();
        Converters { users }
    }

    /// How many of them each arm of `experiment` holds.
    fn per_arm(&self, experiment: &Experiment) -> Vec<u64> {
        let mut counts = vec![0u64; experiment.arms.len()];
        for user in &self.users {
            counts[experiment.arm_of_user(*user)] += 1;
        }
        counts
    }
}

/// The experiments of `campaigns` (as configured now), by campaign id.
pub fn experiments_of<'a>(
    campaigns: impl IntoIterator<Item = &'a crate::campaigns::Campaign>,
) -> BTreeMap<String, Experiment> {
    campaigns
        .into_iter()
        .filter_map(|c| Some((c.id.clone(), c.experiment.as_deref()?.clone())))
        .collect()
}

/// One campaign's arm being summed.
#[derive(Default)]
struct Sum {
    first: String,
    last: String,
    last_cpc: bool,
    wins: u64,
    impressions: u64,
    clicks: u64,
    filtered_clicks: u64,
    conversions: u64,
    conversion_value: i64,
    spend: i64,
}

impl Sum {
    fn add(&mut self, row: &Row) {
        if self.first.is_empty() || row.date < self.first {
            self.first = row.date.clone();
        }
        if row.date >= self.last {
            self.last = row.date.clone();
            self.last_cpc = row.pricing == "cpc";
        }
        self.wins += row.wins;
        self.impressions += row.impressions;
        self.clicks += row.clicks;
        self.filtered_clicks += row.filtered_clicks;
        self.conversions += row.conversions;
        self.conversion_value = self.conversion_value.saturating_add(row.conversion_value_micros);
        self.spend = self.spend.saturating_add(row.spend_micros);
    }
}

/// One row per campaign and arm from rows by arm (see the module header):
/// `experiments` are the campaigns' experiments as configured now (by
/// campaign id); `converters`, when given, is the basis of the incremental
/// lift. Every arm of a campaign's current experiment gets a row once the
/// campaign has any event in an arm (a holdout often has none).
pub fn arm_rows(
    rows: &[Row],
    experiments: &BTreeMap<String, Experiment>,
    converters: Option<&Converters>,
) -> Vec<ArmRow> {
    let mut sums: BTreeMap<(String, String), Sum> = BTreeMap::new();
    for row in rows {
        if let Group::Text(tag) = &row.group {
            sums.entry((row.campaign.clone(), tag.clone())).or_default().add(row);
        }
    }
    let campaigns: Vec<String> = sums.keys().map(|(c, _)| c.clone()).collect();
    for campaign in campaigns {
        let Some(experiment) = experiments.get(&campaign) else {
            continue;
        };
        let (first, last) = campaign_dates(&sums, &campaign);
        for arm in &experiment.arms {
            let sum = sums.entry((campaign.clone(), arm.tag.clone())).or_default();
            if sum.first.is_empty() {
                (sum.first, sum.last) = (first.clone(), last.clone());
            }
        }
    }
    let mut out = Vec::with_capacity(sums.len());
    let mut group: Vec<((String, String), Sum)> = Vec::new();
    for (key, sum) in sums {
        if group.first().is_some_and(|((campaign, _), _)| *campaign != key.0) {
            out.extend(campaign_rows(std::mem::take(&mut group), experiments, converters));
        }
        group.push((key, sum));
    }
    out.extend(campaign_rows(group, experiments, converters));
    out
}

/// The first and last dates of a campaign's arm rows.
fn campaign_dates(sums: &BTreeMap<(String, String), Sum>, campaign: &str) -> (String, String) {
    let mine = sums.iter().filter(|((c, _), _)| c == campaign).map(|(_, s)| s);
    let first = mine.clone().map(|s| s.first.clone()).min().unwrap_or_default();
    let last = mine.map(|s| s.last.clone()).max().unwrap_or_default();
    (first, last)
}

/// What one campaign's arm rows are compared with.
struct Comparison<'x> {
    experiment: Option<&'x Experiment>,
    /// The control arm's clicks, conversions and impressions.
    control: Option<(u64, u64, u64)>,
    /// Converters per arm, when a file was given.
    converted: Option<Vec<u64>>,
    /// Per arm of the experiment: its count (conversions or converters),
    /// weight, and whether it is the holdout.
    counts: Vec<(u64, u64, bool)>,
}

impl Comparison<'_> {
    fn holdout(&self) -> Option<(u64, u64)> {
        self.counts.iter().find(|(_, _, h)| *h).map(|&(c, w, _)| (c, w))
    }

    /// The exposed arms together: their count and weight.
    fn exposed(&self) -> (u64, u64) {
        self.counts
            .iter()
            .filter(|(_, _, h)| !h)
            .fold((0, 0), |(c, w), &(count, weight, _)| (c + count, w + weight))
    }
}

/// The rows of one campaign's arms, with their statistics.
fn campaign_rows(
    group: Vec<((String, String), Sum)>,
    experiments: &BTreeMap<String, Experiment>,
    converters: Option<&Converters>,
) -> Vec<ArmRow> {
    let Some(((campaign, _), _)) = group.first() else {
        return Vec::new();
    };
    let experiment = experiments.get(campaign);
    let sum_of = |tag: &str| group.iter().find(|((_, t), _)| t == tag).map(|(_, s)| s);
    let converted = experiment.zip(converters).map(|(x, c)| c.per_arm(x));
    let counts = experiment.map_or_else(Vec::new, |x| {
        let count = |i: usize, tag: &str| match &converted {
            Some(per_arm) => per_arm[i],
            None => sum_of(tag).map_or(0, |s| s.conversions),
        };
        x.arms
            .iter()
            .enumerate()
            .map(|(i, arm)| (count(i, &arm.tag), u64::from(arm.weight), arm.holdout))
            .collect()
    });
    let comparison = Comparison {
        experiment,
        control: experiment
            .and_then(|x| sum_of(&x.arms[x.control].tag))
            .map(|s| (s.clicks, s.conversions, s.impressions)),
        converted,
        counts,
    };
    group
        .iter()
        .map(|((campaign, tag), sum)| arm_row(&comparison, campaign, tag, sum))
        .collect()
}

/// One arm's row.
fn arm_row(comparison: &Comparison, campaign: &str, tag: &str, sum: &Sum) -> ArmRow {
    let experiment = comparison.experiment;
    let index = experiment.and_then(|x| x.arms.iter().position(|a| a.tag == tag));
    let arm = index.and_then(|i| experiment.map(|x| &x.arms[i]));
    let is_control = index.is_some() && index == experiment.map(|x| x.control);
    let control = comparison.control.filter(|_| !is_control);
    let (experiment_id, name) = tag.split_once('/').unwrap_or(("", tag));
    let basis = match comparison.converted {
        Some(_) => "converters",
        None => "conversions",
    };
    ArmRow {
        campaign: campaign.to_string(),
        date: if sum.first == sum.last {
            sum.first.clone()
        } else {
            format!("{}/{}", sum.first, sum.last)
        },
        experiment: experiment_id.to_string(),
        arm: name.to_string(),
        role: arm.map(|a| match () {
            _ if a.holdout => "holdout",
            _ if is_control => "control",
            _ => "treatment",
        }),
        weight: arm.map(|a| a.weight),
        pricing: if sum.last_cpc { "cpc" } else { "cpm" },
        bids: 0,
        wins: sum.wins,
        impressions: sum.impressions,
        clicks: sum.clicks,
        filtered_clicks: sum.filtered_clicks,
        conversions: sum.conversions,
        conversion_value_micros: sum.conversion_value,
        spend_micros: sum.spend,
        ctr: rate(sum.clicks, sum.impressions, control.map(|(c, _, n)| (c, n))),
        conversion_rate: rate(sum.conversions, sum.impressions, control.map(|(_, c, n)| (c, n))),
        converters: index.zip(comparison.converted.as_ref()).map(|(i, per_arm)| per_arm[i]),
        incremental: comparison.holdout().zip(index).map(|(holdout, i)| {
            let (count, weight, is_holdout) = comparison.counts[i];
            let side = if is_holdout {
                comparison.exposed()
            } else {
                (count, weight)
            };
            incremental(basis, side, holdout)
        }),
    }
}

/// Column names of the CSV and table forms.
const HEADER: [&str; 26] = [
    "campaign",
    "date",
    "experiment",
    "arm",
    "role",
    "weight",
    "impressions",
    "clicks",
    "conversions",
    "conversion_value",
    "spend",
    "ctr",
    "ctr_ci_low",
    "ctr_ci_high",
    "ctr_lift",
    "ctr_p_value",
    "conversion_rate",
    "conversion_rate_ci_low",
    "conversion_rate_ci_high",
    "conversion_rate_lift",
    "conversion_rate_p_value",
    "converters",
    "incremental_basis",
    "incremental_lift",
    "incremental_p_value",
    "pricing",
];

fn cells(row: &ArmRow) -> Vec<String> {
    let number = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    let rate = |r: &Rate| [r.rate, r.ci_low, r.ci_high, r.lift, r.p_value].map(number);
    let money = |m: i64| crate::money::Micros(m).to_string();
    let mut cells = vec![
        row.campaign.clone(),
        row.date.clone(),
        row.experiment.clone(),
        row.arm.clone(),
        row.role.unwrap_or_default().to_string(),
        row.weight.map_or(String::new(), |w| w.to_string()),
        row.impressions.to_string(),
        row.clicks.to_string(),
        row.conversions.to_string(),
        money(row.conversion_value_micros),
        money(row.spend_micros),
    ];
    cells.extend(rate(&row.ctr));
    cells.extend(rate(&row.conversion_rate));
    cells.push(row.converters.map_or(String::new(), |c| c.to_string()));
    let incremental = row.incremental.as_ref();
    cells.push(incremental.map_or("", |i| i.basis).to_string());
    cells.push(number(incremental.and_then(|i| i.lift)));
    cells.push(number(incremental.and_then(|i| i.p_value)));
    cells.push(row.pricing.to_string());
    cells
}

/// The rows as CSV, with a header line.
pub fn csv(rows: &[ArmRow]) -> String {
    super::report::csv_of(&HEADER, rows.iter().map(cells))
}

/// The rows as an aligned plain-text table, with a header line.
pub fn table(rows: &[ArmRow]) -> String {
    super::report::aligned(&HEADER, rows.iter().map(cells).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaigns::experiment::{Arm, UsersWithoutId};
    use crate::ledger::query::By;

    fn row(date: &str, arm: &str, (impressions, clicks, conversions): (u64, u64, u64)) -> Row {
        Row {
            campaign: "c".into(),
            date: date.into(),
            by: By::Arm,
            group: Group::Text(format!("x/{arm}")),
            pricing: "cpm",
            bids: 0,
            wins: impressions,
            impressions,
            clicks,
            filtered_clicks: 0,
            late_notices: 0,
            conversions,
            conversion_value_micros: 0,
            spend_micros: 0,
            ctr: 0.0,
            ecpm: 0.0,
            ecpc: 0.0,
            cpa_micros: None,
            roas: None,
            win_rate: None,
        }
    }

    /// Arms a (control, 45), b (45) and h (the holdout, 10).
    fn experiments() -> BTreeMap<String, Experiment> {
        let arm = |name: &str, weight, holdout| Arm {
            name: name.into(),
            weight,
            creatives: Vec::new(),
            bid_multiplier_ppm: 1_000_000,
            holdout,
            tag: format!("x/{name}"),
        };
        let arms = vec![arm("a", 45, false), arm("b", 45, false), arm("h", 10, true)];
        let x = Experiment::new("x".into(), 0, UsersWithoutId::Exclude, arms);
        BTreeMap::from([("c".to_string(), x)])
    }

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.unwrap_or(f64::NAN);
        assert!((actual - expected).abs() < 1e-6, "{actual} ≠ {expected}");
    }

    /// The figures below were computed by hand from the formulas (Wilson:
    /// centre (p + z²/2n)/(1 + z²/n), half-width z/(1 + z²/n)·√(p(1−p)/n +
    /// z²/4n²), z = 1.959964; pooled test: p = (x₁+x₂)/(n₁+n₂), se =
    /// √(p(1−p)(1/n₁+1/n₂)), p-value erfc(|z|/√2)), e.g. for the CTRs
    /// 70/1000 against 50/1000: p = 0.06, se = 0.0106207, z = 1.883109,
    /// p-value 0.059686; incremental, b's 21 conversions at weight 45
    /// against the holdout's 2 at weight 10: (21/45)/(2/10) − 1 = 1.3333,
    /// share 21/23 against 45/55, z = 1.18, p-value 0.238185.
    #[test]
    fn arm_statistics_match_a_hand_computation() {
        let rows = [
            row("2026-11-20", "a", (600, 30, 6)),
            row("2026-11-21", "a", (400, 20, 4)),
            row("2026-11-20", "b", (1000, 70, 21)),
            row("2026-11-21", "h", (0, 0, 2)),
        ];
        let out = arm_rows(&rows, &experiments(), None);
        let [a, b, h] = <[ArmRow; 3]>::try_from(out).expect("three arms");
        assert_eq!((a.arm.as_str(), a.role, a.weight), ("a", Some("control"), Some(45)));
        assert_eq!(
            (a.date.as_str(), a.impressions, a.clicks),
            ("2026-11-20/2026-11-21", 1000, 50)
        );
        close(a.ctr.rate, 0.05);
        close(a.ctr.ci_low, 0.038_130_262);
        close(a.ctr.ci_high, 0.065_313_820);
        assert_eq!(
            (a.ctr.lift, a.ctr.p_value),
            (None, None),
            "the control is not compared with itself"
        );

        assert_eq!((b.role, b.date.as_str()), (Some("treatment"), "2026-11-20"));
        close(b.ctr.ci_low, 0.055_776_364);
        close(b.ctr.ci_high, 0.087_514_648);
        close(b.ctr.lift, 0.4);
        close(b.ctr.p_value, 0.059_685_606);
        close(b.conversion_rate.rate, 0.021);
        close(b.conversion_rate.ci_low, 0.013_775_740);
        close(b.conversion_rate.ci_high, 0.031_890_295);
        close(b.conversion_rate.lift, 1.1);
        close(b.conversion_rate.p_value, 0.046_464_399);
        let incremental = b.incremental.expect("an experiment with a holdout");
        assert_eq!(incremental.basis, "conversions");
        close(incremental.lift, 4.0 / 3.0);
        close(incremental.p_value, 0.238_184_950);

        assert_eq!((h.role, h.impressions, h.conversions), (Some("holdout"), 0, 2));
        assert_eq!(h.ctr, Rate::default(), "no impressions: no rate");
        // All exposed arms: 31 conversions at weight 90 against 2 at 10.
        let all = h.incremental.expect("on the holdout's row: every exposed arm");
        close(all.lift, 0.722_222_222);
        close(all.p_value, 0.450_647_185);
    }

    /// Converters are placed in arms by the bidding hash, counted once,
    /// and become the incremental lift's basis; an arm without events
    /// still gets its row.
    #[test]
    fn converters_are_counted_per_arm_by_the_same_hash() {
        let experiments = experiments();
        let x = &experiments["c"];
        let ids: Vec<String> = (0..1000).map(|n| format!("user-{n}")).collect();
        let mut with_duplicates: Vec<&str> = ids.iter().map(String::as_str).collect();
        with_duplicates.extend(["user-1", "", "# comment"]);
        let converters = Converters::from_ids(with_duplicates);
        let mut expected = [0u64; 3];
        for id in &ids {
            expected[x.arm_of_user(crate::audience::user_key(id))] += 1;
        }
        let rows = [row("2026-11-20", "a", (100, 5, 1))];
        let out = arm_rows(&rows, &experiments, Some(&converters));
        assert_eq!(out.len(), 3, "every arm of the experiment");
        let counted: Vec<u64> = out.iter().map(|r| r.converters.unwrap()).collect();
        assert_eq!(counted, expected);
        assert_eq!(counted.iter().sum::<u64>(), 1000);
        let holdout = out[2].incremental.unwrap();
        assert_eq!(holdout.basis, "converters");
        let lift = (expected[0] + expected[1]) as f64 / 90.0 / (expected[2] as f64 / 10.0) - 1.0;
        close(holdout.lift, lift);
        // Random users convert alike in every arm: no significant lift.
        assert!(holdout.p_value.unwrap() > 0.01, "{holdout:?}");
        assert_eq!(
            out[1].date, "2026-11-20",
            "an arm without events spans the campaign's dates"
        );
    }

    #[test]
    fn arms_of_an_experiment_no_longer_configured_keep_their_counts() {
        let mut old = row("2026-11-20", "a", (10, 1, 0));
        old.group = Group::Text("old-test/a".into());
        let out = arm_rows(&[old], &experiments(), None);
        assert_eq!(out.len(), 4, "the old arm, and the current experiment's three");
        assert_eq!((out[0].experiment.as_str(), out[0].role), ("old-test", None));
        close(out[0].ctr.rate, 0.1);
        assert_eq!(out[0].ctr.lift, None);
        assert!(csv(&out).starts_with("campaign,date,experiment,arm,role,weight,impressions"));
    }
}
