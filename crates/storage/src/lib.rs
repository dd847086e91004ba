//! The SQLite port every service writes through.
//!
//! A component opens its database with Spin's `spin:sqlite/sqlite@3.0.0` and wraps the connection
//! in a [`Database`]; the service code above it only ever sees this crate. A request flows like
//! this:
//!
//! 1. the service calls [`transaction`], which sends `BEGIN IMMEDIATE` so the write lock is taken
//!    up front (two writers never deadlock upgrading a read lock);
//! 2. inside, it runs one statement per [`Database::execute`] call with positional
//!    [`SqlValue`] parameters, and reads the [`Rows`] that come back through typed [`Row`]
//!    accessors, which turn a surprising value into a [`StorageError::Decode`];
//! 3. `COMMIT` when the closure returns `Ok`, `ROLLBACK` when it returns `Err`.
//!
//! [`Database::execute`] keeps Spin's semantics, so code tested natively behaves the same in a
//! component: one statement per call, values come back by their storage class, and errors are
//! the SQLite message ("database is locked" after a 5 s busy timeout).
//!
//! With the `native` feature, [`NativeDatabase`] implements the port with rusqlite for tests.
//! [`apply_script`] runs a whole migration file, statement by statement.

mod row;
mod value;

#[cfg(feature = "native")]
mod native;

#[cfg(feature = "native")]
pub use native::NativeDatabase;
pub use row::{Row, Rows};
pub use value::SqlValue;

/// Why a database call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite refused the statement or the connection failed; the text is SQLite's message.
    #[error("database error: {0}")]
    Sql(String),
    /// A column is missing from a result, or holds a value of another type than the caller reads.
    #[error("unexpected column value: {0}")]
    Decode(String),
}

impl StorageError {
    /// A `UNIQUE` (or primary key) constraint rejected an insert or update.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Sql(message) if message.contains("UNIQUE constraint failed"))
    }

    /// Another connection held the lock for longer than the busy timeout.
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Sql(message)
            if message.contains("database is locked") || message.to_ascii_lowercase().contains("busy"))
    }
}

/// One SQLite connection (`spin:sqlite@3.0.0` in components).
///
/// Only the first statement of `sql` runs in Spin, which skips the rest silently — never pass
/// several ([`NativeDatabase`] refuses them, so tests catch it). Statements that
/// return nothing give empty [`Rows`].
pub trait Database {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<Rows, StorageError>;
}

/// Runs `f` in `BEGIN IMMEDIATE` … `COMMIT`, or rolls back when `f` returns `Err` (and when
/// `COMMIT` itself fails). `f` gets the same connection back; it must not begin or end a
/// transaction itself.
pub fn transaction<T, E: From<StorageError>>(
    db: &dyn Database,
    f: impl FnOnce(&dyn Database) -> Result<T, E>,
) -> Result<T, E> {
    db.execute("BEGIN IMMEDIATE", &[])?;
    match f(db) {
        Ok(value) => match db.execute("COMMIT", &[]) {
            Ok(_) => Ok(value),
            Err(error) => {
                rollback(db);
                Err(error.into())
            }
        },
        Err(error) => {
            rollback(db);
            Err(error)
        }
    }
}

/// Ends a failed transaction. The caller is already returning the error that made it fail, which
/// is the one worth reporting; a failing `ROLLBACK` normally means SQLite has rolled back on its
/// own already (it does after some I/O and memory errors), and otherwise the connection is closed
/// when the component instance ends, which rolls back too.
fn rollback(db: &dyn Database) {
    if let Err(error) = db.execute("ROLLBACK", &[]) {
        eprintln!("storage: ROLLBACK after a failed transaction also failed: {error}");
    }
}

