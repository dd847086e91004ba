//! `fermyon:spin/sqlite@2.0.0` and `spin:sqlite/sqlite@3.0.0`, as Spin implements them.
//!
//! A guest connection is a real SQLite connection, so `BEGIN IMMEDIATE … COMMIT` across several
//! `execute` calls is one transaction. Spin opens a new connection on every `open`; we hand out a
//! pooled idle one instead (rolled back and otherwise untouched), which the guest cannot tell
//! apart, and which saves re-reading the schema on every request. Statements run on the async
//! worker that calls them, which costs a few microseconds; one that meets a lock held elsewhere
//! (another process, a checkpoint) is run again on the blocking pool, where it may wait up to
//! the 5 s busy timeout without stalling the workers that run other instances.
//!
//! **Writers queue.** SQLite lets one connection write at a time and makes the others retry
//! (its busy handler), which under many concurrent writers burns CPU on failed lock attempts and
//! leaves the lock idle while the waiters nap. So a guest statement that starts writing (`BEGIN
//! IMMEDIATE`/`EXCLUSIVE`, or `INSERT`, `UPDATE`, `DELETE`, `REPLACE`) first takes the
//! database's write gate, a fair async lock, and holds it until its connection is back in
//! autocommit mode (the transaction, or that one statement, ended) or is closed. Waiting for the
//! gate is bounded by the same 5 s as the busy timeout, after which the statement fails with
//! "database is locked", as it would without the gate. The order in which writers get the lock
//! is the only difference a guest could notice.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rusqlite::types::ValueRef;
use wasmtime::component::Resource;

use crate::bindings::{sqlite_v2, sqlite_v3};
use crate::instance::InstanceState;

/// How many idle connections a database keeps for reuse.
const IDLE_CONNECTIONS: usize = 8;

/// Each connection's page cache, in KiB (SQLite's default is 2 MiB). Every pooled connection of
/// every database keeps its own, so with the default the host's memory grew with the databases
/// (to 2 MiB times 16 connections times 6 databases); the pages not cached are a read from the
/// OS's file cache away.
const PAGE_CACHE_KIB: i64 = 512;
/// Spin caps every host-buffered result at 128 MiB.
const MAX_RESULT_BYTES: usize = 128 << 20;

/// As long as SQLite's busy timeout in Spin.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct SqliteDatabase {
    /// `None`: a fresh in-memory database on every open, as Spin's `type = "spin"` without `path`.
    path: Option<PathBuf>,
    idle: Mutex<Vec<rusqlite::Connection>>,
    /// Held by the guest connection that is writing (see the module documentation).
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

