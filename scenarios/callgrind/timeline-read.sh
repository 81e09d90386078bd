#!/usr/bin/env bash
# Instructions per home-timeline read, counted by callgrind (issue 16's regression guard for the
# feed's read path; docs/benchmarks.md §9). Repeatable on a noisy machine: user-space
# instructions only.
#
#   scenarios/callgrind/timeline-read.sh
#
# Seeds USERS users (default 500; scenarios/feed-graph.py: 10 followees each, Zipf) with POSTS
# posts each (default 80, scenarios/feed-fill.sh: every rebuilt timeline holds its cap of 800)
# once into /tmp/cgt-seed-USERS with the normal binary. Then starts `praxis serve` under
# callgrind on a copy, builds every timeline (one read per user, as feed-activate does), reads
# every page once more so the post cache holds them, zeroes the counters, sends N reads
# (default 2,000) of uniformly drawn users' first pages at RATE per second (default 100) through
# `GET /api/v1/feed/users/{user}/home`, dumps the counters and prints Ir / N for the whole
# process and for axum's connection tasks (the request path alone).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
B=${B:-target/release/praxis}
USERS=${USERS:-500} POSTS=${POSTS:-80} N=${N:-2000} RATE=${RATE:-100} PORT=${PORT:-8098}
seed=/tmp/cgt-seed-$USERS
dir=/tmp/cgt-run
wait_up() { for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && return; sleep 0.2; done; echo "server did not come up" >&2; exit 1; }

sc=$(mktemp -d)
trap 'rm -rf "$sc"' EXIT
sed -e "s/^n = 100000/n = $USERS/" scenarios/feed-home.toml > "$sc/home.toml"
sed -e "s/^n = 100000/n = $USERS/" scenarios/feed-activate.toml > "$sc/activate.toml"

if [ ! -f "$seed/done" ]; then
    rm -rf "$seed"
    PRAXIS_LOG_LEVEL=warn "$B" serve --listen "127.0.0.1:$PORT" --data-dir "$seed" > /dev/null 2>&1 &
    pid=$!
    wait_up
    PRAXIS_ADMIN_KEY=$(cat "$seed/admin.key") scenarios/feed-graph.py --base "http://127.0.0.1:$PORT" \
        --users "$USERS" --star "star1k=$((USERS / 2))" > /dev/null
    kill "$pid"; wait "$pid" 2>/dev/null || true
    scenarios/feed-fill.sh sqlite "$seed/praxis.db" "$USERS" "$POSTS" > /dev/null
    touch "$seed/done"
fi

rm -rf "$dir" && mkdir -p "$dir" && cp -r "$seed" "$dir/data"
env PRAXIS_LOG_LEVEL=warn PRAXIS_ACCESS_LOG=false valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
    "$B" serve --listen "127.0.0.1:$PORT" --data-dir "$dir/data" > "$dir/server.log" 2>&1 &
vg=$!
wait_up
export PRAXIS_ADMIN_KEY=$(cat "$dir/data/admin.key")
# Building a timeline of 800 entries is slow under callgrind: a low rate and a long timeout, so
# that every timeline is built (every read answered) and the counted reads are reads of built
# timelines. (/metrics is not read here: the process metrics' procfs read crashes under
# valgrind.)
"$B" bench --scenario "$sc/activate.toml" "http://127.0.0.1:$PORT" --rate 10 -d "$((USERS / 10 + 1))s" \
    --timeout 600s -c 256 > "$dir/activate.txt" 2>&1
if ! grep -q ' 0 errors' "$dir/activate.txt"; then
    echo "not every timeline was built: $(grep errors "$dir/activate.txt")" >&2
    kill "$vg"; exit 1
fi
# Every first page once more, so the post cache holds them.
"$B" bench --scenario "$sc/activate.toml" "http://127.0.0.1:$PORT" --rate 50 -d "$((USERS / 50 + 1))s" --timeout 60s -q > /dev/null
sleep 2
callgrind_control -z "$vg" > /dev/null
"$B" bench --scenario "$sc/home.toml" "http://127.0.0.1:$PORT" --rate "$RATE" -d "$((N / RATE))s" --warmup 0s -c 8 -q > "$dir/bench.txt"
callgrind_control -d "$vg" > /dev/null
kill "$vg"; wait "$vg" 2>/dev/null || true
measured=$(ls -t "$dir"/callgrind.out.* | tail -1)
ir=$(grep -h '^summary:\|^totals:' "$measured" | head -1 | awk '{print $2}')
conn=$(callgrind_annotate --inclusive=yes "$measured" 2>/dev/null | grep 'axum::serve::handle_connection::{{closure}}::{{closure}} \[' | head -1 | awk '{gsub(",", "", $1); print $1}')
echo "timeline read: $((ir / N)) instructions per read (whole process), $((conn / N)) in connection tasks ($measured)"
