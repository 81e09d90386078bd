#!/usr/bin/env python3
"""The ledger check of the orders rebalance benchmark (docs/benchmarks.md §14): reads back
orders eu_0193000000007000a00000<k> for k in [FROM, FROM+COUNT) (the ids a run of
scenarios/orders-rebalance.sh wrote, in order) and compares with the writes the bench
acknowledged (the `write` kind of its --json result): every acknowledged order must read back,
and no order beyond those the run scheduled may exist.

    scenarios/orders-ledger.py --url URL --from 100000 --result run.json
"""
import argparse
import http.client
import json
import os
import sys
import threading
import urllib.parse


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--from", dest="start", type=int, required=True)
    p.add_argument("--result", required=True)
    p.add_argument("--threads", type=int, default=16)
    a = p.parse_args()
    result = json.load(open(a.result))
    write = next(k for k in result["kinds"] if k["name"] == "write")
    acked = write["responses"] - write["error_total"]
    # The sequence gives ids in the order requests were scheduled; read a margin beyond.
    scheduled = write["responses"] + 100
    key = os.environ["PRAXIS_ADMIN_KEY"]
    url = urllib.parse.urlparse(a.url)
    found = [0] * scheduled
    nxt = [0]
    lock = threading.Lock()

    def work():
        conn = http.client.HTTPConnection(url.hostname, url.port)
        while True:
            with lock:
                i = nxt[0]
                if i >= scheduled:
                    return
                nxt[0] += 1
            conn.request("GET", f"/api/v1/orders/eu_0193000000007000a00000{a.start + i:010d}",
                         headers={"authorization": f"Bearer {key}"})
            r = conn.getresponse()
            r.read()
            found[i] = 1 if r.status == 200 else 0

    threads = [threading.Thread(target=work) for _ in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    present = sum(found)
    ok = present >= acked and present <= write["responses"]
    print(f"ledger: {acked} writes acknowledged, {write['error_total']} refused, "
          f"{present} orders read back: {'ok' if ok else 'MISMATCH'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
