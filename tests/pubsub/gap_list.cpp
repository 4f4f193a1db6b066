// The gap list on its own: ranges of one topic that touch merge, in the order they were recorded.
#include <switchboard/pubsub/detail/gap_list.hpp>

#include "support/catch.hpp"

#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

using switchboard::pubsub::gap_reason;
using gaps = switchboard::pubsub::detail::gap_list<std::string>;

namespace {

std::vector<std::string> drain(gaps& g) {
  std::vector<std::string> out;
  while (!g.empty()) {
    const auto r = g.take_front();
    out.push_back(r.topic + " " + std::to_string(r.first) + "-" + std::to_string(r.last) +
                  (r.reason == gap_reason::overflow ? " o" : " r"));
  }
  return out;
}

// A range as the model records it.
struct missing {
  std::uint64_t first;
  std::uint64_t last;
  gap_reason reason;
  bool operator==(const missing&) const = default;
};

std::ostream& operator<<(std::ostream& os, const missing& m) {
  return os << m.first << "-" << m.last << (m.reason == gap_reason::overflow    ? " o"
                                            : m.reason == gap_reason::retention ? " r"
                                                                                : " u");
}

// The reference: for each topic, the ranges in the order they were recorded, never merged. What the list should
// hold is derived from it by the documented rule: ranges of one topic and reason that touch are one range.
using reference_list = std::map<std::string, std::vector<missing>>;

std::vector<missing> merged(const std::vector<missing>& recorded) {
  std::vector<missing> out;
  for (const missing& m : recorded) {
    if (!out.empty() && out.back().reason == m.reason && out.back().last + 1 == m.first) {
      out.back().last = m.last;
    } else {
      out.push_back(m);
    }
  }
  return out;
}

std::map<std::string, std::vector<missing>> expected_ranges(const reference_list& model) {
  std::map<std::string, std::vector<missing>> out;
  for (const auto& [topic, recorded] : model) {
    if (!recorded.empty()) out[topic] = merged(recorded);
  }
  return out;
}

}  // namespace

TEST_CASE("gap list: touching ranges of one topic and reason merge", "[pubsub][gap_list]") {
  gaps g;
  CHECK(g.empty());
  g.add_later("a", 1, 1, gap_reason::overflow);
  g.add_later("a", 2, 4, gap_reason::overflow);
  g.add_later("b", 7, 7, gap_reason::overflow);
  g.add_later("a", 6, 6, gap_reason::overflow);    // does not touch 1-4
  g.add_later("b", 8, 8, gap_reason::retention);   // another reason
  CHECK(g.size() == 4);
  CHECK(drain(g) == std::vector<std::string>{"a 1-4 o", "b 7-7 o", "a 6-6 o", "b 8-8 r"});
  CHECK(g.empty());
}

TEST_CASE("gap list: absorbing the gaps that come before or after", "[pubsub][gap_list]") {
  gaps later;
  later.add_later("a", 5, 6, gap_reason::overflow);
  later.add_later("b", 3, 3, gap_reason::overflow);

  SECTION("earlier ranges merge or go first, in their order") {
    gaps earlier;
    earlier.add_later("c", 1, 1, gap_reason::overflow);
    earlier.add_later("a", 2, 4, gap_reason::overflow);
    earlier.add_later("c", 2, 2, gap_reason::retention);
    later.absorb_earlier(std::move(earlier));
    CHECK(earlier.empty());
    CHECK(drain(later) == std::vector<std::string>{"c 1-1 o", "c 2-2 r", "a 2-6 o", "b 3-3 o"});
  }

  SECTION("later ranges merge or go last") {
    gaps more;
    more.add_later("b", 4, 9, gap_reason::overflow);
    more.add_later("d", 1, 1, gap_reason::overflow);
    later.absorb_later(std::move(more));
    CHECK(drain(later) == std::vector<std::string>{"a 5-6 o", "b 3-9 o", "d 1-1 o"});
  }

  SECTION("into an empty list") {
    gaps empty;
    empty.absorb_earlier(std::move(later));
    CHECK(empty.size() == 2);
    gaps none;
    empty.absorb_later(std::move(none));
    CHECK(empty.size() == 2);
  }
}

