"""The purchase flow's invariants, checked over the whole app's state once it is quiet: the four
services' SQLite databases, Redis's consumer groups, and Stripe's (localstripe's) PaymentIntents,
refunds and Connect transfers. `scripts/chaos` runs it after its faults; test_chaos_check.py runs it over crafted
inconsistent states to show that each check can fail.

`check(state)` returns one `Invariant` per promise, with how many things it looked at and every
violation it found; nothing in it changes the state.
"""

import json
import os
import sqlite3
import urllib.request
from dataclasses import dataclass, field

LIVE = ("created", "awaiting:payment")
DATABASES = ("auth", "tickets", "orders", "payments")
STREAMS = ("events:ticket", "events:order", "events:expiration", "events:payment")


@dataclass
class Invariant:
    name: str
    checked: int = 0
    violations: list = field(default_factory=list)

    def fail(self, detail):
        self.violations.append(detail)


@dataclass
class State:
    """What the checks read. `redis` answers `send((command, ...))` like bench_app.Resp; `stripe`
    is {"intents": [...], "refunds": [...], "transfers": [...]} as Stripe's list endpoints return
    them. Either may be None when the run has none."""

    dbs: dict
    now_ms: int
    redis: object = None
    stripe: dict = None


def open_databases(directory):
    """The services' databases under `directory` (a run's `.spin`), read-only."""
    dbs = {}
    for name in DATABASES:
        path = os.path.join(directory, f"{name}.db")
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        connection.row_factory = sqlite3.Row
        dbs[name] = connection
    return dbs


def stripe_page(base, kind, key="sk_test_chaos", after=None):
    """One page of 100 of Stripe's list of `kind` (`payment_intents`, ...), after id `after`."""
    url = f"{base}/v1/{kind}?limit=100" + (f"&starting_after={after}" if after else "")
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def stripe_objects(base, key="sk_test_chaos"):
    """Every PaymentIntent, refund and transfer localstripe (or Stripe) holds, following
    `has_more`."""

    def every(kind):
        found, after = [], None
        while True:
            page = stripe_page(base, kind, key, after)
            found += page["data"]
            if not page.get("has_more") or not page["data"]:
                return found
            after = page["data"][-1]["id"]

    return {"intents": every("payment_intents"), "refunds": every("refunds"),
            "transfers": every("transfers")}


def first_intents(base, key="sk_test_chaos"):
    """The first page of 100 PaymentIntents (Stripe lists the newest first, localstripe the
    oldest): a fault that needs only some does not walk them all."""
    return stripe_page(base, "payment_intents", key)["data"]


def rows(db, sql, *args):
    return [dict(row) for row in db.execute(sql, args)]


class Facts:
    """What the invariants read: the three services' rows, and what is derived from them once."""

    def __init__(self, state, expiry_grace_ms):
        self.state = state
        self.expiry_grace_ms = expiry_grace_ms
        self.tickets_db, self.orders_db, self.payments_db = (
            state.dbs[n] for n in ("tickets", "orders", "payments"))
        self.tickets = {t["id"]: t for t in rows(self.tickets_db, "SELECT * FROM tickets")}
        self.orders = {o["id"]: o for o in rows(self.orders_db, "SELECT * FROM orders")}
        self.payments = {p["order_id"]: p for p in rows(self.payments_db, "SELECT * FROM payments")}
        # The orders holding or having bought each listing of a ticket (1, then one per resale),
        # and those of each ticket's current listing.
        self.by_listing = {}
        for order in self.orders.values():
            if order["status"] != "cancelled":
                key = (order["ticket_id"], order.get("listing", 1))
                self.by_listing.setdefault(key, []).append(order["id"])
        self.by_ticket = {}
        for (ticket_id, number), holders in self.by_listing.items():
            ticket = self.tickets.get(ticket_id)
            if ticket is None or ticket.get("listing", 1) == number:
                self.by_ticket[ticket_id] = holders
        # The intents Stripe says succeeded, by order; and the transfers made from each order's
        # charges (a destination charge's own, and ours), by order.
        self.succeeded = {}
        self.transfers = {}
        self.payouts = {p["order_id"]: p for p in rows(self.payments_db, "SELECT * FROM payouts")}
        self.accounts = {a["user_id"]: a for a in rows(self.payments_db, "SELECT * FROM payout_accounts")}
        if state.stripe is not None:
            charge_orders = {}
            for intent in state.stripe["intents"]:
                order_id = intent.get("metadata", {}).get("order_id")
                if intent["status"] == "succeeded" and order_id:
                    self.succeeded.setdefault(order_id, []).append(intent["id"])
                charge = intent.get("latest_charge")
                charge = charge.get("id") if isinstance(charge, dict) else charge
                if charge and order_id:
                    charge_orders[charge] = order_id
            for transfer in state.stripe.get("transfers", []):
                order_id = charge_orders.get(transfer.get("source_transaction"))
                self.transfers.setdefault(order_id, []).append(transfer)


