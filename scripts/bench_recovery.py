"""Recovery after Redis loses its data, with 7 days of history in the outboxes, on a release build
of spin-host: the whole app against localstripe, housekeeping every second.

1. Real traffic: one seller lists tickets, buyers buy 20 of them through the real routes and
   place 10 more orders left unpaid (they hold their tickets), and the app settles (every
   producer records its acknowledged watermark on the tick). Just before Redis goes, five more
   tickets are listed and ordered: their events are in flight.
2. History: `--rows` (default 100,000) sent outbox rows are written straight into each of the
   tickets, orders, payments and passes databases, spread over the last 7 days (older than the
   live rows: below them in commit order). They stand for a week of events every consumer
   applied long ago, and are what a Redis that lost its data would make the old delivery send
   again in full.
3. Redis is killed and restarted empty. The clock runs until the chaos suite's invariants hold
   again (every row above the watermark on its stream, replicas equal to their owners, nothing
   pending) and until a new purchase (list, order, pay, complete) goes through.

It prints the rows retained, the live rows sent again per database (those in flight), the time to
consistency and to the first purchase after the restart, and exits 1 if consistency takes more
than 60 s or a history row is sent again.
"""

import argparse
import json
import os
import sqlite3
import time
import uuid

import chaos_check
from bench_app import App, call, wait_until
from bench_host import ROOT

WEEK_MS = 7 * 24 * 3600 * 1000
DATABASES = {"tickets": "events:ticket", "orders": "events:order", "payments": "events:payment",
             "passes": "events:pass"}


def purchase(app, seller, buyer, title):
    """A ticket listed by `seller` and bought by `buyer` through the real routes: its order id."""
    status, ticket, _ = call("POST", app.url("/api/tickets"), {"title": title, "price": 25}, seller)
    if status != 201:
        raise SystemExit(f"listing: {status} {ticket}")
    order = place(app, buyer, ticket["id"])
    body = {"orderId": order, "paymentMethodId": "pm_card_visa"}
    wait_until("the payment", lambda: call("POST", app.url("/api/payments"), body, buyer)[0] == 201, 120)
    wait_until("the order complete",
               lambda: call("GET", app.url(f"/api/orders/{order}"), cookie=buyer)[1]["status"] == "complete", 120)
    return order


def place(app, buyer, ticket_id):
    placed = {}

    def ordered():
        status, order, _ = call("POST", app.url("/api/orders"), {"ticketId": ticket_id}, buyer)
        placed.update(order if status == 201 else {})
        return status == 201
    wait_until("the order placed", ordered, 120)
    return placed["id"]


def write_history(app, rows):
    """`rows` sent outbox rows in each database, spread over the last 7 days, below the live
    ones (negative seqs); returns how many were written."""
    now = int(time.time() * 1000)
    written = 0
    for name, stream in DATABASES.items():
        db = sqlite3.connect(os.path.join(app.work, ".spin", f"{name}.db"), timeout=30)
        batch = []
        for n in range(rows):
            at = now - WEEK_MS + 3_600_000 + n * (WEEK_MS - 7_200_000) // rows
            event_id = str(uuid.uuid4())
            envelope = json.dumps({"id": event_id, "subject": "history", "occurredAt": "2026-11-30T00:00:00.000Z",
                                   "data": {}})
            batch.append((n - rows, event_id, stream, envelope, at, at))
        db.executemany("INSERT INTO outbox (seq, event_id, stream, envelope, created_at_ms, sent_at_ms) "
                       "VALUES (?, ?, ?, ?, ?, ?)", batch)
        db.commit()
        db.close()
        written += rows
    return written


def consistent(app):
    results = app.invariants()
    return results, all(not r.violations for r in results)


def count_in_each(app, sql, *args):
    """{database: the count `sql` finds in it}, each database opened read-only."""
    counts = {}
    for name in DATABASES:
        db = sqlite3.connect(f"file:{os.path.join(app.work, '.spin', f'{name}.db')}?mode=ro", uri=True)
        counts[name] = db.execute(sql, args).fetchone()[0]
        db.close()
    return counts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000, help="history rows per database")
    parser.add_argument("--baseline", metavar="DIR",
                        help="an earlier checkout with its builds, measured first (its figures are printed, "
                             "not checked)")
    args = parser.parse_args()
    print(f"spin-host release builds, {os.cpu_count()} cores")
    if args.baseline:
        print(f"== baseline: {args.baseline}", flush=True)
        recover(os.path.abspath(args.baseline), args.rows, checked=False)
        print(f"== this checkout: {ROOT}", flush=True)
    recover(ROOT, args.rows, checked=True)


def recover(root, rows, checked):
    """The run described at the top, on the checkout at `root`. `checked`: exit 1 when
    consistency takes more than 60 s or a history row is sent again; otherwise (a baseline)
    wait up to 10 minutes and only print."""
    limit = 60 if checked else 600
    with App({"housekeeping_interval_seconds": 1}, stripe=True, probe=True, root=root) as app:
        seller = app.sign_up("seller@example.com")
        buyer = app.sign_up("buyer@example.com")
        for n in range(20):
            purchase(app, seller, buyer, f"Sold {n}")
        holder = app.sign_up("holder@example.com")
        for n in range(10):
            status, ticket, _ = call("POST", app.url("/api/tickets"), {"title": f"Held {n}", "price": 30}, seller)
            place(app, holder, ticket["id"])
        app.wait_idle()
        time.sleep(8)  # past the entry check's delay, and a few ticks to record the watermarks
        written = write_history(app, rows)
        print(f"  {written} history rows written ({rows} in each of {', '.join(DATABASES)})")
        time.sleep(3)  # a tick or two: a database with no live rows records its watermark too
        results, ok = consistent(app)
        if not ok:
            chaos_check.report(results, out=lambda line: print("  " + line))
            raise SystemExit("not consistent before the restart")

        # Events in flight as Redis goes: five orders placed a moment before (younger than the
        # entry check's delay, so no watermark covers them yet).
        tickets = [call("POST", app.url("/api/tickets"), {"title": f"Late {n}", "price": 35}, seller)[1]
                   for n in range(5)]
        for ticket in tickets:
            place(app, holder, ticket["id"])
        restarted_ms = int(time.time() * 1000)
        started = time.monotonic()
        app.restart_redis_empty()
        while True:
            results, ok = consistent(app)
            if ok or time.monotonic() - started > limit:
                break
            time.sleep(0.2)
        took = time.monotonic() - started
        chaos_check.report(results, out=lambda line: print("  " + line))
        if not ok:
            message = f"not consistent {limit} s after Redis restarted empty"
            if checked:
                raise SystemExit(message)
            print("  " + message)
            return
        print(f"  consistent {took:.1f} s after Redis restarted empty")
        purchase(app, seller, buyer, "After the restart")
        print(f"  a new purchase complete {time.monotonic() - started:.1f} s after the restart")
        live = count_in_each(app, "SELECT count(*) FROM outbox WHERE seq > 0 AND created_at_ms <= ? "
                                  "AND sent_at_ms >= ?", restarted_ms, restarted_ms)
        print("  live rows sent again: " + ", ".join(f"{name} {count}" for name, count in live.items()))
        history = count_in_each(app, "SELECT count(*) FROM outbox WHERE seq < 0 "
                                     "AND (sent_at_ms IS NULL OR sent_at_ms >= ?)", restarted_ms)
        print(f"  history rows sent again: {sum(history.values())} of {written}")
        if checked and any(history.values()):
            raise SystemExit(f"history rows were sent again: {history}")


if __name__ == "__main__":
    main()
