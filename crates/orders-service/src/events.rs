//! The orders service's consumer: it keeps the tickets replica (`ticket:created`,
//! `ticket:updated`), cancels orders not paid in time (`payment:expired`) and completes paid ones
//! (`payment:created`).
//!
//! Whether an order was paid in time is decided by the payments service, on Stripe's clock: a
//! payment that succeeded before `expiresAt` wins however late its news comes, one after it is
//! refunded, and only then does payments say `payment:expired`. (The expiration timer's
//! `expiration:complete` goes to payments, not here: cancelling on it would cancel an order whose
//! payment succeeded in time but whose `payment:created` was still on its way.) This consumer
//! applies the same rule to `payment:created`'s `paidAt`.
//!
//! Ticket events are applied in version order: the replica row's version is compared with the
//! event's ([`VersionCheck::of`]) and an event whose predecessor is missing waits
//! ([`Applied::NotYet`]). Payment events carry no version; they are guarded by the
//! order's state instead, so a late or repeated one changes nothing. Every change to an order
//! bumps its version and puts its event in the outbox in the same transaction.

use anyhow::Context;
use delivery::{Applied, Handler, VersionCheck};
use domain::{OrderId, Price, TicketId, Title, Version, parse_rfc3339_millis};
use events::{Envelope, Event, PaymentCreated, TicketStatus};
use storage::Database;

use crate::order::{OrderStatus, Ticket, is_open};
use crate::store::{self, Listing};

/// The orders service's [`Handler`]. Subjects it does not consume are acknowledged and ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrdersEvents;

impl Handler for OrdersEvents {
    fn apply(
        &self,
        tx: &dyn Database,
        _envelope: &Envelope,
        event: &Event,
        now_ms: u64,
    ) -> anyhow::Result<Applied> {
        match event {
            Event::TicketCreated(created) => replicate(
                tx,
                &created.id,
                &created.title,
                created.price_cents,
                &created.user_id,
                created.version,
                Listing {
                    number: 1,
                    sold: false,
                },
            ),
            Event::TicketUpdated(updated) => replicate(
                tx,
                &updated.id,
                &updated.title,
                updated.price_cents,
                &updated.user_id,
                updated.version,
                Listing {
                    number: updated.listing.unwrap_or(1),
                    sold: updated.status == TicketStatus::Sold,
                },
            ),
            Event::PaymentExpired(expired) => {
                close(tx, &expired.order_id, OrderStatus::Cancelled, now_ms)
            }
            Event::PaymentCreated(paid) => complete(tx, paid, now_ms),
            _ => Ok(Applied::Done),
        }
    }
}

/// Applies one version of a ticket to the replica, if it is the next one.
#[allow(
    clippy::too_many_arguments,
    reason = "the fields of the two ticket events"
)]
fn replicate(
    tx: &dyn Database,
    id: &str,
    title: &str,
    price_cents: u64,
    user_id: &str,
    version: u64,
    listing: Listing,
) -> anyhow::Result<Applied> {
    let ticket = Ticket {
        id: TicketId::parse(id).with_context(|| format!("ticket id {id:?}"))?,
        title: Title::parse(title).with_context(|| format!("title of ticket {id}"))?,
        price: Price::from_cents(price_cents)
            .with_context(|| format!("price {price_cents} of ticket {id}"))?,
        user_id: user_id.to_owned(),
        version: Version::new(version),
    };
    let have = store::ticket(tx, &ticket.id)?.map(|stored| stored.version.value());
    match VersionCheck::of(have, version) {
        VersionCheck::Apply => {
            store::save_ticket(tx, &ticket, listing)?;
            Ok(Applied::Done)
        }
        VersionCheck::AlreadyApplied => Ok(Applied::Done),
        VersionCheck::NotYet { have } => Ok(Applied::NotYet(format!(
            "ticket {id} is at version {}, this event is version {version}",
            have.map_or_else(|| "none".to_owned(), |have| have.to_string())
        ))),
    }
}

/// Completes the order `paid` is for, if the payment succeeded before the order expired (an event
/// from before `paidAt` existed is taken as in time, as it was then). The payments service
/// publishes no other, so a late one is a fault to log, not a completion.
fn complete(tx: &dyn Database, paid: &PaymentCreated, now_ms: u64) -> anyhow::Result<Applied> {
    if let Some(paid_at) = &paid.paid_at {
        let paid_at_ms = parse_rfc3339_millis(paid_at)
            .with_context(|| format!("paidAt {paid_at:?} of payment {}", paid.id))?;
        let id = OrderId::parse(&paid.order_id)
            .with_context(|| format!("order id {:?}", paid.order_id))?;
        let order = store::find_order(tx, &id)?
            .with_context(|| format!("order {} does not exist", paid.order_id))?;
        if paid_at_ms >= order.expires_at_ms {
            log_line::warn(
                "orders",
                &format!(
                    "payment {} for order {} succeeded at {paid_at}, after the order expired: \
                     not completing it",
                    paid.id, paid.order_id
                ),
            );
            return Ok(Applied::Done);
        }
    }
    close(tx, &paid.order_id, OrderStatus::Complete, now_ms)
}

