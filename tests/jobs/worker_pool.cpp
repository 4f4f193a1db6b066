// The worker pool and `offload`: work runs on a worker and resumes on the caller's executor; a full pool refuses
// at once; a destroyed pool completes what it never ran; reserved places count against the queue's limit; a queued
// task taken back frees its place.
#include <switchboard/jobs/offload.hpp>
#include <switchboard/jobs/worker_pool.hpp>

#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <functional>
#include <future>
#include <thread>
#include <vector>

using namespace switchboard;
using namespace std::chrono_literals;

TEST_CASE("offload runs on a worker and resumes on the caller's executor", "[jobs][offload]") {
  asio::io_context ctx;  // before the pool: its workers finish (and let go of ctx's executor) first
  jobs::worker_pool pool({.threads = 2});
  const auto caller = std::this_thread::get_id();
  std::thread::id worker, resumed;
  int result = 0;
  bool done = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        result = co_await jobs::offload(
            pool,
            [&] {
              worker = std::this_thread::get_id();
              return 6 * 7;
            },
            asio::use_awaitable);
        resumed = std::this_thread::get_id();
      },
      [&](std::exception_ptr e) {
        done = !e;
      });
  REQUIRE(test::run_until(ctx, [&] { return done; }));
  CHECK(result == 42);
  CHECK(worker != caller);
  CHECK(resumed == caller);
}

TEST_CASE("offload passes the function's exception on", "[jobs][offload]") {
  asio::io_context ctx;
  jobs::worker_pool pool({.threads = 1});
  std::string message;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        try {
          co_await jobs::offload(pool, []() -> int { throw std::runtime_error("boom"); }, asio::use_awaitable);
        } catch (const std::runtime_error& e) {
          message = e.what();
        }
      },
      [](std::exception_ptr) {});
  REQUIRE(test::run_until(ctx, [&] { return !message.empty(); }));
  CHECK(message == "boom");
}

TEST_CASE("a full pool refuses at once, and a destroyed pool completes what it never ran", "[jobs][offload]") {
  asio::io_context ctx;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> started{false};
  std::error_code second, third;
  bool first_done = false, third_done = false;
  auto pool = std::make_unique<jobs::worker_pool>(jobs::worker_pool_options{.threads = 1, .max_queued = 1});
  jobs::offload(
      *pool,
      [&, released] {
        started = true;
        released.wait_for(10s);  // bounded, so that a failed REQUIRE cannot hang the pool's destructor
        return 1;
      },
      asio::bind_executor(ctx, [&](std::exception_ptr e, int) { first_done = !e; }));
  // The worker has taken the first (the queue is empty again) before the others are offered.
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!started && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  REQUIRE(started);
  // The worker holds the first; the second waits in the queue; the third finds the pool full.
  const auto code_of = [](std::exception_ptr e) {
    try {
      if (e) std::rethrow_exception(e);
    } catch (const std::system_error& x) {
      return x.code();
    }
    return std::error_code();
  };
  jobs::offload(*pool, [] { return 2; },
                asio::bind_executor(ctx, [&](std::exception_ptr e, int) { second = code_of(e); }));
  jobs::offload(*pool, [] { return 3; }, asio::bind_executor(ctx, [&](std::exception_ptr e, int) {
                  third = code_of(e);
                  third_done = true;
                }));
  REQUIRE(test::run_until(ctx, [&] { return third_done; }));
  CHECK(third == jobs::error::pool_full);
  CHECK(pool->stats().refused == 1);
  CHECK(pool->stats().queued == 1);
  // Destroying the pool (on another thread: it joins the worker, which is still busy) completes the queued
  // second with shutting_down; then the first is released and finishes.
  std::thread destroyer([&] { pool.reset(); });
  const bool second_done = test::run_until(ctx, [&] { return bool(second); });
  release.set_value();
  destroyer.join();
  REQUIRE(second_done);
  CHECK(second == switchboard::error::shutting_down);
  REQUIRE(test::run_until(ctx, [&] { return first_done; }));
}

TEST_CASE("reserved places count against the queue's limit, are filled without refusal or given back",
          "[jobs][worker_pool]") {
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> started{false};
  std::atomic<int> ran{0};
  jobs::worker_pool pool({.threads = 1, .max_queued = 2});
  std::function<void()> hold = [&, released] {
    started = true;
    released.wait_for(10s);  // bounded, so that a failed REQUIRE cannot hang the pool's destructor
  };
  REQUIRE(pool.try_post(hold));
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!started && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  REQUIRE(started);  // the worker is busy: what follows stays queued

  auto first = pool.try_reserve();
  auto second = pool.try_reserve();
  REQUIRE(first);
  REQUIRE(second);
  CHECK_FALSE(pool.try_reserve());  // two places held: the queue is full, though nothing is queued yet
  std::function<void()> counted = [&] { ++ran; };
  CHECK_FALSE(pool.try_post(counted));
  CHECK(counted);  // refused: left untouched
  CHECK(pool.stats().queued == 0);
  CHECK(pool.stats().refused == 2);

  second.reset();  // given back unused
  REQUIRE(pool.try_post(counted));
  pool.post(std::move(*first), [&] { ++ran; });
  CHECK(pool.stats().queued == 2);
  CHECK_FALSE(pool.try_reserve());

  release.set_value();
  const auto done_by = std::chrono::steady_clock::now() + 10s;
  while (pool.stats().completed < 3 && std::chrono::steady_clock::now() < done_by) std::this_thread::yield();
  CHECK(ran == 2);
  CHECK(pool.try_reserve());  // empty again
}

TEST_CASE("a queued task taken back frees its place at once and never runs", "[jobs][worker_pool]") {
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> started{false};
  std::atomic<int> ran{0};
  jobs::worker_pool pool({.threads = 1, .max_queued = 2});
  auto place = pool.try_reserve();
  REQUIRE(place);
  const jobs::worker_pool::task_id holding = pool.post(std::move(*place), [&, released] {
    started = true;
    released.wait_for(10s);  // bounded, so that a failed REQUIRE cannot hang the pool's destructor
  });
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!started && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  REQUIRE(started);  // the worker is busy: what follows stays queued
  CHECK_FALSE(pool.take_back(holding));  // taken by the worker already

  std::vector<jobs::worker_pool::task_id> ids;
  for (int i = 0; i < 2; ++i) {
    auto p = pool.try_reserve();
    REQUIRE(p);
    ids.push_back(pool.post(std::move(*p), [&] { ++ran; }));
  }
  CHECK_FALSE(pool.try_reserve());  // full
  CHECK(pool.take_back(ids[0]));    // the first queued: its place is free
  CHECK_FALSE(pool.take_back(ids[0]));
  CHECK(pool.stats().queued == 1);
  auto p = pool.try_reserve();
  REQUIRE(p);
  ids.push_back(pool.post(std::move(*p), [&] { ++ran; }));
  CHECK(pool.take_back(ids[2]));  // the last queued
  CHECK(pool.stats().queued == 1);

  release.set_value();
  const auto done_by = std::chrono::steady_clock::now() + 10s;
  while (pool.stats().completed < 2 && std::chrono::steady_clock::now() < done_by) std::this_thread::yield();
  CHECK(pool.stats().completed == 2);
  CHECK(ran == 1);  // the one left queued, and not those taken back
}

TEST_CASE("bad pool options are refused", "[jobs][worker_pool]") {
  CHECK_THROWS_AS(jobs::worker_pool({.max_queued = 0}), std::invalid_argument);
}
