#!/usr/bin/env bash
# http.sh: switchboard's HTTP/1.1 server (examples/hello) side by side with nginx and Boost.Beast, under the
# same load tool (wrk), in one run, interleaved. See benchmarks/load/README.md for how to read the output.
#
# For each scenario, every server is warmed up, then measured once per round; the order of the servers
# rotates from round to round so that none always runs first. The server runs on one CPU and wrk (one
# thread) on another, each pinned with taskset. Per run it records requests/s, wrk's p50/p99 latency, the
# server's CPU time per request, read from /proc/<pid>/stat (utime + stime; nginx's worker process) before
# and after the run, and the CPU that anything else used on those two CPUs meanwhile (so that a run
# disturbed by other work shows it). It prints the medians over the rounds with their ratios to nginx,
# writes the raw runs and the medians as CSV and JSON under the results directory, then runs memory.sh.
#
# Usage: benchmarks/load/http.sh [options]
#   --rounds N              rounds per scenario (default 3)
#   --duration S            seconds per measured run (default 10)
#   --warmup S              seconds of unmeasured load per server before each scenario (default 2; 0: none)
#   --scenarios LIST        comma-separated, each cCONNECTIONS or cCONNECTIONS-pDEPTH
#                           (default c50,c256,c50-p16,c256-p16: 50 and 256 keep-alive connections, without
#                           and with 16 requests pipelined per write)
#   --servers LIST          comma-separated among nginx, beast, beast-notimeout, hello (default
#                           nginx,beast,hello; one that is not installed or not built is skipped with the
#                           reason)
#   --path PATH             request target (default /plaintext; /json is the other endpoint)
#   --server-cpu N          CPU the servers are pinned to (default: the first CPU this script may use,
#                           normally 0)
#   --client-cpu N          CPU wrk is pinned to (default: the second, normally 1; with one CPU, that one,
#                           and the figures mean little)
#   --bin-dir DIR           where peer_beast_http, idle_connections and hello are (default build/release/bin)
#   --results-dir DIR       where the CSV, JSON and wrk logs go (default benchmarks/load/results)
#   --memory-connections N  idle connections for memory.sh (default 10000)
#   --no-memory             skip memory.sh
#   -h, --help              this help
#
# Exit status: 0 when every run of every server completed without errors, 1 otherwise (a server that did
# not start or answered wrongly, a wrk run that failed, or errors reported by wrk), 2 for a usage error.
set -euo pipefail

command_line="$0${*:+ $*}"
load_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/cli.sh
source "$load_dir/lib/cli.sh"
root_dir=$(cd "$load_dir/../.." && pwd)

rounds=3
duration=10
warmup=2
scenarios=c50,c256,c50-p16,c256-p16
servers=nginx,beast,hello
path=/plaintext
server_cpu=
client_cpu=
bin_dir=$root_dir/build/release/bin
results_dir=$load_dir/results
memory_connections=10000
run_memory=1


while (( $# > 0 )); do
  case $1 in
    --rounds) rounds=$(number "$1" "${2:-}"); shift ;;
    --duration) duration=$(number "$1" "${2:-}"); shift ;;
    --warmup) warmup=$(number "$1" "${2:-}"); shift ;;
    --scenarios) scenarios=${2:-}; shift ;;
    --servers) servers=${2:-}; shift ;;
    --path) path=${2:-}; shift ;;
    --server-cpu) server_cpu=$(number "$1" "${2:-}"); shift ;;
    --client-cpu) client_cpu=$(number "$1" "${2:-}"); shift ;;
    --bin-dir) bin_dir=${2:-}; shift ;;
    --results-dir) results_dir=${2:-}; shift ;;
    --memory-connections) memory_connections=$(number "$1" "${2:-}"); shift ;;
    --no-memory) run_memory=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done
