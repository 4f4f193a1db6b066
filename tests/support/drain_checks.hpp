// A check shared by the tests of the servers that keep a clock (http::server, pubsub::resp_server): their drain must
// stop the clock even when a tick is already due, or the event loop never runs out of work (DESIGN promise 6).
#pragma once

#include "support/test_support.hpp"

#include <switchboard/core/drain.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <chrono>

namespace switchboard::test {

/// What `drain_while_a_tick_is_due` saw.
struct busy_drain_outcome {
  bool drained = false;       // the drain reported
  bool loop_ran_out = false;  // and then the event loop had nothing left to do: no clock armed itself again
};

/// Keeps the only thread of `context` busy for `busy_for`, long enough for a tick of `server`'s clock to fall due
/// (its completion is then queued with success, and cancelling the timer can no longer call it back), then drains
/// `server` at once and runs the loop for at most 10 s. `server` must have started and its clock be armed.
template <typename Server>
busy_drain_outcome drain_while_a_tick_is_due(asio::io_context& context, Server& server,
                                             std::chrono::milliseconds busy_for) {
  busy_drain_outcome outcome;
  asio::post(context, [&] {
    keep_busy_until(std::chrono::steady_clock::now() + busy_for);
    server.async_drain(std::chrono::steady_clock::now(), [&](drain_report) { outcome.drained = true; });
  });
  context.run_for(std::chrono::seconds(10));  // returns before that once nothing is left to do
  outcome.loop_ran_out = context.stopped();
  return outcome;
}

}  // namespace switchboard::test
