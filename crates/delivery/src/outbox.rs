//! The outbox: events written with the change that caused them, and the relay that appends them
//! to their streams after commit.
//!
//! A row is marked sent only after `XADD` succeeded, so an event is never lost: if Redis is away,
//! the row waits for the next relay (after the next write, or on the housekeeping tick). The
//! price is that a relay that dies between `XADD` and marking the row sent appends the event
//! again later; consumers drop the duplicate by its event id.
//!
//! An answered `XADD` is not yet a durable one: Redis as shipped fsyncs its append-only file once
//! a second, so a crash can take the last second of entries while the rest of Redis (its epoch
//! included) survives. The relay therefore records each sent row's entry id, and housekeeping
//! checks the entries once they are older than [`VERIFY_AFTER_MS`], sending again the rows whose
//! entry is gone ([`verify_sent`]). A Redis that lost everything is caught by its epoch instead
//! ([`resend_after_data_loss`]).

use std::cell::RefCell;

use events::{Envelope, Event};
use storage::{Database, SqlValue};

use crate::reply::{self, EVENT_FIELD};
use crate::{DeliveryError, Redis, RedisArg, RedisValue, stream_for_subject};

/// How long a relay owns the rows it claimed. Far longer than appending a batch takes, so
/// another relay only takes them over when this one died.
pub const RELAY_LEASE_MS: u64 = 10_000;

/// Streams are capped (approximately, which lets Redis trim whole nodes cheaply) so they cannot
/// grow without bound; a million entries is weeks of history at the expected rates.
pub const STREAM_MAX_LEN: i64 = 1_000_000;

/// The key holding the epoch of a Redis: a random id set once by the first relay that finds none,
/// so a Redis that restarted without its data (or a new one) has a new epoch.
pub const EPOCH_KEY: &str = "events:epoch";

/// How old a stream entry must be before housekeeping checks that it survived: past Redis's
/// once-a-second fsync with room to spare, so a present entry is on disk.
pub const VERIFY_AFTER_MS: u64 = 3_000;

/// Rows checked per [`verify_sent`] call.
const VERIFY_BATCH: i64 = 1000;

/// Sends again what consumers may not have applied when the Redis this database last published
/// to has lost its data, and returns how many rows it marked for sending.
///
/// A Redis that restarts empty loses the stream entries consumers had not read yet, and the
/// outbox had marked them sent. Redis's epoch ([`EPOCH_KEY`]) tells: when it differs from the
/// epoch this database recorded, every row above the acknowledged watermark
/// ([`crate::record_acknowledged`]) is marked unsent (every retained row, 7 days, when no
/// watermark was ever recorded), and the next relay appends them again in commit order. So
/// healing costs what was in flight, not the history kept. Consumers apply each event once by
/// its id, so events they had applied already are dropped as duplicates. Run it before relaying, on the
/// housekeeping tick; `new_epoch` is a fresh random id, used if Redis has none yet.
pub fn resend_after_data_loss(
    db: &dyn Database,
    redis: &dyn Redis,
    new_epoch: &str,
) -> Result<usize, DeliveryError> {
    redis.execute("SET", &[EPOCH_KEY.into(), new_epoch.into(), "NX".into()])?;
    let reply = redis.execute("GET", &[EPOCH_KEY.into()])?;
    let epoch = match reply.as_slice() {
        [RedisValue::Bytes(bytes)] => String::from_utf8_lossy(bytes).into_owned(),
        other => {
            return Err(DeliveryError::Protocol(format!(
                "GET {EPOCH_KEY}: {other:?}"
            )));
        }
    };
    storage::transaction(db, |tx| -> Result<usize, DeliveryError> {
        let known = tx.execute(
            "SELECT value FROM delivery_state WHERE key = 'redis_epoch'",
            &[],
        )?;
        if let Some(row) = known.first()
            && row.text("value")? == epoch
        {
            return Ok(0);
        }
        let acknowledged = crate::acknowledged::acknowledged_seq(tx)?.unwrap_or(-1);
        let marked = tx.execute(
            "UPDATE outbox SET sent_at_ms = NULL, claimed_until_ms = NULL \
             WHERE sent_at_ms IS NOT NULL AND seq > ? RETURNING seq",
            &[acknowledged.into()],
        )?;
        tx.execute("DELETE FROM outbox_unverified", &[])?;
        tx.execute("DELETE FROM outbox_unacked", &[])?;
        tx.execute(
            "INSERT INTO delivery_state (key, value) VALUES ('redis_epoch', ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[epoch.as_str().into()],
        )?;
        Ok(marked.len())
    })
}

