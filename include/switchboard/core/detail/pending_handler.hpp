// switchboard/core/detail/pending_handler.hpp
//
// A type-erased, move-only completion handler kept while an asynchronous operation waits (for queue room, for an
// item, for a timer). It keeps the handler's executor busy (outstanding work) and completes by posting to it, so
// that a handler never runs inside the call that completed it.
//
// When that executor is an `any_io_executor` wrapping an io_context's (as it is for everything on a switchboard
// runtime), the io_context's executor itself is kept: 8 bytes instead of 56 in every waiting handler, and a post
// without the polymorphic wrapper.
#pragma once

#include <asio/associated_allocator.hpp>
#include <asio/associated_executor.hpp>
#include <asio/any_io_executor.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace switchboard::detail {

template <class Signature>
class pending_handler;

template <class... Args>
class pending_handler<void(Args...)> {
 public:
  pending_handler() = default;

  /// Takes `handler`; `fallback` is the executor used when the handler has none associated.
  template <class Handler>
  pending_handler(Handler&& handler, const asio::any_io_executor& fallback) {
    using handler_type = std::decay_t<Handler>;
    using executor_type = asio::associated_executor_t<handler_type, asio::any_io_executor>;
    const executor_type executor = asio::get_associated_executor(handler, fallback);
    if constexpr (std::is_same_v<executor_type, asio::any_io_executor>) {
      if (const auto* context = executor.template target<asio::io_context::executor_type>()) {
        impl_ = std::make_unique<model<handler_type, asio::io_context::executor_type>>(
            std::forward<Handler>(handler), *context);
        return;
      }
    }
    impl_ = std::make_unique<model<handler_type, executor_type>>(std::forward<Handler>(handler), executor);
  }

  explicit operator bool() const noexcept { return impl_ != nullptr; }

  /// Posts the handler with `args` to its executor. Leaves this object empty.
  void complete(Args... args) {
    auto impl = std::move(impl_);
    impl->post(std::move(impl), std::forward<Args>(args)...);
  }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual void post(std::unique_ptr<concept_t> self, Args... args) = 0;
  };

  // `Handler` completing on `Executor`, which is kept busy (tracked) until then.
  template <class Handler, class Executor>
  struct model final : concept_t {
    using work_type = std::decay_t<decltype(asio::prefer(std::declval<Executor>(),
                                                         asio::execution::outstanding_work.tracked))>;

    model(Handler h, const Executor& executor)
        : handler(std::move(h)), work(asio::prefer(executor, asio::execution::outstanding_work.tracked)) {}

    void post(std::unique_ptr<concept_t> self, Args... args) override {
      // Move everything out before freeing the model, so that the handler may start another wait at once.
      auto ex = std::move(work);
      auto bound = [h = std::move(handler), tuple = std::make_tuple(std::forward<Args>(args)...)]() mutable {
        std::apply(std::move(h), std::move(tuple));
      };
      self.reset();
      asio::post(ex, std::move(bound));
    }

    Handler handler;
    work_type work;
  };

  std::unique_ptr<concept_t> impl_;
};

}  // namespace switchboard::detail
