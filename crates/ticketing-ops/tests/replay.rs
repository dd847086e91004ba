//! `ticketing-ops` against the whole app on the host and a real Redis: a dead-lettered event,
//! replayed once its cause is fixed, is applied exactly once.

use std::process::Command;

use e2e::{RedisServer, app, create_ticket, eventually, publish_event, sign_up};
use events::{Event, TicketCreated, TicketStatus, TicketUpdated};

const TICKET: &str = "3f1b7c2a-9d4e-4f60-8a1b-2c3d4e5f6a7b";
const CREATED: &str = "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a";
const UPDATED: &str = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";
const DEAD_LETTERS: &str = "events:ticket:dead-letter:orders";
/// The passes service keeps a replica of tickets too, so its group dead-letters the update alike.
const PASSES_DEAD_LETTERS: &str = "events:ticket:dead-letter:passes";

fn ops(redis: &RedisServer, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ticketing-ops"))
        .args(["--redis", &redis.url()])
        .args(args)
        .output()
        .expect("run ticketing-ops");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn ticket_created() -> Event {
    Event::TicketCreated(TicketCreated {
        id: TICKET.into(),
        title: "Organ recital".into(),
        price_cents: 1500,
        user_id: "seller".into(),
        version: 0,
    })
}

fn ticket_updated() -> Event {
    Event::TicketUpdated(TicketUpdated {
        id: TICKET.into(),
        title: "Organ recital, second night".into(),
        price_cents: 1800,
        user_id: "seller".into(),
        version: 1,
        order_id: None,
        status: TicketStatus::Available,
        listing: None,
    })
}

/// How often the orders consumer logged applying the update.
fn times_applied(state: &std::path::Path) -> usize {
    let log = std::fs::read_to_string(state.join(".spin/logs/orders-events_stdout.txt"))
        .unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["eventId"] == UPDATED && line["outcome"] == "applied")
        .count()
}

#[test]
fn a_dead_lettered_event_replayed_once_fixed_is_applied_exactly_once() {
    let redis = RedisServer::start();
    let host = app(&redis)
        .env("SPIN_VARIABLE_EVENT_MAX_DELIVERIES", "2")
        .env("SPIN_VARIABLE_EVENT_DEAD_LETTER_AFTER_MS", "200")
        .env("SPIN_VARIABLE_EVENT_RETRY_IDLE_MS", "50")
        .env("SPIN_VARIABLE_HOUSEKEEPING_INTERVAL_SECONDS", "1")
        .start();
    let state = host.work_dir.path();
    // A first write arms the housekeeping tick, which retries waiting entries (and dead-letters
    // them in the end); an app that has never written waits for its first write (issue 12).
    let seller = sign_up(&host, "seller@example.com");
    create_ticket(&host, &seller, "Warm-up", 5.0);

    // An update of a ticket the orders (and passes) services never heard of: it waits for the
    // ticket's creation, which does not come, and is dead-lettered.
    publish_event(&redis, ticket_updated(), UPDATED);
    let listing = eventually("the update to be dead-lettered", || {
        let (ok, text) = ops(&redis, &["dead-letters"]);
        assert!(ok, "{text}");
        (text.lines().filter(|line| line.contains(UPDATED)).count() == 2).then_some(text)
    });
    let dead_letter = |stream: &str| {
        let line = listing
            .lines()
            .find(|line| line.starts_with(stream) && line.contains(UPDATED))
            .unwrap_or_else(|| panic!("no dead letter in {stream}: {listing}"));
        assert!(line.contains("ticket:updated"), "{line}");
        line.split_whitespace().nth(1).expect("its id").to_owned()
    };
    let id = dead_letter(DEAD_LETTERS);
    let passes_id = dead_letter(PASSES_DEAD_LETTERS);

    let (ok, status) = ops(&redis, &["status"]);
    assert!(ok, "{status}");
    let orders_row = status
        .lines()
        .find(|line| line.starts_with("events:ticket") && line.contains(" orders "))
        .unwrap_or_else(|| panic!("no orders group on events:ticket:\n{status}"));
    assert!(
        orders_row.trim_end().ends_with(" 1"),
        "one dead letter: {status}"
    );
    let (ok, shown) = ops(&redis, &["show", DEAD_LETTERS, &id]);
    assert!(
        ok && shown.contains("\"subject\": \"ticket:updated\""),
        "{shown}"
    );
    assert_eq!(times_applied(state), 0);

    // The cause, fixed: the ticket's creation arrives. Then the update is replayed.
    publish_event(&redis, ticket_created(), CREATED);
    let (ok, text) = ops(&redis, &["replay", DEAD_LETTERS, &id]);
    assert!(ok, "{text}");
    let (ok, text) = ops(&redis, &["replay", PASSES_DEAD_LETTERS, &passes_id]);
    assert!(ok, "{text}");
    eventually("the replayed update to be applied", || {
        (times_applied(state) == 1).then_some(())
    });

    // Gone from the dead letters; a second replay finds nothing; a duplicate of the event changes
    // nothing more.
    let (ok, listing) = ops(&redis, &["dead-letters"]);
    assert!(ok && listing.contains("0 dead letter(s)"), "{listing}");
    let (ok, text) = ops(&redis, &["replay", DEAD_LETTERS, &id]);
    assert!(!ok && text.contains("no dead letter"), "{text}");
    publish_event(&redis, ticket_updated(), UPDATED);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(times_applied(state), 1);
}
