//! Stripe as the payments service uses it: Customers, SetupIntents, PaymentIntents and Refunds,
//! and Connect's Express accounts, Account Links, Login Links and Transfers for paying sellers,
//! behind the [`PaymentGateway`] port.
//!
//! The requests are async-stripe 1.0's typed builders (`CreateCustomer`, `CreateSetupIntent`,
//! `CreatePaymentIntent`, `UpdatePaymentIntent`, `ConfirmPaymentIntent`, `RetrievePaymentIntent`,
//! `CancelPaymentIntent`, `CreateRefund`, `RetrieveRefund`, and from async-stripe-connect
//! `CreateAccount`, `CreateAccountLink`, `CreateAccountLoginLink`, `CreateTransfer`), so
//! every parameter we send is one Stripe documents, form-encoded as Stripe expects. [`Stripe`]
//! sends what they build through the [`HttpClient`] port (Spin's outbound HTTP in the component)
//! and reads the answers into the few fields used here. async-stripe's own response types are
//! not used: they require every field real Stripe returns, so the stateful fake Stripe the tests
//! and `scripts/up` run (localstripe, whose objects carry fewer fields) could not be read with
//! them, and their deserializers would be most of the component's size.

use std::collections::HashMap;
use std::str::FromStr;

use api::{HttpClient, Method, OutboundRequest, Secret};
use serde::Deserialize;
use stripe_client_core::{RequestBuilder, StripeMethod, StripeRequest};
use stripe_connect::account::{
    CreateAccount, CreateAccountCapabilities, CreateAccountCapabilitiesCardPayments,
    CreateAccountCapabilitiesTransfers, CreateAccountType,
};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_connect::login_link::CreateAccountLoginLink;
use stripe_connect::transfer::CreateTransfer;
use stripe_core::customer::CreateCustomer;
use stripe_core::payment_intent::{
    CancelPaymentIntent, ConfirmPaymentIntent, CreatePaymentIntent,
    CreatePaymentIntentTransferData, RetrievePaymentIntent, UpdatePaymentIntent,
};
use stripe_core::refund::{CreateRefund, RetrieveRefund};
use stripe_core::setup_intent::{CreateSetupIntent, CreateSetupIntentUsage};
use stripe_types::Currency;

/// Where Stripe is and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct StripeApi {
    /// `https://api.stripe.com`, or a fake's address; requests go to `<base>/v1/...`.
    pub api_base: String,
    pub secret_key: Secret,
    pub currency: Currency,
}

/// Reads a currency code such as `usd` (any case).
pub fn parse_currency(code: &str) -> Option<Currency> {
    let code = code.trim().to_ascii_lowercase();
    match Currency::from_str(&code) {
        Ok(Currency::Unknown(_)) | Err(_) => None,
        Ok(currency) => Some(currency),
    }
}

