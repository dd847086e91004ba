//! The one place the shared crates meet `spin_sdk`: converting Spin's HTTP request and response
//! to and from the spin-free [`api`] types, the [`storage::Database`] and [`delivery::Redis`]
//! ports over Spin's SQLite and outbound Redis, reading Spin variables, and the wall clock.
//! Service logic stays in plain Rust behind ports; a component's glue uses this crate to wire
//! it up.

use api::{Method, Request, Response};
pub use log_line;
use spin_sdk::http::Method as SpinMethod;

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

/// An HTTP component's whole request path: converts Spin's request, calls `serve` under the
/// request's id ([`log_line`]), answers a failure to even set up (configuration, opening a
/// store) with the opaque 500 in the error format (its cause logged), echoes the request id in
/// `x-request-id`, writes the request's log line, and converts the response back.
pub fn handle_http(
    component: &'static str,
    request: &spin_sdk::http::Request,
    serve: impl FnOnce(&Request) -> anyhow::Result<Response>,
) -> spin_sdk::http::Response {
    let started = std::time::Instant::now();
    log_line::set_component(component);
    let request = request_from_spin(request);
    let request_id = log_line::request_id_from(|name| request.header(name));
    let response = log_line::with_request_id(Some(request_id.clone()), || {
        let response =
            serve(&request).unwrap_or_else(|error| api::ApiError::Internal(error).into_response());
        log_line::request(
            request.method.as_str(),
            &request.path,
            request.header("spin-matched-route"),
            response.status,
            started,
        );
        response
    });
    response_to_spin(response.with_header("x-request-id", &request_id))
}

