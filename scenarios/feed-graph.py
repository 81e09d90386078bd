#!/usr/bin/env python3
"""Seeds the feed benchmark's follow graph through the admin bulk import.

    PRAXIS_ADMIN_KEY=... scenarios/feed-graph.py [--base http://127.0.0.1:8080] [--users 100000]
        [--follows 10] [--zipf 1.0] [--star star1k=1000 --star star10k=10000 --star star50k=50000]

Users are `u0` .. `u{N-1}`. Each follows `--follows` distinct users drawn from a Zipf(s)
distribution over the user ranks (u0 the most followed), so follower counts are Zipf
distributed. Each `--star NAME=K` adds an author NAME followed by K distinct users drawn
uniformly. Pairs go to `POST /api/v1/feed/admin/follows` 10,000 at a time. The seed is fixed,
so two runs build the same graph. Prints the follower counts of the top ranks and the stars.
"""
import argparse
import bisect
import json
import os
import random
import sys
import time
import urllib.request


def post(base, key, pairs):
    req = urllib.request.Request(
        f"{base}/api/v1/feed/admin/follows",
        data=json.dumps({"follows": pairs}).encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=300) as r:
        if r.status // 100 != 2:
            sys.exit(f"import: HTTP {r.status}: {r.read()[:300]!r}")
        return json.loads(r.read() or b"{}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8080")
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--follows", type=int, default=10)
    ap.add_argument("--zipf", type=float, default=1.0)
    ap.add_argument("--star", action="append", default=[])
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    key = os.environ.get("PRAXIS_ADMIN_KEY") or sys.exit("set PRAXIS_ADMIN_KEY")
    stars = [(name, int(k)) for name, k in (s.split("=") for s in args.star)] or [
        ("star1k", 1_000), ("star10k", 10_000), ("star50k", 50_000)]
    rng = random.Random(args.seed)
    n = args.users
    cumulative, total = [], 0.0
    for rank in range(1, n + 1):
        total += 1.0 / rank ** args.zipf
        cumulative.append(total)
    followers = [0] * n
    pairs, sent, started = [], 0, time.time()

    def flush(force=False):
        nonlocal pairs, sent
        while len(pairs) >= 10_000 or (force and pairs):
            chunk, pairs = pairs[:10_000], pairs[10_000:]
            post(args.base, key, chunk)
            sent += len(chunk)

    for u in range(n):
        chosen = set()
        while len(chosen) < min(args.follows, n - 1):
            v = bisect.bisect_left(cumulative, rng.random() * total)
            if v != u:
                chosen.add(v)
        for v in chosen:
            followers[v] += 1
            pairs.append([f"u{u}", f"u{v}"])
        flush()
    for name, k in stars:
        for u in rng.sample(range(n), k):
            pairs.append([f"u{u}", name])
        flush()
    flush(force=True)
    took = time.time() - started
    top = sorted(range(n), key=lambda v: -followers[v])[:5]
    print(f"imported {sent} follows for {n} users in {took:.1f} s ({sent / took:,.0f}/s)")
    print("most followed:", ", ".join(f"u{v} {followers[v]}" for v in top),
          "| median followers:", sorted(followers)[n // 2])
    print("stars:", ", ".join(f"{name} {k}" for name, k in stars))


if __name__ == "__main__":
    main()
