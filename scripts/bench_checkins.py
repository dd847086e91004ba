"""Door check-in on a release build of spin-host, the whole app against localstripe.

Seeded first: 300 tickets bought by one buyer through the real routes (order, pay with
pm_card_visa) and their passes fetched. Then, as the ticket's issuer:

1. First scans: each of 200 passes scanned once, 32 at a time (POST /api/checkins with a new
   nonce): every answer `ok`; p50/p99 of the request.
2. Under load: wrk, 2 threads, 32 connections, a 2-second warm-up, then the measured run,
   cycling over the other 100 passes with a fresh nonce per request: the first scan of each is
   `ok`, every later one `already_redeemed` (what a door sees when a pass is shown twice, and
   the same work: the signature checked, the check-in looked up and the scan recorded).
   Requests/s, p50/p99 and host CPU per request.

Run through scripts/bench-checkins, which builds everything first.
"""

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from bench_app import App, call, wait_until
from bench_auth import percentile
from bench_host import CONNECTIONS, NUMBERED_THREADS, cpu_seconds, run_wrk

TICKETS = 300
FIRST_SCANS = 200

# Each request scans the next pass of the list (each thread starting at its own) with a nonce
# of its own.
SCAN_SCRIPT = NUMBERED_THREADS + """
function init(args)
  secrets = {}
  for line in io.lines(args[1]) do secrets[#secrets + 1] = line end
  headers = { ["content-type"] = "application/json", ["cookie"] = args[2] }
  n = first
  count = 0
end

function request()
  n = n + 1
  count = count + 1
  local secret = secrets[n % #secrets + 1]
  local nonce = "bench-" .. first .. "-" .. count
  return wrk.format("POST", "/api/checkins", headers, '{"secret":"' .. secret .. '","nonce":"' .. nonce .. '"}')
end
"""


def buy_passes(app, seller, buyer):
    """The secrets of `TICKETS` passes, each ticket listed by `seller` and bought by `buyer`."""
    tickets = app.list_for_sale(seller, TICKETS)
    orders = []
    for ticket in tickets:
        status, order, _ = call("POST", app.url("/api/orders"), {"ticketId": ticket["id"]}, buyer)
        if status != 201:
            raise SystemExit(f"ordering: {status} {order}")
        orders.append(order["id"])
    last = orders[-1]
    wait_until("every order in the payments replica",
               lambda: call("POST", app.url("/api/payments"), {"orderId": last}, buyer)[0] == 201)

    def pay(order_id):
        status, payment, _ = call("POST", app.url("/api/payments"),
                                  {"orderId": order_id, "paymentMethodId": "pm_card_visa"}, buyer)
        if status != 201 or payment["status"] != "succeeded":
            raise SystemExit(f"paying {order_id}: {status} {payment}")

    for order_id in orders:
        pay(order_id)
    secrets = []
    for ticket in tickets:
        found = {}

        def issued():
            status, body, _ = call("GET", app.url(f"/api/tickets/{ticket['id']}/pass"), cookie=buyer)
            found.update(body if status == 200 else {})
            return status == 200
        wait_until("the pass issued", issued)
        secrets.append(found["secret"])
    app.wait_idle()
    return secrets


def scan(app, seller, secret, nonce):
    started = time.monotonic()
    status, answer, _ = call("POST", app.url("/api/checkins"), {"secret": secret, "nonce": nonce}, seller)
    elapsed = (time.monotonic() - started) * 1000
    if status != 200:
        raise SystemExit(f"check-in: {status} {answer}")
    return answer["result"], elapsed


def main():
    print(f"spin-host release build, {os.cpu_count()} cores, load generators on the same machine")
    with App(stripe=True) as app, tempfile.TemporaryDirectory() as work:
        seller = app.sign_up("issuer@example.com")
        buyer = app.sign_up("holder@example.com")
        secrets = buy_passes(app, seller, buyer)

        with ThreadPoolExecutor(CONNECTIONS) as pool:
            first = list(pool.map(lambda i: scan(app, seller, secrets[i], f"first-{i}"), range(FIRST_SCANS)))
        results = {result for result, _ in first}
        if results != {"ok"}:
            raise SystemExit(f"first scans answered {results}, not only ok")
        latencies = [ms for _, ms in first]
        print(f"first scans of {FIRST_SCANS} passes, {CONNECTIONS} at a time, every one ok: "
              f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms")

        listing = os.path.join(work, "secrets.txt")
        with open(listing, "w") as f:
            f.write("\n".join(secrets[FIRST_SCANS:]) + "\n")
        script = os.path.join(work, "scan.lua")
        with open(script, "w") as f:
            f.write(SCAN_SCRIPT)
        url = app.url("/api/checkins")
        run_wrk(url, 2, script=script, args=[listing, seller])
        seconds = 10
        before = cpu_seconds(app.host.pid)
        requests, p50, p99 = run_wrk(url, seconds, script=script, args=[listing, seller])
        cpu = cpu_seconds(app.host.pid) - before
        print(f"POST /api/checkins under wrk -t2 -c{CONNECTIONS} over {TICKETS - FIRST_SCANS} passes "
              f"(already_redeemed after each one's first scan): {requests / seconds:.0f} req/s, "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, host CPU {cpu / requests * 1e6:.0f} us/request")
        status, answer, _ = call("POST", url, {"secret": secrets[-1], "nonce": "last"}, seller)
        if status != 200 or answer["result"] != "already_redeemed":
            raise SystemExit(f"after the run the pass answers {status} {answer}")


if __name__ == "__main__":
    main()
