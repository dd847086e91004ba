//! A payments service on a real SQLite file with the real migration, a fake Stripe behind the
//! [`PaymentGateway`] port (the HTTP requests themselves are tested in `stripe.rs`), driven
//! through the public API and the event handler.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use api::{Method, Request, Response, Secret};
use delivery::Applied;
use domain::testing::FixedClock;
use domain::{Clock, rfc3339_millis};
use events::{
    Envelope, Event, OrderCancelled, OrderCompleted, OrderCreated, OrderStatus, TicketRef,
};
use serde_json::{Value, json};
use session::{SigningKey, TokenSigner};
use storage::NativeDatabase;
use storage::testing::TempDatabase;

use crate::stripe::{
    Account, Charge, ChargeRef, Customer, Destination, Intent, Link, PaymentGateway, Refund,
    Requirements, SetupIntent, StripeApi, StripeError, Transfer, parse_currency,
};
use crate::{MIGRATIONS, PaymentsApi, PaymentsConfig, PaymentsEvents};

/// 2026-11-25T03:04:05.678Z.
pub(crate) const NOW_MS: u64 = 1_795_575_845_678;
pub(crate) const WINDOW_MS: u64 = 900_000;
pub(crate) const BUYER: &str = "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a";
pub(crate) const STRANGER: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
pub(crate) const SELLER: &str = "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c";
pub(crate) const WEBHOOK_SECRET: &str = "whsec_test";
pub(crate) const CONNECT_WEBHOOK_SECRET: &str = "whsec_connect_test";

/// A fake Stripe: intents it created, what confirming does next, whether it answers at all,
/// and every call made.
#[derive(Default)]
pub(crate) struct FakeStripe {
    pub(crate) intents: RefCell<HashMap<String, Intent>>,
    /// Outcomes of the next confirms, in order; a success when empty.
    pub(crate) confirm_outcomes: RefCell<Vec<Result<&'static str, StripeError>>>,
    pub(crate) down: Cell<bool>,
    pub(crate) refund_fails: Cell<bool>,
    pub(crate) created: RefCell<Vec<(String, i64)>>,
    pub(crate) refunds: RefCell<Vec<(String, String)>>,
    /// Runs once, inside the next confirm, before it answers: what another request does
    /// meanwhile (a second submit, the webhook of a success).
    pub(crate) during_confirm: RefCell<Option<Box<dyn FnOnce()>>>,
    /// The status Stripe gives the refunds it makes (`succeeded` when unset), and later
    /// reports when one is retrieved.
    pub(crate) refund_status: RefCell<Option<&'static str>>,
    /// Customers made, by user.
    pub(crate) customers: RefCell<Vec<String>>,
    /// Stripe's clock: the time of the charges it makes.
    pub(crate) now_ms: Cell<u64>,
    /// The destination and fee of each intent made as a destination charge, by intent.
    pub(crate) destinations: RefCell<HashMap<String, (String, i64)>>,
    /// Whether each refund asked to reverse the transfer and fee, in order.
    pub(crate) reversing_refunds: RefCell<Vec<bool>>,
    /// Connected accounts made, by user.
    pub(crate) accounts: RefCell<Vec<String>>,
    /// Transfers made, by idempotency key: (order, amount, destination, charge), as Stripe keeps
    /// one per key.
    pub(crate) transfers: RefCell<HashMap<String, (String, i64, String, String)>>,
    /// Transfer calls made, keys repeated included.
    pub(crate) transfer_calls: Cell<usize>,
}

impl FakeStripe {
    fn unavailable(&self) -> Result<(), StripeError> {
        if self.down.get() {
            return Err(StripeError::Unavailable("connection refused".to_owned()));
        }
        Ok(())
    }

    fn set_status(&self, intent_id: &str, status: &str) -> Intent {
        let mut intents = self.intents.borrow_mut();
        let intent = intents.get_mut(intent_id).expect("a known intent");
        intent.status = status.to_owned();
        if status == "succeeded" {
            intent.latest_charge = Some(ChargeRef::Charge(Charge {
                id: format!("ch_{}", &intent_id[3..]),
                created: self.now_ms.get() / 1000,
            }));
        }
        intent.clone()
    }

