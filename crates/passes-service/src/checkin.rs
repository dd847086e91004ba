//! One scan of a pass at the door, by the ticket's issuer.
//!
//! The whole scan is one transaction. Of concurrent scans of one pass, exactly one inserts the
//! pass's row in `checkins` and is `ok`; the others find it and are `already_redeemed`, with the
//! time of that first scan. The answer is recorded under the scan's nonce, so the same scan sent
//! again (a retry, an offline queue uploaded twice) gets the same answer and checks in nothing
//! more.

use pass_secret::PassVerifier;
use storage::{Database, SqlValue};

use crate::store;

/// What a scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanResult {
    /// The first scan of the ticket's current pass: come in.
    Ok,
    /// The current pass, scanned before (at the answer's time).
    AlreadyRedeemed,
    /// An older generation of the ticket's pass: the ticket was sold on since.
    Revoked,
    /// Not a pass this service signed, or of a ticket it does not know.
    Invalid,
}

impl ScanResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanResult::Ok => "ok",
            ScanResult::AlreadyRedeemed => "already_redeemed",
            ScanResult::Revoked => "revoked",
            ScanResult::Invalid => "invalid",
        }
    }

    fn parse(text: &str) -> Option<ScanResult> {
        [
            ScanResult::Ok,
            ScanResult::AlreadyRedeemed,
            ScanResult::Revoked,
            ScanResult::Invalid,
        ]
        .into_iter()
        .find(|result| result.as_str() == text)
    }
}

/// A scan's answer: the result, the ticket (when the pass names one this service knows) and the
/// time that goes with the result (the first scan's, for `already_redeemed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    pub result: ScanResult,
    pub ticket: Option<(String, String)>,
    pub at_ms: u64,
}

/// The scanner is not the issuer of the pass's ticket, who alone may check it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("only the ticket's issuer may check it in")]
pub struct NotTheIssuer;

/// Scans `secret` for `scanner_id` under `nonce`.
pub fn check_in(
    db: &dyn Database,
    verifier: &PassVerifier,
    scanner_id: &str,
    secret: &str,
    nonce: &str,
    now_ms: u64,
) -> anyhow::Result<Result<CheckIn, NotTheIssuer>> {
    let invalid = CheckIn {
        result: ScanResult::Invalid,
        ticket: None,
        at_ms: now_ms,
    };
    let Ok(pass) = verifier.verify(secret) else {
        return Ok(Ok(invalid));
    };
    let ticket_id = pass.ticket_id.to_string();
    storage::transaction(db, |tx| {
        let Some((issuer_id, title)) = store::ticket(tx, &ticket_id)? else {
            return Ok(Ok(invalid));
        };
        if issuer_id != scanner_id {
            return Ok(Err(NotTheIssuer));
        }
        let ticket = Some((ticket_id.clone(), title));
        if let Some((result, at_ms)) = recorded_scan(tx, nonce)? {
            return Ok(Ok(CheckIn {
                result,
                ticket,
                at_ms,
            }));
        }
        let (result, at_ms) = judge(tx, &pass, &ticket_id, now_ms)?;
        tx.execute(
            "INSERT INTO scans (nonce, ticket_id, result, at_ms) VALUES (?, ?, ?, ?)",
            &[
                nonce.into(),
                ticket_id.as_str().into(),
                result.as_str().into(),
                SqlValue::from_u64(at_ms)?,
            ],
        )?;
        Ok(Ok(CheckIn {
            result,
            ticket,
            at_ms,
        }))
    })
}

