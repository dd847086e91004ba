//! End-to-end tests of the host: real components (components/probe-*) on the `spin-host`
//! binary, against a real redis-server that each test starts and stops.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;

use support::{RedisServer, eventually};

#[test]
fn routes_follow_spin_precedence_and_carry_the_spin_headers() {
    let redis = RedisServer::start();
    let host = support::probe(&redis).start();

    let cases = [
        ("/exact", "exact"),
        ("/exact/", "exact"),
        ("/exact/more", "catch-all"),
        ("/items", "items"),
        ("/items/42", "items"),
        ("/items/42/detail", "item-detail"),
        ("/items/42/detail/x", "items"),
        ("/slash", "slash"),
        ("/anything/else", "catch-all"),
    ];
    for (path, probe) in cases {
        let reply = host.get(path);
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(
            reply.json()["probe"],
            probe,
            "{path} should be served by {probe}"
        );
    }

    let reply = host.get("/items/abc/?x=1");
    let headers = &reply.json()["headers"];
    let port = host.base.rsplit(':').next().expect("port");
    assert_eq!(
        headers["spin-full-url"],
        format!("http://127.0.0.1:{port}/items/abc/?x=1")
    );
    assert_eq!(headers["spin-path-info"], "/abc/");
    assert_eq!(headers["spin-matched-route"], "/items/...");
    assert_eq!(headers["spin-raw-component-route"], "/items/...");
    assert_eq!(headers["spin-component-route"], "/items");
    assert_eq!(headers["spin-base-path"], "/");
    assert!(
        headers["spin-client-addr"]
            .as_str()
            .expect("client addr")
            .starts_with("127.0.0.1:")
    );
    assert!(headers.get("host").is_none(), "the guest never sees Host");

    let detail = host.get("/items/a_b/detail").json();
    assert_eq!(detail["headers"]["spin-path-match-id"], "a_b");
    assert_eq!(detail["headers"]["spin-path-info"], "");

    let slash = host.get("/slash").json();
    assert_eq!(slash["headers"]["spin-matched-route"], "/slash");
    assert_eq!(slash["headers"]["spin-raw-component-route"], "/slash/");
}

#[test]
fn private_components_and_unknown_reserved_paths_are_not_routable() {
    let redis = RedisServer::start();
    let host = support::probe(&redis).start();
    // probe-private has no route, so the catch-all serves its would-be paths.
    assert_eq!(host.get("/private").json()["probe"], "catch-all");
    let health = host.get("/.well-known/spin/health");
    assert_eq!((health.status, health.body.as_str()), (200, "OK"));
    let info = host.get("/.well-known/spin/info").json();
    assert_eq!(info["name"], "probe");
    let unknown = host.get("/.well-known/spin/other");
    assert_eq!((unknown.status, unknown.body.as_str()), (404, ""));
}

#[test]
fn key_value_operations_persist_across_requests_and_undeclared_stores_are_denied() {
    let redis = RedisServer::start();
    let host = support::probe(&redis).start();

    assert_eq!(host.get("/kv/colour").status, 404);
    assert_eq!(host.get("/kv-exists/colour").body, "false");
    assert_eq!(host.put("/kv/colour", "blue").status, 204);
    assert_eq!(host.put("/kv/size", "large").status, 204);
    assert_eq!(host.get("/kv/colour").body, "blue");
    assert_eq!(host.get("/kv-exists/colour").body, "true");
    assert_eq!(
        host.get("/kv-keys").json(),
        serde_json::json!(["colour", "size"])
    );
    assert_eq!(host.delete("/kv/colour").status, 204);
    assert_eq!(host.get("/kv/colour").status, 404);
    assert_eq!(host.get("/kv-keys").json(), serde_json::json!(["size"]));

    // Stores are separate by label.
    assert_eq!(
        host.get("/kv-keys?store=other").json(),
        serde_json::json!([])
    );
    assert_eq!(host.put("/kv/size?store=other", "small").status, 204);
    assert_eq!(host.get("/kv/size").body, "large");
    assert_eq!(host.get("/kv/size?store=other").body, "small");

    let denied = host.get("/denied/kv/size");
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert!(denied.body.contains("AccessDenied"), "{}", denied.body);
}

