#include <switchboard/net/lookup.hpp>

#include "support/catch.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <optional>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using switchboard::net::look_up;
using switchboard::net::resolve_function;
using switchboard::net::resolve_handler;

namespace {

struct outcome {
  std::error_code ec;
  std::vector<asio::ip::tcp::endpoint> endpoints;
};

// Runs one `look_up` of "service.test":8080 through `resolve` on `ctx`, with `signal` able to cancel it.
std::optional<outcome> run_look_up(asio::io_context& ctx, const resolve_function& resolve,
                                   std::chrono::steady_clock::duration within, asio::cancellation_signal* signal = nullptr) {
  std::optional<outcome> result;
  auto op = [&]() -> asio::awaitable<void> {
    outcome o;
    o.endpoints = co_await look_up(ctx.get_executor(), resolve, "service.test", 8080,
                                   std::chrono::steady_clock::now() + within, o.ec);
    result = std::move(o);
  };
  asio::cancellation_signal unused;
  asio::co_spawn(ctx, op(), asio::bind_cancellation_slot((signal ? signal : &unused)->slot(), [](std::exception_ptr e) {
                   if (e) std::rethrow_exception(e);
                 }));
  ctx.run_for(10s);
  return result;
}

const asio::ip::tcp::endpoint local_8080(asio::ip::address_v4::loopback(), 8080);

}  // namespace

TEST_CASE("look_up takes an answer given at once or later", "[net][lookup]") {
  asio::io_context ctx;
  SECTION("at once") {
    const auto r = run_look_up(ctx, [](const std::string& host, std::uint16_t port, resolve_handler answer) {
      CHECK(host == "service.test");
      CHECK(port == 8080);
      answer({}, {local_8080});
    }, 1h);
    REQUIRE(r);
    CHECK_FALSE(r->ec);
    CHECK(r->endpoints == std::vector{local_8080});
  }
  SECTION("from another thread, with an error") {
    std::thread answering;
    const auto r = run_look_up(ctx, [&](const std::string&, std::uint16_t, resolve_handler answer) {
      answering = std::thread([answer] { answer(asio::error::host_not_found, {}); });
    }, 1h);
    answering.join();
    REQUIRE(r);
    CHECK(r->ec == asio::error::host_not_found);
  }
}

TEST_CASE("look_up gives up at its deadline and drops the late answer", "[net][lookup]") {
  asio::io_context ctx;
  std::vector<resolve_handler> asked;
  const auto r = run_look_up(ctx, [&](const std::string&, std::uint16_t, resolve_handler answer) {
    asked.push_back(std::move(answer));
  }, 20ms);
  REQUIRE(r);
  CHECK(r->ec == switchboard::error::timeout);
  CHECK(r->endpoints.empty());
  REQUIRE(asked.size() == 1);
  asked.front()({}, {local_8080});  // no one waits: its box takes it
  ctx.restart();
  CHECK(ctx.run() == 1);            // the dispatched answer, and nothing else
}

TEST_CASE("look_up is cancelled with its coroutine", "[net][lookup]") {
  asio::io_context ctx;
  asio::cancellation_signal cancel;
  std::vector<resolve_handler> asked;
  const auto r = run_look_up(ctx, [&](const std::string&, std::uint16_t, resolve_handler answer) {
    asked.push_back(std::move(answer));
    asio::post(ctx, [&] { cancel.emit(asio::cancellation_type::terminal); });  // once it waits
  }, 1h, &cancel);
  REQUIRE(r);
  CHECK(r->ec == asio::error::operation_aborted);
}

TEST_CASE("system_resolver answers for an IP literal", "[net][lookup]") {
  asio::io_context ctx;
  std::optional<std::error_code> ec;
  std::vector<asio::ip::tcp::endpoint> endpoints;
  switchboard::net::system_resolver(ctx.get_executor())("127.0.0.1", 8080, [&](std::error_code e, auto found) {
    ec = e;
    endpoints = std::move(found);
  });
  ctx.run_for(10s);
  REQUIRE(ec);
  CHECK_FALSE(*ec);
  CHECK(endpoints == std::vector{local_8080});
}
