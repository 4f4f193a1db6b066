// A long-poll endpoint over a broker, served by a test server on a free loopback port.
#pragma once

#include <switchboard/longpoll/endpoint.hpp>
#include <switchboard/pubsub/broker.hpp>

#include "support/raw_http.hpp"
#include "support/test_server.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace switchboard::test {

using namespace std::chrono_literals;

class poll_server {
  struct changes {
    std::mutex mutex;
    std::condition_variable changed;
  };
  // Declared first, so that it exists when the endpoint's options (which refer to it) are made.
  std::shared_ptr<changes> changes_ = std::make_shared<changes>();

 public:
  /// `threads`: the server's runtime threads (each its own event loop, with its own parked polls and clock).
  explicit poll_server(longpoll::endpoint_options options = {}, http::server_options server_options = {},
                       pubsub::broker_options broker_options = {.retention = {.max_messages = 100}},
                       std::size_t threads = 1)
      : server(threads),
        broker(server.rt().executor(), std::move(broker_options)),
        polls(server.rt(), broker, watched(std::move(options))) {
    longpoll::add_route(server.routes(), polls);
    server.start(std::move(server_options));
  }
  // The server stops (and drains) before the endpoint and the broker go.
  ~poll_server() { server.stop(); }

  std::uint64_t publish(std::string_view topic, std::string_view data) {
    return broker.publish(topic, {.payload = shared_bytes::copy(data)}).sequence;
  }

  /// Waits until `done()` holds, for at most `deadline`; returns whether it held. `done` reads the endpoint's
  /// counters, which change on the server's thread: it is checked again each time the endpoint reports a change
  /// (`endpoint_options::on_change`).
  bool wait_for(const std::function<bool()>& done, std::chrono::steady_clock::duration deadline = 10s) {
    std::unique_lock lock(changes_->mutex);
    return changes_->changed.wait_for(lock, deadline, done);
  }

  test_server server;
  pubsub::broker broker;
  longpoll::endpoint polls;

 private:
  // The options with an `on_change` that wakes `wait_for` (after the test's own, if it set one).
  longpoll::endpoint_options watched(longpoll::endpoint_options options) {
    options.on_change = [changes = changes_, own = std::move(options.on_change)] {
      if (own) own();
      // Taking the mutex orders the change before a waiter's next check of `done`.
      { const std::lock_guard lock(changes->mutex); }
      changes->changed.notify_all();
    };
    return options;
  }
};

/// The JSON body of a response.
inline nlohmann::json body_json(const raw_response& r) { return nlohmann::json::parse(r.body); }

}  // namespace switchboard::test
