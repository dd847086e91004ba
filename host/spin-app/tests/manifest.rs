//! Manifest loading and file-mount resolution, through the public API, on small manifests
//! written to a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use spin_app::{App, FileMount, RouteSpec};

const HEADER: &str = "spin_manifest_version = 2\n[application]\nname = \"demo\"\n";

struct TestApp {
    dir: tempfile::TempDir,
}

impl TestApp {
    fn new() -> TestApp {
        TestApp {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path().join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&path, text).expect("write");
        path
    }

    fn load(&self, manifest: &str) -> Result<App, String> {
        let path = self.write("spin.toml", manifest);
        App::load(&path).map_err(|e| e.to_string())
    }

    fn load_ok(&self, manifest: &str) -> App {
        match self.load(manifest) {
            Ok(app) => app,
            Err(e) => panic!("manifest should load: {e}"),
        }
    }
}

fn manifest(body: &str) -> String {
    format!("{HEADER}{body}")
}

const ONE_COMPONENT: &str = r#"
[[trigger.http]]
route = "/..."
component = "web"

[component.web]
source = "web.wasm"
"#;

#[test]
fn a_complete_manifest_loads_into_the_public_model() {
    let app = TestApp::new();
    let loaded = app.load_ok(
        r#"spin_manifest_version = 2

[application]
name = "tickets"
version = "1.2.3"
description = "demo"
authors = ["me"]
[application.trigger.http]
base = "/"
[application.trigger.redis]
address = "redis://{{ redis_host }}:6379"

[variables]
redis_host = { default = "127.0.0.1" }
api_key = { required = true, secret = true }
api_v2 = { default = "yes" }

[[trigger.http]]
id = "main"
route = "/api/..."
component = "api"

[[trigger.http]]
route = { private = true }
component = "internal"

[[trigger.http]]
route = "/teapot"
static_response = { status_code = 418, headers = { x-tea = "earl grey" }, body = "short and stout" }

[[trigger.redis]]
channel = "events-{{ api_v2 }}"
component = "worker"

[[trigger.redis]]
address = "redis://other:6380"
channel = "other"
component = "worker"

[component.api]
source = "target/api.wasm"
files = ["static", { source = "assets", destination = "/assets" }]
exclude_files = ["static/secret.txt"]
environment = { FOO = "bar" }
key_value_stores = ["default", "my-store", "my_store"]
sqlite_databases = ["default"]
allowed_outbound_hosts = ["redis://{{ redis_host }}:6379", "http://*.spin.internal"]
variables = { key = "{{ api_key }}", greeting = "hello {{ redis_host }}!" }
[component.api.build]
command = ["cargo build", "echo done"]
workdir = "api"
watch = ["src/**/*.rs"]
[component.api.tool.lint]
level = "strict"

[component.internal]
source = "internal.wasm"
[component.internal.build]
command = "make"

[component.worker]
source = "/abs/worker.wasm"
"#,
    );
    let dir = app.path().canonicalize().expect("canonical");
    assert_eq!(loaded.dir, dir);
    assert_eq!(loaded.manifest_path, dir.join("spin.toml"));
    assert_eq!(loaded.name, "tickets");
    assert_eq!(loaded.version.as_deref(), Some("1.2.3"));
    assert!(loaded.variables["api_key"].required);
    assert!(loaded.variables["api_key"].secret);
    assert_eq!(
        loaded.variables["redis_host"].default.as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        loaded.redis_address.as_ref().map(|t| t.as_str()),
        Some("redis://{{ redis_host }}:6379")
    );

    assert_eq!(loaded.http_triggers.len(), 3);
    assert_eq!(loaded.http_triggers[0].id.as_deref(), Some("main"));
    assert_eq!(
        loaded.http_triggers[0].route,
        RouteSpec::Path("/api/...".into())
    );
    assert_eq!(loaded.http_triggers[1].route, RouteSpec::Private);
    let teapot = loaded.http_triggers[2]
        .static_response
        .as_ref()
        .expect("static");
    assert_eq!(teapot.status_code, 418);
    assert_eq!(
        teapot.headers,
        [("x-tea".to_string(), "earl grey".to_string())]
    );
    assert_eq!(teapot.body.as_deref(), Some("short and stout"));
    assert_eq!(loaded.http_triggers[2].component, None);

    assert_eq!(loaded.redis_triggers.len(), 2);
    assert!(loaded.redis_triggers[0].address.is_none());
    assert_eq!(
        loaded.redis_triggers[0].channel.as_str(),
        "events-{{ api_v2 }}"
    );
    assert_eq!(
        loaded.redis_triggers[1]
            .address
            .as_ref()
            .map(|t| t.as_str()),
        Some("redis://other:6380")
    );

    let api = &loaded.components["api"];
    assert_eq!(api.id, "api");
    assert_eq!(api.source, dir.join("target/api.wasm"));
    assert_eq!(
        api.files,
        [
            FileMount::Pattern("static".into()),
            FileMount::Mapping {
                source: "assets".into(),
                destination: "/assets".into()
            },
        ]
    );
    assert_eq!(api.exclude_files, ["static/secret.txt"]);
    assert_eq!(api.environment["FOO"], "bar");
    assert_eq!(api.key_value_stores, ["default", "my-store", "my_store"]);
    assert_eq!(api.sqlite_databases, ["default"]);
    assert_eq!(api.allowed_outbound_hosts.len(), 2);
    assert_eq!(
        api.variables["greeting"].references().collect::<Vec<_>>(),
        ["redis_host"]
    );
    let build = api.build.as_ref().expect("build");
    assert_eq!(build.command, ["cargo build", "echo done"]);
    assert_eq!(build.workdir.as_deref(), Some(dir.join("api").as_path()));
    assert_eq!(build.watch, ["src/**/*.rs"]);
    assert_eq!(
        loaded.components["internal"]
            .build
            .as_ref()
            .map(|b| b.command.clone()),
        Some(vec!["make".to_string()])
    );
    let internal = &loaded.components["internal"];
    assert!(internal.key_value_stores.is_empty());
    assert!(internal.sqlite_databases.is_empty());
    assert_eq!(
        loaded.components["worker"].source,
        PathBuf::from("/abs/worker.wasm")
    );
}

