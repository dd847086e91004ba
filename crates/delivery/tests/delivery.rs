//! The outbox, relay and consumers against a real SQLite file and a real `redis-server`.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use delivery::{
    Applied, ConsumeReport, Consumer, ConsumerSettings, DatabaseSink, DeliveryError, Handler,
    NativeRedis, Redis, RedisArg, RedisError, RedisValue, TICK_KEY, VERIFY_AFTER_MS, VerifyReport,
    VersionCheck, arm_tick, check_replica_version, dead_letter_stream, enqueue_envelope,
    record_acknowledged, record_replica_version, relay, resend_after_data_loss, verify_sent,
};
use events::{Envelope, Event, TicketCreated, TicketStatus, TicketUpdated};
use harness::{RedisServer, eventually};
use storage::{Database, NativeDatabase, SqlValue};

const STREAM: &str = "events:ticket";
const GROUP: &str = "orders";

fn now_ms() -> u64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(elapsed.as_millis()).expect("fits")
}

/// A service's database file and a Redis server, with named calls for what the tests do.
struct TestApp {
    _dir: tempfile::TempDir,
    path: PathBuf,
    redis_server: Option<RedisServer>,
    port: u16,
    next_event: Cell<u32>,
}

impl TestApp {
    fn spawn() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("service.db");
        let redis_server = RedisServer::start();
        let app = Self {
            _dir: dir,
            path,
            port: redis_server.port,
            redis_server: Some(redis_server),
            next_event: Cell::new(0),
        };
        let db = app.db();
        delivery::create_schema(&db).expect("schema");
        db.execute(
            "CREATE TABLE replica_tickets (id TEXT PRIMARY KEY, title TEXT NOT NULL, \
             version INTEGER NOT NULL, applications INTEGER NOT NULL)",
            &[],
        )
        .expect("replica table");
        app
    }

    /// A new connection to the database file, as each component instance opens its own.
    fn db(&self) -> NativeDatabase {
        NativeDatabase::open(&self.path).expect("open database")
    }

    fn redis(&self) -> NativeRedis {
        NativeRedis::connect(&self.url()).expect("connect to redis")
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop_redis(&mut self) {
        drop(self.redis_server.take());
    }

    fn restart_redis(&mut self) {
        self.redis_server = Some(RedisServer::start_on(self.port));
    }

    fn envelope(&self, event: impl Into<Event>) -> Envelope {
        let n = self.next_event.get() + 1;
        self.next_event.set(n);
        event.into().to_envelope(
            format!("00000000-0000-4000-8000-{n:012}"),
            "2024-05-01T12:00:00.000Z",
        )
    }

    fn created(&self, id: &str, title: &str) -> Envelope {
        self.envelope(TicketCreated {
            id: id.into(),
            title: title.into(),
            price_cents: 2050,
            user_id: "u1".into(),
            version: 0,
        })
    }

    fn updated(&self, id: &str, title: &str, version: u64) -> Envelope {
        self.envelope(TicketUpdated {
            id: id.into(),
            title: title.into(),
            price_cents: 2050,
            user_id: "u1".into(),
            version,
            order_id: None,
            status: TicketStatus::Available,
            listing: None,
        })
    }

    /// Commits the envelopes to the outbox, each in its own transaction as a request would.
    fn enqueue(&self, envelopes: &[Envelope]) {
        commit_each(&self.db(), envelopes);
    }

    /// Commits the envelopes on a thread that ends without relaying them, as an instance that
    /// died after its commits: the rows wait out the lease they were born with.
    fn enqueue_and_abandon(&self, envelopes: &[Envelope]) {
        let db = self.db();
        std::thread::scope(|scope| {
            scope.spawn(move || commit_each(&db, envelopes));
        });
    }

    /// Commits and relays the envelopes, in this order.
    fn enqueue_and_relay(&self, envelopes: &[Envelope]) {
        self.enqueue(envelopes);
        let (db, redis) = (self.db(), self.redis());
        while relay(&db, &redis, now_ms(), 100).expect("relay").remaining {}
    }

    /// The values of a stream's entries, in stream order, checking each has the one `field`.
    fn entry_values(&self, stream: &str, field: &[u8]) -> Vec<Vec<u8>> {
        let reply = self
            .redis()
            .execute("XRANGE", &[stream.into(), "-".into(), "+".into()])
            .expect("XRANGE");
        reply
            .chunks(3)
            .map(|entry| match entry {
                [
                    RedisValue::Bytes(_),
                    RedisValue::Bytes(name),
                    RedisValue::Bytes(value),
                ] => {
                    assert_eq!(name, field);
                    value.clone()
                }
                other => panic!("unexpected entry in {stream}: {other:?}"),
            })
            .collect()
    }

    /// The event ids in the stream, in stream order.
    fn stream_event_ids(&self) -> Vec<String> {
        self.entry_values(STREAM, b"event")
            .iter()
            .map(|json| Envelope::from_json(json).expect("an envelope").id)
            .collect()
    }

    /// The ids of the entries on [`STREAM`], oldest first.
    fn stream_entry_ids(&self) -> Vec<String> {
        let mut connection = redis::Client::open(self.url())
            .and_then(|client| client.get_connection())
            .expect("a connection");
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(STREAM)
            .arg("-")
            .arg("+")
            .query(&mut connection)
            .expect("XRANGE");
        entries.into_iter().map(|(id, _)| id).collect()
    }

    fn unsent(&self) -> i64 {
        self.count("SELECT count(*) AS n FROM outbox WHERE sent_at_ms IS NULL")
    }

    fn count(&self, sql: &str) -> i64 {
        count(&self.db(), sql)
    }

    /// `(title, version, applications)` of a replicated ticket.
    fn replica(&self, id: &str) -> Option<(String, i64, i64)> {
        let rows = self
            .db()
            .execute(
                "SELECT title, version, applications FROM replica_tickets WHERE id = ?",
                &[id.into()],
            )
            .expect("select replica");
        rows.first().map(|row| {
            (
                row.text("title").expect("title").to_owned(),
                row.integer("version").expect("version"),
                row.integer("applications").expect("applications"),
            )
        })
    }

    fn consume(&self, handler: &dyn Handler, settings: ConsumerSettings) -> ConsumeReport {
        let (db, redis) = (self.db(), self.redis());
        Consumer {
            redis: &redis,
            stream: STREAM,
            group: GROUP,
            settings,
        }
        .run(&DatabaseSink { db: &db, handler }, now_ms())
        .expect("consumer run")
    }

    /// A wake-up by the stream's own message (the hot path) rather than by housekeeping.
    fn consume_message(&self, handler: &dyn Handler, settings: ConsumerSettings) -> ConsumeReport {
        let (db, redis) = (self.db(), self.redis());
        Consumer {
            redis: &redis,
            stream: STREAM,
            group: GROUP,
            settings,
        }
        .run_on_message(&DatabaseSink { db: &db, handler }, now_ms())
        .expect("consumer run on a message")
    }

    /// How many entries the group has delivered and not acknowledged.
    fn pending(&self) -> i64 {
        let reply = self
            .redis()
            .execute("XPENDING", &[STREAM.into(), GROUP.into()])
            .expect("XPENDING");
        match reply.first() {
            Some(RedisValue::Int(count)) => *count,
            other => panic!("unexpected XPENDING summary {other:?}"),
        }
    }

    /// The JSON records in the group's dead-letter stream.
    fn dead_letters(&self) -> Vec<serde_json::Value> {
        self.entry_values(&dead_letter_stream(STREAM, GROUP), b"entry")
            .iter()
            .map(|json| serde_json::from_slice(json).expect("a JSON record"))
            .collect()
    }
}

