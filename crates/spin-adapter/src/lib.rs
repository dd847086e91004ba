//! The one place the shared crates meet `spin_sdk`: the components' entry points
//! ([`http_component!`], [`redis_component!`]), converting Spin's HTTP request and response to and
//! from the spin-free [`api`] types, the [`storage::Database`] and [`delivery::Redis`] ports over
//! Spin's SQLite and outbound Redis, a consumer's [`delivery::Platform`], Spin variables, and the
//! wall clock. Service logic stays in plain Rust behind ports; a component's glue uses this crate
//! to wire it up.

use api::{Method, Request, Response};
pub use log_line;
use spin_sdk::http::Method as SpinMethod;

/// Exports an HTTP component whose requests go through [`answer_http`] as `component`, to the
/// `serve` function of the calling module (`fn(&api::Request) -> anyhow::Result<R>`, where `R`
/// is an [`api::Response`] or a [`Served`]): `spin_adapter::http_component!("tickets", serve);`.
/// spin-sdk's export macro expands to `unsafe` ABI glue; the module this makes is the one place
/// it may.
#[macro_export]
macro_rules! http_component {
    ($component:literal, $serve:ident) => {
        #[allow(unsafe_code)]
        mod entrypoint {
            #[spin_sdk::http_component]
            async fn handle(
                request: spin_sdk::http::IncomingRequest,
                out: spin_sdk::http::ResponseOutparam,
            ) {
                $crate::answer_http($component, request, out, super::$serve).await
            }
        }
    };
}

/// Exports a Redis-triggered component whose every message goes to the `on_message` function
/// of the calling module (`fn(&[u8]) -> anyhow::Result<()>`):
/// `spin_adapter::redis_component!(on_message);`. The export's `unsafe` ABI glue stays in the
/// module this makes.
#[macro_export]
macro_rules! redis_component {
    ($on_message:ident) => {
        #[allow(unsafe_code)]
        mod entrypoint {
            #[spin_sdk::redis_component]
            fn on_message(payload: Vec<u8>) -> anyhow::Result<()> {
                super::$on_message(&payload)
            }
        }
    };
}

/// Copies a Spin request into the service-facing [`Request`] (header names lower-cased).
fn request_from_spin(request: &spin_sdk::http::Request) -> Request {
    let method = match request.method() {
        SpinMethod::Get => Method::Get,
        SpinMethod::Post => Method::Post,
        SpinMethod::Put => Method::Put,
        SpinMethod::Delete => Method::Delete,
        SpinMethod::Head => Method::Head,
        SpinMethod::Options => Method::Options,
        SpinMethod::Patch => Method::Patch,
        other => Method::parse(&format!("{other:?}").to_ascii_uppercase()),
    };
    let headers = request
        .headers()
        .filter_map(|(name, value)| Some((name.to_ascii_lowercase(), value.as_str()?.to_owned())))
        .collect();
    Request {
        method,
        path: request.path().to_owned(),
        query: request.query().to_owned(),
        headers,
        body: request.body().to_vec(),
    }
}

fn response_to_spin(response: Response) -> spin_sdk::http::Response {
    let mut builder = spin_sdk::http::Response::builder();
    builder.status(response.status);
    for (name, value) in response.headers {
        builder.header(name, value);
    }
    builder.body(response.body).build()
}

/// What an HTTP component's `serve` answers: the response, and work to do once it has been
/// sent (the rest of a relay, [`relay_enqueued`]), which the client then does not wait for.
pub struct Served {
    response: Response,
    then: Option<Box<dyn FnOnce()>>,
}

impl From<Response> for Served {
    fn from(response: Response) -> Self {
        Self {
            response,
            then: None,
        }
    }
}

/// An HTTP component's whole request path: converts Spin's request, calls `serve` under the
/// request's id ([`log_line`]), answers a failure to even set up (configuration, opening a
/// store) with the opaque 500 in the error format (its cause logged), echoes the request id in
/// `x-request-id`, writes the request's log line, and sends the response; then does what `serve`
/// left for after it, under the same request id. Spin sends a response as soon as its body is
/// finished, while the instance runs on.
pub async fn answer_http<S: Into<Served>>(
    component: &'static str,
    incoming: spin_sdk::http::IncomingRequest,
    out: spin_sdk::http::ResponseOutparam,
    serve: impl FnOnce(&Request) -> anyhow::Result<S>,
) {
    use spin_sdk::http::conversions::TryFromIncomingRequest;
    let started = std::time::Instant::now();
    log_line::set_component(component);
    let request = match spin_sdk::http::Request::try_from_incoming_request(incoming).await {
        Ok(request) => request_from_spin(&request),
        Err(error) => {
            send(out, spin_sdk::http::IntoResponse::into_response(error)).await;
            return;
        }
    };
    let request_id = log_line::request_id_from(|name| request.header(name));
    let served = log_line::with_request_id(Some(request_id.clone()), || {
        let served = serve(&request)
            .map(Into::into)
            .unwrap_or_else(|error| api::ApiError::Internal(error).into_response().into());
        log_line::request(
            request.method.as_str(),
            &request.path,
            request.header("spin-matched-route"),
            served.response.status,
            started,
        );
        served
    });
    let response = served.response.with_header("x-request-id", &request_id);
    send(out, response_to_spin(response)).await;
    if let Some(then) = served.then {
        log_line::with_request_id(Some(request_id), then);
    }
}

