//! A payment and the order it pays for, as this service keeps them.

use domain::{OrderId, Version};
use events::OrderStatus;
use serde::{Serialize, Serializer};

/// Where a payment stands. Until it succeeds it follows its PaymentIntent, with Stripe's names;
/// `refund_pending` and `refunded` are this service's, for money taken for an order that was
/// cancelled meanwhile. One mapping, stored and rendered alike.
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
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 9] = [
        PaymentStatus::RequiresPaymentMethod,
        PaymentStatus::RequiresConfirmation,
        PaymentStatus::RequiresAction,
        PaymentStatus::Processing,
        PaymentStatus::RequiresCapture,
        PaymentStatus::Canceled,
        PaymentStatus::Succeeded,
        PaymentStatus::RefundPending,
        PaymentStatus::Refunded,
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
            PaymentStatus::Refunded => "refunded",
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
            Some(PaymentStatus::RefundPending | PaymentStatus::Refunded) | None => {
                PaymentStatus::Processing
            }
            Some(status) => status,
        }
    }

    /// Money was taken: the payment succeeded, whatever happened to it since.
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            PaymentStatus::Succeeded | PaymentStatus::RefundPending | PaymentStatus::Refunded
        )
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
}

impl Order {
    /// Whether the order still waits for its payment.
    pub fn is_open(&self) -> bool {
        matches!(
            self.status,
            OrderStatus::Created | OrderStatus::AwaitingPayment
        )
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
        for unknown in ["refunded", "refund_pending", "something_new"] {
            assert_eq!(PaymentStatus::of_intent(unknown), PaymentStatus::Processing);
        }
        let paid: Vec<&str> = PaymentStatus::ALL
            .into_iter()
            .filter(|status| status.is_paid())
            .map(PaymentStatus::as_str)
            .collect();
        assert_eq!(paid, ["succeeded", "refund_pending", "refunded"]);
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
