"""The whole app on a release build of spin-host, for the benchmarks: a private redis-server
(with key-space notifications, as production needs) and the host serving spin.toml, both on free
loopback ports and stopped on exit, plus small clients for the API and for Redis.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import chaos_check
from bench_auth import generate_keys
from bench_host import ROOT, cpu_seconds, free_port, host_binary, wait_for


class Resp:
    """A minimal RESP client: enough for XADD, PUBLISH, XRANGE, XLEN and friends."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return int(rest) if kind == b":" else rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def send(self, *commands):
        out = b""
        for args in commands:
            out += b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return [self._read() for _ in commands]

    def stream(self, name):
        """(entry-id milliseconds, envelope) for every entry of an event stream."""
        return [(int(entry_id.split(b"-")[0]), json.loads(fields[1]))
                for entry_id, fields in self.send(("XRANGE", name, "-", "+"))[0]]


def tcp_ready(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def envelope(subject, data):
    return json.dumps({"id": str(uuid.uuid4()), "subject": subject, "occurredAt": "2026-11-25T00:00:00.000Z",
                       "data": data}).encode()


def counts_components(host):
    """Whether this host binary writes per-component counters (`up --stats-file`)."""
    usage = subprocess.run([host, "up", "--help"], capture_output=True, text=True).stdout
    return "--stats-file" in usage


def wait_until(what, check, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def call(method, url, body=None, cookie=None):
    """(status, JSON body or None, headers) of one API request."""
    headers = {"content-type": "application/json"}
    if cookie:
        headers["cookie"] = cookie
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None, response.headers
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None, error.headers


LOCALSTRIPE_PYTHON = os.path.join(ROOT, ".spin/localstripe/bin/python")
WEBHOOK_SECRET = "whsec_bench"


class App:
    """`with App(variables) as app:` runs the whole app until the block ends. With
    `stripe=True` its payments go to a localstripe of its own (started, its webhooks sent to the
    app, stopped at the end); otherwise Stripe is configured but unreachable. With `probe=True`
    the host probes itself as SpinKube does."""

    def __init__(self, variables=None, manifest=None, stripe=False, root=ROOT, cache_dir=None,
                 probe=False):
        self.variables = variables or {}
        self.root = root
        self.manifest = manifest or os.path.join(root, "spin.toml")
        self.stripe = stripe
        self.stripe_proc = None
        self.cache_dir = cache_dir
        # Calls /api/heartbeat every second, as SpinKube's readiness probe does: it re-arms the
        # housekeeping tick when Redis lost it.
        self.probe = probe

    def __enter__(self):
        self.work = tempfile.mkdtemp()
        self.redis_port = free_port()
        self.start_redis()
        private, public = generate_keys(self.work)
        shutil.copy(os.path.join(self.root, "runtime-config.toml"), self.work)
        port = free_port()
        env = {"PATH": os.environ["PATH"], "SPIN_VARIABLE_REDIS_ADDRESS": f"redis://127.0.0.1:{self.redis_port}",
               "SPIN_VARIABLE_JWT_PRIVATE_KEY": private, "SPIN_VARIABLE_JWT_PUBLIC_KEY": public,
               "SPIN_VARIABLE_PASS_SIGNING_KEY": generate_keys(self.work)[0],
               "SPIN_VARIABLE_PLAIN_HTTP": "true",
               # Every simulated user signs up from 127.0.0.1.
               "SPIN_VARIABLE_SIGNIN_MAX_ATTEMPTS_PER_ADDRESS": "1000000"}
        stripe_base = "http://127.0.0.1:9"
        if self.stripe:
            stripe_port = free_port()
            self.stripe_proc = subprocess.Popen(
                [LOCALSTRIPE_PYTHON, os.path.join(ROOT, "scripts/fake_stripe.py"), str(stripe_port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stripe_base = f"http://127.0.0.1:{stripe_port}"
        self.stripe_base = stripe_base
        env.update({"SPIN_VARIABLE_STRIPE_API_BASE": stripe_base,
                    "SPIN_VARIABLE_STRIPE_SECRET_KEY": "sk_test_bench",
                    "SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                    "SPIN_VARIABLE_STRIPE_PUBLISHABLE_KEY": "pk_test_bench"})
        env.update({f"SPIN_VARIABLE_{name.upper()}": str(value) for name, value in self.variables.items()})
        if self.cache_dir:
            env["SPIN_HOST_CACHE_DIR"] = self.cache_dir
        args = [host_binary(self.root), "up", "-f", self.manifest, "--listen", f"127.0.0.1:{port}",
                "--runtime-config-file", os.path.join(self.work, "runtime-config.toml"), "--state-dir",
                os.path.join(self.work, ".spin"), "--quiet"]
        self.counts = counts_components(host_binary(self.root))
        if self.counts:
            args += ["--stats-file", self.stats_file()]
        if self.probe:
            args += ["--probe", "/api/heartbeat", "--probe-interval", "1"]
        self.started = started = time.monotonic()
        self.host = subprocess.Popen(args, cwd=self.work, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        try:
            wait_for(f"{self.base}/api/tickets", started + 60)
            # From starting the process to the first 200: what a cold or warm start costs.
            self.first_200 = time.monotonic() - started
            self.redis = Resp(self.redis_port)
            if self.stripe_proc:
                subprocess.run([LOCALSTRIPE_PYTHON, os.path.join(ROOT, "scripts/fake_stripe.py"),
                                str(stripe_port), "--webhook", f"{self.base}/api/payments/webhook",
                                WEBHOOK_SECRET], check=True)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def start_redis(self):
        """A redis-server keeping nothing on disk: restarted, it comes back empty."""
        self.redis_proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
             "--appendonly", "no", "--notify-keyspace-events", "Ex", "--hz", "100", "--dir", self.work],
            stdout=subprocess.DEVNULL)

    def restart_redis_empty(self):
        """Redis restarts without its data, as after losing its disk."""
        self.redis_proc.kill()
        self.redis_proc.wait()
        self.start_redis()
        wait_until("redis-server", lambda: tcp_ready(self.redis_port))
        self.redis = Resp(self.redis_port)

    def __exit__(self, *_):
        self.host.terminate()
        self.host.wait()
        if self.stripe_proc:
            self.stripe_proc.terminate()
            self.stripe_proc.wait()
        self.redis_proc.terminate()
        self.redis_proc.wait()
        shutil.rmtree(self.work, ignore_errors=True)

    def wait_idle(self, seconds=120):
        """Waits until the host has drained the work earlier phases left (Redis messages are
        handled one at a time, so a burst of events leaves a queue): less than 2% of a core over
        half a second."""
        deadline = time.monotonic() + seconds
        last = cpu_seconds(self.host.pid)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = cpu_seconds(self.host.pid)
            if now - last < 0.01:
                return
            last = now
        raise SystemExit("the host never went idle")

    def url(self, path):
        return self.base + path

    def stats_file(self):
        return os.path.join(self.work, "host-stats.json")

    def component_stats(self):
        """The host's counters per component id now ({id: {instances, cpuNs, sqliteStatements,
        sqliteWrites, writeTransactions, redisCommands}}, and under "redis trigger" {messages,
        busyNs}), which it writes on SIGUSR1; None from an older host, which does not count
        them."""
        if not self.counts:
            return None
        path = self.stats_file()
        if os.path.exists(path):
            os.remove(path)
        self.host.send_signal(signal.SIGUSR1)
        wait_until("the host's stats", lambda: os.path.exists(path), seconds=10)
        with open(path) as f:
            snapshot = json.load(f)
        return {**snapshot["components"], "redis trigger": snapshot["redisTrigger"]}

    def invariants(self):
        """The chaos suite's invariants over this app's databases, Redis and localstripe now."""
        state = chaos_check.State(chaos_check.open_databases(os.path.join(self.work, ".spin")),
                                  int(time.time() * 1000), Resp(self.redis_port),
                                  chaos_check.stripe_objects(self.stripe_base, key="sk_test_bench"))
        try:
            return chaos_check.check(state)
        finally:
            for db in state.dbs.values():
                db.close()

    def sign_up(self, email):
        """A new user's session cookie (`session=...`)."""
        status, _, headers = call("POST", self.url("/api/users/signup"),
                                  {"email": email, "password": "password1"})
        if status != 201:
            raise SystemExit(f"sign-up of {email}: {status}")
        return headers["set-cookie"].split(";")[0]

    def create_tickets(self, cookie, count, threads=8):
        """Lists `count` tickets as `cookie`'s user, several requests at a time; their JSON."""
        from concurrent.futures import ThreadPoolExecutor

        def create(i):
            status, ticket, _ = call("POST", self.url("/api/tickets"),
                                     {"title": f"Ticket {i}", "price": 10 + i % 90}, cookie)
            if status != 201:
                raise SystemExit(f"creating a ticket: {status} {ticket}")
            return ticket

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(create, range(count)))

    def list_for_sale(self, seller, count):
        """Lists `count` tickets as `seller` and waits until the orders service's replica holds
        them all, so each can be ordered; their JSON. (The seller ordering their own last ticket
        is refused with 400 once the replica has it, 404 before.)"""
        tickets = self.create_tickets(seller, count)
        last = tickets[-1]["id"]
        wait_until("the orders replica to hold every ticket",
                   lambda: call("POST", self.url("/api/orders"), {"ticketId": last}, seller)[0] == 400)
        return tickets
