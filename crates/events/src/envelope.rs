//! The envelope every event travels in, and the ways reading one can fail.

use serde::{Deserialize, Serialize};

/// One published event: `{ "id", "subject", "occurredAt", "data" }`, and `"requestId"` when a
/// request caused it.
///
/// Build one with [`Event::to_envelope`](crate::Event::to_envelope) and read one with
/// [`Envelope::decode`]; the fields are public so a consumer can log or dead-letter an envelope it
/// cannot decode without losing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The event's own id, a UUID v4, unique per event; consumers record it to apply each event
    /// once however often it is delivered.
    pub id: String,
    /// Which event this is, such as `order:created`; it names the record in `data`.
    pub subject: String,
    /// When the change happened: RFC 3339 UTC with milliseconds, such as
    /// `2024-05-01T12:00:00.000Z`. Serialized as `occurredAt`.
    pub occurred_at: String,
    /// The record the subject names, in the wire format the crate documentation describes.
    pub data: serde_json::Value,
    /// The id of the request that caused the event, directly or through other events, so one
    /// purchase can be followed across services' logs. Absent when nothing caused it (a timer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Envelope {
    /// The envelope as the JSON bytes that go on the wire.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings and a JSON value, written to memory: there is nothing that could fail.
        serde_json::to_vec(self).expect("an envelope always serializes to JSON")
    }

    /// Parses an envelope from wire bytes, without looking at its subject or data yet.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(DecodeError::MalformedEnvelope)
    }
}

/// Why a message could not be read as an event of the contract.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not JSON, or not an object with `id`, `subject`, `occurredAt` and `data`.
    #[error("message is not an event envelope")]
    MalformedEnvelope(#[source] serde_json::Error),
    /// The envelope is well formed but its subject is not in the contract (a newer publisher,
    /// or a stray message).
    #[error("unknown event subject {0:?}")]
    UnknownSubject(String),
    /// The subject is known but `data` is not its record: a field is missing or has the wrong
    /// type, or an enum has a value the contract does not list.
    #[error("data of a {subject} event does not match its record")]
    InvalidData {
        /// The subject whose record `data` failed to match.
        subject: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Event, TicketStatus, TicketUpdated};

    fn envelope(subject: &str, data: serde_json::Value) -> Envelope {
        Envelope {
            id: "0b8f6a52-3c1d-4e7a-9f20-5d4c3b2a1e01".into(),
            subject: subject.into(),
            occurred_at: "2024-05-01T12:00:00.000Z".into(),
            data,
            request_id: None,
        }
    }

    #[test]
    fn the_envelope_keys_are_camel_case() {
        let value: serde_json::Value =
            serde_json::from_slice(&envelope("expiration:complete", json!({})).to_json())
                .expect("valid JSON");
        let mut keys: Vec<_> = value
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        assert_eq!(keys, ["data", "id", "occurredAt", "subject"]);
    }

    #[test]
    fn bytes_that_are_not_an_envelope_are_malformed() {
        let cases: [&[u8]; 4] = [
            b"",
            b"not json",
            br#"["an", "array"]"#,
            br#"{"id": "x", "subject": "order:created", "data": {}}"#,
        ];
        for bytes in cases {
            assert!(
                matches!(
                    Envelope::from_json(bytes),
                    Err(DecodeError::MalformedEnvelope(_))
                ),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn an_unknown_subject_is_reported_as_such() {
        let error = envelope("order:updated", json!({}))
            .decode()
            .expect_err("must fail");
        assert!(
            matches!(&error, DecodeError::UnknownSubject(subject) if subject == "order:updated"),
            "{error:?}"
        );
    }

    #[test]
    fn data_that_breaks_the_record_is_invalid_data_for_its_subject() {
        let ticket = json!({
            "id": "t1", "title": "Concert", "priceCents": 2050, "userId": "u1", "version": 1,
            "orderId": null, "status": "available",
        });
        let mut cases = Vec::new();
        for (key, bad) in [
            ("priceCents", json!(20.5)),
            ("priceCents", json!(-1)),
            ("priceCents", json!("2050")),
            ("version", json!(null)),
            ("status", json!("Available")),
            ("status", json!("Unknown")),
            ("orderId", json!(7)),
            ("user_id", json!("u1")),
        ] {
            let mut data = ticket.clone();
            data[key] = bad;
            cases.push(data);
        }
        let mut missing_title = ticket.clone();
        missing_title
            .as_object_mut()
            .expect("an object")
            .remove("title");
        cases.push(missing_title);

        assert!(envelope("ticket:updated", ticket).decode().is_ok());
        for data in cases {
            let error = envelope("ticket:updated", data.clone())
                .decode()
                .expect_err("must fail");
            assert!(
                matches!(
                    error,
                    DecodeError::InvalidData {
                        subject: "ticket:updated",
                        ..
                    }
                ),
                "{data}: {error:?}"
            );
        }
    }

    #[test]
    fn an_absent_option_decodes_as_none_and_unknown_keys_are_ignored() {
        let data = json!({
            "id": "t1", "title": "Concert", "priceCents": 2050, "userId": "u1", "version": 2,
            "status": "available", "addedLater": true,
        });
        let event = envelope("ticket:updated", data).decode().expect("decodes");
        assert_eq!(
            event,
            Event::TicketUpdated(TicketUpdated {
                id: "t1".into(),
                title: "Concert".into(),
                price_cents: 2050,
                user_id: "u1".into(),
                version: 2,
                order_id: None,
                status: TicketStatus::Available,
                listing: None,
            })
        );
    }
}
