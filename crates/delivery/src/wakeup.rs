//! One wake-up of a service's Redis-triggered component, from the message's payload to the
//! re-armed tick, behind ports ([`Platform`]) so it runs the same natively and on Spin.
//!
//! What the payload says decides the work ([`Wake`]):
//!
//! - an event: apply what is new on its stream (one `XREADGROUP` when nothing is);
//! - the housekeeping tick: prune old delivery records, re-send what a Redis that lost its data
//!   or crashed no longer holds, and retry pending entries on every stream;
//! - anything else (another key expiring): nothing, without even opening the database.
//!
//! When it applied something, or on the tick, the service's own [`Housekeeping`] runs on the same
//! connections; then the outbox is relayed (what applying and housekeeping enqueued, and rows an
//! earlier failure left) and the tick re-armed, so a Redis that lost the tick key gets it back
//! with the next event. One stream failing (a poisoned key, say) starves neither the other
//! streams nor the relay nor the tick.

use storage::Database;

use crate::{
    ConsumeReport, Consumer, ConsumerSettings, DatabaseSink, DeliveryError, Handler, Redis,
    RedisError, Wake, arm_tick, prune, record_acknowledged, relay, resend_after_data_loss,
    verify_sent,
};

/// Rows relayed per call; [`relay_and_arm`] loops until none is left.
pub const RELAY_BATCH: usize = 200;

/// What the platform gives a wake-up: its connections (opened only when there is work), its
/// clock and its settings.
pub trait Platform {
    fn database(&self) -> anyhow::Result<Box<dyn Database>>;
    fn redis(&self) -> Result<Box<dyn Redis>, RedisError>;
    fn now_ms(&self) -> u64;
    fn consumer_settings(&self) -> ConsumerSettings;
    /// How often the housekeeping tick fires.
    fn tick_secs(&self) -> u64;
}

/// A service's own work after its events were applied, or on the tick: what needs the outside
/// world (Stripe, say). It runs on the wake-up's connections, and what it enqueues is relayed
/// right after it.
pub trait Housekeeping {
    fn run(
        &self,
        db: &dyn Database,
        redis: &dyn Redis,
        tick: bool,
        now_ms: u64,
    ) -> anyhow::Result<()>;
}

/// For a service whose events are all its work.
pub struct NoHousekeeping;

impl Housekeeping for NoHousekeeping {
    fn run(&self, _: &dyn Database, _: &dyn Redis, _: bool, _: u64) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Why a subscription runs: the tick, an event's message, or a request catching up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Tick,
    Event,
    CatchUp,
}

/// A service's consumer: its group on each of its streams, and what it does with what it reads.
pub struct Subscription<'a> {
    /// The service's database, named in log lines.
    pub database: &'a str,
    pub group: &'a str,
    pub streams: &'a [&'a str],
    pub handler: &'a dyn Handler,
    pub housekeeping: &'a dyn Housekeeping,
}

