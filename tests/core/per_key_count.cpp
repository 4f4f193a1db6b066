// The per-key counter behind the per-client limits (connections per address, parked polls per client).
#include <switchboard/core/detail/per_key_count.hpp>

#include "support/catch.hpp"

#include <string>

using switchboard::detail::per_key_count;

TEST_CASE("per_key_count: counts each key up to its limit and forgets keys that hold nothing", "[core]") {
  per_key_count<std::string> counts;
  CHECK(counts.try_add("a", 2));
  CHECK(counts.try_add("a", 2));
  CHECK_FALSE(counts.try_add("a", 2));  // at the limit: nothing changes
  CHECK(counts.count("a") == 2);
  CHECK(counts.try_add("b", 2));  // another key has its own count
  CHECK(counts.keys() == 2);

  counts.remove("a");
  CHECK(counts.try_add("a", 2));  // room again
  counts.remove("a");
  counts.remove("a");
  CHECK(counts.count("a") == 0);
  CHECK(counts.keys() == 1);  // "a" holds nothing: not stored

  CHECK_FALSE(counts.try_add("c", 0));  // a limit of 0 admits nothing and stores nothing
  CHECK(counts.keys() == 1);
  counts.remove("never added");  // ignored
  CHECK(counts.keys() == 1);
}
