// Timeouts, the connection limit and the graceful drain of the HTTP server.
#include <switchboard/http/server.hpp>

#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <future>
#include <limits>
#include <thread>

using namespace std::chrono_literals;
using namespace switchboard;
using namespace switchboard::http;
using switchboard::test::get_request;
using switchboard::test::raw_client;
using switchboard::test::test_server;

namespace {

// Sends `request` one byte every `interval` until the server answers or closes; records what it got.
class slow_client {
 public:
  slow_client(asio::io_context& ctx, std::uint16_t port, std::string request, std::chrono::milliseconds interval)
      : socket_(ctx), timer_(ctx), request_(std::move(request)), interval_(interval) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
    socket_.async_read_some(asio::buffer(reply_buffer_), [this](std::error_code ec, std::size_t n) {
      if (!ec) reply_.assign(reply_buffer_, n);
      finished_ = true;
      timer_.cancel();
    });
    send_next();
  }
  bool finished() const { return finished_; }
  const std::string& reply() const { return reply_; }
  std::size_t sent() const { return sent_; }
  std::size_t total() const { return request_.size(); }

 private:
  void send_next() {
    if (finished_ || sent_ == request_.size()) return;
    asio::async_write(socket_, asio::buffer(&request_[sent_], 1), [this](std::error_code ec, std::size_t) {
      if (ec) return;
      ++sent_;
      timer_.expires_after(interval_);
      timer_.async_wait([this](std::error_code wait_ec) {
        if (!wait_ec) send_next();
      });
    });
  }

  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  std::string request_;
  std::chrono::milliseconds interval_;
  char reply_buffer_[4096];
  std::string reply_;
  std::size_t sent_ = 0;
  bool finished_ = false;
};

server_options short_timeouts() {
  server_options o;
  o.timeouts.header = 300ms;
  o.timeouts.body = 300ms;
  o.timeouts.idle = 300ms;
  o.timeouts.write = 300ms;
  return o;
}

}  // namespace

