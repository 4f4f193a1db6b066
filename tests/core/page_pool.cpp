// page_pool: units of whole pages, reused, and handed back to the system once unused for a whole interval.
#include <switchboard/core/detail/page_pool.hpp>

#include "support/catch.hpp"

#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <vector>

using switchboard::detail::page_pool;

TEST_CASE("page_pool: units are page-aligned, whole pages, distinct and writable", "[core][page_pool]") {
  page_pool pool(5000);
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

TEST_CASE("page_pool: released units keep their pages until a trim finds them unused", "[core][page_pool]") {
  page_pool pool(4096);
  void* a = pool.acquire();
  void* b = pool.acquire();
  std::memset(a, 'a', 4096);
  std::memset(b, 'b', 4096);
  pool.release(a);
  pool.release(b);
  pool.trim();  // both were released during this interval: kept
  CHECK(pool.hot() == 2);

  void* reused = pool.acquire();  // the most recent first
  CHECK(reused == b);
  CHECK(static_cast<char*>(reused)[100] == 'b');
  pool.trim();  // `a` stayed released for a whole interval; `b` was in use
  CHECK(pool.hot() == 0);

  void* cold = pool.acquire();
  CHECK(cold == a);
#if SWITCHBOARD_HAS_MMAP
  CHECK(static_cast<char*>(cold)[100] == 0);  // MADV_DONTNEED: a fresh zero page on next touch
#endif
  pool.release(reused);
  pool.release(cold);
  pool.trim();
  CHECK(pool.hot() == 2);
  pool.trim();
  CHECK(pool.hot() == 0);
}

TEST_CASE("page_pool: a discarded unit gives its pages back at once and is reused after the hot ones",
          "[core][page_pool]") {
  page_pool pool(4096);
  void* kept = pool.acquire();
  void* dropped = pool.acquire();
  std::memset(kept, 'k', 4096);
  std::memset(dropped, 'd', 4096);
  pool.release(kept);
  pool.discard(dropped);
  CHECK(pool.hot() == 1);  // only the released one keeps its pages
  CHECK(pool.acquire() == kept);
  void* next = pool.acquire();
  CHECK(next == dropped);
#if SWITCHBOARD_HAS_MMAP
  CHECK(static_cast<char*>(next)[100] == 0);
#endif
  pool.release(kept);
  pool.release(next);
}

TEST_CASE("page_pool: a unit size of zero or past the largest page multiple is a configuration error", "[core][page_pool]") {
  CHECK_THROWS_AS(page_pool(0), std::invalid_argument);
  // One that cannot be rounded up to whole pages (it wrapped to 0, then divided by it).
  CHECK_THROWS_AS(page_pool(std::numeric_limits<std::size_t>::max()), std::length_error);
}
