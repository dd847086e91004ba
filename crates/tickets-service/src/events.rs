//! The tickets service's consumer of order and pass events: an order reserves its ticket, a
//! cancelled order releases it, a completed order sells it to its buyer, who holds it from then
//! on; a pass checked in at the door ends the ticket's resale for good.
//!
//! Each event is applied at most once and in the order's version order: the order's version is
//! checked against the one recorded for it (`check_replica_version`), and recorded again in the
//! same transaction as the change. An event that arrives before its predecessor waits
//! ([`Applied::NotYet`]); a duplicate changes nothing.
//!
//! Every change to a ticket bumps its version and puts `ticket:updated` in the outbox, so the
//! orders service's replica sees every version.

use anyhow::Context;
use delivery::{Applied, Handler, VersionCheck, check_replica_version, record_replica_version};
use domain::TicketId;
use events::{Envelope, Event};
use storage::Database;

use crate::store;
use crate::ticket::{Ticket, TicketStatus};

/// The aggregate name order versions are recorded under.
const ORDER: &str = "order";

/// The tickets service's [`Handler`] of order events. Other subjects are acknowledged and
/// ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicketsEvents;

/// What an order event asks of its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action<'a> {
    /// By an order with this place in the order orders were placed in (none in old events),
    /// at this price.
    Reserve {
        placed_seq: Option<u64>,
        price_cents: u64,
    },
    Release,
    /// To this buyer.
    Sell {
        buyer_id: &'a str,
    },
}

impl Handler for TicketsEvents {
    fn apply(
        &self,
        tx: &dyn Database,
        _envelope: &Envelope,
        event: &Event,
        now_ms: u64,
    ) -> anyhow::Result<Applied> {
        let (action, order_id, version, ticket_id) = match event {
            Event::PassCheckedIn(checked_in) => return check_in(tx, checked_in, now_ms),
            Event::OrderCreated(order) => (
                Action::Reserve {
                    placed_seq: order.placed_seq,
                    price_cents: order.ticket.price_cents,
                },
                &order.id,
                order.version,
                &order.ticket.id,
            ),
            Event::OrderCancelled(order) => {
                (Action::Release, &order.id, order.version, &order.ticket.id)
            }
            Event::OrderCompleted(order) => (
                Action::Sell {
                    buyer_id: &order.user_id,
                },
                &order.id,
                order.version,
                &order.ticket.id,
            ),
            _ => return Ok(Applied::Done),
        };
        match check_replica_version(tx, ORDER, order_id, version)
            .with_context(|| format!("checking the version of order {order_id}"))?
        {
            VersionCheck::Apply => {}
            VersionCheck::AlreadyApplied => return Ok(Applied::Done),
            VersionCheck::NotYet { have } => {
                let have = have.map_or_else(|| "none".to_owned(), |have| have.to_string());
                return Ok(Applied::NotYet(format!(
                    "order {order_id} is at version {have}, this event is version {version}"
                )));
            }
        }
        let ticket_id = TicketId::parse(ticket_id)
            .with_context(|| format!("order {order_id} names ticket {ticket_id:?}"))?;
        let ticket = store::find(tx, &ticket_id)?
            .with_context(|| format!("ticket {ticket_id} of order {order_id} does not exist"))?;
        let last_placed = store::last_order_placed(tx, &ticket_id)?;
        // Only a sold ticket can be a withdrawn resale; its last sale is read for that alone.
        let withdrawn = ticket.status == TicketStatus::Sold
            && crate::resale::is_withdrawn(&ticket, &store::sale(tx, &ticket_id)?);
        let changed = match change(action, &ticket, last_placed, order_id, withdrawn) {
            Change::To(holder, status) => Some(store::set_holder(tx, &ticket_id, holder, status)?),
            Change::ReserveWithdrawn { price_cents } => Some(store::reserve_withdrawn(
                tx,
                &ticket_id,
                order_id,
                price_cents,
            )?),
            Change::None => None,
            Change::WaitForHolder => {
                return Ok(Applied::NotYet(format!(
                    "order {order_id} wants to {} ticket {ticket_id}, which is {} for order {}",
                    action.verb(),
                    ticket.status.as_str(),
                    ticket.order_id.as_deref().unwrap_or("none"),
                )));
            }
        };
        if let Some(changed) = changed {
            record_change(tx, action, &changed, now_ms)?;
        }
        record_replica_version(tx, ORDER, order_id, version)
            .with_context(|| format!("recording version {version} of order {order_id}"))?;
        Ok(Applied::Done)
    }
}

