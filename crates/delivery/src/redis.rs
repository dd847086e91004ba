//! The Redis port, shaped exactly like Spin's `fermyon:spin/redis@2.0.0` connection: `execute`
//! returns the reply flattened depth-first into `nil | status | int64 | binary`.

/// A command argument. Integers go over the wire as decimal text, bytes as they are.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisArg {
    Int(i64),
    Bytes(Vec<u8>),
}

impl From<&str> for RedisArg {
    fn from(value: &str) -> Self {
        Self::Bytes(value.as_bytes().to_vec())
    }
}

impl From<String> for RedisArg {
    fn from(value: String) -> Self {
        Self::Bytes(value.into_bytes())
    }
}

impl From<&String> for RedisArg {
    fn from(value: &String) -> Self {
        Self::Bytes(value.as_bytes().to_vec())
    }
}

impl From<i64> for RedisArg {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<&[u8]> for RedisArg {
    fn from(value: &[u8]) -> Self {
        Self::Bytes(value.to_vec())
    }
}

impl From<Vec<u8>> for RedisArg {
    fn from(value: Vec<u8>) -> Self {
        Self::Bytes(value)
    }
}

/// One element of a flattened reply. Nested arrays are flattened depth-first and `Nil`
/// elements inside them are kept, so a command's reply must be designed to stay unambiguous
/// when flat (every stream entry here carries exactly one field).
#[derive(Debug, Clone, PartialEq)]
pub enum RedisValue {
    Nil,
    Status(String),
    Int(i64),
    Bytes(Vec<u8>),
}

/// A failed Redis call: the connection failed or the server answered with an error. The text is
/// the client's (for error replies it starts with the Redis error code, such as `BUSYGROUP`).
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisError(pub String);

/// One Redis connection.
pub trait Redis {
    /// Runs `command` with `args` and returns its reply, flattened as Spin flattens it.
    fn execute(&self, command: &str, args: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError>;
    /// `PUBLISH channel payload`; how many subscribers received it is not reported (as in Spin).
    fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), RedisError>;
}
