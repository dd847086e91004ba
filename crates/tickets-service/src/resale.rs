//! Resale: the holder of a sold ticket lists it again, at most at the cap (a share of its face
//! value), and may withdraw that listing. A ticket checked in at the door is never resold.
//!
//! A resale listing makes the holder the ticket's seller for that listing and starts the next
//! listing number, which the orders service sells at most once. Withdrawing restores the ticket
//! as its last sale left it. An order placed while the listing stood may still arrive after the
//! withdrawal; the events handler honours it ([`crate::store::reserve_withdrawn`]).

use api::{ApiError, Request, Response, Validator, parse_json};
use domain::{Price, TicketId};
use serde::Deserialize;
use serde_json::Value;

use crate::TicketsApi;
use crate::api::{MAX_BODY_BYTES, TICKET_RESERVED, price_field};
use crate::store;
use crate::ticket::{Ticket, TicketStatus};

const NOT_HOLDER: &str = "You do not hold this ticket";
const CHECKED_IN: &str = "This ticket was checked in at the door and cannot be resold";
const ALREADY_LISTED: &str = "Ticket is already listed for resale";
const NOT_LISTED: &str = "Ticket is not listed for resale";

/// The most a resale of `ticket` may ask: `cap_percent` of its face value, rounded down to the
/// cent, and never more than any ticket may cost.
pub(crate) fn max_price(ticket: &Ticket, cap_percent: u64) -> Price {
    let cents = ticket.face_value.cents().saturating_mul(cap_percent) / 100;
    Price::from_cents(cents.min(Price::MAX.cents())).unwrap_or(ticket.face_value)
}

