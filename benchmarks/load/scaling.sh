#!/usr/bin/env bash
# scaling.sh: how switchboard's HTTP server (examples/hello, --threads N: N event-loop threads, one
# SO_REUSEPORT listener each) scales from 1 to 8 threads, next to nginx with 1 to 8 workers, under the same
# load generator (http_load). It runs from the folder benchmarks/load/bundle.sh assembles, on a machine
# with nothing installed but bash, coreutils and /proc (taskset is bundled, used where the machine has none).
# See README.md ("Scaling over cores").
#
# For each round, each N and each server: the server is started fresh with N threads (nginx: N workers),
# pinned to N CPUs of the server half of the machine, checked (GET must answer 200 with the expected body
# and keep the connection open), then measured once per pipelining depth with http_load pinned to the other
# half: --connections keep-alive connections, a warm-up, then --duration seconds. http_load reports
# requests/s, latency, its own CPU time and the server's (master and workers for nginx, read from
# /proc/PID/stat over the measured window), and the script prints the median requests/s per N, the scaling
# ratio (requests/s at N / requests/s at 1) of each server, the ratio hello/nginx, and the server's CPU time
# per request. The order of the servers alternates from round to round. Every run is bounded (http_load
# stops by itself; the whole plan must fit --max-minutes), everything listens on 127.0.0.1, and only
# processes this script started are stopped, by pid.
#
# Usage: scaling.sh [options]
#   --bundle DIR         the bundle (default: this script's folder when it holds bin/http_load, else the
#                        repository's build/bundle)
#   --threads LIST       server threads / nginx workers to measure, comma-separated (default 1,2,4,8, without
#                        those above the number of server CPUs)
#   --connections N      keep-alive connections per run (default 256)
#   --depths LIST        requests per batch (pipelining depth) to measure (default 1,16)
#   --duration S         measured seconds per run (default 5)
#   --warmup S           unmeasured seconds of load before each run (default 1)
#   --rounds N           rounds (default 2)
#   --servers LIST       among hello, nginx (default hello,nginx)
#   --path PATH          request target (default /plaintext; /json is the other endpoint)
#   --server-cpus LIST   CPUs for the servers, the first N for N threads (default: the lower half of the
#                        CPUs this script may use)
#   --load-cpus LIST     CPUs for http_load (default: the upper half)
#   --load-threads N     http_load threads (default: one per load CPU)
#   --results-dir DIR    where the CSV of the runs goes (default: results/ in the bundle)
#   --max-minutes M      refuse to start when the plan would take longer, and skip what is left of it
#                        when it does (default 6)
#   -h, --help           this help
# CPU lists are comma-separated numbers or ranges, as taskset takes them (0-7 or 0,2,4).
#
# A quick run on a 2-CPU machine: scaling.sh --threads 1 --connections 64 --duration 2 --rounds 1
#
# Exit status: 0 when every server started and every run completed without errors, 1 otherwise, 2 for a
# usage error.
set -euo pipefail