/// `GET /api/heartbeat`, which probes call every few seconds: re-arms the housekeeping tick. A
/// Redis that restarted without its data has lost the tick key, and nothing else re-arms it
/// until something is written; with it, an app with no traffic still relays its outboxes and
/// expires its orders. Always 200, since the site serves without Redis; the body says whether
/// Redis answered.
pub fn heartbeat() -> Response {
    let armed = redis()
        .map_err(delivery::DeliveryError::from)
        .and_then(|redis| arm_tick(&redis));
    let redis = match armed {
        Ok(()) => "ok",
        Err(error) => {
            eprintln!("WARN heartbeat: the housekeeping tick could not be armed: {error}");
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

/// After a request that may have written, relays what the outbox holds: a successful request
/// other than `GET` or `HEAD` committed its events there.
pub fn relay_after_write(request: &Request, response: &Response, db: &dyn storage::Database) {
    let read_only = matches!(request.method, Method::Get | Method::Head);
    if !read_only && (200..300).contains(&response.status) {
        relay_outbox(db);
    }
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
pub fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok()
}

/// The component's Spin variables as the services' configuration source.
pub struct SpinVariables;

impl api::VariableSource for SpinVariables {
    fn get(&self, name: &str) -> Option<String> {
        variable(name)
    }
}

/// Seconds since the Unix epoch from the host's wall clock.
pub fn now_unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
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

/// Publishes what the outbox holds and re-arms the housekeeping tick. Called after every write;
/// a Redis failure is only logged, since the rows stay in the outbox for the next write or tick.
pub fn relay_outbox(db: &dyn storage::Database) {
    let outcome = redis()
        .map_err(delivery::DeliveryError::from)
        .and_then(|redis| {
            relay_all(db, &redis)?;
            arm_tick(&redis)
        });
    if let Err(error) = outcome {
        eprintln!("WARN events stay in the outbox until Redis is reachable: {error}");
    }
}

const RELAY_BATCH: usize = 200;

/// Relays batches until the outbox holds nothing this relay may send (rows leased by another
/// relay are not counted, so this cannot spin).
fn relay_all(
    db: &dyn storage::Database,
    redis: &dyn delivery::Redis,
) -> Result<(), delivery::DeliveryError> {
    while delivery::relay(db, redis, now_unix_ms(), RELAY_BATCH)?.remaining {}
    Ok(())
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

/// One wake-up of a service's Redis-triggered component, which keeps its group (`group`) on
/// each of `streams` and applies events to its `database` through `handler`. What the message's
/// payload says decides the work ([`delivery::Wake`]):
///
/// - an event: apply what is new on its stream (one `XREADGROUP` when nothing is);
/// - the housekeeping tick: prune old delivery records ([`delivery::prune`]) and retry pending
///   entries on every stream;
/// - anything else (another key expiring): nothing, without even opening the database.
///
/// When it applied something, or on the tick, it then relays the outbox (what applying produced,
/// and rows an earlier failure left) and re-arms the tick, so a Redis that lost the tick key gets
/// it back with the next event. Failed and dead-lettered entries are logged.
pub fn consume(
    component: &'static str,
    database: &str,
    migrations: &[storage::Migration],
    streams: &[&str],
    group: &str,
    handler: &dyn delivery::Handler,
    payload: &[u8],
) -> anyhow::Result<delivery::ConsumeReport> {
    log_line::set_component(component);
    let wake = delivery::Wake::of(payload);
    let streams: Vec<&str> = match wake {
        delivery::Wake::Housekeeping => streams.to_vec(),
        delivery::Wake::Event { stream } if streams.contains(&stream) => vec![stream],
        delivery::Wake::Event { .. } | delivery::Wake::Other => {
            return Ok(delivery::ConsumeReport::default());
        }
    };
    let db = SpinDatabase::open(database, migrations)
        .map_err(|error| anyhow::anyhow!("opening the {database} database: {error}"))?;
    let redis = redis()?;
    let sink = delivery::DatabaseSink { db: &db, handler };
    let housekeeping = wake == delivery::Wake::Housekeeping;
    if housekeeping {
        delivery::prune(&db, now_unix_ms(), delivery::RETENTION_MS)?;
        let started = std::time::Instant::now();
        let new_epoch = domain::EventId::new_random().to_string();
        let marked = delivery::republish_after_data_loss(&db, &redis, &new_epoch)?;
        if marked > 0 {
            log_line::Line::new(log_line::Level::Warn, "delivery")
                .field("database", database)
                .field("outcome", "republished")
                .field("reason", "Redis lost its data (a new epoch)")
                .field("events", marked)
                .duration(started.elapsed())
                .emit();
        }
        let verified = delivery::verify_sent(&db, &redis, now_unix_ms())?;
        if verified.resent > 0 {
            log_line::Line::new(log_line::Level::Warn, "delivery")
                .field("database", database)
                .field("outcome", "republished")
                .field(
                    "reason",
                    "stream entries lost since they were sent (a Redis crash)",
                )
                .field("events", verified.resent)
                .emit();
        }
    }
    // One stream failing (a poisoned key, say) must not starve the others, nor keep the tick
    // from being re-armed: every stream gets its turn, and the first failure is returned last.
    let mut report = delivery::ConsumeReport::default();
    let mut failure = None;
    for stream in streams {
        let consumer = delivery::Consumer {
            redis: &redis,
            stream,
            group,
            settings: consumer_settings(),
        };
        let consumed = if housekeeping {
            consumer.run(&sink, now_unix_ms())
        } else {
            consumer.run_on_message(&sink, now_unix_ms())
        };
        match consumed {
            Ok(consumed) => report += consumed,
            Err(error) => {
                eprintln!("WARN consumer group {group} could not read {stream}: {error}");
                failure
                    .get_or_insert(anyhow::Error::new(error).context(format!("reading {stream}")));
            }
        }
    }
    warn_on_failures(group, &report);
    if housekeeping || report.applied > 0 {
        relay_all(&db, &redis)?;
        arm_tick(&redis)?;
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(report),
    }
}

/// Logs a wake-up of consumer group `group` that left entries failing or dead-lettered; quiet
/// otherwise.
pub fn warn_on_failures(group: &str, report: &delivery::ConsumeReport) {
    if report.failed + report.dead_lettered > 0 {
        eprintln!(
            "WARN consumer group {group}: {} applied, {} failed, {} dead-lettered",
            report.applied, report.failed, report.dead_lettered
        );
    }
}

/// How often the housekeeping tick fires: the `housekeeping_interval_seconds` variable.
pub fn housekeeping_interval_secs() -> u64 {
    numeric_variable("housekeeping_interval_seconds", DEFAULT_HOUSEKEEPING_SECS)
}

/// Arms the next housekeeping tick unless one is armed.
pub fn arm_tick(redis: &dyn delivery::Redis) -> Result<(), delivery::DeliveryError> {
    delivery::arm_tick(redis, housekeeping_interval_secs())
}