impl SqliteDatabase {
    pub fn new(path: Option<PathBuf>) -> Result<Self> {
        if let Some(dir) = path.as_deref().and_then(|p| p.parent()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(Self {
            path,
            idle: Mutex::new(Vec::new()),
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    fn connect(&self) -> rusqlite::Result<rusqlite::Connection> {
        if let Some(connection) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(connection);
        }
        let connection = match &self.path {
            Some(path) => rusqlite::Connection::open(path)?,
            None => rusqlite::Connection::open_in_memory()?,
        };
        connection.busy_handler(Some(wait_for_lock))?;
        connection.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
        Ok(connection)
    }

    fn release(&self, connection: rusqlite::Connection) {
        if self.path.is_none() {
            return;
        }
        // Dropping a handle ends its transaction, as closing a connection would.
        if !connection.is_autocommit() && connection.execute_batch("ROLLBACK").is_err() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_CONNECTIONS
        {
            idle.push(connection);
        }
    }

    /// Runs a whole SQL script (every statement), for `--sqlite @file.sql[:label]`.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        let connection = self.connect()?;
        connection.execute_batch(sql)?;
        self.release(connection);
        Ok(())
    }

    /// Runs only the first statement of `sql`, as `spin up --sqlite "<sql>"` does.
    pub fn execute_first(&self, sql: &str) -> Result<()> {
        let connection = self.connect()?;
        run_statement(&connection, sql, Vec::new()).map_err(anyhow::Error::msg)?;
        self.release(connection);
        Ok(())
    }
}

/// Whether `sql` starts writing: `BEGIN IMMEDIATE`/`EXCLUSIVE`, or a plain `INSERT`, `UPDATE`,
/// `DELETE` or `REPLACE`. Anything else that writes (a write after a deferred `BEGIN`, a `WITH`
/// clause before a write) takes SQLite's own lock without the gate, which is only slower.
fn starts_writing(sql: &str) -> bool {
    let mut words = sql
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|word| !word.is_empty());
    match words.next() {
        Some(first) if first.eq_ignore_ascii_case("BEGIN") => words.next().is_some_and(|mode| {
            mode.eq_ignore_ascii_case("IMMEDIATE") || mode.eq_ignore_ascii_case("EXCLUSIVE")
        }),
        Some(first) => changes_rows(first),
        None => false,
    }
}

/// Whether a statement starting with `first_word` writes rows.
fn changes_rows(first_word: &str) -> bool {
    ["INSERT", "UPDATE", "DELETE", "REPLACE"]
        .iter()
        .any(|verb| first_word.eq_ignore_ascii_case(verb))
}

fn first_word(sql: &str) -> &str {
    sql.split(|c: char| !c.is_ascii_alphabetic())
        .find(|word| !word.is_empty())
        .unwrap_or("")
}

/// How a connection waits for another's write lock: up to the 5 s Spin allows, in short naps.
/// SQLite's own handler (Spin's) naps up to 100 ms at a time, so under write contention the lock
/// is often free while every writer waiting for it sleeps; polling every millisecond or less
/// keeps it busy instead. Only how soon a waiter gets the lock changes, never whether.
///
/// Inline ([`run_inline`], on an async worker) it never naps: it records that the statement would have
/// waited and gives up, and the statement is run again on the blocking pool.
fn wait_for_lock(attempt: i32) -> bool {
    if INLINE.get() {
        WOULD_WAIT.set(true);
        return false;
    }
    /// The first naps, in microseconds; every later one is 1 ms.
    const FIRST_NAPS_US: [u64; 6] = [20, 50, 100, 200, 500, 1000];
    /// About 5 s of naps in all.
    const ATTEMPTS: i32 = 5000;
    if attempt >= ATTEMPTS {
        return false;
    }
    let nap_us = usize::try_from(attempt)
        .ok()
        .and_then(|attempt| FIRST_NAPS_US.get(attempt).copied())
        .unwrap_or(1000);
    std::thread::sleep(std::time::Duration::from_micros(nap_us));
    true
}

thread_local! {
    /// Whether this thread runs statements for [`run_inline`], which must not block.
    static INLINE: Cell<bool> = const { Cell::new(false) };
    /// Whether a statement run inline met a lock it would have waited for.
    static WOULD_WAIT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `sql` on the calling async worker, unless it would wait for another connection's
/// lock (another process writing, or a checkpoint), in which case `None`: nothing it did stands
/// (SQLite failed it before it changed anything) and it is to be run again where it may wait.
fn run_inline(
    connection: &rusqlite::Connection,
    sql: &str,
    parameters: &[SqlValue],
) -> Option<Result<QueryResult, String>> {
    INLINE.set(true);
    WOULD_WAIT.set(false);
    let result = run_statement(connection, sql, parameters.to_vec());
    INLINE.set(false);
    (!WOULD_WAIT.get()).then_some(result)
}

/// A guest's open connection. The SQLite connection itself is created on first use.
pub struct Connection {
    database: Arc<SqliteDatabase>,
    connection: Option<rusqlite::Connection>,
    /// The database's write gate, while this connection writes, and since when. Declared after
    /// `connection`, so that on drop it is released only after the connection rolled back.
    writing: Option<(tokio::sync::OwnedMutexGuard<()>, std::time::Instant)>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.database.release(connection);
        }
    }
}

