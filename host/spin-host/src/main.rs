//! `spin-host`: a Spin-compatible local host for this project, built on wasmtime because the
//! Spin CLI cannot be installed from the package registries here. It reads the same `spin.toml`
//! and `runtime-config.toml` as `spin up`, so real Spin and SpinKube stay drop-in replacements.
//!
//! Layout: `up` assembles the app ([`up`]): stores, variables, compiled components
//! ([`engine`]), then the triggers ([`http_trigger`], [`redis_trigger`]). Each request or
//! message gets a fresh `Store` whose data is an [`instance::InstanceState`]; the Spin host
//! interfaces it serves are [`key_value`], [`sqlite`], [`outbound_redis`], [`variables`], with
//! outbound network policy in [`outbound_http`]. The manifest's meaning lives in the `spin-app`
//! crate.

mod admission;
mod assembly;
mod bindings;
mod build_cmd;
mod engine;
mod http_trigger;
mod instance;
mod key_value;
mod live_reload;
mod outbound_http;
mod outbound_redis;
mod private_redis;
mod redis_trigger;
mod sqlite;
mod stats;
mod up;
mod variables;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "spin-host",
    version,
    about = "Run this project's Spin application locally, as `spin up` would"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run each component's build command, like `spin build`.
    Build {
        /// The application manifest, or a directory containing spin.toml.
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        from: PathBuf,
        /// Build only these components.
        #[arg(short = 'c', long = "component-id")]
        component_id: Vec<String>,
        /// Run the application after building it.
        #[arg(long)]
        up: bool,
        #[command(flatten)]
        up_args: UpArgs,
    },
    /// Start the application, like `spin up`.
    Up {
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        from: PathBuf,
        /// Build the application before running it.
        #[arg(long)]
        build: bool,
        #[command(flatten)]
        up_args: UpArgs,
    },
    /// Build and start the application, then rebuild and swap in each component whose sources
    /// change, without restarting, like `spin watch`; open pages reload themselves.
    Watch {
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        from: PathBuf,
        /// How long to wait after a change for more changes before acting, in milliseconds.
        #[arg(short = 'd', long, default_value_t = 100)]
        debounce: u64,
        /// Start from the Wasm files as they are, without building every component first.
        #[arg(long)]
        skip_build: bool,
        #[command(flatten)]
        up_args: UpArgs,
    },
}

#[derive(clap::Args)]
struct UpArgs {
    /// The address to listen on.
    #[arg(long, env = "SPIN_HTTP_LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    listen: String,
    /// The runtime configuration file (key-value stores and SQLite databases).
    #[arg(long, env = "RUNTIME_CONFIG_FILE")]
    runtime_config_file: Option<PathBuf>,
    /// Where default stores, logs and the compile cache live (default: .spin next to spin.toml).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Pass an environment variable (KEY=VALUE) to every component.
    #[arg(short = 'e', long = "env", value_parser = parse_pair)]
    env: Vec<(String, String)>,
    /// Set an application variable (name=value, or name=@file to read the value from a file).
    #[arg(long = "variable", value_parser = parse_pair)]
    variable: Vec<(String, String)>,
    /// SQL to run before serving: a statement for the default database, @file.sql, or @file.sql:label.
    #[arg(long)]
    sqlite: Vec<String>,
    /// Set a key in the default key-value store before serving (KEY=VALUE).
    #[arg(long = "key-value", value_parser = parse_pair)]
    key_value: Vec<(String, String)>,
    /// Do not echo component output to the terminal (it still goes to the log files).
    #[arg(short, long)]
    quiet: bool,
    /// Turn off the pooling instance allocator.
    #[arg(long)]
    disable_pooling: bool,
    /// The most linear memory one instance may use, in bytes.
    #[arg(long, env = "SPIN_MAX_INSTANCE_MEMORY")]
    max_instance_memory: Option<usize>,
    /// How much linear memory, in MiB, each component's running HTTP instances may take
    /// together; a request beyond it waits for one of them to finish. The default, 24 MiB per
    /// core, lets one password hash (Argon2, about 21 MiB) run per core.
    #[arg(long, default_value_t = admission::default_budget_mib(), value_parser = clap::value_parser!(u32).range(1..))]
    instance_memory_budget: u32,
    /// The largest request body accepted, in bytes; larger requests get 413.
    #[arg(long, default_value_t = 10 << 20)]
    max_request_body: u64,
    /// The application variable holding the Redis address; if nothing sets it, a private
    /// redis-server is started for the run.
    #[arg(long, default_value = "redis_address")]
    redis_variable: String,
    /// Request this path of the app every --probe-interval seconds, as a Kubernetes probe does
    /// (this app's /api/heartbeat keeps its housekeeping going when nothing else happens).
    #[arg(long)]
    probe: Option<String>,
    /// Seconds between probes.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    probe_interval: u64,
    /// On every SIGUSR1, write each component's counters (instances, CPU, SQLite statements and
    /// writes, Redis commands) to this file as JSON, for benchmarks.
    #[arg(long)]
    stats_file: Option<PathBuf>,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got '{text}'"))?;
    Ok((key.to_owned(), value.to_owned()))
}

