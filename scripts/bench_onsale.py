"""The on-sale: a hot release on a release build of spin-host, the whole app against localstripe,
every event consumer running.

One seller lists `--tickets` tickets (default 200); `--buyers` buyers (default 2,000) have
signed up. Then all of them race under wrk, `--connections` at a time (default 32, each a
keep-alive connection, as a browser keeps one): buyer i orders ticket i mod N (so each ticket
has buyers/tickets contenders) and, when the order is placed, pays it at once with
pm_card_visa. wrk times the requests in C: Python threads, which an earlier version raced
with, used a core of their own and counted their own waits for the interpreter lock in the
latencies. Every loser must be told "Ticket is already reserved".

It prints purchases per second, order and payment p50/p99, the time from the first order to the
last ticket sold, the host's CPU per purchase (until the host is idle again, so the
Redis-triggered work each purchase sets off is counted), and split by component from the
host's own counters (`up --stats-file`): instances, CPU, SQLite statements and writes, and
Redis commands per purchase, with what is left the host's own (HTTP, pub/sub, scheduling).
Then Redis commands per purchase (from INFO commandstats, the busiest listed), and the host's
peak RSS through the sign-ups, before the race and during it. Last it checks the chaos suite's
invariants over the databases, Redis and localstripe (no ticket sold twice, every complete
order paid once and paid out, nothing pending) and exits 1 if any fails.

With `--baseline DIR`, an earlier checkout with its builds (its target/host/spin-host and
components) races first, on the same machine, for a before and after in one run.

Run through scripts/bench-onsale, which builds everything first.
"""

import argparse
import os
import random
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import chaos_check
from bench_app import App, call, wait_until
from bench_auth import percentile
from bench_whole_app import start_up
from bench_host import CLOCK_TICKS, NUMBERED_THREADS, ROOT, cpu_seconds, peak_rss_mb, rss_mb

RESERVED = "Ticket is already reserved"


def command_stats(redis):
    """{command: calls} from Redis's INFO commandstats."""
    text = redis.send(("INFO", "commandstats"))[0].decode()
    stats = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, fields = line[len("cmdstat_"):].split(":", 1)
            stats[name] = int(dict(f.split("=") for f in fields.split(","))["calls"])
    return stats


def machine_cpu_seconds():
    """CPU seconds the whole machine has spent busy (every core), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def reset_peak_rss(pid):
    """Resets the process's peak RSS (VmHWM) to its RSS now, which it returns, in MB, so the
    peak measured is the race's alone (Linux: writing 5 to /proc/PID/clear_refs)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    return rss_mb(pid)


COUNTERS = ("instances", "cpuNs", "sqliteStatements", "sqliteWrites", "writeTransactions",
            "gateWaitNs", "gateHoldNs", "redisCommands")


def component_costs(before, after):
    """{component: {counter: increase}} between two of the host's stats snapshots (None from a
    host that does not count them)."""
    if before is None or after is None:
        return None
    return {name: {counter: value - before.get(name, {}).get(counter, 0)
                   for counter, value in after[name].items()}
            for name in after}


def costs_line(c, purchases):
    """One component's counters per purchase, and its write gate's per write transaction."""
    line = (f"{c['instances'] / purchases:5.1f} {c['cpuNs'] / 1e6 / purchases:7.2f} "
            f"{c['sqliteStatements'] / purchases:6.1f} ({c['sqliteWrites'] / purchases:4.1f}; "
            f"{c['writeTransactions'] / purchases:4.1f}) {c['redisCommands'] / purchases:6.1f}")
    if c.get("gateHoldNs") and c["writeTransactions"]:
        line += (f"   {c['gateWaitNs'] / 1e6 / c['writeTransactions']:6.2f} "
                 f"{c['gateHoldNs'] / 1e6 / c['writeTransactions']:5.2f}")
    return line