#[derive(Debug, Clone)]
pub enum SqlValue {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

enum OpenError {
    AccessDenied,
}

/// Runs the first statement of `sql` and ignores the rest, as Spin does.
/// Spin's rusqlite prepares through a cache that never looks past the first statement; ours
/// also prepares the rest and fails on it, so when preparing fails the first statement of a
/// batch is prepared alone: that either runs, or fails with the first statement's own error.
fn run_statement(
    connection: &rusqlite::Connection,
    sql: &str,
    parameters: Vec<SqlValue>,
) -> Result<QueryResult, String> {
    match connection.prepare_cached(sql) {
        Ok(mut statement) => run_prepared(&mut statement, parameters),
        Err(_) => {
            use rusqlite::fallible_iterator::FallibleIterator;
            match rusqlite::Batch::new(connection, sql)
                .next()
                .map_err(|e| e.to_string())?
            {
                Some(mut statement) => run_prepared(&mut statement, parameters),
                None => Ok(QueryResult {
                    columns: Vec::new(),
                    rows: Vec::new(),
                }),
            }
        }
    }
}

fn run_prepared(
    statement: &mut rusqlite::Statement<'_>,
    parameters: Vec<SqlValue>,
) -> Result<QueryResult, String> {
    for (index, value) in parameters.into_iter().enumerate() {
        let position = index + 1;
        let bound = match value {
            SqlValue::Integer(v) => statement.raw_bind_parameter(position, v),
            SqlValue::Real(v) => statement.raw_bind_parameter(position, v),
            SqlValue::Text(v) => statement.raw_bind_parameter(position, v),
            SqlValue::Blob(v) => statement.raw_bind_parameter(position, v),
            SqlValue::Null => statement.raw_bind_parameter(position, rusqlite::types::Null),
        };
        bound.map_err(|e| e.to_string())?;
    }
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let width = columns.len();
    let mut rows = Vec::new();
    let mut size = 0usize;
    let mut cursor = statement.raw_query();
    while let Some(row) = cursor.next().map_err(|e| e.to_string())? {
        let mut values = Vec::with_capacity(width);
        for index in 0..width {
            let value = match row.get_ref(index).map_err(|e| e.to_string())? {
                ValueRef::Integer(v) => SqlValue::Integer(v),
                ValueRef::Real(v) => SqlValue::Real(v),
                ValueRef::Text(v) => SqlValue::Text(String::from_utf8_lossy(v).into_owned()),
                ValueRef::Blob(v) => SqlValue::Blob(v.to_vec()),
                ValueRef::Null => SqlValue::Null,
            };
            size += match &value {
                SqlValue::Text(s) => s.len(),
                SqlValue::Blob(b) => b.len(),
                _ => 8,
            };
            values.push(value);
        }
        if size > MAX_RESULT_BYTES {
            return Err(format!(
                "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
            ));
        }
        rows.push(values);
    }
    Ok(QueryResult { columns, rows })
}

impl InstanceState {
    fn open_sqlite(
        &mut self,
        label: &str,
    ) -> wasmtime::Result<Result<Resource<Connection>, OpenError>> {
        let Some(database) = self.component.sqlite_databases.get(label) else {
            return Ok(Err(OpenError::AccessDenied));
        };
        let connection = Connection {
            database: database.clone(),
            connection: None,
            writing: None,
        };
        Ok(Ok(self.table.push(connection)?))
    }

