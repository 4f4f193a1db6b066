// A long-poll endpoint over a broker, served by a test server on a free loopback port.
#pragma once

#include <switchboard/longpoll/endpoint.hpp>
#include <switchboard/pubsub/broker.hpp>

#include "support/raw_http.hpp"
#include "support/test_server.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace switchboard::test {

using namespace std::chrono_literals;

struct poll_server {
  explicit poll_server(longpoll::endpoint_options options = {}, http::server_options server_options = {},
                       pubsub::broker_options broker_options = {.retention = {.max_messages = 100}})
      : broker(server.rt().executor(), std::move(broker_options)), polls(server.rt(), broker, std::move(options)) {
    longpoll::add_route(server.routes(), polls);
    server.start(std::move(server_options));
  }
  // The server stops (and drains) before the endpoint and the broker go.
  ~poll_server() { server.stop(); }

  std::uint64_t publish(std::string_view topic, std::string_view data) {
    return broker.publish(topic, {.payload = shared_bytes::copy(data)}).sequence;
  }

  test_server server;
  pubsub::broker broker;
  longpoll::endpoint polls;
};

/// Waits until `done()` holds, checking every millisecond, for at most `deadline`; returns whether it held. For
/// state that changes on the server's threads (a parked count), which gives no event to wait on.
inline bool wait_for(const std::function<bool()>& done, std::chrono::steady_clock::duration deadline = 10s) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

/// The JSON body of a response.
inline nlohmann::json body_json(const raw_response& r) { return nlohmann::json::parse(r.body); }

}  // namespace switchboard::test
