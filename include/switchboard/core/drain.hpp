// switchboard/core/drain.hpp
//
// Graceful drain (DESIGN promise 6): `stop(grace)` stops accepting, tells open connections to leave, waits up to
// the grace period, then force-closes what is left and reports what was cut. Every server-like component
// implements `drainable` so that the runtime can drain them all in one call.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

namespace switchboard {

/// What a drain did.
struct drain_report {
  /// Connections (or streams, subscriptions, parked requests) that finished on their own within the grace period.
  std::size_t drained = 0;
  /// Those still open at the deadline, closed by force.
  std::size_t cut = 0;

  drain_report& operator+=(const drain_report& other) noexcept {
    drained += other.drained;
    cut += other.cut;
    return *this;
  }
};

/// A component the runtime can drain.
class drainable {
 public:
  /// Starts draining: stop accepting, ask open connections to leave, and force-close what remains at `deadline`.
  /// Calls `done` exactly once (from any thread) when nothing is left open. Safe to call from any thread; a later
  /// call moves the deadline earlier (if it is) and has its `done` called too, with the same report.
  virtual void async_drain(std::chrono::steady_clock::time_point deadline, std::function<void(drain_report)> done) = 0;

 protected:
  ~drainable() = default;
};

}  // namespace switchboard
