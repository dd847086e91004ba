//! The payments service's event consumer. Woken by `order:created`, `order:cancelled`,
//! `order:completed` and `expiration:complete` (and the housekeeping tick), it keeps the
//! `payments` consumer group's replica of orders and closes each order's time to pay
//! (`payments_service::PaymentsEvents`); then, when that changed something or on the tick, it
//! does what needs Stripe, through Spin's outbound HTTP (`payments_service::settlement::Settlement`):
//! cancels the intents of windows that are closing, makes the refunds still pending and follows
//! the ones Stripe has not finished. On the tick it also closes the windows the expiration
//! timer's event never came for, and leaves the refunds Stripe failed where `ticketing-ops
//! refunds` finds them.

use anyhow::Context;
use payments_service::settlement::Settlement;

spin_adapter::redis_component!(on_message);

fn on_message(payload: &[u8]) -> anyhow::Result<()> {
    let settlement = Settlement {
        http: &spin_adapter::SpinHttp,
        variables: &spin_adapter::SpinVariables,
        tick_secs: spin_adapter::housekeeping_interval_secs(),
    };
    spin_adapter::consume(
        "payments-events",
        &payments_service::subscription(&settlement),
        payments_service::MIGRATIONS,
        payload,
    )
    .context("consuming order and expiration events")?;
    Ok(())
}
