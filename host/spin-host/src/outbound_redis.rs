//! `fermyon:spin/redis@2.0.0`: `open` is checked against
//! `allowed_outbound_hosts` with scheme `redis`; `execute` replies are flattened exactly as Spin
//! flattens them.
//!
//! Spin connects afresh on every `open`. Connecting (a TCP handshake and the client's set-up
//! commands) costs more than most of what a component then does with the connection, and every
//! write and every event wake-up opens one, so this host keeps the connections guests closed
//! cleanly and hands them to later `open`s of the same address, one guest at a time, which the
//! guest cannot tell apart. A connection is not kept once its guest changed its state (`SELECT`,
//! `MULTI`, `SUBSCRIBE`, `CLIENT`, ...) or lost it; and a kept connection whose first command
//! finds it broken (Redis restarted meanwhile) is replaced by a fresh one and the command sent
//! again, as a fresh `open` would have done.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, Value};
use wasmtime::component::Resource;

use crate::bindings::outbound_redis::{Error, Host, HostConnection, RedisParameter, RedisResult};
use crate::instance::InstanceState;

/// How many closed connections are kept per address.
const IDLE_PER_ADDRESS: usize = 16;

/// Connections guests closed cleanly, by URL.
static IDLE: LazyLock<Mutex<HashMap<String, Vec<MultiplexedConnection>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Commands after which a connection is no longer like a fresh one.
const STATEFUL_COMMANDS: &[&str] = &[
    "ASKING",
    "AUTH",
    "CLIENT",
    "DISCARD",
    "EXEC",
    "HELLO",
    "MONITOR",
    "MULTI",
    "PSUBSCRIBE",
    "PUNSUBSCRIBE",
    "QUIT",
    "READONLY",
    "READWRITE",
    "RESET",
    "SELECT",
    "SSUBSCRIBE",
    "SUBSCRIBE",
    "SUNSUBSCRIBE",
    "UNSUBSCRIBE",
    "UNWATCH",
    "WATCH",
];

/// A guest's connection.
pub struct RedisConnection {
    connection: MultiplexedConnection,
    url: String,
    /// Whether it goes back to the pool when the guest closes it.
    reusable: bool,
    /// Taken from the pool and not yet used: a broken-connection error on its first command means
    /// only that Redis went away while it was idle.
    untried: bool,
}

impl Drop for RedisConnection {
    fn drop(&mut self) {
        if !self.reusable {
            return;
        }
        if let Ok(mut idle) = IDLE.lock() {
            let kept = idle.entry(std::mem::take(&mut self.url)).or_default();
            if kept.len() < IDLE_PER_ADDRESS {
                kept.push(self.connection.clone());
            }
        }
    }
}

fn lost_connection(error: &redis::RedisError) -> bool {
    error.is_io_error() || error.is_connection_dropped() || error.is_unrecoverable_error()
}

async fn connect(url: &str) -> redis::RedisResult<MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
}

fn other(error: redis::RedisError) -> Error {
    Error::Other(error.to_string())
}

/// Flattens a reply depth-first into Spin's list of `nil | status | int64 | binary`. Maps,
/// attributes, verbatim strings and pushes are rejected, as in Spin.
pub fn flatten(value: Value, out: &mut Vec<RedisResult>) -> Result<(), Error> {
    match value {
        Value::Nil => out.push(RedisResult::Nil),
        Value::Int(v) => out.push(RedisResult::Int64(v)),
        Value::BulkString(v) => out.push(RedisResult::Binary(v)),
        Value::SimpleString(v) => out.push(RedisResult::Status(v)),
        Value::Okay => out.push(RedisResult::Status("OK".into())),
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                flatten(item, out)?;
            }
        }
        Value::Double(v) => out.push(RedisResult::Binary(v.to_string().into_bytes())),
        Value::Boolean(v) => out.push(RedisResult::Int64(i64::from(v))),
        Value::BigNumber(v) => out.push(RedisResult::Binary(v.to_string().into_bytes())),
        Value::ServerError(error) => return Err(other(error.into())),
        unsupported => {
            return Err(Error::Other(format!(
                "unsupported Redis reply type: {unsupported:?} is not supported"
            )));
        }
    }
    Ok(())
}

impl InstanceState {
    /// Sends `cmd` on the guest's connection. `stateful` commands keep the connection from being
    /// reused; a lost connection is never reused, and on a pooled connection's first command it
    /// is replaced and the command sent once more.
    async fn query<T: FromRedisValue>(
        &mut self,
        handle: &Resource<RedisConnection>,
        cmd: redis::Cmd,
        stateful: bool,
    ) -> wasmtime::Result<Result<T, Error>> {
        self.component.stats.count_redis();
        let entry = self.table.get_mut(handle)?;
        if stateful {
            entry.reusable = false;
        }
        let untried = std::mem::take(&mut entry.untried);
        let mut connection = entry.connection.clone();
        let url = entry.url.clone();
        match cmd.query_async::<T>(&mut connection).await {
            Ok(reply) => Ok(Ok(reply)),
            Err(error) if lost_connection(&error) => {
                let entry = self.table.get_mut(handle)?;
                entry.reusable = false;
                if !untried {
                    return Ok(Err(other(error)));
                }
                let mut fresh = match connect(&url).await {
                    Ok(fresh) => fresh,
                    Err(error) => return Ok(Err(other(error))),
                };
                let entry = self.table.get_mut(handle)?;
                entry.connection = fresh.clone();
                entry.reusable = !stateful;
                Ok(cmd.query_async::<T>(&mut fresh).await.map_err(|error| {
                    if lost_connection(&error)
                        && let Ok(entry) = self.table.get_mut(handle)
                    {
                        entry.reusable = false;
                    }
                    other(error)
                }))
            }
            Err(error) => Ok(Err(other(error))),
        }
    }
}

