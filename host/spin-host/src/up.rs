//! `spin-host up`: loads the manifest and runtime config the way `spin up` does, prepares every
//! component once (compiled, linked, pre-instantiated), then runs the HTTP and Redis triggers
//! until Ctrl-C. Under `spin-host watch` the same run also follows source changes ([`Dev`]).

use std::collections::{BTreeMap, HashMap};
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
use crate::http_trigger::{HttpComponent, HttpTrigger};
use crate::instance::{ComponentContext, FilesSnapshot, GuestOutput, InstanceState};
use crate::key_value::KeyValueStore;
use crate::private_redis::PrivateRedis;
use crate::redis_trigger::{RedisComponent, RedisSubscriber};
use crate::sqlite::SqliteDatabase;
use crate::watch::Dev;

/// What `up` was asked to do, already parsed from the command line.
#[derive(Clone)]
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
    /// A path of the app to request every `probe_interval` (see [`probe`]).
    pub probe: Option<String>,
    pub probe_interval: std::time::Duration,
}

/// How one run of the app ended.
enum Ended {
    /// Ctrl-C or SIGTERM.
    Stopped,
    /// `watch` saw the manifest or runtime config change; the reason says which. The app
    /// listened on the address given, which the restarted app takes again.
    Restart(String, std::net::SocketAddr),
}

/// Runs the app until Ctrl-C or SIGTERM. Under `watch` (`dev`), it also follows changes: swaps
/// in rebuilt components, restarts when the manifest or runtime config changes, and waits for
/// the next change when the app cannot start.
pub async fn up(mut options: UpOptions, dev: Option<Arc<Dev>>) -> Result<()> {
    let mut private_redis = None;
    let result = loop {
        match run(&options, dev.as_deref(), &mut private_redis).await {
            Ok(Ended::Stopped) => break Ok(()),
            Ok(Ended::Restart(reason, address)) => {
                println!("{reason}: restarting the app");
                options.listen = address.to_string();
            }
            Err(error) => match dev.as_deref() {
                Some(dev) => {
                    eprintln!("Error: {error:#}");
                    eprintln!("The app is not running; waiting for a change to try again");
                    if let Err(error) = dev.wait_for_change(&options).await {
                        break Err(error);
                    }
                }
                None => break Err(error),
            },
        }
    };
    if let Some(redis) = private_redis {
        redis.stop().await;
    }
    result
}

async fn run(
    options: &UpOptions,
    dev: Option<&Dev>,
    private_redis: &mut Option<PrivateRedis>,
) -> Result<Ended> {
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
    if app.variables.contains_key(&options.redis_variable)
        && !resolver.is_provided(&options.redis_variable)
    {
        if private_redis.is_none() {
            let redis = PrivateRedis::start(&state_dir.join("redis")).await?;
            println!(
                "No `{}` configured: started a private redis-server at {}",
                options.redis_variable, redis.url
            );
            *private_redis = Some(redis);
        }
        if let Some(redis) = private_redis {
            resolver.set_override(&options.redis_variable, redis.url.clone());
        }
    }
    serve(
        app,
        options,
        &runtime_config,
        &state_dir,
        Arc::new(resolver),
        dev,
    )
    .await
}

