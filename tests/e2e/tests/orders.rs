//! The orders service and the expiration timer end to end (issue #7): the reference's order
//! routes and the orders listeners, no double booking under concurrency, orders
//! that expire on time even when a key event is lost or the timer fails, and every event on the
//! channel of its subject exactly once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use e2e::{
    Host, RedisServer, Reply, app, create_ticket, eventually, id_of, listed_ids, messages,
    publish_event, send, sign_up, stream, ticket,
};
use events::{Event, ExpirationComplete, PaymentCreated};
use serde_json::{Value, json};

const UNKNOWN_ID: &str = "3f2c7d1e-8a4b-4c6d-9e0f-000000000000";

fn now_ms() -> u64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(elapsed.as_millis()).expect("fits")
}

fn get_as(host: &Host, path: &str, cookie: &str) -> Reply {
    host.request_with("GET", path, &[("cookie", cookie)], None)
}

fn delete_as(host: &Host, path: &str, cookie: &str) -> Reply {
    host.request_with("DELETE", path, &[("cookie", cookie)], None)
}

fn user_id(host: &Host, cookie: &str) -> String {
    get_as(host, "/api/users/current-user", cookie).json()["currentUser"]["id"]
        .as_str()
        .expect("signed in")
        .to_owned()
}

/// `POST /api/orders` for a ticket that exists, once the orders service's replica has it (until
/// `ticket:created` is applied there the ticket is unknown to orders: 404).
fn order(host: &Host, cookie: &str, ticket_id: &str) -> Reply {
    eventually("the ticket to reach the orders replica", || {
        let reply = send(
            host,
            "POST",
            "/api/orders",
            cookie,
            &json!({ "ticketId": ticket_id }),
        );
        (reply.status != 404).then_some(reply)
    })
}

/// Places an order that must succeed; its JSON.
fn place(host: &Host, cookie: &str, ticket_id: &str) -> Value {
    let reply = order(host, cookie, ticket_id);
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()
}

