// The `eventsource-parser` package (npm; what the `eventsource` package parses with) over event streams given as
// bytes already cut into chunks: the other side of tests/conformance/sse_parser_differential.cpp.
// Usage: node sse_parse.mjs < streams.jsonl
// Input: one stream a line, {"chunks": ["<hex>", ...]}; each chunk is decoded with one streaming TextDecoder per
// stream (WHATWG UTF-8 decode: strips one leading BOM, replaces ill-formed bytes with U+FFFD), as the
// `eventsource` package does, and fed to one parser per stream.
// Output: one JSON line for each callback, in the order they came, then one to end each stream:
//   {"stream": N, "kind": "event", "event": "<type>" | null, "data": "...", "id": "..." | null}
//   {"stream": N, "kind": "retry", "retry": <milliseconds>}
//   {"stream": N, "kind": "comment", "comment": "..."}
//   {"stream": N, "kind": "end"}
import { createParser } from 'eventsource-parser';
import { readFileSync } from 'node:fs';

const lines = readFileSync(0, 'utf8').split('\n').filter((line) => line !== '');
const out = [];
lines.forEach((line, stream) => {
  const { chunks } = JSON.parse(line);
  const parser = createParser({
    onEvent: (e) => out.push({ stream, kind: 'event', event: e.event ?? null, data: e.data, id: e.id ?? null }),
    onRetry: (retry) => out.push({ stream, kind: 'retry', retry }),
    onComment: (comment) => out.push({ stream, kind: 'comment', comment }),
  });
  const decoder = new TextDecoder();
  for (const hex of chunks) parser.feed(decoder.decode(Buffer.from(hex, 'hex'), { stream: true }));
  const rest = decoder.decode();  // an ill-formed sequence cut by the end of the stream
  if (rest !== '') parser.feed(rest);
  out.push({ stream, kind: 'end' });
});
process.stdout.write(out.map((record) => JSON.stringify(record)).join('\n') + '\n');
