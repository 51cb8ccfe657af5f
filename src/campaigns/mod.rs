//! Campaigns: the validated model, compiled targeting, and the selection index.
//!
//! - [`model`]: what an advertiser configured, typed and validated.
//! - [`native`]: native creatives' assets, whether they fill a native
//!   request, and the native response.
//! - [`targeting`]: the compiled rules and the per-request facts they test.
//! - [`experiment`]: experiments (arms, holdout, the stable assignment of
//!   users) and creative rotation.
//! - [`geo`]: great-circle distance for radius targeting.
//! - [`index`]: the [`CampaignIndex`] — every campaign compiled, with the
//!   indexes selection walks (by media type and size, by segment, by deal),
//!   built off the hot path and published whole.
//! - [`tally`]: the campaigns the index never offered, counted per bucket
//!   and derived per campaign (index-level "why not bidding").

pub mod experiment;
pub mod geo;
pub mod index;
pub mod markup;
pub mod model;
pub mod native;
pub mod player;
pub mod tally;
pub mod targeting;

pub use index::CampaignIndex;
pub use model::{Campaign, Creative, PacingMode, Pricing, Status};
