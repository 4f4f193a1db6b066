// The receiving side of the `ws` package (its `Receiver`, the frame parser inside every `ws` WebSocket) over
// frame streams already cut into chunks: the other side of tests/conformance/ws_frame_differential.cpp.
// Usage: node ws_frames.mjs < streams.jsonl
// Input: one stream a line, {"chunks": ["<hex>", ...], "server": true, "max": N, "deflate": false}: a Receiver in
// server mode (expects masked frames) or client mode, with `maxPayload` N and, if `deflate`, permessage-deflate
// agreed with no parameters (context takeover, 15-bit windows), is fed the chunks in order through its `_write`,
// each once the previous one is done (inflating is asynchronous), until it reports an error or a close frame.
// Output: one JSON line per stream, in order: {"events": [...]}, each event one of
//   {"k": "message", "t": "text" | "binary", "d": "<hex>", "at": N}
//   {"k": "ping" | "pong", "d": "<hex>", "at": N}
//   {"k": "close", "code": N, "d": "<hex>", "at": N}        // 'conclude': code 1005 when the payload was empty
//   {"k": "error", "code": N, "name": "WS_ERR_...", "at": N} // N: the close code ws would send
// where `at` is the offset in the stream of the first byte the Receiver had not consumed when it reported it.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const { Receiver } = require('ws');
// Not exported by the package; required by its path, which `exports` does not restrict.
const PerMessageDeflate = require(join(dirname(require.resolve('ws')), 'lib', 'permessage-deflate.js'));

const lines = readFileSync(0, 'utf8').split('\n').filter((line) => line !== '');
const out = [];
for (const line of lines) {
  const { chunks, server, max, deflate = false } = JSON.parse(line);
  const events = [];
  const extensions = {};
  if (deflate) {
    const pmd = new PerMessageDeflate({}, server, max);
    pmd.accept([{}]);
    extensions[PerMessageDeflate.extensionName] = pmd;
  }
  const receiver = new Receiver({ isServer: server, maxPayload: max, extensions });
  let written = 0;
  const at = () => written - receiver._bufferedBytes;
  let stopped = false;
  receiver.on('message', (data, isBinary) => {
    events.push({ k: 'message', t: isBinary ? 'binary' : 'text', d: Buffer.from(data).toString('hex'), at: at() });
  });
  receiver.on('ping', (data) => events.push({ k: 'ping', d: data.toString('hex'), at: at() }));
  receiver.on('pong', (data) => events.push({ k: 'pong', d: data.toString('hex'), at: at() }));
  receiver.on('conclude', (code, reason) => {
    events.push({ k: 'close', code, d: Buffer.from(reason).toString('hex'), at: at() });
    stopped = true;
  });
  receiver.on('error', () => {});  // `end()` after a close may emit; the outcome is recorded from the callbacks
  for (const h of chunks) {
    if (stopped) break;
    const data = Buffer.from(h, 'hex');
    written += data.length;
    await new Promise((resolve) => {
      receiver._write(data, 'buffer', (err) => {
        if (err && !stopped) {
          const symbol = Object.getOwnPropertySymbols(err).find((s) => s.description === 'status-code');
          events.push({ k: 'error', code: err[symbol], name: err.code, at: at() });
          stopped = true;
        }
        resolve();
      });
      if (stopped) resolve();  // a close frame: ws takes nothing more
    });
  }
  if (deflate) extensions[PerMessageDeflate.extensionName].cleanup();
  out.push(JSON.stringify({ events }));
}
process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
