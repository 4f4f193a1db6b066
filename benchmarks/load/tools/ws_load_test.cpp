// Tests of what ws_load and sse_load share (fanout.hpp): the stamped payload every message carries, and the
// bookkeeping of a broadcast run (when a publish is complete, what counts inside the window, what is lost).
#include "fanout.hpp"

#include "support/catch.hpp"

#include <chrono>
#include <cstdint>
#include <string>

using load_tools::clock_type;
using load_tools::fanout_tracker;
using load_tools::make_payload;
using load_tools::read_payload;
using load_tools::window;

TEST_CASE("a payload carries its sequence number and send time", "[load][fanout]") {
  std::string payload;
  std::uint64_t seq = 0, time_ns = 0;

  SECTION("round trip at the smallest and the benchmark's size") {
    for (const std::size_t size : {load_tools::stamp_bytes, std::size_t{64}}) {
      make_payload(payload, size, 0x0123456789abcdefULL, 0xfedcba9876543210ULL);
      REQUIRE(payload.size() == size);
      REQUIRE(read_payload(payload, seq, time_ns));
      CHECK(seq == 0x0123456789abcdefULL);
      CHECK(time_ns == 0xfedcba9876543210ULL);
    }
  }
  SECTION("printable ASCII without line breaks: valid WebSocket text and one SSE data line") {
    make_payload(payload, 64, ~std::uint64_t{0}, 0);
    for (const char c : payload) {
      CHECK((c >= 0x20 && c < 0x7f));
    }
  }
  SECTION("anything else is refused") {
    make_payload(payload, 64, 7, 9);
    CHECK_FALSE(read_payload(payload.substr(0, load_tools::stamp_bytes - 1), seq, time_ns));
    std::string bad = payload;
    bad[16] = 'x';
    CHECK_FALSE(read_payload(bad, seq, time_ns));
    bad = payload;
    bad[3] = 'g';
    CHECK_FALSE(read_payload(bad, seq, time_ns));
    bad = payload;
    bad[20] = 'A';  // upper-case hex is not what make_payload writes
    CHECK_FALSE(read_payload(bad, seq, time_ns));
    CHECK(read_payload(payload, seq, time_ns));
  }
}

TEST_CASE("a broadcast run moves on when every subscriber has the publish", "[load][fanout]") {
  const auto t0 = clock_type::now();
  const auto ms = [&](int n) { return t0 + std::chrono::milliseconds(n); };
  const window measured{ms(100), ms(200)};
  fanout_tracker tracker(3, std::chrono::milliseconds(50));
  const std::uint64_t sent = load_tools::to_ns(ms(0));

  SECTION("complete on the last subscriber; counted only inside the window") {
    const std::uint64_t seq = tracker.begin_publish(ms(0));
    CHECK_FALSE(tracker.deliver(seq, sent, ms(1), measured));
    CHECK_FALSE(tracker.deliver(seq, sent, ms(2), measured));
    CHECK(tracker.deliver(seq, sent, ms(3), measured));
    CHECK(tracker.deliveries() == 0);  // before the window: warm-up
    CHECK(tracker.completed() == 0);

    const std::uint64_t next = tracker.begin_publish(ms(150));
    CHECK(next == seq + 1);
    const std::uint64_t sent_next = load_tools::to_ns(ms(150));
    CHECK_FALSE(tracker.deliver(next, sent_next, ms(151), measured));
    CHECK_FALSE(tracker.deliver(next, sent_next, ms(152), measured));
    CHECK(tracker.deliver(next, sent_next, ms(160), measured));
    CHECK(tracker.deliveries() == 3);
    CHECK(tracker.completed() == 1);
    CHECK(tracker.latency().count() == 3);
    CHECK(tracker.latency().max() >= 9'000'000);  // 10 ms, within the histogram's 0.8%
    CHECK(tracker.lost() == 0);
  }
  SECTION("a publish that times out loses what it did not deliver, and its stragglers are late") {
    const std::uint64_t seq = tracker.begin_publish(ms(120));
    CHECK_FALSE(tracker.deliver(seq, sent, ms(121), measured));
    CHECK_FALSE(tracker.expired(ms(160)));
    CHECK(tracker.expired(ms(171)));
    tracker.give_up(measured);
    CHECK(tracker.lost() == 2);
    const std::uint64_t next = tracker.begin_publish(ms(171));
    CHECK_FALSE(tracker.deliver(seq, sent, ms(172), measured));
    CHECK(tracker.late() == 1);
    CHECK(tracker.seq() == next);
  }
  SECTION("a publish given up on before the window loses nothing that counts") {
    tracker.begin_publish(ms(0));
    tracker.give_up(measured);
    CHECK(tracker.lost() == 0);
  }
}
