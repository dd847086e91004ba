//! A test probe for the project's Spin host: one HTTP component that the `probe` fixture app
//! mounts under several component ids, each told its name through the `PROBE_NAME` environment
//! variable.
//!
//! Every request is dispatched on its `spin-path-info` (the part of the path below a wildcard
//! route), or on the whole path where that is empty, so the same table works under `/...` and
//! under `/denied/...`. Each route exercises one host interface and
//! answers with what the host returned, so the host's tests can compare it with real Spin:
//! host errors are sent back as their `Debug` text, with 403 for the access-denied cases.
//! Any path that is not in the table echoes the request as JSON.

mod query;

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::redis::{self, RedisParameter, RedisResult};
use spin_sdk::{key_value, sqlite, sqlite3, variables};

use crate::query::Query;

/// spin-sdk's export macro expands to `unsafe` ABI glue; this module is the one place it may.
#[allow(unsafe_code)]
mod entrypoint {
    use spin_sdk::http::{Request, Response};

    #[spin_sdk::http_component]
    async fn handle(req: Request) -> Response {
        super::handle(req).await
    }
}

/// Routes measured by the benchmark, which should measure the host rather than guest logging.
const QUIET_PATHS: [&str; 3] = ["/trivial", "/kv-read-bench", "/sql/one"];

async fn handle(req: Request) -> Response {
    let probe = probe_name();
    if !QUIET_PATHS.contains(&dispatch_path(&req)) {
        println!("probe {probe} handled {} {}", req.method(), req.path());
    }
    route(&req, &probe)
        .await
        .unwrap_or_else(Failure::into_response)
}

fn dispatch_path(req: &Request) -> &str {
    match req.header("spin-path-info").and_then(|v| v.as_str()) {
        Some(info) if !info.is_empty() => info,
        _ => req.path(),
    }
}

async fn route(req: &Request, probe: &str) -> Outcome {
    let path = dispatch_path(req);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let query = Query::parse(req.query());
    match (req.method(), segments.as_slice()) {
        (Method::Get, ["trivial"]) => Ok(text(200, "ok")),
        (Method::Post, ["body-len"]) => Ok(text(200, req.body().len().to_string())),
        (Method::Get, ["env"]) => Ok(environment()),
        (Method::Get, ["trap"]) => trap(probe),

        (Method::Get, ["kv", key @ ..]) => kv_get(&query, &key.join("/")),
        (Method::Put, ["kv", key @ ..]) => kv_set(&query, &key.join("/"), req.body()),
        (Method::Delete, ["kv", key @ ..]) => kv_delete(&query, &key.join("/")),
        (Method::Get, ["kv-exists", key @ ..]) => kv_exists(&query, &key.join("/")),
        (Method::Get, ["kv-keys"]) => kv_keys(&query),
        (Method::Get, ["kv-read-bench"]) => kv_read_bench(),

        (Method::Post, ["sql", "setup"]) => sql_setup(&query),
        (Method::Post, ["sql", "commit"]) => sql_insert(&query, "COMMIT"),
        (Method::Post, ["sql", "rollback"]) => sql_insert(&query, "ROLLBACK"),
        (Method::Get, ["sql", "notes"]) => sql_notes(&query),
        (Method::Get, ["sql", "one"]) => sql_first_note(&query),
        (Method::Get, ["sql", "v2", "notes"]) => sql_v2_notes(&query),

        (Method::Get, ["var", name]) => variable(name),

        (Method::Post, ["publish", channel]) => redis_publish(channel, req.body()),
        (Method::Get, ["redis", key]) => redis_get(key),
        (Method::Post, ["redis-exec"]) => redis_execute(req.body()),

        (Method::Get, ["outbound"]) => outbound(&query).await,

        (Method::Get, ["file"]) => file_read(&query),
        (Method::Post, ["file-write"]) => file_write(&query, req.body()),

        _ => Ok(echo(req, probe)),
    }
}

type Outcome = Result<Response, Failure>;

/// A response for a request the probe could not carry out, with the text the host gave.
struct Failure {
    status: u16,
    message: String,
}

impl Failure {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn debug(status: u16, error: &impl Debug) -> Self {
        Self::new(status, format!("{error:?}"))
    }

    fn into_response(self) -> Response {
        text(self.status, self.message)
    }
}

fn probe_name() -> String {
    std::env::var("PROBE_NAME").unwrap_or_else(|_| "unnamed".to_owned())
}

fn echo(req: &Request, probe: &str) -> Response {
    // Spin sends a repeated header as several fields; spin-sdk's `Request` keeps the last one.
    let headers: BTreeMap<String, String> = req
        .headers()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.to_ascii_lowercase(), value)
        })
        .collect();
    json_response(
        200,
        &json!({
            "probe": probe,
            "method": req.method().to_string(),
            "path": req.path(),
            "query": req.query(),
            "headers": headers,
        }),
    )
}

