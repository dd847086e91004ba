//! The probe app's helpers on top of the shared harness.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub use harness::*;

pub fn app_manifest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps")
        .join(name)
        .join("spin.toml")
}

pub fn host(app: &str) -> HostBuilder {
    HostBuilder::new(app_manifest(app)).binary(env!("CARGO_BIN_EXE_spin-host"))
}

/// The probe app with its required variables set and its own Redis.
pub fn probe(redis: &RedisServer) -> HostBuilder {
    host("probe")
        .env("SPIN_VARIABLE_REDIS_ADDRESS", &redis.url())
        .env("SPIN_VARIABLE_SECRET_TOKEN", "s3cret")
}
