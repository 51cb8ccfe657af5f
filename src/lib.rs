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
//! [`signing`] URLs. "No bid" is data ([`metrics::NoBidReason`]), counted
//! in one place.
//!
//! **Tracking** — `server` → [`tracking`]: named phases over one notice
//! (verify, deduplicate, judge, price, record, apply, reply). The event is
//! durable in the [`ledger`] before it is acknowledged, and changes live
//! state only through [`live::apply()`] — the same function that restores
//! state from the ledger at start-up.
//!
//! **Control** — config files ([`config`]), advertiser overrides and the
//! audience snapshot → a new immutable [`live::World`] or
//! [`audience::Snapshot`] → `ArcSwap::store`. The bid path `load`s once per
//! request and never locks. People reach the control path through the
//! admin API ([`admin`]) or the web console ([`console`]) on the admin
//! listener; the console makes its changes through the API's functions.
//!
//! [`app::App::build`] wires everything without sockets; [`server`] binds
//! and serves. Threads: one HTTP serving thread per core, each with its own
//! listener (SO_REUSEPORT) and single-threaded runtime; the billing-log
//! writer ([`ledger`], group commit); the watcher in [`reload`]; and the
//! once-a-second [`app::App::tick`] (reservations, pacing, bid counts,
//! sweeps, retiring removed campaigns' live state).
//!
//! Live state ([`live`]: spend, pacing, counts, learned CTRs) is keyed by
//! campaign id apart from the immutable campaign index; what nodes would
//! share goes through [`live::SharedState`]. Modules are layered (lowest:
//! [`money`], [`clock`], [`openrtb`], [`metrics`]; highest: [`app`],
//! [`server`]); ARCHITECTURE.md has the table and `tests/layering.rs`
//! checks it. Money is integer micro-units ([`money::Micros`]) from config
//! to response; time comes from an injected [`clock::Clock`].

pub mod admin;
pub mod app;
pub mod audience;
pub mod bidder;
pub mod campaigns;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod console;
pub mod encrypted_price;
pub mod files;
pub mod forecast;
#[doc(hidden)]
pub mod fuzzing;
pub mod ledger;
pub mod live;
pub mod metrics;
pub mod money;
pub mod openrtb;
pub mod outcome;
pub mod pacing;
pub mod reload;
pub mod server;
pub mod settings;
pub mod signing;
pub mod tracking;
