#include <switchboard/core/bounded_queue.hpp>

#include "support/catch.hpp"

#include <string>
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

TEST_CASE("bounded_queue: conflate keeps the latest item per key in place", "[core][bounded_queue]") {
  bounded_queue<keyed> q(queue_limits{.max_messages = 3, .policy = overflow_policy::conflate});
  std::vector<std::string> dropped;
  auto on_drop = [&](keyed&& k) { dropped.push_back(k.key + "=" + k.payload); };
  CHECK(q.push(keyed{"AAPL", "100"}, on_drop) == push_outcome::queued);
  CHECK(q.push(keyed{"MSFT", "200"}, on_drop) == push_outcome::queued);
  CHECK(q.push(keyed{"AAPL", "101"}, on_drop) == push_outcome::replaced);
  CHECK(q.size() == 2);
  CHECK(q.bytes() == 6);
  CHECK(dropped == std::vector<std::string>{"AAPL=100"});
  CHECK(q.front().payload == "101");  // replaced in place: AAPL keeps its turn before MSFT

  SECTION("a new key on a full queue drops the oldest, and the index forgets it") {
    CHECK(q.push(keyed{"", "x"}, on_drop) == push_outcome::queued);  // no key: never conflated
    CHECK(q.push(keyed{"GOOG", "300"}, on_drop) == push_outcome::queued_dropping);
    CHECK(dropped.back() == "AAPL=101");
    CHECK(q.push(keyed{"AAPL", "102"}, on_drop) == push_outcome::queued_dropping);  // AAPL is no longer queued
    CHECK(dropped.back() == "MSFT=200");
    std::vector<std::string> order;
    while (!q.empty()) order.push_back(q.pop().payload);
    CHECK(order == std::vector<std::string>{"x", "300", "102"});
  }
  SECTION("a popped key is not replaced later") {
    CHECK(q.pop().payload == "101");
    CHECK(q.push(keyed{"AAPL", "103"}, on_drop) == push_outcome::queued);
    CHECK(q.pop().payload == "200");
    CHECK(q.pop().payload == "103");
  }
}
