//! The routes of the tickets service.

use api::{ApiError, Method, Page, Request, Response, Validator, parse_json, string_or_empty};
use domain::{DomainError, Price, TicketId, Title};
use serde::Deserialize;
use serde_json::Value;
use session::Claims;
use storage::Database;

use crate::search::{MAX_SEARCH_CHARS, search_query};
use crate::store;
use crate::ticket::{Ticket, TicketStatus};
use crate::{Clock, TicketsConfig};

/// A title and a price; anything bigger is not a ticket form.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;

/// Also for a sold ticket: either way the seller can no longer change it.
pub(crate) const TICKET_RESERVED: &str = "Ticket is reserved";
const NOT_OWNER: &str = "You do not own this ticket";
const RESALE_KEEPS_TITLE: &str = "A resold ticket keeps its title";
const SEARCH_TOO_LONG: &str = "Search must be at most 200 characters";

/// One request's view of the service: the configuration and the ports it may use.
pub struct TicketsApi<'a> {
    pub db: &'a dyn Database,
    pub config: &'a TicketsConfig,
    pub clock: &'a dyn Clock,
}

/// The paths this service answers.
enum Route<'a> {
    /// `/api/tickets`
    Tickets,
    /// `/api/tickets/mine`
    Mine,
    /// `/api/tickets/:id`, with the id as written.
    Ticket(&'a str),
    /// `/api/tickets/:id/resale`
    Resale(&'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    // Express, which the reference ran on, ignores one trailing slash.
    let path = path.strip_suffix('/').unwrap_or(path);
    match path.strip_prefix("/api/tickets")? {
        "" => Some(Route::Tickets),
        "/mine" => Some(Route::Mine),
        rest => {
            let rest = rest.strip_prefix('/')?;
            match rest.split_once('/') {
                None if !rest.is_empty() => Some(Route::Ticket(rest)),
                Some((id, "resale")) if !id.is_empty() => Some(Route::Resale(id)),
                _ => None,
            }
        }
    }
}

impl TicketsApi<'_> {
    /// Answers one request. Never fails: errors become responses in the reference's format.
    pub fn handle(&self, request: &Request) -> Response {
        let result = match (&request.method, route(&request.path)) {
            (Method::Post, Some(Route::Tickets)) => self.create_ticket(request),
            (Method::Get, Some(Route::Tickets)) => self.list_tickets(request),
            (Method::Get, Some(Route::Mine)) => self.my_tickets(request),
            (Method::Get, Some(Route::Ticket(id))) => self.show_ticket(id),
            (Method::Put, Some(Route::Ticket(id))) => self.update_ticket(request, id),
            (Method::Post, Some(Route::Resale(id))) => self.list_again(request, id),
            (Method::Delete, Some(Route::Resale(id))) => self.withdraw(request, id),
            // As the reference's catch-all: a known path with another method is not found too.
            _ => Err(ApiError::NotFound),
        };
        result.unwrap_or_else(ApiError::into_response)
    }

    /// `POST /api/tickets`: 201 with the new ticket at version 0; `ticket:created` goes to the
    /// outbox in the same transaction.
    fn create_ticket(&self, request: &Request) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let (title, price) = ticket_details(request)?;
        let now = self.clock.now_ms();
        let id = TicketId::new_random();
        let ticket = storage::transaction(self.db, |tx| -> Result<Ticket, ApiError> {
            let ticket = store::insert(tx, &id, &title, price, &user.id, now)?;
            store::enqueue(tx, &ticket.created_event(), now)?;
            Ok(ticket)
        })?;
        Ok(Response::json(201, &ticket))
    }

    /// `GET /api/tickets?limit=&cursor=&q=`: the tickets for sale, newest first, a page at a
    /// time; with `q`, only those whose title holds each of its words. When more follow,
    /// `Link: <…>; rel="next"` and `x-next-cursor` say where.
    fn list_tickets(&self, request: &Request) -> Result<Response, ApiError> {
        let page = Page::from_query(&request.query)?;
        let query = search_text(request)?;
        let tickets = self.available(&page, &query)?;
        Ok(
            page.respond_with("/api/tickets", &[("q", &query)], tickets, |ticket| {
                ticket.seq
            }),
        )
    }

    /// `GET /api/tickets/mine`: the caller's own tickets, whatever their status (for sale,
    /// reserved, sold), newest first, a page at a time.
    fn my_tickets(&self, request: &Request) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let page = Page::from_query(&request.query)?;
        let tickets = store::list_sellers(self.db, &user.id, page.fetch(), page.after)?;
        Ok(page.respond("/api/tickets/mine", tickets, |ticket| ticket.seq))
    }

    /// The home page, `/?q=&cursor=`: `template` (`templates/home.html`) with the first page of
    /// tickets for sale (or of a search) rendered in, as HTML.
    pub fn home_page(&self, request: &Request, template: &str) -> Result<String, ApiError> {
        let mut page = Page::from_query(&request.query)?;
        if api::query::param(&request.query, "limit").is_none() {
            page.limit = crate::home::HOME_PAGE_SIZE;
        }
        let query = search_text(request)?;
        let mut tickets = self.available(&page, &query)?;
        let next = page.cut(&mut tickets, |ticket| ticket.seq);
        Ok(crate::home::render(template, &tickets, &query, next))
    }

    /// One page (plus one, to tell whether more follow) of the tickets for sale matching `query`.
    fn available(&self, page: &Page, query: &str) -> Result<Vec<Ticket>, ApiError> {
        Ok(match search_query(query) {
            Some(search) => store::search_available(self.db, &search, page.fetch(), page.after)?,
            None => store::list_available(self.db, page.fetch(), page.after)?,
        })
    }

    /// `GET /api/tickets/:id`: any ticket, whatever its status; a malformed id is unknown.
    fn show_ticket(&self, id: &str) -> Result<Response, ApiError> {
        let id = TicketId::parse(id).map_err(|_| ApiError::NotFound)?;
        let ticket = store::find(self.db, &id)?.ok_or(ApiError::NotFound)?;
        Ok(Response::json(200, &ticket))
    }

    /// `PUT /api/tickets/:id`, checking in the reference's order: signed in (401), body (400),
    /// ticket exists (404), not reserved or sold (400), caller owns it (401); a resale listing
    /// also keeps its title and its price under the cap (400). The checks run in the transaction
    /// that writes, so nothing changes between checking and writing.
    fn update_ticket(&self, request: &Request, id: &str) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let (title, price) = ticket_details(request)?;
        let id = TicketId::parse(id).map_err(|_| ApiError::NotFound)?;
        let now = self.clock.now_ms();
        let ticket = storage::transaction(self.db, |tx| -> Result<Ticket, ApiError> {
            let current = store::find(tx, &id)?.ok_or(ApiError::NotFound)?;
            if current.status != TicketStatus::Available {
                return Err(ApiError::BadRequest(TICKET_RESERVED.to_owned()));
            }
            if current.user_id != user.id {
                return Err(ApiError::NotAuthorized(NOT_OWNER.to_owned()));
            }
            if current.listing > 1 {
                if title != current.title {
                    return Err(ApiError::validation("title", RESALE_KEEPS_TITLE));
                }
                crate::resale::check_cap(&current, price, self.config.resale_cap_percent)?;
            }
            let updated = store::update_details(tx, &id, &title, price)?;
            store::enqueue(tx, &updated.updated_event(), now)?;
            Ok(updated)
        })?;
        Ok(Response::json(200, &ticket))
    }

    pub(crate) fn signed_in_user(&self, request: &Request) -> Result<Claims, ApiError> {
        api::require_user(request, &self.config.verifier, self.clock.now_ms() / 1000)
    }
}

