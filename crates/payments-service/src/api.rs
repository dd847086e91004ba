//! The routes of the payments service.

use api::{ApiError, Method, Request, Response, Validator, parse_json};
use domain::{Clock, OrderId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use session::Claims;
use storage::Database;

use crate::PaymentsConfig;
use crate::payment::{Payment, PaymentStatus};
use crate::settlement;
use crate::stripe::{Intent, PaymentGateway, StripeError};
use crate::webhook::{self, Event};
use crate::{payouts, store};

/// An order id and a payment method id; anything bigger is not a payment form.
const MAX_FORM_BYTES: usize = 4 * 1024;
/// Stripe's events are a few kilobytes; leave room for large metadata.
const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

pub(crate) const NOT_OWNER: &str = "You do not own this order";
pub(crate) const ORDER_CANCELLED: &str = "Order is cancelled";
pub(crate) const ORDER_PAID: &str = "Order is already paid";
pub(crate) const ORDER_EXPIRED: &str = "Order has expired";
pub(crate) const ORDER_ID_REQUIRED: &str = "Order id is required";
pub(crate) const ORDER_ID_INVALID: &str = "Order id is not valid";
pub(crate) const PAYMENT_METHOD_INVALID: &str =
    "paymentMethodId must be a Stripe PaymentMethod id such as pm_card_visa";
pub(crate) const TOKENS_RETIRED: &str = "Card tokens are no longer accepted: confirm the payment \
     with Stripe.js, or send paymentMethodId (a Stripe PaymentMethod id) instead";

/// One request's view of the service.
pub struct PaymentsApi<'a> {
    pub db: &'a dyn Database,
    pub config: &'a PaymentsConfig,
    pub clock: &'a dyn Clock,
    pub gateway: &'a dyn PaymentGateway,
    pub replica: &'a dyn crate::OrdersReplica,
}

