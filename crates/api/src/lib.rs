//! The HTTP layer every ticketing service shares, free of `spin_sdk` so it compiles and is
//! tested natively.
//!
//! A component's glue converts Spin's request into a [`Request`], calls a handler that returns
//! `Result<Response, ApiError>`, and converts the [`Response`] back (an error through
//! [`ApiError::into_response`], the one place errors become the reference's
//! `{"errors":[{"message","field"?}]}` body). Inside a handler:
//!
//! - [`parse_json`] reads a JSON body with a size limit and a content-type check, into a loose
//!   struct of `Option<serde_json::Value>` fields;
//! - a [`Validator`] turns those fields into domain types, collecting every failure so the
//!   client sees all of them at once, as the reference's express-validator did;
//! - [`HttpClient`] is the port for calling other systems over HTTP;
//! - [`Page`] reads `?limit=&cursor=` and answers a page with a `Link: rel="next"` header;
//! - [`current_user`] / [`require_user`] read the session token from the cookie or an
//!   `Authorization: Bearer` header and verify it locally;
//! - [`Secret`] wraps configuration values that must never be printed, and [`config`] reads
//!   typed configuration from Spin variables through the [`VariableSource`] port.

mod auth;
pub mod config;
mod error;
mod http;
mod json;
mod outbound;
mod paging;
pub mod query;
mod secret;
#[cfg(feature = "testing")]
pub mod testing;
mod validation;

pub use auth::{current_user, require_user};
pub use config::{ConfigError, VariableSource};
pub use error::{ApiError, FieldError};
pub use http::{Method, Request, Response};
pub use json::{parse_json, string_or_empty};
pub use outbound::{HttpClient, OutboundRequest, OutboundResponse, TransportError};
pub use paging::Page;
pub use secret::Secret;
pub use validation::Validator;
