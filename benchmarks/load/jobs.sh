#!/usr/bin/env bash
# jobs.sh: the job endpoint of examples/jobs under load (issue 5): how fast it accepts submissions, and whether
# its I/O thread stays free while the worker pool is saturated with CPU-bound jobs. See benchmarks/load/README.md
# ("Jobs") for how to read the output and why the CPUs are laid out as they are.
#
# One server (bin/jobs --threads 1 --workers W --queue Q --max-jobs-per-client Q --retention 0: the load comes from
# one address, which may fill the queue) serves every round. Its I/O thread (the process's main thread, the only
# event loop) is pinned to --io-cpu, the load client (http_load) to --client-cpu,
# and the W worker threads to --worker-cpus, which nothing else of this script uses: whatever the workers do, they
# cannot take CPU time from the I/O thread or the client, so a slower GET /plaintext while they compute means that
# the server let them get in the I/O thread's way. With 3 CPUs or more each gets its own; with 2 the I/O thread
# and the client share the first and the workers have the second (the absolute latencies then include the
# client's share of the I/O thread's CPU, the same in both GET phases; the README says why that is the fair
# choice on 2 cores). Each round runs three phases, the last two in an order that alternates from round to
# round:
#   submit     http_load POSTs {"kind":"primes","limit":--small-limit} to /jobs over --submit-connections
#              keep-alive connections: tiny jobs, so that what is measured is the submission path (parse the body,
#              store and queue the job, publish "queued", answer 202 with Location). Accepted submissions/s,
#              p50/p99, the server's CPU per submission (worker included), the I/O thread's use of its CPU, and
#              the refusals (503 with Retry-After from a full queue) counted apart.
#   idle       GET /plaintext over --connections connections with the workers idle: p50/p99.
#   saturated  the same while a second http_load keeps every worker busy with {"kind":"primes","limit":
#              --large-limit} jobs (a few tenths of a second each): it holds W + 1 submissions open with
#              POST /jobs?wait=30, so that one job always waits for the next free worker and the pool never idles,
#              while adding almost no load to the I/O thread (one request per finished job). It runs on the
#              workers' CPUs, starts before the window (the script waits until every worker runs), lasts past it,
#              and is stopped by its pid; every worker must still be running at the window's end.
# It prints the medians over the rounds and the ratio saturated p99 / idle p99 (the target: at most 2), and writes
# the raw runs and the medians as CSV and JSON under the results directory.
#
# Usage: benchmarks/load/jobs.sh [options]
#   --rounds N                rounds (default 3)
#   --duration S              seconds per measured window (default 5)
#   --warmup S                unmeasured seconds of load before each window (default 1)
#   --workers N               job worker threads (default 2: one alone does not keep up with the submissions
#                             of tiny jobs; README)
#   --queue N                 jobs waiting for a worker at most, past which submissions get 503 (default 1024)
#   --submit-connections N    connections of the submit phase (default 16)
#   --connections N           connections of the GET /plaintext phases (default 16)
#   --small-limit N           the `limit` of the submitted jobs (default 3: no work beyond the job's bookkeeping)
#   --large-limit N           the `limit` of the jobs that saturate the pool (default 2000000)
#   --io-cpu N                CPU of the I/O thread (default: the first CPU this script may use, normally 0)
#   --client-cpu N            CPU of the load client (default: the second with 3 CPUs or more, else the first)
#   --worker-cpus LIST        CPUs of the workers, comma-separated (default: the rest, at least the last CPU)
#   --bin-dir DIR             where jobs and http_load are (default build/release/bin)
#   --results-dir DIR         where the CSV, JSON and logs go (default benchmarks/load/results)
#   -h, --help                this help
#
# Exit status: 0 when every run completed without errors, 1 otherwise (the server did not start or answered
# wrongly, a load run failed or reported transport errors or unexpected statuses, the pool could not be
# saturated), 2 for a usage error. Refusals (503) in the submit phase are reported, not counted as failures: they
# are the server's backpressure working, and mean that the workers did not keep up with the submissions.
set -euo pipefail

command_line="$0${*:+ $*}"
load_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/cli.sh
source "$load_dir/lib/cli.sh"
root_dir=$(cd "$load_dir/../.." && pwd)

