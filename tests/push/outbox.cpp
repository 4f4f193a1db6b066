#include <switchboard/push/outbox.hpp>

#include "push/push_support.hpp"

#include <iterator>
#include <map>
#include <random>
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

// A control item ("joined", "left", an error reply), acknowledging `topic` if given.
push::outbound control(std::string_view text, std::string_view topic = {}) {
  push::outbound c{shared_bytes::copy(text)};
  c.topic = topic;
  return c;
}

// A gap item, as a replay's retention gap.
push::outbound gap_item(std::string_view topic, std::uint64_t first, std::uint64_t last) {
  const pubsub::gap g{std::string(topic), first, last, pubsub::gap_reason::retention};
  return push::outbound{shared_bytes::copy("retention gap"), std::nullopt, g};
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
  // Replaces 1, and goes to the back: written before 2, a client that lost its connection after it would resume
  // from id 3 (Last-Event-ID) and never get 2.
  CHECK(box.offer(item("prices", 3, "AAPL")));
  CHECK(drain(box) == std::vector<std::string>{"prices:2", "prices:3"});
  CHECK(box.offer(item("prices", 4, "A")));
  CHECK(box.offer(item("prices", 5, "B")));
  CHECK(box.offer(item("prices", 6, "C")));  // a new key on a full queue: drops the oldest (4)
  CHECK(drain(box) == std::vector<std::string>{"gap prices:4-4 overflow", "prices:5", "prices:6"});
}

