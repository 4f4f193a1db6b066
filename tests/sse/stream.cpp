#include <switchboard/sse/encoder.hpp>
#include <switchboard/sse/stream.hpp>

#include "sse/event_stream_client.hpp"
#include "support/catch.hpp"
#include "support/test_server.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

using namespace std::chrono_literals;
using namespace switchboard;
using switchboard::test::event_stream_client;
using switchboard::test::test_server;

namespace {

shared_bytes event_bytes(std::string_view data, std::string_view id) {
  std::string out;
  REQUIRE_FALSE(sse::encode({.data = data, .id = id}, out));
  return shared_bytes(std::move(out));
}

// A body that holds each write until the test completes it, so that a test can act while a write is in flight.
class held_body final : public http::body_writer {
 public:
  explicit held_body(asio::io_context& ctx) : executor_(ctx.get_executor()) {}

  bool closed() const noexcept override { return false; }
  asio::any_io_executor get_executor() const override { return executor_; }

  bool writing() const noexcept { return static_cast<bool>(pending_); }
  void finish_write(std::error_code ec = {}) { pending_.complete(ec); }

  std::string written;

 private:
  void start_write(std::string_view data, shared_bytes, completion done) override {
    written.append(data);
    pending_ = std::move(done);
  }

  asio::any_io_executor executor_;
  completion pending_;
};

// A co_spawn completion that lets a test see what its coroutine threw.
void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// Runs `ctx` until `done()`, for at most 10 s; returns whether it became true.
bool run_until(asio::io_context& ctx, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < deadline) ctx.run_one_for(10ms);
  return done();
}

// Runs `producer` on `ctx` as the server runs a body producer (co_spawn, cancellation slot bound) until it has a
// write in flight; then cancels it as a drain or a departed client does, completes the write successfully, and
// runs until the producer has ended. Returns the exception the producer ended with, if any.
std::exception_ptr cancel_during_write(asio::io_context& ctx, held_body& body,
                                       const std::function<asio::awaitable<void>()>& producer) {
  asio::cancellation_signal cancel;
  std::optional<std::exception_ptr> ended;
  asio::co_spawn(ctx, producer(),
                 asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) { ended = e; }));
  REQUIRE(run_until(ctx, [&] { return body.writing(); }));
  cancel.emit(asio::cancellation_type::terminal);
  body.finish_write();
  ctx.run_for(10s);  // returns as soon as the producer has ended (nothing else keeps ctx busy)
  REQUIRE(ended);
  return *ended;
}

}  // namespace

TEST_CASE("sse stream: parse_sequence_id accepts decimal sequence numbers only", "[sse][stream]") {
  CHECK(sse::parse_sequence_id("0") == 0u);
  CHECK(sse::parse_sequence_id("42") == 42u);
  CHECK(sse::parse_sequence_id("18446744073709551615") == 18446744073709551615ull);
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1a", "0x10", "18446744073709551616", "abc"}) {
    INFO(bad);
    CHECK_FALSE(sse::parse_sequence_id(bad));
  }
}

TEST_CASE("sse stream: Last-Event-ID from the header, else from the query", "[sse][stream]") {
  test_server s;
  s.routes().get("/id", [](http::request& req) {
    return http::response::text(sse::last_event_id(req).value_or("none"));
  });
  s.start();
  auto ask = [&](const std::string& target, const std::string& extra) {
    test::raw_client c(s.port());
    c.send(test::get_request(target, extra));
    auto r = c.read_response();
    REQUIRE(r);
    return r->body;
  };
  CHECK(ask("/id", "") == "none");
  CHECK(ask("/id", "Last-Event-ID: 17\r\n") == "17");
  CHECK(ask("/id?lastEventId=9", "") == "9");
  CHECK(ask("/id?lastEventId=9", "Last-Event-ID: 17\r\n") == "17");  // a reconnection's header wins
  CHECK(ask("/id", "Last-Event-ID: \r\n") == "");                   // an empty id is an id (the client forgot it)
}

