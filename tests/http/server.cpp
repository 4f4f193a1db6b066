// The HTTP server over loopback, driven by a raw-socket client that controls every byte.
#include <switchboard/http/server.hpp>

#include "support/catch.hpp"
#include "support/drain_checks.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"
#include "support/test_support.hpp"

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using namespace std::string_view_literals;
using namespace switchboard;
using namespace switchboard::http;
using switchboard::test::get_request;
using switchboard::test::raw_client;
using switchboard::test::test_server;

namespace {

void add_basic_routes(router& r) {
  r.get("/plaintext", [](request&) { return response::text("Hello, World!"); });
  r.get("/json", [](request&) { return response::json({{"message", "Hello, World!"}}); });
  r.post("/echo", [](request& req) { return response::text(std::string(req.body())); });
  r.post("/json-echo", [](request& req) { return response::json(req.json()); });
  r.get("/user/{id:int}", [](request& req) { return response::json({{"id", req.param_as<int>("id")}}); });
}

}  // namespace

TEST_CASE("server: basic request-response", "[http][server]") {
  test_server s;
  add_basic_routes(s.routes());
  const shared_bytes small = shared_bytes::copy("shared"), large(std::string(20000, 'y'));
  s.routes().get("/shared/{size}", [&](request& req) {
    return response().set_body(req.param("size") == "small" ? small : large, "text/plain");
  });
  s.routes().get("/replaced", [&](request&) {
    return response().set_body(small, "text/plain").set_body(std::string("string"), "text/plain");
  });
  s.start();
  raw_client c(s.port());

  SECTION("plain text, with Date and Content-Length") {
    c.send(get_request("/plaintext"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "Hello, World!");
    CHECK(r->header("content-type") == "text/plain; charset=utf-8");
    CHECK(r->header("content-length") == "13");
    CHECK(r->header("date").size() == 29);
    CHECK(r->keep_alive);
  }
  SECTION("JSON and typed route parameters") {
    c.send(get_request("/user/42"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->header("content-type") == "application/json");
    CHECK(nlohmann::json::parse(r->body) == nlohmann::json{{"id", 42}});
  }
  SECTION("404 and 405 are problem+json, 405 with Allow") {
    c.send(get_request("/missing"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(r->header("content-type") == "application/problem+json");
    CHECK(nlohmann::json::parse(r->body)["status"] == 404);
    c.send("DELETE /plaintext HTTP/1.1\r\nHost: h\r\n\r\n");
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 405);
    CHECK(r->header("allow") == "GET, HEAD, OPTIONS");
  }
  SECTION("HEAD is answered by the GET handler, without a body") {
    c.send("HEAD /plaintext HTTP/1.1\r\nHost: h\r\n\r\n");
    auto r = c.read_response(/*head_request=*/true);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->header("content-length") == "13");
    CHECK(r->body.empty());
    c.send(get_request("/plaintext"));  // the connection is still in step
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "Hello, World!");
  }
  SECTION("a shared body, small or large, and after a body set as a string") {
    c.send(get_request("/shared/small") + get_request("/shared/large") +
           "HEAD /shared/large HTTP/1.1\r\nHost: h\r\n\r\n" + get_request("/replaced"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "shared");
    CHECK(r->header("content-type") == "text/plain");
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == large.view());
    r = c.read_response(/*head_request=*/true);
    REQUIRE(r);
    CHECK(r->header("content-length") == "20000");
    CHECK(r->body.empty());
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "string");
  }
  SECTION("OPTIONS lists the methods") {
    c.send("OPTIONS /echo HTTP/1.1\r\nHost: h\r\n\r\n");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 204);
    CHECK(r->header("allow") == "POST, OPTIONS");
  }
  SECTION("a body, and JSON bodies; malformed JSON is a 400 problem") {
    c.send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "hello");
    c.send("POST /json-echo HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\":[1]");
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(r->header("content-type") == "application/problem+json");
    CHECK(nlohmann::json::parse(r->body)["title"] == "Malformed JSON");
    c.send("POST /json-echo HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n{\"a\":[1]}");
    r = c.read_response();
    REQUIRE(r);
    CHECK(nlohmann::json::parse(r->body) == nlohmann::json{{"a", {1}}});
  }
  SECTION("a chunked request body arriving in pieces") {
    c.send("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    c.send("4;x=y\r\ndefg\r\n0\r\nTrailer: 1\r\n\r\n");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "abcdefg");
  }
}