TEST_CASE("push outbox: a key supersedes only under conflate; other policies report its drops", "[push][outbox]") {
  auto newest = make_box(2, overflow_policy::drop_newest);
  for (std::uint64_t seq = 1; seq <= 4; ++seq) CHECK(newest.offer(item("a", seq, "k")));
  CHECK(drain(newest) == std::vector<std::string>{"a:1", "a:2", "gap a:3-4 overflow"});
  auto oldest = make_box(2, overflow_policy::drop_oldest);
  for (std::uint64_t seq = 1; seq <= 4; ++seq) CHECK(oldest.offer(item("a", seq, "k")));
  CHECK(drain(oldest) == std::vector<std::string>{"gap a:1-2 overflow", "a:3", "a:4"});
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

// Control items were dropped as messages are, silently: a client waiting for "joined" or "left" waited for ever.
TEST_CASE("push outbox: control items are never lost and keep their place; wait is refused", "[push][outbox]") {
  SECTION("drop_oldest: a dropped control item comes before what is still queued, in the order dropped") {
    auto box = make_box(1, overflow_policy::drop_oldest);
    CHECK(box.offer(control("ctl")));
    CHECK(box.offer(control("ctl2")));  // drops ctl: held
    CHECK(box.offer(item("a", 1)));     // drops ctl2: held
    CHECK(box.stats().held == 2);
    CHECK(drain(box) == std::vector<std::string>{"ctl", "ctl2", "a:1"});
    CHECK(box.empty());
    CHECK(box.stats().held == 0);
  }
  SECTION("conflate falls back to drop_oldest: the same") {
    auto box = make_box(1, overflow_policy::conflate);
    CHECK(box.offer(control("joined")));
    CHECK(box.offer(item("a", 1, "K")));  // drops "joined": held
    CHECK(box.offer(item("a", 2, "K")));  // replaces a:1 in place
    CHECK(drain(box) == std::vector<std::string>{"joined", "a:2"});
  }
  SECTION("drop_newest: a refused control item comes after what is queued and before anything offered later") {
    auto box = make_box(1, overflow_policy::drop_newest);
    CHECK(box.offer(item("a", 1)));
    CHECK(box.offer(control("ctl")));   // refused: pending after a:1
    CHECK(box.offer(item("a", 2)));     // dropped while ctl is pending: a gap after it
    CHECK(box.offer(control("ctl2")));  // pending after ctl
    CHECK(box.offer(item("a", 3)));     // dropped: a gap after ctl2, not merged with a:2's
    CHECK(box.stats().held == 2);
    CHECK_FALSE(box.empty());
    CHECK(drain(box) == std::vector<std::string>{"a:1", "ctl", "gap a:2-2 overflow", "ctl2", "gap a:3-3 overflow"});
    CHECK(box.empty());
    CHECK(box.offer(item("a", 4)));  // nothing pending: queued again
    CHECK(drain(box) == std::vector<std::string>{"a:4"});
  }
  SECTION("only a held control item: not empty") {
    auto box = make_box(1, overflow_policy::drop_newest);
    CHECK(box.offer(item("a", 1)));
    CHECK(box.offer(control("ctl")));
    CHECK(box.next());
    CHECK_FALSE(box.empty());
    CHECK(drain(box) == std::vector<std::string>{"ctl"});
    CHECK(box.empty());
  }
  CHECK_THROWS_AS(make_box(1, overflow_policy::wait), std::invalid_argument);
}

TEST_CASE("push outbox: gaps keep their place around a held control item", "[push][outbox]") {
  auto box = make_box(2, overflow_policy::drop_oldest);
  CHECK(box.offer(item("a", 1)));
  CHECK(box.offer(control("ctl")));
  CHECK(box.offer(item("a", 2)));  // drops a:1, offered before ctl
  CHECK(box.offer(item("a", 3)));  // drops ctl: held
  CHECK(box.offer(item("a", 4)));  // drops a:2, offered after ctl: not merged with a:1's run
  CHECK(drain(box) == std::vector<std::string>{"gap a:1-1 overflow", "ctl", "gap a:2-2 overflow", "a:3", "a:4"});
}

// A client that sends requests without reading the replies must not grow its queue without bound.
TEST_CASE("push outbox: too many control items held overflow the outbox", "[push][outbox]") {
  for (const overflow_policy policy : {overflow_policy::drop_oldest, overflow_policy::drop_newest}) {
    CAPTURE(policy);
    auto box = make_box(1, policy);
    CHECK(box.offer(item("a", 1)));
    const std::size_t held = push::outbox::max_held_controls;
    // drop_oldest: the first control item drops a:1 and the next ones drop it; drop_newest: each one is refused.
    const std::size_t offered = policy == overflow_policy::drop_oldest ? held + 1 : held;
    for (std::size_t i = 0; i < offered; ++i) CHECK(box.offer(control("ctl")));
    CHECK_FALSE(box.overflowed());
    CHECK(box.stats().held == held);
    CHECK_FALSE(box.offer(control("ctl")));  // one more than the bound
    CHECK(box.overflowed());
    CHECK_FALSE(box.offer(item("a", 2)));
    // What was queued and held is still written before the client is cut.
    std::size_t controls = 0;
    for (const std::string& out : drain(box)) controls += out == "ctl";
    CHECK(controls == offered + 1);
    CHECK(box.empty());
  }
}

// A gap of a topic was written before that topic's "joined", still queued: the client got a gap of a topic it had
// not joined yet (a replay's retention gap dropped by a full queue, say).
TEST_CASE("push outbox: a gap of a topic comes after its queued \"joined\"", "[push][outbox]") {
  auto box = make_box(2, overflow_policy::drop_newest);
  CHECK(box.offer(item("b", 1)));
  CHECK(box.offer(control("joined a", "a")));
  CHECK(box.offer(gap_item("a", 1, 5)));  // dropped: the newest
  CHECK(box.offer(control("error")));     // refused: pending
  CHECK(drain(box) == std::vector<std::string>{"b:1", "joined a", "gap a:1-5 retention", "error"});

  // A gap for messages offered before "left" still comes before it.
  auto left = make_box(2, overflow_policy::drop_oldest);
  CHECK(left.offer(item("a", 1)));
  CHECK(left.offer(item("a", 2)));
  CHECK(left.offer(control("left a", "a")));  // drops a:1
  CHECK(drain(left) == std::vector<std::string>{"gap a:1-1 overflow", "a:2", "left a"});
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
// the same key: that message was lost though the queue had room.
TEST_CASE("push outbox: conflate replaces only a message of the same topic", "[push][outbox]") {
  auto box = make_box(3, overflow_policy::conflate);
  CHECK(box.offer(item("b", 1, "AAPL")));
  CHECK(box.offer(item("a", 1, "MSFT")));
  CHECK(box.offer(item("a", 2, "AAPL")));  // another topic's AAPL: queued, nothing replaced
  CHECK(drain(box) == std::vector<std::string>{"b:1", "a:1", "a:2"});
  CHECK(box.stats().queue.dropped == 0);
  CHECK(box.offer(item("a", 3, "MSFT")));
  CHECK(box.offer(item("a", 4, "MSFT")));  // its own topic's MSFT: replaced, no gap
  CHECK(drain(box) == std::vector<std::string>{"a:4"});
  CHECK(box.stats().gaps == 0);
}

// Random offers of two topics with few conflation keys to a small conflate queue, written now and then: per topic
// the ids written (messages and gaps) increase, and an id never written was superseded by a later message of its
// topic with its key. An SSE client resumes after the last id it received (Last-Event-ID): an id written after a
// higher one would be lost without a gap when the connection dropped between them.
TEST_CASE("push outbox: under conflate the ids written increase per topic", "[push][outbox]") {
  const unsigned seed = GENERATE(range(1u, 31u));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto box = make_box(1 + rng() % 5, overflow_policy::conflate);
  static constexpr const char* topics[] = {"a", "b"};
  static constexpr const char* keys[] = {"", "k1", "k2", "k3"};
  std::map<std::string, std::vector<std::string>> key_of;  // per topic, by sequence number (from 1)
  std::vector<push::outbound> written;
  for (int step = 0; step < 300; ++step) {
    if (rng() % 4 != 0) {
      const std::string topic = topics[rng() % std::size(topics)];
      std::vector<std::string>& k = key_of[topic];
      k.push_back(keys[rng() % std::size(keys)]);
      CHECK(box.offer(item(topic, k.size(), k.back())));
    } else if (auto next = box.next()) {
      written.push_back(std::move(*next));
    }
  }
  while (auto next = box.next()) written.push_back(std::move(*next));
  for (const auto& [topic, k] : key_of) {
    INFO("topic " << topic);
    std::vector<bool> seen(k.size() + 1);
    std::uint64_t expected = 1;  // the lowest id that may come next
    for (const push::outbound& w : written) {
      const std::string text(w.bytes.view());
      std::uint64_t first = 0, last = 0;
      if (w.source && w.source->topic() == topic) {
        first = last = w.source->sequence();
      } else if (text.starts_with("gap " + topic + ":")) {  // "gap <topic>:<first>-<last> overflow"
        const std::size_t at = text.find(':') + 1, dash = text.find('-', at);
        first = std::stoull(text.substr(at, dash - at));
        last = std::stoull(text.substr(dash + 1));
      } else {
        continue;
      }
      INFO("written " << first << "-" << last);
      REQUIRE(first >= expected);
      for (std::uint64_t n = first; n <= last; ++n) seen[n] = true;
      expected = last + 1;
    }
    for (std::uint64_t n = 1; n <= k.size(); ++n) {
      if (seen[n]) continue;
      INFO("id " << n << " neither written nor reported");
      bool superseded = false;
      for (std::uint64_t later = n + 1; later <= k.size(); ++later) {
        superseded = superseded || (!k[n - 1].empty() && k[later - 1] == k[n - 1] && seen[later]);
      }
      CHECK(superseded);
    }
  }
}

// Each run is decided against a summary of the queue per topic (one pass, not one per run): runs of several topics,
// some behind queued messages or a queued "joined" of their topic, some not, each handed out where it belongs.
TEST_CASE("push outbox: runs of several topics, before and behind queued items", "[push][outbox]") {
  auto behind = make_box(4, overflow_policy::drop_newest);
  CHECK(behind.offer(item("b", 1)));
  CHECK(behind.offer(item("a", 1)));
  CHECK(behind.offer(control("joined c", "c")));
  CHECK(behind.offer(item("a", 2)));
  CHECK(behind.offer(item("a", 3)));  // dropped, behind a:1 and a:2
  CHECK(behind.offer(item("c", 1)));  // dropped, behind "joined c"
  CHECK(behind.offer(item("b", 2)));  // dropped, behind b:1
  CHECK(drain(behind) == std::vector<std::string>{"b:1", "gap b:2-2 overflow", "a:1", "joined c", "gap c:1-1 overflow",
                                                  "a:2", "gap a:3-3 overflow"});

  auto before = make_box(3, overflow_policy::drop_oldest);
  CHECK(before.offer(item("a", 1)));
  CHECK(before.offer(item("b", 1)));
  CHECK(before.offer(item("a", 3)));
  CHECK(before.offer(item("b", 2)));  // drops a:1
  CHECK(before.offer(item("a", 5)));  // drops b:1
  CHECK(before.offer(item("b", 4)));  // drops a:3: a run of its own (a:2 was never offered)
  CHECK(drain(before) == std::vector<std::string>{"gap a:1-1 overflow", "gap b:1-1 overflow", "gap a:3-3 overflow",
                                                  "b:2", "a:5", "b:4"});
}
