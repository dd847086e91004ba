//! What woke a consuming component. Spin hands a Redis-triggered component the message's payload
//! and nothing else (not even the channel), so the payload alone must tell.

use events::Envelope;

use crate::{TICK_KEY, stream_for_subject};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The housekeeping tick's key expired: relay, retry, prune, re-arm.
    Housekeeping,
    /// An event was published; its stream holds it (and anything else not yet read).
    Event { stream: &'static str },
    /// Anything else, such as another key expiring on `__keyevent@0__:expired`.
    Other,
}

impl Wake {
    /// Reads a message payload: the tick key's name, an event envelope of the contract, or
    /// anything else.
    pub fn of(payload: &[u8]) -> Wake {
        if payload == TICK_KEY.as_bytes() {
            return Wake::Housekeeping;
        }
        // Only an envelope starts with `{`; key names never do, so most payloads of the expiry
        // channel are told apart without parsing.
        if payload.first() == Some(&b'{')
            && let Ok(envelope) = Envelope::from_json(payload)
            && let Some(stream) = stream_for_subject(&envelope.subject)
        {
            return Wake::Event { stream };
        }
        Wake::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_tells_the_tick_an_event_and_anything_else_apart() {
        let envelope = events::Event::ExpirationComplete(events::ExpirationComplete {
            order_id: "o1".into(),
        })
        .to_envelope("e1", "2024-05-01T12:00:00.000Z");
        assert_eq!(Wake::of(TICK_KEY.as_bytes()), Wake::Housekeeping);
        assert_eq!(
            Wake::of(&envelope.to_json()),
            Wake::Event {
                stream: "events:expiration"
            }
        );
        let unknown = br#"{"id":"e1","subject":"invoice:paid","occurredAt":"x","data":{}}"#;
        for payload in [
            &b"expiration:order:o1"[..],
            b"",
            b"{not json",
            unknown,
            b"housekeeping:tick:old",
        ] {
            assert_eq!(Wake::of(payload), Wake::Other, "{payload:?}");
        }
    }
}