// A subscriber's stream as a chain of gap lists, one before each queued message and the last one after them all:
// gaps are recorded at the tail, new messages start new positions, and neighbouring positions merge when the
// message between them goes (either way round: `absorb_earlier`, `absorb_later`), as the subscriber's queue does.
// Sequence numbers of a topic only grow along the chain, so every precondition holds.
TEST_CASE("gap list: random records, merges and takes agree with a model", "[pubsub][gap_list]") {
  const unsigned seed = GENERATE(range(1u, 41u));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
  static const std::string topics[] = {"a", "b", "c"};
  static constexpr gap_reason reasons[] = {gap_reason::overflow, gap_reason::overflow, gap_reason::retention,
                                           gap_reason::upstream};
  std::vector<gaps> chain(1);
  std::vector<reference_list> models(1);
  std::map<std::string, std::uint64_t> next;  // each topic's first number not yet recorded anywhere
  for (const std::string& t : topics) next[t] = 1;

  for (int step = 0; step < 1500; ++step) {
    INFO("step " << step);
    const std::size_t roll = pick(0, 99);
    if (roll < 45) {
      // A loss at the tail: often touching the topic's previous one, sometimes a few numbers later (delivered in
      // between), one number or several.
      const std::string& topic = topics[pick(0, std::size(topics) - 1)];
      const std::uint64_t first = next[topic] + (pick(0, 2) == 0 ? pick(1, 3) : 0);
      const std::uint64_t last = first + (pick(0, 3) == 0 ? pick(1, 4) : 0);
      const gap_reason reason = reasons[pick(0, std::size(reasons) - 1)];
      INFO("add_later " << topic << " " << (missing{first, last, reason}));
      chain.back().add_later(topic, first, last, reason);
      models.back()[topic].push_back({first, last, reason});
      next[topic] = last + 1;
    } else if (roll < 57) {
      if (chain.size() >= 6) continue;
      chain.emplace_back();  // a message queued: gaps recorded from now on come after it
      models.emplace_back();
    } else if (roll < 75) {
      // The message between positions i and i + 1 goes: their gaps become one list, earlier ones first.
      if (chain.size() < 2) continue;
      const std::size_t i = pick(0, chain.size() - 2);
      for (const auto& [topic, recorded] : models[i]) {
        auto& later = models[i + 1][topic];
        later.insert(later.begin(), recorded.begin(), recorded.end());
      }
      if (pick(0, 1) == 0) {
        INFO("position " << i + 1 << " absorbs earlier " << i);
        chain[i + 1].absorb_earlier(std::move(chain[i]));
        CHECK(chain[i].empty());
        chain.erase(chain.begin() + static_cast<std::ptrdiff_t>(i));
        models.erase(models.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        INFO("position " << i << " absorbs later " << i + 1);
        models[i] = std::move(models[i + 1]);
        chain[i].absorb_later(std::move(chain[i + 1]));
        CHECK(chain[i + 1].empty());
        chain.erase(chain.begin() + static_cast<std::ptrdiff_t>(i + 1));
        models.erase(models.begin() + static_cast<std::ptrdiff_t>(i + 1));
      }
    } else if (roll < 95) {
      // The subscriber is told of the first gap of a position: the first unreported range of its topic, whole.
      const std::size_t i = pick(0, chain.size() - 1);
      if (chain[i].empty()) continue;
      const auto r = chain[i].take_front();
      INFO("take_front of position " << i << ": " << r.topic << " " << (missing{r.first, r.last, r.reason}));
      const auto expected = expected_ranges(models[i]);
      const auto it = expected.find(r.topic);
      REQUIRE(it != expected.end());
      CHECK(missing{r.first, r.last, r.reason} == it->second.front());
      auto& recorded = models[i][r.topic];
      while (!recorded.empty() && recorded.front().last <= r.last) recorded.erase(recorded.begin());
    } else {
      const std::size_t i = pick(0, chain.size() - 1);
      chain[i].clear();
      models[i].clear();
    }

    // Every position against the model: its size (merged ranges), and its ranges, each topic's in order. The list
    // offers no look without taking, so each is drained and recorded again as it was (add_later on ranges already
    // merged and in order rebuilds the same list).
    REQUIRE(chain.size() == models.size());
    for (std::size_t i = 0; i < chain.size(); ++i) {
      INFO("position " << i);
      const auto expected = expected_ranges(models[i]);
      std::size_t expected_size = 0;
      for (const auto& [topic, ranges] : expected) expected_size += ranges.size();
      CHECK(chain[i].size() == expected_size);
      CHECK(chain[i].empty() == (expected_size == 0));
      std::vector<gaps::range> taken;
      for (std::size_t n = 0; n <= expected_size && !chain[i].empty(); ++n) taken.push_back(chain[i].take_front());
      std::map<std::string, std::vector<missing>> got;
      for (const auto& r : taken) got[r.topic].push_back({r.first, r.last, r.reason});
      REQUIRE(got == expected);
      for (const auto& r : taken) chain[i].add_later(r.topic, r.first, r.last, r.reason);
      REQUIRE(chain[i].size() == expected_size);
    }
  }
}