/// Sets the response and writes its whole body, which ends it for the client.
async fn send(out: spin_sdk::http::ResponseOutparam, mut response: spin_sdk::http::Response) {
    let body = std::mem::take(response.body_mut());
    match spin_sdk::http::OutgoingResponse::try_from(response) {
        Ok(outgoing) => {
            if let Err(error) = out.set_with_body(outgoing, body).await {
                eprintln!("could not send the response: {error}");
            }
        }
        Err(error) => eprintln!("could not convert the response: {error}"),
    }
}

/// `GET /api/heartbeat`, which probes call every few seconds: re-arms the housekeeping tick. A
/// Redis that restarted without its data has lost the tick key, and nothing else re-arms it
/// until something is written; with it, an app with no traffic still relays its outboxes and
/// expires its orders. Always 200, since the site serves without Redis; the body says whether
/// Redis answered.
pub fn heartbeat() -> Response {
    let armed = redis()
        .map_err(delivery::DeliveryError::from)
        .and_then(|redis| delivery::arm_tick(&redis, housekeeping_interval_secs()));
    let redis = match armed {
        Ok(()) => "ok",
        Err(error) => {
            log_line::Line::new(log_line::Level::Warn, "delivery")
                .field("outcome", "unarmed")
                .field(
                    "reason",
                    "the heartbeat could not arm the housekeeping tick",
                )
                .field("error", error.to_string())
                .emit();
            "unavailable"
        }
    };
    let body = format!(r#"{{"status":"ok","redis":"{redis}"}}"#);
    Response {
        status: 200,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("cache-control".to_owned(), "no-store".to_owned()),
        ],
        body: body.into_bytes(),
    }
}

/// After a request's handler: appends what it enqueued ([`delivery::has_enqueued`]) to the
/// streams before `response` goes out, so that whoever the client asks next (payments, catching
/// up on the order just placed) finds the events there, and leaves the rest of the relay for
/// after the response: publishing the wake-ups, marking the rows sent (a write transaction the
/// client need not wait for), relaying rows others left, and re-arming the housekeeping tick.
/// Nothing after a request that enqueued nothing. A Redis failure is only logged, since the rows
/// stay in the outbox for the next relay or tick.
pub fn relay_enqueued(response: Response, db: SpinDatabase) -> Served {
    if !delivery::has_enqueued() {
        return response.into();
    }
    let now_ms = now_unix_ms();
    let appended = redis()
        .map_err(delivery::DeliveryError::from)
        .and_then(|redis| {
            Ok((
                delivery::append(&db, &redis, now_ms, delivery::RELAY_BATCH)?,
                redis,
            ))
        });
    let (appended, redis) = match appended {
        Ok(appended) => appended,
        Err(error) => {
            warn_kept(&error);
            // Rows born leased to this request would wait out the lease once Redis is back.
            return Served {
                response,
                then: Some(Box::new(move || {
                    if let Err(error) = delivery::release_enqueued(&db) {
                        warn_kept(&error);
                    }
                })),
            };
        }
    };
    Served {
        response,
        then: Some(Box::new(move || {
            let finished = appended.finish(&db, &redis, now_ms).and_then(|_| {
                delivery::relay_and_arm(&db, &redis, now_unix_ms(), housekeeping_interval_secs())
            });
            if let Err(error) = finished {
                warn_kept(&error);
            }
        })),
    }
}

fn warn_kept(error: &delivery::DeliveryError) {
    log_line::Line::new(log_line::Level::Warn, "delivery")
        .field("outcome", "kept")
        .field(
            "reason",
            "events stay in the outbox until Redis is reachable",
        )
        .field("error", error.to_string())
        .emit();
}

/// Spin's outbound HTTP (`wasi:http/outgoing-handler`) as the services' [`api::HttpClient`]. The
/// host checks every request against the component's `allowed_outbound_hosts`.
pub struct SpinHttp;

