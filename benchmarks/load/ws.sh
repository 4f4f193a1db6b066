#!/usr/bin/env bash
# ws.sh: switchboard's WebSockets side by side with Boost.Beast and Node's `ws` package, under the same load
# client (bin/ws_load), in one run, interleaved. See benchmarks/load/README.md for how to read the output.
#
# Servers, by family (lib/servers.sh has the details):
#   switchboard   echo: examples/hello's /echo (hello-ws); broadcast: bin/peer_ws_broadcast (sb-broadcast),
#                 a ws::session_group that sends each published message, encoded once, to every subscriber
#   beast         bin/peer_beast_ws (peers/beast_ws.cpp), written as Beast's examples write a server
#   node          peers/ws_node.mjs: the `ws` package's WebSocketServer, as its README writes an echo and a
#                 broadcast (the package is installed with `npm ci` into --node-dir when missing)
#
# Scenarios: eN[-fD]: N connections, each with D 64-byte messages in flight (default 1), round trips per
# second and send-to-echo latency; bN: N subscribers, one publisher, one publish at a time, deliveries per
# second and publish-to-receive latency. Every scenario starts each server fresh, pinned to one CPU, with
# ws_load (one thread) pinned to another; each round measures every server once, in an order that rotates
# from round to round. Per run: messages/s, p50/p99, the server's CPU time per message and CPU use, ws_load's
# CPU use (so that a saturated client shows), and what anything else ran on those two CPUs. At the end the
# medians with their ratios to Beast and to Node ws, as CSV and JSON under the results directory; then the
# memory per idle WebSocket of each server (memory.sh --websocket /echo). The machinery is lib/push.sh's,
# shared with sse.sh.
#
# Usage: benchmarks/load/ws.sh [options]
#   --rounds N              rounds per scenario (default 3)
#   --duration S            measured seconds per run (default 5)
#   --warmup S              unmeasured seconds of load before each run's window (default 1)
#   --scenarios LIST        comma-separated eN[-fD] and bN (default e50,e50-f16,b1000,b10000)
#   --servers LIST          comma-separated among switchboard, beast, node (default all three; one that is
#                           not built or installed is skipped with the reason)
#   --size BYTES            message size (default 64)
#   --server-cpu N          CPU the servers are pinned to (default: the first this script may use)
#   --client-cpu N          CPU ws_load is pinned to (default: the second)
#   --bin-dir DIR           where hello, ws_load, idle_connections and the peers are (default build/release/bin)
#   --node-dir DIR          where the `ws` package is installed (default build/release/benchmarks/load/node_peers)
#   --results-dir DIR       where the CSV, JSON and logs go (default benchmarks/load/results)
#   --memory-connections N  idle WebSockets per server for the memory figures (default 10000)
#   --no-memory             skip the memory figures
#   -h, --help              this help
#
# Exit status: 0 when every run of every server completed without errors, 1 otherwise (a server that did
# not start or failed its check, a run with errors or lost deliveries), 2 for a usage error.
set -euo pipefail

command_line="$0${*:+ $*}"
load_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/cli.sh
source "$load_dir/lib/cli.sh"
root_dir=$(cd "$load_dir/../.." && pwd)

PUSH_BENCH=ws
PUSH_TOOL=ws_load
PUSH_BASES="beast node"
PUSH_SCENARIO_RE='^(e[1-9][0-9]*(-f[1-9][0-9]*)?|b[1-9][0-9]*)$'
PUSH_MEMORY_FLAGS="--websocket /echo"
# shellcheck source-path=SCRIPTDIR source=lib/push.sh
source "$load_dir/lib/push.sh"
scenarios=e50,e50-f16,b1000,b10000
families=switchboard,beast,node
node_dir=$root_dir/build/release/benchmarks/load/node_peers

while (( $# > 0 )); do
  if push_parse_common "$1" "${2:-}"; then shift "$PUSH_SHIFT"; continue; fi
  case $1 in
    --node-dir) node_dir=${2:-}; shift 2 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
done
push_split_lists switchboard beast node

# push_server_name FAMILY KIND: the lib/servers.sh server of FAMILY for KIND (echo or broadcast).
push_server_name() {
  case $1-$2 in
    switchboard-echo) echo hello-ws ;;
    switchboard-broadcast) echo sb-broadcast ;;
    *) echo "$1-ws" ;;
  esac
}

# push_scenario SCENARIO KIND: eN[-fD] is an echo scenario, bN a broadcast one.
push_scenario() {
  if [[ $2 == echo && $1 =~ ^e([0-9]+)(-f([0-9]+))?$ ]]; then
    PUSH_CONNECTIONS=${BASH_REMATCH[1]}
    PUSH_DEPTH=${BASH_REMATCH[3]:-1}
    PUSH_DESCRIPTION="$PUSH_CONNECTIONS connections with $PUSH_DEPTH message(s) in flight each: round trips"
  elif [[ $2 == broadcast && $1 =~ ^b([0-9]+)$ ]]; then
    PUSH_CONNECTIONS=${BASH_REMATCH[1]}
    PUSH_DEPTH=1
    PUSH_DESCRIPTION="$PUSH_CONNECTIONS subscribers and one publish at a time: deliveries"
  else
    return 1
  fi
}

# push_client_command KIND PORT PID: a ws_load run of the current scenario.
push_client_command() {
  PUSH_COMMAND=("$bin_dir/ws_load" --mode "$1" --port "$2" --connections "$PUSH_CONNECTIONS" --in-flight "$PUSH_DEPTH"
                --size "$size" --duration "$duration" --warmup "$warmup" --measure-pids "$3")
}

# The `ws` package, pinned by tests/conformance/node/package-lock.json, installed as the tests install it.
install_node_peers() {
  [[ -f $node_dir/node_modules/ws/package.json ]] && return 0
  command -v npm >/dev/null || return 0  # node-ws is then skipped with the reason
  mkdir -p "$node_dir"
  cp "$root_dir/tests/conformance/node/package.json" "$root_dir/tests/conformance/node/package-lock.json" "$node_dir/"
  echo "  installing the ws package into $node_dir (npm ci)"
  (cd "$node_dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) || echo "  npm ci failed: node is skipped"
}

echo "switchboard WebSocket load benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
[[ " ${family_list[*]} " != *" node "* ]] || install_node_peers
SB_NODE_MODULES=$node_dir/node_modules
export SB_NODE_MODULES
push_prepare
push_run_kind echo
push_run_kind broadcast
push_report "\"node\": $(sb_json_string "$(node --version 2>/dev/null || true)"), \"ws_package\": $(sb_json_string \
  "$(awk -F'"' '$2 == "version" { print $4; exit }' "$SB_NODE_MODULES/ws/package.json" 2>/dev/null || true)")"
push_memory echo
push_finish
