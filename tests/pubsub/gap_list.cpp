// The gap list on its own: ranges of one topic that touch merge, in the order they were recorded.
#include <switchboard/pubsub/detail/gap_list.hpp>

#include "support/catch.hpp"

#include <string>
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