/// The answer already given under `nonce`.
fn recorded_scan(tx: &dyn Database, nonce: &str) -> anyhow::Result<Option<(ScanResult, u64)>> {
    let rows = tx.execute(
        "SELECT result, at_ms FROM scans WHERE nonce = ?",
        &[nonce.into()],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let result = ScanResult::parse(row.text("result")?)
        .ok_or_else(|| anyhow::anyhow!("scan {nonce:?} has an unknown result"))?;
    Ok(Some((result, u64::try_from(row.integer("at_ms")?)?)))
}

/// What a new scan of `pass` means now, checking the pass in when it is the current one.
fn judge(
    tx: &dyn Database,
    pass: &pass_secret::Pass,
    ticket_id: &str,
    now_ms: u64,
) -> anyhow::Result<(ScanResult, u64)> {
    let Some(current) = store::current_pass(tx, ticket_id)? else {
        return Ok((ScanResult::Invalid, now_ms));
    };
    if pass.generation < current.generation {
        return Ok((ScanResult::Revoked, now_ms));
    }
    if pass.generation != current.generation || pass.seed != current.seed {
        return Ok((ScanResult::Invalid, now_ms));
    }
    let generation = i64::from(pass.generation);
    // A ticket gets in once. A check-in that arrived while an order already held the ticket's
    // resale listing did not stop that sale, so the next generation exists; it is used all the same.
    let earlier = tx.execute(
        "SELECT checked_in_at_ms FROM checkins WHERE ticket_id = ? AND generation < ? \
         ORDER BY generation LIMIT 1",
        &[ticket_id.into(), generation.into()],
    )?;
    if let Some(row) = earlier.first() {
        let at = u64::try_from(row.integer("checked_in_at_ms")?)?;
        return Ok((ScanResult::AlreadyRedeemed, at));
    }
    let inserted = tx.execute(
        "INSERT INTO checkins (ticket_id, generation, checked_in_at_ms) VALUES (?, ?, ?) \
         ON CONFLICT DO NOTHING RETURNING checked_in_at_ms",
        &[
            ticket_id.into(),
            generation.into(),
            SqlValue::from_u64(now_ms)?,
        ],
    )?;
    if !inserted.is_empty() {
        let checked_in = events::PassCheckedIn {
            ticket_id: ticket_id.to_owned(),
            generation: pass.generation,
            at: domain::rfc3339_millis(now_ms),
        };
        delivery::enqueue(tx, &checked_in.into(), now_ms)?;
        return Ok((ScanResult::Ok, now_ms));
    }
    let first = tx.execute(
        "SELECT checked_in_at_ms FROM checkins WHERE ticket_id = ? AND generation = ?",
        &[ticket_id.into(), generation.into()],
    )?;
    let at = first
        .first()
        .map(|row| row.integer("checked_in_at_ms"))
        .transpose()?
        .ok_or_else(|| anyhow::anyhow!("the check-in of ticket {ticket_id} vanished"))?;
    Ok((ScanResult::AlreadyRedeemed, u64::try_from(at)?))
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::testing::{BUYER, NEXT_BUYER, NOW_MS, SELLER, TestApp};

    fn scan(
        app: &TestApp,
        scanner: &str,
        secret: &str,
        nonce: &str,
    ) -> Result<CheckIn, NotTheIssuer> {
        use domain::Clock;
        check_in(
            &app.db,
            &app.signer().verifier(),
            scanner,
            secret,
            nonce,
            app.clock.now_ms(),
        )
        .expect("the scan is answered")
    }

    fn sold() -> TestApp {
        let app = TestApp::new();
        app.list();
        app.sell("o1", BUYER);
        app
    }

    #[test]
    fn the_first_scan_lets_the_holder_in_and_later_ones_say_when_that_was() {
        let app = sold();
        let secret = app.secret();
        let first = scan(&app, SELLER, &secret, "n1").expect("the issuer");
        assert_eq!((first.result, first.at_ms), (ScanResult::Ok, NOW_MS));
        assert_eq!(
            first.ticket.as_ref().map(|(_, title)| title.as_str()),
            Some("Concert")
        );
        app.clock.advance(60_000);
        let again = scan(&app, SELLER, &secret, "n2").expect("the issuer");
        assert_eq!(
            (again.result, again.at_ms),
            (ScanResult::AlreadyRedeemed, NOW_MS)
        );
    }

    #[test]
    fn a_scan_sent_twice_under_its_nonce_is_one_check_in() {
        let app = sold();
        let secret = app.secret();
        assert_eq!(
            scan(&app, SELLER, &secret, "n1").map(|c| c.result),
            Ok(ScanResult::Ok)
        );
        assert_eq!(
            scan(&app, SELLER, &secret, "n1").map(|c| c.result),
            Ok(ScanResult::Ok)
        );
        assert_eq!(
            scan(&app, SELLER, &secret, "n2").map(|c| c.result),
            Ok(ScanResult::AlreadyRedeemed)
        );
    }

    #[test]
    fn the_pass_of_an_earlier_holder_is_revoked() {
        let app = sold();
        let old = app.secret();
        app.sell("o2", NEXT_BUYER);
        assert_eq!(
            scan(&app, SELLER, &old, "n1").map(|c| c.result),
            Ok(ScanResult::Revoked)
        );
        assert_eq!(
            scan(&app, SELLER, &app.secret(), "n2").map(|c| c.result),
            Ok(ScanResult::Ok)
        );
    }

    #[test]
    fn a_forged_pass_or_one_of_an_unknown_ticket_is_invalid() {
        let app = sold();
        let mut bytes = URL_SAFE_NO_PAD.decode(app.secret()).expect("base64url");
        bytes[20] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(
            scan(&app, SELLER, &forged, "n1").map(|c| c.result),
            Ok(ScanResult::Invalid)
        );
        let unknown = app.signer().sign(&pass_secret::Pass {
            ticket_id: uuid::Uuid::from_bytes([5; 16]),
            generation: 1,
            seed: [0; 16],
        });
        let answer = scan(&app, SELLER, &unknown, "n2").expect("answered");
        assert_eq!((answer.result, answer.ticket), (ScanResult::Invalid, None));
        // The current generation with another seed was never issued.
        let reseeded = app.signer().sign(&pass_secret::Pass {
            seed: [1; 16],
            ..app.pass().pass().expect("a pass")
        });
        assert_eq!(
            scan(&app, SELLER, &reseeded, "n3").map(|c| c.result),
            Ok(ScanResult::Invalid)
        );
    }

    #[test]
    fn only_the_issuer_may_check_a_ticket_in() {
        let app = sold();
        let secret = app.secret();
        assert_eq!(scan(&app, BUYER, &secret, "n1"), Err(NotTheIssuer));
        // Nothing was checked in by the refused scan.
        assert_eq!(
            scan(&app, SELLER, &secret, "n1").map(|c| c.result),
            Ok(ScanResult::Ok)
        );
    }

    #[test]
    fn of_twenty_concurrent_scans_of_one_pass_exactly_one_lets_it_in() {
        let app = sold();
        let secret = app.secret();
        let verifier = app.signer().verifier();
        let results: Vec<ScanResult> = std::thread::scope(|scope| {
            let scans: Vec<_> = (0..20)
                .map(|n| {
                    let (secret, verifier, file) = (&secret, &verifier, &app.file);
                    scope.spawn(move || {
                        let db = file.open();
                        check_in(&db, verifier, SELLER, secret, &format!("n{n}"), NOW_MS)
                            .expect("answered")
                            .expect("the issuer")
                            .result
                    })
                })
                .collect();
            scans
                .into_iter()
                .map(|scan| scan.join().expect("a scan"))
                .collect()
        });
        let ok = results.iter().filter(|r| **r == ScanResult::Ok).count();
        let redeemed = results
            .iter()
            .filter(|r| **r == ScanResult::AlreadyRedeemed)
            .count();
        assert_eq!((ok, redeemed), (1, 19), "{results:?}");
        assert_eq!(checked_in_events(&app).len(), 1);
    }

    #[test]
    fn a_pass_issued_after_its_ticket_was_checked_in_does_not_get_in_again() {
        let app = sold();
        assert_eq!(
            scan(&app, SELLER, &app.secret(), "n1").map(|c| c.result),
            Ok(ScanResult::Ok)
        );
        // A resale whose order held the listing before the check-in reached tickets.
        app.sell("o2", NEXT_BUYER);
        app.clock.advance(60_000);
        let next = scan(&app, SELLER, &app.secret(), "n2").expect("the issuer");
        assert_eq!(
            (next.result, next.at_ms),
            (ScanResult::AlreadyRedeemed, NOW_MS)
        );
        assert_eq!(checked_in_events(&app).len(), 1);
    }

    fn checked_in_events(app: &TestApp) -> Vec<events::PassCheckedIn> {
        delivery::testing::enqueued(&app.db)
            .into_iter()
            .filter_map(|event| match event {
                events::Event::PassCheckedIn(checked_in) => Some(checked_in),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_first_check_in_alone_is_published() {
        let app = sold();
        let secret = app.secret();
        for nonce in ["n1", "n1", "n2"] {
            scan(&app, SELLER, &secret, nonce).expect("the issuer");
        }
        assert_eq!(
            checked_in_events(&app),
            [events::PassCheckedIn {
                ticket_id: crate::testing::TICKET.to_owned(),
                generation: 1,
                at: domain::rfc3339_millis(NOW_MS),
            }]
        );
    }
}
