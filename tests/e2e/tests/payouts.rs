//! Seller payouts end to end (issue #21), through the host against localstripe extended with
//! Connect (scripts/stripe_connect.py): a destination charge with the exact fee for a seller
//! whose account is enabled; a sale before onboarding paid out once when the account becomes
//! enabled, however often the webhook comes; a late payment's refund reversing transfer and fee;
//! fifty concurrent sales, fifty transfers; and a Stripe outage during a transfer, retried on
//! housekeeping and never doubled.

use std::collections::HashSet;

use e2e::{
    Host, LocalStripe, RedisServer, WEBHOOK_SECRET, buy, create_ticket, eventually, id_of,
    place_order, send, sign_up, start_with_stripe,
};
use serde_json::{Value, json};

/// A running app with its own Redis and localstripe, webhooks registered, housekeeping every
/// second.
struct Market {
    host: Host,
    stripe: LocalStripe,
    _redis: RedisServer,
}

impl Market {
    fn open() -> Market {
        let (host, stripe, redis) =
            start_with_stripe(&[("SPIN_VARIABLE_HOUSEKEEPING_INTERVAL_SECONDS", "1")]);
        Market {
            host,
            stripe,
            _redis: redis,
        }
    }

    fn get(&self, path: &str, cookie: &str) -> Value {
        let reply = self
            .host
            .request_with("GET", path, &[("cookie", cookie)], None);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply.json()
    }

