# shellcheck shell=bash
# The servers of the load benchmarks: availability, start on a free loopback port, validation, and stop by
# pid. Sourced by http.sh and memory.sh, which set SB_BIN_DIR (where the built binaries are), SB_TMP (a
# private temporary directory) and SB_MAX_CONNECTIONS (the most connections a run opens) first.
#
#   nginx   the system nginx binary, run from peers/nginx.conf.in with one worker; the worker is measured
#   beast   bin/peer_beast_http (peers/beast_http.cpp), built when CMake found the Boost headers
#   beast-notimeout   the same without Beast's per-operation timeouts (--idle-timeout 0), to show their cost
#   hello   bin/hello, switchboard's example server, run with --threads 1
# and the WebSocket servers of ws.sh (each validated with `ws_load --check`, which needs bin/ws_load):
#   hello-ws       bin/hello --threads 1 again, for its WebSocket echo at /echo
#   sb-broadcast   bin/peer_ws_broadcast --threads 1 (peers/ws_broadcast.cpp): /subscribe and /publish
#   beast-ws       bin/peer_beast_ws (peers/beast_ws.cpp): /echo, /subscribe and /publish
#   node-ws        peers/ws_node.mjs under node, with the `ws` package from SB_NODE_MODULES: the same three
# and the Server-Sent Events servers of sse.sh (POST /topics/{topic}, GET /topics/{topic}/events; each
# validated with `sse_load --check`, which needs bin/sse_load):
#   notifications  bin/notifications --threads 1 (examples/notifications)
#   nchan          nginx with Debian's Nchan module, run from peers/nchan.conf.in with one worker (measured)
# and the job server of jobs.sh (validated like hello):
#   jobs           bin/jobs --threads 1 --workers SB_JOBS_WORKERS --queue SB_JOBS_QUEUE --max-jobs-per-client
#                  SB_JOBS_QUEUE --retention 0 (examples/jobs; finished jobs are forgotten at once, so the store
#                  never fills; the load comes from one address, which may fill the queue)
#
# Every HTTP server listens on 127.0.0.1 and answers GET /plaintext and GET /json. A started server's pid (the
# one to stop) is SB_PID[name], the pid to measure SB_WORK_PID[name], its port SB_PORT[name].

SB_LOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=proc.sh
source "$SB_LOAD_DIR/lib/proc.sh"

SB_BIND=127.0.0.1
SB_ALL_SERVERS=(nginx beast beast-notimeout hello hello-ws sb-broadcast beast-ws node-ws notifications nchan jobs)
# Debian's libnginx-mod-nchan installs the module here.
SB_NCHAN_MODULE=${SB_NCHAN_MODULE:-/usr/lib/nginx/modules/ngx_nchan_module.so}
# Where node finds the `ws` package (a node_modules folder); ws.sh installs it there.
SB_NODE_MODULES=${SB_NODE_MODULES:-}
# The pool of the jobs server: worker threads and the most jobs waiting for one.
SB_JOBS_WORKERS=${SB_JOBS_WORKERS:-2}
SB_JOBS_QUEUE=${SB_JOBS_QUEUE:-1024}
declare -A SB_PID=() SB_WORK_PID=() SB_PORT=()

# sb_nginx_binary: the nginx executable, or nothing.
sb_nginx_binary() {
  command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true
}

