//! `spin-host watch` on a copy of the fixture app (tests/apps/watch): a real component, built by
//! cargo, whose source and static files the tests edit while requests keep coming.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Host, eventually};

const FIXTURE_FILES: [&str; 5] = [
    "spin.toml",
    "Cargo.toml",
    "Cargo.lock",
    "src/lib.rs",
    "static/hello.txt",
];

/// A copy of the fixture app, so that each test edits its own.
struct FixtureApp {
    dir: tempfile::TempDir,
}

impl FixtureApp {
    fn new() -> Self {
        let fixture = support::app_manifest("watch");
        let fixture = fixture.parent().expect("fixture dir");
        let dir = tempfile::tempdir().expect("tempdir");
        for file in FIXTURE_FILES {
            let target = dir.path().join(file);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            std::fs::copy(fixture.join(file), &target).expect("copy fixture");
        }
        Self { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn manifest(&self) -> PathBuf {
        self.path("spin.toml")
    }

    /// Rewrites a file of the app, as an editor saving it does.
    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.path(file);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(from), "{file} does not contain {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    }

    fn host(&self, subcommand: &'static str) -> Host {
        let mut builder = support::HostBuilder::new(self.manifest())
            .binary(env!("CARGO_BIN_EXE_spin-host"))
            .subcommand(subcommand);
        // The build commands run cargo, which needs the toolchain the tests were built with.
        for name in ["HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
            if let Ok(value) = std::env::var(name) {
                builder = builder.env(name, &value);
            }
        }
        builder.start()
    }
}

fn body(host: &Host, path: &str) -> String {
    let reply = host.get(path);
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.body
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[test]
fn an_edit_is_swapped_in_while_requests_in_flight_finish_and_a_broken_one_keeps_the_old() {
    let app = FixtureApp::new();
    let host = app.host("watch");
    assert_eq!(body(&host, "/"), "version 1");

    // A slow request is started every 200 ms while the edit is built and swapped in, so that
    // some are in flight across the swap.
    let (done, finished) = mpsc::channel();
    let base = host.base.clone();
    let stop_sending = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = stop_sending.clone();
        std::thread::spawn(move || {
            let mut requests = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let done = done.clone();
                let url = format!("{base}/slow");
                requests.push(std::thread::spawn(move || {
                    let started = Instant::now();
                    let result = ureq::get(&url)
                        .timeout(Duration::from_secs(30))
                        .call()
                        .map_err(|error| error.to_string())
                        .and_then(|reply| reply.into_string().map_err(|e| e.to_string()));
                    done.send((started, Instant::now(), result)).ok();
                }));
                std::thread::sleep(Duration::from_millis(200));
            }
            for request in requests {
                request.join().ok();
            }
        })
    };

    std::thread::sleep(Duration::from_millis(500));
    let saved = Instant::now();
    app.edit("src/lib.rs", "\"version 1\"", "\"version 2\"");
    eventually("the edit to be served", || {
        (host.get("/").body == "version 2").then_some(())
    });
    let swapped = Instant::now();
    println!(
        "save to new response: {} ms (build and swap of a one-line change)",
        (swapped - saved).as_millis()
    );
    stop_sending.store(true, std::sync::atomic::Ordering::SeqCst);
    sender.join().expect("sender");
    let results: Vec<_> = finished.try_iter().collect();
    for (_, _, result) in &results {
        let text = result
            .as_ref()
            .expect("no slow request failed across the swap");
        assert!(text == "version 1" || text == "version 2", "{text}");
    }
    let across = results
        .iter()
        .filter(|(started, ended, result)| {
            *started < swapped && *ended > swapped && result.as_deref() == Ok("version 1")
        })
        .count();
    assert!(
        across > 0,
        "a request started on the old version should finish on it after the swap: {results:?}"
    );
    host.output.wait_for("Reloaded component greeter");

    // A broken edit: the compiler's error is shown once, and the old version keeps serving.
    let failed = "Build command for component greeter failed";
    app.edit(
        "src/lib.rs",
        "const GREETING: &str = \"version 2\";",
        "const GREETING: &str = \"version 3\"\nfn broken( {}",
    );
    let output = eventually("the failed build to be reported", || {
        let text = host.output.text();
        text.contains("still serving the previous version")
            .then_some(text)
    });
    assert!(output.contains(failed), "{output}");
    assert!(output.contains("error"), "the compiler's error: {output}");
    assert_eq!(body(&host, "/"), "version 2");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(&host.output.text(), failed), 1, "{output}");
    assert_eq!(body(&host, "/"), "version 2");