/// Commits each envelope to `db`'s outbox in a transaction of its own.
fn commit_each(db: &NativeDatabase, envelopes: &[Envelope]) {
    for envelope in envelopes {
        storage::transaction(db, |tx| enqueue_envelope(tx, envelope, now_ms())).expect("enqueue");
    }
}

fn count(db: &dyn Database, sql: &str) -> i64 {
    db.execute(sql, &[])
        .expect("count")
        .first()
        .expect("a row")
        .integer("n")
        .expect("an integer")
}

/// A tickets replica as a consuming service keeps one: version-gated, counting applications.
struct ReplicaHandler;

impl Handler for ReplicaHandler {
    fn apply(
        &self,
        tx: &dyn Database,
        _envelope: &Envelope,
        event: &Event,
        _now_ms: u64,
    ) -> anyhow::Result<Applied> {
        let (id, title, version) = match event {
            Event::TicketCreated(ticket) => (&ticket.id, &ticket.title, ticket.version),
            Event::TicketUpdated(ticket) => (&ticket.id, &ticket.title, ticket.version),
            _ => return Ok(Applied::Done),
        };
        match check_replica_version(tx, "ticket", id, version)? {
            VersionCheck::AlreadyApplied => return Ok(Applied::Done),
            VersionCheck::NotYet { have } => {
                return Ok(Applied::NotYet(format!(
                    "ticket {id} is at {have:?}, event is version {version}"
                )));
            }
            VersionCheck::Apply => {}
        }
        tx.execute(
            "INSERT INTO replica_tickets (id, title, version, applications) VALUES (?, ?, ?, 1) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, version = excluded.version, \
             applications = applications + 1",
            &[id.into(), title.into(), SqlValue::from_u64(version)?],
        )?;
        record_replica_version(tx, "ticket", id, version)?;
        Ok(Applied::Done)
    }
}

/// Fails every event of one ticket, and replicates the others.
struct FailsFor(&'static str);

impl Handler for FailsFor {
    fn apply(
        &self,
        tx: &dyn Database,
        envelope: &Envelope,
        event: &Event,
        now_ms: u64,
    ) -> anyhow::Result<Applied> {
        if let Event::TicketCreated(ticket) = event
            && ticket.id == self.0
        {
            anyhow::bail!("the replica refuses ticket {}", ticket.id);
        }
        ReplicaHandler.apply(tx, envelope, event, now_ms)
    }
}

fn quick_dead_letters() -> ConsumerSettings {
    ConsumerSettings {
        retry_idle_ms: 0,
        max_deliveries: 3,
        dead_letter_after_ms: 0,
        ..ConsumerSettings::default()
    }
}

#[test]
fn relaying_sends_each_event_once_in_commit_order_and_marks_it_sent() {
    let app = TestApp::spawn();
    let envelopes = [
        app.created("t1", "Concert"),
        app.created("t2", "Opera"),
        app.updated("t1", "Concert, row 1", 1),
    ];
    app.enqueue(&envelopes);
    assert_eq!(app.unsent(), 3);

    let (db, redis) = (app.db(), app.redis());
    let report = relay(&db, &redis, now_ms(), 2).expect("relay");
    assert_eq!((report.sent, report.remaining), (2, true));
    let report = relay(&db, &redis, now_ms(), 2).expect("relay");
    assert_eq!((report.sent, report.remaining), (1, false));
    let report = relay(&db, &redis, now_ms(), 2).expect("relay");
    assert_eq!((report.sent, report.remaining), (0, false));

    let ids: Vec<String> = envelopes.iter().map(|e| e.id.clone()).collect();
    assert_eq!(app.stream_event_ids(), ids);
    assert_eq!(app.unsent(), 0);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM outbox WHERE claimed_until_ms IS NOT NULL"),
        0
    );
}

