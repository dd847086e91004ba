//! The tickets service's event consumer. Woken by `order:created`, `order:cancelled` and
//! `order:completed` (and by the housekeeping tick's key expiry), it reads the `tickets` consumer
//! group of the order stream, reserves, releases or sells tickets (`tickets_service::OrderEvents`),
//! and relays the `ticket:updated` events that produces. The message itself is only a wake-up.

use anyhow::Context;
use tickets_service::OrderEvents;

/// spin-sdk's export macro expands to `unsafe` ABI glue; this module is the one place it may.
#[allow(unsafe_code)]
mod entrypoint {
    #[spin_sdk::redis_component]
    fn on_message(payload: Vec<u8>) -> anyhow::Result<()> {
        super::on_message(&payload)
    }
}

const DATABASE: &str = "tickets";
const STREAMS: &[&str] = &["events:order"];
const GROUP: &str = "tickets";

fn on_message(payload: &[u8]) -> anyhow::Result<()> {
    spin_adapter::consume(
        "tickets-events",
        DATABASE,
        tickets_service::MIGRATIONS,
        STREAMS,
        GROUP,
        &OrderEvents,
        payload,
    )
    .context("consuming order events")?;
    Ok(())
}
