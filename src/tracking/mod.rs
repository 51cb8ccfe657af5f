//! Tracking: the signed URLs a bid carries, and the events behind them.
//!
//! [`crate::signing`] decides the URL format and signs and verifies it. The win and
//! billing notices, the impression pixel and the click land on
//! `/t/{event}`, and so does the loss notice ([`loss`]) for exchanges that
//! send them; a URL whose signature does not verify answers 403.
//! Conversion postbacks come per click ([`notice`]) or per user
//! ([`user_conversion`]: view-through and experiment holdouts).
//! [`attribution`] keeps the clicks and views conversions are credited
//! by, within each campaign's windows. [`contacts`] restores advertisers' weekly contact counts at start-up.

pub mod attribution;
pub mod contacts;
pub mod loss;
pub mod notice;
pub mod user_conversion;

pub use crate::signing::{BidToken, Event, Signer, TrackingError};