(( rounds >= 1 && duration >= 1 )) || usage_error "--rounds and --duration must be at least 1"
[[ $path == /* ]] || usage_error "--path must start with /"
IFS=, read -r -a scenario_list <<<"$scenarios"
IFS=, read -r -a server_list <<<"$servers"
for scenario in "${scenario_list[@]}"; do
  [[ $scenario =~ ^c([1-9][0-9]*)(-p([1-9][0-9]*))?$ ]] || usage_error "bad scenario '$scenario'"
done

for tool in wrk taskset curl ss awk pgrep; do
  command -v "$tool" >/dev/null || { echo "http.sh: $tool is required (scripts/install-deps.sh --bench)" >&2; exit 1; }
done

# wrk and the servers each hold one descriptor per connection; raise the soft limit as far as allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SB_BIN_DIR=$bin_dir
SB_MAX_CONNECTIONS=0
for scenario in "${scenario_list[@]}"; do
  [[ $scenario =~ ^c([0-9]+) ]]
  (( BASH_REMATCH[1] <= SB_MAX_CONNECTIONS )) || SB_MAX_CONNECTIONS=${BASH_REMATCH[1]}
done
SB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-http.XXXXXX")
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
    { echo "http.sh: CPU $cpu is not one this script may use (${allowed_cpus[*]})" >&2; exit 1; }
done
(( server_cpu != client_cpu )) ||
  echo "http.sh: warning: the servers and wrk share CPU $server_cpu: the figures mean little" >&2

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$results_dir"
runs_csv=$results_dir/http-$stamp.csv
medians_csv=$results_dir/http-$stamp-medians.csv
json_file=$results_dir/http-$stamp.json
log_dir=$results_dir/http-$stamp-logs
mkdir -p "$log_dir"
failures=0

echo "switchboard HTTP load benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  command: $command_line"
echo "  host: $cpus CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r)," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  load: $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), 1 thread on CPU $client_cpu; servers on CPU $server_cpu;" \
     "GET $path; $rounds rounds x ${duration} s, ${warmup} s warm-up"

started=()
declare -A skipped=()
for name in "${server_list[@]}"; do
  reason=$(sb_server_missing "$name")
  if [[ -n $reason ]]; then
    echo "  $name: skipped: $reason"
    skipped[$name]=$reason
  elif sb_server_start "$name" "$server_cpu"; then
    echo "  $name: pid ${SB_PID[$name]} on port ${SB_PORT[$name]} (measured pid ${SB_WORK_PID[$name]})"
    started+=("$name")
  else
    echo "  $name: FAILED to start or to answer correctly (see above)"
    skipped[$name]="failed to start or to answer correctly"
    failures=$((failures + 1))
  fi
done
(( ${#started[@]} > 0 )) || { echo "http.sh: no server to measure" >&2; exit 1; }
estimate=$(( ${#scenario_list[@]} * ${#started[@]} * (warmup + rounds * duration) ))
if (( estimate < 120 )); then estimate="$estimate s"; else estimate="$(( (estimate + 59) / 60 )) min"; fi
echo "  about $estimate of load; raw results in $runs_csv"

# run_wrk NAME CONNECTIONS DEPTH SECONDS LOG: one wrk run against server NAME; its output goes to LOG.
# Sets WRK[...] from wrk's summary line (lib/wrk.lua) and WRK_CPU_US to wrk's own CPU time. False when wrk
# failed or printed no summary.
run_wrk() {
  local name=$1 connections=$2 depth=$3 seconds=$4 log=$5 times kv
  local -a command=(wrk -t1 -c "$connections" -d "${seconds}s" --latency -s "$load_dir/lib/wrk.lua"
                    "http://$SB_BIND:${SB_PORT[$name]}$path" -- "$depth")
  WRK=()
  WRK_CPU_US=
  # wrk stops itself after SECONDS; the timeout only bounds a wrk that hangs.
  times=$( { TIMEFORMAT='%3U %3S'; time timeout --foreground -k 5 $(( seconds + 30 )) \
             taskset -c "$client_cpu" "${command[@]}" >"$log" 2>&1; } 2>&1 ) || return 1
  local summary
  summary=$(grep -m1 '^SB_WRK ' "$log") || return 1
  for kv in ${summary#SB_WRK }; do
    WRK[${kv%%=*}]=${kv#*=}
  done
  WRK_CPU_US=$(awk -v t="$times" 'BEGIN { split(t, a, " "); printf "%.0f", (a[1] + a[2]) * 1000000 }')
}
declare -A WRK=()

header="scenario,connections,pipeline,round,server,status,requests,duration_us,rps,p50_us,p99_us,server_cpu_us"
header+=",cpu_us_per_req,server_cpu_pct,wrk_cpu_us,wrk_cpu_pct,other_cpu_pct,steal_pct"
header+=",err_connect,err_read,err_write,err_status,err_timeout"
echo "$header" >"$runs_csv"
failed_tail=$(printf ',%.0s' $(seq 7 "$(awk -F, '{ print NF }' <<<"$header")"))

# measure SCENARIO CONNECTIONS DEPTH ROUND NAME: one measured run against server NAME; appends its row to
# the runs CSV and prints a line. False when the run failed or wrk reported errors.
measure() {
  local scenario=$1 connections=$2 depth=$3 round=$4 name=$5
  local log=$log_dir/$scenario-$name-r$round.txt pid=${SB_WORK_PID[$5]} cpu_before cpu_after load_before load_after
  if ! sb_alive "$pid"; then
    echo "  $name: round $round: the server is no longer running"
    echo "$scenario,$connections,$depth,$round,$name,failed$failed_tail" >>"$runs_csv"
    return 1
  fi
  cpu_before=$(sb_cpu_us "$pid")
  load_before=$(sb_cpus_time_us "$server_cpu" "$client_cpu")
  if ! run_wrk "$name" "$connections" "$depth" "$duration" "$log"; then
    echo "  $name: round $round: wrk failed; its output:"
    sed 's/^/    /' "$log"
    echo "$scenario,$connections,$depth,$round,$name,failed$failed_tail" >>"$runs_csv"
    return 1
  fi
  cpu_after=$(sb_cpu_us "$pid")
  load_after=$(sb_cpus_time_us "$server_cpu" "$client_cpu")
  # wrk's latency statistics are wrong with pipelining: its coordinated-omission correction takes the
  # interval between requests as if each response were a separate request, and moves samples below the
  # histogram's minimum, where its percentile search never looks (README.md). Not reported then.
  local p50=${WRK[p50_us]} p99=${WRK[p99_us]}
  (( depth == 1 )) || p50='' p99=''
  awk -v csv="$runs_csv" -v scenario="$scenario" -v connections="$connections" -v depth="$depth" \
      -v round="$round" -v rounds="$rounds" -v name="$name" -v requests="${WRK[requests]}" \
      -v duration="${WRK[duration_us]}" -v p50="$p50" -v p99="$p99" -v cpu=$(( cpu_after - cpu_before )) \
      -v wrk_cpu="$WRK_CPU_US" -v load_before="$load_before" -v load_after="$load_after" \
      -v errors="${WRK[connect]},${WRK[read]},${WRK[write]},${WRK[status]},${WRK[timeout]}" 'BEGIN {
    split(load_before, b, " "); split(load_after, a, " ")
    other = (a[1] - b[1] - cpu - wrk_cpu) / duration * 100
    steal = (a[2] - b[2]) / duration * 100
    split(errors, e, ","); failed = e[1] + e[2] + e[3] + e[4] + e[5] > 0 || requests == 0
    printf "%s,%s,%s,%s,%s,%s,%s,%s,%.1f,%s,%s,%s,%.3f,%.1f,%s,%.1f,%.1f,%.1f,%s\n", scenario, connections,
           depth, round, name, failed ? "errors" : "ok", requests, duration, requests / (duration / 1e6), p50, p99,
           cpu, requests ? cpu / requests : 0, cpu / duration * 100, wrk_cpu, wrk_cpu / duration * 100, other,
           steal, errors >> csv
    printf "  %-15s round %-5s %9.0f req/s  p99 %8s  %6.2f us CPU/req  CPU: server %3.0f%% wrk %3.0f%% other %3.0f%%" \
           "%s%s\n", name, round "/" rounds, requests / (duration / 1e6),
           (p99 == "" ? "n/a" : sprintf("%.2f ms", p99 / 1000)), requests ? cpu / requests : 0,
           cpu / duration * 100, wrk_cpu / duration * 100, (other > 0 ? other : 0),
           (steal >= 1 ? sprintf(" steal %.0f%%", steal) : ""),
           (failed ? "  ERRORS (connect/read/write/status/timeout): " errors : "")
    exit failed }'
}

for scenario in "${scenario_list[@]}"; do
  [[ $scenario =~ ^c([0-9]+)(-p([0-9]+))?$ ]]
  connections=${BASH_REMATCH[1]}
  depth=${BASH_REMATCH[3]:-1}
  echo
  echo "== $scenario: $connections connections, pipelining depth $depth"
  if (( warmup > 0 )); then
    for name in "${started[@]}"; do
      run_wrk "$name" "$connections" "$depth" "$warmup" "$log_dir/$scenario-$name-warmup.txt" ||
        echo "  $name: warm-up failed (see $log_dir/$scenario-$name-warmup.txt)"
    done
  fi
  for (( round = 1; round <= rounds; round++ )); do
    for (( k = 0; k < ${#started[@]}; k++ )); do
      name=${started[(round - 1 + k) % ${#started[@]}]}
      measure "$scenario" "$connections" "$depth" "$round" "$name" || failures=$((failures + 1))
    done
  done
done

echo
echo "Medians. CPU us/req: the server's CPU time per request. srv CPU, wrk CPU: their use of one CPU during"
echo "the run; other: CPU used on the same two CPUs by anything else (other work disturbs the figures)."
awk -v medians="$medians_csv" -v rounds="$rounds" -v duration="$duration" -f "$load_dir/lib/stats.awk" -f "$load_dir/lib/summarize.awk" "$runs_csv"

{
  printf '{\n  "benchmark": "http",\n  "started": %s,\n' "$(sb_json_string "$stamp")"
  printf '  "command": %s,\n' "$(sb_json_string "$command_line")"
  printf '  "host": {"cpus": %d, "cpu_model": %s, "kernel": %s, "load_average": %s},\n' "$cpus" \
    "$(sb_json_string "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)")" \
    "$(sb_json_string "$(uname -r)")" "$(sb_json_string "$(cut -d' ' -f1-3 /proc/loadavg)")"
  printf '  "config": {"rounds": %d, "duration_s": %d, "warmup_s": %d, "path": %s,' \
    "$rounds" "$duration" "$warmup" "$(sb_json_string "$path")"
  printf ' "server_cpu": %d, "client_cpu": %d,\n' "$server_cpu" "$client_cpu"
  printf '    "wrk": %s, "nginx": %s},\n' "$(sb_json_string "$(wrk -v 2>&1 | head -n1)")" \
    "$(sb_json_string "$( [[ -n $(sb_nginx_binary) ]] && "$(sb_nginx_binary)" -v 2>&1 )")"
  printf '  "skipped": {'
  first=1
  for name in "${!skipped[@]}"; do
    printf '%s%s: %s' "$( (( first )) || echo ', ')" "$(sb_json_string "$name")" "$(sb_json_string "${skipped[$name]}")"
    first=0
  done
  printf '},\n  "runs": %s,\n  "medians": %s\n}\n' "$(sb_csv_to_json "$runs_csv")" "$(sb_csv_to_json "$medians_csv")"
} >"$json_file"
echo
echo "Raw runs: $runs_csv; medians: $medians_csv; both with the settings: $json_file; wrk output: $log_dir/"

sb_stop_all
if (( run_memory )); then
  echo
  memory_servers=$(IFS=,; echo "${started[*]}")
  "$load_dir/memory.sh" --servers "$memory_servers" --connections "$memory_connections" --server-cpu "$server_cpu" \
    --bin-dir "$bin_dir" --results-dir "$results_dir" || failures=$((failures + 1))
fi

if (( failures > 0 )); then
  echo "http.sh: $failures problem(s) above: the figures are incomplete" >&2
  exit 1
fi
