//! Helpers for the end-to-end tests in `tests/`: the whole app from the repository's
//! `spin.toml`, its migrations applied, on the workspace's `spin-host`, against a Redis the test
//! starts. Keys here are test-only.

use std::path::PathBuf;

use events::Event;
pub use harness::*;
use serde_json::{Value, json};

/// A test-only Ed25519 key pair (base64 PKCS#8 DER and base64 raw public key).
pub const TEST_PRIVATE_KEY: &str =
    "MC4CAQAwBQYDK2VwBCIEIDSh5B0d0iKKxPdxLZmnLwJ17Y74sSfYxhTW8wv2MCA9";
pub const TEST_PUBLIC_KEY: &str = "5L6IQVMOfmB9I98v6X+m0kogQUCikNR1hAYN+WmCUWE=";
/// A test-only pass signing key (base64 PKCS#8 DER of the Ed25519 key whose seed is 32 threes).
pub const TEST_PASS_SIGNING_KEY: &str =
    "MC4CAQAwBQYDK2VwBCIEIAMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMD";

pub fn repository_root() -> PathBuf {
    workspace_root()
}

/// The Stripe webhook signing secret the tests configure.
pub const WEBHOOK_SECRET: &str = "whsec_e2e_secret";

/// The app with test keys, plain-HTTP cookies and every migration; add settings, then `start()`.
/// Stripe is configured but unreachable (a closed loopback port); see [`app_with_stripe`].
pub fn app(redis: &RedisServer) -> HostBuilder {
    stripe_settings(app_without_stripe(redis), "http://127.0.0.1:9")
}

/// The app with `stripe` as its Stripe. Register the webhook once the host runs
/// ([`LocalStripe::send_webhooks_to`] with the host's `/api/payments/webhook` and
/// [`WEBHOOK_SECRET`]).
pub fn app_with_stripe(redis: &RedisServer, stripe: &LocalStripe) -> HostBuilder {
    stripe_settings(app_without_stripe(redis), &stripe.url())
}

/// The app with its own Redis and localstripe and `settings` (environment variables) added,
/// started, its webhook registered with localstripe.
pub fn start_with_stripe(settings: &[(&str, &str)]) -> (Host, LocalStripe, RedisServer) {
    let redis = RedisServer::start();
    let stripe = LocalStripe::start();
    let mut builder = app_with_stripe(&redis, &stripe);
    for (name, value) in settings {
        builder = builder.env(name, value);
    }
    let host = builder.start();
    stripe.send_webhooks_to(&host.url("/api/payments/webhook"), WEBHOOK_SECRET);
    (host, stripe, redis)
}

fn stripe_settings(builder: HostBuilder, api_base: &str) -> HostBuilder {
    builder
        .env("SPIN_VARIABLE_STRIPE_API_BASE", api_base)
        .env("SPIN_VARIABLE_STRIPE_SECRET_KEY", "sk_test_e2e")
        .env("SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY", "pk_test_e2e")
        .env(
            "SPIN_VARIABLE_STRIPE_JS_URL",
            &format!("{api_base}/js.stripe.com/v3/"),
        )
}

fn app_without_stripe(redis: &RedisServer) -> HostBuilder {
    let root = repository_root();
    HostBuilder::new(root.join("spin.toml"))
        .env("SPIN_VARIABLE_REDIS_ADDRESS", &redis.url())
        .env("SPIN_VARIABLE_JWT_PRIVATE_KEY", TEST_PRIVATE_KEY)
        .env("SPIN_VARIABLE_JWT_PUBLIC_KEY", TEST_PUBLIC_KEY)
        .env("SPIN_VARIABLE_PASS_SIGNING_KEY", TEST_PASS_SIGNING_KEY)
        .env("SPIN_VARIABLE_PLAIN_HTTP", "true")
        // Every test's clients sign up and in from 127.0.0.1; the tests of the per-address
        // limit set their own.
        .env("SPIN_VARIABLE_SIGNIN_MAX_ATTEMPTS_PER_ADDRESS", "1000000")
}

