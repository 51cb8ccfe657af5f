//! OpenRTB 2.5 / 2.6 types, tolerant by construction.
//!
//! Only the fields the bidder reads are decoded; everything else is skipped
//! without allocation. Enumerations are open integers (a value newer than the
//! spec is kept, never rejected), optional fields are `Option`, strings borrow
//! from the request body when they contain no escapes ([`Text`]), and 0/1
//! flags accept numbers, booleans and strings ([`Flag`]). The 2.5 `ext`
//! placements of privacy signals are read alongside their 2.6 fields. The
//! native request inside `imp.native` is read once, while decoding
//! ([`native`]). A known field of the wrong type fails the typed decoding,
//! and [`repair`] makes the request readable (coerced, restricted or
//! dropped field by field) for a second attempt.

pub mod cattax;
mod loss;
pub mod native;
pub mod repair;
mod request;
mod response;
mod text;

pub use loss::LossReason;
pub use native::NativeRequest;
pub use request::*;
pub use response::*;
pub use text::{Flag, Floor, Text};
