#include <switchboard/core/bounded_queue.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <deque>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

using switchboard::bounded_queue;
using switchboard::overflow_policy;
using switchboard::push_outcome;
using switchboard::queue_limits;

namespace {

// An item with a conflation key and a byte size, as a pub/sub message would have.
struct keyed {
  std::string key;
  std::string payload;
  std::size_t size() const { return payload.size(); }
  std::string_view conflation_key() const { return key; }
};

std::vector<std::string> drain(bounded_queue<std::string>& q) {
  std::vector<std::string> out;
  while (!q.empty()) out.push_back(q.pop());
  return out;
}

}  // namespace

TEST_CASE("bounded_queue: limits are validated", "[core][bounded_queue]") {
  CHECK_THROWS_AS(bounded_queue<int>(queue_limits{.max_messages = 0}), std::invalid_argument);
  CHECK_THROWS_AS(bounded_queue<int>(queue_limits{.max_bytes = 0}), std::invalid_argument);
}

TEST_CASE("bounded_queue: FIFO within limits", "[core][bounded_queue]") {
  bounded_queue<std::string> q(queue_limits{.max_messages = 3, .max_bytes = 100});
  CHECK(q.push(std::string("a")) == push_outcome::queued);
  CHECK(q.push(std::string("bb")) == push_outcome::queued);
  CHECK(q.size() == 2);
  CHECK(q.bytes() == 3);
  CHECK(q.at(1) == "bb");
  CHECK(drain(q) == std::vector<std::string>{"a", "bb"});
  CHECK(q.bytes() == 0);
  const auto s = q.stats();
  CHECK(s.pushed == 2);
  CHECK(s.popped == 2);
  CHECK(s.dropped == 0);
}

TEST_CASE("bounded_queue: the ring grows across wrap-around", "[core][bounded_queue]") {
  bounded_queue<int> q(queue_limits{.max_messages = 1000, .max_bytes = 1 << 20});
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < round; ++i) REQUIRE(q.push(next_in++) == push_outcome::queued);
    for (int i = 0; i < round / 2; ++i) REQUIRE(q.pop() == next_out++);
  }
  while (!q.empty()) REQUIRE(q.pop() == next_out++);
  CHECK(next_out == next_in);
}

TEST_CASE("bounded_queue: storage released while empty, and only then", "[core][bounded_queue]") {
  bounded_queue<std::string> q({.max_messages = 100, .max_bytes = 1 << 20});
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 7; ++i) q.push(std::to_string(round) + ":" + std::to_string(i));
    q.pop();
    q.release_storage();  // not empty: kept, order intact
    CHECK(q.size() == 6);
    CHECK(q.front() == std::to_string(round) + ":1");
    CHECK(drain(q).back() == std::to_string(round) + ":6");
    q.release_storage();  // empty: the ring goes; the next round allocates one again
    CHECK(q.stats().popped == 7 * static_cast<std::size_t>(round + 1));
  }
}

TEST_CASE("bounded_queue: each overflow policy", "[core][bounded_queue]") {
  std::vector<std::string> dropped;
  auto on_drop = [&](std::string&& s) { dropped.push_back(std::move(s)); };

  SECTION("wait refuses and leaves the item with the caller") {
    bounded_queue<std::string> q(queue_limits{.max_messages = 2, .policy = overflow_policy::wait});
    q.push(std::string("1"));
    q.push(std::string("2"));
    std::string third = "3";
    CHECK(q.push(std::move(third), on_drop) == push_outcome::must_wait);
    CHECK(third == "3");
    CHECK(dropped.empty());
    CHECK(q.stats().refused == 1);
    CHECK(drain(q) == std::vector<std::string>{"1", "2"});
  }
  SECTION("disconnect refuses and tells the owner to cut the consumer") {
    bounded_queue<std::string> q(queue_limits{.max_messages = 1, .policy = overflow_policy::disconnect});
    q.push(std::string("1"));
    CHECK(q.push(std::string("2"), on_drop) == push_outcome::must_disconnect);
    CHECK(q.size() == 1);
    CHECK(dropped.empty());
  }
  SECTION("drop_newest discards the new item") {
    bounded_queue<std::string> q(queue_limits{.max_messages = 2, .policy = overflow_policy::drop_newest});
    q.push(std::string("1"));
    q.push(std::string("2"));
    CHECK(q.push(std::string("3"), on_drop) == push_outcome::dropped);
    CHECK(dropped == std::vector<std::string>{"3"});
    CHECK(q.stats().dropped == 1);
    CHECK(drain(q) == std::vector<std::string>{"1", "2"});
  }
  SECTION("drop_oldest discards from the front until the new item fits, in bytes too") {
    bounded_queue<std::string> q(queue_limits{.max_messages = 10, .max_bytes = 6, .policy = overflow_policy::drop_oldest});
    q.push(std::string("aa"));
    q.push(std::string("bb"));
    q.push(std::string("cc"));
    CHECK(q.push(std::string("dddd"), on_drop) == push_outcome::queued_dropping);
    CHECK(dropped == std::vector<std::string>{"aa", "bb"});
    CHECK(q.bytes() == 6);
    CHECK(drain(q) == std::vector<std::string>{"cc", "dddd"});
  }
  SECTION("an item larger than max_bytes is accepted into an empty queue") {
    bounded_queue<std::string> q(queue_limits{.max_messages = 10, .max_bytes = 4, .policy = overflow_policy::drop_oldest});
    q.push(std::string("ab"));
    CHECK(q.push(std::string("0123456789"), on_drop) == push_outcome::queued_dropping);
    CHECK(dropped == std::vector<std::string>{"ab"});
    CHECK(q.size() == 1);
  }
}

