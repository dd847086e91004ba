//! The expiration timer against a real `redis-server` with `notify-keyspace-events Ex`.

use std::time::Duration;

use delivery::{Accepted, NativeRedis, Redis, RedisValue, Sink};
use domain::rfc3339_millis;
use events::{Envelope, Event, OrderCancelled, OrderCreated, OrderStatus, TicketRef};
use expiration_service::{SCHEDULE_KEY, ScheduleOrders, order_key, schedule, sweep, unschedule};
use harness::{RedisServer, eventually};

fn connect(server: &RedisServer) -> NativeRedis {
    NativeRedis::connect(&server.url()).expect("connect to redis")
}

fn redis_now_ms(redis: &NativeRedis) -> u64 {
    match redis.execute("TIME", &[]).expect("TIME").as_slice() {
        [RedisValue::Bytes(secs), RedisValue::Bytes(micros)] => {
            let parse =
                |b: &[u8]| -> u64 { std::str::from_utf8(b).expect("utf-8").parse().expect("n") };
            parse(secs) * 1000 + parse(micros) / 1000
        }
        other => panic!("TIME: {other:?}"),
    }
}

/// The order ids of the `expiration:complete` events in the stream, in stream order.
fn expired_orders(redis: &NativeRedis) -> Vec<String> {
    let reply = redis
        .execute(
            "XRANGE",
            &["events:expiration".into(), "-".into(), "+".into()],
        )
        .expect("XRANGE");
    reply
        .chunks(3)
        .map(|entry| match entry {
            [_, _, RedisValue::Bytes(json)] => {
                match Envelope::from_json(json).expect("envelope").decode() {
                    Ok(Event::ExpirationComplete(expired)) => expired.order_id,
                    other => panic!("unexpected event {other:?}"),
                }
            }
            other => panic!("unexpected entry {other:?}"),
        })
        .collect()
}

fn scheduled(redis: &NativeRedis) -> Vec<RedisValue> {
    redis
        .execute("ZRANGE", &[SCHEDULE_KEY.into(), "0".into(), "-1".into()])
        .expect("ZRANGE")
}

fn exists(redis: &NativeRedis, key: &str) -> bool {
    redis.execute("EXISTS", &[key.into()]).expect("EXISTS") == [RedisValue::Int(1)]
}

#[test]
fn an_order_is_expired_once_its_time_has_come_and_not_before() {
    let server = RedisServer::start();
    let redis = connect(&server);
    let now = redis_now_ms(&redis);
    schedule(&redis, "due", now - 1).expect("schedule");
    schedule(&redis, "later", now + 60_000).expect("schedule");
    assert!(exists(&redis, &order_key("later")));

    let report = sweep(&redis).expect("sweep");
    assert_eq!(report.expired, 1);
    assert_eq!(expired_orders(&redis), ["due"]);
    assert_eq!(scheduled(&redis), [RedisValue::Bytes(b"later".to_vec())]);

    // Sweeping again publishes nothing new.
    assert_eq!(sweep(&redis).expect("sweep").expired, 0);
    assert_eq!(expired_orders(&redis), ["due"]);
}

#[test]
fn the_claimed_envelope_is_published_on_the_subject_channel() {
    let server = RedisServer::start();
    let redis = connect(&server);
    let mut connection = server.client().get_connection().expect("connection");
    let mut pubsub = connection.as_pubsub();
    pubsub.subscribe("expiration:complete").expect("subscribe");
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    schedule(&redis, "o1", redis_now_ms(&redis) - 5).expect("schedule");
    sweep(&redis).expect("sweep");
    let message = pubsub.get_message().expect("a message");
    let payload: Vec<u8> = message.get_payload().expect("payload");
    let envelope = Envelope::from_json(&payload).expect("an envelope");
    assert_eq!(envelope.subject, "expiration:complete");
    assert_eq!(envelope.data["orderId"], "o1");
}

