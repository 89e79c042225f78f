// Node.js `http` peer for `python -m bench`: GET /files/{name} from --directory.
//
//   node node_http.js --mode readfile|cached --host 127.0.0.1 --port P --directory D
//
// readfile: fs.readFile per request, the way a naive server is written; big files are
//           read whole into memory for every request (that is what T4 exposes).
// cached:   every file of the directory is read into a Buffer before listening (a lazy
//           cache would let 4,000 simultaneous first requests all miss and all read), and
//           the same Buffer is sent every time with res.end(buf).  We send the cached Buffer for large files too rather than
//           fs.createReadStream: libuv writes straight from the Buffer without copying it,
//           so this is Node's fastest path and memory stays at one copy per file.
//           Each cached file has an ETag made when it is read, in serve-static's form
//           (W/"<size hex>-<mtime ms hex>"), and a request whose If-None-Match is exactly
//           that tag gets 304, as Express's static server answers a browser revalidating (T5).
//           readfile mode sends no ETag: it knows nothing about the file but its bytes.
// Prints "Listening on http://HOST:PORT" once accepting, like core and the stages.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

function parseArgs(argv) {
  const opts = { mode: 'cached', host: '127.0.0.1', port: 8000, directory: '.', backlog: 4096 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in opts)) throw new Error(`unknown option ${argv[i]}`);
    opts[key] = typeof opts[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (opts.mode !== 'readfile' && opts.mode !== 'cached') throw new Error(`unknown mode ${opts.mode}`);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const PREFIX = '/files/';
const cache = new Map(); // name -> { body: Buffer, etag: string } (cached mode)

function cacheFile(name) {
  const file = path.join(opts.directory, name);
  const stat = fs.statSync(file);
  const etag = `W/"${stat.size.toString(16)}-${stat.mtime.getTime().toString(16)}"`;
  const entry = { body: fs.readFileSync(file), etag };
  cache.set(name, entry);
  return entry;
}

if (opts.mode === 'cached') {
  for (const entry of fs.readdirSync(opts.directory, { withFileTypes: true })) {
    if (entry.isFile()) cacheFile(entry.name);
  }
}

function send(res, status, body, etag) {
  const headers = {
    'Content-Type': status === 200 ? 'application/octet-stream' : 'text/plain',
    'Content-Length': body.length,
  };
  if (etag) headers.ETag = etag;
  res.writeHead(status, headers);
  res.end(body);
}

function sendCached(req, res, entry) {
  if (req.headers['if-none-match'] === entry.etag) {
    res.writeHead(304, { ETag: entry.etag });
    return res.end();
  }
  send(res, 200, entry.body, entry.etag);
}

function fileName(url) {
  if (!url.startsWith(PREFIX)) return null;
  const name = decodeURIComponent(url.slice(PREFIX.length));
  // Only plain names inside the directory: no '..', no subdirectories.
  return name && path.basename(name) === name && name !== '..' ? name : null;
}

function handler(req, res) {
  const name = req.method === 'GET' ? fileName(req.url) : null;
  if (name === null) return send(res, 404, Buffer.from('Not Found'));
  if (opts.mode === 'cached' && cache.has(name)) return sendCached(req, res, cache.get(name));
  if (opts.mode === 'cached') {
    let entry;
    try {
      entry = cacheFile(name); // a file added after start
    } catch (err) {
      return send(res, 404, Buffer.from('Not Found'));
    }
    return sendCached(req, res, entry);
  }
  fs.readFile(path.join(opts.directory, name), (err, data) => {
    if (err) return send(res, 404, Buffer.from('Not Found'));
    send(res, 200, data);
  });
}

const server = http.createServer(handler);
// Keep-alive for the whole run; the benchmark's clients never go idle for long.
server.keepAliveTimeout = 65000;
server.listen({ host: opts.host, port: opts.port, backlog: opts.backlog }, () => {
  console.log(`Listening on http://${opts.host}:${server.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