/// Moves an open order to `outcome` (cancelled on expiry, complete on payment) and enqueues
/// the matching event; an order that is already cancelled or complete stays as it is, so a late
/// expiry of a paid order, or a payment for an expired one, changes nothing here. (The payments
/// service refunds a payment whose order was cancelled first.)
fn close(
    tx: &dyn Database,
    order_id: &str,
    outcome: OrderStatus,
    now_ms: u64,
) -> anyhow::Result<Applied> {
    let id = OrderId::parse(order_id).with_context(|| format!("order id {order_id:?}"))?;
    let order =
        store::find_order(tx, &id)?.with_context(|| format!("order {order_id} does not exist"))?;
    if !is_open(order.status) {
        if order.status != outcome {
            log_line::warn(
                "orders",
                &format!(
                    "order {order_id} is {}; not making it {}",
                    order.status.as_str(),
                    outcome.as_str()
                ),
            );
        }
        return Ok(Applied::Done);
    }
    let closed = store::set_status(tx, &id, outcome)?;
    let event = match outcome {
        OrderStatus::Complete => closed.completed_event(),
        _ => closed.cancelled_event(),
    };
    store::enqueue(tx, &event, now_ms)?;
    Ok(Applied::Done)
}

#[cfg(test)]
mod tests {
    use events::{PaymentExpired, TicketCreated, TicketUpdated};
    use serde_json::json;

    use super::*;
    use crate::testing::{ALICE, BOB, CAROL, NOW_MS, TestApp, WINDOW_MS, json, text};

    fn done(outcome: anyhow::Result<Applied>) {
        match outcome {
            Ok(Applied::Done) => {}
            Ok(Applied::NotYet(reason)) => panic!("expected Done, got NotYet({reason})"),
            Err(error) => panic!("expected Done, got {error:#}"),
        }
    }

    const TICKET: &str = "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f";

    fn updated(version: u64, title: &str, price_cents: u64) -> TicketUpdated {
        TicketUpdated {
            id: TICKET.to_owned(),
            title: title.to_owned(),
            price_cents,
            user_id: ALICE.to_owned(),
            version,
            order_id: None,
            status: events::TicketStatus::Available,
            listing: None,
        }
    }

    fn replica(app: &TestApp) -> Option<Ticket> {
        store::ticket(&app.db, &TicketId::parse(TICKET).expect("valid")).expect("lookup")
    }

    fn expired(order_id: &str) -> PaymentExpired {
        PaymentExpired {
            order_id: order_id.to_owned(),
        }
    }

    fn paid(order_id: &str) -> PaymentCreated {
        paid_at(order_id, NOW_MS + WINDOW_MS - 1)
    }

    fn paid_at(order_id: &str, paid_at_ms: u64) -> PaymentCreated {
        PaymentCreated {
            id: "6b4f2ab8-9273-4e30-b586-b3a292f8f767".to_owned(),
            order_id: order_id.to_owned(),
            stripe_id: "pi_123".to_owned(),
            paid_at: Some(domain::rfc3339_millis(paid_at_ms)),
        }
    }

