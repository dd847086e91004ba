//! The one wasmtime `Engine` of the process, and loading components through an on-disk cache
//! of compiled code, so that `up` from built artifacts serves its first request well under a
//! second: compiling a spin-sdk component with Cranelift takes longer than that on two cores.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Engine settings that change how a request is served. Spin's defaults, which we keep: the
/// pooling allocator when the OS permits it, and no epoch deadline (so no request timeout).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub pooling: bool,
    pub max_instance_memory: Option<usize>,
}

/// The engine requests run on, and a second one that compiles for it in the background: the
/// same settings, so the code it produces loads into the first, but compiling on its calling
/// thread only instead of on every core. A background compile on a low-priority thread then
/// leaves the cores to requests and to the components compiled because a request needs them.
pub struct Engines {
    pub main: Engine,
    background: Option<Engine>,
}

/// How urgently a component missing from the compile cache is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Only if the cache has it: start-up prepares what it can without compiling.
    CachedOnly,
    /// A request or a rebuild waits for it: compile on every core.
    Now,
    /// Ahead of need: compile on the calling thread with the background engine.
    Background,
}

pub fn build_engines(options: &EngineOptions) -> Result<Engines> {
    let main = build_engine(options, true)?;
    // The background engine allocates no instances, so it needs no pool; its code is only
    // usable if its settings hash the same as the main engine's.
    let background = build_engine(
        &EngineOptions {
            pooling: false,
            ..options.clone()
        },
        false,
    )
    .ok()
    .filter(|background| compatibility(background) == compatibility(&main));
    Ok(Engines { main, background })
}

fn build_engine(options: &EngineOptions, parallel_compilation: bool) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.parallel_compilation(parallel_compilation);
    if options.pooling {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(1000)
            .total_core_instances(2000)
            .total_memories(1000)
            .total_tables(2000)
            .max_component_instance_size(10 << 20)
            .max_core_instance_size(10 << 20)
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            // A freed slot's first pages are reset with memset and kept, the rest decommitted.
            // PAGEMAP_SCAN (Linux 6.7+; ignored before) finds the pages an instance actually
            // wrote, so only those are reset and kept. Keeping 4 MiB made a trivial request
            // cheapest (~145 µs of host CPU against ~215 µs with 1 MiB, on 2 cores), but every
            // slot ever used then held up to 4 MiB: the on-sale's concurrency touches about 40
            // slots, which kept 160 MB resident. With 1 MiB its peak RSS is under 90 MB.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto)
            // A slot keeps its memory while unused; by default up to 100 unused slots are kept
            // warm for their component, so RSS grew with every slot ever used (210 MB under
            // scripts/bench-app). Eight keep one warm per busy component at no measured CPU
            // cost; beyond them slots are reused, least recently used first.
            .max_unused_warm_slots(8);
        if let Some(limit) = options.max_instance_memory {
            pooling.max_memory_size(limit);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    }
    match Engine::new(&config) {
        Ok(engine) => Ok(engine),
        Err(error) if options.pooling => {
            // As Spin does: fall back to on-demand allocation where the OS refuses the
            // pooling allocator's address-space reservation (for example under a ulimit -v).
            eprintln!(
                "warning: pooling allocator unavailable ({error:#}); using on-demand allocation"
            );
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            Engine::new(&config)
                .map_err(anyhow::Error::from)
                .context("creating the wasmtime engine")
        }
        Err(error) => Err(anyhow::Error::from(error)).context("creating the wasmtime engine"),
    }
}

