//! Consumer groups: reading a stream, applying each entry once, retrying, dead-lettering.
//!
//! A [`Consumer`] reads and acknowledges; a [`Sink`] applies. A service's database is the usual
//! sink ([`DatabaseSink`], exactly once by event id); a consumer whose effects are idempotent by
//! nature (the expiration timer's Redis schedule) can be its own sink.
//!
//! Every instance of a service's consumer uses the group name as its consumer name too: which
//! instance holds an entry does not matter, because an entry is only taken over (`XCLAIM`) after
//! it sat unacknowledged for `retry_idle_ms`, and applying it twice is harmless anyway (the event
//! id is recorded in the applying transaction, which `BEGIN IMMEDIATE` serialises).

use std::collections::HashMap;

use events::{Envelope, Event};
use log_line::{Level, Line};
use storage::{Database, SqlValue, StorageError};

use crate::reply::{self, EntryBody, EntryId, StreamEntry};
use crate::{DeliveryError, Redis, RedisArg, dead_letter_stream};

/// What a [`Handler`] did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied (or deliberately ignored): commit, and never deliver this event again.
    Done,
    /// Cannot be applied yet, for the reason given (such as a missing predecessor version):
    /// roll back, and retry once something else was applied or on a later wake-up.
    NotYet(String),
}

/// A service's event handler, for a consumer that applies events to the service's database
/// (through [`DatabaseSink`]).
pub trait Handler {
    /// Applies `event` inside a transaction the consumer opened on `tx`. `Ok(Done)` commits;
    /// `Ok(NotYet)` and `Err` roll back (`NotYet`: cannot apply yet; `Err`: a failed try, which
    /// is retried and eventually dead-lettered). It must not begin or end a transaction.
    fn apply(
        &self,
        tx: &dyn Database,
        envelope: &Envelope,
        event: &Event,
        now_ms: u64,
    ) -> anyhow::Result<Applied>;
}

/// How a [`Sink`] took an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Applied now.
    Applied,
    /// Applied before (a redelivery or a duplicated event id): nothing changed.
    Duplicate,
    /// Cannot be applied yet, for the reason given: retry later.
    NotYet(String),
}

/// Where a [`Consumer`] applies the events it reads. An `Err` is a failed try: the entry is
/// retried and eventually dead-lettered.
pub trait Sink {
    fn accept(
        &self,
        group: &str,
        envelope: &Envelope,
        event: &Event,
        now_ms: u64,
    ) -> anyhow::Result<Accepted>;
}

/// A service database as a [`Sink`]: each event is applied by the service's [`Handler`] in its
/// own `BEGIN IMMEDIATE` transaction, which also records the event id in `processed_events`, so
/// an event is applied exactly once however often it is delivered.
pub struct DatabaseSink<'a> {
    pub db: &'a dyn Database,
    pub handler: &'a dyn Handler,
}

impl Sink for DatabaseSink<'_> {
    fn accept(
        &self,
        group: &str,
        envelope: &Envelope,
        event: &Event,
        now_ms: u64,
    ) -> anyhow::Result<Accepted> {
        let applied = storage::transaction(self.db, |tx| {
            if already_processed(tx, group, &envelope.id)? {
                return Ok(Accepted::Duplicate);
            }
            match self.handler.apply(tx, envelope, event, now_ms) {
                Ok(Applied::Done) => {
                    tx.execute(
                        "INSERT INTO processed_events (event_id, grp, processed_at_ms) \
                         VALUES (?, ?, ?)",
                        &[
                            envelope.id.as_str().into(),
                            group.into(),
                            SqlValue::from_u64(now_ms)?,
                        ],
                    )?;
                    Ok(Accepted::Applied)
                }
                Ok(Applied::NotYet(reason)) => Err(Abort::NotYet(reason)),
                Err(error) => Err(Abort::Failed(error)),
            }
        });
        match applied {
            Ok(accepted) => Ok(accepted),
            Err(Abort::NotYet(reason)) => Ok(Accepted::NotYet(reason)),
            Err(Abort::Failed(error)) => Err(error),
        }
    }
}

