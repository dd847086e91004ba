//! The SQL over the `tickets` table (schema in `migrations/tickets/`) and the outbox.
//!
//! Every function takes the connection or transaction to run on, so a handler decides what
//! belongs in one transaction. Writes return the row as stored (`RETURNING`), so the event and
//! the response describe exactly what was committed, version included.

use anyhow::Context;
use domain::{Price, TicketId, Title, Version};
use events::Event;
use storage::{Database, Row, SqlValue};

use crate::ticket::{Ticket, TicketStatus};

const COLUMNS: &str =
    "seq, id, title, price_cents, face_value_cents, listing, user_id, version, order_id, status";

/// Inserts a new, available ticket at version 0.
pub(crate) fn insert(
    db: &dyn Database,
    id: &TicketId,
    title: &Title,
    price: Price,
    user_id: &str,
    now_ms: u64,
) -> anyhow::Result<Ticket> {
    let rows = db
        .execute(
            &format!(
                "INSERT INTO tickets (id, title, price_cents, face_value_cents, listing, user_id, \
                 version, order_id, status, created_at_ms) \
                 VALUES (?, ?, ?3, ?3, 1, ?, 0, NULL, ?, ?) RETURNING {COLUMNS}"
            ),
            &[
                id.to_string().into(),
                title.as_str().into(),
                SqlValue::from_u64(price.cents())?,
                user_id.into(),
                TicketStatus::Available.as_str().into(),
                SqlValue::from_u64(now_ms)?,
            ],
        )
        .context("inserting a ticket")?;
    let ticket = returned_ticket(&rows.first(), "inserting a ticket")?;
    db.execute(
        "INSERT INTO tickets_search (rowid, title) VALUES (?, ?)",
        &[ticket.seq.into(), ticket.title.as_str().into()],
    )
    .context("indexing a ticket's title")?;
    Ok(ticket)
}

/// The ticket with this id, whatever its status.
pub(crate) fn find(db: &dyn Database, id: &TicketId) -> anyhow::Result<Option<Ticket>> {
    let rows = db
        .execute(
            &format!("SELECT {COLUMNS} FROM tickets WHERE id = ?"),
            &[id.to_string().into()],
        )
        .context("looking up a ticket")?;
    rows.first().map(|row| ticket_from_row(&row)).transpose()
}

/// Up to `limit` available tickets, newest first, that come after the ticket at `after_seq` in
/// that order (all of them for `None`). Served by the `(status, seq DESC)` index.
pub(crate) fn list_available(
    db: &dyn Database,
    limit: u32,
    after_seq: Option<i64>,
) -> anyhow::Result<Vec<Ticket>> {
    list_newest(
        db,
        "status",
        TicketStatus::Available.as_str(),
        limit,
        after_seq,
    )
    .context("listing available tickets")
}

/// Up to `limit` of a seller's tickets, whatever their status, newest first, after `after_seq`.
/// Served by the `(user_id, seq DESC)` index.
pub(crate) fn list_sellers(
    db: &dyn Database,
    user_id: &str,
    limit: u32,
    after_seq: Option<i64>,
) -> anyhow::Result<Vec<Ticket>> {
    list_newest(db, "user_id", user_id, limit, after_seq).context("listing a seller's tickets")
}

/// Up to `limit` tickets whose `column` is `value`, newest first, after `after_seq`.
fn list_newest(
    db: &dyn Database,
    column: &str,
    value: &str,
    limit: u32,
    after_seq: Option<i64>,
) -> anyhow::Result<Vec<Ticket>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM tickets WHERE {column} = ? AND seq < ? \
             ORDER BY seq DESC LIMIT ?"
        ),
        &[
            value.into(),
            after_seq.unwrap_or(i64::MAX).into(),
            i64::from(limit).into(),
        ],
    )?;
    rows.iter().map(|row| ticket_from_row(&row)).collect()
}

/// Sets a ticket's title and price and bumps its version; in the first listing the price is
/// also the face value. The version is incremented by SQLite inside the caller's
/// `BEGIN IMMEDIATE` transaction, so concurrent edits each get their own.
pub(crate) fn update_details(
    db: &dyn Database,
    id: &TicketId,
    title: &Title,
    price: Price,
) -> anyhow::Result<Ticket> {
    let price = SqlValue::from_u64(price.cents())?;
    let ticket = update(
        db,
        id,
        "title = ?, price_cents = ?2, \
         face_value_cents = CASE WHEN listing = 1 THEN ?2 ELSE face_value_cents END",
        &[title.as_str().into(), price],
        "updating a ticket",
    )?;
    db.execute(
        "UPDATE tickets_search SET title = ? WHERE rowid = ?",
        &[ticket.title.as_str().into(), ticket.seq.into()],
    )
    .context("re-indexing a ticket's title")?;
    Ok(ticket)
}

