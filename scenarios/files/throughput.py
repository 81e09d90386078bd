#!/usr/bin/env python3
"""File storage throughput (issue 18): tus upload and download MB/s of 1 MB and 1 GB files
through praxis (embedded: SQLite, local disk) and through the peer @tus/server (npm, its
FileStore), beside the disk's own speed (dd with conv=fsync) measured in the same round; and
the server's RSS during the 1 GB upload.

    scenarios/files/throughput.py [ROUNDS] [OUT_DIR]

Needs B (default target/release/praxis), node with the peer's packages (scripts/install-tus-clients),
curl, dd and taskset. Servers and dd run on core 0, curl on core 1. Each round: dd, praxis, peer
for 1 GB (one PATCH of the whole file, then one GET), then 50 serial 1 MB uploads and downloads.
Prints a JSON line per round and a summary of medians. Every upload is deleted afterwards (the
next one is new content to the server: no dedupe shortcut; the file bytes are the same).
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
OUT = sys.argv[2] if len(sys.argv) > 2 else "/tmp/files-throughput"
B = os.environ.get("B", "target/release/praxis")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER = os.path.join(ROOT, "scenarios/files/tus-peer-server.mjs")
ADMIN = "files-bench-admin-key"
GB = 1 << 30
MB = 1 << 20
SMALL_COUNT = 50
PRAXIS_PORT, PEER_PORT = 8180, 8181


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def wait_up(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler:
    """Peak RSS of a process while a block runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, False

    def __enter__(self):
        self.idle = rss_kb(self.pid)
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
        return self

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.stop = True
        self.t.join()


def curl(*args):
    """Runs curl on core 1; returns (seconds, http status, stdout headers text)."""
    out = sh("taskset", "-c", "1", "curl", "-s", "-o", "/dev/null", "-D", "-",
             "-w", "\n%{http_code} %{time_total}", *args).stdout
    head, _, tail = out.rpartition("\n")
    code, secs = tail.split()
    return float(secs), int(code), head


def header(text, name):
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k.strip().lower() == name:
            return v.strip()
    return None


def tus_upload(base, path, size, auth):
    """POST then one PATCH of the whole file; seconds of the PATCH (the bytes' transfer) and
    the upload URL."""
    hdrs = ["-H", "Tus-Resumable: 1.0.0"] + (["-H", f"Authorization: Bearer {ADMIN}"] if auth else [])
    _, code, head = curl("-X", "POST", *hdrs, "-H", f"Upload-Length: {size}",
                         "-H", "Upload-Metadata: filename Yi5iaW4=", base)
    assert code == 201, (code, head)
    loc = header(head, "location")
    url = loc if loc.startswith("http") else base.split("/", 3)[0] + "//" + base.split("/", 3)[2] + loc
    secs, code, head = curl("-X", "PATCH", *hdrs, "-H", "Content-Type: application/offset+octet-stream",
                            "-H", "Upload-Offset: 0", "-H", "Expect:", "-T", path, url)
    assert code == 204, (code, head)
    return secs, url


def download(url, auth):
    hdrs = ["-H", f"Authorization: Bearer {ADMIN}"] if auth else []
    secs, code, _ = curl(*hdrs, url)
    assert code == 200, code
    return secs


def delete(url, auth):
    if auth:
        file_id = url.rstrip("/").rsplit("/", 1)[1]
        curl("-X", "DELETE", "-H", f"Authorization: Bearer {ADMIN}", f"http://127.0.0.1:{PRAXIS_PORT}/api/v1/files/{file_id}")
    else:
        curl("-X", "DELETE", "-H", "Tus-Resumable: 1.0.0", url)


