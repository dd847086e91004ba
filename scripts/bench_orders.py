"""Orders and the expiration timer on a release build of spin-host:

1. Order creation: `POST /api/orders` at 32 connections (wrk, 2 threads), each request for a
   different ticket listed beforehand, so every one is a real 201; requests/s, p50/p99 and host
   CPU per request.
2. Expiry lateness: 200 orders with a 2-second window, placed at 50 per second; for each, the
   time from its `expiresAt` to the append of its `expiration:complete` to `events:expiration`,
   and to the append of the `ticket:updated` that puts its ticket back on sale (the tickets
   service appends it right after the commit that lists the ticket again, so this bounds the
   moment the ticket is listed from above). Both are Redis stream ids, whose clock is this
   machine's: millisecond resolution.

Run through scripts/bench-orders, which builds everything first.
"""

import os
import sys
import tempfile
import time

from bench_app import App, call, wait_until
from bench_auth import percentile
from bench_host import CONNECTIONS, cpu_seconds, peak_rss_mb, run_wrk

# wrk reads the ticket ids from a file; each of its threads takes every second one, so no two
# requests order the same ticket.
WRK_SCRIPT = """
local ids = {}
local threads = 0

function setup(thread)
  thread:set("first", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  next_index = first + 1
  headers = { ["content-type"] = "application/json", ["cookie"] = args[2] }
end

function request()
  local id = ids[next_index]
  next_index = next_index + 2
  if id == nil then
    error("ran out of tickets: list more before the run")
  end
  return wrk.format("POST", "/api/orders", headers, '{"ticketId":"' .. id .. '"}')
end
"""

WARM_UP_TICKETS = 10_000
EXPIRING_ORDERS = 200
ORDERS_PER_SECOND = 50


def stats(values):
    return f"p50 {percentile(values, 50)} ms, p99 {percentile(values, 99)} ms, max {max(values)} ms"


def order_creation(seconds):
    with App() as app, tempfile.TemporaryDirectory() as work:
        seller = app.sign_up("seller@example.com")
        buyer = app.sign_up("buyer@example.com")
        script = os.path.join(work, "orders.lua")
        with open(script, "w") as f:
            f.write(WRK_SCRIPT)
        url = app.url("/api/orders")

        def ticket_list(name, count):
            tickets = app.create_tickets(seller, count)
            last = tickets[-1]["id"]
            wait_until("the orders replica to hold every ticket",
                       lambda: call("POST", url, {"ticketId": last}, seller)[0] == 400)
            app.wait_idle()
            path = os.path.join(work, name)
            with open(path, "w") as f:
                f.write("\n".join(t["id"] for t in tickets) + "\n")
            return path

        # A 2-second warm-up tells the rate, and so how many tickets the measured run needs.
        warm_up = WARM_UP_TICKETS
        print(f"listing {warm_up} tickets for the warm-up ...", flush=True)
        requests, _, _ = run_wrk(url, 2, script=script, args=[ticket_list("warm.txt", warm_up), buyer])
        needed = int(requests / 2 * seconds * 1.5) + 1000
        print(f"listing {needed} tickets for the measured run ...", flush=True)
        ids = ticket_list("run.txt", needed)
        app.wait_idle()
        before = cpu_seconds(app.host.pid)
        requests, p50, p99 = run_wrk(url, seconds, script=script, args=[ids, buyer])
        cpu = cpu_seconds(app.host.pid) - before
        print(f"POST /api/orders, {CONNECTIONS} connections, {seconds} s: {requests / seconds:.0f} orders/s, "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, host CPU {cpu / requests * 1e6:.0f} us/request")
        print(f"host peak RSS: {peak_rss_mb(app.host.pid):.0f} MB")


def expiry_lateness():
    with App({"order_window_seconds": 2}) as app:
        seller = app.sign_up("seller@example.com")
        buyer = app.sign_up("buyer@example.com")
        tickets = app.create_tickets(seller, EXPIRING_ORDERS)
        last = tickets[-1]["id"]
        wait_until("the orders replica to hold every ticket",
                   lambda: call("POST", app.url("/api/orders"), {"ticketId": last}, seller)[0] == 400)
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
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"spin-host release build, {os.cpu_count()} cores, load generators on the same machine")
    order_creation(seconds)
    expiry_lateness()


if __name__ == "__main__":
    main()
