//! The tables this crate keeps in each service's own database.

/// Every statement the delivery machinery needs, one statement per item, each idempotent
/// (`IF NOT EXISTS`). A service copies them into its migrations file; its tests check that the
/// file still contains each one.
///
/// - `outbox`: events committed with a state change and not yet (or already) appended to their
///   stream. `seq` is the commit order; `claimed_until_ms` is a relay's lease on an unsent row.
/// - `processed_events`: the event ids a consumer group has applied, written in the same
///   transaction as the change, so a redelivered event is recognised. A database serves one
///   consumer group per event (the service's), so the event id alone is the key.
/// - `replica_versions`: the last version of each replicated aggregate applied, for
///   [`check_replica_version`](crate::check_replica_version).
/// - `outbox_unverified`: outbox rows sent to a stream whose entry (`entry_ms`-`entry_seq`) may
///   not be durable yet: Redis with `appendfsync everysec` can lose the last second of writes in a
///   crash, and come back with its epoch but without the entry. Housekeeping checks each entry
///   once it is old enough and sends the row again if it is gone
///   ([`verify_sent`](crate::verify_sent)).
/// - `outbox_unacked`: outbox rows whose entry is durable but which some consumer group may not
///   have acknowledged yet ([`record_acknowledged`](crate::record_acknowledged)).
/// - `delivery_state`: small facts about delivery, such as the epoch of the Redis this database
///   last published to ([`resend_after_data_loss`](crate::resend_after_data_loss)) and the
///   outbox seq up to which every consumer has acknowledged what was sent.
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS outbox (\
        seq INTEGER PRIMARY KEY AUTOINCREMENT, \
        event_id TEXT NOT NULL UNIQUE, \
        stream TEXT NOT NULL, \
        envelope TEXT NOT NULL, \
        created_at_ms INTEGER NOT NULL, \
        claimed_until_ms INTEGER, \
        sent_at_ms INTEGER)",
    "CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent_at_ms IS NULL",
    "CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at_ms) WHERE sent_at_ms IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS processed_events (\
        event_id TEXT PRIMARY KEY, \
        grp TEXT NOT NULL, \
        processed_at_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS processed_events_age ON processed_events (processed_at_ms)",
    "CREATE TABLE IF NOT EXISTS replica_versions (\
        aggregate TEXT NOT NULL, \
        id TEXT NOT NULL, \
        version INTEGER NOT NULL, \
        PRIMARY KEY (aggregate, id))",
    "CREATE TABLE IF NOT EXISTS delivery_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox_unverified (\
        seq INTEGER PRIMARY KEY, \
        stream TEXT NOT NULL, \
        entry_ms INTEGER NOT NULL, \
        entry_seq INTEGER NOT NULL, \
        sent_at_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS outbox_unverified_by_entry ON outbox_unverified \
        (stream, entry_ms, entry_seq)",
    "CREATE TABLE IF NOT EXISTS outbox_unacked (\
        seq INTEGER PRIMARY KEY, \
        stream TEXT NOT NULL, \
        entry_ms INTEGER NOT NULL, \
        entry_seq INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS outbox_unacked_by_entry ON outbox_unacked \
        (stream, entry_ms, entry_seq)",
];

/// Runs [`SCHEMA`] on `db`, statement by statement (for tests and first start-up).
pub fn create_schema(db: &dyn storage::Database) -> Result<(), storage::StorageError> {
    for statement in SCHEMA {
        db.execute(statement, &[])?;
    }
    Ok(())
}

/// How long sent outbox rows and processed event ids are kept: long past any redelivery (a
/// relay's duplicate comes within its lease, a consumer's within its retries), short enough
/// that the tables stay small.
pub const RETENTION_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Rows removed from each table per call, so housekeeping never holds the write lock for long.
const PRUNE_BATCH: i64 = 1000;

/// Deletes sent outbox rows and processed event ids older than `retention_ms`, at most
/// `PRUNE_BATCH` of each per call (housekeeping calls it on every tick). Returns how many rows
/// went.
pub fn prune(
    db: &dyn storage::Database,
    now_ms: u64,
    retention_ms: u64,
) -> Result<usize, storage::StorageError> {
    let cutoff = storage::SqlValue::from_u64(now_ms.saturating_sub(retention_ms))?;
    let mut removed = 0;
    for sql in [
        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox \
         WHERE sent_at_ms IS NOT NULL AND sent_at_ms < ? \
         AND seq NOT IN (SELECT seq FROM outbox_unverified) LIMIT ?) RETURNING seq",
        "DELETE FROM processed_events WHERE event_id IN (SELECT event_id FROM processed_events \
         WHERE processed_at_ms < ? LIMIT ?) RETURNING event_id",
    ] {
        removed += db
            .execute(sql, &[cutoff.clone(), PRUNE_BATCH.into()])?
            .len();
    }
    // What a group never acknowledged goes with its outbox row, so the watermark moves on.
    db.execute(
        "DELETE FROM outbox_unacked WHERE seq IN (SELECT seq FROM outbox_unacked \
         WHERE seq NOT IN (SELECT seq FROM outbox) LIMIT ?)",
        &[PRUNE_BATCH.into()],
    )?;
    Ok(removed)
}
