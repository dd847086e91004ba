//! The `spin-host` command line: `build`, start-up failures, and `--sqlite` migrations.

mod support;

use std::process::Command;

use support::{RedisServer, app_manifest};

fn spin_host() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spin-host"))
}

#[test]
fn build_runs_each_components_commands_in_its_workdir_and_stops_at_a_failure() {
    let markers = tempfile::tempdir().expect("tempdir");
    let manifest = app_manifest("build");
    let ok = spin_host()
        .args(["build", "-c", "first", "-c", "second", "-f"])
        .arg(&manifest)
        .env("MARKER_DIR", markers.path())
        .output()
        .expect("run build");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let read = |name: &str| {
        std::fs::read_to_string(markers.path().join(name))
            .expect(name)
            .trim()
            .to_owned()
    };
    assert_eq!(read("first.txt"), "first");
    assert_eq!(read("second.txt"), "second");
    assert!(read("first-workdir.txt").ends_with("apps/build/sub"));

    let failed = spin_host()
        .args(["build", "-f"])
        .arg(&manifest)
        .env("MARKER_DIR", markers.path())
        .output()
        .expect("run build");
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("Build command for component broken failed"),
        "{stderr}"
    );
}

#[test]
fn a_bad_manifest_stops_start_up_naming_the_file_and_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        "spin_manifest_version = 2\n[application]\nname = \"x\"\ncolour = \"blue\"\n",
    )
    .expect("write manifest");
    let output = spin_host()
        .arg("up")
        .arg("-f")
        .arg(&manifest)
        .output()
        .expect("run up");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("spin.toml"), "{stderr}");
    assert!(stderr.contains("colour"), "{stderr}");
}

#[test]
fn sqlite_migration_files_run_against_their_database_before_serving() {
    let redis = RedisServer::start();
    let migrations = app_manifest("probe").with_file_name("migrations.sql");
    let host = support::probe(&redis)
        .arg("--sqlite")
        .arg(&format!("@{}:notes", migrations.display()))
        .start();
    let notes = host.get("/sql/notes?db=notes");
    assert_eq!(notes.status, 200, "{}", notes.body);
    assert_eq!(notes.json(), serde_json::json!([]));
    // The default database was not touched.
    assert_eq!(host.get("/sql/notes").status, 500);
}

#[test]
fn a_failing_sqlite_migration_stops_start_up() {
    let redis = RedisServer::start();
    let (status, output) = support::probe(&redis)
        .arg("--sqlite")
        .arg("CREATE TABLE broken (")
        .fail();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("--sqlite"), "{output}");
}

#[test]
fn key_value_flags_seed_the_default_store_before_serving() {
    let redis = RedisServer::start();
    let host = support::probe(&redis)
        .arg("--key-value")
        .arg("greeting=hi there")
        .start();
    assert_eq!(host.get("/kv/greeting").body, "hi there");
}

#[test]
fn only_the_first_statement_of_an_sqlite_string_runs_as_in_spin() {
    let redis = RedisServer::start();
    let host = support::probe(&redis)
        .arg("--sqlite")
        .arg("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL); DROP TABLE notes")
        .start();
    // Had the DROP run too, the table would be gone and the read would fail.
    let notes = host.get("/sql/notes");
    assert_eq!((notes.status, notes.body.as_str()), (200, "[]"));
}

/// A manifest in `dir` with one HTTP component, `app`, whose Wasm file is `source`.
fn one_component_app(dir: &std::path::Path, source: &str) -> std::path::PathBuf {
    let manifest = dir.join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"app\"\n\
             [component.app]\nsource = \"{source}\"\n"
        ),
    )
    .expect("write manifest");
    manifest
}

#[test]
fn a_missing_component_file_stops_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, output) = support::HostBuilder::new(one_component_app(dir.path(), "missing.wasm"))
        .binary(env!("CARGO_BIN_EXE_spin-host"))
        .fail();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("has it been built?"), "{output}");
    assert!(!output.contains("Serving"), "{output}");
}

#[test]
fn a_component_that_does_not_compile_stops_the_app_though_compiled_after_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bad.wasm"), b"\0asm but not really").expect("write");
    let cache = tempfile::tempdir().expect("tempdir");
    let (status, output) = support::HostBuilder::new(one_component_app(dir.path(), "bad.wasm"))
        .binary(env!("CARGO_BIN_EXE_spin-host"))
        .env("SPIN_HOST_CACHE_DIR", &cache.path().display().to_string())
        .fail();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("compiling"), "{output}");
}

/// With an empty compile cache the app serves at once: each component is compiled when a
/// request first needs it, and the rest in the background, into the cache.
#[test]
fn a_cold_start_compiles_on_first_need_and_the_rest_in_the_background() {
    let redis = RedisServer::start();
    let cache = tempfile::tempdir().expect("tempdir");
    let host = support::probe(&redis)
        .env("SPIN_HOST_CACHE_DIR", &cache.path().display().to_string())
        .start();
    assert_eq!(host.get("/exact").status, 200);
    support::eventually("every component compiled", || {
        host.output
            .text()
            .contains("Components ready: ")
            .then_some(())
    });
    let cached = |extension: &str| {
        std::fs::read_dir(cache.path())
            .expect("cache dir")
            .filter(|entry| {
                entry.as_ref().expect("entry").path().extension() == Some(extension.as_ref())
            })
            .count()
    };
    // Two Wasm files (probe_http.wasm for every HTTP component, probe_redis.wasm).
    assert_eq!(cached("cwasm"), 2);
    assert_eq!(host.get("/items/1/detail").status, 200);

    // The next start finds everything in the cache.
    drop(host);
    let host = support::probe(&redis)
        .env("SPIN_HOST_CACHE_DIR", &cache.path().display().to_string())
        .start();
    support::eventually("the cache to be reported", || {
        host.output
            .text()
            .contains("Components ready: every one from the compile cache")
            .then_some(())
    });
}