thread_local! {
    /// The rows this thread enqueued and has not relayed yet, oldest first.
    static ENQUEUED: RefCell<Vec<Enqueued>> = const { RefCell::new(Vec::new()) };
}

/// A row as [`enqueue_envelope`] wrote it: its seq, event id and the lease it was born with, which
/// together tell it from a row written after a rollback freed its seq.
struct Enqueued {
    seq: i64,
    event_id: String,
    lease: i64,
}

/// Writes `event` to the outbox, for the relay to send after the caller's transaction commits, in
/// an envelope with a fresh event id that says it occurred at `now_ms`, carrying the request id
/// of what is being handled ([`log_line::request_id`]). Call it inside the transaction that makes
/// the change the event describes.
pub fn enqueue(tx: &dyn Database, event: &Event, now_ms: u64) -> Result<(), DeliveryError> {
    let mut envelope = event.to_envelope(
        domain::EventId::new_random().to_string(),
        domain::rfc3339_millis(now_ms),
    );
    envelope.request_id = log_line::request_id();
    enqueue_envelope(tx, &envelope, now_ms)
}

/// Whether the handler that ran on this thread enqueued events that no relay on this thread has
/// taken yet: a component relays after a request only when its handler wrote to the outbox. (An
/// event whose transaction then rolled back counts too, until a relay finds it gone.)
pub fn has_enqueued() -> bool {
    ENQUEUED.with(|enqueued| !enqueued.borrow().is_empty())
}

/// Writes `envelope` to the outbox as it is. Call it inside the transaction that makes the
/// change the event describes.
///
/// The row is born leased to this thread's next [`relay`], which sends it without claiming it
/// first: a claim is a write transaction of its own, and the outbox's database has one writer.
/// Should this thread never relay (the instance died after its commit), the row goes out with
/// the first relay after the lease ended, on a later write or the housekeeping tick.
pub fn enqueue_envelope(
    tx: &dyn Database,
    envelope: &Envelope,
    now_ms: u64,
) -> Result<(), DeliveryError> {
    let stream = stream_for_subject(&envelope.subject).ok_or_else(|| {
        DeliveryError::Encode(format!("no stream carries subject {:?}", envelope.subject))
    })?;
    let json = String::from_utf8(envelope.to_json())
        .map_err(|error| DeliveryError::Encode(format!("envelope is not UTF-8: {error}")))?;
    let lease = lease_from(now_ms)?;
    let rows = tx.execute(
        "INSERT INTO outbox (event_id, stream, envelope, created_at_ms, claimed_until_ms) \
         VALUES (?, ?, ?, ?, ?) RETURNING seq",
        &[
            envelope.id.as_str().into(),
            stream.into(),
            json.into(),
            SqlValue::from_u64(now_ms)?,
            SqlValue::Integer(lease),
        ],
    )?;
    let seq = rows
        .first()
        .ok_or_else(|| DeliveryError::Protocol("INSERT … RETURNING seq: no row".to_owned()))?
        .integer("seq")?;
    ENQUEUED.with(|enqueued| {
        enqueued.borrow_mut().push(Enqueued {
            seq,
            event_id: envelope.id.clone(),
            lease,
        })
    });
    Ok(())
}

