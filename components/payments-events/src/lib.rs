//! The payments service's event consumer. Woken by `order:created`, `order:cancelled` and
//! `order:completed` (and the housekeeping tick), it keeps the `payments` consumer group's
//! replica of orders (`payments_service::OrderEvents`); then, when that changed something or on
//! the tick, it makes the refunds still pending (an order cancelled after its payment
//! succeeded, or a refund Stripe failed before) through Spin's outbound HTTP.

use anyhow::Context;
use payments_service::{OrderEvents, Stripe, settlement};
use spin_adapter::{SpinDatabase, SpinHttp};

/// spin-sdk's export macro expands to `unsafe` ABI glue; this module is the one place it may.
#[allow(unsafe_code)]
mod entrypoint {
    #[spin_sdk::redis_component]
    fn on_message(payload: Vec<u8>) -> anyhow::Result<()> {
        super::on_message(&payload)
    }
}

const DATABASE: &str = "payments";
const STREAMS: &[&str] = &["events:order"];
const GROUP: &str = "payments";

fn on_message(payload: &[u8]) -> anyhow::Result<()> {
    let report = spin_adapter::consume(
        "payments-events",
        DATABASE,
        payments_service::MIGRATIONS,
        STREAMS,
        GROUP,
        &OrderEvents,
        payload,
    )
    .context("consuming order events")?;
    if report.applied > 0 || delivery::Wake::of(payload) == delivery::Wake::Housekeeping {
        let api = payments_service::stripe_api(&spin_adapter::SpinVariables)
            .context("reading the Stripe configuration")?;
        let db = SpinDatabase::open(DATABASE, payments_service::MIGRATIONS)
            .context("opening the payments database")?;
        let stripe = Stripe {
            http: &SpinHttp,
            api: &api,
        };
        settlement::refund_pending(&db, &stripe, spin_adapter::now_unix_ms())
            .context("making pending refunds")?;
    }
    Ok(())
}