    /// Makes an intent succeed outside our API (the browser's Stripe.js confirmed it).
    pub(crate) fn succeed(&self, intent_id: &str) {
        self.set_status(intent_id, "succeeded");
    }
}

impl PaymentGateway for FakeStripe {
    fn create_customer(&self, user_id: &str) -> Result<Customer, StripeError> {
        self.unavailable()?;
        self.customers.borrow_mut().push(user_id.to_owned());
        Ok(Customer {
            id: format!("cus_{}", &user_id[..8]),
        })
    }

    fn create_intent(
        &self,
        order_id: &str,
        amount_cents: i64,
        _customer: &str,
        destination: Option<Destination<'_>>,
    ) -> Result<Intent, StripeError> {
        self.unavailable()?;
        self.created
            .borrow_mut()
            .push((order_id.to_owned(), amount_cents));
        // Like Stripe's idempotency key: the same order gets the same intent.
        let id = format!("pi_{}", &order_id[..8]);
        if let Some(destination) = destination {
            self.destinations.borrow_mut().insert(
                id.clone(),
                (destination.account.to_owned(), destination.fee_cents),
            );
        }
        let intent = Intent {
            id: id.clone(),
            status: "requires_payment_method".to_owned(),
            amount: amount_cents,
            currency: "usd".to_owned(),
            client_secret: Some(format!("{id}_secret")),
            metadata: HashMap::from([("order_id".to_owned(), order_id.to_owned())]),
            latest_charge: None,
        };
        Ok(self
            .intents
            .borrow_mut()
            .entry(id)
            .or_insert(intent)
            .clone())
    }

    fn retrieve_intent(&self, intent_id: &str) -> Result<Intent, StripeError> {
        self.unavailable()?;
        Ok(self.intents.borrow()[intent_id].clone())
    }

    fn confirm_intent(
        &self,
        intent_id: &str,
        _payment_method: &str,
    ) -> Result<Intent, StripeError> {
        self.unavailable()?;
        if let Some(meanwhile) = self.during_confirm.borrow_mut().take() {
            meanwhile();
        }
        let outcome = {
            let mut outcomes = self.confirm_outcomes.borrow_mut();
            if outcomes.is_empty() {
                Ok("succeeded")
            } else {
                outcomes.remove(0)
            }
        };
        if self.intents.borrow()[intent_id].status == "succeeded" {
            return Err(StripeError::Refused {
                status: 400,
                message: "This PaymentIntent has already succeeded".to_owned(),
                code: Some("payment_intent_unexpected_state".to_owned()),
            });
        }
        match outcome {
            Ok(status) => Ok(self.set_status(intent_id, status)),
            Err(error) => {
                self.set_status(intent_id, "requires_payment_method");
                Err(error)
            }
        }
    }

    fn cancel_intent(&self, intent_id: &str) -> Result<Intent, StripeError> {
        self.unavailable()?;
        let status = self.intents.borrow()[intent_id].status.clone();
        if matches!(status.as_str(), "succeeded" | "processing" | "canceled") {
            return Err(StripeError::Refused {
                status: 400,
                message: format!(
                    "You cannot cancel this PaymentIntent because it has a status of {status}."
                ),
                code: Some("payment_intent_unexpected_state".to_owned()),
            });
        }
        Ok(self.set_status(intent_id, "canceled"))
    }

    fn refund(
        &self,
        intent_id: &str,
        idempotency_key: &str,
        reverse_transfer: bool,
    ) -> Result<Refund, StripeError> {
        self.unavailable()?;
        if self.refund_fails.get() {
            return Err(StripeError::Unavailable("503".to_owned()));
        }
        self.reversing_refunds.borrow_mut().push(reverse_transfer);
        self.refunds
            .borrow_mut()
            .push((intent_id.to_owned(), idempotency_key.to_owned()));
        self.retrieve_refund(&format!("re_{}", self.refunds.borrow().len()))
    }