/// What goes with a change `action` made to a ticket: the placement of the order that reserved
/// it, or the buyer that bought it; and the new version's event.
fn record_change(
    tx: &dyn Database,
    action: Action<'_>,
    changed: &Ticket,
    now_ms: u64,
) -> anyhow::Result<()> {
    match action {
        Action::Reserve {
            placed_seq: Some(placed),
            ..
        } => store::record_order_placed(tx, &changed.id, placed)?,
        Action::Sell { buyer_id } => store::record_sale(tx, &changed.id, buyer_id)?,
        Action::Reserve { .. } | Action::Release => {}
    }
    store::enqueue(tx, &changed.updated_event(), now_ms)
}

impl Action<'_> {
    fn verb(self) -> &'static str {
        match self {
            Action::Reserve { .. } => "reserve",
            Action::Release => "release",
            Action::Sell { .. } => "buy",
        }
    }
}

/// The ticket's pass was checked in: it can never be resold, and a resale listing that is still
/// for sale ends. One an order already holds goes on to its sale: the buyer has been told the
/// ticket is theirs to pay for.
fn check_in(
    tx: &dyn Database,
    checked_in: &events::PassCheckedIn,
    now_ms: u64,
) -> anyhow::Result<Applied> {
    let ticket_id = TicketId::parse(&checked_in.ticket_id)
        .with_context(|| format!("a check-in names ticket {:?}", checked_in.ticket_id))?;
    let ticket = store::find(tx, &ticket_id)?
        .with_context(|| format!("checked-in ticket {ticket_id} does not exist"))?;
    let at_ms = domain::parse_rfc3339_millis(&checked_in.at).unwrap_or(now_ms);
    store::record_check_in(tx, &ticket_id, at_ms)?;
    let sale = store::sale(tx, &ticket_id)?;
    if ticket.status == TicketStatus::Available && crate::resale::is_listed_again(&ticket, &sale) {
        let withdrawn = store::withdraw(tx, &ticket_id)?;
        store::enqueue(tx, &withdrawn.updated_event(), now_ms)?;
    }
    Ok(Applied::Done)
}

/// What an order event does to its ticket.
#[derive(Debug, PartialEq, Eq)]
enum Change<'a> {
    /// The ticket gets this holder and status.
    To(Option<&'a str>, TicketStatus),
    /// The ticket stays as it is: the event was applied already, releases a hold this order does
    /// not have, or reserves for an order that ended before a later one reserved the ticket.
    None,
    /// Another order holds the ticket (or this order's hold was never applied): wait until its
    /// release arrives.
    WaitForHolder,
    /// The holder withdrew the resale listing this order was placed in, after it was placed:
    /// the order stands, and the listing with it, at the price the order was placed at.
    ReserveWithdrawn { price_cents: u64 },
}

