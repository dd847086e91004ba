//! Every built component must import and export only what Spin 3.6 (SpinKube's shim v0.24)
//! provides, so the app stays deployable there (docs/architecture.md). Run after the components are
//! built (scripts/test builds them first); a missing build is a failure, not a skip.

use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn built_components() -> Vec<(String, PathBuf)> {
    let root = workspace_root();
    let mut found = Vec::new();
    // The app's components and the host's test probes, which stand in for components too.
    let dirs = ["components", "host/probes"]
        .map(|dir| std::fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("{dir}/: {e}")));
    for entry in dirs.into_iter().flatten() {
        let dir = entry.expect("readable entry").path();
        if !dir.join("Cargo.toml").exists() {
            continue;
        }
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        let wasm = root
            .join("target/wasm32-wasip2/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        found.push((name, wasm));
    }
    found.sort();
    found
}

/// `wasi:*@0.2.x`, `fermyon:spin/*@2.0.0`, `spin:sqlite/sqlite@3.0.0`, and the unversioned
/// `fermyon:spin/redis-types` that every Redis handler imports alongside its export.
fn import_allowed(name: &str) -> bool {
    if name == "fermyon:spin/redis-types" {
        return true;
    }
    if let Some(rest) = name.strip_prefix("wasi:") {
        return rest
            .split_once('@')
            .is_some_and(|(_, version)| is_wasi_0_2(version));
    }
    if let Some(rest) = name.strip_prefix("fermyon:spin/") {
        return rest.ends_with("@2.0.0");
    }
    name == "spin:sqlite/sqlite@3.0.0"
}

/// A released WASI 0.2 version: `0.2.<patch>`, no pre-release or draft suffix.
fn is_wasi_0_2(version: &str) -> bool {
    version
        .strip_prefix("0.2.")
        .is_some_and(|patch| !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()))
}

fn export_allowed(name: &str) -> bool {
    name == "fermyon:spin/inbound-redis"
        || name
            .strip_prefix("wasi:http/incoming-handler@")
            .is_some_and(|version| version.starts_with("0.2."))
}

#[test]
fn every_component_uses_only_interfaces_spin_3_6_provides() {
    let engine = Engine::new(&Config::new()).expect("engine");
    let components = built_components();
    assert!(
        !components.is_empty(),
        "no component crates found under components/ or host/probes/"
    );
    let mut problems = Vec::new();
    for (name, wasm) in &components {
        let bytes = std::fs::read(wasm).unwrap_or_else(|e| {
            panic!(
                "{name}: {} not built ({e}); run scripts/test",
                wasm.display()
            )
        });
        let component = Component::new(&engine, &bytes)
            .unwrap_or_else(|e| panic!("{name}: not a valid component: {e:#}"));
        let ty = component.component_type();
        for (import, _) in ty.imports(&engine) {
            if !import_allowed(import) {
                problems.push(format!("{name} imports {import}"));
            }
        }
        let exports: Vec<&str> = ty.exports(&engine).map(|(export, _)| export).collect();
        assert!(!exports.is_empty(), "{name} exports nothing");
        for export in exports {
            if !export_allowed(export) {
                problems.push(format!("{name} exports {export}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "not deployable on Spin 3.6:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_allow_list_rejects_what_spin_3_6_lacks() {
    assert!(import_allowed("wasi:http/outgoing-handler@0.2.6"));
    assert!(import_allowed("fermyon:spin/key-value@2.0.0"));
    assert!(import_allowed("spin:sqlite/sqlite@3.0.0"));
    assert!(!import_allowed("wasi:http/handler@0.3.0-rc-2026-01-06"));
    assert!(!import_allowed("spin:postgres/postgres@4.0.0"));
    assert!(!import_allowed("wasi:keyvalue/store@0.2.0-draft2"));
    assert!(!import_allowed("fermyon:spin/key-value"));
    assert!(import_allowed("fermyon:spin/redis-types"));
    assert!(export_allowed("wasi:http/incoming-handler@0.2.0"));
    assert!(!export_allowed("wasi:http/handler@0.3.0-rc-2026-01-06"));
    assert!(!export_allowed("wasi:cli/run@0.2.0"));
}

/// `path` with `.` and `..` resolved lexically (cargo records `include_str!` files as written).
fn normalized(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

/// The workspace files cargo recorded as the sources of a built artifact (its `.d` file).
fn recorded_sources(root: &Path, wasm: &Path) -> Vec<PathBuf> {
    let dep_info = wasm.with_extension("d");
    let text = std::fs::read_to_string(&dep_info)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/test", dep_info.display()));
    let first = text.lines().next().unwrap_or_default();
    let (_, sources) = first.split_once(": ").expect("a make rule");
    sources
        .split_whitespace()
        .map(|source| normalized(Path::new(source)))
        .filter(|source| source.starts_with(root) && !source.starts_with(root.join("target")))
        .collect()
}

/// The `crates/x` or `components/x` directory a workspace file belongs to, if any.
fn crate_dir(root: &Path, file: &Path) -> Option<PathBuf> {
    let relative = file.strip_prefix(root).ok()?;
    let mut parts = relative.components();
    let group = parts.next()?.as_os_str();
    let name = parts.next()?.as_os_str();
    (group == "crates" || group == "components").then(|| root.join(group).join(name))
}

#[test]
fn watch_globs_name_every_source_of_each_build_and_no_other_crate() {
    let root = workspace_root();
    let app = spin_app::App::load(&root.join("spin.toml")).expect("spin.toml loads");
    let all_crates: Vec<PathBuf> = ["crates", "components"]
        .iter()
        .flat_map(|group| std::fs::read_dir(root.join(group)).expect("readable"))
        .map(|entry| entry.expect("entry").path())
        .filter(|dir| dir.join("Cargo.toml").exists())
        .collect();
    let mut problems = Vec::new();
    for component in app.components.values() {
        let id = &component.id;
        assert!(component.build.is_some(), "{id} has no build command");
        let sources = recorded_sources(&root, &component.source);
        assert!(!sources.is_empty(), "{id}: no sources recorded");
        let mut used_crates = std::collections::BTreeSet::new();
        for source in &sources {
            if !component.build_watches(&app.dir, source) {
                problems.push(format!("{id}: no watch glob matches {}", source.display()));
            }
            used_crates.extend(crate_dir(&root, source));
        }
        for manifest in [root.join("Cargo.toml"), root.join("Cargo.lock")]
            .into_iter()
            .chain(used_crates.iter().map(|dir| dir.join("Cargo.toml")))
        {
            if !component.build_watches(&app.dir, &manifest) {
                problems.push(format!(
                    "{id}: no watch glob matches {}",
                    manifest.display()
                ));
            }
        }
        for unused in all_crates.iter().filter(|dir| !used_crates.contains(*dir)) {
            if component.build_watches(&app.dir, &unused.join("src/lib.rs")) {
                problems.push(format!(
                    "{id} watches {}, which it is not built from",
                    unused.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
