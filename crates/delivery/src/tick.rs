//! The housekeeping tick: a key whose expiry wakes every service.
//!
//! Redis publishes `__keyevent@0__:expired` with the key's name when [`TICK_KEY`] expires
//! (`notify-keyspace-events Ex`). Every service subscribes to that channel; on the message it
//! relays its unsent outbox rows, retries its pending entries, and calls [`arm_tick`] again.
//! `NX` makes exactly one of them set the next tick, so the tick renews itself without anything
//! outside the app.

use crate::{DeliveryError, Redis, RedisArg, RedisValue};

pub const TICK_KEY: &str = "housekeeping:tick";
pub const EXPIRED_CHANNEL: &str = "__keyevent@0__:expired";

/// `SET housekeeping:tick 1 EX <ttl_secs> NX`: arms the next tick unless one is armed already.
pub fn arm_tick(redis: &dyn Redis, ttl_secs: u64) -> Result<(), DeliveryError> {
    let ttl = i64::try_from(ttl_secs)
        .map_err(|_| DeliveryError::Encode(format!("tick TTL {ttl_secs} s is too large")))?;
    let reply = redis.execute(
        "SET",
        &[
            TICK_KEY.into(),
            "1".into(),
            "EX".into(),
            RedisArg::Int(ttl),
            "NX".into(),
        ],
    )?;
    match reply.as_slice() {
        // Armed now, or armed already by another service.
        [RedisValue::Status(_)] | [RedisValue::Nil] => Ok(()),
        other => Err(DeliveryError::Protocol(format!("SET reply: {other:?}"))),
    }
}