fn already_processed(tx: &dyn Database, group: &str, event_id: &str) -> Result<bool, StorageError> {
    let rows = tx.execute(
        "SELECT 1 AS found FROM processed_events WHERE event_id = ? AND grp = ?",
        &[event_id.into(), group.into()],
    )?;
    Ok(!rows.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// Entries read (and pending entries claimed) per Redis call.
    pub batch: usize,
    /// How long an entry must sit unacknowledged before a wake-up retries it; this keeps one
    /// instance from taking over an entry another is applying right now.
    pub retry_idle_ms: u64,
    /// An entry is dead-lettered once it was delivered this often …
    pub max_deliveries: u64,
    /// … and is at least this old (by its stream id), so a short outage does not dead-letter a
    /// burst of events that merely waited for their predecessors.
    pub dead_letter_after_ms: u64,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            batch: 100,
            retry_idle_ms: 250,
            max_deliveries: 10,
            dead_letter_after_ms: 60_000,
        }
    }
}

/// What one wake-up did. Every entry it handled is counted exactly once, by how it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumeReport {
    /// Applied and acknowledged.
    pub applied: usize,
    /// Already applied before (a redelivery or a duplicated event id): acknowledged unchanged.
    pub duplicates: usize,
    /// Left pending because the handler could not apply them yet.
    pub not_yet: usize,
    /// Left pending after a failed try.
    pub failed: usize,
    /// Moved to the dead-letter stream and acknowledged.
    pub dead_lettered: usize,
}

impl std::ops::AddAssign for ConsumeReport {
    fn add_assign(&mut self, other: ConsumeReport) {
        self.applied += other.applied;
        self.duplicates += other.duplicates;
        self.not_yet += other.not_yet;
        self.failed += other.failed;
        self.dead_lettered += other.dead_lettered;
    }
}

/// One consumer group of one stream on a Redis connection.
pub struct Consumer<'a> {
    pub redis: &'a dyn Redis,
    pub stream: &'a str,
    pub group: &'a str,
    pub settings: ConsumerSettings,
}

/// An entry delivered to this wake-up, with its delivery count including this delivery.
struct Delivery {
    entry: StreamEntry,
    deliveries: u64,
}

enum Outcome {
    Applied,
    Duplicate,
    NotYet(String),
    Failed(String),
    /// The entry's fields are gone (trimmed or deleted): nothing to apply.
    Vanished,
}

/// Why an applying transaction was rolled back.
enum Abort {
    NotYet(String),
    Failed(anyhow::Error),
}

impl From<StorageError> for Abort {
    fn from(error: StorageError) -> Self {
        Self::Failed(error.into())
    }
}

/// The state of one wake-up: entries to acknowledge, entries waiting for a predecessor.
#[derive(Default)]
struct Wake {
    report: ConsumeReport,
    acks: Vec<EntryId>,
    waiting: Vec<(Delivery, String)>,
}

