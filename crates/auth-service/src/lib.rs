//! The auth service: sign-up, sign-in, sign-out and "who am I", as plain Rust behind ports.
//!
//! The Spin component is thin glue: it loads an [`AuthConfig`] from Spin variables once (through
//! a [`VariableSource`]), opens the `auth` database as a [`storage::Database`] (the users table is
//! [`SqliteUsers`] and the attempt counters [`SqliteAttempts`], here), converts Spin's request
//! into an [`api::Request`] and calls [`AuthApi::handle`], which never fails: every error is
//! already a response in the reference's `{"errors":[...]}` format.
//!
//! - `config`: the typed, validated configuration and its [`ConfigError`].
//! - `ports`: what the service needs from the outside world ([`UserStore`], [`AttemptCounter`],
//!   [`Clock`]).
//! - `store`: [`SqliteUsers`] and [`SqliteAttempts`], the SQL of the users and the attempt
//!   counters (`migrations/auth/`, [`MIGRATIONS`]).
//! - `password`: Argon2id hashing, with a dummy verification so that an unknown email costs the
//!   same as a wrong password.
//! - `api`: the route table and one handler per route.
//!
//! A sign-in flows as: route → JSON body → validation (every field error at once) → rate limit
//! per email and per client address (the peer, or the address a trusted proxy forwarded for) →
//! user lookup → password check → signed token in the
//! `session` cookie. Passwords, hashes and tokens are never logged.

mod api;
mod config;
mod password;
mod ports;
mod store;

pub use api::AuthApi;
pub use config::{AuthConfig, ConfigError, RateLimit, VariableSource};
pub use domain::Clock;
pub use password::PasswordHasher;
pub use ports::{AttemptCounter, Attempts, InsertUserError, NewUser, StoredUser, UserStore};
pub use store::{SqliteAttempts, SqliteUsers};

/// The auth database's migrations, in order (`migrations/auth/`), applied on first use.
pub const MIGRATIONS: &[storage::Migration] = storage::migrations!("auth":
    1 "initial" => "0001_initial.sql",
    2 "attempt windows" => "0002_attempt_windows.sql",
);
