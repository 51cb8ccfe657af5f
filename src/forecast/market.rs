//! The market a forecast bids into: per exchange, the probability that a
//! bid at a price wins, and what a win costs.
//!
//! Learned from the data dir: each win's clearing price (the billing
//! log's win and billing notices, one per bid, test bids left out) and
//! each loss notice's minimum bid to win (`ledger::losses`) are one
//! observation of the price that wins the impression; P(win | bid) is the
//! share of observations at or below the bid (an empirical curve). A win
//! costs the bid at first price, and at second price the mean observed
//! price at or below the bid (never below the floor). Prices are read as
//! in the base currency.
//!
//! An exchange with fewer than [`MIN_OBSERVATIONS`] gets the default
//! curve: the winning price is log-logistic (shape 1) with median
//! [`DEFAULT_MEDIAN`] or twice the impression's floor, whichever is
//! higher, so P(win | bid) = bid / (bid + median) above the floor and 0
//! below it; a second-price win costs its conditional mean,
//! `m (b + m) / b × (ln(1 + b/m) + m/(b + m) − 1)`.
//!
//! Probabilities are the one place floats are used: a forecast is an
//! estimate, and what it prints as money is converted back to micros.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use crate::ledger::EventKind;
use crate::ledger::losses::LossRecord;
use crate::money::Micros;

/// Observations an exchange needs before its own curve is used.
pub const MIN_OBSERVATIONS: usize = 20;
/// The default curve's median winning price, CPM (1.00 in the base currency).
pub const DEFAULT_MEDIAN: Micros = Micros(1_000_000);

/// Winning prices per exchange, sorted, with prefix sums.
#[derive(Clone, Debug, Default)]
pub struct Market {
    curves: HashMap<String, Curve>,
}

#[derive(Clone, Debug, Default)]
struct Curve {
    /// Winning prices, CPM micros, ascending.
    prices: Vec<i64>,
    /// `sums[i]`: the sum of `prices[..i]`.
    sums: Vec<i128>,
}

/// What a bid buys in one auction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Win {
    /// P(win), 0 to 1.
    pub probability: f64,
    /// What a win costs, CPM, base currency.
    pub price: Micros,
}

impl Market {
    /// Learns the curves from the billing log and the loss log of `data_dir`
    /// (none found: every exchange gets the default curve).
    pub fn learn(data_dir: &Path) -> Market {
        let mut prices: HashMap<String, Vec<i64>> = HashMap::new();
        let mut seen = HashSet::new();
        let records = crate::ledger::read_all(&data_dir.join("ledger")).unwrap_or_default();
        for r in records {
            let is_win = matches!(r.event, EventKind::Win | EventKind::Bill);
            if let (true, false, Some(clearing)) = (is_win, r.test, r.clearing)
                && clearing > 0
                && seen.insert(r.bid.clone())
            {
                prices.entry(r.exchange).or_default().push(clearing);
            }
        }
        for record in losses(&data_dir.join("losses")) {
            if let Some(price) = record.min_to_win.filter(|p| *p > 0) {
                prices.entry(record.exchange).or_default().push(price);
            }
        }
        Market::from_prices(prices)
    }

    /// A market from winning prices (CPM micros) per exchange.
    pub fn from_prices(prices: HashMap<String, Vec<i64>>) -> Market {
        let curves = prices
            .into_iter()
            .filter(|(_, p)| p.len() >= MIN_OBSERVATIONS)
            .map(|(exchange, mut prices)| {
                prices.sort_unstable();
                let mut sums = Vec::with_capacity(prices.len() + 1);
                sums.push(0i128);
                for p in &prices {
                    sums.push(sums.last().copied().unwrap_or(0) + *p as i128);
                }
                (exchange, Curve { prices, sums })
            })
            .collect();
        Market { curves }
    }

    /// How many prices `exchange`'s curve was learned from; `None`: the
    /// default curve.
    pub fn observations(&self, exchange: &str) -> Option<usize> {
        self.curves.get(exchange).map(|c| c.prices.len())
    }

    /// What a bid of `bid` (CPM, base currency) buys on `exchange`, for an
    /// impression with `floor`, at first or second price.
    pub fn win(&self, exchange: &str, bid: Micros, floor: Micros, first_price: bool) -> Win {
        if bid.0 <= 0 || bid < floor {
            return Win {
                probability: 0.0,
                price: Micros::ZERO,
            };
        }
        let (probability, second) = match self.curves.get(exchange) {
            Some(curve) => curve.at(bid),
            None => default_curve(bid, floor),
        };
        let price = if first_price { bid } else { second.max(floor).min(bid) };
        Win { probability, price }
    }
}

impl Curve {
    /// P(win) at `bid` and the mean winning price at or below it.
    fn at(&self, bid: Micros) -> (f64, Micros) {
        let below = self.prices.partition_point(|p| *p <= bid.0);
        if below == 0 {
            return (0.0, bid);
        }
        let mean = self.sums[below] / below as i128;
        (below as f64 / self.prices.len() as f64, Micros(mean as i64))
    }
}

/// The default log-logistic curve at `bid`.
fn default_curve(bid: Micros, floor: Micros) -> (f64, Micros) {
    let m = DEFAULT_MEDIAN.0.max(floor.0.saturating_mul(2)) as f64;
    let b = bid.0 as f64;
    let probability = b / (b + m);
    let mean = m * (b + m) / b * ((1.0 + b / m).ln() + m / (b + m) - 1.0);
    (probability, Micros(mean.round() as i64))
}

/// Every record of the loss log's files in `dir` (unreadable lines skipped).
fn losses(dir: &Path) -> Vec<LossRecord> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    for entry in entries.flatten() {
        let Ok(file) = std::fs::File::open(entry.path()) else {
            continue;
        };
        for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
            records.extend(serde_json::from_str::<LossRecord>(&line).ok());
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_learned_curve_is_the_share_of_winning_prices_at_or_below_the_bid() {
        let prices = (1..=100).map(|i| i * 100_000).collect(); // 0.1 to 10.0
        let market = Market::from_prices(HashMap::from([("x".to_string(), prices)]));
        assert_eq!(market.observations("x"), Some(100));
        let win = market.win("x", Micros(2_000_000), Micros::ZERO, false);
        assert_eq!(win.probability, 0.2);
        assert_eq!(win.price, Micros(1_050_000), "the mean of 0.1 … 2.0");
        assert_eq!(
            market.win("x", Micros(2_000_000), Micros::ZERO, true).price,
            Micros(2_000_000)
        );
        assert_eq!(market.win("x", Micros(50_000), Micros::ZERO, false).probability, 0.0);
    }

    #[test]
    fn the_default_curve_has_its_median_at_one_or_twice_the_floor() {
        let market = Market::default();
        assert_eq!(market.observations("x"), None);
        let at_median = market.win("x", Micros(1_000_000), Micros::ZERO, false);
        assert_eq!(at_median.probability, 0.5);
        // m (b+m)/b (ln 2 + 1/2 − 1) = 2 (0.193147) = 0.386294
        assert_eq!(at_median.price, Micros(386_294));
        let floored = market.win("x", Micros(4_000_000), Micros(2_000_000), false);
        assert_eq!(floored.probability, 0.5);
        assert_eq!(floored.price, Micros(2_000_000), "never below the floor");
        assert_eq!(
            market.win("x", Micros(1_000_000), Micros(2_000_000), true).probability,
            0.0
        );
    }
}
