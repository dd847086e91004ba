//! A whole wake-up of a consuming component ([`Subscription::wake_up`]) against a real SQLite file
//! and a real `redis-server`: which work each message sets off, and the steps that keep delivery
//! going when Redis lost its data, a stream cannot be read, or the tick key is gone.

use std::cell::Cell;

use delivery::{
    Applied, ConsumerSettings, Handler, Housekeeping, NativeRedis, NoHousekeeping, Platform, Redis,
    RedisError, RedisValue, Subscription, TICK_KEY, enqueue,
};
use events::{Envelope, Event, OrderCancelled, TicketCreated, TicketRef};
use harness::RedisServer;
use storage::testing::TempDatabase;
use storage::{Database, NativeDatabase};

const TICK_SECS: u64 = 30;

/// A service's database file and Redis, handed to the wake-up as its platform, counting how
/// often it opened the database.
struct TestPlatform {
    file: TempDatabase,
    redis_server: RedisServer,
    opened: Cell<usize>,
}

impl TestPlatform {
    fn start() -> Self {
        let file = TempDatabase::migrated("service.db", &[]);
        let db = file.open();
        delivery::create_schema(&db).expect("schema");
        db.execute(
            "CREATE TABLE applied (event_id TEXT PRIMARY KEY, subject TEXT NOT NULL)",
            &[],
        )
        .expect("applied table");
        Self {
            file,
            redis_server: RedisServer::start(),
            opened: Cell::new(0),
        }
    }

    /// `event` committed and relayed by its producer: on its stream, the tick armed.
    fn relay(&self, event: impl Into<Event>) {
        self.enqueue(event);
        delivery::relay_and_arm(&self.db(), &self.redis(), now_ms(), TICK_SECS).expect("relay");
    }

    fn db(&self) -> NativeDatabase {
        self.file.open()
    }

    fn redis(&self) -> NativeRedis {
        NativeRedis::connect(&self.redis_server.url()).expect("connect to redis")
    }

    fn command(&self, command: &str, args: &[&str]) -> Vec<RedisValue> {
        let args: Vec<_> = args.iter().map(|arg| (*arg).into()).collect();
        self.redis().execute(command, &args).expect(command)
    }

    fn stream_length(&self, stream: &str) -> i64 {
        match self.command("XLEN", &[stream]).as_slice() {
            [RedisValue::Int(length)] => *length,
            other => panic!("XLEN reply {other:?}"),
        }
    }

    fn tick_armed(&self) -> bool {
        matches!(
            self.command("EXISTS", &[TICK_KEY]).as_slice(),
            [RedisValue::Int(1)]
        )
    }

    /// Commits `event` to the outbox as a request of this service would.
    fn enqueue(&self, event: impl Into<Event>) {
        let event = event.into();
        storage::transaction(&self.db(), |tx| enqueue(tx, &event, now_ms())).expect("enqueue");
    }

    /// The subjects the handler applied, in order.
    fn applied(&self) -> Vec<String> {
        self.db()
            .execute("SELECT subject FROM applied ORDER BY rowid", &[])
            .expect("select applied")
            .iter()
            .map(|row| row.text("subject").expect("subject").to_owned())
            .collect()
    }

    fn unsent(&self) -> i64 {
        self.db()
            .execute(
                "SELECT count(*) AS n FROM outbox WHERE sent_at_ms IS NULL",
                &[],
            )
            .expect("count unsent")
            .first()
            .expect("a row")
            .integer("n")
            .expect("a count")
    }
}

impl Platform for TestPlatform {
    fn database(&self) -> anyhow::Result<Box<dyn Database>> {
        self.opened.set(self.opened.get() + 1);
        Ok(Box::new(self.db()))
    }

    fn redis(&self) -> Result<Box<dyn Redis>, RedisError> {
        Ok(Box::new(NativeRedis::connect(&self.redis_server.url())?))
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn consumer_settings(&self) -> ConsumerSettings {
        ConsumerSettings::default()
    }

    fn tick_secs(&self) -> u64 {
        TICK_SECS
    }
}

fn now_ms() -> u64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(elapsed.as_millis()).expect("fits")
}

/// Records every event it applies; a cancelled order also enqueues a ticket event, as a
/// service's handler enqueues what applying an event causes.
struct Recorder;

