//! The spend forecast: what a campaign would buy at a bid and a budget,
//! from a sample of the bid requests the bidder really received.
//!
//! - [`sample`]: the request sample, kept off the bid path at
//!   `[sampling] rate`, pseudonymised, compressed and rotated into
//!   `{data_dir}/sample/`, bounded by `[sampling] max_bytes`;
//! - [`market`]: P(win | price) per exchange, learned from the billing
//!   log's clearing prices and the loss log's minimum bids to win, or a
//!   documented default;
//! - [`replay`]: the sample replayed against one campaign through the real
//!   decode, enrich and select stages (dry), per day and as a bid
//!   landscape (`bullseye forecast`, `GET /admin/api/forecast`).

pub mod market;
pub mod replay;
pub mod sample;

use std::path::Path;

pub use market::Market;
pub use replay::{Forecast, ForecastError, Question, Rates, forecast};

/// The forecast over `data_dir`'s sample and market. One at a time per
/// process: each reads the whole sample and billing log into memory, so
/// concurrent callers (the admin API, console pages) wait their turn
/// rather than multiply that on a node that is also bidding.
pub fn forecast_in(data_dir: &Path, question: &Question) -> Result<Forecast, ForecastError> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let samples = sample::read(&data_dir.join("sample"));
    let market = Market::learn(data_dir);
    forecast(question, &samples, &market)
}
