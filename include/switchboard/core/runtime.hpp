// switchboard/core/runtime.hpp
//
// `runtime`: the shared event loop (DESIGN promise 1). N threads, each running its own `io_context`
// (shared-nothing: a connection lives on one thread for its whole life, so its state needs no locks); or one
// `io_context` the application already has. Servers shard their listeners across the runtime's contexts.
//
//   switchboard::runtime rt({.threads = 4});
//   switchboard::http::server server(rt, routes, {.port = 8080});
//   server.start();
//   auto report = rt.run();   // returns after SIGINT/SIGTERM (or rt.stop()) and the drain
//
// SIGINT and SIGTERM start a graceful drain of every registered component (`drainable`) with the grace period
// `runtime_options::drain_grace`; a second signal cuts the grace short.
#pragma once

#include <switchboard/core/detail/saturating_time.hpp>
#include <switchboard/core/drain.hpp>
#include <switchboard/core/error.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace switchboard {

struct runtime_options {
  /// Event-loop threads, each with its own io_context. 0 means `std::thread::hardware_concurrency()`.
  std::size_t threads = 0;
  /// Drain on SIGINT and SIGTERM.
  bool handle_signals = true;
  /// How long a drain (started by a signal, or by `stop()` without an argument) waits before cutting connections.
  std::chrono::milliseconds drain_grace{10'000};
};

class runtime {
  // `f`, made to do nothing once this runtime is gone. An application's own io_context goes on after the runtime
  // over it is destroyed, and may then run what the runtime posted to it (a `stop()` whose drain had not begun, a
  // component's late drain report): without this, on a destroyed runtime. (Owned contexts are shut down in the
  // destructor: what is queued there is destroyed, never run.) The runtime is destroyed on the thread that runs an
  // application's context or while it is not running, as any object its handlers use.
  // (Defined before its users: they need its deduced type.)
  template <class F>
  auto while_alive(F f) const {
    return [alive = std::weak_ptr<const bool>(alive_), f = std::move(f)](auto&&... args) mutable {
      if (!alive.expired()) f(std::forward<decltype(args)>(args)...);
    };
  }

 public:
  /// Owns `options.threads` io_contexts.
  explicit runtime(runtime_options options = {}) : options_(options) {
    std::size_t n = options_.threads != 0 ? options_.threads : std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    for (std::size_t i = 0; i < n; ++i) {
      owned_.push_back(std::make_unique<owned_context>());
      contexts_.push_back(owned_.back().get());
    }
    init_signals();
  }

  /// Uses one io_context that the application owns and runs (or lets `run()` run on the calling thread).
  explicit runtime(asio::io_context& context, runtime_options options = {}) : options_(options) {
    options_.threads = 1;
    contexts_.push_back(&context);
    external_ = true;
    init_signals();
  }

  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  ~runtime() {
    if (!external_) {
      for (auto* c : contexts_) c->stop();
    }
    join();
    // Handlers still queued on one context may hold I/O objects of another (the HTTP server destroyed after the
    // threads stopped leaves such handlers: its shards share a listener with an acceptor on every thread). So every
    // context is shut down, destroying those handlers while all the services still exist, before any is destroyed.
    for (auto& c : owned_) c->shutdown();
  }

  /// Number of event-loop threads (and io_contexts).
  std::size_t size() const noexcept { return contexts_.size(); }
  asio::io_context& context(std::size_t i) { return *contexts_.at(i); }
  asio::any_io_executor executor(std::size_t i = 0) { return contexts_.at(i)->get_executor(); }
  /// The executors, one per thread, for components that shard themselves.
  std::vector<asio::any_io_executor> executors() {
    std::vector<asio::any_io_executor> out;
    for (auto* c : contexts_) out.push_back(c->get_executor());
    return out;
  }

  /// Registers a component to drain on `stop`. It must stay alive until the drain has finished (or be removed).
  void add(drainable& component) {
    std::lock_guard lock(mutex_);
    components_.push_back(&component);
  }
  void remove(drainable& component) {
    std::lock_guard lock(mutex_);
    std::erase(components_, &component);
  }

  /// Runs every io_context: threads 1..N-1 in the background and thread 0 on the caller. Returns once a drain has
  /// finished (after `stop()` or a signal) and every thread has returned, with what the drain did.
  drain_report run() {
    start_background(1);
    contexts_[0]->run();
    join();
    return report();
  }

  /// Starts every io_context on background threads and returns at once; `wait()` joins them.
  void start() { start_background(0); }

