//! The passes service's consumer of ticket and order events.
//!
//! Ticket events keep a replica of each ticket's title, in version order; the first one names
//! the ticket's issuer, its first seller, for good. `order:completed` makes the order's buyer the
//! ticket's holder: the first sale issues generation 1; a later sale of the same ticket (a
//! resale) issues the next generation, which revokes the one before, and a repeated event of the
//! same order changes nothing.

use delivery::{Applied, Handler, VersionCheck, check_replica_version, record_replica_version};
use events::{Envelope, Event};
use storage::Database;

use crate::store;

/// The aggregate name ticket versions are recorded under.
const TICKET: &str = "ticket";

/// The passes service's [`Handler`]. Other subjects are acknowledged and ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassesEvents;

impl Handler for PassesEvents {
    fn apply(
        &self,
        tx: &dyn Database,
        _envelope: &Envelope,
        event: &Event,
        now_ms: u64,
    ) -> anyhow::Result<Applied> {
        match event {
            Event::TicketCreated(ticket) => replicate(
                tx,
                &ticket.id,
                &ticket.title,
                &ticket.user_id,
                ticket.version,
            ),
            Event::TicketUpdated(ticket) => replicate(
                tx,
                &ticket.id,
                &ticket.title,
                &ticket.user_id,
                ticket.version,
            ),
            Event::OrderCompleted(order) => {
                sell(tx, &order.ticket.id, &order.user_id, &order.id, now_ms)
            }
            _ => Ok(Applied::Done),
        }
    }
}

/// Applies version `version` of a ticket; `seller_id` becomes its issuer only with the first.
fn replicate(
    tx: &dyn Database,
    id: &str,
    title: &str,
    seller_id: &str,
    version: u64,
) -> anyhow::Result<Applied> {
    match check_replica_version(tx, TICKET, id, version)? {
        VersionCheck::AlreadyApplied => return Ok(Applied::Done),
        VersionCheck::NotYet { have } => {
            return Ok(Applied::NotYet(format!(
                "ticket {id} is at {have:?}, this event is version {version}"
            )));
        }
        VersionCheck::Apply => {}
    }
    store::save_ticket(tx, id, title, seller_id, version)?;
    record_replica_version(tx, TICKET, id, version)?;
    Ok(Applied::Done)
}

/// Order `order_id` bought the ticket: its buyer holds the ticket's next pass.
fn sell(
    tx: &dyn Database,
    ticket_id: &str,
    buyer_id: &str,
    order_id: &str,
    now_ms: u64,
) -> anyhow::Result<Applied> {
    let generation = match store::pass_holder(tx, ticket_id)? {
        Some((holder_order, _)) if holder_order == order_id => return Ok(Applied::Done),
        Some((_, generation)) => generation + 1,
        None => 1,
    };
    let seed = *uuid::Uuid::new_v4().as_bytes();
    store::issue(tx, ticket_id, buyer_id, order_id, generation, &seed, now_ms)?;
    Ok(Applied::Done)
}

#[cfg(test)]
mod tests {
    use delivery::Applied;

    use crate::testing::{BUYER, NEXT_BUYER, SELLER, TICKET, TestApp};

    #[test]
    fn a_first_sale_gives_the_buyer_a_pass_of_generation_one() {
        let app = TestApp::new();
        app.list();
        app.sell("o1", BUYER);
        let pass = app.pass();
        assert_eq!((pass.holder_id.as_str(), pass.generation), (BUYER, 1));
        assert_eq!(
            (pass.title.as_str(), pass.issuer_id.as_str()),
            ("Concert", SELLER)
        );
        assert!(crate::revocations(&app.db, 0, 10).expect("list").is_empty());
    }

    #[test]
    fn a_resale_issues_the_next_generation_and_revokes_the_one_before() {
        let app = TestApp::new();
        app.list();
        app.sell("o1", BUYER);
        let first = app.pass();
        app.sell("o2", NEXT_BUYER);
        let second = app.pass();
        assert_eq!(
            (second.holder_id.as_str(), second.generation),
            (NEXT_BUYER, 2)
        );
        assert_ne!(first.seed, second.seed);
        let revoked = crate::revocations(&app.db, 0, 10).expect("list");
        assert_eq!(revoked.len(), 1);
        assert_eq!((revoked[0].1.as_str(), revoked[0].2), (TICKET, 1));
        assert!(
            crate::revocations(&app.db, revoked[0].0, 10)
                .expect("list")
                .is_empty()
        );
    }

    #[test]
    fn a_repeated_sale_event_changes_nothing() {
        let app = TestApp::new();
        app.list();
        app.sell("o1", BUYER);
        let pass = app.pass();
        app.sell("o1", BUYER);
        assert_eq!(app.pass(), pass);
    }

    #[test]
    fn the_issuer_is_the_first_seller_whatever_later_versions_say() {
        let app = TestApp::new();
        app.list();
        let renamed = app.updated("Concert, moved to Friday", NEXT_BUYER, 1);
        assert_eq!(app.deliver(renamed), Applied::Done);
        app.sell("o1", BUYER);
        let pass = app.pass();
        assert_eq!(pass.title, "Concert, moved to Friday");
        assert_eq!(pass.issuer_id, SELLER);
    }

    #[test]
    fn a_ticket_version_waits_for_the_one_before() {
        let app = TestApp::new();
        let early = app.updated("Concert", SELLER, 1);
        assert!(matches!(app.deliver(early), Applied::NotYet(_)));
    }
}
