// switchboard/pubsub/detail/receive_handler.hpp
//
// The completion handler of a waiting `async_receive`, type-erased. It differs from core's `pending_handler` in one
// way that matters for fan-out cost: besides posting, it can *dispatch*, running the handler at once when the
// calling thread already runs the handler's executor. The broker delivers a subscription's events from one posted
// drain per executor and publish (never one post per subscriber); a coroutine waiting in `async_receive` on that
// executor then resumes inside the drain instead of costing one more post per event. Dispatch is used only from
// the drain, which is a handler of its own, so a handler never runs inside its initiating function.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace switchboard::pubsub::detail {

template <class... Args>
class receive_handler {
 public:
  receive_handler() = default;

  /// Takes `handler`; `fallback` is the executor used when the handler has none associated. Keeps that executor
  /// busy (outstanding work) until the handler has run.
  template <class Handler>
  receive_handler(Handler&& handler, const asio::any_io_executor& fallback)
      : impl_(std::make_unique<model<std::decay_t<Handler>>>(std::forward<Handler>(handler), fallback)) {}

  explicit operator bool() const noexcept { return impl_ != nullptr; }

  /// Runs the handler with `args` now if this thread runs its executor, else posts it there. Leaves this empty.
  void dispatch(Args... args) { impl_.release()->complete(true, std::move(args)...); }

  /// Posts the handler with `args` to its executor. Leaves this empty.
  void post(Args... args) { impl_.release()->complete(false, std::move(args)...); }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual void complete(bool dispatch, Args... args) = 0;
  };

  template <class Handler>
  struct model final : concept_t {
    using executor_type = asio::associated_executor_t<Handler, asio::any_io_executor>;
    using work_type = std::decay_t<decltype(asio::prefer(std::declval<executor_type>(),
                                                         asio::execution::outstanding_work.tracked))>;

    model(Handler h, const asio::any_io_executor& fallback)
        : handler(std::move(h)),
          work(asio::prefer(asio::get_associated_executor(handler, fallback),
                            asio::execution::outstanding_work.tracked)) {}

    // Called on the model released from `impl_`: frees itself before the handler runs, so that the handler may
    // start another receive at once.
    void complete(bool dispatch, Args... args) override {
      auto ex = std::move(work);
      auto bound = [h = std::move(handler), tuple = std::make_tuple(std::move(args)...)]() mutable {
        std::apply(std::move(h), std::move(tuple));
      };
      delete this;
      if (dispatch) {
        asio::dispatch(ex, std::move(bound));
      } else {
        asio::post(ex, std::move(bound));
      }
    }

    Handler handler;
    work_type work;
  };

  std::unique_ptr<concept_t> impl_;
};

}  // namespace switchboard::pubsub::detail