/// What `action` by order `order_id` does to `ticket`, which was last reserved by the order
/// placed `last_placed`-th (none known yet).
///
/// Stream order is not commit order across two orders of one ticket (two relays take different
/// outbox rows, and a lease outlives a dead relay), so B's `order:created` can arrive before the
/// cancellation of the order A it followed, and A's `order:created` after B's. The orders
/// service keeps at most one open order per ticket, so an order placed later than the holder
/// must wait for the holder's release, and one placed earlier than the last order that
/// reserved the ticket had ended before that one was placed: its reservation is stale.
///
/// A ticket whose resale listing was `withdrawn` is sold; a fresh reservation of it was placed
/// while that listing stood (orders sells each listing once, so no other order could), and it
/// stands.
fn change<'a>(
    action: Action<'_>,
    ticket: &Ticket,
    last_placed: Option<u64>,
    order_id: &'a str,
    withdrawn: bool,
) -> Change<'a> {
    let held_by_this_order = ticket.order_id.as_deref() == Some(order_id);
    match (action, ticket.status) {
        (
            Action::Reserve {
                placed_seq: Some(placed),
                ..
            },
            _,
        ) if last_placed.is_some_and(|last| placed < last) => Change::None,
        (Action::Reserve { .. }, TicketStatus::Available) => {
            Change::To(Some(order_id), TicketStatus::Reserved)
        }
        (Action::Reserve { price_cents, .. }, TicketStatus::Sold) if withdrawn => {
            Change::ReserveWithdrawn { price_cents }
        }
        (Action::Release, TicketStatus::Reserved) if held_by_this_order => {
            Change::To(None, TicketStatus::Available)
        }
        (Action::Sell { .. }, TicketStatus::Reserved) if held_by_this_order => {
            Change::To(Some(order_id), TicketStatus::Sold)
        }
        // Applied before: this order holds it already, or bought it.
        (Action::Reserve { .. } | Action::Sell { .. }, _) if held_by_this_order => Change::None,
        // Releasing is the holder's alone: a late cancellation of an order that no longer holds
        // the ticket (or of its own sold ticket) must leave the ticket as it is.
        (Action::Release, _) => Change::None,
        (Action::Reserve { .. } | Action::Sell { .. }, _) => Change::WaitForHolder,
    }
}

#[cfg(test)]
mod tests {
    use events::{TicketStatus as EventStatus, TicketUpdated};
    use serde_json::json;

    use super::*;
    use crate::testing::{
        ALICE, BOB, TestApp, id_of, order_cancelled, order_completed, order_created,
    };

    fn done(outcome: anyhow::Result<Applied>) {
        match outcome {
            Ok(Applied::Done) => {}
            Ok(Applied::NotYet(reason)) => panic!("expected Done, got NotYet({reason})"),
            Err(error) => panic!("expected Done, got {error:#}"),
        }
    }

    /// The `ticket:updated` events in the outbox, oldest first.
    fn updates(app: &TestApp) -> Vec<TicketUpdated> {
        app.enqueued()
            .into_iter()
            .filter_map(|event| match event {
                Event::TicketUpdated(updated) => Some(updated),
                _ => None,
            })
            .collect()
    }

    fn listed(app: &TestApp, id: &str) -> bool {
        let list = crate::testing::json(&app.get("/api/tickets"));
        list.as_array()
            .expect("an array")
            .iter()
            .any(|ticket| ticket["id"] == json!(id))
    }

