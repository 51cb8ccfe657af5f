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

/// The forecast over `data_dir`'s sample and market.
pub fn forecast_in(data_dir: &Path, question: &Question) -> Result<Forecast, ForecastError> {
    let samples = sample::read(&data_dir.join("sample"));
    let market = Market::learn(data_dir);
    forecast(question, &samples, &market)
}
