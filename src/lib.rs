//! Bullseye: a real-time bidding DSP bidder.
pub mod audience;
pub mod bidder;
pub mod campaigns;
pub mod clock;
pub mod config;
pub mod metrics;
pub mod money;
pub mod openrtb;
pub mod pacing;
pub mod reload;
pub mod server;
pub mod tracking;
