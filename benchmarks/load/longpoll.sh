#!/usr/bin/env bash
# longpoll.sh: switchboard's long polling (examples/notifications, GET /topics/{topic}/poll) side by side with
# Nchan's longpoll subscriber, under the same load client (bin/longpoll_load), in one run, interleaved. See
# benchmarks/load/README.md for how to read the output.
#
# Servers (lib/servers.sh has the details); both publish with `POST /topics/{topic}`:
#   switchboard   bin/notifications --threads 1 (examples/notifications): `GET /topics/{topic}/poll?cursor=N&
#                 timeout=S` answers a JSON batch of the messages after cursor N (longpoll_load --protocol
#                 switchboard); skipped, with the reason, while that example is not built
#   nchan         nginx with Debian's libnginx-mod-nchan, one worker, peers/nchan.conf.in: `GET
#                 /topics/{topic}/poll` (nchan_subscriber longpoll) answers one message, and the next poll
#                 continues after it with If-Modified-Since and If-None-Match (longpoll_load --protocol nchan)
#
# Scenarios: pN: N pollers on one topic, each with one poll parked on its own keep-alive connection, and one
# publisher, one publish of a 64-byte message at a time (the next when every poller got it): deliveries per
# second and publish-to-receive latency; every answer is followed at once by the poller's next poll. The
# pollers come from many loopback addresses, 32 each (switchboard parks at most 64 polls per client address by
# default). Every scenario starts each server fresh, pinned to one CPU, with longpoll_load (one thread) pinned to
# another; each round measures every server once, in an order that rotates from round to round. Per run:
# deliveries/s, p50/p99, the server's CPU time per delivery and CPU use, longpoll_load's CPU use, and what
# anything else ran on those two CPUs. At the end the medians with their ratios to Nchan, as CSV and JSON under
# the results directory; then the memory per parked poll of each server (memory.sh --longpoll
# /topics/bench/poll: longpoll_load --hold). The machinery is lib/push.sh's, shared with ws.sh and sse.sh.
#
# Usage: benchmarks/load/longpoll.sh [options]
#   --rounds N              rounds per scenario (default 3)
#   --duration S            measured seconds per run (default 5)
#   --warmup S              unmeasured seconds of load before each run's window (default 1)
#   --scenarios LIST        comma-separated pN (default p1000,p10000)
#   --servers LIST          comma-separated among switchboard, nchan (default both; one that is not built or
#                           installed is skipped with the reason)
#   --size BYTES            message size (default 64)
#   --server-cpu N          CPU the servers are pinned to (default: the first this script may use)
#   --client-cpu N          CPU longpoll_load is pinned to (default: the second)
#   --bin-dir DIR           where notifications, longpoll_load and sse_load are (default build/release/bin)
#   --results-dir DIR       where the CSV, JSON and logs go (default benchmarks/load/results)
#   --memory-connections N  parked polls per server for the memory figures (default 10000)
#   --no-memory             skip the memory figures
#   -h, --help              this help
#
# Exit status: 0 when every run of every server that could start completed without errors, 1 otherwise (a
# server that did not start or failed its check, a run with errors or lost deliveries, or no server at all),
# 2 for a usage error.
set -euo pipefail

command_line="$0${*:+ $*}"
load_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/cli.sh
source "$load_dir/lib/cli.sh"
root_dir=$(cd "$load_dir/../.." && pwd)

PUSH_BENCH=longpoll
PUSH_TOOL=longpoll_load
PUSH_BASES="nchan"
PUSH_SCENARIO_RE='^p[1-9][0-9]*$'
PUSH_MEMORY_FLAGS="--longpoll /topics/bench/poll"
# shellcheck source-path=SCRIPTDIR source=lib/push.sh
source "$load_dir/lib/push.sh"
scenarios=p1000,p10000
families=switchboard,nchan

while (( $# > 0 )); do
  if push_parse_common "$1" "${2:-}"; then shift "$PUSH_SHIFT"; continue; fi
  usage_error "unknown option '$1'"
done
push_split_lists switchboard nchan

# push_server_name FAMILY KIND: the lib/servers.sh server of FAMILY.
push_server_name() { [[ $1 == switchboard ]] && echo notifications || echo "$1"; }

# push_scenario SCENARIO KIND: pN, N pollers.
push_scenario() {
  [[ $1 =~ ^p([0-9]+)$ ]] || return 1
  PUSH_CONNECTIONS=${BASH_REMATCH[1]}
  PUSH_DEPTH=1
  PUSH_DESCRIPTION="$PUSH_CONNECTIONS parked pollers on one topic and one publish at a time: deliveries"
}

# push_check_server FAMILY NAME: a message POSTed to the server reaches a long poll of the topic unchanged
# (lib/servers.sh has checked its event stream only).
push_check_server() {
  local check
  check=$(timeout 10 "$bin_dir/longpoll_load" --check --protocol "$1" --host "$SB_BIND" \
            --port "${SB_PORT[$2]}" 2>&1) || {
    echo "$2: the long-poll check failed: $check" >&2; return 1; }
}

# push_client_command KIND PORT PID FAMILY: a longpoll_load run of the current scenario.
push_client_command() {
  PUSH_COMMAND=("$bin_dir/longpoll_load" --protocol "$4" --port "$2" --connections "$PUSH_CONNECTIONS"
                --size "$size" --duration "$duration" --warmup "$warmup" --measure-pids "$3")
}

echo "switchboard long-polling load benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
push_prepare
push_run_kind broadcast
push_report "\"nginx\": $(sb_json_string "$( [[ -n $(sb_nginx_binary) ]] && "$(sb_nginx_binary)" -v 2>&1 )"), \"nchan\": $(sb_json_string "$(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || true)")"
push_memory broadcast
push_finish
