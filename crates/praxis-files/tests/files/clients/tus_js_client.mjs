#!/usr/bin/env node
// An outside tus 1.0 client for the praxis-files integration tests: tus-js-client (npm,
// pinned in package.json next to this file; installed by scripts/install-tus-clients).
//
//   node tus_js_client.mjs --endpoint URL --file PATH --chunk-size BYTES
//                          [--auth 'Bearer ...'] [--filetype TYPE] [--no-download]
//                          [--timeout SECONDS] [--trace]
//
// Every flag has an environment fallback: TUS_ENDPOINT, TUS_FILE, TUS_CHUNK_SIZE,
// TUS_AUTHORIZATION, TUS_FILETYPE, TUS_NO_DOWNLOAD=1, TUS_TIMEOUT, TUS_TRACE=1.
//
// What it does, with the Authorization header (if given) on every request:
//   1. creates an upload at the endpoint (POST, metadata filename + filetype) and PATCHes
//      chunks of --chunk-size bytes; right after the first chunk is acknowledged it calls
//      upload.abort() (the file must be larger than one chunk);
//   2. resumes with a NEW Upload given only the upload URL (no endpoint, so a failed HEAD is an
//      error rather than a fresh upload): HEAD for the offset, then PATCHes to the end; the
//      offset from that HEAD must equal the one the first PATCH acknowledged;
//      (any PATCH that does not advance the offset fails the run: tus-js-client itself would
//      resend it forever);
//   3. unless --no-download, GETs the upload URL and compares its sha256 with the file's.
// Prints one JSON line on stdout:
//   {"client":"tus-js-client","upload_url":...,"resumed_from":N,"chunks":N,"bytes":N,"identical":bool}
// ("identical" is null with --no-download) and exits 0 only when everything held (identical
// true); otherwise a message on stderr and a non-zero exit. --trace logs each request and
// response to stderr.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import tus from 'tus-js-client';

const { Upload } = tus;

