"""Payments on a release build of spin-host, against localstripe (the fake Stripe):

1. Payment requests: 200 orders, each paid with `POST /api/payments {orderId,
   paymentMethodId: pm_card_visa}` one after the other (creating, updating and confirming the
   PaymentIntent: three calls to Stripe per payment); p50/p99 of the whole request, and host CPU
   per payment. localstripe is a single-threaded Python server, so its own time is included.
2. The payments component: its size, and its cold start: from starting a host that serves only
   the payments component to its first 200 (`GET /api/payments/config`), with an empty compile
   cache (the component is compiled) and with a warm one (best of 3).

Run through scripts/bench-payments, which builds everything first.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench_app import App, call, wait_until
from bench_auth import HOST, percentile
from bench_host import ROOT, cpu_seconds, free_port, wait_for

PAYMENTS = 200
WASM = os.path.join(ROOT, "target/wasm32-wasip2/release/payments.wasm")

# Just the payments component, as spin.toml declares it (same variables and grants).
MANIFEST = """spin_manifest_version = 2

[application]
name = "payments-only"

[variables]
jwt_public_key = {{ default = "{public_key}" }}
stripe_api_base = {{ default = "http://127.0.0.1:9" }}

[[trigger.http]]
route = "/api/payments/..."
component = "payments"

[component.payments]
source = "{wasm}"
sqlite_databases = ["payments"]
allowed_outbound_hosts = ["{{{{ stripe_api_base }}}}"]

[component.payments.variables]
jwt_public_key = "{{{{ jwt_public_key }}}}"
stripe_api_base = "{{{{ stripe_api_base }}}}"
stripe_secret_key = "sk_test_bench"
stripe_webhook_secret = "whsec_bench"
stripe_publishable_key = "pk_test_bench"
stripe_js_url = "https://js.stripe.com/v3/"
currency = "usd"
"""


def payment_requests():
    with App(stripe=True) as app:
        seller = app.sign_up("seller@example.com")
        buyer = app.sign_up("buyer@example.com")
        tickets = app.create_tickets(seller, PAYMENTS)
        orders = []
        for ticket in tickets:
            def place():
                status, order, _ = call("POST", app.url("/api/orders"), {"ticketId": ticket["id"]}, buyer)
                if status == 201:
                    orders.append(order["id"])
                return status != 404
            wait_until("the ticket in the orders replica", place)
        last = orders[-1]
        wait_until("every order in the payments replica",
                   lambda: call("POST", app.url("/api/payments"), {"orderId": last}, buyer)[0] == 201)
        app.wait_idle()
        latencies = []
        before = cpu_seconds(app.host.pid)
        for order_id in orders[:-1]:
            started = time.monotonic()
            status, payment, _ = call("POST", app.url("/api/payments"),
                                      {"orderId": order_id, "paymentMethodId": "pm_card_visa"}, buyer)
            latencies.append((time.monotonic() - started) * 1000)
            if status != 201 or payment["status"] != "succeeded":
                raise SystemExit(f"paying {order_id}: {status} {payment}")
        cpu = cpu_seconds(app.host.pid) - before
        print(f"POST /api/payments with pm_card_visa against localstripe, {len(latencies)} in a row: "
              f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
              f"host CPU {cpu / len(latencies) * 1e6:.0f} us/payment (including the events it sets off)")


def first_200(work, cache_dir, public_key):
    port = free_port()
    env = {"PATH": os.environ["PATH"], "SPIN_HOST_CACHE_DIR": cache_dir}
    started = time.monotonic()
    host = subprocess.Popen([HOST, "up", "-f", os.path.join(work, "spin.toml"), "--listen", f"127.0.0.1:{port}",
                             "--runtime-config-file", os.path.join(work, "runtime-config.toml"),
                             "--state-dir", os.path.join(work, ".spin"), "--quiet"],
                            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/payments/config", started + 120)
        return (time.monotonic() - started) * 1000
    finally:
        host.terminate()
        host.wait()


def cold_start():
    size = os.path.getsize(WASM)
    events_size = os.path.getsize(os.path.join(ROOT, "target/wasm32-wasip2/release/payments_events.wasm"))
    print(f"payments.wasm {size / 1e6:.2f} MB, payments_events.wasm {events_size / 1e6:.2f} MB")
    from bench_auth import generate_keys
    with tempfile.TemporaryDirectory() as work, tempfile.TemporaryDirectory() as cache:
        _, public_key = generate_keys(work)
        with open(os.path.join(work, "spin.toml"), "w") as f:
            f.write(MANIFEST.format(public_key=public_key, wasm=WASM))
        with open(os.path.join(work, "runtime-config.toml"), "w") as f:
            f.write('[sqlite_database.payments]\ntype = "spin"\npath = "payments.db"\n')
        cold = first_200(work, cache, public_key)
        warm = min(first_200(work, cache, public_key) for _ in range(3))
        print(f"payments component alone, up -> first 200: {cold:.0f} ms with an empty compile cache, "
              f"{warm:.0f} ms with a warm one")


def main():
    print(f"spin-host release build, {os.cpu_count()} cores, localstripe on the same machine")
    cold_start()
    payment_requests()


if __name__ == "__main__":
    main()
