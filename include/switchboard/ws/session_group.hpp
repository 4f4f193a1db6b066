// switchboard/ws/session_group.hpp
//
// `ws::session_group`: the open sessions of an endpoint (or of a whole server), for broadcasting a frame encoded
// once and for the graceful drain (DESIGN promise 6): on drain each session is closed with 1001 (going away),
// and those still open at the deadline are cut.
#pragma once

#include <switchboard/core/drain.hpp>
#include <switchboard/ws/session.hpp>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

namespace switchboard::ws {

class session_group final : public drainable {
 public:
  session_group() = default;
  session_group(const session_group&) = delete;
  session_group& operator=(const session_group&) = delete;

  /// Adds a session; it leaves the group when it closes. Refused (closed at once with 1001) while draining.
  void add(const std::shared_ptr<session>& s) {
    std::unique_lock lock(state_->mutex);
    if (state_->draining) {
      lock.unlock();
      s->close(close_code::going_away, "server shutting down");
      return;
    }
    state_->sessions.emplace(s.get(), s);
  }

  /// Removes a session (called when it closes).
  void remove(const session* s) {
    std::vector<std::function<void(drain_report)>> finished;
    drain_report report;
    {
      std::lock_guard lock(state_->mutex);
      if (state_->sessions.erase(s) == 0) return;
      if (state_->draining) {
        if (state_->cut.erase(s) > 0) ++state_->report.cut;
        else ++state_->report.drained;
        if (state_->sessions.empty()) finished = state_->finish_drain(report);
      }
    }
    for (auto& done : finished) done(report);
  }

  std::size_t size() const {
    std::lock_guard lock(state_->mutex);
    return state_->sessions.size();
  }

  /// The open sessions, for a caller that sends to each itself.
  std::vector<std::shared_ptr<session>> sessions() const {
    std::vector<std::shared_ptr<session>> out;
    std::lock_guard lock(state_->mutex);
    for (const auto& [key, weak] : state_->sessions) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  /// Queues the same encoded frame to every open session (no copy of its bytes per session). Returns how many.
  std::size_t broadcast(shared_bytes frame) {
    std::size_t n = 0;
    for (auto& s : sessions()) {
      s->send_frame(frame);
      ++n;
    }
    return n;
  }

  /// Closes every session with 1001; `done` gets the counts once all have closed, or at `deadline` after the
  /// rest were cut. A later call (the runtime's second stop) moves the deadline if it is earlier and has its
  /// `done` called too, as `drainable` promises.
  void async_drain(std::chrono::steady_clock::time_point deadline, std::function<void(drain_report)> done) override {
    std::vector<std::shared_ptr<session>> open;
    bool first = false;
    {
      std::unique_lock lock(state_->mutex);
      first = !state_->draining;
      state_->draining = true;
      // A session destroyed without closing has nothing left to drain.
      std::erase_if(state_->sessions, [this](const auto& entry) {
        if (!entry.second.expired()) return false;
        ++state_->report.drained;
        return true;
      });
      if (state_->sessions.empty()) {
        drain_report report;
        std::vector<std::function<void(drain_report)>> finished = state_->finish_drain(report);
        lock.unlock();
        for (auto& waiter : finished) waiter(report);
        done(report);
        return;
      }
      state_->drain_waiters.push_back(std::move(done));
      if (!first && deadline >= state_->deadline) return;
      state_->deadline = deadline;
      for (const auto& [key, weak] : state_->sessions) {
        if (auto s = weak.lock()) open.push_back(std::move(s));
      }
    }
    if (open.empty()) return;  // the last ones are closing now; `remove` finishes the drain
    arm_deadline(open.front()->get_executor(), deadline);
    if (first) {
      for (auto& s : open) s->close(close_code::going_away, "server shutting down");
    }
  }

  /// True once a drain has started.
  bool draining() const {
    std::lock_guard lock(state_->mutex);
    return state_->draining;
  }

 private:
  struct shared_state {
    mutable std::mutex mutex;
    std::map<const session*, std::weak_ptr<session>> sessions;
    bool draining = false;
    std::set<const session*> cut;  // closed by force at the drain deadline
    drain_report report;
    std::vector<std::function<void(drain_report)>> drain_waiters;
    std::chrono::steady_clock::time_point deadline{};
    std::shared_ptr<asio::steady_timer> deadline_timer;  // cuts what is left at the deadline

    // The last session has left (the mutex is held): the waiters to call with `report`, and the deadline timer
    // cancelled so that it does not keep its io_context running until the deadline.
    std::vector<std::function<void(drain_report)>> finish_drain(drain_report& out) {
      out = report;
      cancel_timer();
      return std::exchange(drain_waiters, {});
    }

    void cancel_timer() {
      // Posted: a timer may only be touched on its own executor.
      if (auto t = std::move(deadline_timer)) asio::post(t->get_executor(), [t] { t->cancel(); });
    }
  };

  // At `deadline`, cut what is left (on `executor`: any session's executor would do). A timer armed earlier for a
  // later deadline is cancelled. Armed before the sessions are asked to close, so that the last one to leave finds
  // it to cancel.
  //
  // The wait starts before the timer is published: once it is, other threads touch it only through posts to its
  // executor (`cancel_timer`), and a cancel posted by the last session to leave can neither race with starting the
  // wait nor run before it and be lost (which kept the io_context busy until the deadline).
  void arm_deadline(const asio::any_io_executor& executor, std::chrono::steady_clock::time_point deadline) {
    auto timer = std::make_shared<asio::steady_timer>(executor, deadline);
    timer->async_wait([state = state_, timer](std::error_code ec) {
      if (ec) return;  // cancelled: every session closed in time, or an earlier deadline replaced this one
      std::vector<std::shared_ptr<session>> left;
      {
        std::lock_guard lock(state->mutex);
        for (const auto& [key, weak] : state->sessions) {
          if (auto s = weak.lock()) left.push_back(std::move(s));
        }
        for (auto& s : left) state->cut.insert(s.get());
      }
      for (auto& s : left) s->abort();
    });
    std::lock_guard lock(state_->mutex);
    if (state_->sessions.empty() || deadline != state_->deadline) {
      // Finished in the meantime, or a drain called meanwhile set an earlier deadline and arms its own timer.
      asio::post(timer->get_executor(), [timer] { timer->cancel(); });
      return;
    }
    state_->cancel_timer();
    state_->deadline_timer = timer;
  }

  std::shared_ptr<shared_state> state_ = std::make_shared<shared_state>();
};

}  // namespace switchboard::ws
