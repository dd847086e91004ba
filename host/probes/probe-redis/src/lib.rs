//! A test probe for the project's Spin host: a Redis-triggered component that leaves a trace of
//! every message it handles in Redis itself, so a test can see which payloads were delivered and
//! how often.
//!
//! For a payload `p` it sets `probe:received:p` to `1` and increments `probe:count`. Two payloads
//! test failure handling instead: `fail` returns an error and `trap` panics, both before touching
//! Redis.

use anyhow::{Context, bail};
use spin_sdk::redis::Connection;
use spin_sdk::variables;

/// spin-sdk's export macro expands to `unsafe` ABI glue; this module is the one place it may.
#[allow(unsafe_code)]
mod entrypoint {
    #[spin_sdk::redis_component]
    fn on_message(payload: Vec<u8>) -> anyhow::Result<()> {
        super::on_message(&payload)
    }
}

fn on_message(payload: &[u8]) -> anyhow::Result<()> {
    let payload = String::from_utf8_lossy(payload);
    println!("probe-redis got {payload}");
    match payload.as_ref() {
        "fail" => bail!("probe-redis was asked to fail"),
        "trap" => panic!("probe-redis trap requested"),
        _ => record(&payload),
    }
}

fn record(payload: &str) -> anyhow::Result<()> {
    let address = variables::get("redis_address").context("reading variable redis_address")?;
    let redis = Connection::open(&address).context("connecting to outbound Redis")?;
    redis
        .set(&format!("probe:received:{payload}"), b"1")
        .context("recording the payload")?;
    redis.incr("probe:count").context("counting the message")?;
    Ok(())
}
