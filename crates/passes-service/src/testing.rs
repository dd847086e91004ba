//! A passes service on a real SQLite file with the real migration, fed events as its consumer
//! is, for the unit tests.

use delivery::Applied;
use domain::Clock;
use domain::testing::FixedClock;
use events::{Event, OrderCompleted, TicketCreated, TicketRef, TicketUpdated};
use passes::PassSigner;
use storage::NativeDatabase;
use storage::testing::TempDatabase;

use crate::{CurrentPass, MIGRATIONS, PassesEvents};

/// 2026-11-25T03:04:05.678Z.
pub(crate) const NOW_MS: u64 = 1_795_575_845_678;
pub(crate) const TICKET: &str = "3f2c7d1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f";
pub(crate) const SELLER: &str = "6f1c2a9e-3b7d-4c8e-9a0b-1d2e3f4a5b6c";
pub(crate) const BUYER: &str = "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a";
pub(crate) const NEXT_BUYER: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

pub(crate) struct TestApp {
    pub(crate) file: TempDatabase,
    pub(crate) db: NativeDatabase,
    pub(crate) clock: FixedClock,
    pub(crate) signer: PassSigner,
}

impl TestApp {
    pub(crate) fn new() -> TestApp {
        let file = TempDatabase::migrated("passes.sqlite", MIGRATIONS);
        TestApp {
            db: file.open(),
            file,
            clock: FixedClock::at(NOW_MS),
            signer: PassSigner::from_seed(&[3; 32]),
        }
    }

    pub(crate) fn deliver(&self, event: impl Into<Event>) -> Applied {
        delivery::testing::deliver(
            &self.db,
            "passes",
            &PassesEvents,
            event,
            self.clock.now_ms(),
        )
        .expect("the event applies or waits")
    }

    /// The ticket listed by [`SELLER`], as `ticket:created` says.
    pub(crate) fn list(&self) {
        let applied = self.deliver(TicketCreated {
            id: TICKET.into(),
            title: "Concert".into(),
            price_cents: 2050,
            user_id: SELLER.into(),
            version: 0,
        });
        assert_eq!(applied, Applied::Done);
    }

    pub(crate) fn updated(&self, title: &str, seller: &str, version: u64) -> TicketUpdated {
        TicketUpdated {
            id: TICKET.into(),
            title: title.into(),
            price_cents: 2050,
            user_id: seller.into(),
            version,
            order_id: None,
            status: events::TicketStatus::Available,
        }
    }

    /// Order `order_id` of `buyer` completed, as `order:completed` says.
    pub(crate) fn sell(&self, order_id: &str, buyer: &str) {
        let applied = self.deliver(OrderCompleted {
            id: order_id.into(),
            user_id: buyer.into(),
            version: 1,
            ticket: TicketRef {
                id: TICKET.into(),
                price_cents: 2050,
            },
        });
        assert_eq!(applied, Applied::Done);
    }

    pub(crate) fn pass(&self) -> CurrentPass {
        crate::current_pass(&self.db, TICKET)
            .expect("read the pass")
            .expect("a pass")
    }

    /// The secret of the ticket's current pass.
    pub(crate) fn secret(&self) -> String {
        self.signer
            .sign(&self.pass().pass().expect("a pass to sign"))
    }
}