    async fn execute_sqlite(
        &mut self,
        handle: &Resource<Connection>,
        sql: String,
        parameters: Vec<SqlValue>,
    ) -> wasmtime::Result<Result<QueryResult, String>> {
        let entry = self.table.get_mut(handle)?;
        let database = entry.database.clone();
        if entry.writing.is_none() && database.path.is_some() && starts_writing(&sql) {
            let asked = std::time::Instant::now();
            let guard = match database.write_gate.clone().try_lock_owned() {
                Ok(guard) => guard,
                Err(_) => {
                    let gate = database.write_gate.clone().lock_owned();
                    match tokio::time::timeout(BUSY_TIMEOUT, gate).await {
                        Ok(guard) => guard,
                        Err(_) => return Ok(Err("database is locked".to_owned())),
                    }
                }
            };
            let acquired = std::time::Instant::now();
            self.component.stats.count_gate_wait(acquired - asked);
            self.table.get_mut(handle)?.writing = Some((guard, acquired));
        }
        let entry = self.table.get_mut(handle)?;
        let connection = match entry.connection.take() {
            Some(connection) => connection,
            None => match database.connect() {
                Ok(connection) => connection,
                Err(error) => {
                    entry.writing = None;
                    return Ok(Err(error.to_string()));
                }
            },
        };
        let stats = self.component.stats.clone();
        stats.count_sqlite(changes_rows(first_word(&sql)));
        // First on this thread: a statement takes microseconds, and handing each to the
        // blocking pool cost more than that (two thread wake-ups per statement). The write gate
        // admits one writer of ours per database at a time and WAL readers do not block, so only
        // a lock held outside this host (another process, a checkpoint) sends a statement to the
        // blocking pool, where it may wait for it. Inline, its CPU counts in the instance's poll
        // (`ComponentStats::metered`); on the pool it is counted here.
        let inline = run_inline(&connection, &sql, &parameters);
        let (connection, result) = match inline {
            Some(result) => (connection, result),
            None => {
                tokio::task::spawn_blocking(move || {
                    stats.timed(|| {
                        let result = run_statement(&connection, &sql, parameters);
                        (connection, result)
                    })
                })
                .await?
            }
        };
        let done_writing = connection.is_autocommit();
        let entry = self.table.get_mut(handle)?;
        entry.connection = Some(connection);
        if done_writing && let Some((_, since)) = entry.writing.take() {
            self.component
                .stats
                .count_write_transaction(since.elapsed());
        }
        Ok(result)
    }

