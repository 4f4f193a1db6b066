// The page the `notifications` example serves at `/`: one topic received four ways side by side (a WebSocket on
// the topic, a rooms WebSocket, an EventSource, and conditional polling of /latest), with a form to publish.
// `/?topic=T&selftest=1` publishes by itself and reports in `document.title` ("selftest:ok" or
// "selftest:fail:<why>") and in #result whether every transport saw the same events, and whether the EventSource
// resumed without loss after the server ended its stream (start the server with --stream-max-age for that).
#pragma once

#include <string_view>

namespace examples::notifications {

inline constexpr std::string_view page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>switchboard notifications</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; }
  .cols { display: grid; grid-template-columns: repeat(4, 1fr); gap: 1em; }
  .col { border: 1px solid #ccc; border-radius: 6px; padding: 0.5em; min-height: 10em; }
  .col h2 { font-size: 1em; margin: 0 0 0.5em; }
  ol { margin: 0; padding-left: 1.5em; font-family: monospace; }
  .status { color: #666; font-size: 0.9em; }
</style>
</head>
<body>
<h1>Notifications</h1>
<p>Topic <code id="topic"></code>: publish a message and watch each transport receive the same events, numbered by
the topic's sequence numbers.</p>
<form id="publish"><input id="text" placeholder="message" autocomplete="off"> <button>Publish</button>
  <span class="status" id="published"></span></form>
<div class="cols">
  <div class="col"><h2>WebSocket <code>/topics/T/ws</code></h2><div class="status" id="ws-status">connecting</div><ol id="ws"></ol></div>
  <div class="col"><h2>Rooms <code>/ws</code></h2><div class="status" id="rooms-status">connecting</div><ol id="rooms"></ol></div>
  <div class="col"><h2>EventSource <code>/topics/T/events</code></h2><div class="status" id="es-status">connecting</div><ol id="es"></ol></div>
  <div class="col"><h2>Polling <code>/topics/T/latest</code></h2><div class="status" id="poll-status">polling</div><ol id="poll"></ol></div>
</div>
<pre id="result"></pre>
<script>
const params = new URLSearchParams(location.search);
const topic = params.get('topic') || 'demo';
const selftest = params.has('selftest');
const base = location.origin.replace(/^http/, 'ws');
const path = '/topics/' + encodeURIComponent(topic);
document.getElementById('topic').textContent = topic;
const seen = { ws: [], rooms: [], es: [], poll: [] };
let esOpens = 0, esErrors = 0, pollNotModified = 0;

function show(list, seq, data) {
  seen[list].push(seq + ':' + data);
  const li = document.createElement('li');
  li.value = seq;
  li.textContent = data;
  document.getElementById(list).appendChild(li);
  check();
}
function status(list, text) { document.getElementById(list + '-status').textContent = text; }

// A WebSocket on the topic, from the start of what is retained.
const ws = new WebSocket(base + path + '/ws?from=0');
ws.onopen = () => { status('ws', 'open'); start(); };
ws.onclose = (e) => status('ws', 'closed ' + e.code);
ws.onmessage = (e) => { const m = JSON.parse(e.data); if (m.op === undefined && m.seq !== undefined) show('ws', m.seq, m.data); };

// Rooms: one socket, topics joined with control messages.
const rooms = new WebSocket(base + '/ws');
rooms.onopen = () => { rooms.send(JSON.stringify({ op: 'join', topic, from: 0 })); };
rooms.onclose = (e) => status('rooms', 'closed ' + e.code);
rooms.onmessage = (e) => {
  const m = JSON.parse(e.data);
  if (m.op === 'joined') { status('rooms', 'joined at seq ' + m.seq); start(); }
  else if (m.op === undefined && m.seq !== undefined && m.topic === topic) show('rooms', m.seq, m.data);
};

// EventSource: resumes by itself after a cut, sending Last-Event-ID.
const es = new EventSource(path + '/events?lastEventId=0');
es.onopen = () => { ++esOpens; status('es', 'open (' + esOpens + ')'); start(); };
es.onerror = () => { ++esErrors; status('es', 'reconnecting'); if (selftest) resumeStep(); };
es.onmessage = (e) => show('es', Number(e.lastEventId), e.data);
es.addEventListener('gap', (e) => status('es', 'gap ' + e.data));

// Conditional polling: a 304 costs no body until something is published.
let etag = null;
async function poll() {
  try {
    const r = await fetch(path + '/latest', { cache: 'no-store', headers: etag ? { 'If-None-Match': etag } : {} });
    if (r.status === 304) { ++pollNotModified; status('poll', '304 x' + pollNotModified); }
    else if (r.status === 200) {
      etag = r.headers.get('ETag');
      show('poll', Number(r.headers.get('X-Sequence')), await r.text());
    } else if (r.status === 204) { etag = r.headers.get('ETag'); status('poll', 'nothing yet'); }
  } catch (e) { status('poll', 'error'); }
  setTimeout(poll, selftest ? 200 : 1000);
}
poll();

async function publish(text) {
  const r = await fetch(path, { method: 'POST', body: text, headers: { 'Content-Type': 'text/plain' } });
  const j = await r.json();
  document.getElementById('published').textContent = 'published seq ' + j.seq;
  return j.seq;
}
document.getElementById('publish').onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById('text');
  if (input.value) publish(input.value);
  input.value = '';
};

// --- selftest: publish three, check every transport; after the server ends the stream, publish a fourth while
// the EventSource is away and check that it resumes without loss or repeat.
let started = false, resumed = false;
const expected = ['1:one', '2:two', '3:three', '4:four'];
async function start() {
  if (!selftest || started || ws.readyState !== 1 || esOpens === 0 || !document.getElementById('rooms-status').textContent.startsWith('joined')) return;
  started = true;
  for (const text of ['one', 'two', 'three']) await publish(text);
}
async function resumeStep() {
  if (resumed || seen.es.length < 3) return;
  resumed = true;
  await publish('four');
}
function same(a, n) { return JSON.stringify(a) === JSON.stringify(expected.slice(0, n)); }
function check() {
  if (!selftest) return;
  const pollOk = seen.poll.length > 0 && seen.poll[seen.poll.length - 1] === expected[3];
  if (same(seen.ws, 4) && same(seen.rooms, 4) && same(seen.es, 4) && pollOk && esOpens >= 2) finish('ok');
  else if (seen.ws.length > 4 || seen.es.length > 4 || seen.rooms.length > 4) finish('fail:too many events');
}
function finish(outcome) {
  const result = { outcome, seen, esOpens, esErrors, pollNotModified };
  document.getElementById('result').textContent = JSON.stringify(result);
  document.title = 'selftest:' + outcome;
  window.selftestResult = result;
}
</script>
</body>
</html>
)html";

}  // namespace examples::notifications
