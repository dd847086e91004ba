"""The browser client on a release build of spin-host:

1. The home page with 100 tickets in headless Chromium (tests/browser/bench-first-paint.mjs):
   first contentful paint, first ticket on screen and bytes received, cold and warm, as served
   (tickets in the HTML) and as a client-side fetch would fill it.
2. Bytes of `/` and its assets over plain HTTP, with and without gzip, and the 304 of a
   revalidation.
3. Search and the home page with 100,000 tickets (written straight into the tickets database:
   these figures are about its indexes): `GET /api/tickets?q=` for a word in a third of the
   titles, a word in ten, a word in none, and `GET /` (wrk, 32 connections).

Run through scripts/bench-client, which builds everything first.
"""

import os
import random
import sqlite3
import subprocess
import sys
import urllib.request
import uuid

from bench_app import App
from bench_host import ROOT, run_wrk

TICKETS_SHOWN = 100
MANY = 100_000
WORDS = ["Jazz", "Rock", "Opera", "Ballet", "Symphony", "Comedy", "Theatre", "Festival", "Derby",
         "Final", "Quartet", "Night", "Matinee", "Gala", "Tour", "Live", "Acoustic", "Classic"]


def fetch(url, headers=None):
    """(status, body bytes, headers) of a GET; no redirects or decompression."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


def page_bytes(app):
    html_status, html, headers = fetch(app.url("/"), {"accept-encoding": "gzip"})
    _, plain, _ = fetch(app.url("/"))
    assert html_status == 200 and headers["content-encoding"] == "gzip", headers
    print(f"GET / with {TICKETS_SHOWN} tickets for sale: {len(plain)} bytes of HTML, "
          f"{len(html)} gzipped; its first page shows 48")
    etag = headers["etag"]
    status, body, _ = fetch(app.url("/"), {"accept-encoding": "gzip", "if-none-match": etag})
    print(f"GET / revalidated with its ETag: {status}, {len(body)} bytes of body")
    for asset in ("/app.css", "/app.js"):
        _, gz, _ = fetch(app.url(asset), {"accept-encoding": "gzip"})
        _, raw, _ = fetch(app.url(asset))
        print(f"GET {asset}: {len(raw)} bytes, {len(gz)} gzipped, cached for a year by its fingerprint")


def fill_database(path, count):
    """`count` available tickets straight into the tickets database (and its search index)."""
    random.seed(7)
    db = sqlite3.connect(path, timeout=30)
    with db:
        start = db.execute("SELECT COALESCE(MAX(seq), 0) FROM tickets").fetchone()[0]
        rows = []
        for i in range(count):
            words = random.sample(WORDS, 3)
            if i % 3 == 0:
                words[0] = "Concert"
            if i % (count // 10) == 5:
                words[1] = "Zydeco"
            rows.append((start + i + 1, str(uuid.uuid4()), f"{' '.join(words)} {i}",
                         100 + i % 9900, "bench-seller", 0, "available", 0))
        db.executemany("INSERT INTO tickets (seq, id, title, price_cents, user_id, version, status, "
                       "created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO tickets_search (rowid, title) VALUES (?, ?)",
                       [(row[0], row[2]) for row in rows])
    db.close()


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    runs = sys.argv[2] if len(sys.argv) > 2 else "15"
    with App() as app:
        cookie = app.sign_up("bench@example.com")
        app.create_tickets(cookie, TICKETS_SHOWN, threads=1)
        app.wait_idle()
        print(f"spin-host release build, {os.cpu_count()} cores, Chromium and load generators on the same machine")
        subprocess.run(["node", "bench-first-paint.mjs", app.base, runs],
                       cwd=os.path.join(ROOT, "tests/browser"), check=True)
        page_bytes(app)

        fill_database(os.path.join(app.work, ".spin/tickets.db"), MANY)
        total = MANY + TICKETS_SHOWN
        for label, path in [("a word in a third of the titles", "/api/tickets?q=concert"),
                            ("a word in 10 titles", "/api/tickets?q=zydeco"),
                            ("two words", "/api/tickets?q=jazz%20night"),
                            ("a word in none", "/api/tickets?q=polka"),
                            ("the home page", "/"),
                            ("the home page, searching", "/?q=concert")]:
            url = app.url(path)
            run_wrk(url, 2)
            requests, p50, p99 = run_wrk(url, seconds)
            print(f"GET {path} ({label}) with {total} tickets: {requests / seconds:.0f} req/s, "
                  f"p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
