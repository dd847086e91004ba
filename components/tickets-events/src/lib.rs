//! The tickets service's event consumer. Woken by `order:created`, `order:cancelled` and
//! `order:completed` (and by the housekeeping tick's key expiry), it reads the `tickets` consumer
//! group of the order stream, reserves, releases or sells tickets
//! (`tickets_service::TicketsEvents`), and relays the `ticket:updated` events that produces. The
//! message itself is only a wake-up.

use anyhow::Context;
use tickets_service::TicketsEvents;

spin_adapter::redis_component!(on_message);

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
