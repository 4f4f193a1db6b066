# shellcheck shell=bash
# Readings of a process from /proc, for the load benchmarks (sourced by lib/servers.sh).

# Clock ticks per second of the utime and stime fields of /proc/<pid>/stat (proc(5)).
SB_CLK_TCK=$(getconf CLK_TCK)

# sb_alive PID: true while PID runs (a zombie, which exited but was not yet reaped, counts as gone).
sb_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # The state is the first field after the command name, which is in parentheses and may hold spaces.
  local fields=${stat##*) }
  [[ ${fields%% *} != Z ]]
}

# sb_cpu_us PID: CPU time PID has used, user plus system, over all its threads, in microseconds.
# Resolution is one clock tick (10 ms at the usual 100 Hz), so runs should last seconds.
sb_cpu_us() {
  local stat
  stat=$(<"/proc/$1/stat")
  local -a fields
  read -r -a fields <<<"${stat##*) }"
  # After the command name, fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  echo $(( (fields[11] + fields[12]) * 1000000 / SB_CLK_TCK ))
}

# sb_memory_kib PID: "RSS PSS PRIVATE_DIRTY" of PID in KiB, from /proc/PID/smaps_rollup (Linux 4.14+).
# RSS counts shared library pages in full, PSS divides shared pages among the processes that map them, and
# Private_Dirty is memory the process alone has written (its heap and stacks): the three agree on what a
# process allocates per connection, and differ on what it shares.
sb_memory_kib() {
  awk '$1 == "Rss:" { rss = $2 } $1 == "Pss:" { pss = $2 } $1 == "Private_Dirty:" { dirty = $2 }
       END { if (rss == "") exit 1; print rss, pss, dirty }' "/proc/$1/smaps_rollup"
}

# sb_cpus_time_us CPU... : "BUSY STEAL" for the given CPUs together, in microseconds since boot, from
# /proc/stat: BUSY is user + nice + system + irq + softirq (time spent running anything), STEAL the time
# the hypervisor ran something else while these virtual CPUs wanted to run. (Printed with %.0f: the totals
# since boot pass 2^31, where mawk's %d stops.)
sb_cpus_time_us() {
  awk -v wanted=" $* " -v tick="$SB_CLK_TCK" '
    $1 ~ /^cpu[0-9]+$/ && index(wanted, " " substr($1, 4) " ") {
      busy += $2 + $3 + $4 + $7 + $8; steal += $9 }
    END { printf "%.0f %.0f\n", busy * 1000000 / tick, steal * 1000000 / tick }' /proc/stat
}

# sb_allowed_cpus: the CPUs this process may run on (its affinity, which a container's cpuset narrows),
# one number per line, in increasing order.
sb_allowed_cpus() {
  local range
  local -a ranges
  IFS=, read -r -a ranges <<<"$(awk '$1 == "Cpus_allowed_list:" { print $2 }' /proc/self/status)"
  for range in "${ranges[@]}"; do
    if [[ $range == *-* ]]; then seq "${range%-*}" "${range#*-}"; else echo "$range"; fi
  done
}
