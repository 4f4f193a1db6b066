// The HTTP client against our server and against scripted raw servers (for failures a real server rarely shows).
#include <switchboard/http/client.hpp>

#include "client_support.hpp"
#include "support/catch.hpp"
#include "support/eventually.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"
#include "support/test_support.hpp"

#include <asio/buffers_iterator.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/ssl/error.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iterator>
#include <random>
#include <thread>

using namespace std::chrono_literals;
using namespace switchboard;
using namespace switchboard::http;
using switchboard::test::run_until;
using switchboard::test::test_server;

using result = switchboard::test::client_result;
using switchboard::test::answer;
using switchboard::test::capture;
using switchboard::test::scripted_server;

namespace {

// Whether `ctx` runs out of work (its run returns) within a deadline: nothing of the client's is left pending.
bool runs_out_of_work(asio::io_context& ctx) {
  ctx.restart();
  ctx.run_for(10s);
  return ctx.stopped();
}

// The file descriptors this process has open (those of other threads included: call it while they open none).
std::size_t open_fds() {
  const std::filesystem::directory_iterator entries("/proc/self/fd");
  return static_cast<std::size_t>(std::distance(begin(entries), end(entries)));
}

}  // namespace

TEST_CASE("client: requests against our server, keep-alive reuse", "[http][client]") {
  test_server s;
  s.routes().get("/hello", [](request&) { return response::text("Hello"); });
  s.routes().post("/echo", [](request& req) {
    return response::json({{"body", req.body()}, {"type", req.header("content-type")}});
  });
  s.start();
  const std::string base = "http://127.0.0.1:" + std::to_string(s.port());
  asio::io_context ctx;
  client c(ctx.get_executor());

  for (int i = 0; i < 10; ++i) {
    result r;
    c.async_get(base + "/hello", capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    REQUIRE_FALSE(r.ec);
    CHECK(r.response.status == status::ok);
    CHECK(r.response.body == "Hello");
    CHECK(r.response.headers.get("content-type") == "text/plain; charset=utf-8");
  }
  CHECK(c.connections_opened() == 1);

  result post;
  c.async_post(base + "/echo", "{\"x\":1}", "application/json", capture(post));
  REQUIRE(run_until(ctx, [&] { return post.done; }));
  REQUIRE_FALSE(post.ec);
  CHECK(nlohmann::json::parse(post.response.body) == nlohmann::json{{"body", "{\"x\":1}"}, {"type", "application/json"}});

  result head;
  c.async_request(base + "/hello", client_request{.method = method::head}, capture(head));
  REQUIRE(run_until(ctx, [&] { return head.done; }));
  REQUIRE_FALSE(head.ec);
  CHECK(head.response.body.empty());
  CHECK(head.response.headers.get("content-length") == "5");

  result missing;
  c.async_get(base + "/missing", capture(missing));
  REQUIRE(run_until(ctx, [&] { return missing.done; }));
  REQUIRE_FALSE(missing.ec);
  CHECK(missing.response.status == status::not_found);

  result bad;
  c.async_get("ftp://127.0.0.1/", capture(bad));
  REQUIRE(run_until(ctx, [&] { return bad.done; }));
  CHECK(bad.ec == asio::error::invalid_argument);
}

TEST_CASE("client: coroutines, and the pool bound per origin", "[http][client]") {
  test_server s;
  s.routes().get("/slow", [](request&) -> asio::awaitable<response> {
    asio::steady_timer t(co_await asio::this_coro::executor, 20ms);
    co_await t.async_wait(asio::use_awaitable);
    co_return response::text("ok");
  });
  s.start();
  const std::string url = "http://127.0.0.1:" + std::to_string(s.port()) + "/slow";
  asio::io_context ctx;
  client c(ctx.get_executor(), {.max_connections_per_origin = 3});
  int ok = 0;
  for (int i = 0; i < 12; ++i) {
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
      auto r = co_await c.async_get(url, asio::use_awaitable);
      if (r.body == "ok") ++ok;
    }, asio::detached);
  }
  REQUIRE(run_until(ctx, [&] { return ok == 12; }, 20s));
  CHECK(c.connections_opened() <= 3);
  CHECK(c.open_connections("http://127.0.0.1:" + std::to_string(s.port())) <= 3);
}

// Requests waiting for a connection of a full pool sleep until one is released, each until its own deadline, and
// are served first come, first served.
TEST_CASE("client: requests waiting for a connection", "[http][client]") {
  asio::io_context ctx;
  switchboard::test::holding_server srv(ctx);
  client c(ctx.get_executor(), {.max_connections_per_origin = 1, .total_timeout = 60s, .max_retries = 0});
  std::vector<result> results(5);
  asio::cancellation_signal cancel;  // for request 2
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i == 2) c.async_get(srv.url(), asio::bind_cancellation_slot(cancel.slot(), capture(results[i])));
    else c.async_get(srv.url(), capture(results[i]));
  }
  REQUIRE(run_until(ctx, [&] { return srv.held() == 1; }));
  // The waiting requests wait without waking each other: the io_context falls idle.
  REQUIRE(run_until(ctx, [&] { return switchboard::test::poll(ctx) == 0; }));
  // One leaves the line; the others keep their places.
  cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(ctx, [&] { return results[2].done; }));
  CHECK(results[2].ec == asio::error::operation_aborted);
  // The others are served in the order they came.
  for (const std::size_t i : {0, 1, 3}) {
    INFO("request " << i);
    srv.answer_first();
    REQUIRE(run_until(ctx, [&] { return results[i].done; }));
    CHECK(results[i].response.body == "ok");
    for (std::size_t later = i + 1; later < results.size(); ++later) CHECK(results[later].done == (later == 2));
    REQUIRE(run_until(ctx, [&] { return srv.held() == 1; }));
  }
  // A request waiting in line fails at its deadline (another client, of shorter deadlines, to the same server).
  client_options short_deadline{.max_connections_per_origin = 1, .total_timeout = 100ms, .max_retries = 0};
  client impatient(ctx.get_executor(), short_deadline);
  std::vector<result> late(2);
  for (auto& r : late) impatient.async_get(srv.url(), capture(r));
  REQUIRE(run_until(ctx, [&] { return late[0].done && late[1].done; }));
  CHECK(late[0].ec == switchboard::error::timeout);  // its connection is held unanswered
  CHECK(late[1].ec == switchboard::error::timeout);  // it never had one
  srv.answer_first();
  REQUIRE(run_until(ctx, [&] { return results[4].done; }));
  CHECK(results[4].response.body == "ok");
}