/// A PaymentIntent, as far as this service reads one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Intent {
    pub id: String,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`, `processing`,
    /// `requires_capture`, `canceled` or `succeeded`.
    pub status: String,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// The intent's last charge: the object when the request expanded it (this service always
    /// does), else its id.
    #[serde(default)]
    pub latest_charge: Option<ChargeRef>,
}

/// `latest_charge`, expanded or not.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ChargeRef {
    Charge(Charge),
    Id(String),
}

/// A Charge, as far as this service reads one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Charge {
    pub id: String,
    /// When Stripe made the charge, in seconds since the Unix epoch.
    pub created: u64,
}

impl Intent {
    /// The id of the intent's charge, once it has one.
    pub fn charge_id(&self) -> Option<&str> {
        match &self.latest_charge {
            Some(ChargeRef::Charge(charge)) => Some(&charge.id),
            Some(ChargeRef::Id(id)) => Some(id),
            None => None,
        }
    }

    /// When the intent's charge was made at Stripe (whole seconds, as milliseconds), if the
    /// answer carried it.
    pub fn charged_at_ms(&self) -> Option<u64> {
        match &self.latest_charge {
            Some(ChargeRef::Charge(charge)) => charge.created.checked_mul(1000),
            Some(ChargeRef::Id(_)) | None => None,
        }
    }
}

/// A Customer: each buyer has one, so the cards they set up belong to it and can be used again.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Customer {
    pub id: String,
}

/// A SetupIntent, as far as this service reads one: the browser confirms it with the card the
/// buyer typed (Stripe.js `confirmCardSetup`), which makes the PaymentMethod to pay with and
/// attaches it to the buyer's Customer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SetupIntent {
    pub id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// A Refund, as far as this service reads one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Refund {
    pub id: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    #[serde(default)]
    pub status: Option<String>,
    /// Why a refund failed, when it did (`expired_or_canceled_card`, `lost_or_stolen_card`, …).
    #[serde(default)]
    pub failure_reason: Option<String>,
}

/// Where a destination charge sends the money: the seller's connected account, keeping the
/// platform's fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    pub account: &'a str,
    pub fee_cents: i64,
}

/// A connected account (Express), as far as this service reads one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Account {
    pub id: String,
    #[serde(default)]
    pub payouts_enabled: bool,
    /// Each capability's state: `inactive`, `pending` or `active`.
    #[serde(default)]
    pub capabilities: HashMap<String, String>,
    #[serde(default)]
    pub requirements: Option<Requirements>,
}

/// What Stripe still needs from an account's owner.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Requirements {
    #[serde(default)]
    pub currently_due: Vec<String>,
}

impl Account {
    /// Whether Stripe lets the account take transfers (a destination charge's, or ours) and
    /// pay them out to the seller's bank.
    pub fn is_enabled(&self) -> bool {
        self.payouts_enabled
            && self.capabilities.get("transfers").map(String::as_str) == Some("active")
    }

    pub fn requirements_due(&self) -> Vec<String> {
        self.requirements
            .as_ref()
            .map(|requirements| requirements.currently_due.clone())
            .unwrap_or_default()
    }
}

/// An Account Link or a Login Link: a short-lived URL at Stripe for the seller's browser.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Link {
    pub url: String,
}

/// A Transfer, as far as this service reads one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Transfer {
    pub id: String,
}

/// How a call to Stripe failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// 402: the card was declined. The message is Stripe's, written for the buyer.
    #[error("card declined: {message}")]
    Declined {
        message: String,
        code: Option<String>,
    },
    /// Another 4xx: Stripe refused the request as made (an unknown payment method, an intent in
    /// a state that does not allow it). The message is Stripe's.
    #[error("Stripe refused the request ({status}): {message}")]
    Refused {
        status: u16,
        message: String,
        code: Option<String>,
    },
    /// No answer, a 5xx, a 429, or Stripe refusing our key (401/403): nothing the buyer can fix;
    /// try again later.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
}

/// Stripe's error body: `{"error": {"type", "code", "message", ...}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

/// What the payments service asks of Stripe.
pub trait PaymentGateway {
    /// Creates the Customer of a buyer, under an idempotency key derived from the user, so two
    /// first payments at once make one.
    fn create_customer(&self, user_id: &str) -> Result<Customer, StripeError>;
    /// Creates a PaymentIntent for an order, for the buyer's Customer, under an idempotency key
    /// derived from the order, so asking again (a retry, a second click, a second instance)
    /// returns the same intent.
    /// With a `destination`, the intent is a destination charge: Stripe moves the amount less
    /// the fee to the seller's account when it succeeds.
    fn create_intent(
        &self,
        order_id: &str,
        amount_cents: i64,
        customer: &str,
        destination: Option<Destination<'_>>,
    ) -> Result<Intent, StripeError>;
    /// The intent, with its latest charge expanded.
    fn retrieve_intent(&self, intent_id: &str) -> Result<Intent, StripeError>;
    /// Sets the payment method on the intent, then confirms it (two calls: Stripe accepts the
    /// payment method on confirm too, the fake Stripe does not). The answer has its latest
    /// charge expanded.
    fn confirm_intent(&self, intent_id: &str, payment_method: &str) -> Result<Intent, StripeError>;
    /// Cancels the intent, so that it can never succeed; Stripe refuses (`Refused`) when it has
    /// succeeded already, or is processing.
    fn cancel_intent(&self, intent_id: &str) -> Result<Intent, StripeError>;
    /// Refunds the whole intent, under `idempotency_key`, so a retried refund refunds once. For a
    /// destination charge (`reverse_transfer`) Stripe also takes the seller's share back and
    /// returns the platform's fee.
    fn refund(
        &self,
        intent_id: &str,
        idempotency_key: &str,
        reverse_transfer: bool,
    ) -> Result<Refund, StripeError>;
    fn retrieve_refund(&self, refund_id: &str) -> Result<Refund, StripeError>;
    /// Creates a SetupIntent for a card the buyer is about to type, for use now (`on_session`),
    /// for the buyer's Customer, which the card is attached to once it is set up.
    fn create_setup_intent(
        &self,
        user_id: &str,
        customer: &str,
    ) -> Result<SetupIntent, StripeError>;
    /// Creates a seller's Express connected account, under an idempotency key derived from the
    /// user, so a seller has one however often they ask.
    fn create_account(&self, user_id: &str, email: &str) -> Result<Account, StripeError>;
    /// An onboarding link for `account`, which sends the seller back to `return_url` when done
    /// and to `refresh_url` when the link has expired. `requested_at_ms` tells one request's
    /// idempotency key from the next one's: each asks for a fresh link.
    fn create_account_link(
        &self,
        account: &str,
        return_url: &str,
        refresh_url: &str,
        requested_at_ms: u64,
    ) -> Result<Link, StripeError>;
    /// A single-use link into the seller's Express dashboard.
    fn create_login_link(&self, account: &str, requested_at_ms: u64) -> Result<Link, StripeError>;
    /// Transfers an order's payout to the seller's account, funded by the order's charge
    /// (`source_transaction`), under an idempotency key derived from the order: one transfer per
    /// sale however often it is retried.
    fn create_transfer(
        &self,
        order_id: &str,
        amount_cents: i64,
        destination: &str,
        charge: &str,
    ) -> Result<Transfer, StripeError>;
}

/// The idempotency key of an order's PaymentIntent.
pub fn intent_idempotency_key(order_id: &str) -> String {
    format!("order-{order_id}-payment-intent")
}

/// The idempotency key of a buyer's Customer.
pub fn customer_idempotency_key(user_id: &str) -> String {
    format!("user-{user_id}-customer")
}

/// The idempotency key of a seller's connected account.
pub fn account_idempotency_key(user_id: &str) -> String {
    format!("user-{user_id}-connect-account")
}

/// The idempotency key of the transfer that pays an order out.
pub fn transfer_idempotency_key(order_id: &str) -> String {
    format!("order-{order_id}-payout-transfer")
}

/// What every intent this service reads expands: the charge, whose time is when it was paid.
const EXPAND_CHARGE: &str = "latest_charge";

/// Stripe's HTTP API over an [`HttpClient`].
pub struct Stripe<'a> {
    pub http: &'a dyn HttpClient,
    pub api: &'a StripeApi,
}

