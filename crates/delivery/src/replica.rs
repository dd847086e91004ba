//! The version gate a consumer puts in front of every replica it keeps.
//!
//! An owner bumps an aggregate's version by exactly one per change, so a replica at version `n`
//! can take the event carrying `n + 1` and nothing else: an older one was applied already, a
//! newer one must wait (stay pending) until its predecessors arrive.

use storage::{Database, SqlValue};

use crate::DeliveryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionCheck {
    /// The event is the next version: apply it, then [`record_replica_version`].
    Apply,
    /// The replica is at this version or later already: the event changes nothing.
    AlreadyApplied,
    /// A predecessor is missing; `have` is the replica's version (none yet if `None`).
    NotYet { have: Option<u64> },
}

/// Compares the stored version of `(aggregate, id)` with an event's `version`: `Apply` for
/// version 0 of an unknown aggregate or for stored + 1, `AlreadyApplied` when the stored version
/// is not lower, `NotYet` otherwise. Call it inside the transaction that applies the event.
pub fn check_replica_version(
    tx: &dyn Database,
    aggregate: &str,
    id: &str,
    version: u64,
) -> Result<VersionCheck, DeliveryError> {
    let rows = tx.execute(
        "SELECT version FROM replica_versions WHERE aggregate = ? AND id = ?",
        &[aggregate.into(), id.into()],
    )?;
    let have = match rows.first() {
        Some(row) => Some(u64::try_from(row.integer("version")?).map_err(|_| {
            DeliveryError::Protocol(format!("negative replica version for {aggregate} {id}"))
        })?),
        None => None,
    };
    Ok(VersionCheck::of(have, version))
}

impl VersionCheck {
    /// Compares a replica's version (`None` when it has none yet) with an event's `version`:
    /// `Apply` for version 0 of an unknown aggregate or for `have + 1`, `AlreadyApplied` when
    /// `have` is not lower, `NotYet` otherwise. For a replica that keeps its version in its own
    /// row rather than in `replica_versions`.
    pub fn of(have: Option<u64>, version: u64) -> VersionCheck {
        match have {
            None if version == 0 => VersionCheck::Apply,
            Some(have) if have >= version => VersionCheck::AlreadyApplied,
            Some(have) if have.checked_add(1) == Some(version) => VersionCheck::Apply,
            have => VersionCheck::NotYet { have },
        }
    }
}

/// Stores `version` as the replica's version of `(aggregate, id)`, in the applying transaction.
pub fn record_replica_version(
    tx: &dyn Database,
    aggregate: &str,
    id: &str,
    version: u64,
) -> Result<(), DeliveryError> {
    tx.execute(
        "INSERT INTO replica_versions (aggregate, id, version) VALUES (?, ?, ?) \
         ON CONFLICT (aggregate, id) DO UPDATE SET version = excluded.version",
        &[aggregate.into(), id.into(), SqlValue::from_u64(version)?],
    )?;
    Ok(())
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use storage::NativeDatabase;

    use super::*;

    fn database() -> NativeDatabase {
        let db = NativeDatabase::open_in_memory().expect("database");
        crate::create_schema(&db).expect("schema");
        db
    }

    #[test]
    fn an_unknown_aggregate_takes_only_version_zero() {
        let db = database();
        assert_eq!(
            check_replica_version(&db, "ticket", "t1", 0).expect("check"),
            VersionCheck::Apply
        );
        assert_eq!(
            check_replica_version(&db, "ticket", "t1", 1).expect("check"),
            VersionCheck::NotYet { have: None }
        );
    }

    #[test]
    fn a_known_aggregate_takes_the_next_version_only() {
        let db = database();
        record_replica_version(&db, "ticket", "t1", 0).expect("record");
        record_replica_version(&db, "ticket", "t1", 3).expect("upsert");
        let check = |version| check_replica_version(&db, "ticket", "t1", version).expect("check");
        assert_eq!(check(2), VersionCheck::AlreadyApplied);
        assert_eq!(check(3), VersionCheck::AlreadyApplied);
        assert_eq!(check(4), VersionCheck::Apply);
        assert_eq!(check(5), VersionCheck::NotYet { have: Some(3) });
        // Another aggregate type with the same id is a different replica.
        assert_eq!(
            check_replica_version(&db, "order", "t1", 0).expect("check"),
            VersionCheck::Apply
        );
    }
}