def print_component_costs(components, cpu_seconds_total, purchases, seconds):
    """Per purchase, by component: instances, CPU, SQLite statements and writes, Redis commands;
    then the host's own CPU (HTTP, pub/sub, scheduling: the process's CPU less the components'),
    and how busy the Redis trigger's one-at-a-time queue was over `seconds`."""
    trigger = components.pop("redis trigger")
    print("  per purchase, by component: instances, CPU ms, SQLite statements (writing ones; write "
          "transactions), Redis commands; then per write transaction, the ms waited for the "
          "database's one writer and held it")
    busy = sorted(components.items(), key=lambda item: -item[1]["cpuNs"])
    for name, c in busy:
        if c["instances"] == 0:
            continue
        print(f"    {name:<16} {costs_line(c, purchases)}")
    # A host from before the gate was timed lacks those counters.
    total = {counter: sum(c.get(counter, 0) for c in components.values()) for counter in COUNTERS}
    own = cpu_seconds_total * 1e3 - total["cpuNs"] / 1e6
    print(f"    {'all components':<16} {costs_line(total, purchases)}")
    print(f"    {'the host itself':<16} {'':5} {own / purchases:7.2f}")
    messages = max(trigger["messages"], 1)
    print(f"  Redis trigger: {trigger['messages'] / purchases:.1f} messages per purchase, "
          f"{trigger['busyNs'] / 1e6 / messages:.2f} ms each, busy {trigger['busyNs'] / 1e9 / seconds:.0%} "
          f"of the time from the first order to idle")


def sign_up_buyers(app, count):
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda n: app.sign_up(f"fan-{n}@example.com"), range(count)))


# One wrk thread per connection, so that a thread's Lua state is its connection's buyer: it
# orders for each of its buyers in turn (every `connections`-th line of the contenders file,
# from its own number) and pays each order it wins, retrying the payment 10 ms later while
# payments has not learnt of the order (404). It times each request with the monotonic clock,
# writes what it saw to a file of its own once its buyers are done, and stops.
RACE_SCRIPT = NUMBERED_THREADS + r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC, Python's time.monotonic()
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local buyers, current, seen = {}, 1, {}
local step, order_id, sent, ordered, tries, wait = "order", nil, 0, 0, 0, false

