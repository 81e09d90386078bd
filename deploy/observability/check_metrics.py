#!/usr/bin/env python3
"""Checks that the Grafana dashboard and the Prometheus rules query only what praxis exports.

    check_metrics.py [--binary target/release/praxis] [--dashboard FILE] [--rules FILE]
                     [--dump-metrics FILE]

1. Starts `praxis serve` embedded on a temporary data dir (PRAXIS_LISTEN=127.0.0.1:0; the bound
   address is read from the JSON log line "praxis listening"), with a praxis.toml that makes
   every metric family appear: an HTTP rate-limit policy, a decision-service limits file that is
   then changed (a reload), tight login limits, a webhook receiver on loopback that fails once.
2. Drives requests through every system (identity, shortener, ratelimit, notify, feed, chat)
   and scrapes /metrics until the families it needs are there (some appear only after first
   use, or after a background worker runs).
3. Reads every PromQL expression of grafana-dashboard.json (panel targets and template
   variables, with Grafana's $variables replaced) and of alerts.yaml (`expr` of alerting and
   recording rules), parses it (promql-parser, a real PromQL parser), and collects every metric
   name it selects and every label it matches on. Names recorded by the rules file itself are
   not looked up; `up` (made by Prometheus for each target) is the only other exception.
4. Fails, listing them, when a selected name is not a sample name of the scrape (histograms
   are scraped as NAME_bucket, NAME_sum and NAME_count, which is what queries select) or a
   matched label is not a label of that metric (target labels added by Prometheus excepted).

Exit status 0 when everything is found, 1 otherwise (2 on a usage or start-up error).
Needs: python3, PyYAML and promql-parser (scripts/check-deploy installs them).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import promql_parser
import yaml

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE / "grafana-dashboard.json"
RULES = HERE / "alerts.yaml"

# Series Prometheus makes itself for every scrape target (not in any /metrics).
PROMETHEUS_SERIES = {"up"}
# Labels Prometheus attaches to every series of a target (job and instance always; namespace,
# pod and container with the usual Kubernetes service-discovery relabelling).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container"}
# Grafana's built-in and dashboard variables, as Prometheus would see them once interpolated.
GRAFANA_VARS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
}


def log(msg: str) -> None:
    print(f"check_metrics: {msg}", file=sys.stderr, flush=True)


# --- the server --------------------------------------------------------------------------------

LIMITS_V1 = """domain = "check"

[[descriptors]]
key = "remote_address"
rate_limit = { unit = "second", requests_per_unit = 100 }
"""

LIMITS_V2 = LIMITS_V1.replace("100", "200")


def config_text(limits: Path) -> str:
    return f"""# check_metrics.py: every system, settings that make each metric family appear soon.
[identity]
login_limit_account = "3/15m"

[ratelimit]
limits = "{limits}"
reload_interval = "200ms"

[notify]
webhook_allow_private = true
retry_base = "100ms"
retry_max = "200ms"
breaker_failures = 1
breaker_open = "200ms"

[shortener]
visit_flush_interval = "200ms"

