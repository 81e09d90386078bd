#!/usr/bin/env bash
# praxis scaled out behind its gateway (issue 21): 1, 2 and 3 `praxis serve --only shortener`
# instances on one PostgreSQL + Redis + NATS, each behind `praxis gateway` (one
# gateway per pool size, P2C), measured with redirects of 1,000,000 links (Zipf 1.0,
# scenarios/shortener-redirect-zipf.toml) in alternating rounds beside the bare axum reference
# and one instance without the gateway:
#   1. the highest rate within p99 < 50 ms (`--find-max`), per target and round;
#   2. a fixed rate (FIXED_RATE, default 3000/s) per target, with the CPU seconds of the gateway
#      and of the instances around it: CPU per request of each tier, the capacity model's input;
#   3. the cache's hits and misses (from /metrics) over the whole session.
#
#   scenarios/gateway-scale-out.sh [ROUNDS=3] [OUT_DIR=/tmp/gateway-scale-out]
#
# The generator runs on core 1 (taskset); the instances, the gateways, PostgreSQL, Redis and
# NATS are not pinned: on two cores they share what the generator leaves, so the curve is
# bounded by the machine. Needs B (default target/release/praxis), psql and the local engines of
# DESIGN.md §5. Makes a database praxis_bench_gso<pid> and key prefix gso<pid>, left behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rounds=${1:-3} out=${2:-/tmp/gateway-scale-out}
B=${B:-target/release/praxis}
FIXED_RATE=${FIXED_RATE:-3000}
db=praxis_bench_gso$$
url="postgres://postgres@127.0.0.1:5432/$db"
UP_PORTS=(19381 19382 19383)
GW_PORTS=(19391 19392 19393)
GW_APIS=(19394 19395 19396)
REF_PORT=19390
export PRAXIS_ADMIN_KEY=gateway-scale-out-bench-admin-key
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
log() { printf '==> %s\n' "$*" >&2; }
wait_up() {
  for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$1/healthz" && return; sleep 0.1; done
  echo "port $1 did not come up" >&2
  exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

rm -rf "$out"
mkdir -p "$out"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" postgres

instances=()
for i in 0 1 2; do
  env PRAXIS_LOG_LEVEL=warn PRAXIS_ACCESS_LOG=false PRAXIS_DATABASE_URL="$url" \
    PRAXIS_REDIS_URL=redis://127.0.0.1:6379 PRAXIS_NATS_URL=nats://127.0.0.1:4222 \
    PRAXIS_PREFIX="gso$$" PRAXIS_CACHE_CAPACITY=1100000 PRAXIS_JWT_SECRET=gateway-scale-out-bench-jwt-secret-0123456789 \
    "$B" serve --only shortener --listen "127.0.0.1:${UP_PORTS[$i]}" --data-dir "$out/up$i" >>"$out/up$i.log" 2>&1 &
  instances+=($!)
  pids+=($!)
  wait_up "${UP_PORTS[$i]}"
done

gateways=()
for n in 1 2 3; do
  list=""
  for ((i = 0; i < n; i++)); do list+="\"127.0.0.1:${UP_PORTS[$i]}\", "; done
  cat >"$out/routes-$n.toml" <<TOML
[pools.praxis]
instances = [${list%, }]
algorithm = "p2c_ewma"
health.check = "http"
health.path = "/readyz"

[[routes]]
pool = "praxis"
TOML
  env PRAXIS_LOG_LEVEL=warn PRAXIS_ACCESS_LOG=false PRAXIS_GATEWAY_ROUTES="$out/routes-$n.toml" \
    PRAXIS_GATEWAY_LISTEN="127.0.0.1:${GW_PORTS[$((n - 1))]}" \
    "$B" gateway --listen "127.0.0.1:${GW_APIS[$((n - 1))]}" --data-dir "$out/gw$n" >>"$out/gw$n.log" 2>&1 &
  gateways+=($!)
  pids+=($!)
  wait_up "${GW_APIS[$((n - 1))]}"
done
"$B" bench reference --listen "127.0.0.1:$REF_PORT" >/dev/null 2>&1 &
ref=$!
pids+=($ref)

log "seeding 1,000,000 links through instance 1"
taskset -c 1 "$B" bench --scenario scenarios/shortener-redirect-zipf.toml "http://127.0.0.1:${UP_PORTS[0]}" --seed-only
log "warming each instance's cache with the Zipf traffic"
for i in 0 1 2; do
  taskset -c 1 "$B" bench --scenario scenarios/shortener-redirect-zipf.toml "http://127.0.0.1:${UP_PORTS[$i]}" \
    --no-seed --rate 3000 -d 20s --warmup 0s -q >/dev/null
done

# target name, URL args, and the pids whose CPU is the gateway's and the instances'.
targets=(ref direct1 gw1 gw2 gw3)
args_of() {
  case $1 in
    ref) echo "http://127.0.0.1:$REF_PORT/x --expect-status 301" ;;
    direct1) echo "--scenario scenarios/shortener-redirect-zipf.toml http://127.0.0.1:${UP_PORTS[0]} --no-seed" ;;
    gw*) echo "--scenario scenarios/shortener-redirect-zipf.toml http://127.0.0.1:${GW_PORTS[$((${1#gw} - 1))]} --no-seed" ;;
  esac
}
gateway_of() { case $1 in gw*) echo "${gateways[$((${1#gw} - 1))]}" ;; *) echo "" ;; esac; }
instances_of() {
  case $1 in
    ref) echo "$ref" ;;
    direct1 | gw1) echo "${instances[0]}" ;;
    gw2) echo "${instances[0]} ${instances[1]}" ;;
    gw3) echo "${instances[*]}" ;;
  esac
}
sum_ticks() { local s=0; for p in "$@"; do s=$((s + $(cpu_ticks "$p"))); done; echo "$s"; }

