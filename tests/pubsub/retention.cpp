// The retained log of a topic on its own: count, byte and age limits, with the clock passed in.
#include <switchboard/pubsub/retention.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <cstdint>
#include <string>

using namespace std::chrono_literals;
using switchboard::pubsub::basic_retained_log;
using switchboard::pubsub::retention_limits;

namespace {

// A minimal message: a sequence number and a size.
struct numbered {
  std::uint64_t seq;
  std::size_t bytes;
  std::uint64_t sequence() const noexcept { return seq; }
  std::size_t size() const noexcept { return bytes; }
};

using log_type = basic_retained_log<numbered>;
const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

}  // namespace

TEST_CASE("retained log: off by default", "[pubsub][retention]") {
  log_type log;
  CHECK(log.limits().off());
  log.append({1, 10}, t0);
  CHECK(log.empty());
  CHECK(log.first_sequence() == 0);
  CHECK(log.last_sequence() == 0);
}

TEST_CASE("retained log: keeps the newest within every limit", "[pubsub][retention]") {
  SECTION("count") {
    log_type log({.max_messages = 3});
    for (std::uint64_t i = 1; i <= 5; ++i) log.append({i, 1}, t0);
    CHECK(log.size() == 3);
    CHECK(log.first_sequence() == 3);
    CHECK(log.last_sequence() == 5);
    CHECK(log.at_sequence(4).seq == 4);
    CHECK(log.back().seq == 5);
    CHECK(log.bytes() == 3);
  }

  SECTION("bytes") {
    log_type log({.max_messages = 100, .max_bytes = 25});
    for (std::uint64_t i = 1; i <= 5; ++i) log.append({i, 10}, t0);
    CHECK(log.size() == 2);
    CHECK(log.bytes() == 20);
    CHECK(log.first_sequence() == 4);
  }

  SECTION("the newest message even if larger than the byte limit alone") {
    log_type log({.max_messages = 100, .max_bytes = 5});
    log.append({1, 3}, t0);
    log.append({2, 50}, t0);
    CHECK(log.size() == 1);
    CHECK(log.first_sequence() == 2);
  }

  SECTION("age") {
    log_type log({.max_messages = 100, .max_age = 10s});
    log.append({1, 1}, t0);
    log.append({2, 1}, t0 + 5s);
    log.append({3, 1}, t0 + 9s);
    CHECK(log.size() == 3);
    log.trim(t0 + 12s);  // 1 is 12 s old
    CHECK(log.first_sequence() == 2);
    log.trim(t0 + 10s + 5s);  // exactly 10 s old is still kept
    CHECK(log.first_sequence() == 2);
    log.trim(t0 + 30s);
    CHECK(log.empty());
    log.append({4, 1}, t0 + 30s);  // numbering goes on after an empty log
    CHECK(log.first_sequence() == 4);
  }

  SECTION("changing the limits evicts at once") {
    log_type log({.max_messages = 10});
    for (std::uint64_t i = 1; i <= 10; ++i) log.append({i, 1}, t0);
    log.set_limits({.max_messages = 4}, t0);
    CHECK(log.size() == 4);
    CHECK(log.first_sequence() == 7);
    log.set_limits({}, t0);  // off
    CHECK(log.empty());
  }
}