impl PaymentsApi<'_> {
    /// Answers one request. Never fails: errors become responses in the reference's format.
    pub fn handle(&self, request: &Request) -> Response {
        let path = request.path.strip_suffix('/').unwrap_or(&request.path);
        let result = match (&request.method, path) {
            (Method::Post, "/api/payments") => self.pay(request),
            (Method::Post, "/api/payments/setup") => self.setup(request),
            (Method::Get, "/api/payments/config") => Ok(self.client_config()),
            (Method::Post, "/api/payments/webhook") => self.webhook(request),
            (Method::Get, "/api/payouts") => self.sales(request),
            (Method::Get, "/api/payouts/account") => self.account_status(request),
            (Method::Post, "/api/payouts/account") => self.connect_account(request),
            (Method::Post, "/api/payouts/dashboard") => self.dashboard(request),
            _ => Err(ApiError::NotFound),
        };
        result.unwrap_or_else(ApiError::into_response)
    }

    /// The order, from the replica, caught up once if it does not know it yet; 404 if it still
    /// does not. A catch-up that fails (Redis away) leaves the 404.
    fn order(&self, id: &OrderId) -> Result<crate::Order, ApiError> {
        if let Some(order) = store::order(self.db, id)? {
            return Ok(order);
        }
        if let Err(error) = self.replica.catch_up() {
            crate::warn(&format!("catching up on orders for {id}: {error:#}"));
        }
        store::order(self.db, id)?.ok_or(ApiError::NotFound)
    }

    /// `POST /api/payments {orderId, paymentMethodId?}`: checks in the reference's order, signed
    /// in (401), body (400), order known (404), the caller's (401), payable (400); then creates
    /// the order's PaymentIntent (once per order: an idempotency key and a unique payment per
    /// order) and, with a `paymentMethodId`, confirms it. 201 with the payment; 402 for a
    /// declined card, which leaves the order payable; 502 when Stripe does not answer.
    fn pay(&self, request: &Request) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let form = payment_form(request)?;
        let now = self.clock.now_ms();
        let order = self.order(&form.order_id)?;
        if order.user_id != user.id {
            return Err(ApiError::NotAuthorized(NOT_OWNER.to_owned()));
        }
        let existing = store::payment_for_order(self.db, &order.id.to_string())?;
        if existing.as_ref().is_some_and(|p| p.status.is_paid()) {
            return Err(ApiError::BadRequest(ORDER_PAID.to_owned()));
        }
        match order.status {
            events::OrderStatus::Cancelled => {
                return Err(ApiError::BadRequest(ORDER_CANCELLED.to_owned()));
            }
            events::OrderStatus::Complete => {
                return Err(ApiError::BadRequest(ORDER_PAID.to_owned()));
            }
            events::OrderStatus::Created | events::OrderStatus::AwaitingPayment => {}
        }
        // The expiry is checked here, not left to `expiration:complete`, which may still be on
        // its way: an order past its time is not payable.
        if now >= order.expires_at_ms || order.window.is_some() {
            return Err(ApiError::BadRequest(ORDER_EXPIRED.to_owned()));
        }
        let amount = i64::try_from(order.price_cents)
            .map_err(|_| anyhow::anyhow!("order {} costs {} cents", order.id, order.price_cents))?;
        let payment = match existing {
            Some(payment) => payment,
            None => {
                let customer = self.customer_of(&user.id, now)?;
                let currency = self.config.stripe.currency.to_string();
                let payout = payouts::plan(
                    self.db,
                    &order,
                    self.config.platform_fee_bps,
                    &currency,
                    now,
                )?;
                let destination = payout.as_ref().and_then(payouts::Payout::destination);
                let intent = self
                    .gateway
                    .create_intent(&order.id.to_string(), amount, &customer, destination)
                    .map_err(stripe_failure)?;
                let payment = Payment {
                    id: domain::EventId::new_random().to_string(),
                    order_id: order.id.to_string(),
                    stripe_id: intent.id.clone(),
                    client_secret: intent.client_secret.clone().unwrap_or_default(),
                    amount_cents: order.price_cents,
                    currency: intent.currency.clone(),
                    status: PaymentStatus::of_intent(&intent.status),
                    refund_id: None,
                };
                store::insert_payment(self.db, &payment, now)?
            }
        };
        let payment = match form.payment_method {
            Some(payment_method) => self.confirm(payment, &payment_method, now)?,
            None => payment,
        };
        Ok(Response::json(201, &payment))
    }

    /// Confirms the payment's intent with `payment_method` and records where it ended.
    fn confirm(
        &self,
        payment: Payment,
        payment_method: &str,
        now: u64,
    ) -> Result<Payment, ApiError> {
        let intent = match self
            .gateway
            .confirm_intent(&payment.stripe_id, payment_method)
        {
            Ok(intent) => intent,
            Err(StripeError::Declined { message, .. }) => {
                // Guarded: a success another request settled meanwhile stays.
                store::advance_status(
                    self.db,
                    &payment.id,
                    PaymentStatus::RequiresPaymentMethod,
                    None,
                    now,
                )?;
                return Err(ApiError::PaymentRefused(message));
            }
            // Refused as made: perhaps because the intent already moved on (a second click, the
            // browser confirming meanwhile). If it succeeded after all, that is the answer.
            Err(StripeError::Refused { message, .. }) => {
                match self.gateway.retrieve_intent(&payment.stripe_id) {
                    Ok(intent) if intent.status == PaymentStatus::Succeeded.as_str() => intent,
                    _ => return Err(ApiError::BadRequest(message)),
                }
            }
            Err(error) => return Err(stripe_failure(error)),
        };
        self.record(payment, &intent, now)
    }

    /// Records the intent's new status; a success is settled by the time of its charge
    /// (completing the order, or a refund when it came too late or the order was cancelled).
    fn record(&self, payment: Payment, intent: &Intent, now: u64) -> Result<Payment, ApiError> {
        let status = PaymentStatus::of_intent(&intent.status);
        if status == PaymentStatus::Succeeded {
            let paid_at = intent.charged_at_ms().unwrap_or(now);
            return Ok(
                settlement::succeeded(self.db, self.gateway, &intent.id, paid_at, now)?
                    .unwrap_or(payment),
            );
        }
        store::advance_status(self.db, &payment.id, status, None, now)?;
        Ok(store::payment_for_order(self.db, &payment.order_id)?.unwrap_or(payment))
    }

    /// The buyer's Stripe Customer, made on their first payment or card set-up.
    fn customer_of(&self, user_id: &str, now: u64) -> Result<String, ApiError> {
        if let Some(customer) = store::customer(self.db, user_id)? {
            return Ok(customer);
        }
        let customer = self
            .gateway
            .create_customer(user_id)
            .map_err(stripe_failure)?;
        store::insert_customer(self.db, user_id, &customer.id, now)?;
        Ok(store::customer(self.db, user_id)?.unwrap_or(customer.id))
    }

    /// `POST /api/payments/setup`: a SetupIntent's client secret, for the browser to turn the
    /// card the buyer types into a PaymentMethod (Stripe.js `confirmCardSetup`), which it then
    /// pays with (`paymentMethodId`). The card never touches this service.
    fn setup(&self, request: &Request) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let customer = self.customer_of(&user.id, self.clock.now_ms())?;
        let setup = self
            .gateway
            .create_setup_intent(&user.id, &customer)
            .map_err(stripe_failure)?;
        let client_secret = setup.client_secret.ok_or_else(|| {
            anyhow::anyhow!("SetupIntent {} came without a client secret", setup.id)
        })?;
        Ok(Response::json(
            201,
            &serde_json::json!({ "clientSecret": client_secret }),
        ))
    }

    /// `GET /api/payments/config`: what the browser needs to load Stripe.js, and the platform's
    /// fee on each sale (in basis points), shown to sellers and buyers.
    fn client_config(&self) -> Response {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ClientConfig<'a> {
            publishable_key: &'a str,
            stripe_js_url: &'a str,
            platform_fee_bps: u16,
        }
        Response::json(
            200,
            &ClientConfig {
                publishable_key: &self.config.publishable_key,
                stripe_js_url: &self.config.js_url,
                platform_fee_bps: self.config.platform_fee_bps,
            },
        )
    }

    /// `POST /api/payments/webhook`: Stripe's events, signed (with the platform endpoint's secret,
    /// or the Connect endpoint's). A bad or missing signature, or a signature older than five
    /// minutes, is a 400 and changes nothing. `payment_intent.succeeded`
    /// settles the payment (once, however often Stripe sends it) by the time Stripe made the
    /// event, which is when the intent succeeded; `refund.updated` and `refund.failed` record
    /// where a refund ended; `account.updated` (a Connect event) records where a seller's account
    /// stands and pays out what waited for it; other events are acknowledged.
    fn webhook(&self, request: &Request) -> Result<Response, ApiError> {
        if request.body.len() > MAX_WEBHOOK_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        let now = self.clock.now_ms();
        webhook::verify_any(
            &request.body,
            request.header("stripe-signature"),
            self.config.webhook_secrets(),
            now / 1000,
        )
        .map_err(|error| ApiError::BadRequest(format!("Invalid webhook: {error}")))?;
        let event = Event::parse(&request.body)
            .map_err(|error| ApiError::BadRequest(format!("Invalid webhook: {error}")))?;
        if event.type_ == "payment_intent.succeeded"
            && let Some((intent_id, _)) = event.payment_intent()
        {
            let paid_at = event.created.saturating_mul(1000);
            if settlement::succeeded(self.db, self.gateway, intent_id, paid_at, now)?.is_none() {
                crate::warn(&format!(
                    "webhook {}: no payment of ours is tied to PaymentIntent {intent_id}",
                    event.id
                ));
            }
        }
        if let Some(account) = event.account() {
            self.account_updated(&account, event.created)?;
        }
        if let Some(refund) = event.refund()
            && !settlement::refund_updated(self.db, &refund, now)?
        {
            crate::warn(&format!(
                "webhook {}: no payment of ours was refunded by {}",
                event.id, refund.id
            ));
        }
        Ok(Response::json(
            200,
            &serde_json::json!({ "received": true }),
        ))
    }

    pub(crate) fn signed_in_user(&self, request: &Request) -> Result<Claims, ApiError> {
        api::require_user(request, &self.config.verifier, self.clock.now_ms() / 1000)
    }
}