/// Every envelope in the outbox, sent or not, in commit order: what a service has enqueued (for
/// tests, and for an operator checking a database).
pub fn outbox_envelopes(db: &dyn Database) -> Result<Vec<Envelope>, DeliveryError> {
    db.execute("SELECT envelope FROM outbox ORDER BY seq", &[])?
        .iter()
        .map(|row| {
            let json = row.text("envelope")?;
            Envelope::from_json(json.as_bytes())
                .map_err(|error| DeliveryError::Protocol(format!("an outbox row: {error}")))
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayReport {
    /// Rows appended to their stream and marked sent by this call.
    pub sent: usize,
    /// The relay claimed as many rows as it could take, so unsent rows may be left that no
    /// other relay holds: call again.
    pub remaining: bool,
}

struct Claimed {
    seq: i64,
    event_id: String,
    stream: String,
    subject: String,
    envelope: String,
    /// The lease the row is held under, until it is sent or released.
    lease: i64,
}

/// The lease a relay (or a row born leased) takes at `now_ms`.
fn lease_from(now_ms: u64) -> Result<i64, DeliveryError> {
    let lease = now_ms.saturating_add(RELAY_LEASE_MS);
    i64::try_from(lease)
        .map_err(|_| DeliveryError::Encode(format!("a lease until {lease} ms does not fit")))
}

/// Appends up to `limit` unsent outbox rows to their streams, oldest first (`XADD <stream> MAXLEN
/// ~ 1000000 * event <json>`), publishes each envelope on the channel named by its subject
/// (`PUBLISH order:created <json>`), which wakes the consumers of that subject, and marks the
/// rows sent: [`append`] then [`Appended::finish`].
pub fn relay(
    db: &dyn Database,
    redis: &dyn Redis,
    now_ms: u64,
    limit: usize,
) -> Result<RelayReport, DeliveryError> {
    append(db, redis, now_ms, limit)?.finish(db, redis, now_ms)
}

/// Rows [`append`] put on their streams, still to publish and mark sent.
#[must_use = "the rows stay unsent until `finish` marks them"]
pub struct Appended {
    rows: Vec<(Claimed, reply::EntryId)>,
    /// Whether as many rows were taken as the limit allowed.
    full: bool,
}

/// The first half of [`relay`]: takes up to `limit` unsent rows and appends them to their streams
/// in commit order. Once it returned, a reader of the streams finds the events (payments
/// catching up on an order a moment after the buyer placed it); an HTTP component can answer
/// then and [`finish`](Appended::finish) after its response went out.
///
/// The rows come first from those this thread enqueued, which were born leased to it, then from
/// those no relay holds (their writer died, Redis was away, or a lease ended), claimed with a
/// lease in one `UPDATE … RETURNING` so that relays running at once (one per concurrent request)
/// take different rows; that write is skipped when a read finds no such row, which is the usual
/// case. At the first Redis error the rows appended so far are marked sent, the others released
/// for the next relay, and the error returned.
pub fn append(
    db: &dyn Database,
    redis: &dyn Redis,
    now_ms: u64,
    limit: usize,
) -> Result<Appended, DeliveryError> {
    let limit = limit.max(1);
    let mut claimed = take_enqueued(db, limit)?;
    if claimed.len() < limit {
        claimed.extend(claim_unleased(db, now_ms, limit - claimed.len())?);
    }
    // RETURNING gives no order guarantee; commit order is what consumers should see.
    claimed.sort_by_key(|row| row.seq);
    let full = claimed.len() >= limit;
    let mut rows = Vec::with_capacity(claimed.len());
    let mut unsent = claimed.into_iter();
    for row in unsent.by_ref() {
        match append_row(redis, &row) {
            Ok(entry) => rows.push((row, entry)),
            Err(error) => {
                let unsent: Vec<Claimed> = std::iter::once(row).chain(unsent).collect();
                release(db, &unsent);
                if !rows.is_empty() {
                    mark_sent(db, &rows, now_ms)?;
                }
                return Err(error);
            }
        }
    }
    Ok(Appended { rows, full })
}

impl Appended {
    /// The second half of [`relay`]: wakes each appended row's consumers and marks the rows sent,
    /// with their entries to verify, in one transaction. A crash before the mark sends the rows
    /// again once their lease ends, which consumers drop as duplicates by event id.
    pub fn finish(
        self,
        db: &dyn Database,
        redis: &dyn Redis,
        now_ms: u64,
    ) -> Result<RelayReport, DeliveryError> {
        // The stream is the durable log; the channel carries the same envelope to whoever
        // listens now. A lost PUBLISH delays consumers until their next wake-up, and loses
        // nothing, so it does not keep the rows from being marked.
        let published = self
            .rows
            .iter()
            .try_for_each(|(row, _)| redis.publish(&row.subject, row.envelope.as_bytes()));
        if !self.rows.is_empty() {
            mark_sent(db, &self.rows, now_ms)?;
        }
        published?;
        // Fewer rows than the limit means none were left to claim; rows committed since are
        // their writers' to relay.
        Ok(RelayReport {
            sent: self.rows.len(),
            remaining: self.full || has_enqueued(),
        })
    }
}

/// The outbox columns a relay sends a row with.
const RELAYED_COLUMNS: &str = "seq, event_id, stream, \
     json_extract(envelope, '$.subject') AS subject, envelope, claimed_until_ms AS lease";

/// Matches the rows of a JSON array of `[seq, event id, lease]` ([`held_json`]) still unsent
/// and under that lease.
const HELD_ROWS: &str = "sent_at_ms IS NULL AND (seq, event_id, claimed_until_ms) IN (\
     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
     json_extract(value, '$[2]') FROM json_each(?))";

/// Rows as `(seq, event id, lease)`, in the JSON array [`HELD_ROWS`] reads.
fn held_json<'a>(rows: impl Iterator<Item = (i64, &'a str, i64)>) -> String {
    serde_json::Value::from_iter(rows.map(|row| serde_json::json!([row.0, row.1, row.2])))
        .to_string()
}

