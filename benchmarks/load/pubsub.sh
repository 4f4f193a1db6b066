#!/usr/bin/env bash
# pubsub.sh: switchboard's Redis-protocol broker (examples/broker) side by side with redis-server
# (--save '' --appendonly no), under the same clients, in one run, interleaved. See benchmarks/load/README.md.
#
# Scenarios:
#   publish-p1     redis-benchmark PUBLISH, 50 connections, one command per round trip (no subscriber)
#   publish-p16    the same with 16 commands pipelined per write (-P 16)
#   fanout-N       tools/pubsub_fanout: one publisher, N subscribers of one channel, 64-byte payloads, the
#                  publisher never more than a window (1,000 messages) ahead of the slowest subscriber;
#                  counts deliveries (messages received by subscribers) per second
#   memory         each server started afresh, then bin/idle_connections --resp-subscribe holds N idle clients
#                  (--memory-clients), each subscribed to a channel of its own: the server's memory per client
#                  (RSS, PSS, Private_Dirty from /proc/PID/smaps_rollup), after the clients have been idle 3 s
# Each server runs on one CPU and the clients on another, each pinned with taskset; every server is measured
# once per round, in an order that rotates from round to round. Per run: the operations per second (PUBLISH
# commands, or deliveries), the server's CPU time per operation (utime + stime from /proc/<pid>/stat, before
# and after: with two CPUs the client is often the bottleneck, so CPU per operation is the fairer figure), and
# the CPU anything else used on those two CPUs meanwhile. Then the medians and their ratios to redis-server.
#
# Usage: benchmarks/load/pubsub.sh [options]
#   --rounds N             rounds per scenario (default 3)
#   --duration S           seconds per measured fan-out run (default 5)
#   --warmup S             seconds of unmeasured fan-out before each measured one (default 1)
#   --requests N           PUBLISH commands per redis-benchmark run without pipelining (default 200000; with
#                          -P 16, eight times as many)
#   --subscribers LIST     fan-out sizes (default 1,10,100)
#   --scenarios LIST       among publish-p1, publish-p16, fanout, memory (default: all four)
#   --memory-clients N     idle clients held for the memory figures (default 5000)
#   --servers LIST         among broker, redis (default broker,redis)
#   --server-cpu N         CPU the servers are pinned to (default: the first this script may use)
#   --client-cpu N         CPU the clients are pinned to (default: the second)
#   --bin-dir DIR          where broker, pubsub_fanout and idle_connections are (default build/release/bin)
#   --results-dir DIR      where the CSV and JSON go (default benchmarks/load/results)
#   -h, --help             this help
#
# Exit status: 0 when every run completed, 1 otherwise (a server that did not start, a client that failed),
# 2 for a usage error.
set -euo pipefail

command_line="$0${*:+ $*}"
load_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/cli.sh
source "$load_dir/lib/cli.sh"
root_dir=$(cd "$load_dir/../.." && pwd)

rounds=3
duration=5
warmup=1
requests=200000
subscribers=1,10,100
scenarios=publish-p1,publish-p16,fanout,memory
memory_clients=5000
servers=broker,redis
server_cpu=
client_cpu=
bin_dir=$root_dir/build/release/bin
results_dir=$load_dir/results


while (( $# > 0 )); do
  case $1 in
    --rounds) rounds=$(number "$1" "${2:-}"); shift ;;
    --duration) duration=$(number "$1" "${2:-}"); shift ;;
    --warmup) warmup=$(number "$1" "${2:-}"); shift ;;
    --requests) requests=$(number "$1" "${2:-}"); shift ;;
    --subscribers) subscribers=${2:-}; shift ;;
    --memory-clients) memory_clients=$(number "$1" "${2:-}"); shift ;;
    --scenarios) scenarios=${2:-}; shift ;;
    --servers) servers=${2:-}; shift ;;
    --server-cpu) server_cpu=$(number "$1" "${2:-}"); shift ;;
    --client-cpu) client_cpu=$(number "$1" "${2:-}"); shift ;;
    --bin-dir) bin_dir=${2:-}; shift ;;
    --results-dir) results_dir=${2:-}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done
(( rounds >= 1 && duration >= 1 && requests >= 1 )) || usage_error "--rounds, --duration, --requests must be >= 1"
IFS=, read -r -a subscriber_list <<<"$subscribers"
IFS=, read -r -a server_list <<<"$servers"
IFS=, read -r -a wanted <<<"$scenarios"
scenario_list=()
memory=
for s in "${wanted[@]}"; do
  case $s in
    publish-p1|publish-p16) scenario_list+=("$s") ;;
    memory) memory=yes ;;
    fanout) for n in "${subscriber_list[@]}"; do
              [[ $n =~ ^[1-9][0-9]*$ ]] || usage_error "bad subscriber count '$n'"
              scenario_list+=("fanout-$n")
            done ;;
    *) usage_error "unknown scenario '$s'" ;;
  esac
