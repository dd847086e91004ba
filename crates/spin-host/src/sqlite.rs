//! `fermyon:spin/sqlite@2.0.0` and `spin:sqlite/sqlite@3.0.0` (spin-fidelity §5).
//!
//! A guest connection is a real SQLite connection, so `BEGIN IMMEDIATE … COMMIT` across several
//! `execute` calls is one transaction. Spin opens a new connection on every `open`; we hand out a
//! pooled idle one instead (rolled back and otherwise untouched), which the guest cannot tell
//! apart, and which saves re-reading the schema on every request. Statements run on the blocking
//! pool: a writer may wait up to the 5 s busy timeout, and that must not stall the async workers
//! that run other instances, one of which may hold the lock.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rusqlite::types::ValueRef;
use wasmtime::component::Resource;

use crate::bindings::{sqlite_v2, sqlite_v3};
use crate::instance::InstanceState;

/// How many idle connections a database keeps for reuse.
const IDLE_CONNECTIONS: usize = 16;
/// Spin caps every host-buffered result at 128 MiB.
const MAX_RESULT_BYTES: usize = 128 << 20;

pub struct SqliteDatabase {
    /// `None`: a fresh in-memory database on every open, as Spin's `type = "spin"` without `path`.
    path: Option<PathBuf>,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl SqliteDatabase {
    pub fn new(path: Option<PathBuf>) -> Result<Self> {
        if let Some(dir) = path.as_deref().and_then(|p| p.parent()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(Self {
            path,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn connect(&self) -> rusqlite::Result<rusqlite::Connection> {
        if let Some(connection) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(connection);
        }
        match &self.path {
            Some(path) => rusqlite::Connection::open(path),
            None => rusqlite::Connection::open_in_memory(),
        }
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

/// A guest's open connection. The SQLite connection itself is created on first use.
pub struct Connection {
    database: Arc<SqliteDatabase>,
    connection: Option<rusqlite::Connection>,
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

/// Runs the first statement of `sql` and ignores the rest, as Spin does (spin-fidelity §5).
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
        let connection = match entry.connection.take() {
            Some(connection) => connection,
            None => match database.connect() {
                Ok(connection) => connection,
                Err(error) => return Ok(Err(error.to_string())),
            },
        };
        let (connection, result) = tokio::task::spawn_blocking(move || {
            let result = run_statement(&connection, &sql, parameters);
            (connection, result)
        })
        .await?;
        self.table.get_mut(handle)?.connection = Some(connection);
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
