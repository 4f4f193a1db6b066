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
# memory per idle WebSocket of each server (memory.sh --websocket /echo).
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
root_dir=$(cd "$load_dir/../.." && pwd)

rounds=3
duration=5
warmup=1
scenarios=e50,e50-f16,b1000,b10000
families=switchboard,beast,node
size=64
server_cpu=
client_cpu=
bin_dir=$root_dir/build/release/bin
node_dir=$root_dir/build/release/benchmarks/load/node_peers
results_dir=$load_dir/results
memory_connections=10000
run_memory=1

usage() { sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "${BASH_SOURCE[0]}"; }
usage_error() { echo "ws.sh: $1 (see --help)" >&2; exit 2; }
number() { [[ $2 =~ ^[0-9]+$ ]] || usage_error "$1 needs a whole number, got '$2'"; echo "$2"; }

while (( $# > 0 )); do
  case $1 in
    --rounds) rounds=$(number "$1" "${2:-}"); shift ;;
    --duration) duration=$(number "$1" "${2:-}"); shift ;;
    --warmup) warmup=$(number "$1" "${2:-}"); shift ;;
    --scenarios) scenarios=${2:-}; shift ;;
    --servers) families=${2:-}; shift ;;
    --size) size=$(number "$1" "${2:-}"); shift ;;
    --server-cpu) server_cpu=$(number "$1" "${2:-}"); shift ;;
    --client-cpu) client_cpu=$(number "$1" "${2:-}"); shift ;;
    --bin-dir) bin_dir=${2:-}; shift ;;
    --node-dir) node_dir=${2:-}; shift ;;
    --results-dir) results_dir=${2:-}; shift ;;
    --memory-connections) memory_connections=$(number "$1" "${2:-}"); shift ;;
    --no-memory) run_memory=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done
(( rounds >= 1 && duration >= 1 )) || usage_error "--rounds and --duration must be at least 1"
IFS=, read -r -a scenario_list <<<"$scenarios"
IFS=, read -r -a family_list <<<"$families"
max_connections=$memory_connections
for scenario in "${scenario_list[@]}"; do
  [[ $scenario =~ ^(e([1-9][0-9]*)(-f([1-9][0-9]*))?|b([1-9][0-9]*))$ ]] || usage_error "bad scenario '$scenario'"
  n=${BASH_REMATCH[2]:-${BASH_REMATCH[5]}}
  (( n <= 100000 )) || usage_error "at most 100000 connections per scenario"
  (( n <= max_connections )) || max_connections=$n
done
for family in "${family_list[@]}"; do
  [[ $family =~ ^(switchboard|beast|node)$ ]] || usage_error "unknown server '$family' (switchboard, beast, node)"
done

for tool in taskset ss awk; do
  command -v "$tool" >/dev/null || { echo "ws.sh: $tool is required" >&2; exit 1; }
done
[[ -x $bin_dir/ws_load ]] || { echo "ws.sh: $bin_dir/ws_load is not built (cmake --build --preset release)" >&2; exit 1; }

# Each connection is a descriptor in ws_load and one in the server; children inherit the raised soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < max_connections + 256 )); then
  echo "ws.sh: $max_connections connections need an open-file limit of at least $(( max_connections + 256 ))," \
       "and the hard limit is $(ulimit -Hn): lower the scenarios or --memory-connections" >&2
  exit 1
fi

