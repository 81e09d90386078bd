#!/usr/bin/env bash
# Instructions per request of a praxis server configuration, counted by callgrind: repeatable
# on a noisy machine (valgrind counts user-space instructions, whatever else runs; the kernel's
# share of a request is not counted).
#
#   scenarios/callgrind/instructions-per-request.sh NAME PORT [ENV=VALUE ...]
#
# Starts `praxis serve` under callgrind with the given environment on a fresh data dir, creates
# one link (alias bk5), sends 1,000 warm-up redirects, zeroes the counters, sends N redirects
# (default 5,000, env N) at a low rate, dumps the counters and prints Ir / N.
#
# With CONNECTIONS_ONLY=1, only instructions spent inside axum's per-connection tasks are
# counted (`--toggle-collect=axum::serve::handle_connection*`): the request path without the
# server's background tasks (pollers, flushers), whose timing-dependent share otherwise moves
# a count by about 1 % between runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
B=${B:-target/release/praxis}
name=$1 port=$2; shift 2
N=${N:-5000}
dir=/tmp/cg-$name
rm -rf "$dir" && mkdir -p "$dir"
toggle=()
[ "${CONNECTIONS_ONLY:-0}" = 1 ] && toggle=(--toggle-collect='axum::serve::handle_connection*')
env PRAXIS_LOG_LEVEL=warn "$@" valgrind --tool=callgrind ${toggle[@]+"${toggle[@]}"} --callgrind-out-file="$dir/callgrind.out" \
    "$B" serve --listen 127.0.0.1:"$port" --data-dir "$dir/data" > "$dir/server.log" 2>&1 &
vg=$!
for _ in $(seq 1 240); do
    [ -f "$dir/data/admin.key" ] && curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
    sleep 0.5
done
key=$(cat "$dir/data/admin.key")
curl -s -o /dev/null -w 'create: %{http_code}\n' -H "authorization: Bearer $key" -H 'content-type: application/json' \
    -d '{"url": "https://example.com/articles/5", "alias": "bk5"}' "http://127.0.0.1:$port/api/v1/links"
"$B" bench "http://127.0.0.1:$port/bk5" --expect-status 301 --rate 200 -d 5s --warmup 0s -c 4 -q > /dev/null
callgrind_control -z "$vg" > /dev/null
"$B" bench "http://127.0.0.1:$port/bk5" --expect-status 301 --rate $((N / 20)) -d 20s --warmup 0s -c 4 -q | grep -E "requests|errors" || true
callgrind_control -d "$vg" > /dev/null
sleep 1
kill "$vg"; wait "$vg" 2>/dev/null || true
total=$(for f in "$dir"/callgrind.out*; do grep -h '^summary:' "$f" 2>/dev/null || grep -h '^totals:' "$f"; done | awk '{s+=$2} END {print s}')
# the dump after zeroing holds the measured requests; the final dump at exit the rest
measured=$(ls -t "$dir"/callgrind.out.* 2>/dev/null | tail -1)
ir=$(grep -h '^summary:\|^totals:' "$measured" | head -1 | awk '{print $2}')
echo "$name: $ir instructions for $N requests = $((ir / N)) per request (file $measured; all dumps $total)"