    /// The subjects and versions of the order events in the outbox, oldest first.
    fn order_events(app: &TestApp) -> Vec<(&'static str, u64)> {
        app.enqueued()
            .into_iter()
            .filter_map(|event| match &event {
                Event::OrderCreated(e) => Some((event.subject(), e.version)),
                Event::OrderCancelled(e) => Some((event.subject(), e.version)),
                Event::OrderCompleted(e) => Some((event.subject(), e.version)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_created_ticket_enters_the_replica_at_its_version() {
        let app = TestApp::new();
        done(app.deliver(TicketCreated {
            id: TICKET.to_owned(),
            title: "Concert".to_owned(),
            price_cents: 2050,
            user_id: ALICE.to_owned(),
            version: 0,
        }));
        let ticket = replica(&app).expect("replicated");
        assert_eq!(
            (
                ticket.title.as_str(),
                ticket.price.cents(),
                ticket.version.value()
            ),
            ("Concert", 2050, 0)
        );
        assert_eq!(ticket.user_id, ALICE);
    }

    #[test]
    fn updates_apply_in_version_order_and_a_duplicate_changes_nothing() {
        let app = TestApp::new();
        app.replicate_ticket(TICKET, ALICE, "Concert", 2050);
        let early = app.deliver(updated(2, "Concert, row 2", 3000));
        assert!(matches!(early, Ok(Applied::NotYet(_))), "{early:?}");
        assert_eq!(replica(&app).expect("replica").version.value(), 0);
        done(app.deliver(updated(1, "Concert, row 1", 2500)));
        done(app.deliver(updated(2, "Concert, row 2", 3000)));
        done(app.deliver(updated(1, "Concert, row 1", 2500)));
        let ticket = replica(&app).expect("replica");
        assert_eq!(
            (
                ticket.title.as_str(),
                ticket.price.cents(),
                ticket.version.value()
            ),
            ("Concert, row 2", 3000, 2)
        );
    }

    #[test]
    fn an_update_for_a_ticket_the_replica_lacks_waits_for_its_creation() {
        let app = TestApp::new();
        let outcome = app.deliver(updated(1, "Concert", 2050));
        assert!(matches!(outcome, Ok(Applied::NotYet(_))), "{outcome:?}");
        assert!(replica(&app).is_none());
    }

    #[test]
    fn ticket_events_that_break_the_rules_fail_and_change_nothing() {
        let app = TestApp::new();
        for (id, title, price) in [
            ("not-an-id", "Concert", 100),
            (TICKET, "  ", 100),
            (TICKET, "Concert", 0),
        ] {
            let outcome = app.deliver(TicketCreated {
                id: id.to_owned(),
                title: title.to_owned(),
                price_cents: price,
                user_id: ALICE.to_owned(),
                version: 0,
            });
            assert!(outcome.is_err(), "{id} {title:?} {price}: {outcome:?}");
        }
        assert!(replica(&app).is_none());
    }

    #[test]
    fn an_expired_payment_window_cancels_an_open_order_and_publishes_order_cancelled() {
        let app = TestApp::new();
        let ticket = app.replicate_ticket(TICKET, ALICE, "Concert", 2050);
        let order = app.place(BOB, &ticket);
        done(app.deliver(expired(&order)));
        let shown = json(&app.get_order(BOB, &order));
        assert_eq!(shown["status"], json!("cancelled"));
        assert_eq!(shown["version"], json!(1));
        assert_eq!(
            order_events(&app),
            [("order:created", 0), ("order:cancelled", 1)]
        );
        // The ticket is free again: someone else may order it.
        let again = app.post_order(Some(CAROL), &ticket);
        assert_eq!(again.status, 201, "{}", text(&again));
    }

    /// The rule payments decides by, applied here too: a payment that succeeded at or after
    /// `expiresAt` does not complete the order, one from just before does, and one recorded
    /// before `paidAt` existed is taken as in time.
    #[test]
    fn a_payment_completes_its_order_only_if_it_succeeded_before_the_order_expired() {
        let app = TestApp::new();
        let ticket = app.replicate_ticket(TICKET, ALICE, "Concert", 2050);
        let other =
            app.replicate_ticket("7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", ALICE, "Opera", 3000);
        let third = app.replicate_ticket(
            "8b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e",
            ALICE,
            "Ballet",
            4000,
        );
        let late = app.place(BOB, &ticket);
        let in_time = app.place(CAROL, &other);
        let legacy = app.place(BOB, &third);
        done(app.deliver(paid_at(&late, NOW_MS + WINDOW_MS)));
        done(app.deliver(paid_at(&in_time, NOW_MS + WINDOW_MS - 1)));
        done(app.deliver(PaymentCreated {
            paid_at: None,
            ..paid(&legacy)
        }));
        assert_eq!(json(&app.get_order(BOB, &late))["status"], json!("created"));
        assert_eq!(
            json(&app.get_order(CAROL, &in_time))["status"],
            json!("complete")
        );
        assert_eq!(
            json(&app.get_order(BOB, &legacy))["status"],
            json!("complete")
        );
        assert!(app.deliver(paid_at(&late, 0)).is_ok());
        let bad = PaymentCreated {
            paid_at: Some("yesterday".to_owned()),
            ..paid(&late)
        };
        assert!(app.deliver(bad).is_err());
    }

    #[test]
    fn a_late_or_repeated_expiry_changes_nothing() {
        let app = TestApp::new();
        let ticket = app.replicate_ticket(TICKET, ALICE, "Concert", 2050);
        let cancelled = app.place(BOB, &ticket);
        assert_eq!(app.delete_order(BOB, &cancelled).status, 204);
        done(app.deliver(expired(&cancelled)));
        done(app.deliver(expired(&cancelled)));
        let paid_order = app.place(BOB, &ticket);
        done(app.deliver(paid(&paid_order)));
        done(app.deliver(expired(&paid_order)));
        assert_eq!(
            json(&app.get_order(BOB, &paid_order))["status"],
            json!("complete")
        );
        assert_eq!(
            order_events(&app),
            [
                ("order:created", 0),
                ("order:cancelled", 1),
                ("order:created", 0),
                ("order:completed", 1),
            ]
        );
    }

    #[test]
    fn a_payment_completes_an_open_order_once() {
        let app = TestApp::new();
        let ticket = app.replicate_ticket(TICKET, ALICE, "Concert", 2050);
        let order = app.place(BOB, &ticket);
        done(app.deliver(paid(&order)));
        done(app.deliver(paid(&order)));
        let shown = json(&app.get_order(BOB, &order));
        assert_eq!(
            (shown["status"].clone(), shown["version"].clone()),
            (json!("complete"), json!(1))
        );
        assert_eq!(
            order_events(&app),
            [("order:created", 0), ("order:completed", 1)]
        );
        // A sold ticket takes no other order in the same listing.
        let other = app.post_order(Some(CAROL), &ticket);
        assert_eq!(other.status, 400, "{}", text(&other));
    }

    /// `ticket:updated` of the ticket at `version`, by `seller`, in `listing`.
    fn in_listing(version: u64, seller: &str, listing: u32, status: TicketStatus) -> TicketUpdated {
        TicketUpdated {
            user_id: seller.to_owned(),
            status,
            listing: Some(listing),
            ..updated(version, "Concert", 2400)
        }
    }

    #[test]
    fn each_listing_of_a_ticket_is_sold_once() {
        let app = TestApp::new();
        let ticket = app.replicate_ticket(TICKET, ALICE, "Concert", 2050);
        let first = app.place(BOB, &ticket);
        done(app.deliver(paid(&first)));
        // The tickets service reserves and sells it; a sold ticket takes no order.
        done(app.deliver(in_listing(1, ALICE, 1, TicketStatus::Reserved)));
        done(app.deliver(in_listing(2, ALICE, 1, TicketStatus::Sold)));
        let refused = app.post_order(Some(CAROL), &ticket);
        assert_eq!(refused.status, 400, "{}", text(&refused));
        // Its holder lists it again: one more order, in the new listing, at its price.
        done(app.deliver(in_listing(3, BOB, 2, TicketStatus::Available)));
        let own = app.post_order(Some(BOB), &ticket);
        assert_eq!(own.status, 400, "{}", text(&own));
        assert_eq!(
            json(&own)["errors"][0]["message"],
            "You cannot order your own ticket"
        );
        let second = app.place(CAROL, &ticket);
        assert_eq!(json(&app.get_order(CAROL, &second))["price"], json!(24));
        let third = app.post_order(Some(ALICE), &ticket);
        assert_eq!(third.status, 400, "{}", text(&third));
        // Withdrawn (sold again in the replica): no order until it is listed again.
        app.delete_order(CAROL, &second);
        done(app.deliver(in_listing(4, ALICE, 2, TicketStatus::Sold)));
        let withdrawn = app.post_order(Some(CAROL), &ticket);
        assert_eq!(withdrawn.status, 400, "{}", text(&withdrawn));
    }

    #[test]
    fn a_payment_for_a_cancelled_order_does_not_complete_it() {
        let app = TestApp::new();
        let ticket = app.replicate_ticket(TICKET, ALICE, "Concert", 2050);
        let order = app.place(BOB, &ticket);
        done(app.deliver(expired(&order)));
        done(app.deliver(paid(&order)));
        assert_eq!(
            json(&app.get_order(BOB, &order))["status"],
            json!("cancelled")
        );
        assert_eq!(
            order_events(&app),
            [("order:created", 0), ("order:cancelled", 1)]
        );
    }

    #[test]
    fn events_for_unknown_or_malformed_orders_fail() {
        let app = TestApp::new();
        for order_id in ["5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b", "nope"] {
            assert!(app.deliver(expired(order_id)).is_err(), "{order_id}");
            assert!(app.deliver(paid(order_id)).is_err(), "{order_id}");
        }
    }

    #[test]
    fn events_of_other_subjects_are_acknowledged_and_ignored() {
        let app = TestApp::new();
        let ticket = app.replicate_ticket(TICKET, ALICE, "Concert", 2050);
        let order = app.place(BOB, &ticket);
        let before = json(&app.get_order(BOB, &order));
        let own_event = app.enqueued().remove(0);
        done(app.deliver(own_event));
        assert_eq!(json(&app.get_order(BOB, &order)), before);
        assert_eq!(order_events(&app).len(), 1);
    }
}