/// Loads a component, reusing the compiled form cached under `cache_dir` when the wasm bytes,
/// the wasmtime version and the engine's settings are all unchanged, and otherwise compiling it
/// as `urgency` says (`None` for [`Urgency::CachedOnly`] when the cache lacks it). Either way
/// the wasm file is read, so a missing one fails here.
pub fn load_component(
    engines: &Engines,
    source: &Path,
    cache_dir: &Path,
    urgency: Urgency,
) -> Result<Option<Component>> {
    let wasm = std::fs::read(source).with_context(|| {
        format!(
            "reading component {} (has it been built? try `spin-host build`)",
            source.display()
        )
    })?;
    let engine = &engines.main;
    let cached = cache_path(engine, cache_dir, &wasm);
    if cached.exists() {
        match deserialize_cached(engine, &cached) {
            Ok(component) => return Ok(Some(component)),
            Err(error) => eprintln!(
                "warning: ignoring unusable compile cache {}: {error:#}",
                cached.display()
            ),
        }
    }
    let compiled = match (urgency, &engines.background) {
        (Urgency::CachedOnly, _) => return Ok(None),
        (Urgency::Background, Some(background)) => background
            .precompile_component(&wasm)
            .map_err(anyhow::Error::from)
            .and_then(|code| {
                let component = deserialize_own(engine, &code)?;
                Ok((component, code))
            }),
        _ => Component::new(engine, &wasm)
            .map_err(anyhow::Error::from)
            .and_then(|component| {
                let code = component.serialize()?;
                Ok((component, code))
            }),
    };
    let (component, code) = compiled.with_context(|| format!("compiling {}", source.display()))?;
    release_freed_memory();
    if let Err(error) = write_cache(&code, &cached) {
        eprintln!(
            "warning: could not cache compiled {}: {error:#}",
            source.display()
        );
    }
    Ok(Some(component))
}

/// What compiled code depends on in an engine's settings (and wasmtime's version): two engines
/// with the same value can load each other's code. Part of every cache key.
fn compatibility(engine: &Engine) -> [u8; 32] {
    let mut hasher = Sha256::new();
    std::hash::Hash::hash(
        &engine.precompile_compatibility_hash(),
        &mut HashWriter(&mut hasher),
    );
    hasher.finalize().into()
}

fn cache_path(engine: &Engine, cache_dir: &Path, wasm: &[u8]) -> PathBuf {
    let mut hasher = Sha256::new();
    hasher.update(wasm);
    hasher.update(compatibility(engine));
    let digest = hasher.finalize();
    let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    cache_dir.join(format!("{name}.cwasm"))
}

/// Feeds `std::hash::Hash` output into a SHA-256, so the engine's compatibility hash, which is
/// only exposed as `impl Hash`, becomes bytes.
struct HashWriter<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashWriter<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn write_cache(bytes: &[u8], path: &Path) -> Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir)?;
    // Write then rename, so a concurrent start never reads a half-written file.
    let temporary = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(temporary.path(), bytes)?;
    temporary.persist(path)?;
    Ok(())
}

#[allow(unsafe_code)]
fn deserialize_cached(engine: &Engine, path: &Path) -> Result<Component> {
    // SAFETY: the file is one this host wrote with `Component::serialize` into its own state
    // directory, under a name derived from the wasm bytes and the engine's compatibility hash;
    // wasmtime additionally checks the header for version and configuration mismatches.
    unsafe { Component::deserialize_file(engine, path) }.map_err(anyhow::Error::from)
}

#[allow(unsafe_code)]
fn deserialize_own(engine: &Engine, code: &[u8]) -> Result<Component> {
    // SAFETY: `code` was produced a moment ago by this process's background engine, whose
    // settings hash the same as `engine`'s; wasmtime checks the header as well.
    unsafe { Component::deserialize(engine, code) }.map_err(anyhow::Error::from)
}

/// Compiling leaves tens of MB of freed memory in glibc's heaps (one per compiling thread),
/// which glibc keeps by default: after a compile the app's RSS stayed 75 MB higher. Serving
/// does too, more slowly: a burst of requests frees memory in the middle of the heaps, which
/// glibc only returns from their tops. This returns all of it to the OS.
#[allow(unsafe_code)]
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_background_engine_compiles_code_the_main_engine_loads_and_caches() {
        let engines = build_engines(&EngineOptions {
            pooling: true,
            max_instance_memory: Some(64 << 20),
        })
        .expect("engines");
        assert!(
            engines.background.is_some(),
            "the background engine's settings must hash as the main engine's"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("empty.wat");
        std::fs::write(&source, "(component (core module))").expect("write");
        let cache = dir.path().join("cache");
        let load = |urgency| load_component(&engines, &source, &cache, urgency).expect("load");
        assert!(load(Urgency::CachedOnly).is_none(), "nothing cached yet");
        assert!(load(Urgency::Background).is_some());
        assert_eq!(std::fs::read_dir(&cache).expect("cache").count(), 1);
        assert!(
            load(Urgency::CachedOnly).is_some(),
            "the background engine's code is cached for the main engine"
        );
    }
}
