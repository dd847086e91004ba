//! [`NativeRedis`]: the Redis port on the `redis` crate (sync), flattening replies as Spin does.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::Value;

use crate::{Redis, RedisArg, RedisError, RedisValue};

/// Long enough for any command this crate sends; short enough that a hung server fails a test
/// instead of stalling it.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A synchronous connection to one Redis server. A connection that breaks (the server went away)
/// is dropped and the next call opens a new one, as a new component instance would in Spin.
pub struct NativeRedis {
    client: redis::Client,
    connection: Mutex<Option<redis::Connection>>,
}

impl NativeRedis {
    /// Connects to `url` (`redis://host:port`) right away, so a wrong address fails here.
    pub fn connect(url: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url).map_err(other)?;
        let redis = Self {
            client,
            connection: Mutex::new(None),
        };
        let mut slot = redis.lock();
        let connection = redis.open()?;
        *slot = Some(connection);
        drop(slot);
        Ok(redis)
    }

    fn open(&self) -> Result<redis::Connection, RedisError> {
        let connection = self
            .client
            .get_connection_with_timeout(TIMEOUT)
            .map_err(other)?;
        connection.set_read_timeout(Some(TIMEOUT)).map_err(other)?;
        connection.set_write_timeout(Some(TIMEOUT)).map_err(other)?;
        Ok(connection)
    }

    fn lock(&self) -> MutexGuard<'_, Option<redis::Connection>> {
        // The slot holds at most a connection; a panic elsewhere cannot leave it half-written.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn query(&self, command: &redis::Cmd) -> Result<Value, RedisError> {
        let mut slot = self.lock();
        let connection = match slot.as_mut() {
            Some(connection) => connection,
            None => slot.insert(self.open()?),
        };
        match command.query::<Value>(connection) {
            Ok(value) => Ok(value),
            Err(error) => {
                if error.is_io_error() || error.is_connection_dropped() || error.is_timeout() {
                    *slot = None;
                }
                Err(other(error))
            }
        }
    }
}

impl Redis for NativeRedis {
    fn execute(&self, command: &str, args: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError> {
        let mut cmd = redis::cmd(command);
        for arg in args {
            match arg {
                RedisArg::Int(value) => cmd.arg(*value),
                RedisArg::Bytes(bytes) => cmd.arg(bytes.as_slice()),
            };
        }
        let mut flat = Vec::new();
        flatten(self.query(&cmd)?, &mut flat)?;
        Ok(flat)
    }

    fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), RedisError> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        self.query(&cmd).map(drop)
    }
}

/// Flattens a reply depth-first as Spin does: nils kept, arrays and sets inlined, RESP3 doubles
/// and big numbers as text, booleans as 0/1; maps and the other RESP3 shapes are errors.
pub(crate) fn flatten(value: Value, out: &mut Vec<RedisValue>) -> Result<(), RedisError> {
    match value {
        Value::Nil => out.push(RedisValue::Nil),
        Value::Int(v) => out.push(RedisValue::Int(v)),
        Value::BulkString(v) => out.push(RedisValue::Bytes(v)),
        Value::SimpleString(v) => out.push(RedisValue::Status(v)),
        Value::Okay => out.push(RedisValue::Status("OK".to_owned())),
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                flatten(item, out)?;
            }
        }
        Value::Double(v) => out.push(RedisValue::Bytes(v.to_string().into_bytes())),
        Value::Boolean(v) => out.push(RedisValue::Int(i64::from(v))),
        Value::BigNumber(v) => out.push(RedisValue::Bytes(v.to_string().into_bytes())),
        Value::ServerError(error) => return Err(other(error.into())),
        unsupported => {
            return Err(RedisError(format!(
                "unsupported Redis reply type: {unsupported:?} is not supported"
            )));
        }
    }
    Ok(())
}

fn other(error: redis::RedisError) -> RedisError {
    RedisError(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_arrays_flatten_depth_first_keeping_nils() {
        let reply = Value::Array(vec![
            Value::BulkString(b"events:ticket".to_vec()),
            Value::Array(vec![
                Value::Array(vec![
                    Value::BulkString(b"1-0".to_vec()),
                    Value::Array(vec![
                        Value::BulkString(b"event".to_vec()),
                        Value::BulkString(b"{}".to_vec()),
                    ]),
                ]),
                Value::Nil,
            ]),
            Value::Okay,
            Value::Int(3),
        ]);
        let mut flat = Vec::new();
        flatten(reply, &mut flat).expect("flattens");
        assert_eq!(
            flat,
            [
                RedisValue::Bytes(b"events:ticket".to_vec()),
                RedisValue::Bytes(b"1-0".to_vec()),
                RedisValue::Bytes(b"event".to_vec()),
                RedisValue::Bytes(b"{}".to_vec()),
                RedisValue::Nil,
                RedisValue::Status("OK".into()),
                RedisValue::Int(3),
            ]
        );
    }

    #[test]
    fn a_map_reply_is_an_error_as_in_spin() {
        let mut flat = Vec::new();
        let result = flatten(Value::Map(vec![(Value::Int(1), Value::Int(2))]), &mut flat);
        assert!(result.is_err());
    }
}
