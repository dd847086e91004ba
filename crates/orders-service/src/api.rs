//! The routes of the orders service.

use api::{ApiError, Method, Page, Request, Response, Validator, parse_json};
use domain::{Clock, OrderId, TicketId};
use serde::Deserialize;
use serde_json::Value;
use session::Claims;
use storage::Database;

use crate::OrdersConfig;
use crate::order::{Order, OrderStatus, is_open};
use crate::store::{self, PlaceError};

/// `{"ticketId": "…"}`; anything bigger is not an order form.
const MAX_BODY_BYTES: usize = 4 * 1024;

pub(crate) const TICKET_RESERVED: &str = "Ticket is already reserved";
pub(crate) const OWN_TICKET: &str = "You cannot order your own ticket";
pub(crate) const NOT_OWNER: &str = "You do not own this order";
pub(crate) const PAID_ORDER: &str = "A paid order cannot be cancelled";
pub(crate) const TICKET_ID_REQUIRED: &str = "Ticket id is required";
pub(crate) const TICKET_ID_INVALID: &str = "Ticket id is not valid";

/// One request's view of the service: the configuration and the ports it may use.
pub struct OrdersApi<'a> {
    pub db: &'a dyn Database,
    pub config: &'a OrdersConfig,
    pub clock: &'a dyn Clock,
}

/// The paths this service answers.
enum Route<'a> {
    /// `/api/orders`
    Orders,
    /// `/api/orders/:id`, with the id as written.
    Order(&'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    // Express, which the reference ran on, ignores one trailing slash.
    let path = path.strip_suffix('/').unwrap_or(path);
    match path.strip_prefix("/api/orders")? {
        "" => Some(Route::Orders),
        rest => match rest.strip_prefix('/') {
            Some(id) if !id.is_empty() && !id.contains('/') => Some(Route::Order(id)),
            _ => None,
        },
    }
}

