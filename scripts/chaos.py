"""The fault and load run behind `scripts/chaos` (issue 12): the whole app on the release host,
with its own redis-server and localstripe, under many simulated users while things break; then,
once it is quiet, every invariant of chaos_check.py, a quiet-app healing check, and figures.

Usage: chaos.py [--duration SECONDS] [--users N] [--seed N] [--fault-every SECONDS]
Exits 1 when an invariant fails, a canary purchase does not complete after a fault, an event
is dead-lettered, a request got no answer (or a 5xx) while the host was up, or the host's memory
grew.

Redis runs as it is shipped (`appendfsync everysec`, as deploy/redis.yaml and the host's private
Redis): a crash may lose the last second of writes it acknowledged, and `redis_power_loss`
makes it lose them.
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict

import chaos_check
from bench_app import LOCALSTRIPE_PYTHON, Resp, tcp_ready, wait_until
from bench_auth import HOST as RELEASE_HOST, generate_keys
from bench_host import ROOT, free_port

# The host to run: the release build unless SPIN_HOST names another (CI's short run uses the
# debug build the tests already made).
HOST = os.path.join(ROOT, os.environ.get("SPIN_HOST", RELEASE_HOST))
WEBHOOK_SECRET = "whsec_chaos"
ORDER_WINDOW_SECONDS = 6
GOOD_CARD, DECLINED_CARD = "pm_card_visa", "pm_card_chargeCustomerFail"


def now_ms():
    return int(time.time() * 1000)


class Processes:
    """Redis, localstripe and the host, each stoppable and restartable on its own port."""

    def __init__(self, work):
        self.work = work
        self.redis_port, self.stripe_port, self.http_port = free_port(), free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.stripe_base = f"http://127.0.0.1:{self.stripe_port}"
        self.private, self.public = generate_keys(work)
        self.pass_key, _ = generate_keys(work)
        shutil.copy(os.path.join(ROOT, "runtime-config.toml"), work)
        self.redis = self.stripe = self.host = None
        self.host_log = open(os.path.join(work, "host.log"), "ab")

    def start_redis(self, keep_data=True):
        data = os.path.join(self.work, "redis")
        if not keep_data:
            shutil.rmtree(data, ignore_errors=True)
        os.makedirs(data, exist_ok=True)
        self.redis = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--notify-keyspace-events", "Ex",
             "--hz", "100", "--dir", data], stdout=subprocess.DEVNULL)
        wait_until("redis-server", lambda: tcp_ready(self.redis_port))

    def start_stripe(self):
        self.stripe = subprocess.Popen([LOCALSTRIPE_PYTHON, os.path.join(ROOT, "scripts/fake_stripe.py"),
                                        str(self.stripe_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def register_webhook(self):
        subprocess.run([LOCALSTRIPE_PYTHON, os.path.join(ROOT, "scripts/fake_stripe.py"), str(self.stripe_port),
                        "--webhook", f"{self.base}/api/payments/webhook", WEBHOOK_SECRET], check=True)

    def start_host(self):
        env = {"PATH": os.environ["PATH"], "SPIN_VARIABLE_REDIS_ADDRESS": f"redis://127.0.0.1:{self.redis_port}",
               "SPIN_VARIABLE_JWT_PRIVATE_KEY": self.private, "SPIN_VARIABLE_JWT_PUBLIC_KEY": self.public,
               "SPIN_VARIABLE_PASS_SIGNING_KEY": self.pass_key,
               "SPIN_VARIABLE_PLAIN_HTTP": "true", "SPIN_VARIABLE_STRIPE_API_BASE": self.stripe_base,
               "SPIN_VARIABLE_STRIPE_SECRET_KEY": "sk_test_chaos",
               "SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
               "SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY": "pk_test_chaos",
               "SPIN_VARIABLE_ORDER_WINDOW_SECONDS": str(ORDER_WINDOW_SECONDS),
               "SPIN_VARIABLE_HOUSEKEEPING_INTERVAL_SECONDS": "1",
               "SPIN_VARIABLE_SIGNIN_MAX_ATTEMPTS_PER_ADDRESS": "1000000"}
        self.host_started = time.monotonic()
        self.host = subprocess.Popen(
            [HOST, "up", "--listen", f"127.0.0.1:{self.http_port}", "--runtime-config-file",
             os.path.join(self.work, "runtime-config.toml"), "--state-dir", os.path.join(self.work, ".spin"),
             "--quiet", "--probe", "/api/heartbeat", "--probe-interval", "1", "-f", os.path.join(ROOT, "spin.toml")],
            cwd=self.work, env=env, stdout=self.host_log, stderr=self.host_log)
        wait_until("the host", lambda: http_ready(self.base + "/api/heartbeat"))

    def start_host_warm(self):
        """Starts the host, waits until it has compiled every component into its compile cache,
        and starts it again from that cache, as every later restart in the run is: the run's
        memory figures are then the purchase mix's, not the one-off compile's. The compile's
        peak RSS, in MB."""
        self.start_host()
        wait_until("every component compiled", self.compiled, seconds=300)
        peak = self.status_mb("VmHWM")
        self.host.terminate()
        self.host.wait()
        self.start_host()
        return peak

    def compiled(self):
        self.host_log.flush()
        with open(self.host_log.name, "rb") as log:
            return b"Components ready" in log.read()

    def rss_mb(self):
        return self.status_mb("VmRSS")

    def status_mb(self, field):
        try:
            with open(f"/proc/{self.host.pid}/status") as status:
                for line in status:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def stop(self):
        for process in (self.host, self.stripe, self.redis):
            if process and process.poll() is None:
                process.kill()
                process.wait()


def http_ready(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Stats:
    """Every request's route, status and latency, and when the host was down."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency = defaultdict(list)
        self.server_errors = []  # (time, route, status)
        self.unanswered = []  # (sent, given up, route): no answer at all (refused, reset or timed out)
        self.down = []  # (start, end) of host outages, end None while down
        self.purchases = 0

    def record(self, route, status, seconds):
        with self.lock:
            self.latency[route].append(seconds)
            if status >= 500:
                self.server_errors.append((time.time(), route, status))
            if status == 0:
                now = time.time()
                self.unanswered.append((now - seconds, now, route))

    def host_was_down(self, at, until=None):
        """Whether the host was down at `at`, or at some time from `at` to `until`."""
        until = at if until is None else until
        return any(start - 1 <= until and at <= (end or time.time()) + 1 for start, end in self.down)