impl Consumer<'_> {
    /// One wake-up: make sure the group exists, retry the entries pending longer than
    /// `retry_idle_ms`, read every new entry, and apply them in stream order, each in its own
    /// transaction, acknowledging after commit. Entries that could not be applied yet are tried
    /// again after anything else was applied, so a successor read before its predecessor is
    /// applied in the same wake-up. Entries delivered `max_deliveries` times and older than
    /// `dead_letter_after_ms` move to the dead-letter stream.
    ///
    /// Fails only when Redis or the protocol fails; entries not acknowledged by then are
    /// delivered again and recognised as duplicates if they were applied.
    pub fn run(&self, sink: &dyn Sink, now_ms: u64) -> Result<ConsumeReport, DeliveryError> {
        self.ensure_group()?;
        let mut wake = Wake::default();
        let pending = self.claim_pending()?;
        self.handle(sink, pending, now_ms, &mut wake)?;
        self.read_all_new(sink, now_ms, &mut wake)?;
        self.finish(sink, now_ms, wake)
    }

    /// A wake-up by a stream's own message, which is the hot path: one `XREADGROUP` when there
    /// is nothing new (the group is created only when Redis answers `NOGROUP`). Pending entries
    /// are retried only when this wake-up applied something, since one of them may have waited
    /// for exactly that; entries that failed are left to the housekeeping [`run`](Self::run).
    pub fn run_on_message(
        &self,
        sink: &dyn Sink,
        now_ms: u64,
    ) -> Result<ConsumeReport, DeliveryError> {
        let mut wake = Wake::default();
        match self.read_all_new(sink, now_ms, &mut wake) {
            Err(DeliveryError::Redis(error)) if error.0.contains("NOGROUP") => {
                self.ensure_group()?;
                self.read_all_new(sink, now_ms, &mut wake)?;
            }
            other => other?,
        }
        if wake.report.applied > 0 {
            let pending = self.claim_pending()?;
            self.handle(sink, pending, now_ms, &mut wake)?;
        }
        self.finish(sink, now_ms, wake)
    }

    /// Reads and applies new entries until a read returns less than a full batch.
    fn read_all_new(
        &self,
        sink: &dyn Sink,
        now_ms: u64,
        wake: &mut Wake,
    ) -> Result<(), DeliveryError> {
        loop {
            let fresh = self.read_new()?;
            let complete = fresh.len() < self.batch();
            self.handle(sink, fresh, now_ms, wake)?;
            if complete {
                return Ok(());
            }
        }
    }

    /// Retries the entries that waited for a predecessor while anything gets applied, then
    /// dead-letters those that waited too long and marks the rest ready for the next wake-up.
    fn finish(
        &self,
        sink: &dyn Sink,
        now_ms: u64,
        mut wake: Wake,
    ) -> Result<ConsumeReport, DeliveryError> {
        // Applying something may have been what a waiting entry needed (its predecessor).
        let mut progressed = wake.report.applied > 0;
        while progressed && !wake.waiting.is_empty() {
            progressed = false;
            for (delivery, _) in std::mem::take(&mut wake.waiting) {
                if let Outcome::Applied = self.settle(sink, delivery, now_ms, &mut wake)? {
                    progressed = true;
                }
            }
            self.flush_acks(&mut wake)?;
        }

        let mut still_waiting = Vec::new();
        for (delivery, reason) in std::mem::take(&mut wake.waiting) {
            if self.due_for_dead_letter(&delivery, now_ms) {
                self.dead_letter(&delivery, &reason, &mut wake)?;
            } else {
                wake.report.not_yet += 1;
                still_waiting.push(delivery.entry.id);
            }
        }
        self.flush_acks(&mut wake)?;
        self.ready_for_retry(&still_waiting)?;
        Ok(wake.report)
    }

    fn batch(&self) -> usize {
        self.settings.batch.max(1)
    }

    fn batch_arg(&self) -> RedisArg {
        RedisArg::Int(i64::try_from(self.batch()).unwrap_or(i64::MAX))
    }

    fn retry_idle_arg(&self) -> RedisArg {
        RedisArg::Int(i64::try_from(self.settings.retry_idle_ms).unwrap_or(i64::MAX))
    }

    /// `XGROUP CREATE <stream> <group> 0 MKSTREAM`: from 0, so a new group sees the whole
    /// history; `BUSYGROUP` means it exists already.
    fn ensure_group(&self) -> Result<(), DeliveryError> {
        match self.redis.execute(
            "XGROUP",
            &[
                "CREATE".into(),
                self.stream.into(),
                self.group.into(),
                "0".into(),
                "MKSTREAM".into(),
            ],
        ) {
            Ok(_) => Ok(()),
            Err(error) if error.0.contains("BUSYGROUP") => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Takes over the entries that sat unacknowledged for `retry_idle_ms`. `XCLAIM` checks the
    /// idle time again, so of two instances claiming at once only one gets each entry.
    fn claim_pending(&self) -> Result<Vec<Delivery>, DeliveryError> {
        let reply = self.redis.execute(
            "XPENDING",
            &[
                self.stream.into(),
                self.group.into(),
                "IDLE".into(),
                self.retry_idle_arg(),
                "-".into(),
                "+".into(),
                self.batch_arg(),
            ],
        )?;
        let pending = reply::pending_entries(&reply)?;
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let mut args: Vec<RedisArg> = vec![
            self.stream.into(),
            self.group.into(),
            self.group.into(),
            self.retry_idle_arg(),
        ];
        args.extend(pending.iter().map(|entry| entry.id.to_string().into()));
        let claimed = reply::claimed_entries(&self.redis.execute("XCLAIM", &args)?)?;
        let earlier: HashMap<EntryId, u64> = pending
            .iter()
            .map(|entry| (entry.id, entry.deliveries))
            .collect();
        Ok(claimed
            .into_iter()
            .map(|entry| Delivery {
                // XCLAIM counted this delivery on top of what XPENDING reported.
                deliveries: earlier.get(&entry.id).copied().unwrap_or(0) + 1,
                entry,
            })
            .collect())
    }

    fn read_new(&self) -> Result<Vec<Delivery>, DeliveryError> {
        let reply = self.redis.execute(
            "XREADGROUP",
            &[
                "GROUP".into(),
                self.group.into(),
                self.group.into(),
                "COUNT".into(),
                self.batch_arg(),
                "STREAMS".into(),
                self.stream.into(),
                ">".into(),
            ],
        )?;
        Ok(reply::read_entries(self.stream, &reply)?
            .into_iter()
            .map(|entry| Delivery {
                entry,
                deliveries: 1,
            })
            .collect())
    }

    fn handle(
        &self,
        sink: &dyn Sink,
        mut deliveries: Vec<Delivery>,
        now_ms: u64,
        wake: &mut Wake,
    ) -> Result<(), DeliveryError> {
        deliveries.sort_by_key(|delivery| delivery.entry.id);
        for delivery in deliveries {
            self.settle(sink, delivery, now_ms, wake)?;
        }
        self.flush_acks(wake)
    }

    /// Tries one entry and books the outcome: acknowledge, wait, or count a failure (and
    /// dead-letter it when it has failed for long enough).
    fn settle(
        &self,
        sink: &dyn Sink,
        delivery: Delivery,
        now_ms: u64,
        wake: &mut Wake,
    ) -> Result<Outcome, DeliveryError> {
        let outcome = self.try_apply(sink, &delivery.entry, now_ms);
        match &outcome {
            Outcome::Applied => {
                wake.report.applied += 1;
                wake.acks.push(delivery.entry.id);
            }
            Outcome::Duplicate => {
                wake.report.duplicates += 1;
                wake.acks.push(delivery.entry.id);
            }
            Outcome::Vanished => {
                Line::new(Level::Warn, "event")
                    .field("stream", self.stream)
                    .field("group", self.group)
                    .field("entryId", delivery.entry.id.to_string())
                    .field("outcome", "vanished")
                    .field("reason", "deleted from the stream before it was applied")
                    .emit();
                wake.acks.push(delivery.entry.id);
            }
            Outcome::NotYet(reason) => wake.waiting.push((delivery, reason.clone())),
            Outcome::Failed(reason) => {
                if self.due_for_dead_letter(&delivery, now_ms) {
                    self.dead_letter(&delivery, reason, wake)?;
                } else {
                    wake.report.failed += 1;
                }
            }
        }
        Ok(outcome)
    }

    fn try_apply(&self, sink: &dyn Sink, entry: &StreamEntry, now_ms: u64) -> Outcome {
        let json = match &entry.body {
            EntryBody::Event(json) => json,
            EntryBody::Deleted => return Outcome::Vanished,
            EntryBody::Foreign(field) => {
                return Outcome::Failed(format!(
                    "the entry has field {field:?}, not a single {:?}",
                    reply::EVENT_FIELD
                ));
            }
        };
        let envelope = match Envelope::from_json(json) {
            Ok(envelope) => envelope,
            Err(error) => return Outcome::Failed(format!("{error}")),
        };
        let event = match envelope.decode() {
            Ok(event) => event,
            Err(error) => {
                return Outcome::Failed(format!("event {}: {error}", envelope.id));
            }
        };
        // Applied under the request id that caused it, which events it causes carry on; one
        // log line says how it went.
        let started = std::time::Instant::now();
        log_line::with_request_id(envelope.request_id.clone(), || {
            let outcome = match sink.accept(self.group, &envelope, &event, now_ms) {
                Ok(Accepted::Applied) => Outcome::Applied,
                Ok(Accepted::Duplicate) => Outcome::Duplicate,
                Ok(Accepted::NotYet(reason)) => Outcome::NotYet(reason),
                Err(error) => Outcome::Failed(format!(
                    "{} event {}: {error:#}",
                    envelope.subject, envelope.id
                )),
            };
            let (level, name, reason) = match &outcome {
                Outcome::Applied => (Level::Info, "applied", None),
                Outcome::Duplicate => (Level::Info, "duplicate", None),
                Outcome::NotYet(reason) => (Level::Info, "not-yet", Some(reason)),
                Outcome::Failed(reason) => (Level::Warn, "failed", Some(reason)),
                Outcome::Vanished => (Level::Warn, "vanished", None),
            };
            let mut line = Line::new(level, "event")
                .field("subject", envelope.subject.as_str())
                .field("eventId", envelope.id.as_str())
                .field("stream", self.stream)
                .field("group", self.group)
                .field("entryId", entry.id.to_string())
                .field("outcome", name);
            if let Some(reason) = reason {
                line = line.field("reason", reason.as_str());
            }
            line.duration(started.elapsed()).emit();
            outcome
        })
    }

    fn due_for_dead_letter(&self, delivery: &Delivery, now_ms: u64) -> bool {
        let age_ms = now_ms.saturating_sub(delivery.entry.id.ms);
        delivery.deliveries >= self.settings.max_deliveries
            && age_ms >= self.settings.dead_letter_after_ms
    }

    /// Appends the entry to `<stream>:dead-letter:<group>` as one `entry` field holding
    /// `{"group", "entryId", "deliveries", "reason", "event"}` (the envelope JSON as a string),
    /// then acknowledges it with the others.
    fn dead_letter(
        &self,
        delivery: &Delivery,
        reason: &str,
        wake: &mut Wake,
    ) -> Result<(), DeliveryError> {
        let event = match &delivery.entry.body {
            EntryBody::Event(json) => {
                serde_json::Value::String(String::from_utf8_lossy(json).into_owned())
            }
            EntryBody::Deleted | EntryBody::Foreign(_) => serde_json::Value::Null,
        };
        let record = serde_json::json!({
            "group": self.group,
            "entryId": delivery.entry.id.to_string(),
            "deliveries": delivery.deliveries,
            "reason": reason,
            "event": event,
        });
        let dead_letters = dead_letter_stream(self.stream, self.group);
        let reply = self.redis.execute(
            "XADD",
            &[
                dead_letters.as_str().into(),
                "MAXLEN".into(),
                "~".into(),
                RedisArg::Int(100_000),
                "*".into(),
                "entry".into(),
                record.to_string().into(),
            ],
        )?;
        let dead_letter_id = reply::added_id(&reply)?;
        Line::new(Level::Error, "event")
            .field("stream", self.stream)
            .field("group", self.group)
            .field("entryId", delivery.entry.id.to_string())
            .field("outcome", "dead-lettered")
            .field("deliveries", delivery.deliveries)
            .field("reason", reason)
            .field("deadLetters", dead_letters.as_str())
            .field("deadLetterId", dead_letter_id.to_string())
            .emit();
        wake.report.dead_lettered += 1;
        wake.acks.push(delivery.entry.id);
        Ok(())
    }

    fn flush_acks(&self, wake: &mut Wake) -> Result<(), DeliveryError> {
        if wake.acks.is_empty() {
            return Ok(());
        }
        let mut args: Vec<RedisArg> = vec![self.stream.into(), self.group.into()];
        args.extend(wake.acks.drain(..).map(|id| id.to_string().into()));
        self.redis.execute("XACK", &args)?;
        Ok(())
    }

    /// Marks entries still waiting for a predecessor as idle for `retry_idle_ms` already, so the
    /// next wake-up (typically the one the predecessor's publication causes) retries them at
    /// once instead of after the idle time. `JUSTID` leaves their delivery counts alone.
    fn ready_for_retry(&self, ids: &[EntryId]) -> Result<(), DeliveryError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut args: Vec<RedisArg> = vec![
            self.stream.into(),
            self.group.into(),
            self.group.into(),
            RedisArg::Int(0),
        ];
        args.extend(ids.iter().map(|id| id.to_string().into()));
        args.push("IDLE".into());
        args.push(self.retry_idle_arg());
        args.push("JUSTID".into());
        self.redis.execute("XCLAIM", &args)?;
        Ok(())
    }
}
