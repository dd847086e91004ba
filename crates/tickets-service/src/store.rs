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

const COLUMNS: &str = "seq, id, title, price_cents, user_id, version, order_id, status";

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
                "INSERT INTO tickets (id, title, price_cents, user_id, version, order_id, status, created_at_ms) \
                 VALUES (?, ?, ?, ?, 0, NULL, ?, ?) RETURNING {COLUMNS}"
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

/// Sets a ticket's title and price and bumps its version. The version is incremented by SQLite
/// inside the caller's `BEGIN IMMEDIATE` transaction, so concurrent edits each get their own.
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
        "title = ?, price_cents = ?",
        [title.as_str().into(), price],
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
        values,
        "changing who holds a ticket",
    )
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
fn update(
    db: &dyn Database,
    id: &TicketId,
    assignments: &str,
    values: [SqlValue; 2],
    doing: &str,
) -> anyhow::Result<Ticket> {
    let [first, second] = values;
    let rows = db
        .execute(
            &format!(
                "UPDATE tickets SET {assignments}, version = version + 1 \
                 WHERE id = ? RETURNING {COLUMNS}"
            ),
            &[first, second, id.to_string().into()],
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