printf 'round\ttarget\tmax_rate\tfixed_rate\tfixed_p50_us\tfixed_p99_us\tfixed_errors\tgateway_cpu_s\tinstances_cpu_s\tresponses\n' >"$out/rows.tsv"
for r in $(seq 1 "$rounds"); do
  for t in "${targets[@]}"; do
    # shellcheck disable=SC2046 # the target's arguments are split on purpose
    taskset -c 1 "$B" bench $(args_of "$t") --find-max --slo 'p99<50ms' --rate 4000 -d 5s --warmup 2s \
      -c 64 -q --json "$out/max-$t-$r.json" >/dev/null
    gw=$(gateway_of "$t")
    read -r -a ins <<<"$(instances_of "$t")"
    g0=0 i0=$(sum_ticks "${ins[@]}")
    [ -n "$gw" ] && g0=$(cpu_ticks "$gw")
    # shellcheck disable=SC2046
    taskset -c 1 "$B" bench $(args_of "$t") --rate "$FIXED_RATE" -d 10s --warmup 2s -c 64 -q \
      --json "$out/fixed-$t-$r.json" >/dev/null
    g1=0 i1=$(sum_ticks "${ins[@]}")
    [ -n "$gw" ] && g1=$(cpu_ticks "$gw")
    python3 - "$out/max-$t-$r.json" "$out/fixed-$t-$r.json" "$r" "$t" "$FIXED_RATE" \
      "$(( g1 - g0 ))" "$(( i1 - i0 ))" "$hz" >>"$out/rows.tsv" <<'PY'
import json, sys
m, f = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
r, t, rate, g, i, hz = sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
print(f'{r}\t{t}\t{(m["max_rate"] or 0):.0f}\t{rate}\t{f["latency"]["p50_us"]:.0f}\t{f["latency"]["p99_us"]:.0f}\t{f["error_total"]}\t{g / hz:.2f}\t{i / hz:.2f}\t{f["responses"]}')
PY
    log "$(tail -1 "$out/rows.tsv")"
  done
done

for i in 0 1 2; do
  curl -s "http://127.0.0.1:${UP_PORTS[$i]}/metrics" | grep -E '^praxis_cache_(l2_)?requests_total' | sed "s/^/instance $((i + 1)): /" || true
done | tee "$out/cache.txt"

python3 - "$out/rows.tsv" "$FIXED_RATE" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print(f"machine: {__import__('os').cpu_count()} cores; generator on core 1, everything else unpinned")
print()
print(f"| target | max rate/s at p99<50ms (median; rounds) | at {sys.argv[2]}/s: p50 us | p99 us | gateway CPU-us/request | instances CPU-us/request |")
print("|---|---|---|---|---|---|")
for t in ["ref", "direct1", "gw1", "gw2", "gw3"]:
    rs = [r for r in rows if r["target"] == t]
    if not rs:
        continue
    med = lambda k: statistics.median(float(r[k]) for r in rs)
    per = lambda k: statistics.median(float(r[k]) * 1e6 / max(1.0, float(r["responses"]) * 1.2) for r in rs)
    gw = f"{per('gateway_cpu_s'):.0f}" if t.startswith("gw") else ""
    print(f"| {t} | {med('max_rate'):.0f} ({'; '.join(r['max_rate'] for r in rs)}) | {med('fixed_p50_us'):.0f} | {med('fixed_p99_us'):.0f} | {gw} | {per('instances_cpu_s'):.0f} |")
print()
print("CPU per request counts the 2 s warm-up (responses x 1.2). Raw rows:")
print()
for r in rows:
    print("    " + "\t".join(r.values()))
PY
