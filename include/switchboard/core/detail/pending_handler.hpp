// switchboard/core/detail/pending_handler.hpp
//
// A type-erased, move-only completion handler kept while an asynchronous operation waits (for queue room, for an
// item, for a timer). It keeps the handler's executor busy (outstanding work) and completes by posting to it, so
// that a handler never runs inside the call that completed it. Many handlers completed at once (every long poll
// waiting on a topic, when one message arrives) go through a `completion_batch` instead: one post per event loop,
// not one per handler.
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

#include <algorithm>
#include <cstddef>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace switchboard::detail {

template <class Signature>
class pending_handler;
template <class Signature>
class completion_batch;

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
  friend class completion_batch<void(Args...)>;

  struct concept_t {
    virtual ~concept_t() = default;
    virtual void post(std::unique_ptr<concept_t> self, Args... args) = 0;
    /// Runs the handler here and now: the caller is on its executor (a batch that was posted there).
    virtual void invoke(std::unique_ptr<concept_t> self, Args... args) = 0;
    /// The io_context whose plain executor the handler runs on, so that it may share a batch; null otherwise.
    virtual asio::io_context* batch_context() const noexcept = 0;
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

    void invoke(std::unique_ptr<concept_t> self, Args... args) override {
      auto h = std::move(handler);
      auto ex = std::move(work);  // the executor stays busy until the handler has run
      self.reset();
      std::move(h)(std::forward<Args>(args)...);
    }

    asio::io_context* batch_context() const noexcept override {
      if constexpr (std::is_same_v<Executor, asio::io_context::executor_type>) {
        return &work.context();
      } else {
        return nullptr;
      }
    }

    Handler handler;
    work_type work;
  };

  std::unique_ptr<concept_t> impl_;
};

/// Completes many pending handlers at once with one post per event loop: `add` each, then `post`. Handlers on the
/// plain executor of the same io_context (everything on a switchboard runtime) run one after the other, in the
/// order they were added, inside one posted operation; any other handler is posted alone, as `complete` does. So a
/// publish that answers 10,000 waiting reads costs as many posts as there are threads, not 10,000 (the
/// fan-out rule of the broker, docs/pubsub.md).
template <class... Args>
class completion_batch<void(Args...)> {
 public:
  using handler_type = pending_handler<void(Args...)>;

  completion_batch() = default;
  completion_batch(const completion_batch&) = delete;
  completion_batch& operator=(const completion_batch&) = delete;
  /// Posts what was added and not posted yet.
  ~completion_batch() { post(); }

  /// Takes `handler` (left empty) to complete with `args` at the next `post`.
  void add(handler_type& handler, Args... args) {
    std::unique_ptr<concept_t> impl = std::move(handler.impl_);
    asio::io_context* const context = impl->batch_context();
    if (context == nullptr) {
      concept_t& alone = *impl;
      return alone.post(std::move(impl), std::forward<Args>(args)...);
    }
    auto group = std::find_if(groups_.begin(), groups_.end(), [&](const auto& g) { return g.context == context; });
    if (group == groups_.end()) group = groups_.insert(groups_.end(), group_type{context, take_spare_entries()});
    group->entries.push_back(entry{std::move(impl), std::tuple<Args...>(std::forward<Args>(args)...)});
  }

  /// Posts one operation per io_context that runs its handlers.
  void post() {
    for (group_type& g : groups_) asio::post(g.context->get_executor(), run{std::move(g.entries)});
    groups_.clear();
  }

 private:
  using concept_t = typename handler_type::concept_t;

  struct entry {
    std::unique_ptr<concept_t> handler;
    std::tuple<Args...> args;
  };

  struct group_type {
    asio::io_context* context;
    std::vector<entry> entries;
  };

  // The storage of a batch that has run, kept by the thread that ran it for the next batch it makes: a publish that
  // completes 10,000 waiting readers would otherwise grow a vector to 10,000 entries (1.4 MB, in 15 steps) every
  // time. At most `max_spare_entries` are kept per thread.
  static constexpr std::size_t max_spare_entries = 16384;

  static std::vector<entry>& spare_entries() {
    thread_local std::vector<entry> spare;
    return spare;
  }

  static std::vector<entry> take_spare_entries() { return std::exchange(spare_entries(), {}); }

  static void keep_spare_entries(std::vector<entry>& entries) {
    std::vector<entry>& spare = spare_entries();
    if (entries.capacity() <= spare.capacity() || entries.capacity() > max_spare_entries) return;
    entries.clear();
    spare = std::move(entries);
  }

  // The posted operation. A handler that throws lets the exception out of `io_context::run`, as a posted handler
  // would; the handlers after it are posted again first, so that none is lost.
  struct run {
    std::vector<entry> entries;

    void operator()() {
      for (std::size_t i = 0; i < entries.size(); ++i) {
        entry& e = entries[i];
        try {
          concept_t& handler = *e.handler;
          std::apply([&](Args&... args) { handler.invoke(std::move(e.handler), std::move(args)...); }, e.args);
        } catch (...) {
          if (i + 1 < entries.size()) {
            asio::io_context::executor_type ex = entries[i + 1].handler->batch_context()->get_executor();
            entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(i + 1));
            asio::post(ex, run{std::move(entries)});
          }
          throw;
        }
      }
      keep_spare_entries(entries);
    }
  };

  std::vector<group_type> groups_;
};

}  // namespace switchboard::detail
