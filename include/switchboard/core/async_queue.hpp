// switchboard/core/async_queue.hpp
//
// An asynchronous bounded queue: `bounded_queue` plus waiting. Producers `async_push` (from any thread), the
// consumer `async_pop`s; under `overflow_policy::wait` a producer's push completes only when there is room, so
// that a fast producer is slowed to the pace of its consumer instead of growing memory (DESIGN promise 2).
#pragma once

#include <switchboard/core/bounded_queue.hpp>
#include <switchboard/core/detail/pending_handler.hpp>
#include <switchboard/core/error.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <system_error>

namespace switchboard {

/// A bounded multi-producer, single-consumer queue bound to an executor.
///
/// Thread safety: `async_push`, `async_pop`, `close` and `dropped` may be called from any thread; the first three
/// run on the queue's executor. `try_push`, `try_pop` and `stats` must be called on that executor (they are the fast
/// path for code that already runs there). Pending operations keep the queue's state alive, so destroying the
/// `async_queue` (or assigning another to it) while operations wait is safe: it closes the queue and they complete
/// with `error::closed`.
template <class T, class Traits = queue_traits<T>>
class async_queue {
 public:
  using executor_type = asio::any_io_executor;
  using value_type = T;

  async_queue(executor_type executor, queue_limits limits)
      : state_(std::make_shared<state>(std::move(executor), limits)) {}

  ~async_queue() {
    if (state_) close();
  }

  async_queue(async_queue&&) noexcept = default;
  /// Closes this queue, as its destructor does, then takes over `other`'s.
  async_queue& operator=(async_queue&& other) noexcept {
    if (this != &other) {
      if (state_) close();
      state_ = std::move(other.state_);
    }
    return *this;
  }

  const executor_type& get_executor() const noexcept { return state_->executor; }

  /// Offers `item`. Completion signature: `void(std::error_code, push_outcome)`.
  ///  - Completes at once (posted) with the outcome of `bounded_queue::push` under every policy but `wait`.
  ///  - Under `wait`, when the queue is full, completes when the consumer has made room (`queued`), or with
  ///    `error::timeout` after `timeout` (if not zero; at once if negative, a deadline already past), or
  ///    `error::closed` if the queue closes first.
  ///  - Under `disconnect`, a full queue closes the queue and completes with `error::overflow_disconnect`.
  /// Cancellation: per-operation cancellation (terminal) of a waiting push completes it with
  /// `asio::error::operation_aborted` (and `push_outcome::must_wait`); the item is not queued. A cancellation
  /// that arrives after the push has completed does nothing.
  template <class Token>
  auto async_push(T item, std::chrono::steady_clock::duration timeout, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, push_outcome)>(
        [](auto handler, std::shared_ptr<state> s, T item, std::chrono::steady_clock::duration timeout) {
          // A cancellable push gets its id here, before it runs on the executor, so that its cancellation finds
          // this push and no other (not a later one, once this one has completed). Other pushes take one only if
          // they wait.
          auto slot = asio::get_associated_cancellation_slot(handler);
          const std::uint64_t id = slot.is_connected() ? ++s->next_id : 0;
          if (slot.is_connected()) {
            slot.assign([weak = std::weak_ptr<state>(s), id](asio::cancellation_type type) {
              if ((type & asio::cancellation_type::terminal) == asio::cancellation_type::none) return;
              auto alive = weak.lock();
              if (!alive) return;
              asio::dispatch(alive->executor, [alive, id] { alive->abandon(id, asio::error::operation_aborted); });
            });
          }
          auto ex = s->executor;
          asio::dispatch(ex, [s = std::move(s), item = std::move(item), timeout, id,
                              h = pending_push(std::move(handler), ex)]() mutable {
            s->push(std::move(item), timeout, id, std::move(h));
          });
        },
        token, state_, std::move(item), timeout);
  }

  /// `async_push` without a timeout.
  template <class Token>
  auto async_push(T item, Token&& token) {
    return async_push(std::move(item), std::chrono::steady_clock::duration::zero(), std::forward<Token>(token));
  }

