"""Runs localstripe, the stateful fake Stripe (https://pypi.org/project/localstripe/), for the
tests and for `scripts/up` without a Stripe account.

Unlike `localstripe` itself it listens on 127.0.0.1 only (not every interface), keeps its
state in memory only (localstripe writes every change to /tmp/localstripe.pickle, which would
mix the state of several instances and slow each write), enforces the rules of Stripe's
API that localstripe lacks (stripe_rules.py), and adds what localstripe has not at all
(stripe_connect.py): `Idempotency-Key` on every POST, Stripe Connect (Express accounts, account
and login links, destination charges, transfers and their reversals, application fees, the
platform's and each account's balance, `account.updated` and `transfer.*` events), and, for
tests, injected outages (/_config/faults) and a clock to advance (/_config/clock). Usage, with
the virtual environment's Python (`scripts/setup.sh` installs it under .spin/localstripe):

    python scripts/fake_stripe.py <port>
        serve on 127.0.0.1:<port>
    python scripts/fake_stripe.py <port> --webhook <url> <secret>
        wait until the one on <port> answers, then have it sign every event with <secret> and
        send it to <url> (localstripe's POST /_config/webhooks/<name>)
"""

import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def spawn():
    """For tests: one in a child process on a free loopback port, once it accepts connections;
    (the process, its base URL). The caller kills it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.1)


def serve(port):
    import logging

    from aiohttp import web
    from localstripe import resources

    import stripe_connect
    import stripe_rules

    resources.Store.dump_to_disk = lambda self: None
    stripe_rules.install()
    # Imports localstripe's server itself: it registers its routes as it is imported, after
    # stripe_connect has replaced one of them.
    app = stripe_connect.install()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *_: None)


def register_webhook(port, url, secret):
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            request = urllib.request.Request(f"{base}/v1/payment_intents",
                                             headers={"authorization": "Bearer sk_test_localstripe"})
            urllib.request.urlopen(request, timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"localstripe did not answer on {base}")
            time.sleep(0.1)
    data = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
    urllib.request.urlopen(f"{base}/_config/webhooks/app", data=data, timeout=5).close()


def main():
    port = int(sys.argv[1])
    if sys.argv[2:3] == ["--webhook"]:
        register_webhook(port, sys.argv[3], sys.argv[4])
    else:
        serve(port)


if __name__ == "__main__":
    main()
