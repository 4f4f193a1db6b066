#include <switchboard/core/async_queue.hpp>

#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using switchboard::async_queue;
using switchboard::overflow_policy;
using switchboard::push_outcome;
using switchboard::queue_limits;

TEST_CASE("async_queue: a waiting pop completes when an item arrives", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{.max_messages = 4});
  std::optional<int> got;
  q.async_pop([&](std::error_code ec, int v) {
    REQUIRE_FALSE(ec);
    got = v;
  });
  switchboard::test::poll(ctx);
  CHECK_FALSE(got);
  q.async_push(7, [](std::error_code ec, push_outcome o) {
    CHECK_FALSE(ec);
    CHECK(o == push_outcome::queued);
  });
  REQUIRE(switchboard::test::run_until(ctx, [&] { return got.has_value(); }));
  CHECK(*got == 7);
}

TEST_CASE("async_queue: wait policy holds producers until there is room, in order", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{.max_messages = 2, .policy = overflow_policy::wait});
  std::vector<int> completed;
  for (int i = 0; i < 5; ++i) {
    q.async_push(i, [&, i](std::error_code ec, push_outcome) {
      REQUIRE_FALSE(ec);
      completed.push_back(i);
    });
  }
  switchboard::test::poll(ctx);
  CHECK(completed == std::vector<int>{0, 1});  // 2, 3, 4 wait for room
  std::vector<int> popped;
  while (popped.size() < 5) {
    switchboard::test::poll(ctx);
    if (auto v = q.try_pop()) popped.push_back(*v);
  }
  switchboard::test::poll(ctx);
  CHECK(popped == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(completed == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("async_queue: a waiting push times out", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{.max_messages = 1, .policy = overflow_policy::wait});
  q.async_push(1, [](std::error_code, push_outcome) {});
  std::error_code result;
  bool done = false;
  q.async_push(2, 20ms, [&](std::error_code ec, push_outcome) {
    result = ec;
    done = true;
  });
  REQUIRE(switchboard::test::run_until(ctx, [&] { return done; }));
  CHECK(result == switchboard::error::timeout);
  CHECK(q.try_pop() == 1);
  CHECK_FALSE(q.try_pop());  // the timed-out item was not queued
}

TEST_CASE("async_queue: disconnect policy closes the queue", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{.max_messages = 1, .policy = overflow_policy::disconnect});
  std::vector<std::error_code> results;
  for (int i = 0; i < 3; ++i) q.async_push(i, [&](std::error_code ec, push_outcome) { results.push_back(ec); });
  switchboard::test::poll(ctx);
  REQUIRE(results.size() == 3);
  CHECK_FALSE(results[0]);
  CHECK(results[1] == switchboard::error::overflow_disconnect);
  CHECK(results[2] == switchboard::error::closed);
  CHECK(q.is_closed());
  // What was queued before the cut is still delivered, then the consumer learns it is closed.
  std::vector<std::error_code> pops;
  q.async_pop([&](std::error_code ec, int) { pops.push_back(ec); });
  q.async_pop([&](std::error_code ec, int) { pops.push_back(ec); });
  switchboard::test::poll(ctx);
  REQUIRE(pops.size() == 2);
  CHECK_FALSE(pops[0]);
  CHECK(pops[1] == switchboard::error::closed);
}

TEST_CASE("async_queue: close completes waiting producers and the consumer", "[core][async_queue]") {
  asio::io_context ctx;
  std::error_code pop_result, push_result;
  {
    async_queue<int> q(ctx.get_executor(), queue_limits{.max_messages = 1, .policy = overflow_policy::wait});
    q.async_push(1, [](std::error_code, push_outcome) {});
    q.async_push(2, [&](std::error_code ec, push_outcome) { push_result = ec; });
    switchboard::test::poll(ctx);
    CHECK(q.try_pop() == 1);  // admits 2
    switchboard::test::poll(ctx);
    CHECK_FALSE(push_result);
    CHECK(q.try_pop() == 2);
    q.async_pop([&](std::error_code ec, int) { pop_result = ec; });
    switchboard::test::poll(ctx);
  }  // destroyed while the pop waits
  switchboard::test::poll(ctx);
  CHECK(pop_result == switchboard::error::closed);
}

