"""The whole app on a release build of spin-host: every route a browser uses, under load.

For each checkout given (this one, and with `--baseline DIR` an earlier one with its own
`target/host/spin-host` and `target/wasm32-wasip2/release/*.wasm`, measured first in the same
run), it prints:

1. Start-up: from starting `spin-host up` (as scripts/up runs it) to the first 200, with an empty
   compile cache (cold) and with the cache the cold start filled (warm, best of three), and the
   time until every HTTP component has answered once.
2. The trivial handler of the probe app (host/spin-host/tests/apps/probe), the reference for
   what a request costs the host at all.
3. Every route under load (wrk, 2 threads, 32 connections, a 2-second warm-up each; requests
   carry `accept-encoding: gzip` as browsers' do): requests/s, p50/p99, host CPU per request
   (the host process's user+sys time over the run, Redis-triggered work included, divided by
   the requests wrk completed) and the host's RSS after the route; for creating an order, also
   the write transactions per order on orders.db and how long each waited for the database's one
   writer and held it (the host's counters). Seeded first: 1,000 tickets, a seller and a buyer,
   and one order.
4. Peak RSS (VmHWM) over all of it; with `--soak SECONDS`, then a round robin over every GET
   route for that long, the RSS printed each minute, to show whether it stays flat.

Run through scripts/bench-app, which builds everything first.
"""

import argparse
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import bench_host
from bench_app import App, call, wait_until
from bench_host import CONNECTIONS, NUMBERED_THREADS, ROOT, cpu_seconds, free_port, peak_rss_mb, rss_mb, run_wrk, wait_for

# wrk reads the ticket ids from a file; each of its threads takes every second one, so no two
# requests order the same ticket.
ORDER_SCRIPT = NUMBERED_THREADS + """
local ids = {}

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

BROWSER = "accept-encoding: gzip, deflate, br"
TICKETS = 1000

# The soak cycles through the GET routes; each thread starts at a different one.
SOAK_SCRIPT = NUMBERED_THREADS + """
local routes = {}

function init(args)
  for line in io.lines(args[1]) do
    local path, cookie = line:match("^(%S+)%s*(.*)$")
    routes[#routes + 1] = { path = path, cookie = cookie }
  end
  n = first
end

function request()
  n = n + 1
  local route = routes[n % #routes + 1]
  local headers = { ["accept-encoding"] = "gzip, deflate, br" }
  if route.cookie ~= "" then headers["cookie"] = route.cookie end
  return wrk.format("GET", route.path, headers)
end
"""


def first_answer(url, deadline):
    """Waits for any HTTP answer from `url` (a 401 counts: the component ran)."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.002)
    raise SystemExit(f"no answer from {url} in time")


# One path per HTTP component: answered once each, every component has been prepared.
EVERY_COMPONENT = ["/api/tickets", "/auth/signin", "/api/users/current-user", "/api/orders",
                   "/api/payments/config"]


def wasm_files(root):
    with open(os.path.join(root, "spin.toml")) as f:
        return len(set(re.findall(r'^source = "([^"]+\.wasm)"', f.read(), re.M)))


def start_up(root, cache_dir):
    """Seconds from starting the host to its first 200, to every HTTP component having answered,
    and to every component being in the compile cache (the host may compile some after it
    serves), for one start."""
    with App(root=root, cache_dir=cache_dir) as app:
        first = app.first_200
        deadline = time.monotonic() + 60
        for path in EVERY_COMPONENT:
            first_answer(app.url(path), deadline)
        answered = time.monotonic() - app.started
        wait_until("every component compiled",
                   lambda: sum(name.endswith(".cwasm") for name in os.listdir(cache_dir)) >= wasm_files(root))
        return first, answered, time.monotonic() - app.started


def trivial(root, cache_dir, seconds):
    with tempfile.TemporaryDirectory() as work:
        redis_dir = tempfile.mkdtemp(dir=work)
        redis_port = free_port()
        redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
                                  "--appendonly", "no", "--dir", redis_dir], stdout=subprocess.DEVNULL)
        port = free_port()
        host = bench_host.start_host(work, f"redis://127.0.0.1:{redis_port}", port, cache_dir, root=root)
        try:
            url = f"http://127.0.0.1:{port}/trivial"
            wait_for(url, time.monotonic() + 120)
            return measure(host.pid, url, seconds)
        finally:
            host.terminate()
            host.wait()
            redis.terminate()
            redis.wait()


