//! What happens once money moved at Stripe: a payment that succeeded either completes its order
//! or, when the order was cancelled meanwhile, is refunded. Both paths that learn of a success
//! (the confirm answer and the webhook) and the consumer that learns of a cancellation end here,
//! so each payment is settled exactly once whichever arrives first or how often.
//!
//! Deciding is one transaction over the payment and the replica of its order: it either marks
//! the payment `succeeded` and puts `payment:created` in the outbox, or marks it
//! `refund_pending`. The refund itself is a call to Stripe, made after that commit under an
//! idempotency key derived from the payment; if it fails the payment stays `refund_pending`
//! and the housekeeping tick tries again ([`refund_pending`]), so no money is kept for a ticket
//! the buyer did not get.

use anyhow::Context;
use domain::OrderId;
use events::PaymentCreated;
use storage::Database;

use crate::payment::{Payment, PaymentStatus};
use crate::store;
use crate::stripe::PaymentGateway;

/// Settles the payment tied to PaymentIntent `intent_id` after Stripe said it succeeded. `None`
/// when no payment of ours is tied to that intent.
pub fn succeeded(
    db: &dyn Database,
    gateway: &dyn PaymentGateway,
    intent_id: &str,
    now_ms: u64,
) -> anyhow::Result<Option<Payment>> {
    let settled = storage::transaction(db, |tx| -> anyhow::Result<Option<Payment>> {
        let Some(payment) = store::payment_by_intent(tx, intent_id)? else {
            return Ok(None);
        };
        if payment.status.is_paid() {
            // Settled before: a repeated webhook, a confirm answer after the webhook, a retry.
            return Ok(Some(payment));
        }
        let order_id = OrderId::parse(&payment.order_id).with_context(|| {
            format!("payment {} names order {:?}", payment.id, payment.order_id)
        })?;
        let order_open = store::order(tx, &order_id)?.is_some_and(|order| order.is_open());
        if order_open {
            store::set_status(tx, &payment.id, PaymentStatus::Succeeded, None, now_ms)?;
            let paid = PaymentCreated {
                id: payment.id.clone(),
                order_id: payment.order_id.clone(),
                stripe_id: payment.stripe_id.clone(),
            };
            store::publish(tx, &paid.into(), now_ms)?;
        } else {
            eprintln!(
                "WARN payment {} succeeded for order {}, which is no longer open: refunding it",
                payment.id, payment.order_id
            );
            store::set_status(tx, &payment.id, PaymentStatus::RefundPending, None, now_ms)?;
        }
        store::payment_by_intent(tx, intent_id)
    })?;
    match settled {
        Some(payment) if payment.status == PaymentStatus::RefundPending => {
            refund(db, gateway, &payment, now_ms)?;
            store::payment_by_intent(db, intent_id)
        }
        other => Ok(other),
    }
}

/// Makes the refunds still pending (the housekeeping retry). Returns how many were made.
pub fn refund_pending(
    db: &dyn Database,
    gateway: &dyn PaymentGateway,
    now_ms: u64,
) -> anyhow::Result<usize> {
    let mut refunded = 0;
    for payment in store::pending_refunds(db)? {
        if refund(db, gateway, &payment, now_ms)? {
            refunded += 1;
        }
    }
    Ok(refunded)
}

/// The idempotency key of a payment's refund: a refund retried after a lost answer refunds once.
pub fn refund_idempotency_key(payment_id: &str) -> String {
    format!("payment-{payment_id}-refund")
}

/// Refunds one payment at Stripe and records it. A Stripe failure is logged and leaves the
/// payment `refund_pending` for the next try (`Ok(false)`); only storage failures are errors.
fn refund(
    db: &dyn Database,
    gateway: &dyn PaymentGateway,
    payment: &Payment,
    now_ms: u64,
) -> anyhow::Result<bool> {
    match gateway.refund(&payment.stripe_id, &refund_idempotency_key(&payment.id)) {
        Ok(refund) => {
            store::set_status(
                db,
                &payment.id,
                PaymentStatus::Refunded,
                Some(&refund.id),
                now_ms,
            )?;
            eprintln!(
                "payment {} for order {} refunded ({})",
                payment.id, payment.order_id, refund.id
            );
            Ok(true)
        }
        Err(error) => {
            eprintln!(
                "WARN refunding payment {} for order {} failed, to be retried: {error}",
                payment.id, payment.order_id
            );
            Ok(false)
        }
    }
}