impl Stripe<'_> {
    /// Sends a request an async-stripe builder made and reads the answer as `T`.
    fn call<T: for<'de> Deserialize<'de>>(
        &self,
        request: RequestBuilder,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let mut url = format!(
            "{}/v1{}",
            self.api.api_base.trim_end_matches('/'),
            request.path
        );
        if let Some(query) = request.query.as_deref().filter(|query| !query.is_empty()) {
            url.push('?');
            url.push_str(query);
        }
        let mut headers = vec![
            (
                "authorization".to_owned(),
                format!("Bearer {}", self.api.secret_key.expose()),
            ),
            (
                "stripe-version".to_owned(),
                stripe_client_core::VERSION.as_str().to_owned(),
            ),
        ];
        if let Some(key) = idempotency_key {
            headers.push(("idempotency-key".to_owned(), key.to_owned()));
        }
        let method = match request.method {
            StripeMethod::Get => Method::Get,
            StripeMethod::Post => Method::Post,
            StripeMethod::Delete => Method::Delete,
        };
        let body = request.body.unwrap_or_default();
        if method == Method::Post {
            headers.push((
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ));
        }
        let response = self
            .http
            .send(OutboundRequest {
                method,
                url,
                headers,
                body: body.into_bytes(),
            })
            .map_err(|error| StripeError::Unavailable(error.to_string()))?;
        match response.status {
            200..=299 => serde_json::from_slice(&response.body).map_err(|error| {
                StripeError::Unavailable(format!("unreadable answer from Stripe: {error}"))
            }),
            status => Err(error_from(status, &response.body)),
        }
    }
}

