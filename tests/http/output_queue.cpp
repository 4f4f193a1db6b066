// output_queue: small pieces copied together, large and shared ones referenced, its own containers in an arena.
#include <switchboard/core/detail/arena.hpp>
#include <switchboard/http/detail/output_queue.hpp>

#include "support/catch.hpp"

#include <string>

using switchboard::shared_bytes;
using switchboard::detail::arena;
using switchboard::detail::arena_allocator;
using queue = switchboard::http::detail::basic_output_queue<arena_allocator<char>>;

namespace {

std::string joined(queue& q) {
  std::string all;
  for (const auto& b : q.buffers()) all.append(static_cast<const char*>(b.data()), b.size());
  return all;
}

}  // namespace

TEST_CASE("output_queue: small pieces share one buffer in the arena, large ones are referenced", "[http][output_queue]") {
  alignas(64) char region[1024];
  arena a(region);
  queue q{arena_allocator<char>(&a)};
  q.append("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  q.append("hello");
  REQUIRE(q.buffers().size() == 1);
  CHECK(a.owns(q.buffers()[0].data()));

  std::string body(queue::copy_threshold, 'b');
  const char* body_bytes = body.data();
  q.append_owned(std::move(body));
  q.append("tail");
  const auto& buffers = q.buffers();
  REQUIRE(buffers.size() == 3);
  CHECK(buffers[1].data() == body_bytes);  // moved in, not copied
  CHECK(q.size() == 38 + 5 + queue::copy_threshold + 4);

  const std::string expected =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + std::string(queue::copy_threshold, 'b') + "tail";
  CHECK(joined(q) == expected);
  q.consume(40);
  CHECK(joined(q) == expected.substr(40));
  q.consume(q.size());
  CHECK(q.empty());
}

TEST_CASE("output_queue: release gives every block of the arena back", "[http][output_queue]") {
  alignas(64) char region[1024];
  arena a(region);
  queue q{arena_allocator<char>(&a)};
  q.append(std::string(100, 'x'));
  q.append_shared(shared_bytes(std::string(600, 'y')));
  q.append("z");
  (void)q.buffers();
  CHECK(a.used() > 0);
  q.release();
  CHECK(a.used() == 0);
  CHECK(q.empty());
}
