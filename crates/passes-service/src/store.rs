//! The passes database's SQL.

use anyhow::Context;
use storage::{Database, SqlValue};

/// A ticket's current pass, with what a pass page shows of its ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentPass {
    pub ticket_id: String,
    pub title: String,
    pub issuer_id: String,
    pub holder_id: String,
    pub order_id: String,
    pub generation: u32,
    pub seed: [u8; 16],
}

impl CurrentPass {
    /// What the pass's secret signs.
    pub fn pass(&self) -> anyhow::Result<pass_secret::Pass> {
        Ok(pass_secret::Pass {
            ticket_id: uuid::Uuid::parse_str(&self.ticket_id)
                .with_context(|| format!("ticket id {:?}", self.ticket_id))?,
            generation: self.generation,
            seed: self.seed,
        })
    }
}

/// The ticket's issuer and title, if the replica has the ticket.
pub(crate) fn ticket(db: &dyn Database, id: &str) -> anyhow::Result<Option<(String, String)>> {
    let rows = db.execute(
        "SELECT issuer_id, title FROM tickets WHERE id = ?",
        &[id.into()],
    )?;
    rows.first()
        .map(|row| {
            Ok((
                row.text("issuer_id")?.to_owned(),
                row.text("title")?.to_owned(),
            ))
        })
        .transpose()
}

/// Inserts the ticket's first version (`ticket:created`), or applies a later one to the title.
/// The issuer is set once, by the first listing.
pub(crate) fn save_ticket(
    tx: &dyn Database,
    id: &str,
    title: &str,
    issuer_id: &str,
    version: u64,
) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO tickets (id, title, issuer_id, version) VALUES (?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, version = excluded.version",
        &[
            id.into(),
            title.into(),
            issuer_id.into(),
            SqlValue::from_u64(version)?,
        ],
    )?;
    Ok(())
}

/// The ticket's current pass, if it was ever sold and the replica knows the ticket.
pub fn current_pass(db: &dyn Database, ticket_id: &str) -> anyhow::Result<Option<CurrentPass>> {
    let rows = db.execute(
        "SELECT p.ticket_id, t.title, t.issuer_id, p.holder_id, p.order_id, p.generation, p.seed \
         FROM passes p JOIN tickets t ON t.id = p.ticket_id WHERE p.ticket_id = ?",
        &[ticket_id.into()],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut seed = [0; 16];
    hex::decode_to_slice(row.text("seed")?, &mut seed).context("a pass's seed")?;
    Ok(Some(CurrentPass {
        ticket_id: row.text("ticket_id")?.to_owned(),
        title: row.text("title")?.to_owned(),
        issuer_id: row.text("issuer_id")?.to_owned(),
        holder_id: row.text("holder_id")?.to_owned(),
        order_id: row.text("order_id")?.to_owned(),
        generation: u32::try_from(row.integer("generation")?).context("a generation")?,
        seed,
    }))
}

/// Whether `user_id` held an earlier, revoked pass of the ticket: it was sold on since.
pub(crate) fn held_before(
    db: &dyn Database,
    ticket_id: &str,
    user_id: &str,
) -> anyhow::Result<bool> {
    let rows = db.execute(
        "SELECT 1 AS held FROM revocations WHERE holder_id = ? AND ticket_id = ? LIMIT 1",
        &[user_id.into(), ticket_id.into()],
    )?;
    Ok(!rows.is_empty())
}

/// The order that holds the ticket's pass now, and its generation.
pub(crate) fn pass_holder(
    tx: &dyn Database,
    ticket_id: &str,
) -> anyhow::Result<Option<(String, u32)>> {
    let rows = tx.execute(
        "SELECT order_id, generation FROM passes WHERE ticket_id = ?",
        &[ticket_id.into()],
    )?;
    rows.first()
        .map(|row| {
            let generation = u32::try_from(row.integer("generation")?).context("a generation")?;
            Ok((row.text("order_id")?.to_owned(), generation))
        })
        .transpose()
}

/// Makes `holder_id` (by `order_id`) the holder of a new pass of `generation`; the generation
/// before it, if any, is revoked.
pub(crate) fn issue(
    tx: &dyn Database,
    ticket_id: &str,
    holder_id: &str,
    order_id: &str,
    generation: u32,
    seed: &[u8; 16],
    now_ms: u64,
) -> anyhow::Result<()> {
    let now = SqlValue::from_u64(now_ms)?;
    if generation > 1 {
        tx.execute(
            "INSERT INTO revocations (ticket_id, generation, revoked_at_ms, holder_id) \
             SELECT ?1, ?2, ?3, (SELECT holder_id FROM passes WHERE ticket_id = ?1) \
             ON CONFLICT DO NOTHING",
            &[
                ticket_id.into(),
                i64::from(generation - 1).into(),
                now.clone(),
            ],
        )?;
    }
    tx.execute(
        "INSERT INTO passes (ticket_id, holder_id, order_id, generation, seed, issued_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (ticket_id) DO UPDATE SET \
         holder_id = ?2, order_id = ?3, generation = ?4, seed = ?5, issued_at_ms = ?6",
        &[
            ticket_id.into(),
            holder_id.into(),
            order_id.into(),
            i64::from(generation).into(),
            hex::encode(seed).into(),
            now,
        ],
    )?;
    Ok(())
}

/// The revoked `(seq, ticket id, generation)` after cursor `since`, oldest first, at most
/// `limit`: the list a scanner keeps.
pub fn revocations(
    db: &dyn Database,
    since: i64,
    limit: u32,
) -> anyhow::Result<Vec<(i64, String, u32)>> {
    db.execute(
        "SELECT seq, ticket_id, generation FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?",
        &[since.into(), i64::from(limit).into()],
    )?
    .iter()
    .map(|row| {
        let generation = u32::try_from(row.integer("generation")?).context("a generation")?;
        Ok((
            row.integer("seq")?,
            row.text("ticket_id")?.to_owned(),
            generation,
        ))
    })
    .collect()
}