TEST_CASE("client: streamed response bodies", "[http][client]") {
  test_server s;
  s.routes().get("/stream", [](request&) {
    return response::stream("text/plain", [](body_writer& w) -> asio::awaitable<void> {
      for (int i = 0; i < 100; ++i) co_await w.async_write(std::string(1000, static_cast<char>('a' + i % 26)), asio::use_awaitable);
    });
  });
  s.start();
  asio::io_context ctx;
  client c(ctx.get_executor());
  std::size_t total = 0, pieces = 0;
  result r;
  c.async_request("http://127.0.0.1:" + std::to_string(s.port()) + "/stream", {},
                  [&](std::string_view piece) {
                    total += piece.size();
                    ++pieces;
                  },
                  capture(r));
  REQUIRE(run_until(ctx, [&] { return r.done; }));
  REQUIRE_FALSE(r.ec);
  CHECK(total == 100'000);
  CHECK(pieces > 1);
  CHECK(r.response.body.empty());
}

TEST_CASE("client: retries and timeouts", "[http][client]") {
  asio::io_context ctx;

  SECTION("an idempotent request is retried after the connection fails") {
    scripted_server srv(ctx, [](asio::ip::tcp::socket& s, std::size_t i) {
      if (i == 0) s.close();  // the first connection dies without an answer
      else answer(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    client c(ctx.get_executor(), {.retry_backoff = 1ms});
    result r;
    c.async_get(srv.url(), capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    REQUIRE_FALSE(r.ec);
    CHECK(r.response.body == "ok");
    CHECK(srv.connections() == 2);
  }
  SECTION("a POST that was sent is not retried") {
    scripted_server srv(ctx, [](asio::ip::tcp::socket& s, std::size_t) { s.close(); });
    client c(ctx.get_executor(), {.retry_backoff = 1ms});
    result r;
    c.async_post(srv.url(), "x", "text/plain", capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec);
    CHECK(srv.connections() == 1);
  }
  SECTION("a response cut after its header is not retried: part of its body may be with the sink already") {
    scripted_server srv(ctx, [](asio::ip::tcp::socket& s, std::size_t i) {
      if (i > 0) return answer(s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
      answer(s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234");
      s.close();  // half the body, then the connection ends
    });
    client c(ctx.get_executor(), {.retry_backoff = 1ms});
    std::string streamed;
    result r;
    c.async_request(srv.url(), {}, [&](std::string_view piece) { streamed += piece; }, capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec == http::error::partial_message);
    CHECK(streamed == "01234");  // not "01234" and then the whole body again
    CHECK(srv.connections() == 1);
  }
  SECTION("retries stop after max_retries") {
    scripted_server srv(ctx, [](asio::ip::tcp::socket& s, std::size_t) { s.close(); });
    client c(ctx.get_executor(), {.max_retries = 3, .retry_backoff = 1ms});
    result r;
    c.async_get(srv.url(), capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec);
    CHECK(srv.connections() == 4);
  }
  SECTION("a retry that could only start after the deadline is not made") {
    scripted_server srv(ctx, [](asio::ip::tcp::socket& s, std::size_t) { s.close(); });
    client c(ctx.get_executor(), {.total_timeout = 300ms, .max_retries = 3, .retry_backoff = 10s});
    result r;
    c.async_get(srv.url(), capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec == asio::error::connection_reset);  // the failure it had, not a timeout after the wait
    CHECK(srv.connections() == 1);
  }
  SECTION("a request cancelled while it waits to retry is aborted") {
    scripted_server srv(ctx, [](asio::ip::tcp::socket& s, std::size_t) { s.close(); });
    client c(ctx.get_executor(), {.max_retries = 3, .retry_backoff = 10s});
    asio::cancellation_signal cancel;
    result r;
    c.async_get(srv.url(), asio::bind_cancellation_slot(cancel.slot(), capture(r)));
    REQUIRE(run_until(ctx, [&] { return srv.connections() == 1; }));
    REQUIRE(run_until(ctx, [&] { return switchboard::test::poll(ctx) == 0; }));  // in its wait to retry
    REQUIRE_FALSE(r.done);
    cancel.emit(asio::cancellation_type::terminal);
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec == asio::error::operation_aborted);
  }
  SECTION("a server that never answers hits the total timeout") {
    scripted_server srv(ctx, [](asio::ip::tcp::socket&, std::size_t) {});
    client c(ctx.get_executor(), {.total_timeout = 200ms});
    result r;
    c.async_get(srv.url(), capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec == switchboard::error::timeout);
  }
  SECTION("interim 1xx responses are skipped") {
    scripted_server srv(ctx, [](asio::ip::tcp::socket& s, std::size_t) {
      answer(s, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
    });
    client c(ctx.get_executor());
    result r;
    c.async_get(srv.url(), capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    REQUIRE_FALSE(r.ec);
    CHECK(r.response.status == status::ok);
    CHECK(r.response.body == "done");
  }
  SECTION("a malformed response is an error") {
    scripted_server srv(ctx, [](asio::ip::tcp::socket& s, std::size_t) {
      answer(s, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    });
    client c(ctx.get_executor());
    result r;
    c.async_get(srv.url(), capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec == http::error::content_length_and_transfer_encoding);
  }
  SECTION("cancellation aborts a request") {
    scripted_server srv(ctx, [](asio::ip::tcp::socket&, std::size_t) {});
    client c(ctx.get_executor());
    asio::cancellation_signal cancel;
    result r;
    c.async_get(srv.url(), asio::bind_cancellation_slot(cancel.slot(), capture(r)));
    REQUIRE(run_until(ctx, [&] { return srv.connections() == 1; }));
    cancel.emit(asio::cancellation_type::terminal);
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec == asio::error::operation_aborted);
  }
}

// The host lookup is part of the connect phase: one that does not answer (a DNS server gone quiet; getaddrinfo cannot
// be interrupted) fails the request at the connect timeout, or the total timeout where that comes first. Its answer,
// if one ever comes, is dropped, whether or not the client is still there, and nothing is left behind.
TEST_CASE("client: a lookup that does not answer fails the request at the connect deadline", "[http][client]") {
  asio::io_context ctx;
  std::vector<resolve_handler> asked;  // the lookups' answer handlers, not called yet
  client_options o{.max_retries = 2, .resolve = [&](const std::string&, std::uint16_t, resolve_handler answer) {
                     asked.push_back(std::move(answer));
                   }};
  SECTION("the connect timeout") {
    o.connect_timeout = 50ms;
    o.total_timeout = 1h;
  }
  SECTION("the total timeout, which comes first") {
    o.connect_timeout = 1h;
    o.total_timeout = 50ms;
  }
  const std::string url = "http://quiet.invalid/";
  const asio::ip::tcp::endpoint nowhere{asio::ip::make_address("127.0.0.1"), 9};
  {
    client c(ctx.get_executor(), o);
    result r;
    c.async_get(url, capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec == switchboard::error::timeout);
    CHECK(asked.size() == 1);  // a timeout is not retried
    CHECK(c.open_connections("http://quiet.invalid:80") == 0);
    CHECK(c.pooled_origins() == 0);
    // The answer comes after all, with the client still there: dropped.
    asked.at(0)({}, {nowhere});
    CHECK(switchboard::test::poll(ctx) > 0);
    CHECK(c.connections_opened() == 1);
    CHECK(c.open_connections("http://quiet.invalid:80") == 0);
    // Another request, whose answer comes only once the client is gone.
    result second;
    c.async_get(url, capture(second));
    REQUIRE(run_until(ctx, [&] { return second.done; }));
    CHECK(second.ec == switchboard::error::timeout);
  }
  REQUIRE(asked.size() == 2);
  asked.at(1)({}, {nowhere});
  asked.clear();
  CHECK(runs_out_of_work(ctx));
}

// `client_options::resolve` looks up host names: its addresses are the ones connected to, whether it answers at once
// or later from another thread.
TEST_CASE("client: a custom lookup's addresses are used", "[http][client]") {
  test_server s;
  s.routes().get("/hello", [](request& req) { return response::text(std::string(req.header("host"))); });
  s.start();
  asio::io_context ctx;
  std::vector<std::string> looked_up;
  std::vector<std::thread> answering;
  const bool at_once = GENERATE(true, false);
  INFO((at_once ? "at once" : "later, from another thread"));
  const resolve_function pinned = [&](const std::string& host, std::uint16_t port, resolve_handler answer) {
    looked_up.push_back(host + ":" + std::to_string(port));
    const std::vector<asio::ip::tcp::endpoint> to{{asio::ip::make_address("127.0.0.1"), s.port()}};
    if (at_once) return answer({}, to);
    answering.emplace_back([answer = std::move(answer), to] { answer({}, to); });
  };
  client c(ctx.get_executor(), {.resolve = pinned});
  result r;
  const std::string name = "service.invalid:" + std::to_string(s.port());  // a name that no DNS resolves (RFC 6761)
  c.async_get("http://" + name + "/hello", capture(r));
  const bool done = run_until(ctx, [&] { return r.done; });
  for (auto& t : answering) t.join();
  REQUIRE(done);
  REQUIRE_FALSE(r.ec);
  CHECK(r.response.body == name);
  CHECK(looked_up == std::vector<std::string>{name});
}

// Scheme and host are case-insensitive (RFC 3986 §6.2.2.1): URLs that differ only in their case name one origin, and
// the second request reuses the connection the first left in that origin's pool.
TEST_CASE("client: a host written in another case shares the pool of its origin", "[http][client]") {
  test_server s;
  s.routes().get("/hello", [](request&) { return response::text("Hello"); });
  s.start();
  asio::io_context ctx;
  const resolve_function pinned = [](const std::string&, std::uint16_t port, resolve_handler answer) {
    answer({}, std::vector<asio::ip::tcp::endpoint>{{asio::ip::make_address("127.0.0.1"), port}});
  };
  client c(ctx.get_executor(), {.resolve = pinned});
  const std::string port = std::to_string(s.port());
  // A name that no DNS resolves (RFC 6761), pinned to our server.
  for (const std::string& url : {"http://service.invalid:" + port + "/hello", "HTTP://Service.INVALID:" + port + "/hello"}) {
    INFO(url);
    result r;
    c.async_get(url, capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    REQUIRE_FALSE(r.ec);
    CHECK(r.response.body == "Hello");
  }
  CHECK(c.connections_opened() == 1);
  CHECK(c.pooled_origins() == 1);
  CHECK(c.open_connections("http://service.invalid:" + port) == 1);
  CHECK(c.open_connections("HTTP://Service.INVALID:" + port) == 1);
}

// A keep-alive connection the server has closed while it waited in the pool is not used again: a POST, which could
// not be retried once written, goes out on a new connection.
TEST_CASE("client: a pooled connection the server has closed is not reused", "[http][client]") {
  asio::io_context ctx;
  // The scripted server's first connection answers a GET with "one" and `after` in the same write, then is closed
  // when `close` says so: either leaves it unusable. The POST that follows must go out on a second connection,
  // answered "two".
  const auto get_then_post = [&ctx](const std::string& after, bool close) {
    scripted_server srv(ctx, [&](asio::ip::tcp::socket& s, std::size_t i) {
      if (i > 0) return answer(s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo");
      answer(s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none" + after);
      if (close) s.close();
    });
    client c(ctx.get_executor());
    result first;
    c.async_get(srv.url(), capture(first));
    REQUIRE(run_until(ctx, [&] { return first.done; }));
    REQUIRE_FALSE(first.ec);
    CHECK(first.response.body == "one");
    result post;
    c.async_post(srv.url(), "x", "text/plain", capture(post));
    REQUIRE(run_until(ctx, [&] { return post.done; }));
    REQUIRE_FALSE(post.ec);
    CHECK(post.response.body == "two");
    CHECK(srv.connections() == 2);
  };
  SECTION("over TCP: the server closes it right after its response") {
    // After a keep-alive response: as an idle timeout does, only sooner.
    get_then_post("", true);
  }
  SECTION("over TCP: bytes after a response, which answer nothing, end the connection's use") {
    // Bytes of a response nobody asked for; the connection stays open.
    get_then_post("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale", false);
  }
  SECTION("over TLS: our server's idle timeout ends it with a closure alert") {
    test_server s;
    s.routes().get("/hello", [](request&) { return response::text("hello"); });
    s.routes().post("/echo", [](request& req) { return response::text(std::string(req.body())); });
    server_options o;
    o.tls = switchboard::test::localhost_server_tls();
    o.timeouts.idle = 100ms;
    o.timeouts.close = 100ms;  // how long it waits for the pooled connection's alert, which does not come
    s.start(o);
    const std::string base = "https://localhost:" + std::to_string(s.port());
    client c(ctx.get_executor(), {.tls = switchboard::test::localhost_client_tls()});
    result first;
    c.async_get(base + "/hello", capture(first));
    REQUIRE(run_until(ctx, [&] { return first.done; }));
    REQUIRE_FALSE(first.ec);
    // The server closes the idle connection: its alert reaches the pooled connection, and once the server has
    // waited out its answer, it closes.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (s.server().stats().active > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    REQUIRE(s.server().stats().active == 0);
    result post;
    c.async_post(base + "/echo", "posted", "text/plain", capture(post));
    REQUIRE(run_until(ctx, [&] { return post.done; }));
    REQUIRE_FALSE(post.ec);
    CHECK(post.response.body == "posted");
    CHECK(c.connections_opened() == 2);
  }
}

// An idle keep-alive connection past its idle_timeout is closed by the next request to any origin, not only by one to
// its own; the pool of an origin left without connections is forgotten, and nothing of the client's is left on the
// io_context.
TEST_CASE("client: an expired idle connection is closed by the next request to another origin", "[http][client]") {
  test_server s;  // its own idle timeout is a minute: the closing is the client's
  s.routes().get("/hello", [](request&) { return response::text("Hello"); });
  s.start();
  asio::io_context ctx;
  // Two origins of the one server, two pools.
  const std::string first = "http://127.0.0.1:" + std::to_string(s.port());
  const std::string second = "http://localhost:" + std::to_string(s.port());
  const auto get = [&](client& c, const std::string& origin) {
    result r;
    c.async_get(origin + "/hello", capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    REQUIRE_FALSE(r.ec);
  };
  SECTION("expired") {
    client c(ctx.get_executor(), {.idle_timeout = 0ms});  // every idle connection has expired at once
    get(c, first);
    CHECK(c.open_connections(first) == 1);  // idle: nothing has looked at it since
    CHECK(switchboard::test::eventually([&] { return s.server().stats().active == 1; }));
    get(c, second);
    CHECK(c.open_connections(first) == 0);
    CHECK(c.pooled_origins() == 1);  // the second origin's, with its idle connection
    // The server saw the second connection come and the first end.
    CHECK(switchboard::test::eventually([&] { return s.server().stats().accepted == 2; }));
    CHECK(switchboard::test::eventually([&] { return s.server().stats().active == 1; }));
    CHECK(runs_out_of_work(ctx));
  }
  SECTION("fresh") {
    client c(ctx.get_executor(), {.idle_timeout = 1h});
    get(c, first);
    get(c, second);
    CHECK(c.open_connections(first) == 1);
    CHECK(c.open_connections(second) == 1);
    CHECK(c.pooled_origins() == 2);
    CHECK(runs_out_of_work(ctx));  // idle connections are no work for the executor
  }
}

TEST_CASE("client: close_idle_connections closes the idle ones at once and leaves a request in flight", "[http][client]") {
  test_server s;
  std::atomic<asio::steady_timer*> held{nullptr};  // the slow route's answer waits on it until the test cancels it
  s.routes().get("/hello", [](request&) { return response::text("Hello"); });
  s.routes().get("/slow", [&](request&) -> asio::awaitable<response> {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
    held = &timer;
    std::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return response::text("slow");
  });
  s.start();
  asio::io_context ctx;
  const std::string first = "http://127.0.0.1:" + std::to_string(s.port());
  const std::string second = "http://localhost:" + std::to_string(s.port());
  client c(ctx.get_executor(), {.idle_timeout = 1h});
  // Two connections to the first origin (two requests at once) and one to the second, all idle; then one of the
  // first origin's is taken by a request that waits for the test.
  result a1, a2, b, slow;
  c.async_get(first + "/hello", capture(a1));
  c.async_get(first + "/hello", capture(a2));
  c.async_get(second + "/hello", capture(b));
  REQUIRE(run_until(ctx, [&] { return a1.done && a2.done && b.done; }));
  REQUIRE(c.open_connections(first) == 2);
  c.async_get(first + "/slow", capture(slow));
  REQUIRE(run_until(ctx, [&] { return held.load() != nullptr; }));
  REQUIRE(c.connections_opened() == 3);
  REQUIRE(s.server().stats().active == 3);

  c.close_idle_connections();
  CHECK(c.open_connections(first) == 1);  // the slow request's
  CHECK(c.open_connections(second) == 0);
  CHECK(c.pooled_origins() == 1);
  CHECK(switchboard::test::eventually([&] { return s.server().stats().active == 1; }));

  asio::post(held.load()->get_executor(), [&] { held.load()->cancel(); });
  REQUIRE(run_until(ctx, [&] { return slow.done; }));
  REQUIRE_FALSE(slow.ec);
  CHECK(slow.response.body == "slow");
}

// A very common shutdown: the io_context stops, the service that owns the client goes (with a request in flight),
// then the io_context goes, destroying the request's coroutine. The client's state lives as long as its operations,
// so neither destroying the client nor the coroutine after it touches freed memory (it was a heap-use-after-free).
TEST_CASE("client: a request in flight when the client is destroyed ends with operation_aborted", "[http][client]") {
  asio::io_context ctx;
  // Connections 0 and 1 are answered (and stay open, idle in the pool); connection 2 is never answered.
  std::vector<asio::ip::tcp::socket*> accepted;
  scripted_server srv(ctx, [&](asio::ip::tcp::socket& s, std::size_t index) {
    accepted.push_back(&s);
    if (index < 2) answer(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  auto c = std::make_unique<client>(ctx.get_executor());
  result a, b, in_flight;
  c->async_get(srv.url(), capture(a));
  c->async_get(srv.url(), capture(b));
  c->async_get(srv.url(), capture(in_flight));
  REQUIRE(run_until(ctx, [&] { return a.done && b.done && accepted.size() == 3; }));
  REQUIRE(c->open_connections("http://127.0.0.1:" + std::to_string(srv.port())) == 3);

  c.reset();
  CHECK(in_flight.calls == 0);  // not completed inside the destructor
  REQUIRE(run_until(ctx, [&] { return in_flight.done; }));
  CHECK(in_flight.calls == 1);
  CHECK(in_flight.ec == asio::error::operation_aborted);
  // Every connection the client had, idle or in use, is closed: the server reads the end of each.
  std::size_t ended = 0;
  std::vector<char> bytes(accepted.size());
  for (std::size_t i = 0; i < accepted.size(); ++i) {
    accepted[i]->async_read_some(asio::buffer(&bytes[i], 1), [&](std::error_code ec, std::size_t) {
      if (ec == asio::error::eof) ++ended;
    });
  }
  CHECK(run_until(ctx, [&] { return ended == accepted.size(); }));
}

TEST_CASE("client: a client destroyed with a request in flight and then its io_context leave nothing open", "[http][client]") {
  const std::size_t fds_before = open_fds();
  result in_flight;
  {
    asio::io_context ctx;
    std::size_t requests = 0;
    scripted_server srv(ctx, [&](asio::ip::tcp::socket&, std::size_t) { ++requests; });  // never answers
    auto c = std::make_unique<client>(ctx.get_executor());
    c->async_get(srv.url(), capture(in_flight));
    REQUIRE(run_until(ctx, [&] { return requests == 1; }));
    ctx.stop();
    c.reset();
  }  // the server, then the io_context and the request's coroutine in it
  CHECK(in_flight.calls == 0);
  CHECK(open_fds() == fds_before);
}

// RFC 9112 §9.5: a server may answer a request before its body has all arrived, and then stop reading or close. The
// client reads while it writes, takes that answer, and stops sending the body. The body is larger than the socket
// buffers hold, so the write cannot finish unread.
TEST_CASE("client: an answer that comes before the request body is all sent", "[http][client]") {
  const std::string body(16 * 1024 * 1024, 'b');
  const std::string too_large = "HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!";
  asio::io_context ctx;
  const auto post_expecting_413 = [&](client& c, const std::string& url) {
    result r;
    c.async_post(url, body, "text/plain", capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }, 20s));
    REQUIRE_FALSE(r.ec);
    CHECK(r.response.status == status::payload_too_large);
  };
  // Without `Expect: 100-continue`, so that the body is on its way when the answer comes (the expectation is tested
  // below).
  SECTION("the server answers, then reads no more") {
    scripted_server srv(ctx, [&](asio::ip::tcp::socket& s, std::size_t) { answer(s, too_large); });
    client c(ctx.get_executor(), {.total_timeout = 10s, .expect_continue_from = 0});
    post_expecting_413(c, srv.url());
    CHECK(c.open_connections(srv.url("")) == 0);  // its request cut short, the connection is closed
  }
  SECTION("the server answers and closes with the body unread, which resets the connection") {
    scripted_server srv(ctx, [&](asio::ip::tcp::socket& s, std::size_t) {
      answer(s, too_large);
      s.close();
    });
    client c(ctx.get_executor(), {.expect_continue_from = 0});
    post_expecting_413(c, srv.url());
    CHECK(srv.connections() == 1);
  }
  SECTION("our server, over TCP and TLS: its body limit, and a request after it on a new connection") {
    for (const bool tls : {false, true}) {
      INFO((tls ? "TLS" : "TCP"));
      test_server s;
      s.routes().post("/upload", [](request& req) { return response::text(std::to_string(req.body().size())); });
      server_options o;  // the default body limit, 1 MiB
      if (tls) o.tls = switchboard::test::localhost_server_tls();
      s.start(o);
      const std::string base = (tls ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(s.port());
      client c(ctx.get_executor(),
               {.tls = tls ? switchboard::test::localhost_client_tls() : nullptr, .expect_continue_from = 0});
      post_expecting_413(c, base + "/upload");
      result small;
      c.async_post(base + "/upload", "12345", "text/plain", capture(small));
      REQUIRE(run_until(ctx, [&] { return small.done; }));
      REQUIRE_FALSE(small.ec);
      CHECK(small.response.body == "5");
      CHECK(c.connections_opened() == 2);
    }
  }
}

namespace {

// How the expectation test's server answers a request header (RFC 9110 §10.1.1).
enum class on_expectation {
  send_continue,       // 100 (Continue) to a request that expects it, then read the body and answer 200
  ignore,              // read the body and answer 200, never a 100, as servers that do not know expectations
  refuse,              // 401 at once, then count what still comes until the client closes
  expectation_failed,  // 417 to a request that expects 100 (Continue) (and close); 200 to one that does not
};

// What the server saw of one connection's request.
struct seen_request {
  std::string header;
  std::size_t body_bytes = 0;  // the body bytes that came (for `refuse`: until the client closed)
  bool done = false;
  bool expects_continue() const { return header.find("\r\nExpect: 100-continue\r\n") != std::string::npos; }
};

// Serves every connection with one request, answered as `how` says, recording what it saw in `log`.
asio::awaitable<void> serve_expectations(asio::ip::tcp::acceptor& acceptor, on_expectation how,
                                         std::vector<seen_request>& log) {
  for (;;) {
    asio::ip::tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
    const std::size_t index = log.size();
    log.emplace_back();
    std::string in;
    const std::size_t header_size =
        co_await asio::async_read_until(s, asio::dynamic_buffer(in), "\r\n\r\n", asio::use_awaitable);
    log[index].header = in.substr(0, header_size);
    in.erase(0, header_size);
    const bool expects = log[index].expects_continue();
    if (how == on_expectation::refuse || (how == on_expectation::expectation_failed && expects)) {
      const std::string_view no = how == on_expectation::refuse
                                      ? "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno"
                                      : "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      co_await asio::async_write(s, asio::buffer(no), asio::use_awaitable);
      std::error_code ec;  // eof when the client closes
      co_await asio::async_read(s, asio::dynamic_buffer(in), asio::redirect_error(asio::use_awaitable, ec));
      log[index].body_bytes = in.size();
      log[index].done = true;
      continue;
    }
    if (how == on_expectation::send_continue && expects) {
      co_await asio::async_write(s, asio::buffer("HTTP/1.1 100 Continue\r\n\r\n", 25), asio::use_awaitable);
    }
    const auto length_at = log[index].header.find("Content-Length: ") + 16;
    const std::size_t length = std::stoul(log[index].header.substr(length_at));
    if (in.size() < length) {
      co_await asio::async_read(s, asio::dynamic_buffer(in), asio::transfer_exactly(length - in.size()),
                                asio::use_awaitable);
    }
    log[index].body_bytes = in.size();
    log[index].done = true;
    const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(std::to_string(in.size()).size()) +
                           "\r\nConnection: close\r\n\r\n" + std::to_string(in.size());
    co_await asio::async_write(s, asio::buffer(ok), asio::use_awaitable);
  }
}

}  // namespace

// RFC 9110 §10.1.1: a large body waits for the server's 100 (Continue), so that a refused upload costs its header only.
TEST_CASE("client: Expect: 100-continue", "[http][client][expect]") {
  asio::io_context ctx;
  std::vector<seen_request> log;
  asio::ip::tcp::acceptor acceptor(ctx, {asio::ip::make_address("127.0.0.1"), 0});
  const std::string url = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/upload";
  const std::string body(256 * 1024, 'b');
  const auto serve = [&](on_expectation how) {
    asio::co_spawn(ctx, serve_expectations(acceptor, how, log), [](std::exception_ptr) {});
  };
  // A client that would wait for a 100 longer than the test runs: its body is sent at once or after the 100 only.
  client_options waits_for_100{.total_timeout = 60s, .expect_continue_from = 1000, .expect_continue_timeout = 1h};
  const auto post = [&](client& c, const std::string& payload, header_block headers = {}) {
    result r;
    client_request req{.method = method::post, .headers = std::move(headers), .body = payload};
    c.async_request(url, std::move(req), capture(r));
    const auto all_seen = [&] { return std::all_of(log.begin(), log.end(), [](auto& e) { return e.done; }); };
    REQUIRE(run_until(ctx, [&] { return r.done && all_seen(); }, 30s));
    return r;
  };

  SECTION("the body is sent after the 100; a small body does not ask") {
    serve(on_expectation::send_continue);
    client c(ctx.get_executor(), waits_for_100);
    const result large = post(c, body);
    REQUIRE_FALSE(large.ec);
    CHECK(large.response.body == std::to_string(body.size()));
    CHECK(log.at(0).expects_continue());
    const result small = post(c, "12345");
    REQUIRE_FALSE(small.ec);
    CHECK(small.response.body == "5");
    CHECK_FALSE(log.at(1).expects_continue());
  }
  SECTION("a final answer before the 100: the body is never sent") {
    serve(on_expectation::refuse);
    client c(ctx.get_executor(), waits_for_100);
    const result r = post(c, body);
    REQUIRE_FALSE(r.ec);
    CHECK(r.response.status == status::unauthorized);
    CHECK(r.response.body == "no");
    CHECK(log.at(0).body_bytes == 0);
    CHECK(c.open_connections(url.substr(0, url.find("/upload"))) == 0);  // its request cut short
  }
  SECTION("the caller's own expectation is kept, whatever the body's size") {
    serve(on_expectation::refuse);
    client c(ctx.get_executor(), {.total_timeout = 60s, .expect_continue_from = 0, .expect_continue_timeout = 1h});
    header_block h;
    h.set("Expect", "100-continue");
    const result r = post(c, "small", std::move(h));
    REQUIRE_FALSE(r.ec);
    CHECK(r.response.status == status::unauthorized);
    CHECK(log.at(0).expects_continue());
    CHECK(log.at(0).body_bytes == 0);
  }
  SECTION("a server that never sends a 100 gets the body after the wait") {
    serve(on_expectation::ignore);
    client c(ctx.get_executor(), {.total_timeout = 60s, .expect_continue_from = 1000, .expect_continue_timeout = 1ms});
    const result r = post(c, body);
    REQUIRE_FALSE(r.ec);
    CHECK(r.response.body == std::to_string(body.size()));
    CHECK(log.at(0).expects_continue());
  }
  SECTION("417: the request is sent again without the expectation, unless the caller wrote it") {
    serve(on_expectation::expectation_failed);
    client c(ctx.get_executor(), waits_for_100);
    const result r = post(c, body);
    REQUIRE_FALSE(r.ec);
    CHECK(r.response.body == std::to_string(body.size()));
    REQUIRE(log.size() == 2);
    CHECK(log[0].expects_continue());
    CHECK(log[0].body_bytes == 0);
    CHECK_FALSE(log[1].expects_continue());
    header_block h;
    h.set("Expect", "100-continue");
    const result refused = post(c, body, std::move(h));
    REQUIRE_FALSE(refused.ec);
    CHECK(refused.response.status == status::expectation_failed);
    CHECK(log.size() == 3);
  }
  SECTION("our server: 100 (Continue) under the route's limit, 413 without the body over it") {
    test_server s;
    s.routes().post("/upload", [](request& req) { return response::text(std::to_string(req.body().size())); });
    s.routes().post("/small", [](request& req) { return response::text(std::to_string(req.body().size())); })
        .body_limit(1000);
    s.start();
    const std::string base = "http://127.0.0.1:" + std::to_string(s.port());
    client c(ctx.get_executor(), waits_for_100);
    for (const std::string path : {"/upload", "/small"}) {
      INFO(path);
      result r;
      c.async_post(base + path, body, "text/plain", capture(r));
      REQUIRE(run_until(ctx, [&] { return r.done; }, 30s));
      REQUIRE_FALSE(r.ec);
      if (path == "/upload") {
        CHECK(r.response.body == std::to_string(body.size()));
      } else {
        CHECK(r.response.status == status::payload_too_large);
      }
    }
  }
}

// RFC 9112 §9.8: over TLS, a response body delimited by the end of the connection (neither Content-Length nor
// chunked) is complete only if the server's closure alert came; a connection that just ends may have been cut by an
// attacker.
TEST_CASE("client over TLS: a body that ends with the connection is complete only after the closure alert",
          "[http][client][tls]") {
  asio::io_context ctx;
  asio::ip::tcp::acceptor acceptor(ctx, {asio::ip::make_address("127.0.0.1"), 0});
  auto server_tls = switchboard::test::localhost_server_tls();
  asio::ssl::stream<asio::ip::tcp::socket> stream(ctx, *server_tls);
  asio::streambuf request;
  const bool with_alert = GENERATE(true, false);
  INFO((with_alert ? "with" : "without") << " the alert");
  // Answers the first request with a body that runs to the end of the connection, then ends it.
  acceptor.async_accept(stream.next_layer(), [&](std::error_code ec) {
    REQUIRE_FALSE(ec);
    stream.async_handshake(asio::ssl::stream_base::server, [&](std::error_code handshake_ec) {
      REQUIRE_FALSE(handshake_ec);
      asio::async_read_until(stream, request, "\r\n\r\n", [&](std::error_code read_ec, std::size_t) {
        REQUIRE_FALSE(read_ec);
        static const std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe whole body";
        asio::async_write(stream, asio::buffer(response), [&](std::error_code write_ec, std::size_t) {
          REQUIRE_FALSE(write_ec);
          if (with_alert) return stream.async_shutdown([](std::error_code) {});
          std::error_code ignored;
          stream.next_layer().close(ignored);  // as a cut connection looks
        });
      });
    });
  });
  client c(ctx.get_executor(), {.max_retries = 0, .tls = switchboard::test::localhost_client_tls()});
  result r;
  c.async_get("https://localhost:" + std::to_string(acceptor.local_endpoint().port()) + "/", capture(r));
  REQUIRE(run_until(ctx, [&] { return r.done; }));
  if (with_alert) {
    REQUIRE_FALSE(r.ec);
    CHECK(r.response.body == "the whole body");
  } else {
    CHECK(r.ec == http::error::partial_message);  // the stream was truncated after the header
  }
}

TEST_CASE("client and server over TLS", "[http][client][tls]") {
  const auto& cert = switchboard::test::localhost_certificate();
  test_server s;
  s.routes().get("/secure", [](request&) { return response::text("over TLS"); });
  server_options o;
  o.tls = switchboard::test::localhost_server_tls();
  s.start(o);
  REQUIRE(s.server().url().rfind("https://", 0) == 0);
  asio::io_context ctx;

  SECTION("a client that trusts the certificate") {
    client c(ctx.get_executor(), {.tls = switchboard::test::localhost_client_tls()});
    for (int i = 0; i < 3; ++i) {
      result r;
      c.async_get("https://localhost:" + std::to_string(s.port()) + "/secure", capture(r));
      REQUIRE(run_until(ctx, [&] { return r.done; }));
      REQUIRE_FALSE(r.ec);
      CHECK(r.response.body == "over TLS");
    }
    CHECK(c.connections_opened() == 1);
  }
  SECTION("verification is on by default: an unknown certificate is refused") {
    client c(ctx.get_executor());
    result r;
    c.async_get("https://localhost:" + std::to_string(s.port()) + "/secure", capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec);
  }
  SECTION("a name that does not match the certificate is refused") {
    client c(ctx.get_executor(), {.tls = switchboard::test::localhost_client_tls()});
    result r;
    c.async_get("https://127.0.0.2:" + std::to_string(s.port()) + "/secure", capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec);
  }
  SECTION("curl speaks to the HTTPS server") {
    REQUIRE(switchboard::test::have_program("curl"));  // installed by scripts/install-deps.sh
    const std::string ca = switchboard::test::write_temp_file("client_test_ca.pem", cert.certificate_pem);
    auto p = switchboard::test::run_process(
        {"curl", "-s", "--cacert", ca, "https://localhost:" + std::to_string(s.port()) + "/secure"});
    CHECK(p.exit_code == 0);
    CHECK(p.out == "over TLS");
  }
}

namespace {

// One scripted answer of the random mix below, and what the client must make of it.
struct scripted_answer {
  std::string bytes;
  bool head = false;          // asked with HEAD: a Content-Length but no body
  bool closes = false;        // the server closes the connection after it
  unsigned status = 200;
  std::string body;
};

// A random answer to request `n`: a body framed by Content-Length, chunked (random chunk sizes, extensions, a
// trailer) or by the connection's end, after a 1xx interim response or not; HEAD, 204 and 304 without a body.
scripted_answer random_answer(std::mt19937& rng, int n) {
  auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
  scripted_answer a;
  const std::size_t size = pick(0, 9) == 0 ? pick(100'000, 300'000) : pick(0, 3000);
  for (std::size_t i = 0; i < size; ++i) a.body += static_cast<char>('a' + (static_cast<std::size_t>(n) + i) % 26);
  if (pick(0, 4) == 0) a.bytes = pick(0, 1) == 0 ? "HTTP/1.1 100 Continue\r\n\r\n" : "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n";
  switch (pick(0, 5)) {
    case 0:
    case 1:
      a.closes = pick(0, 5) == 0;
      a.bytes += "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) + (a.closes ? "\r\nConnection: close" : "") +
                 "\r\n\r\n" + a.body;
      break;
    case 2: {
      const std::string_view trailer = pick(0, 1) == 0 ? "" : "X-Checksum: none\r\n";
      a.bytes += "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                 test::chunked_body(a.body, rng, ";ext=\"v\"", trailer, true);
      break;
    }
    case 3:
      a.head = true;
      a.bytes += "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n";
      a.body.clear();
      break;
    case 4:
      a.status = pick(0, 1) == 0 ? 204 : 304;
      a.bytes += "HTTP/1.1 " + std::to_string(a.status) + (a.status == 204 ? " No Content" : " Not Modified") +
                 "\r\nETag: \"v1\"\r\n\r\n";
      a.body.clear();
      break;
    default:  // the body ends with the connection (RFC 9112 §6.3, rule 8)
      a.closes = true;
      a.bytes += "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + a.body;
      break;
  }
  return a;
}

// Serves the scripted answers from a thread of its own: reads each request's header and answers the request its
// path names ("/r/<n>") in pieces of random sizes, closing the connection after an answer that says so.
class random_answer_server {
 public:
  random_answer_server(const std::vector<scripted_answer>& answers, unsigned seed)
      : answers_(answers), rng_(seed), acceptor_(ctx_, {asio::ip::make_address("127.0.0.1"), 0}), thread_([this] { run(); }) {}
  ~random_answer_server() {
    stopping_ = true;
    asio::io_context wake_ctx;
    asio::ip::tcp::socket wake(wake_ctx);
    std::error_code ec;
    wake.connect(acceptor_.local_endpoint(), ec);  // wakes the accept
    thread_.join();
  }
  std::string url(int n) const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/r/" + std::to_string(n); }

 private:
  void run() {
    for (;;) {
      std::error_code ec;
      asio::ip::tcp::socket s(ctx_);
      acceptor_.accept(s, ec);
      if (ec || stopping_) return;
      s.set_option(asio::ip::tcp::no_delay(true));
      serve(s);
    }
  }
  void serve(asio::ip::tcp::socket& s) {
    asio::streambuf received;
    for (;;) {
      std::error_code ec;
      const std::size_t header = asio::read_until(s, received, "\r\n\r\n", ec);
      if (ec) return;  // the client closed
      std::string head(asio::buffers_begin(received.data()), asio::buffers_begin(received.data()) + static_cast<std::ptrdiff_t>(header));
      received.consume(header);
      const std::size_t at = head.find("/r/") + 3;
      const scripted_answer& a = answers_.at(static_cast<std::size_t>(std::stoi(head.substr(at))));
      for (std::size_t sent = 0; sent < a.bytes.size();) {
        const std::size_t piece = std::min(a.bytes.size() - sent, std::uniform_int_distribution<std::size_t>(1, 8192)(rng_));
        asio::write(s, asio::buffer(a.bytes.data() + sent, piece), ec);
        if (ec) return;
        sent += piece;
      }
      if (a.closes) return;
    }
  }

  const std::vector<scripted_answer>& answers_;
  std::mt19937 rng_;
  asio::io_context ctx_;
  asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace

// The client's response reading under a random mix of framings, written in pieces of random sizes: each response
// must come out whole, and the connection must be reused exactly until an answer closes it.
TEST_CASE("client: a random mix of response framings, written in random pieces, reads each response whole",
          "[http][client]") {
  constexpr int requests = 120;
  for (unsigned seed = 1; seed <= 6; ++seed) {
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    std::vector<scripted_answer> answers;
    for (int n = 0; n < requests; ++n) answers.push_back(random_answer(rng, n));
    random_answer_server srv(answers, seed);
    asio::io_context ctx;
    client c(ctx.get_executor());
    std::size_t expected_connections = 1;
    for (int n = 0; n < requests; ++n) {
      INFO("request " << n);
      const scripted_answer& a = answers[static_cast<std::size_t>(n)];
      result r;
      c.async_request(srv.url(n), client_request{.method = a.head ? method::head : method::get}, capture(r));
      REQUIRE(run_until(ctx, [&] { return r.done; }));
      REQUIRE_FALSE(r.ec);
      CHECK(static_cast<unsigned>(r.response.status) == a.status);
      CHECK(r.response.body == a.body);
      if (a.closes && n + 1 < requests) ++expected_connections;
    }
    CHECK(c.connections_opened() == expected_connections);
  }
}