function init(args)
  local n, connections = 0, tonumber(args[2])
  for line in io.lines(args[1]) do
    if n % connections == first then
      local cookie, ticket = line:match("^(%S+) (%S+)$")
      buyers[#buyers + 1] = { cookie = cookie, ticket = ticket }
    end
    n = n + 1
  end
  results = args[3] .. "/" .. first .. ".txt"
end

function request()
  local buyer = buyers[current]
  if step == "done" then
    return wrk.format("GET", "/api/heartbeat")
  end
  local headers = { ["content-type"] = "application/json", ["cookie"] = buyer.cookie }
  sent = now_ms()
  if #seen == 0 then
    seen[1] = string.format("first %.3f", sent)
  end
  if step == "pay" then
    return wrk.format("POST", "/api/payments", headers,
      '{"orderId":"' .. order_id .. '","paymentMethodId":"pm_card_visa"}')
  end
  return wrk.format("POST", "/api/orders", headers, '{"ticketId":"' .. buyer.ticket .. '"}')
end

function delay()
  if wait then
    wait = false
    return 10
  end
  return 0
end

local function next_buyer()
  step, current, tries = "order", current + 1, 0
  if current > #buyers then
    step = "done"
    local file = io.open(results, "w")
    file:write(table.concat(seen, "\n"), "\n")
    file:close()
    wrk.thread:stop()
  end
end

local function flat(body)
  return (body:gsub("%s+", " "))
end

function response(status, headers, body)
  local took = now_ms() - sent
  if step == "done" then
    return
  end
  local buyer = buyers[current]
  if step == "pay" then
    tries = tries + 1
    if status == 404 and tries < 200 then
      wait = true
      return
    end
    seen[#seen + 1] = string.format("payment %.3f", now_ms() - ordered)
    if status == 201 and body:find('"status":"succeeded"', 1, true) then
      seen[#seen + 1] = "sold " .. buyer.ticket .. " " .. order_id
    else
      seen[#seen + 1] = "wrong payment " .. order_id .. ": " .. status .. " " .. flat(body)
    end
    return next_buyer()
  end
  seen[#seen + 1] = string.format("order %.3f %.3f %d", took, sent, status)
  if status == 201 then
    order_id = body:gsub('"ticket":%b{}', ""):match('"id":"([^"]+)"')
    step, ordered = "pay", now_ms()
    return
  end
  if status == 400 and body:find("RESERVED", 1, true) then
    seen[#seen + 1] = "lost"
  else
    seen[#seen + 1] = "wrong order " .. buyer.ticket .. ": " .. status .. " " .. flat(body)
  end
  next_buyer()
end
""".replace("RESERVED", RESERVED)


class Race:
    """The outcome of every buyer's try, read from the race's files."""

    def __init__(self, directory):
        self.payments, self.lost, self.wrong = [], 0, []
        self.order_tries = []  # (ms taken, when it was sent: monotonic ms, HTTP status)
        self.sold = []  # (ticket id, order id)
        firsts = []
        for name in os.listdir(directory):
            with open(os.path.join(directory, name)) as f:
                for line in f.read().splitlines():
                    kind, _, rest = line.partition(" ")
                    if kind == "first":
                        firsts.append(float(rest) / 1000)
                    elif kind == "order":
                        took, sent, status = rest.split(" ")
                        self.order_tries.append((float(took), float(sent), int(status)))
                    elif kind == "payment":
                        self.payments.append(float(rest))
                    elif kind == "lost":
                        self.lost += 1
                    elif kind == "sold":
                        self.sold.append(tuple(rest.split(" ")))
                    else:
                        self.wrong.append(rest)
        self.first_order = min(firsts)

    @property
    def orders(self):
        """Every order's latency, in ms."""
        return [took for took, _, _ in self.order_tries]


def race_with_wrk(app, contenders, connections, work):
    """Runs the race under wrk, `connections` at a time; (its Race, when the last buyer was
    done)."""
    listing, script, results = (os.path.join(work, name) for name in ("contenders.txt", "race.lua", "race"))
    os.makedirs(results)
    with open(listing, "w") as f:
        f.write("".join(f"{cookie} {ticket}\n" for cookie, ticket in contenders))
    with open(script, "w") as f:
        f.write(RACE_SCRIPT)
    connections = min(connections, len(contenders))
    # wrk runs for its whole duration even once every thread stopped: it is stopped here when
    # every thread has written its file.
    wrk = subprocess.Popen(["wrk", f"-t{connections}", f"-c{connections}", "-d600s", "--timeout", "30s",
                            "-s", script, app.base, "--", listing, str(connections), results],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while len(os.listdir(results)) < connections:
            if wrk.poll() is not None:
                raise SystemExit(f"wrk ended before the race did: {wrk.stderr.read()}")
            time.sleep(0.01)
        done = time.monotonic()
    finally:
        wrk.kill()
        wrk.wait()
    return Race(results), done


def all_sold(app, tickets):
    return all(call("GET", app.url(f"/api/tickets/{t['id']}"))[1]["status"] == "sold" for t in tickets)


def race_for(app, args):
    """Lists the tickets, signs the buyers up, runs the race and prints its figures; True if
    every promise held."""
    seller = app.sign_up("promoter@example.com")
    tickets = app.list_for_sale(seller, args.tickets)
    buyers = sign_up_buyers(app, args.buyers)
    app.wait_idle()
    print(f"  {args.tickets} tickets listed, {args.buyers} buyers signed up; the race, "
          f"{args.connections} at a time")
    contenders = [(cookie, tickets[n % len(tickets)]["id"]) for n, cookie in enumerate(buyers)]
    random.Random(1).shuffle(contenders)
    peak_with_sign_ups = peak_rss_mb(app.host.pid)
    rss_before = reset_peak_rss(app.host.pid)
    redis_before = command_stats(app.redis)
    cpu_before = cpu_seconds(app.host.pid)
    components_before = app.component_stats()
    machine_before = machine_cpu_seconds()
    with tempfile.TemporaryDirectory() as work:
        race, raced = race_with_wrk(app, contenders, args.connections, work)
    wait_until("every ticket sold", lambda: all_sold(app, tickets), seconds=600)
    sold_at = time.monotonic()
    host_racing = cpu_seconds(app.host.pid) - cpu_before
    machine_racing = machine_cpu_seconds() - machine_before
    app.wait_idle(600)
    idle_at = time.monotonic()
    cpu = cpu_seconds(app.host.pid) - cpu_before
    components = component_costs(components_before, app.component_stats())
    redis_after = command_stats(app.redis)

    purchases = len(race.sold)
    seconds = sold_at - race.first_order
    print(f"  {purchases} purchases, {race.lost} buyers told \"{RESERVED}\", "
          f"{len(race.wrong)} other answers")
    for line in race.wrong[:10]:
        print(f"    {line}")
    print(f"  purchases per second: {purchases / seconds:.1f} (first order to last ticket sold: "
          f"{seconds:.1f} s; the requests took {raced - race.first_order:.1f} s)")
    print(f"  POST /api/orders: p50 {percentile(race.orders, 50):.1f} ms, "
          f"p99 {percentile(race.orders, 99):.1f} ms over {len(race.orders)}")
    slowest = sorted(race.order_tries, reverse=True)[:max(1, len(race.order_tries) // 100)]
    print("    the slowest 1%, when sent (ms after the first order) and answered: "
          + ", ".join(f"{sent - race.first_order * 1000:.0f} {status}"
                      for _, sent, status in sorted(slowest, key=lambda o: o[1])))
    print(f"  POST /api/payments (from the order's answer, any 404s until payments knows it included): "
          f"p50 {percentile(race.payments, 50):.1f} ms, p99 {percentile(race.payments, 99):.1f} ms")
    print(f"  host CPU: {cpu / max(purchases, 1) * 1000:.2f} ms per purchase "
          f"(losers' orders and the event work included, until idle)")
    print(f"  until the last ticket sold the machine's {os.cpu_count()} cores were "
          f"{machine_racing / (sold_at - race.first_order) / os.cpu_count():.0%} busy: the host "
          f"{host_racing / (sold_at - race.first_order):.2f} cores, everything else (the buyers, "
          f"localstripe, Redis) {(machine_racing - host_racing) / (sold_at - race.first_order):.2f}")
    if components is None:
        print("  per component: not counted by this checkout's host")
    else:
        print_component_costs(components, cpu, max(purchases, 1), idle_at - race.first_order)
    calls = {name: redis_after.get(name, 0) - redis_before.get(name, 0) for name in redis_after}
    busiest = sorted(calls.items(), key=lambda item: -item[1])[:8]
    print(f"  Redis: {sum(calls.values()) / max(purchases, 1):.0f} commands per purchase; "
          + ", ".join(f"{name} {count / max(purchases, 1):.1f}" for name, count in busiest))
    print(f"  host RSS: peak {peak_with_sign_ups:.0f} MB through the sign-ups (Argon2), "
          f"{rss_before:.0f} MB before the race, peak {peak_rss_mb(app.host.pid):.0f} MB during it")
    print("  invariants:")
    ok = chaos_check.report(app.invariants(), out=lambda line: print("  " + line))
    ok = ok and purchases == args.tickets and not race.wrong
    return ok and race.lost == args.buyers - args.tickets


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--baseline", metavar="DIR",
                        help="an earlier checkout with its builds, raced first on the same machine")
    args = parser.parse_args()
    print(f"spin-host release build, {os.cpu_count()} cores, load generators on the same machine")
    roots = ([os.path.abspath(args.baseline)] if args.baseline else []) + [ROOT]
    ok = True
    for root in roots:
        print(f"{'baseline' if root != ROOT else 'this checkout'}: {root}")
        # The race runs on a host started from a warm compile cache, as a restarted host or pod
        # does: compiled code is then mapped from the cache, not held on the heap.
        with tempfile.TemporaryDirectory() as cache_dir:
            start_up(root, cache_dir)
            with App(stripe=True, root=root, cache_dir=cache_dir) as app:
                ok = race_for(app, args) and ok
    if not ok:
        raise SystemExit("the on-sale broke a promise")


if __name__ == "__main__":
    main()
