//! A tickets service on a real SQLite file with the real migration applied, driven through its
//! public API, for the unit tests.

use std::path::PathBuf;

use api::{Method, Request, Response};
use delivery::{Accepted, Applied, DatabaseSink, Sink};
use domain::{EventId, rfc3339_millis};
use events::{
    Envelope, Event, OrderCancelled, OrderCompleted, OrderCreated, OrderStatus, TicketRef,
};
use serde_json::Value;
use session::{SigningKey, TokenSigner};
use storage::{Database, NativeDatabase, SqlValue};
use tempfile::TempDir;

use crate::{Clock, MIGRATIONS, TicketsApi, TicketsConfig, TicketsEvents};

/// 2026-11-25T03:04:05.678Z.
pub(crate) const NOW_MS: u64 = 1_795_575_845_678;
pub(crate) const ALICE: &str = "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c";
pub(crate) const BOB: &str = "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a";

/// The `detail` lines of SQLite's plan for `sql`, to check which index a query uses.
pub(crate) fn query_plan(db: &dyn Database, sql: &str, params: &[SqlValue]) -> Vec<String> {
    db.execute(&format!("EXPLAIN QUERY PLAN {sql}"), params)
        .expect("plan")
        .iter()
        .map(|row| row.text("detail").expect("detail").to_owned())
        .collect()
}

pub(crate) struct FixedClock(pub(crate) u64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

pub(crate) struct TestApp {
    // Kept for the database file's lifetime.
    _dir: TempDir,
    pub(crate) path: PathBuf,
    pub(crate) db: NativeDatabase,
    pub(crate) config: TicketsConfig,
    pub(crate) clock: FixedClock,
    signer: TokenSigner,
}

impl TestApp {
    pub(crate) fn new() -> TestApp {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("tickets.sqlite");
        let db = NativeDatabase::open(&path).expect("open the database");
        storage::migrate(&db, MIGRATIONS).expect("apply migrations/tickets/");
        let key = SigningKey::from_seed(&[7; 32]).expect("valid seed");
        let config = TicketsConfig {
            verifier: session::TokenVerifier::new(key.verifying_key()),
        };
        TestApp {
            _dir: dir,
            path,
            db,
            config,
            clock: FixedClock(NOW_MS),
            signer: TokenSigner::new(key, 3600),
        }
    }

    /// Another connection to the same database file, as a second component instance has.
    pub(crate) fn connect(&self) -> NativeDatabase {
        NativeDatabase::open(&self.path).expect("open another connection")
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
        let request = Request::new(method, path)
            .with_header("content-type", "application/json")
            .with_body(body.to_string());
        match user {
            Some(user) => request.with_header("cookie", &format!("session={}", self.token(user))),
            None => request,
        }
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
        delivery::outbox_envelopes(&self.db).expect("read the outbox")
    }

    /// The events in the outbox, oldest first, each checked to decode.
    pub(crate) fn enqueued(&self) -> Vec<Event> {
        self.outbox()
            .iter()
            .map(|envelope| envelope.decode().expect("an event of the contract"))
            .collect()
    }

    /// Applies `event` as the consumer does: through a [`DatabaseSink`], in a transaction that
    /// commits on `Done` and rolls back otherwise.
    pub(crate) fn deliver(&self, event: impl Into<Event>) -> anyhow::Result<Applied> {
        let event = event.into();
        let envelope = event.to_envelope(EventId::new_random().to_string(), rfc3339_millis(NOW_MS));
        let sink = DatabaseSink {
            db: &self.db,
            handler: &TicketsEvents,
        };
        Ok(match sink.accept("tickets", &envelope, &event, NOW_MS)? {
            Accepted::Applied | Accepted::Duplicate => Applied::Done,
            Accepted::NotYet(reason) => Applied::NotYet(reason),
        })
    }
}

pub(crate) fn json(response: &Response) -> Value {
    serde_json::from_slice(&response.body).expect("a JSON body")
}

pub(crate) fn text(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

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