    fn retrieve_refund(&self, refund_id: &str) -> Result<Refund, StripeError> {
        self.unavailable()?;
        Ok(Refund {
            id: refund_id.to_owned(),
            status: Some(
                self.refund_status
                    .borrow()
                    .unwrap_or("succeeded")
                    .to_owned(),
            ),
            failure_reason: None,
        })
    }

    fn create_setup_intent(
        &self,
        user_id: &str,
        _customer: &str,
    ) -> Result<SetupIntent, StripeError> {
        self.unavailable()?;
        Ok(SetupIntent {
            id: format!("seti_{}", &user_id[..8]),
            client_secret: Some(format!("seti_{}_secret", &user_id[..8])),
        })
    }

    fn create_account(&self, user_id: &str, _email: &str) -> Result<Account, StripeError> {
        self.unavailable()?;
        self.accounts.borrow_mut().push(user_id.to_owned());
        Ok(connect_account(&account_id(user_id), false))
    }

    fn create_account_link(
        &self,
        account: &str,
        return_url: &str,
        refresh_url: &str,
        _requested_at_ms: u64,
    ) -> Result<Link, StripeError> {
        self.unavailable()?;
        Ok(Link {
            url: format!(
                "https://connect.stripe.com/setup/e/{account}?r={return_url}&f={refresh_url}"
            ),
        })
    }

    fn create_login_link(&self, account: &str, _requested_at_ms: u64) -> Result<Link, StripeError> {
        self.unavailable()?;
        Ok(Link {
            url: format!("https://connect.stripe.com/express/{account}"),
        })
    }

    fn create_transfer(
        &self,
        order_id: &str,
        amount_cents: i64,
        destination: &str,
        charge: &str,
    ) -> Result<Transfer, StripeError> {
        self.unavailable()?;
        self.transfer_calls.set(self.transfer_calls.get() + 1);
        // One transfer per idempotency key, whose id follows from it.
        let key = crate::stripe::transfer_idempotency_key(order_id);
        self.transfers.borrow_mut().entry(key).or_insert_with(|| {
            (
                order_id.to_owned(),
                amount_cents,
                destination.to_owned(),
                charge.to_owned(),
            )
        });
        Ok(Transfer {
            id: format!("tr_{}", &order_id[..8]),
        })
    }
}

/// The connected account the fake Stripe makes for `user_id`.
pub(crate) fn account_id(user_id: &str) -> String {
    format!("acct_{}", &user_id[..8])
}

/// A connected account as Stripe describes it, onboarded (`enabled`) or not.
pub(crate) fn connect_account(id: &str, enabled: bool) -> Account {
    let state = if enabled { "active" } else { "inactive" };
    Account {
        id: id.to_owned(),
        payouts_enabled: enabled,
        capabilities: HashMap::from([("transfers".to_owned(), state.to_owned())]),
        requirements: Some(Requirements {
            currently_due: if enabled {
                Vec::new()
            } else {
                vec![
                    "external_account".to_owned(),
                    "tos_acceptance.date".to_owned(),
                ]
            },
        }),
    }
}

pub(crate) fn declined() -> StripeError {
    StripeError::Declined {
        message: "Your card was declined.".to_owned(),
        code: Some("card_declined".to_owned()),
    }
}

pub(crate) struct TestApp {
    pub(crate) file: TempDatabase,
    pub(crate) db: NativeDatabase,
    pub(crate) config: PaymentsConfig,
    pub(crate) clock: FixedClock,
    pub(crate) stripe: FakeStripe,
    signer: TokenSigner,
    /// Events on their stream that the consumer has not read yet: a catch-up applies them.
    pub(crate) queued: RefCell<Vec<Event>>,
    pub(crate) catch_ups: Cell<usize>,
}

impl crate::OrdersReplica for TestApp {
    fn catch_up(&self) -> anyhow::Result<()> {
        self.catch_ups.set(self.catch_ups.get() + 1);
        for event in self.queued.take() {
            self.deliver(event)?;
        }
        Ok(())
    }
}

