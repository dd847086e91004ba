"""The expiration timer on a release build of spin-host (order creation under load is in
scripts/bench-app, with every other route).

Expiry lateness: 200 orders with a 2-second window, placed at 50 per second; for each, the
   time from its `expiresAt` to the append of its `expiration:complete` to `events:expiration`,
   and to the append of the `ticket:updated` that puts its ticket back on sale (the tickets
   service appends it right after the commit that lists the ticket again, so this bounds the
   moment the ticket is listed from above). Both are Redis stream ids, whose clock is this
   machine's: millisecond resolution.

Run through scripts/bench-orders, which builds everything first.
"""

import os
import time

from bench_app import App, call, wait_until
from bench_auth import percentile

EXPIRING_ORDERS = 200
ORDERS_PER_SECOND = 50


def stats(values):
    return f"p50 {percentile(values, 50)} ms, p99 {percentile(values, 99)} ms, max {max(values)} ms"


def expiry_lateness():
    with App({"order_window_seconds": 2}) as app:
        seller = app.sign_up("seller@example.com")
        buyer = app.sign_up("buyer@example.com")
        tickets = app.list_for_sale(seller, EXPIRING_ORDERS)
        app.wait_idle()
        expires = {}  # order id -> (expiresAt ms, ticket id)
        started = time.monotonic()
        for i, ticket in enumerate(tickets):
            delay = started + i / ORDERS_PER_SECOND - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            status, order, _ = call("POST", app.url("/api/orders"), {"ticketId": ticket["id"]}, buyer)
            if status != 201:
                raise SystemExit(f"ordering: {status} {order}")
            expires[order["id"]] = (iso_ms(order["expiresAt"]), ticket["id"])

        def released():
            return {event["data"]["id"]: ms for ms, event in app.redis.stream("events:ticket")
                    if event["subject"] == "ticket:updated" and event["data"]["status"] == "available"}

        wait_until("every ticket for sale again", lambda: len(released()) >= EXPIRING_ORDERS, seconds=60)
        completed = {event["data"]["orderId"]: ms for ms, event in app.redis.stream("events:expiration")}
        on_sale = released()
        to_published = [completed[order] - at for order, (at, _) in expires.items()]
        to_on_sale = [on_sale[ticket] - at for at, ticket in expires.values()]
        early = [late for late in to_published if late < 0]
        if early:
            raise SystemExit(f"{len(early)} orders expired before their time: {early[:5]}")
        print(f"expiry lateness over {EXPIRING_ORDERS} orders (window 2 s, {ORDERS_PER_SECOND} orders/s):")
        print(f"  expiresAt -> expiration:complete published: {stats(to_published)}")
        print(f"  expiresAt -> ticket for sale again:         {stats(to_on_sale)}")


def iso_ms(text):
    """Unix milliseconds of an RFC 3339 UTC timestamp with milliseconds."""
    import calendar
    seconds = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1000 + int(text[20:23])


def main():
    print(f"spin-host release build, {os.cpu_count()} cores, load generators on the same machine")
    expiry_lateness()


if __name__ == "__main__":
    main()
