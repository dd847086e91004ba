//! A passes service on a real SQLite file with the real migration, fed events as its consumer
//! is, for the unit tests.

use api::{Method, Request, Response};
use delivery::Applied;
use domain::Clock;
use domain::testing::FixedClock;
use events::{Event, OrderCompleted, TicketCreated, TicketRef, TicketUpdated};
use pass_secret::PassSigner;
use session::{SigningKey, TokenSigner, TokenVerifier};
use storage::NativeDatabase;
use storage::testing::TempDatabase;

use crate::{CurrentPass, MIGRATIONS, PassesApi, PassesConfig, PassesEvents};

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
    pub(crate) config: PassesConfig,
    sessions: TokenSigner,
}

impl TestApp {
    pub(crate) fn new() -> TestApp {
        let file = TempDatabase::migrated("passes.sqlite", MIGRATIONS);
        let session_key = SigningKey::from_seed(&[7; 32]).expect("valid seed");
        TestApp {
            db: file.open(),
            file,
            clock: FixedClock::at(NOW_MS),
            config: PassesConfig {
                verifier: TokenVerifier::new(session_key.verifying_key()),
                signer: PassSigner::from_seed(&[3; 32]),
            },
            sessions: TokenSigner::new(session_key, 3600),
        }
    }

    pub(crate) fn signer(&self) -> &PassSigner {
        &self.config.signer
    }

    /// `method path` signed in as `user` when given, with `body` as JSON when given.
    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Response {
        let token = user.map(|user| {
            self.sessions
                .sign(user, &format!("{user}@example.com"), NOW_MS / 1000)
                .expect("sign a token")
        });
        let request: Request = api::testing::request(method, path, token.as_deref(), body);
        PassesApi {
            db: &self.db,
            config: &self.config,
            clock: &self.clock,
        }
        .handle(&request)
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
            listing: None,
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
        self.signer()
            .sign(&self.pass().pass().expect("a pass to sign"))
    }
}