TEST_CASE("bounded_queue: conflate keeps the latest item per key in push order", "[core][bounded_queue]") {
  bounded_queue<keyed> q(queue_limits{.max_messages = 3, .policy = overflow_policy::conflate});
  std::vector<std::string> dropped;
  auto on_drop = [&](keyed&& k) { dropped.push_back(k.key + "=" + k.payload); };
  CHECK(q.push(keyed{"AAPL", "100"}, on_drop) == push_outcome::queued);
  CHECK(q.push(keyed{"MSFT", "200"}, on_drop) == push_outcome::queued);
  CHECK(q.push(keyed{"AAPL", "101"}, on_drop) == push_outcome::replaced);
  CHECK(q.replaced_position() == 0);
  CHECK(q.size() == 2);
  CHECK(q.bytes() == 6);
  CHECK(dropped == std::vector<std::string>{"AAPL=100"});
  // The newer AAPL goes to the back: pushed after MSFT, it comes after it (sequence numbers stay in order).
  CHECK(q.front().payload == "200");
  CHECK(q.at(1).payload == "101");

  SECTION("a new key on a full queue drops the oldest, and the index forgets it") {
    CHECK(q.push(keyed{"", "x"}, on_drop) == push_outcome::queued);  // no key: never conflated
    CHECK(q.push(keyed{"GOOG", "300"}, on_drop) == push_outcome::queued_dropping);
    CHECK(dropped.back() == "MSFT=200");
    CHECK(q.push(keyed{"MSFT", "201"}, on_drop) == push_outcome::queued_dropping);  // MSFT is no longer queued
    CHECK(dropped.back() == "AAPL=101");
    std::vector<std::string> order;
    while (!q.empty()) order.push_back(q.pop().payload);
    CHECK(order == std::vector<std::string>{"x", "300", "201"});
  }
  SECTION("a popped key is not replaced later") {
    CHECK(q.pop().payload == "200");
    CHECK(q.push(keyed{"MSFT", "202"}, on_drop) == push_outcome::queued);
    CHECK(q.pop().payload == "101");
    CHECK(q.pop().payload == "202");
  }
}

// A replacement takes the older item out of the middle and moves those behind it up: the conflation index must
// follow them, through the ring's wrap-around, or a later replacement discards the wrong item.
TEST_CASE("bounded_queue: conflate replacements keep push order and the key index", "[core][bounded_queue]") {
  bounded_queue<keyed> q(queue_limits{.max_messages = 4, .policy = overflow_policy::conflate});
  std::vector<std::string> dropped;
  auto on_drop = [&](keyed&& k) { dropped.push_back(k.key + k.payload); };
  const auto contents = [&] {
    std::string out;
    for (std::size_t i = 0; i < q.size(); ++i) out += q.at(i).key + q.at(i).payload + " ";
    return out;
  };
  const auto replace = [&](const char* key, const char* payload, std::size_t position) {
    INFO("replacing " << key << " with " << payload);
    REQUIRE(q.push(keyed{key, payload}, on_drop) == push_outcome::replaced);
    CHECK(q.replaced_position() == position);
  };
  for (const char* key : {"a", "b", "c", "d"}) q.push(keyed{key, "1"}, on_drop);
  replace("b", "2", 1);
  CHECK(contents() == "a1 c1 d1 b2 ");
  replace("a", "2", 0);
  CHECK(contents() == "c1 d1 b2 a2 ");
  CHECK(q.pop().payload == "1");  // c1
  replace("b", "3", 1);           // the ring's front has moved on
  CHECK(contents() == "d1 a2 b3 ");
  q.push(keyed{"e", "1"}, on_drop);  // wraps around the ring's end
  replace("d", "2", 0);
  CHECK(contents() == "a2 b3 e1 d2 ");
  replace("d", "3", 3);  // the last one: replaced where it is
  replace("e", "2", 2);
  CHECK(contents() == "a2 b3 d3 e2 ");
  CHECK(dropped == std::vector<std::string>{"b1", "a1", "b2", "d1", "d2", "e1"});
  CHECK(q.bytes() == 4);
  CHECK(q.stats().pushed == 11);
  CHECK(q.stats().dropped == 6);
  // Each key still finds its own item: replacing every one discards exactly the items queued, front first.
  dropped.clear();
  for (const char* key : {"a", "b", "d", "e"}) replace(key, "9", 0);
  CHECK(dropped == std::vector<std::string>{"a2", "b3", "d3", "e2"});
  CHECK(contents() == "a9 b9 d9 e9 ");
}

