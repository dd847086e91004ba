//! The payments service end to end (issue #8), through the host against localstripe, the
//! stateful fake Stripe: the reference's payment cases, exact amounts, one payment however
//! often a payment or a webhook repeats, signatures checked, declines, expiry, refunds for orders
//! cancelled meanwhile, and Stripe going away.

use e2e::{
    Host, LocalStripe, RedisServer, Reply, WEBHOOK_SECRET, create_ticket, eventually, id_of,
    messages, place_order, send, sign_up, start_with_stripe, stream, ticket,
};
use serde_json::{Value, json};

/// A running app with its own Redis and localstripe, webhooks registered.
struct Shop {
    host: Host,
    stripe: Option<LocalStripe>,
    stripe_port: u16,
    redis: RedisServer,
}

impl Shop {
    fn open() -> Shop {
        Shop::open_with(&[])
    }

    fn open_with(settings: &[(&str, &str)]) -> Shop {
        let (host, stripe, redis) = start_with_stripe(settings);
        Shop {
            host,
            stripe_port: stripe.port,
            stripe: Some(stripe),
            redis,
        }
    }

    fn stripe(&self) -> &LocalStripe {
        self.stripe.as_ref().expect("localstripe is running")
    }

    fn stop_stripe(&mut self) {
        drop(self.stripe.take());
    }

    /// Starts localstripe again on the same port, empty, as a Stripe outage ends.
    fn restart_stripe(&mut self) {
        let stripe = LocalStripe::start_on(self.stripe_port);
        stripe.send_webhooks_to(&self.host.url("/api/payments/webhook"), WEBHOOK_SECRET);
        self.stripe = Some(stripe);
    }

    /// A ticket listed by a new seller and ordered by `buyer`: (ticket id, order id).
    fn order(&self, buyer: &str, price: f64) -> (String, String) {
        let seller = sign_up(
            &self.host,
            &format!("seller-{}@example.com", price_key(price)),
        );
        let ticket_id = id_of(&create_ticket(&self.host, &seller, "Concert", price));
        let order_id = place_order(&self.host, buyer, &ticket_id);
        (ticket_id, order_id)
    }

    /// `POST /api/payments`, once payments' replica knows the order (404 until then).
    fn pay(&self, buyer: &str, body: &Value) -> Reply {
        eventually("the order to reach the payments replica", || {
            let reply = send(&self.host, "POST", "/api/payments", buyer, body);
            (reply.status != 404).then_some(reply)
        })
    }