class Client:
    def __init__(self, base, stats, rng):
        self.base, self.stats, self.rng = base, stats, rng
        self.cookie = None

    def call(self, method, path, body=None, route=None, retries=3):
        """One request, retried when it times out or the host is unreachable; (status, JSON)."""
        route = route or path
        for attempt in range(retries + 1):
            headers = {"content-type": "application/json"}
            if self.cookie:
                headers["cookie"] = self.cookie
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
            started = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    text = response.read()
                    self.stats.record(route, response.status, time.monotonic() - started)
                    if response.headers.get("set-cookie"):
                        self.cookie = response.headers["set-cookie"].split(";")[0]
                    return response.status, parsed(text)
            except urllib.error.HTTPError as error:
                text = error.read()
                self.stats.record(route, error.code, time.monotonic() - started)
                return error.code, parsed(text)
            except (OSError, urllib.error.URLError):
                self.stats.record(route, 0, time.monotonic() - started)
                time.sleep(0.5 * (attempt + 1))
        return 0, None


def parsed(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def onboard(client):
    """The seller connects a payout account and completes the fake Stripe's onboarding, as their
    browser would: whether it got that far (Stripe or the host may be away)."""
    status, account = client.call("POST", "/api/payouts/account", {}, route="/api/payouts/account")
    if status != 201:
        return False
    try:
        urllib.request.urlopen(account["url"], timeout=10).close()
    except (OSError, urllib.error.URLError):
        return False
    return True


def user(number, base, stats, rng, deadline, tickets_seen):
    client = Client(base, stats, rng)
    status, _ = client.call("POST", "/api/users/signup", {"email": f"user{number}-{rng.random():.8f}@example.com",
                                                           "password": "password1"})
    if status != 201:
        return
    # Half the sellers connect a payout account once they have sold a while: their first sales
    # wait for it, the later ones are destination charges.
    onboard_at = time.time() + rng.uniform(5, 60) if rng.random() < 0.5 else None
    while time.time() < deadline:
        time.sleep(rng.uniform(0, 0.3))  # a user thinks between clicks
        if onboard_at is not None and time.time() > onboard_at:
            onboard_at = None if onboard(client) else time.time() + 5
        if rng.random() < 0.1:
            status, ticket = client.call("POST", "/api/tickets", {"title": f"Show {rng.randint(1, 10**6)}",
                                                                  "price": rng.randint(5, 200)})
            if status == 201:
                tickets_seen.append((ticket["id"], time.time()))
            continue
        # Users race for the same few tickets listed a moment ago (the orders service learns of
        # a ticket from its event, so a brand-new one is not orderable yet).
        settled = [ticket for ticket, at in tickets_seen[-60:] if time.time() - at > 2][-30:]
        if not settled:
            continue
        status, order = client.call("POST", "/api/orders", {"ticketId": rng.choice(settled)},
                                    route="/api/orders")
        if status != 201:
            continue
        order_id = order["id"]
        fate = rng.random()
        if fate < 0.5:
            card = DECLINED_CARD if rng.random() < 0.2 else GOOD_CARD
            if rng.random() < 0.15:
                # A slow payer, racing the end of the window: a payment that succeeds for an order
                # that expired meanwhile must be refunded.
                time.sleep(ORDER_WINDOW_SECONDS - rng.uniform(0, 1.5))
            for _ in range(20):  # payments learns of the order from its event: 404 until then
                status, _ = client.call("POST", "/api/payments", {"orderId": order_id, "paymentMethodId": card},
                                        route="/api/payments")
                if status != 404:
                    break
                time.sleep(0.2)
            if status == 201 and card == GOOD_CARD:
                with stats.lock:
                    stats.purchases += 1
        elif fate < 0.7:
            client.call("DELETE", f"/api/orders/{order_id}", route="/api/orders/:id")
        # else: abandoned, to expire.
        client.call("GET", f"/api/orders/{order_id}", route="/api/orders/:id")


class Memory:
    """Samples the host's RSS every second under load. `warm` is the host's RSS once its last run
    is warmed up: from 20 s after its (re)start, or halfway to the end of the load if that is
    later, since the pooling allocator's resident slots grow with the busiest moment so far.
    `end` is its RSS at the end of the load. Each is the median of `WINDOW` samples (fewer when
    the run is shorter), because one second's RSS swings by 10 MB with the instances alive at
    that moment. `peak` is the largest sample; `series` one sample every 10 s, for the report."""

    WINDOW = 30

    def __init__(self, processes, deadline):
        self.p, self.deadline = processes, deadline
        self.warm_samples, self.last_samples = [], []
        self.peak = 0
        self.peak_at = None
        self.series = []
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    @property
    def warm(self):
        return statistics.median(self.warm_samples) if self.warm_samples else None

    @property
    def end(self):
        return statistics.median(self.last_samples) if self.last_samples else None

    def sample(self):
        pid, warm_at = None, None
        tick = 0
        while time.time() < self.deadline:
            if self.p.host.pid != pid:
                pid, self.warm_samples, self.last_samples = self.p.host.pid, [], []
                started = time.time() - (time.monotonic() - self.p.host_started)
                warm_at = max(started + 20, started + (self.deadline - started) / 2)
            rss = self.p.rss_mb()
            if rss and time.time() >= warm_at:
                if len(self.warm_samples) < self.WINDOW:
                    self.warm_samples.append(rss)
                self.last_samples = (self.last_samples + [rss])[-self.WINDOW:]
            if (rss or 0) > self.peak:
                self.peak, self.peak_at = rss, time.time()
            if tick % 10 == 0 and rss:
                self.series.append(round(rss))
            tick += 1
            time.sleep(1)


def sign_webhook(payload):
    timestamp = str(int(time.time()))
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


class Faults:
    """Breaks one thing at a time, in turn, and times how long the app takes to work again."""

    NAMES = ("redis_restart", "redis_power_loss", "redis_restart_empty", "host_kill", "stripe_pause",
             "webhooks_replayed", "consumers_fail", "duplicate_events")

    def __init__(self, processes, stats, rng, names=NAMES):
        self.p, self.stats, self.rng = processes, stats, rng
        self.names = names
        self.recoveries = defaultdict(list)
        self.started = []  # (time, name) of each fault

    def last_before(self, at):
        """The fault struck last before `at`, and how long before: ("none", 0) before the first."""
        earlier = [(start, name) for start, name in self.started if start <= at]
        if not earlier:
            return "none", 0.0
        start, name = earlier[-1]
        return name, at - start

    def run(self, deadline, every):
        faults = [getattr(self, name) for name in self.names]
        turn = self.rng.randrange(len(faults))  # which fault comes first depends on the seed
        while time.time() + every < deadline:
            time.sleep(every)
            fault = faults[turn % len(faults)]
            turn += 1
            print(f"  fault: {fault.__name__}", flush=True)
            self.started.append((time.time(), fault.__name__))
            fault()
            started = time.monotonic()
            if canary(self.p.base):
                self.recoveries[fault.__name__].append(time.monotonic() - started)
            else:
                self.recoveries[fault.__name__].append(float("inf"))

    def redis_restart(self, keep_data=True):
        self.p.redis.kill()
        self.p.redis.wait()
        time.sleep(2)
        self.p.start_redis(keep_data=keep_data)

    def redis_power_loss(self):
        """Redis killed as by a power cut, losing what it had not fsynced: its append-only file is
        cut back to its size of more than a second before, which `appendfsync everysec` allows.
        The epoch and everything older survive, so only the entry check can tell."""
        directory = os.path.join(self.p.work, "redis", "appendonlydir")

        def incremental():
            names = [n for n in os.listdir(directory) if n.endswith(".incr.aof")]
            return os.path.join(directory, max(names, key=lambda n: int(n.split(".")[-3]))) if names else None

        before = incremental()
        size = os.path.getsize(before) if before else 0
        time.sleep(1.5)  # the load goes on: these writes are the ones lost
        self.p.redis.send_signal(signal.SIGKILL)
        self.p.redis.wait()
        if before and incremental() == before:
            lost = os.path.getsize(before) - size
            with open(before, "r+b") as aof:
                aof.truncate(size)
            print(f"    {lost} bytes of acknowledged writes lost", flush=True)
        time.sleep(1)
        self.p.start_redis(keep_data=True)

    def redis_restart_empty(self):
        self.redis_restart(keep_data=False)

    def host_kill(self):
        self.stats.down.append((time.time(), None))
        self.p.host.send_signal(signal.SIGKILL)
        self.p.host.wait()
        time.sleep(1)
        self.p.start_host()
        self.stats.down[-1] = (self.stats.down[-1][0], time.time())

    def stripe_pause(self):
        self.p.stripe.send_signal(signal.SIGSTOP)
        time.sleep(5)
        self.p.stripe.send_signal(signal.SIGCONT)

    def webhooks_replayed(self):
        """Successes from the first page of Stripe's list of intents, sent again twice each."""
        started = time.monotonic()
        try:
            intents = chaos_check.first_intents(self.p.stripe_base)
        except OSError:
            return
        listed = time.monotonic()
        succeeded = [i for i in intents if i["status"] == "succeeded"][:10]
        for intent in succeeded * 2:
            payload = json.dumps({"id": f"evt_replay_{self.rng.randint(0, 10**9)}", "object": "event",
                                  "type": "payment_intent.succeeded", "data": {"object": intent},
                                  "created": int(time.time()), "livemode": False, "api_version": "2024-06-20"})
            request = urllib.request.Request(self.p.base + "/api/payments/webhook", data=payload.encode(),
                                             headers={"content-type": "application/json",
                                                      "stripe-signature": sign_webhook(payload)})
            try:
                urllib.request.urlopen(request, timeout=10).read()
            except (OSError, urllib.error.URLError):
                pass
        print(f"    Stripe listed its intents in {listed - started:.2f} s; {len(succeeded) * 2} webhooks "
              f"answered in {time.monotonic() - listed:.2f} s", flush=True)

    def consumers_fail(self):
        """Holds the orders database's write lock for 3 s: every write to it fails meanwhile, the
        consumers' included, and is retried."""
        path = os.path.join(self.p.work, ".spin", "orders.db")
        db = sqlite3.connect(path, timeout=10)
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(3)
        db.rollback()
        db.close()

    def duplicate_events(self):
        """Recent events of every stream published again, as a misbehaving producer would."""
        try:
            redis = Resp(self.p.redis_port)
            for stream in chaos_check.STREAMS:
                entries = redis.send(("XREVRANGE", stream, "+", "-", "COUNT", 10))[0] or []
                for _, fields in entries:
                    envelope = fields[1]
                    subject = json.loads(envelope)["subject"]
                    redis.send(("XADD", stream, "*", "event", envelope), ("PUBLISH", subject, envelope))
        except (OSError, RuntimeError):
            pass


def canary(base, seconds=60):
    """A whole purchase through every event hop it needs: a ticket listed by one user, ordered by
    another, paid with a good card, the order complete and the ticket sold. True once it worked."""
    deadline = time.monotonic() + seconds
    stats = Stats()
    seller, buyer = Client(base, stats, None), Client(base, stats, None)
    for client, name in ((seller, "seller"), (buyer, "buyer")):
        client.call("POST", "/api/users/signup", {"email": f"canary-{name}-{time.time_ns()}@example.com",
                                                  "password": "password1"}, retries=20)
    status, ticket = seller.call("POST", "/api/tickets", {"title": "Canary", "price": 1}, retries=20)
    if status != 201:
        return False

    def until(check):
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.1)
        return None

    def place():
        status, order = buyer.call("POST", "/api/orders", {"ticketId": ticket["id"]})
        return order["id"] if status == 201 else None

    def pay(order_id):
        """Paid; or False once the order is not payable any more (400: it expired)."""
        while time.monotonic() < deadline:
            status, payment = buyer.call("POST", "/api/payments",
                                         {"orderId": order_id, "paymentMethodId": GOOD_CARD})
            if status == 201 and payment.get("status") == "succeeded":
                return True
            if status == 400:
                return False
            time.sleep(0.1)  # 404 until payments learns of the order; 502 while Stripe is away
        return False

    def complete(order_id):
        status, order = buyer.call("GET", f"/api/orders/{order_id}")
        return status == 200 and order["status"] == "complete"

    def sold():
        status, current = seller.call("GET", f"/api/tickets/{ticket['id']}")
        return status == 200 and current["status"] == "sold"

    # An order may expire before its payment goes through (the fault held something up for
    # longer than the window): then the ticket comes back and the canary orders again.
    while time.monotonic() < deadline:
        order_id = until(place)
        if order_id is None or not pay(order_id):
            continue
        if until(lambda: complete(order_id)) and until(sold):
            return True
    return False