impl OrdersApi<'_> {
    /// Answers one request. Never fails: errors become responses in the reference's format.
    pub fn handle(&self, request: &Request) -> Response {
        let result = match (&request.method, route(&request.path)) {
            (Method::Post, Some(Route::Orders)) => self.place_order(request),
            (Method::Get, Some(Route::Orders)) => self.list_orders(request),
            (Method::Get, Some(Route::Order(id))) => self.show_order(request, id),
            (Method::Delete, Some(Route::Order(id))) => self.cancel_order(request, id),
            // As the reference's catch-all: a known path with another method is not found too.
            _ => Err(ApiError::NotFound),
        };
        result.unwrap_or_else(ApiError::into_response)
    }

    /// `POST /api/orders`: 201 with the new order, holding its ticket until `expiresAt`.
    /// Checks in the reference's order: signed in (401), body (400), ticket known (404), not held
    /// by another order (400), then not one's own (400). The unique index on live orders decides
    /// whether the ticket is held, so of any number of concurrent orders for a ticket exactly one
    /// gets in; `order:created` goes to the outbox in the same transaction.
    fn place_order(&self, request: &Request) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let ticket_id = order_form(request)?;
        let now = self.clock.now_ms();
        let expires_at = now.saturating_add(self.config.order_window_ms);
        let id = OrderId::new_random();
        // In an on-sale most orders are for a ticket already held: they are told so from a read,
        // without queueing for the database's one writer. The transaction decides the rest.
        let (ticket, listing) =
            store::ticket_and_listing(self.db, &ticket_id)?.ok_or(ApiError::NotFound)?;
        if listing.sold || store::is_held(self.db, &ticket.id, listing)? {
            return Err(ApiError::BadRequest(TICKET_RESERVED.to_owned()));
        }
        let order = storage::transaction(self.db, |tx| -> Result<Order, ApiError> {
            let (ticket, listing) =
                store::ticket_and_listing(tx, &ticket_id)?.ok_or(ApiError::NotFound)?;
            if ticket.user_id == user.id {
                // The seller learns the ticket is held before learning they cannot buy it; for
                // everyone else the insert below is the check.
                let message = if listing.sold || store::is_held(tx, &ticket_id, listing)? {
                    TICKET_RESERVED
                } else {
                    OWN_TICKET
                };
                return Err(ApiError::BadRequest(message.to_owned()));
            }
            if listing.sold {
                return Err(ApiError::BadRequest(TICKET_RESERVED.to_owned()));
            }
            let order = store::place_order(tx, &id, &user.id, (&ticket, listing), expires_at, now)
                .map_err(|error| match error {
                    PlaceError::Reserved => ApiError::BadRequest(TICKET_RESERVED.to_owned()),
                    PlaceError::Other(cause) => ApiError::Internal(cause),
                })?;
            store::enqueue(tx, &order.created_event(), now)?;
            Ok(order)
        })?;
        Ok(Response::json(201, &order))
    }

    /// `GET /api/orders?limit=&cursor=`: the caller's orders, oldest first, a page at a time.
    fn list_orders(&self, request: &Request) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let page = Page::from_query(&request.query)?;
        let orders = store::list_orders(self.db, &user.id, page.fetch(), page.after)?;
        Ok(page.respond("/api/orders", orders, |order| order.seq))
    }

    /// `GET /api/orders/:id`: signed in (401), known (404; a malformed id is unknown), the
    /// caller's own (401).
    fn show_order(&self, request: &Request, id: &str) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let id = OrderId::parse(id).map_err(|_| ApiError::NotFound)?;
        let order = store::find_order(self.db, &id)?.ok_or(ApiError::NotFound)?;
        if order.user_id != user.id {
            return Err(ApiError::NotAuthorized(NOT_OWNER.to_owned()));
        }
        Ok(Response::json(200, &order))
    }

    /// `DELETE /api/orders/:id`: 204 once the order is cancelled, which frees its ticket. A
    /// paid order stays paid (400); cancelling a cancelled order changes nothing (204).
    fn cancel_order(&self, request: &Request, id: &str) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let id = OrderId::parse(id).map_err(|_| ApiError::NotFound)?;
        let now = self.clock.now_ms();
        storage::transaction(self.db, |tx| -> Result<(), ApiError> {
            let order = store::find_order(tx, &id)?.ok_or(ApiError::NotFound)?;
            if order.user_id != user.id {
                return Err(ApiError::NotAuthorized(NOT_OWNER.to_owned()));
            }
            if order.status == OrderStatus::Complete {
                return Err(ApiError::BadRequest(PAID_ORDER.to_owned()));
            }
            if is_open(order.status) {
                let cancelled = store::set_status(tx, &id, OrderStatus::Cancelled)?;
                store::enqueue(tx, &cancelled.cancelled_event(), now)?;
            }
            Ok(())
        })?;
        Ok(Response::empty(204))
    }

    fn signed_in_user(&self, request: &Request) -> Result<Claims, ApiError> {
        api::require_user(request, &self.config.verifier, self.clock.now_ms() / 1000)
    }
}

/// The body of `POST /api/orders`, loose so that a missing or mistyped field is a validation
/// message for it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderForm {
    ticket_id: Option<Value>,
}

/// The ticket id of an order form, or a 400 for the `ticketId` field.
fn order_form(request: &Request) -> Result<TicketId, ApiError> {
    let form: OrderForm = parse_json(request, MAX_BODY_BYTES)?;
    let mut v = Validator::new();
    let id = match &form.ticket_id {
        None | Some(Value::Null) => {
            v.add("ticketId", TICKET_ID_REQUIRED);
            None
        }
        Some(Value::String(text)) if text.trim().is_empty() => {
            v.add("ticketId", TICKET_ID_REQUIRED);
            None
        }
        Some(Value::String(text)) => TicketId::parse(text).ok().or_else(|| {
            v.add("ticketId", TICKET_ID_INVALID);
            None
        }),
        Some(_) => {
            v.add("ticketId", TICKET_ID_INVALID);
            None
        }
    };
    v.finish_with(|| id)
}

#[cfg(test)]
mod tests {
    use events::{Event, OrderCreated, TicketRef, TicketUpdated};
    use serde_json::{Value, json};

    use super::*;
    use crate::testing::{ALICE, BOB, CAROL, NOW_MS, TestApp, WINDOW_MS, json, text};

    const TICKET: &str = "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f";
    const OTHER_TICKET: &str = "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d";
    const UNKNOWN: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";

    fn errors(response: &Response) -> Value {
        json(response)["errors"].clone()
    }