// A queue moved from (its owner's state handed to another) is left empty, as if new, and can be used again. The
// defaulted moves left it claiming the items it no longer held: its next push wrote outside its moved-out ring.
TEST_CASE("bounded_queue: a queue moved from is empty and can be used again", "[core][bounded_queue]") {
  const queue_limits limits{.max_messages = 4, .max_bytes = 100, .policy = overflow_policy::conflate};
  bounded_queue<keyed> from(limits);
  from.push(keyed{"AAPL", "100"});
  from.push(keyed{"MSFT", "200"});
  bounded_queue<keyed> to(limits);
  SECTION("by construction") { to = bounded_queue<keyed>(std::move(from)); }
  SECTION("by assignment, over items of its own") {
    to.push(keyed{"GOOG", "300"});
    to = std::move(from);
  }
  // The items, their conflation index and the counters went to `to`.
  CHECK(to.size() == 2);
  CHECK(to.bytes() == 6);
  CHECK(to.stats().pushed == 2);
  CHECK(to.push(keyed{"AAPL", "101"}) == push_outcome::replaced);
  CHECK(to.pop().payload == "200");
  CHECK(to.pop().payload == "101");
  // `from` is a new queue with the same limits.
  CHECK(from.empty());
  CHECK(from.bytes() == 0);
  CHECK(from.stats().pushed == 0);
  CHECK(from.limits().policy == overflow_policy::conflate);
  for (int i = 0; i < 6; ++i) CHECK(from.push(keyed{"", std::to_string(i)}) != push_outcome::replaced);
  CHECK(from.push(keyed{"AAPL", "102"}) == push_outcome::queued_dropping);  // "AAPL" is not queued here
  std::vector<std::string> order;
  while (!from.empty()) order.push_back(from.pop().payload);
  CHECK(order == std::vector<std::string>{"3", "4", "5", "102"});
}

namespace {

// The queue as its documentation describes it, on a std::deque: what each push must do and report.
class reference_queue {
 public:
  explicit reference_queue(queue_limits limits) : limits_(limits) {}

  push_outcome push(keyed item, std::vector<keyed>& dropped) {
    if (limits_.policy == overflow_policy::conflate && !item.key.empty()) {
      // The newest item with its key (an older one stays when a replacement did not fit) is taken out and the new
      // one goes to the back, in push order, when the queue stays within its bytes (or holds that one item alone).
      const auto same = std::find_if(items_.rbegin(), items_.rend(), [&](const keyed& k) { return k.key == item.key; });
      if (same != items_.rend() && (bytes() - same->size() + item.size() <= limits_.max_bytes || items_.size() == 1)) {
        const auto replaced = std::prev(same.base());
        replaced_position_ = static_cast<std::size_t>(replaced - items_.begin());
        dropped.push_back(std::move(*replaced));
        items_.erase(replaced);
        append(std::move(item));
        ++stats_.dropped;
        return push_outcome::replaced;
      }
    }
    if (has_room_for(item.size())) {
      append(std::move(item));
      return push_outcome::queued;
    }
    switch (limits_.policy) {
      case overflow_policy::wait:
        ++stats_.refused;
        return push_outcome::must_wait;
      case overflow_policy::disconnect:
        ++stats_.refused;
        return push_outcome::must_disconnect;
      case overflow_policy::drop_newest:
        ++stats_.dropped;
        dropped.push_back(std::move(item));
        return push_outcome::dropped;
      case overflow_policy::drop_oldest:
      case overflow_policy::conflate:
        while (!has_room_for(item.size())) {
          ++stats_.dropped;
          dropped.push_back(std::move(items_.front()));
          items_.pop_front();
        }
        append(std::move(item));
        return push_outcome::queued_dropping;
    }
    return push_outcome::must_wait;
  }

