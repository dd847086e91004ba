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

pub fn build_engine(options: &EngineOptions) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
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
            // Resetting a slot's first 4 MiB with memset instead of madvise avoids the page faults
            // and cross-core TLB shootdowns of decommitting, for the 1-3 MiB heaps spin-sdk
            // guests touch: measured on 2 cores, host CPU per trivial request fell from ~215 µs
            // (0 or 1 MiB kept) to ~145 µs, and p99 at 32 connections from 7.1 to 5.7 ms.
            .linear_memory_keep_resident(4 << 20)
            .table_keep_resident(64 << 10);
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
            Engine::new(&Config::new())
                .map_err(anyhow::Error::from)
                .context("creating the wasmtime engine")
        }
        Err(error) => Err(anyhow::Error::from(error)).context("creating the wasmtime engine"),
    }
}

/// Loads a component, reusing the compiled form cached under `cache_dir` when the wasm bytes,
/// the wasmtime version and the engine's settings are all unchanged.
pub fn load_component(
    engine: &Engine,
    source: &Path,
    cache_dir: Option<&Path>,
) -> Result<Component> {
    let wasm = std::fs::read(source).with_context(|| {
        format!(
            "reading component {} (has it been built? try `spin-host build`)",
            source.display()
        )
    })?;
    let Some(cache_dir) = cache_dir else {
        return Component::new(engine, &wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", source.display()));
    };
    let cached = cache_path(engine, cache_dir, &wasm);
    if cached.exists() {
        match deserialize_cached(engine, &cached) {
            Ok(component) => return Ok(component),
            Err(error) => eprintln!(
                "warning: ignoring unusable compile cache {}: {error:#}",
                cached.display()
            ),
        }
    }
    let component = Component::new(engine, &wasm)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("compiling {}", source.display()))?;
    if let Err(error) = write_cache(&component, &cached) {
        eprintln!(
            "warning: could not cache compiled {}: {error:#}",
            source.display()
        );
    }
    Ok(component)
}

fn cache_path(engine: &Engine, cache_dir: &Path, wasm: &[u8]) -> PathBuf {
    let mut hasher = Sha256::new();
    hasher.update(wasm);
    std::hash::Hash::hash(
        &engine.precompile_compatibility_hash(),
        &mut HashWriter(&mut hasher),
    );
    let digest = hasher.finalize();
    let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    cache_dir.join(format!("{name}.cwasm"))
}

/// Feeds `std::hash::Hash` output into the SHA-256 so the engine's compatibility hash, which is
/// only exposed as `impl Hash`, becomes part of the cache key.
struct HashWriter<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashWriter<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn write_cache(component: &Component, path: &Path) -> Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
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
