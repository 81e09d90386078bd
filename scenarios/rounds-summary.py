#!/usr/bin/env python3
"""Summarises a scenarios/rounds.sh directory of --find-max or fixed-rate runs.

    scenarios/rounds-summary.py OUT_DIR [REFERENCE_NAME]

Per target: the highest rate meeting the SLO in each round (find-max; for a fixed-rate run the
achieved rate) and their median, and requests per server CPU-second (sum over steps of achieved
rate x (step duration + warm-up), divided by the server CPU seconds rounds.sh
recorded; approximate by the few % of a step that did not keep up). With REFERENCE_NAME, also
each target's ratio to it (medians). Fixed-rate runs also get server CPU microseconds per
request, the cleaner cost figure when every target is run at the same rate below its maximum.
"""
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

out = Path(sys.argv[1])
ref = sys.argv[2] if len(sys.argv) > 2 else None
cpu = {}
for line in (out / "cpu.txt").read_text().splitlines():
    m = re.match(r"(\S+) round (\d+): server cpu ([\d.]+)s", line)
    if m:
        cpu[(m[1], int(m[2]))] = float(m[3])

rates = defaultdict(dict)
per_cpu = defaultdict(dict)
for (name, rnd), seconds in sorted(cpu.items()):
    run = json.loads((out / f"{name}-{rnd}.json").read_text())
    cfg = run["config"]
    # The warm-up's answers are not recorded: counted at the achieved rate of what follows
    # (the offered rate would overcount a target that cannot keep up).
    if "steps" in run:
        served = sum(
            s["achieved_rate"] * (cfg["duration_s"] + cfg["warmup_s"]) for s in run["steps"]
        )
        rates[name][rnd] = run["max_rate"] or 0.0
    else:
        served = run["responses"] + run["achieved_rate"] * cfg["warmup_s"]
        rates[name][rnd] = run["achieved_rate"]
    per_cpu[name][rnd] = served / seconds if seconds > 0 else float("nan")

names = list(dict.fromkeys(n for n, _ in sorted(cpu, key=lambda k: (k[1], 0))))
rounds = sorted({r for _, r in cpu})
med = {n: statistics.median(rates[n].values()) for n in names}
med_cpu = {n: statistics.median(per_cpu[n].values()) for n in names}
head = " | ".join(f"run {r}" for r in rounds)
print(f"| target | {head} | median | req/CPU-s per run | req/CPU-s median (CPU per request) |" + (" ratio to " + ref + " |" if ref else ""))
print("|---" * (len(rounds) + 4 + (1 if ref else 0)) + "|")
for n in names:
    runs = " | ".join(f"{rates[n].get(r, 0):,.0f}" for r in rounds)
    cpus = " / ".join(f"{per_cpu[n].get(r, 0) / 1000:.1f}k" for r in rounds)
    per_request = f" ({1e6 / med_cpu[n]:.2f} µs)" if med_cpu[n] > 0 else ""
    line = f"| {n} | {runs} | **{med[n]:,.0f}** | {cpus} | {med_cpu[n]:,.0f}{per_request} |"
    if ref:
        line += f" {med[n] / med[ref]:.2f} (CPU {med_cpu[n] / med_cpu[ref]:.2f}) |"
    print(line)
