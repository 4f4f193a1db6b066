// Each overflow policy of a subscriber queue (DESIGN promise 2), and the gap events that report what a subscriber
// lost (promise 3): their content, and their position in the stream.
#include <switchboard/pubsub/broker.hpp>

#include "pubsub/broker_support.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>

#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard::pubsub;
using switchboard::overflow_policy;
using switchboard::queue_limits;
using switchboard::pubsub::test::describe;
using switchboard::pubsub::test::numbered;
using switchboard::pubsub::test::recorder;
using switchboard::pubsub::test::text;
using switchboard::test::poll;
using switchboard::test::run_until;

namespace {

using strings = std::vector<std::string>;

/// Takes one event from a receive-mode subscription (the tests use it to consume part of a queue).
std::string receive_one(asio::io_context& ctx, subscription& sub) {
  std::optional<std::string> got;
  sub.async_receive([&](std::error_code ec, event e) { got = describe(ec, e); });
  REQUIRE(run_until(ctx, [&] { return got.has_value(); }));
  return *got;
}

void publish_numbered(broker& b, int first, int last) {
  for (int i = first; i <= last; ++i) b.publish("t", text("m" + std::to_string(i)));
}

}  // namespace

TEST_CASE("policy drop_oldest: the oldest go, a gap takes their place", "[pubsub][broker][policy]") {
  asio::io_context ctx;
  broker b(ctx);
  recorder r;
  auto sub = b.subscribe("t", {.limits = queue_limits{.max_messages = 3, .policy = overflow_policy::drop_oldest},
                               .on_event = r.callback()});

  SECTION("at the start") {
    publish_numbered(b, 1, 6);
    poll(ctx);
    strings expected{"t gap 1-3 overflow"};
    for (const auto& s : numbered("t", 4, 6, "m")) expected.push_back(s);
    CHECK(r.log == expected);
    const subscription_stats s = sub.stats();
    CHECK(s.dropped == 3);
    CHECK(s.gaps == 1);
    CHECK(s.missed == 3);
    CHECK(s.delivered == 3);
    CHECK(s.peak_depth == 3);
    CHECK(s.depth == 0);
  }

  SECTION("in the middle: after what was delivered, before what follows") {
    publish_numbered(b, 1, 2);
    poll(ctx);
    publish_numbered(b, 3, 9);  // 3..6 dropped, 7..9 queued
    publish_numbered(b, 10, 10);  // 7 dropped: one gap 3-7, merged
    poll(ctx);
    strings expected = numbered("t", 1, 2, "m");
    expected.push_back("t gap 3-7 overflow");
    for (const auto& s : numbered("t", 8, 10, "m")) expected.push_back(s);
    CHECK(r.log == expected);
    CHECK(sub.stats().gaps == 1);
  }

  SECTION("by bytes") {
    auto small = b.subscribe(
        "u", {.limits = queue_limits{.max_messages = 100, .max_bytes = 10, .policy = overflow_policy::drop_oldest},
              .on_event = r.callback()});
    for (int i = 1; i <= 4; ++i) b.publish("u", text("abcd"));  // 4 bytes each: two fit in 10
    CHECK(small.stats().bytes == 8);
    CHECK(small.stats().peak_bytes == 8);
    poll(ctx);
    CHECK(r.log == strings{"u gap 1-2 overflow", "u#3=abcd", "u#4=abcd"});
  }
}

TEST_CASE("policy drop_newest: the new ones go, a gap follows what was kept", "[pubsub][broker][policy]") {
  asio::io_context ctx;
  broker b(ctx);
  const auto limits = queue_limits{.max_messages = 3, .policy = overflow_policy::drop_newest};

  SECTION("at the end of the queue") {
    recorder r;
    auto sub = b.subscribe("t", {.limits = limits, .on_event = r.callback()});
    publish_numbered(b, 1, 6);
    poll(ctx);
    strings expected = numbered("t", 1, 3, "m");
    expected.push_back("t gap 4-6 overflow");
    CHECK(r.log == expected);
    CHECK(sub.stats().dropped == 3);
    publish_numbered(b, 7, 7);
    poll(ctx);
    CHECK(r.log.back() == "t#7=m7");
  }

  SECTION("before the next message queued") {
    auto sub = b.subscribe("t", {.limits = limits});
    publish_numbered(b, 1, 4);  // 4 dropped
    CHECK(receive_one(ctx, sub) == "t#1=m1");
    publish_numbered(b, 5, 5);  // room again: 5 is queued after the gap
    strings got;
    for (int i = 0; i < 4; ++i) got.push_back(receive_one(ctx, sub));
    CHECK(got == strings{"t#2=m2", "t#3=m3", "t gap 4-4 overflow", "t#5=m5"});
  }

  SECTION("publish says who did not take the message") {
    auto sub = b.subscribe("t", {.limits = limits});
    auto other = b.subscribe("t");
    publish_numbered(b, 1, 3);
    CHECK(b.publish("t", text("m4")).subscribers == 1);
  }
}

