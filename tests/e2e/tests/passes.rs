//! Passes and check-in end to end (issue #20), through the host with a real Redis and
//! localstripe: a pass for the holder alone, its secret checked with the public key the app
//! serves, and the issuer's check-ins: ok once, already_redeemed after, one check-in per nonce,
//! one ok among concurrent scans, invalid for a tampered secret.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e::{Host, buy, create_ticket, id_of, messages, send, sign_up, start_with_stripe};
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

fn resell(host: &Host, holder: &str, ticket_id: &str, price: f64) -> e2e::Reply {
    send(
        host,
        "POST",
        &format!("/api/tickets/{ticket_id}/resale"),
        holder,
        &json!({ "price": price }),
    )
}

/// `buyer` buys the resale listing of `ticket_id` and holds its next pass.
fn buy_resale(host: &Host, buyer: &str, ticket_id: &str, generation: u64) -> String {
    // The orders replica takes a moment to learn of the new listing.
    let order = e2e::eventually("the orders replica to learn of the resale", || {
        let reply = send(
            host,
            "POST",
            "/api/orders",
            buyer,
            &json!({ "ticketId": ticket_id }),
        );
        (reply.status == 201).then_some(reply)
    });
    e2e::pay_and_complete(host, buyer, &id_of(&order.json()));
    e2e::eventually("the next pass to be issued", || {
        let reply = pass(host, buyer, ticket_id);
        (reply.status == 200 && reply.json()["generation"] == generation)
            .then(|| reply.json()["secret"].as_str().expect("secret").to_owned())
    })
}

#[test]
fn a_resale_reissues_the_pass_and_revokes_the_old_one_within_the_cap() {
    let (host, _stripe, _redis) = start_with_stripe(&[]);
    let sale = sell(&host, "Jazz night");
    let old_secret = sale.secret(&host);

    // Face value 30.00, cap 120%: at most 36.00.
    let above = resell(&host, &sale.buyer, &sale.ticket_id, 36.01);
    assert_eq!(above.status, 400, "{}", above.body);
    assert_eq!(above.json()["errors"][0]["field"], "price");
    assert!(above.body.contains("$36.00"), "{}", above.body);
    let by_issuer = resell(&host, &sale.seller, &sale.ticket_id, 30.0);
    assert_eq!(by_issuer.status, 401, "{}", by_issuer.body);
    let listed = resell(&host, &sale.buyer, &sale.ticket_id, 36.0);
    assert_eq!(listed.status, 200, "{}", listed.body);
    let ticket = listed.json();
    assert_eq!(ticket["status"], "available");
    assert_eq!(ticket["faceValue"], 30.0);
    assert_eq!(ticket["price"], 36.0);
    assert!(e2e::listed_ids(&host).contains(&sale.ticket_id));

    let next = sign_up(&host, "next-holder@example.com");
    let new_secret = buy_resale(&host, &next, &sale.ticket_id, 2);
    assert_ne!(new_secret, old_secret);
    let former = pass(&host, &sale.buyer, &sale.ticket_id);
    assert_eq!(former.status, 410, "{}", former.body);
    let revoked = host.get("/api/passes/revoked?since=0").json();
    assert_eq!(
        revoked["revoked"],
        json!([{ "ticketId": sale.ticket_id, "generation": 1 }])
    );
    assert_eq!(
        scan(&host, &sale.seller, &old_secret, "old")["result"],
        "revoked"
    );
    assert_eq!(
        scan(&host, &sale.seller, &new_secret, "new")["result"],
        "ok"
    );

    // Checked in at the door, the ticket can never be resold.
    let refused = e2e::eventually("tickets to learn of the check-in", || {
        // Asked before tickets learns of it, it may be listed, and then unlisted by it.
        let reply = resell(&host, &next, &sale.ticket_id, 30.0);
        (reply.status == 400 && reply.body.contains("checked in")).then_some(reply)
    });
    assert_eq!(
        messages(&refused),
        ["This ticket was checked in at the door and cannot be resold"]
    );
}

#[test]
fn the_cap_carries_over_and_a_checked_in_ticket_cannot_be_resold() {
    let (host, _stripe, _redis) = start_with_stripe(&[]);
    let sale = sell(&host, "Rock night");
    assert_eq!(
        resell(&host, &sale.buyer, &sale.ticket_id, 33.0).status,
        200
    );
    let next = sign_up(&host, "second-holder@example.com");
    let secret = buy_resale(&host, &next, &sale.ticket_id, 2);
    // The second resale is capped at the face value's 120% (36.00), not the 33.00 paid.
    let above = e2e::eventually("tickets to record the resale", || {
        let reply = resell(&host, &next, &sale.ticket_id, 36.01);
        (reply.status == 400).then_some(reply)
    });
    assert_eq!(
        above.json()["errors"][0]["field"],
        "price",
        "{}",
        above.body
    );
    let relisted = resell(&host, &next, &sale.ticket_id, 36.0);
    assert_eq!(relisted.status, 200, "{}", relisted.body);
    assert_eq!(relisted.json()["faceValue"], 30.0);

    // Checked in while listed: the listing ends and no resale is possible any more.
    assert_eq!(scan(&host, &sale.seller, &secret, "door")["result"], "ok");
    e2e::eventually("the check-in to end the listing", || {
        (e2e::ticket(&host, &sale.ticket_id)["status"] == "sold").then_some(())
    });
    assert!(!e2e::listed_ids(&host).contains(&sale.ticket_id));
    let refused = resell(&host, &next, &sale.ticket_id, 30.0);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("checked in"), "{}", refused.body);
}

#[test]
fn a_withdrawn_resale_is_the_holders_again() {
    let (host, _stripe, _redis) = start_with_stripe(&[]);
    let sale = sell(&host, "Poetry");
    let before = e2e::ticket(&host, &sale.ticket_id);
    assert_eq!(
        resell(&host, &sale.buyer, &sale.ticket_id, 25.0).status,
        200
    );
    let path = format!("/api/tickets/{}/resale", sale.ticket_id);
    let withdrawn = send(&host, "DELETE", &path, &sale.buyer, &json!({}));
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.body);
    let after = withdrawn.json();
    for field in ["status", "userId", "price", "orderId"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(
        pass(&host, &sale.buyer, &sale.ticket_id).json()["generation"],
        1
    );
    // The orders replica learns the ticket is sold again and takes no order.
    let buyer = sign_up(&host, "late-buyer@example.com");
    let refused = e2e::eventually("orders to learn of the withdrawal", || {
        let reply = send(
            &host,
            "POST",
            "/api/orders",
            &buyer,
            &json!({ "ticketId": sale.ticket_id }),
        );
        (reply.status == 400).then_some(reply)
    });
    assert!(refused.body.contains("reserved"), "{}", refused.body);
}
