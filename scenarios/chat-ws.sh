#!/usr/bin/env bash
# The chat's WebSocket figures, each against praxis and against the bare axum broadcast
# reference (`praxis bench ws reference`) in the same session, ROUNDS times alternately
# (praxis, reference, praxis, reference, ...), with the median printed at the end:
#
#   memory   RSS per idle authenticated connection: `bench ws connect` with CLIENTS
#            connections from SOURCES loopback addresses, VmRSS of the server before and after.
#   fanout   deliveries per server CPU-second: one sender, a group of MEMBERS, RATE messages/s
#            for DURATION (+ WARMUP); one embedded praxis process (SQLite).
#   latency  delivery latency across two processes: two praxis processes sharing PostgreSQL,
#            Redis and NATS, receivers spread over both, the sender on the first; LAT_MEMBERS,
#            LAT_RATE. The reference is one process (it has no cross-process path): the floor.
#
# Every server runs pinned to core SERVER_CPU and is restarted for each run (so each memory
# reading starts from a fresh process); the generator runs on GEN_CPU.
#
#   scenarios/chat-ws.sh            # all three
#   ONLY=memory ROUNDS=1 CLIENTS=2000 scenarios/chat-ws.sh
#
# Environment (defaults in brackets):
#   B            praxis binary [target/release/praxis]
#   OUT          result folder: one JSON per run, logs, summary.txt [/tmp/chat-ws]
#   ONLY         comma-separated subset of memory,fanout,latency [memory,fanout,latency]
#   ROUNDS       runs per target and figure [3]
#   SERVER_CPU   core of the servers [0];  GEN_CPU  core of the generator [1]
#   NOFILE       open-file limit set for this shell and its children [200000]
#   CLIENTS      memory: connections [20000];  SOURCES  loopback source addresses [8]
#   HOLD         memory: hold before the second reading [10s]
#   MEMBERS      fanout: group size, sender included [1000];  RATE  messages/s [100]
#   DURATION     fanout and latency: measured window [10s];  WARMUP  [3s]
#   LAT_MEMBERS  latency: group size [1000];  LAT_RATE  messages/s [20]
#   PG_URL       latency: PostgreSQL database (created if missing)
#                [postgres://postgres@127.0.0.1:5432/praxis_chat_ws]
#   REDIS_URL    [redis://127.0.0.1:6379];  NATS_URL  [nats://127.0.0.1:4222]
#   PRAXIS_JWT_SECRET  signing secret shared by the servers and the bench [random per session]
#
# The chat settings the runs need are set here for the praxis processes:
# PRAXIS_CHAT_SEND_RATE (one account sends everything), PRAXIS_CHAT_MAX_MEMBERS,
# PRAXIS_CHAT_OUTBOUND_QUEUE (each subscribe sends every follower a presence frame: a group of
# M joining is a burst of up to M - 1 frames per socket), and PRAXIS_ACCESS_LOG=false.
set -euo pipefail

B=${B:-target/release/praxis}
OUT=${OUT:-/tmp/chat-ws}
ONLY=${ONLY:-memory,fanout,latency}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
NOFILE=${NOFILE:-200000}
CLIENTS=${CLIENTS:-20000}
SOURCES=${SOURCES:-8}
HOLD=${HOLD:-10s}
MEMBERS=${MEMBERS:-1000}
RATE=${RATE:-100}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
LAT_MEMBERS=${LAT_MEMBERS:-1000}
LAT_RATE=${LAT_RATE:-20}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/praxis_chat_ws}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
export PRAXIS_JWT_SECRET=${PRAXIS_JWT_SECRET:-$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 48)}

[[ -x $B ]] || { echo "no praxis binary at $B: cargo build --release -p praxis" >&2; exit 2; }
# Every connection is a descriptor in the server and in the generator. Raising the hard
# limit needs root; otherwise NOFILE must be at most `ulimit -Hn`.
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && (( hard < NOFILE )); then
  ulimit -Hn "$NOFILE" 2>/dev/null || true
fi
ulimit -n "$NOFILE" 2>/dev/null || {
  echo "cannot raise the open-file limit to $NOFILE (ulimit -Hn is $(ulimit -Hn)): run as root, or lower NOFILE and CLIENTS" >&2
  exit 2
}
mkdir -p "$OUT"
: > "$OUT/summary.txt"
wants() { [[ ,$ONLY, == *,$1,* ]]; }

CHAT_ENV=(PRAXIS_ACCESS_LOG=false PRAXIS_LOG_LEVEL=warn
  PRAXIS_CHAT_SEND_RATE=100000 PRAXIS_CHAT_OUTBOUND_QUEUE=8192
  "PRAXIS_CHAT_MAX_MEMBERS=$(( (MEMBERS > LAT_MEMBERS ? MEMBERS : LAT_MEMBERS) + 1 ))")