async fn serve(
    app: App,
    options: &UpOptions,
    runtime_config: &RuntimeConfig,
    state_dir: &Path,
    resolver: Arc<Resolver>,
    dev: Option<&Dev>,
) -> Result<Ended> {
    resolver.check_required()?;
    let stores = Stores::open(&app, runtime_config, state_dir)?;
    stores.seed(options).await?;

    let engines = build_engines(&options.engine)?;
    let mut linker = Linker::<InstanceState>::new(&engines.main);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    SpinImports::add_to_linker::<_, HasSelf<InstanceState>>(&mut linker, |state| state)?;

    let log_dir = state_dir.join("logs");
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;

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
    let mut http = HashMap::new();
    for trigger in &app.http_triggers {
        if let Some(id) = &trigger.component
            && !matches!(trigger.route, RouteSpec::Private)
        {
            http.entry(id.clone()).or_insert_with(Slot::default);
        }
    }
    let mut subscribers: BTreeMap<String, RedisSubscriber> = BTreeMap::new();
    let mut redis = HashMap::new();
    for trigger in &app.redis_triggers {
        let address = match trigger.address.as_ref().or(app.redis_address.as_ref()) {
            Some(template) => resolver.render(template)?,
            None => bail!(
                "spin.toml: [[trigger.redis]] for component \"{}\" has no address and [application.trigger.redis] sets none",
                trigger.component
            ),
        };
        let channel = resolver.render(&trigger.channel)?;
        redis
            .entry(trigger.component.clone())
            .or_insert_with(Slot::default);
        subscribers
            .entry(address.clone())
            .or_insert_with(|| RedisSubscriber {
                address,
                channels: BTreeMap::new(),
            })
            .channels
            .entry(channel)
            .or_default()
            .push(trigger.component.clone());
    }
    let assembly = Arc::new(Assembly {
        options: options.clone(),
        engines,
        linker,
        stores,
        resolver: resolver.clone(),
        assets: tempfile::Builder::new()
            .prefix("spin-host-assets-")
            .tempdir()?,
        snapshots: AtomicU64::new(0),
        log_dir,
        cache_dir: compile_cache_dir(state_dir),
        http,
        redis,
        app,
    });
    // What the compile cache holds is ready before the first request; the rest is compiled
    // when first needed, or in the background before that.
    let uncompiled = assembly.prepare_cached()?;
    let app = &assembly.app;

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
    let mut tasks = Tasks(Vec::new());
    for subscriber in subscribers.into_values() {
        println!("{}", subscriber.describe());
        tasks.0.push(subscriber.start(assembly.clone()).await?);
    }
    if let Some(path) = &options.probe {
        println!("Probing {path} every {:?}", options.probe_interval);
        tasks.0.push(tokio::spawn(probe(
            address,
            path.clone(),
            options.probe_interval,
        )));
    }
    println!(
        "Logging component stdio to \"{}\"",
        assembly.log_dir.display()
    );
    println!("Serving http://{address}");
    println!("Available Routes:");
    for (target, route, wildcard) in router.routes() {
        let suffix = if wildcard { " (wildcard)" } else { "" };
        let shown = route.trim_end_matches("/...");
        println!("  {target}: http://{address}{shown}{suffix}");
    }
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let trigger = Arc::new(HttpTrigger {
        router,
        assembly: assembly.clone(),
        app_name: app.name.clone(),
        app_version: app.version.clone(),
        max_request_body: options.max_request_body,
        live_reload: dev.map(Dev::live_reload),
        stopping,
    });
    let follow = async {
        match dev {
            Some(dev) => dev.follow(&assembly, options).await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        result = trigger.serve(listener) => result.map(|()| Ended::Stopped),
        () = shutdown_signal() => {
            println!("Shutting down");
            Ok(Ended::Stopped)
        }
        reason = follow => reason.map(|reason| Ended::Restart(reason, address)),
        error = assembly.compile_in_background(uncompiled) => Err(error),
    };
    // Open connections finish the request they are serving, then close.
    stop.send_replace(true);
    ended
}

/// The background tasks of one run (Redis subscriptions, the probe), ended with it.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Requests `path` from the app every `every`, as a Kubernetes probe does, over loopback. Only a
/// change between answering and failing is reported, so a long outage logs twice.
async fn probe(address: std::net::SocketAddr, path: String, every: std::time::Duration) {
    let mut target = address;
    if target.ip().is_unspecified() {
        target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut failing = false;
    loop {
        ticker.tick().await;
        let outcome = tokio::time::timeout(
            every.max(std::time::Duration::from_secs(5)),
            probe_once(target, &path),
        )
        .await;
        match outcome {
            Ok(Ok(status)) if (200..400).contains(&status) => {
                if failing {
                    eprintln!("Probe {path}: answering again ({status})");
                }
                failing = false;
            }
            failure => {
                if !failing {
                    let why = match failure {
                        Ok(Ok(status)) => format!("status {status}"),
                        Ok(Err(error)) => error.to_string(),
                        Err(_) => "no answer in time".to_owned(),
                    };
                    eprintln!("WARN probe {path} failed: {why}");
                }
                failing = true;
            }
        }
    }
}

/// One `GET path` over a fresh connection; the response's status code.
async fn probe_once(address: std::net::SocketAddr, path: &str) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: spin-host-probe\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let status_line = response
        .split(|&byte| byte == b'\r')
        .next()
        .unwrap_or_default();
    std::str::from_utf8(status_line)
        .ok()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))
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

/// Everything one run of the app needs to prepare a component, and the slots its triggers read
/// each component from. A slot is filled at start-up from the compile cache, or else when a
/// request or message first needs it, or by the background compiler before that; `watch` swaps
/// a rebuilt component into its slot while instances of the previous one finish.
pub struct Assembly {
    pub app: App,
    options: UpOptions,
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
enum Uncompiled {
    Http(String),
    Redis(String),
}

impl Assembly {
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
    fn prepare_cached(&self) -> Result<Vec<Uncompiled>> {
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
    async fn compile_in_background(self: &Arc<Self>, uncompiled: Vec<Uncompiled>) -> anyhow::Error {
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
