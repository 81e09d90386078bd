#!/usr/bin/env node
// The benchmark peer for praxis's tus endpoint: the reference tus 1.0 server, @tus/server with
// @tus/file-store, serving uploads under /files/ from a directory, or with @tus/s3-store,
// keeping them in an S3 bucket.
//
// Run (after scripts/install-tus-clients, which installs its node_modules):
//
//   node scenarios/files/tus-peer-server.mjs --port 1080 --dir /tmp/tus-peer
//
//   AWS_ACCESS_KEY_ID=praxis-test AWS_SECRET_ACCESS_KEY=praxis-test-secret \
//     node scenarios/files/tus-peer-server.mjs --port 1080 \
//     --s3 's3://praxis-test/tus-peer?endpoint=http://127.0.0.1:8333&region=us-east-1'
//
//   --port N        TCP port (0 picks a free one; the first stdout line says which)
//   --host ADDR     listen address (default 127.0.0.1)
//   --dir PATH      where @tus/file-store keeps uploads (created if missing)
//   --s3 URL        keep uploads in S3 with @tus/s3-store instead (no --dir):
//                   s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION&part_size=BYTES, the form of
//                   praxis's blobs_url. Path-style addressing. endpoint defaults to
//                   AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (else AWS itself), region to
//                   AWS_REGION (else us-east-1), part_size to the store's 8 MiB (praxis's too).
//                   Credentials come only from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
//                   AWS_SESSION_TOKEN), never from the URL or the command line. An upload is
//                   the object PREFIX/<id> (plus PREFIX/<id>.info, and PREFIX/<id>.part while a
//                   part is incomplete); the upload URL is /files/<id>. Checksums are sent only
//                   where S3 requires them (the SDK's WHEN_REQUIRED; praxis's object_store sends
//                   none either).
//   --relative-location   answer POST with a relative Location (default: absolute URL)
//   --log           log every request and its response headers to stderr, one JSON line each
//
// On start it prints one JSON line to stdout, e.g.
//   {"listening":"http://127.0.0.1:1080/files/","dir":"/tmp/tus-peer"}
//   {"listening":"http://127.0.0.1:1080/files/","s3":"s3://praxis-test/tus-peer?endpoint=http://127.0.0.1:8333&region=us-east-1"}
// and stops on SIGINT/SIGTERM. Endpoint for the clients: http://HOST:PORT/files/ ; GET on an
// upload URL returns the finished upload (see handle() below for why this file serves it).
//
// The packages are resolved from crates/praxis-files/tests/files/clients/node_modules (override
// with TUS_CLIENTS_DIR); ES modules ignore NODE_PATH, so they are located with createRequire and
// loaded with import().
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const clientsDir =
  process.env.TUS_CLIENTS_DIR ||
  path.resolve(here, '../../crates/praxis-files/tests/files/clients');

function die(msg) {
  process.stderr.write(`tus-peer-server: error: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { port: null, host: '127.0.0.1', dir: null, s3: null, relativeLocation: false, log: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') opts.port = Number(next());
    else if (a === '--host') opts.host = next();
    else if (a === '--dir') opts.dir = next();
    else if (a === '--s3') opts.s3 = parseS3Url(next());
    else if (a === '--relative-location') opts.relativeLocation = true;
    else if (a === '--log') opts.log = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(
        'usage: tus-peer-server.mjs --port N (--dir PATH | --s3 s3://BUCKET[/PREFIX]?endpoint=URL&region=R&part_size=N)\n' +
          '                           [--host ADDR] [--relative-location] [--log]\n',
      );
      process.exit(0);
    } else die(`unknown argument ${a}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) die('--port N is required');
  if (!opts.dir === !opts.s3) die('one of --dir PATH or --s3 URL is required');
  return opts;
}

// s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION&part_size=BYTES (praxis's blobs_url form).
function parseS3Url(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    die(`--s3 ${text}: not a URL; use s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT`);
  }
  if (url.protocol !== 's3:' || !url.hostname) die(`--s3 ${text}: use s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT`);
  if (url.username || url.password) die('--s3: put the credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not the URL');
  const prefix = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  const s3 = {
    bucket: url.hostname,
    prefix,
    endpoint: process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || null,
    region: process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
    partSize: null,
  };
  for (const [k, v] of url.searchParams) {
    if (k === 'endpoint') s3.endpoint = v.replace(/\/+$/, '');
    else if (k === 'region') s3.region = v;
    else if (k === 'part_size') {
      s3.partSize = Number(v);
      if (!Number.isInteger(s3.partSize) || s3.partSize < 5 * 1024 * 1024) die('--s3: part_size is bytes, at least 5 MiB');
    } else die(`--s3: unknown parameter ${k}; known: endpoint, region, part_size`);
  }
  if (!process.env.AWS_ACCESS_KEY_ID || !process.env.AWS_SECRET_ACCESS_KEY)
    die('--s3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment');
  return s3;
}

function describeS3(s3) {
  const q = [s3.endpoint && `endpoint=${s3.endpoint}`, `region=${s3.region}`, s3.partSize && `part_size=${s3.partSize}`];
  return `s3://${s3.bucket}${s3.prefix ? `/${s3.prefix}` : ''}?${q.filter(Boolean).join('&')}`;
}

async function load(name) {
  const require = createRequire(path.join(clientsDir, 'package.json'));
  let resolved;
  try {
    resolved = require.resolve(name);
  } catch {
    die(`cannot find ${name} under ${clientsDir}/node_modules; run scripts/install-tus-clients`);
  }
  return import(pathToFileURL(resolved).href);
}

const opts = parseArgs(process.argv.slice(2));
const { Server } = await load('@tus/server');

