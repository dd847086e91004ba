//! The payments service's event consumer. Woken by `order:created`, `order:cancelled`,
//! `order:completed` and `expiration:complete` (and the housekeeping tick), it keeps the
//! `payments` consumer group's replica of orders and closes each order's time to pay
//! (`payments_service::OrderEvents`); then, when that changed something or on the tick, it does
//! what needs Stripe, through Spin's outbound HTTP ([`settlement`]): cancels the intents of
//! windows that are closing, makes the refunds still pending and follows the ones Stripe has not
//! finished. On the tick it also closes the windows the expiration timer's event never came for,
//! and leaves the refunds Stripe failed where `ticketing-ops refunds` finds them.

use anyhow::Context;
use delivery::Redis;
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
const STREAMS: &[&str] = &["events:order", "events:expiration"];
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
    .context("consuming order and expiration events")?;
    let tick = delivery::Wake::of(payload) == delivery::Wake::Housekeeping;
    if report.applied > 0 || tick {
        settle(tick)?;
    }
    Ok(())
}

/// The Stripe side of what the events asked for, then the relay of what that published.
fn settle(tick: bool) -> anyhow::Result<()> {
    let api = payments_service::stripe_api(&spin_adapter::SpinVariables)
        .context("reading the Stripe configuration")?;
    let db = SpinDatabase::open(DATABASE, payments_service::MIGRATIONS)
        .context("opening the payments database")?;
    let stripe = Stripe {
        http: &SpinHttp,
        api: &api,
    };
    let now = spin_adapter::now_unix_ms();
    if tick {
        // Two ticks of grace: the timer's own event comes first when it can.
        let grace_ms = 2 * 1000 * spin_adapter::housekeeping_interval_secs();
        let closed = settlement::close_overdue(&db, now, grace_ms)
            .context("closing overdue payment windows")?;
        if closed > 0 {
            eprintln!("WARN closed {closed} payment window(s) the expiration timer missed");
        }
    }
    settlement::settle_closing(&db, &stripe, now).context("closing payment windows")?;
    settlement::refund_pending(&db, &stripe, now).context("making pending refunds")?;
    settlement::track_refunds(&db, &stripe, now).context("following refunds")?;
    if tick {
        report_failed_refunds(&db);
    }
    spin_adapter::relay_outbox(&db);
    Ok(())
}

/// Writes the refunds Stripe failed to Redis under [`settlement::FAILED_REFUNDS_KEY`], for
/// `ticketing-ops refunds`. Best effort: the payments database keeps them either way.
fn report_failed_refunds(db: &SpinDatabase) {
    let outcome = (|| -> anyhow::Result<()> {
        let listing = settlement::failed_refunds_json(db)?;
        let redis = spin_adapter::redis()?;
        redis.execute(
            "SET",
            &[settlement::FAILED_REFUNDS_KEY.into(), listing.into()],
        )?;
        Ok(())
    })();
    if let Err(error) = outcome {
        eprintln!("WARN could not report failed refunds: {error:#}");
    }
}
