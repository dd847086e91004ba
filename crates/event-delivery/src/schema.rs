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
    "CREATE TABLE IF NOT EXISTS processed_events (\
        event_id TEXT PRIMARY KEY, \
        grp TEXT NOT NULL, \
        processed_at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS replica_versions (\
        aggregate TEXT NOT NULL, \
        id TEXT NOT NULL, \
        version INTEGER NOT NULL, \
        PRIMARY KEY (aggregate, id))",
];

/// Runs [`SCHEMA`] on `db`, statement by statement (for tests and first start-up).
pub fn create_schema(db: &dyn storage::Database) -> Result<(), storage::StorageError> {
    for statement in SCHEMA {
        db.execute(statement, &[])?;
    }
    Ok(())
}
