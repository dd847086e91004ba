//! An orders service on a real SQLite file with the real migration applied, driven through its
//! public API and its event handler, for the unit tests.

use api::{Method, Request, Response};
use delivery::Applied;
use domain::Clock;
pub(crate) use domain::testing::FixedClock;
use events::{Envelope, Event, TicketCreated};
use serde_json::{Value, json};
use session::{SigningKey, TokenSigner};
use storage::NativeDatabase;
use storage::testing::TempDatabase;

use crate::{MIGRATIONS, OrdersApi, OrdersConfig, OrdersEvents};

/// 2026-11-25T03:04:05.678Z.
pub(crate) const NOW_MS: u64 = 1_795_575_845_678;
/// The order window the tests run with: 15 minutes.
pub(crate) const WINDOW_MS: u64 = 900_000;
pub(crate) const ALICE: &str = "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c";
pub(crate) const BOB: &str = "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a";
pub(crate) const CAROL: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

pub(crate) struct TestApp {
    file: TempDatabase,
    pub(crate) db: NativeDatabase,
    pub(crate) config: OrdersConfig,
    pub(crate) clock: FixedClock,
    signer: TokenSigner,
}

impl TestApp {
    pub(crate) fn new() -> TestApp {
        let file = TempDatabase::migrated("orders.sqlite", MIGRATIONS);
        let key = SigningKey::from_seed(&[7; 32]).expect("valid seed");
        let config = OrdersConfig {
            verifier: session::TokenVerifier::new(key.verifying_key()),
            order_window_ms: WINDOW_MS,
        };
        TestApp {
            db: file.open(),
            file,
            config,
            clock: FixedClock::at(NOW_MS),
            signer: TokenSigner::new(key, 24 * 3600),
        }
    }

    /// Another connection to the same database file, as a second component instance has.
    pub(crate) fn connect(&self) -> NativeDatabase {
        self.file.open()
    }

    pub(crate) fn advance(&self, ms: u64) {
        self.clock.advance(ms);
    }

    pub(crate) fn token(&self, user: &str) -> String {
        self.signer
            .sign(user, "someone@example.com", NOW_MS / 1000)
            .expect("sign a token")
    }

    pub(crate) fn handle(&self, request: &Request) -> Response {
        OrdersApi {
            db: &self.db,
            config: &self.config,
            clock: &self.clock,
        }
        .handle(request)
    }

    /// A request signed in as `user` when given, with `body` as JSON when given.
    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<&Value>,
    ) -> Request {
        let token = user.map(|user| self.token(user));
        api::testing::request(method, path, token.as_deref(), body)
    }

    pub(crate) fn post_order(&self, user: Option<&str>, ticket_id: &str) -> Response {
        let body = json!({ "ticketId": ticket_id });
        self.handle(&self.request(Method::Post, "/api/orders", user, Some(&body)))
    }

    /// Places an order through the API; its id.
    pub(crate) fn place(&self, user: &str, ticket_id: &str) -> String {
        let response = self.post_order(Some(user), ticket_id);
        assert_eq!(response.status, 201, "{}", text(&response));
        json(&response)["id"]
            .as_str()
            .expect("an order id")
            .to_owned()
    }

    pub(crate) fn get_order(&self, user: &str, id: &str) -> Response {
        let path = format!("/api/orders/{id}");
        self.handle(&self.request(Method::Get, &path, Some(user), None))
    }

    pub(crate) fn delete_order(&self, user: &str, id: &str) -> Response {
        let path = format!("/api/orders/{id}");
        self.handle(&self.request(Method::Delete, &path, Some(user), None))
    }

    pub(crate) fn list_orders(&self, user: &str, query: &str) -> Response {
        let path = format!("/api/orders{query}");
        self.handle(&self.request(Method::Get, &path, Some(user), None))
    }

    /// Puts a ticket for sale by `seller` into the replica, as `ticket:created` does; its id.
    pub(crate) fn replicate_ticket(
        &self,
        id: &str,
        seller: &str,
        title: &str,
        price_cents: u64,
    ) -> String {
        let outcome = self.deliver(TicketCreated {
            id: id.to_owned(),
            title: title.to_owned(),
            price_cents,
            user_id: seller.to_owned(),
            version: 0,
        });
        assert!(matches!(outcome, Ok(Applied::Done)), "{outcome:?}");
        id.to_owned()
    }

    /// Every envelope in the outbox, oldest first.
    pub(crate) fn outbox(&self) -> Vec<Envelope> {
        delivery::testing::outbox(&self.db)
    }

    /// The events in the outbox, oldest first, each checked to decode.
    pub(crate) fn enqueued(&self) -> Vec<Event> {
        delivery::testing::enqueued(&self.db)
    }

    /// Applies `event` as the consumer does ([`delivery::testing::deliver`]).
    pub(crate) fn deliver(&self, event: impl Into<Event>) -> anyhow::Result<Applied> {
        let now = self.clock.now_ms();
        delivery::testing::deliver(&self.db, "orders", &OrdersEvents, event, now)
    }
}

pub(crate) use api::testing::{json, text};