#[test]
fn relaying_publishes_each_envelope_once_on_the_channel_of_its_subject() {
    let app = TestApp::spawn();
    let server = app.redis_server.as_ref().expect("running");
    let mut connection = server.client().get_connection().expect("connection");
    let mut pubsub = connection.as_pubsub();
    pubsub.subscribe("ticket:created").expect("subscribe");
    pubsub.subscribe("ticket:updated").expect("subscribe");
    pubsub.subscribe(STREAM).expect("subscribe");
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .expect("timeout");
    let envelopes = [
        app.created("t1", "Concert"),
        app.updated("t1", "Concert, row 1", 1),
        app.created("t2", "Opera"),
    ];
    app.enqueue_and_relay(&envelopes);
    let mut received = Vec::new();
    while let Ok(message) = pubsub.get_message() {
        received.push((
            message.get_channel_name().to_owned(),
            message.get_payload::<Vec<u8>>().expect("payload"),
        ));
    }
    let expected: Vec<(String, Vec<u8>)> = envelopes
        .iter()
        .map(|envelope| (envelope.subject.clone(), envelope.to_json()))
        .collect();
    assert_eq!(received, expected, "one message per event, in commit order");
    // The payload is the envelope exactly as the stream holds it.
    let stored = app.entry_values(STREAM, b"event");
    assert_eq!(
        stored,
        expected
            .into_iter()
            .map(|(_, json)| json)
            .collect::<Vec<_>>()
    );
}

/// Forwards to a real connection, but stops the server just before the `XADD` numbered `stop_at`.
struct StopsRedisAtXadd<'a> {
    inner: NativeRedis,
    app: RefCell<&'a mut TestApp>,
    xadds: Cell<usize>,
    stop_at: usize,
}

impl Redis for StopsRedisAtXadd<'_> {
    fn execute(&self, command: &str, args: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError> {
        if command == "XADD" {
            self.xadds.set(self.xadds.get() + 1);
            if self.xadds.get() == self.stop_at {
                self.app.borrow_mut().stop_redis();
            }
        }
        self.inner.execute(command, args)
    }

    fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), RedisError> {
        self.inner.publish(channel, payload)
    }
}

#[test]
fn rows_stay_unsent_while_redis_is_down_and_are_relayed_once_it_is_back() {
    let mut app = TestApp::spawn();
    let envelopes: Vec<Envelope> = (0..5)
        .map(|n| app.created(&format!("t{n}"), "Concert"))
        .collect();
    app.enqueue(&envelopes);

    let db = app.db();
    let inner = app.redis();
    let flaky = StopsRedisAtXadd {
        inner,
        app: RefCell::new(&mut app),
        xadds: Cell::new(0),
        stop_at: 3,
    };
    let error = relay(&db, &flaky, now_ms(), 100).expect_err("redis went away");
    assert!(matches!(error, DeliveryError::Redis(_)), "{error}");
    let inner = flaky.inner;

    // The two appended before the stop are sent; the rest are unsent and free for the next relay.
    assert_eq!(app.unsent(), 3);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM outbox WHERE claimed_until_ms IS NOT NULL"),
        0
    );
    assert!(relay(&db, &inner, now_ms(), 100).is_err(), "still down");
    assert_eq!(app.unsent(), 3);

    app.restart_redis();
    let report = relay(&db, &inner, now_ms(), 100).expect("relay after restart");
    assert_eq!((report.sent, report.remaining), (3, false));
    assert_eq!(app.unsent(), 0);
    // The restarted server kept no data, so its stream holds exactly the rows that waited.
    let waited: Vec<String> = envelopes[2..].iter().map(|e| e.id.clone()).collect();
    assert_eq!(app.stream_event_ids(), waited);
}