/// Gives rows back to whichever relay comes next, instead of leaving them leased for 10 s. Only
/// rows still unsent and under the lease given with each are touched.
fn unlease(db: &dyn Database, held: String) -> Result<(), DeliveryError> {
    db.execute(
        &format!("UPDATE outbox SET claimed_until_ms = NULL WHERE {HELD_ROWS}"),
        &[held.into()],
    )?;
    Ok(())
}

/// The first `limit` rows this thread enqueued, in the JSON array [`HELD_ROWS`] reads; `None`
/// when there are none.
fn enqueued_json(limit: usize) -> Option<String> {
    ENQUEUED.with(|enqueued| {
        let enqueued = enqueued.borrow();
        let taken = &enqueued[..limit.min(enqueued.len())];
        (!taken.is_empty()).then(|| {
            held_json(
                taken
                    .iter()
                    .map(|row| (row.seq, row.event_id.as_str(), row.lease)),
            )
        })
    })
}

/// Forgets the first `limit` rows this thread enqueued.
fn forget_enqueued(limit: usize) {
    ENQUEUED.with(|enqueued| {
        let mut enqueued = enqueued.borrow_mut();
        let taken = limit.min(enqueued.len());
        enqueued.drain(..taken);
    });
}

/// Up to `limit` of the rows this thread enqueued, oldest first, as they were committed: a row
/// whose transaction rolled back is not found, and one whose lease ran out (this thread stalled
/// for 10 s) may be another relay's by now, so it is left to that one.
fn take_enqueued(db: &dyn Database, limit: usize) -> Result<Vec<Claimed>, DeliveryError> {
    let Some(mine) = enqueued_json(limit) else {
        return Ok(Vec::new());
    };
    let rows = db.execute(
        &format!("SELECT {RELAYED_COLUMNS} FROM outbox WHERE {HELD_ROWS}"),
        &[mine.into()],
    )?;
    let claimed = claimed_rows(&rows)?;
    forget_enqueued(limit);
    Ok(claimed)
}

/// Gives the rows this thread enqueued to whichever relay comes next, for a request that could
/// not reach Redis to relay them itself; otherwise they would wait out the lease they were born
/// with (10 s) after Redis is back.
pub fn release_enqueued(db: &dyn Database) -> Result<(), DeliveryError> {
    let Some(mine) = enqueued_json(usize::MAX) else {
        return Ok(());
    };
    unlease(db, mine)?;
    forget_enqueued(usize::MAX);
    Ok(())
}