    /// `seller` connects a payout account: the onboarding link's URL.
    fn connect(&self, seller: &str) -> String {
        let reply = send(
            &self.host,
            "POST",
            "/api/payouts/account",
            seller,
            &json!({}),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(reply.json()["status"], "pending");
        reply.json()["url"].as_str().expect("a link").to_owned()
    }

    /// The seller's browser completes onboarding at the link, and lands back on My Tickets.
    fn onboard(&self, link: &str) {
        let landed = ureq::get(link).call().expect("the onboarding page");
        assert!(
            landed
                .get_url()
                .starts_with(&self.host.url("/tickets/mine")),
            "{}",
            landed.get_url()
        );
    }

    /// A seller whose payout account is enabled, and a buyer: their cookies and the account.
    fn enabled_seller_and_buyer(&self) -> (String, String, String) {
        let seller = sign_up(&self.host, "seller@example.com");
        let buyer = sign_up(&self.host, "buyer@example.com");
        self.onboard(&self.connect(&seller));
        self.wait_until_enabled(&seller);
        (seller, buyer, self.account_id())
    }

    /// A seller who connected an account but has not onboarded, and a sale of theirs at `price`,
    /// its money waiting: the seller's cookie, the onboarding link and the order.
    fn sale_before_onboarding(&self, price: f64) -> (String, String, String) {
        let seller = sign_up(&self.host, "seller@example.com");
        let buyer = sign_up(&self.host, "buyer@example.com");
        // Listing before onboarding is allowed; the money waits.
        let link = self.connect(&seller);
        let ticket = id_of(&create_ticket(&self.host, &seller, "Opera", price));
        let order = buy(&self.host, &buyer, &ticket);
        self.wait_for_sales(&seller, 1, "waiting_for_account");
        (seller, link, order)
    }

    fn wait_until_enabled(&self, seller: &str) {
        eventually("the account.updated webhook", || {
            let account = self.get("/api/payouts/account", seller);
            (account["status"] == "enabled").then_some(())
        });
    }

    /// The seller's connected account id at Stripe.
    fn account_id(&self) -> String {
        let accounts = self
            .stripe
            .call("GET", "/v1/accounts", &[])
            .expect("accounts");
        let data = accounts["data"].as_array().expect("a list");
        assert_eq!(data.len(), 1, "{accounts}");
        data[0]["id"].as_str().expect("an id").to_owned()
    }

    fn transfers_to(&self, account: &str) -> Vec<Value> {
        let listing = self
            .stripe
            .call(
                "GET",
                &format!("/v1/transfers?destination={account}&limit=100"),
                &[],
            )
            .expect("transfers");
        listing["data"].as_array().expect("a list").clone()
    }

    fn sales(&self, seller: &str) -> Vec<Value> {
        self.get("/api/payouts", seller)
            .as_array()
            .expect("a list")
            .clone()
    }

    /// Waits until every one of the seller's `count` sales is in `state`.
    fn wait_for_sales(&self, seller: &str, count: usize, state: &str) -> Vec<Value> {
        eventually(&format!("{count} sale(s) {state}"), || {
            let sales = self.sales(seller);
            (sales.len() == count && sales.iter().all(|sale| sale["state"] == state))
                .then_some(sales)
        })
    }

    /// Sends `account.updated` for `account` as it stands at Stripe now, signed: Stripe's
    /// redelivery of an event.
    fn resend_account_updated(&self, account: &str) {
        let object = self
            .stripe
            .call("GET", &format!("/v1/accounts/{account}"), &[])
            .expect("the account");
        let created = now_secs();
        let payload = json!({
            "id": format!("evt_resent_{created}"), "object": "event", "type": "account.updated",
            "created": created, "account": account, "livemode": false,
            "data": {"object": object},
        })
        .to_string();
        let signature =
            payments_service::webhook::sign(payload.as_bytes(), WEBHOOK_SECRET, created);
        let reply = self.host.request_with(
            "POST",
            "/api/payments/webhook",
            &[
                ("content-type", "application/json"),
                ("stripe-signature", &signature),
            ],
            Some(payload.as_bytes()),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    fn fault(&self, path: &str, mode: &str, count: &str) {
        let set = ureq::post(&format!("{}/_config/faults", self.stripe.url())).send_form(&[
            ("path", path),
            ("mode", mode),
            ("count", count),
        ]);
        assert!(set.is_ok(), "{set:?}");
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The charge of `order_id`'s PaymentIntent at Stripe, expanded.
fn charge_of(market: &Market, order_id: &str) -> Value {
    let intents = market
        .stripe
        .call("GET", "/v1/payment_intents?limit=100", &[])
        .expect("intents");
    let intent = intents["data"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|intent| intent["metadata"]["order_id"] == order_id)
        .expect("the order's intent")
        .clone();
    let id = intent["id"].as_str().expect("an id");
    market
        .stripe
        .call(
            "GET",
            &format!("/v1/payment_intents/{id}?expand[0]=latest_charge"),
            &[],
        )
        .expect("the intent")
}

#[test]
fn a_sale_to_an_enabled_seller_is_one_destination_charge_with_the_exact_fee() {
    let market = Market::open();
    let (seller, buyer, account) = market.enabled_seller_and_buyer();
    let ticket = id_of(&create_ticket(&market.host, &seller, "Concert", 19.99));
    let order = buy(&market.host, &buyer, &ticket);

    let intent = charge_of(&market, &order);
    assert_eq!(intent["amount"], 1999);
    assert_eq!(intent["application_fee_amount"], 99);
    assert_eq!(intent["transfer_data"]["destination"], account.as_str());
    // As Stripe does it: the whole charge goes to the seller, and the fee comes back to us.
    let transfers = market.transfers_to(&account);
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0]["amount"], 1999);
    assert_eq!(
        transfers[0]["source_transaction"],
        intent["latest_charge"]["id"]
    );
    assert_eq!(intent["latest_charge"]["transfer"], transfers[0]["id"]);
    let sales = market.wait_for_sales(&seller, 1, "transferred");
    assert_eq!(sales[0]["orderId"], order.as_str());
    assert_eq!(sales[0]["ticketId"], ticket.as_str());
    assert_eq!(
        (
            &sales[0]["priceCents"],
            &sales[0]["feeCents"],
            &sales[0]["netCents"]
        ),
        (&json!(1999), &json!(99), &json!(1900))
    );
    let balance = market
        .stripe
        .call("GET", "/v1/balance", &[])
        .expect("the platform's balance");
    assert_eq!(balance["available"][0]["amount"], 99, "{balance}");
    // Once enabled, the seller may open the Stripe dashboard.
    let dashboard = send(
        &market.host,
        "POST",
        "/api/payouts/dashboard",
        &seller,
        &json!({}),
    );
    assert_eq!(dashboard.status, 201, "{}", dashboard.body);
    assert!(
        dashboard.json()["url"]
            .as_str()
            .is_some_and(|url| url.starts_with("http"))
    );
}

#[test]
fn a_sale_before_onboarding_pays_out_exactly_once_when_the_account_is_enabled() {
    let market = Market::open();
    let (seller, link, order) = market.sale_before_onboarding(19.99);
    let intent = charge_of(&market, &order);
    assert!(intent["transfer_data"].is_null(), "{intent}");
    let account = market.account_id();
    assert!(market.transfers_to(&account).is_empty());

    market.onboard(&link);
    market.wait_until_enabled(&seller);
    // Stripe delivers the event twice more.
    market.resend_account_updated(&account);
    market.resend_account_updated(&account);
    let sales = market.wait_for_sales(&seller, 1, "transferred");
    assert_eq!(sales[0]["netCents"], 1900);
    // Housekeeping runs every second: give it a few passes to double it, if it could.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let transfers = market.transfers_to(&account);
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0]["amount"], 1900);
    assert_eq!(
        transfers[0]["source_transaction"],
        intent["latest_charge"]["id"]
    );
    assert_eq!(
        market.sales(&seller)[0]["state"],
        "transferred",
        "the state only moves forward"
    );
}

#[test]
fn a_late_payment_refunded_for_a_cancelled_order_reverses_transfer_and_fee() {
    let market = Market::open();
    let (seller, buyer, account) = market.enabled_seller_and_buyer();
    let ticket = id_of(&create_ticket(&market.host, &seller, "Ballet", 19.99));
    let order = place_order(&market.host, &buyer, &ticket);
    let started = eventually("the order to reach payments", || {
        let reply = send(
            &market.host,
            "POST",
            "/api/payments",
            &buyer,
            &json!({ "orderId": order }),
        );
        (reply.status != 404).then_some(reply)
    });
    assert_eq!(started.status, 201, "{}", started.body);
    let intent = started.json()["stripeId"]
        .as_str()
        .expect("an intent")
        .to_owned();
    let cancelled = market.host.request_with(
        "DELETE",
        &format!("/api/orders/{order}"),
        &[("cookie", &buyer)],
        None,
    );
    assert_eq!(cancelled.status, 204);
    eventually("payments to learn of the cancellation", || {
        let reply = send(
            &market.host,
            "POST",
            "/api/payments",
            &buyer,
            &json!({ "orderId": order }),
        );
        (reply.status == 400).then_some(())
    });
    // The buyer's browser confirms the intent anyway, in the last second.
    market
        .stripe
        .call(
            "POST",
            &format!("/v1/payment_intents/{intent}"),
            &[("payment_method", "pm_card_visa")],
        )
        .expect("set the payment method");
    let confirmed = market
        .stripe
        .call(
            "POST",
            &format!("/v1/payment_intents/{intent}/confirm"),
            &[],
        )
        .expect("confirm at Stripe");
    assert_eq!(confirmed["status"], "succeeded");

    market.wait_for_sales(&seller, 1, "reversed");
    let transfers = market.transfers_to(&account);
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0]["reversed"], true, "{transfers:?}");
    assert_eq!(transfers[0]["amount_reversed"], 1999);
    let fees = market
        .stripe
        .call("GET", "/v1/application_fees", &[])
        .expect("fees");
    assert_eq!(fees["data"][0]["amount"], 99, "{fees}");
    assert_eq!(fees["data"][0]["amount_refunded"], 99, "{fees}");
    let refunds = market
        .stripe
        .call("GET", "/v1/refunds", &[])
        .expect("refunds");
    let refund = &refunds["data"][0];
    assert_eq!(refund["amount"], 1999);
    assert!(refund["transfer_reversal"].is_string(), "{refund}");
    let platform = market
        .stripe
        .call("GET", "/v1/balance", &[])
        .expect("balance");
    assert_eq!(platform["available"][0]["amount"], 0, "{platform}");
}