#[test]
fn everything_kept_is_sent_again_once_when_redis_comes_back_without_its_data() {
    let mut app = TestApp::spawn();
    let envelopes = [app.created("t1", "Concert"), app.created("t2", "Opera")];
    app.enqueue(&envelopes);
    let (db, redis) = (app.db(), app.redis());
    // The first check records this Redis's epoch (and, knowing none before, sends all again).
    resend_after_data_loss(&db, &redis, "epoch-1").expect("first check");
    relay(&db, &redis, now_ms(), 10).expect("relay");
    assert_eq!(
        resend_after_data_loss(&db, &redis, "epoch-2").expect("same Redis"),
        0
    );
    let ids: Vec<String> = envelopes.iter().map(|e| e.id.clone()).collect();
    assert_eq!(app.stream_event_ids(), ids);

    // Redis restarts empty: the stream and its entries are gone, the outbox says "sent".
    app.stop_redis();
    app.restart_redis();
    let redis = app.redis();
    assert!(app.stream_event_ids().is_empty());
    assert_eq!(app.unsent(), 0);
    assert_eq!(
        resend_after_data_loss(&db, &redis, "epoch-3").expect("a new epoch"),
        2
    );
    relay(&db, &redis, now_ms(), 10).expect("relay");
    assert_eq!(app.stream_event_ids(), ids, "all of it, in commit order");
    // Once: the next check finds the epoch it recorded.
    assert_eq!(
        resend_after_data_loss(&db, &redis, "epoch-4").expect("again"),
        0
    );
    assert_eq!(app.unsent(), 0);
}

/// After Redis lost its data, only what a consumer group had not acknowledged is sent again, not
/// everything the outbox keeps; and a group that has read nothing holds the watermark back.
#[test]
fn only_what_a_group_had_not_acknowledged_is_sent_again_after_redis_lost_its_data() {
    let mut app = TestApp::spawn();
    let applied: Vec<Envelope> = (0..10)
        .map(|n| app.created(&format!("a{n}"), "Concert"))
        .collect();
    app.enqueue(&applied);
    let (db, redis) = (app.db(), app.redis());
    resend_after_data_loss(&db, &redis, "epoch-1").expect("first check");
    relay(&db, &redis, now_ms(), 100).expect("relay");
    assert_eq!(
        app.consume(&ReplicaHandler, ConsumerSettings::default())
            .applied,
        10
    );
    // Five more, sent but not read yet by the group when Redis goes.
    let in_flight: Vec<Envelope> = (0..5)
        .map(|n| app.created(&format!("f{n}"), "Opera"))
        .collect();
    app.enqueue(&in_flight);
    relay(&db, &redis, now_ms(), 100).expect("relay");
    let report = verify_sent(&db, &redis, now_ms() + VERIFY_AFTER_MS).expect("verify");
    assert_eq!(report.verified, 15);
    assert_eq!(record_acknowledged(&db, &redis).expect("record"), Some(10));

    app.stop_redis();
    app.restart_redis();
    let redis = app.redis();
    assert_eq!(
        resend_after_data_loss(&db, &redis, "epoch-2").expect("a new epoch"),
        5
    );
    relay(&db, &redis, now_ms(), 100).expect("relay");
    let ids: Vec<String> = in_flight.iter().map(|e| e.id.clone()).collect();
    assert_eq!(
        app.stream_event_ids(),
        ids,
        "the five in flight, in commit order"
    );
    assert_eq!(
        app.consume(&ReplicaHandler, ConsumerSettings::default())
            .applied,
        5
    );

    // A second group that has read nothing: nothing is acknowledged by every group.
    verify_sent(&db, &redis, now_ms() + 2 * VERIFY_AFTER_MS).expect("verify");
    redis
        .execute(
            "XGROUP",
            &["CREATE".into(), STREAM.into(), "late".into(), "0".into()],
        )
        .expect("XGROUP CREATE");
    assert_eq!(record_acknowledged(&db, &redis).expect("record"), Some(10));
    redis
        .execute("XGROUP", &["DESTROY".into(), STREAM.into(), "late".into()])
        .expect("XGROUP DESTROY");
    assert_eq!(record_acknowledged(&db, &redis).expect("record"), Some(15));
}

/// Redis fsyncs its append-only file once a second: a crash loses the entries of the last second
/// while the epoch, written long before, survives. Housekeeping finds the lost entries by their
/// ids and sends their rows again; entries that survived are not sent twice.
#[test]
fn entries_a_redis_crash_lost_after_acknowledging_them_are_sent_again() {
    let app = TestApp::spawn();
    let envelopes: Vec<Envelope> = (0..5)
        .map(|n| app.created(&format!("t{n}"), "Concert"))
        .collect();
    app.enqueue(&envelopes);
    let (db, redis) = (app.db(), app.redis());
    resend_after_data_loss(&db, &redis, "epoch-1").expect("first check");
    let sent_at = now_ms();
    relay(&db, &redis, sent_at, 10).expect("relay");
    let ids: Vec<String> = envelopes.iter().map(|e| e.id.clone()).collect();
    assert_eq!(app.stream_event_ids(), ids);

    // The crash: the last two entries never reached the disk.
    for entry in &app.stream_entry_ids()[3..] {
        redis
            .execute("XDEL", &[STREAM.into(), entry.as_str().into()])
            .expect("XDEL");
    }
    assert_eq!(app.stream_event_ids(), ids[..3]);

    // Housekeeping, as on every tick: the epoch is the same, so only the entry check can tell.
    let housekeeping = |now: u64| {
        assert_eq!(
            resend_after_data_loss(&db, &redis, "epoch-2").expect("same Redis"),
            0
        );
        let report = verify_sent(&db, &redis, now).expect("verify");
        relay(&db, &redis, now, 10).expect("relay");
        report
    };
    // Too soon to tell: an entry younger than the fsync interval is not checked yet.
    assert_eq!(housekeeping(sent_at).resent, 0);
    let report = housekeeping(sent_at + VERIFY_AFTER_MS);
    assert_eq!((report.verified, report.resent), (3, 2));
    let mut expected = ids[..3].to_vec();
    expected.extend_from_slice(&ids[3..]);
    assert_eq!(app.stream_event_ids(), expected, "the lost two, once each");
    // The re-sent rows are checked in turn, found, and never sent again.
    let later = now_ms() + 2 * VERIFY_AFTER_MS;
    assert_eq!(
        housekeeping(later),
        VerifyReport {
            verified: 2,
            resent: 0
        }
    );
    assert_eq!(
        housekeeping(later + VERIFY_AFTER_MS),
        VerifyReport::default()
    );
    assert_eq!(app.stream_event_ids().len(), 5);
    assert_eq!(app.unsent(), 0);
}