    fn assert_error(response: &Response, status: u16, message: &str) {
        assert_eq!(response.status, status, "{}", text(response));
        assert_eq!(errors(response), json!([{ "message": message }]));
    }

    /// An app with ALICE's ticket for sale at 20.50 in the replica.
    fn app_with_ticket() -> TestApp {
        let app = TestApp::new();
        app.replicate_ticket(TICKET, ALICE, "Concert", 2050);
        app
    }

    // POST /api/orders

    #[test]
    fn every_route_requires_a_signed_in_user() {
        let app = app_with_ticket();
        let order = app.place(BOB, TICKET);
        let body = json!({ "ticketId": TICKET });
        for request in [
            app.request(Method::Post, "/api/orders", None, Some(&body)),
            app.request(Method::Post, "/api/orders", None, Some(&json!({}))),
            app.request(Method::Get, "/api/orders", None, None),
            app.request(Method::Get, &format!("/api/orders/{order}"), None, None),
            app.request(Method::Delete, &format!("/api/orders/{order}"), None, None),
            app.request(Method::Get, "/api/orders/not-an-id", None, None),
        ] {
            let forged = request.clone().with_header("cookie", "session=forged");
            for request in [request, forged] {
                assert_error(&app.handle(&request), 401, "You are not signed in");
            }
        }
        assert_eq!(app.outbox().len(), 1);
    }

    #[test]
    fn a_new_order_holds_the_ticket_at_its_price_until_the_window_ends() {
        let app = app_with_ticket();
        let response = app.post_order(Some(BOB), TICKET);
        assert_eq!(response.status, 201, "{}", text(&response));
        assert_eq!(response.header("content-type"), Some("application/json"));
        let order = json(&response);
        let id = order["id"].as_str().expect("an id").to_owned();
        assert!(domain::OrderId::parse(&id).is_ok(), "{id}");
        assert_eq!(
            order,
            json!({
                "id": id,
                "userId": BOB,
                "status": "created",
                "expiresAt": "2026-11-25T03:19:05.678Z",
                "version": 0,
                "price": 20.5,
                "ticket": { "id": TICKET, "title": "Concert", "price": 20.5, "version": 0 },
            })
        );
        assert_eq!(json(&app.get_order(BOB, &id)), order);
        assert_eq!(
            app.enqueued(),
            [Event::OrderCreated(OrderCreated {
                id,
                user_id: BOB.to_owned(),
                status: OrderStatus::Created,
                version: 0,
                expires_at: domain::rfc3339_millis(NOW_MS + WINDOW_MS),
                ticket: TicketRef {
                    id: TICKET.to_owned(),
                    price_cents: 2050,
                },
                placed_seq: Some(1),
                seller_id: Some(ALICE.to_owned()),
            })]
        );
    }

    #[test]
    fn invalid_order_forms_are_rejected_for_the_ticket_id_field() {
        let app = app_with_ticket();
        let required = json!([{ "message": TICKET_ID_REQUIRED, "field": "ticketId" }]);
        let invalid = json!([{ "message": TICKET_ID_INVALID, "field": "ticketId" }]);
        for (body, expected) in [
            (json!({}), &required),
            (json!({ "ticketId": null }), &required),
            (json!({ "ticketId": "" }), &required),
            (json!({ "ticketId": "  " }), &required),
            (json!({ "ticketId": "abc" }), &invalid),
            (json!({ "ticketId": "507f1f77bcf86cd799439011" }), &invalid),
            (json!({ "ticketId": TICKET.to_uppercase() }), &invalid),
            (json!({ "ticketId": 42 }), &invalid),
            (json!({ "ticketId": [TICKET] }), &invalid),
        ] {
            let request = app.request(Method::Post, "/api/orders", Some(BOB), Some(&body));
            let response = app.handle(&request);
            assert_eq!(response.status, 400, "{body}: {}", text(&response));
            assert_eq!(&errors(&response), expected, "{body}");
        }
        let malformed = Request::new(Method::Post, "/api/orders")
            .with_header("content-type", "application/json")
            .with_header("cookie", &format!("session={}", app.token(BOB)))
            .with_body("{\"ticketId\":");
        assert_eq!(app.handle(&malformed).status, 400);
        let not_json = Request::new(Method::Post, "/api/orders")
            .with_header("content-type", "text/plain")
            .with_header("cookie", &format!("session={}", app.token(BOB)))
            .with_body(TICKET);
        assert_eq!(app.handle(&not_json).status, 415);
        assert!(app.outbox().is_empty());
    }

