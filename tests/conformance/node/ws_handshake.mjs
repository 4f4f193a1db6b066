// The opening handshake of the `ws` package, both ends, over real loopback sockets: the other side of
// tests/conformance/ws_handshake_differential.cpp.
// Usage: node ws_handshake.mjs < cases.jsonl
// Input: one case a line, either
//   {"server": {"request": "<hex>", "protocols": [...], "deflate": false | {...}}}
//     the raw bytes of an upgrade request (through the blank line), sent to a Node HTTP server whose upgrades go to
//     a `WebSocketServer` in noServer mode with `perMessageDeflate` set to `deflate` (its option names) and a
//     `handleProtocols` that picks the first of `protocols` the client offered (none when none); requests that
//     Node does not take for upgrades are answered 426, as a standalone `WebSocketServer` does;
//   {"client": {"response": "<hex>", "protocols": [...], "deflate": false | {...}}}
//     a `ws` WebSocket client, offering `protocols` and `perMessageDeflate` = `deflate`, connects to a server that
//     answers with the raw bytes `response`, where every "{accept}" is replaced by the right Sec-WebSocket-Accept
//     value for the key the client sent.
// Output: one JSON line per case, in order:
//   server: {"status": N, "fields": [[name, value], ...], "body": "..."}  // the response as received (names as
//           sent); the body, ws's reason for a refusal, is read to the end of the connection
//   client: {"open": true, "protocol": "...", "deflate": null | {params}} or {"open": false, "error": "..."}
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const require = createRequire(import.meta.url);
const { WebSocket, WebSocketServer } = require('ws');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const cases = readFileSync(0, 'utf8').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line));

// The head of an HTTP response: status and fields in order.
function parseHead(text) {
  const lines = text.split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const fields = [];
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    fields.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { status, fields };
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

// Server cases: the case index travels in the request target ("/c/<index>").
async function serverSide(items) {
  const httpServer = http.createServer((req, res) => {
    res.writeHead(426, { 'Content-Type': 'text/plain', Connection: 'close' });
    res.end('Upgrade Required');
  });
  httpServer.on('upgrade', (req, socket, head) => {
    const c = cases[Number(req.url.split('/')[2])].server;
    const wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: c.deflate,
      handleProtocols: (offered) => c.protocols.find((p) => offered.has(p)) ?? false,
    });
    wss.handleUpgrade(req, socket, head, (ws) => ws.terminate());
  });
  const port = await listen(httpServer);
  const results = new Map();
  const one = (index) =>
    new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      let got = '';
      const done = () => {
        const end = got.indexOf('\r\n\r\n');
        const head = end >= 0 ? parseHead(got.slice(0, end)) : { status: 0, fields: [] };
        head.body = end >= 0 ? got.slice(end + 4) : '';
        results.set(index, head);
        socket.destroy();
        resolve();
      };
      socket.on('data', (data) => {
        got += data.toString('latin1');
        // A 101 ends with its head; a refusal with the connection, after the reason in its body.
        if (got.startsWith('HTTP/1.1 101 ') && got.includes('\r\n\r\n')) done();
      });
      socket.on('error', () => {});
      socket.on('close', () => { if (!results.has(index)) done(); });
      socket.write(Buffer.from(cases[index].server.request, 'hex'));
    });
  await runAll(items, one);
  httpServer.close();
  return results;
}

// Client cases: a raw server answers each connection with the case's response.
async function clientSide(items) {
  const rawServer = net.createServer((socket) => {
    let got = '';
    socket.on('error', () => {});
    socket.on('data', (data) => {
      got += data.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const target = got.slice(0, got.indexOf('\r\n')).split(' ')[1];
      const key = /\r\nsec-websocket-key: *([^\r]*)/i.exec(got)[1];
      const accept = createHash('sha1').update(key + GUID).digest('base64');
      const c = cases[Number(target.split('/')[2])].client;
      socket.write(Buffer.from(c.response, 'hex').toString('latin1').replaceAll('{accept}', accept), 'latin1');
    });
  });
  const port = await listen(rawServer);
  const results = new Map();
  const one = (index) =>
    new Promise((resolve) => {
      const c = cases[index].client;
      const ws = new WebSocket(`ws://127.0.0.1:${port}/c/${index}`, c.protocols, { perMessageDeflate: c.deflate });
      ws.on('open', () => {
        const pmd = ws._extensions['permessage-deflate'];
        results.set(index, { open: true, protocol: ws.protocol, deflate: pmd ? pmd.params : null });
        ws.terminate();
        resolve();
      });
      ws.on('error', (err) => {
        if (!results.has(index)) results.set(index, { open: false, error: err.message });
        resolve();
      });
    });
  await runAll(items, one);
  rawServer.close();
  return results;
}

// Runs `f` on every index, a few at a time.
async function runAll(items, f) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await f(items[next++]);
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

const indices = cases.map((_, i) => i);
const server = await serverSide(indices.filter((i) => cases[i].server));
const client = await clientSide(indices.filter((i) => cases[i].client));
const out = indices.map((i) => JSON.stringify(cases[i].server ? server.get(i) : client.get(i)));
process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
