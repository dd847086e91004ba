//! Durable, ordered delivery of domain events between services that share no database.
//!
//! Pub/sub alone loses every message sent while a consumer or Redis is away, and Spin's Redis
//! trigger never retries, so events travel through a log and pub/sub only wakes the readers.
//! Three words name the three steps of an event's way out, and mean nothing else here:
//! *enqueue* (write it to the outbox), *relay* (append it to its stream), *publish* (Redis
//! `PUBLISH` of the wake-up). An event flows like this:
//!
//! 1. **Enqueue.** The service makes its change and calls [`enqueue`] in the same SQLite
//!    transaction ([`storage::transaction`]), so the event exists exactly when the change does.
//! 2. **Relay.** After commit (when the request enqueued something, [`has_enqueued`]) and on
//!    every housekeeping tick, the component calls [`relay_and_arm`]: [`relay`] takes the rows
//!    this thread enqueued (born leased to it, so taking them writes nothing) and leases any other
//!    unsent `outbox` rows no relay holds, appends each to the Redis Stream of its aggregate type
//!    ([`stream_for_subject`]: `events:ticket`, `events:order`, …) with one field, `event`, holding
//!    the envelope JSON, marks the rows sent, and then publishes each envelope, exactly as stored,
//!    on the pub/sub channel named by its subject (`order:created`, …). Redis being down leaves
//!    the rows for the next relay.
//! 3. **Wake-up.** Each consuming component is triggered by the channels of the subjects it
//!    consumes (one `[[trigger.redis]]` each in `spin.toml`) and by the tick's
//!    [`EXPIRED_CHANNEL`] (armed with [`arm_tick`]), and hands the message to its service's
//!    [`Subscription`] ([`Subscription::wake_up`]). The message is only a wake-up: the stream is
//!    what consumers read, because pub/sub drops whatever is published while a subscriber is
//!    away.
//! 4. **Consume.** A [`Consumer`] per stream claims entries left pending too long, reads new
//!    ones, and applies each through a [`Sink`]; for a service database ([`DatabaseSink`]) that
//!    is its own transaction through the service's [`Handler`], recording the event id in
//!    `processed_events` in that transaction so a redelivery changes nothing; it acknowledges
//!    (`XACK`) after commit. An entry whose predecessor has not been applied
//!    ([`check_replica_version`] says `NotYet`) stays pending and is retried; an entry that keeps
//!    failing moves to a dead-letter stream ([`dead_letter_stream`]) and is logged.
//!
//! The ports, [`storage::Database`], [`Redis`] and the wake-up's [`Platform`], have Spin's
//! shapes: the Spin adapter implements them with spin-sdk, and the `native` feature provides
//! [`NativeRedis`] (and `storage::NativeDatabase`) for tests. Spin flattens every Redis reply
//! into one list, so every command here is chosen to give a reply that stays unambiguous when
//! flat (see the `reply` module).
//!
//! The tables involved are in [`SCHEMA`]; each service copies them into its migrations.

mod acknowledged;
mod consumer;
mod outbox;
mod redis;
mod replica;
mod reply;
mod schema;
mod tick;
mod wake;
mod wakeup;

#[cfg(feature = "native")]
mod native;
#[cfg(feature = "testing")]
pub mod testing;

pub use acknowledged::record_acknowledged;
pub use consumer::{
    Accepted, Applied, ConsumeReport, Consumer, ConsumerSettings, DatabaseSink, Handler, Sink,
};
#[cfg(feature = "native")]
pub use native::NativeRedis;
pub use outbox::{
    Appended, EPOCH_KEY, RELAY_LEASE_MS, RelayReport, STREAM_MAX_LEN, VERIFY_AFTER_MS,
    VerifyReport, append, enqueue, enqueue_envelope, has_enqueued, outbox_envelopes, relay,
    release_enqueued, resend_after_data_loss, verify_sent,
};
pub use redis::{Redis, RedisArg, RedisError, RedisValue};
pub use replica::{VersionCheck, check_replica_version, record_replica_version};
pub use reply::EVENT_FIELD;
pub use schema::{RETENTION_MS, SCHEMA, create_schema, prune};
pub use storage::StorageError;
pub use tick::{EXPIRED_CHANNEL, TICK_KEY, arm_tick};
pub use wake::Wake;
pub use wakeup::{
    Housekeeping, NoHousekeeping, Platform, RELAY_BATCH, Subscription, relay_and_arm,
    warn_on_failures,
};

/// Why delivering or consuming failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// Redis answered in a shape this crate does not expect.
    #[error("unexpected Redis reply: {0}")]
    Protocol(String),
    /// An event or argument cannot be written as this crate needs it.
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Every event stream, one per aggregate type.
pub const STREAMS: &[&str] = &[
    "events:ticket",
    "events:order",
    "events:expiration",
    "events:payment",
    "events:pass",
];

/// The stream (and pub/sub channel) that carries events of `subject`: its aggregate type before
/// the `:` picks it, so `ticket:updated` goes to `events:ticket`. `None` for anything else.
pub fn stream_for_subject(subject: &str) -> Option<&'static str> {
    let (aggregate, _) = subject.split_once(':')?;
    match aggregate {
        "ticket" => Some("events:ticket"),
        "order" => Some("events:order"),
        "expiration" => Some("events:expiration"),
        "payment" => Some("events:payment"),
        "pass" => Some("events:pass"),
        _ => None,
    }
}

/// Where `group`'s entries of `stream` go when they can never be applied:
/// `<stream>:dead-letter:<group>`.
pub fn dead_letter_stream(stream: &str, group: &str) -> String {
    format!("{stream}:dead-letter:{group}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_of_the_contract_has_a_stream_named_after_its_aggregate() {
        for subject in events::Event::SUBJECTS {
            let stream = stream_for_subject(subject).expect("a stream");
            assert!(STREAMS.contains(&stream));
            let aggregate = subject.split(':').next().expect("an aggregate");
            assert_eq!(stream, format!("events:{aggregate}"));
        }
        assert_eq!(stream_for_subject("order:cancelled"), Some("events:order"));
        assert_eq!(stream_for_subject("invoice:created"), None);
        assert_eq!(stream_for_subject("ticket"), None);
    }

    #[test]
    fn the_dead_letter_stream_names_stream_and_group() {
        assert_eq!(
            dead_letter_stream("events:order", "tickets"),
            "events:order:dead-letter:tickets"
        );
    }
}
