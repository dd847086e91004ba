//! The orders service's event consumer. Woken by `ticket:created` and `ticket:updated` (the
//! tickets replica), `payment:created` (complete a paid order) and `payment:expired` (cancel one
//! not paid in time), and by the housekeeping tick's key expiry, it reads the `orders` consumer
//! group of each of those streams (`orders_service::OrdersEvents`) and relays the
//! `order:cancelled` / `order:completed` events that produces.

use anyhow::Context;
use orders_service::OrdersEvents;

spin_adapter::redis_component!(on_message);

fn on_message(payload: &[u8]) -> anyhow::Result<()> {
    let subscription = delivery::Subscription {
        database: "orders",
        group: "orders",
        streams: &["events:ticket", "events:payment"],
        handler: &OrdersEvents,
        housekeeping: &delivery::NoHousekeeping,
    };
    spin_adapter::consume(
        "orders-events",
        &subscription,
        orders_service::MIGRATIONS,
        payload,
    )
    .context("consuming ticket and payment events")?;
    Ok(())
}
