//! The tickets service: tickets for sale, as plain Rust over the [`storage::Database`] port.
//!
//! The Spin components are thin glue. The HTTP component loads a [`TicketsConfig`] from Spin
//! variables (through a [`VariableSource`]), opens the `tickets` database and calls
//! [`TicketsApi::handle`], which never fails: every error is already a response in the
//! reference's `{"errors":[...]}` format. The event component hands order events to
//! [`TicketsEvents`], the [`delivery::Handler`] that reserves, releases and sells tickets.
//!
//! - `config`: the typed configuration and its [`ConfigError`].
//! - `api`: the route table and one handler per route.
//! - `events`: the consumer of `order:created`, `order:cancelled`, `order:completed` and
//!   `pass:checked-in`.
//! - `home`: the home page, `/`, with the first page of tickets rendered into its HTML.
//! - `resale`: listing a sold ticket again under the price cap, and withdrawing it.
//! - `search`: the search box's text as a full-text query over titles.
//! - `ticket`: the [`Ticket`] as the API shows it and as events carry it, and [`TicketStatus`].
//! - `store`: the SQL over the `tickets` table (`migrations/tickets/`, [`MIGRATIONS`]) and
//!   the outbox.
//!
//! Every change to a ticket is one SQLite transaction that writes the row, bumps its version by
//! exactly one and puts the matching `ticket:created` / `ticket:updated` event in the outbox, so
//! a change and its event are never separated; the glue relays the outbox after commit. Writers
//! open the transaction with `BEGIN IMMEDIATE`, which serializes them, so concurrent edits of one
//! ticket each get their own version and none is lost.

mod api;
mod config;
mod events;
mod home;
mod resale;
mod search;
mod store;
mod ticket;

#[cfg(test)]
mod testing;

pub use crate::api::TicketsApi;
pub use crate::config::{ConfigError, TicketsConfig, VariableSource};
pub use crate::events::TicketsEvents;
pub use crate::ticket::{Ticket, TicketStatus};
pub use domain::Clock;

/// The tickets database's migrations, in order (`migrations/tickets/`), applied on first use.
pub const MIGRATIONS: &[storage::Migration] = storage::migrations!("tickets":
    1 "initial" => "0001_initial.sql",
    2 "delivery state" => "0002_delivery_state.sql",
    3 "order placement" => "0003_order_placement.sql",
    4 "outbox verification" => "0004_outbox_verification.sql",
    5 "resale" => "0005_resale.sql",
    6 "acknowledged watermark" => "0006_acknowledged_watermark.sql",
);

#[cfg(test)]
mod tests {
    use storage::{Database, NativeDatabase};

    use super::*;

    #[test]
    fn the_migration_contains_every_event_delivery_statement_verbatim() {
        delivery::testing::assert_migrations_hold_the_schema(MIGRATIONS, "tickets");
    }

    #[test]
    fn a_database_made_by_the_old_startup_script_adopts_the_migrations() {
        let db = storage::testing::assert_adopts_a_database_made_by_the_startup_script(MIGRATIONS);
        let tables = db
            .execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name",
                &[],
            )
            .expect("list tables");
        let names: Vec<&str> = tables
            .iter()
            .map(|row| row.text("name").expect("a name"))
            .collect();
        for expected in [
            "outbox",
            "processed_events",
            "replica_versions",
            "tickets",
            "tickets_by_seller_newest",
            "tickets_by_status_newest",
            "tickets_search",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
    }

    #[test]
    fn the_database_refuses_impossible_tickets() {
        let db = NativeDatabase::open_in_memory().expect("database");
        storage::migrate(&db, MIGRATIONS).expect("migration");
        let insert = "INSERT INTO tickets (id, title, price_cents, user_id, version, status, created_at_ms) \
                      VALUES (?, 'Gig', ?, 'u1', 0, ?, 0)";
        db.execute(insert, &["t1".into(), 100.into(), "available".into()])
            .expect("a valid ticket");
        for (id, cents, status) in [
            ("t1", 100, "available"),
            ("t2", 0, "available"),
            ("t3", 100, "gone"),
        ] {
            assert!(
                db.execute(insert, &[id.into(), cents.into(), status.into()])
                    .is_err(),
                "{id} {cents} {status}"
            );
        }
    }

    #[test]
    fn listings_read_their_index_newest_first_without_sorting() {
        let db = NativeDatabase::open_in_memory().expect("database");
        storage::migrate(&db, MIGRATIONS).expect("migration");
        for (column, index) in [
            ("status", "tickets_by_status_newest"),
            ("user_id", "tickets_by_seller_newest"),
        ] {
            let details = storage::testing::query_plan(
                &db,
                &format!(
                    "SELECT seq FROM tickets WHERE {column} = ? AND seq < ? \
                     ORDER BY seq DESC LIMIT ?"
                ),
                &["x".into(), i64::MAX.into(), 100.into()],
            );
            assert!(
                details.iter().any(|d| d.contains(index))
                    && !details.iter().any(|d| d.contains("TEMP B-TREE")),
                "{column}: {details:?}"
            );
        }
    }
}