#[test]
fn sql_transactions_commit_or_roll_back_across_statements() {
    let redis = RedisServer::start();
    let host = support::probe(&redis).start();

    for db in ["default", "notes"] {
        assert_eq!(host.post(&format!("/sql/setup?db={db}"), "").status, 204);
        let committed = host.post(&format!("/sql/commit?db={db}&body=kept"), "");
        assert_eq!(committed.status, 200, "{}", committed.body);
        assert_eq!(committed.json()["changes"], 1);
        let rolled_back = host.post(&format!("/sql/rollback?db={db}&body=dropped"), "");
        assert_eq!(rolled_back.status, 200, "{}", rolled_back.body);
        assert_eq!(
            host.get(&format!("/sql/notes?db={db}")).json(),
            serde_json::json!(["kept"]),
            "{db}"
        );
        assert_eq!(
            host.get(&format!("/sql/v2/notes?db={db}")).json(),
            serde_json::json!(["kept"]),
            "{db} via sqlite@2.0.0"
        );
    }
    // The notes database is the file the runtime config names, relative to the working dir.
    assert!(host.work_dir.path().join(".spin/notes.db").exists());

    let denied = host.get("/denied/sql/notes");
    assert_eq!(denied.status, 403, "{}", denied.body);
}

#[test]
fn variables_resolve_defaults_templates_and_environment_overrides() {
    let redis = RedisServer::start();
    let host = support::probe(&redis).start();
    assert_eq!(host.get("/var/greeting").body, "hello");
    assert_eq!(host.get("/var/composed").body, "say hello twice");
    assert_eq!(host.get("/var/token").body, "s3cret");
    let undefined = host.get("/var/nothing_here");
    assert_eq!(undefined.status, 404);
    assert!(undefined.body.contains("Undefined"), "{}", undefined.body);
    let invalid = host.get("/var/BAD-NAME");
    assert!(invalid.body.contains("InvalidName"), "{}", invalid.body);
    drop(host);

    let overridden = support::probe(&redis)
        .env("SPIN_VARIABLE_GREETING", "bonjour")
        .start();
    assert_eq!(overridden.get("/var/greeting").body, "bonjour");
    assert_eq!(overridden.get("/var/composed").body, "say bonjour twice");
}

#[test]
fn a_required_variable_without_a_value_stops_start_up_naming_it() {
    let redis = RedisServer::start();
    let (status, output) = support::host("probe")
        .env("SPIN_VARIABLE_REDIS_ADDRESS", &redis.url())
        .fail();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("secret_token"), "{output}");
    assert!(output.contains("SPIN_VARIABLE_SECRET_TOKEN"), "{output}");
}

#[test]
fn a_redis_publish_from_one_component_triggers_another() {
    let redis = RedisServer::start();
    let host = support::probe(&redis).start();
    let published = host.post("/publish/probe-in", "from-http");
    assert_eq!(published.status, 204, "{}", published.body);
    eventually("probe-redis to record the message", || {
        redis.get("probe:received:from-http")
    });

    // A failing handler is logged, and the next message is still handled.
    redis.publish("probe-in", "fail");
    redis.publish("probe-in", "after-fail");
    eventually("the message after a failure", || {
        redis.get("probe:received:after-fail")
    });
    host.output.wait_for("probe-redis");
}

#[test]
fn the_redis_trigger_reconnects_after_redis_restarts() {
    let redis = RedisServer::start();
    let port = redis.port;
    let host = support::probe(&redis).start();
    drop(redis);
    let redis = RedisServer::start_on(port);
    eventually("the trigger to resubscribe", || {
        (redis.publish("probe-in", "again") > 0).then_some(())
    });
    eventually("the message after reconnecting", || {
        redis.get("probe:received:again")
    });
    drop(host);
}

fn redis_exec(host: &support::Host, command: &str, args: &[&str]) -> (u16, String) {
    let reply = host.post(
        "/redis-exec",
        &serde_json::json!({ "command": command, "args": args }).to_string(),
    );
    (reply.status, reply.body)
}

#[test]
fn a_connection_a_guest_changed_is_never_handed_to_another_guest() {
    let redis = RedisServer::start();
    let host = support::probe(&redis).start();
    assert_eq!(redis_exec(&host, "SET", &["where", "db0"]).0, 200);
    // One guest moves its connection to database 1 and closes it.
    assert_eq!(redis_exec(&host, "SELECT", &["1"]).0, 200);
    // Every later guest still starts on database 0, as a fresh connection does.
    for _ in 0..5 {
        let (status, body) = redis_exec(&host, "GET", &["where"]);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("db0"), "{body}");
    }
}