TEST_CASE("sse stream: head, retry, events, heartbeats while idle", "[sse][stream]") {
  test_server s;
  std::promise<bool> ended;
  s.routes().get("/events", [&](http::request&) {
    return sse::stream_response([&](http::body_writer& body) -> asio::awaitable<void> {
      sse::stream_writer out(body, {.heartbeat = 20ms, .retry = 1500ms});
      const shared_bytes one = event_bytes("one", "1"), two = event_bytes("two\nlines", "2"),
                         three = event_bytes("three", "3");
      bool ok = co_await out.write(one);
      if (ok) ok = co_await out.write(two);
      if (ok) ok = co_await out.idle(30ms);  // the limit passes: no wake
      if (ok) ok = co_await out.write(three);
      while (ok) ok = co_await out.idle();  // heartbeats until the client goes
      ended.set_value(out.heartbeats() > 0);
    });
  });
  s.start();
  {
    event_stream_client c(s.port(), "/events");
    REQUIRE(c.read_events(3));
    CHECK(c.head.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(c.head.find("Content-Type: text/event-stream\r\n") != std::string::npos);
    CHECK(c.head.find("Cache-Control: no-cache\r\n") != std::string::npos);
    CHECK(c.head.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
    CHECK(c.body.starts_with("retry: 1500\n\n"));
    CHECK(c.parser.retry() == 1500ms);
    CHECK(c.events[0].data == "one");
    CHECK(c.events[1].data == "two\nlines");
    CHECK(c.events[2].data == "three");
    CHECK(c.events[2].last_event_id == "3");
    REQUIRE(c.read_until([&] { return c.body.find("three\n\n:\n") != std::string::npos; }));  // a heartbeat comment
  }
  // The client went away: the producer's wait reports it and the producer ends.
  auto done = ended.get_future();
  REQUIRE(done.wait_for(10s) == std::future_status::ready);
  CHECK(done.get());
}

TEST_CASE("sse stream: wake ends an idle wait; a drain ends the stream cleanly", "[sse][stream]") {
  test_server s;
  std::atomic<int> woken{0};
  s.routes().get("/events", [&](http::request&) {
    return sse::stream_response([&](http::body_writer& body) -> asio::awaitable<void> {
      sse::stream_writer out(body, {.heartbeat = 0ms});
      // Another handler on the connection's executor wakes the writer (as a queue does when it gets an item).
      asio::post(body.get_executor(), [&out] { out.wake(); });
      const shared_bytes event = event_bytes("after wake", "1");
      bool ok = co_await out.idle();
      if (ok) ++woken;
      if (ok) ok = co_await out.write(event);
      while (ok) ok = co_await out.idle();
    });
  });
  s.start();
  {
    event_stream_client c(s.port(), "/events");
    REQUIRE(c.read_events(1));
    CHECK(woken == 1);
    CHECK(c.events[0].data == "after wake");
    s.rt().stop(5s);
    REQUIRE(c.read_until([&] { return c.ended; }));  // the last chunk: an EventSource reconnects elsewhere
  }
  const drain_report report = s.stop();
  CHECK(report.cut == 0);
}

// The server cancels a producer (drain, client gone) while its write is in flight, which cannot be cancelled. The
// producer must see `false` from that write (or heartbeat), not an exception from its next co_await: asio throws
// operation_aborted at any co_await of a cancelled coroutine, and the server cuts a stream whose producer threw
// instead of ending it with the last chunk (and logs a handler error).
TEST_CASE("sse stream: a cancellation during a write makes write and idle return false", "[sse][stream]") {
  asio::io_context ctx;
  held_body body(ctx);
  SECTION("an event being written") {
    std::optional<bool> written;
    const std::exception_ptr e = cancel_during_write(ctx, body, [&]() -> asio::awaitable<void> {
      sse::stream_writer out(body, {.heartbeat = 0ms});
      written = co_await out.write(event_bytes("one", "1"));
      if (*written) co_await out.idle();  // the next co_await: it would throw
    });
    CHECK_FALSE(e);
    CHECK(written == false);
    CHECK(body.written == "id: 1\ndata: one\n\n");
  }
  SECTION("a heartbeat being written") {
    std::optional<bool> idled;
    const std::exception_ptr e = cancel_during_write(ctx, body, [&]() -> asio::awaitable<void> {
      sse::stream_writer out(body, {.heartbeat = 1ms});
      idled = co_await out.idle();  // writes heartbeats until one is held
    });
    CHECK_FALSE(e);
    CHECK(idled == false);
    CHECK(body.written == ":\n");
  }
  SECTION("the retry field being written") {
    std::optional<bool> written;
    const std::exception_ptr e = cancel_during_write(ctx, body, [&]() -> asio::awaitable<void> {
      sse::stream_writer out(body, {.heartbeat = 0ms, .retry = 100ms});
      written = co_await out.write(event_bytes("one", "1"));
    });
    CHECK_FALSE(e);
    CHECK(written == false);
    CHECK(body.written == "retry: 100\n\n");
  }
}

TEST_CASE("sse stream: a negative retry is refused at construction", "[sse][stream]") {
  asio::io_context ctx;
  held_body body(ctx);
  CHECK_THROWS_AS(sse::stream_writer(body, {.retry = -1ms}), std::invalid_argument);
  CHECK_THROWS_AS(sse::stream_writer(body, {.retry = std::chrono::milliseconds::min()}), std::invalid_argument);
  CHECK_NOTHROW(sse::stream_writer(body, {.retry = 0ms}));  // reconnect at once: a valid time
}

// A limit or heartbeat too long to add to the clock must saturate, not wrap around into the past: an `idle` whose
// deadline wrapped returns at once, and one whose next heartbeat wrapped writes heartbeats without pause. A timer
// due now, armed once `idle` waits, wakes it: an `idle` that expires in the past sees its own timer first.
TEST_CASE("sse stream: idle with a limit or heartbeat too long to add waits for its wake", "[sse][stream]") {
  using std::chrono::milliseconds;
  using std::chrono::steady_clock;
  milliseconds heartbeat{0};
  steady_clock::duration limit{0};
  SECTION("the longest limit") { limit = steady_clock::duration::max(); }
  SECTION("the longest heartbeat") { heartbeat = milliseconds::max(); }
  SECTION("both, the limit just below the longest") {
    heartbeat = milliseconds::max() / 2;
    limit = steady_clock::duration::max() - 1ms;
  }
  asio::io_context ctx;
  held_body body(ctx);
  asio::steady_timer due(ctx);
  sse::stream_writer* writer = nullptr;
  bool wake_sent = false;
  std::optional<bool> idled, idled_after_wake;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        sse::stream_writer out(body, {.heartbeat = heartbeat});
        writer = &out;
        asio::post(ctx, [&] {  // runs once `idle` waits
          due.expires_at(steady_clock::now());
          due.async_wait([&](std::error_code) {
            wake_sent = true;
            if (writer) writer->wake();
          });
        });
        idled = co_await out.idle(limit);
        idled_after_wake = wake_sent;
        writer = nullptr;
      },
      rethrow);
  REQUIRE(run_until(ctx, [&] { return idled || body.writing(); }));
  CHECK(body.written.empty());  // no heartbeat
  REQUIRE(idled);
  CHECK(*idled);
  CHECK(idled_after_wake == true);
}