/// Claims up to `limit` unsent rows that no relay holds, under a lease of its own.
fn claim_unleased(
    db: &dyn Database,
    now_ms: u64,
    limit: usize,
) -> Result<Vec<Claimed>, DeliveryError> {
    /// Unsent and held by no relay at `?1`.
    const UNLEASED: &str =
        "sent_at_ms IS NULL AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?1)";
    let now = SqlValue::from_u64(now_ms)?;
    // A read first, since the claim is a write even when it finds nothing.
    let any = db.execute(
        &format!("SELECT seq FROM outbox WHERE {UNLEASED} LIMIT 1"),
        std::slice::from_ref(&now),
    )?;
    if any.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db.execute(
        &format!(
            "UPDATE outbox SET claimed_until_ms = ?2 WHERE seq IN (\
                SELECT seq FROM outbox WHERE {UNLEASED} ORDER BY seq LIMIT ?3) \
             RETURNING {RELAYED_COLUMNS}"
        ),
        &[
            now,
            SqlValue::Integer(lease_from(now_ms)?),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ],
    )?;
    claimed_rows(&rows)
}

fn claimed_rows(rows: &storage::Rows) -> Result<Vec<Claimed>, DeliveryError> {
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                seq: row.integer("seq")?,
                event_id: row.text("event_id")?.to_owned(),
                stream: row.text("stream")?.to_owned(),
                subject: row.text("subject")?.to_owned(),
                envelope: row.text("envelope")?.to_owned(),
                lease: row.integer("lease")?,
            })
        })
        .collect()
}

/// Marks `rows` sent, with their stream entries to verify, in one transaction.
fn mark_sent(
    db: &dyn Database,
    rows: &[(Claimed, reply::EntryId)],
    now_ms: u64,
) -> Result<(), DeliveryError> {
    let entries = serde_json::Value::from_iter(rows.iter().map(|(row, entry)| {
        serde_json::json!({"seq": row.seq, "stream": row.stream, "ms": entry.ms, "n": entry.seq})
    }))
    .to_string();
    let now = SqlValue::from_u64(now_ms)?;
    storage::transaction(db, |tx| -> Result<(), DeliveryError> {
        tx.execute(
            "UPDATE outbox SET sent_at_ms = ?, claimed_until_ms = NULL \
             WHERE seq IN (SELECT json_extract(value, '$.seq') FROM json_each(?))",
            &[now.clone(), entries.as_str().into()],
        )?;
        tx.execute(
            "INSERT INTO outbox_unverified (seq, stream, entry_ms, entry_seq, sent_at_ms) \
             SELECT json_extract(value, '$.seq'), json_extract(value, '$.stream'), \
             json_extract(value, '$.ms'), json_extract(value, '$.n'), ? FROM json_each(?) \
             WHERE true ON CONFLICT (seq) DO UPDATE SET stream = excluded.stream, \
             entry_ms = excluded.entry_ms, entry_seq = excluded.entry_seq, \
             sent_at_ms = excluded.sent_at_ms",
            &[now.clone(), entries.as_str().into()],
        )?;
        Ok(())
    })
}

/// What [`verify_sent`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows whose stream entry is there: durable now, not checked again.
    pub verified: usize,
    /// Rows whose stream entry is gone, marked unsent for the next relay to append again.
    pub resent: usize,
}