# sb_server_missing NAME: prints why NAME cannot run here, or nothing when it can.
sb_server_missing() {
  case $1 in
    nginx) [[ -n $(sb_nginx_binary) ]] || echo "nginx is not installed (scripts/install-deps.sh --bench)" ;;
    beast|beast-notimeout)
      [[ -x $SB_BIN_DIR/peer_beast_http ]] || echo "not built (needs the Boost headers: libboost-dev)" ;;
    hello) [[ -x $SB_BIN_DIR/hello ]] || echo "not built" ;;
    jobs) [[ -x $SB_BIN_DIR/jobs ]] || echo "bin/jobs is not built (examples/jobs)" ;;
    hello-ws|sb-broadcast|beast-ws)
      local binary
      case $1 in hello-ws) binary=hello ;; sb-broadcast) binary=peer_ws_broadcast ;; beast-ws) binary=peer_beast_ws ;; esac
      if [[ ! -x $SB_BIN_DIR/$binary ]]; then
        echo "bin/$binary is not built$([[ $binary != peer_beast_ws ]] || echo ' (needs the Boost headers: libboost-dev)')"
      elif [[ ! -x $SB_BIN_DIR/ws_load ]]; then
        echo "bin/ws_load (which checks it) is not built"
      fi ;;
    node-ws)
      if ! command -v node >/dev/null; then echo "node is not installed (scripts/install-deps.sh)"
      elif [[ ! -f $SB_NODE_MODULES/ws/package.json ]]; then echo "the ws package is not installed in '$SB_NODE_MODULES'"
      elif [[ ! -x $SB_BIN_DIR/ws_load ]]; then echo "bin/ws_load (which checks it) is not built"
      fi ;;
    notifications)
      if [[ ! -x $SB_BIN_DIR/notifications ]]; then echo "bin/notifications is not built (examples/notifications)"
      elif [[ ! -x $SB_BIN_DIR/sse_load ]]; then echo "bin/sse_load (which checks it) is not built"
      fi ;;
    nchan)
      if [[ -z $(sb_nginx_binary) ]]; then echo "nginx is not installed (scripts/install-deps.sh --bench)"
      elif [[ ! -f $SB_NCHAN_MODULE ]]; then echo "the Nchan module is not installed (libnginx-mod-nchan: scripts/install-deps.sh --bench)"
      elif [[ ! -x $SB_BIN_DIR/sse_load ]]; then echo "bin/sse_load (which checks it) is not built"
      fi ;;
    *) echo "unknown server (known: ${SB_ALL_SERVERS[*]})" ;;
  esac
}

# sb_free_port: a loopback TCP port nothing uses now, below the ephemeral range so that no client
# connection can take it between this check and the server's bind (a lost race is retried by the caller).
sb_free_port() {
  local low high port attempt
  read -r low high </proc/sys/net/ipv4/ip_local_port_range
  local top=$(( low > 12000 ? low : high + 1 ))
  local bottom=$(( low > 12000 ? 10000 : high + 1 ))
  (( top - bottom > 100 )) || { echo "sb_free_port: no room outside the ephemeral range $low-$high" >&2; return 1; }
  for attempt in $(seq 1 100); do
    port=$(( bottom + (RANDOM * 32768 + RANDOM) % (top - bottom) ))
    if [[ -z $(ss -Htan "sport = :$port") ]]; then
      echo "$port"
      return 0
    fi
  done
  echo "sb_free_port: no free port found in 100 tries" >&2
  return 1
}

