//! The SQL over the `orders` and `tickets` (replica) tables (schema in `migrations/orders/`)
//! and the outbox.
//!
//! Every function takes the connection or transaction to run on, so a handler decides what
//! belongs in one transaction.

use anyhow::Context;
use domain::{OrderId, Price, TicketId, Title, Version};
use events::Event;
use storage::{Database, Row, SqlValue, StorageError};

use crate::order::{Order, OrderStatus, Ticket};

/// An order's columns with its ticket's, for `FROM orders o JOIN tickets t ON t.id = o.ticket_id`.
const ORDER_COLUMNS: &str = "o.seq, o.id, o.user_id, o.status, o.price_cents, o.expires_at_ms, \
     o.version, t.id AS ticket_id, t.title AS ticket_title, t.price_cents AS ticket_price_cents, \
     t.user_id AS ticket_user_id, t.version AS ticket_version";

/// The replica's ticket with this id.
pub(crate) fn ticket(db: &dyn Database, id: &TicketId) -> anyhow::Result<Option<Ticket>> {
    Ok(ticket_and_listing(db, id)?.map(|(ticket, _)| ticket))
}

/// Which listing of a ticket the replica holds, and whether it was sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listing {
    /// 1 for the first listing, one more per resale.
    pub number: u32,
    /// Whether the tickets service said it was sold: no order is taken until it is listed again.
    pub sold: bool,
}

/// Stores `ticket` in the replica, in `listing`, replacing the version it held.
pub(crate) fn save_ticket(
    db: &dyn Database,
    ticket: &Ticket,
    listing: Listing,
) -> anyhow::Result<()> {
    db.execute(
        "INSERT INTO tickets (id, title, price_cents, user_id, version, listing, sold) \
         VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, \
         price_cents = excluded.price_cents, user_id = excluded.user_id, \
         version = excluded.version, listing = excluded.listing, sold = excluded.sold",
        &[
            ticket.id.to_string().into(),
            ticket.title.as_str().into(),
            SqlValue::from_u64(ticket.price.cents())?,
            ticket.user_id.as_str().into(),
            SqlValue::from_u64(ticket.version.value())?,
            i64::from(listing.number).into(),
            listing.sold.then_some(1_i64).into(),
        ],
    )
    .with_context(|| format!("saving ticket {} in the replica", ticket.id))?;
    Ok(())
}

/// The replica's ticket with this id, with the listing it holds of it: what placing an order
/// reads, in one statement.
pub(crate) fn ticket_and_listing(
    db: &dyn Database,
    id: &TicketId,
) -> anyhow::Result<Option<(Ticket, Listing)>> {
    let rows = db
        .execute(
            "SELECT id AS ticket_id, title AS ticket_title, price_cents AS ticket_price_cents, \
             user_id AS ticket_user_id, version AS ticket_version, listing, sold \
             FROM tickets WHERE id = ?",
            &[id.to_string().into()],
        )
        .context("looking up a ticket and its listing")?;
    rows.first()
        .map(|row| {
            let listing = Listing {
                number: u32::try_from(row.integer("listing")?)
                    .context("a stored listing out of range")?,
                sold: row.optional_integer("sold")?.is_some(),
            };
            Ok((ticket_from_row(&row)?, listing))
        })
        .transpose()
}

/// Whether an order that is not cancelled holds `listing` of the ticket (a read; placing an
/// order relies on the unique index instead).
pub(crate) fn is_held(
    db: &dyn Database,
    ticket_id: &TicketId,
    listing: Listing,
) -> anyhow::Result<bool> {
    let rows = db
        .execute(
            "SELECT 1 AS held FROM orders WHERE ticket_id = ? AND listing = ? \
             AND status <> 'cancelled'",
            &[
                ticket_id.to_string().into(),
                i64::from(listing.number).into(),
            ],
        )
        .context("checking whether a ticket is held")?;
    Ok(!rows.is_empty())
}

/// Why an order could not be placed.
#[derive(Debug)]
pub(crate) enum PlaceError {
    /// The unique index on live orders refused it: another order holds the ticket.
    Reserved,
    Other(anyhow::Error),
}

