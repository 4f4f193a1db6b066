#include <switchboard/push/outbox.hpp>

#include "push/push_support.hpp"

#include <string>
#include <vector>

using namespace switchboard;
using push::test::make_message;

namespace {

// What a client would write, as "topic:seq" for messages, "gap topic:first-last" for gaps, "ctl" for the rest.
std::vector<std::string> drain(push::outbox& box) {
  std::vector<std::string> out;
  while (auto item = box.next()) {
    if (item->source) out.push_back(std::string(item->source->topic()) + ":" + std::to_string(item->source->sequence()));
    else out.push_back(std::string(item->bytes.view()));
  }
  return out;
}

push::outbox make_box(std::size_t max_messages, overflow_policy policy) {
  return push::outbox({.max_messages = max_messages, .max_bytes = 1 << 20, .policy = policy}, [](const pubsub::gap& g) {
    return shared_bytes("gap " + g.topic + ":" + std::to_string(g.first) + "-" + std::to_string(g.last) + " " +
                        std::string(pubsub::to_string(g.reason)));
  });
}

push::outbound item(std::string_view topic, std::uint64_t seq, std::string key = {}) {
  auto m = make_message(topic, seq, "payload", std::move(key));
  return push::outbound{m.payload(), m};
}

}  // namespace

TEST_CASE("push outbox: what drop_oldest discards comes out as one gap, in its place", "[push][outbox]") {
  auto box = make_box(2, overflow_policy::drop_oldest);
  for (std::uint64_t seq = 1; seq <= 5; ++seq) CHECK(box.offer(item("a", seq)));
  CHECK(drain(box) == std::vector<std::string>{"gap a:1-3 overflow", "a:4", "a:5"});
  CHECK(box.empty());
  CHECK(box.stats().gaps == 1);
  CHECK(box.stats().queue.dropped == 3);
}

TEST_CASE("push outbox: drop_newest keeps the oldest and reports each run where it was", "[push][outbox]") {
  auto box = make_box(2, overflow_policy::drop_newest);
  CHECK(box.offer(item("a", 1)));
  CHECK(box.offer(item("a", 2)));
  CHECK(box.offer(item("a", 3)));  // dropped
  auto first = box.next();
  REQUIRE(first);
  CHECK(first->source->sequence() == 1);
  CHECK(box.offer(item("a", 4)));
  CHECK(box.offer(item("a", 5)));  // dropped: a second run, not merged with 3 (4 was kept)
  CHECK(drain(box) == std::vector<std::string>{"a:2", "gap a:3-3 overflow", "a:4", "gap a:5-5 overflow"});
}

TEST_CASE("push outbox: gaps are kept per topic", "[push][outbox]") {
  auto box = make_box(2, overflow_policy::drop_oldest);
  CHECK(box.offer(item("a", 1)));
  CHECK(box.offer(item("b", 1)));
  CHECK(box.offer(item("a", 2)));  // drops a:1
  CHECK(box.offer(item("b", 2)));  // drops b:1
  // b:1 was published before a:2: its gap may come first too; per topic, the order holds.
  CHECK(drain(box) == std::vector<std::string>{"gap a:1-1 overflow", "gap b:1-1 overflow", "a:2", "b:2"});
}

TEST_CASE("push outbox: conflate supersedes without a gap; other drops still report", "[push][outbox]") {
  auto box = make_box(2, overflow_policy::conflate);
  CHECK(box.offer(item("prices", 1, "AAPL")));
  CHECK(box.offer(item("prices", 2, "MSFT")));
  CHECK(box.offer(item("prices", 3, "AAPL")));  // replaces 1 in place
  CHECK(drain(box) == std::vector<std::string>{"prices:3", "prices:2"});
  CHECK(box.offer(item("prices", 4, "A")));
  CHECK(box.offer(item("prices", 5, "B")));
  CHECK(box.offer(item("prices", 6, "C")));  // a new key on a full queue: drops the oldest (4)
  CHECK(drain(box) == std::vector<std::string>{"gap prices:4-4 overflow", "prices:5", "prices:6"});
}

