//! The payments HTTP component: Spin glue over `payments_service::PaymentsApi`, with Stripe
//! reached through Spin's outbound HTTP (only `stripe_api_base` is allowed). A payment that
//! succeeded commits its `payment:created` to the outbox, which is relayed after the request.

use anyhow::{Context, Result};
use payments_service::settlement::Settlement;
use payments_service::{OrdersReplica, PaymentsApi, PaymentsConfig, Stripe};
use spin_adapter::{SpinDatabase, SpinHttp};

spin_adapter::http_component!("payments", serve);

const DATABASE: &str = "payments";

fn serve(request: &api::Request) -> Result<spin_adapter::Served> {
    let config = PaymentsConfig::from_variables(&spin_adapter::SpinVariables)
        .context("reading the payments configuration")?;
    let db = SpinDatabase::open(DATABASE, payments_service::MIGRATIONS)
        .context("opening the payments database")?;
    let stripe = Stripe {
        http: &SpinHttp,
        api: &config.stripe,
    };
    let response = PaymentsApi {
        db: &db,
        config: &config,
        clock: &spin_adapter::WallClock,
        gateway: &stripe,
        replica: &OrderStream,
    }
    .handle(request);
    Ok(spin_adapter::relay_enqueued(response, db))
}

/// Catches the orders replica up as the payments-events component would on the order stream's
/// message (the same group, so each entry is applied by one of them), Stripe work included.
struct OrderStream;

impl OrdersReplica for OrderStream {
    fn catch_up(&self) -> Result<()> {
        let settlement = Settlement {
            http: &SpinHttp,
            variables: &spin_adapter::SpinVariables,
            tick_secs: spin_adapter::housekeeping_interval_secs(),
        };
        spin_adapter::catch_up(
            &payments_service::subscription(&settlement),
            payments_service::MIGRATIONS,
            payments_service::ORDER_STREAM,
        )?;
        Ok(())
    }
}
