// Headless Chromium (Debian's `chromium`) loading the notifications page in selftest mode: a WebSocket, a rooms
// WebSocket, an EventSource and conditional polling receive the same events, and the EventSource resumes after
// the server ends its stream (start the server with --stream-max-age). Driven over the DevTools protocol on a
// pipe (--remote-debugging-pipe: requests on fd 3, replies on fd 4, each a JSON text ended by NUL), so that no
// npm package is needed.
// Usage: node chromium_page.mjs http://127.0.0.1:PORT TOPIC PROFILE_DIR
// Prints the page's result; exits 0 when the page reports "selftest:ok".
import { spawn } from 'node:child_process';

const [base, topic, profile] = process.argv.slice(2);
const browser = spawn('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--remote-debugging-pipe', `--user-data-dir=${profile}`, 'about:blank'],
  { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let stderr = '';
browser.stderr.on('data', (d) => { stderr += d; });
const deadline = setTimeout(() => done(1, 'timeout'), 45000);

let next = 1, buffer = '';
const pending = new Map();
browser.stdio[4].on('data', (chunk) => {
  buffer += chunk.toString();
  let end;
  while ((end = buffer.indexOf('\0')) >= 0) {
    const message = JSON.parse(buffer.slice(0, end));
    buffer = buffer.slice(end + 1);
    if (message.id && pending.has(message.id)) {
      pending.get(message.id)(message);
      pending.delete(message.id);
    }
  }
});
function send(method, params = {}, sessionId = undefined) {
  const id = next++;
  browser.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + '\0');
  return new Promise((resolve) => pending.set(id, resolve));
}

const created = await send('Target.createTarget', { url: `${base}/?topic=${encodeURIComponent(topic)}&selftest=1` });
if (!created.result) done(1, 'createTarget failed: ' + JSON.stringify(created));
const attached = await send('Target.attachToTarget', { targetId: created.result.targetId, flatten: true });
const session = attached.result.sessionId;
const evaluate = async (expression) =>
  (await send('Runtime.evaluate', { expression, returnByValue: true }, session)).result?.result?.value;
for (;;) {
  const title = await evaluate('document.title');
  if (typeof title === 'string' && title.startsWith('selftest:')) {
    const result = await evaluate("document.getElementById('result').textContent");
    done(title === 'selftest:ok' ? 0 : 1, `${title} ${result}`);
    break;
  }
  await new Promise((r) => setTimeout(r, 200));
}

function done(code, text) {
  clearTimeout(deadline);
  console.log(text);
  if (code !== 0) console.log(stderr.slice(-2000));
  browser.kill('SIGKILL');
  process.exit(code);
}