impl Subscription<'_> {
    /// Handles one message. Fails when a connection cannot be opened, a stream cannot be read
    /// (after every other stream had its turn, the relay ran and the tick was re-armed), or the
    /// service's housekeeping failed.
    pub fn wake_up(
        &self,
        platform: &dyn Platform,
        payload: &[u8],
    ) -> anyhow::Result<ConsumeReport> {
        match Wake::of(payload) {
            Wake::Housekeeping => self.run(platform, self.streams, Run::Tick),
            Wake::Event { stream } if self.streams.contains(&stream) => {
                self.run(platform, &[stream], Run::Event)
            }
            Wake::Event { .. } | Wake::Other => Ok(ConsumeReport::default()),
        }
    }

    /// Applies what is new on `stream` now, as its own message would, for a request that needs
    /// the replica up to date (a payment for an order whose `order:created` is still queued
    /// behind other messages). Entries go to one consumer of the group or the other, never
    /// both, so the wake-up that follows finds nothing new on the stream. The service's
    /// housekeeping is left to its consumer: the request waits for no one else's Stripe work,
    /// and concurrent requests do not repeat it; the consumer's next wake-up that applies
    /// something, or its tick, runs it.
    pub fn catch_up(&self, platform: &dyn Platform, stream: &str) -> anyhow::Result<ConsumeReport> {
        self.run(platform, &[stream], Run::CatchUp)
    }

    fn run(
        &self,
        platform: &dyn Platform,
        streams: &[&str],
        run: Run,
    ) -> anyhow::Result<ConsumeReport> {
        let db = platform.database()?;
        let redis = platform.redis()?;
        let tick = run == Run::Tick;
        if tick {
            self.check_delivered(&*db, &*redis, platform.now_ms())?;
        }
        let mut failures = Vec::new();
        let report = self.consume(&*db, &*redis, platform, streams, tick, &mut failures);
        if tick || report.applied > 0 {
            if run != Run::CatchUp
                && let Err(error) = self
                    .housekeeping
                    .run(&*db, &*redis, tick, platform.now_ms())
            {
                failures.push(error.context(format!("the {} housekeeping", self.group)));
            }
            relay_and_arm(&*db, &*redis, platform.now_ms(), platform.tick_secs())?;
        }
        match failures.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    /// On the tick: prunes old delivery records, and marks for sending again the outbox rows
    /// whose stream entries Redis no longer holds (all of them after Redis lost its data, the
    /// last second's after a crash).
    fn check_delivered(
        &self,
        db: &dyn Database,
        redis: &dyn Redis,
        now_ms: u64,
    ) -> Result<(), DeliveryError> {
        prune(db, now_ms, crate::RETENTION_MS)?;
        let started = std::time::Instant::now();
        let new_epoch = domain::EventId::new_random().to_string();
        let marked = resend_after_data_loss(db, redis, &new_epoch)?;
        if marked > 0 {
            self.warn_resent(marked, "Redis lost its data (a new epoch)")
                .duration(started.elapsed())
                .emit();
        }
        let verified = verify_sent(db, redis, now_ms)?;
        if verified.resent > 0 {
            self.warn_resent(
                verified.resent,
                "stream entries lost since they were sent (a Redis crash)",
            )
            .emit();
        }
        record_acknowledged(db, redis)?;
        Ok(())
    }

    fn warn_resent(&self, events: usize, reason: &str) -> log_line::Line {
        log_line::Line::new(log_line::Level::Warn, "delivery")
            .field("database", self.database)
            .field("outcome", "resent")
            .field("reason", reason)
            .field("events", events)
    }

    /// Gives every stream its turn; a stream that cannot be read adds its error to `failures`.
    fn consume(
        &self,
        db: &dyn Database,
        redis: &dyn Redis,
        platform: &dyn Platform,
        streams: &[&str],
        tick: bool,
        failures: &mut Vec<anyhow::Error>,
    ) -> ConsumeReport {
        let sink = DatabaseSink {
            db,
            handler: self.handler,
        };
        let mut report = ConsumeReport::default();
        for &stream in streams {
            let consumer = Consumer {
                redis,
                stream,
                group: self.group,
                settings: platform.consumer_settings(),
            };
            let consumed = if tick {
                consumer.run(&sink, platform.now_ms())
            } else {
                consumer.run_on_message(&sink, platform.now_ms())
            };
            match consumed {
                Ok(consumed) => report += consumed,
                Err(error) => {
                    log_line::Line::new(log_line::Level::Warn, "delivery")
                        .field("group", self.group)
                        .field("stream", stream)
                        .field("outcome", "unreadable")
                        .field("error", error.to_string())
                        .emit();
                    failures.push(anyhow::Error::new(error).context(format!("reading {stream}")));
                }
            }
        }
        warn_on_failures(self.group, &report);
        report
    }
}

/// Relays every row the outbox holds that no other relay has leased, then arms the next tick
/// unless one is armed. Called after a request that enqueued events and at the end of a wake-up.
pub fn relay_and_arm(
    db: &dyn Database,
    redis: &dyn Redis,
    now_ms: u64,
    tick_secs: u64,
) -> Result<(), DeliveryError> {
    // Rows leased by another relay are not counted as remaining, so this cannot spin.
    while relay(db, redis, now_ms, RELAY_BATCH)?.remaining {}
    arm_tick(redis, tick_secs)
}

/// Logs a wake-up of consumer group `group` that left entries failing or dead-lettered; quiet
/// otherwise.
pub fn warn_on_failures(group: &str, report: &ConsumeReport) {
    if report.failed + report.dead_lettered > 0 {
        log_line::Line::new(log_line::Level::Warn, "delivery")
            .field("group", group)
            .field("outcome", "failures")
            .field("applied", report.applied)
            .field("failed", report.failed)
            .field("deadLettered", report.dead_lettered)
            .emit();
    }
}
