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

#[cfg(feature = "testing")]
pub mod testing;

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
        log_line::error(
            "storage",
            &format!("ROLLBACK after a failed transaction also failed: {error}"),
        );
    }
}

/// A service's migrations, compiled in from `migrations/<database>/` of the workspace: each
/// `version name => file` is a [`Migration`] of that file's SQL.
///
/// ```text
/// pub const MIGRATIONS: &[storage::Migration] = storage::migrations!("tickets":
///     1 "initial" => "0001_initial.sql",
///     2 "delivery state" => "0002_delivery_state.sql",
/// );
/// ```
#[macro_export]
macro_rules! migrations {
    ($database:literal: $($version:literal $name:literal => $file:literal),+ $(,)?) => {
        &[$($crate::Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/../../migrations/", $database, "/", $file
            )),
        }),+]
    };
}

/// One numbered change to a service's schema, compiled into the service.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3, … in order, never reused: the database records each version it has applied.
    pub version: i64,
    pub name: &'static str,
    /// Statements that each end with `;` at the end of a line; blank lines and `--` comment
    /// lines are skipped (see [`apply_script`]). They run inside the migration's transaction, so
    /// no `PRAGMA journal_mode` and no `BEGIN`/`COMMIT`.
    pub sql: &'static str,
}

const APPLIED_VERSION: &str = "SELECT coalesce(max(version), 0) AS version FROM schema_migrations";

/// Brings the database up to date with `migrations` (in version order) and returns how many it
/// applied.
///
/// The usual case, an up-to-date database, costs one indexed read. Otherwise every missing
/// migration runs, and is recorded in `schema_migrations`, inside one `BEGIN IMMEDIATE`
/// transaction that first reads the applied version again: instances racing on a new database
/// queue on the write lock, and each migration runs exactly once. A failing migration rolls
/// back with everything before it in the same call, leaving the database as it was.
///
/// It uses nothing a libSQL server refuses. Where the database lets us choose (a local file),
/// it also turns on write-ahead logging once, outside the transaction.
pub fn migrate(db: &dyn Database, migrations: &[Migration]) -> Result<usize, StorageError> {
    let latest = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if applied_version(db).ok() == Some(latest) {
        return Ok(0);
    }
    // A libSQL server keeps its own journal and refuses the pragma; a local file remembers it.
    db.execute("PRAGMA journal_mode = WAL", &[]).ok();
    transaction(db, |db| {
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
            &[],
        )?;
        let current = applied_version(db)?;
        let mut applied = 0;
        for migration in migrations.iter().filter(|m| m.version > current) {
            apply_script(db, migration.sql)?;
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
                &[
                    SqlValue::Integer(migration.version),
                    SqlValue::Text(migration.name.to_owned()),
                ],
            )?;
            applied += 1;
        }
        Ok(applied)
    })
}

fn applied_version(db: &dyn Database) -> Result<i64, StorageError> {
    let rows = db.execute(APPLIED_VERSION, &[])?;
    let row = rows
        .first()
        .ok_or_else(|| StorageError::Sql("schema_migrations: no version".to_owned()))?;
    row.integer("version")
}

/// Runs a whole migration script statement by statement: statements end with `;` at the end of a
/// line, and blank lines and `--` comment lines are skipped. Triggers with `;` inside their
/// bodies are not supported.
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

    const FIRST: Migration = Migration {
        version: 1,
        name: "notes",
        sql: "-- notes\nCREATE TABLE IF NOT EXISTS notes (\n  id INTEGER PRIMARY KEY,\n  body TEXT NOT NULL\n);\n",
    };
    const SECOND: Migration = Migration {
        version: 2,
        name: "note authors",
        sql: "ALTER TABLE notes ADD COLUMN author TEXT NOT NULL DEFAULT 'unknown';\nCREATE INDEX notes_by_author ON notes (author);\n",
    };

    fn recorded(db: &dyn Database) -> Vec<(i64, String)> {
        db.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version",
            &[],
        )
        .expect("schema_migrations")
        .iter()
        .map(|row| {
            (
                row.integer("version").expect("version"),
                row.text("name").expect("name").to_owned(),
            )
        })
        .collect()
    }

    #[test]
    fn migrations_apply_once_in_order_and_are_recorded() {
        let db = database();
        assert_eq!(migrate(&db, &[FIRST, SECOND]).expect("migrates"), 2);
        assert_eq!(migrate(&db, &[FIRST, SECOND]).expect("up to date"), 0);
        assert_eq!(
            recorded(&db),
            [(1, "notes".to_owned()), (2, "note authors".to_owned())]
        );
        db.execute("INSERT INTO notes (body, author) VALUES ('hi', 'ann')", &[])
            .expect("the second migration's column");
    }

    #[test]
    fn an_older_database_is_upgraded_in_place() {
        let db = database();
        // As the `--sqlite` flags used to leave it: the tables, no record of migrations.
        apply_script(&db, FIRST.sql).expect("old schema");
        db.execute("INSERT INTO notes (body) VALUES ('kept')", &[])
            .expect("a row");
        assert_eq!(migrate(&db, &[FIRST]).expect("adopts the baseline"), 1);
        assert_eq!(migrate(&db, &[FIRST, SECOND]).expect("upgrades"), 1);
        let rows = db
            .execute("SELECT body, author FROM notes", &[])
            .expect("notes");
        let row = rows.first().expect("the row survived");
        assert_eq!(row.text("body").expect("body"), "kept");
        assert_eq!(row.text("author").expect("author"), "unknown");
        assert_eq!(recorded(&db).len(), 2);
    }

    #[test]
    fn a_failing_migration_leaves_the_database_as_it_was() {
        let db = database();
        let broken = Migration {
            version: 2,
            name: "broken",
            sql: "CREATE TABLE other (x INTEGER);\nINSERT INTO missing VALUES (1);\n",
        };
        migrate(&db, &[FIRST, broken]).expect_err("the second migration fails");
        let tables = db
            .execute("SELECT name FROM sqlite_master WHERE type = 'table'", &[])
            .expect("tables");
        assert!(
            tables.is_empty(),
            "nothing of either migration remains: {:?}",
            tables
                .iter()
                .map(|r| r.text("name").map(str::to_owned))
                .collect::<Vec<_>>()
        );
        assert_eq!(migrate(&db, &[FIRST]).expect("the first alone"), 1);
    }

    #[test]
    fn instances_migrating_one_new_file_at_once_apply_each_migration_exactly_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("shared.db");
        for _round in 0..5 {
            std::fs::remove_file(&path).ok();
            let start = std::sync::Arc::new(std::sync::Barrier::new(4));
            let instances: Vec<_> = (0..4)
                .map(|_| {
                    let path = path.clone();
                    let start = start.clone();
                    std::thread::spawn(move || {
                        let db = NativeDatabase::open(&path).expect("open");
                        start.wait();
                        migrate(&db, &[FIRST, SECOND]).expect("every instance succeeds")
                    })
                })
                .collect();
            let applied: usize = instances
                .into_iter()
                .map(|t| t.join().expect("thread"))
                .sum();
            assert_eq!(applied, 2, "each migration ran once between them");
            let db = NativeDatabase::open(&path).expect("open");
            assert_eq!(recorded(&db).len(), 2);
        }
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
