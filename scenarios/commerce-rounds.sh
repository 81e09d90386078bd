#!/usr/bin/env bash
# Commerce end to end (docs/benchmarks.md §13): catalog reads and "buy now" checkouts, in
# alternating rounds beside the bare axum reference (`praxis bench reference`, answering 200),
# each server pinned to core 0 and the generator to core 1.
#
#   scenarios/commerce-rounds.sh [embedded|scaled] [ROUNDS=3] [OUT_DIR]
#
# One server (`praxis serve`, every system, PRAXIS_LOG_LEVEL=warn, access log off) on a fresh
# SQLite data dir (embedded) or a fresh PostgreSQL database with Redis and NATS JetStream and
# a fresh key prefix (scaled; the engines unpinned on the same machine). Seeds it with
# scenarios/commerce-seed.py (10,000 products, SKUs s0..s999 with 1,000,000 units each), reads
# every product once, then:
#   catalog:  find-max at p99 < 50 ms of ref, `product` (commerce-catalog.toml) and `list`
#             (commerce-catalog-list.toml), ROUNDS rounds;
#   checkout: find-max at p99 < 250 ms of ref and `checkout` (commerce-checkout.toml).
# Afterwards the inventory's ledger check and the orders by status. Needs B (default
# target/release/praxis); ONLY=catalog skips the checkout rounds. Prints the summaries of
# scenarios/rounds-summary.py.
set -euo pipefail

mode=${1:-embedded} rounds=${2:-3} out=${3:-/tmp/commerce-rounds-$mode}
B=${B:-target/release/praxis}
export B
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_up() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/healthz" && return; sleep 0.1; done; echo "port $1 did not come up" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
export PRAXIS_ADMIN_KEY=commerce-bench-admin-key-0123456789
taskset -c 0 "$B" bench reference --listen 127.0.0.1:8090 --status 200 > /dev/null 2>&1 &
ref=$!
pids+=($ref)

data=/tmp/commerce-bench-$mode
rm -rf "$data"
envs=(PRAXIS_LOG_LEVEL=warn PRAXIS_ACCESS_LOG=false)
if [[ $mode == embedded ]]; then
  db=$data/praxis.db
else
  name=praxis_bench_cm$$
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $name" postgres
  db=postgres://postgres@127.0.0.1:5432/$name
  envs+=(PRAXIS_DATABASE_URL=$db PRAXIS_REDIS_URL=redis://127.0.0.1:6379
         PRAXIS_NATS_URL=nats://127.0.0.1:4222 PRAXIS_PREFIX=cm$$
         PRAXIS_JWT_SECRET=commerce-bench-jwt-secret-0123456789
         PRAXIS_NOTIFY_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw)
fi
env "${envs[@]}" taskset -c 0 "$B" serve --listen 127.0.0.1:8080 --data-dir "$data" > "$out/server.log" 2>&1 &
server=$!
pids+=($server)
wait_up 8080

taskset -c 1 scenarios/commerce-seed.py --db "$db" | tee "$out/seed.txt"
# every product into the caches (150,000 uniform reads cover all 10,000)
taskset -c 1 "$B" bench --scenario scenarios/commerce-catalog.toml --rate 5000 -d 30s -q > "$out/warm.txt"

C=scenarios/commerce-catalog.toml L=scenarios/commerce-catalog-list.toml K=scenarios/commerce-checkout.toml
scenarios/rounds.sh "$rounds" "$out/catalog" -- --find-max --slo 'p99<50ms' --rate 10000 -d 3s --warmup 1s -c 32 -q -- \
  "ref=$ref=http://127.0.0.1:8090/x --expect-status 200" \
  "product=$server=--scenario $C http://127.0.0.1:8080" \
  "list=$server=--scenario $L http://127.0.0.1:8080"
[[ ${ONLY:-} == catalog ]] || scenarios/rounds.sh "$rounds" "$out/checkout" -- --find-max --slo 'p99<250ms' --rate 200 -d 5s --warmup 1s -c 128 -q -- \
  "ref=$ref=http://127.0.0.1:8090/x --expect-status 200" \
  "checkout=$server=--scenario $K http://127.0.0.1:8080"

curl -s -H "authorization: Bearer $PRAXIS_ADMIN_KEY" http://127.0.0.1:8080/api/v1/commerce/inventory/verify \
  | python3 -c 'import json,sys; v=json.load(sys.stdin); print("inventory: rows", v["rows"], "consistent", v["consistent"])' \
  | tee "$out/verify.txt"
q="SELECT step, COUNT(*) FROM commerce_orders GROUP BY step"
if [[ $mode == embedded ]]; then sqlite3 "$db" "$q"; else psql -qAt "$db" -c "$q"; fi | tee "$out/orders.txt"
echo "== catalog (p99 < 50 ms)"
scenarios/rounds-summary.py "$out/catalog" ref
if [[ ${ONLY:-} != catalog ]]; then
  echo "== checkout (p99 < 250 ms)"
  scenarios/rounds-summary.py "$out/checkout" ref
fi