TEST_CASE("policy conflate: the latest per key", "[pubsub][broker][policy]") {
  asio::io_context ctx;
  broker b(ctx);
  recorder r;
  auto sub = b.subscribe("t", {.limits = queue_limits{.max_messages = 2, .policy = overflow_policy::conflate},
                               .on_event = r.callback()});

  SECTION("a newer message replaces a queued one with its key and comes in sequence order") {
    b.publish("t", text("a1", "a"));
    b.publish("t", text("b2", "b"));
    b.publish("t", text("a3", "a"));
    poll(ctx);
    CHECK(r.log == strings{"t#2=b2", "t#3=a3"});  // a1 taken out, a3 queued at the back
    CHECK(sub.stats().superseded == 1);
    CHECK(sub.stats().dropped == 0);
    CHECK(sub.stats().gaps == 0);
  }

  SECTION("a new key on a full queue drops the oldest, with a gap") {
    b.publish("t", text("a1", "a"));
    b.publish("t", text("b2", "b"));
    b.publish("t", text("c3", "c"));
    poll(ctx);
    CHECK(r.log == strings{"t gap 1-1 overflow", "t#2=b2", "t#3=c3"});
    CHECK(sub.stats().dropped == 1);
  }

  SECTION("a replaced front message hands its gap to the message after it") {
    b.publish("t", text("a1", "a"));
    b.publish("t", text("b2", "b"));
    b.publish("t", text("c3", "c"));  // a1 dropped: gap 1 before b2
    b.publish("t", text("b4", "b"));  // replaces b2 at the front
    poll(ctx);
    CHECK(r.log == strings{"t gap 1-1 overflow", "t#3=c3", "t#4=b4"});
  }

  SECTION("a gap reported after the queue comes before the replacement at the back") {
    b.publish("t", text("a1", "a"));
    b.publish("t", text("b2", "b"));
    b.report_gap("t", gap_reason::upstream);  // #3, after everything queued
    b.publish("t", text("a4", "a"));          // replaces a1
    poll(ctx);
    CHECK(r.log == strings{"t#2=b2", "t gap 3-3 upstream", "t#4=a4"});
  }

  SECTION("a gap reported before a queued message stays before its replacement, after older messages") {
    b.publish("t", text("a1", "a"));
    b.report_gap("t", gap_reason::upstream);  // #2, before the next message queued
    b.publish("t", text("b3", "b"));
    b.publish("t", text("b4", "b"));          // replaces b3, which carried the gap
    poll(ctx);
    CHECK(r.log == strings{"t#1=a1", "t gap 2-2 upstream", "t#4=b4"});
    CHECK(sub.stats().superseded == 1);
  }

  SECTION("messages without a key are never conflated") {
    publish_numbered(b, 1, 3);
    poll(ctx);
    CHECK(r.log == strings{"t gap 1-1 overflow", "t#2=m2", "t#3=m3"});
  }
}

