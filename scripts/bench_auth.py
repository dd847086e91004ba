"""Sign-up and sign-in latency of the auth component on a release build of spin-host, and the
Argon2id hash time inside the Wasm instance (from the `Server-Timing` header auth sends).

Run through scripts/bench-auth, which builds everything first. Requests are sequential (one at a
time, so latency is not queueing), then repeated with 4 concurrent clients.
"""

import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from bench_host import ROOT, free_port, wait_for

HOST = os.path.join(ROOT, "target/host/spin-host")


def generate_keys(work):
    der = os.path.join(work, "key.der")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-outform", "DER", "-out", der], check=True)
    private = subprocess.run(["base64", "-w0", der], capture_output=True, text=True, check=True).stdout
    public_der = subprocess.run(["openssl", "pkey", "-inform", "DER", "-in", der, "-pubout", "-outform", "DER"],
                                capture_output=True, check=True).stdout
    public = subprocess.run(["base64", "-w0"], input=public_der[-32:], capture_output=True, check=True).stdout.decode()
    return private, public


def post(url, body):
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, timing = response.status, response.headers.get("server-timing", "")
    except urllib.error.HTTPError as error:
        status, timing = error.code, ""
    elapsed = (time.monotonic() - started) * 1000
    hash_ms = float(timing.split("dur=")[1]) if "dur=" in timing else None
    return status, elapsed, hash_ms


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(name, results, expected):
    bad = [r for r in results if r[0] != expected]
    if bad:
        raise SystemExit(f"{name}: {len(bad)} responses were not {expected}: {bad[:3]}")
    latencies = [r[1] for r in results]
    hashes = [r[2] for r in results if r[2] is not None]
    print(f"{name:<28} n={len(results):<4} p50 {percentile(latencies, 50):6.1f} ms   p99 {percentile(latencies, 99):6.1f} ms"
          f"   argon2 in Wasm p50 {statistics.median(hashes):5.1f} ms")


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    work = tempfile.mkdtemp()
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
                              "--appendonly", "no", "--dir", work], stdout=subprocess.DEVNULL)
    private, public = generate_keys(work)
    shutil.copy(os.path.join(ROOT, "runtime-config.toml"), work)
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "SPIN_VARIABLE_REDIS_ADDRESS": f"redis://127.0.0.1:{redis_port}",
        "SPIN_VARIABLE_JWT_PRIVATE_KEY": private,
        "SPIN_VARIABLE_JWT_PUBLIC_KEY": public,
        "SPIN_VARIABLE_PASS_SIGNING_KEY": generate_keys(work)[0],
        "SPIN_VARIABLE_PLAIN_HTTP": "true",
        "SPIN_VARIABLE_SIGNIN_MAX_ATTEMPTS_PER_ADDRESS": "1000000",
    }
    args = [HOST, "up", "-f", os.path.join(ROOT, "spin.toml"), "--listen", f"127.0.0.1:{port}",
            "--runtime-config-file", os.path.join(work, "runtime-config.toml"), "--state-dir",
            os.path.join(work, ".spin"), "--quiet"]
    host = subprocess.Popen(args, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api/users"
    try:
        wait_for(f"{base}/current-user", time.monotonic() + 60)
        post(f"{base}/signup", {"email": "warm@example.com", "password": "warm-up-pass"})
        emails = [f"user{i}@example.com" for i in range(count)]
        print(f"spin-host release build, Argon2id m=19456 KiB t=2 p=1, {os.cpu_count()} cores")
        report("sign-up (sequential)", [post(f"{base}/signup", {"email": e, "password": "a long password"})
                                         for e in emails], 201)
        report("sign-in (sequential)", [post(f"{base}/signin", {"email": e, "password": "a long password"})
                                         for e in emails], 200)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            more = [f"par{i}@example.com" for i in range(count)]
            report("sign-up (4 concurrent)", list(pool.map(
                lambda e: post(f"{base}/signup", {"email": e, "password": "a long password"}), more)), 201)
            report("sign-in (4 concurrent)", list(pool.map(
                lambda e: post(f"{base}/signin", {"email": e, "password": "a long password"}), more)), 200)
    finally:
        host.terminate()
        host.wait()
        redis.terminate()
        redis.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
