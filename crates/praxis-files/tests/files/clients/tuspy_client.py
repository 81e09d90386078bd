#!/usr/bin/env python3
"""An outside tus 1.0 client for the praxis-files integration tests: tuspy (PyPI, tuspy==1.1.0,
`from tusclient import client`; installed by scripts/install-tus-clients).

    python3 tuspy_client.py --endpoint URL --file PATH --chunk-size BYTES
                            [--auth 'Bearer ...'] [--filetype TYPE] [--no-download]
                            [--timeout SECONDS] [--trace]

Every flag has an environment fallback: TUS_ENDPOINT, TUS_FILE, TUS_CHUNK_SIZE,
TUS_AUTHORIZATION, TUS_FILETYPE, TUS_NO_DOWNLOAD=1, TUS_TIMEOUT, TUS_TRACE=1.

What it does, with the Authorization header (if given) on every request:
  1. TusClient(endpoint, headers=...).uploader(path, chunk_size=..., metadata={filename,
     filetype}); upload_chunk() once (POST to create, one PATCH), then the uploader is dropped
     (the file must be larger than one chunk);
  2. a NEW uploader made with url=<upload URL> resumes: its constructor sends HEAD for the
     offset (which must equal the one the first PATCH acknowledged), then PATCHes to the end
     (the loop of Uploader.upload(), with a check that every PATCH advances the offset, where
     upload() would spin forever);
  3. unless --no-download, GETs the upload URL and compares its sha256 with the file's.
Prints one JSON line on stdout:
  {"client":"tuspy","upload_url":...,"resumed_from":N,"chunks":N,"bytes":N,"identical":bool}
("identical" is null with --no-download) and exits 0 only when everything held; otherwise a
message on stderr and a non-zero exit. --trace logs each request and response to stderr.
"""

import argparse
import hashlib
import json
import os
import signal
import sys
import urllib.error
import urllib.request

try:
    import requests
    from tusclient import client as tus_client
    from tusclient.exceptions import TusCommunicationError, TusUploadFailed
except ImportError as e:  # pragma: no cover
    sys.stderr.write(
        f"tuspy_client: error: {e}; install it with scripts/install-tus-clients "
        "(python3 -m pip install tuspy==1.1.0)\n"
    )
    sys.exit(1)


def die(msg):
    sys.stderr.write(f"tuspy_client: error: {msg}\n")
    sys.exit(1)


def truthy(v):
    return (v or "").lower() in ("1", "true", "yes")


def parse_args():
    env = os.environ
    p = argparse.ArgumentParser(description="tuspy interrupted-and-resumed upload")
    p.add_argument("--endpoint", default=env.get("TUS_ENDPOINT"))
    p.add_argument("--file", default=env.get("TUS_FILE"))
    p.add_argument("--chunk-size", default=env.get("TUS_CHUNK_SIZE"))
    p.add_argument("--auth", "--authorization", dest="auth", default=env.get("TUS_AUTHORIZATION"))
    p.add_argument("--filetype", default=env.get("TUS_FILETYPE") or "application/octet-stream")
    p.add_argument("--no-download", action="store_true", default=truthy(env.get("TUS_NO_DOWNLOAD")))
    p.add_argument("--timeout", default=env.get("TUS_TIMEOUT") or "120")
    p.add_argument("--trace", action="store_true", default=truthy(env.get("TUS_TRACE")))
    a = p.parse_args()
    if not a.endpoint:
        die("--endpoint URL (or TUS_ENDPOINT) is required")
    if not a.file:
        die("--file PATH (or TUS_FILE) is required")
    try:
        a.chunk_size = int(a.chunk_size)
        assert a.chunk_size > 0
    except (TypeError, ValueError, AssertionError):
        die("--chunk-size BYTES (or TUS_CHUNK_SIZE) must be a positive integer")
    try:
        a.timeout = max(1, int(float(a.timeout)))
    except ValueError:
        die("--timeout must be a number of seconds")
    return a


def install_trace():
    """Logs every request tuspy makes (it calls requests.head/post/patch) to stderr."""
    send = requests.Session.send

    def traced(self, req, **kw):
        sys.stderr.write(f"> {req.method} {req.url} {json.dumps(dict(req.headers))}\n")
        resp = send(self, req, **kw)
        sys.stderr.write(f"< {resp.status_code} {req.method} {req.url} {json.dumps(dict(resp.headers))}\n")
        return resp

    requests.Session.send = traced