/// A Stripe failure as the client sees it.
pub(crate) fn stripe_failure(error: StripeError) -> ApiError {
    match error {
        StripeError::Declined { message, .. } => ApiError::PaymentRefused(message),
        StripeError::Refused { message, .. } => ApiError::BadRequest(message),
        StripeError::Unavailable(cause) => ApiError::Upstream(cause),
    }
}

/// The body of `POST /api/payments`, loose so that a wrong field is a validation message.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentBody {
    order_id: Option<Value>,
    payment_method_id: Option<Value>,
    /// The reference's legacy card token (Checkout + Charges), which Stripe retired.
    token: Option<Value>,
}

struct PaymentForm {
    order_id: OrderId,
    payment_method: Option<String>,
}

fn payment_form(request: &Request) -> Result<PaymentForm, ApiError> {
    let body: PaymentBody = parse_json(request, MAX_FORM_BYTES)?;
    let mut v = Validator::new();
    if body.token.is_some() {
        v.add("token", TOKENS_RETIRED);
    }
    let order_id = match &body.order_id {
        None | Some(Value::Null) => {
            v.add("orderId", ORDER_ID_REQUIRED);
            None
        }
        Some(Value::String(text)) if text.trim().is_empty() => {
            v.add("orderId", ORDER_ID_REQUIRED);
            None
        }
        Some(Value::String(text)) => OrderId::parse(text).ok().or_else(|| {
            v.add("orderId", ORDER_ID_INVALID);
            None
        }),
        Some(_) => {
            v.add("orderId", ORDER_ID_INVALID);
            None
        }
    };
    let payment_method = match &body.payment_method_id {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(text)) if is_stripe_id(text) => Some(Some(text.clone())),
        Some(_) => {
            v.add("paymentMethodId", PAYMENT_METHOD_INVALID);
            None
        }
    };
    v.finish_with(|| {
        Some(PaymentForm {
            order_id: order_id?,
            payment_method: payment_method?,
        })
    })
}