# The `ws` package, pinned by tests/conformance/node/package-lock.json, installed as the tests install it.
install_node_peers() {
  [[ -f $node_dir/node_modules/ws/package.json ]] && return 0
  command -v npm >/dev/null || return 0  # node-ws is then skipped with the reason
  mkdir -p "$node_dir"
  cp "$root_dir/tests/conformance/node/package.json" "$root_dir/tests/conformance/node/package-lock.json" "$node_dir/"
  echo "  installing the ws package into $node_dir (npm ci)"
  (cd "$node_dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) ||
    echo "  npm ci failed: node is skipped"
}
[[ " ${family_list[*]} " != *" node "* ]] || install_node_peers

SB_BIN_DIR=$bin_dir
SB_MAX_CONNECTIONS=$max_connections
SB_NODE_MODULES=$node_dir/node_modules
export SB_NODE_MODULES
SB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-ws.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib/servers.sh
source "$load_dir/lib/servers.sh"
# shellcheck source-path=SCRIPTDIR source=lib/report.sh
source "$load_dir/lib/report.sh"
cleanup() { sb_stop_all; rm -rf "$SB_TMP"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mapfile -t allowed_cpus < <(sb_allowed_cpus)
cpus=${#allowed_cpus[@]}
server_cpu=${server_cpu:-${allowed_cpus[0]}}
client_cpu=${client_cpu:-${allowed_cpus[1]:-${allowed_cpus[0]}}}
for cpu in "$server_cpu" "$client_cpu"; do
  [[ " ${allowed_cpus[*]} " == *" $cpu "* ]] ||
    { echo "ws.sh: CPU $cpu is not one this script may use (${allowed_cpus[*]})" >&2; exit 1; }
done
(( server_cpu != client_cpu )) ||
  echo "ws.sh: warning: the servers and ws_load share CPU $server_cpu: the figures mean little" >&2

# server_name FAMILY KIND: the lib/servers.sh server of FAMILY for KIND (echo or broadcast).
server_name() {
  case $1-$2 in
    switchboard-echo) echo hello-ws ;;
    switchboard-broadcast) echo sb-broadcast ;;
    *) echo "$1-ws" ;;
  esac
}

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$results_dir"
runs_csv=$results_dir/ws-$stamp.csv
medians_csv=$results_dir/ws-$stamp-medians.csv
json_file=$results_dir/ws-$stamp.json
log_dir=$results_dir/ws-$stamp-logs
mkdir -p "$log_dir"
failures=0

echo "switchboard WebSocket load benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  command: $command_line"
echo "  host: $cpus CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r)," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  ws_load (1 thread) on CPU $client_cpu; servers on CPU $server_cpu; $size-byte text messages;" \
     "$rounds rounds x (${warmup} s warm-up + ${duration} s)"

header="scenario,description,kind,connections,in_flight,round,server,server_name,status,messages,rate,publishes"
header+=",lost,p50_us,p99_us,max_us,server_cpu_us,cpu_us_per_msg,server_cpu_pct,client_cpu_pct,other_cpu_pct,errors"
echo "$header" >"$runs_csv"
failed_tail=$(printf ',%.0s' $(seq 9 "$(awk -F, '{ print NF }' <<<"$header")"))

