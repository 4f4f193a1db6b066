// The `ws` package's client against a switchboard WebSocket echo endpoint.
// Usage: node ws_client.mjs ws://127.0.0.1:PORT/echo
// Prints one JSON line with what happened; exits 0 when every check passed.
import WebSocket from 'ws';

const url = process.argv[2];
const result = { texts: 0, binaries: 0, pong: false, closeCode: null, errors: [] };
const texts = ['hello', 'héllo wörld ✓', 'x'.repeat(70000)];
const binary = Buffer.from([0, 1, 2, 255, 254, 253]);
const timer = setTimeout(() => { result.errors.push('timeout'); finish(); }, 10000);

const socket = new WebSocket(url, { perMessageDeflate: process.argv[3] === 'deflate' });
socket.on('open', () => {
  for (const t of texts) socket.send(t);
  socket.send(binary);
  socket.ping('probe');
});
let received = 0;
socket.on('message', (data, isBinary) => {
  if (isBinary) {
    if (Buffer.compare(data, binary) === 0) result.binaries++;
    else result.errors.push('binary mismatch');
  } else {
    const expected = texts[result.texts];
    if (data.toString() === expected) result.texts++;
    else result.errors.push(`text mismatch at ${result.texts}`);
  }
  if (++received === texts.length + 1) socket.close(1000, 'done');
});
socket.on('pong', (data) => { result.pong = data.toString() === 'probe'; });
socket.on('close', (code) => { result.closeCode = code; finish(); });
socket.on('error', (e) => { result.errors.push(String(e)); });
socket.on('unexpected-response', (req, res) => { result.errors.push(`HTTP ${res.statusCode}`); finish(); });

function finish() {
  clearTimeout(timer);
  result.extensions = socket.extensions || '';
  console.log(JSON.stringify(result));
  const wantDeflate = process.argv[3] === 'deflate';
  const ok = result.errors.length === 0 && result.texts === texts.length && result.binaries === 1 && result.pong &&
             result.closeCode === 1000 && (!wantDeflate || String(result.extensions).includes('permessage-deflate'));
  process.exit(ok ? 0 : 1);
}
