#!/usr/bin/env bash
# sse.sh: switchboard's Server-Sent Events (examples/notifications) side by side with Nchan, under the same
# load client (bin/sse_load), in one run, interleaved. See benchmarks/load/README.md for how to read the output.
#
# Servers (lib/servers.sh has the details); both have the interface of examples/notifications:
# `POST /topics/{topic}` publishes the body, `GET /topics/{topic}/events` streams the topic as SSE.
#   switchboard   bin/notifications --threads 1 (examples/notifications); skipped, with the reason, while
#                 that example is not built
#   nchan         nginx with Debian's libnginx-mod-nchan, one worker, peers/nchan.conf.in (an eventsource
#                 subscriber location and a publisher location)
#
# Scenarios: sN: N subscribers on one topic and one publisher, one publish of a 64-byte message at a time
# (the next when every subscriber got it): deliveries per second and publish-to-receive latency. Every
# scenario starts each server fresh, pinned to one CPU, with sse_load (one thread) pinned to another; each
# round measures every server once, in an order that rotates from round to round. Per run: deliveries/s,
# p50/p99, the server's CPU time per delivery and CPU use, sse_load's CPU use, and what anything else ran on
# those two CPUs. At the end the medians with their ratios to Nchan, as CSV and JSON under the results
# directory; then the memory per idle subscriber of each server (memory.sh --sse /topics/bench/events). The
# machinery is lib/push.sh's, shared with ws.sh.
#
# Usage: benchmarks/load/sse.sh [options]
#   --rounds N              rounds per scenario (default 3)
#   --duration S            measured seconds per run (default 5)
#   --warmup S              unmeasured seconds of load before each run's window (default 1)
#   --scenarios LIST        comma-separated sN (default s100,s1000)
#   --servers LIST          comma-separated among switchboard, nchan (default both; one that is not built or
#                           installed is skipped with the reason)
#   --size BYTES            message size (default 64)
#   --server-cpu N          CPU the servers are pinned to (default: the first this script may use)
#   --client-cpu N          CPU sse_load is pinned to (default: the second)
#   --bin-dir DIR           where notifications, sse_load and idle_connections are (default build/release/bin)
#   --results-dir DIR       where the CSV, JSON and logs go (default benchmarks/load/results)
#   --memory-connections N  idle subscribers per server for the memory figures (default 1000)
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

PUSH_BENCH=sse
PUSH_TOOL=sse_load
PUSH_BASES="nchan"
PUSH_SCENARIO_RE='^s[1-9][0-9]*$'
PUSH_MEMORY_FLAGS="--sse /topics/bench/events"
# shellcheck source-path=SCRIPTDIR source=lib/push.sh
source "$load_dir/lib/push.sh"
scenarios=s100,s1000
families=switchboard,nchan
memory_connections=1000

while (( $# > 0 )); do
  if push_parse_common "$1" "${2:-}"; then shift "$PUSH_SHIFT"; continue; fi
  usage_error "unknown option '$1'"
done
push_split_lists switchboard nchan

# push_server_name FAMILY KIND: the lib/servers.sh server of FAMILY.
push_server_name() { [[ $1 == switchboard ]] && echo notifications || echo "$1"; }

# push_scenario SCENARIO KIND: sN, N subscribers.
push_scenario() {
  [[ $1 =~ ^s([0-9]+)$ ]] || return 1
  PUSH_CONNECTIONS=${BASH_REMATCH[1]}
  PUSH_DEPTH=1
  PUSH_DESCRIPTION="$PUSH_CONNECTIONS subscribers on one topic and one publish at a time: deliveries"
}

# push_client_command KIND PORT PID: an sse_load run of the current scenario.
push_client_command() {
  PUSH_COMMAND=("$bin_dir/sse_load" --port "$2" --connections "$PUSH_CONNECTIONS" --size "$size"
                --duration "$duration" --warmup "$warmup" --measure-pids "$3")
}

echo "switchboard Server-Sent Events load benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
push_prepare
push_run_kind broadcast
push_report "\"nginx\": $(sb_json_string "$( [[ -n $(sb_nginx_binary) ]] && "$(sb_nginx_binary)" -v 2>&1 )"), \"nchan\": $(sb_json_string "$(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || true)")"
push_memory broadcast
push_finish
