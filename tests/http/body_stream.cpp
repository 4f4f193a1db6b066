// Streamed responses written by a handler from the server's callbacks (http/body_stream.hpp), over loopback, read by
// a raw-socket client.
#include <switchboard/http/server.hpp>

#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

using namespace std::chrono_literals;
using namespace switchboard;
using namespace switchboard::http;
using switchboard::test::get_request;
using switchboard::test::raw_client;
using switchboard::test::test_server;

namespace {

// A handler whose callbacks each test scripts, and which records what the server called.
struct scripted_handler final : body_stream_handler {
  std::function<void(scripted_handler&)> start, written, wake;
  body_stream* out = nullptr;
  std::atomic<bool> started{false};
  int writes_done = 0;  // on the server's thread only
  std::promise<void> ended;

  void on_start(body_stream& s) override {
    started = true;
    out = &s;
    if (start) start(*this);
  }
  void on_written() override {
    ++writes_done;
    if (written) written(*this);
  }
  void on_wake() override {
    if (wake) wake(*this);
  }
  void on_end() override {
    out = nullptr;
    ended.set_value();
  }

  void write(std::string bytes) {
    shared_bytes piece(std::move(bytes));
    out->write(std::span<shared_bytes>(&piece, 1));
  }
};

// A server whose GET /stream answers with `handler`, and GET /plain with text.
struct stream_server {
  explicit stream_server(std::shared_ptr<scripted_handler> h) : handler(std::move(h)) {
    s.routes().get("/stream", [this](request&) { return response::stream("text/plain", handler); });
    s.routes().get("/later", [this](request&, responder res) {
      // Answered from another thread, after the handler returned.
      answerer = std::thread([res = std::move(res), h = handler]() mutable { res.send(response::stream("text/plain", h)); });
    });
    s.routes().get("/plain", [](request&) { return response::text("plain"); });
    s.start();
  }
  ~stream_server() {
    if (answerer.joinable()) answerer.join();
  }