TEST_CASE("async_queue: cancellation of a waiting pop", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{});
  asio::cancellation_signal signal;
  std::error_code result;
  bool done = false;
  q.async_pop(asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, int) {
    result = ec;
    done = true;
  }));
  switchboard::test::poll(ctx);
  signal.emit(asio::cancellation_type::terminal);
  REQUIRE(switchboard::test::run_until(ctx, [&] { return done; }));
  CHECK(result == asio::error::operation_aborted);
}

TEST_CASE("async_queue: coroutine producers on other threads lose nothing under wait", "[core][async_queue]") {
  asio::io_context consumer_ctx;
  asio::io_context producer_ctx;
  constexpr int producers = 4, per_producer = 5000;
  async_queue<int> q(consumer_ctx.get_executor(), queue_limits{.max_messages = 8, .policy = overflow_policy::wait});
  for (int p = 0; p < producers; ++p) {
    asio::co_spawn(producer_ctx, [&q, p]() -> asio::awaitable<void> {
      for (int i = 0; i < per_producer; ++i) co_await q.async_push(p * per_producer + i, asio::use_awaitable);
    }, asio::detached);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) threads.emplace_back([&] { producer_ctx.run(); });
  std::vector<int> last(producers, -1);
  int received = 0;
  bool in_order = true;
  std::function<void()> pop_next = [&] {
    q.async_pop([&](std::error_code ec, int v) {
      REQUIRE_FALSE(ec);
      const int p = v / per_producer;
      if (v <= last[p]) in_order = false;
      last[p] = v;
      if (++received < producers * per_producer) pop_next();
    });
  };
  pop_next();
  REQUIRE(switchboard::test::run_until(consumer_ctx, [&] { return received == producers * per_producer; }, 60s));
  for (auto& t : threads) t.join();
  CHECK(in_order);
  CHECK(q.stats().dropped == 0);
}

TEST_CASE("async_queue: try_push queues at once and refuses without taking the item", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<std::string> q(ctx.get_executor(), queue_limits{.max_messages = 1, .policy = overflow_policy::wait});
  std::optional<std::string> got;
  q.async_pop([&](std::error_code ec, std::string v) {
    REQUIRE_FALSE(ec);
    got = std::move(v);
  });
  switchboard::test::poll(ctx);
  std::string first = "first";
  CHECK(q.try_push(std::move(first)) == push_outcome::queued);
  REQUIRE(switchboard::test::run_until(ctx, [&] { return got.has_value(); }));  // the waiting pop was woken
  CHECK(*got == "first");

  std::string second = "second";
  CHECK(q.try_push(std::move(second)) == push_outcome::queued);
  std::string third = "third";
  CHECK(q.try_push(std::move(third)) == push_outcome::must_wait);  // full under `wait`
  CHECK(third == "third");                                          // left whole, for async_push
  bool third_queued = false;
  q.async_push(std::move(third), [&](std::error_code ec, push_outcome) { third_queued = !ec; });
  switchboard::test::poll(ctx);
  CHECK_FALSE(third_queued);  // waits for room
  REQUIRE(q.try_pop() == std::optional<std::string>("second"));
  // Room now, but "third" waits ahead of it: a try_push must not overtake a waiting producer.
  std::string fourth = "fourth";
  CHECK(q.try_push(std::move(fourth)) == push_outcome::must_wait);
  CHECK(fourth == "fourth");
  REQUIRE(switchboard::test::run_until(ctx, [&] { return third_queued; }));
  REQUIRE(q.try_pop() == std::optional<std::string>("third"));

  q.close();
  switchboard::test::poll(ctx);  // close runs on the queue's executor
  std::string fifth = "fifth";
  CHECK(q.try_push(std::move(fifth)) == push_outcome::must_disconnect);
  CHECK(fifth == "fifth");
}
