//! The orders service: ordering a ticket holds it for a window while the buyer pays; an order not
//! paid in time is cancelled (when the payments service says so), a paid one completes. Plain Rust over the
//! [`storage::Database`] port.
//!
//! The Spin components are thin glue. The HTTP component loads an [`OrdersConfig`] from Spin
//! variables, opens the `orders` database and calls [`OrdersApi::handle`], which never fails:
//! every error is already a response in the reference's `{"errors":[...]}` format. The event
//! component hands the events it consumes to [`OrdersEvents`], the [`delivery::Handler`] that
//! keeps the tickets replica and cancels or completes orders.
//!
//! - `config`: the typed configuration.
//! - `api`: the route table and one handler per route.
//! - `events`: the consumer of `ticket:created`, `ticket:updated`, `payment:created` and
//!   `payment:expired`.
//! - `order`: the [`Order`] and its [`Ticket`] as the API shows them and as events carry them.
//! - `store`: the SQL over the `orders` and `tickets` tables (`migrations/orders/`,
//!   [`MIGRATIONS`]) and the outbox.
//!
//! **No double booking.** A unique index over the orders that are not cancelled of each listing
//! of a ticket (its first, then one per resale) makes the insert itself the reservation: of any
//! number of concurrent orders for one ticket exactly one is stored, the others fail with
//! "Ticket is already reserved". There is no
//! read-then-write to race.
//!
//! Every change to an order is one `BEGIN IMMEDIATE` transaction that writes the row, bumps its
//! version by exactly one and puts the matching `order:*` event in the outbox; the glue relays
//! the outbox after commit.

mod api;
mod config;
mod events;
mod order;
mod store;

#[cfg(test)]
mod testing;

pub use crate::api::OrdersApi;
pub use crate::config::{ConfigError, ORDER_WINDOW_SECONDS, OrdersConfig, VariableSource};
pub use crate::events::OrdersEvents;
pub use crate::order::{Order, OrderStatus, Ticket};

/// The orders database's migrations, in order (`migrations/orders/`), applied on first use.
pub const MIGRATIONS: &[storage::Migration] = storage::migrations!("orders":
    1 "initial" => "0001_initial.sql",
    2 "open orders by expiry" => "0002_open_orders_by_expiry.sql",
    3 "delivery state" => "0003_delivery_state.sql",
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
        delivery::testing::assert_migrations_hold_the_schema(MIGRATIONS, "orders");
    }

    #[test]
    fn a_database_made_by_the_old_startup_script_adopts_the_migrations() {
        storage::testing::assert_adopts_a_database_made_by_the_startup_script(MIGRATIONS);
    }

    fn plan(db: &NativeDatabase, sql: &str, params: &[storage::SqlValue]) -> Vec<String> {
        db.execute(&format!("EXPLAIN QUERY PLAN {sql}"), params)
            .expect("plan")
            .iter()
            .map(|row| row.text("detail").expect("detail").to_owned())
            .collect()
    }

    #[test]
    fn a_users_orders_are_read_through_the_index_without_sorting() {
        let db = NativeDatabase::open_in_memory().expect("database");
        storage::migrate(&db, MIGRATIONS).expect("migration");
        let details = plan(
            &db,
            "SELECT o.seq FROM orders o JOIN tickets t ON t.id = o.ticket_id \
             WHERE o.user_id = ? AND o.seq > ? ORDER BY o.seq LIMIT ?",
            &["u1".into(), 0.into(), 100.into()],
        );
        assert!(
            details.iter().any(|d| d.contains("orders_by_user"))
                && !details.iter().any(|d| d.contains("TEMP B-TREE")),
            "{details:?}"
        );
    }

    #[test]
    fn the_database_refuses_a_second_live_order_for_a_ticket() {
        let db = NativeDatabase::open_in_memory().expect("database");
        storage::migrate(&db, MIGRATIONS).expect("migration");
        let insert = "INSERT INTO orders (id, user_id, ticket_id, status, price_cents, \
                      expires_at_ms, version, created_at_ms) VALUES (?, 'u', 't1', ?, 100, 0, 0, 0)";
        let order = |id: &str, status: &str| db.execute(insert, &[id.into(), status.into()]);
        order("o1", "cancelled").expect("a cancelled order");
        order("o2", "cancelled").expect("another cancelled order");
        order("o3", "created").expect("the one live order");
        for (id, status) in [
            ("o4", "created"),
            ("o5", "awaiting:payment"),
            ("o6", "complete"),
        ] {
            let error = order(id, status).expect_err("a second live order");
            assert!(error.is_unique_violation(), "{id}: {error}");
        }
        assert!(order("o7", "paid").is_err(), "an unknown status");
    }
}