impl api::HttpClient for SpinHttp {
    fn send(
        &self,
        request: api::OutboundRequest,
    ) -> Result<api::OutboundResponse, api::TransportError> {
        let method = match &request.method {
            Method::Get => SpinMethod::Get,
            Method::Post => SpinMethod::Post,
            Method::Put => SpinMethod::Put,
            Method::Delete => SpinMethod::Delete,
            Method::Head => SpinMethod::Head,
            Method::Options => SpinMethod::Options,
            Method::Patch => SpinMethod::Patch,
            Method::Other(name) => SpinMethod::Other(name.clone()),
        };
        let mut builder = spin_sdk::http::Request::builder();
        builder.method(method).uri(&request.url);
        for (name, value) in &request.headers {
            builder.header(name.as_str(), value.as_str());
        }
        let outgoing = builder.body(request.body).build();
        let response: spin_sdk::http::Response =
            spin_sdk::http::run(spin_sdk::http::send(outgoing)).map_err(|error| {
                api::TransportError(format!(
                    "{} {}: {error}",
                    request.method.as_str(),
                    request.url
                ))
            })?;
        Ok(api::OutboundResponse {
            status: *response.status(),
            body: response.into_body(),
        })
    }
}

/// A Spin variable of this component, or `None` when it is not set.
fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok()
}

/// The component's Spin variables as the services' configuration source.
pub struct SpinVariables;

impl api::VariableSource for SpinVariables {
    fn get(&self, name: &str) -> Option<String> {
        variable(name)
    }
}

/// The host's wall clock as the services' [`domain::Clock`].
pub struct WallClock;

impl domain::Clock for WallClock {
    fn now_ms(&self) -> u64 {
        now_unix_ms()
    }
}

/// Milliseconds since the Unix epoch from the host's wall clock.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A `spin:sqlite/sqlite@3.0.0` connection as the [`storage::Database`] port. One connection
/// per instance, so `BEGIN IMMEDIATE … COMMIT` across calls is one transaction.
pub struct SpinDatabase(spin_sdk::sqlite3::Connection);

impl SpinDatabase {
    /// Opens the database and brings its schema up to date with the service's `migrations`
    /// (one cheap read when it already is; see [`storage::migrate`]), so a new database, local
    /// or libSQL, needs no setup step.
    pub fn open(
        label: &str,
        migrations: &[storage::Migration],
    ) -> Result<Self, storage::StorageError> {
        let db = spin_sdk::sqlite3::Connection::open(label)
            .map(Self)
            .map_err(|error| {
                storage::StorageError::Sql(format!("opening database {label}: {error:?}"))
            })?;
        storage::migrate(&db, migrations).map_err(|error| {
            storage::StorageError::Sql(format!("migrating database {label}: {error}"))
        })?;
        Ok(db)
    }
}

impl storage::Database for SpinDatabase {
    fn execute(
        &self,
        sql: &str,
        params: &[storage::SqlValue],
    ) -> Result<storage::Rows, storage::StorageError> {
        use spin_sdk::sqlite3::Value;
        let params: Vec<Value> = params
            .iter()
            .map(|value| match value {
                storage::SqlValue::Integer(v) => Value::Integer(*v),
                storage::SqlValue::Real(v) => Value::Real(*v),
                storage::SqlValue::Text(v) => Value::Text(v.clone()),
                storage::SqlValue::Blob(v) => Value::Blob(v.clone()),
                storage::SqlValue::Null => Value::Null,
            })
            .collect();
        let result = self.0.execute(sql, &params).map_err(|error| match error {
            spin_sdk::sqlite3::Error::Io(message) => storage::StorageError::Sql(message),
            other => storage::StorageError::Sql(format!("{other:?}")),
        })?;
        let rows = result
            .rows
            .into_iter()
            .map(|row| {
                row.values
                    .into_iter()
                    .map(|value| match value {
                        Value::Integer(v) => storage::SqlValue::Integer(v),
                        Value::Real(v) => storage::SqlValue::Real(v),
                        Value::Text(v) => storage::SqlValue::Text(v),
                        Value::Blob(v) => storage::SqlValue::Blob(v),
                        Value::Null => storage::SqlValue::Null,
                    })
                    .collect()
            })
            .collect();
        Ok(storage::Rows {
            columns: result.columns,
            rows,
        })
    }
}

/// A `fermyon:spin/redis@2.0.0` connection as the [`delivery::Redis`] port; replies arrive
/// flattened exactly as `delivery` expects.
pub struct SpinRedis(spin_sdk::redis::Connection);

impl SpinRedis {
    pub fn open(address: &str) -> Result<Self, delivery::RedisError> {
        spin_sdk::redis::Connection::open(address)
            .map(Self)
            .map_err(|error| delivery::RedisError(format!("connecting to Redis: {error:?}")))
    }
}