    fn with_open_connection<T>(
        &mut self,
        handle: &Resource<Connection>,
        f: impl FnOnce(&rusqlite::Connection) -> T,
        default: T,
    ) -> wasmtime::Result<T> {
        Ok(self
            .table
            .get(handle)?
            .connection
            .as_ref()
            .map(f)
            .unwrap_or(default))
    }
}

/// The two interface versions have identical shapes but distinct generated types; this writes
/// the conversions and the resource implementation once for both.
macro_rules! sqlite_interface {
    ($module:ident) => {
        impl From<$module::Value> for SqlValue {
            fn from(value: $module::Value) -> Self {
                match value {
                    $module::Value::Integer(v) => SqlValue::Integer(v),
                    $module::Value::Real(v) => SqlValue::Real(v),
                    $module::Value::Text(v) => SqlValue::Text(v),
                    $module::Value::Blob(v) => SqlValue::Blob(v),
                    $module::Value::Null => SqlValue::Null,
                }
            }
        }

        impl From<SqlValue> for $module::Value {
            fn from(value: SqlValue) -> Self {
                match value {
                    SqlValue::Integer(v) => $module::Value::Integer(v),
                    SqlValue::Real(v) => $module::Value::Real(v),
                    SqlValue::Text(v) => $module::Value::Text(v),
                    SqlValue::Blob(v) => $module::Value::Blob(v),
                    SqlValue::Null => $module::Value::Null,
                }
            }
        }

        impl From<QueryResult> for $module::QueryResult {
            fn from(result: QueryResult) -> Self {
                $module::QueryResult {
                    columns: result.columns,
                    rows: result
                        .rows
                        .into_iter()
                        .map(|values| $module::RowResult {
                            values: values.into_iter().map(Into::into).collect(),
                        })
                        .collect(),
                }
            }
        }

        impl $module::Host for InstanceState {}
    };
}

sqlite_interface!(sqlite_v2);
sqlite_interface!(sqlite_v3);

impl sqlite_v2::HostConnection for InstanceState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, sqlite_v2::Error>> {
        Ok(self
            .open_sqlite(&database)?
            .map_err(|OpenError::AccessDenied| sqlite_v2::Error::AccessDenied))
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<sqlite_v2::Value>,
    ) -> wasmtime::Result<Result<sqlite_v2::QueryResult, sqlite_v2::Error>> {
        let parameters = parameters.into_iter().map(Into::into).collect();
        let result = self
            .execute_sqlite(&connection, statement, parameters)
            .await?;
        Ok(result.map(Into::into).map_err(sqlite_v2::Error::Io))
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

impl sqlite_v3::HostConnection for InstanceState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, sqlite_v3::Error>> {
        Ok(self
            .open_sqlite(&database)?
            .map_err(|OpenError::AccessDenied| sqlite_v3::Error::AccessDenied))
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<sqlite_v3::Value>,
    ) -> wasmtime::Result<Result<sqlite_v3::QueryResult, sqlite_v3::Error>> {
        let parameters = parameters.into_iter().map(Into::into).collect();
        let result = self
            .execute_sqlite(&connection, statement, parameters)
            .await?;
        Ok(result.map(Into::into).map_err(sqlite_v3::Error::Io))
    }

    async fn last_insert_rowid(
        &mut self,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<i64> {
        self.with_open_connection(&connection, |c| c.last_insert_rowid(), 0)
    }

    async fn changes(&mut self, connection: Resource<Connection>) -> wasmtime::Result<u64> {
        self.with_open_connection(&connection, |c| c.changes(), 0)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_run_inline_gives_way_to_a_lock_held_elsewhere_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database = SqliteDatabase::new(Some(dir.path().join("inline.db"))).expect("database");
        let ours = database.connect().expect("our connection");
        ours.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER)")
            .expect("schema");
        let insert = |connection: &rusqlite::Connection| {
            run_inline(
                connection,
                "INSERT INTO t VALUES (?)",
                &[SqlValue::Integer(1)],
            )
        };
        // Another process writing: the insert would wait, so it gives up at once.
        let theirs = rusqlite::Connection::open(dir.path().join("inline.db")).expect("theirs");
        theirs.execute_batch("BEGIN IMMEDIATE").expect("their lock");
        let started = std::time::Instant::now();
        assert!(
            insert(&ours).is_none(),
            "an insert under their lock must not run inline"
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        // A read does not wait for a writer in WAL mode.
        let count = run_inline(&ours, "SELECT count(*) FROM t", &[]).expect("a read runs inline");
        assert!(matches!(
            count.map(|r| r.rows[0][0].clone()),
            Ok(SqlValue::Integer(0))
        ));
        theirs
            .execute_batch("ROLLBACK")
            .expect("their lock released");
        // With their lock gone the insert runs inline.
        assert!(matches!(insert(&ours), Some(Ok(_))));
        let rows: i64 = ours
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .expect("count");
        assert_eq!(rows, 1, "the statement that gave way changed nothing");
    }

    #[test]
    fn statements_that_start_writing_take_the_gate_and_others_do_not() {
        for sql in [
            "BEGIN IMMEDIATE",
            "begin exclusive transaction",
            "  INSERT INTO t VALUES (1)",
            "update t SET x = 1",
            "DELETE FROM t",
            "REPLACE INTO t VALUES (1)",
        ] {
            assert!(starts_writing(sql), "{sql}");
        }
        for sql in [
            "BEGIN",
            "BEGIN DEFERRED",
            "SELECT * FROM t",
            "COMMIT",
            "ROLLBACK",
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
            "PRAGMA journal_mode = WAL",
            "",
            "INSERTED",
        ] {
            assert!(!starts_writing(sql), "{sql}");
        }
    }
}