/// Entries lost in a crash, then entries appended once Redis is back, all checked on one tick:
/// the newer entries survived, which says nothing of the lost ones before them.
#[test]
fn entries_lost_before_a_restart_are_found_behind_entries_sent_after_it() {
    let app = TestApp::spawn();
    let before: Vec<Envelope> = (0..4)
        .map(|n| app.created(&format!("b{n}"), "Concert"))
        .collect();
    app.enqueue(&before);
    let (db, redis) = (app.db(), app.redis());
    resend_after_data_loss(&db, &redis, "epoch-1").expect("first check");
    let sent_at = now_ms();
    relay(&db, &redis, sent_at, 10).expect("relay");
    // The crash drops the last two entries; Redis comes back and more events are sent.
    let lost: Vec<String> = app.stream_entry_ids()[2..].to_vec();
    for entry in &lost {
        redis
            .execute("XDEL", &[STREAM.into(), entry.as_str().into()])
            .expect("XDEL");
    }
    let after: Vec<Envelope> = (0..3)
        .map(|n| app.created(&format!("a{n}"), "Concert"))
        .collect();
    app.enqueue(&after);
    relay(&db, &redis, sent_at + 1, 10).expect("relay after the restart");
    assert_eq!(app.stream_event_ids().len(), 5);

    let report = verify_sent(&db, &redis, sent_at + 1 + VERIFY_AFTER_MS).expect("verify");
    assert_eq!((report.verified, report.resent), (5, 2));
    relay(&db, &redis, sent_at + 2 + VERIFY_AFTER_MS, 10).expect("relay");
    let mut on_stream = app.stream_event_ids();
    on_stream.sort();
    let mut expected: Vec<String> = before.iter().chain(&after).map(|e| e.id.clone()).collect();
    expected.sort();
    assert_eq!(on_stream, expected, "every event on the stream, once");
}

