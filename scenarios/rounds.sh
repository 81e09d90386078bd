#!/usr/bin/env bash
# Alternating A/B/C/... rounds of `praxis bench`, each target measured with the same arguments,
# with the server's CPU time (utime+stime from /proc/PID/stat) taken around every run, so each
# result has a reference measured in the same round and a requests-per-CPU-second figure.
#
#   scenarios/rounds.sh ROUNDS OUT_DIR -- BENCH_ARGS... -- NAME=PID=TARGET_ARGS [NAME=PID=TARGET_ARGS...]
#
# TARGET_ARGS is split on spaces and appended after BENCH_ARGS (a URL, or "--scenario FILE URL").
# Example (servers already started, pinned with taskset -c 0):
#   scenarios/rounds.sh 3 /tmp/r -- --find-max --slo 'p99<50ms' --rate 25000 -d 3s --warmup 1s -c 64 -q -- \
#     "ref=$(pgrep -f 'bench reference')=http://127.0.0.1:8090/x --expect-status 301" \
#     "lean=$LEAN_PID=--scenario scenarios/shortener-redirect-zipf.toml http://127.0.0.1:8080 --no-seed"
# Writes OUT_DIR/NAME-ROUND.json and prints one line per run: name, round, CPU seconds, wall.
set -euo pipefail

rounds=$1 out=$2
shift 2
[[ $1 == -- ]] || { echo "usage: $0 ROUNDS OUT_DIR -- BENCH_ARGS -- NAME=PID=ARGS..." >&2; exit 2; }
shift
bench_args=()
while [[ $# -gt 0 && $1 != -- ]]; do bench_args+=("$1"); shift; done
shift
targets=("$@")
B=${B:-target/release/praxis}
mkdir -p "$out"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

for ((r = 1; r <= rounds; r++)); do
  for t in "${targets[@]}"; do
    name=${t%%=*}
    rest=${t#*=}
    pid=${rest%%=*}
    args=${rest#*=}
    before=$(cpu_ticks "$pid")
    start=$(date +%s.%N)
    # shellcheck disable=SC2086 # TARGET_ARGS is split on purpose
    taskset -c 1 "$B" bench $args "${bench_args[@]}" --json "$out/$name-$r.json" > "$out/$name-$r.txt" 2>&1
    end=$(date +%s.%N)
    after=$(cpu_ticks "$pid")
    cpu=$(echo "scale=2; ($after - $before) / $hz" | bc)
    wall=$(echo "scale=1; $end - $start" | bc)
    echo "$name round $r: server cpu ${cpu}s wall ${wall}s" | tee -a "$out/cpu.txt"
  done
done
