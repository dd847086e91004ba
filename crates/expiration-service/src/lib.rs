//! The expiration timer: an unpaid order's time runs out and `expiration:complete` is published,
//! on time, exactly once, with nothing but Redis (Spin has no timer trigger).
//!
//! The orders database is the truth about an order; this crate only keeps the schedule:
//!
//! 1. **Schedule.** On `order:created` ([`ScheduleOrders`], the consumer's [`Sink`]) the order is
//!    added to the sorted set [`SCHEDULE_KEY`] scored by its `expiresAt`, and a key
//!    `expiration:order:<id>` ([`order_key`]) is set to expire at that instant (`PXAT`).
//!    `order:cancelled` and `order:completed` take it out again. All of it is idempotent, so a
//!    redelivered event changes nothing.
//! 2. **Wake-up.** With `notify-keyspace-events Ex`, Redis publishes the key's name on
//!    `__keyevent@0__:expired` when it expires (10–15 ms late), which triggers the component.
//!    The housekeeping tick arrives on the same channel, so a key event that is lost (Redis
//!    restarted, the component failed) only delays the order to the next tick.
//! 3. **Sweep.** Every wake-up runs [`sweep`]: it reads the due orders from the sorted set, by
//!    Redis's own clock, and claims each with one script that checks the order is still
//!    scheduled, appends `expiration:complete` to `events:expiration`, and only then removes it
//!    from the schedule. Redis runs a script alone, so of several instances sweeping at once
//!    exactly one claims each order, and a failed append leaves it scheduled for the next sweep.
//!    The claimed envelope is then published on the `expiration:complete` channel.
//!
//! An order cancelled or paid before its time is unscheduled and never expired; if its
//! cancellation arrives late, the orders service ignores the expiry of an order that is no longer
//! open anyway.

use anyhow::Context;
use delivery::{
    Accepted, ConsumeReport, Consumer, ConsumerSettings, DeliveryError, EVENT_FIELD, Redis,
    RedisArg, RedisValue, Sink, Wake,
};
use domain::{EventId, parse_rfc3339_millis, rfc3339_millis};
use events::{Envelope, Event, ExpirationComplete};

/// The schedule: order ids scored by their expiry in Unix milliseconds.
pub const SCHEDULE_KEY: &str = "expiration:schedule";

/// The prefix of the per-order keys whose expiry wakes the timer.
pub const ORDER_KEY_PREFIX: &str = "expiration:order:";

/// The consumer group the timer reads the order stream with.
pub const GROUP: &str = "expiration";

/// The stream the timer reads.
pub const ORDER_STREAM: &str = "events:order";

/// Due orders claimed per round trip of a sweep.
const SWEEP_BATCH: usize = 100;

/// `expiration:order:<id>`.
pub fn order_key(order_id: &str) -> String {
    format!("{ORDER_KEY_PREFIX}{order_id}")
}

/// What one wake-up of the timer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WakeReport {
    pub consumed: ConsumeReport,
    pub swept: SweepReport,
}

/// One wake-up of the timer component by a message with `payload`: an order event brings the
/// schedule up to date with the order stream (pending entries too on the housekeeping tick,
/// which is then re-armed to fire again in `tick_secs`); whatever woke it, it then sweeps.
pub fn on_message(
    redis: &dyn Redis,
    payload: &[u8],
    settings: ConsumerSettings,
    tick_secs: u64,
    now_ms: u64,
) -> Result<WakeReport, DeliveryError> {
    let consumer = Consumer {
        redis,
        stream: ORDER_STREAM,
        group: GROUP,
        settings,
    };
    let sink = ScheduleOrders { redis };
    let wake = Wake::of(payload);
    let consumed = match wake {
        Wake::Housekeeping => consumer.run(&sink, now_ms),
        Wake::Event { stream } if stream == ORDER_STREAM => consumer.run_on_message(&sink, now_ms),
        // An order's key expired (or some other key): the sweep below is the work.
        Wake::Event { .. } | Wake::Other => Ok(ConsumeReport::default()),
    };
    // Orders already scheduled are due whatever happened to the stream just now, and the tick
    // must be re-armed even when this wake-up failed, or housekeeping would stop.
    let swept = sweep(redis);
    if wake == Wake::Housekeeping {
        delivery::arm_tick(redis, tick_secs)?;
    }
    Ok(WakeReport {
        consumed: consumed?,
        swept: swept?,
    })
}

/// Puts an order on the schedule to expire at `expires_at_ms`: `ZADD` and the key that wakes the
/// timer then.
pub fn schedule(
    redis: &dyn Redis,
    order_id: &str,
    expires_at_ms: u64,
) -> Result<(), DeliveryError> {
    let at = i64::try_from(expires_at_ms)
        .map_err(|_| DeliveryError::Encode(format!("expiry {expires_at_ms} is too far")))?;
    redis.execute(
        "ZADD",
        &[SCHEDULE_KEY.into(), RedisArg::Int(at), order_id.into()],
    )?;
    redis.execute(
        "SET",
        &[
            order_key(order_id).into(),
            "1".into(),
            "PXAT".into(),
            RedisArg::Int(at),
        ],
    )?;
    Ok(())
}

/// Takes an order off the schedule (it was cancelled or paid).
pub fn unschedule(redis: &dyn Redis, order_id: &str) -> Result<(), DeliveryError> {
    redis.execute("ZREM", &[SCHEDULE_KEY.into(), order_id.into()])?;
    redis.execute("DEL", &[order_key(order_id).into()])?;
    Ok(())
}