/// Inserts a new order for `ticket` in `listing` at its current price, status `created`,
/// version 0. The insert itself is the reservation: the unique index over a listing's orders
/// that are not cancelled lets exactly one of any number of concurrent orders in.
pub(crate) fn place_order(
    db: &dyn Database,
    id: &OrderId,
    user_id: &str,
    (ticket, listing): (&Ticket, Listing),
    expires_at_ms: u64,
    now_ms: u64,
) -> Result<Order, PlaceError> {
    let values = || -> Result<Vec<SqlValue>, StorageError> {
        Ok(vec![
            id.to_string().into(),
            user_id.into(),
            ticket.id.to_string().into(),
            OrderStatus::Created.as_str().into(),
            SqlValue::from_u64(ticket.price.cents())?,
            SqlValue::from_u64(expires_at_ms)?,
            SqlValue::from_u64(now_ms)?,
            i64::from(listing.number).into(),
        ])
    };
    let values = values().map_err(|error| PlaceError::Other(error.into()))?;
    let rows = match db.execute(
        "INSERT INTO orders (id, user_id, ticket_id, status, price_cents, expires_at_ms, \
         version, created_at_ms, listing) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING seq",
        &values,
    ) {
        Ok(rows) => rows,
        Err(error) if error.is_unique_violation() => return Err(PlaceError::Reserved),
        Err(error) => {
            return Err(PlaceError::Other(
                anyhow::Error::new(error).context("inserting an order"),
            ));
        }
    };
    let seq = rows
        .first()
        .context("INSERT … RETURNING seq gave no row")
        .and_then(|row| Ok(row.integer("seq")?))
        .map_err(PlaceError::Other)?;
    Ok(Order {
        seq,
        id: *id,
        user_id: user_id.to_owned(),
        status: OrderStatus::Created,
        price: ticket.price,
        expires_at_ms,
        version: Version::new(0),
        ticket: ticket.clone(),
    })
}

/// The order with this id, whoever placed it.
pub(crate) fn find_order(db: &dyn Database, id: &OrderId) -> anyhow::Result<Option<Order>> {
    let rows = db
        .execute(
            &format!(
                "SELECT {ORDER_COLUMNS} FROM orders o JOIN tickets t ON t.id = o.ticket_id \
                 WHERE o.id = ?"
            ),
            &[id.to_string().into()],
        )
        .context("looking up an order")?;
    rows.first().map(|row| order_from_row(&row)).transpose()
}

/// Up to `limit` of `user_id`'s orders, oldest first, that come after the order at `after_seq`
/// (all of them for `None`). Served by the `(user_id, seq)` index.
pub(crate) fn list_orders(
    db: &dyn Database,
    user_id: &str,
    limit: u32,
    after_seq: Option<i64>,
) -> anyhow::Result<Vec<Order>> {
    let rows = db
        .execute(
            &format!(
                "SELECT {ORDER_COLUMNS} FROM orders o JOIN tickets t ON t.id = o.ticket_id \
                 WHERE o.user_id = ? AND o.seq > ? ORDER BY o.seq LIMIT ?"
            ),
            &[
                user_id.into(),
                after_seq.unwrap_or(0).into(),
                i64::from(limit).into(),
            ],
        )
        .context("listing a user's orders")?;
    rows.iter().map(|row| order_from_row(&row)).collect()
}

/// Sets an order's status and bumps its version; the order as it is now.
pub(crate) fn set_status(
    db: &dyn Database,
    id: &OrderId,
    status: OrderStatus,
) -> anyhow::Result<Order> {
    db.execute(
        "UPDATE orders SET status = ?, version = version + 1 WHERE id = ?",
        &[status.as_str().into(), id.to_string().into()],
    )
    .with_context(|| format!("setting order {id} to {}", status.as_str()))?;
    find_order(db, id)?.with_context(|| format!("order {id} vanished while changing it"))
}

/// Puts `event` in the outbox, in the caller's transaction, under a fresh event id.
pub(crate) fn enqueue(db: &dyn Database, event: &Event, now_ms: u64) -> anyhow::Result<()> {
    delivery::enqueue(db, event, now_ms)
        .with_context(|| format!("putting a {} event in the outbox", event.subject()))
}

fn order_from_row(row: &Row<'_>) -> anyhow::Result<Order> {
    let id = row.text("id")?;
    let status = row.text("status")?;
    Ok(Order {
        seq: row.integer("seq")?,
        id: OrderId::parse(id).with_context(|| format!("stored order id {id:?}"))?,
        user_id: row.text("user_id")?.to_owned(),
        status: OrderStatus::parse(status)
            .with_context(|| format!("stored status {status:?} of order {id}"))?,
        price: price(row, "price_cents")?,
        expires_at_ms: unsigned(row, "expires_at_ms")?,
        version: Version::new(unsigned(row, "version")?),
        ticket: ticket_from_row(row)?,
    })
}

/// Reads the `ticket_*` columns.
fn ticket_from_row(row: &Row<'_>) -> anyhow::Result<Ticket> {
    let id = row.text("ticket_id")?;
    Ok(Ticket {
        id: TicketId::parse(id).with_context(|| format!("stored ticket id {id:?}"))?,
        title: Title::parse(row.text("ticket_title")?)
            .with_context(|| format!("stored title of ticket {id}"))?,
        price: price(row, "ticket_price_cents")?,
        user_id: row.text("ticket_user_id")?.to_owned(),
        version: Version::new(unsigned(row, "ticket_version")?),
    })
}

fn unsigned(row: &Row<'_>, column: &str) -> anyhow::Result<u64> {
    let value = row.integer(column)?;
    u64::try_from(value).with_context(|| format!("stored {column} {value} is negative"))
}

fn price(row: &Row<'_>, column: &str) -> anyhow::Result<Price> {
    let cents = unsigned(row, column)?;
    Price::from_cents(cents).with_context(|| format!("stored {column} {cents} is not a price"))
}