#[test]
fn an_absent_version_is_none() {
    let app = TestApp::new();
    assert_eq!(app.load_ok(&manifest(ONE_COMPONENT)).version, None);
}

#[test]
fn invalid_manifests_fail_with_the_file_field_and_problem() {
    // (manifest text, substrings the error must contain)
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            manifest(&format!("{ONE_COMPONENT}colour = \"blue\"\n")),
            vec!["spin.toml", "line", "unknown field `colour`"],
        ),
        (
            format!("{HEADER}colour = \"blue\"\n{ONE_COMPONENT}"),
            vec!["unknown field `colour`"],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"web\"\nextra = 1\n[component.web]\nsource = \"w.wasm\"\n",
            ),
            vec!["unknown field `extra`"],
        ),
        (
            manifest(
                "[[trigger.cron]]\ncomponent = \"web\"\n[component.web]\nsource = \"w.wasm\"\n",
            ),
            vec!["unknown field `cron`"],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"Bad_Id\"\n[component.Bad_Id]\nsource = \"w.wasm\"\n",
            ),
            vec!["component \"Bad_Id\"", "invalid component id"],
        ),
        (
            manifest(&format!(
                "[variables]\nitem_2 = {{ default = \"x\" }}\n{ONE_COMPONENT}"
            )),
            vec!["invalid variable name \"item_2\""],
        ),
        (
            manifest(&format!(
                "[variables]\nboth = {{ default = \"x\", required = true }}\n{ONE_COMPONENT}"
            )),
            vec![
                "variable \"both\"",
                "must be `required` OR have a `default`",
            ],
        ),
        (
            manifest(&format!(
                "[variables]\nneither = {{ secret = true }}\n{ONE_COMPONENT}"
            )),
            vec![
                "variable \"neither\"",
                "must be `required` OR have a `default`",
            ],
        ),
        (
            manifest(&format!(
                "[variables]\nx = {{ default = \"1\", description = \"d\" }}\n{ONE_COMPONENT}"
            )),
            vec!["unknown field `description`"],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"auth\"\n[component.auth]\nsource = \"a.wasm\"\nvariables = { x = \"{{ y }}\" }\n",
            ),
            vec![
                "spin.toml: component \"auth\": variable \"x\" refers to unknown application variable \"y\"",
            ],
        ),
        (
            manifest(
                "[variables]\ny = { default = \"1\" }\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"auth\"\n[component.auth]\nsource = \"a.wasm\"\nvariables = { x = \"{{ y\" }\n",
            ),
            vec!["component \"auth\": variable \"x\"", "unclosed expression"],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"auth\"\n[component.auth]\nsource = \"a.wasm\"\nvariables = { Bad = \"x\" }\n",
            ),
            vec!["invalid variable name \"Bad\""],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"auth\"\n[component.auth]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"redis://{{ host }}\"]\n",
            ),
            vec![
                "allowed_outbound_hosts entry",
                "unknown application variable \"host\"",
            ],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"auth\"\n[component.auth]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"https://example.com/path\"]\n",
            ),
            vec!["allowed_outbound_hosts", "has a path"],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = { private = false }\ncomponent = \"auth\"\n[component.auth]\nsource = \"a.wasm\"\n",
            ),
            vec![
                "route must be a string pattern or '{ private = true }': 'auth' has { private = false }",
            ],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = { public = true }\ncomponent = \"auth\"\n[component.auth]\nsource = \"a.wasm\"\n",
            ),
            vec!["route must be a string pattern or '{ private = true }'"],
        ),
        (
            manifest("[[trigger.http]]\nroute = \"/\"\n[component.auth]\nsource = \"a.wasm\"\n"),
            vec![
                "trigger.http[0]",
                "exactly one of 'component' or 'static_response'",
            ],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"auth\"\nstatic_response = { body = \"x\" }\n[component.auth]\nsource = \"a.wasm\"\n",
            ),
            vec!["exactly one of 'component' or 'static_response'"],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"missing\"\n[component.auth]\nsource = \"a.wasm\"\n",
            ),
            vec!["component \"missing\" does not exist"],
        ),
        (
            manifest(
                "[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"missing\"\naddress = \"redis://x\"\n",
            ),
            vec!["trigger.redis[0]", "component \"missing\" does not exist"],
        ),
        (
            manifest(
                "[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"w\"\n[component.w]\nsource = \"w.wasm\"\n",
            ),
            vec!["no Redis address"],
        ),
        (
            manifest(
                "[[trigger.redis]]\nchannel = \"{{ chan }}\"\naddress = \"redis://x\"\ncomponent = \"w\"\n[component.w]\nsource = \"w.wasm\"\n",
            ),
            vec!["channel", "unknown application variable \"chan\""],
        ),
        (
            manifest(&format!(
                "[application.trigger.http]\nbase = \"/api\"\n{ONE_COMPONENT}"
            )),
            vec![
                "This application is using the deprecated trigger 'base' field. The base must be prepended to each [[trigger.http]]'s 'route'.",
            ],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"w\"\n[component.w]\nsource = \"w.wasm\"\n[component.w.build]\ncommand = \"make\"\nworkdir = \"/abs\"\n",
            ),
            vec!["build.workdir \"/abs\" must be relative"],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"w\"\n[component.w]\nsource = { url = \"https://x/w.wasm\", digest = \"sha256:0\" }\n",
            ),
            vec!["only local file paths"],
        ),
        (
            manifest("[[trigger.http]]\nroute = \"/\"\ncomponent = { source = \"w.wasm\" }\n"),
            vec!["inline components are not supported"],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"w\"\n[component.w]\nsource = \"w.wasm\"\nkey_value_stores = [\"bad label\"]\n",
            ),
            vec!["key_value_stores", "\"bad label\""],
        ),
        (
            manifest(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"w\"\nexecutor = { type = \"wagi\" }\n[component.w]\nsource = \"w.wasm\"\n",
            ),
            vec!["WAGI executor is not supported"],
        ),
        (
            "spin_manifest_version = \"1\"\nname = \"old\"\n".to_string(),
            vec!["manifest version 1 is not supported"],
        ),
        (
            "[application]\nname = \"x\"\n".to_string(),
            vec!["missing field `spin_manifest_version`"],
        ),
        (
            manifest("[component.w]\nsource = \"w.wasm\"\n"),
            vec!["missing field `trigger`"],
        ),
        (
            "spin_manifest_version = 2\n[application\n".to_string(),
            vec!["line 2"],
        ),
    ];
    for (text, needles) in cases {
        let app = TestApp::new();
        let err = match app.load(&text) {
            Ok(_) => panic!("manifest should fail to load:\n{text}"),
            Err(e) => e,
        };
        assert!(
            err.contains("spin.toml"),
            "error should name the file: {err}"
        );
        for needle in needles {
            assert!(
                err.contains(needle),
                "expected {needle:?} in:\n{err}\nfor manifest:\n{text}"
            );
        }
    }
}

