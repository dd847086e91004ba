//! Helpers for the end-to-end tests in `tests/`: the whole app from the repository's
//! `spin.toml`, its migrations applied, on the workspace's `spin-host`, against a Redis the test
//! starts. Keys here are test-only.

use std::path::PathBuf;

pub use harness::*;

/// A test-only Ed25519 key pair (base64 PKCS#8 DER and base64 raw public key).
pub const TEST_PRIVATE_KEY: &str =
    "MC4CAQAwBQYDK2VwBCIEIDSh5B0d0iKKxPdxLZmnLwJ17Y74sSfYxhTW8wv2MCA9";
pub const TEST_PUBLIC_KEY: &str = "5L6IQVMOfmB9I98v6X+m0kogQUCikNR1hAYN+WmCUWE=";

pub fn repository_root() -> PathBuf {
    workspace_root()
}

/// The app with test keys, plain-HTTP cookies and every migration; add settings, then `start()`.
pub fn app(redis: &RedisServer) -> HostBuilder {
    let root = repository_root();
    let mut builder = HostBuilder::new(root.join("spin.toml"))
        .env("SPIN_VARIABLE_REDIS_ADDRESS", &redis.url())
        .env("SPIN_VARIABLE_JWT_PRIVATE_KEY", TEST_PRIVATE_KEY)
        .env("SPIN_VARIABLE_JWT_PUBLIC_KEY", TEST_PUBLIC_KEY)
        .env("SPIN_VARIABLE_PLAIN_HTTP", "true");
    let mut migrations: Vec<PathBuf> = std::fs::read_dir(root.join("migrations"))
        .expect("migrations/")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    migrations.sort();
    for migration in migrations {
        let database = migration
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 file name")
            .to_owned();
        builder = builder
            .arg("--sqlite")
            .arg(&format!("@{}:{database}", migration.display()));
    }
    builder
}