def state_of(p):
    return chaos_check.State(chaos_check.open_databases(os.path.join(p.work, ".spin")), now_ms(),
                             Resp(p.redis_port), chaos_check.stripe_objects(p.stripe_base))


def settle(p, seconds):
    """Checks until every invariant holds or `seconds` pass; (results, seconds it took)."""
    started = time.monotonic()
    while True:
        state = state_of(p)
        results = chaos_check.check(state, expiry_grace_ms=5000)
        for db in state.dbs.values():
            db.close()
        if all(not r.violations for r in results) or time.monotonic() - started > seconds:
            return results, time.monotonic() - started
        time.sleep(1)


def quiet_heal(p):
    """Redis restarted empty while an order's event waits in its outbox, then no traffic: how long
    until every outbox is drained and the overdue order expired."""
    stats = Stats()
    seller, buyer = Client(p.base, stats, None), Client(p.base, stats, None)
    seller.call("POST", "/api/users/signup", {"email": f"quiet-s-{time.time_ns()}@example.com", "password": "password1"})
    buyer.call("POST", "/api/users/signup", {"email": f"quiet-b-{time.time_ns()}@example.com", "password": "password1"})
    _, ticket = seller.call("POST", "/api/tickets", {"title": "Quiet", "price": 3})
    orders = sqlite3.connect(os.path.join(p.work, ".spin", "orders.db"))
    wait_until("the orders replica",
               lambda: orders.execute("SELECT 1 FROM tickets WHERE id = ?", (ticket["id"],)).fetchone())
    orders.close()
    p.redis.kill()
    p.redis.wait()
    status, order = buyer.call("POST", "/api/orders", {"ticketId": ticket["id"]})
    if status != 201:
        raise SystemExit(f"quiet-app check: could not order while Redis was down ({status} {order})")
    p.start_redis(keep_data=False)
    time.sleep(ORDER_WINDOW_SECONDS)
    return settle(p, 120)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seed", type=int, default=random.randrange(10**6))
    parser.add_argument("--fault-every", type=float, default=8.0)
    parser.add_argument("--max-rss", type=float, default=120.0, help="the host's peak RSS allowed, in MB")
    parser.add_argument("--faults", type=lambda text: text.split(","), default=Faults.NAMES,
                        help=f"the faults to strike, in turn, comma-separated (default: all of {','.join(Faults.NAMES)})")
    args = parser.parse_args()
    print(f"chaos: {args.users} users for {args.duration} s, a fault every {args.fault_every} s, "
          f"seed {args.seed} (replay with --seed {args.seed})", flush=True)
    work = tempfile.mkdtemp(prefix="chaos-")
    p = Processes(work)
    ok = True
    try:
        p.start_redis()
        p.start_stripe()
        compile_peak = p.start_host_warm()
        print(f"  the first start compiled every component, peaking at {compile_peak:.0f} MB; the run starts "
              f"from the compile cache", flush=True)
        p.register_webhook()
        stats, faults, memory = run_load(p, args, random.Random(args.seed))
        ok = check_quiet(p)
        ok = check_healing(p) and ok
        ok = report_figures(stats, faults, memory, args.duration, args.max_rss) and ok
    finally:
        p.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"\nthe run's files are kept in {work}")
    print("\nchaos: " + ("every invariant held" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


def run_load(p, args, rng):
    """The users buying and the faults striking until the run's duration is over."""
    stats = Stats()
    tickets_seen = []
    deadline = time.time() + args.duration
    users = [threading.Thread(target=user, args=(n, p.base, stats, random.Random(rng.random()), deadline,
                                                  tickets_seen), daemon=True) for n in range(args.users)]
    for thread in users:
        thread.start()
    memory = Memory(p, deadline)
    faults = Faults(p, stats, rng, args.faults)
    faults.run(deadline, args.fault_every)
    for thread in users:
        thread.join()
    memory.thread.join()
    return stats, faults, memory


def check_quiet(p):
    """The invariants once the app is quiet, and no dead letters."""
    print("\ninvariants, once quiet:")
    results, took = settle(p, 120)
    ok = chaos_check.report(results)
    print(f"  consistent {took:.1f} s after the load stopped")
    letters = chaos_check.dead_letters(Resp(p.redis_port))
    print(f"  {len(letters)} dead letter(s)")
    for stream, entry_id, record in letters[:20]:
        print(f"    {stream} {entry_id}: {record['reason']}")
    if letters:
        print("  FAIL an event was dead-lettered")
        ok = False
    return ok


def check_healing(p):
    print("\nhealing without traffic (Redis restarted empty, an order's event in an outbox):")
    results, took = quiet_heal(p)
    healed = chaos_check.report(results, out=lambda line: print("  " + line))
    print(f"  healed in {took:.1f} s after the order's window ended" if healed else "  DID NOT HEAL")
    return healed


def report_figures(stats, faults, memory, duration, max_rss):
    """Prints the run's figures; false when one of them is a failure (a canary that never
    completed, a 5xx or an unanswered request while the host was up, memory growth)."""
    ok = True
    print("\nfigures:")
    print(f"  purchases completed: {stats.purchases} ({stats.purchases / duration:.2f}/s)")
    for route, values in sorted(stats.latency.items()):
        print(f"  {route:<24} {len(values):>6} requests  p50 {percentile(values, .5) * 1000:7.1f} ms  "
              f"p99 {percentile(values, .99) * 1000:7.1f} ms")
    for name, times in sorted(faults.recoveries.items()):
        print(f"  after {name:<22} a whole purchase again in {max(times):.1f} s (worst of {len(times)})")
    failed_canaries = [name for name, times in faults.recoveries.items() if float("inf") in times]
    if failed_canaries:
        print(f"  FAIL no canary purchase completed within 60 s after: {', '.join(sorted(failed_canaries))}")
        ok = False
    unexplained = [e for e in stats.server_errors if not stats.host_was_down(e[0])]
    print(f"  5xx: {len(stats.server_errors)}, {len(unexplained)} while the host was up")
    for at, route, status in unexplained[:10]:
        print(f"    {status} on {route}")
    ok = ok and not unexplained
    hung = [e for e in stats.unanswered if not stats.host_was_down(e[0], e[1])]
    print(f"  requests without an answer: {len(stats.unanswered)}, {len(hung)} while the host was up")
    by_fault = defaultdict(list)
    for sent, _, route in hung:
        fault, after = faults.last_before(sent)
        by_fault[(route, fault)].append(after)
    for (route, fault), after in sorted(by_fault.items(), key=lambda item: -len(item[1])):
        print(f"    {len(after)} on {route}, sent {min(after):.1f}-{max(after):.1f} s after the start of {fault}")
    if hung:
        print("  FAIL requests got no answer while the host was up")
        ok = False
    return report_memory(memory, faults, max_rss) and ok


def report_memory(memory, faults, max_rss):
    ok = True
    if memory.peak > max_rss:
        print(f"  FAIL the host's peak RSS, {memory.peak:.0f} MB, is over {max_rss} MB")
        ok = False
    if not (memory.warm and memory.end):
        print("  host RSS: growth not measured (the host restarted too close to the end of the load), "
              f"peak {memory.peak:.0f} MB")
        return ok
    growth = (memory.end - memory.warm) / memory.warm
    fault, after = faults.last_before(memory.peak_at)
    print(f"  host RSS: {memory.warm:.0f} MB once warmed up, {memory.end:.0f} MB at the end "
          f"({growth:+.0%}), peak {memory.peak:.0f} MB ({after:.0f} s after {fault}); "
          f"every 10 s: {memory.series}")
    if growth > 0.2:
        print("  FAIL the host's memory grew by more than 20%")
        ok = False
    return ok


if __name__ == "__main__":
    main()