#[test]
fn the_executor_may_name_the_spin_executor() {
    let app = TestApp::new();
    app.load_ok(&manifest(
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"w\"\nexecutor = { type = \"spin\" }\n[component.w]\nsource = \"w.wasm\"\n",
    ));
}

#[test]
fn a_missing_manifest_is_reported_with_its_path() {
    let app = TestApp::new();
    let err = App::load(&app.path().join("nope.toml")).expect_err("missing");
    assert!(err.to_string().contains("nope.toml"), "{err}");
}

fn component_with_files(
    app: &TestApp,
    files: &str,
    exclude: &str,
) -> Result<Vec<(String, String)>, String> {
    let loaded = app.load_ok(&manifest(&format!(
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"web\"\n[component.web]\nsource = \"web.wasm\"\nfiles = {files}\nexclude_files = {exclude}\n"
    )));
    let root = loaded.dir.clone();
    let resolved = loaded.components["web"]
        .resolve_files(&loaded.dir)
        .map_err(|e| e.to_string())?;
    Ok(resolved
        .into_iter()
        .map(|(host, guest)| {
            let host = host
                .strip_prefix(&root)
                .expect("inside app")
                .display()
                .to_string();
            (host, guest.display().to_string())
        })
        .collect())
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn app_with_tree() -> TestApp {
    let app = TestApp::new();
    app.write("docs/readme.md", "r");
    app.write("docs/secret.md", "s");
    app.write("docs/notes.txt", "n");
    app.write("static/index.html", "i");
    app.write("static/css/site.css", "c");
    app.write("assets/logo.png", "l");
    app.write("assets/img/icon.png", "o");
    app.write("file.txt", "f");
    app.write("sub/deep.txt", "d");
    app
}

#[test]
fn a_glob_maps_each_match_to_the_same_relative_path() {
    let app = app_with_tree();
    let got = component_with_files(&app, "[\"docs/*.md\"]", "[]").expect("resolves");
    assert_eq!(
        got,
        pairs(&[
            ("docs/readme.md", "docs/readme.md"),
            ("docs/secret.md", "docs/secret.md")
        ])
    );
}

#[test]
fn exclude_files_match_the_app_relative_path() {
    let app = app_with_tree();
    let got =
        component_with_files(&app, "[\"docs/*.md\"]", "[\"docs/secret.md\"]").expect("resolves");
    assert_eq!(got, pairs(&[("docs/readme.md", "docs/readme.md")]));
    let got = component_with_files(&app, "[\"static\"]", "[\"static/css/*\"]").expect("resolves");
    assert_eq!(got, pairs(&[("static/index.html", "static/index.html")]));
}

#[test]
fn a_directory_is_copied_recursively_under_its_own_name_and_a_file_keeps_its_path() {
    let app = app_with_tree();
    let got = component_with_files(&app, "[\"static\", \"file.txt\", \"sub/deep.txt\"]", "[]")
        .expect("resolves");
    assert_eq!(
        got,
        pairs(&[
            ("static/css/site.css", "static/css/site.css"),
            ("static/index.html", "static/index.html"),
            ("file.txt", "file.txt"),
            ("sub/deep.txt", "sub/deep.txt"),
        ])
    );
}

#[test]
fn a_mapping_places_directory_contents_or_a_file_at_the_destination() {
    let app = app_with_tree();
    let got = component_with_files(
        &app,
        "[{ source = \"assets\", destination = \"/static\" }, { source = \"file.txt\", destination = \"/etc/config.txt\" }]",
        "[]",
    )
    .expect("resolves");
    assert_eq!(
        got,
        pairs(&[
            ("assets/img/icon.png", "static/img/icon.png"),
            ("assets/logo.png", "static/logo.png"),
            ("file.txt", "etc/config.txt"),
        ])
    );
}

#[test]
fn a_recursive_glob_matches_files_at_every_depth() {
    let app = app_with_tree();
    let got = component_with_files(&app, "[\"static/**/*\"]", "[]").expect("resolves");
    assert_eq!(
        got,
        pairs(&[
            ("static/css/site.css", "static/css/site.css"),
            ("static/index.html", "static/index.html")
        ])
    );
}

#[test]
fn a_glob_matching_nothing_is_not_an_error() {
    let app = app_with_tree();
    assert_eq!(
        component_with_files(&app, "[\"nothing/*.xyz\"]", "[]"),
        Ok(vec![])
    );
}

#[test]
fn unsafe_or_missing_file_patterns_are_rejected() {
    let cases = [
        ("[\"../outside\"]", "outside the application directory"),
        ("[\"docs/../../x\"]", "outside the application directory"),
        ("[\"/etc/passwd\"]", "outside the application directory"),
        ("[\".\"]", "must not end in '.' or '..'"),
        ("[\"docs/..\"]", "must not end in '.' or '..'"),
        ("[\"docs/.\"]", "must not end in '.' or '..'"),
        (
            "[\"missing.txt\"]",
            "does not exist and doesn't appear to be a glob pattern",
        ),
        (
            "[{ source = \"missing\", destination = \"/m\" }]",
            "does not exist",
        ),
        (
            "[{ source = \"../x\", destination = \"/m\" }]",
            "outside the application directory",
        ),
    ];
    let app = app_with_tree();
    for (files, needle) in cases {
        let err = component_with_files(&app, files, "[]").expect_err(files);
        assert!(err.contains("component \"web\": files"), "{err}");
        assert!(err.contains(needle), "{files}: {err}");
    }
}

#[test]
fn watch_globs_files_and_their_directories_say_what_a_change_touches() {
    let app = app_with_tree();
    app.write("crates/shared/src/lib.rs", "");
    app.write("Cargo.lock", "");
    let loaded = app.load_ok(&manifest(
        r#"
[[trigger.http]]
route = "/..."
component = "web"

[component.web]
source = "web.wasm"
files = [{ source = "static", destination = "/" }, "docs/*.md", "file.txt"]

[component.web.build]
command = "true"
watch = ["src/**/*.rs", "crates/shared/**", "Cargo.lock"]

[component.nobuild]
source = "other.wasm"
"#,
    ));
    let root = &loaded.dir;
    let web = &loaded.components["web"];
    let at = |relative: &str| root.join(relative);

    for rebuilds in [
        "src/lib.rs",
        "src/deep/er/mod.rs",
        "crates/shared/src/lib.rs",
        "Cargo.lock",
    ] {
        assert!(
            web.build_watches(root, &at(rebuilds)),
            "{rebuilds} should rebuild"
        );
    }
    for ignored in [
        "src/notes.md",
        "lib.rs",
        "crates/other/src/lib.rs",
        "static/index.html",
    ] {
        assert!(
            !web.build_watches(root, &at(ignored)),
            "{ignored} should not rebuild"
        );
    }
    assert!(!loaded.components["nobuild"].build_watches(root, &at("src/lib.rs")));

    for mounted in [
        "static/index.html",
        "static/css/site.css",
        "docs/readme.md",
        "file.txt",
    ] {
        assert!(web.mounts(root, &at(mounted)), "{mounted} is mounted");
    }
    for unmounted in [
        "docs/notes.txt",
        "staticky/x",
        "assets/logo.png",
        "src/lib.rs",
    ] {
        assert!(
            !web.mounts(root, &at(unmounted)),
            "{unmounted} is not mounted"
        );
    }

    let mut dirs = web.watched_dirs(root);
    dirs.sort();
    let mut expected = vec![
        (at("src"), true),
        (at("crates/shared"), true),
        (root.clone(), false), // Cargo.lock and file.txt: their directory, not recursively
        (at("static"), true),
        (at("docs"), true),
        (root.clone(), false),
    ];
    expected.sort();
    assert_eq!(dirs, expected);
}
