//! The SQL over the `payments` and `orders` (replica) tables (schema in
//! `migrations/payments/`) and the outbox.

use anyhow::Context;
use domain::{OrderId, Version};
use events::{Event, OrderStatus};
use storage::{Database, Row, SqlValue};

use crate::payment::{Order, Payment, PaymentStatus, PaymentWindow};

const PAYMENT_COLUMNS: &str =
    "id, order_id, stripe_id, client_secret, amount_cents, currency, status, refund_id";

/// The replica's order with this id.
pub(crate) fn order(db: &dyn Database, id: &OrderId) -> anyhow::Result<Option<Order>> {
    let rows = db
        .execute(
            "SELECT id, user_id, status, price_cents, expires_at_ms, version, window_state, \
             seller_id, ticket_id FROM orders WHERE id = ?",
            &[id.to_string().into()],
        )
        .context("looking up an order")?;
    rows.first().map(|row| order_from_row(&row)).transpose()
}

/// Stores `order` in the replica, replacing the version it held. Its window is this service's
/// own state, written by [`set_window`] alone; its seller and ticket are what `order:created`
/// said, kept by later versions.
pub(crate) fn save_order(db: &dyn Database, order: &Order) -> anyhow::Result<()> {
    db.execute(
        "INSERT INTO orders (id, user_id, status, price_cents, expires_at_ms, version, seller_id, \
         ticket_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
         user_id = excluded.user_id, status = excluded.status, price_cents = excluded.price_cents, \
         expires_at_ms = excluded.expires_at_ms, version = excluded.version, \
         seller_id = COALESCE(excluded.seller_id, seller_id), \
         ticket_id = COALESCE(excluded.ticket_id, ticket_id)",
        &[
            order.id.to_string().into(),
            order.user_id.as_str().into(),
            order.status.as_str().into(),
            SqlValue::from_u64(order.price_cents)?,
            SqlValue::from_u64(order.expires_at_ms)?,
            SqlValue::from_u64(order.version.value())?,
            order.seller_id.as_deref().into(),
            order.ticket_id.as_deref().into(),
        ],
    )
    .with_context(|| format!("saving order {} in the replica", order.id))?;
    Ok(())
}

/// The payment of an order, if one was started.
pub(crate) fn payment_for_order(
    db: &dyn Database,
    order_id: &str,
) -> anyhow::Result<Option<Payment>> {
    payment_where(db, "order_id = ?", order_id)
}

/// The payment tied to a PaymentIntent.
pub(crate) fn payment_by_intent(
    db: &dyn Database,
    stripe_id: &str,
) -> anyhow::Result<Option<Payment>> {
    payment_where(db, "stripe_id = ?", stripe_id)
}

fn payment_where(
    db: &dyn Database,
    condition: &str,
    value: &str,
) -> anyhow::Result<Option<Payment>> {
    let rows = db
        .execute(
            &format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE {condition}"),
            &[value.into()],
        )
        .context("looking up a payment")?;
    rows.first().map(|row| payment_from_row(&row)).transpose()
}

/// Records `payment` unless its order has one already; the order's payment either way. Two
/// requests that raced to create an intent for one order keep the first one recorded.
pub(crate) fn insert_payment(
    db: &dyn Database,
    payment: &Payment,
    now_ms: u64,
) -> anyhow::Result<Payment> {
    let now = SqlValue::from_u64(now_ms)?;
    db.execute(
        "INSERT INTO payments (id, order_id, stripe_id, client_secret, amount_cents, currency, \
         status, refund_id, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?) \
         ON CONFLICT DO NOTHING",
        &[
            payment.id.as_str().into(),
            payment.order_id.as_str().into(),
            payment.stripe_id.as_str().into(),
            payment.client_secret.as_str().into(),
            SqlValue::from_u64(payment.amount_cents)?,
            payment.currency.as_str().into(),
            payment.status.as_str().into(),
            now.clone(),
            now,
        ],
    )
    .context("recording a payment")?;
    payment_for_order(db, &payment.order_id)?
        .with_context(|| format!("the payment of order {} vanished", payment.order_id))
}

/// Moves a payment to `status` (and records the refund that settles it, if any), unless it is
/// past it already: a status only moves forward ([`PaymentStatus::can_become`]), whichever of two
/// racing requests writes last. Whether it moved.
pub(crate) fn advance_status(
    db: &dyn Database,
    payment_id: &str,
    status: PaymentStatus,
    refund_id: Option<&str>,
    now_ms: u64,
) -> anyhow::Result<bool> {
    let from = PaymentStatus::predecessors(status);
    let placeholders = vec!["?"; from.len()].join(", ");
    let mut params: Vec<SqlValue> = vec![
        status.as_str().into(),
        refund_id.into(),
        SqlValue::from_u64(now_ms)?,
        payment_id.into(),
    ];
    params.extend(from.iter().map(|status| status.as_str().into()));
    let rows = db
        .execute(
            &format!(
                "UPDATE payments SET status = ?, refund_id = COALESCE(?, refund_id), \
                 updated_at_ms = ? WHERE id = ? AND status IN ({placeholders}) RETURNING id"
            ),
            &params,
        )
        .with_context(|| format!("setting payment {payment_id} to {}", status.as_str()))?;
    Ok(!rows.is_empty())
}

/// Payments in `status`, oldest first.
pub(crate) fn payments_in(
    db: &dyn Database,
    status: PaymentStatus,
) -> anyhow::Result<Vec<Payment>> {
    let rows = db
        .execute(
            &format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE status = ? ORDER BY created_at_ms"
            ),
            &[status.as_str().into()],
        )
        .with_context(|| format!("listing {} payments", status.as_str()))?;
    rows.iter().map(|row| payment_from_row(&row)).collect()
}