SERVER_PIDS=()
cleanup() {
  for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${SERVER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  SERVER_PIDS=()
}
trap cleanup EXIT

# wait_http URL: until the server answers anything over HTTP (30 s at most).
wait_http() {
  for _ in $(seq 300); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1 within 30s (see $OUT/*.log)" >&2
  return 1
}

# start_praxis NAME PORT [ENV...]: an embedded (or, with database/redis/nats env, scaled)
# praxis on SERVER_CPU; sets PID.
start_praxis() {
  local name=$1 port=$2
  shift 2
  local data="$OUT/data-$name"
  rm -rf "$data"
  env "${CHAT_ENV[@]}" "$@" taskset -c "$SERVER_CPU" "$B" serve --listen "127.0.0.1:$port" \
    --data-dir "$data" > "$OUT/$name.log" 2>&1 &
  PID=$!
  SERVER_PIDS+=("$PID")
  wait_http "http://127.0.0.1:$port/readyz"
}

start_reference() {
  taskset -c "$SERVER_CPU" "$B" bench ws reference --listen 127.0.0.1:8092 > "$OUT/reference.log" 2>&1 &
  PID=$!
  SERVER_PIDS+=("$PID")
  wait_http "http://127.0.0.1:8092/"
}

bench() { taskset -c "$GEN_CPU" "$B" bench ws "$@"; }

# run NAME-ROUND COMMAND...: runs one measurement, keeps its output, and never stops the
# session on a failed run (the failure is in the JSON and the log: lost deliveries, refusals).
run() {
  local id=$1
  shift
  echo "== $id" | tee -a "$OUT/summary.txt"
  if ! "$@" > "$OUT/$id.txt" 2>"$OUT/$id.err"; then
    echo "   FAILED: $(tail -1 "$OUT/$id.err")" | tee -a "$OUT/summary.txt"
  fi
  grep -E 'memory per|deliveries:|delivery latency|CPU-second|refused|closed early' "$OUT/$id.txt" \
    | sed 's/^/   /' | tee -a "$OUT/summary.txt" || true
}

if wants memory; then
  for ((r = 1; r <= ROUNDS; r++)); do
    start_praxis memory 8080
    run "memory-praxis-$r" bench connect http://127.0.0.1:8080 --clients "$CLIENTS" \
      --sources "$SOURCES" --hold "$HOLD" --server-pid "$PID" --json "$OUT/memory-praxis-$r.json" -q
    cleanup
    start_reference
    run "memory-reference-$r" bench connect http://127.0.0.1:8092 --clients "$CLIENTS" \
      --sources "$SOURCES" --hold "$HOLD" --server-pid "$PID" --json "$OUT/memory-reference-$r.json" -q
    cleanup
  done
fi

if wants fanout; then
  for ((r = 1; r <= ROUNDS; r++)); do
    start_praxis fanout 8080
    run "fanout-praxis-$r" bench fanout http://127.0.0.1:8080 --members "$MEMBERS" --rate "$RATE" \
      --duration "$DURATION" --warmup "$WARMUP" --server-pid "$PID" --json "$OUT/fanout-praxis-$r.json" -q
    cleanup
    start_reference
    run "fanout-reference-$r" bench fanout http://127.0.0.1:8092 --members "$MEMBERS" --rate "$RATE" \
      --duration "$DURATION" --warmup "$WARMUP" --server-pid "$PID" --json "$OUT/fanout-reference-$r.json" -q
    cleanup
  done
fi

if wants latency; then
  db=${PG_URL##*/}
  admin=${PG_URL%/*}/postgres
  psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
    || psql "$admin" -c "CREATE DATABASE \"$db\"" > /dev/null
  scaled=(PRAXIS_DATABASE_URL="$PG_URL" PRAXIS_REDIS_URL="$REDIS_URL" PRAXIS_NATS_URL="$NATS_URL"
    PRAXIS_PREFIX="chatws$$" PRAXIS_ADMIN_KEY="chat-ws-bench-admin-key-$$")
  for ((r = 1; r <= ROUNDS; r++)); do
    start_praxis latency-a 8081 "${scaled[@]}"
    a=$PID
    start_praxis latency-b 8082 "${scaled[@]}"
    b=$PID
    run "latency-praxis-$r" bench fanout http://127.0.0.1:8081,http://127.0.0.1:8082 \
      --members "$LAT_MEMBERS" --rate "$LAT_RATE" --duration "$DURATION" --warmup "$WARMUP" \
      --server-pid "$a" --server-pid "$b" --json "$OUT/latency-praxis-$r.json" -q
    cleanup
    start_reference
    run "latency-reference-$r" bench fanout http://127.0.0.1:8092 --members "$LAT_MEMBERS" \
      --rate "$LAT_RATE" --duration "$DURATION" --warmup "$WARMUP" --server-pid "$PID" \
      --json "$OUT/latency-reference-$r.json" -q
    cleanup
  done
fi

# Medians over the rounds, and praxis / reference.
python3 - "$OUT" <<'EOF' | tee -a "$OUT/summary.txt"
import glob, json, os, statistics, sys

out = sys.argv[1]

def runs(figure, target):
    return [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, f"{figure}-{target}-*.json")))]

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def line(figure, label, get, unit, fmt="{:,.0f}"):
    got = {t: median([get(r) for r in runs(figure, t)]) for t in ("praxis", "reference")}
    if got["praxis"] is None and got["reference"] is None:
        return
    show = lambda v: "-" if v is None else fmt.format(v) + unit
    ratio = (f"  praxis/reference {got['praxis'] / got['reference']:.2f}"
             if got["praxis"] and got["reference"] else "")
    print(f"{figure:8} {label:28} praxis {show(got['praxis']):>14}  reference {show(got['reference']):>14}{ratio}")

print("\nmedians over rounds")
line("memory", "bytes per idle connection", lambda r: r.get("bytes_per_connection"), " B")
for figure in ("fanout", "latency"):
    line(figure, "deliveries per CPU-second", lambda r: r.get("deliveries_per_cpu_second"), "")
    line(figure, "deliveries per second", lambda r: r.get("deliveries_per_second"), "")
    for p in ("p50", "p90", "p99", "p999", "max"):
        line(figure, f"latency {p}", lambda r, p=p: r["latency"][f"{p}_us"] / 1000, " ms", "{:,.2f}")
    line(figure, "lost deliveries (median)", lambda r: r.get("lost"), "")
EOF
