#!/usr/bin/env bash
# Home timeline reads on the scaled backend (issue 16, goal 2): 100,000 users, every timeline
# in Redis at its cap of 800 entries, first pages of 20 of uniformly drawn users, find-max at
# p99 < 50 ms in alternating rounds beside the bare axum reference. The server is pinned to
# core 0 and the generator to core 1; PostgreSQL, Redis and NATS run unpinned on the same
# machine (as in docs/benchmarks.md §9).
#
#   scenarios/feed-read-scaled.sh [ROUNDS=3] [OUT_DIR=/tmp/feed-read-scaled]
#
# Needs B (default target/release/praxis), psql, and the local engines of DESIGN.md §5. Makes
# a fresh database praxis_bench_fr<pid> and key prefix fr<pid>, left behind for inspection:
# drop the database and `redis-cli --scan --pattern 'fr<pid>*' | xargs redis-cli del` after.
# Redis needs about 6 GB for the timelines. Takes about 20 minutes before the rounds. With
# ROUNDS_AFTER=FILE the rounds start only once FILE exists (set up while the machine is busy,
# measure once it is quiet).
set -euo pipefail

rounds=${1:-3} out=${2:-/tmp/feed-read-scaled}
B=${B:-target/release/praxis}
export B
db=praxis_bench_fr$$
url="postgres://postgres@127.0.0.1:5432/$db"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_up() { for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$1/healthz" && return; sleep 0.1; done; echo "port $1 did not come up" >&2; exit 1; }

export PRAXIS_ADMIN_KEY=feed-read-bench-admin-key
serve() {
  env PRAXIS_LOG_LEVEL=warn PRAXIS_ACCESS_LOG=false PRAXIS_DATABASE_URL="$url" \
    PRAXIS_REDIS_URL=redis://127.0.0.1:6379 PRAXIS_NATS_URL=nats://127.0.0.1:4222 \
    PRAXIS_PREFIX="fr$$" PRAXIS_JWT_SECRET=feed-read-bench-jwt-secret-0123456789 \
    PRAXIS_NOTIFY_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \
    taskset -c 0 "$B" serve --listen 127.0.0.1:8180 --data-dir "$out/data" >> "$out/server.log" 2>&1 &
  server=$!
  pids+=($server)
  wait_up 8180
}
rebuilds() { curl -s http://127.0.0.1:8180/metrics | awk '/^praxis_feed_rebuilds_total/ {s += $2} END {print s + 0}'; }

rm -rf "$out"
mkdir -p "$out"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" postgres
serve
taskset -c 1 scenarios/feed-graph.py --base http://127.0.0.1:8180
scenarios/feed-fill.sh postgres "$url" 100000 80
# Every timeline is built by its user's first read (in the background after the answer).
taskset -c 1 "$B" bench --scenario scenarios/feed-activate.toml http://127.0.0.1:8180 --rate 400 -d 250s -q || true
for _ in $(seq 1 60); do
  n=$(rebuilds)
  echo "timelines built: $n"
  [[ $n -ge 100000 ]] && break
  taskset -c 1 "$B" bench --scenario scenarios/feed-activate.toml http://127.0.0.1:8180 --rate 1000 -d 100s --timeout 120s -c 512 -q || true
done
redis-cli info memory | grep '^used_memory_human'

while [[ -n ${ROUNDS_AFTER:-} && ! -e $ROUNDS_AFTER ]]; do sleep 5; done
taskset -c 0 "$B" bench reference --listen 127.0.0.1:8190 > /dev/null 2>&1 &
ref=$!
pids+=($ref)
scenarios/rounds.sh "$rounds" "$out" -- --find-max --slo 'p99<50ms' --rate 4000 -d 5s --warmup 1s -c 32 -q -- \
  "ref=$ref=http://127.0.0.1:8190/x --expect-status 301" \
  "feed=$server=--scenario scenarios/feed-home.toml http://127.0.0.1:8180"
scenarios/rounds-summary.py "$out" ref
