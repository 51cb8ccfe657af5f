//! OpenRTB 2.5 / 2.6 types, tolerant by construction.
//!
//! Only the fields the bidder reads are decoded; everything else is skipped
//! without allocation. Enumerations are open integers (a value newer than the
//! spec is kept, never rejected), optional fields are `Option`, strings borrow
//! from the request body when they contain no escapes ([`Text`]), and 0/1
//! flags accept numbers, booleans and strings ([`Flag`]). The 2.5 `ext`
//! placements of privacy signals are read alongside their 2.6 fields.

mod loss;
mod request;
mod response;
mod text;

pub use loss::LossReason;
pub use request::*;
pub use response::*;
pub use text::{Flag, Floor, Text};