# measure SCENARIO DESCRIPTION KIND CONNECTIONS DEPTH ROUND FAMILY: one ws_load run against the started server
# of FAMILY; appends its row to the runs CSV and prints a line. False when the run failed or had errors.
measure() {
  local scenario=$1 description=$2 kind=$3 connections=$4 depth=$5 round=$6 family=$7
  local name log pid times line kv cpu_before cpu_after load_before load_after
  name=$(server_name "$family" "$kind")
  log=$log_dir/$scenario-$family-r$round.txt
  pid=${SB_WORK_PID[$name]}
  local -A r=()
  if ! sb_alive "$pid"; then
    echo "  $family: round $round: the server is no longer running"
    echo "$scenario,$description,$kind,$connections,$depth,$round,$family,$name,failed$failed_tail" >>"$runs_csv"
    return 1
  fi
  local -a command=("$bin_dir/ws_load" --mode "$kind" --port "${SB_PORT[$name]}" --connections "$connections"
                    --in-flight "$depth" --size "$size" --duration "$duration" --warmup "$warmup" --measure-pids "$pid")
  cpu_before=$(sb_cpu_us "$pid")
  load_before=$(sb_cpus_time_us "$server_cpu" "$client_cpu")
  # ws_load stops by itself; the timeout only bounds one that hangs (opening 10,000 connections takes seconds).
  times=$( { TIMEFORMAT='%3R %3U %3S'; time timeout --foreground -k 5 $(( warmup + duration + 180 )) \
             taskset -c "$client_cpu" "${command[@]}" >"$log" 2>&1; } 2>&1 ) || true
  cpu_after=$(sb_cpu_us "$pid")
  load_after=$(sb_cpus_time_us "$server_cpu" "$client_cpu")
  if ! line=$(grep -m1 '^SB_LOAD ' "$log"); then
    echo "  $family: round $round: ws_load failed; its output:"
    sed 's/^/    /' "$log"
    echo "$scenario,$description,$kind,$connections,$depth,$round,$family,$name,failed$failed_tail" >>"$runs_csv"
    return 1
  fi
  for kv in ${line#SB_LOAD }; do r[${kv%%=*}]=${kv#*=}; done
  # "other": CPU time on the two CPUs that neither the server nor ws_load used, over ws_load's whole run
  # (connecting and warm-up included, since /proc/stat is read around it).
  awk -v csv="$runs_csv" -v row="$scenario,$description,$kind,$connections,$depth,$round,$family,$name" \
      -v messages="${r[messages]}" -v rate="${r[rate]}" -v publishes="${r[publishes]}" -v lost="${r[lost]}" \
      -v p50="${r[p50_us]}" -v p99="${r[p99_us]}" -v max="${r[max_us]}" -v window="${r[duration_us]}" \
      -v server_cpu="${r[server_cpu_us]}" -v client_cpu="${r[cpu_us]}" -v errors="${r[errors]}" \
      -v times="$times" -v server_total=$(( cpu_after - cpu_before )) -v load_before="$load_before" \
      -v load_after="$load_after" -v name="$family" -v round="$round/$rounds" -v kind="$kind" 'BEGIN {
    split(times, t, " "); split(load_before, b, " "); split(load_after, a, " ")
    wall = t[1] * 1e6
    other = wall > 0 ? (a[1] - b[1] - server_total - (t[2] + t[3]) * 1e6) / wall * 100 : 0
    failed = errors > 0 || lost > 0 || messages == 0
    printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%.3f,%.1f,%.1f,%.1f,%s\n", row, (failed ? "errors" : "ok"), messages, rate,
           publishes, lost, p50, p99, max, server_cpu, (messages ? server_cpu / messages : 0), server_cpu / window * 100,
           client_cpu / window * 100, other, errors >> csv
    printf "  %-12s round %-5s %9d %s/s  p50 %7.2f ms  p99 %7.2f ms  %6.2f us CPU/msg  CPU: server %3.0f%%" \
           " ws_load %3.0f%% other %3.0f%%%s\n", name, round, rate, (kind == "echo" ? "round trips" : "deliveries"),
           p50 / 1000, p99 / 1000, (messages ? server_cpu / messages : 0), server_cpu / window * 100,
           client_cpu / window * 100, (other > 0 ? other : 0),
           (failed ? sprintf("  ERRORS: %d connection(s) failed, %d deliveries lost", errors, lost) : "")
    exit failed }'
}

