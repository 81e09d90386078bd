#!/usr/bin/env bash
# Server CPU per small upload (issue 18, docs/benchmarks.md §11): starts praxis (embedded,
# --only files) on core 0, sends N serial tus uploads of one 1 MiB file (POST + PATCH, curl
# on core 1), and prints the server's utime+stime per upload (from /proc/PID/stat, clock
# ticks of 10 ms, over all N) and the median PATCH time. Less sensitive to other load on the
# machine than throughput: it counts the server's own CPU, not the wall clock.
#
#   B=/tmp/praxis-files-bin scenarios/files/upload-cpu.sh [N] [PORT]
set -euo pipefail
B=${B:-target/release/praxis}
N=${1:-200}
PORT=${2:-8190}
KEY=files-bench-admin-key
DIR=$(mktemp -d /tmp/upload-cpu.XXXXXX)
head -c 1048576 /dev/urandom > "$DIR/u.bin"
PRAXIS_ADMIN_KEY=$KEY PRAXIS_LOG_LEVEL=warn PRAXIS_ACCESS_LOG=false taskset -c 0 "$B" serve \
  --listen 127.0.0.1:$PORT --data-dir "$DIR/data" --only files > "$DIR/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -fs -o /dev/null http://127.0.0.1:$PORT/healthz && break; sleep 0.1; done
cpu() { awk '{print $14+$15}' /proc/$PID/stat; }
upload() {
  LOC=$(taskset -c 1 curl -s -D - -o /dev/null -X POST -H 'Tus-Resumable: 1.0.0' \
    -H "Authorization: Bearer $KEY" -H 'Upload-Length: 1048576' \
    http://127.0.0.1:$PORT/api/v1/files/tus/ | grep -i '^location' | tr -d '\r' | cut -d' ' -f2)
  taskset -c 1 curl -s -o /dev/null -w '%{time_total}\n' -X PATCH -H 'Tus-Resumable: 1.0.0' \
    -H "Authorization: Bearer $KEY" -H 'Upload-Offset: 0' -H 'Expect:' \
    -H 'Content-Type: application/offset+octet-stream' -T "$DIR/u.bin" http://127.0.0.1:$PORT$LOC
  # Each upload is new content (no dedupe shortcut): the file changes by its first 8 bytes.
  head -c 8 /dev/urandom | dd of="$DIR/u.bin" conv=notrunc status=none
}
for _ in $(seq 1 10); do upload > /dev/null; done   # warm up
sleep 1
a=$(cpu)
for _ in $(seq 1 "$N"); do upload; done > "$DIR/times"
sleep 1   # background work after the last upload (the SHA-256 worker) counts too
b=$(cpu)
med=$(sort -n "$DIR/times" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
echo "uploads $N, server CPU $(( (b - a) * 10 )) ms, $(awk -v t=$(( (b - a) * 10 )) -v n="$N" 'BEGIN {printf "%.2f", t / n}') ms per upload, median PATCH $(awk -v m="$med" 'BEGIN {printf "%.2f", m * 1000}') ms"