impl Handler for Recorder {
    fn apply(
        &self,
        tx: &dyn Database,
        envelope: &Envelope,
        event: &Event,
        now_ms: u64,
    ) -> anyhow::Result<Applied> {
        tx.execute(
            "INSERT INTO applied (event_id, subject) VALUES (?, ?)",
            &[envelope.id.as_str().into(), event.subject().into()],
        )?;
        if let Event::OrderCancelled(cancelled) = event {
            enqueue(
                tx,
                &ticket(&format!("freed-by-{}", cancelled.id)).into(),
                now_ms,
            )?;
        }
        Ok(Applied::Done)
    }
}

/// Counts its runs and says whether each was on the tick; enqueues an event every run.
#[derive(Default)]
struct CountingHousekeeping {
    runs: Cell<Vec<bool>>,
}

impl Housekeeping for CountingHousekeeping {
    fn run(
        &self,
        db: &dyn Database,
        _redis: &dyn Redis,
        tick: bool,
        now_ms: u64,
    ) -> anyhow::Result<()> {
        let mut runs = self.runs.take();
        runs.push(tick);
        self.runs.set(runs);
        storage::transaction(db, |tx| {
            enqueue(tx, &ticket("from-housekeeping").into(), now_ms)
        })?;
        Ok(())
    }
}

fn ticket(id: &str) -> TicketCreated {
    TicketCreated {
        id: id.into(),
        title: "Concert".into(),
        price_cents: 2050,
        user_id: "u1".into(),
        version: 0,
    }
}

fn cancelled(id: &str) -> OrderCancelled {
    OrderCancelled {
        id: id.into(),
        user_id: "u1".into(),
        version: 1,
        ticket: TicketRef {
            id: "t1".into(),
            price_cents: 2050,
        },
    }
}

fn subscription<'a>(
    streams: &'a [&'a str],
    housekeeping: &'a dyn Housekeeping,
) -> Subscription<'a> {
    Subscription {
        database: "service",
        group: "service",
        streams,
        handler: &Recorder,
        housekeeping,
    }
}

/// The message the relay publishes for `event`: its envelope.
fn message(event: impl Into<Event>) -> Vec<u8> {
    event
        .into()
        .to_envelope(
            "00000000-0000-4000-8000-000000000001",
            "2024-05-01T12:00:00.000Z",
        )
        .to_json()
}

#[test]
fn a_message_that_is_neither_an_event_of_its_streams_nor_the_tick_opens_nothing() {
    let platform = TestPlatform::start();
    platform.enqueue(cancelled("o1"));
    let housekeeping = CountingHousekeeping::default();
    let streams = ["events:order"];
    let subscription = subscription(&streams, &housekeeping);

    for payload in [b"order:42".to_vec(), message(ticket("t1"))] {
        let report = subscription.wake_up(&platform, &payload).expect("wake-up");
        assert_eq!(report, delivery::ConsumeReport::default());
    }
    assert_eq!(platform.opened.get(), 0);
    assert_eq!(platform.unsent(), 1, "nothing relayed");
    assert!(housekeeping.runs.take().is_empty());
    assert!(!platform.tick_armed());
}

#[test]
fn an_event_that_applied_something_relays_what_applying_enqueued_and_re_arms_the_tick() {
    let platform = TestPlatform::start();
    let streams = ["events:order"];
    let housekeeping = CountingHousekeeping::default();
    let subscription = subscription(&streams, &housekeeping);
    // The producer's relay: the event on its stream, the tick armed; then the tick key is lost.
    platform.relay(cancelled("o1"));
    platform.command("DEL", &[TICK_KEY]);

    let report = subscription
        .wake_up(&platform, &message(cancelled("o1")))
        .expect("wake-up");

    assert_eq!(report.applied, 1);
    assert_eq!(platform.applied(), ["order:cancelled"]);
    assert_eq!(
        platform.unsent(),
        0,
        "what applying and housekeeping enqueued is relayed"
    );
    assert_eq!(platform.stream_length("events:ticket"), 2);
    assert_eq!(housekeeping.runs.take(), [false]);
    assert!(platform.tick_armed(), "the wake-up re-arms a lost tick");

    // Nothing new: the service's housekeeping does not run, and nothing is relayed.
    platform.command("DEL", &[TICK_KEY]);
    let report = subscription
        .wake_up(&platform, &message(cancelled("o1")))
        .expect("idle wake-up");
    assert_eq!(report.applied, 0);
    assert!(housekeeping.runs.take().is_empty());
    assert!(!platform.tick_armed());
}

