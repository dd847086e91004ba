//! What happens once money moved at Stripe, or an order's time to pay ran out. This service is
//! the one place that decides whether an order was paid in time, by one rule on Stripe's clock:
//! a payment that succeeded before the order's `expiresAt` wins, whenever its news arrives; one
//! that succeeded at or after it is refunded. The orders service applies the same rule to
//! `payment:created`'s `paidAt`, and otherwise waits for this service's `payment:expired`.
//!
//! - A success (the confirm answer, the webhook, or a check at Stripe while closing a window)
//!   ends in [`succeeded`]: one transaction over the payment and the replica of its order either
//!   marks the payment `succeeded` and puts `payment:created` in the outbox, or marks it
//!   `refund_pending` (too late, or the order was cancelled meanwhile).
//! - The end of an order's window (`expiration:complete`, or the housekeeping backstop
//!   [`close_overdue`] when that event never came) ends in [`close_window`]: with no payment
//!   started, the order lapses (`payment:expired`); with an unpaid one, the window is `closing`
//!   until [`settle_closing`] has cancelled the PaymentIntent at Stripe, which either guarantees
//!   it never succeeds (then the order lapses) or shows that it succeeded, and when.
//! - A refund is a call to Stripe after the decision committed, under an idempotency key derived
//!   from the payment ([`refund_pending`]); Stripe may finish it later (`refunding`, tracked by
//!   [`track_refunds`] and the refund webhooks) or fail it (`refund_failed`, an operator's case).
//!
//! Every status change is a forward-only guarded update, so two paths racing over one payment
//! (a double submit, a webhook beside a confirm answer) settle it once.

use anyhow::Context;
use delivery::Applied;
use domain::{OrderId, rfc3339_millis};
use events::{PaymentCreated, PaymentExpired};
use storage::Database;

use crate::payment::{Order, Payment, PaymentStatus, PaymentWindow};
use crate::stripe::{PaymentGateway, Refund, StripeError};
use crate::{payouts, store};

/// How many overdue orders one backstop pass closes.
const OVERDUE_BATCH: u32 = 500;