def check(state, expiry_grace_ms=10_000):
    facts = Facts(state, expiry_grace_ms)
    return [invariant(facts) for invariant in INVARIANTS]

def no_ticket_held_twice(facts):
    """No listing of a ticket held or sold by two orders."""
    held = Invariant("no ticket is held or sold by two orders")
    held.checked = len(facts.tickets)
    for (ticket_id, number), holders in facts.by_listing.items():
        if len(holders) > 1:
            held.fail(f"ticket {ticket_id} (listing {number}) is held by orders {sorted(holders)}")
    return held


def tickets_match_orders(facts):
    """The tickets service and the orders service agree on every ticket."""
    agree = Invariant("every ticket's status matches its orders")
    agree.checked = len(facts.tickets)
    for ticket in facts.tickets.values():
        holders = [facts.orders[o] for o in facts.by_ticket.get(ticket["id"], [])]
        status, order_id = ticket["status"], ticket["order_id"]
        if status == "available" and holders:
            agree.fail(f"ticket {ticket['id']} is for sale but order {holders[0]['id']} holds it")
        elif status == "reserved" and not any(h["id"] == order_id and h["status"] in LIVE for h in holders):
            agree.fail(f"ticket {ticket['id']} is reserved for {order_id}, which is not an open order of it")
        elif status == "sold" and not any(h["id"] == order_id and h["status"] == "complete" for h in holders):
            agree.fail(f"ticket {ticket['id']} is sold to {order_id}, which is not its complete order")
    return agree


def sold_tickets_paid_once(facts):
    """Every sold ticket has exactly one complete order and one payment."""
    sold = Invariant("every sold ticket has one complete order and one payment")
    for ticket in facts.tickets.values():
        if ticket["status"] != "sold":
            continue
        sold.checked += 1
        complete = [o for o in facts.orders.values() if o["ticket_id"] == ticket["id"] and o["status"] == "complete"]
        if len(complete) != 1:
            sold.fail(f"sold ticket {ticket['id']} has {len(complete)} complete orders")
            continue
        payment = facts.payments.get(complete[0]["id"])
        if payment is None or payment["status"] != "succeeded":
            sold.fail(f"sold ticket {ticket['id']}: order {complete[0]['id']} has no succeeded payment")
    return sold


def complete_orders_paid_once(facts):
    """Every complete order was paid exactly once, as Stripe records it too."""
    paid = Invariant("every complete order was paid exactly once")
    for order in facts.orders.values():
        if order["status"] != "complete":
            continue
        paid.checked += 1
        payment = facts.payments.get(order["id"])
        if payment is None or payment["status"] != "succeeded":
            paid.fail(f"complete order {order['id']} has no succeeded payment")
        if facts.state.stripe is not None and len(facts.succeeded.get(order["id"], [])) != 1:
            paid.fail(f"complete order {order['id']} was charged {len(facts.succeeded.get(order['id'], []))} times")
    return paid


def late_successes_refunded(facts):
    """A success for an order that did not complete was refunded."""
    refunded = Invariant("every success for an order not completed was refunded")
    refunds = {}
    if facts.state.stripe is not None:
        for refund in facts.state.stripe["refunds"]:
            if refund.get("status") in ("succeeded", "pending"):
                refunds.setdefault(refund.get("payment_intent"), []).append(refund["id"])
        for order_id, intents in facts.succeeded.items():
            order = facts.orders.get(order_id)
            if order is not None and order["status"] == "complete":
                intents = intents[1:]  # the one that paid it; any other must be refunded
            for intent in intents:
                refunded.checked += 1
                if not refunds.get(intent):
                    refunded.fail(f"payment {intent} for order {order_id} succeeded and was not refunded")
    for payment in facts.payments.values():
        order = facts.orders.get(payment["order_id"])
        if payment["status"] in ("succeeded", "refund_pending", "refunding", "refunded", "refund_failed") and (order is None or order["status"] != "complete"):
            refunded.checked += 1
            # `refunding` is Stripe's to finish; `refund_failed` would be an operator's case, and
            # localstripe never fails a refund, so here it is a defect too.
            if payment["status"] not in ("refunded", "refunding"):
                refunded.fail(f"payment of order {payment['order_id']} is {payment['status']}, the order is not complete")
    return refunded


