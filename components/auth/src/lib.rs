//! The auth component: Spin glue over `auth_service`. It opens the `auth` SQLite database (users,
//! `auth_service::SqliteUsers`) and the `auth` key-value store (sign-in attempt counters), reads
//! the configuration from Spin variables, and hands each request to `AuthService`.

use anyhow::{Context, Result};
use auth_service::{
    AuthConfig, AuthService, CounterStorage, PasswordHasher, SqliteUsers, WindowCounter,
};
use spin_adapter::SpinDatabase;
use spin_sdk::key_value::Store;

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
const ATTEMPTS_STORE: &str = "auth";

fn handle(request: &spin_sdk::http::Request) -> spin_sdk::http::Response {
    spin_adapter::handle_http("auth", request, serve)
}

fn serve(request: &api::Request) -> Result<api::Response> {
    let config = AuthConfig::from_variables(&spin_adapter::SpinVariables)
        .context("reading the auth configuration")?;
    let db = SpinDatabase::open(DATABASE, auth_service::MIGRATIONS)
        .context("opening the auth database")?;
    let store = Store::open(ATTEMPTS_STORE).context("opening the auth key-value store")?;
    Ok(AuthService {
        config: &config,
        users: &SqliteUsers(&db),
        attempts: &WindowCounter::new(KeyValueCounters(store)),
        hasher: &PasswordHasher::production(),
        clock: &spin_adapter::WallClock,
    }
    .handle(request))
}

/// Spin's key-value store as the counters' storage.
struct KeyValueCounters(Store);

impl CounterStorage for KeyValueCounters {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.0.get(key).context("reading a sign-in attempt counter")
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.0
            .set(key, value)
            .context("writing a sign-in attempt counter")
    }
}