[rate_limit]
[[rate_limit.policies]]
name = "check-links"
match = {{ path_prefix = "/api/v1/links" }}
key = "ip"
limit = 10000
period = "1m"
"""


class Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook receiver on loopback: the first delivery fails (503), later ones succeed."""

    calls = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        with Receiver.lock:
            Receiver.calls += 1
            first = Receiver.calls == 1
        self.send_response(503 if first else 204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


class Server:
    def __init__(self, binary: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="praxis-check-metrics-"))
        self.limits = self.dir / "limits.toml"
        self.limits.write_text(LIMITS_V1)
        config = self.dir / "praxis.toml"
        config.write_text(config_text(self.limits))
        env = dict(os.environ)
        for key in list(env):
            if key.startswith("PRAXIS_"):
                del env[key]
        env.update(
            PRAXIS_DATA_DIR=str(self.dir / "data"),
            PRAXIS_LISTEN="127.0.0.1:0",
            PRAXIS_LOG_FORMAT="json",
            PRAXIS_CONFIG=str(config),
        )
        self.log_path = self.dir / "serve.log"
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(binary), "serve"], env=env, stdout=self.log_file, stderr=subprocess.STDOUT
        )
        self.addr = self._wait_ready()
        self.base = f"http://{self.addr}"
        self.admin = (self.dir / "data" / "admin.key").read_text().strip()

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"praxis serve exited ({self.proc.returncode}) before it was ready:\n"
                    + self.log_path.read_text(errors="replace")
                )
            text = self.log_path.read_text(errors="replace")
            match = re.search(r'"addr":"([^"]+)"', text)
            if match:
                try:
                    with urllib.request.urlopen(f"http://{match.group(1)}/readyz", timeout=2):
                        return match.group(1)
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.2)
        raise SystemExit("praxis serve did not answer /readyz within 60 s:\n" + self.log_path.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()

    # HTTP helpers: (status, parsed JSON body or text).
    def call(self, method: str, path: str, body=None, token: str | None = None, headers=None):
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["content-type"] = "application/json"
        if token:
            hdrs["authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=10) as res:
                status, raw = res.status, res.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.base + "/metrics", timeout=10) as res:
            return res.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args, **_kwargs):
        return None


def expect(what: str, got, *statuses: int):
    status, body = got
    if status not in statuses:
        raise SystemExit(f"driving {what}: expected {statuses}, got {status}: {body}")
    return body


def drive(s: Server, receiver_url: str) -> None:
    """One pass over every system; enough for each metric family to appear."""
    admin = s.admin
    # identity: sign-ups, logins (ok, failed, limited), refresh and its reuse, an API key.
    users = {}
    for name in ("ada", "bob"):
        email = f"{name}@example.com"
        expect("signup", s.call("POST", "/api/v1/identity/signup",
                                {"email": email, "password": "correct horse battery"}), 201, 200)
        login = expect("login", s.call("POST", "/api/v1/identity/login",
                                       {"email": email, "password": "correct horse battery"}), 200)
        users[name] = login
    ada, bob = users["ada"]["access_token"], users["bob"]["access_token"]
    ada_id, bob_id = users["ada"]["account"]["id"], users["bob"]["account"]["id"]
    expect("refresh", s.call("POST", "/api/v1/identity/refresh",
                             {"refresh_token": users["ada"]["refresh_token"]}), 200)
    expect("refresh reuse", s.call("POST", "/api/v1/identity/refresh",
                                   {"refresh_token": users["ada"]["refresh_token"]}), 401)
    for _ in range(4):
        s.call("POST", "/api/v1/identity/login",
               {"email": "bob@example.com", "password": "wrong password!!"})
    expect("api key", s.call("POST", "/api/v1/identity/keys",
                             {"name": "check", "scopes": ["links:read", "links:write"]}, token=ada), 201, 200)

    # shortener: a link, its redirect (a visit), an unknown code (Bloom filter), stats, a 400.
    expect("link", s.call("POST", "/api/v1/links", {"url": "https://www.rust-lang.org/learn", "alias": "learn"},
                          token=ada, headers={"Idempotency-Key": "check-1"}), 201, 200)
    expect("redirect", s.call("GET", "/learn"), 301)
    expect("unknown code", s.call("GET", "/zzzzzzz"), 404)
    expect("bad link", s.call("POST", "/api/v1/links", {"url": "ftp://example.com"}, token=ada), 400)
    expect("stats", s.call("GET", "/api/v1/links/learn/stats", token=ada), 200)

    # ratelimit: the decision service, then a change of its limits file (a reload).
    expect("ratelimit check", s.call("POST", "/api/v1/ratelimit/check", {
        "domain": "check",
        "descriptors": [{"entries": [{"key": "remote_address", "value": "10.0.0.1"}]}],
    }, token=admin), 200)
    s.limits.write_text(LIMITS_V2)

    # notify: a template, an email (to an .eml file) and a webhook (to the local receiver,
    # which fails the first attempt: a retry and an open breaker).
    expect("template", s.call("POST", "/api/v1/notify/templates", {
        "name": "welcome",
        "channels": {"email": {"subject": "Welcome {{ name }}", "text": "Hi {{ name }}!"},
                     "webhook": {"text": "welcome {{ name }}"}},
    }, token=admin), 201, 200)
    expect("subscriber", s.call("PUT", "/api/v1/notify/subscribers/user-1",
                                {"email": "ada@example.com", "webhook_url": receiver_url}, token=admin), 200, 201)
    expect("send", s.call("POST", "/api/v1/notify/send", {
        "to": "user-1", "template": "welcome", "data": {"name": "Ada"}, "idempotency_key": "check-1",
    }, token=admin), 202, 200)

    # feed: bob follows ada, ada posts (fan-out), bob reads his home timeline.
    expect("follow", s.call("POST", f"/api/v1/feed/follows/{ada_id}", token=bob), 200, 201, 204)
    expect("post", s.call("POST", "/api/v1/feed/posts", {"text": "hello"}, token=ada), 201)
    expect("home", s.call("GET", "/api/v1/feed/timelines/home?limit=20", token=bob), 200)

    # chat: a direct conversation, a message, its history.
    conv = expect("conversation", s.call("POST", "/api/v1/chat/conversations",
                                         {"kind": "direct", "with": bob_id}, token=ada), 201, 200)
    cid = conv["id"]
    expect("message", s.call("POST", f"/api/v1/chat/conversations/{cid}/messages",
                             {"client_id": "m-1", "body": "hello"}, token=ada), 201, 200)
    expect("history", s.call("GET", f"/api/v1/chat/conversations/{cid}/messages?after=0", token=bob), 200)

    # ops and a route that does not exist.
    expect("readyz", s.call("GET", "/readyz"), 200)
    expect("healthz", s.call("GET", "/healthz"), 200)
    expect("unmatched", s.call("GET", "/api/v1/nope/nothing"), 404)


