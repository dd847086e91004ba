//! `spin-host watch`, like `spin watch`: builds the app, runs it, and follows changes without
//! restarting the host.
//!
//! - A change matching a component's `[component.x.build] watch` globs rebuilds that component
//!   (every component whose globs match: a shared crate rebuilds each user), and a change under
//!   its `files` gives it a fresh copy of them. Either way the new version is swapped into the
//!   component's slot ([`Assembly::reload`]): instances already running finish on the old one,
//!   the next request or message gets the new one, and the stores, the Redis subscriptions and
//!   every other component are untouched.
//! - A failed build prints the compiler's output once and keeps the previous version serving;
//!   the component stays pending, so the next change rebuilds it.
//! - A change to the manifest or the runtime config restarts the app in the same process.
//! - After every swap, open pages reload themselves ([`LiveReload`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::{EventKind, RecursiveMode, Watcher as _};
use spin_app::App;
use tokio::sync::mpsc;

use crate::assembly::Assembly;
use crate::build_cmd::build_captured;
use crate::live_reload::LiveReload;
use crate::up::UpOptions;

pub struct Dev {
    live_reload: Arc<LiveReload>,
    debounce: Duration,
    /// Components whose sources changed since their last successful build.
    pending: Mutex<BTreeSet<String>>,
}

