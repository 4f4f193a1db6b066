// The `ws` package (npm) against the notifications example's rooms: one socket joins two topics (one from the
// start of what is retained), receives each topic's messages with topic and seq, leaves one, and gets errors for
// bad control messages; then a per-topic socket resumes with ?from=.
// Usage: node ws_rooms.mjs http://127.0.0.1:PORT [deflate]
// Prints one JSON line; exits 0 when every check passed.
import WebSocket from 'ws';

const base = process.argv[2];
const deflate = process.argv[3] === 'deflate';
const wsBase = base.replace(/^http/, 'ws');
const suffix = Date.now().toString(36);
const [a, b] = [`rooms-a-${suffix}`, `rooms-b-${suffix}`];
const result = { got: [], problems: [] };
const timer = setTimeout(() => { result.problems.push('timeout'); finish(); }, 15000);
const publish = async (topic, text) => (await (await fetch(`${base}/topics/${topic}`, { method: 'POST', body: text })).json()).seq;

await publish(a, 'a1');
const socket = new WebSocket(`${wsBase}/ws`, { perMessageDeflate: deflate });
const waiters = [];
socket.on('message', (data) => {
  const m = JSON.parse(data.toString());
  result.got.push(m);
  for (const w of waiters.splice(0)) w();
});
const until = async (pred) => { while (!pred()) await new Promise((r) => waiters.push(r)); };
const messages = (topic) => result.got.filter((m) => m.topic === topic && m.seq !== undefined && m.data !== undefined)
  .map((m) => `${m.seq}:${m.data}`);
socket.on('error', (e) => result.problems.push(String(e)));
await new Promise((r) => socket.on('open', r));

socket.send(JSON.stringify({ op: 'join', topic: a, from: 0 }));
socket.send(JSON.stringify({ op: 'join', topic: b }));
await until(() => result.got.filter((m) => m.op === 'joined').length === 2);
await publish(b, 'b1');
await publish(a, 'a2');
await until(() => messages(a).length === 2 && messages(b).length === 1);
socket.send(JSON.stringify({ op: 'leave', topic: a }));
await until(() => result.got.some((m) => m.op === 'left'));
await publish(a, 'a3');  // not for this socket any more
await publish(b, 'b2');
await until(() => messages(b).length === 2);
socket.send('{"op":"jump"}');
await until(() => result.got.some((m) => m.op === 'error'));
const expectA = ['1:a1', '2:a2'], expectB = ['1:b1', '2:b2'];
if (JSON.stringify(messages(a)) !== JSON.stringify(expectA)) result.problems.push('topic a differs');
if (JSON.stringify(messages(b)) !== JSON.stringify(expectB)) result.problems.push('topic b differs');
if (deflate && !String(socket.extensions).includes('permessage-deflate')) result.problems.push('no deflate');

// A socket per topic, resuming after seq 1.
const single = new WebSocket(`${wsBase}/topics/${a}/ws?from=1`, { perMessageDeflate: deflate });
const single_got = [];
single.on('message', (data) => { single_got.push(JSON.parse(data.toString())); for (const w of waiters.splice(0)) w(); });
await until(() => single_got.filter((m) => m.seq !== undefined && m.data !== undefined).length === 2);
const resumed = single_got.filter((m) => m.data !== undefined).map((m) => `${m.seq}:${m.data}`);
if (JSON.stringify(resumed) !== JSON.stringify(['2:a2', '3:a3'])) result.problems.push(`resume differs: ${resumed}`);
single.close(1000);
finish();

function finish() {
  clearTimeout(timer);
  socket.close(1000);
  console.log(JSON.stringify(result));
  process.exit(result.problems.length === 0 ? 0 : 1);
}