  keyed pop() {
    keyed front = std::move(items_.front());
    items_.pop_front();
    ++stats_.popped;
    return front;
  }

  void clear() { items_.clear(); }

  const std::deque<keyed>& items() const { return items_; }
  std::size_t bytes() const {
    std::size_t total = 0;
    for (const keyed& k : items_) total += k.size();
    return total;
  }
  const switchboard::queue_stats& counts() const { return stats_; }
  std::size_t replaced_position() const { return replaced_position_; }

 private:
  bool has_room_for(std::size_t size) const {
    return items_.empty() || (items_.size() < limits_.max_messages && bytes() + size <= limits_.max_bytes);
  }
  void append(keyed item) {
    items_.push_back(std::move(item));
    ++stats_.pushed;
  }

  queue_limits limits_;
  std::deque<keyed> items_;
  switchboard::queue_stats stats_;
  std::size_t replaced_position_ = 0;
};

}  // namespace

// Random pushes (keyed and not, some larger than the byte limit), pops, clears and storage releases under every
// policy and small random limits, checked after each step against the reference: the outcome, what was dropped, the
// contents in order (through the ring's wrap-around and growth), the counters; and the bounds themselves: never more
// than max_messages items, never more than max_bytes bytes unless one item alone.
TEST_CASE("bounded_queue: random operations under every policy agree with the reference", "[core][bounded_queue]") {
  const overflow_policy policy = GENERATE(overflow_policy::wait, overflow_policy::disconnect, overflow_policy::drop_newest,
                                          overflow_policy::drop_oldest, overflow_policy::conflate);
  const unsigned seed = GENERATE(range(1u, 21u));
  INFO(switchboard::to_string(policy) << ", seed " << seed);
  std::mt19937 rng(seed);
  auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
  const queue_limits limits{.max_messages = pick(1, 12), .max_bytes = pick(1, 60), .policy = policy};
  INFO("max_messages " << limits.max_messages << ", max_bytes " << limits.max_bytes);
  bounded_queue<keyed> q(limits);
  reference_queue model(limits);
  static constexpr const char* keys[] = {"", "a", "b", "c", "d"};
  for (int step = 0; step < 2000; ++step) {
    INFO("step " << step);
    const std::size_t roll = pick(0, 99);
    if (roll < 55) {
      keyed item{keys[pick(0, std::size(keys) - 1)], std::string(pick(0, 9) == 0 ? pick(0, 80) : pick(0, 12), 'x')};
      item.payload += std::to_string(step);  // tells items apart
      std::vector<keyed> dropped, expected_dropped;
      const push_outcome expected = model.push(item, expected_dropped);
      keyed offered = item;
      REQUIRE(q.push(std::move(offered), [&](keyed&& k) { dropped.push_back(std::move(k)); }) == expected);
      if (expected == push_outcome::must_wait || expected == push_outcome::must_disconnect) {
        CHECK(offered.payload == item.payload);  // left with the caller
      }
      if (expected == push_outcome::replaced) CHECK(q.replaced_position() == model.replaced_position());
      REQUIRE(dropped.size() == expected_dropped.size());
      for (std::size_t i = 0; i < dropped.size(); ++i) CHECK(dropped[i].payload == expected_dropped[i].payload);
    } else if (roll < 92) {
      if (model.items().empty()) continue;
      CHECK(q.pop().payload == model.pop().payload);
    } else if (roll < 97) {
      q.release_storage();  // does nothing unless empty
    } else {
      q.clear();
      model.clear();
    }
    REQUIRE(q.size() == model.items().size());
    for (std::size_t i = 0; i < q.size(); ++i) REQUIRE(q.at(i).payload == model.items()[i].payload);
    CHECK(q.bytes() == model.bytes());
    CHECK(q.size() <= limits.max_messages);
    CHECK((q.bytes() <= limits.max_bytes || q.size() == 1));
    const switchboard::queue_stats stats = q.stats();
    CHECK(stats.pushed == model.counts().pushed);
    CHECK(stats.popped == model.counts().popped);
    CHECK(stats.dropped == model.counts().dropped);
    CHECK(stats.refused == model.counts().refused);
  }
}