def complete_orders_paid_out_once(facts):
    """Every complete order with a seller paid its seller exactly once: one transfer of the net
    to the seller's account, or one payout waiting for a seller whose account is not enabled."""
    paid_out = Invariant("every complete order paid its seller out once (or waits for the account)")
    for order in facts.orders.values():
        payout = facts.payouts.get(order["id"])
        if order["status"] != "complete" or payout is None:
            continue
        paid_out.checked += 1
        transfers = facts.transfers.get(order["id"], [])
        account = facts.accounts.get(payout["seller_id"])
        # A destination charge's transfer is the whole charge (Stripe takes the fee back from the
        # seller's account); our own transfer is the net.
        net = payout["amount_cents"] - payout["fee_cents"]
        if payout["charge_type"] == "destination":
            net = payout["amount_cents"]
        if payout["state"] == "waiting_for_account":
            if account is not None and account["enabled"]:
                paid_out.fail(f"order {order['id']}'s payout waits, but its seller's account is enabled")
            if transfers:
                paid_out.fail(f"order {order['id']}'s payout waits, but Stripe made {len(transfers)} transfer(s)")
        elif payout["state"] != "transferred":
            paid_out.fail(f"complete order {order['id']}'s payout is {payout['state']}")
        elif facts.state.stripe is not None:
            if len(transfers) != 1:
                paid_out.fail(f"complete order {order['id']} has {len(transfers)} transfers to its seller")
            elif transfers[0]["amount"] != net or transfers[0]["destination"] != payout["account_id"]:
                paid_out.fail(f"order {order['id']}'s transfer is {transfers[0]['amount']} to "
                              f"{transfers[0]['destination']}, not {net} to {payout['account_id']}")
    return paid_out


def refunds_reversed(facts):
    """Every refunded payment's transfer was reversed, and no refunded order's seller kept money."""
    reversed_ = Invariant("every refund's transfer was reversed")
    for order_id, payout in facts.payouts.items():
        payment = facts.payments.get(order_id)
        if payment is None or payment["status"] not in ("refunding", "refunded"):
            continue
        reversed_.checked += 1
        kept = [t for t in facts.transfers.get(order_id, [])
                if t.get("amount_reversed", 0) < t["amount"]]
        if payment["status"] == "refunded" and payout["state"] not in ("reversed", "cancelled"):
            reversed_.fail(f"order {order_id} was refunded, its payout is {payout['state']}")
        if payment["status"] == "refunded" and kept:
            reversed_.fail(f"order {order_id} was refunded, transfer {kept[0]['id']} was not reversed")
    return reversed_


def overdue_orders_cancelled(facts):
    """Every unpaid order past its window is cancelled, and its ticket is for sale again."""
    expired = Invariant("every unpaid order past its window is cancelled")
    for order in facts.orders.values():
        if order["expires_at_ms"] + facts.expiry_grace_ms >= facts.state.now_ms:
            continue
        expired.checked += 1
        if order["status"] in LIVE:
            expired.fail(f"order {order['id']} is {order['status']} {facts.state.now_ms - order['expires_at_ms']} ms after its window")
    return expired


