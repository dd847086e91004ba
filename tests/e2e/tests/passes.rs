//! Passes and check-in end to end (issue #20), through the host with a real Redis and
//! localstripe: a pass for the holder alone, its secret checked with the public key the app
//! serves, and the issuer's check-ins: ok once, already_redeemed after, one check-in per nonce,
//! one ok among concurrent scans, invalid for a tampered secret.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e::{Host, buy, create_ticket, id_of, send, sign_up, start_with_stripe};
use pass_secret::PassVerifier;
use serde_json::{Value, json};

fn pass(host: &Host, cookie: &str, ticket_id: &str) -> e2e::Reply {
    host.request_with(
        "GET",
        &format!("/api/tickets/{ticket_id}/pass"),
        &[("cookie", cookie)],
        None,
    )
}

fn scan(host: &Host, issuer: &str, secret: &str, nonce: &str) -> Value {
    let reply = send(
        host,
        "POST",
        "/api/checkins",
        issuer,
        &json!({ "secret": secret, "nonce": nonce }),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// A sold ticket: (host's seller cookie, buyer cookie, ticket id), with its pass issued.
struct Sale {
    seller: String,
    buyer: String,
    ticket_id: String,
}

fn sell(host: &Host, title: &str) -> Sale {
    let seller = sign_up(host, &format!("issuer-{}@example.com", title.len()));
    let buyer = sign_up(host, &format!("holder-{}@example.com", title.len()));
    let ticket_id = id_of(&create_ticket(host, &seller, title, 30.0));
    buy(host, &buyer, &ticket_id);
    e2e::eventually("the pass to be issued", || {
        (pass(host, &buyer, &ticket_id).status == 200).then_some(())
    });
    Sale {
        seller,
        buyer,
        ticket_id,
    }
}

impl Sale {
    /// The holder's current pass's secret.
    fn secret(&self, host: &Host) -> String {
        let reply = pass(host, &self.buyer, &self.ticket_id);
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["secret"].as_str().expect("secret").to_owned()
    }
}

#[test]
fn a_pass_is_its_holders_and_verifies_with_the_served_key() {
    let (host, _stripe, _redis) = start_with_stripe(&[]);
    let seller = sign_up(&host, "seller@example.com");
    let buyer = sign_up(&host, "buyer@example.com");
    let stranger = sign_up(&host, "stranger@example.com");
    let ticket_id = id_of(&create_ticket(&host, &seller, "Opera", 30.0));
    e2e::eventually("the passes replica to learn of the ticket", || {
        (pass(&host, &buyer, &ticket_id).status == 404).then_some(())
    });
    buy(&host, &buyer, &ticket_id);
    let mine = e2e::eventually("the pass to be issued", || {
        let reply = pass(&host, &buyer, &ticket_id);
        (reply.status == 200).then_some(reply.json())
    });
    assert_eq!(mine["ticketId"], ticket_id.as_str());
    assert_eq!(mine["title"], "Opera");
    assert_eq!(mine["holderEmail"], "buyer@example.com");
    assert_eq!(mine["generation"], 1);
    assert!(mine["svg"].as_str().expect("svg").starts_with("<?xml"));

    for other in [&seller, &stranger] {
        assert_eq!(pass(&host, other, &ticket_id).status, 401);
    }
    let anonymous = host.get(&format!("/api/tickets/{ticket_id}/pass"));
    assert_eq!(anonymous.status, 401);
    let unknown = pass(&host, &buyer, "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b");
    assert_eq!(unknown.status, 404);

    let key = host.get("/api/passes/key").json();
    assert_eq!(key["algorithm"], "Ed25519");
    let verifier = PassVerifier::from_base64url(key["key"].as_str().expect("key")).expect("key");
    let verified = verifier
        .verify(mine["secret"].as_str().expect("secret"))
        .expect("the served key checks the pass");
    assert_eq!(verified.ticket_id.to_string(), ticket_id);
    assert_eq!(verified.generation, 1);
}

#[test]
fn the_issuer_checks_a_pass_in_once() {
    let (host, _stripe, _redis) = start_with_stripe(&[]);
    let sale = sell(&host, "Ballet");
    let secret = sale.secret(&host);

    // Only the issuer checks in; the holder's scan is refused and counts for nothing.
    let by_holder = send(
        &host,
        "POST",
        "/api/checkins",
        &sale.buyer,
        &json!({ "secret": secret, "nonce": "holder-1" }),
    );
    assert_eq!(by_holder.status, 401, "{}", by_holder.body);
    let missing = send(&host, "POST", "/api/checkins", &sale.seller, &json!({}));
    assert_eq!(missing.status, 400, "{}", missing.body);

    let first = scan(&host, &sale.seller, &secret, "door-a-1");
    assert_eq!(first["result"], "ok");
    assert_eq!(first["ticketId"], sale.ticket_id.as_str());
    assert_eq!(first["title"], "Ballet");
    // The same scan uploaded again is the same check-in.
    let repeated = scan(&host, &sale.seller, &secret, "door-a-1");
    assert_eq!(repeated, first);
    let second = scan(&host, &sale.seller, &secret, "door-b-1");
    assert_eq!(second["result"], "already_redeemed");
    assert_eq!(second["at"], first["at"], "the first scan's time");
}

#[test]
fn of_twenty_concurrent_scans_one_is_ok() {
    let (host, _stripe, _redis) = start_with_stripe(&[]);
    let sale = sell(&host, "Festival");
    let secret = sale.secret(&host);
    let results: Vec<String> = std::thread::scope(|scope| {
        let scans: Vec<_> = (0..20)
            .map(|door| {
                let (host, seller, secret) = (&host, &sale.seller, &secret);
                scope.spawn(move || {
                    let answer = scan(host, seller, secret, &format!("door-{door}"));
                    answer["result"].as_str().expect("result").to_owned()
                })
            })
            .collect();
        scans
            .into_iter()
            .map(|scan| scan.join().expect("scan"))
            .collect()
    });
    let ok = results.iter().filter(|result| *result == "ok").count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|result| result == "ok" || result == "already_redeemed"),
        "{results:?}"
    );
}

#[test]
fn a_tampered_pass_is_invalid() {
    let (host, _stripe, _redis) = start_with_stripe(&[]);
    let sale = sell(&host, "Circus");
    let secret = sale.secret(&host);
    let bytes = URL_SAFE_NO_PAD.decode(&secret).expect("base64url");
    for index in [0, 5, 20, 30, bytes.len() - 1] {
        let mut forged = bytes.clone();
        forged[index] ^= 0x01;
        let forged = URL_SAFE_NO_PAD.encode(&forged);
        let answer = scan(&host, &sale.seller, &forged, &format!("forged-{index}"));
        assert_eq!(answer["result"], "invalid", "byte {index}");
    }
    for garbage in ["", "not a pass", "AAAA"] {
        let reply = send(
            &host,
            "POST",
            "/api/checkins",
            &sale.seller,
            &json!({ "secret": garbage, "nonce": "garbage" }),
        );
        assert!(
            reply.status == 200 && reply.json()["result"] == "invalid" || reply.status == 400,
            "{garbage:?}: {} {}",
            reply.status,
            reply.body
        );
    }
    // The pass itself is untouched by the forgeries.
    assert_eq!(scan(&host, &sale.seller, &secret, "real")["result"], "ok");
}