    fn order_status(&self, buyer: &str, order_id: &str) -> Value {
        let reply = self.host.request_with(
            "GET",
            &format!("/api/orders/{order_id}"),
            &[("cookie", buyer)],
            None,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["status"].clone()
    }

    /// The `payment:created` events about `order_id`.
    fn payment_events(&self, order_id: &str) -> Vec<Value> {
        stream(&self.redis, "events:payment")
            .into_iter()
            .filter(|event| event["data"]["orderId"] == order_id)
            .collect()
    }

    fn intent(&self, id: &str) -> Value {
        self.stripe()
            .call("GET", &format!("/v1/payment_intents/{id}"), &[])
            .expect("the intent at localstripe")
    }

    /// Sends a webhook the way Stripe does: `payload` signed with `signature`.
    fn webhook(&self, payload: &str, signature: Option<&str>) -> Reply {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(signature) = signature {
            headers.push(("stripe-signature", signature));
        }
        self.host.request_with(
            "POST",
            "/api/payments/webhook",
            &headers,
            Some(payload.as_bytes()),
        )
    }
}

fn price_key(price: f64) -> String {
    format!("{price}").replace('.', "-")
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// A `payment_intent.succeeded` event for `intent`, as Stripe sends it.
fn succeeded_event(intent: &Value) -> String {
    json!({
        "id": "evt_replayed", "object": "event", "type": "payment_intent.succeeded",
        "created": now_secs(), "livemode": false,
        "data": { "object": intent },
    })
    .to_string()
}

#[test]
fn payments_keep_the_reference_checks() {
    let shop = Shop::open();
    let buyer = sign_up(&shop.host, "buyer@example.com");
    let other = sign_up(&shop.host, "other@example.com");
    let (_, order_id) = shop.order(&buyer, 25.0);

    let anonymous = shop
        .host
        .post_json("/api/payments", &json!({ "orderId": order_id }));
    assert_eq!(anonymous.status, 401);
    let missing = send(&shop.host, "POST", "/api/payments", &buyer, &json!({}));
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["errors"][0]["field"], "orderId");
    let unknown = send(
        &shop.host,
        "POST",
        "/api/payments",
        &buyer,
        &json!({ "orderId": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b" }),
    );
    assert_eq!(unknown.status, 404);
    let foreign = shop.pay(&other, &json!({ "orderId": order_id }));
    assert_eq!(foreign.status, 401, "{}", foreign.body);
    // The reference's body: a card token, which Stripe retired.
    let legacy = shop.pay(&buyer, &json!({ "orderId": order_id, "token": "tok_visa" }));
    assert_eq!(legacy.status, 400);
    assert!(legacy.body.contains("paymentMethodId"), "{}", legacy.body);

    let started = shop.pay(&buyer, &json!({ "orderId": order_id }));
    assert_eq!(started.status, 201, "{}", started.body);
    let payment = started.json();
    assert_eq!(payment["success"], true);
    assert_eq!(payment["orderId"], order_id.as_str());
    assert_eq!(payment["status"], "requires_payment_method");
    let intent = shop.intent(payment["stripeId"].as_str().expect("stripeId"));
    assert_eq!(intent["client_secret"], payment["clientSecret"]);
    assert_eq!(intent["metadata"]["order_id"], order_id.as_str());

    // A cancelled order cannot be paid.
    let path = format!("/api/orders/{order_id}");
    let cancelled = shop
        .host
        .request_with("DELETE", &path, &[("cookie", &buyer)], None);
    assert_eq!(cancelled.status, 204);
    // Asked without a payment method, so that no attempt before payments learns of the
    // cancellation charges anything.
    let refused = eventually("payments to learn of the cancellation", || {
        let reply = shop.pay(&buyer, &json!({ "orderId": order_id }));
        (reply.status == 400).then_some(reply)
    });
    assert_eq!(messages(&refused), ["Order is cancelled"]);

    let config = shop.host.get("/api/payments/config").json();
    assert_eq!(config["publishableKey"], "pk_test_e2e");
    assert_eq!(
        config["stripeJsUrl"],
        format!("{}/js.stripe.com/v3/", shop.stripe().url())
    );
}

#[test]
fn the_amount_charged_is_the_price_in_exact_cents() {
    let shop = Shop::open();
    let buyer = sign_up(&shop.host, "buyer@example.com");
    for (price, cents) in [(19.99, 1999), (20.05, 2005), (0.29, 29)] {
        let (_, order_id) = shop.order(&buyer, price);
        let paid = shop.pay(
            &buyer,
            &json!({ "orderId": order_id, "paymentMethodId": "pm_card_visa" }),
        );
        assert_eq!(paid.status, 201, "{}", paid.body);
        assert_eq!(paid.json()["status"], "succeeded");
        let intent = shop.intent(paid.json()["stripeId"].as_str().expect("stripeId"));
        assert_eq!(intent["amount"], cents, "{price}");
        assert_eq!(intent["currency"], "usd");
        assert_eq!(intent["status"], "succeeded");
    }
}

#[test]
fn a_paid_order_completes_once_its_ticket_is_sold_and_it_cannot_be_cancelled() {
    let shop = Shop::open();
    let buyer = sign_up(&shop.host, "buyer@example.com");
    let (ticket_id, order_id) = shop.order(&buyer, 42.5);
    let paid = shop.pay(
        &buyer,
        &json!({ "orderId": order_id, "paymentMethodId": "pm_card_visa" }),
    );
    assert_eq!(paid.status, 201, "{}", paid.body);
    let payment = paid.json();
    eventually("the order to complete", || {
        (shop.order_status(&buyer, &order_id) == "complete").then_some(())
    });
    eventually("the ticket to be sold", || {
        (ticket(&shop.host, &ticket_id)["status"] == "sold").then_some(())
    });
    let cancel = shop.host.request_with(
        "DELETE",
        &format!("/api/orders/{order_id}"),
        &[("cookie", &buyer)],
        None,
    );
    assert_eq!(cancel.status, 400, "{}", cancel.body);

    // Paying again, and the same success reported again by webhook, change nothing.
    let again = shop.pay(
        &buyer,
        &json!({ "orderId": order_id, "paymentMethodId": "pm_card_visa" }),
    );
    assert_eq!(again.status, 400, "{}", again.body);
    let intent = shop.intent(payment["stripeId"].as_str().expect("stripeId"));
    let replayed = succeeded_event(&intent);
    for _ in 0..2 {
        let signature = payments_signature(&replayed);
        assert_eq!(shop.webhook(&replayed, Some(&signature)).status, 200);
    }
    // localstripe's own webhook for the success arrives about a second later; wait it out.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let events = shop.payment_events(&order_id);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["id"], payment["id"]);
    assert_eq!(events[0]["data"]["stripeId"], payment["stripeId"]);
    let charges = shop
        .stripe()
        .call("GET", "/v1/charges", &[])
        .expect("charges");
    let for_this: Vec<&Value> = charges["data"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|charge| charge["payment_intent"] == payment["stripeId"])
        .collect();
    assert_eq!(for_this.len(), 1, "one charge at Stripe");
}

fn payments_signature(payload: &str) -> String {
    payments_service::webhook::sign(payload.as_bytes(), WEBHOOK_SECRET, now_secs())
}

#[test]
fn webhooks_with_forged_stale_or_missing_signatures_are_rejected() {
    let shop = Shop::open();
    let buyer = sign_up(&shop.host, "buyer@example.com");
    let (_, order_id) = shop.order(&buyer, 10.0);
    let started = shop.pay(&buyer, &json!({ "orderId": order_id }));
    let stripe_id = started.json()["stripeId"]
        .as_str()
        .expect("stripeId")
        .to_owned();
    // A payload claiming the intent succeeded, without Stripe saying so.
    let mut intent = shop.intent(&stripe_id);
    intent["status"] = json!("succeeded");
    let forged = succeeded_event(&intent);
    let stale =
        payments_service::webhook::sign(forged.as_bytes(), WEBHOOK_SECRET, now_secs() - 600);
    let wrong_key = payments_service::webhook::sign(forged.as_bytes(), "whsec_guess", now_secs());
    for signature in [
        None,
        Some(stale.as_str()),
        Some(wrong_key.as_str()),
        Some("t=1,v1=00"),
    ] {
        let reply = shop.webhook(&forged, signature);
        assert_eq!(reply.status, 400, "{signature:?}: {}", reply.body);
        assert!(messages(&reply)[0].starts_with("Invalid webhook"));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(shop.order_status(&buyer, &order_id), "created");
    assert!(shop.payment_events(&order_id).is_empty());
}

#[test]
fn a_declined_card_leaves_the_order_created_and_payable() {
    let shop = Shop::open();
    let buyer = sign_up(&shop.host, "buyer@example.com");
    let (ticket_id, order_id) = shop.order(&buyer, 15.0);
    let declined = shop.pay(
        &buyer,
        &json!({ "orderId": order_id, "paymentMethodId": "pm_card_chargeCustomerFail" }),
    );
    assert_eq!(declined.status, 402, "{}", declined.body);
    assert_eq!(messages(&declined), ["Your card was declined."]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(shop.order_status(&buyer, &order_id), "created");
    assert_eq!(ticket(&shop.host, &ticket_id)["status"], "reserved");
    assert!(shop.payment_events(&order_id).is_empty());
    // Still payable: asking again answers with the same payment, not an error.
    let again = shop.pay(&buyer, &json!({ "orderId": order_id }));
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.json()["status"], "requires_payment_method");
}

#[test]
fn paying_after_expires_at_is_rejected_before_the_expiry_event_arrives() {
    let shop = Shop::open_with(&[("SPIN_VARIABLE_ORDER_WINDOW_SECONDS", "1")]);
    // The timer cannot publish while something else holds its stream: no expiry event at all.
    let mut connection = shop.redis.client().get_connection().expect("redis");
    let _: () = redis::cmd("SET")
        .arg("events:expiration")
        .arg("in the way")
        .query(&mut connection)
        .expect("SET");
    let buyer = sign_up(&shop.host, "buyer@example.com");
    let (_, order_id) = shop.order(&buyer, 30.0);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let late = shop.pay(
        &buyer,
        &json!({ "orderId": order_id, "paymentMethodId": "pm_card_visa" }),
    );
    assert_eq!(late.status, 400, "{}", late.body);
    assert_eq!(messages(&late), ["Order has expired"]);
    assert_eq!(
        shop.order_status(&buyer, &order_id),
        "created",
        "not cancelled yet"
    );
    let intents = shop
        .stripe()
        .call("GET", "/v1/payment_intents", &[])
        .expect("intents");
    assert_eq!(intents["data"], json!([]), "nothing asked of Stripe");
}

#[test]
fn a_success_that_arrives_after_the_order_was_cancelled_is_refunded() {
    let shop = Shop::open();
    let buyer = sign_up(&shop.host, "buyer@example.com");
    let (ticket_id, order_id) = shop.order(&buyer, 12.0);
    let started = shop.pay(&buyer, &json!({ "orderId": order_id }));
    assert_eq!(started.status, 201, "{}", started.body);
    let stripe_id = started.json()["stripeId"]
        .as_str()
        .expect("stripeId")
        .to_owned();
    let cancelled = shop.host.request_with(
        "DELETE",
        &format!("/api/orders/{order_id}"),
        &[("cookie", &buyer)],
        None,
    );
    assert_eq!(cancelled.status, 204);
    // Payments learns of the cancellation: its replica refuses to pay the order.
    eventually("payments to learn of the cancellation", || {
        let reply = shop.pay(&buyer, &json!({ "orderId": order_id }));
        (reply.status == 400).then_some(())
    });
    // Meanwhile the buyer's browser confirms the intent with Stripe.js, in the last second.
    shop.stripe()
        .call(
            "POST",
            &format!("/v1/payment_intents/{stripe_id}"),
            &[("payment_method", "pm_card_visa")],
        )
        .expect("set the payment method");
    let confirmed = shop
        .stripe()
        .call(
            "POST",
            &format!("/v1/payment_intents/{stripe_id}/confirm"),
            &[],
        )
        .expect("confirm at Stripe");
    assert_eq!(confirmed["status"], "succeeded");
    // Stripe's webhook arrives; the money goes back.
    let refunds = eventually("a refund at Stripe", || {
        let refunds = shop.stripe().call("GET", "/v1/refunds", &[]).ok()?;
        let data = refunds["data"].as_array()?.clone();
        (!data.is_empty()).then_some(data)
    });
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["payment_intent"], stripe_id.as_str());
    assert_eq!(refunds[0]["amount"], 1200);
    assert_eq!(shop.order_status(&buyer, &order_id), "cancelled");
    assert_eq!(ticket(&shop.host, &ticket_id)["status"], "available");
    assert!(shop.payment_events(&order_id).is_empty());
}

#[test]
fn with_stripe_stopped_paying_is_a_502_that_records_nothing_and_a_retry_works() {
    let mut shop = Shop::open();
    let buyer = sign_up(&shop.host, "buyer@example.com");
    let (_, order_id) = shop.order(&buyer, 18.0);
    shop.stop_stripe();
    let body = json!({ "orderId": order_id, "paymentMethodId": "pm_card_visa" });
    let down = shop.pay(&buyer, &body);
    assert_eq!(down.status, 502, "{}", down.body);
    assert!(
        messages(&down)[0].contains("try again later"),
        "{}",
        down.body
    );
    assert!(shop.payment_events(&order_id).is_empty());

    shop.restart_stripe();
    let retried = shop.pay(&buyer, &body);
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(retried.json()["status"], "succeeded");
    eventually("the order to complete", || {
        (shop.order_status(&buyer, &order_id) == "complete").then_some(())
    });
    assert_eq!(shop.payment_events(&order_id).len(), 1);
}

/// Stripe lets a PaymentMethod that belongs to no Customer be used once, so a card set up
/// without one could not pay again: neither a retry after a failed attempt nor a second order.
/// Each buyer has a Stripe Customer, and the card form's SetupIntent attaches the card to it.
#[test]
fn a_card_set_up_once_pays_again_because_it_belongs_to_the_buyer_s_customer() {
    let shop = Shop::open();
    let buyer = sign_up(&shop.host, "saved-card@example.com");
    let (_, first) = shop.order(&buyer, 11.0);
    let (_, second) = shop.order(&buyer, 12.0);

    let setup = send(
        &shop.host,
        "POST",
        "/api/payments/setup",
        &buyer,
        &json!({}),
    );
    assert_eq!(setup.status, 201, "{}", setup.body);
    let secret = setup.json()["clientSecret"]
        .as_str()
        .expect("a client secret")
        .to_owned();
    let setup_id = secret.split("_secret").next().expect("an id");
    let confirmed = shop
        .stripe()
        .call(
            "POST",
            &format!("/v1/setup_intents/{setup_id}/confirm"),
            &[
                ("client_secret", secret.as_str()),
                ("payment_method_data[type]", "card"),
                ("payment_method_data[card][number]", "4242424242424242"),
                ("payment_method_data[card][exp_month]", "12"),
                ("payment_method_data[card][exp_year]", "2034"),
                ("payment_method_data[card][cvc]", "123"),
            ],
        )
        .expect("the card form confirms the SetupIntent");
    let card = confirmed["payment_method"]
        .as_str()
        .expect("a PaymentMethod")
        .to_owned();
    for order in [&first, &second] {
        let paid = shop.pay(
            &buyer,
            &json!({ "orderId": order, "paymentMethodId": card }),
        );
        assert_eq!(paid.status, 201, "{}", paid.body);
        assert_eq!(paid.json()["status"], "succeeded", "{}", paid.body);
    }
}

/// The rule is the clock's, not the events': a payment Stripe took before the order's window
/// ended wins, even when Redis was away as the window ended, so that the payment's event was
/// still in the payments outbox when the orders service would otherwise have given the ticket
/// up. (Redis comes back empty, so the expiration timer's schedule is gone too.)
#[test]
fn a_payment_made_in_time_wins_when_redis_was_away_as_the_order_expired() {
    let redis = RedisServer::start();
    let port = redis.port;
    let stripe = LocalStripe::start();
    let host = e2e::app_with_stripe(&redis, &stripe)
        .env("SPIN_VARIABLE_ORDER_WINDOW_SECONDS", "3")
        .env("SPIN_VARIABLE_HOUSEKEEPING_INTERVAL_SECONDS", "1")
        .start();
    stripe.send_webhooks_to(&host.url("/api/payments/webhook"), WEBHOOK_SECRET);
    let seller = sign_up(&host, "seller-in-time@example.com");
    let buyer = sign_up(&host, "buyer-in-time@example.com");
    let ticket_id = id_of(&create_ticket(&host, &seller, "Concert", 12.0));
    let order = eventually("the ticket to reach the orders replica", || {
        let reply = send(
            &host,
            "POST",
            "/api/orders",
            &buyer,
            &json!({ "ticketId": ticket_id }),
        );
        (reply.status != 404).then_some(reply)
    });
    assert_eq!(order.status, 201, "{}", order.body);
    let order = order.json();
    let order_id = id_of(&order);
    eventually("the order to reach the payments replica", || {
        let reply = send(
            &host,
            "POST",
            "/api/payments",
            &buyer,
            &json!({ "orderId": order_id }),
        );
        (reply.status == 201).then_some(())
    });

    drop(redis);
    let paid = send(
        &host,
        "POST",
        "/api/payments",
        &buyer,
        &json!({ "orderId": order_id, "paymentMethodId": "pm_card_visa" }),
    );
    assert_eq!(paid.status, 201, "{}", paid.body);
    assert_eq!(paid.json()["status"], "succeeded");
    let expires_at = domain::parse_rfc3339_millis(order["expiresAt"].as_str().expect("expiresAt"))
        .expect("a timestamp");
    eventually("three seconds past the order's window", || {
        (now_secs() * 1000 > expires_at + 3_000).then_some(())
    });

    // The payments service is held up a moment longer (its database write-locked, as a slow
    // disk or a busy writer would), so the orders service's first housekeeping comes first.
    let payments_db = rusqlite::Connection::open(host.work_dir.path().join(".spin/payments.db"))
        .expect("the payments database");
    payments_db
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("hold the payments database");
    let _redis = RedisServer::start_on(port);
    // Once the host's subscriptions are back, the heartbeat (Kubernetes' probe) arms the tick.
    eventually("the housekeeping tick to be armed again", || {
        (host.output.text().contains("Reconnected to")
            && host.get("/api/heartbeat").body.contains(r#""redis":"ok""#))
        .then_some(())
    });
    // Two housekeeping ticks for the orders service meanwhile.
    let held = std::time::Instant::now();
    eventually("three seconds with payments held up", || {
        (held.elapsed() > std::time::Duration::from_secs(3)).then_some(())
    });
    payments_db
        .execute_batch("ROLLBACK")
        .expect("let the payments database go");
    let status = eventually("the order to be settled", || {
        let reply = host.request_with(
            "GET",
            &format!("/api/orders/{order_id}"),
            &[("cookie", buyer.as_str())],
            None,
        );
        let status = reply.json()["status"].clone();
        (status != "created").then_some(status)
    });
    assert_eq!(status, "complete");
    eventually("the ticket to be sold", || {
        (ticket(&host, &ticket_id)["status"] == "sold").then_some(())
    });
}
