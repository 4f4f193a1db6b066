// arena: a stack region inside a borrowed block, and the allocator that lets standard containers use it.
#include <switchboard/core/detail/arena.hpp>

#include "support/catch.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using switchboard::detail::arena;
using switchboard::detail::arena_allocator;

namespace {

using arena_vector = std::vector<std::uint64_t, arena_allocator<std::uint64_t>>;

bool aligned(const void* p, std::size_t alignment) { return reinterpret_cast<std::uintptr_t>(p) % alignment == 0; }

}  // namespace

TEST_CASE("arena: blocks come from the region, aligned, until it is full", "[core][arena]") {
  alignas(16) char region[256];
  arena a(region);
  void* first = a.allocate(3, 1);
  void* second = a.allocate(8, 8);
  REQUIRE(first != nullptr);
  REQUIRE(second != nullptr);
  CHECK(a.owns(first));
  CHECK(a.owns(second));
  CHECK(aligned(second, 8));
  CHECK(static_cast<char*>(second) >= static_cast<char*>(first) + 3);
  CHECK(a.allocate(512, 1) == nullptr);  // larger than what is left
  int elsewhere = 0;
  CHECK_FALSE(a.owns(&elsewhere));
}

TEST_CASE("arena: freeing the top block lowers the top, freeing the last live block empties it", "[core][arena]") {
  alignas(16) char region[256];
  arena a(region);
  void* bottom = a.allocate(32, 8);
  void* middle = a.allocate(32, 8);
  void* top = a.allocate(32, 8);
  CHECK(a.used() == 96);
  a.deallocate(top, 32);
  CHECK(a.used() == 64);
  a.deallocate(bottom, 32);  // below the top: stays used until the region empties
  CHECK(a.used() == 64);
  a.deallocate(middle, 32);
  CHECK(a.used() == 0);
  CHECK(a.allocate(32, 8) == bottom);
}

TEST_CASE("arena_allocator: containers use the region, then the heap when it is full", "[core][arena]") {
  alignas(16) char region[128];
  arena a(region);
  arena_vector v{arena_allocator<std::uint64_t>(&a)};
  v.reserve(4);
  CHECK(a.owns(v.data()));
  v.assign(4, 7);
  v.reserve(64);  // 512 bytes: more than the region holds
  CHECK_FALSE(a.owns(v.data()));
  CHECK(v == arena_vector(4, 7));
  CHECK(a.used() == 0);  // the region's only block went back when the vector moved out
}

TEST_CASE("arena_allocator: a copy never shares the arena; assignment moves elements, not buffers", "[core][arena]") {
  alignas(16) char first_region[128];
  alignas(16) char second_region[128];
  arena first(first_region);
  arena second(second_region);
  arena_vector original{arena_allocator<std::uint64_t>(&first)};
  original.assign({1, 2, 3});
  REQUIRE(first.owns(original.data()));

  const arena_vector copy(original);  // may outlive the region
  CHECK(copy.get_allocator().get_arena() == nullptr);
  CHECK_FALSE(first.owns(copy.data()));
  CHECK(copy == original);

  arena_vector other{arena_allocator<std::uint64_t>(&second)};
  other = std::move(original);  // different arenas: the elements are moved into `other`'s own region
  CHECK(other.get_allocator().get_arena() == &second);
  CHECK(second.owns(other.data()));
  CHECK(other == arena_vector({1, 2, 3}));

  // Without an arena the allocator is the heap's: a string through it grows, copies and compares as std::string.
  using heap_string_type = std::basic_string<char, std::char_traits<char>, arena_allocator<char>>;
  heap_string_type heap_string(100, 'x');
  CHECK(heap_string.get_allocator().get_arena() == nullptr);
  heap_string.append(5000, 'y');  // grows past its first buffer
  const heap_string_type heap_copy = heap_string;
  CHECK(std::string_view(heap_copy) == std::string(100, 'x') + std::string(5000, 'y'));
  CHECK(heap_copy.get_allocator().get_arena() == nullptr);
}