command_line="$0${*:+ $*}"
# (No dirname: the script uses only bash builtins and a few coreutils, listed in README.md.)
case ${BASH_SOURCE[0]} in
  */*) script_dir=$(cd "${BASH_SOURCE[0]%/*}" && pwd) ;;
  *) script_dir=$PWD ;;
esac
if [[ -x $script_dir/bin/http_load ]]; then
  bundle=$script_dir
else
  bundle=$(cd "$script_dir/../.." && pwd)/build/bundle
fi
thread_list=
connections=256
depth_list=1,16
duration=5
warmup=1
rounds=2
server_list=hello,nginx
path=/plaintext
server_cpu_spec=
load_cpu_spec=
load_threads=
results_dir=
max_minutes=6

usage() {
  local line
  while IFS= read -r line; do
    [[ $line == '#!'* ]] && continue
    [[ $line == 'set -euo pipefail' ]] && break
    line=${line#\#}
    echo "${line# }"
  done <"${BASH_SOURCE[0]}"
}
usage_error() { echo "scaling.sh: $1 (see --help)" >&2; exit 2; }
number() { [[ $2 =~ ^[0-9]+$ ]] || usage_error "$1 needs a whole number, got '$2'"; echo "$2"; }

while (( $# > 0 )); do
  case $1 in
    --bundle) bundle=${2:-}; shift ;;
    --threads) thread_list=${2:-}; shift ;;
    --connections) connections=$(number "$1" "${2:-}"); shift ;;
    --depths) depth_list=${2:-}; shift ;;
    --duration) duration=$(number "$1" "${2:-}"); shift ;;
    --warmup) warmup=$(number "$1" "${2:-}"); shift ;;
    --rounds) rounds=$(number "$1" "${2:-}"); shift ;;
    --servers) server_list=${2:-}; shift ;;
    --path) path=${2:-}; shift ;;
    --server-cpus) server_cpu_spec=${2:-}; shift ;;
    --load-cpus) load_cpu_spec=${2:-}; shift ;;
    --load-threads) load_threads=$(number "$1" "${2:-}"); shift ;;
    --results-dir) results_dir=${2:-}; shift ;;
    --max-minutes) max_minutes=$(number "$1" "${2:-}"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done
(( rounds >= 1 && duration >= 1 && connections >= 1 && max_minutes >= 1 )) ||
  usage_error "--rounds, --duration, --connections and --max-minutes must be at least 1"
[[ $path == /* ]] || usage_error "--path must start with /"
IFS=, read -r -a depths <<<"$depth_list"
IFS=, read -r -a servers <<<"$server_list"
for depth in "${depths[@]}"; do [[ $depth =~ ^[1-9][0-9]*$ ]] || usage_error "bad depth '$depth'"; done
for server in "${servers[@]}"; do [[ $server == hello || $server == nginx ]] || usage_error "unknown server '$server'"; done
(( ${#depths[@]} > 0 && ${#servers[@]} > 0 )) || usage_error "--depths and --servers need at least one value"

http_load=$bundle/bin/http_load
loader=$bundle/lib/ld-linux-x86-64.so.2
[[ -x $http_load && -x $bundle/bin/hello ]] ||
  { echo "scaling.sh: no bundle at $bundle (make one with benchmarks/load/bundle.sh, or pass --bundle)" >&2; exit 1; }

# cpu_list SPEC: the CPUs of a taskset-style list ("0-3,8"), one per line. SPEC must be valid_cpu_spec.
cpu_list() {
  local range
  local -a ranges
  IFS=, read -r -a ranges <<<"$1"
  for range in "${ranges[@]}"; do
    [[ $range =~ ^([0-9]+)(-([0-9]+))?$ ]]
    local cpu=${BASH_REMATCH[1]} last=${BASH_REMATCH[3]:-${BASH_REMATCH[1]}}
    for (( ; cpu <= last; cpu++ )); do echo "$cpu"; done
  done
}
# valid_cpu_spec SPEC: true for a list of numbers and ranges, such as "0-3,8".
valid_cpu_spec() { [[ $1 =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]]; }
for spec in "$server_cpu_spec" "$load_cpu_spec"; do
  [[ -z $spec ]] || valid_cpu_spec "$spec" || usage_error "bad CPU list '$spec'"
done
# join LIST...: the arguments separated by commas.
join() { local IFS=,; echo "$*"; }

# The CPUs this script may use: its affinity (which a container's cpuset narrows), else 0..nproc-1.
allowed_spec=
while IFS=$' \t:' read -r key value; do
  [[ $key == Cpus_allowed_list ]] && allowed_spec=$value
done </proc/self/status
valid_cpu_spec "$allowed_spec" || allowed_spec="0-$(( $(nproc) - 1 ))"
mapfile -t allowed < <(cpu_list "$allowed_spec")
half=$(( ${#allowed[@]} / 2 ))
if (( half == 0 )); then
  echo "scaling.sh: warning: one CPU: the servers and http_load share it, and the figures mean little" >&2
  half=1
  allowed+=("${allowed[0]}")
fi
if [[ -n $server_cpu_spec ]]; then mapfile -t server_cpus < <(cpu_list "$server_cpu_spec"); else server_cpus=("${allowed[@]:0:half}"); fi
if [[ -n $load_cpu_spec ]]; then mapfile -t load_cpus < <(cpu_list "$load_cpu_spec"); else load_cpus=("${allowed[@]:half}"); fi
load_threads=${load_threads:-${#load_cpus[@]}}
(( load_threads >= 1 )) || usage_error "--load-threads must be at least 1"
if [[ -z $thread_list ]]; then
  threads=()
  for n in 1 2 4 8; do (( n <= ${#server_cpus[@]} )) && threads+=("$n"); done
else
  IFS=, read -r -a threads <<<"$thread_list"
fi
for n in "${threads[@]}"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || usage_error "bad thread count '$n'"
  (( n <= ${#server_cpus[@]} )) || usage_error "$n threads need $n server CPUs; there are ${#server_cpus[@]} (--server-cpus)"
done
(( ${#threads[@]} > 0 )) || usage_error "no thread count to measure"
(( connections >= load_threads )) || usage_error "--connections must be at least --load-threads"

# The whole plan must fit the limit: each server start takes the load of its runs, plus about a second to
# start, check and stop the server (a fraction of that on the 2-CPU machine this was written on).
per_start=$(( 1 + ${#depths[@]} * (warmup + duration) ))
starts=$(( rounds * ${#threads[@]} * ${#servers[@]} ))
estimate=$(( starts * per_start ))
limit_s=$(( max_minutes * 60 ))
(( estimate <= limit_s )) ||
  usage_error "the plan takes about $estimate s, more than --max-minutes $max_minutes allows; measure less"

# The bundled taskset serves where the machine has none.
if command -v taskset >/dev/null; then
  taskset_command=(taskset)
else
  taskset_command=("$loader" --library-path "$bundle/lib" "$bundle/bin/taskset")
fi
# bounded SECONDS COMMAND...: runs COMMAND, killed after SECONDS where coreutils' timeout exists (http_load
# stops by itself; this only bounds one that hangs).
bounded() {
  local seconds=$1
  shift
  if command -v timeout >/dev/null; then timeout -k 5 "$seconds" "$@"; else "$@"; fi
}

results_dir=${results_dir:-$bundle/results}
mkdir -p "$results_dir"
stamp=$(date +%Y%m%d-%H%M%S)
runs_csv=$results_dir/scaling-$stamp.csv
work_dir=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-scaling.XXXXXX")
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# alive PID: true while PID runs (a zombie counts as gone).
alive() {
  local stat
  # (read, not $(<file): with errexit, bash exits when $(<file) cannot open the file, whatever follows.)
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  local fields=${stat##*) }
  [[ ${fields%% *} != Z ]]
}

server_pid=
# stop_server: SIGTERM to the running server, SIGKILL after 10 s, then reap it.
stop_server() {
  local pid=$server_pid attempt
  [[ -n $pid ]] || return 0
  server_pid=
  kill -TERM "$pid" 2>/dev/null || true
  for (( attempt = 0; attempt < 200; attempt++ )); do
    alive "$pid" || break
    sleep 0.05
  done
  if alive "$pid"; then
    echo "    still running 10 s after SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() { stop_server; rm -rf "$work_dir"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port: a loopback port below the ephemeral range (so that no client connection takes it) on which
# nothing listens: a connection to it is refused.
free_port() {
  local low high port attempt
  { read -r low high </proc/sys/net/ipv4/ip_local_port_range; } 2>/dev/null || { low=32768 high=60999; }
  local bottom=$(( low > 12000 ? 10000 : high + 1 )) top=$(( low > 12000 ? low : 65536 ))
  for (( attempt = 0; attempt < 100; attempt++ )); do
    port=$(( bottom + (RANDOM * 32768 + RANDOM) % (top - bottom) ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# children PID: the pids whose parent is PID, one per line.
children() {
  local stat_file stat rest
  for stat_file in /proc/[0-9]*/stat; do
    { read -r stat <"$stat_file"; } 2>/dev/null || continue
    rest=${stat##*) }
    read -r _ parent _ <<<"$rest"
    [[ $parent == "$1" ]] && echo "${stat%% *}"
  done
  return 0
}

