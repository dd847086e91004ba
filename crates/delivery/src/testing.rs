//! Test support (the `testing` feature): applying an event to a service's database as its
//! consumer does, reading back what it enqueued, and checking its migrations.

use events::{Envelope, Event};
use storage::{Database, Migration};

use crate::{Accepted, Applied, DatabaseSink, Handler, SCHEMA, Sink};

/// Applies `event`, in a fresh envelope, as consumer group `group` does: through a
/// [`DatabaseSink`], in a transaction that commits on `Done` and rolls back otherwise. A
/// duplicate counts as `Done`.
pub fn deliver(
    db: &dyn Database,
    group: &str,
    handler: &dyn Handler,
    event: impl Into<Event>,
    now_ms: u64,
) -> anyhow::Result<Applied> {
    let event = event.into();
    let envelope = event.to_envelope(
        domain::EventId::new_random().to_string(),
        domain::rfc3339_millis(now_ms),
    );
    let sink = DatabaseSink { db, handler };
    Ok(match sink.accept(group, &envelope, &event, now_ms)? {
        Accepted::Applied | Accepted::Duplicate => Applied::Done,
        Accepted::NotYet(reason) => Applied::NotYet(reason),
    })
}

/// Every envelope in the outbox, oldest first.
pub fn outbox(db: &dyn Database) -> Vec<Envelope> {
    crate::outbox_envelopes(db).expect("read the outbox")
}

/// The events in the outbox, oldest first, each checked to decode.
pub fn enqueued(db: &dyn Database) -> Vec<Event> {
    outbox(db)
        .iter()
        .map(|envelope| envelope.decode().expect("an event of the contract"))
        .collect()
}

/// Every statement of [`SCHEMA`] stands verbatim in one of `migrations` (those of
/// `migrations/<service>/`).
pub fn assert_migrations_hold_the_schema(migrations: &[Migration], service: &str) {
    for statement in SCHEMA {
        assert!(
            migrations
                .iter()
                .any(|m| m.sql.contains(&format!("{statement};\n"))),
            "migrations/{service}/ lacks: {statement}"
        );
    }
}