fn manifest_path(from: &Path) -> PathBuf {
    if from.is_dir() {
        from.join("spin.toml")
    } else {
        from.to_path_buf()
    }
}

fn read_variable_files(pairs: Vec<(String, String)>) -> Result<Vec<(String, String)>> {
    pairs
        .into_iter()
        .map(|(name, value)| match value.strip_prefix('@') {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading --variable {name}=@{file}"))?;
                Ok((name, text))
            }
            None => Ok((name, value)),
        })
        .collect()
}

fn up_options(manifest: PathBuf, args: UpArgs) -> Result<up::UpOptions> {
    Ok(up::UpOptions {
        manifest,
        listen: args.listen,
        runtime_config_file: args.runtime_config_file,
        state_dir: args.state_dir,
        env: args.env,
        variables: read_variable_files(args.variable)?,
        sqlite: args.sqlite,
        key_values: args.key_value,
        quiet: args.quiet,
        engine: engine::EngineOptions {
            pooling: !args.disable_pooling,
            max_instance_memory: args.max_instance_memory,
        },
        max_request_body: args.max_request_body,
        instance_memory_budget_mib: args.instance_memory_budget,
        redis_variable: args.redis_variable,
        probe: args.probe,
        probe_interval: std::time::Duration::from_secs(args.probe_interval),
        stats_file: args.stats_file,
    })
}

fn run(cli: Cli) -> Result<()> {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match cli.command {
        Command::Build {
            from,
            component_id,
            up,
            up_args,
        } => {
            let manifest = manifest_path(&from);
            build_cmd::build(&spin_app::App::load(&manifest)?, &component_id)?;
            if up {
                runtime()?.block_on(up::up(up_options(manifest, up_args)?, None))?;
            }
            Ok(())
        }
        Command::Up {
            from,
            build,
            up_args,
        } => {
            let manifest = manifest_path(&from);
            if build {
                build_cmd::build(&spin_app::App::load(&manifest)?, &[])?;
            }
            runtime()?.block_on(up::up(up_options(manifest, up_args)?, None))
        }
        Command::Watch {
            from,
            debounce,
            skip_build,
            up_args,
        } => {
            let options = up_options(manifest_path(&from), up_args)?;
            let dev =
                std::sync::Arc::new(watch::Dev::new(std::time::Duration::from_millis(debounce)));
            runtime()?.block_on(async {
                if !skip_build {
                    dev.build_all(&options.manifest).await?;
                }
                up::up(options, Some(dev)).await
            })
        }
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates under contention a heap ("arena") of its own, up to
/// eight per core, and keeps what is freed in each. Instances run on every worker and blocking
/// thread, so under load the host held about 70 MB in a dozen arenas, mostly free. One arena per
/// core keeps allocation uncontended and that memory reused.
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let arenas = libc::c_int::try_from(cores).unwrap_or(2);
        // SAFETY: mallopt only changes the allocator's tuning; it runs here, before any other
        // thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
