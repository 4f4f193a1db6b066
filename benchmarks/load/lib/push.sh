# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # load_dir, root_dir, command_line, scenarios and families come from the
# sourcing script, which reads PUSH_SHIFT and the variables set here
# The run machinery of the push benchmarks, ws.sh, sse.sh and longpoll.sh: common options, interleaved rounds of a load
# client against servers pinned to one CPU, per-run CSV rows, medians with ratios, JSON, and the memory
# figures through memory.sh. Sourced by those scripts, which set first:
#
#   PUSH_BENCH          "ws", "sse" or "longpoll": names the result files
#   PUSH_TOOL           the load client in the bin directory: ws_load, sse_load or longpoll_load
#   PUSH_BASES          the servers the ratios are taken to (e.g. "beast node")
#   PUSH_SCENARIO_RE    a regular expression every scenario must match
#   PUSH_MEMORY_FLAGS   memory.sh's flags that choose the kind of idle connection (e.g. --websocket /echo)
# and define:
#   push_server_name FAMILY KIND         prints the lib/servers.sh server of FAMILY for scenarios of KIND
#   push_scenario SCENARIO KIND          false unless SCENARIO is of KIND; else sets PUSH_CONNECTIONS,
#                                        PUSH_DEPTH and PUSH_DESCRIPTION (no commas)
#   push_client_command KIND PORT PID FAMILY
#                                        sets PUSH_COMMAND to the client's command line for a run of the
#                                        current scenario against the server of FAMILY on PORT whose CPU is PID's
# and may define:
#   push_check_server FAMILY NAME        after lib/servers.sh started and validated the server NAME of FAMILY:
#                                        checks what this benchmark uses of it; false (the reason on stderr)
#                                        when it does not work, and the server is then not measured
# and set the defaults of `scenarios` and `families` (comma-separated). The defaults of the other common options
# (rounds ... memory_connections below) may be changed before push_parse_common is used.

# At the top level, so that their global arrays (SB_PID, ...) are not local to a function.
# shellcheck source-path=SCRIPTDIR source=servers.sh
source "$load_dir/lib/servers.sh"
# shellcheck source-path=SCRIPTDIR source=report.sh
source "$load_dir/lib/report.sh"

rounds=3
duration=5
warmup=1
size=64
server_cpu=
client_cpu=
bin_dir=$root_dir/build/release/bin
results_dir=$load_dir/results
memory_connections=10000
run_memory=1
PUSH_FAILURES=0


# push_parse_common OPTION VALUE: handles one of the options every push benchmark has and sets PUSH_SHIFT to
# the arguments it took (1 or 2); false when OPTION is not one of them.
push_parse_common() {
  PUSH_SHIFT=2
  case $1 in
    --rounds) rounds=$(number "$1" "$2") ;;
    --duration) duration=$(number "$1" "$2") ;;
    --warmup) warmup=$(number "$1" "$2") ;;
    --size) size=$(number "$1" "$2") ;;
    --server-cpu) server_cpu=$(number "$1" "$2") ;;
    --client-cpu) client_cpu=$(number "$1" "$2") ;;
    --bin-dir) bin_dir=$2 ;;
    --results-dir) results_dir=$2 ;;
    --memory-connections) memory_connections=$(number "$1" "$2") ;;
    --no-memory) run_memory=0; PUSH_SHIFT=1 ;;
    --scenarios) scenarios=$2 ;;
    --servers) families=$2 ;;
    -h|--help) usage; exit 0 ;;
    *) return 1 ;;
  esac
}

# push_split_lists FAMILY...: splits `scenarios` and `families` into the arrays scenario_list and family_list;
# a usage error for a family that is not one of FAMILY.
push_split_lists() {
  IFS=, read -r -a scenario_list <<<"$scenarios"
  IFS=, read -r -a family_list <<<"$families"
  local family
  for family in "${family_list[@]}"; do
    [[ " $* " == *" $family "* ]] || usage_error "unknown server '$family' (one of: $*)"
  done
}

