# shellcheck shell=bash
# The holder of idle connections for the memory figures (sourced after lib/servers.sh, which sets SB_TMP).
#
# A holder is a tool (idle_connections, sse_load --hold, longpoll_load --hold) that opens N connections, prints
# "ready N" once every one is open, holds them idle until SIGTERM, and then prints "open N closed M" (the
# connections the server had not closed) and exits 0 only when M is 0. Its output comes through a FIFO, so that
# its "ready" line is awaited rather than polled for in a file: a file polled for can still hold an earlier
# holder's "ready", and a holder stopped before it has blocked SIGTERM dies without a word.

SB_HOLDER_PID=
SB_HOLDER_FD=
SB_HOLDER_HELD=0

# sb_holder_start LABEL COUNT COMMAND...: starts COMMAND (the holder, with its options for COUNT connections) and
# waits for its "ready COUNT". False, with the reason printed under LABEL, when that does not come.
sb_holder_start() {
  local label=$1 count=$2 line
  shift 2
  local fifo=$SB_TMP/holder.fifo
  rm -f "$fifo"
  mkfifo "$fifo"
  "$@" >"$fifo" 2>"$SB_TMP/holder.err" </dev/null &
  SB_HOLDER_PID=$!
  exec {SB_HOLDER_FD}<"$fifo"
  # Opening the connections takes about a second per ten thousand; the bound only catches a hang.
  if ! read -r -t $(( 60 + count / 100 )) -u "$SB_HOLDER_FD" line || [[ $line != "ready $count" ]]; then
    kill -KILL "$SB_HOLDER_PID" 2>/dev/null || true
    wait "$SB_HOLDER_PID" 2>/dev/null || true
    SB_HOLDER_PID=
    exec {SB_HOLDER_FD}<&-
    echo "  $label: the holder did not get $count connections ready: ${line:-no output} $(sb_holder_errors)"
    return 1
  fi
}

# sb_holder_stop: ends the started holder (SIGTERM) and sets SB_HOLDER_HELD to the connections it still had open.
# False when the holder failed (the server closed some, or it could not check).
sb_holder_stop() {
  local line status=0
  kill -TERM "$SB_HOLDER_PID"
  read -r -t 60 -u "$SB_HOLDER_FD" line || line=
  exec {SB_HOLDER_FD}<&-
  wait "$SB_HOLDER_PID" || status=$?
  SB_HOLDER_PID=
  SB_HOLDER_HELD=0
  # shellcheck disable=SC2034  # read by the scripts that source this file
  [[ $line =~ ^open\ ([0-9]+)\ closed\ ([0-9]+)$ ]] && SB_HOLDER_HELD=${BASH_REMATCH[1]}
  return "$status"
}

# sb_holder_errors: what the last holder wrote to its standard error.
sb_holder_errors() {
  cat "$SB_TMP/holder.err" 2>/dev/null || true
}

# sb_holder_kill: ends a holder still running (for an EXIT trap).
sb_holder_kill() {
  if [[ -n $SB_HOLDER_PID ]] && sb_alive "$SB_HOLDER_PID"; then kill -KILL "$SB_HOLDER_PID" 2>/dev/null || true; fi
}
