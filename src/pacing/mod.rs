//! Budgets and frequency: the live, mutable side of a campaign.
//!
//! Everything here is atomics or a lock-free map: the bid path reads and
//! updates it without locks. State lives across config reloads (keyed by
//! campaign id), unlike the immutable campaign world.
//!
//! - [`budget`]: today's spend against the daily budget, reset at midnight
//!   in the campaign's time zone.
//! - [`frequency`]: impressions per user per campaign per hour and day.
//! - [`cost`]: what a bid reserves and what a billed event charges.
//! - [`pacer`]: even pacing, a throttle steered by spend against the
//!   traffic curve.

pub mod budget;
pub mod cost;
pub mod frequency;
pub mod pacer;
pub mod shading;

pub use budget::DailySpend;
pub use frequency::FrequencyStore;
pub use pacer::Pacer;
