#!/usr/bin/env bash
# Notification accepts (issue 16, goal 3): the highest rate of `POST /api/v1/notify/send` with
# p99 < 50 ms, in alternating rounds beside a bare axum handler answering 202 to the same
# requests (the same-run reference), each server pinned to core 0 and the generator to core 1.
#
#   scenarios/notify-accept.sh [embedded|scaled] [ROUNDS] [OUT_DIR]
#
# embedded: two servers on fresh SQLite data dirs: `default` (workers on: every accepted
# message is also expanded and delivered to the local sink on the same core) and `api`
# (notify_workers = false: the accept path alone, as an API-only process of a split
# deployment). scaled: one server on PostgreSQL + NATS JetStream + Redis (workers on; a fresh
# database and key prefix), the engines unpinned on the same machine.
# Needs B (default target/release/praxis). With BASELINE=/path/to/an/older/praxis, embedded mode
# adds `api-baseline`: that binary as an API-only server in the same rounds (an A/B of a change).
# Prints the summary of scenarios/rounds-summary.py.
set -euo pipefail

mode=${1:-embedded} rounds=${2:-3} out=${3:-/tmp/notify-accept-$mode}
B=${B:-target/release/praxis}
export B
S=scenarios/notify-send.toml
ARGS=(--find-max --slo 'p99<50ms' --rate 2000 -d 5s --warmup 1s -c 64 -q)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_up() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/healthz" && return; sleep 0.1; done; echo "port $1 did not come up" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
taskset -c 1 "$B" bench reference --listen 127.0.0.1:8093 --status 204 > /dev/null 2>&1 &
pids+=($!)
taskset -c 0 "$B" bench reference --listen 127.0.0.1:8094 --status 202 > /dev/null 2>&1 &
ref=$!
pids+=($ref)

serve() { # NAME PORT ENV...  (BIN: the binary, default $B)
  local name=$1 port=$2 bin=${BIN:-$B}
  shift 2
  rm -rf "/tmp/na-$name"
  env PRAXIS_LOG_LEVEL=warn PRAXIS_ACCESS_LOG=false PRAXIS_NOTIFY_WEBHOOK_ALLOW_CIDRS=127.0.0.1/32 \
    PRAXIS_ADMIN_KEY=notify-accept-bench-admin-key "$@" \
    taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --data-dir "/tmp/na-$name" > "$out/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
  wait_up "$port"
  PRAXIS_ADMIN_KEY=notify-accept-bench-admin-key taskset -c 1 "$B" bench --scenario $S \
    "http://127.0.0.1:$port" --seed-only > /dev/null
}
export PRAXIS_ADMIN_KEY=notify-accept-bench-admin-key

targets=("ref=$ref=--scenario $S http://127.0.0.1:8094 --no-seed")
if [[ $mode == embedded ]]; then
  serve default 8080
  serve api 8081 PRAXIS_NOTIFY_WORKERS=false
  targets+=("default=$pid_default=--scenario $S http://127.0.0.1:8080 --no-seed"
            "api=$pid_api=--scenario $S http://127.0.0.1:8081 --no-seed")
  if [[ -n ${BASELINE:-} ]]; then
    BIN=$BASELINE serve baseline 8083 PRAXIS_NOTIFY_WORKERS=false
    targets+=("api-baseline=$pid_baseline=--scenario $S http://127.0.0.1:8083 --no-seed")
  fi
else
  db=praxis_bench_na$$
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" postgres
  serve scaled 8082 PRAXIS_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" \
    PRAXIS_REDIS_URL=redis://127.0.0.1:6379 PRAXIS_NATS_URL=nats://127.0.0.1:4222 \
    PRAXIS_PREFIX="na$$" PRAXIS_JWT_SECRET=notify-accept-bench-jwt-secret-0123456789 \
    PRAXIS_NOTIFY_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  targets+=("scaled=$pid_scaled=--scenario $S http://127.0.0.1:8082 --no-seed")
fi
scenarios/rounds.sh "$rounds" "$out" -- "${ARGS[@]}" -- "${targets[@]}"
scenarios/rounds-summary.py "$out" ref
