"""The tickets service on a release build of spin-host:

1. `GET /api/tickets` (first page of 100) with 1,000 tickets stored: requests/s, p50/p99 at 32
   connections (wrk), host CPU per request.
2. Event throughput: 1,000 `order:created` events appended to the order stream as fast as
   possible; events applied per second, from the first append to the last resulting
   `ticket:updated` (both are Redis stream ids, so one clock).
3. Publish-to-applied latency at 200 events/s: 1,000 `order:cancelled` events paced at 200/s;
   per event, the time from its append to the append of the `ticket:updated` it caused.

Run through scripts/bench-tickets, which builds everything first.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from bench_auth import HOST, generate_keys, percentile
from bench_host import ROOT, cpu_seconds, free_port, peak_rss_mb, run_wrk, wait_for

TICKETS = 1000


class Resp:
    """A minimal RESP client: enough for XADD, PUBLISH, XRANGE and XLEN."""

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


def envelope(subject, data):
    return json.dumps({"id": str(uuid.uuid4()), "subject": subject, "occurredAt": "2026-11-25T00:00:00.000Z",
                       "data": data}).encode()


def ms_of(stream_id):
    return int(stream_id.split(b"-")[0])


def ticket_updates(redis):
    """ticket id -> {version: stream-id ms} for every ticket:updated in events:ticket."""
    seen = {}
    for entry_id, fields in redis.send(("XRANGE", "events:ticket", "-", "+"))[0]:
        event = json.loads(fields[1])
        if event["subject"] == "ticket:updated":
            seen.setdefault(event["data"]["id"], {})[event["data"]["version"]] = ms_of(entry_id)
    return seen


def wait_until(what, check, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    work = tempfile.mkdtemp()
    redis_port = free_port()
    redis_proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
                                   "--appendonly", "no", "--notify-keyspace-events", "Ex", "--dir", work],
                                  stdout=subprocess.DEVNULL)
    private, public = generate_keys(work)
    shutil.copy(os.path.join(ROOT, "runtime-config.toml"), work)
    port = free_port()
    env = {"PATH": os.environ["PATH"], "SPIN_VARIABLE_REDIS_ADDRESS": f"redis://127.0.0.1:{redis_port}",
           "SPIN_VARIABLE_JWT_PRIVATE_KEY": private, "SPIN_VARIABLE_JWT_PUBLIC_KEY": public,
           "SPIN_VARIABLE_PLAIN_HTTP": "true"}
    args = [HOST, "up", "-f", os.path.join(ROOT, "spin.toml"), "--listen", f"127.0.0.1:{port}",
            "--runtime-config-file", os.path.join(work, "runtime-config.toml"), "--state-dir",
            os.path.join(work, ".spin"), "--quiet"]
    for name in sorted(os.listdir(os.path.join(ROOT, "migrations"))):
        args += ["--sqlite", "@" + os.path.join(ROOT, "migrations", name) + ":" + name[:-4]]
    host = subprocess.Popen(args, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/api/tickets", time.monotonic() + 60)
        request = urllib.request.Request(f"{base}/api/users/signup", headers={"content-type": "application/json"},
                                         data=json.dumps({"email": "bench@example.com", "password": "password1"}).encode())
        with urllib.request.urlopen(request) as response:
            cookie = response.headers["set-cookie"].split(";")[0]
        tickets = []
        for i in range(TICKETS):
            request = urllib.request.Request(f"{base}/api/tickets", headers={"content-type": "application/json", "cookie": cookie},
                                             data=json.dumps({"title": f"Ticket {i}", "price": 10 + i % 90}).encode())
            with urllib.request.urlopen(request) as response:
                tickets.append(json.loads(response.read()))
        redis = Resp(redis_port)
        wait_until("1,000 ticket:created events", lambda: redis.send(("XLEN", "events:ticket"))[0] >= TICKETS)

        print(f"spin-host release build, {os.cpu_count()} cores, load generators on the same machine")
        url = f"{base}/api/tickets"
        run_wrk(url, 2)
        before = cpu_seconds(host.pid)
        requests, p50, p99 = run_wrk(url, seconds)
        cpu = cpu_seconds(host.pid) - before
        print(f"GET /api/tickets (page of 100 of {TICKETS}): {requests / seconds:.0f} req/s, p50 {p50:.2f} ms, "
              f"p99 {p99:.2f} ms, host CPU {cpu / requests * 1e6:.0f} us/request")

        orders = [str(uuid.uuid4()) for _ in tickets]
        created = [("XADD", "events:order", "*", "event", envelope("order:created", {
            "id": o, "userId": "buyer", "status": "created", "version": 0, "expiresAt": "2026-11-25T00:15:00.000Z",
            "ticket": {"id": t["id"], "priceCents": 1000}})) for o, t in zip(orders, tickets)]
        batch = []
        for command in created:
            batch += [command, ("PUBLISH", "order:created", command[-1])]
        replies = redis.send(*batch)
        first_ms = ms_of(replies[0])
        wait_until("1,000 reservations", lambda: sum(1 for v in ticket_updates(redis).values() if 1 in v) >= TICKETS)
        updates = ticket_updates(redis)
        last_ms = max(v[1] for v in updates.values())
        print(f"events applied: {TICKETS} order:created in {last_ms - first_ms} ms = "
              f"{TICKETS / max(last_ms - first_ms, 1) * 1000:.0f} events/s")

        appended = {}
        started = time.monotonic()
        for i, (o, t) in enumerate(zip(orders, tickets)):
            target = started + i / 200
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            cancelled = envelope("order:cancelled", {
                "id": o, "userId": "buyer", "version": 1, "ticket": {"id": t["id"], "priceCents": 1000}})
            entry = redis.send(("XADD", "events:order", "*", "event", cancelled),
                               ("PUBLISH", "order:cancelled", cancelled))[0]
            appended[t["id"]] = ms_of(entry)
        wait_until("1,000 releases", lambda: sum(1 for v in ticket_updates(redis).values() if 2 in v) >= TICKETS)
        updates = ticket_updates(redis)
        latencies = [updates[tid][2] - ms for tid, ms in appended.items()]
        print(f"publish-to-applied at 200 events/s ({TICKETS} order:cancelled): p50 {percentile(latencies, 50)} ms, "
              f"p99 {percentile(latencies, 99)} ms, max {max(latencies)} ms (stream-id millisecond resolution)")
        print(f"host peak RSS: {peak_rss_mb(host.pid):.0f} MB")
    finally:
        host.terminate()
        host.wait()
        redis_proc.terminate()
        redis_proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