#[test]
fn two_relays_at_once_send_every_event_exactly_once() {
    let app = TestApp::spawn();
    let envelopes: Vec<Envelope> = (0..200)
        .map(|n| app.created(&format!("t{n}"), "Concert"))
        .collect();
    app.enqueue_and_abandon(&envelopes);
    let after_the_lease = now_ms() + delivery::RELAY_LEASE_MS;

    let sent: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (db, redis) = (app.db(), app.redis());
                scope.spawn(move || {
                    let mut sent = 0;
                    loop {
                        let report = relay(&db, &redis, after_the_lease, 10).expect("relay");
                        sent += report.sent;
                        if !report.remaining {
                            return sent;
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("relay thread"))
            .sum()
    });

    assert_eq!(sent, 200);
    assert_eq!(app.unsent(), 0);
    let streamed = app.stream_event_ids();
    assert_eq!(streamed.len(), 200, "no event sent twice");
    let streamed: HashSet<String> = streamed.into_iter().collect();
    let expected: HashSet<String> = envelopes.into_iter().map(|e| e.id).collect();
    assert_eq!(streamed, expected, "no event lost");
}

#[test]
fn a_row_is_born_leased_to_its_writer_and_goes_out_with_a_later_relay_once_the_writer_died() {
    let app = TestApp::spawn();
    let (db, redis) = (app.db(), app.redis());
    let abandoned = app.created("t1", "Concert");
    app.enqueue_and_abandon(std::slice::from_ref(&abandoned));

    let report = relay(&db, &redis, now_ms(), 10).expect("relay");
    assert_eq!(
        report.sent, 0,
        "another relay leaves a row its writer still holds"
    );
    let report = relay(&db, &redis, now_ms() + delivery::RELAY_LEASE_MS, 10).expect("relay");
    assert_eq!((report.sent, report.remaining), (1, false));
    assert_eq!(app.stream_event_ids(), [abandoned.id]);
    assert_eq!(app.unsent(), 0);
}

#[test]
fn rows_a_request_released_for_want_of_redis_go_out_with_the_next_relay_at_once() {
    let app = TestApp::spawn();
    let db = app.db();
    let created = app.created("t1", "Concert");
    app.enqueue(std::slice::from_ref(&created));
    delivery::release_enqueued(&db).expect("release");
    assert!(!delivery::has_enqueued());

    // Another instance's relay, before the lease the row was born with would have ended.
    let (other_db, other_redis) = (app.db(), app.redis());
    let report = std::thread::scope(|scope| {
        scope
            .spawn(move || relay(&other_db, &other_redis, now_ms(), 10).expect("relay"))
            .join()
            .expect("relay thread")
    });
    assert_eq!((report.sent, report.remaining), (1, false));
    assert_eq!(app.stream_event_ids(), [created.id]);
}

#[test]
fn a_relay_sends_what_its_own_thread_enqueued_and_nothing_whose_transaction_rolled_back() {
    let app = TestApp::spawn();
    let (db, redis) = (app.db(), app.redis());
    let kept = app.created("t1", "Concert");
    let rolled_back = app.created("t2", "Opera");
    app.enqueue(std::slice::from_ref(&kept));
    let outcome: Result<(), DeliveryError> = storage::transaction(&db, |tx| {
        enqueue_envelope(tx, &rolled_back, now_ms())?;
        Err(DeliveryError::Protocol(
            "the request failed after enqueueing".to_owned(),
        ))
    });
    assert!(outcome.is_err());
    // Written after the rollback, it may take the seq the rolled-back row had.
    let after = app.created("t3", "Ballet");
    app.enqueue(std::slice::from_ref(&after));

    let report = relay(&db, &redis, now_ms(), 10).expect("relay");
    assert_eq!((report.sent, report.remaining), (2, false));
    assert_eq!(app.stream_event_ids(), [kept.id, after.id]);
    assert!(!delivery::has_enqueued());
}

#[test]
fn a_relay_that_finds_nothing_to_claim_does_not_wait_for_the_write_lock() {
    let app = TestApp::spawn();
    let redis = app.redis();
    app.enqueue_and_relay(&[app.created("t1", "Concert")]);
    let writer = app.db();
    writer
        .execute("BEGIN IMMEDIATE", &[])
        .expect("take the write lock");
    let db = app
        .db()
        .with_busy_timeout(std::time::Duration::from_millis(50));

    let report = relay(&db, &redis, now_ms(), 10).expect("a relay that only reads");

    assert_eq!((report.sent, report.remaining), (0, false));
    writer.execute("ROLLBACK", &[]).expect("rollback");
}

#[test]
fn a_consumer_applies_acknowledges_and_ignores_a_duplicated_event() {
    let app = TestApp::spawn();
    let created = app.created("t1", "Concert");
    app.enqueue_and_relay(std::slice::from_ref(&created));

    let report = app.consume(&ReplicaHandler, ConsumerSettings::default());
    assert_eq!(report.applied, 1);
    assert_eq!(app.replica("t1"), Some(("Concert".into(), 0, 1)));
    assert_eq!(app.pending(), 0);

    // The same event id appended again, as a relay that died before marking its row sent does.
    app.redis()
        .execute(
            "XADD",
            &[
                STREAM.into(),
                "*".into(),
                "event".into(),
                created.to_json().as_slice().into(),
            ],
        )
        .expect("XADD");
    let report = app.consume(&ReplicaHandler, ConsumerSettings::default());
    assert_eq!(
        report,
        ConsumeReport {
            duplicates: 1,
            ..ConsumeReport::default()
        }
    );
    assert_eq!(app.replica("t1"), Some(("Concert".into(), 0, 1)));
    assert_eq!(app.pending(), 0);
    assert_eq!(app.count("SELECT count(*) AS n FROM processed_events"), 1);
}

#[test]
fn a_new_group_sees_the_whole_history_of_its_stream() {
    let app = TestApp::spawn();
    app.enqueue_and_relay(&[app.created("t1", "Concert"), app.created("t2", "Opera")]);
    let report = app.consume(&ReplicaHandler, ConsumerSettings::default());
    assert_eq!(report.applied, 2);
}

#[test]
fn a_successor_published_before_its_predecessor_is_applied_in_the_same_wake_up() {
    let app = TestApp::spawn();
    let created = app.created("t1", "Concert");
    let first = app.updated("t1", "Concert, row 1", 1);
    let second = app.updated("t1", "Concert, row 2", 2);
    app.enqueue_and_relay(&[second, first, created]);

    let report = app.consume(&ReplicaHandler, ConsumerSettings::default());
    assert_eq!(
        report,
        ConsumeReport {
            applied: 3,
            ..ConsumeReport::default()
        }
    );
    assert_eq!(app.replica("t1"), Some(("Concert, row 2".into(), 2, 3)));
    assert_eq!(app.pending(), 0);
}

#[test]
fn a_successor_waiting_from_an_earlier_wake_up_is_applied_when_its_predecessor_arrives() {
    let app = TestApp::spawn();
    let created = app.created("t1", "Concert");
    let updated = app.updated("t1", "Concert, row 1", 1);

    app.enqueue_and_relay(std::slice::from_ref(&updated));
    let report = app.consume(&ReplicaHandler, ConsumerSettings::default());
    assert_eq!(report.not_yet, 1);
    assert_eq!(app.replica("t1"), None);
    assert_eq!(app.pending(), 1);

    // The predecessor's own wake-up follows at once, well inside the usual retry idle time.
    app.enqueue_and_relay(std::slice::from_ref(&created));
    let report = app.consume(&ReplicaHandler, ConsumerSettings::default());
    assert_eq!(report.applied, 2);
    assert_eq!(app.replica("t1"), Some(("Concert, row 1".into(), 1, 2)));
    assert_eq!(app.pending(), 0);
}

#[test]
fn an_aggregate_waiting_for_its_predecessor_does_not_block_other_aggregates() {
    let app = TestApp::spawn();
    let _lost = app.created("t1", "Concert");
    app.enqueue_and_relay(&[
        app.updated("t1", "Concert, row 1", 1),
        app.created("t2", "Opera"),
        app.created("t3", "Ballet"),
    ]);

    let report = app.consume(&ReplicaHandler, ConsumerSettings::default());
    assert_eq!((report.applied, report.not_yet), (2, 1));
    assert_eq!(app.replica("t1"), None);
    assert_eq!(app.replica("t2"), Some(("Opera".into(), 0, 1)));
    assert_eq!(app.replica("t3"), Some(("Ballet".into(), 0, 1)));
    assert_eq!(app.pending(), 1);
}

#[test]
fn an_entry_that_always_fails_is_dead_lettered_after_its_tries_and_others_still_flow() {
    let app = TestApp::spawn();
    let poisoned = app.created("t1", "Concert");
    app.enqueue_and_relay(&[poisoned.clone(), app.created("t2", "Opera")]);

    let handler = FailsFor("t1");
    let report = app.consume(&handler, quick_dead_letters());
    assert_eq!((report.applied, report.failed), (1, 1));
    assert_eq!(app.replica("t2"), Some(("Opera".into(), 0, 1)));

    let report = app.consume(&handler, quick_dead_letters());
    assert_eq!((report.failed, report.dead_lettered), (1, 0));
    // Meanwhile new events keep flowing.
    app.enqueue_and_relay(&[app.created("t3", "Ballet")]);
    let report = app.consume(&handler, quick_dead_letters());
    assert_eq!((report.applied, report.dead_lettered), (1, 1));
    assert_eq!(app.replica("t3"), Some(("Ballet".into(), 0, 1)));
    assert_eq!(app.pending(), 0);

    let dead = app.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["group"], GROUP);
    assert_eq!(dead[0]["deliveries"], 3);
    assert!(
        dead[0]["reason"]
            .as_str()
            .expect("a reason")
            .contains("refuses ticket t1"),
        "{}",
        dead[0]
    );
    let event = dead[0]["event"].as_str().expect("the envelope as a string");
    assert_eq!(
        Envelope::from_json(event.as_bytes()).expect("an envelope"),
        poisoned
    );
    assert!(dead[0]["entryId"].as_str().expect("an id").contains('-'));
}

