// llhttp, the HTTP/1.1 parser inside Node.js, in its strict (default) mode, over byte streams already cut into
// chunks: the other side of tests/conformance/http_parser_differential.cpp. It uses Node's own binding of the
// parser (`HTTPParser` of the internal module `_http_common`), so no server and no npm package is involved.
// Usage: node http_parse.mjs request|response < streams.jsonl
// Input: one stream a line, {"chunks": ["<hex>", ...], "head": [bool, ...]}: the chunks are fed in order to one
// parser per stream, then the end of the stream (`finish`). For responses, `head` says for each message whether
// it answers a HEAD request (no body, whatever its fields say).
// Output: first {"methods": [...]}, the methods llhttp knows (it rejects any other), then one JSON line per stream,
// in order:
//   {"messages": [{"method": "GET", "target": "<hex>", "major": 1, "minor": 1, "fields": [["<hex>", "<hex>"], ...],
//                  "status": 200, "reason": "<hex>", "body": "<hex>", "trailers": [...], "upgrade": false,
//                  "keep_alive": true}, ...],
//    "begun": false,             // a message was begun and not completed when the stream stopped
//    "error": "HPE_..." | null,  // the error that stopped the stream, if any
//    "reason": "...",            // llhttp's words for it
//    "at": N,                    // the offset in the stream where the error was found
//    "upgraded": false,          // parsing stopped after a message that switches protocols (or CONNECT)
//    "eof": "HPE_..." | null}    // the error `finish` gave at the end of the stream (a message cut short)
// Strings are hex, since llhttp hands out field values and targets as Latin-1 (one char per byte). Where Node's
// binding hides llhttp's error (in a message that asks to upgrade), the code is HPE_HIDDEN_BY_UPGRADE.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const { HTTPParser, methods } = require('_http_common');

// The binding reports llhttp's method number, and `methods` lists the names of HTTP_METHOD_MAP in order, which
// skips the RTSP methods (34 to 45): QUERY, the last, is number 46.
const methodName = (n) => (n < 34 ? methods[n] : n === 46 ? 'QUERY' : `#${n}`);
const kind = process.argv[2] === 'response' ? HTTPParser.RESPONSE : HTTPParser.REQUEST;
const hex = (s) => Buffer.from(s, 'latin1').toString('hex');
const pairs = (flat) => {
  const out = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([hex(flat[i]), hex(flat[i + 1])]);
  return out;
};

const lines = readFileSync(0, 'utf8').split('\n').filter((line) => line !== '');
const out = [JSON.stringify({ methods })];
for (const line of lines) {
  const { chunks, head = [] } = JSON.parse(line);
  const result = { messages: [], begun: false, error: null, reason: '', at: 0, upgraded: false, eof: null };
  let message = null;     // the message whose header section is complete, until it completes
  let headers = [];       // field lines flushed before the header section completed (Node flushes every 32)
  let target = '';
  const parser = new HTTPParser();
  // Strict: no lenient flags (what `insecureHTTPParser: false`, Node's default, gives). Header size: 16 KiB as
  // ours (`parser_limits::max_header_bytes`).
  parser.initialize(kind, {}, 16 * 1024, HTTPParser.kLenientNone);
  parser[HTTPParser.kOnMessageBegin] = () => { result.begun = true; };
  parser[HTTPParser.kOnHeaders] = (fields, url) => {
    if (message) {
      message.trailers.push(...pairs(fields));
    } else {
      headers.push(...pairs(fields));
      target += url ?? '';
    }
  };
  parser[HTTPParser.kOnHeadersComplete] = (major, minor, fields, method, url, status, reason, upgrade, keepAlive) => {
    if (fields) headers.push(...pairs(fields));
    message = {
      method: kind === HTTPParser.REQUEST ? methodName(method) : null,
      target: hex(target + (url ?? '')),
      major, minor, fields: headers, status: status ?? 0, reason: hex(reason ?? ''),
      body: [], trailers: [], upgrade: Boolean(upgrade), keep_alive: Boolean(keepAlive),
    };
    headers = [];
    target = '';
    // For a response to HEAD: 1 tells llhttp that no body follows.
    return kind === HTTPParser.RESPONSE && head[result.messages.length] ? 1 : 0;
  };
  parser[HTTPParser.kOnBody] = (b) => { message.body.push(Buffer.from(b).toString('hex')); };
  parser[HTTPParser.kOnMessageComplete] = () => {
    message.body = message.body.join('');
    result.messages.push(message);
    message = null;
    result.begun = false;
  };
  let offset = 0;
  for (const h of chunks) {
    const data = Buffer.from(h, 'hex');
    const r = parser.execute(data);
    if (r instanceof Error) {
      if (r.code === 'HPE_PAUSED_UPGRADE') {
        result.upgraded = true;
      } else {
        result.error = r.code;
        result.reason = r.reason ?? '';
        result.at = offset + (r.bytesParsed ?? 0);
      }
      break;
    }
    if (r < data.length) {
      if (message) {
        // Once a request asks to upgrade, Node's binding hides llhttp's errors: it returns the bytes parsed before
        // the error, as if the upgrade began there. The message is not complete, so it was an error.
        result.error = 'HPE_HIDDEN_BY_UPGRADE';
        result.reason = 'an error in the body of a request that asks to upgrade (Node hides its code)';
        result.at = offset + r;
      } else {
        result.upgraded = true;  // the bytes after a message that upgrades (or CONNECT) are not HTTP
      }
      break;
    }
    offset += data.length;
  }
  if (!result.error && !result.upgraded) {
    const r = parser.finish();
    if (r instanceof Error) result.eof = r.code;
    // Node's binding hides this error too once the request asks to upgrade: a message whose body is cut short.
    else if (message) result.eof = 'HPE_HIDDEN_BY_UPGRADE';
  }
  if (message) result.begun = true;
  parser.close?.();
  out.push(JSON.stringify(result));
}
process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