/// Settles the payment tied to PaymentIntent `intent_id`, which Stripe says succeeded at
/// `paid_at_ms`. `None` when no payment of ours is tied to that intent.
pub fn succeeded(
    db: &dyn Database,
    gateway: &dyn PaymentGateway,
    intent_id: &str,
    paid_at_ms: u64,
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
        let order = replica_order(tx, &payment)?;
        let open = order.is_open() && order.window != Some(PaymentWindow::Lapsed);
        if open && order.paid_in_time(paid_at_ms) {
            store::advance_status(tx, &payment.id, PaymentStatus::Succeeded, None, now_ms)?;
            if order.window.is_some() {
                store::set_window(tx, &order.id, None)?;
            }
            let paid = PaymentCreated {
                id: payment.id.clone(),
                order_id: payment.order_id.clone(),
                stripe_id: payment.stripe_id.clone(),
                paid_at: Some(rfc3339_millis(paid_at_ms)),
            };
            store::enqueue(tx, &paid.into(), now_ms)?;
            payouts::paid(tx, &payment.order_id, now_ms)?;
        } else {
            let why = if open {
                "after its order expired"
            } else {
                "for an order that is no longer open"
            };
            crate::warn(&format!(
                "payment {} succeeded {why} ({}): refunding it",
                payment.id, payment.order_id
            ));
            decide_refund(tx, &payment, now_ms)?;
            if open {
                lapse(tx, &order, now_ms)?;
            }
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

/// Closes the window of order `order_id` at its end, in the consumer's transaction: an order
/// with no payment lapses at once; one whose payment has not succeeded is marked `closing`, for
/// [`settle_closing`] to cancel its intent at Stripe after the commit. Waits for the replica to
/// know the order, and for the clock to reach its end.
pub fn close_window(tx: &dyn Database, order_id: &OrderId, now_ms: u64) -> anyhow::Result<Applied> {
    let Some(order) = store::order(tx, order_id)? else {
        return Ok(Applied::NotYet(format!(
            "order {order_id} is not in the replica yet"
        )));
    };
    if !order.is_open() || order.window.is_some() {
        return Ok(Applied::Done);
    }
    if now_ms < order.expires_at_ms {
        return Ok(Applied::NotYet(format!(
            "order {order_id} is payable for {} ms more",
            order.expires_at_ms - now_ms
        )));
    }
    match store::payment_for_order(tx, &order_id.to_string())? {
        None => lapse(tx, &order, now_ms)?,
        Some(payment) if payment.status.is_paid() => {}
        Some(_) => store::set_window(tx, order_id, Some(PaymentWindow::Closing))?,
    }
    Ok(Applied::Done)
}

/// The expiration timer's backstop, run on the housekeeping tick: closes the window of every
/// open order that ended more than `grace_ms` ago and was not closed, as `expiration:complete`
/// would have, each in its own transaction, and returns how many. The timer keeps its schedule
/// in Redis alone, so a Redis that restarts without its data forgets every order it was waiting
/// on; without this those orders would hold their tickets forever.
pub fn close_overdue(db: &dyn Database, now_ms: u64, grace_ms: u64) -> anyhow::Result<usize> {
    let due = store::overdue_orders(db, now_ms.saturating_sub(grace_ms), OVERDUE_BATCH)?;
    for id in &due {
        storage::transaction(db, |tx| close_window(tx, id, now_ms).map(|_| ()))?;
    }
    Ok(due.len())
}

/// Cancels at Stripe the intents of windows that are closing, and settles each by what Stripe
/// answers: cancelled (it can never succeed: the order lapses), or succeeded (settled by the time
/// of its charge, in time or not). An intent Stripe is still processing, or a Stripe that does
/// not answer, leaves the window closing for the next pass. Returns how many windows closed.
pub fn settle_closing(
    db: &dyn Database,
    gateway: &dyn PaymentGateway,
    now_ms: u64,
) -> anyhow::Result<usize> {
    let mut closed = 0;
    for order_id in store::windows_closing(db)? {
        let Some(payment) = store::payment_for_order(db, &order_id.to_string())? else {
            continue;
        };
        let intent = match gateway.cancel_intent(&payment.stripe_id) {
            Ok(intent) => intent,
            // Refused: the intent succeeded, is processing, or was cancelled before. Ask.
            Err(StripeError::Refused { .. } | StripeError::Declined { .. }) => {
                match gateway.retrieve_intent(&payment.stripe_id) {
                    Ok(intent) => intent,
                    Err(error) => {
                        crate::warn(&format!(
                            "reading PaymentIntent {} failed, to be retried: {error}",
                            payment.stripe_id
                        ));
                        continue;
                    }
                }
            }
            Err(StripeError::Unavailable(cause)) => {
                crate::warn(&format!(
                    "cancelling PaymentIntent {} failed, to be retried: {cause}",
                    payment.stripe_id
                ));
                continue;
            }
        };
        match PaymentStatus::of_intent(&intent.status) {
            PaymentStatus::Canceled => {
                storage::transaction(db, |tx| -> anyhow::Result<()> {
                    store::advance_status(tx, &payment.id, PaymentStatus::Canceled, None, now_ms)?;
                    let order = replica_order(tx, &payment)?;
                    if order.is_open() && order.window == Some(PaymentWindow::Closing) {
                        lapse(tx, &order, now_ms)?;
                    }
                    Ok(())
                })?;
                closed += 1;
            }
            PaymentStatus::Succeeded => {
                let paid_at = intent.charged_at_ms().unwrap_or(now_ms);
                succeeded(db, gateway, &intent.id, paid_at, now_ms)?;
                closed += 1;
            }
            _ => {}
        }
    }
    Ok(closed)
}

/// Makes the refunds still pending (the housekeeping retry). Returns how many Stripe accepted.
pub fn refund_pending(
    db: &dyn Database,
    gateway: &dyn PaymentGateway,
    now_ms: u64,
) -> anyhow::Result<usize> {
    let mut refunded = 0;
    for payment in store::payments_in(db, PaymentStatus::RefundPending)? {
        if refund(db, gateway, &payment, now_ms)? {
            refunded += 1;
        }
    }
    Ok(refunded)
}

/// Asks Stripe where each refund it has not finished stands, and records those it settled.
/// Returns how many it settled.
pub fn track_refunds(
    db: &dyn Database,
    gateway: &dyn PaymentGateway,
    now_ms: u64,
) -> anyhow::Result<usize> {
    let mut settled = 0;
    for payment in store::payments_in(db, PaymentStatus::Refunding)? {
        let Some(refund_id) = &payment.refund_id else {
            continue;
        };
        match gateway.retrieve_refund(refund_id) {
            Ok(refund) => {
                if record_refund(db, &payment, &refund, now_ms)? != PaymentStatus::Refunding {
                    settled += 1;
                }
            }
            Err(error) => crate::warn(&format!(
                "reading refund {refund_id} failed, to be retried: {error}"
            )),
        }
    }
    Ok(settled)
}

/// Records what a refund webhook says about refund `refund.id`. `false` when no payment of ours
/// was refunded by it.
pub fn refund_updated(db: &dyn Database, refund: &Refund, now_ms: u64) -> anyhow::Result<bool> {
    let Some(payment) = store::payment_by_refund(db, &refund.id)? else {
        return Ok(false);
    };
    record_refund(db, &payment, refund, now_ms)?;
    Ok(true)
}

/// The payments consumer's own work, run by its wake-up ([`delivery::Subscription`]) after it
/// applied events and on every tick, on the same database connection: what the events asked of
/// Stripe. It cancels the intents of windows that are closing ([`settle_closing`]), makes the
/// refunds still pending and follows the ones Stripe has not finished. On the tick it first
/// closes the windows the expiration timer's event never came for ([`close_overdue`], after two
/// ticks of grace, since the timer's own event comes first when it can), and last makes the
/// sellers' Transfers that are due ([`payouts::pay_out`]: a payout is no hurry, so no purchase's
/// wake-up pays for the look) and leaves the refunds Stripe failed under [`FAILED_REFUNDS_KEY`]
/// and the payouts waiting under [`payouts::WAITING_PAYOUTS_KEY`].
pub struct Settlement<'a> {
    pub http: &'a dyn api::HttpClient,
    pub variables: &'a dyn api::VariableSource,
    /// How often the housekeeping tick fires.
    pub tick_secs: u64,
}

impl delivery::Housekeeping for Settlement<'_> {
    fn run(
        &self,
        db: &dyn Database,
        redis: &dyn delivery::Redis,
        tick: bool,
        now_ms: u64,
    ) -> anyhow::Result<()> {
        let api = crate::stripe_api(self.variables).context("reading the Stripe configuration")?;
        let stripe = crate::Stripe {
            http: self.http,
            api: &api,
        };
        if tick {
            let closed = close_overdue(db, now_ms, 2 * 1000 * self.tick_secs)
                .context("closing overdue payment windows")?;
            if closed > 0 {
                crate::warn(&format!(
                    "closed {closed} payment window(s) the expiration timer missed"
                ));
            }
        }
        settle_closing(db, &stripe, now_ms).context("closing payment windows")?;
        refund_pending(db, &stripe, now_ms).context("making pending refunds")?;
        track_refunds(db, &stripe, now_ms).context("following refunds")?;
        if tick {
            payouts::pay_out(db, &stripe, None, now_ms).context("paying sellers out")?;
            report(db, redis, FAILED_REFUNDS_KEY, failed_refunds_json);
            report(
                db,
                redis,
                payouts::WAITING_PAYOUTS_KEY,
                payouts::waiting_payouts_json,
            );
        }
        Ok(())
    }
}

