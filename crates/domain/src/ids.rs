//! Identifiers of users, tickets, orders and events.
//!
//! All four are random (v4) UUIDs. Parsing accepts only the canonical lower-case hyphenated
//! form that `Display` produces, so every id has exactly one spelling: a path segment that is
//! not one is "no such resource" (404), and two spellings can never name two rows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The text is not a canonical lower-case hyphenated UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id")]
pub struct InvalidId;

fn parse_canonical(text: &str) -> Result<Uuid, InvalidId> {
    // `Uuid::try_parse` also accepts upper case, braces, URNs and the simple form; only the
    // form we print is allowed, so compare the round trip.
    let uuid = Uuid::try_parse(text).map_err(|_| InvalidId)?;
    let mut buffer = Uuid::encode_buffer();
    if uuid.hyphenated().encode_lower(&mut buffer) == text {
        Ok(uuid)
    } else {
        Err(InvalidId)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }

            /// Parses the canonical lower-case hyphenated form, and nothing else.
            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                parse_canonical(text).map(Self)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, InvalidId> {
                Self::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0.hyphenated())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_id!(
    /// A user account, owned by the auth service.
    UserId
);
uuid_id!(
    /// A ticket for sale, owned by the tickets service.
    TicketId
);
uuid_id!(
    /// An order for a ticket, owned by the orders service.
    OrderId
);
uuid_id!(
    /// One published event, for de-duplication by consumers.
    EventId
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CANONICAL: &str = "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c";

    #[test]
    fn a_canonical_id_parses_and_prints_unchanged() {
        let id = TicketId::parse(CANONICAL).expect("canonical id");
        assert_eq!(id.to_string(), CANONICAL);
        assert_eq!(format!("{id:?}"), format!("TicketId({CANONICAL})"));
    }

    #[test]
    fn other_spellings_of_a_uuid_and_garbage_are_rejected() {
        let cases = [
            "",
            "abc",
            "6F1C2A9E-3B7D-4C8E-9A0B-1D2E3F4A5B6C",
            "6f1c2a9e3b7d4c8e9a0b1d2e3f4a5b6c",
            "{6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c}",
            "urn:uuid:6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c",
            " 6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c",
            "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c ",
            "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6",
            "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6cd",
            "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6g",
            "507f1f77bcf86cd799439011",
        ];
        for text in cases {
            assert_eq!(OrderId::parse(text), Err(InvalidId), "{text:?}");
        }
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(UserId::new_random(), UserId::new_random());
    }

    #[test]
    fn ids_serialize_as_their_string_and_reject_non_canonical_strings() {
        let id = EventId::parse(CANONICAL).expect("canonical id");
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, format!("\"{CANONICAL}\""));
        let back: EventId = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, id);
        let upper = format!("\"{}\"", CANONICAL.to_uppercase());
        assert!(serde_json::from_str::<EventId>(&upper).is_err());
        assert!(serde_json::from_str::<EventId>("42").is_err());
    }

    proptest! {
        #[test]
        fn every_random_id_round_trips_through_its_text(bytes in any::<[u8; 16]>()) {
            let id = UserId(uuid::Builder::from_random_bytes(bytes).into_uuid());
            prop_assert_eq!(UserId::parse(&id.to_string()), Ok(id));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics_and_accepts_only_what_it_prints(text in ".{0,40}") {
            if let Ok(id) = UserId::parse(&text) {
                prop_assert_eq!(id.to_string(), text);
            }
        }
    }
}
