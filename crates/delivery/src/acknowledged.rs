//! How far every consumer has got with what this database sent: the low watermark that lets a
//! Redis that lost its data be healed by sending again only what a consumer may not have
//! applied, however long the outbox's history ([`crate::resend_after_data_loss`]).
//!
//! A row whose stream entry was found durable ([`crate::verify_sent`]) waits in
//! `outbox_unacked` with its entry id. On the tick, [`record_acknowledged`] reads each stream's
//! consumer groups: an entry at or below every group's acknowledged point (the entry before its
//! oldest pending one, or the last one it was delivered when nothing is pending) was applied by
//! all of them, since a consumer acknowledges only after its transaction committed. Such rows
//! leave `outbox_unacked`. The watermark is the outbox seq below every row still in flight
//! (unsent, unverified or unacknowledged), kept as `acknowledged_seq` in `delivery_state`.
//!
//! A stream with no group acknowledges nothing, and a group that stopped reading holds the
//! watermark back: both err on the side of sending again.

use storage::{Database, SqlValue};

use crate::reply::EntryId;
use crate::{DeliveryError, Redis, RedisValue};

/// The `delivery_state` key of the watermark.
pub(crate) const ACKNOWLEDGED_KEY: &str = "acknowledged_seq";

/// Drops the rows every consumer group has acknowledged from `outbox_unacked` and records the
/// watermark; returns it (`None` while the outbox holds nothing).
pub fn record_acknowledged(
    db: &dyn Database,
    redis: &dyn Redis,
) -> Result<Option<u64>, DeliveryError> {
    let streams = db.execute("SELECT DISTINCT stream FROM outbox_unacked", &[])?;
    for row in streams.iter() {
        let stream = row.text("stream")?;
        let Some(EntryId { ms, seq }) = acknowledged_by_every_group(redis, stream)? else {
            continue;
        };
        db.execute(
            "DELETE FROM outbox_unacked WHERE stream = ? \
             AND (entry_ms < ? OR (entry_ms = ? AND entry_seq <= ?))",
            &[
                stream.into(),
                SqlValue::from_u64(ms)?,
                SqlValue::from_u64(ms)?,
                SqlValue::from_u64(seq)?,
            ],
        )?;
    }
    let rows = db.execute(
        "SELECT (SELECT MIN(m) FROM (SELECT MIN(seq) AS m FROM outbox WHERE sent_at_ms IS NULL \
         UNION ALL SELECT MIN(seq) FROM outbox_unverified \
         UNION ALL SELECT MIN(seq) FROM outbox_unacked)) AS in_flight, \
         (SELECT MAX(seq) FROM outbox) AS newest",
        &[],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let watermark = match (
        row.optional_integer("in_flight")?,
        row.optional_integer("newest")?,
    ) {
        (Some(in_flight), _) => in_flight - 1,
        (None, Some(newest)) => newest,
        (None, None) => return Ok(None),
    };
    db.execute(
        "INSERT INTO delivery_state (key, value) VALUES (?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[ACKNOWLEDGED_KEY.into(), watermark.to_string().into()],
    )?;
    Ok(u64::try_from(watermark).ok())
}

/// The watermark last recorded: every outbox row at or below it was applied by every consumer
/// group of its stream. `None` before the first record (then nothing is known to be applied).
pub(crate) fn acknowledged_seq(db: &dyn Database) -> Result<Option<i64>, DeliveryError> {
    let rows = db.execute(
        "SELECT value FROM delivery_state WHERE key = ?",
        &[ACKNOWLEDGED_KEY.into()],
    )?;
    Ok(rows
        .first()
        .map(|row| row.text("value").map(|text| text.parse::<i64>().ok()))
        .transpose()?
        .flatten())
}

/// The newest entry of `stream` that every consumer group has acknowledged, with every entry
/// before it; `None` when the stream has no group (or none has acknowledged anything).
fn acknowledged_by_every_group(
    redis: &dyn Redis,
    stream: &str,
) -> Result<Option<EntryId>, DeliveryError> {
    let exists = redis.execute("EXISTS", &[stream.into()])?;
    if !matches!(exists.first(), Some(RedisValue::Int(1))) {
        return Ok(None);
    }
    let groups = redis.execute("XINFO", &["GROUPS".into(), stream.into()])?;
    let mut lowest: Option<EntryId> = None;
    for (name, pending, last_delivered) in group_fields(&groups) {
        let acknowledged = if pending > 0 {
            let summary = redis.execute("XPENDING", &[stream.into(), name.as_str().into()])?;
            match summary.get(1).and_then(EntryId::of) {
                Some(oldest_pending) => before(oldest_pending),
                None => return Ok(None),
            }
        } else {
            last_delivered
        };
        let Some(acknowledged) = acknowledged else {
            return Ok(None);
        };
        lowest = Some(lowest.map_or(acknowledged, |low| low.min(acknowledged)));
    }
    Ok(lowest)
}

/// `(name, pending, last-delivered-id)` of each group in a flattened `XINFO GROUPS` reply: per
/// group, its field names each followed by the value. A group that was delivered nothing has
/// last-delivered-id `0-0`, which acknowledges nothing.
fn group_fields(reply: &[RedisValue]) -> Vec<(String, i64, Option<EntryId>)> {
    let mut groups = Vec::new();
    let mut current: Option<(String, i64, Option<EntryId>)> = None;
    for pair in reply.chunks(2) {
        let [RedisValue::Bytes(key), value] = pair else {
            continue;
        };
        match (key.as_slice(), value) {
            (b"name", RedisValue::Bytes(name)) => {
                groups.extend(current.take());
                current = Some((String::from_utf8_lossy(name).into_owned(), 0, None));
            }
            (b"pending", RedisValue::Int(count)) => {
                if let Some(group) = current.as_mut() {
                    group.1 = *count;
                }
            }
            (b"last-delivered-id", value) => {
                if let Some(group) = current.as_mut() {
                    group.2 = EntryId::of(value).filter(|id| *id != EntryId { ms: 0, seq: 0 });
                }
            }
            _ => {}
        }
    }
    groups.extend(current);
    groups
}

/// The greatest entry id below `id`, or `None` below the first one there can be.
fn before(EntryId { ms, seq }: EntryId) -> Option<EntryId> {
    match (ms, seq) {
        (0, 0) => None,
        // Entry sequence numbers are stored as SQLite integers: i64::MAX stands for any.
        (ms, 0) => Some(EntryId {
            ms: ms - 1,
            seq: i64::MAX.unsigned_abs(),
        }),
        (ms, seq) => Some(EntryId { ms, seq: seq - 1 }),
    }
}
