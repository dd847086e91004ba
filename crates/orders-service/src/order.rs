//! An order and the ticket it is for: as stored, as the API shows them, and as events carry them.

use domain::{OrderId, Price, TicketId, Title, Version, rfc3339_millis};
use events::{Event, OrderCancelled, OrderCompleted, OrderCreated, TicketRef};
use serde::{Serialize, Serializer};

/// Where an order stands: the contract's enum, whose names (`created`, `awaiting:payment`,
/// `cancelled`, `complete`) are also what the database stores and the API renders.
pub use events::OrderStatus;

/// Whether an order in `status` still holds its ticket and may be paid or cancelled.
pub fn is_open(status: OrderStatus) -> bool {
    matches!(status, OrderStatus::Created | OrderStatus::AwaitingPayment)
}

/// A ticket as this service's replica holds it: the tickets service's ticket at `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: TicketId,
    pub title: Title,
    pub price: Price,
    /// The seller.
    pub user_id: String,
    pub version: Version,
}

/// The API's ticket inside an order: `{"id","title","price","version"}`.
impl Serialize for Ticket {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct TicketJson<'a> {
            id: &'a TicketId,
            title: &'a Title,
            price: Price,
            version: Version,
        }
        TicketJson {
            id: &self.id,
            title: &self.title,
            price: self.price,
            version: self.version,
        }
        .serialize(serializer)
    }
}

/// An order as stored, with the ticket it is for as the replica holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Insertion order: a buyer's orders are listed oldest first, and the paging cursor.
    pub seq: i64,
    pub id: OrderId,
    /// The buyer.
    pub user_id: String,
    pub status: OrderStatus,
    /// The ticket's price when the order was placed: what the buyer pays.
    pub price: Price,
    /// Milliseconds since the Unix epoch at which an unpaid order expires.
    pub expires_at_ms: u64,
    pub version: Version,
    pub ticket: Ticket,
}

/// The API's order JSON: `{"id","userId","status","expiresAt","version","price","ticket"}`,
/// `expiresAt` in RFC 3339 UTC with milliseconds and `price` the amount to pay in dollars.
impl Serialize for Order {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct OrderJson<'a> {
            id: &'a OrderId,
            user_id: &'a str,
            status: OrderStatus,
            expires_at: String,
            version: Version,
            price: Price,
            ticket: &'a Ticket,
        }
        OrderJson {
            id: &self.id,
            user_id: &self.user_id,
            status: self.status,
            expires_at: rfc3339_millis(self.expires_at_ms),
            version: self.version,
            price: self.price,
            ticket: &self.ticket,
        }
        .serialize(serializer)
    }
}

impl Order {
    fn ticket_ref(&self) -> TicketRef {
        TicketRef {
            id: self.ticket.id.to_string(),
            price_cents: self.price.cents(),
        }
    }

    /// `order:created` for an order just placed.
    pub fn created_event(&self) -> Event {
        OrderCreated {
            id: self.id.to_string(),
            user_id: self.user_id.clone(),
            status: self.status,
            version: self.version.value(),
            expires_at: rfc3339_millis(self.expires_at_ms),
            ticket: self.ticket_ref(),
            placed_seq: u64::try_from(self.seq).ok(),
            seller_id: Some(self.ticket.user_id.clone()),
        }
        .into()
    }

    /// `order:cancelled` for an order just cancelled.
    pub fn cancelled_event(&self) -> Event {
        OrderCancelled {
            id: self.id.to_string(),
            user_id: self.user_id.clone(),
            version: self.version.value(),
            ticket: self.ticket_ref(),
        }
        .into()
    }

    /// `order:completed` for an order just paid.
    pub fn completed_event(&self) -> Event {
        OrderCompleted {
            id: self.id.to_string(),
            user_id: self.user_id.clone(),
            version: self.version.value(),
            ticket: self.ticket_ref(),
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn order(status: OrderStatus) -> Order {
        Order {
            seq: 4,
            id: OrderId::parse("5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b").expect("valid id"),
            user_id: "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a".to_owned(),
            status,
            price: Price::from_cents(1999).expect("valid price"),
            expires_at_ms: 1_795_576_745_678,
            version: Version::new(1),
            ticket: Ticket {
                id: TicketId::parse("3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f").expect("valid id"),
                title: Title::parse("Concert").expect("valid title"),
                price: Price::from_cents(2500).expect("valid price"),
                user_id: "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c".to_owned(),
                version: Version::new(3),
            },
        }
    }

    #[test]
    fn an_order_renders_as_the_api_shows_it() {
        assert_eq!(
            serde_json::to_value(order(OrderStatus::AwaitingPayment)).expect("serialize"),
            json!({
                "id": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
                "userId": "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a",
                "status": "awaiting:payment",
                "expiresAt": "2026-11-25T03:19:05.678Z",
                "version": 1,
                "price": 19.99,
                "ticket": {
                    "id": "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
                    "title": "Concert",
                    "price": 25,
                    "version": 3,
                },
            })
        );
    }

    #[test]
    fn events_carry_the_price_the_order_was_placed_at() {
        let placed = order(OrderStatus::Created);
        let Event::OrderCreated(created) = placed.created_event() else {
            panic!("expected order:created");
        };
        assert_eq!(created.ticket.price_cents, 1999);
        assert_eq!(created.status, OrderStatus::Created);
        assert_eq!(created.expires_at, "2026-11-25T03:19:05.678Z");
        let Event::OrderCancelled(cancelled) = placed.cancelled_event() else {
            panic!("expected order:cancelled");
        };
        assert_eq!((cancelled.version, cancelled.ticket.price_cents), (1, 1999));
        let Event::OrderCompleted(completed) = placed.completed_event() else {
            panic!("expected order:completed");
        };
        assert_eq!(completed.ticket.id, "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f");
    }

    #[test]
    fn only_created_and_awaiting_payment_orders_are_open() {
        let open: Vec<&str> = OrderStatus::ALL
            .iter()
            .filter(|status| is_open(**status))
            .map(|status| status.as_str())
            .collect();
        assert_eq!(open, ["created", "awaiting:payment"]);
    }
}
