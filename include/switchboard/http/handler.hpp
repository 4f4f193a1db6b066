// switchboard/http/handler.hpp
//
// The shapes a request handler may take, and `responder`, the handle that completes a response.
//
//   response f(request&)                       a plain function: answers at once
//   asio::awaitable<response> f(request&)      a coroutine: runs on the connection's executor, may co_await
//   void f(request&, responder)                deferred: call responder.send(...) later, from any thread
//
// All three are adapted to one internal signature (`handler_fn`). An exception from a handler becomes a 500 whose
// body says nothing about the exception (the log line has the details); a `problem_error` becomes its problem
// response (RFC 9457).
#pragma once

#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>

#include <concepts>
#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace switchboard::http {

namespace detail {
/// Receives completed responses: implemented by the server connection.
class response_sink {
 public:
  virtual ~response_sink() = default;
  /// Delivers the response (or the exception that replaced it) for request number `sequence`. Safe from any thread.
  virtual void deliver(std::uint64_t sequence, response r) = 0;
  virtual void deliver_exception(std::uint64_t sequence, std::exception_ptr e) = 0;
  /// The handler of request number `sequence` will not read its request again (see responder::release_request).
  virtual void release_request(std::uint64_t sequence) = 0;
  virtual asio::any_io_executor sink_executor() const = 0;
};
}  // namespace detail

/// Completes one request's response. Movable, not copyable; `send` may be called from any thread, once. A
/// responder destroyed without sending answers 500, so that a forgotten responder never hangs the connection.
/// After the client has gone, `send` does nothing (the connection drops the response).
class responder {
 public:
  responder(std::shared_ptr<detail::response_sink> sink, std::uint64_t sequence) noexcept
      : sink_(std::move(sink)), sequence_(sequence) {}
  responder(responder&&) noexcept = default;
  responder& operator=(responder&& other) noexcept {
    if (this != &other) {
      abandon();
      sink_ = std::move(other.sink_);
      sequence_ = other.sequence_;
    }
    return *this;
  }
  ~responder() { abandon(); }

  /// Sends the response.
  void send(response r) {
    if (auto sink = std::exchange(sink_, nullptr)) sink->deliver(sequence_, std::move(r));
  }
  /// Answers as if the handler had thrown `e` (500, or the problem of a `problem_error`).
  void fail(std::exception_ptr e) {
    if (auto sink = std::exchange(sink_, nullptr)) sink->deliver_exception(sequence_, std::move(e));
  }
  /// Says that the handler will not use its request again (headers, parameters, body, anything it views), so that
  /// the connection may free the request's memory while the response is pending: a handler that holds many
  /// requests for long (a parked long poll) then costs little more than its own state. The request's
  /// cancellation slot, taken before, stays valid. Ignored when the route has `after` middleware (which reads the
  /// request when the response comes), when the request's body is streamed, when further requests are already
  /// buffered on the connection, and after `send` or `fail`.
  void release_request() {
    if (sink_) sink_->release_request(sequence_);
  }
  /// True until `send` or `fail` has been called.
  bool pending() const noexcept { return sink_ != nullptr; }
  /// The connection's executor (where coroutine handlers run).
  asio::any_io_executor get_executor() const { return sink_->sink_executor(); }

 private:
  void abandon() noexcept {
    if (auto sink = std::exchange(sink_, nullptr)) {
      try {
        sink->deliver(sequence_, response::problem(status::internal_server_error, "The handler gave no response."));
      } catch (...) {
        // Delivery only fails when memory is exhausted; the connection's timeouts then end the request.
      }
    }
  }

  std::shared_ptr<detail::response_sink> sink_;
  std::uint64_t sequence_ = 0;
};

/// The one signature every handler is adapted to.
using handler_fn = std::function<void(request&, responder&&)>;

template <class F>
concept plain_handler = std::invocable<F&, request&> && std::same_as<std::invoke_result_t<F&, request&>, response>;
template <class F>
concept coroutine_handler =
    std::invocable<F&, request&> && std::same_as<std::invoke_result_t<F&, request&>, asio::awaitable<response>>;
template <class F>
concept deferred_handler = std::invocable<F&, request&, responder&&>;

/// Adapts any of the three handler shapes to `handler_fn`.
template <class F>
  requires plain_handler<F> || coroutine_handler<F> || deferred_handler<F>
handler_fn make_handler(F f) {
  if constexpr (deferred_handler<F>) {
    return handler_fn(std::move(f));
  } else if constexpr (plain_handler<F>) {
    return [f = std::move(f)](request& req, responder&& res) mutable { res.send(f(req)); };
  } else {
    return [f = std::move(f)](request& req, responder&& res) mutable {
      auto ex = res.get_executor();
      auto slot = req.cancellation_slot();
      // The completion handler reports an exception instead of letting it escape (never `detached`), and is bound
      // to the request's cancellation slot so that a client going away cancels what the coroutine awaits.
      asio::co_spawn(ex, f(req),
                     asio::bind_cancellation_slot(slot, [res = std::move(res)](std::exception_ptr e, response r) mutable {
                       if (e) {
                         res.fail(std::move(e));
                       } else {
                         res.send(std::move(r));
                       }
                     }));
    };
  }
}

}  // namespace switchboard::http
