//! The passes service's event consumer. Woken by `ticket:created` and `ticket:updated` (each
//! ticket's issuer and title), `order:completed` (a pass for the buyer; a resale's raises the
//! generation and revokes the one before), and by the housekeeping tick's key expiry, it reads
//! the `passes` consumer group of both streams (`passes_service::PassesEvents`).

use anyhow::Context;
use passes_service::PassesEvents;

spin_adapter::redis_component!(on_message);

fn on_message(payload: &[u8]) -> anyhow::Result<()> {
    let subscription = delivery::Subscription {
        database: "passes",
        group: "passes",
        streams: &["events:ticket", "events:order"],
        handler: &PassesEvents,
        housekeeping: &delivery::NoHousekeeping,
    };
    spin_adapter::consume(
        "passes-events",
        &subscription,
        passes_service::MIGRATIONS,
        payload,
    )
    .context("consuming ticket and order events")?;
    Ok(())
}
