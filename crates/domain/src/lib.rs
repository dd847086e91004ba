//! Domain types every ticketing service shares, each of which can only be built by validating
//! its input, so a handler that holds one cannot have forgotten a check.
//!
//! - [`UserId`], [`TicketId`], [`OrderId`], [`EventId`]: random UUIDs that parse only from the
//!   canonical lower-case hyphenated form, so a malformed id in a path becomes a 404.
//! - [`Email`]: trimmed and lower-cased, because account identity is case-insensitive.
//! - [`Password`]: trimmed, 6 to 255 characters, and never printed.
//! - [`Title`]: a ticket's trimmed, non-empty title.
//! - [`Price`]: integer cents, read from and written as the API's decimal number of dollars.
//! - [`Version`]: an aggregate's version, which grows by exactly one per change.
//! - [`Clock`] and the RFC 3339 timestamps with milliseconds that the API and events carry
//!   ([`rfc3339_millis`], [`parse_rfc3339_millis`]).
//!
//! Every validation failure is a [`DomainError`] whose `Display` is the user-facing message and
//! whose [`DomainError::field`] names the JSON field it came from.

mod email;
mod error;
mod ids;
mod password;
mod price;
mod time;
mod title;
mod version;

#[cfg(feature = "testing")]
pub mod testing;

pub use email::Email;
pub use error::DomainError;
pub use ids::{EventId, InvalidId, OrderId, TicketId, UserId};
pub use password::Password;
pub use price::Price;
pub use time::{Clock, InvalidTimestamp, parse_rfc3339_millis, rfc3339_millis};
pub use title::Title;
pub use version::Version;