/// Writes a listing for `ticketing-ops` to Redis under `key`: the refunds Stripe failed, the
/// payouts waiting. Best effort: the payments database keeps them either way.
fn report(
    db: &dyn Database,
    redis: &dyn delivery::Redis,
    key: &str,
    listing: fn(&dyn Database) -> anyhow::Result<String>,
) {
    let outcome = listing(db).and_then(|listing| {
        redis.execute("SET", &[key.into(), listing.into()])?;
        Ok(())
    });
    if let Err(error) = outcome {
        crate::warn(&format!("could not report {key}: {error:#}"));
    }
}

/// Payments whose refund Stripe could not make: money an operator must return by hand.
pub fn failed_refunds(db: &dyn Database) -> anyhow::Result<Vec<Payment>> {
    store::payments_in(db, PaymentStatus::RefundFailed)
}

/// The Redis key under which the event component leaves [`failed_refunds_json`] on every
/// housekeeping tick, for `ticketing-ops refunds`.
pub const FAILED_REFUNDS_KEY: &str = "payments:failed-refunds";

/// The failed refunds as the operator's tool reads them: `[{"paymentId", "orderId",
/// "paymentIntent", "refundId", "amountCents", "currency"}]`, oldest first.
pub fn failed_refunds_json(db: &dyn Database) -> anyhow::Result<String> {
    let listing: Vec<serde_json::Value> = failed_refunds(db)?
        .into_iter()
        .map(|payment| {
            serde_json::json!({
                "paymentId": payment.id,
                "orderId": payment.order_id,
                "paymentIntent": payment.stripe_id,
                "refundId": payment.refund_id,
                "amountCents": payment.amount_cents,
                "currency": payment.currency,
            })
        })
        .collect();
    Ok(serde_json::to_string(&listing)?)
}