fn order_status(host: &Host, cookie: &str, order_id: &str) -> Value {
    let reply = get_as(host, &format!("/api/orders/{order_id}"), cookie);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

fn expires_at_ms(order: &Value) -> u64 {
    let text = order["expiresAt"].as_str().expect("expiresAt");
    domain::parse_rfc3339_millis(text)
        .unwrap_or_else(|_| panic!("{text:?} is not RFC 3339 UTC with milliseconds"))
}

/// The subjects and versions of the order events about `order_id`, in stream order.
fn order_events(redis: &RedisServer, order_id: &str) -> Vec<(String, u64)> {
    stream(redis, "events:order")
        .into_iter()
        .filter(|event| event["data"]["id"] == order_id)
        .map(|event| {
            (
                event["subject"].as_str().expect("subject").to_owned(),
                event["data"]["version"].as_u64().expect("version"),
            )
        })
        .collect()
}

/// Whether consumer group `group` has read up to the last entry of `stream` and holds nothing
/// pending.
fn group_caught_up(redis: &RedisServer, stream: &str, group: &str) -> bool {
    let mut connection = redis.client().get_connection().expect("redis");
    let newest: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(&mut connection)
        .expect("XREVRANGE");
    let Some((last_id, _)) = newest.into_iter().next() else {
        return false;
    };
    let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query(&mut connection)
        .unwrap_or_default();
    let text = |value: Option<&redis::Value>| {
        value.and_then(|value| redis::from_redis_value::<String>(value).ok())
    };
    groups.iter().any(|info| {
        text(info.get("name")).as_deref() == Some(group)
            && info.get("pending") == Some(&redis::Value::Int(0))
            && text(info.get("last-delivered-id")) == Some(last_id.clone())
    })
}

#[test]
fn orders_keep_the_reference_routes_and_checks() {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    let seller = sign_up(&host, "seller@example.com");
    let buyer = sign_up(&host, "buyer@example.com");
    let other = sign_up(&host, "other@example.com");
    let t = create_ticket(&host, &seller, "Concert", 20.5);
    let ticket_id = id_of(&t);

    // 401 before anything else, on every route.
    let anonymous = host.post_json("/api/orders", &json!({ "ticketId": ticket_id }));
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert_eq!(messages(&anonymous), ["You are not signed in"]);
    assert_eq!(host.post_json("/api/orders", &json!({})).status, 401);
    assert_eq!(host.get("/api/orders").status, 401);
    assert_eq!(host.get(&format!("/api/orders/{UNKNOWN_ID}")).status, 401);
    assert_eq!(
        host.delete(&format!("/api/orders/{UNKNOWN_ID}")).status,
        401
    );

    // 400 for a missing or malformed ticket id, naming the field.
    for body in [
        json!({}),
        json!({ "ticketId": "" }),
        json!({ "ticketId": "abc" }),
        json!({ "ticketId": 12 }),
    ] {
        let reply = send(&host, "POST", "/api/orders", &buyer, &body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.json()["errors"][0]["field"], "ticketId", "{body}");
    }
    // 404 for a ticket nobody listed.
    let unknown = send(
        &host,
        "POST",
        "/api/orders",
        &buyer,
        &json!({ "ticketId": UNKNOWN_ID }),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    // Nobody buys their own ticket.
    let own = order(&host, &seller, &ticket_id);
    assert_eq!(own.status, 400, "{}", own.body);
    assert_eq!(messages(&own), ["You cannot order your own ticket"]);

    let before = now_ms();
    let placed = place(&host, &buyer, &ticket_id);
    let after = now_ms();
    let order_id = id_of(&placed);
    assert_eq!(placed["userId"], user_id(&host, &buyer).as_str());
    assert_eq!(placed["status"], "created");
    assert_eq!(placed["version"], 0);
    assert_eq!(placed["price"], 20.5);
    assert_eq!(
        placed["ticket"],
        json!({ "id": ticket_id, "title": "Concert", "price": 20.5, "version": 0 })
    );
    let expires = expires_at_ms(&placed);
    assert!(
        (before + 900_000..=after + 900_000).contains(&expires),
        "expiresAt {expires} is not 15 minutes after {before}..{after}"
    );

    // The ticket is held: nobody else may order it.
    let second = order(&host, &other, &ticket_id);
    assert_eq!(second.status, 400, "{}", second.body);
    assert_eq!(messages(&second), ["Ticket is already reserved"]);

    // Lists and shows belong to the buyer alone.
    let mine = get_as(&host, "/api/orders", &buyer).json();
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    assert_eq!(mine[0]["id"], order_id.as_str());
    assert_eq!(get_as(&host, "/api/orders", &other).json(), json!([]));
    let path = format!("/api/orders/{order_id}");
    assert_eq!(get_as(&host, &path, &buyer).status, 200);
    let foreign = get_as(&host, &path, &other);
    assert_eq!(foreign.status, 401);
    assert_eq!(messages(&foreign), ["You do not own this order"]);
    for id in [UNKNOWN_ID, "not-an-id"] {
        assert_eq!(
            get_as(&host, &format!("/api/orders/{id}"), &buyer).status,
            404
        );
    }

    // The tickets service reserves the ticket for this order.
    eventually("the ticket reserved by the order", || {
        let current = ticket(&host, &ticket_id);
        (current["status"] == "reserved" && current["orderId"] == order_id.as_str()).then_some(())
    });

    // Only the owner cancels; cancelling twice is fine and changes nothing the second time.
    assert_eq!(delete_as(&host, &path, &other).status, 401);
    assert_eq!(delete_as(&host, &path, &buyer).status, 204);
    assert_eq!(delete_as(&host, &path, &buyer).status, 204);
    let cancelled = order_status(&host, &buyer, &order_id);
    assert_eq!(
        (cancelled["status"].clone(), cancelled["version"].clone()),
        (json!("cancelled"), json!(1))
    );
    eventually("the ticket for sale again", || {
        listed_ids(&host).contains(&ticket_id).then_some(())
    });
    assert_eq!(
        order_events(&redis, &order_id),
        [
            ("order:created".to_owned(), 0),
            ("order:cancelled".to_owned(), 1)
        ]
    );

    // Someone else may now order it.
    let again = place(&host, &other, &ticket_id);
    assert_ne!(id_of(&again), order_id);
    eventually("the ticket reserved by the new order", || {
        (ticket(&host, &ticket_id)["orderId"] == id_of(&again).as_str()).then_some(())
    });
}

#[test]
fn an_order_s_event_is_on_its_stream_by_the_time_the_order_is_answered() {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    let seller = sign_up(&host, "seller@example.com");
    let buyer = sign_up(&host, "buyer@example.com");
    for (n, title) in ["Concert", "Opera", "Ballet"].into_iter().enumerate() {
        let ticket_id = id_of(&create_ticket(&host, &seller, title, 10.0));
        let order_id = id_of(&place(&host, &buyer, &ticket_id));

        // No waiting: whoever the buyer asks next (payments, catching up on the order) reads
        // the stream. The rest of the relay runs after the response.
        let created: Vec<Value> = stream(&redis, "events:order")
            .into_iter()
            .filter(|event| event["subject"] == "order:created")
            .collect();
        assert_eq!(created.len(), n + 1, "{created:?}");
        assert_eq!(created[n]["data"]["id"], order_id.as_str());
    }
}

#[test]
fn a_hundred_concurrent_orders_for_one_ticket_reserve_it_exactly_once() {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    let seller = sign_up(&host, "seller@example.com");
    let buyers: Vec<String> = (0..10)
        .map(|i| sign_up(&host, &format!("buyer{i}@example.com")))
        .collect();
    let ticket_id = id_of(&create_ticket(&host, &seller, "Final", 99.0));
    // Wait for the replica with a request that cannot succeed, so the race starts fair.
    assert_eq!(order(&host, &seller, &ticket_id).status, 400);

    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let (host, cookie, ticket_id) = (&host, &buyers[i % buyers.len()], &ticket_id);
                scope.spawn(move || {
                    send(
                        host,
                        "POST",
                        "/api/orders",
                        cookie,
                        &json!({ "ticketId": ticket_id }),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("no panic"))
            .collect()
    });
    let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(messages(reply), ["Ticket is already reserved"]);
    }
    let winner = id_of(&winners[0].json());
    eventually("the ticket reserved by the winning order", || {
        let current = ticket(&host, &ticket_id);
        (current["status"] == "reserved" && current["orderId"] == winner.as_str()).then_some(())
    });
    let created: Vec<Value> = stream(&redis, "events:order")
        .into_iter()
        .filter(|event| event["subject"] == "order:created")
        .collect();
    assert_eq!(created.len(), 1, "exactly one order:created");
}

#[test]
fn the_ticket_replica_follows_every_version_of_the_ticket() {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    let seller = sign_up(&host, "seller@example.com");
    let buyer = sign_up(&host, "buyer@example.com");
    let ticket_id = id_of(&create_ticket(&host, &seller, "Gig", 10.0));
    for (title, price) in [("Gig, row 2", 12.0), ("Gig, row 1", 15.0)] {
        let reply = send(
            &host,
            "PUT",
            &format!("/api/tickets/{ticket_id}"),
            &seller,
            &json!({ "title": title, "price": price }),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // Orders sees version 2 before taking the order, or the order would carry the old price.
    let placed = eventually("the replica at version 2", || {
        let reply = order(&host, &buyer, &ticket_id);
        if reply.status != 201 {
            return None;
        }
        let placed = reply.json();
        if placed["ticket"]["version"] == 2 {
            return Some(placed);
        }
        // Too early: cancel and try again once the replica has caught up.
        delete_as(&host, &format!("/api/orders/{}", id_of(&placed)), &buyer);
        None
    });
    assert_eq!(placed["price"], 15.0);
    assert_eq!(placed["ticket"]["title"], "Gig, row 1");
    // Reserving the ticket is a new version too, and the replica follows it.
    let order_id = id_of(&placed);
    eventually("the reservation's version in the replica", || {
        let shown = order_status(&host, &buyer, &order_id);
        (shown["ticket"]["version"].as_u64()? >= 3).then_some(())
    });
}

#[test]
fn a_late_expiration_for_a_paid_or_cancelled_order_changes_nothing() {
    let redis = RedisServer::start();
    let host = app(&redis).start();
    let seller = sign_up(&host, "seller@example.com");
    let buyer = sign_up(&host, "buyer@example.com");
    let ticket_id = id_of(&create_ticket(&host, &seller, "Opera", 40.0));
    let order_id = id_of(&place(&host, &buyer, &ticket_id));

    // Payments is not built yet; the test publishes its event.
    publish_event(
        &redis,
        Event::PaymentCreated(PaymentCreated {
            id: "6b4f2ab8-9273-4e30-b586-b3a292f8f767".to_owned(),
            order_id: order_id.clone(),
            stripe_id: "pi_test".to_owned(),
            paid_at: None,
        }),
        "1d9a6f4e-2b3c-4d5e-8f7a-0b1c2d3e4f50",
    );
    eventually("the order to complete", || {
        (order_status(&host, &buyer, &order_id)["status"] == "complete").then_some(())
    });
    eventually("the ticket to be sold", || {
        (ticket(&host, &ticket_id)["status"] == "sold").then_some(())
    });

    publish_event(
        &redis,
        Event::ExpirationComplete(ExpirationComplete {
            order_id: order_id.clone(),
        }),
        "2e0b7a5f-3c4d-4e6f-9a8b-1c2d3e4f5a60",
    );
    eventually("payments to read the late expiry", || {
        group_caught_up(&redis, "events:expiration", "payments").then_some(())
    });
    let shown = order_status(&host, &buyer, &order_id);
    assert_eq!(
        (shown["status"].clone(), shown["version"].clone()),
        (json!("complete"), json!(1))
    );
    assert_eq!(
        order_events(&redis, &order_id),
        [
            ("order:created".to_owned(), 0),
            ("order:completed".to_owned(), 1)
        ]
    );
    assert_eq!(ticket(&host, &ticket_id)["status"], "sold");
    let cancel = delete_as(&host, &format!("/api/orders/{order_id}"), &buyer);
    assert_eq!(cancel.status, 400, "a paid order cannot be cancelled");

    // Nor is a cancelled order cancelled again by a late expiry.
    let other_ticket = id_of(&create_ticket(&host, &seller, "Recital", 25.0));
    let cancelled = id_of(&place(&host, &buyer, &other_ticket));
    let path = format!("/api/orders/{cancelled}");
    assert_eq!(delete_as(&host, &path, &buyer).status, 204);
    publish_event(
        &redis,
        Event::ExpirationComplete(ExpirationComplete {
            order_id: cancelled.clone(),
        }),
        "3f1c8b6a-4d5e-4f7a-8b9c-2d3e4f5a6b70",
    );
    eventually("payments to read the second late expiry", || {
        group_caught_up(&redis, "events:expiration", "payments").then_some(())
    });
    assert_eq!(order_status(&host, &buyer, &cancelled)["version"], 1);
    assert_eq!(
        order_events(&redis, &cancelled),
        [
            ("order:created".to_owned(), 0),
            ("order:cancelled".to_owned(), 1)
        ]
    );
}

#[test]
fn an_unpaid_order_expires_and_its_ticket_is_for_sale_within_a_second() {
    let redis = RedisServer::start();
    let host = app(&redis)
        .env("SPIN_VARIABLE_ORDER_WINDOW_SECONDS", "2")
        .start();
    let seller = sign_up(&host, "seller@example.com");
    let buyer = sign_up(&host, "buyer@example.com");
    let ticket_id = id_of(&create_ticket(&host, &seller, "Ballet", 30.0));
    let placed = place(&host, &buyer, &ticket_id);
    let order_id = id_of(&placed);
    let expires = expires_at_ms(&placed);
    eventually("the ticket to be reserved", || {
        (ticket(&host, &ticket_id)["status"] == "reserved").then_some(())
    });

    let released_at = eventually("the ticket to be for sale again", || {
        let current = ticket(&host, &ticket_id);
        (current["status"] == "available").then(now_ms)
    });
    let lateness = released_at.saturating_sub(expires);
    assert!(
        released_at >= expires && lateness < 1000,
        "released {lateness} ms after expiresAt (at {released_at}, expiresAt {expires})"
    );
    assert!(listed_ids(&host).contains(&ticket_id));
    let shown = order_status(&host, &buyer, &order_id);
    assert_eq!(
        (shown["status"].clone(), shown["version"].clone()),
        (json!("cancelled"), json!(1))
    );
    let expirations: Vec<Value> = stream(&redis, "events:expiration");
    assert_eq!(expirations.len(), 1);
    assert_eq!(expirations[0]["data"]["orderId"], order_id.as_str());
}

#[test]
fn the_sweep_expires_orders_when_a_key_event_is_lost_or_the_timer_fails() {
    let redis = RedisServer::start();
    // Long enough a window that the test deletes the order's key before it expires.
    let host = app(&redis)
        .env("SPIN_VARIABLE_ORDER_WINDOW_SECONDS", "3")
        .env("SPIN_VARIABLE_HOUSEKEEPING_INTERVAL_SECONDS", "1")
        .start();
    let seller = sign_up(&host, "seller@example.com");
    let buyer = sign_up(&host, "buyer@example.com");
    let mut connection = redis.client().get_connection().expect("redis");

    // A lost key event: the order's key is gone before it expires, so Redis never announces it.
    let first_ticket = id_of(&create_ticket(&host, &seller, "First", 5.0));
    let lost = id_of(&place(&host, &buyer, &first_ticket));
    // The timer adds the order to the schedule, then sets its key: wait for the key.
    eventually("the timer to schedule the order and set its key", || {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(format!("expiration:order:{lost}"))
            .query(&mut connection)
            .ok()?;
        (exists == 1).then_some(())
    });
    let scheduled: Option<String> = redis::cmd("ZSCORE")
        .arg("expiration:schedule")
        .arg(&lost)
        .query(&mut connection)
        .expect("ZSCORE");
    assert!(scheduled.is_some(), "the order is on the schedule");
    let deleted: i64 = redis::cmd("DEL")
        .arg(format!("expiration:order:{lost}"))
        .query(&mut connection)
        .expect("DEL");
    assert_eq!(deleted, 1, "the key was there to lose");
    eventually("the housekeeping sweep to expire the order", || {
        (order_status(&host, &buyer, &lost)["status"] == "cancelled").then_some(())
    });

    // A failing timer: its appends fail while something else holds the stream's key.
    let _: () = redis::cmd("SET")
        .arg("events:expiration")
        .arg("in the way")
        .query(&mut connection)
        .expect("SET");
    let second_ticket = id_of(&create_ticket(&host, &seller, "Second", 5.0));
    let failing = place(&host, &buyer, &second_ticket);
    let failing_id = id_of(&failing);
    let expires = expires_at_ms(&failing);
    eventually("the order's time to pass and a sweep to fail", || {
        (now_ms() > expires + 1500).then_some(())
    });
    assert_eq!(
        order_status(&host, &buyer, &failing_id)["status"],
        "created",
        "nothing could be published while the timer failed"
    );
    let _: () = redis::cmd("DEL")
        .arg("events:expiration")
        .query(&mut connection)
        .expect("DEL");
    eventually("the next sweep to expire the order", || {
        (order_status(&host, &buyer, &failing_id)["status"] == "cancelled").then_some(())
    });
    eventually("its ticket for sale again", || {
        listed_ids(&host).contains(&second_ticket).then_some(())
    });
}

/// Collects every message on the channels of every subject until told to stop.
fn subscribe_to_every_subject(
    redis: &RedisServer,
    stop: &AtomicBool,
    ready: mpsc::Sender<()>,
) -> Vec<(String, String)> {
    let mut connection = redis.client().get_connection().expect("redis");
    let mut pubsub = connection.as_pubsub();
    for subject in Event::SUBJECTS {
        pubsub.subscribe(*subject).expect("subscribe");
    }
    pubsub
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    ready.send(()).expect("test waiting");
    let mut received = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        if let Ok(message) = pubsub.get_message() {
            received.push((
                message.get_channel_name().to_owned(),
                message.get_payload::<String>().expect("UTF-8 payload"),
            ));
        }
    }
    received
}

#[test]
fn every_subjects_channel_carries_each_envelope_exactly_once() {
    let redis = RedisServer::start();
    let host = app(&redis)
        .env("SPIN_VARIABLE_ORDER_WINDOW_SECONDS", "1")
        .start();
    let stop = AtomicBool::new(false);
    let (ready, subscribed) = mpsc::channel();
    let received = std::thread::scope(|scope| {
        let listener = scope.spawn(|| subscribe_to_every_subject(&redis, &stop, ready));
        subscribed
            .recv_timeout(Duration::from_secs(30))
            .expect("subscribed");

        let seller = sign_up(&host, "seller@example.com");
        let buyer = sign_up(&host, "buyer@example.com");
        let paid_ticket = id_of(&create_ticket(&host, &seller, "Paid", 10.0));
        let expired_ticket = id_of(&create_ticket(&host, &seller, "Expired", 10.0));
        let edit = send(
            &host,
            "PUT",
            &format!("/api/tickets/{paid_ticket}"),
            &seller,
            &json!({ "title": "Paid, row 1", "price": 11 }),
        );
        assert_eq!(edit.status, 200, "{}", edit.body);
        let paid_order = id_of(&place(&host, &buyer, &paid_ticket));
        publish_event(
            &redis,
            Event::PaymentCreated(PaymentCreated {
                id: "6b4f2ab8-9273-4e30-b586-b3a292f8f767".to_owned(),
                order_id: paid_order.clone(),
                stripe_id: "pi_test".to_owned(),
                paid_at: None,
            }),
            "1d9a6f4e-2b3c-4d5e-8f7a-0b1c2d3e4f50",
        );
        place(&host, &buyer, &expired_ticket);
        eventually("one ticket sold and the other for sale again", || {
            (ticket(&host, &paid_ticket)["status"] == "sold"
                && ticket(&host, &expired_ticket)["status"] == "available"
                && ticket(&host, &expired_ticket)["version"] == 2)
                .then_some(())
        });
        // The buyer's pass, checked in at the door by the seller.
        let pass_path = format!("/api/tickets/{paid_ticket}/pass");
        let secret = eventually("the buyer's pass", || {
            let reply = host.request_with("GET", &pass_path, &[("cookie", &buyer)], None);
            (reply.status == 200).then(|| reply.json()["secret"].clone())
        });
        let scan = json!({ "secret": secret, "nonce": "door-1" });
        let checked_in = send(&host, "POST", "/api/checkins", &seller, &scan);
        assert_eq!(checked_in.json()["result"], "ok", "{}", checked_in.body);
        // Quiet: the streams stop growing.
        let lengths = || -> Vec<usize> {
            [
                "events:ticket",
                "events:order",
                "events:expiration",
                "events:payment",
                "events:pass",
            ]
            .iter()
            .map(|name| stream(&redis, name).len())
            .collect()
        };
        let mut last = lengths();
        eventually("the streams to stop growing", || {
            std::thread::sleep(Duration::from_millis(300));
            let now = lengths();
            let quiet = now == last;
            last = now;
            quiet.then_some(())
        });
        stop.store(true, Ordering::SeqCst);
        listener.join().expect("listener")
    });

    let mut expected: BTreeMap<(String, String), usize> = BTreeMap::new();
    for name in [
        "events:ticket",
        "events:order",
        "events:expiration",
        "events:payment",
        "events:pass",
    ] {
        let mut connection = redis.client().get_connection().expect("redis");
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(name)
            .arg("-")
            .arg("+")
            .query(&mut connection)
            .expect("XRANGE");
        for (_, fields) in entries {
            let (_, json) = fields.into_iter().next().expect("one field");
            let subject = serde_json::from_str::<Value>(&json).expect("JSON")["subject"]
                .as_str()
                .expect("subject")
                .to_owned();
            *expected.entry((subject, json)).or_default() += 1;
        }
    }
    let mut actual: BTreeMap<(String, String), usize> = BTreeMap::new();
    for message in received {
        *actual.entry(message).or_default() += 1;
    }
    let subjects: BTreeSet<&str> = expected
        .keys()
        .map(|(subject, _)| subject.as_str())
        .collect();
    assert_eq!(
        subjects.into_iter().collect::<Vec<_>>(),
        {
            let mut all = Event::SUBJECTS.to_vec();
            all.sort_unstable();
            all
        },
        "the flow produced every subject"
    );
    assert!(expected.values().all(|count| *count == 1));
    assert_eq!(
        actual, expected,
        "each stream entry once on its subject's channel"
    );
}