#[test]
fn fifty_concurrent_sales_by_one_seller_make_fifty_transfers_and_no_duplicate() {
    let market = Market::open();
    let seller = sign_up(&market.host, "seller@example.com");
    let link = market.connect(&seller);
    let tickets: Vec<String> = (0..50)
        .map(|n| {
            id_of(&create_ticket(
                &market.host,
                &seller,
                &format!("Seat {n}"),
                19.99,
            ))
        })
        .collect();
    let buyers: Vec<String> = (0..50)
        .map(|n| sign_up(&market.host, &format!("buyer-{n}@example.com")))
        .collect();
    // Half the sales are made before the account is enabled, half as it becomes enabled.
    std::thread::scope(|scope| {
        for (n, (buyer, ticket)) in buyers.iter().zip(&tickets).enumerate() {
            let host = &market.host;
            scope.spawn(move || buy(host, buyer, ticket));
            if n == 25 {
                market.onboard(&link);
            }
        }
    });
    market.wait_until_enabled(&seller);
    let account = market.account_id();
    let sales = market.wait_for_sales(&seller, 50, "transferred");
    assert!(sales.iter().all(|sale| sale["netCents"] == 1900));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let transfers = market.transfers_to(&account);
    assert_eq!(transfers.len(), 50);
    let charges: HashSet<&str> = transfers
        .iter()
        .map(|transfer| transfer["source_transaction"].as_str().expect("a charge"))
        .collect();
    assert_eq!(charges.len(), 50, "one transfer per charge");
    // Ours carry the net; a destination charge's (a sale made once the account was enabled) the
    // whole charge, its fee taken back by Stripe: the platform keeps 99 of each either way.
    assert!(
        transfers
            .iter()
            .all(|transfer| transfer["amount"] == 1900 || transfer["amount"] == 1999),
        "{transfers:?}"
    );
    let balance = market
        .stripe
        .call("GET", "/v1/balance", &[])
        .expect("the platform's balance");
    assert_eq!(balance["available"][0]["amount"], 50 * 99, "{balance}");
}

#[test]
fn a_transfer_stripe_fails_is_retried_on_housekeeping_and_never_doubled() {
    let market = Market::open();
    let (seller, link, _) = market.sale_before_onboarding(25.0);
    // The first transfer is made but its answer is lost; the next try finds Stripe down.
    market.fault("/v1/transfers", "lost_answer", "1");
    market.fault("/v1/transfers", "down", "1");
    market.onboard(&link);
    market.wait_until_enabled(&seller);
    let sales = market.wait_for_sales(&seller, 1, "transferred");
    assert_eq!(sales[0]["netCents"], 2375);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let transfers = market.transfers_to(&market.account_id());
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0]["amount"], 2375);
    assert!(
        market.host.output.text().contains("to be retried"),
        "the failed tries are logged"
    );
}
