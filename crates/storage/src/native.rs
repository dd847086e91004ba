//! [`NativeDatabase`]: the port on rusqlite, for native tests, behaving as Spin's host does.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::ValueRef;

use crate::{Database, Rows, SqlValue, StorageError};

/// Spin leaves rusqlite's default busy timeout in place.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One rusqlite connection. Like Spin's host it prepares with `prepare_cached`, binds
/// positionally, and serialises calls on one handle. Unlike Spin (whose older rusqlite runs the
/// first statement of a string and skips the rest) it refuses a string holding several
/// statements with "Multiple statements provided", so a test catches the mistake.
pub struct NativeDatabase {
    connection: Mutex<rusqlite::Connection>,
}

impl NativeDatabase {
    /// Opens (creating it if needed) the database file at `path`, in SQLite's default
    /// rollback-journal mode as Spin does.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Self::configure(rusqlite::Connection::open(path).map_err(sql)?)
    }

    pub fn open_in_memory() -> Result<Self, StorageError> {
        Self::configure(rusqlite::Connection::open_in_memory().map_err(sql)?)
    }

    /// Changes how long a call waits for another connection's lock (5 s by default, as in Spin).
    pub fn with_busy_timeout(self, timeout: Duration) -> Self {
        if let Err(error) = self.lock().busy_timeout(timeout) {
            // Only fails on a closed connection, which every later call reports anyway.
            log_line::warn(
                "storage",
                &format!("could not set the busy timeout: {error}"),
            );
        }
        self
    }

    fn configure(connection: rusqlite::Connection) -> Result<Self, StorageError> {
        connection.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        // A panic while holding the lock cannot leave the connection itself inconsistent:
        // SQLite keeps its own state, so the poisoned guard is still usable.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Database for NativeDatabase {
    fn execute(&self, sql_text: &str, params: &[SqlValue]) -> Result<Rows, StorageError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(sql_text).map_err(sql)?;
        for (index, value) in params.iter().enumerate() {
            let index = index + 1;
            match value {
                SqlValue::Integer(v) => statement.raw_bind_parameter(index, v),
                SqlValue::Real(v) => statement.raw_bind_parameter(index, v),
                SqlValue::Text(v) => statement.raw_bind_parameter(index, v),
                SqlValue::Blob(v) => statement.raw_bind_parameter(index, v),
                SqlValue::Null => statement.raw_bind_parameter(index, rusqlite::types::Null),
            }
            .map_err(sql)?;
        }
        let columns: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let width = columns.len();
        let mut rows = Vec::new();
        let mut cursor = statement.raw_query();
        while let Some(row) = cursor.next().map_err(sql)? {
            let mut values = Vec::with_capacity(width);
            for index in 0..width {
                values.push(match row.get_ref(index).map_err(sql)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(v) => SqlValue::Integer(v),
                    ValueRef::Real(v) => SqlValue::Real(v),
                    ValueRef::Text(v) => SqlValue::Text(String::from_utf8_lossy(v).into_owned()),
                    ValueRef::Blob(v) => SqlValue::Blob(v.to_vec()),
                });
            }
            rows.push(values);
        }
        Ok(Rows { columns, rows })
    }
}

fn sql(error: rusqlite::Error) -> StorageError {
    StorageError::Sql(error.to_string())
}