// Replacements taken out of the front, the middle and the back of the queue, with gaps before them and after the
// queue: the events follow the sequence numbers, each gap where its numbers were.
TEST_CASE("policy conflate: replacements keep sequence order and gaps in place", "[pubsub][broker][policy]") {
  asio::io_context ctx;
  broker b(ctx);
  recorder r;
  auto sub = b.subscribe("t", {.limits = queue_limits{.max_messages = 4, .policy = overflow_policy::conflate},
                               .on_event = r.callback()});
  b.publish("t", text("a1", "a"));
  b.report_gap("t", gap_reason::upstream);  // #2, before b3
  b.publish("t", text("b3", "b"));
  b.publish("t", text("c4", "c"));
  b.publish("t", text("b5", "b"));          // b3 taken out of the middle: gap 2 now before c4
  b.report_gap("t", gap_reason::upstream);  // #6, after everything queued
  b.publish("t", text("a7", "a"));          // a1 taken out of the front; gap 6 before a7
  b.publish("t", text("a8", "a"));          // a7 taken out of the back: gap 6 before a8
  poll(ctx);
  CHECK(r.log == strings{"t gap 2-2 upstream", "t#4=c4", "t#5=b5", "t gap 6-6 upstream", "t#8=a8"});
  CHECK(sub.stats().superseded == 3);
  CHECK(sub.stats().gaps == 2);
}

// Random publishes (few keys, some without) and gap reports to a small conflate queue read now and then: every
// number comes at most once, in increasing order, and one that never comes was superseded by a later message with
// its key that came or was reported lost (DESIGN promise 3: loss is never silent, and an SSE client resuming from the
// last id it saw misses nothing).
TEST_CASE("policy conflate: random publishes are delivered in sequence order", "[pubsub][broker][policy]") {
  const unsigned seed = GENERATE(range(1u, 31u));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  asio::io_context ctx;
  broker b(ctx);
  std::vector<event> events;
  auto sub = b.subscribe("t", {.limits = queue_limits{.max_messages = 1 + rng() % 5, .policy = overflow_policy::conflate},
                               .on_event = [&](std::error_code, const event& e) { events.push_back(e); }});
  static constexpr const char* keys[] = {"", "a", "b", "c", "d"};
  std::vector<std::string> key_of{""};  // by sequence number
  for (int step = 0; step < 300; ++step) {
    const unsigned roll = rng() % 10;
    if (roll < 7) {
      key_of.push_back(keys[rng() % std::size(keys)]);
      b.publish("t", text("m", key_of.back()));
    } else if (roll < 8) {
      key_of.push_back("");
      b.report_gap("t", gap_reason::upstream);
    } else {
      poll(ctx);
    }
  }
  poll(ctx);
  const std::uint64_t last = key_of.size() - 1;
  std::vector<bool> seen(key_of.size());
  std::uint64_t next = 1;  // the lowest number that may come next
  for (const event& e : events) {
    const std::uint64_t first = e.is_gap() ? e.gap().first : e.message().sequence();
    const std::uint64_t end = e.is_gap() ? e.gap().last : first;
    INFO("event " << first << "-" << end);
    REQUIRE(first >= next);
    for (std::uint64_t n = first; n <= end; ++n) seen[n] = true;
    next = end + 1;
  }
  for (std::uint64_t n = 1; n <= last; ++n) {
    if (seen[n]) continue;
    INFO("number " << n << " neither delivered nor reported");
    REQUIRE(!key_of[n].empty());
    bool superseded = false;
    for (std::uint64_t later = n + 1; later <= last; ++later) {
      superseded = superseded || (key_of[later] == key_of[n] && seen[later]);
    }
    CHECK(superseded);
  }
}

// A replacement that would take the queue past its bytes is queued behind as a new message (core/bounded_queue.hpp):
// the oldest messages are dropped for it, the one it supersedes among them. That one is not lost (no gap), and the gap
// it carried stays where it was, before the messages after it.
TEST_CASE("policy conflate: a replacement too large for the bytes is queued behind, and gaps keep their place",
          "[pubsub][broker][policy]") {
  asio::io_context ctx;
  broker b(ctx);
  recorder r;
  // Each message below counts 2 bytes (a 1-byte payload and a 1-byte key), the last one 4.
  auto sub = b.subscribe("t", {.limits = queue_limits{.max_messages = 3, .max_bytes = 6,
                                                      .policy = overflow_policy::conflate},
                               .on_event = r.callback()});
  b.publish("t", text("1", "a"));
  b.publish("t", text("2", "b"));
  b.publish("t", text("3", "c"));
  b.publish("t", text("4", "d"));    // full: #1 dropped, a gap before #2
  b.publish("t", text("555", "b"));  // in #2's place the queue would hold 8 bytes: #2 (superseded) and #3 go
  poll(ctx);
  CHECK(r.log == strings{"t gap 1-1 overflow", "t gap 3-3 overflow", "t#4=4", "t#5=555"});
  CHECK(sub.stats().superseded == 1);
  CHECK(sub.stats().dropped == 2);
}

