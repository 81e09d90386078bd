#!/usr/bin/env bash
# Sharded orders (docs/benchmarks.md §14), against `praxis serve --only orders`, the server
# pinned to core 0 and the generator (and the seeding) to core 1:
#
#   scenarios/orders-rebalance.sh [embedded|scaled] [SEED=100000] [OUT_DIR]
#
# 1. Writes as shards are added: a fresh server whose regions start with 1 shard; find-max of
#    order writes (PUT /api/v1/orders/{id}, 4 KB each) at p99 < 100 ms on 1 shard, then after
#    `praxis shards add` to 2, then to 4 shards of region eu.
# 2. A rebalance under load: a fresh server (2 shards a region) seeded with SEED orders of
#    4 KB (scenarios/orders-seed.py); the database size per order; a baseline run of the mixed
#    load (writes of new orders and reads of seeded ones, 1:1, at RATE=400/s) for 40 s; then
#    the same run with `praxis shards add eu s3 --wait` begun 10 s in. Afterwards the ledger
#    (scenarios/orders-ledger.py: every acknowledged write reads back, none beyond), `praxis
#    shards verify eu` and the orders per shard.
# Needs B (default target/release/praxis). SKIP_SCALE=1 skips part 1; PRAXIS_ORDERS_MOVE_RATE
# (and any other setting) passes through to the servers, e.g. a throttled copy.
set -euo pipefail

mode=${1:-embedded} seed=${2:-100000} out=${3:-/tmp/orders-rebalance-$mode}
B=${B:-target/release/praxis}
RATE=${RATE:-400}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_up() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:8080/healthz" && return; sleep 0.1; done; echo "the server did not come up" >&2; exit 1; }
export PRAXIS_ADMIN_KEY=orders-bench-admin-key-0123456789
rm -rf "$out"
mkdir -p "$out"

# A scenario: writes of new orders from id OFFSET on (weight W), reads of seeded ones (weight
# R). NEW=uniform draws the ids at random from 9*10^9 and takes 200 (replaced) as well as 201:
# each find-max step draws the same ids again, so later steps replace the orders of earlier
# ones (a write of 4 KB all the same).
scenario() { # FILE OFFSET W R
  local lines
  lines=$(python3 -c 'import json; print(json.dumps([{"sku": "SKU-%08d" % i, "quantity": 1 + i % 3, "unit_price_cents": 199 + i} for i in range(60)]))')
  cat > "$1" <<TOML
name = "orders"
description = "PUT new orders (4 KB) and GET seeded ones"
base_url = "http://127.0.0.1:8080"
[load]
connections = 64
[keys.new]
dist = "${NEW:-sequence}"
offset = $2
width = 10
$([[ ${NEW:-} == uniform ]] && echo "n = 9000000000")
[keys.old]
dist = "uniform"
n = $seed
width = 10
[keys.user]
dist = "uniform"
n = 1000
[[request]]
name = "write"
method = "PUT"
path = "/api/v1/orders/eu_0193000000007000a00000{new}"
auth_env = "PRAXIS_ADMIN_KEY"
body = '{"user_id": "u{user}", "currency": "EUR", "lines": $lines}'
$([[ ${NEW:-} == uniform ]] || echo "expect_status = 201")
weight = $3
TOML
  if [[ $4 -gt 0 ]]; then cat >> "$1" <<TOML
[[request]]
name = "read"
method = "GET"
path = "/api/v1/orders/eu_0193000000007000a00000{old}"
auth_env = "PRAXIS_ADMIN_KEY"
expect_status = 200
weight = $4
TOML
  fi
}

start() { # DATA_DIR [ENV...]
  local data=$1; shift
  local envs=(PRAXIS_LOG_LEVEL=warn PRAXIS_ACCESS_LOG=false "$@")
  if [[ $mode == scaled ]]; then
    local name=praxis_bench_or$$_$RANDOM
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $name" postgres
    envs+=(PRAXIS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$name PRAXIS_REDIS_URL=redis://127.0.0.1:6379
           PRAXIS_NATS_URL=nats://127.0.0.1:4222 PRAXIS_PREFIX=or$$$RANDOM
           PRAXIS_JWT_SECRET=orders-bench-jwt-secret-0123456789)
    echo "$name" >> "$out/databases.txt"
  fi
  env "${envs[@]}" taskset -c 0 "$B" serve --only orders --listen 127.0.0.1:8080 --data-dir "$data" >> "$out/server.log" 2>&1 &
  server=$!
  pids+=($server)
  wait_up
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; }
shards() { env PRAXIS_ADMIN_KEY=$PRAXIS_ADMIN_KEY "$B" shards "$@" --url http://127.0.0.1:8080; }

# 1. Writes as shards are added (1 -> 2 -> 4).
if [[ -z ${SKIP_SCALE:-} ]]; then
start "$out/scale-data" PRAXIS_ORDERS_INITIAL_SHARDS=1
offset=0
for n in 1 2 4; do
  case $n in 2) shards add eu s2 --wait > /dev/null ;; 4) shards add eu s3 --wait > /dev/null; shards add eu s4 --wait > /dev/null ;; esac
  NEW=uniform scenario "$out/write-$n.toml" $offset 1 0
  taskset -c 1 "$B" bench --scenario "$out/write-$n.toml" --find-max --slo 'p99<100ms' --rate 500 -d 5s --warmup 0s -q --json "$out/write-$n.json" | tee "$out/write-$n.txt"
  offset=$((offset + 1000000))
done
shards status | tee "$out/scale-status.txt"
stop
fi

# 2. A rebalance under load.
start "$out/data"
taskset -c 1 scenarios/orders-seed.py --count "$seed" | tee "$out/seed.txt"
if [[ $mode == embedded ]]; then
  du -cb "$out"/data/shards/eu/*.db* | tail -1 | awk -v n="$seed" '{printf "database bytes per order (orders, index entries, indexes, WAL): %.0f\n", $1 / n}' | tee "$out/size.txt"
else
  name=$(tail -1 "$out/databases.txt")
  psql -h 127.0.0.1 -U postgres -qAt -c "SELECT SUM(pg_database_size(datname)) FROM pg_database WHERE datname LIKE '${name}_eu_%'" postgres \
    | awk -v n="$seed" '{printf "database bytes per order (orders, index entries, indexes): %.0f\n", $1 / n}' | tee "$out/size.txt"
fi
scenario "$out/mixed-base.toml" 10000000 1 1
taskset -c 1 "$B" bench --scenario "$out/mixed-base.toml" --rate "$RATE" -d 40s --warmup 0s -q --json "$out/baseline.json" | tee "$out/baseline.txt"
scenario "$out/mixed-move.toml" 20000000 1 1
taskset -c 1 "$B" bench --scenario "$out/mixed-move.toml" --rate "$RATE" -d 60s --warmup 0s -q --json "$out/move.json" > "$out/move.txt" &
bench=$!
sleep 10
t0=$(date +%s.%N)
shards add eu s3 --wait | tee "$out/move-progress.txt"
t1=$(date +%s.%N)
wait "$bench"
cat "$out/move.txt"
python3 -c "print('move: %.1f s' % ($t1 - $t0))" | tee "$out/move-time.txt"
taskset -c 1 scenarios/orders-ledger.py --from 20000000 --result "$out/move.json" | tee "$out/ledger.txt"
shards verify eu | tee "$out/verify.txt"
shards status | tee "$out/status.txt"
stop