def acknowledged_seq(db):
    """The outbox seq up to which every consumer group acknowledged what was sent (delivery's
    watermark), or -1 before one was recorded."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'delivery_state'").fetchone():
        return -1
    row = db.execute("SELECT value FROM delivery_state WHERE key = 'acknowledged_seq'").fetchone()
    return int(row[0]) if row else -1


def outboxes_delivered(facts):
    """Every event in the outboxes was delivered."""
    on_streams = {}
    outboxes = Invariant("every event in the outboxes was delivered")
    for name, db in facts.state.dbs.items():
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'outbox'").fetchone():
            continue
        outboxes.checked += db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        acknowledged = acknowledged_seq(db)
        for row in rows(db, "SELECT seq, event_id, stream, sent_at_ms FROM outbox"):
            if row["sent_at_ms"] is None:
                outboxes.fail(f"{name}: event {row['event_id']} for {row['stream']} was never sent")
            # Sent is not enough: the entry must still be on its stream (a Redis crash can lose
            # the last writes it acknowledged; delivery must notice and send them again), unless
            # every consumer group had acknowledged it (at or below the watermark), so a Redis
            # that lost its data need not get it again.
            elif facts.state.redis is not None and row["seq"] > acknowledged and \
                    row["event_id"] not in stream_event_ids(facts.state.redis, row["stream"], on_streams):
                outboxes.fail(f"{name}: event {row['event_id']} is marked sent but not on {row['stream']}")
    return outboxes


def replicas_equal_owners(facts):
    """Replicas equal their owners, version by version."""
    replicas = Invariant("every replica equals its owner")
    ticket_copies = {t["id"]: t for t in rows(facts.orders_db, "SELECT * FROM tickets")}
    for ticket in facts.tickets.values():
        replicas.checked += 1
        copy = ticket_copies.get(ticket["id"])
        fields = ("version", "title", "price_cents", "user_id")
        if copy is None:
            replicas.fail(f"orders has no copy of ticket {ticket['id']} (version {ticket['version']})")
        elif any(copy[f] != ticket[f] for f in fields):
            replicas.fail(f"orders' copy of ticket {ticket['id']} is version {copy['version']}, the ticket is {ticket['version']}")
    order_copies = {o["id"]: o for o in rows(facts.payments_db, "SELECT * FROM orders")}
    for order in facts.orders.values():
        replicas.checked += 1
        copy = order_copies.get(order["id"])
        fields = ("version", "status", "price_cents", "expires_at_ms", "user_id")
        if copy is None:
            replicas.fail(f"payments has no copy of order {order['id']} (version {order['version']})")
        elif any(copy[f] != order[f] for f in fields):
            replicas.fail(f"payments' copy of order {order['id']} is version {copy['version']} ({copy['status']}), the order is {order['version']} ({order['status']})")
    return replicas


def groups_caught_up(facts):
    """Every consumer group has read and acknowledged everything (dead letters aside)."""
    groups = Invariant("every consumer group has nothing pending")
    if facts.state.redis is not None:
        for stream in STREAMS:
            if not facts.state.redis.send(("EXISTS", stream))[0]:
                continue
            for group in facts.state.redis.send(("XINFO", "GROUPS", stream))[0]:
                info = dict(zip(group[::2], group[1::2]))
                name = info[b"name"].decode()
                groups.checked += 1
                if info[b"pending"]:
                    groups.fail(f"{stream} group {name}: {info[b'pending']} pending")
                lag = info.get(b"lag")
                if lag:
                    groups.fail(f"{stream} group {name}: {lag} entries not read")
    return groups


INVARIANTS = [
    no_ticket_held_twice, tickets_match_orders, sold_tickets_paid_once, complete_orders_paid_once,
    late_successes_refunded, complete_orders_paid_out_once, refunds_reversed,
    overdue_orders_cancelled, outboxes_delivered, replicas_equal_owners, groups_caught_up,
]


def stream_event_ids(redis, stream, cache):
    """The event ids of every entry of `stream`, read once per check."""
    if stream not in cache:
        cache[stream] = {envelope["id"] for _, envelope in redis.stream(stream)}
    return cache[stream]


def dead_letters(redis):
    """(stream, id, record) of every dead letter, for the report."""
    found = []
    cursor = b"0"
    keys = []
    while True:
        cursor, batch = redis.send(("SCAN", cursor, "MATCH", "events:*:dead-letter:*", "COUNT", 1000))[0]
        keys += batch
        if cursor in (b"0", 0, "0"):
            break
    for key in sorted(set(keys)):
        for entry_id, fields in redis.send(("XRANGE", key, "-", "+"))[0]:
            found.append((key.decode(), entry_id.decode(), json.loads(fields[1])))
    return found


def report(results, out=print):
    """Prints each invariant with its counts; returns whether all hold."""
    ok = True
    for invariant in results:
        mark = "ok  " if not invariant.violations else "FAIL"
        out(f"{mark} {invariant.name}: {invariant.checked} checked, {len(invariant.violations)} violated")
        for violation in invariant.violations[:20]:
            out(f"       {violation}")
        ok = ok and not invariant.violations
    return ok
