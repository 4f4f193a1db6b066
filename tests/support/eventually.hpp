// Waiting on state that other threads change (a server's counters), for tests that have no event to wait on.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>

namespace switchboard::test {

/// Waits until `done()` (which reads state of other threads), checking every millisecond, for at most `deadline`;
/// returns whether it became true.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::steady_clock::duration deadline = std::chrono::seconds(10)) {
  asio::io_context idle;
  asio::steady_timer tick(idle);
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    tick.expires_after(std::chrono::milliseconds(1));
    tick.wait();
  }
  return true;
}

}  // namespace switchboard::test