function die(msg) {
  process.stderr.write(`tus_js_client: error: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const env = process.env;
  const o = {
    endpoint: env.TUS_ENDPOINT,
    file: env.TUS_FILE,
    chunkSize: env.TUS_CHUNK_SIZE,
    auth: env.TUS_AUTHORIZATION,
    filetype: env.TUS_FILETYPE || 'application/octet-stream',
    download: !['1', 'true', 'yes'].includes((env.TUS_NO_DOWNLOAD || '').toLowerCase()),
    timeout: env.TUS_TIMEOUT || '120',
    trace: ['1', 'true', 'yes'].includes((env.TUS_TRACE || '').toLowerCase()),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--endpoint') o.endpoint = next();
    else if (a === '--file') o.file = next();
    else if (a === '--chunk-size') o.chunkSize = next();
    else if (a === '--auth' || a === '--authorization') o.auth = next();
    else if (a === '--filetype') o.filetype = next();
    else if (a === '--no-download') o.download = false;
    else if (a === '--timeout') o.timeout = next();
    else if (a === '--trace') o.trace = true;
    else die(`unknown argument ${a}`);
  }
  if (!o.endpoint) die('--endpoint URL (or TUS_ENDPOINT) is required');
  if (!o.file) die('--file PATH (or TUS_FILE) is required');
  o.chunkSize = Number(o.chunkSize);
  if (!Number.isSafeInteger(o.chunkSize) || o.chunkSize <= 0) die('--chunk-size BYTES (or TUS_CHUNK_SIZE) must be a positive integer');
  o.timeout = Number(o.timeout);
  if (!(o.timeout > 0)) die('--timeout must be a positive number of seconds');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
let size;
try {
  size = statSync(opts.file).size;
} catch (e) {
  die(`cannot read ${opts.file}: ${e.message}`);
}
if (size <= opts.chunkSize) die(`the file (${size} bytes) must be larger than one chunk (${opts.chunkSize}) to interrupt the upload`);

setTimeout(() => die(`timed out after ${opts.timeout} s`), opts.timeout * 1000).unref();

const headers = opts.auth ? { Authorization: opts.auth } : {};
const metadata = { filename: path.basename(opts.file), filetype: opts.filetype };
let patches = 0; // PATCH requests answered 2xx, over both Upload objects
let phase = 'create';
let resumedFrom = null;

function common() {
  return {
    headers,
    metadata,
    chunkSize: opts.chunkSize,
    retryDelays: null, // a server error must fail the run, not be retried away
    removeFingerprintOnSuccess: true,
    storeFingerprintForResuming: false, // the resume below is explicit, by uploadUrl
    onBeforeRequest(req) {
      if (opts.trace) {
        process.stderr.write(`> ${req.getMethod()} ${req.getURL()} ${JSON.stringify(req._headers ?? {})}\n`);
      }
    },
    onAfterResponse(req, res) {
      const method = req.getMethod();
      const status = res.getStatus();
      if (opts.trace) {
        const h = {};
        for (const n of ['Location', 'Upload-Offset', 'Upload-Length', 'Upload-Metadata', 'Tus-Resumable', 'Cache-Control']) {
          const v = res.getHeader(n);
          if (v != null) h[n] = v;
        }
        process.stderr.write(`< ${status} ${method} ${req.getURL()} ${JSON.stringify(h)}\n`);
      }
      if (method === 'PATCH' && status >= 200 && status < 300) {
        patches++;
        // tus-js-client would PATCH forever if the server never advanced the offset.
        const sent = Number.parseInt(req.getHeader('Upload-Offset'), 10);
        const got = Number.parseInt(res.getHeader('Upload-Offset'), 10);
        if (!(got > sent && got <= size)) die(`PATCH at offset ${sent} answered Upload-Offset ${res.getHeader('Upload-Offset')} (file size ${size})`);
      }
      if (method === 'HEAD' && phase === 'resume') resumedFrom = Number.parseInt(res.getHeader('Upload-Offset'), 10);
    },
  };
}

function describe(err) {
  const res = err?.originalResponse;
  const req = err?.originalRequest;
  let msg = err?.message ?? String(err);
  if (req && !msg.includes(req.getURL())) msg += ` (${req.getMethod()} ${req.getURL()})`;
  if (res && !msg.includes('response code')) msg += ` status ${res.getStatus()} body ${JSON.stringify(res.getBody())}`;
  return msg;
}

// Phase 1: create, upload one chunk, abort.
const first = await new Promise((resolve, reject) => {
  let upload;
  upload = new Upload(createReadStream(opts.file), {
    ...common(),
    endpoint: opts.endpoint,
    onChunkComplete(_chunk, accepted) {
      upload.abort().then(() => resolve({ url: upload.url, accepted }), reject);
    },
    onSuccess() {
      reject(new Error('the upload finished before it could be interrupted'));
    },
    onError: reject,
  });
  upload.start();
}).catch((e) => die(`first upload: ${describe(e)}`));
if (!first.url) die('first upload: no upload URL after the first chunk');
if (!(first.accepted > 0 && first.accepted < size)) die(`first upload: the server acknowledged offset ${first.accepted} after one chunk of a ${size}-byte file`);

// Phase 2: a new Upload resumes from the URL alone.
phase = 'resume';
const resumed = await new Promise((resolve, reject) => {
  const upload = new Upload(createReadStream(opts.file), {
    ...common(),
    uploadUrl: first.url,
    onSuccess() {
      resolve(upload.url);
    },
    onError: reject,
  });
  upload.start();
}).catch((e) => die(`resumed upload: ${describe(e)}`));
if (resumed !== first.url) die(`resumed upload ended at ${resumed}, not ${first.url}`);
if (resumedFrom !== first.accepted) die(`HEAD at resume reported Upload-Offset ${resumedFrom}; the first PATCH acknowledged ${first.accepted}`);

// Phase 3: download and compare.
let identical = null;
if (opts.download) {
  let res;
  try {
    res = await fetch(first.url, { headers });
  } catch (e) {
    die(`GET ${first.url}: ${e.message}`);
  }
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) die(`GET ${first.url}: status ${res.status} body ${JSON.stringify(body.toString('utf8').slice(0, 500))}`);
  const sha = (b) => createHash('sha256').update(b).digest('hex');
  identical = sha(body) === sha(readFileSync(opts.file));
  if (!identical) process.stderr.write(`tus_js_client: error: GET ${first.url} returned ${body.length} bytes that differ from the ${size}-byte file\n`);
}

process.stdout.write(
  `${JSON.stringify({ client: 'tus-js-client', upload_url: first.url, resumed_from: resumedFrom, chunks: patches, bytes: size, identical })}\n`,
);
process.exit(identical === false ? 1 : 0);