started_any=0
declare -A skipped=()
# run_kind KIND: the scenarios of KIND (echo or broadcast), each with every server started fresh.
run_kind() {
  local kind=$1 scenario description connections depth family name round k
  local -a started
  for scenario in "${scenario_list[@]}"; do
    [[ $scenario =~ ^e([0-9]+)(-f([0-9]+))?$ ]] && [[ $kind == echo ]] || \
      { [[ $scenario =~ ^b([0-9]+)$ ]] && [[ $kind == broadcast ]]; } || continue
    connections=${BASH_REMATCH[1]}
    depth=${BASH_REMATCH[3]:-1}
    if [[ $kind == echo ]]; then
      description="$connections connections with $depth message(s) in flight each: round trips"
    else
      description="$connections subscribers and one publish at a time: deliveries"
    fi
    echo
    echo "== $scenario: $description"
    started=()
    for family in "${family_list[@]}"; do
      name=$(server_name "$family" "$kind")
      reason=$(sb_server_missing "$name")
      if [[ -n $reason ]]; then
        echo "  $family: skipped: $reason"
        skipped[$family]=$reason
      elif sb_server_start "$name" "$server_cpu"; then
        echo "  $family: $name, pid ${SB_PID[$name]} on port ${SB_PORT[$name]}"
        started+=("$family")
        started_any=1
      else
        echo "  $family: FAILED to start or to pass its check (see above)"
        skipped[$family]="failed to start or to pass its check"
        failures=$((failures + 1))
      fi
    done
    for (( round = 1; round <= rounds; round++ )); do
      for (( k = 0; k < ${#started[@]}; k++ )); do
        family=${started[(round - 1 + k) % ${#started[@]}]}
        measure "$scenario" "$description" "$kind" "$connections" "$depth" "$round" "$family" ||
          failures=$((failures + 1))
      done
    done
    for family in "${started[@]}"; do sb_server_stop "$(server_name "$family" "$kind")"; done
  done
}
run_kind echo
run_kind broadcast
(( started_any )) || { echo "ws.sh: no server to measure" >&2; exit 1; }

echo
echo "Medians. CPU us/msg: the server's CPU time per round trip or delivery. srv CPU, cli CPU: the server's and"
echo "ws_load's use of one CPU over the window; other: CPU used on the same two CPUs by anything else."
awk -v medians="$medians_csv" -v bases="beast node" -v unit="msg" -f "$load_dir/lib/stats.awk" \
    -f "$load_dir/lib/push_summary.awk" "$runs_csv"

{
  printf '{\n  "benchmark": "ws",\n  "started": %s,\n' "$(sb_json_string "$stamp")"
  printf '  "command": %s,\n' "$(sb_json_string "$command_line")"
  printf '  "host": {"cpus": %d, "cpu_model": %s, "kernel": %s, "load_average": %s},\n' "$cpus" \
    "$(sb_json_string "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)")" \
    "$(sb_json_string "$(uname -r)")" "$(sb_json_string "$(cut -d' ' -f1-3 /proc/loadavg)")"
  printf '  "config": {"rounds": %d, "duration_s": %d, "warmup_s": %d, "size": %d,' \
    "$rounds" "$duration" "$warmup" "$size"
  printf ' "server_cpu": %d, "client_cpu": %d, "node": %s, "ws_package": %s},\n' "$server_cpu" "$client_cpu" \
    "$(sb_json_string "$(node --version 2>/dev/null || true)")" \
    "$(sb_json_string "$(awk -F'"' '$2 == "version" { print $4; exit }' "$SB_NODE_MODULES/ws/package.json" 2>/dev/null || true)")"
  printf '  "skipped": {'
  first=1
  for family in "${!skipped[@]}"; do
    printf '%s%s: %s' "$( (( first )) || echo ', ')" "$(sb_json_string "$family")" "$(sb_json_string "${skipped[$family]}")"
    first=0
  done
  printf '},\n  "runs": %s,\n  "medians": %s\n}\n' "$(sb_csv_to_json "$runs_csv")" "$(sb_csv_to_json "$medians_csv")"
} >"$json_file"
echo
echo "Raw runs: $runs_csv; medians: $medians_csv; both with the settings: $json_file; ws_load output: $log_dir/"

if (( run_memory )); then
  echo
  memory_servers=()
  for family in "${family_list[@]}"; do memory_servers+=("$(server_name "$family" echo)"); done
  memory_dir=$log_dir/memory
  if "$load_dir/memory.sh" --servers "$(IFS=,; echo "${memory_servers[*]}")" --websocket /echo \
       --connections "$memory_connections" --server-cpu "$server_cpu" --bin-dir "$bin_dir" --results-dir "$memory_dir"; then
    :
  else
    failures=$((failures + 1))
  fi
  # Ratios of the memory per idle WebSocket (RSS) to Beast's and to Node's.
  memory_csv=$(ls "$memory_dir"/memory-ws-*.csv 2>/dev/null | head -n1)
  if [[ -n $memory_csv ]]; then
    awk -F, 'NR > 1 { kib[$1] = $10; order[++n] = $1 }
      END {
        printf "\n  KiB per idle WebSocket (RSS), ratio to beast-ws and to node-ws:\n"
        for (i = 1; i <= n; i++)
          printf "  %-12s %8.2f  %6s  %6s\n", order[i], kib[order[i]],
                 ("beast-ws" in kib && kib["beast-ws"] > 0) ? sprintf("%.2f", kib[order[i]] / kib["beast-ws"]) : "n/a",
                 ("node-ws" in kib && kib["node-ws"] > 0) ? sprintf("%.2f", kib[order[i]] / kib["node-ws"]) : "n/a" }' \
      "$memory_csv"
    cp "$memory_csv" "$results_dir/ws-$stamp-memory.csv"
  fi
fi

if (( failures > 0 )); then
  echo "ws.sh: $failures problem(s) above: the figures are incomplete" >&2
  exit 1
fi
