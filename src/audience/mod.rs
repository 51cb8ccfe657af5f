//! The audience: which users belong to which segments.
//!
//! - [`taxonomy`]: hierarchical segment paths (`interest/finance/funds`) and
//!   their stable 64-bit keys.
//! - [`snapshot`]: the immutable, memory-mapped snapshot file (format, writer,
//!   validating reader, lookup).
//! - [`builder`]: `bullseye segments build`, from CSV or JSON Lines.
//! - [`events`]: event-triggered segment changes in bulk (JSON Lines), into
//!   the overlay; [`journal`]: the overlay's changes, kept across restarts.
//! - [`store`]: the current snapshot behind an `ArcSwap`, swapped whole when
//!   the file is replaced, and the real-time [`overlay`] merged with it.
//! - [`suppression`]: the do-not-contact list (users never to be bid on,
//!   per advertiser or for everyone), logged durably in the data directory.

pub mod builder;
pub mod events;
pub mod input;
pub mod journal;
pub mod lookalike;
pub mod matches;
pub mod overlay;
pub mod snapshot;
pub mod store;
pub mod suppression;
pub mod taxonomy;

pub use snapshot::{Snapshot, SnapshotError, UserSegments};
pub use store::AudienceStore;
pub use taxonomy::{SegmentKey, SegmentPath};

/// Hashes a user id (buyeruid, user.id or IFA) to the key the snapshot
/// stores. xxh3 is stable across versions and platforms, unlike the
/// in-memory hashers. At 100 M users a 64-bit key collides with probability
/// ≈ n²/2⁶⁵ ≈ 3·10⁻⁴ for the whole file; a collision merges two users'
/// segments, which we accept.
pub fn user_key(user_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(user_id.as_bytes())
}