#[test]
fn a_kept_connection_that_redis_dropped_is_replaced_on_first_use() {
    let redis = RedisServer::start();
    let port = redis.port;
    let host = support::probe(&redis).start();
    // Closed cleanly, so kept for the next guest.
    assert_eq!(redis_exec(&host, "SET", &["k", "before"]).0, 200);
    drop(redis);
    let redis = RedisServer::start_on(port);
    let mut connection = redis.client().get_connection().expect("redis");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("after")
        .query(&mut connection)
        .expect("SET");
    // The next guests' first commands succeed, as they would on fresh connections.
    for _ in 0..3 {
        let (status, body) = redis_exec(&host, "GET", &["k"]);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("after"), "{body}");
    }
}

/// A one-connection-at-a-time HTTP server answering every request with `upstream says hi`.
fn upstream_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            // Read the request head; the reply does not depend on it.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
                head.push(byte[0]);
            }
            let body = "upstream says hi";
            write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .ok();
        }
    });
    (port, handle)
}

#[test]
fn outbound_http_reaches_allowed_hosts_only() {
    let redis = RedisServer::start();
    let (port, upstream) = upstream_server();
    let host = support::probe(&redis)
        .env("SPIN_VARIABLE_UPSTREAM_HOST", &format!("127.0.0.1:{port}"))
        .start();

    let allowed = host.get(&format!(
        "/outbound?url=http%3A%2F%2F127.0.0.1%3A{port}%2Fhello"
    ));
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(allowed.body, "upstream 200: upstream says hi");
    upstream.join().expect("upstream thread");

    let other_port = support::free_port();
    let denied = host.get(&format!(
        "/outbound?url=http%3A%2F%2F127.0.0.1%3A{other_port}%2F"
    ));
    assert_eq!(denied.status, 502);
    assert!(denied.body.contains("HttpRequestDenied"), "{}", denied.body);
    host.output.wait_for("disallowed destination");

    let redis_denied = host.post("/denied/publish/probe-in", "x");
    assert_eq!(redis_denied.status, 403, "{}", redis_denied.body);
}

#[test]
fn mounted_files_are_readable_and_read_only() {
    let redis = RedisServer::start();
    let host = support::probe(&redis).start();
    let file = host.get("/file?path=/data/hello.txt");
    assert_eq!(
        (file.status, file.body.as_str()),
        (200, "hello from a mounted file\n")
    );
    assert_ne!(host.post("/file-write?path=/data/new.txt", "").status, 200);
    assert_eq!(host.get("/denied/file?path=/data/hello.txt").status, 404);
}

#[test]
fn a_guest_trap_is_a_bare_500_and_the_host_keeps_serving() {
    let redis = RedisServer::start();
    let host = support::probe(&redis).start();
    let trapped = host.get("/trap");
    assert_eq!((trapped.status, trapped.body.as_str()), (500, ""));
    assert_eq!(host.get("/trivial").body, "ok");
    let output = eventually("the trap to be logged", || {
        let text = host.output.text();
        text.contains("guest invocation failed").then_some(text)
    });
    assert!(
        output.contains("[probe] "),
        "guest output is prefixed with the component id"
    );
}

#[test]
fn unknown_routes_get_a_bare_404_and_oversized_bodies_a_413() {
    let redis = RedisServer::start();
    let host = support::probe(&redis)
        .arg("--max-request-body")
        .arg("1024")
        .start();
    let body = "x".repeat(1000);
    assert_eq!(host.post("/body-len", &body).body, "1000");
    assert_eq!(host.post("/body-len", &"x".repeat(2000)).status, 413);
}

#[test]
fn without_a_redis_address_up_runs_a_private_redis_and_stops_it_on_ctrl_c() {
    let host = support::host("probe")
        .env("SPIN_VARIABLE_SECRET_TOKEN", "s3cret")
        .start();
    let published = host.post("/publish/probe-in", "private");
    assert_eq!(published.status, 204, "{}", published.body);
    let text = host.output.text();
    let url = text
        .lines()
        .find_map(|l| l.split("started a private redis-server at ").nth(1))
        .expect("private redis announced")
        .trim()
        .to_owned();
    let client = redis::Client::open(url.as_str()).expect("url");
    eventually("probe-redis to record via the private redis", || {
        let mut connection = client.get_connection().ok()?;
        redis::cmd("GET")
            .arg("probe:received:private")
            .query::<Option<String>>(&mut connection)
            .ok()
            .flatten()
    });
    let status = host.interrupt();
    assert!(status.success(), "Ctrl-C exits 0, got {status}");
    assert!(
        client.get_connection().is_err(),
        "the private redis-server is stopped"
    );
}