impl TestApp {
    pub(crate) fn new() -> TestApp {
        let file = TempDatabase::migrated("payments.sqlite", MIGRATIONS);
        let key = SigningKey::from_seed(&[7; 32]).expect("valid seed");
        let config = PaymentsConfig {
            verifier: session::TokenVerifier::new(key.verifying_key()),
            stripe: StripeApi {
                api_base: "https://api.stripe.com".to_owned(),
                secret_key: Secret::new("sk_test_123"),
                currency: parse_currency("usd").expect("usd"),
            },
            webhook_secret: Secret::new(WEBHOOK_SECRET),
            connect_webhook_secret: Some(Secret::new(CONNECT_WEBHOOK_SECRET)),
            publishable_key: "pk_test_123".to_owned(),
            js_url: "https://js.stripe.com/v3/".to_owned(),
            platform_fee_bps: 500,
        };
        TestApp {
            db: file.open(),
            file,
            config,
            clock: FixedClock::at(NOW_MS),
            stripe: FakeStripe {
                now_ms: Cell::new(NOW_MS),
                ..FakeStripe::default()
            },
            signer: TokenSigner::new(key, 24 * 3600),
            queued: RefCell::default(),
            catch_ups: Cell::new(0),
        }
    }

    /// Moves our clock and Stripe's on by `ms`.
    pub(crate) fn advance(&self, ms: u64) {
        self.clock.advance(ms);
        self.stripe.now_ms.set(self.clock.now_ms());
    }

    pub(crate) fn handle(&self, request: &Request) -> Response {
        PaymentsApi {
            db: &self.db,
            config: &self.config,
            clock: &self.clock,
            gateway: &self.stripe,
            replica: self,
        }
        .handle(request)
    }

    pub(crate) fn token(&self, user: &str) -> String {
        self.signer
            .sign(user, "buyer@example.com", NOW_MS / 1000)
            .expect("sign a token")
    }

    pub(crate) fn pay(&self, user: Option<&str>, body: &Value) -> Response {
        let mut request = Request::new(Method::Post, "/api/payments")
            .with_header("content-type", "application/json")
            .with_body(body.to_string());
        if let Some(user) = user {
            request = request.with_header("cookie", &format!("session={}", self.token(user)));
        }
        self.handle(&request)
    }

    /// A bodiless `method path` from `user`, as the site sends it (`spin-full-url` included).
    pub(crate) fn send(&self, method: Method, path: &str, user: &str) -> Response {
        let request = Request::new(method, path)
            .with_header("spin-full-url", &format!("https://tickets.example{path}"))
            .with_header("cookie", &format!("session={}", self.token(user)));
        self.handle(&request)
    }

    /// Sends `account.updated` for `account`, as Stripe created it at `created_s`, signed with
    /// the Connect endpoint's secret.
    pub(crate) fn account_updated(&self, account: &Account, created_s: u64) -> Response {
        self.account_updated_signed(account, created_s, CONNECT_WEBHOOK_SECRET)
    }

    pub(crate) fn account_updated_signed(
        &self,
        account: &Account,
        created_s: u64,
        secret: &str,
    ) -> Response {
        let event = json!({
            "id": format!("evt_{created_s}"), "object": "event", "type": "account.updated",
            "created": created_s, "account": account.id,
            "data": {"object": {
                "id": account.id, "object": "account", "type": "express",
                "payouts_enabled": account.payouts_enabled,
                "charges_enabled": account.payouts_enabled,
                "capabilities": account.capabilities,
                "requirements": {"currently_due": account.requirements_due()},
            }},
        });
        let signature = crate::webhook::sign(
            event.to_string().as_bytes(),
            secret,
            self.clock.now_ms() / 1000,
        );
        self.webhook(&event, Some(signature))
    }

    /// Sends a webhook with `payload`, signed with the endpoint's secret at `signed_at_ms`.
    pub(crate) fn webhook(&self, payload: &Value, signature: Option<String>) -> Response {
        let mut request = Request::new(Method::Post, "/api/payments/webhook")
            .with_header("content-type", "application/json")
            .with_body(payload.to_string());
        if let Some(signature) = signature {
            request = request.with_header("stripe-signature", &signature);
        }
        self.handle(&request)
    }

    pub(crate) fn signed(&self, payload: &Value) -> Option<String> {
        Some(crate::webhook::sign(
            payload.to_string().as_bytes(),
            WEBHOOK_SECRET,
            self.clock.now_ms() / 1000,
        ))
    }

