// The `eventsource` package (npm) against the notifications example: it reads a topic's events, the server ends
// the stream (--stream-max-age), and it reconnects by itself with Last-Event-ID, resuming without loss or repeat;
// a message published while it is away arrives after the reconnection.
// Usage: node sse_resume.mjs http://127.0.0.1:PORT TOPIC
// Prints one JSON line; exits 0 when every check passed.
import { EventSource } from 'eventsource';

const [base, topic] = process.argv.slice(2);
const result = { events: [], opens: 0, errors: 0, problems: [] };
const timer = setTimeout(() => { result.problems.push('timeout'); finish(); }, 20000);
const publish = async (text) => {
  const r = await fetch(`${base}/topics/${topic}`, { method: 'POST', body: text });
  return (await r.json()).seq;
};

await publish('one');
await publish('two');
let awayPublished = false;
const es = new EventSource(`${base}/topics/${topic}/events?lastEventId=0`);
es.onopen = async () => {
  result.opens++;
  if (result.opens === 2) await publish('four');
};
es.onerror = async () => {
  result.errors++;
  // The server ended the stream: publish while the client waits to reconnect (the server's retry is 1 s).
  if (!awayPublished && result.events.length >= 2) {
    awayPublished = true;
    await publish('three');
  }
};
es.onmessage = (e) => {
  result.events.push(`${e.lastEventId}:${e.data}`);
  if (result.events.length >= 4) finish();
};

function finish() {
  clearTimeout(timer);
  es.close();
  const expected = ['1:one', '2:two', '3:three', '4:four'];
  if (JSON.stringify(result.events) !== JSON.stringify(expected)) result.problems.push('events differ');
  if (result.opens < 2) result.problems.push('never reconnected');
  console.log(JSON.stringify(result));
  process.exit(result.problems.length === 0 ? 0 : 1);
}
