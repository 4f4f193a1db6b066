// The pattern index: map operations, and lookups that must find exactly the patterns a scan of all of them with
// glob_match finds, while patterns come and go.
#include <switchboard/pubsub/pattern_index.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

// ThreadSanitizer's runtime (clang 14) defines the global operator new and delete itself, so that this executable
// cannot replace them there: a TSan build leaves out the test that makes allocations fail (release and ASan builds
// run it).
#if defined(__SANITIZE_THREAD__)
#define ALLOCATIONS_CAN_BE_REPLACED 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ALLOCATIONS_CAN_BE_REPLACED 0
#endif
#endif
#ifndef ALLOCATIONS_CAN_BE_REPLACED
#define ALLOCATIONS_CAN_BE_REPLACED 1
#endif

using switchboard::pubsub::glob_match;
using switchboard::pubsub::pattern_index;

#if ALLOCATIONS_CAN_BE_REPLACED
namespace {

// Allocations on this thread before one throws std::bad_alloc; negative: none throws. Set by failing_allocations.
thread_local long allocations_before_failure = -1;

// Makes the allocation numbered `n` (from 0) on this thread throw std::bad_alloc, for as long as it lives.
struct failing_allocations {
  explicit failing_allocations(long n) { allocations_before_failure = n; }
  ~failing_allocations() { allocations_before_failure = -1; }
  failing_allocations(const failing_allocations&) = delete;
  failing_allocations& operator=(const failing_allocations&) = delete;
};

}  // namespace

// Replaced for the whole test executable; they only count while a failing_allocations lives on the thread. Every
// form that allocates with malloc is replaced together (the array and nothrow forms too), so that no memory from a
// sanitizer's own operator new is given to free here, nor the reverse.
void* operator new(std::size_t size) {
  if (allocations_before_failure >= 0 && allocations_before_failure-- == 0) throw std::bad_alloc();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return operator new(size);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return operator new(size, tag); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#endif

namespace {

std::vector<std::string> matches(pattern_index<int>& index, std::string_view topic) {
  std::vector<std::string> out;
  const std::size_t count = index.for_each_match(topic, [&](std::string_view pattern, int&) {
    out.emplace_back(pattern);
  });
  REQUIRE(count == out.size());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> scan(const std::map<std::string, int>& patterns, std::string_view topic) {
  std::vector<std::string> out;
  for (const auto& [pattern, value] : patterns) {
    if (glob_match(pattern, topic)) out.push_back(pattern);
  }
  return out;  // sorted, as the map is
}

}  // namespace

TEST_CASE("pattern_index: a map of patterns", "[pubsub][pattern_index]") {
  pattern_index<int> index;
  CHECK(index.empty());
  auto [value, added] = index.try_emplace("news.*", 1);
  CHECK(added);
  CHECK(value == 1);
  value = 5;
  auto [again, added_again] = index.try_emplace("news.*", 9);
  CHECK_FALSE(added_again);
  CHECK(again == 5);
  CHECK(&again == &value);
  CHECK(index.size() == 1);
  REQUIRE(index.find("news.*") != nullptr);
  CHECK(*index.find("news.*") == 5);
  CHECK(index.find("news") == nullptr);
  const auto& constant = index;
  CHECK(constant.find("news.*") != nullptr);
  CHECK_FALSE(index.erase("news"));
  CHECK(index.erase("news.*"));
  CHECK(index.find("news.*") == nullptr);
  CHECK(index.empty());
}

TEST_CASE("pattern_index: lookups visit the matching patterns", "[pubsub][pattern_index]") {
  pattern_index<int> index;
  for (const char* p : {"sensors.kitchen.*", "sensors.*", "sensors.k?tchen.temp", "*", "*.temp", "sensors.kitchen.temp",
                        "sensors.bath.*", "sensors", "s[e]nsors.*", "sensors.kitchen.temp\\*", ""}) {
    index.try_emplace(p, 0);
  }
  CHECK(matches(index, "sensors.kitchen.temp") ==
        std::vector<std::string>{"*", "*.temp", "s[e]nsors.*", "sensors.*", "sensors.k?tchen.temp",
                                 "sensors.kitchen.*", "sensors.kitchen.temp"});
  CHECK(matches(index, "sensors") == std::vector<std::string>{"*", "sensors"});
  CHECK(matches(index, "") == std::vector<std::string>{""});  // Redis: an empty channel matches only ""
  CHECK(matches(index, "other") == std::vector<std::string>{"*"});
}

TEST_CASE("pattern_index: values are reachable from the visit", "[pubsub][pattern_index]") {
  pattern_index<std::vector<int>> index;
  index.try_emplace("a.*").first.push_back(1);
  index.try_emplace("a.*").first.push_back(2);
  index.try_emplace("*.b").first.push_back(3);
  int sum = 0;
  CHECK(index.for_each_match("a.b", [&](std::string_view, std::vector<int>& subscribers) {
    for (int s : subscribers) sum += s;
  }) == 2);
  CHECK(sum == 6);
}

TEST_CASE("pattern_index: moves keep the entries", "[pubsub][pattern_index]") {
  pattern_index<int> a;
  a.try_emplace("x.*", 7);
  pattern_index<int> b(std::move(a));
  int seen = 0;
  b.for_each_match("x.y", [&](std::string_view, int& v) { seen = v; });
  CHECK(seen == 7);
  CHECK(b.erase("x.*"));
}

TEST_CASE("pattern_index: same answers as scanning every pattern, under churn", "[pubsub][pattern_index]") {
  // Patterns with shared and diverging prefixes, added and erased at random; after every change a few topics are
  // looked up in the index and by a full scan.
  std::mt19937 rng(1234);
  const std::vector<std::string> rooms = {"kitchen", "bath", "hall", "k", "ki", ""};
  const std::vector<std::string> tails = {"*", "temp", "t?mp", "[th]*", "*p", "\\*", ""};
  const auto pick = [&](const std::vector<std::string>& from) {
    return from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(rng)];
  };
  const auto make_pattern = [&] {
    switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
      case 0: return "sensors." + pick(rooms) + "." + pick(tails);
      case 1: return "sensors." + pick(rooms) + pick(tails);
      case 2: return pick(tails) + "." + pick(rooms);
      default: return "s" + pick(tails);
    }
  };
  const auto make_topic = [&] { return "sensors." + pick(rooms) + "." + pick({"temp", "tmp", "hum", "*", ""}); };

  pattern_index<int> index;
  std::map<std::string, int> reference;
  for (int step = 0; step < 5000; ++step) {
    const std::string pattern = make_pattern();
    if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) {
      CHECK(index.erase(pattern) == (reference.erase(pattern) == 1));
    } else {
      CHECK(index.try_emplace(pattern, step).second == reference.try_emplace(pattern, step).second);
    }
    REQUIRE(index.size() == reference.size());
    for (int i = 0; i < 3; ++i) {
      const std::string topic = make_topic();
      INFO("topic " << topic);
      REQUIRE(matches(index, topic) == scan(reference, topic));
    }
  }
  // Erasing everything leaves an index that works from scratch.
  for (const auto& [pattern, value] : reference) CHECK(index.erase(pattern));
  CHECK(index.empty());
  index.try_emplace("sensors.*", 1);
  CHECK(matches(index, "sensors.x") == std::vector<std::string>{"sensors.*"});
}

