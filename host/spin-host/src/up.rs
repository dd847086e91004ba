//! `spin-host up`: loads the manifest and runtime config the way `spin up` does, prepares every
//! component once (compiled, linked, pre-instantiated), then runs the HTTP and Redis triggers
//! until Ctrl-C. Under `spin-host watch` the same run also follows source changes ([`Dev`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use spin_app::App;
use spin_app::routing::Router;
use spin_app::runtime_config::RuntimeConfig;
use spin_app::variables::Resolver;

use crate::assembly::{Assembly, AssemblyOptions, Stores};
use crate::engine::EngineOptions;
use crate::http_trigger::HttpTrigger;
use crate::private_redis::PrivateRedis;
use crate::redis_trigger::RedisSubscriber;
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
    /// Each component's budget of instance memory ([`crate::admission`]).
    pub instance_memory_budget_mib: u32,
    /// The application variable that holds the Redis address; when nothing supplies it, `up`
    /// starts a private redis-server and uses its address.
    pub redis_variable: String,
    /// A path of the app to request every `probe_interval` (see [`probe`]).
    pub probe: Option<String>,
    pub probe_interval: std::time::Duration,
    /// Where SIGUSR1 writes the per-component counters ([`crate::stats`]).
    pub stats_file: Option<PathBuf>,
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

/// One run of the app, step by step: stores, routes, subscriptions, the assembly of components,
/// the listener, the background tasks and the banner; then it serves until it is stopped,
/// `watch` restarts it, or a background compile fails.
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
    stores.seed(&options.sqlite, &options.key_values).await?;
    let router = router(&app)?;
    let subscribers = subscribers(&app, &resolver)?;
    let assembly_options = AssemblyOptions {
        engine: &options.engine,
        env: options.env.clone(),
        quiet: options.quiet,
        state_dir,
        instance_memory_budget_mib: options.instance_memory_budget_mib,
    };
    let assembly = Arc::new(Assembly::new(
        app,
        assembly_options,
        stores,
        resolver.clone(),
    )?);
    // What the compile cache holds is ready before the first request; the rest is compiled
    // when first needed, or in the background before that.
    let uncompiled = assembly.prepare_cached()?;
    let listener = bind(&options.listen).await?;
    let address = listener.local_addr()?;
    let _tasks = start_tasks(subscribers, &assembly, options, address).await?;
    print_banner(&assembly, &router, address);

    let (stop, stopping) = tokio::sync::watch::channel(false);
    let trigger = Arc::new(HttpTrigger {
        router,
        assembly: assembly.clone(),
        app_name: assembly.app.name.clone(),
        app_version: assembly.app.version.clone(),
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

/// The app's HTTP routes; duplicates, which can never be reached, are reported as Spin does.
fn router(app: &App) -> Result<Router> {
    let (router, duplicates) = Router::build(&app.http_triggers)?;
    if !duplicates.is_empty() {
        eprintln!("ERROR The following component routes are duplicates and will never be used:");
        for duplicate in &duplicates {
            eprintln!(
                "  {}: {} (duplicate of {})",
                duplicate.loser, duplicate.route, duplicate.winner
            );
        }
    }
    Ok(router)
}

/// One subscriber per Redis server, with the components of each of its channels.
fn subscribers(app: &App, resolver: &Resolver) -> Result<Vec<RedisSubscriber>> {
    let mut subscribers: BTreeMap<String, RedisSubscriber> = BTreeMap::new();
    for trigger in &app.redis_triggers {
        let address = match trigger.address.as_ref().or(app.redis_address.as_ref()) {
            Some(template) => resolver.render(template)?,
            None => bail!(
                "spin.toml: [[trigger.redis]] for component \"{}\" has no address and [application.trigger.redis] sets none",
                trigger.component
            ),
        };
        let channel = resolver.render(&trigger.channel)?;
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
    Ok(subscribers.into_values().collect())
}

async fn bind(listen: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| {
            if error.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!("{listen} is already in use.")
            } else {
                anyhow::anyhow!("binding {listen}: {error}")
            }
        })
}

/// Starts the Redis subscriptions, and the probe and the stats writer if asked for.
async fn start_tasks(
    subscribers: Vec<RedisSubscriber>,
    assembly: &Arc<Assembly>,
    options: &UpOptions,
    address: std::net::SocketAddr,
) -> Result<Tasks> {
    let mut tasks = Tasks(Vec::new());
    for subscriber in subscribers {
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
    tasks
        .0
        .push(tokio::spawn(release_freed_memory_now_and_then()));
    if let Some(path) = &options.stats_file {
        tasks
            .0
            .push(tokio::spawn(crate::stats::write_on_signal(path.clone())));
    }
    Ok(tasks)
}

/// Every few seconds, gives the memory freed since back to the OS
/// ([`crate::engine::release_freed_memory`]), so the host's footprint follows its load down
/// again. One pass over the heaps takes about a millisecond.
async fn release_freed_memory_now_and_then() {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        tokio::task::spawn_blocking(crate::engine::release_freed_memory)
            .await
            .ok();
    }
}

/// What `spin up` prints once it serves: where the logs go, the address and every route.
fn print_banner(assembly: &Assembly, router: &Router, address: std::net::SocketAddr) {
    println!(
        "Logging component stdio to \"{}\"",
        assembly.log_dir().display()
    );
    println!("Serving http://{address}");
    println!("Available Routes:");
    for (target, route, wildcard) in router.routes() {
        let suffix = if wildcard { " (wildcard)" } else { "" };
        let shown = route.trim_end_matches("/...");
        println!("  {target}: http://{address}{shown}{suffix}");
    }
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
                    eprintln!("Probe {path}: failing ({why})");
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