done
for name in "${server_list[@]}"; do
  [[ $name == broker || $name == redis ]] || usage_error "unknown server '$name'"
done
if [[ -n $memory ]]; then
  (( memory_clients >= 1 )) || usage_error "--memory-clients must be >= 1"
  # The servers need a descriptor per client, plus their own; children inherit the raised soft limit.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if (( $(ulimit -n) < memory_clients + 256 )); then
    echo "pubsub.sh: $memory_clients idle clients need an open-file limit of at least $(( memory_clients + 256 ))," \
         "and the hard limit is $(ulimit -Hn): lower --memory-clients" >&2
    exit 1
  fi
fi
for tool in redis-benchmark taskset ss awk; do
  command -v "$tool" >/dev/null || { echo "pubsub.sh: $tool is required (scripts/install-deps.sh --bench)" >&2; exit 1; }
done

SB_BIN_DIR=$bin_dir
SB_MAX_CONNECTIONS=0
SB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-pubsub.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib/servers.sh
source "$load_dir/lib/servers.sh"
# shellcheck source-path=SCRIPTDIR source=lib/report.sh
source "$load_dir/lib/report.sh"
# shellcheck source-path=SCRIPTDIR source=lib/holder.sh
source "$load_dir/lib/holder.sh"
cleanup() { sb_holder_kill; sb_stop_all; rm -rf "$SB_TMP"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mapfile -t allowed_cpus < <(sb_allowed_cpus)
server_cpu=${server_cpu:-${allowed_cpus[0]}}
client_cpu=${client_cpu:-${allowed_cpus[1]:-${allowed_cpus[0]}}}
(( server_cpu != client_cpu )) ||
  echo "pubsub.sh: warning: the servers and the clients share CPU $server_cpu: the figures mean little" >&2

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$results_dir"
runs_csv=$results_dir/pubsub-$stamp.csv
medians_csv=$results_dir/pubsub-$stamp-medians.csv
json_file=$results_dir/pubsub-$stamp.json
log_dir=$results_dir/pubsub-$stamp-logs
mkdir -p "$log_dir"
failures=0

echo "switchboard pub/sub load benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  command: $command_line"
echo "  host: ${#allowed_cpus[@]} CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))," \
     "Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  servers on CPU $server_cpu, clients on CPU $client_cpu; $(redis-server --version | cut -d' ' -f1-3)"

# start_server NAME: starts NAME on a free port, pinned to the server CPU; sets SB_PID, SB_WORK_PID, SB_PORT.
start_server() {
  local name=$1 dir=$SB_TMP/$1 port pid attempt
  local -a command
  mkdir -p "$dir"
  for attempt in 1 2 3; do
    port=$(sb_free_port) || return 1
    case $name in
      broker) command=("$bin_dir/broker" --bind "$SB_BIND" --port "$port" --threads 1) ;;
      redis) command=(redis-server --bind "$SB_BIND" --port "$port" --save '' --appendonly no --dir "$dir") ;;
    esac
    taskset -c "$server_cpu" "${command[@]}" >"$dir/server.log" 2>&1 </dev/null &
    pid=$!
    if sb_wait_listening "$pid" "$port"; then
      SB_PID[$name]=$pid SB_WORK_PID[$name]=$pid SB_PORT[$name]=$port
      [[ $(redis-cli -h "$SB_BIND" -p "$port" ping) == PONG ]] && return 0
      echo "$name: does not answer PING" >&2
      sb_server_stop "$name"
      return 1
    fi
    sb_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    grep -qi 'address already in use' "$dir/server.log" || break
  done
  echo "$name: did not start; its log:" >&2
  sed 's/^/    /' "$dir/server.log" >&2
  return 1
}

started=()
for name in "${server_list[@]}"; do
  if [[ $name == broker && ! -x $bin_dir/broker ]]; then
    echo "  broker: skipped: not built ($bin_dir/broker)"
  elif [[ $name == redis ]] && ! command -v redis-server >/dev/null; then
    echo "  redis: skipped: redis-server is not installed (scripts/install-deps.sh)"
  elif start_server "$name"; then
    echo "  $name: pid ${SB_PID[$name]} on port ${SB_PORT[$name]}"
    started+=("$name")
  else
    failures=$((failures + 1))
  fi