#if ALLOCATIONS_CAN_BE_REPLACED
TEST_CASE("pattern_index: an allocation that fails leaves the index as it was", "[pubsub][pattern_index]") {
  // Each allocation of try_emplace fails in turn (trie nodes, the node's list, the key, the map's entry), until
  // the call allocates all it needs. After each failure the index must be unchanged: the pattern neither in the map
  // nor in the trie, and the other patterns found as before.
  pattern_index<int> index;
  index.try_emplace("sensors.*", 1);
  const std::string added = "sensors.kitchen.temperature.*";  // new trie nodes, and a key too long to be inline
  long failures = 0;
  for (;; ++failures) {
    INFO("allocation " << failures << " fails");
    bool threw = false;
    try {
      const failing_allocations fail(failures);
      index.try_emplace(added, 2);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    if (!threw) break;
    REQUIRE(index.size() == 1);
    CHECK(index.find(added) == nullptr);
    CHECK(matches(index, "sensors.kitchen.temperature.x") == std::vector<std::string>{"sensors.*"});
  }
  CHECK(failures >= 3);  // the test reached past the trie's allocations to the map's
  CHECK(matches(index, "sensors.kitchen.temperature.x") ==
        std::vector<std::string>{"sensors.*", "sensors.kitchen.temperature.*"});
  CHECK(index.erase(added));
  CHECK(index.erase("sensors.*"));
  CHECK(index.empty());
}
#endif

// A literal prefix as long as a raised `max_topic_length` allows makes a chain of trie nodes as deep as it is long;
// freeing it one stack frame per node overflowed the stack (SIGSEGV). It is freed when the pattern is erased, when
// a failed try_emplace takes its new nodes back, and when the index goes.
TEST_CASE("pattern_index: a pattern with a literal prefix of megabytes is added and freed", "[pubsub][pattern_index]") {
  const std::string pattern = std::string(1'000'000, 'a') + "*";
  SECTION("erased") {
    pattern_index<int> index;
    CHECK(index.try_emplace(pattern, 1).second);
    CHECK(index.try_emplace("a*", 2).second);
    CHECK(index.erase(pattern));
    CHECK(index.size() == 1);
    CHECK(matches(index, "ab") == std::vector<std::string>{"a*"});
  }
  SECTION("taken back when the value cannot be made") {
    struct refuses {
      explicit refuses(int) { throw std::runtime_error("refused"); }
    };
    pattern_index<refuses> index;
    CHECK_THROWS_AS(index.try_emplace(pattern, 0), std::runtime_error);
    CHECK(index.empty());
  }
  SECTION("destroyed with the index") {
    pattern_index<int> index;
    CHECK(index.try_emplace(pattern, 1).second);
    CHECK(index.try_emplace(std::string(750'000, 'a') + "b*", 2).second);  // a branch deep in the chain
    CHECK(index.find(pattern) != nullptr);
  }
}