/// The idempotency key of a payment's refund: a refund retried after a lost answer refunds once.
pub fn refund_idempotency_key(payment_id: &str) -> String {
    format!("payment-{payment_id}-refund")
}

/// Decides that `payment`, which succeeded, is to be refunded (`refund_pending`, for [`refund`]
/// after the commit), and that its sale is paid out to nobody, or reversed with the refund
/// ([`payouts::refund_decided`]). In the caller's transaction.
pub(crate) fn decide_refund(
    tx: &dyn Database,
    payment: &Payment,
    now_ms: u64,
) -> anyhow::Result<()> {
    store::advance_status(tx, &payment.id, PaymentStatus::RefundPending, None, now_ms)?;
    payouts::refund_decided(tx, &payment.order_id, now_ms)
}

/// The replica's order a payment is for (which exists: a payment is only made for one).
fn replica_order(tx: &dyn Database, payment: &Payment) -> anyhow::Result<Order> {
    let order_id = OrderId::parse(&payment.order_id)
        .with_context(|| format!("payment {} names order {:?}", payment.id, payment.order_id))?;
    store::order(tx, &order_id)?.with_context(|| {
        format!(
            "payment {} is for order {}, which the replica lacks",
            payment.id, payment.order_id
        )
    })
}

/// Records that no payment came in time for `order`, and tells the orders service.
fn lapse(tx: &dyn Database, order: &Order, now_ms: u64) -> anyhow::Result<()> {
    store::set_window(tx, &order.id, Some(PaymentWindow::Lapsed))?;
    let expired = PaymentExpired {
        order_id: order.id.to_string(),
    };
    store::enqueue(tx, &expired.into(), now_ms)
}

/// Refunds one payment at Stripe and records where the refund stands. A Stripe failure is logged
/// and leaves the payment `refund_pending` for the next try (`Ok(false)`); only storage failures
/// are errors.
fn refund(
    db: &dyn Database,
    gateway: &dyn PaymentGateway,
    payment: &Payment,
    now_ms: u64,
) -> anyhow::Result<bool> {
    let reverse_transfer = payouts::refund_reverses_transfer(db, &payment.order_id)?;
    let key = refund_idempotency_key(&payment.id);
    match gateway.refund(&payment.stripe_id, &key, reverse_transfer) {
        Ok(refund) => {
            record_refund(db, payment, &refund, now_ms)?;
            Ok(true)
        }
        Err(error) => {
            crate::warn(&format!(
                "refunding payment {} for order {} failed, to be retried: {error}",
                payment.id, payment.order_id
            ));
            Ok(false)
        }
    }
}