TEST_CASE("policy disconnect: a full queue closes the subscription", "[pubsub][broker][policy]") {
  asio::io_context ctx;
  broker b(ctx);
  const auto limits = queue_limits{.max_messages = 2, .policy = overflow_policy::disconnect};

  SECTION("with a callback: what was queued, then the error") {
    recorder r;
    auto sub = b.subscribe("t", {.limits = limits, .on_event = r.callback()});
    publish_numbered(b, 1, 2);
    CHECK(b.publish("t", text("m3")).subscribers == 0);
    CHECK(sub.stats().closed);
    publish_numbered(b, 4, 5);
    poll(ctx);
    CHECK(r.log == strings{"t#1=m1", "t#2=m2", "error: consumer too slow: disconnected by overflow policy"});
  }

  SECTION("with async_receive: the error again on every later receive") {
    auto sub = b.subscribe("t", {.limits = limits});
    publish_numbered(b, 1, 3);
    CHECK(receive_one(ctx, sub) == "t#1=m1");
    CHECK(receive_one(ctx, sub) == "t#2=m2");
    CHECK(receive_one(ctx, sub) == "error: consumer too slow: disconnected by overflow policy");
    CHECK(receive_one(ctx, sub) == "error: consumer too slow: disconnected by overflow policy");
  }
}

TEST_CASE("policy disconnect: a broker destroyed after others left still discards what was queued",
          "[pubsub][broker][policy]") {
  // A subscription closed by its policy stays in the broker's list of subscriptions until it unsubscribes: the
  // list's sweep after others had left used to drop it, and the broker's close then missed it.
  for (const bool others_leave : {false, true}) {
    INFO("others unsubscribe first: " << others_leave);
    asio::io_context ctx;
    recorder r;
    std::optional<broker> b(std::in_place, ctx);
    auto cut = b->subscribe("t", {.limits = queue_limits{.max_messages = 1, .policy = overflow_policy::disconnect},
                                  .on_event = r.callback()});
    auto first = b->subscribe("t", {.on_event = [](std::error_code, const event&) {}});
    auto second = b->subscribe("t", {.on_event = [](std::error_code, const event&) {}});
    b->publish("t", text("one"));
    b->publish("t", text("two"));  // `cut` is full: closed by its policy, with "one" still queued
    if (others_leave) {
      first.unsubscribe();
      second.unsubscribe();
    }
    b.reset();  // closes every subscription, its queued messages discarded
    poll(ctx);
    CHECK(r.log == strings{"error: consumer too slow: disconnected by overflow policy"});
  }
}

TEST_CASE("policy disconnect: the reason stays once the broker is destroyed", "[pubsub][broker][policy]") {
  // Cut off by its policy while a receive waits, before the delivery reaches it; then the broker goes. The receive
  // and every later one report the first reason, not `closed`.
  asio::io_context ctx;
  std::optional<broker> b(std::in_place, ctx);
  auto sub = b->subscribe("t", {.limits = queue_limits{.max_messages = 1, .policy = overflow_policy::disconnect}});
  std::optional<std::string> got;
  sub.async_receive([&](std::error_code ec, event e) { got = describe(ec, e); });
  b->publish("t", text("one"));
  b->publish("t", text("two"));  // full: closed by its policy
  REQUIRE(sub.stats().closed);
  b.reset();
  REQUIRE(run_until(ctx, [&] { return got.has_value(); }));
  CHECK(*got == "error: consumer too slow: disconnected by overflow policy");
  CHECK(receive_one(ctx, sub) == "error: consumer too slow: disconnected by overflow policy");
}

