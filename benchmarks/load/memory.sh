#!/usr/bin/env bash
# memory.sh: the memory each server (nginx, Boost.Beast, switchboard's hello) holds per idle keep-alive
# connection. See benchmarks/load/README.md for how to read the output.
#
# Each server is started fresh and validated, and warmed up with a few connections of the kind measured, opened
# and closed (--warmup); its memory is read from /proc/<pid>/smaps_rollup (RSS, PSS and Private_Dirty; nginx's
# worker process); then bin/idle_connections opens N connections, makes one
# request on each and holds them; once they have been idle for the settle time, the memory is read again.
# The difference divided by N is the memory per idle connection, in KiB. Kernel socket buffers are not part of any process and not counted.
# With --websocket PATH the connections are idle WebSockets opened on PATH (an echo endpoint) after one
# message each; ws.sh measures its servers that way. With --sse PATH they are idle event streams (GET PATH,
# text/event-stream) held by bin/sse_load --hold; sse.sh measures its servers that way. With --longpoll PATH
# they are parked long polls of PATH held by bin/longpoll_load --hold (switchboard's protocol for notifications,
# Nchan's for nchan; each poll waits up to 60 s and is renewed when answered); longpoll.sh measures its servers
# that way.
#
# Usage: benchmarks/load/memory.sh [options]
#   --connections N      idle connections to hold (default 10000)
#   --servers LIST       comma-separated among the servers of lib/servers.sh (default nginx,beast,hello; one
#                        that is not installed or not built is skipped with the reason)
#   --websocket PATH     hold WebSockets opened on PATH, an echo endpoint (e.g. /echo), not HTTP connections
#   --sse PATH           hold Server-Sent Events streams of PATH (e.g. /topics/bench/events) instead
#   --longpoll PATH      hold parked long polls of PATH (e.g. /topics/bench/poll; notifications, nchan) instead
#   --server-cpu N       CPU the servers are pinned to (default: the first CPU this script may use)
#   --warmup N           connections opened, held until ready and closed before the first reading (default 100), so
#                        that one-time costs are not counted per connection: code pages and library state touched
#                        by the first handshake (OpenSSL's SHA-1 for a WebSocket accept key), per-thread buffers
#   --settle S           seconds the connections stay idle before the memory is read (default 4): a server
#                        may keep a just-used connection's memory for a moment (switchboard parks a connection
#                        idle for 0.5 s at the next tick of its 1 s clock, and hands the pages back at the tick
#                        after a whole tick unused: up to 3.5 s)
#   --bin-dir DIR        where idle_connections, peer_beast_http and hello are (default build/release/bin)
#   --results-dir DIR    where the CSV and JSON go (default benchmarks/load/results)
#   -h, --help           this help
#
# Exit status: 0 when every server held every connection, 1 otherwise, 2 for a usage error.
set -euo pipefail

load_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/cli.sh
source "$load_dir/lib/cli.sh"
root_dir=$(cd "$load_dir/../.." && pwd)

connections=10000
servers=nginx,beast,hello
server_cpu=
settle=4
warmup=100
bin_dir=$root_dir/build/release/bin
results_dir=$load_dir/results
websocket=
sse=
longpoll=


