// The Node.js peer of benchmarks/load/ws.sh: the `ws` package's WebSocketServer (the version pinned in
// tests/conformance/node/package-lock.json) with the three endpoints of the benchmark:
//   /echo       sends every message back (text as text, binary as binary)
//   /subscribe  receives every published message
//   /publish    every message received here is sent to all subscribers
// written as the package's README writes an echo server and a broadcast ("Server broadcast": a loop over
// the clients calling send). permessage-deflate is off (the package's default). No keep-alive pings, like
// the other servers of the benchmark.
//
// Usage: node ws_node.mjs NODE_MODULES_DIR [--bind ADDRESS] [--port PORT]
// The `ws` package is loaded from NODE_MODULES_DIR (ws.sh installs it with `npm ci`). Prints
// "listening on http://ADDRESS:PORT" once accepting, and exits with status 0 on SIGINT or SIGTERM.
import { createRequire } from 'node:module';
import path from 'node:path';

const [modules, ...rest] = process.argv.slice(2);
if (!modules) {
  console.error('usage: node ws_node.mjs NODE_MODULES_DIR [--bind ADDRESS] [--port PORT]');
  process.exit(2);
}
const options = { bind: '127.0.0.1', port: '8080' };
for (let i = 0; i < rest.length; i += 2) {
  const name = rest[i].replace(/^--/, '');
  if (!(name in options) || rest[i + 1] === undefined) {
    console.error(`ws_node.mjs: bad option ${rest[i]}`);
    process.exit(2);
  }
  options[name] = rest[i + 1];
}

const require = createRequire(path.join(path.resolve(modules), 'index.js'));
const { WebSocketServer } = require('ws');

const subscribers = new Set();
const server = new WebSocketServer({ host: options.bind, port: Number(options.port), clientTracking: false });
server.on('connection', (socket, request) => {
  switch (request.url) {
    case '/echo':
      socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
      break;
    case '/subscribe':
      subscribers.add(socket);
      socket.on('close', () => subscribers.delete(socket));
      break;
    case '/publish':
      socket.on('message', (data, isBinary) => {
        for (const client of subscribers) client.send(data, { binary: isBinary });
      });
      break;
    default:
      socket.close(1008, 'unknown endpoint');
  }
});
server.on('listening', () => {
  const address = server.address();
  console.log(`listening on http://${address.address}:${address.port}`);
});
// A benchmark server has nothing to save: it stops at once, dropping its connections.
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
