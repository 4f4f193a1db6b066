#!/usr/bin/env bash
# sanitized-load.sh: the example servers built with AddressSanitizer + UndefinedBehaviorSanitizer, run with two
# event-loop threads under load: long polls timing out every second, SSE streams, WebSocket echo (plain and
# permessage-deflate) and broadcast, wrk, job submissions (tiny ones, waited-for ones, cancelled ones), PUBLISH to
# the RESP broker with subscribers, and the demo with all of its patterns loaded at once; clients killed mid-run
# (mass disconnects); and a SIGTERM drain while clients are still connected. On the demo it also checks, through
# /metrics, that clients polling and streaming made-up topics leave no topic behind in the broker. The unit tests run under the same
# sanitizers in CI; this covers what they do not reach: many connections on several threads going away at any
# moment, and a whole server's shutdown (it found a use of a destroyed io_context's services at exit, and
# WebSockets left undrained).
#
# Usage: scripts/sanitized-load.sh
# Builds build/asan-load (the asan preset with the examples and benchmark peers: hello, notifications,
# peer_ws_broadcast, jobs, demo, broker) and the load tools of the release preset; the broker is loaded with redis-benchmark
# and redis-cli subscribers (Debian's redis-tools) when they are installed. Every load is bounded in time; servers
# listen on free loopback ports; only processes started here are signalled, by their pid. Logs: build/asan-load/logs/.
# Exit status 0 when every server exited normally after its drain, cut no connection and reported nothing; 1
# otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=${JOBS:-$(nproc)}

# -O1, where the asan preset compiles its tests at -O0 for CI's build time: the servers here must keep up with load.
cmake --preset asan -B build/asan-load -DSWITCHBOARD_BUILD_EXAMPLES=ON -DSWITCHBOARD_BUILD_BENCHMARKS=ON \
  -DSWITCHBOARD_BUILD_TESTS=OFF "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -gline-tables-only" >/dev/null
cmake --build build/asan-load -j "$jobs" --target hello notifications peer_ws_broadcast broker jobs demo
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs" --target ws_load sse_load longpoll_load http_load

servers=build/asan-load/bin
tools=build/release/bin
logs=build/asan-load/logs
mkdir -p "$logs"
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
failures=0

server_pid=
# A load tool that fails stops the script (set -e): the server it was loading is stopped too.
trap '[[ -n "$server_pid" ]] && kill -TERM "$server_pid" 2>/dev/null; true' EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start NAME BINARY [ARGS...]: starts a server on a free port with two threads; sets $port and $server_pid.
start() {
  name=$1
  shift
  port=$(free_port)
  "$@" --port "$port" --threads 2 >"$logs/$name.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$logs/$name.log" && return 0
    sleep 0.1
  done
  echo "$name: did not start (see $logs/$name.log)"
  exit 1
}

# kill_after SECONDS COMMAND...: runs a load client, then kills it with SIGKILL after SECONDS (its connections
# vanish at once, mid-exchange).
kill_after() {
  local seconds=$1
  shift
  "$@" >/dev/null 2>&1 &
  local client=$!
  sleep "$seconds"
  kill -KILL "$client" 2>/dev/null || true
  wait "$client" 2>/dev/null || true
}

# end_clients PID...: kills load clients held open during a drain.
end_clients() {
  { kill -KILL "$@" && wait "$@"; } 2>/dev/null || true
}

# stop: SIGTERM while clients are connected, then checks the exit status, the drain report and the sanitizers.
stop() {
  kill -TERM "$server_pid"
  local status=0
  wait "$server_pid" || status=$?
  server_pid=
  local reports cut
  reports=$(grep -c "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error" "$logs/$name.log" || true)
  cut=$(sed -n 's/^drained \([0-9]*\) connection(s), cut \([0-9]*\)$/\2/p' "$logs/$name.log")
  local drained
  drained=$(grep "^drained" "$logs/$name.log" || echo "no drain report")
  echo "$name: exit $status, $drained, $reports sanitizer report(s)"
  if ((status != 0 || reports != 0)) || [[ "$cut" != 0 ]]; then failures=$((failures + 1)); fi
}