# --- the exposition format -----------------------------------------------------------------------

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> dict[str, set[str]]:
    """Sample name -> the label names seen on its samples."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = out.setdefault(m.group(1), set())
        for lm in LABEL.finditer(m.group(3) or ""):
            labels.add(lm.group(1))
    return out


# --- the queries -------------------------------------------------------------------------------

def interpolate(expr: str, variables: dict[str, str]) -> str:
    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        name = name.split(":")[0]
        if name in GRAFANA_VARS:
            return GRAFANA_VARS[name]
        if name in variables:
            return variables[name]
        raise SystemExit(f"unknown Grafana variable ${name} in: {expr}")
    return re.sub(r"\$\{([^}]+)\}|\$([A-Za-z_][A-Za-z0-9_]*)", repl, expr)


def dashboard_queries(path: Path) -> list[tuple[str, str]]:
    """(where, PromQL) for every query of the dashboard, Grafana variables interpolated."""
    dash = json.loads(path.read_text())
    variables: dict[str, str] = {}
    queries: list[tuple[str, str]] = []
    for var in dash.get("templating", {}).get("list", []):
        name = var["name"]
        if var.get("type") == "datasource":
            variables[name] = "prometheus"
            continue
        # A regex that matches anything: what "All" sends.
        variables[name] = ".*"
        if var.get("type") == "query":
            q = var.get("query")
            text = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", text or "")
            if m:
                # label_values(SELECTOR, LABEL): the selector, with LABEL as a matcher, so that
                # the label itself is checked too.
                selector, label = m.group(1).strip(), m.group(2)
                if selector.endswith("}"):
                    selector = f'{selector[:-1].rstrip()}, {label}=~".+"}}'.replace("{, ", "{")
                else:
                    selector = f'{selector}{{{label}=~".+"}}'
                queries.append((f"variable {name}", selector))
            elif text:
                queries.append((f"variable {name}", text))

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if "expr" in t:
                where = f'panel "{p.get("title", "?")}" ({t.get("refId", "?")})'
                queries.append((where, t["expr"]))
    return [(w, interpolate(q, variables)) for w, q in queries]


def rule_queries(path: Path) -> tuple[list[tuple[str, str]], set[str]]:
    doc = yaml.safe_load(path.read_text())
    queries, recorded = [], set()
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                recorded.add(rule["record"])
                queries.append((f'record {rule["record"]}', rule["expr"]))
            else:
                queries.append((f'alert {rule["alert"]}', rule["expr"]))
    return queries, recorded


def selectors(expr: str) -> list[tuple[str, tuple[str, ...]]]:
    """(metric name, label names matched) of every selector of a PromQL expression."""
    found: list[tuple[str, list[str]]] = []

    def visit(node) -> None:
        vs = None
        if isinstance(node, promql_parser.VectorSelector):
            vs = node
        elif isinstance(node, promql_parser.MatrixSelector):
            vs = node.vector_selector
        if vs is None:
            return
        labels = [m.name for m in vs.matchers.matchers]
        for group in vs.matchers.or_matchers or []:
            labels.extend(m.name for m in group)
        name = vs.name
        if name is None:
            for m in vs.matchers.matchers:
                if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal:
                    name = m.value
        if name is None:
            raise SystemExit(f"a selector without a metric name: {expr}")
        found.append((name, [label for label in labels if label != "__name__"]))

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    # A range selector is visited as itself and as the instant selector inside it.
    return list(dict.fromkeys((name, tuple(labels)) for name, labels in found))


def check(scraped: dict[str, set[str]], queries: list[tuple[str, str]], recorded: set[str]) -> list[str]:
    problems: list[str] = []
    for where, expr in queries:
        try:
            sels = selectors(expr)
        except SystemExit:  # a selector without a name: a message of ours
            raise
        except Exception as e:  # the parser's own error type
            problems.append(f"{where}: does not parse: {e}\n    {expr}")
            continue
        for name, labels in sels:
            if name in recorded or name in PROMETHEUS_SERIES:
                continue
            if name not in scraped:
                problems.append(f"{where}: metric {name} is not in /metrics")
                continue
            for label in labels:
                if label not in scraped[name] and label not in TARGET_LABELS:
                    problems.append(f"{where}: metric {name} has no label {label!r} "
                                    f"(it has: {', '.join(sorted(scraped[name])) or 'none'})")
    return problems


def needed_names(queries, recorded) -> set[str]:
    names = set()
    for _, expr in queries:
        try:
            for name, _ in selectors(expr):
                if name not in recorded and name not in PROMETHEUS_SERIES:
                    names.add(name)
        except Exception:  # reported by check()
            pass
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/praxis")
    ap.add_argument("--dashboard", default=str(DASHBOARD), help="Grafana dashboard JSON")
    ap.add_argument("--rules", default=str(RULES), help="Prometheus rules file")
    ap.add_argument("--dump-metrics", help="write the final scrape to this file")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds to wait for the families that appear after background work")
    args = ap.parse_args()

    binary = Path(args.binary)
    if not binary.is_file() or not os.access(binary, os.X_OK):
        log(f"{binary} is missing: build it with cargo build --release -p praxis")
        return 2

    rule_qs, recorded = rule_queries(Path(args.rules))
    dash_qs = dashboard_queries(Path(args.dashboard))
    queries = dash_qs + rule_qs
    log(f"{len(dash_qs)} dashboard queries, {len(rule_qs)} rule expressions "
        f"({len(recorded)} recording rules)")
    needed = needed_names(queries, recorded)

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    receiver_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"

    server = Server(binary)
    log(f"praxis serve ready at {server.base} (data dir {server.dir})")
    try:
        drive(server, receiver_url)
        deadline = time.monotonic() + args.timeout
        while True:
            text = server.metrics()
            scraped = parse_exposition(text)
            missing = needed - set(scraped)
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if args.dump_metrics:
            Path(args.dump_metrics).write_text(text)
    finally:
        server.stop()
        receiver.shutdown()

    problems = check(scraped, queries, recorded)
    if problems:
        log(f"{len(problems)} problem(s):")
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        log(f"the server's log: {server.log_path}")
        return 1
    shutil.rmtree(server.dir, ignore_errors=True)
    log(f"ok: the {len(needed)} metric names queried by the dashboard and the rules are all in "
        f"/metrics of a running server, with every label they match on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
