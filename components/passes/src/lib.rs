//! The passes HTTP component: Spin glue over `passes_service::PassesApi`. It alone is granted
//! `pass_signing_key`: passes are signed here and nowhere else; everyone may fetch the public
//! key that checks them. A pass's first check-in commits `pass:checked-in` in the same
//! transaction (the outbox), relayed to Redis after the response is made.

use anyhow::{Context, Result};
use passes_service::{PassesApi, PassesConfig};
use spin_adapter::SpinDatabase;

spin_adapter::http_component!("passes", serve);

const DATABASE: &str = "passes";

fn serve(request: &api::Request) -> Result<spin_adapter::Served> {
    let config = PassesConfig::from_variables(&spin_adapter::SpinVariables)
        .context("reading the passes configuration")?;
    let db = SpinDatabase::open(DATABASE, passes_service::MIGRATIONS)
        .context("opening the passes database")?;
    let response = PassesApi {
        db: &db,
        config: &config,
        clock: &spin_adapter::WallClock,
    }
    .handle(request);
    Ok(spin_adapter::relay_enqueued(response, db))
}
