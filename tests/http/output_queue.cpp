// output_queue: small pieces copied together, large and shared ones referenced, its own containers in an arena.
#include <switchboard/core/detail/arena.hpp>
#include <switchboard/http/detail/output_queue.hpp>

#include "support/catch.hpp"

#include <string>
#include <string_view>

using switchboard::shared_bytes;
using switchboard::detail::arena;
using switchboard::detail::arena_allocator;
using queue = switchboard::http::detail::basic_output_queue<arena_allocator<char>>;

namespace {

// What the write in flight has left to send (starting one if none is).
std::string joined(queue& q) {
  std::string all;
  for (const auto& b : q.start_write()) all.append(static_cast<const char*>(b.data()), b.size());
  return all;
}

}  // namespace

TEST_CASE("output_queue: small pieces share one buffer in the arena, large ones are referenced", "[http][output_queue]") {
  alignas(64) char region[1024];
  arena a(region);
  queue q{arena_allocator<char>(&a)};
  q.append("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  q.append("hello");
  REQUIRE(q.sending_buffers().empty());  // nothing taken by a write yet
  REQUIRE(q.start_write().size() == 1);
  CHECK(a.owns(q.sending_buffers()[0].data()));
  q.finish_write();
  CHECK(q.empty());
  q.append("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  q.append("hello");

  std::string body(queue::copy_threshold, 'b');
  const char* body_bytes = body.data();
  q.append_owned(std::move(body));
  q.append("tail");
  const auto& buffers = q.start_write();
  REQUIRE(buffers.size() == 3);
  CHECK(buffers[1].data() == body_bytes);  // moved in, not copied
  CHECK(q.size() == 38 + 5 + queue::copy_threshold + 4);

  const std::string expected =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + std::string(queue::copy_threshold, 'b') + "tail";
  CHECK(joined(q) == expected);
  q.consume_sent(40);
  CHECK(joined(q) == expected.substr(40));
  q.consume_sent(q.size());
  CHECK(q.sent_all());
  CHECK(q.empty());
}

// A response queued while a write is in flight (a deferred one, a streamed chunk) must neither change the bytes
// that write is sending nor be dropped when it finishes: it waits for the next write.
TEST_CASE("output_queue: what is queued during a write waits for the next one", "[http][output_queue]") {
  alignas(64) char region[4096];
  arena a(region);
  queue q{arena_allocator<char>(&a)};
  q.append("first response");
  const auto& in_flight = q.start_write();
  REQUIRE(in_flight.size() == 1);
  const void* first_bytes = in_flight[0].data();
  q.consume_sent(6);  // a partial write
  for (int i = 0; i < 50; ++i) q.append("second response, long enough to make its string grow ");  // meanwhile
  q.append_owned(std::string(queue::copy_threshold, 's'));
  CHECK(q.size() == 8 + 50 * 53 + queue::copy_threshold);
  // The rest of the write in flight is where it was, and nothing else.
  REQUIRE(q.sending_buffers().size() == 1);
  CHECK(q.sending_buffers()[0].data() == static_cast<const char*>(first_bytes) + 6);
  CHECK(std::string_view(static_cast<const char*>(q.sending_buffers()[0].data()), q.sending_buffers()[0].size()) ==
        "response");
  CHECK_FALSE(q.sent_all());
  // A start_write before the write finished goes on with the same bytes.
  CHECK(q.start_write().size() == 1);
  q.consume_sent(8);
  CHECK(q.sent_all());
  q.finish_write();
  CHECK_FALSE(q.empty());
  std::string second;
  for (int i = 0; i < 50; ++i) second += "second response, long enough to make its string grow ";
  CHECK(joined(q) == second + std::string(queue::copy_threshold, 's'));
  q.consume_sent(q.size());
  q.finish_write();
  CHECK(q.empty());
}

TEST_CASE("output_queue: release gives every block of the arena back", "[http][output_queue]") {
  alignas(64) char region[1024];
  arena a(region);
  queue q{arena_allocator<char>(&a)};
  q.append(std::string(100, 'x'));
  q.append_shared(shared_bytes(std::string(600, 'y')));
  q.append("z");
  (void)q.start_write();
  q.append("queued during the write");
  CHECK(a.used() > 0);
  q.release();
  CHECK(a.used() == 0);
  CHECK(q.empty());
}