fn environment() -> Response {
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    json_response(200, &json!(vars))
}

fn trap(probe: &str) -> Outcome {
    eprintln!("probe {probe} is about to trap");
    panic!("probe trap requested");
}

// Key-value ---------------------------------------------------------------------------------

fn open_store(query: &Query) -> Result<key_value::Store, Failure> {
    let label = query.get("store").unwrap_or("default");
    key_value::Store::open(label).map_err(|e| Failure::debug(403, &e))
}

fn kv_get(query: &Query, key: &str) -> Outcome {
    let store = open_store(query)?;
    match store.get(key).map_err(|e| Failure::debug(500, &e))? {
        Some(value) => Ok(bytes(200, value)),
        None => Err(Failure::new(404, format!("no value for key {key:?}"))),
    }
}

fn kv_set(query: &Query, key: &str, value: &[u8]) -> Outcome {
    let store = open_store(query)?;
    store.set(key, value).map_err(|e| Failure::debug(500, &e))?;
    Ok(empty(204))
}

fn kv_delete(query: &Query, key: &str) -> Outcome {
    let store = open_store(query)?;
    store.delete(key).map_err(|e| Failure::debug(500, &e))?;
    Ok(empty(204))
}

fn kv_exists(query: &Query, key: &str) -> Outcome {
    let store = open_store(query)?;
    let exists = store.exists(key).map_err(|e| Failure::debug(500, &e))?;
    Ok(text(200, exists.to_string()))
}

fn kv_keys(query: &Query) -> Outcome {
    let store = open_store(query)?;
    let mut keys = store.get_keys().map_err(|e| Failure::debug(500, &e))?;
    keys.sort();
    Ok(json_response(200, &json!(keys)))
}

fn kv_read_bench() -> Outcome {
    let store = key_value::Store::open_default().map_err(|e| Failure::debug(403, &e))?;
    match store.get("bench").map_err(|e| Failure::debug(500, &e))? {
        Some(value) => Ok(bytes(200, value)),
        None => Err(Failure::new(404, "no value for key \"bench\"")),
    }
}

// SQLite ------------------------------------------------------------------------------------

fn open_database(query: &Query) -> Result<sqlite3::Connection, Failure> {
    let label = query.get("db").unwrap_or("default");
    sqlite3::Connection::open(label).map_err(sqlite3_failure)
}

fn sqlite3_failure(error: sqlite3::Error) -> Failure {
    let status = match error {
        sqlite3::Error::AccessDenied => 403,
        _ => 500,
    };
    Failure::debug(status, &error)
}

fn execute(
    db: &sqlite3::Connection,
    statement: &str,
    parameters: &[sqlite3::Value],
) -> Result<sqlite3::QueryResult, Failure> {
    db.execute(statement, parameters).map_err(sqlite3_failure)
}

fn sql_setup(query: &Query) -> Outcome {
    let db = open_database(query)?;
    execute(
        &db,
        "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
        &[],
    )?;
    Ok(empty(204))
}

/// Inserts a note inside an explicit transaction spread over separate `execute` calls, which only
/// works if the host keeps one SQLite connection per opened handle, then ends it with `finish`.
fn sql_insert(query: &Query, finish: &str) -> Outcome {
    let body = query.get("body").unwrap_or_default();
    let db = open_database(query)?;
    execute(&db, "BEGIN IMMEDIATE", &[])?;
    execute(
        &db,
        "INSERT INTO notes (body) VALUES (?)",
        &[sqlite3::Value::Text(body.to_owned())],
    )?;
    let changes = db.changes();
    let last_insert_rowid = db.last_insert_rowid();
    execute(&db, finish, &[])?;
    Ok(json_response(
        200,
        &json!({ "changes": changes, "last_insert_rowid": last_insert_rowid }),
    ))
}

