#!/usr/bin/env python3
"""Seeds the orders system (docs/benchmarks.md §14): PUT /api/v1/orders/{id} of orders
eu_0193000000007000a00000<k, 10 digits> for k in [FROM, FROM+COUNT), each of user u<k mod 1000>
(home region eu) with LINES lines (60 lines: about 4 KB of JSON, the seed's order size), as the
admin ($PRAXIS_ADMIN_KEY), THREADS requests in flight. Prints the rate.

    scenarios/orders-seed.py --url http://127.0.0.1:8080 --count 100000
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def order_id(k):
    return f"eu_0193000000007000a00000{k:010d}"


def body(k, lines):
    return json.dumps({
        "user_id": f"u{k % 1000}",
        "currency": "EUR",
        "lines": [{"sku": f"SKU-{(k * 31 + i) % 100000:08d}", "quantity": 1 + i % 3,
                   "unit_price_cents": 199 + i} for i in range(lines)],
    })


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--from", dest="start", type=int, default=0)
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--lines", type=int, default=60)
    p.add_argument("--threads", type=int, default=16)
    a = p.parse_args()
    key = os.environ["PRAXIS_ADMIN_KEY"]
    url = urllib.parse.urlparse(a.url)
    nxt = [a.start]
    lock = threading.Lock()
    failed = []

    def work():
        conn = http.client.HTTPConnection(url.hostname, url.port)
        while True:
            with lock:
                k = nxt[0]
                if k >= a.start + a.count:
                    return
                nxt[0] += 1
            conn.request("PUT", f"/api/v1/orders/{order_id(k)}", body(k, a.lines),
                         {"authorization": f"Bearer {key}", "content-type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status not in (200, 201):
                failed.append((k, r.status))

    t0 = time.time()
    threads = [threading.Thread(target=work) for _ in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.time() - t0
    print(f"seeded {a.count} orders of {len(body(0, a.lines))} bytes in {dt:.1f} s "
          f"({a.count / dt:.0f}/s), {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
