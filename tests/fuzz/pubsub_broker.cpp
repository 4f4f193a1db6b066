// Fuzz target: the broker driven by a script of operations (see pubsub_broker_model.hpp), which checks that
// every subscriber's messages and gap events account for each sequence number exactly once, in order (under
// `conflate`, one may be skipped only when a newer message with its key superseded it), that queues stay within
// their limits, and that `wait` subscribers lose nothing.
#include "pubsub_broker_model.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;  // long scripts add time, not new states
  switchboard::pubsub::fuzz::broker_model model;
  const std::string failure = model.run(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!failure.empty()) {
    std::fprintf(stderr, "broker model: %s\n", failure.c_str());
    __builtin_trap();
  }
  return 0;
}
