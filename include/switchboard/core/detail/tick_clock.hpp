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
//
// Lifetime. The clock is a service of its context, freed when the context is destroyed, which may happen on another
// thread while a member leaves (in its destructor) or advances. So the list, its mutex and the timer live in a small
// shared state that a member holds a reference to while it is joined: leave and advance always lock a mutex that is
// still alive, and see under that lock whether the member is still in the list (the context's shutdown empties it
// and drops the timer, before the services the timer uses are shut down: see `of`).
// The member's own fields are written only by the member's own calls (join, leave, advance, which it makes one at
// a time) and, for its place in the list, under the lock; never by the shutdown.
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
  struct state;

 public:
  using time_point = std::chrono::steady_clock::time_point;

  /// What the clock needs of a member. A member makes its calls to `join`, `leave` and `advance` one at a time (from
  /// its own executor, or its destructor).
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
    std::shared_ptr<state> clock_;  // the state of the clock it joined, until it leaves (null: none)
    std::size_t index_ = 0;         // its place in that clock's list while it is in it (under the clock's mutex)
  };

  /// Identifies the service to `asio::use_service`.
  inline static asio::execution_context::id id;

  explicit tick_clock(asio::execution_context& context)
      : asio::execution_context::service(context), state_(std::make_shared<state>()) {}

  /// The clock of the execution context that runs `executor`.
  static tick_clock& of(const asio::any_io_executor& executor) {
    asio::execution_context& context = asio::query(executor, asio::execution::context);
    // Asio shuts a context's services down newest first, and until the clock's own shutdown a member leaving on its
    // thread may cancel the clock's timer: the services behind the timer (the reactor's timer queue) must still be
    // up then. So they are made before the clock, by a timer that does nothing.
    if (!asio::has_service<tick_clock>(context)) {
      const asio::steady_timer first(executor);
    }
    return asio::use_service<tick_clock>(context);
  }

  /// Adds `m`, first due at `due`, whose shortest timeout is `shortest`; nothing if it is on this clock already. A
  /// member on another clock (whose context may be gone) leaves that one first. The clock's timer runs on
  /// `executor` (the first member's) once started. Nothing happens once the context is shutting down.
  void join(member& m, const asio::any_io_executor& executor, time_point due, std::chrono::milliseconds shortest) {
    if (m.clock_ != state_) leave(m);
    state& s = *state_;
    const std::lock_guard lock(s.mutex);
    if (s.shut_down || m.clock_ != nullptr) return;
    m.clock_ = state_;
    m.index_ = s.members.size();
    s.members.push_back({&m, due});
    const auto period =
        std::clamp<std::chrono::milliseconds>(shortest / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
    if (!s.timer) s.timer.emplace(executor);
    if (period < s.period) {
      s.period = period;
      if (s.armed) s.timer->cancel();  // its handler re-arms with the new period
    }
    if (!s.armed) arm();
  }

  /// Makes `m` due at `due` if that is earlier than when it is due now; nothing if it is not on a clock.
  static void advance(member& m, time_point due) noexcept {
    state* s = m.clock_.get();
    if (s == nullptr) return;
    const std::lock_guard lock(s->mutex);
    if (!s->holds(m)) return;  // dropped by the context's shutdown
    time_point& current = s->members[m.index_].due;
    current = std::min(current, due);
  }

  /// Removes `m` from the clock it joined, if any. The clock stops when its last member leaves (so that a context
  /// with nothing else to do returns from `run`).
  static void leave(member& m) noexcept {
    const std::shared_ptr<state> s = std::move(m.clock_);  // outlives the lock (the last reference may be this one)
    if (s == nullptr) return;
    const std::lock_guard lock(s->mutex);
    if (!s->holds(m)) return;  // dropped by the context's shutdown
    auto& members = s->members;
    members[m.index_] = members.back();  // the last member takes m's place
    members[m.index_].m->index_ = m.index_;
    members.pop_back();
    if (members.empty() && s->armed && s->timer) s->timer->cancel();
  }

 private:
  struct entry {
    member* m;
    time_point due;
  };

  // What members reach from their own threads: it lives as long as the clock or a member that joined it.
  struct state {
    // Whether `m` is in the list (it was dropped if the clock shut down since it joined). Called with the mutex held.
    bool holds(const member& m) const noexcept { return m.index_ < members.size() && members[m.index_].m == &m; }

    std::mutex mutex;  // guards all below, and the members' `index_`
    std::vector<entry> members;
    std::optional<asio::steady_timer> timer;  // reset at shutdown: nothing of the context outlives it
    std::chrono::milliseconds period = std::chrono::seconds(1);
    bool armed = false;
    bool shut_down = false;
  };

  // The context is going away, and this clock with it: its members are dropped (a member that outlives the context
  // finds itself no longer in the list when it leaves or advances, and can join another context's clock).
  void shutdown() override {
    state& s = *state_;
    const std::lock_guard lock(s.mutex);
    s.shut_down = true;
    s.members.clear();
    s.timer.reset();  // its pending wait is abandoned with the context's other operations
  }

  // Called with the mutex held.
  void arm() {
    state& s = *state_;
    s.armed = true;
    s.timer->expires_after(s.period);
    s.timer->async_wait([this](std::error_code ec) { on_timer(ec); });
  }

  // Runs in the context, so never concurrently with `shutdown` (and never with itself: one wait is pending at most).
  void on_timer(std::error_code ec) {
    state& s = *state_;
    std::vector<std::shared_ptr<member>> due;
    const time_point now = std::chrono::steady_clock::now();
    {
      const std::lock_guard lock(s.mutex);
      s.armed = false;
      if (s.shut_down || s.members.empty()) return;
      if (!ec) {  // else cancelled by a shorter period: only re-arm
        for (const entry& e : s.members) {
          if (e.due > now) continue;
          if (auto ref = e.m->tick_ref()) due.push_back(std::move(ref));
        }
      }
      arm();
    }
    for (const auto& m : due) {
      const time_point next = m->tick(now);
      const std::lock_guard lock(s.mutex);
      if (s.holds(*m)) s.members[m->index_].due = next;  // unless it left meanwhile
    }
  }

  const std::shared_ptr<state> state_;  // shared with the members that joined
};

}  // namespace switchboard::detail
