// shared_bytes: the bytes survive their first holder, copies share them, and both layouts (copied into the shared
// block, or a large string moved in) give back exactly what went in.
#include <switchboard/core/shared_bytes.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <span>
#include <string>

using switchboard::shared_bytes;

namespace {

TEST_CASE("shared_bytes: empty", "[core][shared_bytes]") {
  const shared_bytes none;
  CHECK(none.empty());
  CHECK(none.size() == 0);
  CHECK(none.view().empty());
  CHECK(shared_bytes::copy("").empty());
  CHECK(shared_bytes(std::string()).empty());
  CHECK(none == shared_bytes::copy(""));
}

TEST_CASE("shared_bytes: every size on both sides of the inline limit keeps its bytes", "[core][shared_bytes]") {
  for (const std::size_t size : {std::size_t{1}, std::size_t{7}, std::size_t{15}, std::size_t{16}, std::size_t{17},
                                 shared_bytes::inline_limit - 1, shared_bytes::inline_limit,
                                 shared_bytes::inline_limit + 1, std::size_t{100'000}}) {
    std::string text(size, '\0');
    for (std::size_t i = 0; i < size; ++i) text[i] = static_cast<char>('a' + i % 26);
    const shared_bytes copied = shared_bytes::copy(text);
    const shared_bytes moved{std::string(text)};
    CHECK(copied.size() == size);
    CHECK(copied.view() == text);
    CHECK(moved.view() == text);
    CHECK(copied == moved);
  }
}

TEST_CASE("shared_bytes: copies share one block, which outlives the original", "[core][shared_bytes]") {
  for (const std::size_t size : {std::size_t{64}, shared_bytes::inline_limit + 100}) {
    std::string text(size, 'x');
    shared_bytes second;
    {
      const shared_bytes first{std::string(text)};
      second = first;
      CHECK(first.use_count() == 2);
      CHECK(second.data() == first.data());  // the same bytes, not a copy
    }
    CHECK(second.use_count() == 1);
    CHECK(second.view() == text);
  }
}

TEST_CASE("shared_bytes: a large string is taken without copying its bytes", "[core][shared_bytes]") {
  std::string big(shared_bytes::inline_limit * 4, 'y');
  const char* where = big.data();
  const shared_bytes b{std::move(big)};
  CHECK(b.data() == where);
}

TEST_CASE("shared_bytes: built in place, with fewer bytes than the room given, or none", "[core][shared_bytes]") {
  const shared_bytes built = shared_bytes::build(100, [](std::span<char> out) {
    CHECK(out.size() == 100);
    std::fill_n(out.begin(), 5, 'z');
    return std::size_t{5};
  });
  CHECK(built.view() == "zzzzz");
  CHECK(shared_bytes::build(100, [](std::span<char>) { return std::size_t{0}; }).empty());
  CHECK(shared_bytes::build(0, [](std::span<char>) -> std::size_t { FAIL("no room to fill"); return 0; }).empty());
}

}  // namespace