impl Host for InstanceState {}

impl HostConnection for InstanceState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<RedisConnection>, Error>> {
        let url = if address.contains("://") {
            address
        } else {
            format!("redis://{address}")
        };
        let allowed = self.component.allowed_hosts.allows_url(&url);
        if !allowed {
            let destination = url
                .split('@')
                .next_back()
                .unwrap_or(&url)
                .trim_end_matches('/');
            let destination = if destination.starts_with("redis") {
                destination.to_owned()
            } else {
                format!("redis://{destination}")
            };
            // Credentials in the URL stay out of the log.
            crate::outbound_http::report_denied(&self.component.id, &destination);
            return Ok(Err(Error::InvalidAddress));
        }
        let pooled = IDLE
            .lock()
            .ok()
            .and_then(|mut idle| idle.get_mut(&url).and_then(Vec::pop));
        let (connection, untried) = match pooled {
            Some(connection) => (connection, true),
            None => match connect(&url).await {
                Ok(connection) => (connection, false),
                Err(error) if error.kind() == redis::ErrorKind::InvalidClientConfig => {
                    return Ok(Err(Error::InvalidAddress));
                }
                Err(error) => return Ok(Err(other(error))),
            },
        };
        Ok(Ok(self.table.push(RedisConnection {
            connection,
            url,
            reusable: true,
            untried,
        })?))
    }

    async fn publish(
        &mut self,
        connection: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        Ok(self.query::<i64>(&connection, cmd, false).await?.map(drop))
    }

    async fn get(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        self.query(&connection, cmd, false).await
    }

    async fn set(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        self.query(&connection, cmd, false).await
    }

    async fn incr(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let mut cmd = redis::cmd("INCR");
        cmd.arg(key);
        self.query(&connection, cmd, false).await
    }

    async fn del(
        &mut self,
        connection: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(keys);
        self.query(&connection, cmd, false).await
    }

    async fn sadd(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = redis::cmd("SADD");
        cmd.arg(key).arg(values);
        self.query(&connection, cmd, false).await
    }

    async fn smembers(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(key);
        self.query(&connection, cmd, false).await
    }

    async fn srem(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = redis::cmd("SREM");
        cmd.arg(key).arg(values);
        self.query(&connection, cmd, false).await
    }

    async fn execute(
        &mut self,
        connection: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let stateful = STATEFUL_COMMANDS
            .iter()
            .any(|name| name.eq_ignore_ascii_case(command.trim()));
        let mut cmd = redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(v) => cmd.arg(v),
                RedisParameter::Binary(v) => cmd.arg(v),
            };
        }
        let reply: Value = match self.query(&connection, cmd, stateful).await? {
            Ok(reply) => reply,
            Err(error) => return Ok(Err(error)),
        };
        let mut flat = Vec::new();
        Ok(flatten(reply, &mut flat).map(|()| flat))
    }

    async fn drop(&mut self, connection: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(value: Value) -> Vec<RedisResult> {
        let mut out = Vec::new();
        flatten(value, &mut out).expect("flattens");
        out
    }

    #[test]
    fn nested_arrays_flatten_depth_first_keeping_nils() {
        let reply = Value::Array(vec![
            Value::BulkString(b"stream".to_vec()),
            Value::Array(vec![Value::Array(vec![
                Value::BulkString(b"1-0".to_vec()),
                Value::Nil,
            ])]),
            Value::Int(3),
            Value::Okay,
        ]);
        let shapes: Vec<String> = flat(reply).into_iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(shapes.len(), 5);
        assert!(shapes[0].starts_with("RedisResult::Binary"));
        assert!(shapes[2].contains("Nil"));
        assert!(shapes[3].contains("Int64(3)"));
        assert!(shapes[4].contains("\"OK\""));
    }

    #[test]
    fn booleans_become_integers_and_doubles_become_text() {
        let out = flat(Value::Array(vec![Value::Boolean(true), Value::Double(1.5)]));
        assert!(matches!(out[0], RedisResult::Int64(1)));
        assert!(matches!(&out[1], RedisResult::Binary(b) if b == b"1.5"));
    }

    #[test]
    fn a_map_reply_is_an_error() {
        let mut out = Vec::new();
        let result = flatten(Value::Map(vec![(Value::Int(1), Value::Int(2))]), &mut out);
        assert!(matches!(result, Err(Error::Other(message)) if message.contains("not supported")));
    }
}