# sb_server_command NAME PORT DIR: sets SB_COMMAND to the command line that runs NAME on PORT, with its
# files (nginx's configuration and logs) under DIR.
sb_server_command() {
  local name=$1 port=$2 dir=$3
  # Room for the most connections a run opens plus an eighth, for nginx's workers and our servers alike.
  local connections=$(( SB_MAX_CONNECTIONS + SB_MAX_CONNECTIONS / 8 + 64 ))
  case $name in
    nginx|nchan)
      local nofile
      nofile=$(ulimit -n)
      sed -e "s|@PREFIX@|$dir|g" -e "s|@BIND@|$SB_BIND|g" -e "s|@PORT@|$port|g" -e "s|@NOFILE@|$nofile|g" \
          -e "s|@WORKER_CONNECTIONS@|$connections|g" \
          -e "s|@NCHAN_MODULE@|$SB_NCHAN_MODULE|g" "$SB_LOAD_DIR/peers/$name.conf.in" >"$dir/nginx.conf"
      SB_COMMAND=("$(sb_nginx_binary)" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log") ;;
    beast) SB_COMMAND=("$SB_BIN_DIR/peer_beast_http" --bind "$SB_BIND" --port "$port") ;;
    beast-notimeout) SB_COMMAND=("$SB_BIN_DIR/peer_beast_http" --bind "$SB_BIND" --port "$port" --idle-timeout 0) ;;
    hello|hello-ws) SB_COMMAND=("$SB_BIN_DIR/hello" --bind "$SB_BIND" --port "$port" --threads 1
                                --max-connections "$connections") ;;
    sb-broadcast) SB_COMMAND=("$SB_BIN_DIR/peer_ws_broadcast" --bind "$SB_BIND" --port "$port" --threads 1
                              --max-connections "$connections") ;;
    beast-ws) SB_COMMAND=("$SB_BIN_DIR/peer_beast_ws" --bind "$SB_BIND" --port "$port") ;;
    node-ws) SB_COMMAND=(node "$SB_LOAD_DIR/peers/ws_node.mjs" "$SB_NODE_MODULES" --bind "$SB_BIND" --port "$port") ;;
    notifications) SB_COMMAND=("$SB_BIN_DIR/notifications" --bind "$SB_BIND" --port "$port" --threads 1
                               --max-connections "$connections") ;;
    jobs) SB_COMMAND=("$SB_BIN_DIR/jobs" --bind "$SB_BIND" --port "$port" --threads 1 --workers "$SB_JOBS_WORKERS"
                      --queue "$SB_JOBS_QUEUE" --max-jobs-per-client "$SB_JOBS_QUEUE" --retention 0
                      --max-connections "$connections") ;;
  esac
}