/// Checks that the stream entries of rows sent at least [`VERIFY_AFTER_MS`] before `now_ms`
/// survived, and marks the rows whose entry is gone unsent, for the next relay (run it on the
/// housekeeping tick, before relaying). Consumers drop an event they applied already by its id.
///
/// A crash loses a suffix of Redis's append-only file, but entries appended after Redis came back
/// survive beside the lost ones, so the newest entry's survival says nothing of older ones. Per
/// stream, the ids from the oldest row's entry to the newest's are read once
/// ([`entries_between`]) and each row is looked up among them.
pub fn verify_sent(
    db: &dyn Database,
    redis: &dyn Redis,
    now_ms: u64,
) -> Result<VerifyReport, DeliveryError> {
    let before = SqlValue::from_u64(now_ms.saturating_sub(VERIFY_AFTER_MS))?;
    let rows = db.execute(
        "SELECT seq, stream, entry_ms, entry_seq FROM outbox_unverified WHERE sent_at_ms <= ? \
         ORDER BY stream, entry_ms, entry_seq LIMIT ?",
        &[before, VERIFY_BATCH.into()],
    )?;
    let mut by_stream: Vec<(String, Vec<(i64, String)>)> = Vec::new();
    for row in rows.iter() {
        let stream = row.text("stream")?;
        let entry = format!("{}-{}", row.integer("entry_ms")?, row.integer("entry_seq")?);
        match by_stream.last_mut() {
            Some((name, entries)) if name == stream => entries.push((row.integer("seq")?, entry)),
            _ => by_stream.push((stream.to_owned(), vec![(row.integer("seq")?, entry)])),
        }
    }
    let mut report = VerifyReport::default();
    for (stream, entries) in &by_stream {
        let (Some((_, oldest)), Some((_, newest))) = (entries.first(), entries.last()) else {
            continue;
        };
        let on_stream = entries_between(redis, stream, oldest, newest)?;
        let mut present = Vec::new();
        let mut missing = Vec::new();
        for (seq, entry) in entries {
            if on_stream.contains(entry) {
                present.push(*seq);
            } else {
                missing.push(*seq);
            }
        }
        storage::transaction(db, |tx| -> Result<(), DeliveryError> {
            let seqs = |seqs: &[i64]| serde_json::to_string(seqs).unwrap_or_default();
            tx.execute(
                "UPDATE outbox SET sent_at_ms = NULL, claimed_until_ms = NULL \
                 WHERE seq IN (SELECT value FROM json_each(?))",
                &[seqs(&missing).into()],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO outbox_unacked (seq, stream, entry_ms, entry_seq) \
                 SELECT seq, stream, entry_ms, entry_seq FROM outbox_unverified \
                 WHERE seq IN (SELECT value FROM json_each(?))",
                &[seqs(&present).into()],
            )?;
            tx.execute(
                "DELETE FROM outbox_unverified WHERE seq IN (SELECT value FROM json_each(?))",
                &[seqs(&[present.as_slice(), missing.as_slice()].concat()).into()],
            )?;
            Ok(())
        })?;
        report.verified += present.len();
        report.resent += missing.len();
    }
    Ok(report)
}

/// The ids of `stream`'s entries from `first` to `last`, both included, read a page at a time
/// (other replicas' entries may lie between ours).
fn entries_between(
    redis: &dyn Redis,
    stream: &str,
    first: &str,
    last: &str,
) -> Result<std::collections::HashSet<String>, DeliveryError> {
    const PAGE: i64 = 1000;
    let mut found = std::collections::HashSet::new();
    let mut start = first.to_owned();
    loop {
        let reply = redis.execute(
            "XRANGE",
            &[
                stream.into(),
                start.as_str().into(),
                last.into(),
                "COUNT".into(),
                RedisArg::Int(PAGE),
            ],
        )?;
        // The reply comes flattened: each entry's id, then its field and value (`event` and the
        // envelope's JSON, which never reads as an id).
        let ids: Vec<String> = reply
            .iter()
            .filter_map(reply::EntryId::of)
            .map(|id| id.to_string())
            .collect();
        let full = i64::try_from(ids.len()).unwrap_or(i64::MAX) >= PAGE;
        if let Some(newest) = ids.last() {
            // Exclusive from the next page on (Redis 6.2 and later).
            start = format!("({newest}");
        }
        found.extend(ids);
        if !full {
            return Ok(found);
        }
    }
}

fn append_row(redis: &dyn Redis, row: &Claimed) -> Result<reply::EntryId, DeliveryError> {
    let reply = redis.execute(
        "XADD",
        &[
            row.stream.as_str().into(),
            "MAXLEN".into(),
            "~".into(),
            RedisArg::Int(STREAM_MAX_LEN),
            "*".into(),
            EVENT_FIELD.into(),
            row.envelope.as_str().into(),
        ],
    )?;
    reply::added_id(&reply)
}

/// Gives the rows back for the next relay ([`unlease`]). A failure here is only logged: the
/// relay is already failing with the error that matters, and the leases expire on their own.
fn release(db: &dyn Database, rows: &[Claimed]) {
    if rows.is_empty() {
        return;
    }
    let held = held_json(
        rows.iter()
            .map(|row| (row.seq, row.event_id.as_str(), row.lease)),
    );
    if let Err(error) = unlease(db, held) {
        log_line::warn(
            "delivery",
            &format!("could not release {} outbox rows: {error}", rows.len()),
        );
    }
}