TEST_CASE("push outbox: disconnect refuses and marks the client overflowed", "[push][outbox]") {
  auto box = make_box(2, overflow_policy::disconnect);
  CHECK(box.offer(item("a", 1)));
  CHECK(box.offer(item("a", 2)));
  CHECK_FALSE(box.offer(item("a", 3)));
  CHECK(box.overflowed());
  CHECK(box.stats().overflowed);
  CHECK_FALSE(box.offer(item("a", 4)));
  // What was queued is still written before the client is cut (it resumes from its cursor when it reconnects), so
  // that a resuming client whose replay overflows its queue still makes progress.
  CHECK(drain(box) == std::vector<std::string>{"a:1", "a:2"});
  CHECK(box.overflowed());
}

TEST_CASE("push outbox: control items are never reported lost; wait is refused", "[push][outbox]") {
  auto box = make_box(1, overflow_policy::drop_oldest);
  CHECK(box.offer(push::outbound{shared_bytes::copy("ctl")}));
  CHECK(box.offer(push::outbound{shared_bytes::copy("ctl2")}));
  CHECK(drain(box) == std::vector<std::string>{"ctl2"});
  CHECK_THROWS_AS(make_box(1, overflow_policy::wait), std::invalid_argument);
}

TEST_CASE("push outbox: many runs of one topic are bounded, widening the newest", "[push][outbox]") {
  auto box = make_box(1, overflow_policy::drop_newest);
  CHECK(box.offer(item("a", 1)));
  // Every even number is dropped, every odd one after the first goes through: one run per drop, up to the cap.
  std::uint64_t seq = 2;
  for (std::size_t runs = 0; runs < push::outbox::max_runs_per_topic + 3; ++runs, seq += 2) {
    CHECK(box.offer(item("a", seq)));  // dropped: the queue holds 1 item
  }
  std::size_t gaps = 0;
  while (auto next = box.next()) {
    if (!next->source) ++gaps;
  }
  CHECK(gaps == push::outbox::max_runs_per_topic);
}

// Found by tests/push/hub_backpressure_random.cpp: the gap was handed out as soon as the front was of another topic,
// before older messages of its own topic still queued behind that front (a rooms socket under drop_newest).
TEST_CASE("push outbox: a gap waits for the older messages of its topic queued behind another topic's",
          "[push][outbox]") {
  auto box = make_box(2, overflow_policy::drop_newest);
  CHECK(box.offer(item("b", 1)));
  CHECK(box.offer(item("a", 1)));
  CHECK(box.offer(item("a", 2)));  // dropped: the newest
  CHECK(drain(box) == std::vector<std::string>{"b:1", "a:1", "gap a:2-2 overflow"});
}

// Found by tests/push/hub_backpressure_random.cpp: a room's message replaced a queued message of another topic with
// the same key, in place: that message was lost though the queue had room, and the replacement came before its own
// topic's earlier messages.
TEST_CASE("push outbox: conflate replaces only a message of the same topic", "[push][outbox]") {
  auto box = make_box(3, overflow_policy::conflate);
  CHECK(box.offer(item("b", 1, "AAPL")));
  CHECK(box.offer(item("a", 1, "MSFT")));
  CHECK(box.offer(item("a", 2, "AAPL")));  // another topic's AAPL: queued, nothing replaced
  CHECK(drain(box) == std::vector<std::string>{"b:1", "a:1", "a:2"});
  CHECK(box.stats().queue.dropped == 0);
  CHECK(box.offer(item("a", 3, "MSFT")));
  CHECK(box.offer(item("a", 4, "MSFT")));  // its own topic's MSFT: replaced in place, no gap
  CHECK(drain(box) == std::vector<std::string>{"a:4"});
  CHECK(box.stats().gaps == 0);
}