rounds=3
duration=5
warmup=1
workers=2
queue=1024
submit_connections=16
connections=16
small_limit=3
large_limit=2000000
io_cpu=
client_cpu=
worker_cpus=
bin_dir=$root_dir/build/release/bin
results_dir=$load_dir/results


while (( $# > 0 )); do
  case $1 in
    --rounds) rounds=$(number "$1" "${2:-}"); shift ;;
    --duration) duration=$(number "$1" "${2:-}"); shift ;;
    --warmup) warmup=$(number "$1" "${2:-}"); shift ;;
    --workers) workers=$(number "$1" "${2:-}"); shift ;;
    --queue) queue=$(number "$1" "${2:-}"); shift ;;
    --submit-connections) submit_connections=$(number "$1" "${2:-}"); shift ;;
    --connections) connections=$(number "$1" "${2:-}"); shift ;;
    --small-limit) small_limit=$(number "$1" "${2:-}"); shift ;;
    --large-limit) large_limit=$(number "$1" "${2:-}"); shift ;;
    --io-cpu) io_cpu=$(number "$1" "${2:-}"); shift ;;
    --client-cpu) client_cpu=$(number "$1" "${2:-}"); shift ;;
    --worker-cpus) worker_cpus=${2:-}; shift ;;
    --bin-dir) bin_dir=${2:-}; shift ;;
    --results-dir) results_dir=${2:-}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done
(( rounds >= 1 && duration >= 1 )) || usage_error "--rounds and --duration must be at least 1"
(( workers >= 1 && queue >= 1 && submit_connections >= 1 && connections >= 1 )) ||
  usage_error "--workers, --queue and the connection counts must be at least 1"
(( small_limit <= 50000000 && large_limit <= 50000000 )) || usage_error "a job's limit is at most 50000000"

[[ -z $worker_cpus || $worker_cpus =~ ^[0-9]+(,[0-9]+)*$ ]] || usage_error "--worker-cpus needs a list like 1,2"

for tool in taskset curl ss awk; do
  command -v "$tool" >/dev/null || { echo "jobs.sh: $tool is required" >&2; exit 1; }
done
http_load=$bin_dir/http_load
[[ -x $http_load ]] || { echo "jobs.sh: $http_load is not built (cmake --build build/release --target http_load)" >&2; exit 1; }

SB_BIN_DIR=$bin_dir
SB_MAX_CONNECTIONS=$(( submit_connections > connections ? submit_connections : connections ))
SB_JOBS_WORKERS=$workers
SB_JOBS_QUEUE=$queue
SB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-jobs.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib/servers.sh
source "$load_dir/lib/servers.sh"
# shellcheck source-path=SCRIPTDIR source=lib/report.sh
source "$load_dir/lib/report.sh"
submitter_pid=
stop_submitter() {
  [[ -n $submitter_pid ]] || return 0
  kill -TERM "$submitter_pid" 2>/dev/null || true
  wait "$submitter_pid" 2>/dev/null || true
  submitter_pid=
}
cleanup() { stop_submitter; sb_stop_all; rm -rf "$SB_TMP"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mapfile -t allowed_cpus < <(sb_allowed_cpus)
cpus=${#allowed_cpus[@]}
io_cpu=${io_cpu:-${allowed_cpus[0]}}
if (( cpus >= 3 )); then
  client_cpu=${client_cpu:-${allowed_cpus[1]}}
  worker_cpus=${worker_cpus:-$(IFS=,; echo "${allowed_cpus[*]:2}")}
else
  client_cpu=${client_cpu:-${allowed_cpus[0]}}
  worker_cpus=${worker_cpus:-${allowed_cpus[cpus - 1]}}
fi
IFS=, read -r -a worker_cpu_list <<<"$worker_cpus"
for cpu in "$io_cpu" "$client_cpu" "${worker_cpu_list[@]}"; do
  [[ " ${allowed_cpus[*]} " == *" $cpu "* ]] ||
    { echo "jobs.sh: CPU $cpu is not one this script may use (${allowed_cpus[*]})" >&2; exit 1; }
done
for cpu in "${worker_cpu_list[@]}"; do
  [[ $cpu != "$io_cpu" && $cpu != "$client_cpu" ]] ||
    echo "jobs.sh: warning: the workers share CPU $cpu with the I/O thread or the client: the saturated figures mean little" >&2
done

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$results_dir"
runs_csv=$results_dir/jobs-$stamp.csv
medians_csv=$results_dir/jobs-$stamp-medians.csv
json_file=$results_dir/jobs-$stamp.json
log_dir=$results_dir/jobs-$stamp-logs
mkdir -p "$log_dir"
failures=0
small_body="{\"kind\":\"primes\",\"limit\":$small_limit}"
large_body="{\"kind\":\"primes\",\"limit\":$large_limit}"

echo "switchboard jobs benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  command: $command_line"
echo "  host: $cpus CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r)," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  server: bin/jobs --threads 1 --workers $workers --queue $queue --max-jobs-per-client $queue --retention 0;" \
     "I/O thread on CPU $io_cpu," \
     "http_load on CPU $client_cpu, workers on CPU(s) $worker_cpus; $rounds rounds x (${warmup} s warm-up + ${duration} s)"

sb_server_start jobs "$io_cpu" || { echo "jobs.sh: the jobs server did not start or answered wrongly" >&2; exit 1; }
pid=${SB_PID[jobs]}
port=${SB_PORT[jobs]}
# The threads: the main one runs the event loop (runtime::run on the caller with --threads 1); the others were
# started by the worker pool. Anything else would make the layout below wrong.
worker_tids=()
for task in "/proc/$pid/task"/*; do
  [[ ${task##*/} == "$pid" ]] || worker_tids+=("${task##*/}")