def main():
    a = parse_args()
    try:
        size = os.path.getsize(a.file)
    except OSError as e:
        die(f"cannot read {a.file}: {e}")
    if size <= a.chunk_size:
        die(f"the file ({size} bytes) must be larger than one chunk ({a.chunk_size}) to interrupt the upload")

    def on_alarm(*_):
        die(f"timed out after {a.timeout} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(a.timeout)
    if a.trace:
        install_trace()

    headers = {"Authorization": a.auth} if a.auth else {}
    metadata = {"filename": os.path.basename(a.file), "filetype": a.filetype}
    my_client = tus_client.TusClient(a.endpoint, headers=headers)
    chunks = 0

    # Phase 1: create and send one chunk, then drop the uploader.
    try:
        uploader = my_client.uploader(a.file, chunk_size=a.chunk_size, metadata=metadata)
        uploader.upload_chunk()
        chunks += 1
    except (TusCommunicationError, TusUploadFailed) as e:
        die(f"first upload: {describe(e)}")
    except (TypeError, ValueError) as e:  # e.g. a PATCH response without Upload-Offset
        die(f"first upload: bad response: {e}")
    upload_url = uploader.url
    accepted = uploader.offset
    if not upload_url:
        die("first upload: no upload URL after the first chunk")
    if not 0 < accepted < size:
        die(f"first upload: the server acknowledged offset {accepted} after one chunk of a {size}-byte file")
    del uploader

    # Phase 2: a new uploader given only the URL; its constructor sends HEAD for the offset.
    try:
        uploader = my_client.uploader(a.file, url=upload_url, chunk_size=a.chunk_size, metadata=metadata)
    except (TusCommunicationError, TusUploadFailed) as e:
        die(f"resume (HEAD {upload_url}): {describe(e)}")
    resumed_from = uploader.offset
    if resumed_from != accepted:
        die(f"HEAD at resume reported Upload-Offset {resumed_from}; the first PATCH acknowledged {accepted}")
    try:
        while uploader.offset < size:
            before = uploader.offset
            uploader.upload_chunk()
            chunks += 1
            if not before < uploader.offset <= size:
                die(f"PATCH at offset {before} answered Upload-Offset {uploader.offset} (file size {size})")
    except (TusCommunicationError, TusUploadFailed) as e:
        die(f"resumed upload: {describe(e)}")
    except (TypeError, ValueError) as e:
        die(f"resumed upload: bad response: {e}")
    if uploader.url != upload_url:
        die(f"resumed upload ended at {uploader.url}, not {upload_url}")

    # Phase 3: download and compare.
    identical = None
    if not a.no_download:
        req = urllib.request.Request(upload_url, headers=headers, method="GET")
        try:
            with urllib.request.urlopen(req, timeout=a.timeout) as resp:
                body = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            die(f"GET {upload_url}: status {e.code} body {e.read()[:500]!r}")
        except urllib.error.URLError as e:
            die(f"GET {upload_url}: {e.reason}")
        if status != 200:
            die(f"GET {upload_url}: status {status}")
        with open(a.file, "rb") as f:
            want = hashlib.sha256(f.read()).hexdigest()
        identical = hashlib.sha256(body).hexdigest() == want
        if not identical:
            sys.stderr.write(
                f"tuspy_client: error: GET {upload_url} returned {len(body)} bytes that differ from the {size}-byte file\n"
            )

    print(
        json.dumps(
            {
                "client": "tuspy",
                "upload_url": upload_url,
                "resumed_from": resumed_from,
                "chunks": chunks,
                "bytes": size,
                "identical": identical,
            }
        ),
        flush=True,
    )
    sys.exit(1 if identical is False else 0)


def describe(e):
    parts = [str(e)]
    status = getattr(e, "status_code", None)
    body = getattr(e, "response_content", None)
    if status is not None and f"status {status}" not in parts[0]:
        parts.append(f"status {status}")
    if body:
        parts.append(f"body {body[:500]!r}")
    return " ".join(p for p in parts if p)


if __name__ == "__main__":
    main()