/// The payment a refund was made for.
pub(crate) fn payment_by_refund(
    db: &dyn Database,
    refund_id: &str,
) -> anyhow::Result<Option<Payment>> {
    payment_where(db, "refund_id = ?", refund_id)
}

/// Sets where this service stands on an order's time to pay.
pub(crate) fn set_window(
    db: &dyn Database,
    order_id: &OrderId,
    window: Option<PaymentWindow>,
) -> anyhow::Result<()> {
    db.execute(
        "UPDATE orders SET window_state = ? WHERE id = ?",
        &[
            window.map(PaymentWindow::as_str).into(),
            order_id.to_string().into(),
        ],
    )
    .with_context(|| format!("setting the payment window of order {order_id}"))?;
    Ok(())
}

/// Orders whose window is `closing`: their PaymentIntent is still to be cancelled at Stripe.
pub(crate) fn windows_closing(db: &dyn Database) -> anyhow::Result<Vec<OrderId>> {
    order_ids(
        db,
        "SELECT id FROM orders WHERE window_state = 'closing' ORDER BY expires_at_ms",
        &[],
    )
}

/// Open orders whose window ended before `before_ms` and that this service has not closed: the
/// ones whose `expiration:complete` never came. At most `limit`, the oldest first.
pub(crate) fn overdue_orders(
    db: &dyn Database,
    before_ms: u64,
    limit: u32,
) -> anyhow::Result<Vec<OrderId>> {
    order_ids(
        db,
        "SELECT id FROM orders WHERE status IN ('created', 'awaiting:payment') \
         AND window_state IS NULL AND expires_at_ms < ? ORDER BY expires_at_ms LIMIT ?",
        &[SqlValue::from_u64(before_ms)?, i64::from(limit).into()],
    )
}

fn order_ids(db: &dyn Database, sql: &str, params: &[SqlValue]) -> anyhow::Result<Vec<OrderId>> {
    let rows = db.execute(sql, params).context("listing orders")?;
    rows.iter()
        .map(|row| {
            let id = row.text("id")?;
            OrderId::parse(id).with_context(|| format!("stored order id {id:?}"))
        })
        .collect()
}

/// The Stripe Customer of a buyer, once made.
pub(crate) fn customer(db: &dyn Database, user_id: &str) -> anyhow::Result<Option<String>> {
    let rows = db
        .execute(
            "SELECT stripe_id FROM customers WHERE user_id = ?",
            &[user_id.into()],
        )
        .context("looking up a customer")?;
    rows.first()
        .map(|row| Ok(row.text("stripe_id")?.to_owned()))
        .transpose()
}

/// Records a buyer's Customer unless one is recorded (two first payments at once got the same
/// Customer from Stripe, under one idempotency key).
pub(crate) fn insert_customer(
    db: &dyn Database,
    user_id: &str,
    stripe_id: &str,
    now_ms: u64,
) -> anyhow::Result<()> {
    db.execute(
        "INSERT INTO customers (user_id, stripe_id, created_at_ms) VALUES (?, ?, ?) \
         ON CONFLICT DO NOTHING",
        &[
            user_id.into(),
            stripe_id.into(),
            SqlValue::from_u64(now_ms)?,
        ],
    )
    .context("recording a customer")?;
    Ok(())
}

/// Puts `event` in the outbox, in the caller's transaction, under a fresh event id.
pub(crate) fn enqueue(db: &dyn Database, event: &Event, now_ms: u64) -> anyhow::Result<()> {
    delivery::enqueue(db, event, now_ms)
        .with_context(|| format!("putting a {} event in the outbox", event.subject()))
}

pub(crate) fn unsigned(row: &Row<'_>, column: &str) -> anyhow::Result<u64> {
    let value = row.integer(column)?;
    u64::try_from(value).with_context(|| format!("stored {column} {value} is negative"))
}

fn order_from_row(row: &Row<'_>) -> anyhow::Result<Order> {
    let id = row.text("id")?;
    let status = row.text("status")?;
    Ok(Order {
        id: OrderId::parse(id).with_context(|| format!("stored order id {id:?}"))?,
        user_id: row.text("user_id")?.to_owned(),
        status: OrderStatus::parse(status)
            .with_context(|| format!("stored status {status:?} of order {id}"))?,
        price_cents: unsigned(row, "price_cents")?,
        expires_at_ms: unsigned(row, "expires_at_ms")?,
        version: Version::new(unsigned(row, "version")?),
        window: row
            .optional_text("window_state")?
            .map(|text| {
                PaymentWindow::parse(text)
                    .with_context(|| format!("stored window {text:?} of order {id}"))
            })
            .transpose()?,
        seller_id: row.optional_text("seller_id")?.map(str::to_owned),
        ticket_id: row.optional_text("ticket_id")?.map(str::to_owned),
    })
}

fn payment_from_row(row: &Row<'_>) -> anyhow::Result<Payment> {
    let id = row.text("id")?;
    let status = row.text("status")?;
    Ok(Payment {
        id: id.to_owned(),
        order_id: row.text("order_id")?.to_owned(),
        stripe_id: row.text("stripe_id")?.to_owned(),
        client_secret: row.text("client_secret")?.to_owned(),
        amount_cents: unsigned(row, "amount_cents")?,
        currency: row.text("currency")?.to_owned(),
        status: PaymentStatus::parse(status)
            .with_context(|| format!("stored status {status:?} of payment {id}"))?,
        refund_id: row.optional_text("refund_id")?.map(str::to_owned),
    })
}