fn sql_notes(query: &Query) -> Outcome {
    let db = open_database(query)?;
    let result = execute(&db, "SELECT body FROM notes ORDER BY id", &[])?;
    let bodies = result
        .rows
        .iter()
        .map(|row| text_column(row.get::<&str>(0)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json_response(200, &json!(bodies)))
}

fn sql_first_note(query: &Query) -> Outcome {
    let db = open_database(query)?;
    let result = execute(&db, "SELECT body FROM notes ORDER BY id LIMIT 1", &[])?;
    match result.rows.first() {
        Some(row) => Ok(text(200, text_column(row.get::<&str>(0))?)),
        None => Err(Failure::new(404, "no notes")),
    }
}

/// The same listing as [`sql_notes`] through the older `fermyon:spin/sqlite@2.0.0` interface.
fn sql_v2_notes(query: &Query) -> Outcome {
    let label = query.get("db").unwrap_or("default");
    let v2_failure = |error: sqlite::Error| {
        let status = match error {
            sqlite::Error::AccessDenied => 403,
            _ => 500,
        };
        Failure::debug(status, &error)
    };
    let db = sqlite::Connection::open(label).map_err(v2_failure)?;
    let result = db
        .execute("SELECT body FROM notes ORDER BY id", &[])
        .map_err(v2_failure)?;
    let bodies = result
        .rows
        .iter()
        .map(|row| text_column(row.get::<&str>(0)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json_response(200, &json!(bodies)))
}

fn text_column(value: Option<&str>) -> Result<String, Failure> {
    value
        .map(str::to_owned)
        .ok_or_else(|| Failure::new(500, "notes.body is not text"))
}

// Variables ---------------------------------------------------------------------------------

fn variable(name: &str) -> Outcome {
    match variables::get(name) {
        Ok(value) => Ok(text(200, value)),
        Err(error) => Err(Failure::debug(404, &error)),
    }
}

// Outbound Redis ----------------------------------------------------------------------------

fn open_redis() -> Result<redis::Connection, Failure> {
    let address = variables::get("redis_address").map_err(|e| Failure::debug(500, &e))?;
    redis::Connection::open(&address).map_err(redis_failure)
}

fn redis_failure(error: redis::Error) -> Failure {
    let status = match error {
        redis::Error::InvalidAddress => 403,
        _ => 500,
    };
    Failure::debug(status, &error)
}

fn redis_publish(channel: &str, payload: &[u8]) -> Outcome {
    let redis = open_redis()?;
    redis.publish(channel, payload).map_err(redis_failure)?;
    Ok(empty(204))
}

fn redis_get(key: &str) -> Outcome {
    let redis = open_redis()?;
    match redis.get(key).map_err(redis_failure)? {
        Some(value) => Ok(bytes(200, value)),
        None => Err(Failure::new(404, format!("no value for key {key:?}"))),
    }
}

#[derive(Deserialize)]
struct RedisCommand {
    command: String,
    #[serde(default)]
    args: Vec<String>,
}

/// Runs an arbitrary command and describes the reply item by item, exactly as flattened by the host.
fn redis_execute(body: &[u8]) -> Outcome {
    let request: RedisCommand = serde_json::from_slice(body)
        .map_err(|e| Failure::new(400, format!("expected {{\"command\", \"args\"}}: {e}")))?;
    let arguments: Vec<RedisParameter> = request
        .args
        .into_iter()
        .map(|arg| RedisParameter::Binary(arg.into_bytes()))
        .collect();
    let redis = open_redis()?;
    let reply = redis
        .execute(&request.command, &arguments)
        .map_err(redis_failure)?;
    let items: Vec<Json> = reply.iter().map(describe_redis_result).collect();
    Ok(json_response(200, &json!(items)))
}

fn describe_redis_result(result: &RedisResult) -> Json {
    match result {
        RedisResult::Nil => json!({ "nil": null }),
        RedisResult::Status(status) => json!({ "status": status }),
        RedisResult::Int64(n) => json!({ "int64": n }),
        RedisResult::Binary(data) => json!({ "binary": String::from_utf8_lossy(data) }),
    }
}

// Outbound HTTP -----------------------------------------------------------------------------

async fn outbound(query: &Query) -> Outcome {
    let url = query
        .get("url")
        .ok_or_else(|| Failure::new(400, "missing query parameter url"))?;
    let response: Response = spin_sdk::http::send(Request::get(url).build())
        .await
        .map_err(|e| Failure::debug(502, &e))?;
    let body = String::from_utf8_lossy(response.body());
    Ok(text(200, format!("upstream {}: {body}", response.status())))
}

// Files -------------------------------------------------------------------------------------

fn file_path(query: &Query) -> Result<&str, Failure> {
    query
        .get("path")
        .ok_or_else(|| Failure::new(400, "missing query parameter path"))
}

fn file_read(query: &Query) -> Outcome {
    let path = file_path(query)?;
    let contents = std::fs::read(path).map_err(|e| Failure::new(404, e.to_string()))?;
    Ok(bytes(200, contents))
}

fn file_write(query: &Query, contents: &[u8]) -> Outcome {
    let path = file_path(query)?;
    std::fs::write(path, contents).map_err(|e| Failure::new(500, e.to_string()))?;
    Ok(text(200, "written"))
}

// Responses ---------------------------------------------------------------------------------

fn text(status: u16, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body.into())
        .build()
}

fn bytes(status: u16, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/octet-stream")
        .body(body)
        .build()
}

fn json_response(status: u16, value: &Json) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(value.to_string())
        .build()
}

fn empty(status: u16) -> Response {
    Response::new(status, ())
}
