//! The expiration timer's component (Redis-triggered, no HTTP route): Spin glue over
//! `expiration_service::on_message`. Woken by `order:created`, `order:cancelled` and
//! `order:completed` (keeping the schedule), and by `__keyevent@0__:expired` (an order's key or
//! the housekeeping tick), it publishes `expiration:complete` for every order whose time ran out.

use anyhow::Context;

spin_adapter::redis_component!(on_message);

fn on_message(payload: &[u8]) -> anyhow::Result<()> {
    spin_adapter::log_line::set_component("expiration");
    let redis = spin_adapter::redis().context("connecting to Redis")?;
    let report = expiration_service::on_message(
        &redis,
        payload,
        spin_adapter::consumer_settings(),
        spin_adapter::housekeeping_interval_secs(),
        spin_adapter::now_unix_ms(),
    )
    .context("keeping the expiration schedule")?;
    delivery::warn_on_failures(expiration_service::GROUP, &report.consumed);
    Ok(())
}
