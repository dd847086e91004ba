//! `spin-host up`: loads the manifest and runtime config the way `spin up` does, prepares every
//! component once (compiled, linked, pre-instantiated), then runs the HTTP and Redis triggers
//! until Ctrl-C.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use spin_app::allowed_hosts::AllowedHosts;
use spin_app::runtime_config::{KeyValueConfig, RuntimeConfig, SqliteConfig};
use spin_app::variables::Resolver;
use spin_app::{App, RouteSpec};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::{RedisTriggerPre, SpinImports};
use crate::engine::{EngineOptions, build_engine, load_component};
use crate::http_trigger::{HttpComponent, HttpTrigger};
use crate::instance::{ComponentContext, GuestOutput, InstanceState};
use crate::key_value::KeyValueStore;
use crate::private_redis::PrivateRedis;
use crate::redis_trigger::{RedisComponent, RedisSubscriber};
use crate::sqlite::SqliteDatabase;

/// What `up` was asked to do, already parsed from the command line.
pub struct UpOptions {
    pub manifest: PathBuf,
    pub listen: String,
    pub runtime_config_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
    pub sqlite: Vec<String>,
    pub key_values: Vec<(String, String)>,
    pub quiet: bool,
    pub engine: EngineOptions,
    pub max_request_body: u64,
    /// The application variable that holds the Redis address; when nothing supplies it, `up`
    /// starts a private redis-server and uses its address.
    pub redis_variable: String,
}

pub async fn up(options: UpOptions) -> Result<()> {
    let app = App::load(&options.manifest)?;
    let cwd = std::env::current_dir()?;
    let runtime_config = match &options.runtime_config_file {
        Some(path) => RuntimeConfig::load(path, &cwd)?,
        None => RuntimeConfig::empty(),
    };
    runtime_config.check_app(&app)?;
    let state_dir = options
        .state_dir
        .clone()
        .unwrap_or_else(|| app.dir.join(".spin"));

    let dotenv = match std::fs::read_to_string(cwd.join(".env")) {
        Ok(text) => Resolver::parse_dotenv(&text),
        Err(_) => HashMap::new(),
    };
    let mut resolver = Resolver::new(
        app.variables.clone(),
        options.variables.clone(),
        Box::new(|name| std::env::var(name).ok()),
        dotenv,
    );
    let private_redis = if app.variables.contains_key(&options.redis_variable)
        && !resolver.is_provided(&options.redis_variable)
    {
        let redis = PrivateRedis::start(&state_dir.join("redis")).await?;
        println!(
            "No `{}` configured: started a private redis-server at {}",
            options.redis_variable, redis.url
        );
        resolver.set_override(&options.redis_variable, redis.url.clone());
        Some(redis)
    } else {
        None
    };
    let result = serve(
        &app,
        &options,
        &runtime_config,
        &state_dir,
        Arc::new(resolver),
    )
    .await;
    if let Some(redis) = private_redis {
        redis.stop().await;
    }
    result
}

