//! The passes service: a pass for every sold ticket, and check-in at the door. Plain Rust over
//! the [`storage::Database`] port; everything it knows it learns from events, like every other
//! service.
//!
//! - `events`: [`PassesEvents`], the handler of ticket and order events. `ticket:created` names a
//!   ticket's issuer (its first seller, who may check it in) and `ticket:updated` keeps its title;
//!   `order:completed` gives the ticket a holder and a pass. A later sale of the same ticket
//!   raises the pass's generation and revokes the one before.
//! - `checkin`: [`check_in`], one scan at the door: `ok` the first time, `already_redeemed`
//!   after, `revoked` for an older generation, `invalid` for anything this service did not sign
//!   or does not know. A scan repeated under its nonce is one check-in.
//! - `api`: [`PassesApi`]: `GET /api/passes/key`, `GET /api/passes/revoked?since=`,
//!   `GET /api/tickets/:id/pass` (the holder's), `POST /api/checkins` (the issuer's).
//! - `config`: [`PassesConfig`], with the pass signing key.
//! - `store`: the SQL (`migrations/passes/`, [`MIGRATIONS`]).

mod api;
mod checkin;
mod config;
mod events;
mod store;

pub use crate::api::PassesApi;
pub use crate::checkin::{CheckIn, NotTheIssuer, ScanResult, check_in};
pub use crate::config::{ConfigError, PassesConfig, VariableSource};
pub use crate::events::PassesEvents;
pub use crate::store::{CurrentPass, current_pass, revocations};

/// The passes database's migrations, in order (`migrations/passes/`), applied on first use.
pub const MIGRATIONS: &[storage::Migration] = storage::migrations!("passes":
    1 "initial" => "0001_initial.sql",
    2 "former holders" => "0002_former_holders.sql",
    3 "acknowledged watermark" => "0003_acknowledged_watermark.sql",
);

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migration_contains_every_event_delivery_statement_verbatim() {
        delivery::testing::assert_migrations_hold_the_schema(MIGRATIONS, "passes");
    }
}
