//! The auth component: Spin glue over `auth_service`. It opens the `auth` SQLite database (users,
//! `auth_service::SqliteUsers`, and the rate limits' attempt counters,
//! `auth_service::SqliteAttempts`), reads the configuration from Spin variables, and hands each
//! request to `AuthApi`.

use anyhow::{Context, Result};
use auth_service::{AuthApi, AuthConfig, PasswordHasher, SqliteAttempts, SqliteUsers};
use spin_adapter::SpinDatabase;

spin_adapter::http_component!("auth", serve);

const DATABASE: &str = "auth";

fn serve(request: &api::Request) -> Result<api::Response> {
    let config = AuthConfig::from_variables(&spin_adapter::SpinVariables)
        .context("reading the auth configuration")?;
    let db = SpinDatabase::open(DATABASE, auth_service::MIGRATIONS)
        .context("opening the auth database")?;
    Ok(AuthApi {
        config: &config,
        users: &SqliteUsers(&db),
        attempts: &SqliteAttempts(&db),
        hasher: &PasswordHasher::production(),
        clock: &spin_adapter::WallClock,
    }
    .handle(request))
}
