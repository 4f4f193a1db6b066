// lazy_deque: a deque that holds storage only while it holds something, and otherwise behaves as std::deque.
#include <switchboard/core/detail/lazy_deque.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <deque>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using switchboard::detail::lazy_deque;

namespace {

std::vector<std::string> contents(const lazy_deque<std::string>& d) { return {d.begin(), d.end()}; }

}  // namespace

TEST_CASE("lazy_deque: empty, it iterates over nothing", "[core][lazy_deque]") {
  lazy_deque<std::string> d;
  CHECK(d.empty());
  CHECK(d.size() == 0);
  CHECK(d.begin() == d.end());
  CHECK(contents(d).empty());
}

TEST_CASE("lazy_deque: pushes, pops, erases and clears as std::deque does", "[core][lazy_deque]") {
  // A random sequence of operations on both, compared after each one.
  std::mt19937 rng(GENERATE(1u, 2u, 3u, 4u, 5u));
  lazy_deque<std::string> lazy;
  std::deque<std::string> reference;
  for (int step = 0; step < 2000; ++step) {
    INFO("step " << step);
    switch (std::uniform_int_distribution<int>(0, 9)(rng)) {
      case 0:
      case 1:
      case 2:
        lazy.push_back("p" + std::to_string(step));
        reference.push_back("p" + std::to_string(step));
        break;
      case 3:
        CHECK(lazy.emplace_back(3, char('a' + step % 26)) == reference.emplace_back(3, char('a' + step % 26)));
        break;
      case 4:
      case 5:
        if (reference.empty()) break;
        lazy.pop_front();
        reference.pop_front();
        break;
      case 6:
      case 7: {
        if (reference.empty()) break;
        const auto at = std::uniform_int_distribution<std::size_t>(0, reference.size() - 1)(rng);
        const auto next = lazy.erase(lazy.begin() + static_cast<std::ptrdiff_t>(at));
        const auto reference_next = reference.erase(reference.begin() + static_cast<std::ptrdiff_t>(at));
        // The iterator returned points at the same element, or at the end.
        CHECK((next == lazy.end()) == (reference_next == reference.end()));
        if (next != lazy.end()) CHECK(*next == *reference_next);
        break;
      }
      case 8:
        if (std::uniform_int_distribution<int>(0, 20)(rng) == 0) {
          lazy.clear();
          reference.clear();
        }
        break;
      default:
        if (reference.empty()) break;
        lazy.front() += "f";
        reference.front() += "f";
        lazy.back() += "b";
        reference.back() += "b";
        CHECK(lazy[reference.size() / 2] == reference[reference.size() / 2]);
        break;
    }
    REQUIRE(lazy.size() == reference.size());
    REQUIRE(lazy.empty() == reference.empty());
    REQUIRE(contents(lazy) == std::vector<std::string>(reference.begin(), reference.end()));
  }
}

TEST_CASE("lazy_deque: a first push that throws leaves it empty", "[core][lazy_deque]") {
  // Its storage is made for the first element: if making the element throws, it must be given back, or `empty()`
  // (no storage) would say false with nothing in it, and a consumer loop would pop an empty deque.
  struct throws_when_made {
    explicit throws_when_made(bool fail) {
      if (fail) throw std::runtime_error("no");
    }
  };
  lazy_deque<throws_when_made> d;
  CHECK_THROWS_AS(d.emplace_back(true), std::runtime_error);
  CHECK(d.empty());
  CHECK(d.size() == 0);
  d.emplace_back(false);
  CHECK(d.size() == 1);
  CHECK_THROWS_AS(d.emplace_back(true), std::runtime_error);  // not the first: the one before stays
  CHECK(d.size() == 1);
}
