//! The orders HTTP component: Spin glue over `orders_service::OrdersApi`. A write commits the
//! order and its event in one SQLite transaction (the outbox); the event is then relayed to
//! Redis. If Redis is away the request still succeeds and the event waits in the outbox.

use anyhow::{Context, Result};
use orders_service::{OrdersApi, OrdersConfig};
use spin_adapter::SpinDatabase;

spin_adapter::http_component!("orders", serve);

const DATABASE: &str = "orders";

fn serve(request: &api::Request) -> Result<spin_adapter::Served> {
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
    Ok(spin_adapter::relay_enqueued(response, db))
}
