//! The components of one run of the app: the stores they are granted, and each component
//! compiled (through the compile cache), linked and pre-instantiated into the slot its trigger
//! reads it from, on first need or in the background before that. `watch` swaps a rebuilt
//! component into its slot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use spin_app::allowed_hosts::AllowedHosts;
use spin_app::runtime_config::{KeyValueConfig, RuntimeConfig, SqliteConfig};
use spin_app::variables::Resolver;
use spin_app::{App, RouteSpec};
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::{RedisTriggerPre, SpinImports};
use crate::engine::{EngineOptions, Engines, Urgency, build_engines, load_component};
use crate::http_trigger::HttpComponent;
use crate::instance::{ComponentContext, FilesSnapshot, GuestOutput, InstanceState};
use crate::key_value::KeyValueStore;
use crate::redis_trigger::RedisComponent;
use crate::sqlite::SqliteDatabase;

/// The key-value stores and SQLite databases of the app, one instance per label, shared by
/// every component granted that label.
pub struct Stores {
    key_value: HashMap<String, Arc<KeyValueStore>>,
    sqlite: HashMap<String, Arc<SqliteDatabase>>,
}

impl Stores {
    /// Opens every label a component declares, plus `default`, which `--sqlite` and
    /// `--key-value` address even when no component does.
    pub fn open(app: &App, runtime_config: &RuntimeConfig, state_dir: &Path) -> Result<Self> {
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

    /// Applies `--sqlite` statements (`sqlite`) and `--key-value` pairs (`key_values`) before
    /// serving; any failure aborts start-up.
    pub async fn seed(&self, sqlite: &[String], key_values: &[(String, String)]) -> Result<()> {
        for statement in sqlite {
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
            for (key, value) in key_values {
                store
                    .set(key, value.as_bytes())
                    .await
                    .map_err(|e| anyhow::anyhow!("--key-value {key}: {e:?}"))?;
            }
        }
        Ok(())
    }
}

/// Everything one run of the app needs to prepare a component, and the slots its triggers read
/// each component from. A slot is filled at start-up from the compile cache, or else when a
/// request or message first needs it, or by the background compiler before that; `watch` swaps
/// a rebuilt component into its slot while instances of the previous one finish.
pub struct Assembly {
    pub app: App,
    /// What `-e` adds to every component's environment.
    env: Vec<(String, String)>,
    /// Whether guest output stays off the terminal (`--quiet`).
    quiet: bool,
    /// Each component's budget of instance memory, in MiB ([`crate::admission`]).
    instance_memory_budget_mib: u32,
    engines: Engines,
    linker: Linker<InstanceState>,
    stores: Stores,
    resolver: Arc<Resolver>,
    /// Each component's copies of its `files`, one directory per copy.
    assets: tempfile::TempDir,
    snapshots: AtomicU64,
    log_dir: PathBuf,
    cache_dir: PathBuf,
    http: HashMap<String, Slot<HttpComponent>>,
    redis: HashMap<String, Slot<RedisComponent>>,
}

/// One component as its triggers run it: empty until prepared.
pub struct Slot<T>(tokio::sync::OnceCell<ArcSwap<T>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self(tokio::sync::OnceCell::new())
    }
}

impl<T> Slot<T> {
    /// Puts `component` in the slot, replacing what it held.
    fn store(&self, component: T) {
        let mut component = Arc::new(component);
        loop {
            if let Some(current) = self.0.get() {
                current.store(component);
                return;
            }
            match self.0.set(ArcSwap::new(component)) {
                Ok(()) => return,
                // Someone else is filling it (a request compiling it): replace theirs after.
                Err(
                    tokio::sync::SetError::AlreadyInitializedError(rejected)
                    | tokio::sync::SetError::InitializingError(rejected),
                ) => {
                    component = rejected.into_inner();
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }
}

/// What a trigger runs: an HTTP or a Redis component, prepared from its Wasm file.
pub trait Prepared: Sized + Send + Sync + 'static {
    fn slots(assembly: &Assembly) -> &HashMap<String, Slot<Self>>;
    fn prepare(assembly: &Assembly, id: &str, urgency: Urgency) -> Result<Option<Self>>;
}

impl Prepared for HttpComponent {
    fn slots(assembly: &Assembly) -> &HashMap<String, Slot<Self>> {
        &assembly.http
    }

    fn prepare(assembly: &Assembly, id: &str, urgency: Urgency) -> Result<Option<Self>> {
        let Some((context, component)) = assembly.prepare(id, urgency)? else {
            return Ok(None);
        };
        let pre = ProxyPre::new(assembly.linker.instantiate_pre(&component)?)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("component {id} does not export wasi:http/incoming-handler")
            })?;
        Ok(Some(HttpComponent { pre, context }))
    }
}

