"""Drives target/host/spin-host with wrk and prints the figures issue #2 asks for.

Everything runs on loopback: a private redis-server on a free port, the host serving the probe
app (host/spin-host/tests/apps/probe), and wrk with 2 threads and 32 connections. Host CPU
per request is the host process's user+sys time over the measured run divided by the requests
wrk completed; peak RSS is the host's VmHWM.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = os.path.join(ROOT, "target/host/spin-host")
APP = os.path.join(ROOT, "host/spin-host/tests/apps/probe")
SCENARIOS = [
    ("trivial", "/trivial"),
    ("one key-value read", "/kv-read-bench"),
    ("one SQLite read", "/sql/one?db=notes"),
]
CONNECTIONS = 32
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# Numbers wrk's threads (`first` is 0, 1, ...), so each can take its own share of the work.
NUMBERED_THREADS = """
local threads = 0

function setup(thread)
  thread:set("first", threads)
  threads = threads + 1
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_mb(pid, field):
    """A memory figure of /proc/PID/status (`VmRSS`, `VmHWM`, ...) in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid):
    return status_mb(pid, "VmHWM")


def rss_mb(pid):
    return status_mb(pid, "VmRSS")


def wait_for(url, deadline):
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.002)
    raise SystemExit(f"no 200 from {url} in time")


def host_binary(root):
    """The optimized host of the checkout at `root`: target/host/, or target/release/ in
    checkouts older than the `host` profile."""
    host = os.path.join(root, os.path.relpath(HOST, ROOT))
    return host if os.path.exists(host) else os.path.join(root, "target/release/spin-host")


def start_host(work, redis_url, port, cache_dir, root=ROOT):
    """The probe app of the checkout at `root` on that checkout's release host."""
    app = os.path.join(root, os.path.relpath(APP, ROOT))
    with open(os.path.join(work, "seed.sql"), "w") as f:
        f.write(open(os.path.join(app, "migrations.sql")).read())
        f.write("\nINSERT INTO notes (body) VALUES ('a note to read');\n")
    shutil.copy(os.path.join(app, "runtime-config.toml"), work)
    env = {
        "PATH": os.environ["PATH"],
        "SPIN_VARIABLE_REDIS_ADDRESS": redis_url,
        "SPIN_VARIABLE_SECRET_TOKEN": "bench",
        "SPIN_HOST_CACHE_DIR": cache_dir,
    }
    args = [host_binary(root), "up", "-f", os.path.join(app, "spin.toml"), "--listen", f"127.0.0.1:{port}",
            "--runtime-config-file", os.path.join(work, "runtime-config.toml"),
            "--state-dir", os.path.join(work, ".spin"), "--quiet",
            "--key-value", "bench=a value to read", "--sqlite", "@seed.sql:notes"]
    return subprocess.Popen(args, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def time_to_first_200(redis_url, cache_dir):
    with tempfile.TemporaryDirectory() as work:
        port = free_port()
        started = time.monotonic()
        host = start_host(work, redis_url, port, cache_dir)
        try:
            wait_for(f"http://127.0.0.1:{port}/trivial", started + 120)
            return time.monotonic() - started
        finally:
            host.terminate()
            host.wait()


def parse_latency_ms(text, percentile):
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(url, seconds, script=None, args=(), headers=()):
    """(requests, p50 ms, p99 ms) of a wrk run against `url`, with `headers` ("name: value") on
    every request and a Lua `script` and its `args` if given; any response other than 2xx/3xx
    stops the benchmark."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", script]
    command.append(url)
    if args:
        command += ["--", *args]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} failed responses\n{out}")
    return requests, parse_latency_ms(out, 50), parse_latency_ms(out, 99)


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    redis_dir = tempfile.mkdtemp()
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
                              "--save", "", "--appendonly", "no", "--dir", redis_dir],
                             stdout=subprocess.DEVNULL)
    redis_url = f"redis://127.0.0.1:{redis_port}"
    cache_dir = tempfile.mkdtemp()
    try:
        time.sleep(0.2)
        cold = time_to_first_200(redis_url, cache_dir)
        warm = min(time_to_first_200(redis_url, cache_dir) for _ in range(3))
        print(f"up -> first 200: {warm * 1000:.0f} ms from built artifacts with the compile cache, "
              f"{cold * 1000:.0f} ms on the very first run (compiling)")

        with tempfile.TemporaryDirectory() as work:
            port = free_port()
            host = start_host(work, redis_url, port, cache_dir)
            try:
                wait_for(f"http://127.0.0.1:{port}/trivial", time.monotonic() + 60)
                print(f"\nwrk -t2 -c{CONNECTIONS} -d{seconds}s, host and load generator on this machine "
                      f"({os.cpu_count()} cores)")
                print(f"{'handler':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'host CPU/req':>13}")
                for name, path in SCENARIOS:
                    url = f"http://127.0.0.1:{port}{path}"
                    run_wrk(url, 2)  # warm-up
                    before = cpu_seconds(host.pid)
                    requests, p50, p99 = run_wrk(url, seconds)
                    cpu = cpu_seconds(host.pid) - before
                    print(f"{name:<20} {requests / seconds:>9.0f} {p50:>8.2f} {p99:>8.2f} "
                          f"{cpu / requests * 1e6:>10.0f} us")
                print(f"\nhost peak RSS: {peak_rss_mb(host.pid):.0f} MB")
            finally:
                host.terminate()
                host.wait()
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(redis_dir, ignore_errors=True)
        shutil.rmtree(cache_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