/// 400 for field `price` unless `price` is within the cap of `ticket`'s face value.
pub(crate) fn check_cap(ticket: &Ticket, price: Price, cap_percent: u64) -> Result<(), ApiError> {
    let max = max_price(ticket, cap_percent);
    if price > max {
        return Err(ApiError::validation(
            "price",
            &format!(
                "Price may be at most {max}: {cap_percent}% of the face value, {}",
                ticket.face_value
            ),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct ResaleForm {
    price: Option<Value>,
}

impl TicketsApi<'_> {
    /// `POST /api/tickets/:id/resale {price}`: the holder lists their sold ticket again.
    /// Checks: signed in (401), body (400), ticket exists (404), caller holds it (401), not
    /// checked in (400), sold and not listed already (400), price within the cap (400).
    pub(crate) fn list_again(&self, request: &Request, id: &str) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let form: ResaleForm = parse_json(request, MAX_BODY_BYTES)?;
        let mut v = Validator::new();
        let price = v.check("price", price_field(form.price.as_ref()));
        let price = v.finish_with(|| price)?;
        let id = TicketId::parse(id).map_err(|_| ApiError::NotFound)?;
        let now = self.clock.now_ms();
        let ticket = storage::transaction(self.db, |tx| -> Result<Ticket, ApiError> {
            let (current, sale) = held_ticket(tx, &id, &user.id)?;
            if sale.checked_in {
                return Err(ApiError::BadRequest(CHECKED_IN.to_owned()));
            }
            match current.status {
                TicketStatus::Sold => {}
                TicketStatus::Available => {
                    return Err(ApiError::BadRequest(ALREADY_LISTED.to_owned()));
                }
                TicketStatus::Reserved => {
                    return Err(ApiError::BadRequest(TICKET_RESERVED.to_owned()));
                }
            }
            check_cap(&current, price, self.config.resale_cap_percent)?;
            let listed = store::list_again(tx, &id, price)?;
            store::enqueue(tx, &listed.updated_event(), now)?;
            Ok(listed)
        })?;
        Ok(Response::json(200, &ticket))
    }

    /// `DELETE /api/tickets/:id/resale`: the holder withdraws their resale listing, and the
    /// ticket is theirs, sold, again. 401 for anyone else, 400 once an order holds it or when it
    /// is not listed for resale.
    pub(crate) fn withdraw(&self, request: &Request, id: &str) -> Result<Response, ApiError> {
        let user = self.signed_in_user(request)?;
        let id = TicketId::parse(id).map_err(|_| ApiError::NotFound)?;
        let now = self.clock.now_ms();
        let ticket = storage::transaction(self.db, |tx| -> Result<Ticket, ApiError> {
            let (current, sale) = held_ticket(tx, &id, &user.id)?;
            if !is_listed_again(&current, &sale) {
                return Err(ApiError::BadRequest(NOT_LISTED.to_owned()));
            }
            if current.status == TicketStatus::Reserved {
                return Err(ApiError::BadRequest(TICKET_RESERVED.to_owned()));
            }
            let withdrawn = store::withdraw(tx, &id)?;
            store::enqueue(tx, &withdrawn.updated_event(), now)?;
            Ok(withdrawn)
        })?;
        Ok(Response::json(200, &ticket))
    }
}

/// The ticket `id` and its last sale, if `user_id` holds it: 404 for no such ticket, 401 for
/// anyone but its holder.
fn held_ticket(
    tx: &dyn storage::Database,
    id: &TicketId,
    user_id: &str,
) -> Result<(Ticket, store::Sale), ApiError> {
    let ticket = store::find(tx, id)?.ok_or(ApiError::NotFound)?;
    let sale = store::sale(tx, id)?;
    if sale.holder_id.as_deref() != Some(user_id) {
        return Err(ApiError::NotAuthorized(NOT_HOLDER.to_owned()));
    }
    Ok((ticket, sale))
}

/// Whether `ticket` is in a listing after its last sale's: listed again by its holder, or
/// withdrawn from that listing.
fn in_later_listing(ticket: &Ticket, sale: &store::Sale) -> bool {
    sale.listing.is_some_and(|sold| ticket.listing > sold)
}

/// Whether `ticket` is sold because its holder withdrew a resale listing (which stands again
/// for an order placed before the withdrawal reached this service).
pub(crate) fn is_withdrawn(ticket: &Ticket, sale: &store::Sale) -> bool {
    ticket.status == TicketStatus::Sold && in_later_listing(ticket, sale)
}

/// Whether `ticket` stands in a resale listing its holder made (for sale or held by an order),
/// not yet sold in it.
pub(crate) fn is_listed_again(ticket: &Ticket, sale: &store::Sale) -> bool {
    ticket.status != TicketStatus::Sold && in_later_listing(ticket, sale)
}

#[cfg(test)]
mod tests {
    use api::Method;
    use delivery::Applied;
    use events::{Event, OrderCompleted, PassCheckedIn, TicketRef};
    use serde_json::{Value, json};

    use crate::testing::{ALICE, BOB, TestApp, id_of, json, order_completed, order_created, text};

    const CAROL: &str = "c4a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b";

    #[test]
    fn the_cap_rounds_down_to_the_cent_and_never_passes_the_largest_price() {
        use domain::Price;
        let mut ticket = crate::ticket::tests::ticket(None, crate::ticket::TicketStatus::Sold);
        ticket.face_value = Price::from_cents(1999).expect("valid");
        assert_eq!(super::max_price(&ticket, 120).cents(), 2398);
        assert_eq!(super::max_price(&ticket, 100), ticket.face_value);
        ticket.face_value = Price::from_cents(90_000_000).expect("valid");
        assert_eq!(super::max_price(&ticket, 1000), Price::MAX);
    }

    fn resell(app: &TestApp, user: &str, id: &str, price: Value) -> api::Response {
        let path = format!("/api/tickets/{id}/resale");
        app.handle(&app.json_request(Method::Post, &path, Some(user), &json!({ "price": price })))
    }

    fn withdraw(app: &TestApp, user: &str, id: &str) -> api::Response {
        let path = format!("/api/tickets/{id}/resale");
        app.handle(&app.json_request(Method::Delete, &path, Some(user), &json!({})))
    }

    fn done(outcome: anyhow::Result<Applied>) {
        assert!(matches!(outcome, Ok(Applied::Done)), "{outcome:?}");
    }

    /// A ticket ALICE listed at 20.50 and BOB bought with order `o1`.
    fn sold_to_bob(app: &TestApp) -> String {
        let id = id_of(&app.create_ticket(ALICE, "Concert", 20.5));
        done(app.deliver(order_created("o1", &id)));
        done(app.deliver(order_completed("o1", &id, 1)));
        id
    }

    fn errors(response: &api::Response) -> Value {
        json(response)["errors"].clone()
    }

    fn last_listing(app: &TestApp) -> Option<u32> {
        match app.enqueued().last() {
            Some(Event::TicketUpdated(updated)) => updated.listing,
            other => panic!("expected ticket:updated last, got {other:?}"),
        }
    }

    #[test]
    fn the_holder_resells_within_the_cap_and_becomes_the_seller() {
        let app = TestApp::new();
        let id = sold_to_bob(&app);
        let above = resell(&app, BOB, &id, json!(24.61));
        assert_eq!(above.status, 400, "{}", text(&above));
        assert_eq!(
            errors(&above),
            json!([{
                "field": "price",
                "message": "Price may be at most $24.60: 120% of the face value, $20.50",
            }])
        );
        let listed = resell(&app, BOB, &id, json!(24.6));
        assert_eq!(listed.status, 200, "{}", text(&listed));
        let ticket = json(&listed);
        assert_eq!(
            (&ticket["status"], &ticket["userId"], &ticket["price"]),
            (&json!("available"), &json!(BOB), &json!(24.6))
        );
        assert_eq!(
            (&ticket["faceValue"], &ticket["listing"]),
            (&json!(20.5), &json!(2))
        );
        assert!(ticket.get("orderId").is_none());
        assert_eq!(last_listing(&app), Some(2));
        let again = resell(&app, BOB, &id, json!(20));
        assert_eq!(
            errors(&again),
            json!([{ "message": "Ticket is already listed for resale" }])
        );
    }

    #[test]
    fn only_the_holder_resells_and_bad_prices_change_nothing() {
        let app = TestApp::new();
        let id = sold_to_bob(&app);
        let events = app.outbox().len();
        for user in [ALICE, CAROL] {
            let refused = resell(&app, user, &id, json!(10));
            assert_eq!(refused.status, 401, "{}", text(&refused));
        }
        for price in [json!(0), json!("10"), json!(null), json!(10.555)] {
            let refused = resell(&app, BOB, &id, price.clone());
            assert_eq!(refused.status, 400, "{price}");
            assert_eq!(errors(&refused)[0]["field"], "price");
        }
        let unlisted = resell(&app, BOB, "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f", json!(10));
        assert_eq!(unlisted.status, 404);
        let path = format!("/api/tickets/{id}/resale");
        let anonymous = app.handle(&app.json_request(Method::Post, &path, None, &json!({})));
        assert_eq!(anonymous.status, 401);
        // An unsold ticket has no holder to resell it.
        let fresh = id_of(&app.create_ticket(ALICE, "Play", 10.0));
        assert_eq!(resell(&app, ALICE, &fresh, json!(10)).status, 401);
        assert_eq!(app.ticket(&id)["status"], "sold");
        assert_eq!(app.outbox().len(), events + 1);
    }

    #[test]
    fn withdrawing_puts_the_sale_back() {
        let app = TestApp::new();
        let id = sold_to_bob(&app);
        let sold = app.ticket(&id);
        assert_eq!(withdraw(&app, BOB, &id).status, 400, "not listed yet");
        resell(&app, BOB, &id, json!(22));
        assert_eq!(withdraw(&app, ALICE, &id).status, 401);
        let withdrawn = withdraw(&app, BOB, &id);
        assert_eq!(withdrawn.status, 200, "{}", text(&withdrawn));
        let ticket = json(&withdrawn);
        for field in ["status", "userId", "price", "orderId", "faceValue"] {
            assert_eq!(ticket[field], sold[field], "{field}");
        }
        assert_eq!(ticket["listing"], 2);
        // It can be listed again, in a listing of its own.
        let relisted = resell(&app, BOB, &id, json!(21));
        assert_eq!(json(&relisted)["listing"], 3);
    }

    #[test]
    fn an_order_placed_before_a_withdrawal_still_reserves_the_listing() {
        let app = TestApp::new();
        let id = sold_to_bob(&app);
        resell(&app, BOB, &id, json!(22));
        withdraw(&app, BOB, &id);
        done(app.deliver(order_created("o2", &id)));
        let ticket = app.ticket(&id);
        assert_eq!(
            (&ticket["status"], &ticket["orderId"], &ticket["userId"]),
            (&json!("reserved"), &json!("o2"), &json!(BOB))
        );
        assert_eq!(ticket["price"], 20.5, "the price the order was placed at");
        assert_eq!(withdraw(&app, BOB, &id).status, 400);
    }

    #[test]
    fn a_resold_tickets_face_value_and_cap_carry_over_to_the_next_resale() {
        let app = TestApp::new();
        let id = sold_to_bob(&app);
        resell(&app, BOB, &id, json!(24));
        done(app.deliver(order_created("o2", &id)));
        done(app.deliver(OrderCompleted {
            id: "o2".to_owned(),
            user_id: CAROL.to_owned(),
            version: 1,
            ticket: TicketRef {
                id: id.clone(),
                price_cents: 2400,
            },
        }));
        let sold = app.ticket(&id);
        assert_eq!(
            (&sold["status"], &sold["userId"]),
            (&json!("sold"), &json!(BOB))
        );
        assert_eq!(
            resell(&app, BOB, &id, json!(20)).status,
            401,
            "no longer the holder"
        );
        let above = resell(&app, CAROL, &id, json!(24.61));
        assert_eq!(errors(&above)[0]["field"], "price", "{}", text(&above));
        let listed = json(&resell(&app, CAROL, &id, json!(24.6)));
        assert_eq!(
            (&listed["faceValue"], &listed["listing"]),
            (&json!(20.5), &json!(3))
        );
    }

    #[test]
    fn a_resale_listing_keeps_its_title_and_its_cap_when_edited() {
        let app = TestApp::new();
        let id = sold_to_bob(&app);
        resell(&app, BOB, &id, json!(22));
        let renamed = app.put_ticket(Some(BOB), &id, &json!({"title": "Better", "price": 22}));
        assert_eq!(errors(&renamed)[0]["field"], "title", "{}", text(&renamed));
        let dearer = app.put_ticket(Some(BOB), &id, &json!({"title": "Concert", "price": 30}));
        assert_eq!(errors(&dearer)[0]["field"], "price", "{}", text(&dearer));
        let cheaper = app.put_ticket(Some(BOB), &id, &json!({"title": "Concert", "price": 19}));
        assert_eq!(cheaper.status, 200, "{}", text(&cheaper));
        assert_eq!(
            json(&cheaper)["faceValue"],
            20.5,
            "a resale's price is not the face value"
        );
    }

    #[test]
    fn a_check_in_ends_a_resale_listing_and_every_later_one() {
        let app = TestApp::new();
        let id = sold_to_bob(&app);
        resell(&app, BOB, &id, json!(22));
        let checked_in = PassCheckedIn {
            ticket_id: id.clone(),
            generation: 1,
            at: "2026-11-25T20:00:00.000Z".to_owned(),
        };
        done(app.deliver(checked_in.clone()));
        let ticket = app.ticket(&id);
        assert_eq!(
            (&ticket["status"], &ticket["userId"]),
            (&json!("sold"), &json!(ALICE))
        );
        let refused = resell(&app, BOB, &id, json!(20));
        assert_eq!(refused.status, 400);
        assert_eq!(
            errors(&refused),
            json!([{ "message": "This ticket was checked in at the door and cannot be resold" }])
        );
        let events = app.outbox().len();
        done(app.deliver(PassCheckedIn {
            at: "2026-11-25T21:00:00.000Z".to_owned(),
            ..checked_in
        }));
        assert_eq!(
            app.outbox().len(),
            events,
            "a second check-in changes nothing"
        );
    }
}