    #[test]
    fn an_order_reserves_an_available_ticket_and_publishes_the_new_version() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 20.5));
        done(app.deliver(order_created("o1", &id)));
        let ticket = app.ticket(&id);
        assert_eq!(ticket["status"], json!("reserved"));
        assert_eq!(ticket["orderId"], json!("o1"));
        assert_eq!(ticket["version"], json!(1));
        assert!(!listed(&app, &id));
        assert_eq!(
            updates(&app),
            [TicketUpdated {
                id: id.clone(),
                title: "Concert".to_owned(),
                price_cents: 2050,
                user_id: ALICE.to_owned(),
                version: 1,
                order_id: Some("o1".to_owned()),
                status: EventStatus::Reserved,
                listing: Some(1),
            }]
        );
    }

    #[test]
    fn a_duplicate_order_created_changes_nothing() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        done(app.deliver(order_created("o1", &id)));
        let after_first = app.ticket(&id);
        done(app.deliver(order_created("o1", &id)));
        assert_eq!(app.ticket(&id), after_first);
        assert_eq!(updates(&app).len(), 1);
    }

    #[test]
    fn a_cancelled_order_releases_the_ticket_it_holds() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        done(app.deliver(order_created("o1", &id)));
        done(app.deliver(order_cancelled("o1", &id, 1)));
        let ticket = app.ticket(&id);
        assert_eq!(ticket["status"], json!("available"));
        assert_eq!(ticket.get("orderId"), None);
        assert_eq!(ticket["version"], json!(2));
        assert!(listed(&app, &id));
        let last = updates(&app).pop().expect("an update");
        assert_eq!(
            (last.version, last.order_id, last.status),
            (2, None, EventStatus::Available)
        );
        // For sale again: the owner may edit it, and another order may reserve it.
        let edited = app.put_ticket(Some(ALICE), &id, &json!({"title": "Concert", "price": 9}));
        assert_eq!(edited.status, 200);
        done(app.deliver(order_created("o2", &id)));
        let ticket = app.ticket(&id);
        assert_eq!(
            (ticket["orderId"].clone(), ticket["version"].clone()),
            (json!("o2"), json!(4))
        );
    }

    /// Two relays can put a ticket's orders on the stream out of commit order: order B,
    /// placed after order A was cancelled, may come before A's cancellation. B must wait for
    /// it, not be dropped, or A's release frees a ticket B holds and B's completion sells nothing.
    #[test]
    fn an_order_for_a_ticket_another_order_holds_waits_for_that_order_s_release() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        done(app.deliver(order_created("o1", &id)));
        let early = app.deliver(order_created("o2", &id));
        assert!(matches!(early, Ok(Applied::NotYet(_))), "{early:?}");
        assert_eq!(app.ticket(&id)["orderId"], json!("o1"));
        // Its completion waits too: o2's first version has not been applied.
        let completion = app.deliver(order_completed("o2", &id, 1));
        assert!(
            matches!(completion, Ok(Applied::NotYet(_))),
            "{completion:?}"
        );

        done(app.deliver(order_cancelled("o1", &id, 1)));
        assert_eq!(app.ticket(&id)["status"], json!("available"));
        done(app.deliver(order_created("o2", &id)));
        done(app.deliver(order_completed("o2", &id, 1)));
        let sold = app.ticket(&id);
        assert_eq!(
            (sold["status"].clone(), sold["orderId"].clone()),
            (json!("sold"), json!("o2"))
        );
        let versions: Vec<(u64, Option<String>, EventStatus)> = updates(&app)
            .into_iter()
            .map(|u| (u.version, u.order_id, u.status))
            .collect();
        assert_eq!(
            versions,
            [
                (1, Some("o1".to_owned()), EventStatus::Reserved),
                (2, None, EventStatus::Available),
                (3, Some("o2".to_owned()), EventStatus::Reserved),
                (4, Some("o2".to_owned()), EventStatus::Sold),
            ]
        );
    }

    /// The other way round: order o1's events arrive after o2, placed later, reserved the
    /// ticket. o1 had ended before o2 was placed, so its reservation is stale, and must not wait
    /// for a release by o2 that would never come for it.
    #[test]
    fn a_reservation_by_an_order_placed_before_the_last_one_is_stale() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        done(app.deliver(order_created("o2", &id)));
        done(app.deliver(order_created("o1", &id)));
        done(app.deliver(order_cancelled("o1", &id, 1)));
        done(app.deliver(order_completed("o2", &id, 1)));
        let sold = app.ticket(&id);
        assert_eq!(
            (
                sold["status"].clone(),
                sold["orderId"].clone(),
                sold["version"].clone()
            ),
            (json!("sold"), json!("o2"), json!(2))
        );
        // When the later order was cancelled already (o4 after o3, on another ticket), a late
        // o3 is stale all the same: the ticket stays for sale.
        let other = id_of(&app.create_ticket(ALICE, "Opera", 10.0));
        done(app.deliver(order_created("o4", &other)));
        done(app.deliver(order_cancelled("o4", &other, 1)));
        done(app.deliver(order_created("o3", &other)));
        let free = app.ticket(&other);
        assert_eq!(
            (free["status"].clone(), free["version"].clone()),
            (json!("available"), json!(2))
        );
    }

    #[test]
    fn a_completed_order_sells_its_ticket_for_good() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        done(app.deliver(order_created("o1", &id)));
        done(app.deliver(order_completed("o1", &id, 1)));
        let sold = app.ticket(&id);
        assert_eq!(sold["status"], json!("sold"));
        assert_eq!(sold["orderId"], json!("o1"));
        assert_eq!(sold["version"], json!(2));
        let last = updates(&app).pop().expect("an update");
        assert_eq!(
            (last.version, last.order_id.as_deref(), last.status),
            (2, Some("o1"), EventStatus::Sold)
        );
        assert!(!listed(&app, &id));
        // Neither a late cancellation of the same order nor a new order takes it back: the new
        // one waits for a release that never comes, and is dead-lettered in the end.
        done(app.deliver(order_cancelled("o1", &id, 2)));
        let other = app.deliver(order_created("o2", &id));
        assert!(matches!(other, Ok(Applied::NotYet(_))), "{other:?}");
        assert_eq!(app.ticket(&id), sold);
        assert_eq!(updates(&app).len(), 2);
    }

    #[test]
    fn a_sale_to_an_order_that_does_not_hold_the_ticket_waits() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        done(app.deliver(order_created("o2", &id)));
        // o1's reservation is stale, so it never held the ticket: its sale cannot apply.
        done(app.deliver(order_created("o1", &id)));
        let held = app.ticket(&id);
        let outcome = app.deliver(order_completed("o1", &id, 1));
        assert!(matches!(outcome, Ok(Applied::NotYet(_))), "{outcome:?}");
        assert_eq!(app.ticket(&id), held);
    }

    #[test]
    fn a_cancellation_that_arrives_before_its_order_waits_for_it() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        let early = app.deliver(order_cancelled("o1", &id, 1));
        assert!(matches!(early, Ok(Applied::NotYet(_))), "{early:?}");
        let untouched = app.ticket(&id);
        assert_eq!(untouched["version"], json!(0));
        assert!(updates(&app).is_empty());

        done(app.deliver(order_created("o1", &id)));
        assert_eq!(app.ticket(&id)["status"], json!("reserved"));
        done(app.deliver(order_cancelled("o1", &id, 1)));
        let released = app.ticket(&id);
        assert_eq!(released["status"], json!("available"));
        assert_eq!(released["version"], json!(2));
        let versions: Vec<u64> = updates(&app).iter().map(|u| u.version).collect();
        assert_eq!(versions, [1, 2]);
    }

    #[test]
    fn a_later_order_version_waits_for_the_one_before_it() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        done(app.deliver(order_created("o1", &id)));
        let skipped = app.deliver(order_completed("o1", &id, 2));
        assert!(matches!(skipped, Ok(Applied::NotYet(_))), "{skipped:?}");
        assert_eq!(app.ticket(&id)["status"], json!("reserved"));
    }

    #[test]
    fn an_order_for_a_ticket_that_does_not_exist_fails_and_records_nothing() {
        let app = TestApp::new();
        for ticket_id in ["3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f", "not-an-id"] {
            let outcome = app.deliver(order_created("o1", ticket_id));
            assert!(outcome.is_err(), "{ticket_id}: {outcome:?}");
        }
        // Nothing was recorded for the order, so once the ticket exists its events apply.
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        done(app.deliver(order_created("o1", &id)));
        assert_eq!(app.ticket(&id)["orderId"], json!("o1"));
    }

    #[test]
    fn events_of_other_subjects_are_acknowledged_and_ignored() {
        let app = TestApp::new();
        let ticket = app.create_ticket(ALICE, "Concert", 10.0);
        let id = id_of(&ticket);
        done(app.deliver(events::TicketCreated {
            id: id.clone(),
            title: "Other".to_owned(),
            price_cents: 1,
            user_id: BOB.to_owned(),
            version: 0,
        }));
        done(app.deliver(events::ExpirationComplete {
            order_id: "o1".to_owned(),
        }));
        assert_eq!(app.ticket(&id), ticket);
        assert_eq!(app.outbox().len(), 1);
    }

    #[test]
    fn every_outbox_row_is_an_envelope_with_its_subject_and_version() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        done(app.deliver(order_created("o1", &id)));
        done(app.deliver(order_cancelled("o1", &id, 1)));
        let edited = app.put_ticket(Some(ALICE), &id, &json!({"title": "Gig", "price": 11}));
        assert_eq!(edited.status, 200);
        let summary: Vec<(String, u64)> = app
            .outbox()
            .iter()
            .map(|envelope| {
                let version = match envelope.decode().expect("decodes") {
                    Event::TicketCreated(created) => created.version,
                    Event::TicketUpdated(updated) => updated.version,
                    other => panic!("unexpected event {other:?}"),
                };
                (envelope.subject.clone(), version)
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("ticket:created".to_owned(), 0),
                ("ticket:updated".to_owned(), 1),
                ("ticket:updated".to_owned(), 2),
                ("ticket:updated".to_owned(), 3),
            ]
        );
    }
}