/// Runs a whole migration script statement by statement: statements end with `;` at the end of a
/// line, and blank lines and `--` comment lines are skipped. Meant for tests and `--sqlite`-less
/// setups; triggers with `;` inside their bodies are not supported.
pub fn apply_script(db: &dyn Database, script: &str) -> Result<(), StorageError> {
    let mut statement = String::new();
    for line in script.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        statement.push_str(line);
        statement.push('\n');
        if trimmed.ends_with(';') {
            db.execute(&statement, &[])?;
            statement.clear();
        }
    }
    if !statement.trim().is_empty() {
        db.execute(&statement, &[])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> NativeDatabase {
        NativeDatabase::open_in_memory().expect("in-memory database")
    }

    fn count(db: &dyn Database, table: &str) -> i64 {
        db.execute(&format!("SELECT count(*) AS n FROM {table}"), &[])
            .expect("count")
            .first()
            .expect("one row")
            .integer("n")
            .expect("an integer")
    }

    #[derive(Debug)]
    enum TestError {
        Storage(StorageError),
        Refused,
    }

    impl From<StorageError> for TestError {
        fn from(error: StorageError) -> Self {
            Self::Storage(error)
        }
    }

    #[test]
    fn a_transaction_commits_when_its_closure_succeeds() {
        let db = database();
        db.execute("CREATE TABLE t (x INTEGER)", &[])
            .expect("create");
        let result: Result<(), TestError> = transaction(&db, |tx| {
            tx.execute("INSERT INTO t (x) VALUES (?)", &[1.into()])?;
            Ok(())
        });
        result.expect("commits");
        assert_eq!(count(&db, "t"), 1);
    }

    #[test]
    fn a_transaction_rolls_back_when_its_closure_fails() {
        let db = database();
        db.execute("CREATE TABLE t (x INTEGER)", &[])
            .expect("create");
        let result: Result<(), TestError> = transaction(&db, |tx| {
            tx.execute("INSERT INTO t (x) VALUES (?)", &[1.into()])?;
            Err(TestError::Refused)
        });
        assert!(matches!(result, Err(TestError::Refused)));
        assert_eq!(count(&db, "t"), 0);
        // The connection is usable again: no transaction was left open.
        let again: Result<(), TestError> = transaction(&db, |_| Ok(()));
        again.expect("a new transaction begins");
    }

    #[test]
    fn a_failing_statement_inside_a_transaction_rolls_everything_back() {
        let db = database();
        db.execute("CREATE TABLE t (x INTEGER UNIQUE)", &[])
            .expect("create");
        let result: Result<(), TestError> = transaction(&db, |tx| {
            tx.execute("INSERT INTO t (x) VALUES (1)", &[])?;
            tx.execute("INSERT INTO t (x) VALUES (1)", &[])?;
            Ok(())
        });
        match result {
            Err(TestError::Storage(error)) => assert!(error.is_unique_violation(), "{error}"),
            other => panic!("expected a unique violation, got {other:?}"),
        }
        assert_eq!(count(&db, "t"), 0);
    }

    #[test]
    fn several_statements_in_one_string_are_refused_natively() {
        // Spin would run only the first and skip the rest silently; refusing here makes a test
        // catch what would go missing in a component.
        let db = database();
        let error = db
            .execute(
                "CREATE TABLE a (x INTEGER); CREATE TABLE b (x INTEGER)",
                &[],
            )
            .expect_err("two statements");
        assert!(error.to_string().contains("Multiple statements"), "{error}");
    }

    #[test]
    fn a_script_runs_every_statement_and_skips_comments() {
        let db = database();
        let script = "-- the tables\nCREATE TABLE a (\n  x INTEGER\n);\n\n-- and b\nCREATE TABLE b (x INTEGER);\nINSERT INTO b (x) VALUES (1);\nINSERT INTO b (x) VALUES (2)\n";
        apply_script(&db, script).expect("script runs");
        assert_eq!(count(&db, "a"), 0);
        assert_eq!(count(&db, "b"), 2);
    }

    #[test]
    fn values_come_back_by_their_storage_class() {
        let db = database();
        let rows = db
            .execute(
                "SELECT ? AS i, ? AS t, ? AS n, 1.5 AS r, x'0102' AS b, 2 > 1",
                &[7.into(), "seven".into(), SqlValue::Null],
            )
            .expect("select");
        assert_eq!(rows.columns, ["i", "t", "n", "r", "b", "2 > 1"]);
        assert_eq!(
            rows.rows,
            [vec![
                SqlValue::Integer(7),
                SqlValue::Text("seven".into()),
                SqlValue::Null,
                SqlValue::Real(1.5),
                SqlValue::Blob(vec![1, 2]),
                SqlValue::Integer(1),
            ]]
        );
        let row = rows.first().expect("a row");
        assert_eq!(row.integer("i").expect("integer"), 7);
        assert_eq!(row.text("t").expect("text"), "seven");
        assert_eq!(row.optional_text("n").expect("null text"), None);
        assert_eq!(row.optional_integer("n").expect("null integer"), None);
        assert!(matches!(row.text("i"), Err(StorageError::Decode(_))));
        assert!(matches!(
            row.integer("missing"),
            Err(StorageError::Decode(_))
        ));
    }

    #[test]
    fn statements_without_results_return_no_columns() {
        let db = database();
        let rows = db.execute("CREATE TABLE t (x INTEGER)", &[]).expect("ddl");
        assert!(rows.columns.is_empty());
        assert!(rows.is_empty());
        let rows = db
            .execute("INSERT INTO t (x) VALUES (1) RETURNING x", &[])
            .expect("insert returning");
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn a_second_connection_waits_for_the_lock_and_then_reports_busy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let first = NativeDatabase::open(&path).expect("open");
        let second = NativeDatabase::open(&path)
            .expect("open")
            .with_busy_timeout(std::time::Duration::from_millis(50));
        first
            .execute("CREATE TABLE t (x INTEGER)", &[])
            .expect("create");
        first.execute("BEGIN IMMEDIATE", &[]).expect("begin");
        let error = second
            .execute("BEGIN IMMEDIATE", &[])
            .expect_err("the lock is held");
        assert!(error.is_busy(), "{error}");
        first.execute("COMMIT", &[]).expect("commit");
        second
            .execute("BEGIN IMMEDIATE", &[])
            .expect("lock is free");
        second.execute("ROLLBACK", &[]).expect("rollback");
    }

    #[test]
    fn unsigned_values_beyond_sqlite_integers_are_refused() {
        assert_eq!(SqlValue::from_u64(5).expect("fits"), SqlValue::Integer(5));
        assert!(matches!(
            SqlValue::from_u64(u64::MAX),
            Err(StorageError::Decode(_))
        ));
    }
}