#[test]
fn an_entry_that_fails_is_kept_until_it_is_also_old_enough_to_dead_letter() {
    let app = TestApp::spawn();
    app.enqueue_and_relay(&[app.created("t1", "Concert")]);
    let settings = ConsumerSettings {
        dead_letter_after_ms: 3_600_000,
        ..quick_dead_letters()
    };
    for _ in 0..5 {
        let report = app.consume(&FailsFor("t1"), settings);
        assert_eq!((report.failed, report.dead_lettered), (1, 0));
    }
    assert_eq!(app.pending(), 1);
    assert!(app.dead_letters().is_empty());
}

#[test]
fn an_undecodable_entry_is_dead_lettered() {
    let app = TestApp::spawn();
    let redis = app.redis();
    for body in [
        &b"not json"[..],
        br#"{"id":"x","subject":"ticket:exploded","occurredAt":"","data":{}}"#,
    ] {
        redis
            .execute(
                "XADD",
                &[STREAM.into(), "*".into(), "event".into(), body.into()],
            )
            .expect("XADD");
    }
    redis
        .execute(
            "XADD",
            &[STREAM.into(), "*".into(), "name".into(), "x".into()],
        )
        .expect("XADD");
    app.enqueue_and_relay(&[app.created("t1", "Concert")]);

    let mut dead_lettered = 0;
    for _ in 0..3 {
        let report = app.consume(&ReplicaHandler, quick_dead_letters());
        dead_lettered += report.dead_lettered;
    }
    assert_eq!(dead_lettered, 3);
    assert_eq!(app.replica("t1"), Some(("Concert".into(), 0, 1)));
    assert_eq!(app.pending(), 0);
    let dead = app.dead_letters();
    assert_eq!(dead.len(), 3);
    assert_eq!(dead[0]["event"], "not json");
    assert!(
        dead[1]["reason"]
            .as_str()
            .expect("reason")
            .contains("ticket:exploded")
    );
    assert_eq!(dead[2]["event"], serde_json::Value::Null);
}

#[test]
fn two_consumers_at_once_apply_each_event_exactly_once() {
    let app = TestApp::spawn();
    let mut envelopes = Vec::new();
    for n in 0..40 {
        let id = format!("t{n}");
        envelopes.push(app.created(&id, "v0"));
        envelopes.push(app.updated(&id, "v1", 1));
        envelopes.push(app.updated(&id, "v2", 2));
    }
    app.enqueue_and_relay(&envelopes);

    let settings = ConsumerSettings {
        batch: 7,
        retry_idle_ms: 20,
        ..ConsumerSettings::default()
    };
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (db, redis, path) = (app.db(), app.redis(), app.path.clone());
            scope.spawn(move || {
                let observer = NativeDatabase::open(&path).expect("open database");
                let converged = || {
                    count(
                        &observer,
                        "SELECT count(*) AS n FROM replica_tickets WHERE version = 2",
                    ) == 40
                };
                let consumer = Consumer {
                    redis: &redis,
                    stream: STREAM,
                    group: GROUP,
                    settings,
                };
                let sink = DatabaseSink {
                    db: &db,
                    handler: &ReplicaHandler,
                };
                eventually("both consumers to converge", || {
                    consumer.run(&sink, now_ms()).expect("run");
                    converged().then_some(())
                });
            });
        }
    });

    assert_eq!(
        app.count("SELECT count(*) AS n FROM replica_tickets WHERE applications = 3"),
        40,
        "every event applied exactly once"
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM processed_events"), 120);
    eventually("every entry to be acknowledged", || {
        app.consume(&ReplicaHandler, settings);
        (app.pending() == 0).then_some(())
    });
}