  /// Waits for the threads started by `start()` to finish (after a drain), and returns what the drain did.
  drain_report wait() {
    join();
    return report();
  }

  /// Starts a graceful drain of every registered component with `grace` (default: `runtime_options::drain_grace`),
  /// then lets the threads finish. Safe from any thread and from a signal handler context via Asio; idempotent
  /// apart from shortening the grace.
  void stop(std::optional<std::chrono::milliseconds> grace = std::nullopt) {
    const auto deadline =
        detail::saturating_add(std::chrono::steady_clock::now(), grace.value_or(options_.drain_grace));
    asio::post(*contexts_[0], while_alive([this, deadline] { begin_drain(deadline); }));
  }

  /// True once a drain has been started.
  bool stopping() const noexcept { return stopping_.load(); }

  /// What the last drain did (valid after it has finished).
  drain_report report() const {
    std::lock_guard lock(mutex_);
    return report_;
  }

 private:
  void init_signals() {
    // Keep owned contexts running until a drain ends; an application's own context is its business.
    if (!external_) {
      for (auto* c : contexts_) guards_.emplace_back(c->get_executor());
    }
    if (!options_.handle_signals) return;
    signals_ = std::make_unique<asio::signal_set>(*contexts_[0], SIGINT, SIGTERM);
    wait_signal();
  }

  void wait_signal() {
    signals_->async_wait(while_alive([this](std::error_code ec, int) {
      if (ec) return;
      // First signal: drain with the configured grace. Second: cut now.
      const auto deadline = stopping_ ? std::chrono::steady_clock::now()
                                      : detail::saturating_add(std::chrono::steady_clock::now(), options_.drain_grace);
      // Wait for the next signal first: a drain with nothing to drain finishes inside begin_drain, and its finish()
      // must find that wait to cancel (a wait armed after it would keep context 0 busy for ever).
      wait_signal();
      begin_drain(deadline);
    }));
  }

  // Runs on context 0.
  void begin_drain(std::chrono::steady_clock::time_point deadline) {
    std::vector<drainable*> components;
    {
      std::lock_guard lock(mutex_);
      components = components_;
    }
    const bool first = !stopping_.exchange(true);
    if (!first) {
      // Already draining: only move the deadline earlier.
      for (auto* c : components) c->async_drain(deadline, [](drain_report) {});
      return;
    }
    if (components.empty()) {
      finish();
      return;
    }
    auto remaining = std::make_shared<std::atomic<std::size_t>>(components.size());
    for (auto* c : components) {
      c->async_drain(deadline, while_alive([this, remaining](drain_report r) {
        {
          std::lock_guard lock(mutex_);
          report_ += r;
        }
        if (remaining->fetch_sub(1) == 1) asio::post(*contexts_[0], while_alive([this] { finish(); }));
      }));
    }
  }

  // Everything is drained: release the work guards so that each thread returns once its context has no work
  // left. Work still queued (a response being written) completes first; an application that keeps long-lived
  // work of its own on the runtime (a periodic timer) must end it when drained (register a `drainable`).
  // SIGINT and SIGTERM go back to their default action: a signal during the rest of the shutdown (the application's
  // own clean-up, which may hang) ends the process instead of being swallowed by a drain that has already ended.
  void finish() {
    if (signals_) {
      std::error_code ignored;
      signals_->cancel(ignored);
      signals_->clear(ignored);
    }
    guards_.clear();
  }

  void start_background(std::size_t first) {
    for (std::size_t i = first; i < contexts_.size(); ++i) {
      threads_.emplace_back([c = contexts_[i]] { c->run(); });
    }
  }

  void join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

  // An io_context that the runtime can shut down (its services stop, its queued handlers are destroyed) before
  // destroying it, as asio::thread_pool does in its destructor; the destructor's own shutdown then finds nothing.
  class owned_context final : public asio::io_context {
   public:
    owned_context() : asio::io_context(1) {}  // concurrency hint 1: one thread runs it, so Asio skips some locking
    using asio::io_context::shutdown;
  };

  runtime_options options_;
  std::vector<std::unique_ptr<owned_context>> owned_;
  std::vector<asio::io_context*> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::unique_ptr<asio::signal_set> signals_;
  std::vector<std::thread> threads_;
  mutable std::mutex mutex_;
  std::vector<drainable*> components_;
  drain_report report_;
  std::atomic<bool> stopping_{false};
  bool external_ = false;
  std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);  // expires with the runtime
};

}  // namespace switchboard
