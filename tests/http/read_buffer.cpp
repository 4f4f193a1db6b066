// read_buffer: the bytes a connection has received and not consumed, in storage its owner provides until a large
// header section makes it grow. Checked step by step against a std::string under random reads, consumes and releases.
#include <switchboard/http/detail/read_buffer.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

using switchboard::http::detail::read_buffer;

TEST_CASE("read_buffer: random reads, consumes and releases keep the unconsumed bytes", "[http][read_buffer]") {
  const unsigned seed = GENERATE(range(1u, 21u));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
  std::vector<char> storage(pick(1, 64));
  const std::size_t max_capacity = storage.size() * pick(1, 16);
  INFO("storage " << storage.size() << ", max " << max_capacity);
  read_buffer buffer(storage);
  std::string model;  // the unconsumed bytes
  char next = 0;      // bytes are numbered, so that a byte moved to the wrong place shows
  for (int step = 0; step < 3000; ++step) {
    INFO("step " << step);
    const std::size_t roll = pick(0, 99);
    if (roll < 45) {
      // A read: room for at least `min_free`, as much as the limit allows, then some bytes written into it.
      const std::size_t min_free = pick(1, storage.size() * 2);
      const auto [space, size] = buffer.prepare(min_free, max_capacity);
      CHECK(buffer.data() == model);  // moved, not changed
      CHECK(buffer.capacity() <= std::max(max_capacity, storage.size()));
      // The room asked for, or, at the limit, all there is once compacted.
      CHECK((size >= min_free || (buffer.capacity() >= max_capacity && size == buffer.capacity() - model.size())));
      const std::size_t n = pick(0, size);
      for (std::size_t i = 0; i < n; ++i) {
        space[i] = next;
        model += next++;
      }
      buffer.commit(n);
    } else if (roll < 85) {
      const std::size_t n = pick(0, model.size());
      buffer.consume(n);
      model.erase(0, n);
    } else if (roll < 95) {
      CHECK(buffer.release_if_empty() == model.empty());
      if (model.empty()) CHECK(buffer.capacity() == storage.size());
    } else {
      buffer.release();
      model.clear();
      CHECK(buffer.capacity() == storage.size());
      CHECK(buffer.storage() == storage.data());
    }
    REQUIRE(buffer.data() == model);
    CHECK(buffer.empty() == model.empty());
  }
}
