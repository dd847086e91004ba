//! The payments service: paying for an order with a Stripe PaymentIntent, exactly once, and
//! giving the money back when the order was cancelled before the payment landed. Plain Rust
//! over the [`storage::Database`] port and the [`PaymentGateway`] port.
//!
//! The Spin components are thin glue. The HTTP component loads a [`PaymentsConfig`], opens the
//! `payments` database, wraps Spin's outbound HTTP in a [`Stripe`] gateway and calls
//! [`PaymentsApi::handle`]. The event component hands order events to [`PaymentsEvents`] and then
//! does what they ask of Stripe ([`settlement::Settlement`]).
//!
//! - `config`: the typed configuration.
//! - `api`: `POST /api/payments`, `POST /api/payments/setup`, `GET /api/payments/config`,
//!   `POST /api/payments/webhook`.
//! - `events`: the replica of orders, and refunds for orders cancelled after payment.
//! - `payment`: the [`Payment`] and its [`PaymentStatus`], the replicated [`Order`].
//! - `payouts`: paying sellers through Stripe Connect: their connected accounts, and one payout
//!   per sale (a destination charge, or a Transfer once the seller can be paid).
//! - `payouts_api`: `GET`/`POST /api/payouts/account`, `GET /api/payouts`,
//!   `POST /api/payouts/dashboard`.
//! - `settlement`: what a succeeded payment does: complete its order, or be refunded.
//! - `store`: the SQL (`migrations/payments/`, [`MIGRATIONS`]) and the outbox.
//! - `stripe`: the [`PaymentGateway`] port and [`Stripe`], its implementation over HTTP with
//!   async-stripe's typed requests.
//! - `webhook`: the `Stripe-Signature` check.
//!
//! **Never a double charge.** One payment per order (a unique index), one PaymentIntent per
//! payment (created under an idempotency key derived from the order), and an intent succeeds at
//! most once. **Never a lost payment.** A success, learned from the confirm answer or the
//! webhook, is recorded with its `payment:created` in one transaction, once.

mod api;
mod config;
mod events;
mod payment;
pub mod payouts;
mod payouts_api;
pub mod settlement;
mod store;
mod stripe;
pub mod webhook;

#[cfg(test)]
mod testing;

pub use crate::api::PaymentsApi;
pub use crate::config::{ConfigError, PaymentsConfig, VariableSource, stripe_api};
pub use crate::events::PaymentsEvents;
pub use crate::payment::{Order, Payment, PaymentStatus};
pub use crate::stripe::{
    Account, Destination, Intent, Link, PaymentGateway, Refund, Stripe, StripeApi, StripeError,
    Transfer,
};

/// The stream of the orders replica, whose `order:created` makes an order payable here.
pub const ORDER_STREAM: &str = "events:order";

/// The payments consumer group on its streams: the replica of orders ([`PaymentsEvents`]), then
/// what that asks of Stripe (`settlement`).
pub fn subscription<'a>(settlement: &'a settlement::Settlement<'a>) -> delivery::Subscription<'a> {
    delivery::Subscription {
        database: "payments",
        group: "payments",
        streams: &[ORDER_STREAM, "events:expiration"],
        handler: &PaymentsEvents,
        housekeeping: settlement,
    }
}

/// Brings the orders replica up to date on demand. A buyer pays the moment their order is
/// placed, often before this service's consumer has been woken by its `order:created` (the
/// Redis trigger handles one message at a time, and a busy on-sale queues many). Rather than
/// answer 404 until it has, a payment for an order not yet known applies what is new on the
/// order stream first.
pub trait OrdersReplica {
    fn catch_up(&self) -> anyhow::Result<()>;
}

/// A replica only its consumer updates (tests of what follows a 404).
pub struct ConsumerOnly;

impl OrdersReplica for ConsumerOnly {
    fn catch_up(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// A warning in the log: something went wrong that the service recovers from, or an operator
/// should know.
fn warn(message: &str) {
    log_line::warn("payments", message);
}

/// The payments database's migrations, in order (`migrations/payments/`), applied on first use.
pub const MIGRATIONS: &[storage::Migration] = storage::migrations!("payments":
    1 "initial" => "0001_initial.sql",
    2 "delivery state" => "0002_delivery_state.sql",
    3 "customers, payment windows, refund outcomes" => "0003_customers_windows_refunds.sql",
    4 "outbox verification" => "0004_outbox_verification.sql",
    5 "payouts" => "0005_payouts.sql",
    6 "acknowledged watermark" => "0006_acknowledged_watermark.sql",
);

#[cfg(test)]
mod tests {
    use storage::{Database, NativeDatabase};

    use super::*;

    #[test]
    fn the_migration_contains_every_event_delivery_statement_verbatim() {
        delivery::testing::assert_migrations_hold_the_schema(MIGRATIONS, "payments");
    }

    #[test]
    fn a_database_made_by_the_old_startup_script_adopts_the_migrations() {
        storage::testing::assert_adopts_a_database_made_by_the_startup_script(MIGRATIONS);
    }

    #[test]
    fn the_database_keeps_one_payment_per_order_and_per_intent() {
        let db = NativeDatabase::open_in_memory().expect("database");
        storage::migrate(&db, MIGRATIONS).expect("migration");
        let insert = "INSERT INTO payments (id, order_id, stripe_id, client_secret, amount_cents, \
                      currency, status, created_at_ms, updated_at_ms) \
                      VALUES (?, ?, ?, 's', 100, 'usd', 'succeeded', 0, 0)";
        db.execute(insert, &["p1".into(), "o1".into(), "pi_1".into()])
            .expect("the first payment");
        for (id, order, intent) in [("p2", "o1", "pi_2"), ("p3", "o2", "pi_1")] {
            let error = db
                .execute(insert, &[id.into(), order.into(), intent.into()])
                .expect_err("a second payment");
            assert!(error.is_unique_violation(), "{error}");
        }
    }
}
