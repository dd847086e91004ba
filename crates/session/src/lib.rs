//! Sessions: who is signed in, proven by a token only the auth service can issue.
//!
//! The auth service holds an Ed25519 [`SigningKey`] and issues a JWT (EdDSA) with
//! [`TokenSigner`]; every other service holds only the [`VerifyingKey`] and checks tokens
//! locally with [`TokenVerifier`], never calling auth. Tokens carry `iat` and `exp`; the
//! current time is always passed in, so expiry is testable without waiting.
//!
//! The token travels in an `HttpOnly; SameSite=Lax` cookie named `session`
//! ([`session_cookie`], [`expired_session_cookie`]) or, for API clients, in an
//! `Authorization: Bearer` header; [`token_from_headers`] finds it in either.
//!
//! Keys are single-line strings so they fit in a Spin variable: the private key is the
//! standard base64 of its PKCS#8 DER (`openssl genpkey -algorithm ed25519 -outform DER |
//! base64 -w0`), the public key the standard base64 of its 32 raw bytes.

mod cookie;
mod keys;
mod token;

pub use cookie::{SESSION_COOKIE, expired_session_cookie, session_cookie, token_from_headers};
pub use keys::{KeyError, SigningKey, VerifyingKey};
pub use token::{Claims, SignError, TokenSigner, TokenVerifier};