    #[test]
    fn an_unknown_ticket_is_not_found() {
        let app = app_with_ticket();
        assert_error(&app.post_order(Some(BOB), UNKNOWN), 404, "Not found");
        assert!(app.outbox().is_empty());
    }

    #[test]
    fn nobody_can_order_their_own_ticket() {
        let app = app_with_ticket();
        assert_error(&app.post_order(Some(ALICE), TICKET), 400, OWN_TICKET);
        assert!(app.outbox().is_empty());
        // Once someone holds it, the seller hears that first, as everyone does.
        app.place(BOB, TICKET);
        assert_error(&app.post_order(Some(ALICE), TICKET), 400, TICKET_RESERVED);
    }

    #[test]
    fn a_held_ticket_cannot_be_ordered_again_until_its_order_is_cancelled() {
        let app = app_with_ticket();
        let first = app.place(BOB, TICKET);
        for buyer in [BOB, CAROL] {
            assert_error(&app.post_order(Some(buyer), TICKET), 400, TICKET_RESERVED);
        }
        assert_eq!(app.delete_order(BOB, &first).status, 204);
        let second = app.place(CAROL, TICKET);
        assert_ne!(first, second);
        assert_error(&app.post_order(Some(BOB), TICKET), 400, TICKET_RESERVED);
    }

