// Taking events with `async_receive`: coroutines, cancellation, and the ways a waiting receive ends.
#include <switchboard/pubsub/broker.hpp>

#include "pubsub/broker_support.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using namespace switchboard::pubsub;
using switchboard::pubsub::test::describe;
using switchboard::pubsub::test::text;
using switchboard::test::poll;
using switchboard::test::run_until;

namespace {

using strings = std::vector<std::string>;

const std::string aborted = describe(asio::error::operation_aborted, event());

// Receives `count` events into `out` in a coroutine; reports an exception through `failure`.
void spawn_receiver(asio::io_context& ctx, subscription& sub, std::size_t count, strings& out,
                    std::exception_ptr& failure) {
  asio::co_spawn(
      ctx,
      [&sub, count, &out]() -> asio::awaitable<void> {
        while (out.size() < count) {
          const event e = co_await sub.async_receive(asio::use_awaitable);
          out.push_back(describe({}, e));
        }
      },
      [&failure](std::exception_ptr e) { failure = e; });
}

}  // namespace

TEST_CASE("async_receive: coroutines take events in order", "[pubsub][broker][receive]") {
  asio::io_context ctx;
  broker b(ctx);
  auto sub = b.subscribe("t");
  strings got;
  std::exception_ptr failure;
  spawn_receiver(ctx, sub, 3, got, failure);
  poll(ctx);
  CHECK(got.empty());
  b.publish("t", text("a"));
  b.publish("t", text("b"));
  b.publish("t", text("c"));
  REQUIRE(run_until(ctx, [&] { return got.size() == 3; }));
  CHECK_FALSE(failure);
  CHECK(got == strings{"t#1=a", "t#2=b", "t#3=c"});
}

TEST_CASE("async_receive: waiting coroutines resume in the delivery, without a post each",
          "[pubsub][broker][receive]") {
  asio::io_context ctx;
  broker b(ctx);
  std::vector<subscription> subs;
  std::vector<strings> got(20);
  std::exception_ptr failure;
  for (int i = 0; i < 20; ++i) subs.push_back(b.subscribe("t"));
  for (int i = 0; i < 20; ++i) spawn_receiver(ctx, subs[i], 2, got[i], failure);
  poll(ctx);  // every coroutine now waits in async_receive
  b.publish("t", text("a"));
  b.publish("t", text("b"));
  CHECK(poll(ctx) == 1);  // one drain resumes all twenty coroutines, twice each
  for (const strings& g : got) CHECK(g == strings{"t#1=a", "t#2=b"});
  CHECK_FALSE(failure);
}

TEST_CASE("async_receive: cancellation", "[pubsub][broker][receive]") {
  asio::io_context ctx;
  broker b(ctx);
  auto sub = b.subscribe("t");
  std::optional<std::string> got;
  const auto store = [&](std::error_code ec, event e) { got = describe(ec, e); };

  SECTION("a cancelled receive loses no event") {
    asio::cancellation_signal signal;
    sub.async_receive(asio::bind_cancellation_slot(signal.slot(), store));
    poll(ctx);
    signal.emit(asio::cancellation_type::terminal);
    REQUIRE(run_until(ctx, [&] { return got.has_value(); }));
    CHECK(*got == aborted);
    got.reset();
    b.publish("t", text("a"));
    sub.async_receive(store);
    REQUIRE(run_until(ctx, [&] { return got.has_value(); }));
    CHECK(*got == "t#1=a");
  }

  SECTION("a late cancellation does not cancel a later receive") {
    asio::cancellation_signal signal;
    b.publish("t", text("a"));
    sub.async_receive(asio::bind_cancellation_slot(signal.slot(), store));
    REQUIRE(run_until(ctx, [&] { return got.has_value(); }));
    CHECK(*got == "t#1=a");
    got.reset();
    sub.async_receive(store);
    poll(ctx);
    signal.emit(asio::cancellation_type::terminal);  // the first receive's slot
    poll(ctx);
    CHECK_FALSE(got);
    b.publish("t", text("b"));
    REQUIRE(run_until(ctx, [&] { return got.has_value(); }));
    CHECK(*got == "t#2=b");
  }

  SECTION("unsubscribing completes a waiting receive") {
    sub.async_receive(store);
    poll(ctx);
    sub.unsubscribe();
    REQUIRE(run_until(ctx, [&] { return got.has_value(); }));
    CHECK(*got == aborted);
  }
}

TEST_CASE("async_receive: the broker's destruction", "[pubsub][broker][receive]") {
  asio::io_context ctx;
  std::optional<broker> b;
  b.emplace(ctx);
  auto sub = b->subscribe("t");
  b->publish("t", text("queued"));  // discarded: the broker is gone
  b.reset();
  std::optional<std::string> got;
  sub.async_receive([&](std::error_code ec, event e) { got = describe(ec, e); });
  REQUIRE(run_until(ctx, [&] { return got.has_value(); }));
  CHECK(*got == "error: closed");
  CHECK(sub.stats().closed);

  SECTION("a receive waiting when it happens") {
    std::optional<broker> other;
    other.emplace(ctx);
    auto waiting = other->subscribe("t");
    got.reset();
    waiting.async_receive([&](std::error_code ec, event e) { got = describe(ec, e); });
    poll(ctx);
    other.reset();
    REQUIRE(run_until(ctx, [&] { return got.has_value(); }));
    CHECK(*got == "error: closed");
  }
}

TEST_CASE("async_receive: misuse throws", "[pubsub][broker][receive]") {
  asio::io_context ctx;
  broker b(ctx);
  const auto ignore = [](std::error_code, event) {};

  SECTION("two receives at once") {
    auto sub = b.subscribe("t");
    sub.async_receive(ignore);
    CHECK_THROWS_AS(sub.async_receive(ignore), std::logic_error);
  }

  SECTION("on a subscription with a callback") {
    auto sub = b.subscribe("t", {.on_event = [](std::error_code, const event&) {}});
    CHECK_THROWS_AS(sub.async_receive(ignore), std::logic_error);
  }

  SECTION("on an empty handle") {
    subscription sub;
    CHECK_THROWS_AS(sub.async_receive(ignore), std::logic_error);
  }
}
