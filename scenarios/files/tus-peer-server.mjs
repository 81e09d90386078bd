#!/usr/bin/env node
// The benchmark peer for praxis's tus endpoint: the reference tus 1.0 server, @tus/server with
// @tus/file-store, serving uploads under /files/ from a directory.
//
// Run (after scripts/install-tus-clients, which installs its node_modules):
//
//   node scenarios/files/tus-peer-server.mjs --port 1080 --dir /tmp/tus-peer
//
//   --port N        TCP port (0 picks a free one; the first stdout line says which)
//   --host ADDR     listen address (default 127.0.0.1)
//   --dir PATH      where @tus/file-store keeps uploads (created if missing)
//   --relative-location   answer POST with a relative Location (default: absolute URL)
//   --log           log every request and its response headers to stderr, one JSON line each
//
// On start it prints one JSON line to stdout, e.g.
//   {"listening":"http://127.0.0.1:1080/files/","dir":"/tmp/tus-peer"}
// and stops on SIGINT/SIGTERM. Endpoint for the clients: http://HOST:PORT/files/ ; GET on an
// upload URL returns the finished upload (see handle() below for why this file serves it).
//
// The packages are resolved from crates/praxis-files/tests/files/clients/node_modules (override
// with TUS_CLIENTS_DIR); ES modules ignore NODE_PATH, so they are located with createRequire and
// loaded with import().
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
  const opts = { port: null, host: '127.0.0.1', dir: null, relativeLocation: false, log: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') opts.port = Number(next());
    else if (a === '--host') opts.host = next();
    else if (a === '--dir') opts.dir = next();
    else if (a === '--relative-location') opts.relativeLocation = true;
    else if (a === '--log') opts.log = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(
        'usage: tus-peer-server.mjs --port N --dir PATH [--host ADDR] [--relative-location] [--log]\n',
      );
      process.exit(0);
    } else die(`unknown argument ${a}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) die('--port N is required');
  if (!opts.dir) die('--dir PATH is required');
  return opts;
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
mkdirSync(opts.dir, { recursive: true });
const { Server } = await load('@tus/server');
const { FileStore } = await load('@tus/file-store');

const tus = new Server({
  path: '/files',
  datastore: new FileStore({ directory: opts.dir }),
  relativeLocation: opts.relativeLocation,
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
// (GetHandler.filterContentType) and 404 body as @tus/server; everything else goes to it.
const tusHandle = tus.handle.bind(tus);
const datastore = tus.datastore;
async function handle(req, res) {
  if (req.method !== 'GET') return tusHandle(req, res);
  const pathname = new URL(req.url, 'http://peer').pathname;
  const id = pathname.startsWith('/files/') ? decodeURIComponent(pathname.slice('/files/'.length)) : '';
  let upload = null;
  if (id && !id.includes('/')) upload = await datastore.getUpload(id).catch(() => null);
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
  pipeline(datastore.read(id), res).catch(() => {});
}
const server = http.createServer(opts.log ? logged(handle) : handle);
server.on('error', (e) => die(e.message));
server.listen(opts.port, opts.host, () => {
  const { address, port } = server.address();
  const host = address.includes(':') ? `[${address}]` : address;
  process.stdout.write(
    `${JSON.stringify({ listening: `http://${host}:${port}/files/`, dir: path.resolve(opts.dir) })}\n`,
  );
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
