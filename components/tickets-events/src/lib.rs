//! The tickets service's event consumer. Woken by `order:created`, `order:cancelled` and
//! `order:completed` (and by the housekeeping tick's key expiry), it reads the `tickets` consumer
//! group of the order stream, reserves, releases or sells tickets
//! (`tickets_service::TicketsEvents`), and relays the `ticket:updated` events that produces. The
//! message itself is only a wake-up.

use anyhow::Context;
use tickets_service::TicketsEvents;

/// spin-sdk's export macro expands to `unsafe` ABI glue; this module is the one place it may.
#[allow(unsafe_code)]
mod entrypoint {
    #[spin_sdk::redis_component]
    fn on_message(payload: Vec<u8>) -> anyhow::Result<()> {
        super::on_message(&payload)
    }
}

fn on_message(payload: &[u8]) -> anyhow::Result<()> {
    let subscription = delivery::Subscription {
        database: "tickets",
        group: "tickets",
        streams: &["events:order"],
        handler: &TicketsEvents,
        housekeeping: &delivery::NoHousekeeping,
    };
    spin_adapter::consume(
        "tickets-events",
        &subscription,
        tickets_service::MIGRATIONS,
        payload,
    )
    .context("consuming order events")?;
    Ok(())
}