def measure(pid, url, seconds, **wrk):
    """(req/s, p50 ms, p99 ms, host CPU µs per request, RSS MB after) of one route."""
    run_wrk(url, 2, **wrk)
    before = cpu_seconds(pid)
    requests, p50, p99 = run_wrk(url, seconds, **wrk)
    cpu = cpu_seconds(pid) - before
    return requests / seconds, p50, p99, cpu / requests * 1e6, rss_mb(pid)


def seed(app):
    seller = app.sign_up("seller@example.com")
    buyer = app.sign_up("buyer@example.com")
    tickets = app.list_for_sale(seller, TICKETS)
    status, order, _ = call("POST", app.url("/api/orders"), {"ticketId": tickets[0]["id"]}, buyer)
    if status != 201:
        raise SystemExit(f"ordering: {status} {order}")
    with urllib.request.urlopen(app.url("/auth/signin")) as response:
        script = re.search(r'src="(/app\.js\?v=[^"]+)"', response.read().decode()).group(1)
    app.wait_idle()
    return seller, buyer, tickets, order, script


def get_routes(buyer, tickets, order, script):
    """(name, path, cookie) of every GET route measured."""
    return [
        ("static page /auth/signin", "/auth/signin", None),
        ("asset /app.js?v=...", script, None),
        ("home page / (rendered)", "/", None),
        ("current user", "/api/users/current-user", buyer),
        ("tickets list ?limit=100", "/api/tickets?limit=100", None),
        ("one ticket", f"/api/tickets/{tickets[1]['id']}", None),
        ("order page data", f"/api/orders/{order['id']}", buyer),
    ]


def order_creation(app, work, seller, buyer, seconds):
    """Measures POST /api/orders, each request for a different ticket listed beforehand."""
    script = os.path.join(work, "orders.lua")
    with open(script, "w") as f:
        f.write(ORDER_SCRIPT)
    url = app.url("/api/orders")

    def ticket_list(name, count):
        listed = app.list_for_sale(seller, count)
        app.wait_idle()
        path = os.path.join(work, name)
        with open(path, "w") as f:
            f.write("\n".join(t["id"] for t in listed) + "\n")
        return path

    # The warm-up tells the rate, and so how many tickets the measured run needs.
    warm = ticket_list("warm.txt", 6000)
    requests, _, _ = run_wrk(url, 2, script=script, args=[warm, buyer])
    needed = int(requests / 2 * seconds * 1.5) + 1000
    run = ticket_list("run.txt", needed)
    before, counters = cpu_seconds(app.host.pid), app.component_stats()
    requests, p50, p99 = run_wrk(url, seconds, script=script, args=[run, buyer])
    cpu = cpu_seconds(app.host.pid) - before
    writer = orders_writer(counters, app.component_stats(), requests)
    app.wait_idle()
    return requests / seconds, p50, p99, cpu / requests * 1e6, rss_mb(app.host.pid), writer


def orders_writer(before, after, orders):
    """What the orders component's writes held of its database's one writer over a run of
    `orders` orders: (write transactions per order, ms waited and ms held per transaction);
    None from a host that does not time its write gate."""
    if not before or "gateHoldNs" not in after.get("orders", {}):
        return None
    grown = {name: after["orders"][name] - before.get("orders", {}).get(name, 0)
             for name in ("writeTransactions", "gateWaitNs", "gateHoldNs")}
    transactions = max(grown["writeTransactions"], 1)
    return (grown["writeTransactions"] / orders, grown["gateWaitNs"] / 1e6 / transactions,
            grown["gateHoldNs"] / 1e6 / transactions)


