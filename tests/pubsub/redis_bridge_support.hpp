// Helpers for the Redis bridge tests (redis_bridge.cpp, redis_bridge_outage.cpp): one bridged "process" (a broker
// and its bridge) and bridge options that retry quickly, so that a test waits for reconnections in milliseconds.
#pragma once

#include <switchboard/pubsub/redis_bridge.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <utility>

namespace switchboard::pubsub::test {

/// One "process": a broker and its bridge to Redis, started.
struct peer {
  peer(asio::io_context& ctx, redis_bridge_options options)
      : b(ctx), bridge(b, ctx.get_executor(), std::move(options)) {
    bridge.start();
  }
  broker b;
  redis_bridge bridge;
};

/// Options for a bridge to the redis-server on 127.0.0.1:`port`, retrying after 20 ms, at most 200 ms apart.
inline redis_bridge_options to(std::uint16_t port) {
  using namespace std::chrono_literals;
  return {.redis = {.port = port}, .initial_backoff = 20ms, .max_backoff = 200ms};
}

}  // namespace switchboard::pubsub::test
