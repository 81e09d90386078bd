#!/usr/bin/env python3
"""Delivery numbers of a notify benchmark, read from the database.

    scenarios/notify-delivery-stats.py DATA_DIR/praxis.db [SINCE_MS]      # embedded (SQLite)
    scenarios/notify-delivery-stats.py postgres://USER@HOST/DB [SINCE_MS]   # scaled (needs psql)

For webhook deliveries of messages created at or after SINCE_MS (unix ms; default all):
counts by state, end-to-end latency (message accepted -> delivery completed) p50/p90/p99/max,
and delivered/s over the span from the first acceptance to the last completion.
"""
import sqlite3
import subprocess
import sys


def pct(sorted_values, q):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[i]


class Psql:
    """The two queries below through `psql` (no Python driver needed)."""

    def __init__(self, url):
        self.url = url

    def execute(self, sql, params):
        sql = sql.replace("?", str(int(params[0])))
        out = subprocess.run(["psql", self.url, "-Atq", "-F", "\t", "-c", sql],
                             check=True, capture_output=True, text=True).stdout
        return Rows([tuple(int(v) if v.lstrip("-").isdigit() else v for v in line.split("\t"))
                     for line in out.splitlines() if line])


class Rows(list):
    def fetchall(self):
        return list(self)


def main():
    target = sys.argv[1]
    if target.startswith("postgres://") or target.startswith("postgresql://"):
        db = Psql(target)
    else:
        db = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    since = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    states = db.execute(
        "SELECT d.state, count(*) FROM notify_deliveries d JOIN notify_messages m ON m.id = d.message_id "
        "WHERE d.channel = 'webhook' AND m.created_at >= ? GROUP BY d.state", (since,)).fetchall()
    rows = db.execute(
        "SELECT m.created_at, d.delivered_at FROM notify_deliveries d JOIN notify_messages m ON m.id = d.message_id "
        "WHERE d.channel = 'webhook' AND d.state = 'delivered' AND m.created_at >= ?", (since,)).fetchall()
    print("states:", ", ".join(f"{s} {n}" for s, n in states))
    if not rows:
        return
    lat = sorted(d - c for c, d in rows)
    first, last = min(c for c, _ in rows), max(d for _, d in rows)
    span = max(1, last - first) / 1000
    print(f"delivered {len(rows)} in {span:.1f} s from first accept to last delivery = {len(rows) / span:,.0f}/s")
    print("end-to-end ms: p50 {} p90 {} p99 {} max {}".format(
        pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), lat[-1]))


if __name__ == "__main__":
    main()