    /// Puts BUYER's order for `price_cents` of a ticket SELLER sells into the replica, as
    /// `order:created` does; its id.
    pub(crate) fn order(&self, price_cents: u64) -> String {
        self.order_from(Some(SELLER), price_cents)
    }

    /// Like [`TestApp::order`], with the ticket sold by `seller` (`None`: an order replicated
    /// before payouts existed).
    pub(crate) fn order_from(&self, seller: Option<&str>, price_cents: u64) -> String {
        let (id, created) = self.order_created(seller, price_cents);
        self.deliver(created).expect("order:created applies");
        id
    }

    /// An order whose `order:created` is on its stream but not yet read by the consumer.
    pub(crate) fn order_queued(&self, price_cents: u64) -> String {
        let (id, created) = self.order_created(Some(SELLER), price_cents);
        self.queued.borrow_mut().push(created.into());
        id
    }

    fn order_created(&self, seller: Option<&str>, price_cents: u64) -> (String, OrderCreated) {
        let id = domain::OrderId::new_random().to_string();
        let created = OrderCreated {
            seller_id: seller.map(str::to_owned),
            id: id.clone(),
            user_id: BUYER.to_owned(),
            status: OrderStatus::Created,
            version: 0,
            expires_at: rfc3339_millis(self.clock.now_ms() + WINDOW_MS),
            ticket: ticket(price_cents),
            placed_seq: Some(1),
        };
        (id, created)
    }

    pub(crate) fn cancel(&self, order_id: &str, version: u64) {
        self.deliver(OrderCancelled {
            id: order_id.to_owned(),
            user_id: BUYER.to_owned(),
            version,
            ticket: ticket(100),
        })
        .expect("order:cancelled applies");
    }

    pub(crate) fn complete(&self, order_id: &str, version: u64) {
        self.deliver(OrderCompleted {
            id: order_id.to_owned(),
            user_id: BUYER.to_owned(),
            version,
            ticket: ticket(100),
        })
        .expect("order:completed applies");
    }

    /// Applies `event` as the consumer does ([`delivery::testing::deliver`]).
    pub(crate) fn deliver(&self, event: impl Into<Event>) -> anyhow::Result<Applied> {
        let now = self.clock.now_ms();
        delivery::testing::deliver(&self.db, "payments", &PaymentsEvents, event, now)
    }

    pub(crate) fn outbox(&self) -> Vec<Envelope> {
        delivery::testing::outbox(&self.db)
    }

    /// The status of an order's payment, if it has one.
    pub(crate) fn payment_status(&self, order_id: &str) -> Option<String> {
        self.payment(order_id).map(|(status, _, _)| status)
    }

    /// `(status, stripe id, refund id)` of an order's payment.
    pub(crate) fn payment(&self, order_id: &str) -> Option<(String, String, Option<String>)> {
        crate::store::payment_for_order(&self.db, order_id)
            .expect("lookup")
            .map(|payment| {
                (
                    payment.status.as_str().to_owned(),
                    payment.stripe_id,
                    payment.refund_id,
                )
            })
    }
}

fn ticket(price_cents: u64) -> TicketRef {
    TicketRef {
        id: "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f".to_owned(),
        price_cents,
    }
}

pub(crate) use api::testing::{json, text};

/// A `payment_intent.succeeded` event as Stripe sends it, created at [`NOW_MS`].
pub(crate) fn succeeded_event(intent_id: &str) -> Value {
    succeeded_event_at(intent_id, NOW_MS)
}

/// A `payment_intent.succeeded` event Stripe created at `created_ms` (Stripe's timestamps are
/// whole seconds).
pub(crate) fn succeeded_event_at(intent_id: &str, created_ms: u64) -> Value {
    json!({
        "id": "evt_1", "object": "event", "type": "payment_intent.succeeded",
        "created": created_ms / 1000, "livemode": false, "api_version": "2026-09-30.endive",
        "data": {"object": {"id": intent_id, "object": "payment_intent", "status": "succeeded",
                             "amount": 1999, "currency": "usd"}},
    })
}