# sb_wait_listening PID PORT: waits up to 10 s for PID (or its worker) to listen on PORT; false if PID
# exits first or never listens.
sb_wait_listening() {
  local pid=$1 port=$2 attempt
  for attempt in $(seq 1 200); do
    sb_alive "$pid" || return 1
    # ss -p names every process holding the listening socket (nginx's master and worker both do).
    if [[ $(ss -Htlnp "sport = :$port") == *"pid=$pid,"* ]]; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# sb_validate_ws NAME: checks that the started WebSocket server NAME echoes a message at /echo and, when it
# has them, delivers a published message from /publish to /subscribe. Prints what is wrong and returns 1
# otherwise.
sb_validate_ws() {
  local name=$1 check mode
  local -a modes=(echo broadcast)
  [[ $name == hello-ws ]] && modes=(echo)
  [[ $name == sb-broadcast ]] && modes=(broadcast)
  for mode in "${modes[@]}"; do
    check=$(timeout 10 "$SB_BIN_DIR/ws_load" --check --mode "$mode" --host "$SB_BIND" --port "${SB_PORT[$name]}" 2>&1) || {
      echo "$name: the WebSocket $mode check failed: $check" >&2; return 1; }
  done
}

# sb_validate_sse NAME: checks that a message POSTed to the started server NAME reaches a subscriber of the
# topic's event stream. Prints what is wrong and returns 1 otherwise.
sb_validate_sse() {
  local check
  check=$(timeout 10 "$SB_BIN_DIR/sse_load" --check --host "$SB_BIND" --port "${SB_PORT[$1]}" 2>&1) || {
    echo "$1: the Server-Sent Events check failed: $check" >&2; return 1; }
}

# sb_validate NAME: checks that the started server NAME answers both endpoints with the right status,
# content type and body, and keeps the connection open between requests (without keep-alive a load run
# would measure connection set-up instead). Prints what is wrong and returns 1 otherwise.
sb_validate() {
  [[ $1 != *-ws && $1 != sb-broadcast ]] || { sb_validate_ws "$1"; return; }
  [[ $1 != notifications && $1 != nchan ]] || { sb_validate_sse "$1"; return; }
  local name=$1 base="http://$SB_BIND:${SB_PORT[$1]}" body="$SB_TMP/$1/body" path type expected got
  for path in /plaintext /json; do
    case $path in
      /plaintext) type=text/plain expected='Hello, World!' ;;
      /json) type=application/json expected='{"message":"Hello, World!"}' ;;
    esac
    got=$(curl -sS -m 5 -o "$body" -w '%{http_code} %{content_type}' "$base$path") || {
      echo "$name: GET $path failed" >&2; return 1; }
    if [[ ${got%% *} != 200 || ${got#* } != "$type"* || $(<"$body") != "$expected" ]]; then
      echo "$name: GET $path answered '$got' with body '$(head -c 100 "$body" | tr -s '\r\n\t' ' ')';" \
           "expected '200 $type' with '$expected'" >&2
      return 1
    fi
  done
  got=$(curl -sS -m 5 -o /dev/null -o /dev/null -w '%{num_connects} ' "$base/plaintext" "$base/plaintext") || {
    echo "$name: two GETs on one connection failed" >&2; return 1; }
  if [[ $got != "1 0 " ]]; then
    echo "$name: does not keep connections alive (connections opened per request: $got)" >&2
    return 1
  fi
}

# sb_server_start NAME [CPU]: starts NAME on a free port, pinned to CPU when given, waits until it listens
# and validates it. Returns 1, with the server's log on stderr, when it does not come up or answers wrongly.
sb_server_start() {
  local name=$1 cpu=${2:-} dir="$SB_TMP/$1" attempt port pid
  mkdir -p "$dir"
  for attempt in 1 2 3; do
    port=$(sb_free_port) || return 1
    sb_server_command "$name" "$port" "$dir"
    [[ -z $cpu ]] || SB_COMMAND=(taskset -c "$cpu" "${SB_COMMAND[@]}")
    "${SB_COMMAND[@]}" >"$dir/server.log" 2>&1 </dev/null &
    pid=$!
    if sb_wait_listening "$pid" "$port"; then
      SB_PID[$name]=$pid
      SB_PORT[$name]=$port
      SB_WORK_PID[$name]=$pid
      sb_validate "$name" || { sb_server_stop "$name"; return 1; }
      if [[ $name == nginx || $name == nchan ]]; then
        # Validation got answers, so the worker exists; it is the master's only child.
        SB_WORK_PID[$name]=$(pgrep -P "$pid")
        if [[ ! ${SB_WORK_PID[$name]} =~ ^[0-9]+$ ]]; then
          echo "$name: expected one worker process, found '${SB_WORK_PID[$name]}'" >&2
          sb_server_stop "$name"
          return 1
        fi
      fi
      return 0
    fi
    # It exited or never listened: end it if it still runs, reap it, and retry only a lost race for the port.
    sb_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    cat "$dir"/*.log >"$dir/failed-$attempt.log" 2>/dev/null || true
    grep -qi 'address already in use' "$dir/failed-$attempt.log" || break
  done
  echo "$name: did not start listening; its log:" >&2
  sed 's/^/    /' "$dir/failed-$attempt.log" >&2
  return 1
}

# sb_server_stop NAME: sends SIGTERM to the started server NAME, waits up to 10 s for it to exit (then
# SIGKILL), and reaps it. Warns when it needed SIGKILL or exited with a status other than 0.
sb_server_stop() {
  local name=$1 pid=${SB_PID[$1]:-} attempt status=0
  [[ -n $pid ]] || return 0
  unset "SB_PID[$name]"
  kill -TERM "$pid" 2>/dev/null || true
  for attempt in $(seq 1 200); do
    sb_alive "$pid" || break
    sleep 0.05
  done
  if sb_alive "$pid"; then
    echo "$name: still running 10 s after SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || status=$?
  (( status == 0 )) || echo "$name: exited with status $status after SIGTERM" >&2
}

# sb_stop_all: stops every server this script started (for the exit trap).
sb_stop_all() {
  local name
  for name in "${!SB_PID[@]}"; do
    sb_server_stop "$name"
  done
}
