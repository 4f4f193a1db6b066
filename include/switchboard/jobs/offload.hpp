// switchboard/jobs/offload.hpp
//
// `offload(pool, fn, token)`: runs `fn()` on a worker of `pool` and completes on the caller's executor, so that a
// coroutine handler can do CPU-bound work without blocking its I/O thread:
//
//   routes.get("/primes", [&pool](http::request& req) -> asio::awaitable<http::response> {
//     const auto limit = req.query_param("limit");
//     try {
//       auto count = co_await jobs::offload(pool, [=] { return count_primes(limit); }, asio::use_awaitable);
//       co_return http::response::json({{"count", count}});
//     } catch (const std::system_error& e) {
//       if (e.code() == jobs::error::pool_full) co_return jobs::overloaded_response();   // 503 + Retry-After
//       throw;
//     }
//   });
#pragma once

#include <switchboard/core/detail/pending_handler.hpp>
#include <switchboard/core/error.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/jobs/error.hpp>
#include <switchboard/jobs/worker_pool.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/system_executor.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace switchboard::jobs {

namespace detail {

// One offloaded call: completes its handler exactly once, with the result, the exception `fn` threw, or
// `shutting_down` if the pool is destroyed before a worker ran it.
template <class R>
struct offload_op {
  explicit offload_op(switchboard::detail::pending_handler<void(std::exception_ptr, R)> h) : handler(std::move(h)) {}
  ~offload_op() {
    if (handler) {
      handler.complete(std::make_exception_ptr(std::system_error(switchboard::error::shutting_down)), R{});
    }
  }
  switchboard::detail::pending_handler<void(std::exception_ptr, R)> handler;
};

}  // namespace detail

/// Runs `fn()` (which returns a default-constructible, movable `R`) on a worker of `pool`. Completion signature:
/// `void(std::exception_ptr, R)`, on the handler's associated executor (the coroutine's, with
/// `asio::use_awaitable`, which then throws the exception):
///  - `fn`'s result, or the exception it threw;
///  - at once, `std::system_error` with `error::pool_full` when the pool's queue is full (answer 503);
///  - `std::system_error` with `switchboard::error::shutting_down` when the pool is destroyed first.
/// Cancellation: none; once queued, `fn` runs (pass it a flag of your own to stop it early). `fn` is moved into the
/// pool and destroyed on the worker that ran it. As for any Asio I/O object, destroy the pool before the
/// io_contexts its callers' executors belong to (a worker completing a call still holds that executor).
template <class F, class Token>
  requires std::is_invocable_v<F&>
auto offload(worker_pool& pool, F fn, Token&& token) {
  using R = std::invoke_result_t<F&>;
  static_assert(std::is_default_constructible_v<R> && std::is_move_constructible_v<R>,
                "offload: the result type must be default-constructible and movable");
  return asio::async_initiate<Token, void(std::exception_ptr, R)>(
      [&pool](auto handler, F fn) {
        auto op = std::make_shared<detail::offload_op<R>>(switchboard::detail::pending_handler<void(std::exception_ptr, R)>(
            std::move(handler), asio::any_io_executor(asio::system_executor())));
        std::function<void()> task = [op, fn = std::make_shared<F>(std::move(fn))]() mutable {
          std::exception_ptr failure;
          R result{};
          try {
            result = (*fn)();
          } catch (...) {
            failure = std::current_exception();
          }
          fn.reset();
          op->handler.complete(std::move(failure), std::move(result));
        };
        if (!pool.try_post(task)) {
          op->handler.complete(std::make_exception_ptr(std::system_error(error::pool_full)), R{});
        }
      },
      token, std::move(fn));
}

/// The answer to give when a pool (or job store) is full: 503 with `Retry-After` (RFC 9110 §15.6.4, §10.2.3).
inline http::response overloaded_response(std::chrono::seconds retry_after = std::chrono::seconds(1)) {
  http::response r = http::response::problem(http::status::service_unavailable, "The server is busy; retry later.");
  r.set("Retry-After", std::to_string(retry_after.count()));
  return r;
}

}  // namespace switchboard::jobs