TEST_CASE("policy wait: publishers wait for room", "[pubsub][broker][policy][wait]") {
  asio::io_context ctx;
  broker b(ctx);
  auto sub = b.subscribe("t", {.limits = queue_limits{.max_messages = 2, .policy = overflow_policy::wait}});

  SECTION("a synchronous publish that would wait publishes nothing") {
    publish_numbered(b, 1, 2);
    const publish_result r = b.publish("t", text("m3"));
    CHECK(r.error == error::would_block);
    CHECK(r.sequence == 0);
    CHECK(b.last_sequence("t") == 2);  // no sequence number was used
    CHECK(sub.stats().depth == 2);
    CHECK(receive_one(ctx, sub) == "t#1=m1");
    CHECK(b.publish("t", text("m3")).sequence == 3);
  }

  SECTION("async_publish completes when the subscriber makes room, in order") {
    std::vector<std::uint64_t> completed;
    for (int i = 1; i <= 4; ++i) {
      b.async_publish("t", text("m" + std::to_string(i)), [&](std::error_code ec, std::uint64_t seq) {
        CHECK_FALSE(ec);
        completed.push_back(seq);
      });
    }
    poll(ctx);
    CHECK(completed == std::vector<std::uint64_t>{1, 2});
    CHECK(b.stats("t")->waiting_publishers == 2);
    CHECK(b.publish("t", text("sync")).error == error::would_block);  // no overtaking the waiting ones
    strings got;
    for (int i = 0; i < 4; ++i) got.push_back(receive_one(ctx, sub));
    CHECK(got == numbered("t", 1, 4, "m"));
    poll(ctx);
    CHECK(completed == std::vector<std::uint64_t>{1, 2, 3, 4});
    CHECK(sub.stats().dropped == 0);
    CHECK(sub.stats().peak_depth == 2);
  }

  SECTION("a gap reported while a publisher waits takes its turn and is not counted as a waiting publisher") {
    publish_numbered(b, 1, 2);
    std::optional<std::uint64_t> sequence;
    b.async_publish("t", text("m3"), [&](std::error_code, std::uint64_t seq) { sequence = seq; });
    b.report_gap("t", gap_reason::upstream);
    b.report_gap("t", gap_reason::upstream);
    poll(ctx);
    CHECK(b.stats("t")->waiting_publishers == 1);
    strings got;
    for (int i = 0; i < 4; ++i) got.push_back(receive_one(ctx, sub));
    CHECK(got == strings{"t#1=m1", "t#2=m2", "t#3=m3", "t gap 4-5 upstream"});
    CHECK(sequence == 3);
    CHECK(b.stats("t")->waiting_publishers == 0);
  }

  SECTION("gaps reported in a row while a publisher waits take one number each, as one entry in the line") {
    publish_numbered(b, 1, 2);
    std::optional<std::uint64_t> sequence;
    b.async_publish("t", text("m3"), [&](std::error_code, std::uint64_t seq) { sequence = seq; });
    for (int i = 0; i < 1000; ++i) b.report_gap("t", gap_reason::upstream);
    b.report_gap("t", gap_reason::overflow);  // another reason: an entry of its own
    poll(ctx);
    strings got;
    for (int i = 0; i < 5; ++i) got.push_back(receive_one(ctx, sub));
    CHECK(got == strings{"t#1=m1", "t#2=m2", "t#3=m3", "t gap 4-1003 upstream", "t gap 1004-1004 overflow"});
    CHECK(sequence == 3);
    CHECK(b.last_sequence("t") == 1004);
  }

  SECTION("with a deadline") {
    publish_numbered(b, 1, 2);
    std::optional<std::error_code> result;
    b.async_publish("t", text("late"), 5ms, [&](std::error_code ec, std::uint64_t) { result = ec; });
    REQUIRE(run_until(ctx, [&] { return result.has_value(); }));
    CHECK(*result == switchboard::error::timeout);
    CHECK(b.last_sequence("t") == 2);
    CHECK(b.stats("t")->waiting_publishers == 0);
  }

  SECTION("cancelled") {
    publish_numbered(b, 1, 2);
    asio::cancellation_signal signal;
    std::optional<std::error_code> result;
    b.async_publish("t", text("late"), asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, std::uint64_t) {
                      result = ec;
                    }));
    poll(ctx);
    CHECK_FALSE(result);
    signal.emit(asio::cancellation_type::terminal);
    REQUIRE(run_until(ctx, [&] { return result.has_value(); }));
    CHECK(*result == asio::error::operation_aborted);
    CHECK(b.last_sequence("t") == 2);
    CHECK(receive_one(ctx, sub) == "t#1=m1");
    CHECK(b.publish("t", text("m3")).sequence == 3);
  }

  SECTION("a waiting publisher goes on when the full subscriber leaves") {
    publish_numbered(b, 1, 2);
    std::optional<std::uint64_t> seq;
    b.async_publish("t", text("m3"), [&](std::error_code ec, std::uint64_t s) {
      CHECK_FALSE(ec);
      seq = s;
    });
    poll(ctx);
    CHECK_FALSE(seq);
    sub.unsubscribe();
    REQUIRE(run_until(ctx, [&] { return seq.has_value(); }));
    CHECK(*seq == 3);
  }

  SECTION("subscribers with other policies never hold a publisher") {
    recorder r;
    auto dropping = b.subscribe("t", {.limits = queue_limits{.max_messages = 1, .policy = overflow_policy::drop_oldest},
                                      .on_event = r.callback()});
    publish_numbered(b, 1, 2);
    CHECK(b.publish("t", text("m3")).error == error::would_block);  // the wait subscriber is full
    sub.unsubscribe();
    CHECK(b.publish("t", text("m3")));
    poll(ctx);
    CHECK(r.log == strings{"t gap 1-2 overflow", "t#3=m3"});
  }

  SECTION("the broker's destruction completes waiting publishers") {
    std::optional<broker> owned;
    owned.emplace(ctx);
    auto waiting = owned->subscribe("t", {.limits = queue_limits{.max_messages = 1, .policy = overflow_policy::wait}});
    owned->publish("t", text("m1"));
    std::optional<std::error_code> result;
    owned->async_publish("t", text("m2"), [&](std::error_code ec, std::uint64_t) { result = ec; });
    poll(ctx);
    CHECK_FALSE(result);
    owned.reset();
    REQUIRE(run_until(ctx, [&] { return result.has_value(); }));
    CHECK(*result == switchboard::error::closed);
  }
}