impl delivery::Redis for SpinRedis {
    fn execute(
        &self,
        command: &str,
        args: &[delivery::RedisArg],
    ) -> Result<Vec<delivery::RedisValue>, delivery::RedisError> {
        use spin_sdk::redis::{RedisParameter, RedisResult};
        let args: Vec<RedisParameter> = args
            .iter()
            .map(|arg| match arg {
                delivery::RedisArg::Int(v) => RedisParameter::Int64(*v),
                delivery::RedisArg::Bytes(v) => RedisParameter::Binary(v.clone()),
            })
            .collect();
        let reply = self
            .0
            .execute(command, &args)
            .map_err(|error| delivery::RedisError(format!("{command}: {error:?}")))?;
        Ok(reply
            .into_iter()
            .map(|value| match value {
                RedisResult::Nil => delivery::RedisValue::Nil,
                RedisResult::Status(v) => delivery::RedisValue::Status(v),
                RedisResult::Int64(v) => delivery::RedisValue::Int(v),
                RedisResult::Binary(v) => delivery::RedisValue::Bytes(v),
            })
            .collect())
    }

    fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), delivery::RedisError> {
        self.0
            .publish(channel, payload)
            .map_err(|error| delivery::RedisError(format!("PUBLISH {channel}: {error:?}")))
    }
}

/// How often the housekeeping tick fires, from the `housekeeping_interval_seconds` variable.
const DEFAULT_HOUSEKEEPING_SECS: u64 = 5;

fn numeric_variable(name: &str, default: u64) -> u64 {
    variable(name)
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(default)
}

/// The component's Redis, at its `redis_address` variable.
pub fn redis() -> Result<SpinRedis, delivery::RedisError> {
    let address = variable("redis_address")
        .ok_or_else(|| delivery::RedisError("the redis_address variable is not set".into()))?;
    SpinRedis::open(&address)
}

/// Consumer settings from the `event_*` variables, with the delivery crate's defaults.
pub fn consumer_settings() -> delivery::ConsumerSettings {
    let defaults = delivery::ConsumerSettings::default();
    delivery::ConsumerSettings {
        batch: defaults.batch,
        retry_idle_ms: numeric_variable("event_retry_idle_ms", defaults.retry_idle_ms),
        max_deliveries: numeric_variable("event_max_deliveries", defaults.max_deliveries),
        dead_letter_after_ms: numeric_variable(
            "event_dead_letter_after_ms",
            defaults.dead_letter_after_ms,
        ),
    }
}

/// One wake-up of a service's Redis-triggered component: `subscription` handles the message
/// ([`delivery::Subscription::wake_up`]) on the component's database, opened at `database` with
/// its `migrations` only when there is work, and its Redis.
pub fn consume(
    component: &'static str,
    subscription: &delivery::Subscription<'_>,
    migrations: &'static [storage::Migration],
    payload: &[u8],
) -> anyhow::Result<delivery::ConsumeReport> {
    log_line::set_component(component);
    let platform = SpinPlatform {
        database: subscription.database.to_owned(),
        migrations,
    };
    subscription.wake_up(&platform, payload)
}

/// Applies what is new on `stream` for `subscription` from within a request
/// ([`delivery::Subscription::catch_up`]), on connections of its own.
pub fn catch_up(
    subscription: &delivery::Subscription<'_>,
    migrations: &'static [storage::Migration],
    stream: &str,
) -> anyhow::Result<delivery::ConsumeReport> {
    let platform = SpinPlatform {
        database: subscription.database.to_owned(),
        migrations,
    };
    subscription.catch_up(&platform, stream)
}

/// Spin's connections, clock and variables as a wake-up's [`delivery::Platform`].
struct SpinPlatform {
    database: String,
    migrations: &'static [storage::Migration],
}

impl delivery::Platform for SpinPlatform {
    fn database(&self) -> anyhow::Result<Box<dyn storage::Database>> {
        let db = SpinDatabase::open(&self.database, self.migrations)
            .map_err(|error| anyhow::anyhow!("opening the {} database: {error}", self.database))?;
        Ok(Box::new(db))
    }

    fn redis(&self) -> Result<Box<dyn delivery::Redis>, delivery::RedisError> {
        Ok(Box::new(redis()?))
    }

    fn now_ms(&self) -> u64 {
        now_unix_ms()
    }

    fn consumer_settings(&self) -> delivery::ConsumerSettings {
        consumer_settings()
    }

    fn tick_secs(&self) -> u64 {
        housekeeping_interval_secs()
    }
}

/// How often the housekeeping tick fires: the `housekeeping_interval_seconds` variable.
pub fn housekeeping_interval_secs() -> u64 {
    numeric_variable("housekeeping_interval_seconds", DEFAULT_HOUSEKEEPING_SECS)
}