async fn serve(
    app: &App,
    options: &UpOptions,
    runtime_config: &RuntimeConfig,
    state_dir: &Path,
    resolver: Arc<Resolver>,
) -> Result<()> {
    resolver.check_required()?;
    let stores = Stores::open(app, runtime_config, state_dir)?;
    stores.seed(options).await?;

    let engine = build_engine(&options.engine)?;
    let mut linker = Linker::<InstanceState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    SpinImports::add_to_linker::<_, HasSelf<InstanceState>>(&mut linker, |state| state)?;

    let assets = tempfile::Builder::new()
        .prefix("spin-host-assets-")
        .tempdir()?;
    let log_dir = state_dir.join("logs");
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let prepare = Prepare {
        app,
        options,
        engine: &engine,
        stores: &stores,
        resolver: &resolver,
        assets: assets.path(),
        log_dir: &log_dir,
        cache_dir: compile_cache_dir(state_dir),
    };

    let (router, duplicates) = spin_app::routing::Router::build(&app.http_triggers)?;
    if !duplicates.is_empty() {
        eprintln!("ERROR The following component routes are duplicates and will never be used:");
        for duplicate in &duplicates {
            eprintln!(
                "  {}: {} (duplicate of {})",
                duplicate.loser, duplicate.route, duplicate.winner
            );
        }
    }
    let mut http_components = HashMap::new();
    for trigger in &app.http_triggers {
        let Some(id) = &trigger.component else {
            continue;
        };
        if matches!(trigger.route, RouteSpec::Private) || http_components.contains_key(id) {
            continue;
        }
        let (context, component) = prepare.component(id)?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("component {id} does not export wasi:http/incoming-handler")
            })?;
        http_components.insert(id.clone(), HttpComponent { pre, context });
    }

    let mut subscribers: BTreeMap<String, RedisSubscriber> = BTreeMap::new();
    let mut redis_components: HashMap<String, Arc<RedisComponent>> = HashMap::new();
    for trigger in &app.redis_triggers {
        let address = match trigger.address.as_ref().or(app.redis_address.as_ref()) {
            Some(template) => resolver.render(template)?,
            None => bail!(
                "spin.toml: [[trigger.redis]] for component \"{}\" has no address and [application.trigger.redis] sets none",
                trigger.component
            ),
        };
        let channel = resolver.render(&trigger.channel)?;
        let component = match redis_components.get(&trigger.component) {
            Some(component) => component.clone(),
            None => {
                let (context, component) = prepare.component(&trigger.component)?;
                let pre = RedisTriggerPre::new(linker.instantiate_pre(&component)?)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!(
                            "component {} does not export fermyon:spin/inbound-redis",
                            trigger.component
                        )
                    })?;
                let component = Arc::new(RedisComponent { pre, context });
                redis_components.insert(trigger.component.clone(), component.clone());
                component
            }
        };
        subscribers
            .entry(address.clone())
            .or_insert_with(|| RedisSubscriber {
                address,
                channels: BTreeMap::new(),
            })
            .channels
            .entry(channel)
            .or_default()
            .push(component);
    }

    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(|error| {
            if error.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!("{} is already in use.", options.listen)
            } else {
                anyhow::anyhow!("binding {}: {error}", options.listen)
            }
        })?;
    let address = listener.local_addr()?;
    for subscriber in subscribers.into_values() {
        println!("{}", subscriber.describe());
        subscriber.start().await?;
    }
    println!("Logging component stdio to \"{}\"", log_dir.display());
    println!("Serving http://{address}");
    println!("Available Routes:");
    for (target, route, wildcard) in router.routes() {
        let suffix = if wildcard { " (wildcard)" } else { "" };
        let shown = route.trim_end_matches("/...");
        println!("  {target}: http://{address}{shown}{suffix}");
    }
    let trigger = Arc::new(HttpTrigger {
        router,
        components: http_components,
        app_name: app.name.clone(),
        app_version: app.version.clone(),
        max_request_body: options.max_request_body,
    });
    tokio::select! {
        result = trigger.serve(listener) => result,
        () = shutdown_signal() => {
            println!("Shutting down");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match terminate.as_mut() { Some(signal) => { signal.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// The key-value stores and SQLite databases of the app, one instance per label, shared by
/// every component granted that label.
struct Stores {
    key_value: HashMap<String, Arc<KeyValueStore>>,
    sqlite: HashMap<String, Arc<SqliteDatabase>>,
}

impl Stores {
    /// Opens every label a component declares, plus `default`, which `--sqlite` and
    /// `--key-value` address even when no component does.
    fn open(app: &App, runtime_config: &RuntimeConfig, state_dir: &Path) -> Result<Self> {
        let default = || std::iter::once("default".to_owned());
        let mut key_value = HashMap::new();
        let kv_labels = app
            .components
            .values()
            .flat_map(|c| c.key_value_stores.iter().cloned());
        for label in kv_labels.chain(default()) {
            if key_value.contains_key(&label) {
                continue;
            }
            let store = match runtime_config.key_value_stores.get(&label) {
                Some(KeyValueConfig::Spin { path }) => {
                    KeyValueStore::sqlite(&label, path.as_deref())?
                }
                Some(KeyValueConfig::Redis { url }) => KeyValueStore::redis(url)?,
                None => {
                    KeyValueStore::sqlite(&label, Some(&state_dir.join("sqlite_key_value.db")))?
                }
            };
            key_value.insert(label, Arc::new(store));
        }
        let mut sqlite = HashMap::new();
        let sqlite_labels = app
            .components
            .values()
            .flat_map(|c| c.sqlite_databases.iter().cloned());
        for label in sqlite_labels.chain(default()) {
            if sqlite.contains_key(&label) {
                continue;
            }
            let database = match runtime_config.sqlite_databases.get(&label) {
                Some(SqliteConfig::Spin { path }) => SqliteDatabase::new(path.clone())?,
                None => SqliteDatabase::new(Some(state_dir.join("sqlite_db.db")))?,
            };
            sqlite.insert(label, Arc::new(database));
        }
        Ok(Self { key_value, sqlite })
    }

    /// Applies `--sqlite` and `--key-value` before serving; any failure aborts start-up.
    async fn seed(&self, options: &UpOptions) -> Result<()> {
        for statement in &options.sqlite {
            match statement.strip_prefix('@') {
                Some(reference) => {
                    let (file, label) = match reference.rsplit_once(':') {
                        Some((file, label)) => (file, label),
                        None => (reference, "default"),
                    };
                    if file.is_empty() || label.is_empty() {
                        bail!(
                            "invalid --sqlite value '{statement}': expected @file.sql or @file.sql:label"
                        );
                    }
                    let sql = std::fs::read_to_string(file)
                        .with_context(|| format!("reading --sqlite file {file}"))?;
                    let database = self.sqlite.get(label).with_context(|| format!("--sqlite names database '{label}', which no component uses and the runtime config does not define"))?;
                    database
                        .execute_batch(&sql)
                        .with_context(|| format!("running {file} against database '{label}'"))?;
                }
                None => {
                    let database = self.sqlite.get("default").context("no default database")?;
                    database
                        .execute_first(statement)
                        .with_context(|| format!("running --sqlite statement {statement}"))?;
                }
            }
        }
        if let Some(store) = self.key_value.get("default") {
            for (key, value) in &options.key_values {
                store
                    .set(key, value.as_bytes())
                    .await
                    .map_err(|e| anyhow::anyhow!("--key-value {key}: {e:?}"))?;
            }
        }
        Ok(())
    }
}

struct Prepare<'a> {
    app: &'a App,
    options: &'a UpOptions,
    engine: &'a Engine,
    stores: &'a Stores,
    resolver: &'a Arc<Resolver>,
    assets: &'a Path,
    log_dir: &'a Path,
    cache_dir: PathBuf,
}

impl Prepare<'_> {
    fn component(
        &self,
        id: &str,
    ) -> Result<(Arc<ComponentContext>, wasmtime::component::Component)> {
        let spec = self
            .app
            .components
            .get(id)
            .with_context(|| format!("spin.toml: no component \"{id}\""))?;
        let component = load_component(self.engine, &spec.source, Some(&self.cache_dir))
            .with_context(|| format!("loading component \"{id}\""))?;

        let rendered: Vec<String> = spec
            .allowed_outbound_hosts
            .iter()
            .map(|template| self.resolver.render(template))
            .collect::<Result<_, _>>()
            .with_context(|| format!("component \"{id}\": resolving allowed_outbound_hosts"))?;
        let allowed_hosts = AllowedHosts::parse(&rendered).map_err(|error| {
            anyhow::anyhow!("spin.toml: component \"{id}\": allowed_outbound_hosts: {error}")
        })?;

        let files_dir = if spec.files.is_empty() {
            None
        } else {
            let dir = self.assets.join(id);
            std::fs::create_dir_all(&dir)?;
            for (source, guest) in spec.resolve_files(&self.app.dir)? {
                let target = dir.join(&guest);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::copy(&source, &target).with_context(|| {
                    format!("copying {} for component \"{id}\"", source.display())
                })?;
            }
            Some(dir)
        };

        let mut environment: Vec<(String, String)> = spec
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        environment.extend(self.options.env.iter().cloned());
        let open_log = |stream: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_dir.join(format!("{id}_{stream}.txt")))
                .ok()
        };
        let context = Arc::new(ComponentContext {
            id: id.to_owned(),
            environment,
            files_dir,
            allowed_hosts,
            key_value_stores: granted(&spec.key_value_stores, &self.stores.key_value),
            sqlite_databases: granted(&spec.sqlite_databases, &self.stores.sqlite),
            variables: self.resolver.clone(),
            stdout: GuestOutput::new(id, !self.options.quiet, open_log("stdout")),
            stderr: GuestOutput::new(id, !self.options.quiet, open_log("stderr")),
            spec: spec.clone(),
        });
        Ok((context, component))
    }
}

/// The stores among `all` that a component's manifest grants it.
fn granted<T>(labels: &[String], all: &HashMap<String, Arc<T>>) -> HashMap<String, Arc<T>> {
    labels
        .iter()
        .filter_map(|label| all.get(label).map(|store| (label.clone(), store.clone())))
        .collect()
}

/// Compiled components are cached in the state directory, or where `SPIN_HOST_CACHE_DIR` says
/// (the tests share one cache between the many apps they start).
fn compile_cache_dir(state_dir: &Path) -> PathBuf {
    std::env::var_os("SPIN_HOST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir.join("cache"))
}
