// The RESP client over TLS, against redis-server's own TLS port (Debian's redis-server is built with TLS), with the
// test's self-signed certificate for localhost and 127.0.0.1.
#include <switchboard/resp/client.hpp>

#include "resp/client_support.hpp"
#include "support/catch.hpp"
#include "support/redis_server.hpp"
#include "support/test_support.hpp"

#include <asio/io_context.hpp>
#include <asio/ssl/context.hpp>

#include <memory>
#include <optional>
#include <string>

using namespace std::chrono_literals;
using namespace switchboard;
using switchboard::test::connect;
using switchboard::test::exec;

TEST_CASE("resp client: TLS", "[resp][client][tls]") {
  REQUIRE(test::have_program("redis-server"));
  test::tls_redis_server redis;
  const std::uint16_t tls_port = redis.tls_port();
  asio::io_context ctx;

  SECTION("a trusted certificate that names the host") {
    auto tls = redis.trusting_client_tls();
    for (const char* host : {"localhost", "127.0.0.1"}) {
      for (int protocol : {3, 2}) {
        INFO(host << " RESP" << protocol);
        resp::client c(ctx.get_executor(), {.host = host, .port = tls_port, .protocol = protocol, .tls = tls});
        REQUIRE_FALSE(connect(ctx, c));
        CHECK(c.protocol() == protocol);
        CHECK(exec(ctx, c, resp::command("ECHO", "over tls")).text == "over tls");
        c.close();
      }
    }
  }
  SECTION("verification is on by default: an untrusted certificate fails the connect") {
    auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);  // trusts nothing
    resp::client c(ctx.get_executor(), {.port = tls_port, .tls = tls});
    const std::error_code ec = connect(ctx, c);
    CHECK(ec);
    CHECK(ec.category() == asio::error::get_ssl_category());
    CHECK_FALSE(c.connected());
    SECTION("unless turned off") {
      resp::client lax(ctx.get_executor(), {.port = tls_port, .tls = tls, .tls_verify = false});
      REQUIRE_FALSE(connect(ctx, lax));
      CHECK(exec(ctx, lax, resp::command("PING")).text == "PONG");
    }
  }
  SECTION("TLS to a plain port fails, and does not hang") {
    auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    resp::client c(ctx.get_executor(), {.port = redis.port(), .connect_timeout = 2s, .tls = tls});
    CHECK(connect(ctx, c));
  }
}