impl Dev {
    pub fn new(debounce: Duration) -> Self {
        Self {
            live_reload: Arc::new(LiveReload::new()),
            debounce,
            pending: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn live_reload(&self) -> Arc<LiveReload> {
        self.live_reload.clone()
    }

    /// Builds every component that has a build command, as `spin watch` does before it starts
    /// the app. A failure is reported and left pending: the app starts with the Wasm files
    /// already there, if there are any.
    pub async fn build_all(&self, manifest: &Path) -> Result<()> {
        let app = App::load(manifest)?;
        self.pending().extend(
            app.components
                .values()
                .filter(|component| component.build.is_some())
                .map(|component| component.id.clone()),
        );
        for id in self.queue(&app) {
            if !self.build(&app, &id).await {
                break;
            }
        }
        Ok(())
    }

    /// Follows changes for one run of the app. Returns why the app must restart: its manifest
    /// or runtime config changed.
    pub async fn follow(&self, assembly: &Arc<Assembly>, options: &UpOptions) -> Result<String> {
        let app = &assembly.app;
        let config = ConfigFiles::of(options);
        let mut watcher = Watcher::new(watched_dirs(Some(app), &config), self.debounce)?;
        loop {
            let changed = watcher.next_batch().await?;
            if let Some(reason) = config.changed(&changed) {
                return Ok(reason);
            }
            self.mark_pending(app, &changed);
            let mut remounted = mounting(app, &changed);
            let mut reloaded = false;
            // Each component is swapped in as soon as it is built, so the first one serves
            // while the next builds.
            for id in self.queue(app) {
                if !self.build(app, &id).await {
                    break;
                }
                remounted.remove(&id);
                reloaded |= reload(assembly, &id).await?;
            }
            for id in remounted {
                reloaded |= reload(assembly, &id).await?;
            }
            if reloaded {
                self.live_reload.announce();
            }
        }
    }

    /// Waits, after the app failed to start, for a change worth trying again for: the manifest or
    /// runtime config, a successful rebuild, or a component's files.
    pub async fn wait_for_change(&self, options: &UpOptions) -> Result<()> {
        let config = ConfigFiles::of(options);
        let app = App::load(&options.manifest).ok();
        let mut watcher = Watcher::new(watched_dirs(app.as_ref(), &config), self.debounce)?;
        loop {
            let changed = watcher.next_batch().await?;
            if config.changed(&changed).is_some() {
                return Ok(());
            }
            let Some(app) = &app else {
                continue;
            };
            self.mark_pending(app, &changed);
            let mut built = false;
            for id in self.queue(app) {
                if !self.build(app, &id).await {
                    break;
                }
                built = true;
            }
            if built || !mounting(app, &changed).is_empty() {
                return Ok(());
            }
        }
    }

    /// Marks the components whose watch globs match a change as needing a build.
    fn mark_pending(&self, app: &App, changed: &BTreeSet<PathBuf>) {
        self.pending().extend(
            app.components
                .values()
                .filter(|component| {
                    changed
                        .iter()
                        .any(|path| component.build_watches(&app.dir, path))
                })
                .map(|component| component.id.clone()),
        );
    }

    /// The components needing a build, in manifest order.
    fn queue(&self, app: &App) -> Vec<String> {
        let pending = self.pending();
        app.components
            .keys()
            .filter(|id| pending.contains(*id))
            .cloned()
            .collect()
    }

    /// Builds one component. On failure its output is printed, once, and it stays pending with
    /// the rest for the next change.
    async fn build(&self, app: &App, id: &str) -> bool {
        let started = Instant::now();
        let owned = app.clone();
        let component = id.to_owned();
        let result = tokio::task::spawn_blocking(move || {
            build_captured(&owned, &owned.components[&component])
        })
        .await;
        match result {
            Ok(Ok(())) => {
                println!(
                    "Built component {id} ({:.1} s)",
                    started.elapsed().as_secs_f64()
                );
                self.pending().remove(id);
                true
            }
            Ok(Err(failure)) => {
                let waiting: Vec<String> = self.queue(app);
                eprintln!(
                    "\n==> {}; still serving the previous version.\n{}\n==> Waiting for a change to build again: {}\n",
                    failure.message,
                    failure.output.trim_end(),
                    waiting.join(", ")
                );
                false
            }
            Err(error) => {
                eprintln!("ERROR building component {id}: {error}");
                false
            }
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The components with one of their `files` among the changes.
fn mounting(app: &App, changed: &BTreeSet<PathBuf>) -> BTreeSet<String> {
    app.components
        .values()
        .filter(|component| changed.iter().any(|path| component.mounts(&app.dir, path)))
        .map(|component| component.id.clone())
        .collect()
}

/// Swaps in a fresh version of a component; says whether it did. A component that fails to
/// load (a bad Wasm file, say) leaves the previous version serving.
async fn reload(assembly: &Arc<Assembly>, id: &str) -> Result<bool> {
    let started = Instant::now();
    let owned = assembly.clone();
    let component = id.to_owned();
    let result = tokio::task::spawn_blocking(move || owned.reload(&component))
        .await
        .context("reloading a component")?;
    match result {
        Ok(()) => {
            println!(
                "Reloaded component {id} ({} ms)",
                started.elapsed().as_millis()
            );
            Ok(true)
        }
        Err(error) => {
            eprintln!(
                "ERROR component {id} could not be reloaded; still serving the previous version: {error:#}"
            );
            Ok(false)
        }
    }
}

/// The manifest and the runtime config file, whose changes restart the app.
struct ConfigFiles(Vec<PathBuf>);

impl ConfigFiles {
    fn of(options: &UpOptions) -> Self {
        let files = std::iter::once(&options.manifest)
            .chain(&options.runtime_config_file)
            .map(|path| absolute(path))
            .collect();
        Self(files)
    }

    fn changed(&self, changed: &BTreeSet<PathBuf>) -> Option<String> {
        let file = self.0.iter().find(|file| changed.contains(*file))?;
        let name = file.file_name().unwrap_or(file.as_os_str());
        Some(format!("{} changed", name.to_string_lossy()))
    }
}

/// What to watch: the config files' directories, and what each component's watch globs and
/// `files` name.
fn watched_dirs(app: Option<&App>, config: &ConfigFiles) -> Vec<(PathBuf, bool)> {
    let mut dirs: Vec<(PathBuf, bool)> = config
        .0
        .iter()
        .filter_map(|file| Some((file.parent()?.to_path_buf(), false)))
        .collect();
    if let Some(app) = app {
        for component in app.components.values() {
            dirs.extend(component.watched_dirs(&app.dir));
        }
    }
    dirs
}

/// An absolute path with symbolic links resolved where it exists, so it compares equal to the
/// paths the watcher reports.
fn absolute(path: &Path) -> PathBuf {
    path.canonicalize()
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// File-system notifications for some directories, in debounced batches.
struct Watcher {
    _watcher: notify::RecommendedWatcher,
    changes: mpsc::UnboundedReceiver<PathBuf>,
    debounce: Duration,
}

impl Watcher {
    fn new(mut dirs: Vec<(PathBuf, bool)>, debounce: Duration) -> Result<Self> {
        let (sender, changes) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Reads (ours included, when a component's files are copied) are not changes.
                if let Ok(event) = event
                    && !matches!(event.kind, EventKind::Access(_))
                {
                    for path in event.paths {
                        sender.send(path).ok();
                    }
                }
            })
            .context("starting the file watcher")?;
        // Recursive ones first, so a directory already under one of them is skipped.
        dirs.sort_by_key(|(dir, recursive)| (!*recursive, dir.clone()));
        let mut recursive_roots: Vec<PathBuf> = Vec::new();
        let mut watched: BTreeSet<PathBuf> = BTreeSet::new();
        for (dir, recursive) in dirs {
            let dir = absolute(&dir);
            if recursive_roots.iter().any(|root| dir.starts_with(root))
                || !watched.insert(dir.clone())
            {
                continue;
            }
            if !dir.is_dir() {
                eprintln!("warning: not watching {}: no such directory", dir.display());
                continue;
            }
            let mode = if recursive {
                recursive_roots.push(dir.clone());
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            watcher
                .watch(&dir, mode)
                .with_context(|| format!("watching {}", dir.display()))?;
        }
        Ok(Self {
            _watcher: watcher,
            changes,
            debounce,
        })
    }

    /// The paths changed from the next change until none came for the debounce time.
    async fn next_batch(&mut self) -> Result<BTreeSet<PathBuf>> {
        let stopped = || anyhow::anyhow!("the file watcher stopped");
        let first = self.changes.recv().await.ok_or_else(stopped)?;
        let mut batch = BTreeSet::from([first]);
        loop {
            match tokio::time::timeout(self.debounce, self.changes.recv()).await {
                Ok(Some(path)) => {
                    batch.insert(path);
                }
                Ok(None) => return Err(stopped()),
                Err(_quiet) => return Ok(batch),
            }
        }
    }
}