fn error_from(status: u16, body: &[u8]) -> StripeError {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|body| body.error);
    let (message, code) = match detail {
        Some(detail) => (
            detail
                .message
                .unwrap_or_else(|| format!("Stripe answered {status}")),
            detail.code,
        ),
        None => (format!("Stripe answered {status}"), None),
    };
    match status {
        402 => StripeError::Declined { message, code },
        401 | 403 | 429 => StripeError::Unavailable(format!("{status}: {message}")),
        400..=499 => StripeError::Refused {
            status,
            message,
            code,
        },
        _ => StripeError::Unavailable(format!("{status}: {message}")),
    }
}

impl PaymentGateway for Stripe<'_> {
    fn create_customer(&self, user_id: &str) -> Result<Customer, StripeError> {
        let request = CreateCustomer::new()
            .metadata([("user_id".to_owned(), user_id.to_owned())])
            .build();
        self.call(request, Some(&customer_idempotency_key(user_id)))
    }

    fn create_intent(
        &self,
        order_id: &str,
        amount_cents: i64,
        customer: &str,
        destination: Option<Destination<'_>>,
    ) -> Result<Intent, StripeError> {
        let mut request = CreatePaymentIntent::new(amount_cents, self.api.currency.clone())
            .customer(customer)
            .metadata([("order_id".to_owned(), order_id.to_owned())]);
        if let Some(destination) = destination {
            request = request
                .transfer_data(CreatePaymentIntentTransferData::new(destination.account))
                .application_fee_amount(destination.fee_cents);
        }
        self.call(request.build(), Some(&intent_idempotency_key(order_id)))
    }

    fn retrieve_intent(&self, intent_id: &str) -> Result<Intent, StripeError> {
        let request = RetrievePaymentIntent::new(intent_id)
            .expand([EXPAND_CHARGE.to_owned()])
            .build();
        self.call(request, None)
    }

    fn confirm_intent(&self, intent_id: &str, payment_method: &str) -> Result<Intent, StripeError> {
        // An intent can succeed only once, so neither call needs an idempotency key to keep a
        // retry from charging twice; and a key would replay a decline when the buyer retries.
        let update = UpdatePaymentIntent::new(intent_id)
            .payment_method(payment_method)
            .build();
        self.call::<Intent>(update, None)?;
        let confirm = ConfirmPaymentIntent::new(intent_id)
            .expand([EXPAND_CHARGE.to_owned()])
            .build();
        self.call(confirm, None)
    }

    fn cancel_intent(&self, intent_id: &str) -> Result<Intent, StripeError> {
        self.call(CancelPaymentIntent::new(intent_id).build(), None)
    }

    fn refund(
        &self,
        intent_id: &str,
        idempotency_key: &str,
        reverse_transfer: bool,
    ) -> Result<Refund, StripeError> {
        let mut request = CreateRefund::new().payment_intent(intent_id);
        if reverse_transfer {
            request = request.reverse_transfer(true).refund_application_fee(true);
        }
        self.call(request.build(), Some(idempotency_key))
    }

    fn retrieve_refund(&self, refund_id: &str) -> Result<Refund, StripeError> {
        self.call(RetrieveRefund::new(refund_id).build(), None)
    }

    fn create_setup_intent(
        &self,
        user_id: &str,
        customer: &str,
    ) -> Result<SetupIntent, StripeError> {
        let request = CreateSetupIntent::new()
            .customer(customer)
            .usage(CreateSetupIntentUsage::OnSession)
            .metadata([("user_id".to_owned(), user_id.to_owned())])
            .build();
        self.call(request, None)
    }

    fn create_account(&self, user_id: &str, email: &str) -> Result<Account, StripeError> {
        let mut capabilities = CreateAccountCapabilities::new();
        capabilities.transfers = Some(CreateAccountCapabilitiesTransfers {
            requested: Some(true),
        });
        capabilities.card_payments = Some(CreateAccountCapabilitiesCardPayments {
            requested: Some(true),
        });
        let request = CreateAccount::new()
            .type_(CreateAccountType::Express)
            .email(email)
            .capabilities(capabilities)
            .metadata([("user_id".to_owned(), user_id.to_owned())])
            .build();
        self.call(request, Some(&account_idempotency_key(user_id)))
    }

    fn create_account_link(
        &self,
        account: &str,
        return_url: &str,
        refresh_url: &str,
        requested_at_ms: u64,
    ) -> Result<Link, StripeError> {
        let request = CreateAccountLink::new(account, CreateAccountLinkType::AccountOnboarding)
            .return_url(return_url)
            .refresh_url(refresh_url)
            .build();
        let key = format!("{account}-onboarding-link-{requested_at_ms}");
        self.call(request, Some(&key))
    }

    fn create_login_link(&self, account: &str, requested_at_ms: u64) -> Result<Link, StripeError> {
        let request = CreateAccountLoginLink::new(account).build();
        let key = format!("{account}-login-link-{requested_at_ms}");
        self.call(request, Some(&key))
    }

    fn create_transfer(
        &self,
        order_id: &str,
        amount_cents: i64,
        destination: &str,
        charge: &str,
    ) -> Result<Transfer, StripeError> {
        let request = CreateTransfer::new(self.api.currency.clone(), destination)
            .amount(amount_cents)
            .source_transaction(charge)
            .transfer_group(format!("order-{order_id}"))
            .metadata([("order_id".to_owned(), order_id.to_owned())])
            .build();
        self.call(request, Some(&transfer_idempotency_key(order_id)))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use api::{OutboundResponse, TransportError};
    use serde_json::json;

    use super::*;

    /// Answers each request with the next canned response and records the requests.
    struct FakeHttp {
        answers: RefCell<Vec<Result<OutboundResponse, TransportError>>>,
        sent: RefCell<Vec<OutboundRequest>>,
    }

    impl FakeHttp {
        fn answering(answers: Vec<Result<OutboundResponse, TransportError>>) -> FakeHttp {
            FakeHttp {
                answers: RefCell::new(answers),
                sent: RefCell::new(Vec::new()),
            }
        }

        fn sent(&self) -> Vec<OutboundRequest> {
            self.sent.borrow().clone()
        }
    }

    impl HttpClient for FakeHttp {
        fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, TransportError> {
            self.sent.borrow_mut().push(request);
            self.answers.borrow_mut().remove(0)
        }
    }

    fn ok(body: serde_json::Value) -> Result<OutboundResponse, TransportError> {
        Ok(OutboundResponse {
            status: 200,
            body: body.to_string().into_bytes(),
        })
    }

    fn status(status: u16, body: serde_json::Value) -> Result<OutboundResponse, TransportError> {
        Ok(OutboundResponse {
            status,
            body: body.to_string().into_bytes(),
        })
    }

    /// A PaymentIntent as Stripe returns it (trimmed, as the fake Stripe trims it too).
    fn intent(id: &str, status: &str, amount: i64) -> serde_json::Value {
        json!({
            "id": id, "object": "payment_intent", "amount": amount, "currency": "usd",
            "status": status, "client_secret": format!("{id}_secret_abc"),
            "metadata": {"order_id": "o1"}, "livemode": false,
        })
    }

    fn api() -> StripeApi {
        StripeApi {
            api_base: "https://api.stripe.com/".to_owned(),
            secret_key: Secret::new("sk_test_123".to_owned()),
            currency: Currency::USD,
        }
    }

    fn header<'a>(request: &'a OutboundRequest, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn form(request: &OutboundRequest) -> Vec<(String, String)> {
        let text = String::from_utf8(request.body.clone()).expect("UTF-8 form");
        text.split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').expect("key=value");
                (decode(key), decode(value))
            })
            .collect()
    }

    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                    out.push(u8::from_str_radix(hex, 16).expect("hex digits"));
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                byte => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn an_intent_is_created_for_the_exact_amount_the_buyer_s_customer_and_an_idempotency_key() {
        let http = FakeHttp::answering(vec![ok(intent("pi_1", "requires_payment_method", 1999))]);
        let api = api();
        let created = Stripe {
            http: &http,
            api: &api,
        }
        .create_intent("o1", 1999, "cus_buyer", None)
        .expect("created");
        assert_eq!(created.id, "pi_1");
        assert_eq!(created.client_secret.as_deref(), Some("pi_1_secret_abc"));
        let sent = http.sent();
        let request = &sent[0];
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.url, "https://api.stripe.com/v1/payment_intents");
        assert_eq!(header(request, "authorization"), Some("Bearer sk_test_123"));
        assert_eq!(
            header(request, "idempotency-key"),
            Some("order-o1-payment-intent")
        );
        assert_eq!(
            header(request, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert!(header(request, "stripe-version").is_some());
        let mut params = form(request);
        params.sort();
        assert_eq!(
            params,
            [
                ("amount".to_owned(), "1999".to_owned()),
                ("currency".to_owned(), "usd".to_owned()),
                ("customer".to_owned(), "cus_buyer".to_owned()),
                ("metadata[order_id]".to_owned(), "o1".to_owned()),
            ]
        );
    }

    #[test]
    fn a_destination_charge_names_the_seller_s_account_and_the_platform_s_fee() {
        let http = FakeHttp::answering(vec![ok(intent("pi_1", "requires_payment_method", 1999))]);
        let api = api();
        let destination = Destination {
            account: "acct_seller",
            fee_cents: 99,
        };
        Stripe {
            http: &http,
            api: &api,
        }
        .create_intent("o1", 1999, "cus_buyer", Some(destination))
        .expect("created");
        let mut params = form(&http.sent()[0]);
        params.retain(|(key, _)| !matches!(key.as_str(), "amount" | "currency" | "customer"));
        params.sort();
        assert_eq!(
            params,
            [
                ("application_fee_amount".to_owned(), "99".to_owned()),
                ("metadata[order_id]".to_owned(), "o1".to_owned()),
                (
                    "transfer_data[destination]".to_owned(),
                    "acct_seller".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn connect_calls_carry_the_documented_parameters_and_idempotency_keys() {
        let http = FakeHttp::answering(vec![
            ok(
                json!({"id": "acct_1", "object": "account", "payouts_enabled": false,
                      "capabilities": {"transfers": "inactive"},
                      "requirements": {"currently_due": ["external_account"]}}),
            ),
            ok(json!({"object": "account_link", "url": "https://connect.stripe.com/setup/x"})),
            ok(json!({"object": "login_link", "url": "https://connect.stripe.com/express/y"})),
            ok(json!({"id": "tr_1", "object": "transfer", "amount": 1900})),
            ok(json!({"id": "re_1", "object": "refund", "status": "succeeded"})),
        ]);
        let api = api();
        let stripe = Stripe {
            http: &http,
            api: &api,
        };
        let account = stripe
            .create_account("u1", "seller@example.com")
            .expect("made");
        assert!(!account.is_enabled());
        assert_eq!(account.requirements_due(), ["external_account"]);
        let link = stripe
            .create_account_link(
                "acct_1",
                "https://t.example/done",
                "https://t.example/again",
                7,
            )
            .expect("made");
        assert_eq!(link.url, "https://connect.stripe.com/setup/x");
        stripe.create_login_link("acct_1", 8).expect("made");
        let transfer = stripe
            .create_transfer("o1", 1900, "acct_1", "ch_1")
            .expect("made");
        assert_eq!(transfer.id, "tr_1");
        stripe
            .refund("pi_1", "payment-p1-refund", true)
            .expect("refunded");
        let sent = http.sent();
        let urls: Vec<&str> = sent.iter().map(|request| request.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://api.stripe.com/v1/accounts",
                "https://api.stripe.com/v1/account_links",
                "https://api.stripe.com/v1/accounts/acct_1/login_links",
                "https://api.stripe.com/v1/transfers",
                "https://api.stripe.com/v1/refunds",
            ]
        );
        let keys: Vec<Option<&str>> = sent.iter().map(|r| header(r, "idempotency-key")).collect();
        assert_eq!(
            keys,
            [
                Some("user-u1-connect-account"),
                Some("acct_1-onboarding-link-7"),
                Some("acct_1-login-link-8"),
                Some("order-o1-payout-transfer"),
                Some("payment-p1-refund"),
            ]
        );
        let sorted = |request: &OutboundRequest| {
            let mut params = form(request);
            params.sort();
            params
        };
        let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            sorted(&sent[0]),
            pairs(&[
                ("capabilities[card_payments][requested]", "true"),
                ("capabilities[transfers][requested]", "true"),
                ("email", "seller@example.com"),
                ("metadata[user_id]", "u1"),
                ("type", "express"),
            ])
        );
        assert_eq!(
            sorted(&sent[1]),
            pairs(&[
                ("account", "acct_1"),
                ("refresh_url", "https://t.example/again"),
                ("return_url", "https://t.example/done"),
                ("type", "account_onboarding"),
            ])
        );
        assert_eq!(
            sorted(&sent[3]),
            pairs(&[
                ("amount", "1900"),
                ("currency", "usd"),
                ("destination", "acct_1"),
                ("metadata[order_id]", "o1"),
                ("source_transaction", "ch_1"),
                ("transfer_group", "order-o1"),
            ])
        );
        assert_eq!(
            sorted(&sent[4]),
            pairs(&[
                ("payment_intent", "pi_1"),
                ("refund_application_fee", "true"),
                ("reverse_transfer", "true"),
            ])
        );
    }

    #[test]
    fn confirming_sets_the_payment_method_then_confirms_without_it() {
        let http = FakeHttp::answering(vec![
            ok(intent("pi_1", "requires_confirmation", 500)),
            ok(intent("pi_1", "succeeded", 500)),
        ]);
        let api = api();
        let confirmed = Stripe {
            http: &http,
            api: &api,
        }
        .confirm_intent("pi_1", "pm_card_visa")
        .expect("confirmed");
        assert_eq!(confirmed.status, "succeeded");
        let sent = http.sent();
        assert_eq!(
            sent[0].url,
            "https://api.stripe.com/v1/payment_intents/pi_1"
        );
        assert_eq!(
            form(&sent[0]),
            [("payment_method".to_owned(), "pm_card_visa".to_owned())]
        );
        assert_eq!(
            sent[1].url,
            "https://api.stripe.com/v1/payment_intents/pi_1/confirm"
        );
        assert_eq!(
            form(&sent[1]),
            [("expand[0]".to_owned(), "latest_charge".to_owned())]
        );
        assert!(sent.iter().all(|r| header(r, "idempotency-key").is_none()));
    }

    #[test]
    fn a_refund_names_the_intent_and_carries_its_idempotency_key() {
        let http = FakeHttp::answering(vec![ok(json!({
            "id": "re_1", "object": "refund", "status": "succeeded", "amount": 500,
        }))]);
        let api = api();
        let refund = Stripe {
            http: &http,
            api: &api,
        }
        .refund("pi_1", "payment-p1-refund", false)
        .expect("refunded");
        assert_eq!(refund.id, "re_1");
        let sent = http.sent();
        assert_eq!(sent[0].url, "https://api.stripe.com/v1/refunds");
        assert_eq!(
            header(&sent[0], "idempotency-key"),
            Some("payment-p1-refund")
        );
        assert_eq!(
            form(&sent[0]),
            [("payment_intent".to_owned(), "pi_1".to_owned())]
        );
    }

    #[test]
    fn a_setup_intent_is_for_use_now_for_the_buyer_s_customer() {
        let http = FakeHttp::answering(vec![ok(json!({
            "id": "seti_1", "object": "setup_intent", "client_secret": "seti_1_secret_x",
            "status": "requires_payment_method",
        }))]);
        let api = api();
        let setup = Stripe {
            http: &http,
            api: &api,
        }
        .create_setup_intent("u1", "cus_buyer")
        .expect("created");
        assert_eq!(setup.client_secret.as_deref(), Some("seti_1_secret_x"));
        let sent = http.sent();
        assert_eq!(sent[0].url, "https://api.stripe.com/v1/setup_intents");
        let mut params = form(&sent[0]);
        params.sort();
        assert_eq!(
            params,
            [
                ("customer".to_owned(), "cus_buyer".to_owned()),
                ("metadata[user_id]".to_owned(), "u1".to_owned()),
                ("usage".to_owned(), "on_session".to_owned()),
            ]
        );
    }

    #[test]
    fn retrieving_is_a_get_without_a_body_that_expands_the_charge_and_reads_its_time() {
        let mut answer = intent("pi_1", "succeeded", 100);
        answer["latest_charge"] =
            json!({"id": "ch_1", "object": "charge", "created": 1_795_575_845});
        let http = FakeHttp::answering(vec![
            ok(answer),
            ok(intent("pi_2", "requires_payment_method", 100)),
        ]);
        let api = api();
        let stripe = Stripe {
            http: &http,
            api: &api,
        };
        let found = stripe.retrieve_intent("pi_1").expect("found");
        assert_eq!(found.status, "succeeded");
        assert_eq!(found.charged_at_ms(), Some(1_795_575_845_000));
        // Not charged yet: no time.
        assert_eq!(
            stripe
                .retrieve_intent("pi_2")
                .expect("found")
                .charged_at_ms(),
            None
        );
        let sent = http.sent();
        assert_eq!(sent[0].method, Method::Get);
        assert_eq!(
            sent[0].url,
            "https://api.stripe.com/v1/payment_intents/pi_1?expand[0]=latest_charge"
        );
        assert!(sent[0].body.is_empty());
        assert_eq!(header(&sent[0], "content-type"), None);
    }

    #[test]
    fn a_buyer_s_customer_is_created_once_by_its_idempotency_key() {
        let http = FakeHttp::answering(vec![ok(json!({"id": "cus_1", "object": "customer"}))]);
        let api = api();
        let customer = Stripe {
            http: &http,
            api: &api,
        }
        .create_customer("u1")
        .expect("created");
        assert_eq!(customer.id, "cus_1");
        let sent = http.sent();
        assert_eq!(sent[0].url, "https://api.stripe.com/v1/customers");
        assert_eq!(
            header(&sent[0], "idempotency-key"),
            Some("user-u1-customer")
        );
        assert_eq!(
            form(&sent[0]),
            [("metadata[user_id]".to_owned(), "u1".to_owned())]
        );
    }

    #[test]
    fn cancelling_an_intent_and_reading_a_refund_name_them_in_the_path() {
        let http = FakeHttp::answering(vec![
            ok(intent("pi_1", "canceled", 100)),
            ok(json!({"id": "re_1", "object": "refund", "status": "failed",
                      "failure_reason": "expired_or_canceled_card"})),
        ]);
        let api = api();
        let stripe = Stripe {
            http: &http,
            api: &api,
        };
        assert_eq!(
            stripe.cancel_intent("pi_1").expect("cancelled").status,
            "canceled"
        );
        let refund = stripe.retrieve_refund("re_1").expect("found");
        assert_eq!(
            (refund.status.as_deref(), refund.failure_reason.as_deref()),
            (Some("failed"), Some("expired_or_canceled_card"))
        );
        let sent = http.sent();
        assert_eq!(
            (sent[0].method.clone(), sent[0].url.as_str()),
            (
                Method::Post,
                "https://api.stripe.com/v1/payment_intents/pi_1/cancel"
            )
        );
        assert_eq!(
            (sent[1].method.clone(), sent[1].url.as_str()),
            (Method::Get, "https://api.stripe.com/v1/refunds/re_1")
        );
    }

    #[test]
    fn stripe_errors_are_told_apart_by_what_the_buyer_can_do() {
        let declined = json!({"error": {
            "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
            "message": "Your card was declined.",
        }});
        let missing = json!({"error": {
            "type": "invalid_request_error", "code": "resource_missing",
            "message": "No such PaymentMethod: 'pm_nope'",
        }});
        let cases = [
            (
                status(402, declined),
                StripeError::Declined {
                    message: "Your card was declined.".to_owned(),
                    code: Some("card_declined".to_owned()),
                },
            ),
            (
                status(400, missing),
                StripeError::Refused {
                    status: 400,
                    message: "No such PaymentMethod: 'pm_nope'".to_owned(),
                    code: Some("resource_missing".to_owned()),
                },
            ),
        ];
        let api = api();
        for (answer, expected) in cases {
            let http = FakeHttp::answering(vec![answer]);
            let error = Stripe {
                http: &http,
                api: &api,
            }
            .retrieve_intent("pi_1")
            .expect_err("fails");
            assert_eq!(error, expected);
        }
        for answer in [
            status(500, json!({"error": {"message": "boom"}})),
            status(503, json!("not even an error body")),
            status(429, json!({"error": {"message": "slow down"}})),
            status(401, json!({"error": {"message": "Invalid API Key"}})),
            Err(TransportError("connection refused".to_owned())),
            ok(json!({"unexpected": true})),
        ] {
            let http = FakeHttp::answering(vec![answer]);
            let error = Stripe {
                http: &http,
                api: &api,
            }
            .retrieve_intent("pi_1")
            .expect_err("fails");
            assert!(matches!(error, StripeError::Unavailable(_)), "{error:?}");
        }
    }

    #[test]
    fn currencies_are_read_from_their_codes() {
        assert_eq!(parse_currency("usd"), Some(Currency::USD));
        assert_eq!(parse_currency(" EUR "), Some(Currency::EUR));
        for bad in ["", "dollars", "us"] {
            assert_eq!(parse_currency(bad), None, "{bad:?}");
        }
    }
}