def soak(app, work, routes, seconds):
    """RSS each minute of a round robin over `routes`: [(minute, req/s, RSS MB, peak MB)]."""
    listing = os.path.join(work, "routes.txt")
    with open(listing, "w") as f:
        f.write("".join(f"{path} {cookie or ''}\n" for _, path, cookie in routes))
    script = os.path.join(work, "soak.lua")
    with open(script, "w") as f:
        f.write(SOAK_SCRIPT)
    samples = []
    for minute in range(max(1, seconds // 60)):
        requests, _, _ = run_wrk(app.url("/"), min(60, seconds), script=script, args=[listing])
        samples.append((minute + 1, requests / min(60, seconds), rss_mb(app.host.pid),
                        peak_rss_mb(app.host.pid)))
        print(f"  soak minute {minute + 1}: {samples[-1][1]:.0f} req/s, RSS {samples[-1][2]:.0f} MB, "
              f"peak {samples[-1][3]:.0f} MB", flush=True)
    return samples


def bench(root, seconds, soak_seconds):
    """Every figure for the checkout at `root`."""
    print(f"== {root}", flush=True)
    figures = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        cold = start_up(root, cache_dir)
        warm = min(start_up(root, cache_dir) for _ in range(3))
        figures["start"] = (cold, warm)
        print(f"  cold start {cold[0] * 1000:.0f} ms, warm {warm[0] * 1000:.0f} ms", flush=True)
        figures["trivial handler (probe app)"] = trivial(root, cache_dir, seconds)
        with App(root=root, cache_dir=cache_dir) as app, tempfile.TemporaryDirectory() as work:
            seller, buyer, tickets, order, script = seed(app)
            routes = get_routes(buyer, tickets, order, script)
            for name, path, cookie in routes:
                headers = [BROWSER] + ([f"cookie: {cookie}"] if cookie else [])
                figures[name] = measure(app.host.pid, app.url(path), seconds, headers=headers)
                print(f"  {name}: {figures[name][0]:.0f} req/s", flush=True)
            figures["create order"] = order_creation(app, work, seller, buyer, seconds)
            figures["peak"] = peak_rss_mb(app.host.pid)
            if soak_seconds:
                figures["soak"] = soak(app, work, routes, soak_seconds)
    return figures


def report(label, figures):
    cold, warm = figures["start"]
    print(f"\n{label}")
    print(f"  start to first 200: cold (empty compile cache) {cold[0] * 1000:.0f} ms, every HTTP component "
          f"answered {cold[1] * 1000:.0f} ms, every component compiled {cold[2] * 1000:.0f} ms; "
          f"warm {warm[0] * 1000:.0f} ms, every HTTP component {warm[1] * 1000:.0f} ms")
    print(f"  {'route':<28} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'CPU/req':>9} {'RSS after':>10}")
    for name, value in figures.items():
        if isinstance(value, tuple) and len(value) >= 5:
            rate, p50, p99, cpu, rss = value[:5]
            print(f"  {name:<28} {rate:>7.0f} {p50:>7.2f} {p99:>7.2f} {cpu:>6.0f} us {rss:>7.0f} MB")
    static = figures["static page /auth/signin"][3] / figures["trivial handler (probe app)"][3]
    asset = figures["asset /app.js?v=..."][3] / figures["trivial handler (probe app)"][3]
    print(f"  static page / trivial handler CPU: {static:.2f}x; asset / trivial: {asset:.2f}x")
    writer = figures["create order"][5]
    if writer:
        print(f"  create order: {writer[0]:.2f} write transactions per order on orders.db, each waiting "
              f"{writer[1]:.2f} ms for its one writer and holding it {writer[2]:.2f} ms")
    print(f"  peak RSS over the routes: {figures['peak']:.0f} MB")
    if "soak" in figures:
        samples = figures["soak"]
        print(f"  soak: RSS {samples[0][2]:.0f} MB after minute 1, {samples[-1][2]:.0f} MB after minute "
              f"{samples[-1][0]}, peak {max(s[3] for s in samples):.0f} MB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk run per route (default 10)")
    parser.add_argument("--soak", type=int, default=0, metavar="SECONDS", help="soak length (0: none)")
    parser.add_argument("--baseline", metavar="DIR", help="an earlier checkout with its builds, measured first")
    options = parser.parse_args()
    print(f"spin-host release builds, {os.cpu_count()} cores, wrk -t2 -c{CONNECTIONS} on the same machine")
    results = []
    if options.baseline:
        results.append((f"baseline: {options.baseline}", bench(os.path.abspath(options.baseline),
                                                               options.seconds, options.soak)))
    results.append((f"this checkout: {ROOT}", bench(ROOT, options.seconds, options.soak)))
    for label, figures in results:
        report(label, figures)


if __name__ == "__main__":
    main()