#[test]
fn concurrent_sweeps_expire_each_order_exactly_once() {
    let server = RedisServer::start();
    let redis = connect(&server);
    let now = redis_now_ms(&redis);
    let orders: Vec<String> = (0..300).map(|i| format!("order-{i:03}")).collect();
    for order in &orders {
        schedule(&redis, order, now - 1).expect("schedule");
    }
    let claimed: usize = std::thread::scope(|scope| {
        let sweepers: Vec<_> = (0..4)
            .map(|_| {
                let server = &server;
                scope.spawn(move || sweep(&connect(server)).expect("sweep").expired)
            })
            .collect();
        sweepers
            .into_iter()
            .map(|sweeper| sweeper.join().expect("no panic"))
            .sum()
    });
    assert_eq!(claimed, 300);
    let mut expired = expired_orders(&redis);
    expired.sort();
    assert_eq!(expired, orders);
    assert!(scheduled(&redis).is_empty());
}

#[test]
fn an_unscheduled_order_is_never_expired() {
    let server = RedisServer::start();
    let redis = connect(&server);
    schedule(&redis, "cancelled", redis_now_ms(&redis) + 100).expect("schedule");
    unschedule(&redis, "cancelled").expect("unschedule");
    assert!(!exists(&redis, &order_key("cancelled")));
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(sweep(&redis).expect("sweep").expired, 0);
    assert!(expired_orders(&redis).is_empty());
}

#[test]
fn a_failed_append_leaves_the_order_scheduled_for_the_next_sweep() {
    let server = RedisServer::start();
    let redis = connect(&server);
    schedule(&redis, "o1", redis_now_ms(&redis) - 1).expect("schedule");
    // Something else holds the stream's key: the append fails inside the script.
    redis
        .execute("SET", &["events:expiration".into(), "oops".into()])
        .expect("SET");
    assert!(sweep(&redis).is_err());
    assert_eq!(scheduled(&redis), [RedisValue::Bytes(b"o1".to_vec())]);
    redis
        .execute("DEL", &["events:expiration".into()])
        .expect("DEL");
    assert_eq!(sweep(&redis).expect("sweep").expired, 1);
    assert_eq!(expired_orders(&redis), ["o1"]);
}

#[test]
fn the_order_key_expires_on_time_and_redis_announces_it() {
    let server = RedisServer::start();
    let redis = connect(&server);
    let mut connection = server.client().get_connection().expect("connection");
    let mut pubsub = connection.as_pubsub();
    pubsub
        .subscribe("__keyevent@0__:expired")
        .expect("subscribe");
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let at = redis_now_ms(&redis) + 200;
    schedule(&redis, "o1", at).expect("schedule");
    let message = pubsub.get_message().expect("the key's expiry");
    assert_eq!(
        message.get_payload::<String>().expect("payload"),
        order_key("o1")
    );
    assert!(redis_now_ms(&redis) >= at);
    assert_eq!(sweep(&redis).expect("sweep").expired, 1);
}

fn order_created(id: &str, expires_at_ms: u64) -> Event {
    Event::OrderCreated(OrderCreated {
        id: id.to_owned(),
        user_id: "u1".to_owned(),
        status: OrderStatus::Created,
        version: 0,
        expires_at: rfc3339_millis(expires_at_ms),
        ticket: TicketRef {
            id: "t1".to_owned(),
            price_cents: 100,
        },
        placed_seq: Some(1),
        seller_id: None,
    })
}

fn accept(sink: &ScheduleOrders<'_>, event: Event) -> Accepted {
    let envelope = event.to_envelope("e1", "2026-11-25T00:00:00.000Z");
    sink.accept("expiration", &envelope, &event, 0)
        .expect("accepted")
}

#[test]
fn order_events_schedule_and_unschedule_idempotently() {
    let server = RedisServer::start();
    let redis = connect(&server);
    let sink = ScheduleOrders { redis: &redis };
    let at = redis_now_ms(&redis) + 60_000;
    for _ in 0..2 {
        assert_eq!(accept(&sink, order_created("o1", at)), Accepted::Applied);
    }
    let score = redis
        .execute("ZSCORE", &[SCHEDULE_KEY.into(), "o1".into()])
        .expect("ZSCORE");
    assert_eq!(score, [RedisValue::Bytes(at.to_string().into_bytes())]);
    let cancelled = Event::OrderCancelled(OrderCancelled {
        id: "o1".to_owned(),
        user_id: "u1".to_owned(),
        version: 1,
        ticket: TicketRef {
            id: "t1".to_owned(),
            price_cents: 100,
        },
    });
    for _ in 0..2 {
        assert_eq!(accept(&sink, cancelled.clone()), Accepted::Applied);
    }
    assert!(scheduled(&redis).is_empty());
    assert!(!exists(&redis, &order_key("o1")));
}

