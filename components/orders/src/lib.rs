//! The orders HTTP component: Spin glue over `orders_service::OrdersApi`. A write commits the
//! order and its event in one SQLite transaction (the outbox); the event is then relayed to
//! Redis. If Redis is away the request still succeeds and the event waits in the outbox.

use anyhow::{Context, Result};
use orders_service::{OrdersApi, OrdersConfig};
use spin_adapter::SpinDatabase;

/// spin-sdk's export macro expands to `unsafe` ABI glue; this module is the one place it may.
#[allow(unsafe_code)]
mod entrypoint {
    use spin_sdk::http::{Request, Response};

    #[spin_sdk::http_component]
    fn handle(request: Request) -> Response {
        super::handle(&request)
    }
}

const DATABASE: &str = "orders";

fn handle(request: &spin_sdk::http::Request) -> spin_sdk::http::Response {
    spin_adapter::handle_http("orders", request, serve)
}

fn serve(request: &api::Request) -> Result<api::Response> {
    let config = OrdersConfig::from_variables(&spin_adapter::SpinVariables)
        .context("reading the orders configuration")?;
    let db = SpinDatabase::open(DATABASE, orders_service::MIGRATIONS)
        .context("opening the orders database")?;
    let response = OrdersApi {
        db: &db,
        config: &config,
        clock: &spin_adapter::WallClock,
    }
    .handle(request);
    spin_adapter::relay_enqueued(&db);
    Ok(response)
}
