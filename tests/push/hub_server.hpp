// The server of the push hub's tests: an HTTP server on loopback with a broker that retains its topics and a hub on
// the routes of the notifications example.
#pragma once

#include <switchboard/push/hub.hpp>

#include "support/catch.hpp"
#include "support/test_server.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace switchboard::test {

struct hub_server {
  explicit hub_server(push::hub_options options = {}, std::size_t retain = 5, std::size_t threads = 1)
      : s(threads), broker(s.rt().executor(), {.retention = {.max_messages = retain}}), hub(broker, std::move(options)) {
    s.routes().get("/topics/{topic}/events", [this](http::request& req) { return hub.sse(req, req.param("topic")); });
    s.routes().get("/topics/{topic}/ws", [this](http::request& req) { return hub.websocket(req, req.param("topic")); });
    s.routes().get("/ws", [this](http::request& req) { return hub.rooms(req); });
    s.rt().add(hub);
    s.start();
  }
  ~hub_server() { s.stop(); }

  void publish(const std::string& topic, std::string payload) { REQUIRE(try_publish(topic, std::move(payload))); }
  // From any thread (Catch's assertions are for the test's own): the message's sequence number, or 0 when the broker
  // refused it.
  std::uint64_t try_publish(const std::string& topic, std::string payload, std::string key = {}) {
    const auto r = broker.publish(topic, {.payload = shared_bytes(std::move(payload)), .key = std::move(key)});
    return r ? r.sequence : 0;
  }
  std::string url(const std::string& path) const { return "ws://127.0.0.1:" + std::to_string(s.port()) + path; }

  test_server s;
  pubsub::broker broker;
  push::hub hub;
};

}  // namespace switchboard::test