TEST_CASE("policy wait: a pattern subscriber holds publishers of every topic it matches",
          "[pubsub][broker][policy][wait][pattern]") {
  asio::io_context ctx;
  broker b(ctx);
  auto sub = b.subscribe_pattern("t.*", {.limits = queue_limits{.max_messages = 2, .policy = overflow_policy::wait}});
  CHECK(b.publish("t.a", text("1")));
  CHECK(b.publish("t.b", text("1")));
  CHECK(b.publish("t.a", text("2")).error == error::would_block);
  CHECK(b.publish("t.b", text("2")).error == error::would_block);
  int done = 0;
  b.async_publish("t.a", text("2"), [&](std::error_code ec, std::uint64_t seq) {
    CHECK_FALSE(ec);
    CHECK(seq == 2);
    ++done;
  });
  b.async_publish("t.b", text("2"), [&](std::error_code ec, std::uint64_t seq) {
    CHECK_FALSE(ec);
    CHECK(seq == 2);
    ++done;
  });
  strings got;
  for (int i = 0; i < 4; ++i) got.push_back(receive_one(ctx, sub));
  REQUIRE(run_until(ctx, [&] { return done == 2; }));
  CHECK(got[0] == "t.a#1=1");
  CHECK(got[1] == "t.b#1=1");
  CHECK(sub.stats().peak_depth == 2);
}

TEST_CASE("gaps of a pattern subscriber are per topic", "[pubsub][broker][policy][pattern]") {
  asio::io_context ctx;
  broker b(ctx);
  recorder r;
  auto sub = b.subscribe_pattern(
      "t.*", {.limits = queue_limits{.max_messages = 2, .policy = overflow_policy::drop_oldest}, .on_event = r.callback()});
  b.publish("t.a", text("a1"));
  b.publish("t.b", text("b1"));
  b.publish("t.a", text("a2"));  // drops a1
  b.publish("t.a", text("a3"));  // drops b1
  poll(ctx);
  CHECK(r.log == strings{"t.a gap 1-1 overflow", "t.b gap 1-1 overflow", "t.a#2=a2", "t.a#3=a3"});
  CHECK(b.stats("t.a")->dropped == 1);
  CHECK(b.stats("t.b")->dropped == 1);
}