  /// Takes the oldest item. Completion signature: `void(std::error_code, T)`; completes when an item is
  /// available, or with `error::closed` once the queue is closed and empty (queued items are still delivered
  /// after `close`). Only one pop may wait at a time. Cancellation: per-operation cancellation (terminal)
  /// completes a waiting pop with `asio::error::operation_aborted`; one that arrives after the pop has completed
  /// does nothing (a later pop goes on waiting).
  template <class Token>
  auto async_pop(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, T)>(
        [](auto handler, std::shared_ptr<state> s) {
          // A cancellable pop's id: its cancellation aborts this pop only, not a later one that nobody cancelled
          // (the signal of a completed pop may still be emitted, or arrive from another thread, after it
          // completed). 0 for a pop that cannot be cancelled. The slot holds the queue weakly, as a push's does: it
          // stays assigned after the pop completes, for as long as the signal lives or until its next operation,
          // and must not keep a destroyed queue's items alive that long.
          auto slot = asio::get_associated_cancellation_slot(handler);
          const std::uint64_t id = slot.is_connected() ? ++s->next_id : 0;
          if (slot.is_connected()) {
            slot.assign([weak = std::weak_ptr<state>(s), id](asio::cancellation_type type) {
              if ((type & asio::cancellation_type::terminal) == asio::cancellation_type::none) return;
              auto alive = weak.lock();
              if (!alive) return;
              asio::dispatch(alive->executor, [alive, id] { alive->cancel_pop(id); });
            });
          }
          auto ex = s->executor;
          asio::dispatch(ex, [s, id, h = pending_pop(std::move(handler), ex)]() mutable {
            s->pop(id, std::move(h));
          });
        },
        token, state_);
  }

  /// On the executor only: `bounded_queue::push` semantics, never waiting, for a producer that runs there (it
  /// saves `async_push`'s completion). Answers `must_wait` when the queue is full under `wait` or when producers
  /// already wait (a push must not overtake them), and `must_disconnect` when the queue is full under
  /// `disconnect` or closed; `item` is then left as it was, for `async_push`, which does what those call for.
  /// Otherwise `item` is taken and a waiting consumer woken.
  push_outcome try_push(T&& item) {
    if (!state_->producers.empty()) return push_outcome::must_wait;
    return state_->offer(item);
  }

  /// On the executor only: whether `item` may go to the consumer directly, by the caller's hand, instead of being
  /// queued and given to the consumer's waiting `async_pop` through a post. True when that pop waits, nothing is
  /// queued, no producer waits, the queue is open and has room for the item: the caller then delivers it itself
  /// (a WebSocket session's idle writer writes it at once), it counts as pushed and popped, and the pop goes on
  /// waiting. False otherwise, for `try_push`.
  bool hand_over(const T& item) {
    state& s = *state_;
    if (!s.consumer || !s.queue.empty() || !s.producers.empty() || s.closed) return false;
    if (!s.queue.has_room_for(Traits::bytes(item))) return false;
    s.queue.count_handed_over();
    return true;
  }

  /// On the executor only, by code that acts for the consumer: as `try_push`, but a waiting consumer is not woken.
  /// The caller takes the item with `try_pop` soon after (a WebSocket session's writer, once the messages of one
  /// read have been handled, gathers the answers their handlers queued into one write).
  push_outcome try_push_for_consumer(T&& item) {
    if (!state_->producers.empty()) return push_outcome::must_wait;
    return state_->offer(item, /*wake=*/false);
  }

  /// On the executor only: whether the consumer's `async_pop` waits, its completion not yet on its way.
  bool consumer_waiting() const noexcept { return static_cast<bool>(state_->consumer); }

  /// On the executor only: the oldest item, if any. Admits waiting producers into the room it makes. Taking the
  /// last item of a closed queue completes a waiting `async_pop` with `error::closed`, as `close` does when it
  /// finds the queue empty.
  std::optional<T> try_pop() {
    std::optional<T> item = state_->take();
    // A pop that waited through `close` (the queue held items then, queued without waking it:
    // `try_push_for_consumer`) would otherwise wait for ever: nothing can be pushed to a closed queue. It would
    // also keep its handler, and whatever the handler holds (a WebSocket session waits on it before it writes its
    // close frame), and the executor's work.
    if (item && state_->closed && state_->queue.empty() && state_->consumer) {
      state_->consumer.complete(error::closed, T{});
    }
    return item;
  }

  /// Frees the queue's storage if it is empty (`bounded_queue::release_storage`). On the queue's executor.
  void release_storage() noexcept { state_->queue.release_storage(); }

  /// Closes the queue: waiting producers complete with `error::closed`; the consumer drains what is queued and
  /// then gets `error::closed`. Safe from any thread; idempotent.
  void close() {
    asio::dispatch(state_->executor, [s = state_] { s->close(); });
  }

  /// On the executor only: the counters and current depth.
  queue_stats stats() const noexcept { return state_->queue.stats(); }
  /// Items the overflow policy discarded (`stats().dropped`: drop_oldest, drop_newest, conflate), from any thread.
  std::uint64_t dropped() const noexcept { return state_->dropped.load(std::memory_order_relaxed); }
  const queue_limits& limits() const noexcept { return state_->queue.limits(); }
  bool is_closed() const noexcept { return state_->closed; }

 private:
  using pending_push = detail::pending_handler<void(std::error_code, push_outcome)>;
  using pending_pop = detail::pending_handler<void(std::error_code, T)>;

  struct waiting_push {
    T item;
    pending_push handler;
    std::unique_ptr<asio::steady_timer> timer;  // only when the push has a timeout
    std::uint64_t id;
  };

  struct state : std::enable_shared_from_this<state> {
    state(executor_type ex, queue_limits limits) : executor(std::move(ex)), queue(limits) {}

    void push(T item, std::chrono::steady_clock::duration timeout, std::uint64_t id, pending_push handler) {
      if (closed) {
        handler.complete(error::closed, push_outcome::dropped);
        return;
      }
      if (!producers.empty()) {
        // Keep FIFO order among producers: a new push may not overtake ones already waiting.
        wait_for_room(std::move(item), timeout, id, std::move(handler));
        return;
      }
      const push_outcome outcome = offer(item);
      switch (outcome) {
        case push_outcome::must_wait:
          wait_for_room(std::move(item), timeout, id, std::move(handler));
          return;
        case push_outcome::must_disconnect:
          close();
          handler.complete(error::overflow_disconnect, outcome);
          return;
        default:
          handler.complete(std::error_code{}, outcome);
      }
    }

    // Pushes `item` and, if `wake`, wakes the consumer. A refused item (must_wait, must_disconnect) stays in `item`.
    push_outcome offer(T& item, bool wake = true) {
      if (closed) return push_outcome::must_disconnect;
      const std::uint64_t dropped_before = queue.stats().dropped;
      const push_outcome outcome = queue.push(std::move(item));
      // One push may discard several items (drop_oldest making room for a large one under the byte limit).
      if (const std::uint64_t lost = queue.stats().dropped - dropped_before; lost != 0) {
        dropped.fetch_add(lost, std::memory_order_relaxed);
      }
      if (wake && accepted(outcome)) wake_consumer();
      return outcome;
    }

    void wait_for_room(T item, std::chrono::steady_clock::duration timeout, std::uint64_t id, pending_push handler) {
      if (timeout < std::chrono::steady_clock::duration::zero()) {
        // A deadline already past times out now: through a timer it would wait for the timer's handler, and room
        // made before that would admit it.
        handler.complete(error::timeout, push_outcome::must_wait);
        return;
      }
      if (id == 0) id = ++next_id;  // one that cannot be cancelled still needs an id for its timeout
      std::unique_ptr<asio::steady_timer> timer;
      if (timeout != std::chrono::steady_clock::duration::zero()) {
        timer = std::make_unique<asio::steady_timer>(executor, timeout);
        timer->async_wait([weak = this->weak_from_this(), id](std::error_code ec) {
          if (ec) return;
          if (auto s = weak.lock()) s->abandon(id, error::timeout);
        });
      }
      producers.push_back(waiting_push{std::move(item), std::move(handler), std::move(timer), id});
    }

    // Completes the waiting push `id` with `ec` (its timeout, or its cancellation), its item not queued. Does
    // nothing if that push no longer waits. The pushes behind it may fit where it did not (a smaller item under
    // `max_bytes`): they are admitted now, not when the consumer next takes an item, which a slow consumer may
    // not do before their own deadlines.
    void abandon(std::uint64_t id, std::error_code ec) {
      for (auto it = producers.begin(); it != producers.end(); ++it) {
        if (it->id == id) {
          auto handler = std::move(it->handler);
          if (it->timer) it->timer->cancel();
          producers.erase(it);
          handler.complete(ec, push_outcome::must_wait);
          admit_producers();
          return;
        }
      }
    }

    void pop(std::uint64_t id, pending_pop handler) {
      if (auto item = take()) {
        handler.complete(std::error_code{}, std::move(*item));
      } else if (closed) {
        handler.complete(error::closed, T{});
      } else {
        consumer = std::move(handler);
        consumer_id = id;
      }
    }

    void cancel_pop(std::uint64_t id) {
      if (consumer && consumer_id == id && id != 0) consumer.complete(asio::error::operation_aborted, T{});
    }

    std::optional<T> take() {
      if (queue.empty()) return std::nullopt;
      std::optional<T> item(queue.pop());
      admit_producers();
      return item;
    }

    void admit_producers() {
      while (!producers.empty() && queue.has_room_for(Traits::bytes(producers.front().item))) {
        waiting_push w = std::move(producers.front());
        producers.pop_front();
        if (w.timer) w.timer->cancel();
        queue.push(std::move(w.item));
        w.handler.complete(std::error_code{}, push_outcome::queued);
      }
    }

    void wake_consumer() {
      if (!consumer) return;
      auto item = take();
      consumer.complete(std::error_code{}, std::move(*item));
    }

    void close() {
      if (closed) return;
      closed = true;
      while (!producers.empty()) {
        waiting_push w = std::move(producers.front());
        producers.pop_front();
        if (w.timer) w.timer->cancel();
        w.handler.complete(error::closed, push_outcome::must_disconnect);
      }
      if (consumer && queue.empty()) consumer.complete(error::closed, T{});
    }

    executor_type executor;
    bounded_queue<T, Traits> queue;
    // FIFO of pushes waiting for room (wait policy). A list: it costs nothing while empty, which it nearly always
    // is (libstdc++'s deque allocates about 450 bytes up front, for every queue, say every WebSocket's).
    std::list<waiting_push> producers;
    pending_pop consumer;
    std::uint64_t consumer_id = 0;           // the id of the waiting pop (0: it cannot be cancelled)
    std::atomic<std::uint64_t> next_id = 0;  // ids of pushes and pops, taken on any thread; 0 is none
    std::atomic<std::uint64_t> dropped = 0;  // queue.stats().dropped, for `dropped()` on any thread
    bool closed = false;
  };

  std::shared_ptr<state> state_;
};

}  // namespace switchboard
