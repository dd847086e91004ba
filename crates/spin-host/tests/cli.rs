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