TEST_CASE("sse stream: idle with a negative limit returns at once", "[sse][stream]") {
  // A producer's `deadline - now` once the deadline has gone: the limit has passed, it is not "no limit".
  asio::io_context ctx;
  held_body body(ctx);
  std::optional<bool> idled;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        sse::stream_writer out(body, {.heartbeat = std::chrono::milliseconds(0)});
        idled = co_await out.idle(-std::chrono::milliseconds(1));
      },
      rethrow);
  REQUIRE(run_until(ctx, [&] { return idled.has_value(); }));
  CHECK(*idled);
  CHECK(body.written.empty());
}

TEST_CASE("sse stream: a heartbeat whose write fails is not counted", "[sse][stream]") {
  asio::io_context ctx;
  held_body body(ctx);
  std::optional<bool> idled;
  std::optional<std::uint64_t> heartbeats;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        sse::stream_writer out(body, {.heartbeat = 1ms});
        idled = co_await out.idle();  // heartbeats until one fails
        heartbeats = out.heartbeats();
      },
      rethrow);
  REQUIRE(run_until(ctx, [&] { return body.writing(); }));
  body.finish_write();  // the first heartbeat is written
  REQUIRE(run_until(ctx, [&] { return body.writing(); }));
  body.finish_write(std::make_error_code(std::errc::broken_pipe));  // the second is not: the client has gone
  REQUIRE(run_until(ctx, [&] { return idled.has_value(); }));
  CHECK(idled == false);
  CHECK(body.written == ":\n:\n");
  CHECK(heartbeats == 1u);
}