# push_prepare: checks the options, tools and limits, sets up the server library, picks the CPUs, creates
# the result files and prints the run's header. Uses scenario_list and family_list (arrays).
push_prepare() {
  (( rounds >= 1 && duration >= 1 )) || usage_error "--rounds and --duration must be at least 1"
  local scenario tool n max=$memory_connections
  for scenario in "${scenario_list[@]}"; do
    [[ $scenario =~ $PUSH_SCENARIO_RE ]] || usage_error "bad scenario '$scenario'"
    n=${scenario//[^0-9-]/}; n=${n%%-*}
    (( n <= 100000 )) || usage_error "at most 100000 connections per scenario"
    (( n <= max )) || max=$n
  done
  for tool in taskset ss awk; do
    command -v "$tool" >/dev/null || { echo "$PUSH_BENCH.sh: $tool is required" >&2; exit 1; }
  done
  [[ -x $bin_dir/$PUSH_TOOL ]] ||
    { echo "$PUSH_BENCH.sh: $bin_dir/$PUSH_TOOL is not built (cmake --build --preset release)" >&2; exit 1; }
  # Each connection is a descriptor in the client and one in the server; children inherit the soft limit.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if (( $(ulimit -n) < max + 256 )); then
    echo "$PUSH_BENCH.sh: $max connections need an open-file limit of at least $(( max + 256 )), and the hard" \
         "limit is $(ulimit -Hn): lower the scenarios or --memory-connections" >&2
    exit 1
  fi

  SB_BIN_DIR=$bin_dir
  SB_MAX_CONNECTIONS=$max
  SB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-$PUSH_BENCH.XXXXXX")
  trap 'sb_stop_all; rm -rf "$SB_TMP"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local -a allowed_cpus
  mapfile -t allowed_cpus < <(sb_allowed_cpus)
  PUSH_CPUS=${#allowed_cpus[@]}
  server_cpu=${server_cpu:-${allowed_cpus[0]}}
  client_cpu=${client_cpu:-${allowed_cpus[1]:-${allowed_cpus[0]}}}
  local cpu
  for cpu in "$server_cpu" "$client_cpu"; do
    [[ " ${allowed_cpus[*]} " == *" $cpu "* ]] ||
      { echo "$PUSH_BENCH.sh: CPU $cpu is not one this script may use (${allowed_cpus[*]})" >&2; exit 1; }
  done
  (( server_cpu != client_cpu )) ||
    echo "$PUSH_BENCH.sh: warning: the servers and $PUSH_TOOL share CPU $server_cpu: the figures mean little" >&2

  PUSH_STAMP=$(date +%Y%m%d-%H%M%S)
  mkdir -p "$results_dir"
  PUSH_RUNS_CSV=$results_dir/$PUSH_BENCH-$PUSH_STAMP.csv
  PUSH_MEDIANS_CSV=$results_dir/$PUSH_BENCH-$PUSH_STAMP-medians.csv
  PUSH_JSON=$results_dir/$PUSH_BENCH-$PUSH_STAMP.json
  PUSH_LOG_DIR=$results_dir/$PUSH_BENCH-$PUSH_STAMP-logs
  mkdir -p "$PUSH_LOG_DIR"
  local header="scenario,description,kind,connections,in_flight,round,server,server_name,status,messages,rate"
  header+=",publishes,lost,p50_us,p99_us,max_us,server_cpu_us,cpu_us_per_msg,server_cpu_pct,client_cpu_pct"
  header+=",other_cpu_pct,errors"
  echo "$header" >"$PUSH_RUNS_CSV"
  PUSH_FAILED_TAIL=$(printf ',%.0s' $(seq 9 "$(awk -F, '{ print NF }' <<<"$header")"))

  echo "  command: $command_line"
  echo "  host: $PUSH_CPUS CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r)," \
       "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "  $PUSH_TOOL (1 thread) on CPU $client_cpu; servers on CPU $server_cpu; $size-byte text messages;" \
       "$rounds rounds x (${warmup} s warm-up + ${duration} s)"
}

# push_measure SCENARIO KIND ROUND FAMILY: one client run against the started server of FAMILY for the
# current scenario (PUSH_CONNECTIONS, PUSH_DEPTH, PUSH_DESCRIPTION); appends its row to the runs CSV and prints
# a line. False when the run failed, or had errors or lost deliveries.
push_measure() {
  local scenario=$1 kind=$2 round=$3 family=$4
  local name log pid times line kv cpu_before cpu_after load_before load_after row
  name=$(push_server_name "$family" "$kind")
  log=$PUSH_LOG_DIR/$scenario-$family-r$round.txt
  pid=${SB_WORK_PID[$name]}
  row="$scenario,$PUSH_DESCRIPTION,$kind,$PUSH_CONNECTIONS,$PUSH_DEPTH,$round,$family,$name"
  local -A r=()
  if ! sb_alive "$pid"; then
    echo "  $family: round $round: the server is no longer running"
    echo "$row,failed$PUSH_FAILED_TAIL" >>"$PUSH_RUNS_CSV"
    return 1
  fi
  push_client_command "$kind" "${SB_PORT[$name]}" "$pid" "$family"
  cpu_before=$(sb_cpu_us "$pid")
  load_before=$(sb_cpus_time_us "$server_cpu" "$client_cpu")
  # The client stops by itself; the timeout only bounds one that hangs (opening 10,000 connections takes seconds).
  times=$( { TIMEFORMAT='%3R %3U %3S'; time timeout --foreground -k 5 $(( warmup + duration + 180 )) \
             taskset -c "$client_cpu" "${PUSH_COMMAND[@]}" >"$log" 2>&1; } 2>&1 ) || true
  cpu_after=$(sb_cpu_us "$pid")
  load_after=$(sb_cpus_time_us "$server_cpu" "$client_cpu")
  if ! line=$(grep -m1 '^SB_LOAD ' "$log"); then
    echo "  $family: round $round: $PUSH_TOOL failed; its output:"
    sed 's/^/    /' "$log"
    echo "$row,failed$PUSH_FAILED_TAIL" >>"$PUSH_RUNS_CSV"
    return 1
  fi
  for kv in ${line#SB_LOAD }; do r[${kv%%=*}]=${kv#*=}; done
  # "other": CPU time on the two CPUs that neither the server nor the client used, over the client's whole
  # run (connecting and warm-up included, since /proc/stat is read around it).
  awk -v csv="$PUSH_RUNS_CSV" -v row="$row" -v messages="${r[messages]}" -v rate="${r[rate]}" \
      -v publishes="${r[publishes]}" -v lost="${r[lost]}" -v p50="${r[p50_us]}" -v p99="${r[p99_us]}" \
      -v max="${r[max_us]}" -v window="${r[duration_us]}" -v server_cpu="${r[server_cpu_us]}" \
      -v client_cpu="${r[cpu_us]}" -v errors="${r[errors]}" -v times="$times" \
      -v server_total=$(( cpu_after - cpu_before )) -v load_before="$load_before" -v load_after="$load_after" \
      -v name="$family" -v round="$round/$rounds" -v what="$([[ $kind == echo ]] && echo 'round trips' || echo deliveries)" \
      -v tool="$PUSH_TOOL" 'BEGIN {
    split(times, t, " "); split(load_before, b, " "); split(load_after, a, " ")
    wall = t[1] * 1e6
    other = wall > 0 ? (a[1] - b[1] - server_total - (t[2] + t[3]) * 1e6) / wall * 100 : 0
    failed = errors > 0 || lost > 0 || messages == 0
    per_msg = messages ? server_cpu / messages : 0
    printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%.3f,%.1f,%.1f,%.1f,%s\n", row, (failed ? "errors" : "ok"), messages,
           rate, publishes, lost, p50, p99, max, server_cpu, per_msg, server_cpu / window * 100,
           client_cpu / window * 100, other, errors >> csv
    printf "  %-13s round %-5s %9d %s/s  p50 %7.2f ms  p99 %7.2f ms  %6.2f us CPU/msg  CPU: server %3.0f%%" \
           " %s %3.0f%% other %3.0f%%%s\n", name, round, rate, what, p50 / 1000, p99 / 1000, per_msg,
           server_cpu / window * 100, tool, client_cpu / window * 100, (other > 0 ? other : 0),
           (failed ? sprintf("  ERRORS: %d connection(s) failed, %d deliveries lost", errors, lost) : "")
    exit failed }'
}

declare -A PUSH_SKIPPED=()
PUSH_STARTED_ANY=0
# push_run_kind KIND: the scenarios of KIND, each with every server of family_list started fresh and measured
# once per round, in an order that rotates from round to round.
push_run_kind() {
  local kind=$1 scenario family name reason round k
  local -a started
  for scenario in "${scenario_list[@]}"; do
    push_scenario "$scenario" "$kind" || continue
    echo
    echo "== $scenario: $PUSH_DESCRIPTION"
    started=()
    for family in "${family_list[@]}"; do
      name=$(push_server_name "$family" "$kind")
      reason=$(sb_server_missing "$name")
      if [[ -n $reason ]]; then
        echo "  $family: skipped: $reason"
        PUSH_SKIPPED[$family]=$reason
      elif sb_server_start "$name" "$server_cpu" &&
           { ! declare -F push_check_server >/dev/null || push_check_server "$family" "$name" ||
             { sb_server_stop "$name"; false; }; }; then
        echo "  $family: $name, pid ${SB_PID[$name]} on port ${SB_PORT[$name]} (measured pid ${SB_WORK_PID[$name]})"
        started+=("$family")
        PUSH_STARTED_ANY=1
      else
        echo "  $family: FAILED to start or to pass its check (see above)"
        PUSH_SKIPPED[$family]="failed to start or to pass its check"
        PUSH_FAILURES=$((PUSH_FAILURES + 1))
      fi
    done
    for (( round = 1; round <= rounds; round++ )); do
      for (( k = 0; k < ${#started[@]}; k++ )); do
        family=${started[(round - 1 + k) % ${#started[@]}]}
        push_measure "$scenario" "$kind" "$round" "$family" || PUSH_FAILURES=$((PUSH_FAILURES + 1))
      done
    done
    for family in "${started[@]}"; do sb_server_stop "$(push_server_name "$family" "$kind")"; done
  done
}

# push_report EXTRA_CONFIG_JSON: prints the medians and their ratios, and writes the JSON file (with
# EXTRA_CONFIG_JSON, '"key": value' pairs or nothing, added to its config).
push_report() {
  (( PUSH_STARTED_ANY )) || { echo "$PUSH_BENCH.sh: no server to measure" >&2; exit 1; }
  echo
  echo "Medians. CPU us/msg: the server's CPU time per round trip or delivery. srv CPU, cli CPU: the server's and"
  echo "$PUSH_TOOL's use of one CPU over the window; other: CPU used on the same two CPUs by anything else."
  awk -v medians="$PUSH_MEDIANS_CSV" -v bases="$PUSH_BASES" -v unit="msg" -f "$load_dir/lib/stats.awk" \
      -f "$load_dir/lib/push_summary.awk" "$PUSH_RUNS_CSV"
  local family first=1
  {
    printf '{\n  "benchmark": "%s",\n  "started": %s,\n' "$PUSH_BENCH" "$(sb_json_string "$PUSH_STAMP")"
    printf '  "command": %s,\n' "$(sb_json_string "$command_line")"
    printf '  "host": {"cpus": %d, "cpu_model": %s, "kernel": %s, "load_average": %s},\n' "$PUSH_CPUS" \
      "$(sb_json_string "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)")" \
      "$(sb_json_string "$(uname -r)")" "$(sb_json_string "$(cut -d' ' -f1-3 /proc/loadavg)")"
    printf '  "config": {"rounds": %d, "duration_s": %d, "warmup_s": %d, "size": %d,' \
      "$rounds" "$duration" "$warmup" "$size"
    printf ' "server_cpu": %d, "client_cpu": %d%s},\n' "$server_cpu" "$client_cpu" "${1:+, $1}"
    printf '  "skipped": {'
    for family in "${!PUSH_SKIPPED[@]}"; do
      printf '%s%s: %s' "$( (( first )) || echo ', ')" "$(sb_json_string "$family")" \
        "$(sb_json_string "${PUSH_SKIPPED[$family]}")"
      first=0
    done
    printf '},\n  "runs": %s,\n  "medians": %s\n}\n' "$(sb_csv_to_json "$PUSH_RUNS_CSV")" \
      "$(sb_csv_to_json "$PUSH_MEDIANS_CSV")"
  } >"$PUSH_JSON"
  echo
  echo "Raw runs: $PUSH_RUNS_CSV; medians: $PUSH_MEDIANS_CSV; both with the settings: $PUSH_JSON;" \
       "$PUSH_TOOL output: $PUSH_LOG_DIR/"
}

# push_memory KIND: memory.sh (with PUSH_MEMORY_FLAGS) over the servers of KIND, then each server's memory per
# idle connection as a ratio to the servers of PUSH_BASES.
push_memory() {
  (( run_memory )) || return 0
  local family memory_dir=$PUSH_LOG_DIR/memory memory_csv
  local -a servers=()
  for family in "${family_list[@]}"; do servers+=("$(push_server_name "$family" "$1")"); done
  echo
  # shellcheck disable=SC2086 # PUSH_MEMORY_FLAGS is a list of words
  "$load_dir/memory.sh" --servers "$(IFS=,; echo "${servers[*]}")" $PUSH_MEMORY_FLAGS \
    --connections "$memory_connections" --server-cpu "$server_cpu" --bin-dir "$bin_dir" \
    --results-dir "$memory_dir" || PUSH_FAILURES=$((PUSH_FAILURES + 1))
  memory_csv=$(find "$memory_dir" -name 'memory-*.csv' 2>/dev/null | head -n1)
  [[ -n $memory_csv ]] || return 0
  cp "$memory_csv" "$results_dir/$PUSH_BENCH-$PUSH_STAMP-memory.csv"
  local bases=""
  for family in $PUSH_BASES; do bases+=" $(push_server_name "$family" "$1")"; done
  awk -F, -v bases="$bases" 'NR > 1 { kib[$1] = $10; order[++n] = $1 }
    END {
      count = split(bases, base, " ")
      printf "\n  KiB per idle connection (RSS), and its ratio to%s:\n", bases
      for (i = 1; i <= n; i++) {
        line = sprintf("  %-14s %8.2f", order[i], kib[order[i]])
        for (b = 1; b <= count; b++)
          line = line sprintf("  %6s", (base[b] in kib && kib[base[b]] > 0) ? sprintf("%.2f", kib[order[i]] / kib[base[b]]) : "n/a")
        print line
      } }' "$memory_csv"
}

# push_finish: the exit status of the script.
push_finish() {
  if (( PUSH_FAILURES > 0 )); then
    echo "$PUSH_BENCH.sh: $PUSH_FAILURES problem(s) above: the figures are incomplete" >&2
    exit 1
  fi
}
