// process_cpu: CPU time readings and the open-file limit, for the load generators of benchmarks/load
// (http_load, ws_load, sse_load). Standard library and Linux system calls only, so that http_load still
// links statically.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace load_tools {

/// CPU time (user + system, all threads) of process `pid` in microseconds, from /proc/PID/stat (proc(5):
/// utime and stime are fields 14 and 15, in clock ticks); -1 when it cannot be read.
inline std::int64_t process_cpu_us(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 1));
  std::string field;
  std::int64_t utime = -1, stime = -1;
  for (int n = 3; n <= 15 && fields >> field; ++n) {
    if (n == 14) utime = std::strtoll(field.c_str(), nullptr, 10);
    if (n == 15) stime = std::strtoll(field.c_str(), nullptr, 10);
  }
  if (utime < 0 || stime < 0) return -1;
  return (utime + stime) * 1000000 / sysconf(_SC_CLK_TCK);
}

/// Total CPU time of `pids` in microseconds; -1 when any of them cannot be read.
inline std::int64_t processes_cpu_us(const std::vector<int>& pids) {
  std::int64_t total = 0;
  for (const int pid : pids) {
    const std::int64_t us = process_cpu_us(pid);
    if (us < 0) return -1;
    total += us;
  }
  return total;
}

/// CPU time of this process (all threads) in microseconds.
inline std::int64_t own_cpu_us() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return (static_cast<std::int64_t>(usage.ru_utime.tv_sec) + usage.ru_stime.tv_sec) * 1000000 +
         usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

/// Raises the soft open-file limit to hold `connections` sockets plus a margin; false when the hard limit
/// is too low.
inline bool raise_file_limit(std::size_t connections) {
  const rlim_t needed = static_cast<rlim_t>(connections) + 64;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur >= needed) return true;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) return false;
  limit.rlim_cur = needed;
  return setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

}  // namespace load_tools
