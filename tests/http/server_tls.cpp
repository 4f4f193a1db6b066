// How the HTTP server ends a TLS connection on purpose (after a response with Connection: close, at the idle timeout,
// in a drain): with its closure alert first, so that the client can tell the end of the data from a truncation
// (RFC 9112 §9.8, RFC 8446 §6.1); then it waits, at most `timeouts.close`, for the client's alert or its close. And
// a client that ends first with its alert gets the server's in return.
#include <switchboard/http/server.hpp>

#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"
#include "support/test_support.hpp"
#include "support/tls_client.hpp"

#include <asio/error.hpp>

#include <chrono>
#include <future>
#include <optional>
#include <thread>

using namespace std::chrono_literals;
using namespace switchboard;
using namespace switchboard::http;
using switchboard::test::get_request;
using switchboard::test::test_server;
using switchboard::test::tls_client;

namespace {

server_options tls_options() {
  server_options o;
  o.tls = switchboard::test::localhost_server_tls();
  return o;
}

void add_hello(test_server& s) {
  s.routes().get("/hello", [](request&) { return response::text("hello"); });
}

}  // namespace

TEST_CASE("server over TLS: a response with Connection: close is followed by the server's closure alert",
          "[http][server][tls]") {
  test_server s;
  add_hello(s);
  server_options options = tls_options();
  options.timeouts.close = 300ms;
  s.start(options);
  tls_client c(s.port());
  REQUIRE(c.try_send(get_request("/hello", "Connection: close\r\n")));
  const auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->body == "hello");
  CHECK(r->header("connection") == "close");
  CHECK(c.read_end() == asio::error::eof);  // close_notify, not stream_truncated

  SECTION("a client that answers with its own alert: the server then closes the connection") {
    CHECK_FALSE(c.send_closure_alert());
    CHECK(c.read_transport_end() == asio::error::eof);
  }
  SECTION("a client that neither answers nor closes: the server closes at timeouts.close") {
    CHECK(c.read_transport_end() == asio::error::eof);  // within the client's 10 s read timeout
  }
}

TEST_CASE("server over TLS: a client that closes after the alert is not waited for", "[http][server][tls]") {
  test_server s;
  add_hello(s);
  server_options options = tls_options();
  options.timeouts.close = std::chrono::hours(1);  // a server that waited for the client's alert would wait this long
  s.start(options);
  {
    tls_client c(s.port());
    REQUIRE(c.try_send(get_request("/hello", "Connection: close\r\n")));
    REQUIRE(c.read_response());
    CHECK(c.read_end() == asio::error::eof);
  }  // closes its socket without an alert
  // A connection still open now would be cut when the grace period ends; one the server closed is not.
  const drain_report report = s.stop(10s);
  CHECK(report.cut == 0);
}

TEST_CASE("server over TLS: an idle keep-alive connection is closed with the alert", "[http][server][tls][timeouts]") {
  test_server s;
  add_hello(s);
  server_options options = tls_options();
  options.timeouts.idle = 300ms;
  s.start(options);
  tls_client c(s.port());
  REQUIRE(c.try_send(get_request("/hello")));
  const auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->header("connection") != "close");
  CHECK(c.read_end() == asio::error::eof);  // within the client's 10 s read timeout
  CHECK_FALSE(c.send_closure_alert());
  CHECK(c.read_transport_end() == asio::error::eof);
}

// The drain reaches a connection while its response is still being written (the client is not reading yet): the
// connection ends once the response is out, with the alert like any other.
TEST_CASE("server over TLS: a drain during a response's write ends the connection with the alert after it",
          "[http][server][tls][drain]") {
  test_server s;
  const std::string big(8 * 1024 * 1024, 'b');  // more than the socket buffers hold
  s.routes().get("/big", [&](request&) { return response::text(big); });
  s.start(tls_options());
  tls_client c(s.port());
  REQUIRE(c.try_send(get_request("/big")));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (s.server().stats().responses_2xx == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  REQUIRE(s.server().stats().responses_2xx == 1);
  std::promise<drain_report> report;
  s.server().async_drain(std::chrono::steady_clock::now() + 10s, [&](drain_report r) { report.set_value(r); });
  const auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->body.size() == big.size());
  CHECK(c.read_end() == asio::error::eof);
  CHECK_FALSE(c.send_closure_alert());
  CHECK(c.read_transport_end() == asio::error::eof);
  auto drained = report.get_future();
  REQUIRE(drained.wait_for(10s) == std::future_status::ready);
  CHECK(drained.get().drained == 1);
}

TEST_CASE("server over TLS: a drain ends idle connections with the alert and counts them drained",
          "[http][server][tls][drain]") {
  test_server s;
  add_hello(s);
  s.start(tls_options());
  tls_client c(s.port());
  REQUIRE(c.try_send(get_request("/hello")));
  REQUIRE(c.read_response());
  std::promise<drain_report> report;
  s.server().async_drain(std::chrono::steady_clock::now() + 10s, [&](drain_report r) { report.set_value(r); });
  CHECK(c.read_end() == asio::error::eof);
  CHECK_FALSE(c.send_closure_alert());
  CHECK(c.read_transport_end() == asio::error::eof);
  auto drained = report.get_future();
  REQUIRE(drained.wait_for(10s) == std::future_status::ready);
  const drain_report got = drained.get();
  CHECK(got.drained == 1);
  CHECK(got.cut == 0);
}

TEST_CASE("server over TLS: a client's closure alert is answered with the server's", "[http][server][tls]") {
  test_server s;
  add_hello(s);
  s.start(tls_options());
  tls_client c(s.port());
  REQUIRE(c.try_send(get_request("/hello")));
  REQUIRE(c.read_response());
  // The client's shutdown sends its alert and completes when the server's comes back (an error if the server just
  // closed the connection).
  CHECK_FALSE(c.send_closure_alert());
  CHECK(c.read_transport_end() == asio::error::eof);
}
