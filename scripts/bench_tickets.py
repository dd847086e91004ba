"""The tickets service on a release build of spin-host:

(`GET /api/tickets` under load is in scripts/bench-app, with every other route.)

1. Event throughput: 1,000 `order:created` events appended to the order stream as fast as
   possible; events applied per second, from the first append to the last resulting
   `ticket:updated` (both are Redis stream ids, so one clock).
2. Publish-to-applied latency at 200 events/s: 1,000 `order:cancelled` events paced at 200/s;
   per event, the time from its append to the append of the `ticket:updated` it caused.

Run through scripts/bench-tickets, which builds everything first.
"""

import os
import time
import uuid

from bench_app import App, envelope, wait_until
from bench_auth import percentile
from bench_host import peak_rss_mb

TICKETS = 1000


def ticket_updates(redis):
    """ticket id -> {version: stream-id ms} for every ticket:updated in events:ticket."""
    seen = {}
    for ms, event in redis.stream("events:ticket"):
        if event["subject"] == "ticket:updated":
            seen.setdefault(event["data"]["id"], {})[event["data"]["version"]] = ms
    return seen


def main():
    with App() as app:
        host, redis = app.host, app.redis
        cookie = app.sign_up("bench@example.com")
        tickets = app.create_tickets(cookie, TICKETS, threads=1)
        wait_until("1,000 ticket:created events", lambda: redis.send(("XLEN", "events:ticket"))[0] >= TICKETS)
        app.wait_idle()

        print(f"spin-host release build, {os.cpu_count()} cores, load generators on the same machine")
        orders = [str(uuid.uuid4()) for _ in tickets]
        created = [("XADD", "events:order", "*", "event", envelope("order:created", {
            "id": o, "userId": "buyer", "status": "created", "version": 0, "expiresAt": "2099-01-01T00:00:00.000Z",
            "ticket": {"id": t["id"], "priceCents": 1000}})) for o, t in zip(orders, tickets)]
        batch = []
        for command in created:
            batch += [command, ("PUBLISH", "order:created", command[-1])]
        replies = redis.send(*batch)
        first_ms = int(replies[0].split(b"-")[0])
        wait_until("1,000 reservations", lambda: sum(1 for v in ticket_updates(redis).values() if 1 in v) >= TICKETS)
        updates = ticket_updates(redis)
        last_ms = max(v[1] for v in updates.values())
        print(f"events applied: {TICKETS} order:created in {last_ms - first_ms} ms = "
              f"{TICKETS / max(last_ms - first_ms, 1) * 1000:.0f} events/s")
        app.wait_idle()

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
            appended[t["id"]] = int(entry.split(b"-")[0])
        wait_until("1,000 releases", lambda: sum(1 for v in ticket_updates(redis).values() if 2 in v) >= TICKETS)
        updates = ticket_updates(redis)
        latencies = [updates[tid][2] - ms for tid, ms in appended.items()]
        print(f"publish-to-applied at 200 events/s ({TICKETS} order:cancelled): p50 {percentile(latencies, 50)} ms, "
              f"p99 {percentile(latencies, 99)} ms, max {max(latencies)} ms (stream-id millisecond resolution)")
        print(f"host peak RSS: {peak_rss_mb(host.pid):.0f} MB")


if __name__ == "__main__":
    main()
