//! Test support (the `testing` feature): a service's database on a temporary file with its real
//! migrations, query plans, and the migration check every service runs.

use std::path::PathBuf;

use crate::{Database, Migration, NativeDatabase, SqlValue};

/// A database file in a temporary directory, removed with it, brought up to date with a
/// service's migrations.
pub struct TempDatabase {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempDatabase {
    /// `file_name` in a new temporary directory, migrated with `migrations`.
    pub fn migrated(file_name: &str, migrations: &[Migration]) -> TempDatabase {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database = TempDatabase {
            path: dir.path().join(file_name),
            _dir: dir,
        };
        crate::migrate(&database.open(), migrations).expect("apply the migrations");
        database
    }

    /// A new connection to the file, as each component instance opens its own.
    pub fn open(&self) -> NativeDatabase {
        NativeDatabase::open(&self.path).expect("open the database")
    }
}

/// The `detail` lines of SQLite's plan for `sql`, to check which index a query uses.
pub fn query_plan(db: &dyn Database, sql: &str, params: &[SqlValue]) -> Vec<String> {
    db.execute(&format!("EXPLAIN QUERY PLAN {sql}"), params)
        .expect("plan")
        .iter()
        .map(|row| row.text("detail").expect("detail").to_owned())
        .collect()
}

/// A database the old `--sqlite` start-up flag made (the first migration's script, applied
/// without the migrations table) adopts `migrations`: the first is recorded as applied, the
/// others run, and a second pass has nothing to do. Returns the database, for a service's own
/// checks.
pub fn assert_adopts_a_database_made_by_the_startup_script(
    migrations: &[Migration],
) -> NativeDatabase {
    let db = NativeDatabase::open_in_memory().expect("database");
    crate::apply_script(&db, migrations[0].sql).expect("the old start-up script");
    assert_eq!(
        crate::migrate(&db, migrations).expect("adopted"),
        migrations.len()
    );
    assert_eq!(crate::migrate(&db, migrations).expect("up to date"), 0);
    db
}