  std::shared_ptr<scripted_handler> handler;
  test_server s;
  std::thread answerer;
};

// GETs `target` on `c` and returns the response's body (the test fails if no response comes).
std::string get_body(raw_client& c, std::string_view target) {
  c.send(get_request(target));
  auto r = c.read_response();
  REQUIRE(r);
  return r->body;
}

// Reads until `text` has arrived, or a read times out; returns everything read.
std::string read_until_contains(raw_client& c, std::string_view text) {
  std::string all;
  while (all.find(text) == std::string::npos) {
    std::string more = c.read_bytes(1);
    if (more.empty()) break;
    all += more;
  }
  return all;
}

bool ready(std::promise<void>& p, std::chrono::seconds within = 10s) {
  return p.get_future().wait_for(within) == std::future_status::ready;
}

TEST_CASE("body stream: a handler writes a long backlog as the socket takes it, then finishes", "[http][body_stream]") {
  auto h = std::make_shared<scripted_handler>();
  constexpr int pieces = 10'000;  // most go out inside the previous callback: reported by a loop, not recursion
  std::string expected;
  for (int i = 0; i < pieces; ++i) expected += std::to_string(i) + ";";
  h->start = [](scripted_handler& self) { self.write("0;"); };
  h->written = [](scripted_handler& self) {
    if (self.writes_done == pieces) return self.out->finish();
    self.write(std::to_string(self.writes_done) + ";");
  };
  stream_server server(h);
  raw_client c(server.s.port());
  c.send(get_request("/stream"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->header("transfer-encoding") == "chunked");
  CHECK(r->header("content-type") == "text/plain");
  CHECK(r->body == expected);
  CHECK(get_body(c, "/plain") == "plain");  // the connection goes on with the next request
  CHECK(h->ended.get_future().wait_for(0s) == std::future_status::timeout);  // finish() is not followed by on_end
}

TEST_CASE("body stream: the pieces of one write are one chunk", "[http][body_stream]") {
  auto h = std::make_shared<scripted_handler>();
  h->start = [](scripted_handler& self) {
    shared_bytes pieces[] = {shared_bytes(std::string("aaa")), shared_bytes(), shared_bytes(std::string("bbbccc"))};
    self.out->write(pieces);
  };
  h->written = [](scripted_handler& self) { self.out->finish(); };
  stream_server server(h);
  raw_client c(server.s.port());
  c.send(get_request("/stream", "Connection: close\r\n"));
  const std::string all = c.read_until_close();
  CHECK(all.find("\r\n\r\n9\r\naaabbbccc\r\n0\r\n\r\n") != std::string::npos);
}

TEST_CASE("body stream: wake_at calls the handler back when its time comes", "[http][body_stream]") {
  auto h = std::make_shared<scripted_handler>();
  h->start = [](scripted_handler& self) { self.out->wake_at(std::chrono::steady_clock::now() + 20ms); };
  h->wake = [](scripted_handler& self) { self.write("woke"); };
  h->written = [](scripted_handler& self) { self.out->finish(); };
  stream_server server(h);
  raw_client c(server.s.port());
  CHECK(get_body(c, "/stream") == "woke");
}

TEST_CASE("body stream: the stream ends with on_end when the client goes away", "[http][body_stream]") {
  auto h = std::make_shared<scripted_handler>();
  h->start = [](scripted_handler& self) { self.write("hello"); };
  stream_server server(h);
  {
    raw_client c(server.s.port());
    c.send(get_request("/stream"));
    REQUIRE(read_until_contains(c, "hello\r\n").find("hello\r\n") != std::string::npos);
  }  // closes the socket
  CHECK(ready(h->ended));
}

TEST_CASE("body stream: a drain ends the body cleanly and calls on_end", "[http][body_stream]") {
  auto h = std::make_shared<scripted_handler>();
  h->start = [](scripted_handler& self) { self.write("first"); };
  stream_server server(h);
  raw_client c(server.s.port());
  c.send(get_request("/stream"));
  std::string all = read_until_contains(c, "first\r\n");
  REQUIRE(all.find("\r\n\r\n5\r\nfirst\r\n") != std::string::npos);  // streaming: now drain
  auto stopped = std::async(std::launch::async, [&] { return server.s.stop(5s); });
  all += c.read_until_close();
  CHECK(all.find("\r\n\r\n5\r\nfirst\r\n0\r\n\r\n") != std::string::npos);
  CHECK(ready(h->ended));
  CHECK(stopped.get().drained == 1);
}

TEST_CASE("body stream: a handler that throws cuts its connection, and only its own", "[http][body_stream]") {
  auto h = std::make_shared<scripted_handler>();
  h->start = [](scripted_handler& self) { self.write("partial"); };
  h->written = [](scripted_handler&) { throw std::runtime_error("handler failed"); };
  stream_server server(h);
  raw_client c(server.s.port());
  c.send(get_request("/stream"));
  const std::string all = c.read_until_close();  // the connection ends without the last chunk
  CHECK(all.ends_with("\r\n\r\n7\r\npartial\r\n"));
  CHECK(h->ended.get_future().wait_for(0s) == std::future_status::timeout);  // not called after it threw
  raw_client other(server.s.port());
  CHECK(get_body(other, "/plain") == "plain");
}

// To HTTP/1.0 the body is not chunked: the close ends it, so a FIN would make a failed body look complete.
TEST_CASE("body stream: a handler that throws resets an HTTP/1.0 connection", "[http][body_stream]") {
  auto h = std::make_shared<scripted_handler>();
  h->start = [](scripted_handler& self) { self.write("partial"); };
  h->written = [](scripted_handler&) { throw std::runtime_error("handler failed"); };
  stream_server server(h);
  raw_client c(server.s.port());
  c.send("GET /stream HTTP/1.0\r\n\r\n");
  std::error_code ended_by;
  const std::string all = c.read_until_close(&ended_by);
  CHECK(all.ends_with("\r\n\r\npartial"));
  CHECK(ended_by == asio::error::connection_reset);
}

// A handler still running when the drain begins may answer with a stream afterwards: that stream ends at once,
// cleanly (its last chunk), before the handler starts; it was left to run until the drain's deadline cut it.
TEST_CASE("body stream: a stream that begins during a drain ends at once with its last chunk", "[http][body_stream]") {
  auto h = std::make_shared<scripted_handler>();
  h->start = [](scripted_handler& self) { self.write("never"); };
  test_server s;
  std::promise<responder> asked;
  s.routes().get("/late", [&](request&, responder res) { asked.set_value(std::move(res)); });
  s.routes().get("/plain", [](request&) { return response::text("plain"); });
  s.start();
  raw_client streamed(s.port()), idle(s.port());
  CHECK(get_body(idle, "/plain") == "plain");  // an idle keep-alive connection: the drain closes it at once
  streamed.send(get_request("/late"));
  auto answer = asked.get_future();
  REQUIRE(answer.wait_for(10s) == std::future_status::ready);
  responder res = answer.get();
  auto stopped = std::async(std::launch::async, [&] { return s.stop(10s); });
  REQUIRE(idle.closed_by_peer());  // the drain has gone through the connections (one thread: this one's too)
  res.send(response::stream("text/plain", h));
  std::error_code ended_by;
  const std::string all = streamed.read_until_close(&ended_by);
  CHECK(all.ends_with("\r\n\r\n0\r\n\r\n"));
  CHECK(ended_by == asio::error::eof);
  CHECK_FALSE(h->started);
  const drain_report report = stopped.get();
  CHECK(report.cut == 0);
}

TEST_CASE("body stream: no call without a body to write", "[http][body_stream]") {
  auto h = std::make_shared<scripted_handler>();
  h->start = [](scripted_handler& self) { self.out->finish(); };
  stream_server server(h);
  raw_client c(server.s.port());
  c.send("HEAD /stream HTTP/1.1\r\nHost: h\r\n\r\n");
  auto r = c.read_response(true);
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(!h->started);
  CHECK(h.use_count() == 2);  // the test's and the route's: the response's went before its head was written
  CHECK(get_body(c, "/plain") == "plain");  // and the connection goes on
}

TEST_CASE("body stream: an answer from another thread, and an HTTP/1.0 client", "[http][body_stream]") {
  auto h = std::make_shared<scripted_handler>();
  h->start = [](scripted_handler& self) { self.write("later"); };
  h->written = [](scripted_handler& self) { self.out->finish(); };
  stream_server server(h);
  raw_client c(server.s.port());

  SECTION("the head goes out, then the handler starts") {
    CHECK(get_body(c, "/later") == "later");
  }
  SECTION("HTTP/1.0 gets the body raw, then the connection closes") {
    c.send("GET /stream HTTP/1.0\r\n\r\n");
    const std::string all = c.read_until_close();
    CHECK(all.find("Transfer-Encoding") == std::string::npos);
    CHECK(all.substr(all.size() - 9) == "\r\n\r\nlater");
  }
}

}  // namespace