while (( $# > 0 )); do
  case $1 in
    --connections) connections=$(number "$1" "${2:-}"); shift ;;
    --servers) servers=${2:-}; shift ;;
    --server-cpu) server_cpu=$(number "$1" "${2:-}"); shift ;;
    --settle) settle=$(number "$1" "${2:-}"); shift ;;
    --warmup) warmup=$(number "$1" "${2:-}"); shift ;;
    --bin-dir) bin_dir=${2:-}; shift ;;
    --results-dir) results_dir=${2:-}; shift ;;
    --websocket) websocket=${2:-}; shift; [[ $websocket == /* ]] || usage_error "--websocket needs a path" ;;
    --sse) sse=${2:-}; shift; [[ $sse == /* ]] || usage_error "--sse needs a path" ;;
    --longpoll) longpoll=${2:-}; shift; [[ $longpoll == /* ]] || usage_error "--longpoll needs a path" ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done
(( connections >= 1 )) || usage_error "--connections must be at least 1"
IFS=, read -r -a server_list <<<"$servers"

for tool in curl ss awk pgrep taskset; do
  command -v "$tool" >/dev/null || { echo "memory.sh: $tool is required" >&2; exit 1; }
done
# The holder: idle_connections for HTTP connections and WebSockets, sse_load --hold for event streams,
# longpoll_load --hold for long polls (measure adds the protocol of the server). All print "ready N" once every
# connection is open, and "open N closed M" after SIGTERM.
if [[ -n $sse ]]; then
  holder=("$bin_dir/sse_load" --hold --subscribe-path "$sse")
elif [[ -n $longpoll ]]; then
  holder=("$bin_dir/longpoll_load" --hold --subscribe-path "$longpoll")
else
  holder=("$bin_dir/idle_connections" ${websocket:+--websocket "$websocket"})
fi
[[ -x ${holder[0]} ]] || { echo "memory.sh: ${holder[0]} is not built (cmake --build --preset release)" >&2; exit 1; }

# The servers need a descriptor per connection, plus their own; children inherit the raised soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < connections + 256 )); then
  echo "memory.sh: $connections connections need an open-file limit of at least $(( connections + 256 ))," \
       "and the hard limit is $(ulimit -Hn)" >&2
  exit 1
fi

SB_BIN_DIR=$bin_dir
SB_MAX_CONNECTIONS=$connections
SB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-memory.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib/servers.sh
source "$load_dir/lib/servers.sh"
# shellcheck source-path=SCRIPTDIR source=lib/report.sh
source "$load_dir/lib/report.sh"
# shellcheck source-path=SCRIPTDIR source=lib/holder.sh
source "$load_dir/lib/holder.sh"
cleanup() {
  sb_holder_kill
  sb_stop_all
  rm -rf "$SB_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mapfile -t allowed_cpus < <(sb_allowed_cpus)
server_cpu=${server_cpu:-${allowed_cpus[0]}}
[[ " ${allowed_cpus[*]} " == *" $server_cpu "* ]] ||
  { echo "memory.sh: CPU $server_cpu is not one this script may use (${allowed_cpus[*]})" >&2; exit 1; }

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$results_dir"
kind=${websocket:+-ws}${sse:+-sse}${longpoll:+-longpoll}
csv_file=$results_dir/memory$kind-$stamp.csv
json_file=$results_dir/memory$kind-$stamp.json
header="server,connections,held,rss_before_kib,rss_after_kib,pss_before_kib,pss_after_kib"
header+=",dirty_before_kib,dirty_after_kib,rss_kib_per_connection,pss_kib_per_connection,dirty_kib_per_connection"
echo "$header" >"$csv_file"
failures=0

# measure NAME: holds the idle connections against the started server NAME and appends its CSV row.
# False when the holder failed or the server closed connections while they were held.
measure() {
  local name=$1 pid=${SB_WORK_PID[$1]} status=0
  local -a before after
  protocol=()
  if [[ -n $longpoll ]]; then
    case $name in
      notifications) protocol=(--protocol switchboard) ;;
      nchan) protocol=(--protocol nchan) ;;
      *) echo "  $name: no long-poll protocol known for it (notifications, nchan)"; return 1 ;;
    esac
  fi
  if (( warmup > 0 )); then
    sb_holder_start "$name" "$warmup" "${holder[@]}" "${protocol[@]}" --port "${SB_PORT[$name]}" \
      --connections "$warmup" || return 1
    sb_holder_stop || { echo "  $name: the warm-up holder failed: $(sb_holder_errors)"; return 1; }
  fi
  read -r -a before <<<"$(sb_memory_kib "$pid")"
  sb_holder_start "$name" "$connections" "${holder[@]}" "${protocol[@]}" --port "${SB_PORT[$name]}" \
    --connections "$connections" || return 1
  sleep "$settle"  # idle connections, not just-answered ones
  read -r -a after <<<"$(sb_memory_kib "$pid")"
  sb_holder_stop || status=$?
  awk -v n="$name" -v c="$connections" -v h="$SB_HOLDER_HELD" -v b="${before[*]}" -v a="${after[*]}" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    printf "%s,%d,%d,%d,%d,%d,%d,%d,%d,%.2f,%.2f,%.2f\n", n, c, h, x[1], y[1], x[2], y[2], x[3], y[3],
           (y[1] - x[1]) / c, (y[2] - x[2]) / c, (y[3] - x[3]) / c }' >>"$csv_file"
  if (( status != 0 || SB_HOLDER_HELD != connections )); then
    echo "  $name: only $SB_HOLDER_HELD of $connections connections were still open when measured: $(sb_holder_errors)"
    return 1
  fi
}

what="${websocket:+WebSocket (at $websocket) }${sse:+event stream (at $sse) }"
what+="${longpoll:+parked long-poll (at $longpoll) }"
echo "switchboard idle-connection memory, $(date -u +%Y-%m-%dT%H:%M:%SZ): $connections ${what}connections per server"
for name in "${server_list[@]}"; do
  reason=$(sb_server_missing "$name")
  if [[ -n $reason ]]; then
    echo "  $name: skipped: $reason"
    continue
  fi
  if ! sb_server_start "$name" "$server_cpu"; then
    echo "  $name: FAILED to start or to answer correctly (see above)"
    failures=$((failures + 1))
    continue
  fi
  measure "$name" || failures=$((failures + 1))
  sb_server_stop "$name"
done

awk -F, '
  NR == 1 {
    printf "\n  %-15s %7s %10s %10s %10s %10s %10s %10s  (KiB)\n", "server", "held", "RSS before", "after",
           "PSS before", "after", "Dirty bef.", "after"
    next }
  { printf "  %-15s %7d %10d %10d %10d %10d %10d %10d\n", $1, $3, $4, $5, $6, $7, $8, $9
    line[NR] = sprintf("  %-15s %9.2f %9.2f %9.2f", $1, $10, $11, $12) }
  END {
    printf "\n  KiB per idle connection, (after - before) / connections:\n  %-15s %9s %9s %9s\n", "server", "RSS",
           "PSS", "Dirty"
    for (i = 2; i <= NR; i++) print line[i] }' "$csv_file"

{
  printf '{\n  "benchmark": "memory",\n  "started": %s,\n' "$(sb_json_string "$stamp")"
  printf '  "connections": %d,\n  "websocket": %s,\n  "sse": %s,\n  "longpoll": %s,\n' "$connections" \
    "$(sb_json_string "$websocket")" "$(sb_json_string "$sse")" "$(sb_json_string "$longpoll")"
  printf '  "results": %s\n}\n' "$(sb_csv_to_json "$csv_file")"
} >"$json_file"
echo
echo "Raw results: $csv_file and $json_file"
if (( failures > 0 )); then
  echo "memory.sh: $failures server(s) could not be measured" >&2
  exit 1
fi