done
if (( ${#worker_tids[@]} != workers )); then
  echo "jobs.sh: expected $workers worker thread(s) beside the I/O thread, found ${#worker_tids[@]}" >&2
  exit 1
fi
for tid in "${worker_tids[@]}"; do taskset -p -c "$worker_cpus" "$tid" >/dev/null; done
if ! check=$("$http_load" --port "$port" --check --method POST --path /jobs --content-type application/json \
               --body "$small_body" 2>&1); then
  echo "jobs.sh: POST /jobs was not accepted: $check" >&2
  exit 1
fi
echo "  jobs: pid $pid on port $port, worker thread(s) ${worker_tids[*]}"

# thread_cpu_us TID: the CPU time of one thread of the server (proc(5): /proc/PID/task/TID/stat).
thread_cpu_us() { sb_cpu_us "$pid/task/$1"; }
workers_cpu_us() {
  local tid total=0
  for tid in "${worker_tids[@]}"; do total=$(( total + $(thread_cpu_us "$tid") )); done
  echo "$total"
}
# workers_all STATE: true when every worker thread is in STATE (R: running or runnable; S: sleeping, which an idle
# worker does on the pool's condition variable).
workers_all() {
  local tid stat
  for tid in "${worker_tids[@]}"; do
    stat=$(<"/proc/$pid/task/$tid/stat")
    stat=${stat##*) }
    [[ ${stat%% *} == "$1" ]] || return 1
  done
}
# wait_workers STATE SECONDS: waits until every worker is in STATE at once, for at most SECONDS; false then. For R
# one such moment is enough: a busy worker leaves R only for an instant (to take a lock).
wait_workers() {
  local deadline=$(( $(date +%s) + $2 ))
  until workers_all "$1"; do
    (( $(date +%s) < deadline )) && sb_alive "$pid" || return 1
    sleep 0.05
  done
}
# wait_idle SECONDS: waits until the pool is idle, for at most SECONDS; false then. Idle: every worker sleeping,
# and their CPU time unchanged over 0.2 s (two busy workers may be waiting for the same lock at one moment).
wait_idle() {
  local deadline=$(( $(date +%s) + $1 )) before
  while wait_workers S $(( deadline - $(date +%s) )); do
    before=$(workers_cpu_us)
    sleep 0.2
    workers_all S && [[ $(workers_cpu_us) == "$before" ]] && return 0
  done
  return 1
}
now_us() { echo $(( $(date +%s%N) / 1000 )); }

echo "round,phase,status,requests,non_2xx,rps,p50_us,p99_us,server_cpu_us,cpu_us_per_req,io_thread_cpu_pct,other_on_io_cpu_pct,worker_cpu_pct,client_cpu_pct,errors" >"$runs_csv"

# load ROUND PHASE ARGS...: one http_load run against the server, pinned to the client CPU; appends its row to the
# runs CSV and prints a line. The I/O thread's and the workers' CPU, and the CPU anything else (not the server,
# not the client) used on the I/O thread's CPU, are read around the whole run, warm-up included. False when the
# run failed.
load() {
  local round=$1 phase=$2 log=$log_dir/$2-r$1.txt line key status=ok times client_us=0
  shift 2
  local -A r=()
  local io_before workers_before cpu_before start_us io_after workers_after cpu_after end_us
  io_before=$(thread_cpu_us "$pid"); workers_before=$(workers_cpu_us)
  cpu_before=$(sb_cpus_time_us "$io_cpu"); start_us=$(now_us)
  times=$( { TIMEFORMAT='%3U %3S'; time timeout -k 5 $(( warmup + duration + 30 )) taskset -c "$client_cpu" \
             "$http_load" --port "$port" --warmup "$warmup" --duration "$duration" --measure-pids "$pid" "$@" \
             >"$log" 2>&1; } 2>&1 ) || status=errors
  io_after=$(thread_cpu_us "$pid"); workers_after=$(workers_cpu_us)
  cpu_after=$(sb_cpus_time_us "$io_cpu"); end_us=$(now_us)
  # The client's CPU over the whole run counts as "other" only when it runs elsewhere.
  [[ $client_cpu != "$io_cpu" ]] || client_us=$(awk -v t="${times##*$'\n'}" 'BEGIN { split(t, a, " "); printf "%.0f", (a[1] + a[2]) * 1e6 }')
  while IFS= read -r line; do
    [[ $line == 'SB_LOAD '* ]] || continue
    for key in ${line#SB_LOAD }; do r[${key%%=*}]=${key#*=}; done
  done <"$log"
  if [[ -z ${r[requests]:-} || ${r[requests]} == 0 || ${r[server_cpu_us]} -lt 0 ]]; then
    echo "  round $round $phase: no result; http_load said:"
    sed 's/^/    /' "$log"
    echo "$round,$phase,failed,,,,,,,,,,,," >>"$runs_csv"
    return 1
  fi
  # Refused submissions are the server's backpressure, not a failure of the run (see the header).
  local transport=$(( r[errors] - r[err_status] ))
  if [[ $phase == submit ]] && (( transport == 0 )); then status=ok; fi
  awk -v csv="$runs_csv" -v round="$round" -v rounds="$rounds" -v phase="$phase" -v status="$status" \
      -v requests="${r[requests]}" -v non2xx="${r[non_2xx]}" -v rps="${r[rps]}" -v p50="${r[p50_us]}" \
      -v p99="${r[p99_us]}" -v cpu="${r[server_cpu_us]}" -v client="${r[cpu_us]}" -v window="${r[duration_us]}" \
      -v io=$(( io_after - io_before )) -v work=$(( workers_after - workers_before )) -v workers="$workers" \
      -v busy="$(( ${cpu_after% *} - ${cpu_before% *} - client_us ))" -v elapsed=$(( end_us - start_us )) \
      -v errors="${r[errors]} (connect ${r[err_connect]} io ${r[err_io]} closed ${r[err_closed]} parse ${r[err_parse]} status ${r[err_status]})" 'BEGIN {
    io_pct = io / elapsed * 100; other = (busy - io) / elapsed * 100; work_pct = work / elapsed / workers * 100
    printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%.3f,%.1f,%.1f,%.1f,%.1f,%s\n", round, phase, status, requests, non2xx, rps,
           p50, p99, cpu, cpu / requests, io_pct, (other > 0 ? other : 0), work_pct, client / window * 100,
           errors >> csv
    printf "  round %-5s %-10s %8d req/s  p50 %7.3f ms  p99 %7.3f ms  %6.2f us CPU/req  I/O thread %3.0f%%  workers %3.0f%%" \
           "%s%s%s\n", round "/" rounds, phase, rps, p50 / 1000, p99 / 1000, cpu / requests, io_pct, work_pct,
           (other >= 1 ? sprintf("  other on the I/O CPU %.0f%%", other) : ""),
           (non2xx > 0 ? sprintf("  refused %d", non2xx) : ""), (status != "ok" ? "  ERRORS: " errors : "") }'
  [[ $status == ok ]]
}

# saturated ROUND: the GET /plaintext run while the submitter keeps every worker busy.
saturated() {
  local round=$1 ok=0 log=$log_dir/submitter-r$1.txt
  taskset -c "$worker_cpus" "$http_load" --port "$port" --method POST --path '/jobs?wait=30' \
    --content-type application/json --body "$large_body" --connections $(( workers + 1 )) --warmup 0 \
    --duration $(( warmup + duration + 15 )) >"$log" 2>&1 &
  submitter_pid=$!
  if ! wait_workers R 10; then
    echo "  round $round saturated: the workers did not all start running within 10 s; the submitter said:"
    sed 's/^/    /' "$log"
  elif load "$round" saturated --connections "$connections"; then
    ok=1
    # Every worker must still be busy at the end of the window, or the pool was not saturated throughout.
    if ! wait_workers R 2; then
      echo "  round $round saturated: a worker was idle at the end of the window (did the submitter stop?)"
      ok=0
    fi
  fi
  stop_submitter
  # The jobs in flight run to their end (a few tenths of a second each) before the next phase.
  if ! wait_idle 60; then
    echo "  round $round: the workers were still busy 60 s after the submitter stopped"
    ok=0
  fi
  (( ok ))
}

for (( round = 1; round <= rounds; round++ )); do
  load "$round" submit --method POST --path /jobs --content-type application/json --body "$small_body" \
    --connections "$submit_connections" || failures=$(( failures + 1 ))
  wait_idle 60 || { echo "  round $round: the workers did not go idle after the submissions"; failures=$(( failures + 1 )); }
  if (( round % 2 == 1 )); then
    load "$round" idle --connections "$connections" || failures=$(( failures + 1 ))
    saturated "$round" || failures=$(( failures + 1 ))
  else
    saturated "$round" || failures=$(( failures + 1 ))
    load "$round" idle --connections "$connections" || failures=$(( failures + 1 ))
  fi
done

echo
echo "Medians over $rounds round(s). CPU/req: the server's CPU (all threads) per 2xx response; I/O thread, workers:"
echo "their use of one CPU (the workers' per worker) over the run, warm-up included."
awk -v medians="$medians_csv" -f "$load_dir/lib/stats.awk" -f "$load_dir/lib/jobs_summary.awk" "$runs_csv"

{
  printf '{\n  "benchmark": "jobs",\n  "started": %s,\n' "$(sb_json_string "$stamp")"
  printf '  "command": %s,\n' "$(sb_json_string "$command_line")"
  printf '  "host": {"cpus": %d, "cpu_model": %s, "kernel": %s, "load_average": %s},\n' "$cpus" \
    "$(sb_json_string "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)")" \
    "$(sb_json_string "$(uname -r)")" "$(sb_json_string "$(cut -d' ' -f1-3 /proc/loadavg)")"
  printf '  "config": {"rounds": %d, "duration_s": %d, "warmup_s": %d, "workers": %d, "queue": %d,' \
    "$rounds" "$duration" "$warmup" "$workers" "$queue"
  printf ' "submit_connections": %d, "connections": %d, "small_limit": %d, "large_limit": %d, "io_cpu": %d, "client_cpu": %d,' \
    "$submit_connections" "$connections" "$small_limit" "$large_limit" "$io_cpu" "$client_cpu"
  printf ' "worker_cpus": %s},\n' "$(sb_json_string "$worker_cpus")"
  printf '  "runs": %s,\n  "medians": %s\n}\n' "$(sb_csv_to_json "$runs_csv")" "$(sb_csv_to_json "$medians_csv")"
} >"$json_file"
echo
echo "Raw runs: $runs_csv; medians: $medians_csv; both with the settings: $json_file; http_load output: $log_dir/"

if (( failures > 0 )); then
  echo "jobs.sh: $failures problem(s) above: the figures are incomplete" >&2
  exit 1
fi
