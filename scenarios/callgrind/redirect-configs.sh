#!/usr/bin/env bash
# Instructions per redirect in each configuration, beside the bare axum reference, counted by
# callgrind (repeatable on a noisy machine: user-space instructions only, the kernel's share of
# a request is not counted). The regression guard of issue 16 (docs/benchmarks.md §2).
#
#   scenarios/callgrind/redirect-configs.sh [CONFIG ...]     # default: reference lean visits defaults
#
# CONFIG is one of
#   reference  `praxis bench reference` (bare axum 301 handler, current-thread runtime)
#   lean       praxis with visit statistics, metrics and the access log off
#   visits     lean + visit statistics
#   defaults   praxis as shipped: visit statistics, metrics and the JSON access log on
#
# LINKS links (default 20,000; aliases bk0 ..) are seeded once into /tmp/cgr-seed-LINKS with
# the normal binary; each run copies that data dir, starts the server under callgrind, loads
# every link into the cache (one request per link), zeroes the counters, sends N redirects
# (default 10,000) with Zipf(1.0) popularity at RATE per second (default 500), waits for the
# visit statistics to be written (2 s), dumps the counters and prints Ir / N for the whole
# process (background work such as the statistics writer included, since that is where visits
# cost). Output: one line per configuration; files under /tmp/cgr-CONFIG.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
B=${B:-target/release/praxis}
LINKS=${LINKS:-20000} N=${N:-10000} RATE=${RATE:-500} PORT=${PORT:-8097}
configs=("$@")
[ ${#configs[@]} -eq 0 ] && configs=(reference lean visits defaults)
seed=/tmp/cgr-seed-$LINKS

wait_up() { for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && return; sleep 0.2; done; echo "server did not come up" >&2; exit 1; }

# Scenario files for LINKS links: Zipf reads, a sequential warm-up, the seed.
sc=$(mktemp -d)
trap 'rm -rf "$sc"' EXIT
sed -e "s/^n = 1000000/n = $LINKS/" -e "s/^count = 1000000/count = $LINKS/" \
    -e "s#/bk999999#/bk$((LINKS - 1))#" scenarios/shortener-redirect-zipf.toml > "$sc/zipf.toml"
sed -e "s/^n = 1000000/n = $LINKS/" scenarios/shortener-redirect-warm.toml > "$sc/warm.toml"

if [ ! -f "$seed/done" ]; then
    rm -rf "$seed"
    PRAXIS_LOG_LEVEL=warn "$B" serve --listen "127.0.0.1:$PORT" --data-dir "$seed" > /dev/null 2>&1 &
    pid=$!
    wait_up
    PRAXIS_ADMIN_KEY=$(cat "$seed/admin.key") "$B" bench --scenario "$sc/zipf.toml" "http://127.0.0.1:$PORT" --seed-only -q > /dev/null
    kill "$pid"; wait "$pid" 2>/dev/null || true
    touch "$seed/done"
fi

for config in "${configs[@]}"; do
    dir=/tmp/cgr-$config
    rm -rf "$dir" && mkdir -p "$dir"
    case $config in
    reference) cmd=("$B" bench reference --listen "127.0.0.1:$PORT"); env=() ;;
    lean) env=(PRAXIS_ACCESS_LOG=false PRAXIS_METRICS=false PRAXIS_VISIT_STATS=false) ;;
    visits) env=(PRAXIS_ACCESS_LOG=false PRAXIS_METRICS=false PRAXIS_VISIT_STATS=true) ;;
    defaults) env=() ;;
    *) echo "unknown configuration $config" >&2; exit 2 ;;
    esac
    if [ "$config" != reference ]; then
        cp -r "$seed" "$dir/data"
        cmd=("$B" serve --listen "127.0.0.1:$PORT" --data-dir "$dir/data")
    fi
    env PRAXIS_LOG_LEVEL=warn PRAXIS_CACHE_CAPACITY=$((LINKS + LINKS / 10)) PRAXIS_CACHE_TTL=1h ${env[@]+"${env[@]}"} \
        valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" "${cmd[@]}" > "$dir/server.log" 2>&1 &
    vg=$!
    wait_up
    if [ "$config" = reference ]; then
        target=("http://127.0.0.1:$PORT/x" --expect-status 301)
    else
        "$B" bench --scenario "$sc/warm.toml" "http://127.0.0.1:$PORT" --no-seed --rate 1000 -d "$((LINKS / 1000 + 1))s" -q > /dev/null
        target=(--scenario "$sc/zipf.toml" "http://127.0.0.1:$PORT" --no-seed)
    fi
    sleep 2
    callgrind_control -z "$vg" > /dev/null
    "$B" bench "${target[@]}" --rate "$RATE" -d "$((N / RATE))s" --warmup 0s -c 16 -q > "$dir/bench.txt"
    sleep 2
    callgrind_control -d "$vg" > /dev/null
    kill "$vg"; wait "$vg" 2>/dev/null || true
    measured=$(ls -t "$dir"/callgrind.out.* | tail -1)
    ir=$(grep -h '^summary:\|^totals:' "$measured" | head -1 | awk '{print $2}')
    echo "$config: $ir instructions for $N redirects = $((ir / N)) per redirect ($measured)"
done