TEST_CASE("server: a client sending one header byte at a time is cut at the header deadline", "[http][server][timeouts]") {
  test_server s;
  s.routes().get("/plaintext", [](request&) { return response::text("Hello, World!"); });
  s.start(short_timeouts());

  asio::io_context ctx;
  slow_client slow(ctx, s.port(), get_request("/plaintext", "X-Padding: " + std::string(200, 'p') + "\r\n"), 20ms);
  // Meanwhile other clients are served normally (bounded: 400 requests take far longer than the deadline).
  int served = 0;
  while (!slow.finished() && served < 400) {
    raw_client c(s.port());
    c.send(get_request("/plaintext"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    ++served;
    test::run_until(ctx, [&] { return slow.finished(); }, 20ms);  // let the slow client send its next byte
  }
  REQUIRE(test::run_until(ctx, [&] { return slow.finished(); }, 10s));
  CHECK(slow.sent() < slow.total());  // cut before the header was complete
  CHECK(slow.reply().rfind("HTTP/1.1 408", 0) == 0);
  CHECK(served > 0);
  CHECK(s.server().stats().timeouts >= 1);
}

TEST_CASE("server: idle keep-alive connections are closed", "[http][server][timeouts]") {
  test_server s;
  s.routes().get("/plaintext", [](request&) { return response::text("Hello, World!"); });
  s.start(short_timeouts());
  raw_client c(s.port());
  c.send(get_request("/plaintext"));
  REQUIRE(c.read_response());
  CHECK(c.closed_by_peer());  // within the 10 s read timeout; the idle timeout is 300 ms
}

TEST_CASE("server: empty lines before a request line do not fill the read buffer", "[http][server]") {
  // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line. They used to stay in
  // the buffer while the request line was awaited, until it was full and the connection was closed unanswered.
  test_server s;
  s.routes().get("/plaintext", [](request&) { return response::text("Hello, World!"); });
  s.start();
  raw_client c(s.port());
  std::string lines;
  for (int i = 0; i < 12000; ++i) lines += "\r\n";  // 24,000 bytes: more than the header limit (16 KiB)
  c.send(lines + get_request("/plaintext"));
  const auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("server: the read buffer grows to the configured limits, whatever they are", "[http][server]") {
  // The buffer's bound was max_header_bytes + 1024: SIZE_MAX ("no limit") wrapped it to 1023 bytes, and a chunk
  // line allowed longer than a header did not fit; either request was cut with a reset, unanswered.
  test_server s;
  s.routes().get("/plaintext", [](request&) { return response::text("Hello, World!"); });
  s.routes().post("/echo", [](request& req) { return response::text(std::string(req.body())); });
  server_options options;
  SECTION("no header limit") {
    options.limits.max_header_bytes = std::numeric_limits<std::size_t>::max();
    s.start(options);
    raw_client c(s.port());
    c.send("GET /plaintext HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(12000, 'b') + "\r\n\r\n");
    const auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  SECTION("chunk lines longer than the header limit") {
    options.limits.max_chunk_line = 64 * 1024;
    s.start(options);
    raw_client c(s.port());
    c.send("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=" + std::string(30000, 'e') +
           "\r\nabc\r\n0\r\n\r\n");
    const auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "abc");
  }
}

TEST_CASE("server: a slow body read is cut at the body deadline", "[http][server][timeouts]") {
  test_server s;
  s.routes().post("/echo", [](request& req) { return response::text(std::string(req.body())); });
  s.start(short_timeouts());
  raw_client c(s.port());
  c.send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 408);
  CHECK(c.closed_by_peer());
}

TEST_CASE("server: a client that stops reading is cut at the write deadline", "[http][server][timeouts]") {
  test_server s;
  std::promise<std::error_code> write_result;
  s.routes().get("/firehose", [&](request&) {
    return response::stream("application/octet-stream", [&](body_writer& w) -> asio::awaitable<void> {
      const std::string block(64 * 1024, 'x');
      for (;;) {
        auto [ec] = co_await w.async_write(block, asio::experimental::as_tuple(asio::use_awaitable));
        if (ec) {
          write_result.set_value(ec);
          co_return;
        }
      }
    });
  });
  s.start(short_timeouts());
  raw_client c(s.port());
  // A small receive window so that the server's writes block quickly.
  c.socket().set_option(asio::socket_base::receive_buffer_size(4096));
  c.send(get_request("/firehose"));
  auto f = write_result.get_future();
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  CHECK(f.get());  // the producer learnt that the peer is gone
  CHECK(s.server().stats().timeouts >= 1);
}

TEST_CASE("server: a client that pipelines without reading stops being read, and is cut at the write deadline",
          "[http][server][timeouts]") {
  test_server s;
  s.routes().get("/big", [](request&) { return response::text(std::string(16 * 1024, 'x')); });
  s.start(short_timeouts());
  raw_client c(s.port());
  c.socket().set_option(asio::socket_base::receive_buffer_size(4096));
  const timeval send_timeout{10, 0};  // so that a server that never cuts fails the checks below instead of hanging
  ::setsockopt(c.socket().native_handle(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  // 64 MiB of pipelined requests, whose answers would be 27 GiB. The server answers up to max_pending_output at a
  // time and reads no further while the client does not take the answers, so the requests pile up in the kernel's
  // buffers (a few MiB) until the write deadline closes the connection and a send fails.
  std::string burst;
  while (burst.size() < 64 * 1024) burst += get_request("/big");
  const std::size_t bursts = 1024;
  std::size_t sent = 0;
  while (sent < bursts && c.try_send(burst)) ++sent;
  CHECK(sent < bursts);
  CHECK(s.server().stats().timeouts >= 1);
  // Other clients are served as usual.
  raw_client other(s.port());
  other.send(get_request("/big"));
  auto r = other.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.size() == 16 * 1024);
}

TEST_CASE("server: the connection limit pauses accepting until a connection closes", "[http][server]") {
  test_server s;
  s.routes().get("/plaintext", [](request&) { return response::text("Hello, World!"); });
  server_options o;
  o.max_connections = 2;
  s.start(o);
  auto a = std::make_unique<raw_client>(s.port());
  raw_client b(s.port());
  a->send(get_request("/plaintext"));
  REQUIRE(a->read_response());
  b.send(get_request("/plaintext"));
  REQUIRE(b.read_response());
  // The third connection completes in the kernel's backlog but is not accepted: no answer yet.
  raw_client third(s.port(), 10s);
  third.send(get_request("/plaintext"));
  third.set_timeout(300ms);
  CHECK_FALSE(third.read_response());
  third.set_timeout(10s);
  a.reset();  // frees a slot
  auto r = third.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("server: max_connections_per_address closes one client's connections past it at once",
          "[http][server]") {
  test_server s;
  s.routes().get("/plaintext", [](request&) { return response::text("Hello, World!"); });
  s.start({.max_connections_per_address = 2});
  const auto answered = [](raw_client& c) {
    c.send(get_request("/plaintext"));
    const auto r = c.read_response();
    return r && r->status == 200;
  };
  auto a = std::make_unique<raw_client>(s.port());
  raw_client b(s.port());
  CHECK(answered(*a));
  CHECK(answered(b));
  raw_client third(s.port());
  CHECK(third.closed_by_peer());
  CHECK(s.server().stats().refused_per_address == 1);

  // Another address is not limited by this one.
  raw_client elsewhere(s.port(), 10s, "127.0.0.2");
  CHECK(answered(elsewhere));

  // A connection that closes gives its place back (once the server has seen it close).
  a.reset();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (s.server().stats().active > 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  raw_client fourth(s.port());
  CHECK(answered(fourth));
  CHECK(s.server().stats().refused_per_address == 1);
}

TEST_CASE("server: graceful drain", "[http][server][drain]") {
  test_server s;
  std::promise<responder> parked;
  std::promise<void> handler_started;
  s.routes().get("/plaintext", [](request&) { return response::text("Hello, World!"); });
  s.routes().get("/park", [&](request&, responder res) {
    parked.set_value(std::move(res));
  });
  s.start();

  SECTION("idle connections close, an in-flight request is answered with Connection: close") {
    raw_client idle(s.port());
    idle.send(get_request("/plaintext"));
    REQUIRE(idle.read_response());
    raw_client busy(s.port());
    busy.send(get_request("/park"));
    responder res = parked.get_future().get();
    std::promise<drain_report> report;
    s.server().async_drain(std::chrono::steady_clock::now() + 10s, [&](drain_report r) { report.set_value(r); });
    CHECK(idle.closed_by_peer());
    res.send(response::text("finished"));
    auto r = busy.read_response();
    REQUIRE(r);
    CHECK(r->body == "finished");
    CHECK(r->header("connection") == "close");
    CHECK(busy.closed_by_peer());
    auto f = report.get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    const drain_report got = f.get();
    CHECK(got.drained == 2);
    CHECK(got.cut == 0);
    // New connections are refused once draining.
    CHECK_THROWS(raw_client(s.port()).send(get_request("/plaintext")));
  }
  SECTION("what is still open at the deadline is cut and counted") {
    raw_client busy(s.port());
    busy.send(get_request("/park"));
    responder res = parked.get_future().get();
    const drain_report got = s.stop(100ms);  // the runtime drains its server
    CHECK(got.cut == 1);
    CHECK(got.drained == 0);
    CHECK(busy.closed_by_peer());
    res.send(response::text("too late"));  // dropped
  }
}
