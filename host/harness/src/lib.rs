//! End-to-end test harness: a real `redis-server` on a free loopback port, the `spin-host`
//! binary running an app, and small named calls for what the tests do. Every process a test
//! starts is killed when its handle drops; every wait polls against a deadline.
//!
//! The host binary is `target/debug/spin-host` of this workspace (built by `cargo test`), or
//! whatever `SPIN_HOST_BIN` names.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The `spin-host` binary the tests run.
pub fn spin_host_binary() -> PathBuf {
    match std::env::var_os("SPIN_HOST_BIN") {
        Some(path) => PathBuf::from(path),
        None => workspace_root().join("target/debug/spin-host"),
    }
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `DEADLINE`.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--notify-keyspace-events", "Ex", "--hz", "100"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/test installs it)");
        let server = Self {
            child,
            port,
            _dir: dir,
        };
        eventually("redis-server to answer PING", || {
            let mut connection = server.client().get_connection().ok()?;
            redis::cmd("PING").query::<String>(&mut connection).ok()
        });
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("redis url")
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let mut connection = self.client().get_connection().expect("redis connection");
        redis::cmd("GET")
            .arg(key)
            .query(&mut connection)
            .expect("GET")
    }

    pub fn publish(&self, channel: &str, payload: &str) -> i64 {
        let mut connection = self.client().get_connection().expect("redis connection");
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query(&mut connection)
            .expect("PUBLISH")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// localstripe, the stateful fake Stripe, on a free loopback port (`scripts/fake_stripe.py` in
/// the virtual environment `scripts/test` installs under `.spin/localstripe`, or the Python
/// that `LOCALSTRIPE_PYTHON` names). Stopped when dropped; its state lives in memory only.
pub struct LocalStripe {
    child: Child,
    pub port: u16,
}

impl LocalStripe {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        let python = std::env::var_os("LOCALSTRIPE_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".spin/localstripe/bin/python"));
        let child = Command::new(&python)
            .arg(workspace_root().join("scripts/fake_stripe.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run {} (scripts/test installs localstripe there): {error}",
                    python.display()
                )
            });
        let stripe = Self { child, port };
        eventually("localstripe to answer", || {
            stripe.call("GET", "/v1/payment_intents", &[]).ok()
        });
        stripe
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A call to its API with a form body, as Stripe's clients make them; the JSON answer, or
    /// the status of an error.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, u16> {
        let request = ureq::request(method, &format!("{}{path}", self.url()))
            .set("authorization", "Bearer sk_test_localstripe")
            .timeout(Duration::from_secs(10));
        let result = if method == "GET" {
            request.call()
        } else {
            request.send_form(form)
        };
        match result {
            Ok(response) => response.into_json().map_err(|_| 0),
            Err(ureq::Error::Status(status, _)) => Err(status),
            Err(_) => Err(0),
        }
    }

    /// Has it sign and send every event to `url` (a webhook endpoint) with `secret`.
    pub fn send_webhooks_to(&self, url: &str, secret: &str) {
        let registered = ureq::post(&format!("{}/_config/webhooks/app", self.url()))
            .send_form(&[("url", url), ("secret", secret)]);
        assert!(
            registered.is_ok(),
            "registering the webhook: {registered:?}"
        );
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Collected output of a child process, for assertions and for failure messages.
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<String>>);

impl Output {
    fn capture(&self, stream: impl Read + Send + 'static) {
        let output = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Ok(mut text) = output.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
    }

    pub fn text(&self) -> String {
        self.0.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Waits until the output holds `needle`: the host's lines reach it through a reader thread,
    /// so a line the host has written may arrive a moment after the request that caused it.
    pub fn wait_for(&self, needle: &str) {
        eventually(&format!("the host to print {needle:?}"), || {
            self.text().contains(needle).then_some(())
        });
    }
}

pub struct HostBuilder {
    binary: PathBuf,
    subcommand: &'static str,
    manifest: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    work_dir: tempfile::TempDir,
}

pub struct Host {
    child: Child,
    pub base: String,
    pub output: Output,
    pub work_dir: tempfile::TempDir,
}

impl HostBuilder {
    /// A host for the app whose manifest is `manifest`.
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        Self {
            binary: spin_host_binary(),
            subcommand: "up",
            manifest: manifest.into(),
            args: Vec::new(),
            env: Vec::new(),
            work_dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Runs this `spin-host` binary instead of the workspace's debug build.
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    /// Runs `spin-host <subcommand>` (`watch`, say) instead of `up`.
    pub fn subcommand(mut self, subcommand: &'static str) -> Self {
        self.subcommand = subcommand;
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn work_dir(&self) -> &Path {
        self.work_dir.path()
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg(self.subcommand)
            .arg("-f")
            .arg(&self.manifest)
            .args(["--listen", "127.0.0.1:0"]);
        // Key-value paths in a runtime config resolve against its own directory, so each test
        // gets a copy in its work dir and with it stores of its own.
        let runtime_config = self.manifest.with_file_name("runtime-config.toml");
        if runtime_config.exists() {
            let copy = self.work_dir.path().join("runtime-config.toml");
            std::fs::copy(&runtime_config, &copy).expect("copy runtime config");
            command.arg("--runtime-config-file").arg(copy);
        }
        command
            .arg("--state-dir")
            .arg(self.work_dir.path().join(".spin"))
            .args(&self.args)
            .current_dir(self.work_dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "SPIN_HOST_CACHE_DIR",
                workspace_root().join("target/spin-host-test-cache"),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Starts the host and waits until it prints the address it serves on.
    ///
    /// The first host of a test process starts alone, and until it says every component is
    /// ready: with a cold compile cache it compiles every component (seconds each with a
    /// debug-built host), and tests starting at once would all compile the same components in
    /// parallel on a small machine. Later hosts find the cache filled and start together.
    pub fn start(self) -> Host {
        static FIRST_START: Mutex<bool> = Mutex::new(false);
        let mut started_once = FIRST_START
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *started_once {
            drop(started_once);
            return self.spawn_and_wait();
        }
        let host = self.spawn_and_wait();
        eventually("spin-host to compile every component", || {
            host.output
                .text()
                .contains("Components ready")
                .then_some(())
        });
        *started_once = true;
        host
    }

    fn spawn_and_wait(self) -> Host {
        let mut child = self.command().spawn().expect("spawn spin-host");
        let output = Output::default();
        output.capture(child.stdout.take().expect("stdout"));
        output.capture(child.stderr.take().expect("stderr"));
        let mut host = Host {
            child,
            base: String::new(),
            output,
            work_dir: self.work_dir,
        };
        host.base = eventually("spin-host to serve", || {
            if let Ok(Some(status)) = host.child.try_wait() {
                panic!("spin-host exited with {status}:\n{}", host.output.text());
            }
            let text = host.output.text();
            let line = text.lines().find(|l| l.starts_with("Serving http://"))?;
            Some(line.trim_start_matches("Serving ").trim().to_owned())
        });
        host
    }

    /// Runs the host expecting it to fail at start-up; returns its exit status and output.
    pub fn fail(self) -> (ExitStatus, String) {
        let output = self.command().output().expect("run spin-host");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status, text)
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (invalid UTF-8 replaced), and as it came.
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Host {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Reply {
        self.request_with(method, path, &[], body)
    }

    /// A request with extra headers (`Cookie`, `Authorization`, `Content-Type`, ...).
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        let mut request = agent.request(method, &self.url(path));
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let result = match body {
            Some(body) => request.send_bytes(body),
            None => request.call(),
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!(
                "{method} {path}: {error}\n--- host output ---\n{}",
                self.output.text()
            ),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| response.header(&name).map(|v| (name.clone(), v.to_owned())))
            .collect();
        let mut bytes = Vec::new();
        response
            .into_reader()
            .read_to_end(&mut bytes)
            .unwrap_or_else(|error| panic!("{method} {path}: reading the body: {error}"));
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    /// POSTs `body` as `application/json`.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Reply {
        let text = body.to_string();
        self.request_with(
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(text.as_bytes()),
        )
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        self.request("POST", path, Some(body.as_bytes()))
    }

    pub fn put(&self, path: &str, body: &str) -> Reply {
        self.request("PUT", path, Some(body.as_bytes()))
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, None)
    }

    /// Sends SIGINT, as Ctrl-C does, and returns the exit status.
    pub fn interrupt(mut self) -> ExitStatus {
        Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -INT");
        eventually("spin-host to exit", || self.child.try_wait().ok().flatten())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
