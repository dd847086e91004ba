//! The auth component: Spin glue over `auth_service`. It adapts the service's ports to Spin:
//! users in the `auth` SQLite database (schema in `migrations/auth.sql`, where a UNIQUE index on
//! the lower-cased email makes concurrent sign-ups of one address yield exactly one account),
//! sign-in attempt counters in the `auth` key-value store, configuration from Spin variables.

use anyhow::{Context, Result};
use auth_service::{
    AuthConfig, AuthService, Clock, CounterStorage, InsertUserError, NewUser, PasswordHasher,
    StoredUser, UserStore, WindowCounter,
};
use spin_sdk::key_value::Store;
use spin_sdk::sqlite3::{self, Connection, Value};

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
    let request = spin_adapter::request_from_spin(request);
    let response = match Wiring::connect() {
        Ok(wiring) => wiring.service().handle(&request),
        Err(error) => api::ApiError::Internal(error).into_response(),
    };
    spin_adapter::response_to_spin(response)
}

/// The service's ports, opened once per request (each request is a fresh instance anyway).
struct Wiring {
    config: AuthConfig,
    users: SqliteUsers,
    attempts: WindowCounter<KeyValueCounters>,
    hasher: PasswordHasher,
}

impl Wiring {
    fn connect() -> Result<Self> {
        let config = AuthConfig::from_variables(&spin_adapter::SpinVariables)
            .context("reading the auth configuration")?;
        let users = SqliteUsers(Connection::open(DATABASE).context("opening the auth database")?);
        let store = Store::open(ATTEMPTS_STORE).context("opening the auth key-value store")?;
        Ok(Self {
            config,
            users,
            attempts: WindowCounter::new(KeyValueCounters(store)),
            hasher: PasswordHasher::production(),
        })
    }

    fn service(&self) -> AuthService<'_> {
        AuthService {
            config: &self.config,
            users: &self.users,
            attempts: &self.attempts,
            hasher: &self.hasher,
            clock: &WallClock,
        }
    }
}

struct WallClock;

impl Clock for WallClock {
    fn now_unix_secs(&self) -> u64 {
        spin_adapter::now_unix_secs()
    }
}

struct SqliteUsers(Connection);

impl UserStore for SqliteUsers {
    fn find_by_email(&self, email: &domain::Email) -> Result<Option<StoredUser>> {
        let result = self
            .0
            .execute(
                "SELECT id, email, password_hash FROM users WHERE email = ?",
                &[Value::Text(email.as_str().to_owned())],
            )
            .context("looking up a user by email")?;
        let Some(row) = result.rows().next() else {
            return Ok(None);
        };
        let text = |column: &str| {
            row.get::<&str>(column)
                .map(str::to_owned)
                .with_context(|| format!("users.{column} is not text"))
        };
        Ok(Some(StoredUser {
            id: text("id")?,
            email: text("email")?,
            password_hash: text("password_hash")?,
        }))
    }

    fn insert(&self, user: &NewUser) -> Result<(), InsertUserError> {
        let created_at =
            i64::try_from(user.created_at).map_err(|e| InsertUserError::Other(e.into()))?;
        let outcome = self.0.execute(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
            &[
                Value::Text(user.id.to_string()),
                Value::Text(user.email.as_str().to_owned()),
                Value::Text(user.password_hash.clone()),
                Value::Integer(created_at),
            ],
        );
        match outcome {
            Ok(_) => Ok(()),
            Err(sqlite3::Error::Io(message))
                if message.contains("UNIQUE constraint failed: users.email") =>
            {
                Err(InsertUserError::EmailTaken)
            }
            Err(error) => Err(InsertUserError::Other(
                anyhow::Error::new(error).context("inserting a user"),
            )),
        }
    }
}

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