def dd(src, dst):
    t = time.monotonic()
    sh("taskset", "-c", "0", "dd", f"if={src}", f"of={dst}", "bs=1M", "conv=fsync")
    secs = time.monotonic() - t
    os.remove(dst)
    return secs


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    big, small = os.path.join(OUT, "src-1g"), os.path.join(OUT, "src-1m")
    with open(big, "wb") as f:
        for _ in range(GB // (64 * MB)):
            f.write(os.urandom(64 * MB))
    with open(small, "wb") as f:
        f.write(os.urandom(MB))
    subprocess.run(["cat", big], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    env = dict(os.environ, PRAXIS_ADMIN_KEY=ADMIN, PRAXIS_LOG_LEVEL="warn", PRAXIS_ACCESS_LOG="false")
    praxis = subprocess.Popen(["taskset", "-c", "0", B, "serve", "--listen", f"127.0.0.1:{PRAXIS_PORT}",
                               "--data-dir", os.path.join(OUT, "praxis"), "--only", "files"],
                              env=env, stdout=open(os.path.join(OUT, "praxis.log"), "w"), stderr=subprocess.STDOUT)
    peer = subprocess.Popen(["taskset", "-c", "0", "node", PEER, "--port", str(PEER_PORT), "--dir", os.path.join(OUT, "peer")],
                            stdout=open(os.path.join(OUT, "peer.log"), "w"), stderr=subprocess.STDOUT)
    try:
        wait_up(f"http://127.0.0.1:{PRAXIS_PORT}/healthz")
        wait_up(f"http://127.0.0.1:{PEER_PORT}/files/")
        targets = {
            "praxis": (f"http://127.0.0.1:{PRAXIS_PORT}/api/v1/files/tus/", True, praxis.pid),
            "peer": (f"http://127.0.0.1:{PEER_PORT}/files/", False, peer.pid),
        }
        rounds = []
        for r in range(ROUNDS):
            row = {"round": r + 1}
            row["dd_1g_mbs"] = GB / MB / dd(big, os.path.join(OUT, "dd.out"))
            t = 0.0
            for _ in range(SMALL_COUNT):
                t += dd(small, os.path.join(OUT, "dd.out"))
            row["dd_1m_mbs"] = SMALL_COUNT / t
            for name, (base, auth, pid) in targets.items():
                # The server's own pid under taskset: taskset execs, so Popen's pid is it.
                with Sampler(pid) as s:
                    up, url = tus_upload(base, big, GB, auth)
                row[f"{name}_1g_up_mbs"] = GB / MB / up
                row[f"{name}_1g_rss_idle_mb"] = s.idle / 1024
                row[f"{name}_1g_rss_peak_mb"] = s.peak / 1024
                row[f"{name}_1g_down_mbs"] = GB / MB / download(url, auth)
                delete(url, auth)
                up_t = down_t = 0.0
                for _ in range(SMALL_COUNT):
                    secs, url = tus_upload(base, small, MB, auth)
                    up_t += secs
                    down_t += download(url, auth)
                    delete(url, auth)
                row[f"{name}_1m_up_mbs"] = SMALL_COUNT / up_t
                row[f"{name}_1m_down_mbs"] = SMALL_COUNT / down_t
            rounds.append(row)
            print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        keys = [k for k in rounds[0] if k != "round"]
        med = {k: statistics.median(r[k] for r in rounds) for k in keys}
        print("\nmedians of", ROUNDS, "rounds:")
        for k in keys:
            print(f"  {k:28} {med[k]:10.1f}")
        for size in ("1g", "1m"):
            print(f"  praxis/disk upload {size}:   {med[f'praxis_{size}_up_mbs'] / med[f'dd_{size}_mbs']:.2f}")
            print(f"  praxis/peer upload {size}:   {med[f'praxis_{size}_up_mbs'] / med[f'peer_{size}_up_mbs']:.2f}")
            print(f"  praxis/peer download {size}: {med[f'praxis_{size}_down_mbs'] / med[f'peer_{size}_down_mbs']:.2f}")
        print(f"  praxis RSS growth during 1 GB upload: {med['praxis_1g_rss_peak_mb'] - med['praxis_1g_rss_idle_mb']:.1f} MB")
        print(f"  peer RSS growth during 1 GB upload:   {med['peer_1g_rss_peak_mb'] - med['peer_1g_rss_idle_mb']:.1f} MB")
    finally:
        for p in (praxis, peer):
            p.send_signal(signal.SIGTERM)
        for p in (praxis, peer):
            p.wait(timeout=20)
        if os.environ.get("KEEP") is None:
            shutil.rmtree(OUT, ignore_errors=True)


if __name__ == "__main__":
    main()