/// Claims one scheduled order and appends its `expiration:complete`, atomically. KEYS: the
/// schedule, the expiration stream, the order's key. ARGV: the order id, the envelope JSON, the
/// stream's length cap, the entry's field name. Returns the new entry's id, or nil when the order
/// is no longer scheduled (another sweep claimed it, or it was cancelled). The append comes
/// before the removal, so if it fails the order stays scheduled.
const CLAIM_SCRIPT: &str = r"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then
  return false
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', ARGV[4], ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
return id
";

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Orders this sweep claimed and published `expiration:complete` for.
    pub expired: usize,
    /// Due orders another sweep claimed first.
    pub taken_by_others: usize,
}

/// Publishes `expiration:complete` for every scheduled order whose time has come by Redis's clock
/// (the clock its key expiries follow), claiming each exactly once across concurrent sweeps.
pub fn sweep(redis: &dyn Redis) -> Result<SweepReport, DeliveryError> {
    let stream = delivery::stream_for_subject(ExpirationComplete::SUBJECT)
        .ok_or_else(|| DeliveryError::Encode("no stream for expiration:complete".to_owned()))?;
    let now_ms = redis_time_ms(redis)?;
    let mut report = SweepReport::default();
    loop {
        let due = due_orders(redis, now_ms)?;
        for order_id in &due {
            let envelope = Event::from(ExpirationComplete {
                order_id: order_id.clone(),
            })
            .to_envelope(EventId::new_random().to_string(), rfc3339_millis(now_ms));
            if claim(redis, stream, order_id, &envelope)? {
                // The stream holds it now; a lost wake-up only delays its consumers.
                redis.publish(ExpirationComplete::SUBJECT, &envelope.to_json())?;
                report.expired += 1;
            } else {
                report.taken_by_others += 1;
            }
        }
        if due.len() < SWEEP_BATCH {
            return Ok(report);
        }
    }
}

fn claim(
    redis: &dyn Redis,
    stream: &str,
    order_id: &str,
    envelope: &Envelope,
) -> Result<bool, DeliveryError> {
    let reply = redis.execute(
        "EVAL",
        &[
            CLAIM_SCRIPT.into(),
            RedisArg::Int(3),
            SCHEDULE_KEY.into(),
            stream.into(),
            order_key(order_id).into(),
            order_id.into(),
            envelope.to_json().into(),
            RedisArg::Int(delivery::STREAM_MAX_LEN),
            EVENT_FIELD.into(),
        ],
    )?;
    match reply.as_slice() {
        [RedisValue::Bytes(_)] => Ok(true),
        [RedisValue::Nil] => Ok(false),
        other => Err(DeliveryError::Protocol(format!(
            "claim script reply: {other:?}"
        ))),
    }
}

/// Up to [`SWEEP_BATCH`] order ids due by `now_ms`, earliest first.
fn due_orders(redis: &dyn Redis, now_ms: u64) -> Result<Vec<String>, DeliveryError> {
    let now = i64::try_from(now_ms)
        .map_err(|_| DeliveryError::Protocol(format!("Redis time {now_ms} is too large")))?;
    let batch = i64::try_from(SWEEP_BATCH).unwrap_or(i64::MAX);
    let reply = redis.execute(
        "ZRANGEBYSCORE",
        &[
            SCHEDULE_KEY.into(),
            "-inf".into(),
            RedisArg::Int(now),
            "LIMIT".into(),
            RedisArg::Int(0),
            RedisArg::Int(batch),
        ],
    )?;
    reply
        .into_iter()
        .map(|value| match value {
            RedisValue::Bytes(bytes) => String::from_utf8(bytes)
                .map_err(|_| DeliveryError::Protocol("a scheduled id is not UTF-8".to_owned())),
            other => Err(DeliveryError::Protocol(format!(
                "ZRANGEBYSCORE reply item: {other:?}"
            ))),
        })
        .collect()
}

/// Redis's clock in Unix milliseconds (`TIME`).
fn redis_time_ms(redis: &dyn Redis) -> Result<u64, DeliveryError> {
    let reply = redis.execute("TIME", &[])?;
    let number = |value: &RedisValue| match value {
        RedisValue::Bytes(bytes) => std::str::from_utf8(bytes).ok()?.parse::<u64>().ok(),
        _ => None,
    };
    match reply.as_slice() {
        [secs, micros] => match (number(secs), number(micros)) {
            (Some(secs), Some(micros)) => Ok(secs * 1000 + micros / 1000),
            _ => Err(DeliveryError::Protocol(format!("TIME reply: {reply:?}"))),
        },
        _ => Err(DeliveryError::Protocol(format!("TIME reply: {reply:?}"))),
    }
}

/// The timer's [`Sink`] for the order stream: schedules created orders and unschedules cancelled
/// and completed ones. Redis's own operations are idempotent, so no event ids need recording.
pub struct ScheduleOrders<'a> {
    pub redis: &'a dyn Redis,
}

impl Sink for ScheduleOrders<'_> {
    fn accept(
        &self,
        _group: &str,
        _envelope: &Envelope,
        event: &Event,
        _now_ms: u64,
    ) -> anyhow::Result<Accepted> {
        match event {
            Event::OrderCreated(order) => {
                let expires_at = parse_rfc3339_millis(&order.expires_at).with_context(|| {
                    format!("expiresAt {:?} of order {}", order.expires_at, order.id)
                })?;
                schedule(self.redis, &order.id, expires_at)?;
            }
            Event::OrderCancelled(order) => unschedule(self.redis, &order.id)?,
            Event::OrderCompleted(order) => unschedule(self.redis, &order.id)?,
            _ => {}
        }
        Ok(Accepted::Applied)
    }
}