/// A signed-up user's session cookie.
pub fn sign_up(host: &Host, email: &str) -> String {
    let reply = host.post_json(
        "/api/users/signup",
        &json!({ "email": email, "password": "password1" }),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let cookie = reply.header("set-cookie").expect("cookie");
    cookie.split(';').next().expect("pair").to_owned()
}

pub fn send(host: &Host, method: &str, path: &str, cookie: &str, body: &Value) -> Reply {
    let text = body.to_string();
    host.request_with(
        method,
        path,
        &[("content-type", "application/json"), ("cookie", cookie)],
        Some(text.as_bytes()),
    )
}

pub fn create_ticket(host: &Host, cookie: &str, title: &str, price: f64) -> Value {
    let reply = send(
        host,
        "POST",
        "/api/tickets",
        cookie,
        &json!({ "title": title, "price": price }),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()
}

pub fn ticket(host: &Host, id: &str) -> Value {
    let reply = host.get(&format!("/api/tickets/{id}"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// The envelopes in a stream, oldest first.
pub fn stream(redis: &RedisServer, name: &str) -> Vec<Value> {
    let mut connection = redis.client().get_connection().expect("redis");
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(name)
        .arg("-")
        .arg("+")
        .query(&mut connection)
        .unwrap_or_default();
    entries
        .into_iter()
        .flat_map(|(_, fields)| {
            fields
                .into_iter()
                .map(|(_, value)| serde_json::from_str(&value).expect("JSON entry"))
        })
        .collect()
}

/// Appends an event to its stream and publishes it on its subject's channel, as a service's relay
/// does, for events whose publisher the test stands in for.
pub fn publish_event(redis: &RedisServer, event: Event, event_id: &str) {
    let envelope = event.to_envelope(event_id, "2026-11-25T00:00:00.000Z");
    let mut connection = redis.client().get_connection().expect("redis");
    let stream =
        delivery::stream_for_subject(&envelope.subject).expect("a subject of the contract");
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("event")
        .arg(envelope.to_json())
        .query(&mut connection)
        .expect("XADD");
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&envelope.subject)
        .arg(envelope.to_json())
        .query(&mut connection)
        .expect("PUBLISH");
}

/// The ids of the tickets for sale (the first page).
pub fn listed_ids(host: &Host) -> Vec<String> {
    host.get("/api/tickets")
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The messages of an answer in the error format, in order.
pub fn messages(reply: &Reply) -> Vec<String> {
    reply.json()["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("not the error format: {}", reply.body))
        .iter()
        .map(|error| error["message"].as_str().expect("a message").to_owned())
        .collect()
}

/// The `id` of a JSON object.
pub fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// `buyer` orders `ticket_id`, once the orders replica knows it: the order's id.
pub fn place_order(host: &Host, buyer: &str, ticket_id: &str) -> String {
    let order = eventually("the ticket to reach the orders replica", || {
        let reply = send(
            host,
            "POST",
            "/api/orders",
            buyer,
            &json!({ "ticketId": ticket_id }),
        );
        (reply.status != 404).then_some(reply)
    });
    assert_eq!(order.status, 201, "{}", order.body);
    id_of(&order.json())
}

/// `buyer` orders `ticket_id` and pays with a test card at the app's Stripe; answers the
/// order's id once the order is complete.
pub fn buy(host: &Host, buyer: &str, ticket_id: &str) -> String {
    let order_id = place_order(host, buyer, ticket_id);
    pay_and_complete(host, buyer, &order_id);
    order_id
}

/// `buyer` pays `order_id` with a test card and waits for the order to complete.
pub fn pay_and_complete(host: &Host, buyer: &str, order_id: &str) {
    let body = json!({ "orderId": order_id, "paymentMethodId": "pm_card_visa" });
    let paid = eventually("the order to reach the payments replica", || {
        let reply = send(host, "POST", "/api/payments", buyer, &body);
        (reply.status != 404).then_some(reply)
    });
    assert_eq!(paid.status, 201, "{}", paid.body);
    let path = format!("/api/orders/{order_id}");
    eventually("the order to complete", || {
        let reply = host.request_with("GET", &path, &[("cookie", buyer)], None);
        (reply.json()["status"] == "complete").then_some(())
    });
}
