#!/usr/bin/env python3
"""Checks rendered Kubernetes manifests against the praxis binary they will run.

    check_pods.py --binary target/release/praxis --secrets secrets/secrets.example.yaml \\
        RENDERED.yaml [RENDERED.yaml ...]

RENDERED.yaml is the output of `kubectl kustomize <overlay>`. For every Deployment or
StatefulSet of praxis in it:

1. Wiring that schema validation does not see: the probes ask /healthz (liveness, startup) and
   /readyz (readiness) on a port of the container; that port is the one PRAXIS_LISTEN binds
   and the one the prometheus.io/port annotation names; every ConfigMap and Secret volume or
   env reference names a ConfigMap of the file, or a Secret of the secrets file; the Services,
   PodDisruptionBudgets and HorizontalPodAutoscalers of the file select or target an existing
   workload.
2. The pod's command line, run for real: its volumes are laid out under a temporary root (the
   ConfigMap's praxis.toml, the Secret's files), its mount paths are rewritten to that root in
   its environment and in the files, and `praxis config ARGS` (the container's args with
   `serve` replaced by `config`) must accept the result: the config file parses, every key is
   known, `--only` names real systems, the secrets are read from their files.
   With valid stand-in secrets it must exit 0; with the placeholders of the secrets file it
   must refuse to start (the placeholders are invalid on purpose).

Exit status 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets as random
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

WORKLOADS = {"Deployment", "StatefulSet"}


def fail(problems: list[str], msg: str) -> None:
    problems.append(msg)


def load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def stand_in_secrets() -> dict[str, dict[str, str]]:
    """Valid values in the shapes praxis requires, for every Secret key the manifests use."""
    return {
        "praxis-secrets": {
            "admin-key": random.token_hex(24),
            "jwt-secret": random.token_hex(32),
            "notify-webhook-secret": "whsec_" + base64.b64encode(random.token_bytes(32)).decode(),
            "files-url-signing-key": random.token_hex(32),
        },
        "praxis-engines": {
            "database-url": "postgres://praxis:secret@postgres.example.internal:5432/praxis",
            "redis-url": "redis://:secret@redis.example.internal:6379",
            "nats-url": "nats://nats.example.internal:4222",
            "blobs-url": "s3://praxis-files?endpoint=https://s3.example.internal&region=us-east-1",
            "aws-access-key-id": "AKIAEXAMPLE",
            "aws-secret-access-key": random.token_hex(20),
        },
    }


def example_secrets(path: Path) -> dict[str, dict[str, str]]:
    out = {}
    for doc in load(path):
        if doc.get("kind") == "Secret":
            data = dict(doc.get("stringData") or {})
            for k, v in (doc.get("data") or {}).items():
                data[k] = base64.b64decode(v).decode()
            out[doc["metadata"]["name"]] = data
    return out


def listen_port(env: list[dict], name: str = "PRAXIS_LISTEN") -> int | None:
    for e in env:
        if e.get("name") == name and "value" in e:
            return int(str(e["value"]).rsplit(":", 1)[1])
    return None


def port_number(container: dict, port) -> int | None:
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_wiring(name: str, docs: list[dict], known_secrets: set[str], problems: list[str]) -> None:
    configmaps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    for w in workloads:
        wname = f'{name}: {w["kind"]}/{w["metadata"]["name"]}'
        spec = w["spec"]["template"]["spec"]
        pod_labels = w["spec"]["template"]["metadata"].get("labels", {})
        if not labels_match(w["spec"]["selector"].get("matchLabels", {}), pod_labels):
            fail(problems, f"{wname}: its selector does not match its pod labels")
        annotations = w["spec"]["template"]["metadata"].get("annotations", {})
        for c in spec["containers"]:
            env = c.get("env", [])
            port = listen_port(env)
            if port is None:
                fail(problems, f"{wname}: PRAXIS_LISTEN is not set (the default binds 127.0.0.1 only)")
                continue
            # Probes and the scrape go to the admin listener when there is one.
            admin = listen_port(env, "PRAXIS_ADMIN_LISTEN")
            ops_port = admin if admin is not None else port
            probes = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
            for probe, path in probes.items():
                p = c.get(probe)
                if p is None:
                    if probe != "startupProbe":
                        fail(problems, f"{wname}: no {probe}")
                    continue
                get = p.get("httpGet") or {}
                if get.get("path") != path:
                    fail(problems, f"{wname}: {probe} asks {get.get('path')!r}, expected {path}")
                if port_number(c, get.get("port")) != ops_port:
                    fail(problems, f"{wname}: {probe} port {get.get('port')!r} is not the admin (or listen) port {ops_port}")
            if annotations.get("prometheus.io/scrape") == "true" and annotations.get("prometheus.io/port") != str(ops_port):
                fail(problems, f"{wname}: prometheus.io/port {annotations.get('prometheus.io/port')!r} is not the admin (or listen) port {ops_port}")
            if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits"):
                fail(problems, f"{wname}: resources need requests and limits")
            for e in env:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref["name"] not in known_secrets:
                    fail(problems, f"{wname}: env {e['name']} reads the unknown Secret {ref['name']}")
        for v in spec.get("volumes", []):
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                fail(problems, f"{wname}: volume {v['name']} names the missing ConfigMap {v['configMap']['name']}")
            if "secret" in v and v["secret"]["secretName"] not in known_secrets:
                fail(problems, f"{wname}: volume {v['name']} names the unknown Secret {v['secret']['secretName']}")

    by_name = {(d["kind"], d["metadata"]["name"]): d for d in workloads}
    pods = [(w["metadata"]["name"], w["spec"]["template"]["metadata"].get("labels", {})) for w in workloads]
    for d in docs:
        kind, dname = d["kind"], d["metadata"]["name"]
        if kind == "Service":
            if not any(labels_match(d["spec"].get("selector", {}), labels) for _, labels in pods):
                fail(problems, f"{name}: Service/{dname} selects no workload")
        elif kind == "PodDisruptionBudget":
            sel = d["spec"]["selector"].get("matchLabels", {})
            if not any(labels_match(sel, labels) for _, labels in pods):
                fail(problems, f"{name}: PodDisruptionBudget/{dname} selects no workload")
        elif kind == "HorizontalPodAutoscaler":
            ref = d["spec"]["scaleTargetRef"]
            if (ref["kind"], ref["name"]) not in by_name:
                fail(problems, f"{name}: HorizontalPodAutoscaler/{dname} targets the missing {ref['kind']}/{ref['name']}")
        elif kind == "Ingress":
            services = {x["metadata"]["name"] for x in docs if x["kind"] == "Service"}
            for rule in d["spec"].get("rules", []):
                for p in rule.get("http", {}).get("paths", []):
                    svc = p["backend"]["service"]["name"]
                    if svc not in services:
                        fail(problems, f"{name}: Ingress/{dname} routes {p['path']} to the missing Service {svc}")


def run_config(binary: Path, workload: dict, docs: list[dict], secret_values: dict[str, dict[str, str]]):
    """Runs `praxis config` as the workload's container would run `praxis serve`."""
    spec = workload["spec"]["template"]["spec"]
    container = spec["containers"][0]
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    root = Path(tempfile.mkdtemp(prefix="praxis-check-pods-"))
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    files: list[Path] = []
    for v in spec.get("volumes", []):
        target = mounts.get(v["name"])
        if target is None:
            continue
        where = root / target.lstrip("/")
        where.mkdir(parents=True, exist_ok=True)
        if "configMap" in v:
            for key, text in configmaps[v["configMap"]["name"]].items():
                (where / key).write_text(text)
                files.append(where / key)
        elif "secret" in v:
            for key, text in secret_values.get(v["secret"]["secretName"], {}).items():
                (where / key).write_text(text)

    # One pass, so that a rebased path is not rebased again (the root itself is under /tmp).
    pattern = re.compile(
        r"(?<![\w./-])(" + "|".join(re.escape(m) for m in sorted(mounts.values(), key=len, reverse=True))
        + r")(?=/|$|[\s\"',\]])"
    )

    def rebase(text: str) -> str:
        return pattern.sub(lambda m: str(root / m.group(1).lstrip("/")), text)

    for f in files:
        f.write_text(rebase(f.read_text()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRAXIS_")}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = rebase(str(e["value"]))
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secret_values.get(ref["name"], {}).get(ref["key"], "")
    args = list(container.get("args") or [])
    if container.get("command") or not args or args[0] != "serve":
        return 1, f"the container does not run `praxis serve` (command {container.get('command')}, args {args})", root
    args[0] = "config"
    res = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=60)
    return res.returncode, (res.stdout + res.stderr), root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--secrets", required=True, help="the Secrets file with placeholders")
    ap.add_argument("rendered", nargs="+")
    args = ap.parse_args()
    binary = Path(args.binary)
    placeholders = example_secrets(Path(args.secrets))
    valid = stand_in_secrets()
    missing_keys = {(s, k) for s, keys in placeholders.items() for k in keys} ^ \
                   {(s, k) for s, keys in valid.items() for k in keys}
    problems: list[str] = []
    if missing_keys:
        fail(problems, f"the secrets file and the stand-ins differ in {sorted(missing_keys)}")

    for rendered in args.rendered:
        name = Path(rendered).stem
        docs = load(Path(rendered))
        check_wiring(name, docs, set(placeholders), problems)
        for w in (d for d in docs if d["kind"] in WORKLOADS):
            wname = f'{name}: {w["kind"]}/{w["metadata"]["name"]}'
            code, out, root = run_config(binary, w, docs, valid)
            if code != 0:
                fail(problems, f"{wname}: `praxis config` refuses the pod's configuration (exit {code}):\n{out}")
            else:
                mode = next((ln for ln in out.splitlines() if ln.startswith("# mode:")), "# mode: ?")
                only = next((ln.split("#")[0].strip() for ln in out.splitlines() if ln.startswith("only =")), "?")
                print(f"check_pods: {wname}: praxis accepts its configuration ({mode[2:]}, {only})")
            code, out, root2 = run_config(binary, w, docs, placeholders)
            if code == 0:
                fail(problems, f"{wname}: praxis starts with the placeholder secrets of {args.secrets}; "
                               "they must be invalid so that nobody runs with them")
            elif "secret" not in out.lower():
                fail(problems, f"{wname}: with the placeholder secrets praxis fails, but not on a "
                               f"secret:\n{out}")
            for r in (root, root2):
                subprocess.run(["rm", "-rf", str(r)], check=False)

    if problems:
        for p in problems:
            print(f"check_pods: {p}", file=sys.stderr)
        return 1
    print("check_pods: ok: probes, ports, references and every pod's praxis configuration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
