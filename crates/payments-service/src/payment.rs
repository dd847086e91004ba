//! A payment and the order it pays for, as this service keeps them.

use domain::{OrderId, Version};
use events::OrderStatus;
use serde::{Serialize, Serializer};

/// Where a payment stands. Until it succeeds it follows its PaymentIntent, with Stripe's names;
/// the refund statuses are this service's, for money taken for an order that was cancelled, or
/// paid too late: `refund_pending` (to ask Stripe), `refunding` (asked; Stripe has not finished),
/// then `refunded` or `refund_failed` (Stripe could not give the money back: an operator's
/// case, listed by `ticketing-ops refunds`). One mapping, stored and rendered alike.
///
/// A status only moves forward ([`PaymentStatus::can_become`]): every write is a guarded
/// `UPDATE`, so a late answer (a decline that lost the race against a success) cannot undo a
/// later state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Canceled,
    Succeeded,
    RefundPending,
    Refunding,
    Refunded,
    RefundFailed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 11] = [
        PaymentStatus::RequiresPaymentMethod,
        PaymentStatus::RequiresConfirmation,
        PaymentStatus::RequiresAction,
        PaymentStatus::Processing,
        PaymentStatus::RequiresCapture,
        PaymentStatus::Canceled,
        PaymentStatus::Succeeded,
        PaymentStatus::RefundPending,
        PaymentStatus::Refunding,
        PaymentStatus::Refunded,
        PaymentStatus::RefundFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::RequiresPaymentMethod => "requires_payment_method",
            PaymentStatus::RequiresConfirmation => "requires_confirmation",
            PaymentStatus::RequiresAction => "requires_action",
            PaymentStatus::Processing => "processing",
            PaymentStatus::RequiresCapture => "requires_capture",
            PaymentStatus::Canceled => "canceled",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::RefundPending => "refund_pending",
            PaymentStatus::Refunding => "refunding",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::RefundFailed => "refund_failed",
        }
    }

    pub fn parse(text: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// The status a PaymentIntent's `status` gives a payment that has not succeeded before. An
    /// intent status this code does not know yet counts as `processing`: not paid, not failed.
    pub fn of_intent(intent_status: &str) -> PaymentStatus {
        match PaymentStatus::parse(intent_status) {
            Some(status) if status.stage() <= PaymentStatus::Succeeded.stage() => status,
            _ => PaymentStatus::Processing,
        }
    }

    /// Money was taken: the payment succeeded, whatever happened to it since.
    pub fn is_paid(self) -> bool {
        self.stage() >= PaymentStatus::Succeeded.stage()
    }

    /// How far along a payment is: unpaid (the intent's own statuses, which go back and forth
    /// as cards are tried), cancelled at Stripe, succeeded, refund to make, refund asked for,
    /// refund settled.
    fn stage(self) -> u8 {
        match self {
            PaymentStatus::RequiresPaymentMethod
            | PaymentStatus::RequiresConfirmation
            | PaymentStatus::RequiresAction
            | PaymentStatus::Processing
            | PaymentStatus::RequiresCapture => 0,
            PaymentStatus::Canceled => 1,
            PaymentStatus::Succeeded => 2,
            PaymentStatus::RefundPending => 3,
            PaymentStatus::Refunding => 4,
            PaymentStatus::Refunded | PaymentStatus::RefundFailed => 5,
        }
    }

    /// Whether a payment at `self` may be set to `next`: only forward, except that an unpaid
    /// payment follows its intent among the unpaid statuses. A cancelled intent may still be
    /// found to have succeeded (money moved beats what we thought), never the other way round.
    pub fn can_become(self, next: PaymentStatus) -> bool {
        let (from, to) = (self.stage(), next.stage());
        to > from || (from == 0 && to == 0)
    }

    /// Every status a payment may be in to be set to `next`.
    pub fn predecessors(next: PaymentStatus) -> Vec<PaymentStatus> {
        PaymentStatus::ALL
            .into_iter()
            .filter(|status| status.can_become(next))
            .collect()
    }
}

impl Serialize for PaymentStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A payment: one per order, tied to one Stripe PaymentIntent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub order_id: String,
    /// The PaymentIntent's id (`pi_...`).
    pub stripe_id: String,
    /// What the browser's Stripe.js confirms the intent with.
    pub client_secret: String,
    pub amount_cents: u64,
    pub currency: String,
    pub status: PaymentStatus,
    pub refund_id: Option<String>,
}

/// The API's answer to `POST /api/payments`: `{"id","orderId","stripeId","clientSecret",
/// "status","success"}`, `success: true` kept from the reference.
impl Serialize for Payment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct PaymentJson<'a> {
            id: &'a str,
            order_id: &'a str,
            stripe_id: &'a str,
            client_secret: &'a str,
            status: PaymentStatus,
            success: bool,
        }
        PaymentJson {
            id: &self.id,
            order_id: &self.order_id,
            stripe_id: &self.stripe_id,
            client_secret: &self.client_secret,
            status: self.status,
            success: true,
        }
        .serialize(serializer)
    }
}

