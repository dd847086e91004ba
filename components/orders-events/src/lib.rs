//! The orders service's event consumer. Woken by `ticket:created` and `ticket:updated` (the
//! tickets replica), `expiration:complete` (cancel an unpaid order) and `payment:created`
//! (complete a paid one), and by the housekeeping tick's key expiry, it reads the `orders`
//! consumer group of each of those streams (`orders_service::OrdersEvents`) and relays the
//! `order:cancelled` / `order:completed` events that produces. On the tick it also cancels any
//! open order whose window ended two ticks ago, in case the timer's schedule was lost.

use anyhow::Context;
use orders_service::OrdersEvents;

/// spin-sdk's export macro expands to `unsafe` ABI glue; this module is the one place it may.
#[allow(unsafe_code)]
mod entrypoint {
    #[spin_sdk::redis_component]
    fn on_message(payload: Vec<u8>) -> anyhow::Result<()> {
        super::on_message(&payload)
    }
}

const DATABASE: &str = "orders";
const STREAMS: &[&str] = &["events:ticket", "events:expiration", "events:payment"];
const GROUP: &str = "orders";

fn on_message(payload: &[u8]) -> anyhow::Result<()> {
    spin_adapter::consume(
        "orders-events",
        DATABASE,
        orders_service::MIGRATIONS,
        STREAMS,
        GROUP,
        &OrdersEvents,
        payload,
    )
    .context("consuming ticket, expiration and payment events")?;
    if delivery::Wake::of(payload) == delivery::Wake::Housekeeping {
        cancel_overdue()?;
    }
    Ok(())
}

/// The expiration timer's backstop: on the housekeeping tick, cancels open orders whose window
/// ended two ticks ago or more (`orders_service::cancel_overdue`), and relays what that
/// published. The timer keeps its schedule in Redis alone; this keeps orders expiring when Redis
/// lost it.
fn cancel_overdue() -> anyhow::Result<()> {
    let db = spin_adapter::SpinDatabase::open(DATABASE, orders_service::MIGRATIONS)
        .context("opening the orders database")?;
    let grace_ms = 2 * 1000 * spin_adapter::housekeeping_interval_secs();
    let cancelled = orders_service::cancel_overdue(&db, spin_adapter::now_unix_ms(), grace_ms)
        .context("cancelling overdue orders")?;
    if cancelled > 0 {
        eprintln!("WARN cancelled {cancelled} overdue order(s) the expiration timer missed");
        spin_adapter::relay_outbox(&db);
    }
    Ok(())
}
