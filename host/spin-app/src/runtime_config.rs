//! The runtime-config file (`--runtime-config-file`): key-value stores and SQLite databases.
//!
//! Only the tables this host implements are accepted: `[key_value_store.<label>]` with
//! `type = "spin"` (optional `path`) or `type = "redis"` (`url`), and
//! `[sqlite_database.<label>]` with `type = "spin"` (optional `path`). Anything else is an
//! error, as Spin rejects keys nothing consumes; silently ignoring a table would make an app
//! behave differently here than on Spin.
//!
//! Relative paths resolve differently per table, as in Spin: key-value paths against the
//! runtime-config file's directory, SQLite paths against the process working directory.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::manifest::{App, LoadError};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub key_value_stores: BTreeMap<String, KeyValueConfig>,
    pub sqlite_databases: BTreeMap<String, SqliteConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyValueConfig {
    /// SQLite-backed; `path: None` is in-memory. A given path is absolute.
    Spin { path: Option<PathBuf> },
    /// Keys map straight onto the database, without a label prefix.
    Redis { url: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqliteConfig {
    /// `path: None` is in-memory per `open`. A given path is absolute.
    Spin { path: Option<PathBuf> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<String, RawKeyValue>,
    #[serde(default)]
    sqlite_database: BTreeMap<String, RawSqlite>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum RawKeyValue {
    Spin { path: Option<PathBuf> },
    Redis { url: String },
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum RawSqlite {
    Spin { path: Option<PathBuf> },
}

impl RuntimeConfig {
    /// Reads the file at `path`; `cwd` is the process working directory.
    pub fn load(path: &Path, cwd: &Path) -> Result<RuntimeConfig, LoadError> {
        let shown = path.display();
        let text = fs::read_to_string(path)
            .map_err(|e| LoadError::new(format!("{shown}: cannot read runtime config: {e}")))?;
        let raw: RawRuntimeConfig = toml::from_str(&text).map_err(|e| {
            LoadError::new(format!(
                "{shown}: {}\n(this host supports only [key_value_store.<label>] with type \"spin\" or \"redis\" and [sqlite_database.<label>] with type \"spin\")",
                e.to_string().trim_end()
            ))
        })?;
        let config_dir = cwd.join(path.parent().unwrap_or(Path::new("")));
        let key_value_stores = raw
            .key_value_store
            .into_iter()
            .map(|(label, store)| {
                let config = match store {
                    RawKeyValue::Spin { path } => KeyValueConfig::Spin {
                        path: path.map(|p| config_dir.join(p)),
                    },
                    RawKeyValue::Redis { url } => KeyValueConfig::Redis { url },
                };
                (label, config)
            })
            .collect();
        let sqlite_databases = raw
            .sqlite_database
            .into_iter()
            .map(|(label, database)| {
                let config = match database {
                    RawSqlite::Spin { path } => SqliteConfig::Spin {
                        path: path.map(|p| cwd.join(p)),
                    },
                };
                (label, config)
            })
            .collect();
        Ok(RuntimeConfig {
            key_value_stores,
            sqlite_databases,
        })
    }

    /// No runtime-config file: only the `default` store and database exist.
    pub fn empty() -> RuntimeConfig {
        RuntimeConfig::default()
    }

    /// Spin's start-up checks: every key-value label and SQLite database a component declares
    /// must be defined (`default` always is).
    pub fn check_app(&self, app: &App) -> Result<(), LoadError> {
        for component in app.components.values() {
            for label in &component.key_value_stores {
                if label != "default" && !self.key_value_stores.contains_key(label) {
                    return Err(LoadError::new(format!(
                        "unknown key_value_stores label {label:?} for component {:?}",
                        component.id
                    )));
                }
            }
        }
        let missing: Vec<String> = app
            .components
            .values()
            .flat_map(|component| {
                component
                    .sqlite_databases
                    .iter()
                    .filter(|label| {
                        *label != "default" && !self.sqlite_databases.contains_key(*label)
                    })
                    .map(|label| format!("- Component {} uses database '{label}'", component.id))
            })
            .collect();
        if !missing.is_empty() {
            return Err(LoadError::new(format!(
                "One or more components use SQLite databases which are not defined.\n\
                 Check the spelling, or pass a runtime configuration file that defines these databases.\n\
                 See https://spinframework.dev/v3/dynamic-configuration#sqlite-storage-runtime-configuration\n\
                 Details:\n{}",
                missing.join("\n")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn key_value_paths_resolve_against_the_config_dir_and_sqlite_paths_against_cwd() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = write(
            tmp.path(),
            "cfg/runtime-config.toml",
            r#"
[key_value_store.default]
type = "spin"
path = "data/kv.db"

[key_value_store.mem]
type = "spin"

[key_value_store.cache]
type = "redis"
url = "redis://localhost:6379"

[sqlite_database.default]
type = "spin"
path = "sqldata/rel.db"

[sqlite_database.abs]
type = "spin"
path = "/var/db/abs.db"
"#,
        );
        let cwd = tmp.path().join("work");
        let config = RuntimeConfig::load(&cfg, &cwd).expect("loads");
        assert_eq!(
            config.key_value_stores["default"],
            KeyValueConfig::Spin {
                path: Some(tmp.path().join("cfg/data/kv.db"))
            }
        );
        assert_eq!(
            config.key_value_stores["mem"],
            KeyValueConfig::Spin { path: None }
        );
        assert_eq!(
            config.key_value_stores["cache"],
            KeyValueConfig::Redis {
                url: "redis://localhost:6379".into()
            }
        );
        assert_eq!(
            config.sqlite_databases["default"],
            SqliteConfig::Spin {
                path: Some(cwd.join("sqldata/rel.db"))
            }
        );
        assert_eq!(
            config.sqlite_databases["abs"],
            SqliteConfig::Spin {
                path: Some(PathBuf::from("/var/db/abs.db"))
            }
        );
    }

    #[test]
    fn unknown_tables_keys_and_types_are_rejected_with_the_file_name() {
        let cases = [
            (
                "[[variables_provider]]\ntype = \"env\"\n",
                "variables_provider",
            ),
            ("[outbound_redis]\nmax_connections = 1\n", "outbound_redis"),
            (
                "[key_value_store.x]\ntype = \"spin\"\npaht = \"a\"\n",
                "paht",
            ),
            (
                "[key_value_store.x]\ntype = \"azure_cosmos\"\n",
                "azure_cosmos",
            ),
            ("[key_value_store.x]\ntype = \"redis\"\n", "url"),
            (
                "[sqlite_database.x]\ntype = \"libsql\"\nurl = \"https://x\"\n",
                "libsql",
            ),
        ];
        let tmp = tempfile::tempdir().expect("tempdir");
        for (text, needle) in cases {
            let path = write(tmp.path(), "rc.toml", text);
            let err = RuntimeConfig::load(&path, tmp.path())
                .expect_err(text)
                .to_string();
            assert!(err.contains("rc.toml"), "{err}");
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    fn app_with(kv: &[&str], sqlite: &[&str]) -> App {
        let component = crate::Component {
            id: "api".into(),
            source: "/app/api.wasm".into(),
            files: vec![],
            exclude_files: vec![],
            environment: BTreeMap::new(),
            key_value_stores: kv.iter().map(|s| s.to_string()).collect(),
            sqlite_databases: sqlite.iter().map(|s| s.to_string()).collect(),
            allowed_outbound_hosts: vec![],
            variables: BTreeMap::new(),
            build: None,
        };
        App {
            dir: "/app".into(),
            manifest_path: "/app/spin.toml".into(),
            name: "app".into(),
            version: None,
            variables: BTreeMap::new(),
            redis_address: None,
            http_triggers: vec![],
            redis_triggers: vec![],
            components: [("api".to_string(), component)].into_iter().collect(),
        }
    }

    #[test]
    fn the_default_labels_need_no_runtime_config() {
        let app = app_with(&["default"], &["default"]);
        assert!(RuntimeConfig::empty().check_app(&app).is_ok());
    }

    #[test]
    fn an_undefined_key_value_label_stops_startup_with_spins_message() {
        let app = app_with(&["default", "cache"], &[]);
        let err = RuntimeConfig::empty()
            .check_app(&app)
            .expect_err("undefined");
        assert_eq!(
            err.to_string(),
            "unknown key_value_stores label \"cache\" for component \"api\""
        );
        let mut config = RuntimeConfig::empty();
        config
            .key_value_stores
            .insert("cache".into(), KeyValueConfig::Spin { path: None });
        assert!(config.check_app(&app).is_ok());
    }

    #[test]
    fn an_undefined_sqlite_database_stops_startup_with_spins_message() {
        let app = app_with(&[], &["default", "orders"]);
        let err = RuntimeConfig::empty()
            .check_app(&app)
            .expect_err("undefined")
            .to_string();
        assert!(
            err.starts_with("One or more components use SQLite databases which are not defined."),
            "{err}"
        );
        assert!(
            err.contains("Component api uses database 'orders'"),
            "{err}"
        );
    }
}