#[test]
fn arming_the_tick_sets_its_ttl_only_once() {
    let app = TestApp::spawn();
    let redis = app.redis();
    let ttl = |redis: &NativeRedis| match redis
        .execute("TTL", &[TICK_KEY.into()])
        .expect("TTL")
        .as_slice()
    {
        [RedisValue::Int(ttl)] => *ttl,
        other => panic!("unexpected TTL reply {other:?}"),
    };
    assert_eq!(ttl(&redis), -2, "no tick before arming");
    arm_tick(&redis, 100).expect("arm");
    let first = ttl(&redis);
    assert!((1..=100).contains(&first), "{first}");
    arm_tick(&redis, 10_000).expect("arming again is fine");
    assert!(ttl(&redis) <= 100, "the armed tick is left alone");
}

#[test]
fn the_schema_can_be_applied_again_without_harm() {
    let db = NativeDatabase::open_in_memory().expect("database");
    delivery::create_schema(&db).expect("first");
    delivery::create_schema(&db).expect("again");
    for statement in delivery::SCHEMA {
        assert!(!statement.trim_end().ends_with(';'), "{statement}");
        assert!(statement.contains("IF NOT EXISTS"), "{statement}");
    }
}

#[test]
fn a_message_wake_up_creates_the_group_when_missing_and_applies_new_entries() {
    let app = TestApp::spawn();
    app.enqueue_and_relay(&[app.created("t1", "Concert")]);
    let report = app.consume_message(&ReplicaHandler, ConsumerSettings::default());
    assert_eq!(report.applied, 1);
    assert_eq!(app.replica("t1"), Some(("Concert".into(), 0, 1)));
    assert_eq!(app.pending(), 0);
}

#[test]
fn a_message_wake_up_applies_a_waiting_successor_once_its_predecessor_arrives() {
    let app = TestApp::spawn();
    let created = app.created("t1", "Concert");
    app.enqueue_and_relay(&[app.updated("t1", "Concert, row 1", 1)]);
    assert_eq!(
        app.consume_message(&ReplicaHandler, ConsumerSettings::default())
            .not_yet,
        1
    );
    app.enqueue_and_relay(&[created]);
    let report = app.consume_message(&ReplicaHandler, ConsumerSettings::default());
    assert_eq!(report.applied, 2);
    assert_eq!(app.replica("t1"), Some(("Concert, row 1".into(), 1, 2)));
    assert_eq!(app.pending(), 0);
}

#[test]
fn a_message_wake_up_with_nothing_new_leaves_failed_entries_to_housekeeping() {
    let app = TestApp::spawn();
    app.enqueue_and_relay(&[app.created("t1", "Concert")]);
    let settings = quick_dead_letters();
    assert_eq!(app.consume_message(&FailsFor("t1"), settings).failed, 1);
    assert_eq!(
        app.consume_message(&FailsFor("t1"), settings),
        ConsumeReport::default()
    );
    assert_eq!(app.pending(), 1);
    let housekeeping = app.consume(&FailsFor("t1"), settings);
    assert_eq!(housekeeping.failed + housekeeping.dead_lettered, 1);
}

#[test]
fn pruning_removes_only_old_sent_rows_and_old_processed_ids() {
    let db = NativeDatabase::open_in_memory().expect("database");
    delivery::create_schema(&db).expect("schema");
    let day = 24 * 60 * 60 * 1000;
    let now = 30 * day;
    for (seq, sent_at) in [(1, Some(now - 10 * day)), (2, Some(now - day)), (3, None)] {
        db.execute(
            "INSERT INTO outbox (seq, event_id, stream, envelope, created_at_ms, sent_at_ms) \
             VALUES (?, ?, 'events:ticket', '{}', 0, ?)",
            &[
                SqlValue::Integer(seq),
                format!("e{seq}").into(),
                sent_at.map_or(SqlValue::Null, |ms: u64| {
                    SqlValue::from_u64(ms).expect("ms")
                }),
            ],
        )
        .expect("outbox row");
    }
    for (id, at) in [("old", now - 8 * day), ("recent", now - day)] {
        db.execute(
            "INSERT INTO processed_events (event_id, grp, processed_at_ms) VALUES (?, 'g', ?)",
            &[id.into(), SqlValue::from_u64(at).expect("ms")],
        )
        .expect("processed row");
    }

    assert_eq!(
        delivery::prune(&db, now, delivery::RETENTION_MS).expect("prune"),
        2
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM outbox"),
        2,
        "unsent and recent rows stay"
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM outbox WHERE seq = 1"),
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM processed_events WHERE event_id = 'recent'"
        ),
        1
    );
    assert_eq!(
        delivery::prune(&db, now, delivery::RETENTION_MS).expect("prune again"),
        0
    );
}