// An upload's id in the store (its object key under S3) from the last segment of its URL,
// and back. Only the S3 store has a key prefix: @tus/s3-store 2.0.7 has no prefix option, so
// ids are made "PREFIX/<hex>" and the URL names just "<hex>".
const keyPrefix = opts.s3?.prefix ? `${opts.s3.prefix}/` : '';
function idOfSegment(segment) {
  if (!segment || segment === 'files' || /[/\\\0]/.test(segment)) return undefined;
  return keyPrefix + segment;
}
function segmentOfId(id) {
  return keyPrefix && id.startsWith(keyPrefix) ? id.slice(keyPrefix.length) : id;
}

let datastore;
if (opts.s3) {
  const { S3Store } = await load('@tus/s3-store');
  datastore = new S3Store({
    ...(opts.s3.partSize ? { partSize: opts.s3.partSize } : {}),
    s3ClientConfig: {
      bucket: opts.s3.bucket,
      region: opts.s3.region,
      ...(opts.s3.endpoint ? { endpoint: opts.s3.endpoint } : {}),
      forcePathStyle: true,
      credentials: {
        accessKeyId: process.env.AWS_ACCESS_KEY_ID,
        secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
        ...(process.env.AWS_SESSION_TOKEN ? { sessionToken: process.env.AWS_SESSION_TOKEN } : {}),
      },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    },
  });
} else {
  mkdirSync(opts.dir, { recursive: true });
  const { FileStore } = await load('@tus/file-store');
  datastore = new FileStore({ directory: opts.dir });
}

const tus = new Server({
  path: '/files',
  datastore,
  relativeLocation: opts.relativeLocation,
  ...(keyPrefix
    ? {
        namingFunction: () => keyPrefix + randomBytes(16).toString('hex'),
        getFileIdFromRequest: (_req, segment) => idOfSegment(segment),
        generateUrl: (_req, { proto, host, path: base, id }) =>
          `${opts.relativeLocation ? '' : `${proto}://${host}`}${base}/${encodeURIComponent(segmentOfId(id))}`,
      }
    : {}),
});

// writeHead's headers argument: an object, [[name, value], ...] or a flat [name, value, ...].
function headerObject(h) {
  const out = {};
  if (!h) return out;
  if (!Array.isArray(h)) {
    for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
    return out;
  }
  const pairs = Array.isArray(h[0]) ? h : h.flatMap((v, i) => (i % 2 ? [] : [[v, h[i + 1]]]));
  for (const [k, v] of pairs) {
    const key = String(k).toLowerCase();
    out[key] = key in out ? [].concat(out[key], v) : v;
  }
  return out;
}

// The request log: method, URL and request headers when a request arrives; status and
// response headers when it ends.
function logged(handler) {
  let seq = 0;
  return (req, res) => {
    const id = ++seq;
    const t0 = process.hrtime.bigint();
    let status = null;
    let resHeaders = null;
    const writeHead = res.writeHead;
    res.writeHead = function (code, ...rest) {
      status = code;
      resHeaders = { ...res.getHeaders(), ...headerObject(rest.find((x) => x && typeof x === 'object')) };
      return writeHead.call(this, code, ...rest);
    };
    // (No 'data' listener here: it would switch the request to flowing mode and steal the body
    // from @tus/server.)
    res.on('close', () => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      process.stderr.write(
        `${JSON.stringify({
          id,
          method: req.method,
          url: req.url,
          req_headers: req.headers,
          status: status ?? res.statusCode,
          res_headers: resHeaders ?? res.getHeaders(),
          ms: Math.round(ms * 10) / 10,
        })}\n`,
      );
    });
    return handler(req, res);
  };
}

// GET of a finished upload is served here, not by @tus/server's GetHandler: on node 20 that one
// wraps the file's fs stream in a web Response, and when a client closes the connection as soon
// as it has Content-Length bytes (python urllib, `Connection: close`) before the stream has
// reported its end, undici's pending controller.close() throws "Invalid state: ReadableStream is
// already closed" as an uncaught exception and the whole peer dies. Same status, headers
// (GetHandler.filterContentType) and 404 body as @tus/server; everything else goes to it. The
// bytes come from the store's read(): FileStore's fs stream, or S3Store's GetObject body (a
// node stream of the HTTP response from S3; S3Store.read is async, hence the await).
const tusHandle = tus.handle.bind(tus);
async function handle(req, res) {
  if (req.method !== 'GET') return tusHandle(req, res);
  const pathname = new URL(req.url, 'http://peer').pathname;
  let id;
  try {
    id = pathname.startsWith('/files/') ? idOfSegment(decodeURIComponent(pathname.slice('/files/'.length))) : undefined;
  } catch {
    id = undefined;
  }
  let upload = null;
  if (id) upload = await datastore.getUpload(id).catch(() => null);
  if (!upload || upload.offset !== upload.size) {
    const body = 'The file for this url was not found\n';
    res.writeHead(404, { 'Content-Type': 'text/plain;charset=UTF-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  const { contentType, contentDisposition } = tus.handlers.GET.filterContentType(upload);
  res.writeHead(200, {
    'Content-Length': String(upload.offset),
    'Content-Type': contentType,
    'Content-Disposition': contentDisposition,
  });
  try {
    await pipeline(await datastore.read(id), res);
  } catch {
    res.destroy();
  }
}
const server = http.createServer(opts.log ? logged(handle) : handle);
server.on('error', (e) => die(e.message));
server.listen(opts.port, opts.host, () => {
  const { address, port } = server.address();
  const host = address.includes(':') ? `[${address}]` : address;
  const where = opts.s3 ? { s3: describeS3(opts.s3) } : { dir: path.resolve(opts.dir) };
  process.stdout.write(`${JSON.stringify({ listening: `http://${host}:${port}/files/`, ...where })}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
