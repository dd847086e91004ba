//! The wasmtime-free half of a Spin-compatible host: everything that can be decided by
//! reading `spin.toml`, the runtime-config file and the process environment.
//!
//! - [`manifest`] loads and validates a `spin_manifest_version = 2` manifest into an [`App`],
//!   rejecting the same mistakes Spin rejects (unknown keys, bad IDs, bad variable names,
//!   dangling references), and resolves each component's `files` mounts.
//! - [`runtime_config`] reads `--runtime-config-file` (key-value stores and SQLite databases)
//!   and checks that every label a component declares is defined.
//! - [`variables`] holds `{{ var }}` templates, Spin's two layers of variable-name rules, and the
//!   provider chain (CLI > `SPIN_VARIABLE_*` env > `.env` > manifest default).
//! - [`allowed_hosts`] parses `allowed_outbound_hosts` entries and answers "may this component
//!   connect there?", including `self` requests and `*.spin.internal` service chaining.
//! - [`routing`] is the HTTP router: routefinder's precedence, Spin's slash handling, duplicate
//!   detection, and the `spin-*` request headers a matched route produces.
//!
//! A host loads an [`App`], then a [`runtime_config::RuntimeConfig`] and a
//! [`variables::Resolver`], runs their start-up checks, builds a [`routing::Router`] from
//! [`App::http_triggers`], and consults these types on every request.

pub mod allowed_hosts;
mod ids;
pub mod manifest;
pub mod routing;
pub mod runtime_config;
pub mod variables;

pub use manifest::{
    App, AppVariable, BuildConfig, Component, FileMount, HttpTrigger, LoadError, RedisTrigger,
    RouteSpec, StaticResponse,
};
