#!/usr/bin/env python3
"""Fan-out time and write amplification of feed posts, read from the server's metrics.

    PRAXIS_JWT_SECRET=... scenarios/feed-fanout.py [--base URL] [--authors star1k,star10k,star50k]
        [--random 200 --users 100000] [--repeat 3]

Posts as each named author (an HS256 access token signed with the server's `jwt_secret`, as
identity would issue: any `sub` is a feed user), one post at a time, and after each waits
until the `feed-fanout` consumer has finished it: `praxis_feed_fanout_lag_seconds_count`
grows by one. Per post it prints the fan-out time (the histogram's sum grew by the post's lag:
created -> last follower timeline written) and the timeline entries written
(`praxis_feed_fanout_entries_total{kind="push"}` delta). Then `--random N` posts by uniformly
random users `u0..u{users-1}` give the mean entries written per post (write amplification).
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import re
import statistics
import sys
import time
import urllib.request


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret, sub, issuer="praxis", audience="praxis"):
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"iss": issuer, "aud": audience, "sub": sub, "iat": now, "nbf": now - 5,
                             "exp": now + 3600, "jti": f"bench-{sub}-{now}", "scope": "",
                             "role": "user", "plan": "default"}).encode())
    sig = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(sig)}"


def metrics(base):
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        m = re.match(r'^(praxis_feed_fanout_(?:lag_seconds_(?:sum|count)|entries_total))(\{[^}]*\})?\s+(\S+)$', line)
        if m:
            name, labels = m.group(1), m.group(2) or ""
            if name == "praxis_feed_fanout_entries_total" and 'kind="push"' not in labels:
                continue
            values[name] = values.get(name, 0.0) + float(m.group(3))
    return values


def post(base, secret, author, text):
    req = urllib.request.Request(
        f"{base}/api/v1/feed/posts", data=json.dumps({"text": text}).encode(), method="POST",
        headers={"authorization": f"Bearer {token(secret, author)}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def post_and_wait(base, secret, author, text, timeout=600):
    before = metrics(base)
    started = time.time()
    created = post(base, secret, author, text)
    if created.get("fanout") == "pull":
        return created, None, 0  # merged at read: no fan-out, no timeline entry
    count0 = before.get("praxis_feed_fanout_lag_seconds_count", 0)
    while True:
        now = metrics(base)
        if now.get("praxis_feed_fanout_lag_seconds_count", 0) > count0:
            lag = now["praxis_feed_fanout_lag_seconds_sum"] - before.get("praxis_feed_fanout_lag_seconds_sum", 0)
            entries = now.get("praxis_feed_fanout_entries_total", 0) - before.get("praxis_feed_fanout_entries_total", 0)
            return created, lag, int(entries)
        if time.time() - started > timeout:
            sys.exit(f"fan-out of {author}'s post not finished after {timeout} s")
        time.sleep(0.01)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8080")
    ap.add_argument("--authors", default="star1k,star10k,star50k")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--random", type=int, default=200)
    ap.add_argument("--users", type=int, default=100_000)
    args = ap.parse_args()
    secret = os.environ.get("PRAXIS_JWT_SECRET") or sys.exit("set PRAXIS_JWT_SECRET (the server's jwt_secret)")
    for author in filter(None, args.authors.split(",")):
        lags, entries = [], None
        for i in range(args.repeat):
            created, lag, entries = post_and_wait(args.base, secret, author, f"bench post {i} by {author}")
            if lag is None:
                print(f"{author}: post {created['id']} (pull): no fan-out, 0 timeline entries")
                continue
            lags.append(lag * 1000)
            print(f"{author}: post {created['id']} ({created.get('fanout')}): fan-out {lag * 1000:.0f} ms, {entries} timeline entries")
        if lags:
            print(f"{author}: median fan-out {statistics.median(lags):.0f} ms over {len(lags)} posts, {entries} entries per post")
    if args.random:
        rng = random.Random(7)
        total, lags = 0, []
        for i in range(args.random):
            author = f"u{rng.randrange(args.users)}"
            _, lag, entries = post_and_wait(args.base, secret, author, f"random post {i}")
            total += entries
            lags.append((lag or 0) * 1000)
        lags.sort()
        print(f"{args.random} posts by random users: {total} timeline entries, {total / args.random:.1f} per post; "
              f"fan-out p50 {lags[len(lags) // 2]:.0f} ms, max {lags[-1]:.0f} ms")


if __name__ == "__main__":
    main()