    // Fixing it recovers.
    app.edit(
        "src/lib.rs",
        "\"version 3\"\nfn broken( {}",
        "\"version 3\";",
    );
    eventually("the fix to be served", || {
        (host.get("/").body == "version 3").then_some(())
    });
    assert_eq!(count(&host.output.text(), failed), 1);
}

/// Reads the reload stream's `data:` lines on a thread of its own.
fn reload_events(host: &Host) -> mpsc::Receiver<String> {
    let address = host.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).expect("connect");
    write!(
        stream,
        "GET /.well-known/spin/reload HTTP/1.1\r\nHost: {address}\r\n\r\n"
    )
    .expect("request");
    let (sender, events) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let Some(data) = line.strip_prefix("data: ")
                && sender.send(data.to_owned()).is_err()
            {
                return;
            }
        }
    });
    events
}

#[test]
fn a_static_edit_is_served_and_open_pages_are_told_to_reload_which_up_never_does() {
    let app = FixtureApp::new();
    let host = app.host("watch");
    assert_eq!(body(&host, "/file"), "hello from static\n");
    let page = body(&host, "/page");
    assert!(page.contains("<p>version 1</p><script>"), "{page}");
    assert!(page.contains("/.well-known/spin/reload"), "{page}");

    let events = reload_events(&host);
    let first = events
        .recv_timeout(Duration::from_secs(10))
        .expect("the current version");
    let saved = Instant::now();
    std::fs::write(app.path("static/hello.txt"), "edited\n").expect("write");
    eventually("the edited file to be served", || {
        (host.get("/file").body == "edited\n").then_some(())
    });
    println!(
        "save to new response: {} ms (a static file)",
        saved.elapsed().as_millis()
    );
    let next = events
        .recv_timeout(Duration::from_secs(10))
        .expect("a reload event");
    assert_ne!(next, first);
    // The component got a fresh copy of its files; nothing was rebuilt.
    let output = host.output.text();
    assert_eq!(count(&output, "Built component greeter"), 1, "{output}");
    assert!(output.contains("Reloaded component greeter"), "{output}");
    drop(host);

    // `up` serves the same app's pages as the component wrote them, with no reload stream.
    let host = app.host("up");
    let page = body(&host, "/page");
    assert_eq!(
        page,
        "<!doctype html><html><body><p>version 1</p></body></html>"
    );
    assert_eq!(host.get("/.well-known/spin/reload").status, 404);
}

#[test]
fn a_changed_manifest_restarts_the_app_on_the_same_address() {
    let app = FixtureApp::new();
    let host = app.host("watch");
    assert_eq!(body(&host, "/file"), "hello from static\n");
    app.edit(
        "spin.toml",
        "files = [{ source = \"static\", destination = \"/static\" }]",
        "files = [{ source = \"static\", destination = \"/static\" }]\nenvironment = { EDITED = \"1\" }",
    );
    let output = eventually("the restart", || {
        let text = host.output.text();
        (count(&text, "Serving http://") == 2).then_some(text)
    });
    assert!(
        output.contains("spin.toml changed: restarting the app"),
        "{output}"
    );
    let address = |line: &str| line.trim_start_matches("Serving ").to_owned();
    let served: Vec<String> = output
        .lines()
        .filter(|line| line.starts_with("Serving http://"))
        .map(address)
        .collect();
    assert_eq!(served[0], served[1]);
    assert_eq!(body(&host, "/file"), "hello from static\n");
}
