// page_pool: units of whole pages, reused, and handed back to the system beyond the hot ones.
#include <switchboard/core/detail/page_pool.hpp>

#include "support/catch.hpp"

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

using switchboard::detail::page_pool;

TEST_CASE("page_pool: units are page-aligned, whole pages, distinct and writable", "[core][page_pool]") {
  page_pool pool(5000, 4);
  CHECK(pool.unit_size() % 4096 == 0);
  CHECK(pool.unit_size() >= 5000);
  std::vector<void*> units;
  std::set<std::uintptr_t> seen;
  for (int i = 0; i < 200; ++i) {  // more than one slab
    void* u = pool.acquire();
    CHECK(reinterpret_cast<std::uintptr_t>(u) % 4096 == 0);
    std::memset(u, i & 0xff, pool.unit_size());
    CHECK(seen.insert(reinterpret_cast<std::uintptr_t>(u)).second);
    units.push_back(u);
  }
  for (int i = 0; i < 200; ++i) CHECK(static_cast<unsigned char*>(units[i])[pool.unit_size() - 1] == (i & 0xff));
  for (void* u : units) pool.release(u);
}

TEST_CASE("page_pool: hot units keep their content, cold ones come back zero-filled", "[core][page_pool]") {
  page_pool pool(4096, 1);
  void* a = pool.acquire();
  void* b = pool.acquire();
  std::memset(a, 'a', 4096);
  std::memset(b, 'b', 4096);
  pool.release(a);  // hot: kept as it is
  pool.release(b);  // beyond max_hot: its page goes back to the system
  void* first = pool.acquire();
  CHECK(first == a);
  CHECK(static_cast<char*>(first)[100] == 'a');
  void* second = pool.acquire();
  CHECK(second == b);
#if SWITCHBOARD_HAS_MMAP
  CHECK(static_cast<char*>(second)[100] == 0);  // MADV_DONTNEED: a fresh zero page on next touch
#endif
  pool.release(first);
  pool.release(second);
}

TEST_CASE("page_pool: a unit size of zero is a configuration error", "[core][page_pool]") {
  CHECK_THROWS_AS(page_pool(0, 1), std::invalid_argument);
}
