//! A ticket: as stored, as the API shows it, and as the events about it carry it.

use domain::{Price, TicketId, Title, Version};
use events::{Event, TicketCreated, TicketUpdated};
use serde::{Serialize, Serializer};

/// Where a ticket stands: the contract's enum, whose names (`available`, `reserved`, `sold`) are
/// also what the database stores and the API renders, so there is one mapping for all three.
pub use events::TicketStatus;

/// A ticket as stored. Serializes as the API's ticket JSON:
/// `{"id","title","price","userId","version","status","faceValue","listing"}`, plus `"orderId"`
/// while an order holds or bought it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Insertion order: newest first in listings, and the paging cursor.
    pub seq: i64,
    pub id: TicketId,
    pub title: Title,
    pub price: Price,
    /// The price of the first listing, which caps a resale's.
    pub face_value: Price,
    /// 1 for the first listing, one more for each resale.
    pub listing: u32,
    /// The seller: the first seller, or the holder who listed it again.
    pub user_id: String,
    pub version: Version,
    /// The order holding the ticket (reserved) or that bought it (sold).
    pub order_id: Option<String>,
    pub status: TicketStatus,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TicketJson<'a> {
    id: &'a TicketId,
    title: &'a Title,
    price: Price,
    user_id: &'a str,
    version: Version,
    status: TicketStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
    face_value: Price,
    listing: u32,
}

impl Serialize for Ticket {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        TicketJson {
            id: &self.id,
            title: &self.title,
            price: self.price,
            user_id: &self.user_id,
            version: self.version,
            status: self.status,
            order_id: self.order_id.as_deref(),
            face_value: self.face_value,
            listing: self.listing,
        }
        .serialize(serializer)
    }
}

impl Ticket {
    /// `ticket:created` for a ticket just inserted.
    pub fn created_event(&self) -> Event {
        TicketCreated {
            id: self.id.to_string(),
            title: self.title.to_string(),
            price_cents: self.price.cents(),
            user_id: self.user_id.clone(),
            version: self.version.value(),
        }
        .into()
    }

    /// `ticket:updated`: the whole ticket as it is after a change.
    pub fn updated_event(&self) -> Event {
        TicketUpdated {
            id: self.id.to_string(),
            title: self.title.to_string(),
            price_cents: self.price.cents(),
            user_id: self.user_id.clone(),
            version: self.version.value(),
            order_id: self.order_id.clone(),
            status: self.status,
            listing: Some(self.listing),
        }
        .into()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    pub(crate) fn ticket(order_id: Option<&str>, status: TicketStatus) -> Ticket {
        Ticket {
            seq: 3,
            id: TicketId::parse("3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f").expect("valid id"),
            title: Title::parse("Concert").expect("valid title"),
            price: Price::from_cents(1999).expect("valid price"),
            face_value: Price::from_cents(1999).expect("valid price"),
            listing: 1,
            user_id: "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a".to_owned(),
            version: Version::new(2),
            order_id: order_id.map(str::to_owned),
            status,
        }
    }

    #[test]
    fn an_available_ticket_renders_without_an_order_id() {
        assert_eq!(
            serde_json::to_value(ticket(None, TicketStatus::Available)).expect("serialize"),
            json!({
                "id": "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
                "title": "Concert",
                "price": 19.99,
                "userId": "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a",
                "version": 2,
                "status": "available",
                "faceValue": 19.99,
                "listing": 1,
            })
        );
    }

    #[test]
    fn a_held_ticket_renders_its_order_id() {
        let value =
            serde_json::to_value(ticket(Some("o1"), TicketStatus::Reserved)).expect("serialize");
        assert_eq!(value["orderId"], json!("o1"));
        assert_eq!(value["status"], json!("reserved"));
    }

    #[test]
    fn events_carry_the_ticket_in_cents_with_its_version_and_status() {
        let sold = ticket(Some("o1"), TicketStatus::Sold);
        assert_eq!(
            sold.updated_event(),
            Event::TicketUpdated(TicketUpdated {
                id: "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f".to_owned(),
                title: "Concert".to_owned(),
                price_cents: 1999,
                user_id: "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a".to_owned(),
                version: 2,
                order_id: Some("o1".to_owned()),
                status: events::TicketStatus::Sold,
                listing: Some(1),
            })
        );
        assert_eq!(
            sold.created_event(),
            Event::TicketCreated(TicketCreated {
                id: "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f".to_owned(),
                title: "Concert".to_owned(),
                price_cents: 1999,
                user_id: "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a".to_owned(),
                version: 2,
            })
        );
    }
}