done
(( ${#started[@]} > 0 )) || { echo "pubsub.sh: no server to measure" >&2; exit 1; }
if [[ " ${scenario_list[*]} " == *" fanout-"* && ! -x $bin_dir/pubsub_fanout ]]; then
  echo "pubsub.sh: $bin_dir/pubsub_fanout is not built" >&2
  exit 1
fi

echo "scenario,unit,round,server,status,ops,seconds,rate,server_cpu_us,cpu_us_per_op,server_cpu_pct,other_cpu_pct" \
  >"$runs_csv"

# run_client SCENARIO PORT LOG: runs the scenario's client against PORT, pinned to the client CPU. Sets OPS
# (operations the server did during the whole run, for CPU per operation), RATE (operations per second) and
# SECONDS_RUN (the run's wall time). False when the client failed.
run_client() {
  local scenario=$1 port=$2 log=$3 line n
  OPS='' RATE='' SECONDS_RUN=''
  case $scenario in
    publish-p*)
      local depth=${scenario#publish-p} count=$requests
      (( depth == 1 )) || count=$(( requests * 8 ))
      local begin end
      begin=$(date +%s%N)
      timeout -k 5 600 taskset -c "$client_cpu" redis-benchmark -h "$SB_BIND" -p "$port" -c 50 -n "$count" \
        -P "$depth" --csv publish channel payload >"$log" 2>&1 || return 1
      end=$(date +%s%N)
      line=$(grep -m1 '^"publish' "$log") || return 1
      RATE=$(cut -d, -f2 <<<"$line" | tr -d '"')
      OPS=$count
      SECONDS_RUN=$(awk -v b="$begin" -v e="$end" 'BEGIN { printf "%.3f", (e - b) / 1e9 }') ;;
    fanout-*)
      n=${scenario#fanout-}
      timeout -k 5 $(( warmup + duration + 120 )) taskset -c "$client_cpu" "$bin_dir/pubsub_fanout" \
        --host "$SB_BIND" --port "$port" --subscribers "$n" --payload 64 --window 1000 --duration "$duration" \
        --warmup "$warmup" --channel "fanout-$RANDOM" >"$log" 2>&1 || return 1
      line=$(grep -m1 '^SB_FANOUT ' "$log") || return 1
      RATE=$(sed -E 's/.* deliveries_per_s=([0-9.]+).*/\1/' <<<"$line")
      OPS=$(sed -E 's/.* total_deliveries=([0-9]+).*/\1/' <<<"$line")
      SECONDS_RUN=$(sed -E 's/.* total_seconds=([0-9.]+).*/\1/' <<<"$line") ;;
  esac
}

# measure SCENARIO ROUND NAME: one measured run against NAME; appends a row to the runs CSV and prints a line.
measure() {
  local scenario=$1 round=$2 name=$3 pid=${SB_WORK_PID[$3]} unit=publish
  local log=$log_dir/$scenario-$name-r$round.txt cpu_before cpu_after load_before load_after
  [[ $scenario == fanout-* ]] && unit=delivery
  if ! sb_alive "$pid"; then
    echo "  $name: round $round: the server is no longer running"
    echo "$scenario,$unit,$round,$name,failed,,,,,,," >>"$runs_csv"
    return 1
  fi
  cpu_before=$(sb_cpu_us "$pid")
  load_before=$(sb_cpus_time_us "$server_cpu" "$client_cpu")
  if ! run_client "$scenario" "${SB_PORT[$name]}" "$log"; then
    echo "  $name: round $round: the client failed; its output:"
    sed 's/^/    /' "$log" | tail -n 20
    echo "$scenario,$unit,$round,$name,failed,,,,,,," >>"$runs_csv"
    return 1
  fi
  cpu_after=$(sb_cpu_us "$pid")
  load_after=$(sb_cpus_time_us "$server_cpu" "$client_cpu")
  awk -v csv="$runs_csv" -v scenario="$scenario" -v unit="$unit" -v round="$round" -v rounds="$rounds" \
      -v name="$name" -v ops="$OPS" -v seconds="$SECONDS_RUN" -v rate="$RATE" -v cpu=$(( cpu_after - cpu_before )) \
      -v load_before="$load_before" -v load_after="$load_after" 'BEGIN {
    split(load_before, b, " "); split(load_after, a, " ")
    us = seconds * 1e6
    # "other": CPU used on the two CPUs by anything but the server; the client is part of it here.
    other = (a[1] - b[1] - cpu) / us * 100
    printf "%s,%s,%s,%s,ok,%s,%s,%.1f,%s,%.4f,%.1f,%.1f\n", scenario, unit, round, name, ops, seconds, rate, cpu,
           cpu / ops, cpu / us * 100, other >> csv
    printf "  %-7s round %-5s %11.0f %s/s  %7.3f us CPU/%s  server CPU %3.0f%%, client and other %3.0f%%\n",
           name, round "/" rounds, rate, unit, cpu / ops, unit, cpu / us * 100, other }'
}

for scenario in "${scenario_list[@]}"; do
  echo
  echo "== $scenario"
  for (( round = 1; round <= rounds; round++ )); do
    for (( k = 0; k < ${#started[@]}; k++ )); do
      name=${started[(round - 1 + k) % ${#started[@]}]}
      measure "$scenario" "$round" "$name" || failures=$((failures + 1))
    done
  done
done

# measure_memory NAME: restarts NAME (a fresh heap, not one the load runs left), holds $memory_clients idle
# subscribed clients against it (lib/holder.sh) and appends its row to the memory CSV. False when the clients
# could not be held.
measure_memory() {
  local name=$1 status=0
  local -a before after
  sb_server_stop "$name"
  start_server "$name" || return 1
  read -r -a before <<<"$(sb_memory_kib "${SB_PID[$name]}")"
  sb_holder_start "$name" "$memory_clients" taskset -c "$client_cpu" "$bin_dir/idle_connections" \
    --port "${SB_PORT[$name]}" --connections "$memory_clients" --resp-subscribe idle: || return 1
  sleep 3  # idle clients, not just-answered ones
  read -r -a after <<<"$(sb_memory_kib "${SB_PID[$name]}")"
  sb_holder_stop || status=$?
  if (( status != 0 || SB_HOLDER_HELD != memory_clients )); then
    echo "  $name: only $SB_HOLDER_HELD of $memory_clients idle clients were still connected when measured:" \
      "$(sb_holder_errors)"
    return 1
  fi
  awk -v n="$name" -v c="$memory_clients" -v b="${before[*]}" -v a="${after[*]}" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    printf "%s,%d,%d,%d,%d,%d,%d,%d,%.2f,%.2f,%.2f\n", n, c, x[1], y[1], x[2], y[2], x[3], y[3],
           (y[1] - x[1]) / c, (y[2] - x[2]) / c, (y[3] - x[3]) / c }' >>"$memory_csv"
}

memory_csv=$results_dir/pubsub-$stamp-memory.csv
if [[ -n $memory ]]; then
  echo
  echo "== memory: $memory_clients idle clients, each subscribed to a channel of its own"
  echo "server,clients,rss_before_kib,rss_after_kib,pss_before_kib,pss_after_kib,dirty_before_kib,dirty_after_kib,rss_kib_per_client,pss_kib_per_client,dirty_kib_per_client" >"$memory_csv"
  for name in "${started[@]}"; do
    measure_memory "$name" || failures=$((failures + 1))
  done
fi

echo
echo "Medians. CPU us/op: the server's CPU time per PUBLISH (publish-*) or per delivered message (fanout-*)."
awk -v medians="$medians_csv" -v rounds="$rounds" -f "$load_dir/lib/pubsub_summary.awk" "$runs_csv"
if [[ -n $memory ]]; then
  awk -F, 'NR == 1 { printf "\nMemory per idle subscribed client, KiB (after - before) / clients:\n  %-9s %8s %8s %8s\n",
                       "server", "RSS", "PSS", "Dirty"; next }
           { printf "  %-9s %8.2f %8.2f %8.2f\n", $1, $9, $10, $11 }' "$memory_csv"
fi

{
  printf '{\n  "benchmark": "pubsub",\n  "started": %s,\n' "$(sb_json_string "$stamp")"
  printf '  "command": %s,\n' "$(sb_json_string "$command_line")"
  printf '  "host": {"cpus": %d, "cpu_model": %s, "kernel": %s, "load_average": %s},\n' "${#allowed_cpus[@]}" \
    "$(sb_json_string "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)")" \
    "$(sb_json_string "$(uname -r)")" "$(sb_json_string "$(cut -d' ' -f1-3 /proc/loadavg)")"
  printf '  "config": {"rounds": %d, "duration_s": %d, "warmup_s": %d, "requests": %d, "server_cpu": %d,' \
    "$rounds" "$duration" "$warmup" "$requests" "$server_cpu"
  printf ' "client_cpu": %d, "redis": %s},\n' "$client_cpu" "$(sb_json_string "$(redis-server --version)")"
  printf '  "runs": %s,\n  "medians": %s' "$(sb_csv_to_json "$runs_csv")" "$(sb_csv_to_json "$medians_csv")"
  [[ -n $memory ]] && printf ',\n  "memory": %s' "$(sb_csv_to_json "$memory_csv")"
  printf '\n}\n'
} >"$json_file"
echo
echo "Raw runs: $runs_csv; medians: $medians_csv; both with the settings: $json_file; client output: $log_dir/"

if (( failures > 0 )); then
  echo "pubsub.sh: $failures problem(s) above: the figures are incomplete" >&2
  exit 1
fi
