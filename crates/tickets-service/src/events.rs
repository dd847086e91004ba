//! The tickets service's consumer of order events: an order reserves its ticket, a cancelled
//! order releases it, a completed order sells it.
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
pub struct OrderEvents;

/// What an order event asks of its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Reserve,
    Release,
    Sell,
}

impl Handler for OrderEvents {
    fn apply(
        &self,
        tx: &dyn Database,
        _envelope: &Envelope,
        event: &Event,
        now_ms: u64,
    ) -> anyhow::Result<Applied> {
        let (action, order_id, version, ticket_id) = match event {
            Event::OrderCreated(order) => {
                (Action::Reserve, &order.id, order.version, &order.ticket.id)
            }
            Event::OrderCancelled(order) => {
                (Action::Release, &order.id, order.version, &order.ticket.id)
            }
            Event::OrderCompleted(order) => {
                (Action::Sell, &order.id, order.version, &order.ticket.id)
            }
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
        if let Some(change) = change(action, &ticket, order_id) {
            let (holder, status) = change;
            let changed = store::set_holder(tx, &ticket_id, holder, status)?;
            store::publish(tx, &changed.updated_event(), now_ms)?;
        }
        record_replica_version(tx, ORDER, order_id, version)
            .with_context(|| format!("recording version {version} of order {order_id}"))?;
        Ok(Applied::Done)
    }
}

/// The holder and status `action` by order `order_id` gives `ticket`, or `None` to leave it as
/// it is.
fn change<'a>(
    action: Action,
    ticket: &Ticket,
    order_id: &'a str,
) -> Option<(Option<&'a str>, TicketStatus)> {
    let held_by_this_order = ticket.order_id.as_deref() == Some(order_id);
    match (action, ticket.status) {
        (Action::Reserve, TicketStatus::Available) => {
            Some((Some(order_id), TicketStatus::Reserved))
        }
        (Action::Release, TicketStatus::Reserved) if held_by_this_order => {
            Some((None, TicketStatus::Available))
        }
        (Action::Sell, TicketStatus::Reserved) if held_by_this_order => {
            Some((Some(order_id), TicketStatus::Sold))
        }
        (Action::Reserve, _) if held_by_this_order => None,
        // Releasing a ticket another order holds (a late expiry of an order the user had already
        // cancelled, say) must leave that other order's hold alone.
        (Action::Release, _) => None,
        _ => {
            // The orders service makes sure one ticket has one live order, so this is a bug
            // there or a ticket changed by hand; keep the ticket as it is and say so.
            eprintln!(
                "WARN order {order_id} wants to {action:?} ticket {} but it is {} for order {:?}; left unchanged",
                ticket.id,
                ticket.status.as_str(),
                ticket.order_id,
            );
            None
        }
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
        app.published()
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

    #[test]
    fn cancelling_an_order_that_does_not_hold_the_ticket_leaves_the_holder_alone() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        done(app.deliver(order_created("o1", &id)));
        // The orders service should never let a second order reserve a held ticket; if one
        // does, the ticket stays with the first.
        done(app.deliver(order_created("o2", &id)));
        let held = app.ticket(&id);
        assert_eq!(
            (held["orderId"].clone(), held["version"].clone()),
            (json!("o1"), json!(1))
        );
        done(app.deliver(order_cancelled("o2", &id, 1)));
        assert_eq!(app.ticket(&id), held);
        assert_eq!(updates(&app).len(), 1);
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
        // Neither a late cancellation of the same order nor a new order takes it back.
        done(app.deliver(order_cancelled("o1", &id, 2)));
        done(app.deliver(order_created("o2", &id)));
        assert_eq!(app.ticket(&id), sold);
        assert_eq!(updates(&app).len(), 2);
    }

    #[test]
    fn a_completion_for_an_order_that_does_not_hold_the_ticket_changes_nothing() {
        let app = TestApp::new();
        let id = id_of(&app.create_ticket(ALICE, "Concert", 10.0));
        done(app.deliver(order_created("o1", &id)));
        let held = app.ticket(&id);
        done(app.deliver(order_created("o2", &id)));
        done(app.deliver(order_completed("o2", &id, 1)));
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
