//! The auth component: Spin glue over `auth_service`. It opens the `auth` SQLite database (users,
//! `auth_service::SqliteUsers`, and the rate limits' attempt counters,
//! `auth_service::SqliteAttempts`), reads the configuration from Spin variables, and hands each
//! request to `AuthApi`.

use anyhow::{Context, Result};
use auth_service::{AuthApi, AuthConfig, PasswordHasher, SqliteAttempts, SqliteUsers};
use spin_adapter::SpinDatabase;

/// spin-sdk's export macro expands to `unsafe` ABI glue; this module is the one place it may.
#[allow(unsafe_code)]
mod entrypoint {
    use spin_sdk::http::{Request, Response};

    #[spin_sdk::http_component]
    fn handle(request: Request) -> Response {
        super::handle(&request)
    }
}

const DATABASE: &str = "auth";

fn handle(request: &spin_sdk::http::Request) -> spin_sdk::http::Response {
    spin_adapter::handle_http("auth", request, serve)
}

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
