//! The one mapping between the generated records and the JSON on the wire.
//!
//! wit-bindgen can add derives to the records it generates but no serde attributes, so the
//! derived JSON has the Rust field names (`user_id`) and would have the Rust variant names
//! (`AwaitingPayment`). The wire speaks the HTTP API's language instead, and this module is the
//! only place that translates:
//!
//! - keys: every object in an event's `data` is a record (WIT has no maps), so every key is a
//!   field name; [`keys_to_wire`] writes them in camelCase and [`keys_from_wire`] reads them back,
//!   refusing a key that is not camelCase so the wire keeps one spelling;
//! - enums: the generated enums get no derived serde (`additional_derives_ignore`); the
//!   [`wire_enum!`] impls below give each case the name the API writes, with `as_str` and `parse`
//!   for services that store or render the same names.

use serde::de::Error as _;
use serde_json::{Map, Value};

use crate::{OrderStatus, TicketStatus};

/// Gives a generated enum its wire names: `as_str`, `parse`, `ALL`, and serde impls that use
/// them. The `match` in `as_str` is exhaustive, so a case added to the WIT fails to compile until
/// it has a name here.
macro_rules! wire_enum {
    ($ty:ident { $($variant:ident => $name:literal,)+ }) => {
        impl $ty {
            /// Every case, in WIT order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name on the wire, which is also how the HTTP API writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }

            /// Reads a name [`as_str`](Self::as_str) wrote; anything else is `None`.
            pub fn parse(text: &str) -> Option<$ty> {
                match text {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                $ty::parse(&text).ok_or_else(|| D::Error::unknown_variant(&text, &[$($name),+]))
            }
        }
    };
}

wire_enum!(TicketStatus {
    Available => "available",
    Reserved => "reserved",
    Sold => "sold",
});

wire_enum!(OrderStatus {
    Created => "created",
    AwaitingPayment => "awaiting:payment",
    Cancelled => "cancelled",
    Complete => "complete",
});

/// Rewrites every key of `value`'s objects, at any depth, from a Rust field name to camelCase:
/// `user_id` becomes `userId`.
pub(crate) fn keys_to_wire(value: Value) -> Value {
    rename_keys(value, &mut |key| Ok(camel_case(&key)))
        .unwrap_or_else(|never: std::convert::Infallible| match never {})
}

/// Rewrites every key of `value`'s objects, at any depth, from camelCase to the Rust field name:
/// `userId` becomes `user_id`. A key that is not camelCase (it holds `_` or `-`, or starts with a
/// capital) is an error naming it.
pub(crate) fn keys_from_wire(value: Value) -> Result<Value, serde_json::Error> {
    rename_keys(value, &mut |key| {
        if key.contains(['_', '-']) || key.starts_with(|c: char| c.is_ascii_uppercase()) {
            Err(serde_json::Error::custom(format!(
                "key {key:?} is not camelCase"
            )))
        } else {
            Ok(snake_case(&key))
        }
    })
}

fn rename_keys<E>(
    value: Value,
    rename: &mut impl FnMut(String) -> Result<String, E>,
) -> Result<Value, E> {
    Ok(match value {
        Value::Object(fields) => {
            let mut renamed = Map::with_capacity(fields.len());
            for (key, field) in fields {
                renamed.insert(rename(key)?, rename_keys(field, rename)?);
            }
            Value::Object(renamed)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| rename_keys(item, rename))
                .collect::<Result<_, _>>()?,
        ),
        other => other,
    })
}

fn camel_case(snake: &str) -> String {
    let mut camel = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                camel.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => camel.push(c),
        }
    }
    camel
}

fn snake_case(camel: &str) -> String {
    let mut snake = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    #[test]
    fn every_status_has_one_wire_name_that_reads_back_as_itself() {
        let ticket: Vec<&str> = TicketStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(ticket, ["available", "reserved", "sold"]);
        let order: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            order,
            ["created", "awaiting:payment", "cancelled", "complete"]
        );
        for status in TicketStatus::ALL {
            assert_eq!(TicketStatus::parse(status.as_str()), Some(*status));
            let json = serde_json::to_value(status).expect("serializes");
            assert_eq!(json, json!(status.as_str()));
            assert_eq!(
                serde_json::from_value::<TicketStatus>(json).expect("deserializes"),
                *status
            );
        }
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(*status));
            let json = serde_json::to_value(status).expect("serializes");
            assert_eq!(
                serde_json::from_value::<OrderStatus>(json).expect("deserializes"),
                *status
            );
        }
        let names: BTreeSet<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names.len(), OrderStatus::ALL.len());
    }

    #[test]
    fn rust_variant_names_and_unknown_names_are_not_statuses() {
        for text in ["Created", "AwaitingPayment", "awaiting-payment", "", "paid"] {
            assert_eq!(OrderStatus::parse(text), None, "{text:?}");
            assert!(serde_json::from_value::<OrderStatus>(json!(text)).is_err());
        }
        for text in ["Available", "taken"] {
            assert_eq!(TicketStatus::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn keys_become_camel_case_at_every_depth_and_come_back() {
        let rust = json!({
            "id": "o1",
            "user_id": "u1",
            "expires_at": "2024-05-01T12:01:00.000Z",
            "ticket": {"id": "t1", "price_cents": 2050},
            "order_id": null,
        });
        let wire = keys_to_wire(rust.clone());
        assert_eq!(
            wire,
            json!({
                "id": "o1",
                "userId": "u1",
                "expiresAt": "2024-05-01T12:01:00.000Z",
                "ticket": {"id": "t1", "priceCents": 2050},
                "orderId": null,
            })
        );
        assert_eq!(keys_from_wire(wire).expect("camelCase keys"), rust);
    }

    #[test]
    fn values_are_never_renamed() {
        let rust = json!({"title": "user_id and more", "tags": ["a_b"]});
        assert_eq!(keys_to_wire(rust.clone()), rust);
    }

    #[test]
    fn keys_that_are_not_camel_case_are_refused() {
        for data in [
            json!({"user_id": "u1"}),
            json!({"ticket": {"price_cents": 1}}),
            json!({"UserId": "u1"}),
            json!({"user-id": "u1"}),
        ] {
            assert!(keys_from_wire(data.clone()).is_err(), "{data}");
        }
    }
}