case $path in
  /plaintext) expected_body='Hello, World!' ;;
  /json) expected_body='{"message":"Hello, World!"}' ;;
  *) expected_body= ;;
esac

# start_server NAME N: starts NAME with N threads on the first N server CPUs, waits until it answers, checks
# it, and sets server_pid, server_port and measured_pids (the processes whose CPU time counts). Returns 1,
# with the reason and the server's log on stderr, when it does not come up or answers wrongly.
start_server() {
  local name=$1 n=$2 dir=$work_dir/$1-$2 cpus line attempt body
  cpus=$(join "${server_cpus[@]:0:n}")
  mkdir -p "$dir"
  case $name in
    hello)
      # Port 0: hello picks a free port and prints it ("listening on http://127.0.0.1:PORT"). The log exists
      # before hello starts, so that reading it never races with the shell that opens it for hello.
      : >"$dir/server.log"
      "${taskset_command[@]}" -c "$cpus" "$bundle/bin/hello" --bind 127.0.0.1 --port 0 --threads "$n" \
        >"$dir/server.log" 2>&1 </dev/null &
      server_pid=$!
      server_port=
      for (( attempt = 0; attempt < 200; attempt++ )); do
        alive "$server_pid" || break
        while IFS= read -r line; do
          [[ $line =~ ^listening\ on\ http://127\.0\.0\.1:([0-9]+) ]] && server_port=${BASH_REMATCH[1]}
        done <"$dir/server.log"
        [[ -z $server_port ]] || break
        sleep 0.05
      done
      ;;
    nginx)
      server_port=$(free_port) || { echo "    no free port found" >&2; return 1; }
      local config user=
      config=$(<"$bundle/nginx.conf.in")
      # As root, nginx switches its workers to the user "nobody" unless told otherwise; stay root instead,
      # which every machine has.
      (( EUID == 0 )) && user='user root root;'
      config=${config//@PREFIX@/$dir}
      config=${config//@BIND@/127.0.0.1}
      config=${config//@PORT@/$server_port}
      config=${config//@NOFILE@/$(ulimit -n)}
      config=${config//@WORKER_CONNECTIONS@/$(( connections + connections / 8 + 64 ))}
      config=${config//@WORKERS@/$n}
      config=${config//@USER@/$user}
      echo "$config" >"$dir/nginx.conf"
      "${taskset_command[@]}" -c "$cpus" "$loader" --library-path "$bundle/lib" "$bundle/bin/nginx" \
        -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/server.log" 2>&1 </dev/null &
      server_pid=$!
      ;;
  esac
  if [[ -z $server_port ]] || ! alive "$server_pid" ||
     ! body=$(bounded 30 "$http_load" --port "$server_port" --path "$path" --check --wait 10 2>"$dir/check.log"); then
    echo "    $name did not start or answer; its output:" >&2
    cat "$dir"/*.log >&2 2>/dev/null || true
    stop_server
    return 1
  fi
  if [[ -n $expected_body && $body != "$expected_body" ]]; then
    echo "    $name answered GET $path with '$body', expected '$expected_body'" >&2
    stop_server
    return 1
  fi
  measured_pids=$server_pid
  if [[ $name == nginx ]]; then
    # The check got an answer, but every worker must be up before the CPU time of all of them is read.
    local workers=()
    for (( attempt = 0; attempt < 100; attempt++ )); do
      mapfile -t workers < <(children "$server_pid")
      (( ${#workers[@]} >= n )) && break
      sleep 0.05
    done
    if (( ${#workers[@]} != n )); then
      echo "    nginx: expected $n workers, found ${#workers[@]}" >&2
      stop_server
      return 1
    fi
    measured_pids=$(join "$server_pid" "${workers[@]}")
  fi
}

# Per (server, N, depth), space-separated values over the rounds.
declare -A rps_of=() cpu_per_req_of=() server_pct_of=() load_pct_of=()
failures=0
load_cpu_list=$(join "${load_cpus[@]}")
echo "switchboard scaling benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  command: $command_line"
model=
while IFS=: read -r key value; do
  [[ $key == 'model name'* ]] && { model=${value# }; break; }
done </proc/cpuinfo
echo "  host: ${#allowed[@]} CPUs ($allowed_spec; ${model:-unknown model}), $(uname -sr)"
# Which CPUs share a core matters: a server thread and a load thread on two hyper-threads of one core slow
# each other down. Printed where the machine tells (sysfs).
siblings() {
  local list
  { read -r list <"/sys/devices/system/cpu/cpu$1/topology/thread_siblings_list"; } 2>/dev/null || list=unknown
  echo "$list"
}
echo "  hyper-thread siblings: of CPU ${server_cpus[0]} (first server CPU): $(siblings "${server_cpus[0]}");" \
     "of CPU ${load_cpus[0]} (first load CPU): $(siblings "${load_cpus[0]}")"
echo "  servers on CPUs $(join "${server_cpus[@]}") (the first N), http_load on CPUs $load_cpu_list with" \
     "$load_threads threads; $connections connections; GET $path"
echo "  N = ${threads[*]}; depths ${depths[*]}; $rounds round(s) x (${warmup} s warm-up + ${duration} s);" \
     "about $estimate s; runs in $runs_csv"
echo "round,server,threads,depth,status,requests,rps,p50_us,p99_us,server_cpu_us,cpu_us_per_req,server_cpu_pct,load_cpu_us,load_cpu_pct,errors" >"$runs_csv"

# measure NAME N DEPTH ROUND: one run of http_load against the started server; records and prints it.
measure() {
  local name=$1 n=$2 depth=$3 round=$4 log=$work_dir/run.log line key status=ok
  local -A load=()
  bounded $(( warmup + duration + 60 )) "${taskset_command[@]}" -c "$load_cpu_list" "$http_load" \
    --port "$server_port" --path "$path" --threads "$load_threads" --connections "$connections" \
    --pipeline "$depth" --duration "$duration" --warmup "$warmup" --measure-pids "$measured_pids" \
    >"$log" 2>&1 || status=errors
  while IFS= read -r line; do
    [[ $line == 'SB_LOAD '* ]] || continue
    for key in ${line#SB_LOAD }; do load[${key%%=*}]=${key#*=}; done
  done <"$log"
  if [[ -z ${load[requests]:-} || ${load[requests]} == 0 || ${load[server_cpu_us]} -lt 0 ]]; then
    echo "    $name N=$n depth $depth: no result; http_load said:"
    while IFS= read -r line; do echo "      $line"; done <"$log"
    echo "$round,$name,$n,$depth,failed,,,,,,,,,," >>"$runs_csv"
    failures=$(( failures + 1 ))
    return
  fi
  [[ $status == ok ]] || failures=$(( failures + 1 ))
  local requests=${load[requests]} window=${load[duration_us]}
  local per_req=$(( (load[server_cpu_us] * 100 + requests / 2) / requests ))   # hundredths of a microsecond
  local server_pct=$(( load[server_cpu_us] * 100 / window )) load_pct=$(( load[cpu_us] * 100 / window ))
  local key3="$name,$n,$depth"
  rps_of[$key3]+=" ${load[rps]}"
  cpu_per_req_of[$key3]+=" $per_req"
  server_pct_of[$key3]+=" $server_pct"
  load_pct_of[$key3]+=" $load_pct"
  echo "$round,$name,$n,$depth,$status,$requests,${load[rps]},${load[p50_us]},${load[p99_us]},${load[server_cpu_us]},$(fixed2 "$per_req"),$server_pct,${load[cpu_us]},$load_pct,${load[errors]}" >>"$runs_csv"
  printf '  r%d %-5s N=%-2d depth %-3d %9d req/s  p99 %8s ms  server %6s us/req %5d%% CPU  http_load %5d%% CPU%s\n' \
    "$round" "$name" "$n" "$depth" "${load[rps]}" "$(fixed3 "${load[p99_us]}")" "$(fixed2 "$per_req")" \
    "$server_pct" "$load_pct" "$([[ $status == ok ]] || echo "  ERRORS: ${load[errors]}")"
}

# fixed2 X: X hundredths as a decimal ("745" -> "7.45"); fixed3 X: X thousandths.
fixed2() { printf '%d.%02d' $(( $1 / 100 )) $(( $1 % 100 )); }
fixed3() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }

start_time=$SECONDS
skipped=0
for (( round = 1; round <= rounds; round++ )); do
  order=("${servers[@]}")
  (( round % 2 == 0 && ${#servers[@]} == 2 )) && order=("${servers[1]}" "${servers[0]}")
  for n in "${threads[@]}"; do
    for name in "${order[@]}"; do
      # A start that could not finish within the limit is skipped (so is the rest of the plan).
      if (( SECONDS - start_time + per_start > limit_s )); then
        skipped=$(( skipped + 1 ))
        continue
      fi
      if ! start_server "$name" "$n"; then
        echo "  r$round $name N=$n: FAILED to start or to answer correctly (see above)"
        failures=$(( failures + 1 ))
        continue
      fi
      for depth in "${depths[@]}"; do
        alive "$server_pid" || { echo "  r$round $name N=$n: the server exited"; failures=$(( failures + 1 )); break; }
        measure "$name" "$n" "$depth" "$round"
      done
      stop_server
    done
  done
done
(( skipped == 0 )) || { echo "  $skipped server start(s) skipped: the run passed --max-minutes $max_minutes"; failures=$(( failures + 1 )); }

# median VALUES...: the median of whole numbers (the mean of the two middle ones for an even count), or
# nothing when there are none.
median() {
  local -a sorted=()
  local v i count
  for v in "$@"; do
    for (( i = ${#sorted[@]}; i > 0 && sorted[i - 1] > v; i-- )); do sorted[i]=${sorted[i - 1]}; done
    sorted[i]=$v
  done
  count=${#sorted[@]}
  (( count > 0 )) || return 0
  echo $(( (sorted[(count - 1) / 2] + sorted[count / 2]) / 2 ))
}
# ratio A B: A / B with two decimals, or n/a.
ratio() {
  if [[ -n $1 && -n $2 ]] && (( $2 > 0 )); then fixed2 $(( ($1 * 200 + $2) / ($2 * 2) )); else echo n/a; fi
}

# cell VALUES...: the median of hundredths as a decimal, or n/a.
cell() {
  local m
  m=$(median "$@")
  if [[ -n $m ]]; then fixed2 "$m"; else echo n/a; fi
}

for depth in "${depths[@]}"; do
  echo
  if (( depth == 1 )); then what="no pipelining"; else what="$depth-deep pipelining"; fi
  echo "$connections connections, $what: medians of $rounds round(s) x $duration s"
  echo "(scale: req/s at N / req/s at N=${threads[0]}; us/req: server CPU time per request; CPU: server CPU use, % of one CPU)"
  line=$(printf '%3s' N)
  for name in "${servers[@]}"; do line+=$(printf ' | %15s %5s %6s %5s' "$name req/s" scale us/req CPU); done
  (( ${#servers[@]} == 2 )) && line+=" | ${servers[0]}/${servers[1]}"
  echo "$line"
  declare -A base=() med=()
  for n in "${threads[@]}"; do
    line=$(printf '%3s' "$n")
    for name in "${servers[@]}"; do
      key="$name,$n,$depth"
      # shellcheck disable=SC2086  # the lists are space-separated whole numbers
      med[$name]=$(median ${rps_of[$key]:-})
      base[$name]=${base[$name]:-${med[$name]}}
      # shellcheck disable=SC2086
      line+=$(printf ' | %15s %5s %6s %4s%%' "${med[$name]:-n/a}" "$(ratio "${med[$name]}" "${base[$name]}")" \
              "$(cell ${cpu_per_req_of[$key]:-})" "$(median ${server_pct_of[$key]:-})")
    done
    (( ${#servers[@]} == 2 )) && line+=$(printf ' | %11s' "$(ratio "${med[${servers[0]}]}" "${med[${servers[1]}]}")")
    echo "$line"
  done
  unset base med
done

# http_load near the limit of its CPUs means requests/s measures it as much as the server.
busiest=0
for values in "${load_pct_of[@]}"; do
  for v in $values; do (( v > busiest )) && busiest=$v; done
done
if (( busiest * 100 > ${#load_cpus[@]} * 100 * 85 )); then
  echo
  echo "Note: http_load used up to $busiest% of one CPU, near the $(( ${#load_cpus[@]} * 100 ))% its" \
       "${#load_cpus[@]} CPU(s) give it: where it did, requests/s is bounded by the load generator, not the server," \
       "and CPU time per request is the figure that compares the servers."
fi
echo
echo "Runs: $runs_csv"
if (( failures > 0 )); then
  echo "scaling.sh: $failures failure(s) (see above)" >&2
  exit 1
fi
