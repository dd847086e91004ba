//! Structured logs: one JSON line per request and per applied event in every component, and one
//! purchase followed across the services by its request id.

use std::path::Path;

use e2e::{Host, create_ticket, eventually, id_of, sign_up, start_with_stripe};
use serde_json::{Value, json};

const PURCHASE: &str = "purchase-7f3a91";

/// Every line of a component's stdout log, parsed; a line that is not JSON fails the test.
fn log_lines(state: &Path, component: &str) -> Vec<Value> {
    let path = state.join(format!(".spin/logs/{component}_stdout.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{component}: not a JSON line ({e}): {line}"))
        })
        .collect()
}

/// POSTs `body` as the buyer's browser would during the purchase: with its request id.
fn post(host: &Host, path: &str, cookie: &str, body: &Value) -> (u16, Value, Option<String>) {
    let text = body.to_string();
    let reply = host.request_with(
        "POST",
        path,
        &[
            ("content-type", "application/json"),
            ("cookie", cookie),
            ("x-request-id", PURCHASE),
        ],
        Some(text.as_bytes()),
    );
    let id = reply.header("x-request-id").map(str::to_owned);
    (reply.status, reply.json(), id)
}

#[test]
fn a_purchase_is_followed_across_the_services_by_its_request_id() {
    let (host, _stripe, _redis) = start_with_stripe(&[]);
    let seller = sign_up(&host, "seller@example.com");
    let ticket = id_of(&create_ticket(&host, &seller, "Quartet", 30.0));

    // The buyer's browser sends one request id with every request of the purchase.
    let buyer = sign_up(&host, "buyer@example.com");
    let (status, _, echoed) = post(
        &host,
        "/api/users/signin",
        "",
        &json!({"email": "buyer@example.com", "password": "password1"}),
    );
    assert_eq!((status, echoed.as_deref()), (200, Some(PURCHASE)));
    // The orders service learns of the ticket from `ticket:created`: until then it is unknown.
    let order = eventually("the order to be placed", || {
        let (status, order, _) = post(&host, "/api/orders", &buyer, &json!({"ticketId": ticket}));
        assert!(status == 201 || status == 404, "{status} {order}");
        (status == 201).then(|| id_of(&order))
    });
    // Likewise payments, of the order from `order:created`.
    eventually("the payment to be made", || {
        let body = json!({"orderId": order, "paymentMethodId": "pm_card_visa"});
        let (status, paid, _) = post(&host, "/api/payments", &buyer, &body);
        assert!(status == 201 || status == 404, "{status} {paid}");
        (status == 201).then_some(())
    });

    let state = host.work_dir.path();
    let carries = |component: &str, kind: &str| {
        log_lines(state, component)
            .into_iter()
            .filter(|line| line["requestId"] == PURCHASE && line["kind"] == kind)
            .collect::<Vec<_>>()
    };
    // The requests themselves, then the events they caused, as each consumer applied them.
    for component in ["auth", "orders", "payments"] {
        let lines = carries(component, "request");
        assert!(
            !lines.is_empty(),
            "{component} logged no request of the purchase"
        );
    }
    // Payments applies `order:created` in its events component or, when the payment came
    // first, in the request that caught the order stream up: the same group, so one of them.
    let expected_events: [(&[&str], &str); 5] = [
        (&["tickets-events"], "order:created"),
        (&["tickets-events"], "order:completed"),
        (&["expiration"], "order:created"),
        (&["payments-events", "payments"], "order:created"),
        (&["orders-events"], "payment:created"),
    ];
    for (components, subject) in expected_events {
        let applied = eventually(&format!("{components:?} to apply {subject}"), || {
            components
                .iter()
                .flat_map(|component| carries(component, "event"))
                .find(|line| line["subject"] == subject && line["outcome"] == "applied")
        });
        assert!(applied["durationMs"].as_f64().is_some(), "{applied}");
        assert!(applied["eventId"].as_str().is_some(), "{applied}");
    }

    // Every line of every component has the common fields, and no secret.
    let cookie_token = buyer.trim_start_matches("session=");
    for component in [
        "static-files",
        "auth",
        "tickets",
        "orders",
        "payments",
        "tickets-events",
        "orders-events",
        "payments-events",
        "expiration",
    ] {
        for line in log_lines(state, component) {
            for field in ["time", "level", "component", "kind"] {
                assert!(!line[field].is_null(), "{component}: no {field} in {line}");
            }
            let handled = line["kind"] == "request" || !line["eventId"].is_null();
            assert!(
                !handled || line["durationMs"].as_f64().is_some(),
                "{component}: no duration in {line}"
            );
            assert_eq!(line["component"], component, "{line}");
            let text = line.to_string();
            assert!(
                !text.contains("password1") && !text.contains(cookie_token),
                "{text}"
            );
        }
    }
}

#[test]
fn a_request_id_is_generated_or_taken_from_traceparent_and_always_echoed() {
    let (host, _stripe, _redis) = start_with_stripe(&[]);
    let generated = host.get("/api/tickets");
    let id = generated.header("x-request-id").expect("an id");
    assert!(domain::EventId::parse(id).is_ok(), "a UUID: {id}");
    let traced = host.request_with(
        "GET",
        "/api/tickets",
        &[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )],
        None,
    );
    assert_eq!(
        traced.header("x-request-id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let page = host.request_with("GET", "/auth/signin", &[("x-request-id", "page-1")], None);
    assert_eq!(page.header("x-request-id"), Some("page-1"));
    let lines = log_lines(host.work_dir.path(), "static-files");
    assert!(
        lines
            .iter()
            .any(|line| line["requestId"] == "page-1" && line["status"] == 200),
        "{lines:?}"
    );
}
