//! `fermyon:spin/key-value@2.0.0`: stores are opened by label; a label the
//! component was not granted is `access-denied`. Backends: one shared SQLite connection per store
//! (`type = "spin"`, table `spin_key_value` keyed by label) or Redis (`type = "redis"`, unprefixed
//! keys, `get-keys` is `KEYS *`).

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use rusqlite::OptionalExtension;
use wasmtime::component::Resource;

use crate::bindings::key_value::{Error, Host, HostStore};
use crate::instance::InstanceState;

pub enum KeyValueStore {
    Sqlite {
        label: String,
        connection: Mutex<rusqlite::Connection>,
    },
    Redis {
        client: redis::Client,
        connection: tokio::sync::OnceCell<ConnectionManager>,
    },
}

/// An open store handle in a guest's resource table.
pub struct OpenStore(Arc<KeyValueStore>);

impl KeyValueStore {
    /// A SQLite-backed store; `path = None` keeps it in memory for the life of the process.
    pub fn sqlite(label: &str, path: Option<&Path>) -> Result<Self> {
        let connection = match path {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                rusqlite::Connection::open(path)
                    .with_context(|| format!("opening key-value file {}", path.display()))?
            }
            None => rusqlite::Connection::open_in_memory()?,
        };
        connection.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (store, key))",
            [],
        )?;
        Ok(Self::Sqlite {
            label: label.to_owned(),
            connection: Mutex::new(connection),
        })
    }

    pub fn redis(url: &str) -> Result<Self> {
        let client = redis::Client::open(url)
            .with_context(|| format!("invalid Redis URL for key-value store: {url}"))?;
        Ok(Self::Redis {
            client,
            connection: tokio::sync::OnceCell::new(),
        })
    }

    async fn redis_connection(
        client: &redis::Client,
        cell: &tokio::sync::OnceCell<ConnectionManager>,
    ) -> Result<ConnectionManager, Error> {
        let manager = cell
            .get_or_try_init(|| ConnectionManager::new(client.clone()))
            .await
            .map_err(|e| Error::Other(e.to_string()))?;
        Ok(manager.clone())
    }

    fn with_sqlite<T>(
        connection: &Mutex<rusqlite::Connection>,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let connection = connection
            .lock()
            .map_err(|_| Error::Other("key-value store lock poisoned".into()))?;
        f(&connection).map_err(|e| Error::Other(e.to_string()))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Self::Sqlite { label, connection } => Self::with_sqlite(connection, |c| {
                c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .query_row((label, key), |row| row.get(0))
                    .optional()
            }),
            Self::Redis { client, connection } => {
                let mut c = Self::redis_connection(client, connection).await?;
                c.get(key).await.map_err(|e| Error::Other(e.to_string()))
            }
        }
    }

    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        match self {
            Self::Sqlite { label, connection } => Self::with_sqlite(connection, |c| {
                c.prepare_cached(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                )?
                .execute((label, key, value))
                .map(drop)
            }),
            Self::Redis { client, connection } => {
                let mut c = Self::redis_connection(client, connection).await?;
                c.set(key, value)
                    .await
                    .map_err(|e| Error::Other(e.to_string()))
            }
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        match self {
            Self::Sqlite { label, connection } => Self::with_sqlite(connection, |c| {
                c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .execute((label, key))
                    .map(drop)
            }),
            Self::Redis { client, connection } => {
                let mut c = Self::redis_connection(client, connection).await?;
                c.del(key).await.map_err(|e| Error::Other(e.to_string()))
            }
        }
    }

    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        match self {
            Self::Sqlite { label, connection } => {
                Self::with_sqlite(connection, |c| {
                    c.prepare_cached("SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2)")?
                    .query_row((label, key), |row| row.get(0))
                })
            }
            Self::Redis { client, connection } => {
                let mut c = Self::redis_connection(client, connection).await?;
                c.exists(key).await.map_err(|e| Error::Other(e.to_string()))
            }
        }
    }

    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        match self {
            Self::Sqlite { label, connection } => Self::with_sqlite(connection, |c| {
                c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?
                    .query_map([label], |row| row.get(0))?
                    .collect()
            }),
            Self::Redis { client, connection } => {
                let mut c = Self::redis_connection(client, connection).await?;
                c.keys("*").await.map_err(|e| Error::Other(e.to_string()))
            }
        }
    }
}

impl InstanceState {
    fn open_store(&self, store: &Resource<OpenStore>) -> wasmtime::Result<Arc<KeyValueStore>> {
        Ok(self.table.get(store)?.0.clone())
    }
}

impl Host for InstanceState {}

impl HostStore for InstanceState {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        let Some(store) = self.component.key_value_stores.get(&label) else {
            return Ok(Err(Error::AccessDenied));
        };
        let store = OpenStore(store.clone());
        Ok(self.table.push(store).map_err(|_| Error::StoreTableFull))
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(self.open_store(&store)?.get(&key).await)
    }

    async fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.open_store(&store)?.set(&key, &value).await)
    }

    async fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.open_store(&store)?.delete(&key).await)
    }

    async fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        Ok(self.open_store(&store)?.exists(&key).await)
    }

    async fn get_keys(
        &mut self,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        Ok(self.open_store(&store)?.keys().await)
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
