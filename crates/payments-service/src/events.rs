//! The payments service's consumer of order and expiration events: the replica of orders, in
//! version order, refunds for orders cancelled after their payment succeeded, and the end of each
//! order's time to pay (`expiration:complete`, [`crate::settlement::close_window`]).
//!
//! `order:created` starts an order at version 0 with the price to charge; `order:cancelled` and
//! `order:completed` apply when the replica holds `version - 1`, and wait otherwise. When a
//! cancellation finds the order's payment already `succeeded` (the buyer paid in the last second
//! and the expiry won the race at the orders service), the payment becomes `refund_pending` in
//! the same transaction; the component then makes the refund ([`crate::settlement`]).
//! `expiration:complete` carries no version: it is guarded by the order's window instead, so a
//! late or repeated one changes nothing.

use anyhow::Context;
use delivery::{Applied, Handler, VersionCheck};
use domain::{OrderId, Version, parse_rfc3339_millis};
use events::{Envelope, Event, OrderStatus};
use storage::Database;

use crate::payment::{Order, PaymentStatus};
use crate::{settlement, store};

/// The payments service's [`Handler`]. Subjects it does not consume are acknowledged and ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentsEvents;

impl Handler for PaymentsEvents {
    fn apply(
        &self,
        tx: &dyn Database,
        _envelope: &Envelope,
        event: &Event,
        now_ms: u64,
    ) -> anyhow::Result<Applied> {
        if let Event::ExpirationComplete(expired) = event {
            let order_id = OrderId::parse(&expired.order_id)
                .with_context(|| format!("order id {:?}", expired.order_id))?;
            return settlement::close_window(tx, &order_id, now_ms);
        }
        match OrderChange::of(event) {
            Some(change) => change.replicate(tx, now_ms),
            None => Ok(Applied::Done),
        }
    }
}

/// What an order event says of its order, for the replica.
struct OrderChange<'a> {
    id: &'a str,
    version: u64,
    user_id: &'a str,
    status: OrderStatus,
    price_cents: u64,
    /// Only `order:created` says when the order expires, who sells its ticket and which ticket
    /// it is; later events keep what it said.
    expires_at: Option<&'a str>,
    seller_id: Option<&'a str>,
    ticket_id: Option<&'a str>,
}

impl<'a> OrderChange<'a> {
    fn of(event: &'a Event) -> Option<Self> {
        let (order, status, created) = match event {
            Event::OrderCreated(order) => (
                (&order.id, order.version, &order.user_id, &order.ticket),
                order.status,
                Some((order.expires_at.as_str(), order.seller_id.as_deref())),
            ),
            Event::OrderCancelled(order) => (
                (&order.id, order.version, &order.user_id, &order.ticket),
                OrderStatus::Cancelled,
                None,
            ),
            Event::OrderCompleted(order) => (
                (&order.id, order.version, &order.user_id, &order.ticket),
                OrderStatus::Complete,
                None,
            ),
            _ => return None,
        };
        let (id, version, user_id, ticket) = order;
        Some(Self {
            id,
            version,
            user_id,
            status,
            price_cents: ticket.price_cents,
            expires_at: created.map(|(expires_at, _)| expires_at),
            seller_id: created.and_then(|(_, seller)| seller),
            ticket_id: created.map(|_| ticket.id.as_str()),
        })
    }

    /// Applies the change in version order; a cancellation of an order whose payment already
    /// succeeded makes that payment `refund_pending`.
    fn replicate(&self, tx: &dyn Database, now_ms: u64) -> anyhow::Result<Applied> {
        let (id, version) = (self.id, self.version);
        let order_id = OrderId::parse(id).with_context(|| format!("order id {id:?}"))?;
        let stored = store::order(tx, &order_id)?;
        match VersionCheck::of(stored.as_ref().map(|o| o.version.value()), version) {
            VersionCheck::Apply => {}
            VersionCheck::AlreadyApplied => return Ok(Applied::Done),
            VersionCheck::NotYet { have } => {
                return Ok(Applied::NotYet(format!(
                    "order {id} is at version {}, this event is version {version}",
                    have.map_or_else(|| "none".to_owned(), |have| have.to_string())
                )));
            }
        }
        let expires_at_ms = match (self.expires_at, &stored) {
            (Some(text), _) => parse_rfc3339_millis(text)
                .with_context(|| format!("expiresAt {text:?} of order {id}"))?,
            (None, Some(stored)) => stored.expires_at_ms,
            (None, None) => anyhow::bail!("order {id} changed before it was created"),
        };
        store::save_order(
            tx,
            &Order {
                id: order_id,
                user_id: self.user_id.to_owned(),
                status: self.status,
                price_cents: self.price_cents,
                expires_at_ms,
                version: Version::new(version),
                window: None,
                seller_id: self.seller_id.map(str::to_owned),
                ticket_id: self.ticket_id.map(str::to_owned),
            },
        )?;
        if self.status == OrderStatus::Cancelled
            && let Some(payment) = store::payment_for_order(tx, id)?
            && payment.status == PaymentStatus::Succeeded
        {
            crate::warn(&format!(
                "order {id} was cancelled after its payment {} succeeded: refunding it",
                payment.id
            ));
            settlement::decide_refund(tx, &payment, now_ms)?;
        }
        Ok(Applied::Done)
    }
}
