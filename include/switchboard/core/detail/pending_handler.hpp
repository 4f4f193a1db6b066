// switchboard/core/detail/pending_handler.hpp
//
// A type-erased, move-only completion handler kept while an asynchronous operation waits (for queue room, for an
// item, for a timer). It keeps the handler's executor busy (outstanding work) and completes by posting to it, so
// that a handler never runs inside the call that completed it.
#pragma once

#include <asio/associated_allocator.hpp>
#include <asio/associated_executor.hpp>
#include <asio/any_io_executor.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>

#include <memory>
#include <tuple>
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
  pending_handler(Handler&& handler, const asio::any_io_executor& fallback)
      : impl_(std::make_unique<model<std::decay_t<Handler>>>(std::forward<Handler>(handler), fallback)) {}

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

  template <class Handler>
  struct model final : concept_t {
    using executor_type = asio::associated_executor_t<Handler, asio::any_io_executor>;
    using work_type = std::decay_t<decltype(asio::prefer(std::declval<executor_type>(),
                                                         asio::execution::outstanding_work.tracked))>;

    model(Handler h, const asio::any_io_executor& fallback)
        : handler(std::move(h)),
          work(asio::prefer(asio::get_associated_executor(handler, fallback),
                            asio::execution::outstanding_work.tracked)) {}

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