start notifications "$servers/notifications" --max-connections 20000
"$tools/longpoll_load" --port "$port" --connections 2000 --duration 6 --warmup 1 --poll-timeout 1 | grep SB_LOAD
kill_after 4 "$tools/longpoll_load" --port "$port" --connections 2000 --duration 20 --warmup 0
"$tools/sse_load" --port "$port" --connections 1000 --duration 5 --warmup 1 | grep SB_LOAD
kill_after 4 "$tools/sse_load" --port "$port" --connections 1000 --duration 20 --warmup 0
"$tools/longpoll_load" --port "$port" --connections 1000 --hold >/dev/null 2>&1 &
held_polls=$!
"$tools/sse_load" --port "$port" --connections 500 --hold >/dev/null 2>&1 &
held_streams=$!
sleep 4
stop
end_clients "$held_polls" "$held_streams"

# At most 150 connections per client address: of the 200 WebSockets killed mid-run, the 151st is refused (and
# ws_load then gives up, closing the rest); the 120 held during the drain keep their places until they close.
start hello "$servers/hello" --max-connections-per-address 150
"$tools/ws_load" --port "$port" --connections 50 --in-flight 16 --duration 5 --warmup 1 | grep SB_LOAD
"$tools/ws_load" --port "$port" --path /echo-deflate --connections 50 --in-flight 4 --duration 4 --warmup 1 |
  grep SB_LOAD
kill_after 4 "$tools/ws_load" --port "$port" --connections 200 --in-flight 16 --duration 20 --warmup 0
if command -v wrk >/dev/null; then
  wrk -t1 -c100 -d4s "http://127.0.0.1:$port/plaintext" | grep Requests/sec
  kill_after 3 wrk -t1 -c100 -d20s "http://127.0.0.1:$port/plaintext"
fi
"$tools/ws_load" --port "$port" --connections 120 --duration 20 --warmup 0 >/dev/null 2>&1 &
held_sockets=$!
sleep 4
stop
end_clients "$held_sockets"

start broadcast "$servers/peer_ws_broadcast"
"$tools/ws_load" --mode broadcast --port "$port" --connections 2000 --duration 5 --warmup 1 | grep SB_LOAD
kill_after 5 "$tools/ws_load" --mode broadcast --port "$port" --connections 2000 --duration 20 --warmup 0
"$tools/ws_load" --mode broadcast --port "$port" --connections 500 --duration 20 --warmup 0 >/dev/null 2>&1 &
held_sockets=$!
sleep 4
stop
end_clients "$held_sockets"

start jobs "$servers/jobs" --workers 2 --retention 1
small='{"kind": "primes", "limit": 1000}'
large='{"kind": "primes", "limit": 2000000}'
# Tiny jobs as fast as they come (a full queue answers 503, and past 16 unfinished jobs from this address the server
# answers 429: http_load then exits 1, which is expected here).
{ "$tools/http_load" --port "$port" --method POST --path /jobs --body "$small" --connections 16 --duration 4 \
    --warmup 0 || true; } | grep SB_LOAD
# The synchronous form, its clients killed while they wait for their jobs.
kill_after 3 "$tools/http_load" --port "$port" --method POST --path '/jobs?wait=10' --body "$large" --connections 8 \
  --duration 20 --warmup 0
# Jobs running, queued and waited for, and cancelled, during the drain.
"$tools/http_load" --port "$port" --method POST --path '/jobs?wait=30' --body "$large" --connections 6 \
  --duration 20 --warmup 0 >/dev/null 2>&1 &
held_jobs=$!
for _ in 1 2 3 4; do
  location=$(curl -s -D - -o /dev/null -X POST -d "$large" "http://127.0.0.1:$port/jobs" | tr -d '\r' |
    sed -n 's/^Location: //p')
  [[ -z $location ]] || curl -s -o /dev/null -X DELETE "http://127.0.0.1:$port$location"  # none after a 429
done
sleep 2
stop
end_clients "$held_jobs"

