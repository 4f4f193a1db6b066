// switchboard/core/detail/tick_clock.hpp
//
// One clock per execution context for coarse, long deadlines that many objects on it keep: WebSocket keep-alive
// (ws/session.hpp) and the wait of a parked long poll (longpoll/endpoint.hpp). A member joins its context's clock
// instead of holding a timer and a pending wait of its own: the timer, its wait and their place in Asio's timer
// heap cost a few hundred bytes per object and an allocation, a heap insertion and a cancellation per wait. The HTTP
// server enforces its timeouts the same way (server_shard's clock).
//
// The clock ticks only while it has members, every quarter of the shortest timeout it was joined with (between
// 10 ms and 1 s). On each tick it calls `tick(now)` on every member whose due time has come; the member does what
// is due and returns when it wants to be called next (it may be called later, never earlier). So a deadline fires
// at most a quarter of its timeout (or 10 ms) late, and a tick costs a comparison per member that is not due.
//
// Threads. Members join and leave from their own executors, and a member also leaves in its destructor, so the
// member list is guarded by a mutex. A tick takes a strong reference to each due member under the lock and calls
// them after releasing it, on the clock's thread; a member whose executor is not that thread's (a strand)
// dispatches to its own executor itself and returns a due time of one period on.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/query.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace switchboard::detail {

class tick_clock final : public asio::execution_context::service {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  /// What the clock needs of a member.
  class member {
   public:
    /// Called on the clock's thread once `now` has reached the member's due time. Returns the next due time
    /// (`time_point::max()`: none until it joins again).
    virtual time_point tick(time_point now) = 0;
    /// A strong reference for the length of a tick: empty once the member is being destroyed.
    virtual std::shared_ptr<member> tick_ref() noexcept = 0;

   protected:
    member() = default;
    ~member() = default;

   private:
    friend class tick_clock;
    tick_clock* clock_ = nullptr;  // the clock it has joined (null: none)
    std::size_t index_ = 0;        // its place in that clock's list
  };

  /// Identifies the service to `asio::use_service`.
  inline static asio::execution_context::id id;

  explicit tick_clock(asio::execution_context& context) : asio::execution_context::service(context) {}

  /// The clock of the execution context that runs `executor`.
  static tick_clock& of(const asio::any_io_executor& executor) {
    return asio::use_service<tick_clock>(asio::query(executor, asio::execution::context));
  }

  /// Adds `m`, first due at `due`, whose shortest timeout is `shortest`. The clock's timer runs on `executor`
  /// (the first member's) once started. Nothing happens once the context is shutting down.
  void join(member& m, const asio::any_io_executor& executor, time_point due, std::chrono::milliseconds shortest) {
    const std::lock_guard lock(mutex_);
    if (shut_down_ || m.clock_ != nullptr) return;
    m.clock_ = this;
    m.index_ = members_.size();
    members_.push_back({&m, due});
    const auto period =
        std::clamp<std::chrono::milliseconds>(shortest / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
    if (!timer_) timer_.emplace(executor);
    if (period < period_) {
      period_ = period;
      if (armed_) timer_->cancel();  // its handler re-arms with the new period
    }
    if (!armed_) arm();
  }

  /// Makes `m` due at `due` if that is earlier than when it is due now; nothing if it has not joined a clock.
  static void advance(member& m, time_point due) noexcept {
    tick_clock* clock = m.clock_;
    if (clock == nullptr) return;
    const std::lock_guard lock(clock->mutex_);
    time_point& current = clock->members_[m.index_].due;
    current = std::min(current, due);
  }

  /// Removes `m` from the clock it joined, if any. The clock stops when its last member leaves (so that a context
  /// with nothing else to do returns from `run`).
  static void leave(member& m) noexcept {
    tick_clock* clock = m.clock_;
    if (clock == nullptr) return;
    const std::lock_guard lock(clock->mutex_);
    auto& members = clock->members_;
    members[m.index_] = members.back();  // the last member takes m's place
    members[m.index_].m->index_ = m.index_;
    members.pop_back();
    m.clock_ = nullptr;
    if (members.empty() && clock->armed_ && clock->timer_) clock->timer_->cancel();
  }

 private:
  struct entry {
    member* m;
    time_point due;
  };

  // The context is going away, and this clock with it: the members forget it, so that one that outlives the
  // context (held elsewhere) neither touches the freed clock when it leaves or advances, nor is kept from joining
  // another context's clock.
  void shutdown() override {
    const std::lock_guard lock(mutex_);
    shut_down_ = true;
    for (const entry& e : members_) e.m->clock_ = nullptr;
    members_.clear();
    timer_.reset();  // its pending wait is abandoned with the context's other operations
  }

  // Called with the mutex held.
  void arm() {
    armed_ = true;
    timer_->expires_after(period_);
    timer_->async_wait([this](std::error_code ec) { on_timer(ec); });
  }

  void on_timer(std::error_code ec) {
    std::vector<std::shared_ptr<member>> due;
    const time_point now = std::chrono::steady_clock::now();
    {
      const std::lock_guard lock(mutex_);
      armed_ = false;
      if (shut_down_ || members_.empty()) return;
      if (!ec) {  // else cancelled by a shorter period: only re-arm
        for (const entry& e : members_) {
          if (e.due > now) continue;
          if (auto ref = e.m->tick_ref()) due.push_back(std::move(ref));
        }
      }
      arm();
    }
    for (const auto& m : due) {
      const time_point next = m->tick(now);
      const std::lock_guard lock(mutex_);
      if (m->clock_ == this) members_[m->index_].due = next;  // unless it left meanwhile
    }
  }

  std::mutex mutex_;
  std::vector<entry> members_;
  std::optional<asio::steady_timer> timer_;
  std::chrono::milliseconds period_ = std::chrono::seconds(1);
  bool armed_ = false;
  bool shut_down_ = false;
};

}  // namespace switchboard::detail
