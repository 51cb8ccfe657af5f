//! Tracking: the signed URLs a bid carries, and the events behind them.
//!
//! [`crate::signing`] decides the URL format and signs and verifies it. The win and
//! billing notices, the impression pixel and the click land on
//! `/t/{event}`; a URL whose signature does not verify answers 403.

pub mod notice;

pub use crate::signing::{BidToken, Event, Signer, TrackingError};