#[test]
fn an_order_created_with_a_malformed_expiry_is_refused() {
    let server = RedisServer::start();
    let redis = connect(&server);
    let sink = ScheduleOrders { redis: &redis };
    let mut event = order_created("o1", 0);
    if let Event::OrderCreated(order) = &mut event {
        order.expires_at = "tomorrow".to_owned();
    }
    let envelope = event.to_envelope("e1", "2026-11-25T00:00:00.000Z");
    assert!(sink.accept("expiration", &envelope, &event, 0).is_err());
    assert!(scheduled(&redis).is_empty());
}

#[test]
fn an_order_past_its_time_when_scheduled_is_swept_at_once() {
    let server = RedisServer::start();
    let redis = connect(&server);
    let sink = ScheduleOrders { redis: &redis };
    let past = redis_now_ms(&redis) - 10_000;
    accept(&sink, order_created("late", past));
    eventually("the late order to be swept", || {
        (sweep(&redis).ok()?.expired == 1).then_some(())
    });
    assert_eq!(expired_orders(&redis), ["late"]);
}

/// Appends an event to the order stream as the orders service's relay does; its envelope JSON,
/// which is also the message payload.
fn append_order_event(redis: &NativeRedis, event: Event) -> Vec<u8> {
    let envelope = event.to_envelope(
        domain::EventId::new_random().to_string(),
        "2026-11-25T00:00:00.000Z",
    );
    redis
        .execute(
            "XADD",
            &[
                "events:order".into(),
                "*".into(),
                "event".into(),
                envelope.to_json().into(),
            ],
        )
        .expect("XADD");
    envelope.to_json()
}

fn wake(redis: &NativeRedis, payload: &[u8]) -> expiration_service::WakeReport {
    expiration_service::on_message(
        redis,
        payload,
        delivery::ConsumerSettings::default(),
        5,
        redis_now_ms(redis),
    )
    .expect("wake-up")
}

#[test]
fn an_order_event_message_schedules_and_a_key_expiry_message_expires() {
    let server = RedisServer::start();
    let redis = connect(&server);
    let at = redis_now_ms(&redis) + 300;
    let payload = append_order_event(&redis, order_created("o1", at));
    let report = wake(&redis, &payload);
    assert_eq!(report.consumed.applied, 1);
    assert_eq!(scheduled(&redis), [RedisValue::Bytes(b"o1".to_vec())]);
    assert_eq!(report.swept.expired, 0, "not due yet");

    eventually("the order to be due", || {
        (redis_now_ms(&redis) > at).then_some(())
    });
    let report = wake(&redis, order_key("o1").as_bytes());
    assert_eq!(report.consumed, delivery::ConsumeReport::default());
    assert_eq!(report.swept.expired, 1);
    assert_eq!(expired_orders(&redis), ["o1"]);
}

#[test]
fn the_tick_sweeps_and_re_arms_itself_even_when_reading_the_stream_fails() {
    let server = RedisServer::start();
    let redis = connect(&server);
    schedule(&redis, "due", redis_now_ms(&redis) - 1).expect("schedule");
    // The order stream's key holds something else, so reading it fails.
    redis
        .execute("SET", &["events:order".into(), "oops".into()])
        .expect("SET");
    let failed = expiration_service::on_message(
        &redis,
        delivery::TICK_KEY.as_bytes(),
        delivery::ConsumerSettings::default(),
        5,
        redis_now_ms(&redis),
    );
    assert!(failed.is_err());
    assert_eq!(expired_orders(&redis), ["due"], "swept anyway");
    assert!(exists(&redis, delivery::TICK_KEY), "re-armed anyway");
}