/// An order as this service's replica holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    /// The buyer.
    pub user_id: String,
    pub status: OrderStatus,
    /// What the buyer pays, in cents, fixed when the order was placed.
    pub price_cents: u64,
    pub expires_at_ms: u64,
    pub version: Version,
    /// Where this service stands on the order's time to pay, once it ran out.
    pub window: Option<PaymentWindow>,
    /// Who sells the ticket, and is paid out ([`crate::payouts`]); `None` for orders replicated
    /// before payouts existed.
    pub seller_id: Option<String>,
    /// The ticket ordered (`None` likewise).
    pub ticket_id: Option<String>,
}

impl Order {
    /// Whether the order still waits for its payment.
    pub fn is_open(&self) -> bool {
        matches!(
            self.status,
            OrderStatus::Created | OrderStatus::AwaitingPayment
        )
    }

    /// Whether a payment that succeeded at `paid_at_ms` (Stripe's time) came in time: before
    /// `expiresAt`. The orders service applies the same rule to `payment:created`'s `paidAt`.
    pub fn paid_in_time(&self, paid_at_ms: u64) -> bool {
        paid_at_ms < self.expires_at_ms
    }
}

/// What happens once an order's time to pay ran out (stored in the replica's `window_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentWindow {
    /// The order has a payment that has not succeeded: its PaymentIntent is to be cancelled at
    /// Stripe, which either stops it from ever succeeding or shows it succeeded.
    Closing,
    /// No payment came in time: `payment:expired` was published.
    Lapsed,
}

impl PaymentWindow {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentWindow::Closing => "closing",
            PaymentWindow::Lapsed => "lapsed",
        }
    }

    pub fn parse(text: &str) -> Option<PaymentWindow> {
        [PaymentWindow::Closing, PaymentWindow::Lapsed]
            .into_iter()
            .find(|window| window.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_status_round_trips_through_its_name() {
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).expect("serializes"),
                json!(status.as_str())
            );
        }
        assert_eq!(PaymentStatus::parse("Succeeded"), None);
    }

    #[test]
    fn intent_statuses_map_to_unpaid_payments_unless_succeeded() {
        assert_eq!(
            PaymentStatus::of_intent("requires_action"),
            PaymentStatus::RequiresAction
        );
        assert_eq!(
            PaymentStatus::of_intent("succeeded"),
            PaymentStatus::Succeeded
        );
        for unknown in ["refunded", "refund_pending", "refunding", "something_new"] {
            assert_eq!(PaymentStatus::of_intent(unknown), PaymentStatus::Processing);
        }
        let paid: Vec<&str> = PaymentStatus::ALL
            .into_iter()
            .filter(|status| status.is_paid())
            .map(PaymentStatus::as_str)
            .collect();
        assert_eq!(
            paid,
            [
                "succeeded",
                "refund_pending",
                "refunding",
                "refunded",
                "refund_failed"
            ]
        );
    }

    #[test]
    fn a_status_only_moves_forward() {
        use PaymentStatus::*;
        for (from, to) in [
            (RequiresPaymentMethod, RequiresAction),
            (RequiresAction, RequiresPaymentMethod),
            (Processing, Succeeded),
            (RequiresPaymentMethod, Canceled),
            (Canceled, Succeeded),
            (RequiresAction, RefundPending),
            (Succeeded, RefundPending),
            (RefundPending, Refunding),
            (RefundPending, Refunded),
            (Refunding, RefundFailed),
        ] {
            assert!(from.can_become(to), "{from:?} -> {to:?}");
        }
        for (from, to) in [
            (Succeeded, RequiresPaymentMethod),
            (Succeeded, Canceled),
            (Canceled, RequiresAction),
            (RefundPending, Succeeded),
            (Refunded, Refunding),
            (Refunded, RefundFailed),
            (RefundFailed, Refunded),
            (Succeeded, Succeeded),
        ] {
            assert!(!from.can_become(to), "{from:?} -> {to:?}");
        }
        assert_eq!(
            PaymentStatus::predecessors(Refunded),
            [
                RequiresPaymentMethod,
                RequiresConfirmation,
                RequiresAction,
                Processing,
                RequiresCapture,
                Canceled,
                Succeeded,
                RefundPending,
                Refunding
            ]
        );
    }

    #[test]
    fn a_window_round_trips_through_its_name_and_the_rule_is_strictly_before() {
        for window in [PaymentWindow::Closing, PaymentWindow::Lapsed] {
            assert_eq!(PaymentWindow::parse(window.as_str()), Some(window));
        }
        let order = Order {
            id: OrderId::parse("5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b").expect("an id"),
            user_id: "u1".to_owned(),
            status: OrderStatus::Created,
            price_cents: 100,
            expires_at_ms: 10_000,
            version: Version::new(0),
            window: None,
            seller_id: None,
            ticket_id: None,
        };
        assert!(order.paid_in_time(9_999));
        assert!(!order.paid_in_time(10_000));
    }

    #[test]
    fn a_payment_renders_with_the_references_success_flag() {
        let payment = Payment {
            id: "p1".to_owned(),
            order_id: "o1".to_owned(),
            stripe_id: "pi_1".to_owned(),
            client_secret: "pi_1_secret".to_owned(),
            amount_cents: 1999,
            currency: "usd".to_owned(),
            status: PaymentStatus::RequiresPaymentMethod,
            refund_id: None,
        };
        assert_eq!(
            serde_json::to_value(&payment).expect("serializes"),
            json!({
                "id": "p1", "orderId": "o1", "stripeId": "pi_1", "clientSecret": "pi_1_secret",
                "status": "requires_payment_method", "success": true,
            })
        );
    }
}
