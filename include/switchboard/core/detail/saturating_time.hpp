// switchboard/core/detail/saturating_time.hpp
//
// `saturating_add(t, d)`: a deadline `d` after `t` that does not overflow. Timeouts are options, and a user who
// means "never" sets `duration::max()`: added to a clock reading it would overflow (undefined behaviour, in
// practice a deadline in the past, so that the wait ends at once).
#pragma once

#include <chrono>

namespace switchboard::detail {

/// `t + d`, or the latest time point when the sum would overflow. `t` is not before its clock's epoch (a reading of
/// a monotonic clock); a negative `d` gives a time before `t`, as plain addition does.
template <class Clock, class Duration, class Rep, class Period>
std::chrono::time_point<Clock, Duration> saturating_add(std::chrono::time_point<Clock, Duration> t,
                                                        std::chrono::duration<Rep, Period> d) noexcept {
  using time_point = std::chrono::time_point<Clock, Duration>;
  // The room left before the end of the clock, rounded down to `d`'s unit: a `d` within it converts and adds
  // without overflow.
  const auto room = std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(time_point::max() - t);
  return d <= room ? t + std::chrono::duration_cast<Duration>(d) : time_point::max();
}

}  // namespace switchboard::detail
