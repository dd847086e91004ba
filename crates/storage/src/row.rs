//! [`Rows`] as a statement returns them, and typed reads of one [`Row`] by column name.

use crate::{SqlValue, StorageError};

/// A statement's result: column names (SQLite's, so the alias or the expression text) and the
/// values of each row in column order.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

impl Rows {
    pub fn first(&self) -> Option<Row<'_>> {
        self.iter().next()
    }

    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One row of [`Rows`]. Every accessor fails with [`StorageError::Decode`] when the column is
/// missing or its value has another storage class, so a schema drift surfaces as an error
/// instead of a wrong value.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [SqlValue],
}

impl<'a> Row<'a> {
    /// The raw value of `column`.
    pub fn value(&self, column: &str) -> Result<&'a SqlValue, StorageError> {
        self.columns
            .iter()
            .position(|name| name == column)
            .and_then(|index| self.values.get(index))
            .ok_or_else(|| StorageError::Decode(format!("no column {column:?} in the result")))
    }

    pub fn text(&self, column: &str) -> Result<&'a str, StorageError> {
        self.optional_text(column)?
            .ok_or_else(|| unexpected(column, "text", &SqlValue::Null))
    }

    pub fn optional_text(&self, column: &str) -> Result<Option<&'a str>, StorageError> {
        match self.value(column)? {
            SqlValue::Text(text) => Ok(Some(text)),
            SqlValue::Null => Ok(None),
            other => Err(unexpected(column, "text", other)),
        }
    }

    pub fn integer(&self, column: &str) -> Result<i64, StorageError> {
        self.optional_integer(column)?
            .ok_or_else(|| unexpected(column, "an integer", &SqlValue::Null))
    }

    pub fn optional_integer(&self, column: &str) -> Result<Option<i64>, StorageError> {
        match self.value(column)? {
            SqlValue::Integer(integer) => Ok(Some(*integer)),
            SqlValue::Null => Ok(None),
            other => Err(unexpected(column, "an integer", other)),
        }
    }
}

fn unexpected(column: &str, wanted: &str, found: &SqlValue) -> StorageError {
    let found = match found {
        SqlValue::Integer(_) => "an integer",
        SqlValue::Real(_) => "a real",
        SqlValue::Text(_) => "text",
        SqlValue::Blob(_) => "a blob",
        SqlValue::Null => "null",
    };
    StorageError::Decode(format!("column {column:?} holds {found}, not {wanted}"))
}