TEST_CASE("server: keep-alive and HTTP/1.0", "[http][server]") {
  test_server s;
  add_basic_routes(s.routes());
  s.start();

  SECTION("many requests on one connection") {
    raw_client c(s.port());
    for (int i = 0; i < 50; ++i) {
      c.send(get_request("/plaintext"));
      auto r = c.read_response();
      REQUIRE(r);
      REQUIRE(r->body == "Hello, World!");
    }
    CHECK(s.server().stats().accepted == 1);
  }
  SECTION("HTTP/1.0 closes unless asked to keep alive") {
    raw_client c(s.port());
    c.send("GET /plaintext HTTP/1.0\r\n\r\n");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->header("connection") == "close");
    CHECK(c.closed_by_peer());
    raw_client k(s.port());
    k.send("GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = k.read_response();
    REQUIRE(r);
    CHECK(r->header("connection") == "keep-alive");
    k.send("GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(k.read_response());
  }
  SECTION("Connection: close is honoured") {
    raw_client c(s.port());
    c.send(get_request("/plaintext", "Connection: close\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->header("connection") == "close");
    CHECK(c.closed_by_peer());
  }
}

TEST_CASE("server: pipelined requests are answered in order", "[http][server]") {
  test_server s;
  add_basic_routes(s.routes());
  // A deferred handler that answers from another thread, to check that a slow response still keeps its place.
  s.routes().get("/slow/{n:int}", [](request& req, responder res) {
    const int n = req.param_as<int>("n");
    std::thread([n, res = std::move(res)]() mutable { res.send(response::text("slow " + std::to_string(n))); }).detach();
  });
  s.start();
  raw_client c(s.port());
  std::string batch;
  for (int i = 0; i < 16; ++i) {
    batch += i % 4 == 1 ? get_request("/slow/" + std::to_string(i)) : get_request("/user/" + std::to_string(i));
  }
  c.send(batch);
  for (int i = 0; i < 16; ++i) {
    auto r = c.read_response();
    REQUIRE(r);
    if (i % 4 == 1) CHECK(r->body == "slow " + std::to_string(i));
    else CHECK(nlohmann::json::parse(r->body)["id"] == i);
  }
}

// The chunked decoder consumes a chunk line or the trailer section only once it is whole (RFC 9112 §7.1): a read that
// ends inside one must make the server read on, not try the same bytes again (it once spun there for good).
TEST_CASE("server: a chunked request body that arrives a byte at a time", "[http][server]") {
  test_server s;
  add_basic_routes(s.routes());
  s.start();
  raw_client c(s.port());
  c.socket().set_option(asio::ip::tcp::no_delay(true));  // each byte in a segment of its own
  // The header alone first: the 100 shows that the server has read it and waits for the body.
  c.send("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
  auto interim = c.read_response();
  REQUIRE(interim);
  REQUIRE(interim->status == 100);
  for (const char byte : std::string_view("5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nTrailer: t\r\n\r\n")) {
    c.send(std::string_view(&byte, 1));
  }
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "hello world");
}

// A deferred response completed while the write of an earlier one is in flight (the client is not reading, so 16 MiB
// cannot go at once) must wait for that write, then follow it: it was once appended to the bytes being written,
// which freed them under the write, and dropped when the write ended.
TEST_CASE("server: a response completed while an earlier one is being written goes out after it", "[http][server]") {
  test_server s;
  std::promise<responder> parked;
  s.routes().get("/big", [](request&) { return response::text(std::string(16 << 20, 'b')); });
  s.routes().get("/later", [&](request&, responder res) { parked.set_value(std::move(res)); });
  server_options options;
  options.max_pending_output = 64 << 20;  // so that /later is handled while /big is still being written
  s.start(options);
  raw_client c(s.port());
  c.send(get_request("/big") + get_request("/later"));
  // /later's handler ran after /big's response was queued; its write starts when the handler returns.
  auto later = parked.get_future();
  REQUIRE(later.wait_for(10s) == std::future_status::ready);
  later.get().send(response::text("later"));
  auto big = c.read_response();
  REQUIRE(big);
  CHECK(big->body.size() == std::size_t{16} << 20);
  auto second = c.read_response();
  REQUIRE(second);
  CHECK(second->body == "later");
}

TEST_CASE("server: Expect: 100-continue", "[http][server]") {
  test_server s;
  add_basic_routes(s.routes());
  s.routes().post("/small", [](request& req) { return response::text(std::string(req.body())); }).body_limit(4);
  s.start();
  raw_client c(s.port());

  SECTION("the server asks for the body, then answers") {
    c.send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    auto interim = c.read_response();
    REQUIRE(interim);
    CHECK(interim->status == 100);
    c.send("hello");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "hello");
  }
  SECTION("a body over the route's limit is refused without 100") {
    c.send("POST /small HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 413);
    CHECK(r->header("connection") == "close");
  }
  // RFC 9110 §10.1.1: a server MUST ignore the expectation of an HTTP/1.0 client and MUST NOT send it a 1xx.
  SECTION("an HTTP/1.0 client gets no 100, only the final response") {
    c.send("POST /echo HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    // The body follows once the server has read the header alone (a 100 would have been written by then).
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (s.server().stats().requests == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    REQUIRE(s.server().stats().requests == 1);
    c.send("hello");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "hello");
    CHECK(c.closed_by_peer());
  }
}

TEST_CASE("server: malformed requests get their status and the connection closes", "[http][server]") {
  test_server s;
  add_basic_routes(s.routes());
  s.start();
  const std::vector<std::pair<std::string, unsigned>> cases = {
      {"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"GET /plaintext HTTP/1.1\r\n\r\n", 400},
      {"GET /plaintext HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(17000, 'a') + "\r\n\r\n", 431},
      {"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n", 413},
      {"GET /plaintext HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400},
  };
  for (const auto& [request, expected] : cases) {
    INFO(request.substr(0, 60));
    raw_client c(s.port());
    c.send(request);
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == expected);
    if (expected != 400 || r->header("content-type") == "application/problem+json") {
      CHECK(r->header("content-type") == "application/problem+json");
    }
    if (r->status != 404) CHECK((r->header("connection") == "close" || expected == 400));
    CHECK(c.closed_by_peer());
  }
}

// RFC 9112 §9.6: after the 413 the server discards what the client still sends, for `timeouts.close`, before it
// closes; had it closed with the body unread, the kernel's reset would destroy the answer before the client read it.
// (It used to stop discarding after 64 KiB.)
TEST_CASE("server: a client that sends a whole body over the limit before it reads still gets the 413",
          "[http][server]") {
  test_server s;
  add_basic_routes(s.routes());
  s.start();
  raw_client c(s.port());
  const std::string body(4 * 1024 * 1024, 'x');  // more than the socket buffers hold: sent as the server discards
  CHECK(c.try_send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                   body));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 413);
  CHECK(c.closed_by_peer());
}

// curl as the client of an upload: it asks with `Expect: 100-continue` for bodies over 1 MiB, and without the
// expectation sends the whole body before it reads.
TEST_CASE("server: curl uploads, with and without Expect: 100-continue", "[http][server][curl]") {
  REQUIRE(switchboard::test::have_program("curl"));
  test_server s;
  s.routes().post("/upload", [](request& req) { return response::text(std::to_string(req.body().size())); })
      .body_limit(8 * 1024 * 1024);
  s.routes().post("/small", [](request& req) { return response::text(std::to_string(req.body().size())); })
      .body_limit(1000);
  s.start();
  const std::string url = "http://127.0.0.1:" + std::to_string(s.port());
  const std::string file = std::string(SWITCHBOARD_TEST_BINARY_DIR) + "/upload-3MiB.bin";
  {
    std::ofstream out(file, std::ios::binary);
    out << std::string(3 * 1024 * 1024, 'u');
  }
  const auto curl = [&](const std::string& path, bool expect) {
    std::vector<std::string> argv{"curl", "-sv", "--max-time", "20", "-w", "\n%{http_code}", "--data-binary",
                                  "@" + file, url + path};
    if (!expect) argv.insert(argv.begin() + 1, {"-H", "Expect:"});
    return switchboard::test::run_process(argv);
  };
  const auto accepted = curl("/upload", true);
  CHECK(accepted.exit_code == 0);
  CHECK(accepted.out == "3145728\n200");
  CHECK(accepted.err.find("< HTTP/1.1 100 Continue") != std::string::npos);
  for (const bool expect : {true, false}) {
    INFO((expect ? "with" : "without") << " the expectation");
    const auto refused = curl("/small", expect);
    CHECK(refused.exit_code == 0);
    CHECK(refused.out.substr(refused.out.size() - 3) == "413");
    CHECK(refused.err.find("100 Continue") == std::string::npos);
  }
  std::remove(file.c_str());
}

TEST_CASE("server: a malformed path is a 400 but keeps the connection", "[http][server]") {
  test_server s;
  add_basic_routes(s.routes());
  s.start();
  raw_client c(s.port());
  c.send(get_request("/user/%zz"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 400);
  c.send(get_request("/user/7"));
  r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("server: handler errors", "[http][server]") {
  test_server s;
  s.routes().get("/throws", [](request&) -> response { throw std::runtime_error("secret internals"); });
  s.routes().get("/problem", [](request&) -> response { throw problem_error(status::conflict, "taken"); });
  s.routes().get("/inject", [](request& req) {
    response r = response::text("x");
    r.set("X-Echo", req.query());  // the query is percent-encoded, so it holds no CR/LF
    r.set("X-Bad", std::string("a\r\nSet-Cookie: evil=1"));
    return r;
  });
  s.routes().get("/forgot", [](request&, responder) { /* drops the responder */ });
  s.start();
  raw_client c(s.port());

  c.send(get_request("/throws"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 500);
  CHECK(r->body.find("secret") == std::string::npos);
  c.send(get_request("/problem"));
  r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 409);
  CHECK(nlohmann::json::parse(r->body)["detail"] == "taken");
  c.send(get_request("/inject?x"));
  r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 500);
  CHECK_FALSE(r->has_header("set-cookie"));
  c.send(get_request("/forgot"));
  r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 500);
  CHECK(s.server().stats().handler_errors >= 2);
}

TEST_CASE("server: a handler that answers with a 1xx or an invalid status gets a 500 in its place", "[http][server]") {
  // A 1xx is interim (RFC 9110 §15.2): sent as the answer, it would leave the client waiting for the final one.
  test_server s;
  s.routes().get("/continue", [](request&) { return response(status::continue_); });
  s.routes().get("/hints", [](request&) { return response(static_cast<status>(103)); });
  s.routes().get("/switch", [](request&) { return response(status::switching_protocols); });
  s.routes().get("/invalid", [](request&) { return response(static_cast<status>(600)); });
  s.start();
  raw_client c(s.port());
  for (const char* path : {"/continue", "/hints", "/switch", "/invalid"}) {
    INFO(path);
    c.send(get_request(path));
    const auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 500);
  }
  CHECK(s.server().stats().handler_errors == 4);
}

TEST_CASE("server: coroutine and deferred handlers", "[http][server]") {
  test_server s;
  s.routes().get("/co", [](request& req) -> asio::awaitable<response> {
    asio::steady_timer t(co_await asio::this_coro::executor, 5ms);
    co_await t.async_wait(asio::use_awaitable);
    co_return response::text("co " + std::string(req.query()));
  });
  std::promise<responder> parked;
  std::promise<void> cancelled;
  s.routes().get("/park", [&](request& req, responder res) {
    req.cancellation_slot().assign([&](asio::cancellation_type) { cancelled.set_value(); });
    parked.set_value(std::move(res));
  });
  s.start();

  raw_client c(s.port());
  c.send(get_request("/co?x=1"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->body == "co x=1");

  SECTION("a deferred response completed from another thread") {
    raw_client p(s.port());
    p.send(get_request("/park"));
    responder res = parked.get_future().get();
    std::thread([&res] { res.send(response::text("later")); }).join();
    r = p.read_response();
    REQUIRE(r);
    CHECK(r->body == "later");
  }
  SECTION("a client that goes away while its request is parked is noticed") {
    auto p = std::make_unique<raw_client>(s.port());
    p->send(get_request("/park"));
    responder res = parked.get_future().get();
    p.reset();  // close
    CHECK(cancelled.get_future().wait_for(10s) == std::future_status::ready);
    res.send(response::text("nobody listens"));  // dropped, no crash
  }
}

// The write deadline bounds a write only: once the response is out, the deadline of what the connection does next
// holds again. It used to stay, so that a deferred handler pipelined behind a written response (a long poll) was cut
// at the write deadline, and a header or body read meanwhile lost its own deadline.
TEST_CASE("server: the write deadline ends with the write", "[http][server][timeouts]") {
  test_server s;
  s.routes().get("/fast", [](request&) { return response::text("fast"); });
  s.routes().get("/park", [](request&, responder res) {
    // Answers after 1 s, from a timer: a short long poll, well past the write deadline.
    auto timer = std::make_shared<asio::steady_timer>(res.get_executor(), 1s);
    timer->async_wait([timer, res = std::move(res)](std::error_code) mutable { res.send(response::text("parked")); });
  });

  SECTION("a deferred handler pipelined behind a written response answers after the write deadline") {
    s.start({.timeouts = {.write = 300ms}});
    raw_client c(s.port());
    c.send(get_request("/fast") + get_request("/park"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "fast");
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "parked");
    CHECK(s.server().stats().timeouts == 0);
  }
  SECTION("a header that does not end after a written response still times out, without a write deadline") {
    s.start({.timeouts = {.header = 300ms, .write = 0ms}});
    raw_client c(s.port());
    c.send(get_request("/fast") + "GET /fast HTTP/1.1\r\nHost");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "fast");
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 408);
    CHECK(c.closed_by_peer());
  }
}

// `timeouts.body` is the longest wait for more of a body (as for a streamed one), not a bound on the whole body.
TEST_CASE("server: a body whose bytes keep coming is read past the body timeout", "[http][server][timeouts]") {
  test_server s;
  s.routes().post("/echo", [](request& req) { return response::text(std::string(req.body())); });
  s.start({.timeouts = {.body = 600ms}});
  const std::string body = "0123456789ab";  // a byte every 100 ms: 1.2 s in all, twice the body timeout

  asio::io_context ctx;
  asio::ip::tcp::socket socket(ctx);
  socket.connect({asio::ip::make_address("127.0.0.1"), s.port()});
  asio::write(socket, asio::buffer("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n"sv));
  std::string reply;
  bool ended = false;
  char buffer[4096];
  std::function<void()> read = [&] {
    socket.async_read_some(asio::buffer(buffer), [&](std::error_code ec, std::size_t n) {
      if (ec) {
        ended = true;
        return;
      }
      reply.append(buffer, n);
      read();
    });
  };
  read();
  asio::steady_timer pace(ctx);
  std::size_t sent = 0;
  std::function<void()> drip = [&] {
    pace.expires_after(100ms);
    pace.async_wait([&](std::error_code ec) {
      if (ec || ended || !reply.empty()) return;  // answered (a 408) before the body was whole
      asio::write(socket, asio::buffer(&body[sent], 1), ec);
      if (!ec && ++sent < body.size()) drip();
    });
  };
  drip();
  REQUIRE(switchboard::test::run_until(ctx, [&] { return ended || reply.ends_with("\r\n\r\n" + body); }, 20s));
  CHECK(reply.rfind("HTTP/1.1 200 ", 0) == 0);
  CHECK(sent == body.size());
}

// RFC 9112 §9.6: after an error response the server half-closes and discards what the client still sends, for
// `timeouts.close`. The clock used to park such a connection as idle (it is idle in a sense), which cancelled its read
// and closed it: the client's next bytes met a reset, which can destroy the response before the client reads it.
TEST_CASE("server: a lingering close lasts while the clock parks idle connections", "[http][server]") {
  test_server s;
  s.routes().post("/small", [](request& req) { return response::text(std::string(req.body())); }).body_limit(4);
  // Idle connections park at the first tick of the clock, which runs every 50 ms (a quarter of the idle timeout).
  s.start({.timeouts = {.idle = 200ms, .park_idle_after = 0ms, .close = 20s}});
  raw_client c(s.port());
  c.send("POST /small HTTP/1.1\r\nHost: h\r\nContent-Length: 100000000\r\n\r\n");
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 413);
  // A connection opened now is closed at its idle timeout, after several ticks of the clock: each would have parked
  // the lingering connection.
  raw_client witness(s.port());
  CHECK(witness.closed_by_peer());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (s.server().stats().active > 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(s.server().stats().active == 1);  // the lingering connection, still open
  const std::string block(4096, 'x');
  for (int i = 0; i < 16; ++i) CHECK(c.try_send(block));  // still read and discarded
}

// The connection limit counts the connections of every thread, and each thread pauses its own acceptor when an accept
// reaches it. When the count fell below the limit, only the thread whose connection closed used to resume: a thread
// that had paused and whose own connections had all closed meanwhile (while the others kept the count at the limit)
// stayed paused, and the connections the kernel queued on its acceptor were never accepted.
TEST_CASE("server: every thread accepts again once the connection count is below the limit", "[http][server]") {
  test_server s(2);
  std::mutex mutex;
  std::condition_variable changed;
  std::map<int, std::thread::id> served;  // client number: the thread that served it
  s.routes().get("/who/{n:int}", [&](request& req) {
    {
      const std::lock_guard lock(mutex);
      served[req.param_as<int>("n")] = std::this_thread::get_id();
    }
    changed.notify_all();
    return response::text("ok");
  });
  server_options options;
  options.max_connections = 2;
  s.start(options);
  if (!s.server().sharded()) {
    WARN("no SO_REUSEPORT: one acceptor for both threads");
    return;
  }
  // The kernel spreads the connections over the two threads' acceptors. Each accepts until an accept reaches the
  // limit: one thread gets two connections, the other one (the count reaches 3), and both pause.
  constexpr int clients = 32;
  std::vector<std::unique_ptr<raw_client>> cs;
  for (int i = 0; i < clients; ++i) {
    cs.push_back(std::make_unique<raw_client>(s.port(), 5s));
    cs.back()->send(get_request("/who/" + std::to_string(i)));
  }
  std::map<std::thread::id, std::vector<int>> by_thread;
  {
    std::unique_lock lock(mutex);
    REQUIRE(changed.wait_for(lock, 10s, [&] { return served.size() == 3; }));
    for (const auto& [n, thread] : served) by_thread[thread].push_back(n);
  }
  REQUIRE(by_thread.size() == 2);
  const auto lone =
      std::find_if(by_thread.begin(), by_thread.end(), [](const auto& t) { return t.second.size() == 1; });
  REQUIRE(lone != by_thread.end());
  // That thread's only connection closes while the server is still at its limit (3 open, then 2): it stays paused.
  cs[static_cast<std::size_t>(lone->second.front())].reset();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (s.server().stats().active > 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  REQUIRE(s.server().stats().active == 2);
  cs.clear();  // then the other thread's: the count falls below the limit
  // Connections one at a time from now: whichever acceptor the kernel gives each to, it is accepted.
  for (int i = 0; i < 20; ++i) {
    INFO("connection " << i);
    raw_client c(s.port(), 5s);
    c.send(get_request("/who/100"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
  }
}

namespace {

// Responders handed over by deferred handlers, taken by the test in order.
class parked_responders {
 public:
  void put(responder r) {
    const std::lock_guard lock(mutex_);
    parked_.push_back(std::move(r));
    changed_.notify_all();
  }
  responder take() {
    std::unique_lock lock(mutex_);
    REQUIRE(changed_.wait_for(lock, 10s, [&] { return !parked_.empty(); }));
    responder r = std::move(parked_.front());
    parked_.pop_front();
    return r;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<responder> parked_;
};

}  // namespace

// responder::release_request lets a handler that answers later (a parked long poll) give back the request's
// memory: the response then gets a fresh exchange, framed from what the connection kept of the request.
TEST_CASE("server: a deferred handler that releases its request", "[http][server]") {
  test_server s;
  parked_responders parked;
  std::promise<void> cancelled;
  s.routes().get("/release", [&](request& req, responder res) {
    req.cancellation_slot().assign([&](asio::cancellation_type) { cancelled.set_value(); });
    res.release_request();
    parked.put(std::move(res));
  });
  s.routes().get("/release-later", [&](request&, responder res) { parked.put(std::move(res)); });
  s.routes().get("/plaintext", [](request&) { return response::text("Hello, World!"); });
  auto tagged = s.routes().group("/tagged");
  tagged.after([](request& req, response& res) { res.set("X-Tag", std::string(req.header("x-tag"))); });
  tagged.get("/release", [&](request&, responder res) {
    res.release_request();  // ignored: the after-middleware reads the request when the response comes
    parked.put(std::move(res));
  });
  s.start();
  raw_client c(s.port());
  // The connection goes on serving requests after the released one's response.
  const auto still_serves = [&c] {
    c.send(get_request("/plaintext"));
    auto next = c.read_response();
    REQUIRE(next);
    CHECK(next->body == "Hello, World!");
  };

  SECTION("the response comes later, from another thread, and the connection stays usable") {
    c.send(get_request("/release"));
    responder res = parked.take();
    std::thread([&res] { res.send(response::text("later")); }).join();
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "later");
    CHECK(r->header("content-length") == "5");
    still_serves();
  }
  SECTION("a HEAD request gets the head only") {
    c.send("HEAD /release HTTP/1.1\r\nHost: localhost\r\n\r\n");
    parked.take().send(response::text("later"));
    auto r = c.read_response(true);
    REQUIRE(r);
    CHECK(r->header("content-length") == "5");
    CHECK(r->body.empty());
    still_serves();
  }
  SECTION("an HTTP/1.0 request still closes the connection after its response") {
    c.send("GET /release HTTP/1.0\r\n\r\n");
    parked.take().send(response::text("later"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "later");
    CHECK(c.closed_by_peer());
  }
  SECTION("a client that goes away is still noticed") {
    auto gone = std::make_unique<raw_client>(s.port());
    gone->send(get_request("/release"));
    responder res = parked.take();
    gone.reset();
    CHECK(cancelled.get_future().wait_for(10s) == std::future_status::ready);
    res.send(response::text("nobody listens"));  // dropped, no crash
  }
  SECTION("a release from another thread, after the handler has returned") {
    c.send(get_request("/release-later"));
    responder res = parked.take();
    std::thread([&res] {
      res.release_request();
      res.send(response::text("released, then answered"));
    }).join();
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "released, then answered");
  }
  SECTION("after-middleware keeps the request: the release is ignored") {
    c.send(get_request("/tagged/release", "X-Tag: kept\r\n"));
    parked.take().send(response::text("tagged"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == "tagged");
    CHECK(r->header("x-tag") == "kept");
  }
  SECTION("a request pipelined behind a released one is answered after it") {
    c.send(get_request("/release") + get_request("/plaintext"));
    parked.take().send(response::text("first"));
    auto first = c.read_response();
    auto second = c.read_response();
    REQUIRE(first);
    REQUIRE(second);
    CHECK(first->body == "first");
    CHECK(second->body == "Hello, World!");
  }
}

// After a deferred response, the connection's wait for a disconnect goes on as its wait for the next request. When
// the clock then parks the idle connection it cancels that wait: the connection must park, not close (it closed
// every keep-alive connection whose handler had taken longer than the park delay).
TEST_CASE("server: a connection idle after a deferred response parks and serves its next request",
          "[http][server]") {
  test_server s;
  std::promise<responder> parked;
  s.routes().get("/park", [&](request&, responder res) { parked.set_value(std::move(res)); });
  s.routes().get("/now", [](request&) { return response::text("now"); });
  // Park at the first check of the clock, which runs every 100 ms (a quarter of the shortest timeout).
  s.start({.timeouts = {.header = 400ms, .park_idle_after = 0ms}});

  raw_client c(s.port());
  c.send(get_request("/park"));
  parked.get_future().get().send(response::text("later"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->body == "later");
  // Several ticks of the clock: the connection parks meanwhile, and must stay open.
  c.set_timeout(1s);
  CHECK_FALSE(c.closed_by_peer());
  c.send(get_request("/now"));
  r = c.read_response();
  REQUIRE(r);
  CHECK(r->body == "now");
}

namespace {

// Parks every request to /park/{n}; once `expected` are parked, answers them all from the server's own thread (as a
// publish answers parked long polls), in the reverse order, each with "answer n". Runs on the server's thread only.
class answer_all_at_once {
 public:
  answer_all_at_once(router& routes, std::size_t expected, std::function<void()> after = {})
      : expected_(expected), after_(std::move(after)) {
    routes.get("/park/{n:int}", [this](request& req, responder res) {
      parked_.emplace_back(req.param_as<int>("n"), std::move(res));
      if (parked_.size() < expected_) return;
      // Later, in a turn of its own: not from this handler's call, which would answer this request directly.
      asio::post(parked_.back().second.get_executor(), [this] {
        for (auto it = parked_.rbegin(); it != parked_.rend(); ++it) {
          it->second.send(response::text("answer " + std::to_string(it->first)));
        }
        parked_.clear();
        if (after_) after_();
      });
    });
  }

 private:
  std::size_t expected_;
  std::function<void()> after_;
  std::vector<std::pair<int, responder>> parked_;
};

}  // namespace

// Deferred responses sent from the server's own thread are handed to their connections together, in one posted
// turn of the event loop (server_shard::post_response): each must still reach its own client, in order with the
// requests pipelined behind it.
TEST_CASE("server: many deferred responses sent at once from the server's thread", "[http][server]") {
  constexpr int clients = 64;
  test_server s;
  answer_all_at_once answers(s.routes(), clients);
  s.routes().get("/plaintext", [](request&) { return response::text("Hello, World!"); });
  s.start();
  std::vector<std::unique_ptr<raw_client>> cs;
  for (int i = 0; i < clients; ++i) {
    cs.push_back(std::make_unique<raw_client>(s.port()));
    cs.back()->send(get_request("/park/" + std::to_string(i)) + get_request("/plaintext"));
  }
  for (int i = 0; i < clients; ++i) {
    auto first = cs[i]->read_response();
    auto second = cs[i]->read_response();
    REQUIRE(first);
    REQUIRE(second);
    CHECK(first->body == "answer " + std::to_string(i));
    CHECK(second->body == "Hello, World!");
  }
}

// The event loop stops with those responses handed over but not yet delivered: destroying the io_context destroys
// the queued turn, which must let the connections go (they hold the server's shard; LeakSanitizer would report
// them and the shard in the sanitizer build).
TEST_CASE("server: deferred responses still queued when the event loop stops are released", "[http][server]") {
  constexpr int clients = 8;
  auto context = std::make_unique<asio::io_context>(1);
  router routes;
  answer_all_at_once answers(routes, clients, [&context] { context->stop(); });
  auto srv = std::make_unique<http::server>(context->get_executor(), routes);
  srv->start();
  std::thread loop([&context] { context->run(); });
  std::vector<std::unique_ptr<raw_client>> cs;
  for (int i = 0; i < clients; ++i) {
    cs.push_back(std::make_unique<raw_client>(srv->local_endpoint().port()));
    cs.back()->send(get_request("/park/" + std::to_string(i)));
  }
  loop.join();  // returns once the answers were sent and the loop stopped, before they could be delivered
  srv.reset();
  context.reset();
  for (auto& c : cs) CHECK_FALSE(c->read_response());  // the connections closed with nothing delivered
}

// A drain stops the server's clock, also when a tick fell due while the event loop was busy: that tick's completion
// is queued, with success, before the drain cancels the timer, and it used to arm the timer again, so that the loop
// never ran out of work (a runtime's threads never returned; CI met it at the end of a push hub test).
TEST_CASE("server: a drain stops the clock even when a tick is already due", "[http][server]") {
  asio::io_context context(1);
  router routes;
  server_options options;
  options.timeouts.header = 40ms;  // the clock ticks every quarter of it
  http::server srv(context.get_executor(), routes, options);
  srv.start();
  switchboard::test::poll(context);  // the clock is armed
  const auto outcome = switchboard::test::drain_while_a_tick_is_due(context, srv, 50ms);
  CHECK(outcome.drained);
  CHECK(outcome.loop_ran_out);
}

TEST_CASE("server: streamed responses and request bodies", "[http][server]") {
  test_server s;
  s.routes().get("/stream", [](request&) {
    return response::stream("text/plain", [](body_writer& w) -> asio::awaitable<void> {
      for (int i = 0; i < 5; ++i) co_await w.async_write("part" + std::to_string(i) + ";", asio::use_awaitable);
      co_await w.async_write(shared_bytes(std::string(20000, 'z')), asio::use_awaitable);
    });
  });
  // A producer that returns without awaiting its last write: the write still goes out, then the stream ends.
  s.routes().get("/unawaited", [](request&) {
    return response::stream("text/plain", [](body_writer& w) -> asio::awaitable<void> {
      w.async_write(std::string(32 << 20, 'q'), [](std::error_code) {});  // more than the socket takes at once
      co_return;
    });
  });
  s.routes()
      .post("/upload",
            [](request& req) -> asio::awaitable<response> {
              std::size_t total = 0, pieces = 0, largest = 0;
              for (;;) {
                auto piece = co_await req.async_read_some(asio::use_awaitable);
                if (piece.empty()) break;
                total += piece.size();
                largest = std::max(largest, piece.size());
                ++pieces;
              }
              co_return response::json({{"bytes", total}, {"pieces", pieces}, {"largest", largest}});
            })
      .stream_body()
      .body_limit(64 * 1024 * 1024);
  s.start();
  raw_client c(s.port());

  SECTION("chunked response") {
    c.send(get_request("/stream"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->header("transfer-encoding") == "chunked");
    CHECK(r->body == "part0;part1;part2;part3;part4;" + std::string(20000, 'z'));
    c.send(get_request("/stream"));  // still in step
    CHECK(c.read_response());
  }
  SECTION("a producer that returns with its write in flight ends the stream, and the connection goes on") {
    // Pipelined: the second request waits in the read buffer, and only the end of the stream can start it (the
    // write's completion used to take the place of that, and the connection waited for bytes that never came).
    c.send(get_request("/unawaited") + get_request("/stream"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == std::string(32 << 20, 'q'));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->body.ends_with(std::string(20000, 'z')));
  }
  SECTION("HTTP/1.0 gets the body raw, then the connection closes") {
    c.send("GET /stream HTTP/1.0\r\n\r\n");
    const std::string all = c.read_until_close();
    CHECK(all.find("Transfer-Encoding") == std::string::npos);
    CHECK(all.find("part0;part1;part2;part3;part4;zzz") != std::string::npos);
  }
  // RFC 9110 §8.6: the length of the GET's body is not known, so the HEAD response sends none (it used to send 0).
  SECTION("HEAD gets the head without a Content-Length") {
    c.send("HEAD /stream HTTP/1.1\r\nHost: h\r\n\r\n");
    auto r = c.read_response(/*head_request=*/true);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->header("content-type") == "text/plain");
    CHECK_FALSE(r->has_header("content-length"));
    CHECK(r->body.empty());
    c.send(get_request("/stream"));  // still in step
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->body.ends_with(std::string(20000, 'z')));
  }
  SECTION("a 32 MiB upload is read in pieces, never buffered whole") {
    const std::size_t size = 32 * 1024 * 1024;
    c.send("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(size) + "\r\nExpect: 100-continue\r\n\r\n");
    auto interim = c.read_response();
    REQUIRE(interim);
    REQUIRE(interim->status == 100);
    const std::string block(1 << 20, 'u');
    for (std::size_t sent = 0; sent < size; sent += block.size()) c.send(block);
    auto r = c.read_response();
    REQUIRE(r);
    const auto j = nlohmann::json::parse(r->body);
    CHECK(j["bytes"] == size);
    CHECK(j["pieces"].get<std::size_t>() > 100);  // read incrementally
    CHECK(j["largest"].get<std::size_t>() <= 1024 * 1024);  // each piece at most one read buffer, not the body
  }
}

TEST_CASE("server: statistics exported as Prometheus metrics", "[http][server][metrics]") {
  metrics_registry registry;
  test_server s;
  add_basic_routes(s.routes());
  s.routes().get("/metrics", metrics_handler(registry));
  s.start();
  s.server().export_metrics(registry, "api");
  raw_client c(s.port());
  c.send(get_request("/plaintext"));
  REQUIRE(c.read_response());
  c.send(get_request("/missing"));
  REQUIRE(c.read_response());
  c.send(get_request("/metrics"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(r->body.find("# TYPE switchboard_http_requests_total counter") != std::string::npos);
  CHECK(r->body.find("switchboard_http_requests_total{server=\"api\"} 3") != std::string::npos);
  CHECK(r->body.find("switchboard_http_responses_total{class=\"2xx\",server=\"api\"} 1") != std::string::npos);
  CHECK(r->body.find("switchboard_http_responses_total{class=\"4xx\",server=\"api\"} 1") != std::string::npos);
  CHECK(r->body.find("switchboard_http_connections_active{server=\"api\"} 1") != std::string::npos);
}

TEST_CASE("server: a 101 response hands the connection to another protocol", "[http][server][upgrade]") {
  test_server s;
  // A toy protocol: after the upgrade, the server echoes every byte back in upper case.
  s.routes().get("/shout", [](request&) {
    return response::upgrade("shout", [](upgraded_connection&& c) {
      auto socket = std::make_shared<asio::ip::tcp::socket>(std::move(std::get<asio::ip::tcp::socket>(c.stream)));
      auto buffer = std::make_shared<std::string>(std::move(c.leftover));
      auto echo = std::make_shared<std::function<void()>>();
      *echo = [socket, buffer, echo] {
        for (char& ch : *buffer) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        asio::write(*socket, asio::buffer(*buffer));
        buffer->resize(4096);
        socket->async_read_some(asio::buffer(*buffer), [socket, buffer, echo](std::error_code ec, std::size_t n) {
          if (ec) {
            *echo = nullptr;  // break the cycle
            return;
          }
          buffer->resize(n);
          (*echo)();
        });
      };
      socket->non_blocking(false);
      (*echo)();
    });
  });
  s.start();
  raw_client c(s.port());
  // The request and the first bytes of the new protocol arrive together.
  c.send("GET /shout HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nhello");
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 101);
  CHECK(r->header("connection") == "upgrade");
  CHECK(r->header("upgrade") == "shout");
  CHECK_FALSE(r->has_header("content-length"));
  CHECK(c.read_bytes(5) == "HELLO");
  c.send("again");
  CHECK(c.read_bytes(5) == "AGAIN");
  CHECK(s.server().stats().active == 0);  // no longer the HTTP server's

  SECTION("a request that did not ask to upgrade gets no 101") {
    raw_client plain(s.port());
    plain.send(get_request("/shout"));
    auto p = plain.read_response();
    REQUIRE(p);
    CHECK(p->status == 500);
  }
  SECTION("nor does an HTTP/1.0 request, whose Upgrade is ignored (RFC 9110 §7.8)") {
    raw_client old(s.port());
    old.send("GET /shout HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n");
    auto p = old.read_response();
    REQUIRE(p);
    CHECK(p->status == 500);
  }
}

TEST_CASE("server: the Server field, once, and a server_header that is not a field value", "[http][server]") {
  test_server s;
  s.routes().get("/plain", [](request&) { return response::text("plain"); });
  s.routes().get("/own", [](request&) {
    response r = response::text("own");
    r.set("Server", "handler/1.0");
    return r;
  });
  server_options o;
  o.server_header = "switchboard";
  s.start(o);
  raw_client c(s.port());
  c.send(get_request("/plain") + get_request("/own"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->header("server") == "switchboard");
  r = c.read_response();
  REQUIRE(r);
  CHECK(r->header("server") == "handler/1.0");  // the handler's own, alone (RFC 9110 §10.2.4: one Server field)
  CHECK(std::count_if(r->fields.begin(), r->fields.end(), [](const auto& f) {
          return f.first.size() == 6 && (f.first[0] | 0x20) == 's' && f.first.substr(1) == "erver";
        }) == 1);

  // Written into every response head: CR or LF there would add fields to every response.
  runtime rt({.threads = 1, .handle_signals = false});
  router routes;
  server_options bad;
  bad.server_header = "sb\r\nSet-Cookie: injected=1";
  CHECK_THROWS_AS(server(rt, routes, bad), std::invalid_argument);
}

TEST_CASE("server: a 205 goes out without its content, framed by Content-Length: 0", "[http][server]") {
  test_server s;
  s.routes().post("/form", [](request&) { return response::text("not to be sent", status{205}); });
  s.start();
  raw_client c(s.port());
  c.send("POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n" + get_request("/form"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 205);
  CHECK(r->header("content-length") == "0");
  CHECK(r->body.empty());
  r = c.read_response();  // the connection stays in step
  REQUIRE(r);
  CHECK(r->status == 405);
}
