//! A tickets service on a real SQLite file with the real migration applied, driven through its
//! public API, for the unit tests.

use api::{Method, Request, Response};
use delivery::Applied;
use domain::rfc3339_millis;
pub(crate) use domain::testing::FixedClock;
use events::{
    Envelope, Event, OrderCancelled, OrderCompleted, OrderCreated, OrderStatus, TicketRef,
};
use serde_json::Value;
use session::{SigningKey, TokenSigner};
use storage::testing::TempDatabase;
use storage::{Database, NativeDatabase};

use crate::{MIGRATIONS, TicketsApi, TicketsConfig, TicketsEvents};

/// 2026-11-25T03:04:05.678Z.
pub(crate) const NOW_MS: u64 = 1_795_575_845_678;
pub(crate) const ALICE: &str = "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c";
pub(crate) const BOB: &str = "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a";

pub(crate) struct TestApp {
    file: TempDatabase,
    pub(crate) db: NativeDatabase,
    pub(crate) config: TicketsConfig,
    pub(crate) clock: FixedClock,
    signer: TokenSigner,
}

impl TestApp {
    pub(crate) fn new() -> TestApp {
        let file = TempDatabase::migrated("tickets.sqlite", MIGRATIONS);
        let key = SigningKey::from_seed(&[7; 32]).expect("valid seed");
        let config = TicketsConfig {
            verifier: session::TokenVerifier::new(key.verifying_key()),
            resale_cap_percent: 120,
        };
        TestApp {
            db: file.open(),
            file,
            config,
            clock: FixedClock::at(NOW_MS),
            signer: TokenSigner::new(key, 3600),
        }
    }

    /// Another connection to the same database file, as a second component instance has.
    pub(crate) fn connect(&self) -> NativeDatabase {
        self.file.open()
    }

    pub(crate) fn token(&self, user: &str) -> String {
        self.signer
            .sign(user, "someone@example.com", NOW_MS / 1000)
            .expect("sign a token")
    }

    pub(crate) fn handle_on(&self, db: &dyn Database, request: &Request) -> Response {
        TicketsApi {
            db,
            config: &self.config,
            clock: &self.clock,
        }
        .handle(request)
    }

    pub(crate) fn handle(&self, request: &Request) -> Response {
        self.handle_on(&self.db, request)
    }

    /// A request with `body` as JSON, signed in as `user` when given.
    pub(crate) fn json_request(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: &Value,
    ) -> Request {
        let token = user.map(|user| self.token(user));
        api::testing::request(method, path, token.as_deref(), Some(body))
    }

    pub(crate) fn post_ticket(&self, user: Option<&str>, body: &Value) -> Response {
        self.handle(&self.json_request(Method::Post, "/api/tickets", user, body))
    }

    pub(crate) fn put_ticket(&self, user: Option<&str>, id: &str, body: &Value) -> Response {
        let path = format!("/api/tickets/{id}");
        self.handle(&self.json_request(Method::Put, &path, user, body))
    }

    pub(crate) fn get(&self, path: &str) -> Response {
        self.handle(&Request::new(Method::Get, path))
    }

    /// Creates a ticket for sale through the API; its JSON.
    pub(crate) fn create_ticket(&self, user: &str, title: &str, price: f64) -> Value {
        let response = self.post_ticket(
            Some(user),
            &serde_json::json!({"title": title, "price": price}),
        );
        assert_eq!(response.status, 201, "{}", text(&response));
        json(&response)
    }

    /// The ticket's JSON as `GET /api/tickets/:id` shows it.
    pub(crate) fn ticket(&self, id: &str) -> Value {
        let response = self.get(&format!("/api/tickets/{id}"));
        assert_eq!(response.status, 200, "{}", text(&response));
        json(&response)
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
        delivery::testing::deliver(&self.db, "tickets", &TicketsEvents, event, NOW_MS)
    }
}

pub(crate) use api::testing::{json, text};

pub(crate) fn id_of(ticket: &Value) -> String {
    ticket["id"].as_str().expect("a ticket id").to_owned()
}

fn ticket_ref(ticket_id: &str) -> TicketRef {
    TicketRef {
        id: ticket_id.to_owned(),
        price_cents: 2050,
    }
}

/// `order:created` for `order_id`; orders named `o1`, `o2`, … were placed in that order (their
/// number is the event's `placedSeq`), others carry none.
pub(crate) fn order_created(order_id: &str, ticket_id: &str) -> OrderCreated {
    let placed_seq = order_id.strip_prefix('o').and_then(|n| n.parse().ok());
    OrderCreated {
        placed_seq,
        id: order_id.to_owned(),
        user_id: BOB.to_owned(),
        status: OrderStatus::Created,
        version: 0,
        expires_at: rfc3339_millis(NOW_MS + 15 * 60 * 1000),
        ticket: ticket_ref(ticket_id),
        seller_id: None,
    }
}

pub(crate) fn order_cancelled(order_id: &str, ticket_id: &str, version: u64) -> OrderCancelled {
    OrderCancelled {
        id: order_id.to_owned(),
        user_id: BOB.to_owned(),
        version,
        ticket: ticket_ref(ticket_id),
    }
}

pub(crate) fn order_completed(order_id: &str, ticket_id: &str, version: u64) -> OrderCompleted {
    OrderCompleted {
        id: order_id.to_owned(),
        user_id: BOB.to_owned(),
        version,
        ticket: ticket_ref(ticket_id),
    }
}
