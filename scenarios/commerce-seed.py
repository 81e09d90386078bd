#!/usr/bin/env python3
"""Seeds the commerce benchmarks (scenarios/commerce-*.toml, docs/benchmarks.md §13).

    scenarios/commerce-seed.py --db DATA_DIR/praxis.db [--base http://127.0.0.1:8080]
    scenarios/commerce-seed.py --db postgres://postgres@127.0.0.1:5432/DBNAME ...

Makes PRODUCTS products (default 10,000), product i with the id
00000000-0000-7000-8000-{i:012} (so a scenario's key generator can name it: `praxis bench`
keys are numbers) and one variant, SKU `s{i}`, priced 10.00 to 99.99 EUR; warehouse `w1`
(region `eu`); and STOCKED SKUs (s0 .. s999 by default) with UNITS units each (1,000,000).

The product rows go straight into `commerce_products` (a product's id is the server's UUIDv7
otherwise); everything else goes through the API as the admin ($PRAXIS_ADMIN_KEY): variants,
prices, the warehouse, the receipts (so the stock has its ledger entries and
`GET /inventory/verify` agrees). Run it against a running server, before any product is read.
Idempotent: a second run skips what exists.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

DESCRIPTION = (
    "A sturdy everyday item from the praxis benchmark catalog: cotton and recycled fibres, "
    "machine washable, shipped from the EU warehouse within two working days. Sizes run true; "
    "see the variant for colour and fit."
)


def product_id(i: int) -> str:
    return f"00000000-0000-7000-8000-{i:012d}"


def insert_products(db: str, n: int) -> None:
    now = int(time.time() * 1000)
    rows = [(product_id(i), f"Product {i}", DESCRIPTION, now) for i in range(n)]
    if db.startswith("postgres"):
        lines = ["BEGIN;"]
        for pid, name, desc, t in rows:
            lines.append(
                "INSERT INTO commerce_products (id, name, description, version, created_at, "
                f"updated_at) VALUES ('{pid}', '{name}', '{desc}', 1, {t}, {t}) "
                "ON CONFLICT (id) DO NOTHING;"
            )
        lines.append("COMMIT;")
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", db],
            input="\n".join(lines),
            text=True,
            check=True,
        )
    else:
        con = sqlite3.connect(db, timeout=60)
        with con:
            con.executemany(
                "INSERT INTO commerce_products (id, name, description, version, created_at, "
                "updated_at) VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (id) DO NOTHING",
                [(pid, name, desc, t, t) for pid, name, desc, t in rows],
            )
        con.close()


class Api:
    """One keep-alive connection per thread."""

    def __init__(self, base: str, key: str):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        self.local = threading.local()

    def call(self, method: str, path: str, body=None):
        for attempt in range(3):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                data = None if body is None else json.dumps(body)
                conn.request(method, path, body=data, headers=self.headers)
                resp = conn.getresponse()
                text = resp.read()
                return resp.status, (json.loads(text) if text else None)
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def must(status_body, ok, what):
    status, body = status_body
    if status not in ok:
        sys.exit(f"{what}: HTTP {status}: {body}")
    return body


def seed_one(api: Api, i: int, stocked: int, units: int) -> None:
    sku = f"s{i}"
    must(
        api.call("POST", f"/api/v1/commerce/products/{product_id(i)}/variants",
                 {"sku": sku, "name": "one size"}),
        (201, 409),
        f"variant {sku}",
    )
    must(
        api.call("PUT", f"/api/v1/commerce/skus/{sku}/prices/EUR",
                 {"amount_cents": 1000 + (i * 7919) % 9000}),
        (200,),
        f"price {sku}",
    )
    if i < stocked:
        stock = must(api.call("GET", f"/api/v1/commerce/stock/{sku}"), (200,), f"stock {sku}")
        if sum(s["on_hand"] for s in stock) < units:
            must(
                api.call("POST", f"/api/v1/commerce/stock/{sku}/receive",
                         {"warehouse": "w1", "quantity": units}),
                (200,),
                f"receive {sku}",
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="http://127.0.0.1:8080")
    ap.add_argument("--db", required=True, help="the server's SQLite file or PostgreSQL URL")
    ap.add_argument("--products", type=int, default=10_000)
    ap.add_argument("--stocked", type=int, default=1_000)
    ap.add_argument("--units", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=4)
    a = ap.parse_args()
    key = os.environ.get("PRAXIS_ADMIN_KEY") or sys.exit("set PRAXIS_ADMIN_KEY")
    api = Api(a.base, key)
    t0 = time.time()
    insert_products(a.db, a.products)
    print(f"{a.products} product rows: {time.time() - t0:.1f}s", flush=True)
    must(api.call("PUT", "/api/v1/commerce/warehouses/w1", {"region": "eu"}), (200,), "warehouse")
    t1 = time.time()
    with concurrent.futures.ThreadPoolExecutor(a.concurrency) as pool:
        futures = [pool.submit(seed_one, api, i, a.stocked, a.units) for i in range(a.products)]
        for n, f in enumerate(concurrent.futures.as_completed(futures), 1):
            f.result()
            if n % 1000 == 0:
                print(f"  {n} SKUs ({n / (time.time() - t1):.0f}/s)", flush=True)
    verified = must(api.call("GET", "/api/v1/commerce/inventory/verify"), (200,), "verify")
    print(
        f"seeded {a.products} products, {a.stocked} SKUs with {a.units} units: "
        f"{time.time() - t0:.0f}s; inventory consistent: {verified['consistent']}"
    )


if __name__ == "__main__":
    main()
