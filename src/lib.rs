//! Bullseye: a real-time bidding DSP bidder.
//!
//! A request travels one of three ways through this crate.
//!
//! **Bid** — `server` (hyper) → [`bidder`]: `decode` → `enrich` → `select`
//! → `price` → `encode`. Decoding borrows from the body ([`openrtb`]);
//! enrichment applies privacy, recognises the user and looks their segments
//! up in the [`audience`] snapshot; selection walks the [`campaigns`] index
//! best value first, checking targeting, [`pacing`] (budget, frequency) and
//! the floor; pricing shades first-price bids; encoding signs the
//! [`tracking`] URLs. "No bid" is data ([`metrics::NoBidReason`]), counted
//! in one place.
//!
//! **Tracking** — `server` → [`tracking`]: verify the signed URL (403 when
//! forged), then the event: the impression pixel feeds frequency caps, the
//! click redirects with UTM parameters, notices check the clearing price.
//!
//! **Control** — config files ([`config`]) and the audience snapshot file →
//! a new immutable [`campaigns::World`] or [`audience::Snapshot`] →
//! `ArcSwap::store`. The bid path `load`s once per request and never locks.
//!
//! Threads: one HTTP serving thread per core, each with its own listener
//! (SO_REUSEPORT) and single-threaded runtime (`server`); the billing-log
//! writer ([`ledger`], group commit); the watcher in [`reload`] (config and
//! snapshot files, loaded at a lower priority); and a sweeper task (expired
//! reservations, pacing, bid-count flushes, old frequency windows).
//!
//! Lower layers ([`money`], [`openrtb`], [`audience`], [`campaigns`],
//! [`pacing`], [`tracking`]) never import upper ones ([`bidder`],
//! [`server`], [`reload`]). Money is integer micro-units ([`money::Micros`])
//! from config to response; time comes from an injected [`clock::Clock`].

pub mod admin;
pub mod app;
pub mod audience;
pub mod bidder;
pub mod campaigns;
pub mod clock;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod ledger;
pub mod live;
pub mod metrics;
pub mod money;
pub mod openrtb;
pub mod pacing;
pub mod reload;
pub mod server;
pub mod settings;
pub mod signing;
pub mod tracking;