    #[test]
    fn concurrent_orders_for_one_ticket_reserve_it_exactly_once() {
        let app = app_with_ticket();
        let buyers: Vec<String> = (0..16)
            .map(|_| domain::UserId::new_random().to_string())
            .collect();
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = buyers
                .iter()
                .map(|buyer| {
                    let request = app.request(
                        Method::Post,
                        "/api/orders",
                        Some(buyer),
                        Some(&json!({ "ticketId": TICKET })),
                    );
                    // Each request on its own connection, as each component instance has.
                    let db = app.connect();
                    let config = app.config.clone();
                    scope.spawn(move || {
                        let clock = crate::testing::FixedClock::at(NOW_MS);
                        let api = OrdersApi {
                            db: &db,
                            config: &config,
                            clock: &clock,
                        };
                        api.handle(&request).status
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("no panic"))
                .collect()
        });
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 400).count(),
            15,
            "{statuses:?}"
        );
        assert_eq!(app.outbox().len(), 1);
    }

    #[test]
    fn an_order_keeps_the_price_it_was_placed_at() {
        let app = app_with_ticket();
        let order = app.place(BOB, TICKET);
        // The seller's edit raced the reservation and reached the replica afterwards.
        let update = app.deliver(TicketUpdated {
            id: TICKET.to_owned(),
            title: "Concert, row 1".to_owned(),
            price_cents: 9900,
            user_id: ALICE.to_owned(),
            version: 1,
            order_id: None,
            status: events::TicketStatus::Available,
            listing: None,
        });
        assert!(update.is_ok(), "{update:?}");
        let shown = json(&app.get_order(BOB, &order));
        assert_eq!(shown["price"], json!(20.5));
        assert_eq!(
            shown["ticket"],
            json!({ "id": TICKET, "title": "Concert, row 1", "price": 99, "version": 1 })
        );
    }

    // GET /api/orders and /api/orders/:id

    #[test]
    fn a_user_lists_only_their_own_orders_oldest_first() {
        let app = app_with_ticket();
        app.replicate_ticket(OTHER_TICKET, ALICE, "Opera", 3000);
        let first = app.place(BOB, TICKET);
        app.advance(1000);
        let second = app.place(BOB, OTHER_TICKET);
        let ids = |response: &Response| -> Vec<String> {
            json(response)
                .as_array()
                .expect("an array")
                .iter()
                .map(|order| order["id"].as_str().expect("an id").to_owned())
                .collect()
        };
        let listed = app.list_orders(BOB, "");
        assert_eq!(listed.status, 200);
        assert_eq!(ids(&listed), [first.clone(), second.clone()]);
        assert_eq!(json(&listed)[1]["ticket"]["title"], json!("Opera"));
        assert_eq!(ids(&app.list_orders(CAROL, "")), Vec::<String>::new());

        let page = app.list_orders(BOB, "?limit=1");
        assert_eq!(ids(&page), [first]);
        let cursor = page
            .header("x-next-cursor")
            .expect("a next page")
            .to_owned();
        assert_eq!(
            page.header("link"),
            Some(format!("</api/orders?limit=1&cursor={cursor}>; rel=\"next\"").as_str())
        );
        let rest = app.list_orders(BOB, &format!("?limit=1&cursor={cursor}"));
        assert_eq!(ids(&rest), [second]);
        assert_eq!(rest.header("link"), None);
        assert_eq!(app.list_orders(BOB, "?limit=0").status, 400);
    }

    #[test]
    fn an_order_is_shown_to_its_owner_only() {
        let app = app_with_ticket();
        let order = app.place(BOB, TICKET);
        assert_eq!(app.get_order(BOB, &order).status, 200);
        assert_error(&app.get_order(CAROL, &order), 401, NOT_OWNER);
        for id in [UNKNOWN, "not-an-id", "507f1f77bcf86cd799439011"] {
            assert_error(&app.get_order(BOB, id), 404, "Not found");
        }
        assert_eq!(app.get_order(BOB, &format!("{order}/")).status, 200);
        assert_eq!(app.get_order(BOB, &format!("{order}/x")).status, 404);
    }

    // DELETE /api/orders/:id

    #[test]
    fn cancelling_frees_the_ticket_and_publishes_once() {
        let app = app_with_ticket();
        let order = app.place(BOB, TICKET);
        let response = app.delete_order(BOB, &order);
        assert_eq!(response.status, 204);
        assert!(response.body.is_empty());
        let shown = json(&app.get_order(BOB, &order));
        assert_eq!(
            (shown["status"].clone(), shown["version"].clone()),
            (json!("cancelled"), json!(1))
        );
        // Again: still 204, nothing changes, nothing is published.
        assert_eq!(app.delete_order(BOB, &order).status, 204);
        assert_eq!(json(&app.get_order(BOB, &order))["version"], json!(1));
        let subjects: Vec<&str> = app.enqueued().iter().map(Event::subject).collect();
        assert_eq!(subjects, ["order:created", "order:cancelled"]);
        let Some(Event::OrderCancelled(cancelled)) = app.enqueued().pop() else {
            panic!("expected order:cancelled");
        };
        assert_eq!(
            (cancelled.version, cancelled.ticket.id.as_str()),
            (1, TICKET)
        );
    }

    #[test]
    fn a_paid_order_cannot_be_cancelled() {
        let app = app_with_ticket();
        let order = app.place(BOB, TICKET);
        let paid = app.deliver(events::PaymentCreated {
            id: "6b4f2ab8-9273-4e30-b586-b3a292f8f767".to_owned(),
            order_id: order.clone(),
            stripe_id: "pi_123".to_owned(),
            paid_at: None,
        });
        assert!(paid.is_ok(), "{paid:?}");
        assert_error(&app.delete_order(BOB, &order), 400, PAID_ORDER);
        assert_eq!(
            json(&app.get_order(BOB, &order))["status"],
            json!("complete")
        );
        assert_eq!(app.enqueued().len(), 2, "created and completed only");
    }

    #[test]
    fn only_the_owner_can_cancel_an_existing_order() {
        let app = app_with_ticket();
        let order = app.place(BOB, TICKET);
        assert_error(&app.delete_order(CAROL, &order), 401, NOT_OWNER);
        for id in [UNKNOWN, "nope"] {
            assert_error(&app.delete_order(BOB, id), 404, "Not found");
        }
        assert_eq!(
            json(&app.get_order(BOB, &order))["status"],
            json!("created")
        );
    }

    #[test]
    fn other_methods_and_paths_are_not_found() {
        let app = app_with_ticket();
        let order = app.place(BOB, TICKET);
        for (method, path) in [
            (Method::Put, format!("/api/orders/{order}")),
            (Method::Delete, "/api/orders".to_owned()),
            (Method::Post, format!("/api/orders/{order}")),
            (Method::Get, "/api/ordersx".to_owned()),
            (Method::Get, "/api/orders/a/b".to_owned()),
        ] {
            let response = app.handle(&app.request(method.clone(), &path, Some(BOB), None));
            assert_error(&response, 404, "Not found");
        }
    }
}
