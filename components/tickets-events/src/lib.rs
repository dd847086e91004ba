//! The tickets service's event consumer. Woken by a message on `events:order` (or by the
//! housekeeping tick's key expiry), it reads the `tickets` consumer group of the order stream,
//! reserves, releases or sells tickets (`tickets_service::OrderEvents`), and relays the
//! `ticket:updated` events that produces. The pub/sub message itself is only a wake-up call.

use anyhow::Context;
use spin_adapter::SpinDatabase;
use tickets_service::OrderEvents;

/// spin-sdk's export macro expands to `unsafe` ABI glue; this module is the one place it may.
#[allow(unsafe_code)]
mod entrypoint {
    #[spin_sdk::redis_component]
    fn on_message(payload: Vec<u8>) -> anyhow::Result<()> {
        super::on_message(&payload)
    }
}

const DATABASE: &str = "tickets";
const ORDER_STREAM: &str = "events:order";
const GROUP: &str = "tickets";

fn on_message(payload: &[u8]) -> anyhow::Result<()> {
    // The tick's key expiring is the housekeeping wake-up; anything else is a new-event call.
    let housekeeping = payload == delivery::TICK_KEY.as_bytes();
    let db = SpinDatabase::open(DATABASE).context("opening the tickets database")?;
    let report = spin_adapter::consume(&db, ORDER_STREAM, GROUP, &OrderEvents, housekeeping)
        .context("consuming order events")?;
    if report.failed + report.dead_lettered > 0 {
        eprintln!(
            "WARN order events: {} applied, {} failed, {} dead-lettered",
            report.applied, report.failed, report.dead_lettered
        );
    }
    Ok(())
}