# The demo: every pattern at once on one runtime.
start demo "$servers/demo" --max-connections 20000 --max-connections-per-address 20000
base="http://127.0.0.1:$port"
topics() { curl -s "$base/metrics" | sed -n 's/^switchboard_pubsub_topics //p'; }
"$tools/ws_load" --port "$port" --path /echo --connections 50 --in-flight 4 --duration 5 --warmup 0 >/dev/null 2>&1 &
mixed=($!)
"$tools/sse_load" --port "$port" --connections 300 --duration 5 --warmup 0 >/dev/null 2>&1 &
mixed+=($!)
"$tools/longpoll_load" --port "$port" --subscribe-path /topics/polled/poll --publish-path /topics/polled \
  --connections 300 --duration 5 --warmup 0 --poll-timeout 1 >/dev/null 2>&1 &
mixed+=($!)
{ "$tools/http_load" --port "$port" --method POST --path /jobs --body "$small" --connections 4 --duration 5 \
    --warmup 0 || true; } >/dev/null 2>&1 &
mixed+=($!)
# The users resource: one user, then the same email again and again (409), while wrk reads the list.
curl -s -o /dev/null -d '{"name": "a", "email": "a@example.com"}' "$base/users"
{ "$tools/http_load" --port "$port" --method POST --path /users --body '{"name": "b", "email": "a@example.com"}' \
    --connections 4 --duration 5 --warmup 0 || true; } >/dev/null 2>&1 &
mixed+=($!)
if command -v wrk >/dev/null; then
  wrk -t1 -c50 -d5s "$base/users?limit=10" >/dev/null &
  mixed+=($!)
fi
wait "${mixed[@]}"
# Clients that poll or stream topics nobody publishes to, then leave: the broker must forget those topics.
# (The streams' disconnects reach the server a moment after curl ends: the count is read until it is back, for at
# most 10 s.)
before=$(topics)
clients=()
for i in $(seq 100); do
  curl -s -o /dev/null "$base/topics/made-up-$i/poll?timeout=0.2" &
  clients+=($!)
done
for i in $(seq 50); do
  curl -s -o /dev/null -m 0.5 "$base/topics/made-up-stream-$i/events" &
  clients+=($!)
done
wait "${clients[@]}" || true  # the streams end by curl's timeout
for _ in $(seq 100); do
  after=$(topics)
  [[ "$after" == "$before" ]] && break
  sleep 0.1
done
echo "demo: broker topics $before before 150 clients of made-up topics, $after after"
if [[ -z "$before" || "$before" != "$after" ]]; then failures=$((failures + 1)); fi
"$tools/sse_load" --port "$port" --connections 200 --hold >/dev/null 2>&1 &
held_streams=$!
sleep 2
stop
end_clients "$held_streams"

if command -v redis-benchmark >/dev/null && command -v redis-cli >/dev/null; then
  start broker "$servers/broker"
  subscribers=()
  for _ in 1 2 3 4 5; do
    redis-cli -p "$port" SUBSCRIBE bench >/dev/null 2>&1 &
    subscribers+=($!)
  done
  redis-cli -p "$port" PSUBSCRIBE 'ben*' >/dev/null 2>&1 &
  subscribers+=($!)
  sleep 1
  redis-benchmark -p "$port" -c 50 -n 200000 -P 16 -q PUBLISH bench hello | tr '\r' '\n' |
    grep 'requests per second' || true
  kill_after 3 redis-benchmark -p "$port" -c 50 -n 100000000 -q PUBLISH bench hello
  end_clients "${subscribers[0]}" "${subscribers[1]}"  # two subscribers vanish
  redis-benchmark -p "$port" -c 20 -n 50000 -q -t ping | tr '\r' '\n' | grep 'requests per second' || true
  stop
  end_clients "${subscribers[@]:2}"
fi

if ((failures > 0)); then
  echo "sanitized-load: $failures server(s) failed (logs in $logs)"
  exit 1
fi
echo "sanitized-load: every server drained cleanly, no sanitizer report"