/// Moves a payment on by its refund's status: `succeeded` is done, `failed` or `canceled` is an
/// operator's case, anything else (`pending`, `requires_action`) is still Stripe's.
fn record_refund(
    db: &dyn Database,
    payment: &Payment,
    refund: &Refund,
    now_ms: u64,
) -> anyhow::Result<PaymentStatus> {
    let status = match refund.status.as_deref() {
        Some("succeeded") => PaymentStatus::Refunded,
        Some("failed" | "canceled") => PaymentStatus::RefundFailed,
        _ => PaymentStatus::Refunding,
    };
    let moved = storage::transaction(db, |tx| -> anyhow::Result<bool> {
        let moved = store::advance_status(tx, &payment.id, status, Some(&refund.id), now_ms)?;
        if moved && status == PaymentStatus::Refunded {
            payouts::refund_settled(tx, &payment.order_id, now_ms)?;
        }
        Ok(moved)
    })?;
    if moved {
        match status {
            PaymentStatus::RefundFailed => crate::warn(&format!(
                "refund {} of payment {} for order {} failed at Stripe ({}): the money must be \
                 returned by hand",
                refund.id,
                payment.id,
                payment.order_id,
                refund
                    .failure_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            )),
            _ => log_line::Line::new(log_line::Level::Info, "refund")
                .field("paymentId", payment.id.as_str())
                .field("orderId", payment.order_id.as_str())
                .field("refundId", refund.id.as_str())
                .field(
                    "outcome",
                    if status == PaymentStatus::Refunded {
                        "refunded"
                    } else {
                        "asked for"
                    },
                )
                .emit(),
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use domain::Clock;
    use events::{Event, ExpirationComplete};
    use serde_json::json;

    use super::*;
    use crate::testing::{BUYER, NOW_MS, TestApp, WINDOW_MS, succeeded_event_at};

    fn expire(app: &TestApp, order_id: &str) -> Applied {
        app.deliver(ExpirationComplete {
            order_id: order_id.to_owned(),
        })
        .expect("expiration:complete applies")
    }

    /// The subjects in the outbox, in order, with their order ids.
    fn enqueued(app: &TestApp) -> Vec<(String, String)> {
        app.outbox()
            .iter()
            .filter_map(|envelope| match envelope.decode() {
                Ok(Event::PaymentCreated(paid)) => Some(("payment:created".into(), paid.order_id)),
                Ok(Event::PaymentExpired(expired)) => {
                    Some(("payment:expired".into(), expired.order_id))
                }
                _ => None,
            })
            .collect()
    }

    fn status(app: &TestApp, order_id: &str) -> String {
        app.payment_status(order_id).expect("a payment")
    }

    fn start_payment(app: &TestApp, order_id: &str) -> String {
        let started = app.pay(Some(BUYER), &json!({ "orderId": order_id }));
        assert_eq!(started.status, 201);
        app.payment(order_id).expect("a payment").1
    }

    #[test]
    fn an_order_with_no_payment_lapses_once_at_the_end_of_its_window() {
        let app = TestApp::new();
        let order = app.order(1999);
        app.advance(WINDOW_MS);
        assert_eq!(expire(&app, &order), Applied::Done);
        assert_eq!(expire(&app, &order), Applied::Done);
        assert_eq!(
            enqueued(&app),
            [("payment:expired".to_owned(), order.clone())]
        );
        // And it can no longer be paid.
        let late = app.pay(Some(BUYER), &json!({ "orderId": order }));
        assert_eq!(late.status, 400);
    }

    #[test]
    fn an_expiry_waits_for_the_order_and_for_the_clock() {
        let app = TestApp::new();
        let unknown = domain::OrderId::new_random().to_string();
        assert!(matches!(expire(&app, &unknown), Applied::NotYet(_)));
        let order = app.order(1999);
        app.advance(WINDOW_MS - 1);
        assert!(matches!(expire(&app, &order), Applied::NotYet(_)));
        assert!(enqueued(&app).is_empty());
    }

    #[test]
    fn closing_a_window_cancels_the_intent_before_the_order_lapses() {
        let app = TestApp::new();
        let order = app.order(1999);
        let intent = start_payment(&app, &order);
        app.advance(WINDOW_MS);
        assert_eq!(expire(&app, &order), Applied::Done);
        // Nothing is published until Stripe has made sure the intent cannot succeed.
        assert!(enqueued(&app).is_empty());
        app.stripe.down.set(true);
        assert_eq!(
            settle_closing(&app.db, &app.stripe, app.clock.now_ms()).expect("settles"),
            0
        );
        assert!(enqueued(&app).is_empty());
        app.stripe.down.set(false);
        assert_eq!(
            settle_closing(&app.db, &app.stripe, app.clock.now_ms()).expect("settles"),
            1
        );
        assert_eq!(app.stripe.intents.borrow()[&intent].status, "canceled");
        assert_eq!(status(&app, &order), "canceled");
        assert_eq!(
            enqueued(&app),
            [("payment:expired".to_owned(), order.clone())]
        );
        assert_eq!(
            settle_closing(&app.db, &app.stripe, app.clock.now_ms()).expect("settles"),
            0
        );
    }

    /// Stripe.js paid in time, but the webhook has not come (or never will) when the window
    /// ends: cancelling the intent shows it succeeded, and when.
    #[test]
    fn a_window_closing_on_an_intent_paid_in_time_completes_the_order() {
        let app = TestApp::new();
        let order = app.order(1999);
        let intent = start_payment(&app, &order);
        app.advance(WINDOW_MS - 5_000);
        app.stripe.succeed(&intent);
        app.advance(10_000);
        assert_eq!(expire(&app, &order), Applied::Done);
        assert_eq!(
            settle_closing(&app.db, &app.stripe, app.clock.now_ms()).expect("settles"),
            1
        );
        assert_eq!(status(&app, &order), "succeeded");
        assert_eq!(
            enqueued(&app),
            [("payment:created".to_owned(), order.clone())]
        );
        // The webhook, late, changes nothing.
        let event = succeeded_event_at(&intent, NOW_MS + WINDOW_MS - 5_000);
        assert_eq!(app.webhook(&event, app.signed(&event)).status, 200);
        assert_eq!(enqueued(&app).len(), 1);
        assert!(app.stripe.refunds.borrow().is_empty());
    }

    #[test]
    fn a_window_closing_on_an_intent_paid_too_late_refunds_it_and_lapses_the_order() {
        let app = TestApp::new();
        let order = app.order(1999);
        let intent = start_payment(&app, &order);
        app.advance(WINDOW_MS);
        assert_eq!(expire(&app, &order), Applied::Done);
        app.advance(1_000);
        app.stripe.succeed(&intent);
        assert_eq!(
            settle_closing(&app.db, &app.stripe, app.clock.now_ms()).expect("settles"),
            1
        );
        assert_eq!(status(&app, &order), "refunded");
        assert_eq!(
            enqueued(&app),
            [("payment:expired".to_owned(), order.clone())]
        );
    }

    #[test]
    fn the_backstop_closes_windows_the_timer_missed_once_after_the_grace() {
        let app = TestApp::new();
        let unpaid = app.order(1999);
        let paying = app.order(2500);
        start_payment(&app, &paying);
        let window_end = NOW_MS + WINDOW_MS;
        let grace = 10_000;
        assert_eq!(
            close_overdue(&app.db, window_end + grace, grace).expect("settles"),
            0
        );
        assert_eq!(
            close_overdue(&app.db, window_end + grace + 1, grace).expect("settles"),
            2
        );
        assert_eq!(
            enqueued(&app),
            [("payment:expired".to_owned(), unpaid.clone())]
        );
        assert_eq!(
            close_overdue(&app.db, window_end + grace + 2, grace).expect("settles"),
            0
        );
        assert_eq!(
            settle_closing(&app.db, &app.stripe, window_end + grace + 2).expect("settles"),
            1
        );
        assert_eq!(
            enqueued(&app),
            [
                ("payment:expired".to_owned(), unpaid),
                ("payment:expired".to_owned(), paying)
            ]
        );
    }

    #[test]
    fn a_refund_is_followed_until_stripe_settles_it_and_a_failed_one_is_listed() {
        let app = TestApp::new();
        let first = app.order(1999);
        let second = app.order(2500);
        for order in [&first, &second] {
            let paid = app.pay(
                Some(BUYER),
                &json!({ "orderId": order, "paymentMethodId": "pm_card_visa" }),
            );
            assert_eq!(paid.status, 201);
        }
        *app.stripe.refund_status.borrow_mut() = Some("pending");
        app.cancel(&first, 1);
        app.cancel(&second, 1);
        assert_eq!(
            refund_pending(&app.db, &app.stripe, NOW_MS).expect("settles"),
            2
        );
        assert_eq!(status(&app, &first), "refunding");
        assert_eq!(
            track_refunds(&app.db, &app.stripe, NOW_MS).expect("settles"),
            0
        );
        // The first one's webhook says it succeeded; Stripe fails the second, found on a pass.
        let refund_id = app.payment(&first).expect("a payment").2.expect("a refund");
        let event = json!({
            "id": "evt_2", "object": "event", "type": "refund.updated", "created": NOW_MS / 1000,
            "data": {"object": {"id": refund_id, "object": "refund", "status": "succeeded"}},
        });
        assert_eq!(app.webhook(&event, app.signed(&event)).status, 200);
        assert_eq!(status(&app, &first), "refunded");
        *app.stripe.refund_status.borrow_mut() = Some("failed");
        assert_eq!(
            track_refunds(&app.db, &app.stripe, NOW_MS).expect("settles"),
            1
        );
        assert_eq!(status(&app, &second), "refund_failed");
        let failed: Vec<String> = failed_refunds(&app.db)
            .expect("settles")
            .into_iter()
            .map(|payment| payment.order_id)
            .collect();
        assert_eq!(failed, std::slice::from_ref(&second));
        let listing: serde_json::Value =
            serde_json::from_str(&failed_refunds_json(&app.db).expect("settles")).expect("settles");
        assert_eq!(listing[0]["orderId"], json!(second));
        assert_eq!(listing[0]["amountCents"], json!(2500));
        // A settled refund does not move again, whatever Stripe says later.
        *app.stripe.refund_status.borrow_mut() = Some("succeeded");
        assert_eq!(
            track_refunds(&app.db, &app.stripe, NOW_MS).expect("settles"),
            0
        );
        assert_eq!(status(&app, &second), "refund_failed");
    }
}
