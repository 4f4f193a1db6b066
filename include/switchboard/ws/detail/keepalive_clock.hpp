// switchboard/ws/detail/keepalive_clock.hpp
//
// One clock per execution context for the keep-alive pings of the WebSocket sessions that run on it. A session
// with pings on joins its context's clock instead of holding a timer and a pending wait of its own: those were
// about a quarter of what an idle session holds (0.25 KiB). The HTTP server enforces its timeouts the same way
// (server_shard's clock).
//
// The clock ticks only while it has members, every quarter of the shortest ping interval or pong timeout among
// them (between 10 ms and 1 s), and on each tick calls every member's `keepalive_tick`: the member decides, from
// when it last heard from its peer and when it pinged, whether to ping now or to give up. A ping or a cut is
// therefore at most a quarter of its timeout late.
//
// Threads. Members join and leave from their own executors, and a member also leaves in its destructor, so the
// member list is guarded by a mutex. A tick takes a strong reference to each member under the lock and calls them
// after releasing it, on the clock's thread; a member whose executor is not that thread's (a strand) dispatches to
// its own executor itself.
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
#include <vector>

namespace switchboard::ws::detail {

class keepalive_clock final : public asio::execution_context::service {
 public:
  /// What the clock needs of a member.
  class member {
   public:
    /// Called on each tick, with the time of the tick, on the clock's thread (see above).
    virtual void keepalive_tick(std::chrono::steady_clock::time_point now) = 0;
    /// A strong reference for the length of a tick: empty once the member is being destroyed.
    virtual std::shared_ptr<member> keepalive_ref() noexcept = 0;

   protected:
    member() = default;
    ~member() = default;

   private:
    friend class keepalive_clock;
    keepalive_clock* clock_ = nullptr;  // the clock it has joined (null: none)
    std::size_t index_ = 0;             // its place in that clock's list
  };

  /// Identifies the service to `asio::use_service`.
  inline static asio::execution_context::id id;

  explicit keepalive_clock(asio::execution_context& context) : asio::execution_context::service(context) {}

  /// The clock of the execution context that runs `executor`.
  static keepalive_clock& of(const asio::any_io_executor& executor) {
    return asio::use_service<keepalive_clock>(asio::query(executor, asio::execution::context));
  }

  /// Adds `m`, whose shortest timeout is `shortest`. The clock's timer runs on `executor` (the first member's),
  /// once started. Nothing happens once the context is shutting down.
  void join(member& m, const asio::any_io_executor& executor, std::chrono::milliseconds shortest) {
    const std::lock_guard lock(mutex_);
    if (shut_down_ || m.clock_ != nullptr) return;
    m.clock_ = this;
    m.index_ = members_.size();
    members_.push_back(&m);
    const auto period =
        std::clamp<std::chrono::milliseconds>(shortest / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
    if (!timer_) timer_.emplace(executor);
    if (period < period_) {
      period_ = period;
      if (armed_) timer_->cancel();  // its handler re-arms with the new period
    }
    if (!armed_) arm();
  }

  /// Removes `m` from the clock it joined, if any. The clock stops when its last member leaves (so that a context
  /// with nothing else to do returns from `run`).
  static void leave(member& m) noexcept {
    keepalive_clock* clock = m.clock_;
    if (clock == nullptr) return;
    const std::lock_guard lock(clock->mutex_);
    auto& members = clock->members_;
    members[m.index_] = members.back();  // the last member takes m's place
    members[m.index_]->index_ = m.index_;
    members.pop_back();
    m.clock_ = nullptr;
    if (members.empty() && clock->armed_ && clock->timer_) clock->timer_->cancel();
  }

 private:
  void shutdown() override {
    const std::lock_guard lock(mutex_);
    shut_down_ = true;
    timer_.reset();  // its pending wait is abandoned with the context's other operations
  }

  // Called with the mutex held.
  void arm() {
    armed_ = true;
    timer_->expires_after(period_);
    timer_->async_wait([this](std::error_code ec) { tick(ec); });
  }

  void tick(std::error_code ec) {
    std::vector<std::shared_ptr<member>> members;
    {
      const std::lock_guard lock(mutex_);
      armed_ = false;
      if (shut_down_ || members_.empty()) return;
      if (!ec) {  // else cancelled by a shorter period: only re-arm
        members.reserve(members_.size());
        for (member* m : members_) {
          if (auto ref = m->keepalive_ref()) members.push_back(std::move(ref));
        }
      }
      arm();
    }
    const auto now = std::chrono::steady_clock::now();
    for (const auto& m : members) m->keepalive_tick(now);
  }

  std::mutex mutex_;
  std::vector<member*> members_;
  std::optional<asio::steady_timer> timer_;
  std::chrono::milliseconds period_ = std::chrono::seconds(1);
  bool armed_ = false;
  bool shut_down_ = false;
};

}  // namespace switchboard::ws::detail
