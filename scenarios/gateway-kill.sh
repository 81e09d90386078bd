#!/usr/bin/env bash
# kill -9 of one of three `praxis serve` instances behind `praxis gateway`, under an
# open-loop load of redirects (issue 21: "the error rate returns to zero within one
# health-check interval"). Each round runs the load for 1 s of warm-up + 10 s, kills instance 2
# with SIGKILL 5 s into the run, and reads `praxis bench --timeline` (responses and errors per
# 10 ms of intended send time): the errors, the first and the last erroring bucket, and how long
# after the kill the last one came, against the pool's health-check interval. Two route
# settings alternate: retries off (what passive and active health alone do) and retries on
# (GET is idempotent; the default).
#
#   scenarios/gateway-kill.sh [ROUNDS=3] [RATE=2000] [OUT_DIR=/tmp/gateway-kill]
#
# Needs B (default target/release/praxis). Embedded instances (each its own data dir, the
# same link created on each); the gateway checks /readyz every CHECK_INTERVAL (default 1s).
# Everything runs unpinned on the machine's two cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rounds=${1:-3} rate=${2:-2000} out=${3:-/tmp/gateway-kill}
B=${B:-target/release/praxis}
CHECK_INTERVAL=${CHECK_INTERVAL:-1s}
GW_PORT=19280 GW_API=19279
UP_PORTS=(19281 19282 19283)
export PRAXIS_ADMIN_KEY=gateway-kill-bench-admin-key
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
log() { printf '==> %s\n' "$*" >&2; }
wait_up() {
  for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$1/healthz" && return; sleep 0.1; done
  echo "port $1 did not come up" >&2
  exit 1
}

rm -rf "$out"
mkdir -p "$out"
upstream=()
start_upstream() { # index
  local port=${UP_PORTS[$1]}
  env PRAXIS_LOG_LEVEL=warn PRAXIS_ACCESS_LOG=false \
    "$B" serve --only shortener --listen "127.0.0.1:$port" --data-dir "$out/up$1" >>"$out/up$1.log" 2>&1 &
  upstream[$1]=$!
  pids+=($!)
  wait_up "$port"
  # The same link on every instance (embedded: each has its own database); 409 if it exists.
  curl -s -o /dev/null -X POST "http://127.0.0.1:$port/api/v1/links" \
    -H "Authorization: Bearer $PRAXIS_ADMIN_KEY" -H 'Content-Type: application/json' \
    -d '{"url": "https://example.com/landing", "alias": "gwkill"}'
}

write_routes() { # retries: true|false
  cat >"$out/routes.toml" <<TOML
[pools.praxis]
instances = ["127.0.0.1:${UP_PORTS[0]}", "127.0.0.1:${UP_PORTS[1]}", "127.0.0.1:${UP_PORTS[2]}"]
health.check = "http"
health.path = "/readyz"
health.interval = "$CHECK_INTERVAL"

[[routes]]
pool = "praxis"
retries = $1
TOML
}

start_gateway() {
  env PRAXIS_LOG_LEVEL=warn PRAXIS_ACCESS_LOG=false PRAXIS_GATEWAY_ROUTES="$out/routes.toml" \
    PRAXIS_GATEWAY_LISTEN="127.0.0.1:$GW_PORT" \
    "$B" gateway --listen "127.0.0.1:$GW_API" --data-dir "$out/gw" >>"$out/gw.log" 2>&1 &
  gateway=$!
  pids+=($!)
  wait_up "$GW_API"
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GW_PORT/gwkill")" = 301 ] && return
    sleep 0.1
  done
  echo "the gateway did not proxy a redirect" >&2
  exit 1
}

printf 'round\tretries\tresponses\terrors\tfirst_error_ms\tlast_error_ms\terror_span_ms\tkill_ms\n' >"$out/rows.tsv"
for round in $(seq 1 "$rounds"); do
  for retries in false true; do
    for i in 0 1 2; do
      if [ -z "${upstream[$i]:-}" ] || ! kill -0 "${upstream[$i]}" 2>/dev/null; then start_upstream "$i"; fi
    done
    write_routes "$retries"
    start_gateway
    started=$(date +%s%N)
    "$B" bench "http://127.0.0.1:$GW_PORT/gwkill" --rate "$rate" --warmup 1s --duration 10s \
      --connections 32 --expect-status 301 --quiet --timeline "$out/timeline-$round-$retries.csv" \
      --json "$out/run-$round-$retries.json" >/dev/null &
    bench=$!
    sleep 6
    killed=$(date +%s%N)
    kill -9 "${upstream[1]}"
    wait "${upstream[1]}" 2>/dev/null || true
    wait "$bench" || true
    kill "$gateway"
    wait "$gateway" 2>/dev/null || true
    python3 - "$out/timeline-$round-$retries.csv" "$round" "$retries" "$(( (killed - started) / 1000000 ))" >>"$out/rows.tsv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
round_, retries, kill_ms = sys.argv[2], sys.argv[3], int(sys.argv[4])
errs = [int(r["ms"]) for r in rows if int(r["errors"]) > 0]
responses = sum(int(r["responses"]) for r in rows)
errors = sum(int(r["errors"]) for r in rows)
first = errs[0] if errs else ""
last = errs[-1] + 10 if errs else ""
span = (errs[-1] + 10 - errs[0]) if errs else 0
print(f"{round_}\t{retries}\t{responses}\t{errors}\t{first}\t{last}\t{span}\t{kill_ms}")
PY
    log "$(tail -1 "$out/rows.tsv")"
  done
done

python3 - "$out/rows.tsv" "$CHECK_INTERVAL" "$rate" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print(f"kill -9 of 1 of 3 instances at about 6 s of an 11 s run at {sys.argv[3]}/s; health-check interval {sys.argv[2]}")
print()
print("| retries | errors (per round) | span of the erroring buckets, ms (per round) | kill at, ms after the generator started (per round) |")
print("|---|---|---|---|")
for retries in ["false", "true"]:
    rs = [r for r in rows if r["retries"] == retries]
    print(f"| {retries} | {'; '.join(r['errors'] for r in rs)} | {'; '.join(r['error_span_ms'] for r in rs)} | {'; '.join(r['kill_ms'] for r in rs)} |")
print()
print("raw rows (first/last error: start of the first and end of the last erroring 10 ms bucket, ms since the run's start):")
print()
for r in rows:
    print("    " + "\t".join(r.values()))
PY
