// The pattern index: map operations, and lookups that must find exactly the patterns a scan of all of them with
// glob_match finds, while patterns come and go.
#include <switchboard/pubsub/pattern_index.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

// ThreadSanitizer's runtime (clang 14) defines the global operator new and delete itself, so that this executable
// cannot replace them there: a TSan build leaves out the tests that make allocations fail or count them (release
// and ASan builds run them).
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

// Bytes asked for and not yet freed, and allocations made, on this thread: what a test of the index's memory reads.
thread_local long live_bytes = 0;
thread_local long allocations = 0;

// Each block starts with its size, so that the unsized operator delete can take it off `live_bytes`.
constexpr std::size_t block_header = alignof(std::max_align_t);

}  // namespace

// Replaced for the whole test executable. Every form that allocates with malloc is replaced together (the array
// and nothrow forms too), so that no memory from a sanitizer's own operator new is given to free here, nor the
// reverse.
void* operator new(std::size_t size) {
  if (allocations_before_failure >= 0 && allocations_before_failure-- == 0) throw std::bad_alloc();
  void* block = std::malloc(block_header + size);
  if (block == nullptr) throw std::bad_alloc();
  *static_cast<std::size_t*>(block) = size;
  live_bytes += static_cast<long>(size);
  ++allocations;
  return static_cast<char*>(block) + block_header;
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
void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  void* block = static_cast<char*>(p) - block_header;
  live_bytes -= static_cast<long>(*static_cast<std::size_t*>(block));
  std::free(block);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { operator delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { operator delete(p); }
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

struct churn_plan {
  int steps;             // patterns added or erased
  int erase_one_in;      // a step erases with probability 1/erase_one_in, else adds
  int topics_per_step;   // topics looked up after each step
};

// Adds and erases patterns from `make_pattern` at random, keeping a plain map beside the index; after every step
// the index must find, for topics from `make_topic`, exactly the patterns a scan of the map finds. At the end every
// pattern is erased and the index must be empty.
template <class MakePattern, class MakeTopic>
void churn_against_scan(pattern_index<int>& index, std::mt19937& rng, churn_plan plan, MakePattern make_pattern,
                        MakeTopic make_topic) {
  std::map<std::string, int> reference;
  for (int step = 0; step < plan.steps; ++step) {
    const std::string pattern = make_pattern();
    if (std::uniform_int_distribution<int>(0, plan.erase_one_in - 1)(rng) == 0) {
      CHECK(index.erase(pattern) == (reference.erase(pattern) == 1));
    } else {
      CHECK(index.try_emplace(pattern, step).second == reference.try_emplace(pattern, step).second);
    }
    REQUIRE(index.size() == reference.size());
    for (int i = 0; i < plan.topics_per_step; ++i) {
      const std::string topic = make_topic();
      INFO("step " << step << ", topic " << topic);
      REQUIRE(matches(index, topic) == scan(reference, topic));
    }
  }
  for (const auto& [pattern, value] : reference) CHECK(index.erase(pattern));
  CHECK(index.empty());
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
  churn_against_scan(index, rng, {.steps = 5000, .erase_one_in = 3, .topics_per_step = 3}, make_pattern, make_topic);
  // Erasing everything (done by the churn) leaves an index that works from scratch.
  index.try_emplace("sensors.*", 1);
  CHECK(matches(index, "sensors.x") == std::vector<std::string>{"sensors.*"});
}

TEST_CASE("pattern_index: same answers as a scan of every pattern while edges split and merge",
          "[pubsub][pattern_index]") {
  // Literal prefixes over two letters share and diverge at every position, so that adding a pattern splits an edge
  // at random places and erasing one merges edges back; after every change random topics are looked up in the
  // index and by a full scan.
  std::mt19937 rng(42);
  const auto word = [&](std::size_t longest) {
    std::string out(std::uniform_int_distribution<std::size_t>(0, longest)(rng), 'a');
    for (char& c : out) c = std::uniform_int_distribution<int>(0, 1)(rng) == 0 ? 'a' : 'b';
    return out;
  };
  const std::vector<std::string> tails = {"", "*", "?", "[ab]", "*b", "\\a", "a*"};
  pattern_index<int> index;
  churn_against_scan(
      index, rng, {.steps = 4000, .erase_one_in = 2, .topics_per_step = 4},
      [&] { return word(7) + tails[std::uniform_int_distribution<std::size_t>(0, tails.size() - 1)(rng)]; },
      [&] { return word(9); });
  CHECK(matches(index, "ab").empty());
}

#if ALLOCATIONS_CAN_BE_REPLACED
TEST_CASE("pattern_index: an allocation that fails leaves the index as it was", "[pubsub][pattern_index]") {
  // Each allocation of try_emplace fails in turn (trie nodes and labels, a node's lists, the key, the map's entry),
  // until the call allocates all it needs. After each failure the index must be unchanged: the pattern neither in
  // the map nor in the trie, and the other patterns found as before. The first pattern added gets a new leaf; the
  // second splits that leaf's edge (`kitchen.temperature.`) where it diverges.
  pattern_index<int> index;
  index.try_emplace("sensors.*", 1);
  const auto add = [&](const std::string& added, const std::string& topic) {
    const std::size_t size = index.size();
    const std::vector<std::string> before = matches(index, topic);
    long failures = 0;
    for (;; ++failures) {
      INFO("adding " << added << ": allocation " << failures << " fails");
      bool threw = false;
      try {
        const failing_allocations fail(failures);
        index.try_emplace(added, 2);
      } catch (const std::bad_alloc&) {
        threw = true;
      }
      if (!threw) break;
      REQUIRE(index.size() == size);
      CHECK(index.find(added) == nullptr);
      CHECK(matches(index, topic) == before);
    }
    CHECK(failures >= 3);  // the test reached past the trie's allocations to the map's
  };
  add("sensors.kitchen.temperature.*", "sensors.kitchen.temperature.x");
  add("sensors.kitchen.humidity.*", "sensors.kitchen.humidity.x");
  CHECK(matches(index, "sensors.kitchen.temperature.x") ==
        std::vector<std::string>{"sensors.*", "sensors.kitchen.temperature.*"});
  CHECK(matches(index, "sensors.kitchen.humidity.x") ==
        std::vector<std::string>{"sensors.*", "sensors.kitchen.humidity.*"});
  CHECK(index.erase("sensors.kitchen.temperature.*"));
  CHECK(index.erase("sensors.kitchen.humidity.*"));
  CHECK(index.erase("sensors.*"));
  CHECK(index.empty());
}

TEST_CASE("pattern_index: an allocation that fails in erase leaves the index as it was", "[pubsub][pattern_index]") {
  // Erasing the first pattern leaves the node of their common prefix `sensors.kitchen.` with one child, which is
  // merged with it: the joined label (longer than a string holds inline) is allocated.
  pattern_index<int> index;
  index.try_emplace("sensors.kitchen.temperature.*", 1);
  index.try_emplace("sensors.kitchen.humidity.*", 2);
  long failures = 0;
  for (;; ++failures) {
    INFO("allocation " << failures << " fails");
    bool threw = false;
    try {
      const failing_allocations fail(failures);
      index.erase("sensors.kitchen.temperature.*");
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    if (!threw) break;
    REQUIRE(index.size() == 2);
    CHECK(matches(index, "sensors.kitchen.temperature.x") == std::vector<std::string>{"sensors.kitchen.temperature.*"});
    CHECK(matches(index, "sensors.kitchen.humidity.x") == std::vector<std::string>{"sensors.kitchen.humidity.*"});
  }
  CHECK(failures >= 1);  // the merge allocated
  CHECK(index.size() == 1);
  CHECK(matches(index, "sensors.kitchen.temperature.x").empty());
  CHECK(matches(index, "sensors.kitchen.humidity.x") == std::vector<std::string>{"sensors.kitchen.humidity.*"});
}

// A trie with a node per byte of literal prefix asked for 64 bytes per byte that no other prefix shared (96 bytes of
// heap): 1,000 patterns of 1,024 bytes (a tenth of what one RESP client may subscribe to) took 65 MB (97.7 MB of
// heap). Each pattern now costs about its bytes twice (its key in the map and its edge's label in the trie) and at
// most two trie nodes.
TEST_CASE("pattern_index: memory grows with the patterns' bytes and returns when they are erased",
          "[pubsub][pattern_index]") {
  std::vector<std::string> patterns;  // 1,024 bytes each, literal prefixes that differ in their first three bytes
  for (int i = 0; i < 1000; ++i) {
    char head[4];
    std::snprintf(head, sizeof head, "%03d", i);
    patterns.push_back(head + std::string(1020, 'a') + "*");
  }
  const std::string topic = "500" + std::string(1020, 'a') + "x";
  pattern_index<int> index;
  // The map's bucket array grows once here (erasing does not shrink it), so that what follows counts the index.
  for (const std::string& p : patterns) index.try_emplace(p, 0);
  for (const std::string& p : patterns) index.erase(p);

  // Catch's checks are made once the counts are taken, so that its own allocations count for nothing.
  const long start = live_bytes;
  std::size_t added = 0;
  for (const std::string& p : patterns) added += index.try_emplace(p, 0).second ? 1 : 0;
  const long used = live_bytes - start;
  const long allocations_before_lookup = allocations;
  const std::size_t matched = index.for_each_match(topic, [](std::string_view, int&) {});
  const long lookup_allocations = allocations - allocations_before_lookup;
  std::size_t erased = 0;
  for (const std::string& p : patterns) erased += index.erase(p) ? 1 : 0;
  const long left = live_bytes - start;

  CHECK(added == patterns.size());
  INFO(used << " bytes for 1,024,000 bytes of patterns");
  CHECK(used < 3 * 1'024'000);
  CHECK(matched == 1);
  CHECK(lookup_allocations == 0);  // a publish allocates nothing to find its patterns
  CHECK(erased == patterns.size());
  CHECK(left == 0);
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
