//! The tickets service's event consumer. Woken by `order:created`, `order:cancelled`,
//! `order:completed` and `pass:checked-in` (and by the housekeeping tick's key expiry), it reads
//! the `tickets` consumer group of the order and pass streams, reserves, releases or sells
//! tickets and ends the resale of checked-in ones (`tickets_service::TicketsEvents`), and relays
//! the `ticket:updated` events that produces. The message itself is only a wake-up.

use anyhow::Context;
use tickets_service::TicketsEvents;

spin_adapter::redis_component!(on_message);

fn on_message(payload: &[u8]) -> anyhow::Result<()> {
    let subscription = delivery::Subscription {
        database: "tickets",
        group: "tickets",
        streams: &["events:order", "events:pass"],
        handler: &TicketsEvents,
        housekeeping: &delivery::NoHousekeeping,
    };
    spin_adapter::consume(
        "tickets-events",
        &subscription,
        tickets_service::MIGRATIONS,
        payload,
    )
    .context("consuming order and pass events")?;
    Ok(())
}