impl Prepared for RedisComponent {
    fn slots(assembly: &Assembly) -> &HashMap<String, Slot<Self>> {
        &assembly.redis
    }

    fn prepare(assembly: &Assembly, id: &str, urgency: Urgency) -> Result<Option<Self>> {
        let Some((context, component)) = assembly.prepare(id, urgency)? else {
            return Ok(None);
        };
        let pre = RedisTriggerPre::new(assembly.linker.instantiate_pre(&component)?)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("component {id} does not export fermyon:spin/inbound-redis")
            })?;
        Ok(Some(RedisComponent { pre, context }))
    }
}

/// A component not yet in its slot at start-up.
pub enum Uncompiled {
    Http(String),
    Redis(String),
}

/// What an [`Assembly`] is made from besides the app: the engines' options, `-e`'s environment,
/// `--quiet`, and the state directory (component logs, the compile cache).
pub struct AssemblyOptions<'a> {
    pub engine: &'a EngineOptions,
    pub env: Vec<(String, String)>,
    pub quiet: bool,
    pub state_dir: &'a Path,
    pub instance_memory_budget_mib: u32,
}

impl Assembly {
    /// Builds the engines and the linker of Spin's interfaces, and an empty slot for every
    /// component a trigger runs (none for private routes).
    pub fn new(
        app: App,
        options: AssemblyOptions<'_>,
        stores: Stores,
        resolver: Arc<Resolver>,
    ) -> Result<Self> {
        let engines = build_engines(options.engine)?;
        let mut linker = Linker::<InstanceState>::new(&engines.main);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        SpinImports::add_to_linker::<_, HasSelf<InstanceState>>(&mut linker, |state| state)?;
        let log_dir = options.state_dir.join("logs");
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let http = app
            .http_triggers
            .iter()
            .filter(|trigger| !matches!(trigger.route, RouteSpec::Private))
            .filter_map(|trigger| trigger.component.clone())
            .map(|id| (id, Slot::default()))
            .collect();
        let redis = app
            .redis_triggers
            .iter()
            .map(|trigger| (trigger.component.clone(), Slot::default()))
            .collect();
        Ok(Self {
            env: options.env,
            quiet: options.quiet,
            instance_memory_budget_mib: options.instance_memory_budget_mib,
            engines,
            linker,
            stores,
            resolver,
            assets: tempfile::Builder::new()
                .prefix("spin-host-assets-")
                .tempdir()?,
            snapshots: AtomicU64::new(0),
            log_dir,
            cache_dir: compile_cache_dir(options.state_dir),
            http,
            redis,
            app,
        })
    }

    /// Where each component's stdout and stderr are logged.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The component `id` as it is now, prepared first if it has not been; a request waits for
    /// that, compiling on every core.
    pub async fn component<T: Prepared>(self: &Arc<Self>, id: &str) -> Result<Arc<T>> {
        let slot = T::slots(self)
            .get(id)
            .with_context(|| format!("no trigger runs component \"{id}\""))?;
        if let Some(current) = slot.0.get() {
            return Ok(current.load_full());
        }
        // Prepared in a task of its own: a client that gives up waiting must not cancel a
        // compile the next request would have to start again.
        let assembly = Arc::clone(self);
        let id = id.to_owned();
        tokio::spawn(async move {
            let slot = &T::slots(&assembly)[&id];
            let current = slot
                .0
                .get_or_try_init(|| async {
                    let assembly = Arc::clone(&assembly);
                    let id = id.clone();
                    let component = tokio::task::spawn_blocking(move || {
                        T::prepare(&assembly, &id, Urgency::Now)?
                            .context("the component was not compiled")
                    })
                    .await??;
                    Ok::<_, anyhow::Error>(ArcSwap::from_pointee(component))
                })
                .await?;
            Ok(current.load_full())
        })
        .await?
    }

    /// Prepares the component `id` ahead of need on a low-priority thread, unless its slot was
    /// filled meanwhile. It never holds the slot: a request that needs the component first
    /// compiles it at full speed instead of waiting for this.
    async fn fill_in_background<T: Prepared>(self: &Arc<Self>, id: &str) -> Result<()> {
        let slot = &T::slots(self)[id];
        if slot.0.initialized() {
            return Ok(());
        }
        let assembly = Arc::clone(self);
        let owned = id.to_owned();
        let component = in_background(move || {
            T::prepare(&assembly, &owned, Urgency::Background)?
                .context("the component was not compiled")
        })
        .await?;
        // Refused if a request filled the slot first, with the same code.
        let _ = slot.0.set(ArcSwap::from_pointee(component));
        Ok(())
    }

