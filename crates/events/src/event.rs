//! [`Event`] and the one table that pairs each variant with its record and its subject.

use crate::{
    DecodeError, Envelope, ExpirationComplete, OrderCancelled, OrderCompleted, OrderCreated,
    PassCheckedIn, PaymentCreated, PaymentExpired, TicketCreated, TicketUpdated, wire,
};

/// Builds everything that depends on the subject table, so a subject is written exactly once.
/// Each variant is named after, and holds, the generated record of the same name.
macro_rules! events {
    ($($variant:ident => $subject:literal,)+) => {
        /// Any event of the contract, tagged by its record.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Event {
            $(
                #[doc = concat!("Subject `", $subject, "`.")]
                $variant($variant),
            )+
        }

        impl Event {
            /// Every subject, one per variant, in declaration order.
            pub const SUBJECTS: &'static [&'static str] = &[$($subject),+];

            /// The subject this event is published under, which names its record.
            pub fn subject(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $subject,)+
                }
            }

            /// Serializes the record alone, as it appears in an envelope's `data`.
            fn data(&self) -> serde_json::Value {
                // Records hold only strings, integers, options, enums and records, all of which
                // serde_json can represent, so serializing them cannot fail.
                let data = match self {
                    $(Self::$variant(record) => serde_json::to_value(record),)+
                };
                wire::keys_to_wire(data.expect("an event record always serializes to JSON"))
            }

            /// Reads the record that `subject` names out of `data`.
            fn from_data(subject: &str, data: &serde_json::Value) -> Result<Self, DecodeError> {
                use serde::Deserialize as _;
                match subject {
                    $(
                        $subject => wire::keys_from_wire(data.clone())
                            .and_then($variant::deserialize)
                            .map(Self::$variant)
                            .map_err(|source| DecodeError::InvalidData {
                                subject: $subject,
                                source,
                            }),
                    )+
                    unknown => Err(DecodeError::UnknownSubject(unknown.to_owned())),
                }
            }
        }

        $(
            impl $variant {
                #[doc = concat!("The subject of this record: `", $subject, "`.")]
                pub const SUBJECT: &'static str = $subject;
            }

            impl From<$variant> for Event {
                fn from(record: $variant) -> Self {
                    Self::$variant(record)
                }
            }
        )+
    };
}

events! {
    TicketCreated => "ticket:created",
    TicketUpdated => "ticket:updated",
    OrderCreated => "order:created",
    OrderCancelled => "order:cancelled",
    OrderCompleted => "order:completed",
    ExpirationComplete => "expiration:complete",
    PaymentCreated => "payment:created",
    PaymentExpired => "payment:expired",
    PassCheckedIn => "pass:checked-in",
}

impl Event {
    /// Wraps this event in an envelope with the given event id (a fresh UUID v4) and time of
    /// occurrence (RFC 3339 UTC with milliseconds, such as `2024-05-01T12:00:00.000Z`).
    pub fn to_envelope(&self, id: impl Into<String>, occurred_at: impl Into<String>) -> Envelope {
        Envelope {
            id: id.into(),
            subject: self.subject().to_owned(),
            occurred_at: occurred_at.into(),
            data: self.data(),
            request_id: None,
        }
    }
}

