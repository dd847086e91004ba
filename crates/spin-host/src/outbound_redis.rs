//! `fermyon:spin/redis@2.0.0` (spin-fidelity §6): every `open` makes its own multiplexed
//! connection, checked against `allowed_outbound_hosts` with scheme `redis`; `execute` replies
//! are flattened exactly as Spin flattens them.

use redis::{AsyncCommands, Value};
use wasmtime::component::Resource;

use crate::bindings::outbound_redis::{Error, Host, HostConnection, RedisParameter, RedisResult};
use crate::instance::InstanceState;

pub struct RedisConnection(redis::aio::MultiplexedConnection);

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
    fn redis(
        &mut self,
        connection: &Resource<RedisConnection>,
    ) -> wasmtime::Result<redis::aio::MultiplexedConnection> {
        Ok(self.table.get(connection)?.0.clone())
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
        let Ok(client) = redis::Client::open(url) else {
            return Ok(Err(Error::InvalidAddress));
        };
        match client.get_multiplexed_async_connection().await {
            Ok(connection) => Ok(Ok(self.table.push(RedisConnection(connection))?)),
            Err(error) => Ok(Err(other(error))),
        }
    }

    async fn publish(
        &mut self,
        connection: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let mut c = self.redis(&connection)?;
        Ok(c.publish::<_, _, i64>(channel, payload)
            .await
            .map(drop)
            .map_err(other))
    }

    async fn get(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let mut c = self.redis(&connection)?;
        Ok(c.get(key).await.map_err(other))
    }

    async fn set(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let mut c = self.redis(&connection)?;
        Ok(c.set(key, value).await.map_err(other))
    }

    async fn incr(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let mut c = self.redis(&connection)?;
        Ok(c.incr(key, 1).await.map_err(other))
    }

    async fn del(
        &mut self,
        connection: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut c = self.redis(&connection)?;
        Ok(redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut c)
            .await
            .map_err(other))
    }

    async fn sadd(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut c = self.redis(&connection)?;
        Ok(redis::cmd("SADD")
            .arg(key)
            .arg(values)
            .query_async(&mut c)
            .await
            .map_err(other))
    }

    async fn smembers(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let mut c = self.redis(&connection)?;
        Ok(c.smembers(key).await.map_err(other))
    }

    async fn srem(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut c = self.redis(&connection)?;
        Ok(redis::cmd("SREM")
            .arg(key)
            .arg(values)
            .query_async(&mut c)
            .await
            .map_err(other))
    }

    async fn execute(
        &mut self,
        connection: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let mut c = self.redis(&connection)?;
        let mut cmd = redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(v) => cmd.arg(v),
                RedisParameter::Binary(v) => cmd.arg(v),
            };
        }
        let reply: Value = match cmd.query_async(&mut c).await {
            Ok(reply) => reply,
            Err(error) => return Ok(Err(other(error))),
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