/// The `q` parameter: what to search for, empty for everything.
fn search_text(request: &Request) -> Result<String, ApiError> {
    let query = api::query::param(&request.query, "q").unwrap_or_default();
    if query.chars().count() > MAX_SEARCH_CHARS {
        return Err(ApiError::validation("q", SEARCH_TOO_LONG));
    }
    Ok(query)
}

/// The body of `POST` and `PUT`, loose so that a missing or mistyped field is a validation
/// message for that field.
#[derive(Deserialize)]
struct TicketForm {
    title: Option<Value>,
    price: Option<Value>,
}

/// The `price` of a form: a JSON number of dollars, or a 400 for field `price`.
pub(crate) fn price_field(price: Option<&Value>) -> Result<Price, DomainError> {
    match price {
        Some(Value::Number(number)) => Price::from_dollars_json(number),
        _ => Err(DomainError::InvalidPrice),
    }
}

/// The title and price of a ticket form, or a 400 listing every field that is wrong. The price
/// must be a JSON number of dollars; a string, even `"10"`, is not one.
fn ticket_details(request: &Request) -> Result<(Title, Price), ApiError> {
    let form: TicketForm = parse_json(request, MAX_BODY_BYTES)?;
    let mut v = Validator::new();
    let title = v.check("title", Title::parse(string_or_empty(&form.title)));
    let price = v.check("price", price_field(form.price.as_ref()));
    v.finish_with(|| Some((title?, price?)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use events::{Event, TicketStatus as EventStatus};
    use serde_json::{Value, json};

    use super::*;
    use crate::testing::{ALICE, BOB, TestApp, id_of, json, order_completed, order_created, text};

    const UNKNOWN_ID: &str = "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f";

    fn errors(response: &Response) -> Value {
        json(response)["errors"].clone()
    }

    fn assert_error(response: &Response, status: u16, message: &str) {
        assert_eq!(response.status, status, "{}", text(response));
        assert_eq!(errors(response), json!([{ "message": message }]));
    }

    fn titles(response: &Response) -> Vec<String> {
        json(response)
            .as_array()
            .expect("an array")
            .iter()
            .map(|ticket| ticket["title"].as_str().expect("a title").to_owned())
            .collect()
    }

    // POST /api/tickets

    #[test]
    fn creating_a_ticket_requires_a_signed_in_user() {
        let app = TestApp::new();
        let body = json!({"title": "Concert", "price": 10});
        assert_error(&app.post_ticket(None, &body), 401, "You are not signed in");
        let forged = app
            .json_request(Method::Post, "/api/tickets", None, &body)
            .with_header("cookie", "session=not-a-token");
        assert_error(&app.handle(&forged), 401, "You are not signed in");
        // Even an invalid body is answered with 401 first.
        assert_error(
            &app.post_ticket(None, &json!({})),
            401,
            "You are not signed in",
        );
        assert!(app.outbox().is_empty());
    }

    #[test]
    fn a_created_ticket_has_version_0_the_callers_id_and_is_available() {
        let app = TestApp::new();
        let response =
            app.post_ticket(Some(ALICE), &json!({"title": "  Concert ", "price": 19.99}));
        assert_eq!(response.status, 201, "{}", text(&response));
        assert_eq!(response.header("content-type"), Some("application/json"));
        let ticket = json(&response);
        let id = id_of(&ticket);
        assert!(TicketId::parse(&id).is_ok(), "{id}");
        assert_eq!(
            ticket,
            json!({
                "id": id,
                "title": "Concert",
                "price": 19.99,
                "userId": ALICE,
                "version": 0,
                "status": "available",
                "faceValue": 19.99,
                "listing": 1,
            })
        );
        assert_eq!(app.ticket(&id), ticket);
    }

    #[test]
    fn creating_a_ticket_puts_exactly_one_ticket_created_in_the_outbox() {
        let app = TestApp::new();
        let ticket = app.create_ticket(ALICE, "Concert", 20.5);
        let outbox = app.outbox();
        assert_eq!(outbox.len(), 1);
        let envelope = &outbox[0];
        assert_eq!(envelope.subject, "ticket:created");
        assert_eq!(envelope.occurred_at, "2026-11-25T03:04:05.678Z");
        assert!(
            domain::EventId::parse(&envelope.id).is_ok(),
            "{}",
            envelope.id
        );
        assert_eq!(
            envelope.decode().expect("decodes"),
            Event::TicketCreated(events::TicketCreated {
                id: id_of(&ticket),
                title: "Concert".to_owned(),
                price_cents: 2050,
                user_id: ALICE.to_owned(),
                version: 0,
            })
        );
    }

    #[test]
    fn invalid_ticket_forms_are_rejected_with_every_field_error() {
        let title_error = json!({"message": "Title is required", "field": "title"});
        let price_error = json!({
            "message": "Price must be a number greater than 0 and at most 1000000 with at most two decimals",
            "field": "price",
        });
        let cases = [
            (json!({"title": "Gig", "price": 0}), vec![&price_error]),
            (json!({"title": "Gig", "price": -1}), vec![&price_error]),
            (json!({"title": "Gig", "price": "abc"}), vec![&price_error]),
            (json!({"title": "Gig", "price": 10.555}), vec![&price_error]),
            (json!({"title": "Gig", "price": "10"}), vec![&price_error]),
            (
                json!({"title": "Gig", "price": 1_000_000.01}),
                vec![&price_error],
            ),
            (json!({"title": "Gig", "price": null}), vec![&price_error]),
            (json!({"title": "Gig"}), vec![&price_error]),
            (json!({"price": 10}), vec![&title_error]),
            (json!({"title": "", "price": 10}), vec![&title_error]),
            (json!({"title": "   ", "price": 10}), vec![&title_error]),
            (json!({"title": 123, "price": 10}), vec![&title_error]),
            (json!({}), vec![&title_error, &price_error]),
            (
                json!({"title": " ", "price": -5}),
                vec![&title_error, &price_error],
            ),
        ];
        let app = TestApp::new();
        for (body, expected) in cases {
            let response = app.post_ticket(Some(ALICE), &body);
            assert_eq!(response.status, 400, "{body}: {}", text(&response));
            assert_eq!(errors(&response), json!(expected), "{body}");
        }
        let too_long = json!({"title": "t".repeat(256), "price": 10});
        assert_eq!(
            errors(&app.post_ticket(Some(ALICE), &too_long)),
            json!([{"message": "Title must be at most 255 characters", "field": "title"}])
        );
        assert_eq!(titles(&app.get("/api/tickets")), Vec::<String>::new());
        assert!(app.outbox().is_empty());
    }

    #[test]
    fn a_body_that_is_not_json_is_rejected() {
        let app = TestApp::new();
        let malformed = Request::new(Method::Post, "/api/tickets")
            .with_header("content-type", "application/json")
            .with_header("cookie", &format!("session={}", app.token(ALICE)))
            .with_body("{\"title\": ");
        assert_eq!(app.handle(&malformed).status, 400);
        let form = Request::new(Method::Post, "/api/tickets")
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_header("cookie", &format!("session={}", app.token(ALICE)))
            .with_body("title=Gig&price=10");
        assert_eq!(app.handle(&form).status, 415);
        assert!(app.outbox().is_empty());
    }

    #[test]
    fn prices_are_exact_cents_inside_and_dollars_outside() {
        let app = TestApp::new();
        for (price, shown, cents) in [
            (json!(19.99), json!(19.99), 1999),
            (json!(10), json!(10), 1000),
            (json!(10.5), json!(10.5), 1050),
            (json!(0.01), json!(0.01), 1),
        ] {
            let response = app.post_ticket(Some(ALICE), &json!({"title": "Gig", "price": price}));
            assert_eq!(json(&response)["price"], shown, "{price}");
            let Some(Event::TicketCreated(created)) = app.enqueued().pop() else {
                panic!("expected ticket:created");
            };
            assert_eq!(created.price_cents, cents, "{price}");
        }
    }

    // GET /api/tickets/:id

    #[test]
    fn any_ticket_is_shown_to_anyone_by_its_id() {
        let app = TestApp::new();
        let ticket = app.create_ticket(ALICE, "Concert", 10.0);
        let response = app.get(&format!("/api/tickets/{}", id_of(&ticket)));
        assert_eq!(response.status, 200);
        assert_eq!(json(&response), ticket);
    }

    #[test]
    fn an_unknown_or_malformed_ticket_id_is_not_found() {
        let app = TestApp::new();
        app.create_ticket(ALICE, "Concert", 10.0);
        for id in [
            UNKNOWN_ID,
            "abc",
            "507f1f77bcf86cd799439011",
            "3F2C7D1E-8A4B-4C6D-9E0F-1A2B3C4D5E6F",
        ] {
            assert_error(&app.get(&format!("/api/tickets/{id}")), 404, "Not found");
        }
    }

    #[test]
    fn other_routes_and_methods_are_not_found() {
        let app = TestApp::new();
        let ticket = app.create_ticket(ALICE, "Concert", 10.0);
        let path = format!("/api/tickets/{}", id_of(&ticket));
        let cases = [
            Request::new(Method::Delete, &path),
            Request::new(Method::Patch, &path),
            Request::new(Method::Post, &path),
            Request::new(Method::Put, "/api/tickets"),
            Request::new(Method::Delete, "/api/tickets"),
            Request::new(Method::Get, &format!("{path}/extra")),
            Request::new(Method::Get, "/api/ticketsx"),
            Request::new(Method::Get, "/api/tickets//"),
            Request::new(Method::Get, "/api/orders"),
            Request::new(Method::Get, "/"),
        ];
        for request in cases {
            assert_error(&app.handle(&request), 404, "Not found");
        }
    }

    #[test]
    fn one_trailing_slash_is_ignored_as_in_express() {
        let app = TestApp::new();
        let ticket = app.create_ticket(ALICE, "Concert", 10.0);
        assert_eq!(app.get("/api/tickets/").status, 200);
        assert_eq!(
            app.get(&format!("/api/tickets/{}/", id_of(&ticket))).status,
            200
        );
    }

    // GET /api/tickets

    #[test]
    fn an_empty_listing_is_an_empty_array_without_a_next_page() {
        let app = TestApp::new();
        let response = app.get("/api/tickets");
        assert_eq!(response.status, 200);
        assert_eq!(json(&response), json!([]));
        assert_eq!(response.header("link"), None);
        assert_eq!(response.header("x-next-cursor"), None);
    }

    #[test]
    fn the_listing_shows_available_tickets_of_everyone_newest_first() {
        let app = TestApp::new();
        let first = app.create_ticket(ALICE, "First", 10.0);
        app.create_ticket(BOB, "Second", 10.0);
        let third = app.create_ticket(ALICE, "Third", 10.0);
        let fourth = app.create_ticket(BOB, "Fourth", 10.0);
        app.deliver(order_created("o-third", &id_of(&third)))
            .expect("reserve");
        app.deliver(order_created("o-first", &id_of(&first)))
            .expect("reserve");
        app.deliver(order_completed("o-first", &id_of(&first), 1))
            .expect("sell");
        let response = app.get("/api/tickets");
        assert_eq!(titles(&response), ["Fourth", "Second"]);
        assert_eq!(json(&response)[0], app.ticket(&id_of(&fourth)));
    }

    #[test]
    fn the_listing_pages_through_tickets_with_a_cursor() {
        let app = TestApp::new();
        for n in 1..=5 {
            app.create_ticket(ALICE, &format!("T{n}"), 10.0);
        }
        let mut seen = Vec::new();
        let mut path = "/api/tickets?limit=2".to_owned();
        let mut pages = 0;
        loop {
            let response = app.get(&path);
            assert_eq!(response.status, 200, "{}", text(&response));
            pages += 1;
            seen.extend(titles(&response));
            let Some(link) = response.header("link") else {
                assert_eq!(response.header("x-next-cursor"), None);
                break;
            };
            let cursor = response
                .header("x-next-cursor")
                .expect("a cursor with the link");
            assert_eq!(
                link,
                format!("</api/tickets?limit=2&cursor={cursor}>; rel=\"next\"")
            );
            path = link
                .strip_prefix('<')
                .and_then(|rest| rest.split_once('>'))
                .map(|(next, _)| next.to_owned())
                .expect("a URL in angle brackets");
        }
        assert_eq!(seen, ["T5", "T4", "T3", "T2", "T1"]);
        assert_eq!(pages, 3);
    }

    #[test]
    fn a_page_that_ends_the_listing_has_no_next_link() {
        let app = TestApp::new();
        for n in 1..=4 {
            app.create_ticket(ALICE, &format!("T{n}"), 10.0);
        }
        let first = app.get("/api/tickets?limit=2");
        let cursor = first.header("x-next-cursor").expect("a next page");
        let last = app.get(&format!("/api/tickets?limit=2&cursor={cursor}"));
        assert_eq!(titles(&last), ["T2", "T1"]);
        assert_eq!(last.header("link"), None);
        assert_eq!(app.get("/api/tickets?limit=4").header("link"), None);
    }

    #[test]
    fn tickets_reserved_after_a_page_was_read_do_not_shift_the_next_page() {
        let app = TestApp::new();
        let tickets: Vec<Value> = (1..=4)
            .map(|n| app.create_ticket(ALICE, &format!("T{n}"), 10.0))
            .collect();
        let first = app.get("/api/tickets?limit=2");
        assert_eq!(titles(&first), ["T4", "T3"]);
        app.deliver(order_created("o1", &id_of(&tickets[3])))
            .expect("reserve");
        let cursor = first.header("x-next-cursor").expect("a next page");
        let next = app.get(&format!("/api/tickets?limit=2&cursor={cursor}"));
        assert_eq!(titles(&next), ["T2", "T1"]);
    }

    #[test]
    fn the_default_page_holds_100_tickets_and_at_most_500_may_be_asked_for() {
        let app = TestApp::new();
        for n in 1..=101 {
            app.create_ticket(ALICE, &format!("T{n}"), 10.0);
        }
        let response = app.get("/api/tickets");
        let page = titles(&response);
        assert_eq!(page.len(), 100);
        assert_eq!(page.first().map(String::as_str), Some("T101"));
        let cursor = response.header("x-next-cursor").expect("a next page");
        assert_eq!(
            response.header("link").map(str::to_owned),
            Some(format!(
                "</api/tickets?limit=100&cursor={cursor}>; rel=\"next\""
            ))
        );
        let rest = app.get(&format!("/api/tickets?cursor={cursor}"));
        assert_eq!(titles(&rest), ["T1"]);
        let all = app.get("/api/tickets?limit=500&other=ignored");
        assert_eq!(titles(&all).len(), 101);
        assert_eq!(all.header("link"), None);
    }

    #[test]
    fn invalid_limits_and_cursors_are_rejected() {
        let app = TestApp::new();
        let response = app.get("/api/tickets?limit=0&cursor=x");
        assert_eq!(response.status, 400);
        let fields: Vec<Value> = errors(&response)
            .as_array()
            .expect("errors")
            .iter()
            .map(|error| error["field"].clone())
            .collect();
        assert_eq!(fields, [json!("limit"), json!("cursor")]);
    }

    #[test]
    fn updating_checks_sign_in_before_the_body_and_the_ticket() {
        let app = TestApp::new();
        let ticket = app.create_ticket(ALICE, "Concert", 10.0);
        for (id, body) in [
            (id_of(&ticket), json!({"title": "New", "price": 20})),
            (id_of(&ticket), json!({})),
            (UNKNOWN_ID.to_owned(), json!({})),
        ] {
            assert_error(
                &app.put_ticket(None, &id, &body),
                401,
                "You are not signed in",
            );
        }
    }

    #[test]
    fn updating_checks_the_body_before_looking_up_the_ticket() {
        let app = TestApp::new();
        for id in [UNKNOWN_ID, "abc"] {
            let response = app.put_ticket(Some(ALICE), id, &json!({"title": "New"}));
            assert_eq!(response.status, 400, "{id}");
            assert_eq!(errors(&response)[0]["field"], json!("price"));
        }
        let ticket = app.create_ticket(ALICE, "Concert", 10.0);
        let response = app.put_ticket(Some(BOB), &id_of(&ticket), &json!({"price": 0}));
        assert_eq!(errors(&response).as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn updating_an_unknown_or_malformed_ticket_is_not_found() {
        let app = TestApp::new();
        let body = json!({"title": "New", "price": 20});
        for id in [UNKNOWN_ID, "abc", "507f1f77bcf86cd799439011"] {
            assert_error(&app.put_ticket(Some(ALICE), id, &body), 404, "Not found");
        }
    }

    #[test]
    fn a_reserved_or_sold_ticket_cannot_be_edited_even_by_someone_else() {
        let app = TestApp::new();
        let reserved = app.create_ticket(ALICE, "Reserved", 10.0);
        let sold = app.create_ticket(ALICE, "Sold", 10.0);
        app.deliver(order_created("o1", &id_of(&reserved)))
            .expect("reserve");
        app.deliver(order_created("o2", &id_of(&sold)))
            .expect("reserve");
        app.deliver(order_completed("o2", &id_of(&sold), 1))
            .expect("sell");
        let events_before = app.outbox().len();
        let body = json!({"title": "New", "price": 20});
        for ticket in [&reserved, &sold] {
            let id = id_of(ticket);
            let before = app.ticket(&id);
            // The reserved check comes before the owner check, as in the reference.
            for user in [ALICE, BOB] {
                assert_error(
                    &app.put_ticket(Some(user), &id, &body),
                    400,
                    "Ticket is reserved",
                );
            }
            assert_eq!(app.ticket(&id), before);
        }
        assert_eq!(app.outbox().len(), events_before);
    }

    #[test]
    fn only_the_owner_may_edit_a_ticket() {
        let app = TestApp::new();
        let ticket = app.create_ticket(ALICE, "Concert", 10.0);
        let id = id_of(&ticket);
        let response = app.put_ticket(Some(BOB), &id, &json!({"title": "Mine", "price": 1}));
        assert_error(&response, 401, "You do not own this ticket");
        assert_eq!(app.ticket(&id), ticket);
        assert_eq!(app.outbox().len(), 1);
    }

    #[test]
    fn each_edit_bumps_the_version_by_one_and_publishes_it() {
        let app = TestApp::new();
        let ticket = app.create_ticket(ALICE, "Concert", 10.0);
        let id = id_of(&ticket);
        for version in 1..=3_u64 {
            let title = format!("Concert v{version}");
            let response =
                app.put_ticket(Some(ALICE), &id, &json!({"title": title, "price": 12.5}));
            assert_eq!(response.status, 200, "{}", text(&response));
            assert_eq!(
                json(&response),
                json!({
                    "id": id,
                    "title": title,
                    "price": 12.5,
                    "userId": ALICE,
                    "version": version,
                    "status": "available",
                    "faceValue": 12.5,
                    "listing": 1,
                })
            );
            assert_eq!(app.ticket(&id), json(&response));
            let outbox = app.outbox();
            assert_eq!(outbox.len() as u64, version + 1);
            let last = outbox.last().expect("an event");
            assert_eq!(last.subject, "ticket:updated");
            assert_eq!(
                last.decode().expect("decodes"),
                Event::TicketUpdated(events::TicketUpdated {
                    id: id.clone(),
                    title,
                    price_cents: 1250,
                    user_id: ALICE.to_owned(),
                    version,
                    order_id: None,
                    status: EventStatus::Available,
                    listing: Some(1),
                })
            );
        }
        let ids: BTreeSet<String> = app.outbox().into_iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), 4, "every event has its own id");
    }

    #[test]
    fn concurrent_edits_each_get_their_own_version_and_event() {
        const WRITERS: u64 = 8;
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        let responses: Vec<Value> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..WRITERS)
                .map(|n| {
                    let (app, id) = (&app, &id);
                    scope.spawn(move || {
                        let db = app.connect();
                        let body = json!({"title": format!("Writer {n}"), "price": 10 + n});
                        let path = format!("/api/tickets/{id}");
                        let request = app.json_request(Method::Put, &path, Some(ALICE), &body);
                        let response = app.handle_on(&db, &request);
                        assert_eq!(response.status, 200, "{}", text(&response));
                        json(&response)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("a writer finished"))
                .collect()
        });
        let mut versions: Vec<u64> = responses
            .iter()
            .map(|ticket| ticket["version"].as_u64().expect("a version"))
            .collect();
        versions.sort_unstable();
        assert_eq!(versions, (1..=WRITERS).collect::<Vec<_>>());
        let updates: Vec<events::TicketUpdated> = app
            .enqueued()
            .into_iter()
            .filter_map(|event| match event {
                Event::TicketUpdated(updated) => Some(updated),
                _ => None,
            })
            .collect();
        assert_eq!(updates.len() as u64, WRITERS);
        for response in &responses {
            let version = response["version"].as_u64().expect("a version");
            let matching: Vec<_> = updates.iter().filter(|u| u.version == version).collect();
            assert_eq!(matching.len(), 1, "version {version}");
            assert_eq!(Some(matching[0].title.as_str()), response["title"].as_str());
        }
        let last = app.ticket(&id);
        assert_eq!(last["version"], json!(WRITERS));
    }

    // Search, my tickets and the home page

    #[test]
    fn a_search_finds_titles_holding_every_word_in_any_case_newest_first() {
        let app = TestApp::new();
        for title in [
            "Jazz Night",
            "Rock night",
            "JAZZ brunch",
            "Opera",
            "Nightjazz",
        ] {
            app.create_ticket(ALICE, title, 10.0);
        }
        let found = |query: &str| titles(&app.get(&format!("/api/tickets?q={query}")));
        assert_eq!(found("jazz"), ["JAZZ brunch", "Jazz Night"]);
        assert_eq!(found("NIGHT+jazz"), ["Jazz Night"]);
        assert_eq!(found("night"), ["Rock night", "Jazz Night"], "whole words");
        assert_eq!(found("nig"), Vec::<String>::new());
        assert_eq!(found("nightjazz"), ["Nightjazz"]);
        assert_eq!(found("ballet"), Vec::<String>::new());
        assert_eq!(found("%22%2A%28"), found(""), "no word: everything");
        let too_long = app.get(&format!("/api/tickets?q={}", "a".repeat(201)));
        assert_eq!(too_long.status, 400);
        assert_eq!(errors(&too_long)[0]["field"], json!("q"));
    }

    #[test]
    fn a_search_pages_through_its_matches_and_skips_held_tickets() {
        let app = TestApp::new();
        let held = app.create_ticket(ALICE, "Gig 0", 10.0);
        app.deliver(order_created("o1", &id_of(&held)))
            .expect("reserve");
        for i in 1..=5 {
            app.create_ticket(ALICE, &format!("Gig {i}"), 10.0);
        }
        app.create_ticket(ALICE, "Other", 10.0);
        let first = app.get("/api/tickets?q=gig&limit=2");
        assert_eq!(titles(&first), ["Gig 5", "Gig 4"]);
        let link = first.header("link").expect("a next page").to_owned();
        assert!(link.ends_with("&q=gig>; rel=\"next\""), "{link}");
        let next = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .expect("a URL");
        let second = app.get(next);
        assert_eq!(titles(&second), ["Gig 3", "Gig 2"]);
        let cursor = second.header("x-next-cursor").expect("more");
        let last = app.get(&format!("/api/tickets?q=gig&limit=2&cursor={cursor}"));
        assert_eq!(titles(&last), ["Gig 1"], "the held ticket is not for sale");
    }

    #[test]
    fn an_edited_title_is_found_by_its_new_words_only() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Symphony", 10.0));
        let edited = app.put_ticket(Some(ALICE), &id, &json!({"title": "Quartet", "price": 10}));
        assert_eq!(edited.status, 200);
        assert_eq!(titles(&app.get("/api/tickets?q=quartet")), ["Quartet"]);
        assert!(titles(&app.get("/api/tickets?q=symphony")).is_empty());
    }

    #[test]
    fn a_search_reads_the_full_text_index_newest_first_without_sorting() {
        let app = TestApp::new();
        let details = storage::testing::query_plan(
            &app.db,
            "SELECT t.seq FROM tickets_search s CROSS JOIN tickets t ON t.seq = s.rowid \
                 WHERE tickets_search MATCH ? AND s.rowid < ? AND t.status = ? \
                 ORDER BY s.rowid DESC LIMIT ?",
            &[
                "\"gig\"".into(),
                i64::MAX.into(),
                "available".into(),
                10.into(),
            ],
        );
        assert!(
            details.iter().any(|d| d.contains("VIRTUAL TABLE INDEX"))
                && !details.iter().any(|d| d.contains("TEMP B-TREE")),
            "{details:?}"
        );
    }

    #[test]
    fn my_tickets_are_every_ticket_of_mine_whatever_its_status() {
        let app = TestApp::new();
        let listed = app.create_ticket(ALICE, "Listed", 10.0);
        let reserved = app.create_ticket(ALICE, "Reserved", 10.0);
        let sold = app.create_ticket(ALICE, "Sold", 10.0);
        app.create_ticket(BOB, "Not mine", 10.0);
        app.deliver(order_created("o1", &id_of(&reserved)))
            .expect("reserve");
        app.deliver(order_created("o2", &id_of(&sold)))
            .expect("reserve");
        app.deliver(order_completed("o2", &id_of(&sold), 1))
            .expect("sell");
        let request = app.json_request(Method::Get, "/api/tickets/mine", Some(ALICE), &json!(null));
        let mine = json(&app.handle(&request));
        let summary: Vec<(String, String)> = mine
            .as_array()
            .expect("an array")
            .iter()
            .map(|t| {
                (
                    t["title"].as_str().expect("title").to_owned(),
                    t["status"].as_str().expect("status").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("Sold".to_owned(), "sold".to_owned()),
                ("Reserved".to_owned(), "reserved".to_owned()),
                ("Listed".to_owned(), "available".to_owned()),
            ]
        );
        assert_eq!(id_of(&mine[2]), id_of(&listed));
        assert_error(&app.get("/api/tickets/mine"), 401, "You are not signed in");
    }

    #[test]
    fn the_home_page_renders_the_first_page_and_links_the_next() {
        let app = TestApp::new();
        for i in 0..(crate::home::HOME_PAGE_SIZE + 1) {
            app.create_ticket(ALICE, &format!("Show {i}"), 10.0);
        }
        let api = TicketsApi {
            db: &app.db,
            config: &app.config,
            clock: &app.clock,
        };
        let template = "<ul>{{tickets}}</ul>{{more}}";
        let html = api
            .home_page(&Request::new(Method::Get, "/"), template)
            .expect("renders");
        assert_eq!(html.matches("<li class=\"ticket\">").count(), 48);
        assert!(
            html.contains("Show 48") && !html.contains(">Show 0<"),
            "{html}"
        );
        assert!(html.contains("id=\"more\""), "{html}");
        let searched = api
            .home_page(&Request::new(Method::Get, "/?q=show+47"), template)
            .expect("renders");
        assert_eq!(searched.matches("<li class=\"ticket\">").count(), 1);
        assert!(!searched.contains("id=\"more\""));
    }
}
