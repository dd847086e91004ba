//! The tickets consumer run as several replicas at once (as `deploy/` runs it), over a real
//! `redis-server` and one SQLite file, against a stream whose order is not commit order.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api::{Method, Request};
use delivery::{Consumer, ConsumerSettings, DatabaseSink, NativeRedis, Redis};
use domain::{EventId, rfc3339_millis};
use events::{Event, OrderCancelled, OrderCompleted, OrderCreated, OrderStatus, TicketRef};
use harness::RedisServer;
use serde_json::{Value, json};
use session::{SigningKey, TokenSigner, TokenVerifier};
use storage::{Database, NativeDatabase};
use tickets_service::{Clock, MIGRATIONS, TicketsApi, TicketsConfig, TicketsEvents};

const STREAM: &str = "events:order";
const GROUP: &str = "tickets";
const SELLER: &str = "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c";
const BUYER: &str = "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a";
const REPLICAS: usize = 3;
const TICKETS: usize = 20;

fn now_ms() -> u64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(elapsed.as_millis()).expect("fits")
}

struct WallClock;

impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

fn ticket_ref(id: &str) -> TicketRef {
    TicketRef {
        id: id.to_owned(),
        price_cents: 1000,
    }
}

/// The events of order `order`, the `placed_seq`-th order placed.
fn order_events(order: &str, placed_seq: u64, ticket: &str) -> (Event, Event, Event) {
    let created = OrderCreated {
        placed_seq: Some(placed_seq),
        id: order.to_owned(),
        user_id: BUYER.to_owned(),
        status: OrderStatus::Created,
        version: 0,
        expires_at: rfc3339_millis(now_ms() + 60_000),
        ticket: ticket_ref(ticket),
        seller_id: None,
    };
    let cancelled = OrderCancelled {
        id: order.to_owned(),
        user_id: BUYER.to_owned(),
        version: 1,
        ticket: ticket_ref(ticket),
    };
    let completed = OrderCompleted {
        id: order.to_owned(),
        user_id: BUYER.to_owned(),
        version: 1,
        ticket: ticket_ref(ticket),
    };
    (created.into(), cancelled.into(), completed.into())
}

fn append(redis: &NativeRedis, event: Event) {
    let envelope = event.to_envelope(EventId::new_random().to_string(), rfc3339_millis(now_ms()));
    let json = String::from_utf8(envelope.to_json()).expect("UTF-8");
    redis
        .execute(
            "XADD",
            &[
                STREAM.into(),
                "*".into(),
                delivery::EVENT_FIELD.into(),
                json.as_str().into(),
            ],
        )
        .expect("XADD");
}

fn ticket(db: &dyn Database, config: &TicketsConfig, id: &str) -> Value {
    let response = TicketsApi {
        db,
        config,
        clock: &WallClock,
    }
    .handle(&Request::new(Method::Get, &format!("/api/tickets/{id}")));
    assert_eq!(response.status, 200);
    serde_json::from_slice(&response.body).expect("JSON")
}

/// Order A holds each ticket and is cancelled; order B then orders it and pays. A second relay
/// appended B's `order:created` before A's `order:cancelled`, so the stream reads A created,
/// B created, A cancelled, B completed. Three replicas share the consumer group and the
/// database. Every ticket must end sold to B, with nothing dead-lettered and nothing pending.
#[test]
fn replicas_sell_every_ticket_to_the_order_placed_after_the_first_was_cancelled() {
    let redis_server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tickets.db");
    let db = NativeDatabase::open(&path).expect("database");
    storage::migrate(&db, MIGRATIONS).expect("migrations");
    let key = SigningKey::from_seed(&[7; 32]).expect("seed");
    let config = TicketsConfig {
        verifier: TokenVerifier::new(key.verifying_key()),
        resale_cap_percent: 120,
    };
    let token = TokenSigner::new(key, 3600)
        .sign(SELLER, "seller@example.com", now_ms() / 1000)
        .expect("token");

    let redis = NativeRedis::connect(&redis_server.url()).expect("redis");
    let mut tickets = Vec::new();
    for n in 0..TICKETS {
        let response = TicketsApi {
            db: &db,
            config: &config,
            clock: &WallClock,
        }
        .handle(
            &Request::new(Method::Post, "/api/tickets")
                .with_header("content-type", "application/json")
                .with_header("authorization", &format!("Bearer {token}"))
                .with_body(json!({"title": format!("Show {n}"), "price": 10}).to_string()),
        );
        assert_eq!(response.status, 201);
        let created: Value = serde_json::from_slice(&response.body).expect("JSON");
        let id = created["id"].as_str().expect("id").to_owned();
        let placed = 2 * u64::try_from(n).expect("fits");
        let (a_created, a_cancelled, _) = order_events(&format!("a{n}"), placed, &id);
        let (b_created, _, b_completed) = order_events(&format!("b{n}"), placed + 1, &id);
        for event in [a_created, b_created, a_cancelled, b_completed] {
            append(&redis, event);
        }
        tickets.push(id);
    }

    let settings = ConsumerSettings {
        batch: 7,
        retry_idle_ms: 20,
        max_deliveries: 1_000,
        dead_letter_after_ms: 600_000,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|scope| {
        for _ in 0..REPLICAS {
            scope.spawn(|| {
                let db = NativeDatabase::open(&path).expect("a replica's connection");
                let redis = NativeRedis::connect(&redis_server.url()).expect("redis");
                let consumer = Consumer {
                    redis: &redis,
                    stream: STREAM,
                    group: GROUP,
                    settings,
                };
                let sink = DatabaseSink {
                    db: &db,
                    handler: &TicketsEvents,
                };
                loop {
                    let report = consumer.run(&sink, now_ms()).expect("a wake-up");
                    assert_eq!(report.dead_lettered, 0, "{report:?}");
                    let pending = redis
                        .execute("XPENDING", &[STREAM.into(), GROUP.into()])
                        .expect("XPENDING");
                    let settled = matches!(pending.first(), Some(delivery::RedisValue::Int(0)));
                    if settled && report == delivery::ConsumeReport::default() {
                        return;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the replicas did not settle: {report:?}, pending {pending:?}"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
    });

    for (n, id) in tickets.iter().enumerate() {
        let shown = ticket(&db, &config, id);
        assert_eq!(
            (shown["status"].clone(), shown["orderId"].clone()),
            (json!("sold"), json!(format!("b{n}"))),
            "ticket {n}: {shown}"
        );
        // Reserved and released for A, then reserved and sold for B; or, when B's reservation
        // came first, A's is stale and B's two changes are all.
        assert!(
            [json!(2), json!(4)].contains(&shown["version"]),
            "ticket {n}: {shown}"
        );
    }
}