/// Up to `limit` available tickets whose title holds every word of `search` (an FTS5 query,
/// see `search::search_query`), newest first, after `after_seq`. The full-text index yields the
/// matches newest first, so a page reads no more of them than it shows (and those held or sold);
/// `CROSS JOIN` keeps SQLite from driving the query from the status index instead.
pub(crate) fn search_available(
    db: &dyn Database,
    search: &str,
    limit: u32,
    after_seq: Option<i64>,
) -> anyhow::Result<Vec<Ticket>> {
    let rows = db
        .execute(
            &format!(
                "SELECT {} FROM tickets_search s CROSS JOIN tickets t ON t.seq = s.rowid \
                 WHERE tickets_search MATCH ? AND s.rowid < ? AND t.status = ? \
                 ORDER BY s.rowid DESC LIMIT ?",
                prefixed("t.")
            ),
            &[
                search.into(),
                after_seq.unwrap_or(i64::MAX).into(),
                TicketStatus::Available.as_str().into(),
                i64::from(limit).into(),
            ],
        )
        .context("searching available tickets")?;
    rows.iter().map(|row| ticket_from_row(&row)).collect()
}

/// [`COLUMNS`] qualified with a table alias, named as unqualified.
fn prefixed(alias: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|column| format!("{alias}{column} AS {column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sets which order holds a ticket and its status, and bumps its version.
pub(crate) fn set_holder(
    db: &dyn Database,
    id: &TicketId,
    order_id: Option<&str>,
    status: TicketStatus,
) -> anyhow::Result<Ticket> {
    let values = [order_id.into(), status.as_str().into()];
    update(
        db,
        id,
        "order_id = ?, status = ?",
        &values,
        "changing who holds a ticket",
    )
}

/// A ticket's last completed sale and what it means for a resale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sale {
    /// Who bought it; `None` before its first sale (and for sales before resale existed).
    pub holder_id: Option<String>,
    /// The listing that sale was in; the ticket's own listing is later while it is listed again
    /// or that listing was withdrawn.
    pub listing: Option<u32>,
    /// Whether its pass was checked in at the door.
    pub checked_in: bool,
}

/// The ticket's last sale (all `None` before one).
pub(crate) fn sale(db: &dyn Database, id: &TicketId) -> anyhow::Result<Sale> {
    let rows = db
        .execute(
            "SELECT holder_id, sold_listing, checked_in_at_ms FROM tickets WHERE id = ?",
            &[id.to_string().into()],
        )
        .context("reading a ticket's last sale")?;
    let row = rows
        .first()
        .context("reading the sale of a missing ticket")?;
    Ok(Sale {
        holder_id: row.optional_text("holder_id")?.map(str::to_owned),
        listing: row
            .optional_integer("sold_listing")?
            .map(u32::try_from)
            .transpose()
            .context("a stored listing out of range")?,
        checked_in: row.optional_integer("checked_in_at_ms")?.is_some(),
    })
}

/// Records that the order holding the ticket bought it for `buyer_id`, as the ticket is now
/// (sold, its order, seller, price and listing).
pub(crate) fn record_sale(db: &dyn Database, id: &TicketId, buyer_id: &str) -> anyhow::Result<()> {
    db.execute(
        "UPDATE tickets SET holder_id = ?, sold_order_id = order_id, sold_by = user_id, \
         sold_price_cents = price_cents, sold_listing = listing WHERE id = ?",
        &[buyer_id.into(), id.to_string().into()],
    )
    .context("recording a ticket's sale")?;
    Ok(())
}

/// Lists a sold ticket again, by its holder at `price`: available, in the next listing.
pub(crate) fn list_again(db: &dyn Database, id: &TicketId, price: Price) -> anyhow::Result<Ticket> {
    update(
        db,
        id,
        "status = ?, price_cents = ?, order_id = NULL, user_id = holder_id, listing = listing + 1",
        &[
            TicketStatus::Available.as_str().into(),
            SqlValue::from_u64(price.cents())?,
        ],
        "listing a ticket again",
    )
}

/// Ends a resale listing: the ticket is the holder's again, sold as it was by its last sale.
pub(crate) fn withdraw(db: &dyn Database, id: &TicketId) -> anyhow::Result<Ticket> {
    update(
        db,
        id,
        "status = ?, order_id = sold_order_id, user_id = sold_by, price_cents = sold_price_cents",
        &[TicketStatus::Sold.as_str().into()],
        "withdrawing a resale listing",
    )
}

/// Reserves a ticket whose resale listing was withdrawn for an order placed while it was
/// listed: the listing stands again, at the price the order was placed at.
pub(crate) fn reserve_withdrawn(
    db: &dyn Database,
    id: &TicketId,
    order_id: &str,
    price_cents: u64,
) -> anyhow::Result<Ticket> {
    update(
        db,
        id,
        "status = ?, order_id = ?, price_cents = ?, user_id = holder_id",
        &[
            TicketStatus::Reserved.as_str().into(),
            order_id.into(),
            SqlValue::from_u64(price_cents)?,
        ],
        "reserving a withdrawn resale for an order placed before",
    )
}

/// Records the first check-in of the ticket's pass (later ones change nothing).
pub(crate) fn record_check_in(db: &dyn Database, id: &TicketId, at_ms: u64) -> anyhow::Result<()> {
    db.execute(
        "UPDATE tickets SET checked_in_at_ms = coalesce(checked_in_at_ms, ?) WHERE id = ?",
        &[SqlValue::from_u64(at_ms)?, id.to_string().into()],
    )
    .context("recording a check-in")?;
    Ok(())
}

/// The `placedSeq` of the last order that reserved the ticket, if any did with one.
pub(crate) fn last_order_placed(db: &dyn Database, id: &TicketId) -> anyhow::Result<Option<u64>> {
    let rows = db
        .execute(
            "SELECT last_order_placed FROM tickets WHERE id = ?",
            &[id.to_string().into()],
        )
        .context("reading which order last reserved a ticket")?;
    match rows.first() {
        Some(row) => row
            .optional_integer("last_order_placed")?
            .map(|placed| u64::try_from(placed).context("a negative placedSeq"))
            .transpose(),
        None => Ok(None),
    }
}

/// Records that the order placed `placed`-th reserved the ticket.
pub(crate) fn record_order_placed(
    db: &dyn Database,
    id: &TicketId,
    placed: u64,
) -> anyhow::Result<()> {
    db.execute(
        "UPDATE tickets SET last_order_placed = ? WHERE id = ?",
        &[SqlValue::from_u64(placed)?, id.to_string().into()],
    )
    .context("recording which order reserved a ticket")?;
    Ok(())
}

/// `UPDATE tickets SET <assignments>, version = version + 1 WHERE id = ?`, returning the row.
/// `values` fill the assignments' `?`s, numbered from 1; the id comes after them.
fn update(
    db: &dyn Database,
    id: &TicketId,
    assignments: &str,
    values: &[SqlValue],
    doing: &str,
) -> anyhow::Result<Ticket> {
    let mut values = values.to_vec();
    values.push(id.to_string().into());
    let id_param = values.len();
    let rows = db
        .execute(
            &format!(
                "UPDATE tickets SET {assignments}, version = version + 1 \
                 WHERE id = ?{id_param} RETURNING {COLUMNS}"
            ),
            &values,
        )
        .with_context(|| doing.to_owned())?;
    returned_ticket(&rows.first(), doing)
}

/// Puts `event` in the outbox, in the caller's transaction, under a fresh event id.
pub(crate) fn enqueue(db: &dyn Database, event: &Event, now_ms: u64) -> anyhow::Result<()> {
    delivery::enqueue(db, event, now_ms)
        .with_context(|| format!("putting a {} event in the outbox", event.subject()))
}

fn returned_ticket(row: &Option<Row<'_>>, doing: &str) -> anyhow::Result<Ticket> {
    let row = row
        .as_ref()
        .with_context(|| format!("{doing}: no row came back"))?;
    ticket_from_row(row)
}

fn ticket_from_row(row: &Row<'_>) -> anyhow::Result<Ticket> {
    let id = row.text("id")?;
    let status = row.text("status")?;
    let cents = row.integer("price_cents")?;
    let face_value = row.integer("face_value_cents")?;
    let listing = row.integer("listing")?;
    let version = row.integer("version")?;
    Ok(Ticket {
        seq: row.integer("seq")?,
        id: TicketId::parse(id).with_context(|| format!("stored ticket id {id:?}"))?,
        title: Title::parse(row.text("title")?)
            .with_context(|| format!("stored title of ticket {id}"))?,
        price: u64::try_from(cents)
            .ok()
            .and_then(|cents| Price::from_cents(cents).ok())
            .with_context(|| format!("stored price {cents} of ticket {id}"))?,
        face_value: u64::try_from(face_value)
            .ok()
            .and_then(|cents| Price::from_cents(cents).ok())
            .with_context(|| format!("stored face value {face_value} of ticket {id}"))?,
        listing: u32::try_from(listing)
            .with_context(|| format!("stored listing {listing} of ticket {id}"))?,
        user_id: row.text("user_id")?.to_owned(),
        version: Version::new(
            u64::try_from(version)
                .with_context(|| format!("stored version {version} of ticket {id}"))?,
        ),
        order_id: row.optional_text("order_id")?.map(str::to_owned),
        status: TicketStatus::parse(status)
            .with_context(|| format!("stored status {status:?} of ticket {id}"))?,
    })
}