    /// Fills every slot whose component the compile cache holds; returns the others.
    pub fn prepare_cached(&self) -> Result<Vec<Uncompiled>> {
        let mut uncompiled = Vec::new();
        for (id, slot) in &self.redis {
            match RedisComponent::prepare(self, id, Urgency::CachedOnly)? {
                Some(component) => slot.store(component),
                None => uncompiled.push(Uncompiled::Redis(id.clone())),
            }
        }
        for (id, slot) in &self.http {
            match HttpComponent::prepare(self, id, Urgency::CachedOnly)? {
                Some(component) => slot.store(component),
                None => uncompiled.push(Uncompiled::Http(id.clone())),
            }
        }
        Ok(uncompiled)
    }

    /// Compiles `uncompiled` ahead of need, on low-priority threads (one per core), Redis
    /// components first since no request waits for them to start. Returns only on a failure,
    /// which ends the app as a failure to start would.
    pub async fn compile_in_background(
        self: &Arc<Self>,
        uncompiled: Vec<Uncompiled>,
    ) -> anyhow::Error {
        use futures::StreamExt;
        if uncompiled.is_empty() {
            println!("Components ready: every one from the compile cache");
            return std::future::pending().await;
        }
        let started = std::time::Instant::now();
        let count = uncompiled.len();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let results: Vec<Result<()>> = futures::stream::iter(uncompiled)
            .map(|component| async move {
                match component {
                    Uncompiled::Redis(id) => self.fill_in_background::<RedisComponent>(&id).await,
                    Uncompiled::Http(id) => self.fill_in_background::<HttpComponent>(&id).await,
                }
            })
            .buffer_unordered(threads)
            .collect()
            .await;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            return error;
        }
        println!(
            "Components ready: {count} compiled in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        std::future::pending().await
    }

    /// Prepares the component again from its Wasm file and `files` as they are now, and swaps
    /// it in for every trigger that runs it. Instances already running keep the previous one.
    pub fn reload(&self, id: &str) -> Result<()> {
        if let Some(slot) = self.http.get(id) {
            slot.store(HttpComponent::prepare(self, id, Urgency::Now)?.context("not compiled")?);
        }
        if let Some(slot) = self.redis.get(id) {
            slot.store(RedisComponent::prepare(self, id, Urgency::Now)?.context("not compiled")?);
        }
        Ok(())
    }

    /// The component `id`, compiled as `urgency` says, and its context; `None` when only the
    /// cache would do and it lacks the component.
    fn prepare(
        &self,
        id: &str,
        urgency: Urgency,
    ) -> Result<Option<(Arc<ComponentContext>, wasmtime::component::Component)>> {
        let spec = self
            .app
            .components
            .get(id)
            .with_context(|| format!("spin.toml: no component \"{id}\""))?;
        let Some(component) = load_component(&self.engines, &spec.source, &self.cache_dir, urgency)
            .with_context(|| format!("loading component \"{id}\""))?
        else {
            return Ok(None);
        };

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
            let copy = self.snapshots.fetch_add(1, Ordering::Relaxed);
            let snapshot = FilesSnapshot(self.assets.path().join(format!("{id}.{copy}")));
            std::fs::create_dir_all(&snapshot.0)?;
            for (source, guest) in spec.resolve_files(&self.app.dir)? {
                let target = snapshot.0.join(&guest);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::copy(&source, &target).with_context(|| {
                    format!("copying {} for component \"{id}\"", source.display())
                })?;
            }
            Some(snapshot)
        };

        let mut environment: Vec<(String, String)> = spec
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        environment.extend(self.env.iter().cloned());
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
            stdout: GuestOutput::new(id, !self.quiet, open_log("stdout")),
            stderr: GuestOutput::new(id, !self.quiet, open_log("stderr")),
            spec: spec.clone(),
            stats: crate::stats::ComponentStats::of(id),
            admission: Arc::new(crate::admission::Admission::new(
                self.instance_memory_budget_mib,
            )),
        });
        Ok(Some((context, component)))
    }
}

/// Runs `work` on a thread of its own at the lowest scheduling priority, so that it only takes
/// cores that requests and urgent compiles leave idle.
async fn in_background<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("background-compile".to_owned())
        .spawn(move || {
            lower_priority();
            // The receiver is gone only if the app stopped meanwhile.
            let _ = done.send(work());
        })?;
    result.await.context("the background compile thread died")?
}

#[allow(unsafe_code)]
fn lower_priority() {
    // SAFETY: setpriority only changes scheduling. On Linux the nice value is per thread, and
    // PRIO_PROCESS with `who` 0 means the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
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
