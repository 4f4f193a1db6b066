// switchboard/core/detail/coarse_clock.hpp
//
// `coarse_now()`: the monotonic clock read cheaply, for deadlines that a periodic clock checks at a coarser period
// anyway (the HTTP server's timeouts, WebSocket keep-alive).
#pragma once

#include <chrono>
#include <time.h>

namespace switchboard::detail {

/// CLOCK_MONOTONIC_COARSE: no hardware counter read, a few milliseconds of resolution. It counts from the same
/// origin as `std::chrono::steady_clock` (CLOCK_MONOTONIC), so the two can be compared.
inline std::chrono::steady_clock::time_point coarse_now() noexcept {
#if defined(CLOCK_MONOTONIC_COARSE)
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
#else
  return std::chrono::steady_clock::now();
#endif
}

}  // namespace switchboard::detail