impl Envelope {
    /// Reads the event this envelope carries.
    ///
    /// Fails with [`DecodeError::UnknownSubject`] when the subject is not in the contract, and
    /// with [`DecodeError::InvalidData`] when `data` is not the record the subject names.
    pub fn decode(&self) -> Result<Event, DecodeError> {
        Event::from_data(&self.subject, &self.data)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{OrderStatus, TicketRef, TicketStatus};

    const EVENT_ID: &str = "0b8f6a52-3c1d-4e7a-9f20-5d4c3b2a1e01";
    const OCCURRED_AT: &str = "2024-05-01T12:00:00.000Z";

    fn ticket_ref() -> TicketRef {
        TicketRef {
            id: "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f".into(),
            price_cents: 2050,
        }
    }

    /// One event per variant; `samples_cover_every_subject` keeps it complete.
    fn samples() -> Vec<Event> {
        vec![
            TicketCreated {
                id: "t1".into(),
                title: "Concert".into(),
                price_cents: 2050,
                user_id: "u1".into(),
                version: 0,
            }
            .into(),
            TicketUpdated {
                id: "t1".into(),
                title: "Concert, front row".into(),
                price_cents: 2500,
                user_id: "u1".into(),
                version: 1,
                order_id: Some("o1".into()),
                status: TicketStatus::Reserved,
                listing: None,
            }
            .into(),
            TicketUpdated {
                id: "t1".into(),
                title: "Concert".into(),
                price_cents: 2050,
                user_id: "u1".into(),
                version: 2,
                order_id: None,
                status: TicketStatus::Available,
                listing: None,
            }
            .into(),
            OrderCreated {
                id: "o1".into(),
                user_id: "u2".into(),
                status: OrderStatus::AwaitingPayment,
                version: 0,
                expires_at: "2024-05-01T12:01:00.000Z".into(),
                ticket: ticket_ref(),
                placed_seq: Some(3),
                seller_id: Some("u1".into()),
            }
            .into(),
            OrderCancelled {
                id: "o1".into(),
                user_id: "u2".into(),
                version: 1,
                ticket: ticket_ref(),
            }
            .into(),
            OrderCompleted {
                id: "o1".into(),
                user_id: "u2".into(),
                version: 1,
                ticket: ticket_ref(),
            }
            .into(),
            ExpirationComplete {
                order_id: "o1".into(),
            }
            .into(),
            PaymentCreated {
                id: "p1".into(),
                order_id: "o1".into(),
                stripe_id: "ch_3PAbCdEfGhIjKlMn".into(),
                paid_at: Some("2024-05-01T12:00:41.000Z".into()),
            }
            .into(),
            PaymentExpired {
                order_id: "o2".into(),
            }
            .into(),
            PassCheckedIn {
                ticket_id: "t1".into(),
                generation: 2,
                at: "2024-05-02T19:30:00.125Z".into(),
            }
            .into(),
        ]
    }

    #[test]
    fn samples_cover_every_subject() {
        let sampled: BTreeSet<_> = samples().iter().map(Event::subject).collect();
        let all: BTreeSet<_> = Event::SUBJECTS.iter().copied().collect();
        assert_eq!(sampled, all);
    }

    #[test]
    fn every_event_survives_a_round_trip_through_json() {
        for event in samples() {
            let json = event.to_envelope(EVENT_ID, OCCURRED_AT).to_json();
            let envelope = Envelope::from_json(&json).expect("our own output parses");
            assert_eq!(envelope.id, EVENT_ID);
            assert_eq!(envelope.occurred_at, OCCURRED_AT);
            assert_eq!(envelope.subject, event.subject());
            assert_eq!(envelope.decode().expect("our own output decodes"), event);
        }
    }

    #[test]
    fn each_record_names_the_subject_of_its_variant() {
        for event in samples() {
            let record_subject = match &event {
                Event::TicketCreated(_) => TicketCreated::SUBJECT,
                Event::TicketUpdated(_) => TicketUpdated::SUBJECT,
                Event::OrderCreated(_) => OrderCreated::SUBJECT,
                Event::OrderCancelled(_) => OrderCancelled::SUBJECT,
                Event::OrderCompleted(_) => OrderCompleted::SUBJECT,
                Event::ExpirationComplete(_) => ExpirationComplete::SUBJECT,
                Event::PaymentCreated(_) => PaymentCreated::SUBJECT,
                Event::PaymentExpired(_) => PaymentExpired::SUBJECT,
                Event::PassCheckedIn(_) => PassCheckedIn::SUBJECT,
            };
            assert_eq!(record_subject, event.subject());
        }
    }

    #[test]
    fn subjects_are_the_ones_the_services_agreed_on() {
        assert_eq!(
            Event::SUBJECTS,
            [
                "ticket:created",
                "ticket:updated",
                "order:created",
                "order:cancelled",
                "order:completed",
                "expiration:complete",
                "payment:created",
                "payment:expired",
                "pass:checked-in",
            ]
        );
    }
}