#[test]
fn a_catch_up_applies_the_stream_for_its_group_but_leaves_the_housekeeping_to_the_consumer() {
    let platform = TestPlatform::start();
    let streams = ["events:order"];
    let housekeeping = CountingHousekeeping::default();
    let subscription = subscription(&streams, &housekeeping);
    platform.relay(cancelled("o1"));

    let report = subscription
        .catch_up(&platform, "events:order")
        .expect("catch-up");
    assert_eq!(report.applied, 1);
    assert_eq!(platform.applied(), ["order:cancelled"]);
    assert!(
        housekeeping.runs.take().is_empty(),
        "a request waits for no Stripe work"
    );

    // The event's own message then finds nothing new for the group: applied once.
    let report = subscription
        .wake_up(&platform, &message(cancelled("o1")))
        .expect("wake-up");
    assert_eq!(report.applied, 0);
    assert_eq!(platform.applied(), ["order:cancelled"]);
    // The consumer's tick runs the housekeeping the catch-up left.
    subscription
        .wake_up(&platform, TICK_KEY.as_bytes())
        .expect("tick");
    assert_eq!(housekeeping.runs.take(), [true]);
}

#[test]
fn the_tick_sends_every_kept_event_again_after_redis_lost_its_data() {
    let platform = TestPlatform::start();
    let streams = ["events:order"];
    let subscription = subscription(&streams, &NoHousekeeping);
    platform.enqueue(ticket("t1"));
    platform.enqueue(ticket("t2"));
    // The first tick records Redis's epoch and relays the rows.
    subscription
        .wake_up(&platform, TICK_KEY.as_bytes())
        .expect("first tick");
    assert_eq!(platform.stream_length("events:ticket"), 2);

    platform.command("FLUSHALL", &[]);
    subscription
        .wake_up(&platform, TICK_KEY.as_bytes())
        .expect("tick after the data loss");

    assert_eq!(
        platform.stream_length("events:ticket"),
        2,
        "both events are on their stream again"
    );
    assert!(platform.tick_armed());
}

#[test]
fn a_stream_that_cannot_be_read_starves_neither_the_others_nor_the_relay_nor_the_tick() {
    let platform = TestPlatform::start();
    // The poisoned stream comes first: a key of the wrong type where a stream should be.
    let streams = ["events:expiration", "events:order"];
    let housekeeping = CountingHousekeeping::default();
    let subscription = subscription(&streams, &housekeeping);
    platform.command("SET", &["events:expiration", "not a stream"]);
    platform.enqueue(cancelled("o1"));
    delivery::relay(&platform.db(), &platform.redis(), now_ms(), 10).expect("relay");

    let error = subscription
        .wake_up(&platform, TICK_KEY.as_bytes())
        .expect_err("the poisoned stream is reported");

    assert!(
        format!("{error:#}").contains("events:expiration"),
        "{error:#}"
    );
    assert_eq!(
        platform.applied(),
        ["order:cancelled"],
        "the other stream was read"
    );
    assert_eq!(housekeeping.runs.take(), [true]);
    assert_eq!(platform.unsent(), 0, "the outbox was relayed");
    assert!(platform.tick_armed(), "the tick was re-armed");
}

#[test]
fn a_request_that_enqueued_an_event_is_told_from_one_that_did_not() {
    let platform = TestPlatform::start();
    let db = platform.db();
    assert!(!delivery::has_enqueued(), "nothing enqueued yet");
    storage::transaction(&db, |tx| enqueue(tx, &ticket("t1").into(), now_ms())).expect("enqueue");
    assert!(delivery::has_enqueued());
    delivery::relay(&db, &platform.redis(), now_ms(), 10).expect("relay");
    assert!(!delivery::has_enqueued(), "relaying takes it");
    // A read-only request enqueues nothing.
    platform.applied();
    assert!(!delivery::has_enqueued());
}