/// A Stripe object id: a short prefix, `_`, letters and digits (`pm_card_visa`, `pm_1Q...`).
fn is_stripe_id(text: &str) -> bool {
    (3..=255).contains(&text.len())
        && text.contains('_')
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{
        BUYER, NOW_MS, STRANGER, TestApp, WINDOW_MS, declined, json, succeeded_event, text,
    };

    fn assert_error(response: &Response, status: u16, message: &str) {
        assert_eq!(response.status, status, "{}", text(response));
        assert_eq!(json(response)["errors"], json!([{ "message": message }]));
    }

    /// The `payment:created` events in the outbox.
    fn payments_enqueued(app: &TestApp) -> Vec<events::PaymentCreated> {
        app.outbox()
            .iter()
            .filter_map(|envelope| match envelope.decode() {
                Ok(events::Event::PaymentCreated(paid)) => Some(paid),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_payment_for_an_order_still_queued_catches_the_replica_up_instead_of_404() {
        let app = TestApp::new();
        let order = app.order_queued(1999);
        let response = app.pay(
            Some(BUYER),
            &json!({ "orderId": order, "paymentMethodId": "pm_card_visa" }),
        );
        assert_eq!(
            response.status,
            201,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        assert_eq!(app.catch_ups.get(), 1);
        assert_eq!(app.payment_status(&order).as_deref(), Some("succeeded"));
        // A known order is paid without catching up again.
        let known = app.order(1999);
        let response = app.pay(Some(BUYER), &json!({ "orderId": known }));
        assert_eq!(response.status, 201);
        assert_eq!(app.catch_ups.get(), 1);
    }

    #[test]
    fn paying_requires_a_signed_in_owner_of_a_known_order() {
        let app = TestApp::new();
        let order = app.order(1999);
        assert_error(
            &app.pay(None, &json!({ "orderId": order })),
            401,
            "You are not signed in",
        );
        assert_error(
            &app.pay(
                Some(BUYER),
                &json!({ "orderId": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b" }),
            ),
            404,
            "Not found",
        );
        assert_error(
            &app.pay(Some(STRANGER), &json!({ "orderId": order })),
            401,
            NOT_OWNER,
        );
        assert!(app.stripe.created.borrow().is_empty());
        assert_eq!(app.payment(&order), None);
    }

    #[test]
    fn invalid_forms_name_their_field_and_card_tokens_point_to_payment_methods() {
        let app = TestApp::new();
        let order = app.order(1999);
        let cases = [
            (json!({}), "orderId", ORDER_ID_REQUIRED),
            (json!({ "orderId": "" }), "orderId", ORDER_ID_REQUIRED),
            (json!({ "orderId": "abc" }), "orderId", ORDER_ID_INVALID),
            (json!({ "orderId": 7 }), "orderId", ORDER_ID_INVALID),
            (
                json!({ "orderId": order, "paymentMethodId": "visa card" }),
                "paymentMethodId",
                PAYMENT_METHOD_INVALID,
            ),
            (
                json!({ "orderId": order, "paymentMethodId": 4242 }),
                "paymentMethodId",
                PAYMENT_METHOD_INVALID,
            ),
            (
                json!({ "orderId": order, "token": "tok_visa" }),
                "token",
                TOKENS_RETIRED,
            ),
        ];
        for (body, field, message) in cases {
            let response = app.pay(Some(BUYER), &body);
            assert_eq!(response.status, 400, "{body}: {}", text(&response));
            assert_eq!(
                json(&response)["errors"],
                json!([{ "message": message, "field": field }]),
                "{body}"
            );
        }
        assert!(TOKENS_RETIRED.contains("paymentMethodId"));
        assert!(app.stripe.created.borrow().is_empty());
    }

    #[test]
    fn an_intent_is_created_once_for_the_exact_price_in_cents() {
        let app = TestApp::new();
        for cents in [1999, 2005, 29] {
            let order = app.order(cents);
            let first = app.pay(Some(BUYER), &json!({ "orderId": order }));
            assert_eq!(first.status, 201, "{}", text(&first));
            let body = json(&first);
            assert_eq!(body["orderId"], json!(order));
            assert_eq!(body["status"], json!("requires_payment_method"));
            assert_eq!(body["success"], json!(true));
            assert!(
                body["clientSecret"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("_secret"))
            );
            // Asking again gives the same payment and does not create a second intent.
            let again = app.pay(Some(BUYER), &json!({ "orderId": order }));
            assert_eq!(json(&again), body);
            let created: Vec<i64> = app
                .stripe
                .created
                .borrow()
                .iter()
                .filter(|(id, _)| *id == order)
                .map(|(_, amount)| *amount)
                .collect();
            assert_eq!(created, [i64::try_from(cents).expect("fits")]);
        }
    }

    #[test]
    fn a_confirmed_payment_completes_once_and_cannot_be_paid_again() {
        let app = TestApp::new();
        let order = app.order(1999);
        let paid = app.pay(
            Some(BUYER),
            &json!({ "orderId": order, "paymentMethodId": "pm_card_visa" }),
        );
        assert_eq!(paid.status, 201, "{}", text(&paid));
        assert_eq!(json(&paid)["status"], json!("succeeded"));
        let again = app.pay(
            Some(BUYER),
            &json!({ "orderId": order, "paymentMethodId": "pm_card_visa" }),
        );
        assert_error(&again, 400, ORDER_PAID);
        // The webhook for the same success changes nothing.
        let (_, intent, _) = app.payment(&order).expect("a payment");
        let event = succeeded_event(&intent);
        assert_eq!(app.webhook(&event, app.signed(&event)).status, 200);
        let published = payments_enqueued(&app);
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].order_id, order);
        assert_eq!(published[0].stripe_id, intent);
        assert_eq!(published[0].id, json(&paid)["id"].as_str().expect("an id"));
        // Once orders completes the order, it is not payable either.
        app.complete(&order, 1);
        assert_error(
            &app.pay(Some(BUYER), &json!({ "orderId": order })),
            400,
            ORDER_PAID,
        );
    }

    #[test]
    fn a_declined_card_leaves_the_order_payable() {
        let app = TestApp::new();
        let order = app.order(1999);
        app.stripe
            .confirm_outcomes
            .borrow_mut()
            .push(Err(declined()));
        let refused = app.pay(
            Some(BUYER),
            &json!({ "orderId": order, "paymentMethodId": "pm_card_chargeCustomerFail" }),
        );
        assert_error(&refused, 402, "Your card was declined.");
        assert_eq!(
            app.payment_status(&order).as_deref(),
            Some("requires_payment_method")
        );
        assert!(payments_enqueued(&app).is_empty());
        let paid = app.pay(
            Some(BUYER),
            &json!({ "orderId": order, "paymentMethodId": "pm_card_visa" }),
        );
        assert_eq!(json(&paid)["status"], json!("succeeded"), "{}", text(&paid));
        assert_eq!(payments_enqueued(&app).len(), 1);
    }

    #[test]
    fn stripe_down_is_a_502_that_records_nothing_and_a_retry_works() {
        let app = TestApp::new();
        let order = app.order(1999);
        app.stripe.down.set(true);
        let response = app.pay(
            Some(BUYER),
            &json!({ "orderId": order, "paymentMethodId": "pm_card_visa" }),
        );
        assert_error(&response, 502, ApiError::UPSTREAM_MESSAGE);
        assert_eq!(app.payment(&order), None);
        assert!(app.outbox().is_empty());
        app.stripe.down.set(false);
        let retried = app.pay(
            Some(BUYER),
            &json!({ "orderId": order, "paymentMethodId": "pm_card_visa" }),
        );
        assert_eq!(
            json(&retried)["status"],
            json!("succeeded"),
            "{}",
            text(&retried)
        );
    }

    #[test]
    fn cancelled_complete_and_expired_orders_are_not_payable() {
        let app = TestApp::new();
        let cancelled = app.order(100);
        app.cancel(&cancelled, 1);
        assert_error(
            &app.pay(Some(BUYER), &json!({ "orderId": cancelled })),
            400,
            ORDER_CANCELLED,
        );
        let complete = app.order(100);
        app.complete(&complete, 1);
        assert_error(
            &app.pay(Some(BUYER), &json!({ "orderId": complete })),
            400,
            ORDER_PAID,
        );
        // Past expiresAt, even before expiration:complete cancelled it.
        let expired = app.order(100);
        app.advance(WINDOW_MS);
        assert_error(
            &app.pay(Some(BUYER), &json!({ "orderId": expired })),
            400,
            ORDER_EXPIRED,
        );
        assert!(app.stripe.created.borrow().is_empty());
    }

    #[test]
    fn a_success_for_an_order_cancelled_meanwhile_is_refunded_not_completed() {
        let app = TestApp::new();
        let order = app.order(1999);
        assert_eq!(
            app.pay(Some(BUYER), &json!({ "orderId": order })).status,
            201
        );
        let (_, intent, _) = app.payment(&order).expect("a payment");
        // The order expires; then the buyer's browser confirms in the last second.
        app.cancel(&order, 1);
        app.stripe.succeed(&intent);
        let event = succeeded_event(&intent);
        assert_eq!(app.webhook(&event, app.signed(&event)).status, 200);
        let (status, _, refund) = app.payment(&order).expect("a payment");
        assert_eq!(status, "refunded");
        assert_eq!(refund.as_deref(), Some("re_1"));
        assert!(payments_enqueued(&app).is_empty());
        let refunds = app.stripe.refunds.borrow().clone();
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0].0, intent);
        // A replayed webhook refunds nothing more.
        assert_eq!(app.webhook(&event, app.signed(&event)).status, 200);
        assert_eq!(app.stripe.refunds.borrow().len(), 1);
    }

    #[test]
    fn a_cancellation_that_arrives_after_the_success_refunds_the_payment() {
        let app = TestApp::new();
        let order = app.order(1999);
        let paid = app.pay(
            Some(BUYER),
            &json!({ "orderId": order, "paymentMethodId": "pm_card_visa" }),
        );
        assert_eq!(json(&paid)["status"], json!("succeeded"));
        app.cancel(&order, 1);
        assert_eq!(
            app.payment_status(&order).as_deref(),
            Some("refund_pending")
        );
        // Stripe fails the first try; the next housekeeping run refunds.
        app.stripe.refund_fails.set(true);
        let made = crate::settlement::refund_pending(&app.db, &app.stripe, 0).expect("runs");
        assert_eq!(made, 0);
        app.stripe.refund_fails.set(false);
        let made = crate::settlement::refund_pending(&app.db, &app.stripe, 0).expect("runs");
        assert_eq!(made, 1);
        assert_eq!(app.payment_status(&order).as_deref(), Some("refunded"));
        let refunds = app.stripe.refunds.borrow().clone();
        assert_eq!(
            refunds[0].1,
            crate::settlement::refund_idempotency_key(json(&paid)["id"].as_str().expect("id"))
        );
    }

    /// A double submit: the first click's card is declined, but while Stripe answers it, the
    /// second click's payment succeeds and is settled. The late decline must not move the
    /// payment back, or the refund a cancellation owes would be lost.
    #[test]
    fn a_late_decline_does_not_undo_a_success_settled_meanwhile() {
        let app = TestApp::new();
        let order = app.order(1999);
        assert_eq!(
            app.pay(Some(BUYER), &json!({ "orderId": order })).status,
            201
        );
        let (_, intent, _) = app.payment(&order).expect("a payment");
        let other = app.file.open();
        let settle_intent = intent.clone();
        *app.stripe.during_confirm.borrow_mut() = Some(Box::new(move || {
            let gateway = crate::testing::FakeStripe::default();
            crate::settlement::succeeded(&other, &gateway, &settle_intent, NOW_MS, NOW_MS)
                .expect("the other request settles");
        }));
        app.stripe
            .confirm_outcomes
            .borrow_mut()
            .push(Err(declined()));
        let refused = app.pay(
            Some(BUYER),
            &json!({ "orderId": order, "paymentMethodId": "pm_card_chargeCustomerFail" }),
        );
        assert_eq!(refused.status, 402, "{}", text(&refused));
        assert_eq!(app.payment_status(&order).as_deref(), Some("succeeded"));
        // The order is cancelled after all (the buyer deleted it): the money goes back.
        app.cancel(&order, 1);
        assert_eq!(
            crate::settlement::refund_pending(&app.db, &app.stripe, NOW_MS).expect("refunds"),
            1
        );
        assert_eq!(app.payment_status(&order).as_deref(), Some("refunded"));
    }

    /// Stripe.js confirmed the intent after `expiresAt`, and its webhook came before
    /// `expiration:complete`: the order is still open here, but the payment came too late.
    #[test]
    fn a_success_after_the_order_expired_is_refunded_even_before_the_expiry_arrives() {
        let app = TestApp::new();
        let order = app.order(1999);
        assert_eq!(
            app.pay(Some(BUYER), &json!({ "orderId": order })).status,
            201
        );
        let (_, intent, _) = app.payment(&order).expect("a payment");
        app.advance(WINDOW_MS + 2_000);
        app.stripe.succeed(&intent);
        let event = crate::testing::succeeded_event_at(&intent, app.clock.now_ms());
        assert_eq!(app.webhook(&event, app.signed(&event)).status, 200);
        assert!(payments_enqueued(&app).is_empty());
        assert_eq!(app.payment_status(&order).as_deref(), Some("refunded"));
        assert_eq!(app.stripe.refunds.borrow().len(), 1);
    }

    /// The other side of the same rule: a success Stripe made before `expiresAt` wins, however
    /// late its webhook arrives.
    #[test]
    fn a_success_before_the_order_expired_wins_however_late_its_webhook_arrives() {
        let app = TestApp::new();
        let order = app.order(1999);
        assert_eq!(
            app.pay(Some(BUYER), &json!({ "orderId": order })).status,
            201
        );
        let (_, intent, _) = app.payment(&order).expect("a payment");
        app.stripe.succeed(&intent);
        let event = crate::testing::succeeded_event_at(&intent, NOW_MS + WINDOW_MS - 1_000);
        app.advance(WINDOW_MS + 60_000);
        assert_eq!(app.webhook(&event, app.signed(&event)).status, 200);
        let published = payments_enqueued(&app);
        assert_eq!(published.len(), 1, "{published:?}");
        assert_eq!(app.payment_status(&order).as_deref(), Some("succeeded"));
        assert!(app.stripe.refunds.borrow().is_empty());
    }

    /// Stripe answers a refund with `pending` for many payment methods, and may fail it later
    /// (a closed card account): it is done only once Stripe says `succeeded`.
    #[test]
    fn a_refund_stripe_has_not_finished_is_not_recorded_as_done() {
        let app = TestApp::new();
        let order = app.order(1999);
        let paid = app.pay(
            Some(BUYER),
            &json!({ "orderId": order, "paymentMethodId": "pm_card_visa" }),
        );
        assert_eq!(json(&paid)["status"], json!("succeeded"));
        *app.stripe.refund_status.borrow_mut() = Some("pending");
        app.cancel(&order, 1);
        crate::settlement::refund_pending(&app.db, &app.stripe, NOW_MS).expect("refunds");
        assert_eq!(app.stripe.refunds.borrow().len(), 1);
        assert_eq!(app.payment_status(&order).as_deref(), Some("refunding"));
    }

    #[test]
    fn webhooks_with_forged_stale_or_missing_signatures_change_nothing() {
        let app = TestApp::new();
        let order = app.order(1999);
        assert_eq!(
            app.pay(Some(BUYER), &json!({ "orderId": order })).status,
            201
        );
        let (_, intent, _) = app.payment(&order).expect("a payment");
        app.stripe.succeed(&intent);
        let event = succeeded_event(&intent);
        let stale = crate::webhook::sign(
            event.to_string().as_bytes(),
            crate::testing::WEBHOOK_SECRET,
            app.clock.now_ms() / 1000 - 301,
        );
        let forged = crate::webhook::sign(
            event.to_string().as_bytes(),
            "whsec_guess",
            app.clock.now_ms() / 1000,
        );
        for signature in [
            None,
            Some(stale),
            Some(forged),
            Some("t=1,v1=zz".to_owned()),
        ] {
            let response = app.webhook(&event, signature.clone());
            assert_eq!(response.status, 400, "{signature:?}: {}", text(&response));
            assert!(
                json(&response)["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("Invalid webhook"))
            );
        }
        assert_eq!(
            app.payment_status(&order).as_deref(),
            Some("requires_payment_method")
        );
        assert!(app.outbox().is_empty());
        // The genuine one settles it.
        assert_eq!(app.webhook(&event, app.signed(&event)).status, 200);
        assert_eq!(payments_enqueued(&app).len(), 1);
    }

    #[test]
    fn webhooks_about_other_things_are_acknowledged() {
        let app = TestApp::new();
        for event in [
            succeeded_event("pi_unknown"),
            json!({"id": "evt_2", "type": "customer.created", "data": {"object": {"id": "cus_1", "object": "customer"}}}),
        ] {
            let response = app.webhook(&event, app.signed(&event));
            assert_eq!(response.status, 200, "{}", text(&response));
            assert_eq!(json(&response), json!({ "received": true }));
        }
        assert!(app.outbox().is_empty());
    }

    #[test]
    fn a_signed_in_buyer_gets_a_setup_intent_for_the_card_they_type() {
        let app = TestApp::new();
        let request = |user: Option<&str>| {
            let mut request = Request::new(Method::Post, "/api/payments/setup");
            if let Some(user) = user {
                request =
                    request.with_header("authorization", &format!("Bearer {}", app.token(user)));
            }
            request
        };
        let created = app.handle(&request(Some(BUYER)));
        assert_eq!(created.status, 201, "{}", text(&created));
        assert_eq!(
            json(&created),
            json!({ "clientSecret": "seti_9d8c7b6a_secret" })
        );
        assert_error(&app.handle(&request(None)), 401, "You are not signed in");
        app.stripe.down.set(true);
        assert_error(
            &app.handle(&request(Some(BUYER))),
            502,
            ApiError::UPSTREAM_MESSAGE,
        );
    }

    #[test]
    fn the_browser_gets_the_publishable_key_the_stripe_js_url_and_the_fee() {
        let app = TestApp::new();
        let response = app.handle(&Request::new(Method::Get, "/api/payments/config"));
        assert_eq!(response.status, 200);
        assert_eq!(
            json(&response),
            json!({
                "publishableKey": "pk_test_123",
                "stripeJsUrl": "https://js.stripe.com/v3/",
                "platformFeeBps": 500,
            })
        );
        assert_error(
            &app.handle(&Request::new(Method::Get, "/api/payments")),
            404,
            "Not found",
        );
    }
}
