//! The payments HTTP component: Spin glue over `payments_service::PaymentsApi`, with Stripe
//! reached through Spin's outbound HTTP (only `stripe_api_base` is allowed). A payment that
//! succeeded commits its `payment:created` to the outbox, which is relayed after the request.

use anyhow::{Context, Result};
use payments_service::{PaymentsApi, PaymentsConfig, Stripe};
use spin_adapter::{SpinDatabase, SpinHttp};

spin_adapter::http_component!("payments", serve);

const DATABASE: &str = "payments";

fn serve(request: &api::Request) -> Result<api::Response> {
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
    }
    .handle(request);
    spin_adapter::relay_enqueued(&db);
    Ok(response)
}
