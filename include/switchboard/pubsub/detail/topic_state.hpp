// switchboard/pubsub/detail/topic_state.hpp
//
// The publishing side of the broker: one topic's sequence number, retention log, subscribers, and the publishers
// and readers waiting on it. Everything here runs under the topic's lock, so the topic's messages are numbered,
// retained and queued to each subscriber in one order.
//
// Publishing is two-phase when `wait` subscribers are attached. Phase one reserves room in each of them; if one is
// full, nothing changes (no sequence number is used) and the publisher either fails (`publish`: would_block) or
// waits in line (`async_publish`); the full subscriber remembers the topic and retries its line when it makes room.
// Phase two numbers the message, retains it and queues it everywhere. The reservation keeps a publisher of another
// topic (reaching the same pattern subscriber) from taking the room between the two phases. While publishers
// wait, later ones queue behind them, so the topic's messages keep the order in which they were offered.
//
// A waiting publisher keeps its draft until it reaches the front of the line; there it is stamped with the next
// sequence number, which stays right while it waits since nobody else may publish to the topic meanwhile.
#pragma once

#include <switchboard/core/detail/lazy_deque.hpp>
#include <switchboard/core/detail/pending_handler.hpp>
#include <switchboard/core/error.hpp>
#include <switchboard/pubsub/detail/subscriber.hpp>
#include <switchboard/pubsub/error.hpp>
#include <switchboard/pubsub/message.hpp>
#include <switchboard/pubsub/observer.hpp>
#include <switchboard/pubsub/results.hpp>
#include <switchboard/pubsub/retention.hpp>
#include <switchboard/pubsub/stats.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace switchboard::pubsub::detail {

template <class Message>
class broker_core;

template <class Message>
struct topic_state : std::enable_shared_from_this<topic_state<Message>> {
  using subscriber_type = subscriber<Message>;
  using topic_ref = std::shared_ptr<topic_state>;
  using draft_type = typename Message::draft_type;
  using clock = std::chrono::steady_clock;
  using read_result = basic_read_result<Message>;
  using publish_handler = switchboard::detail::pending_handler<void(std::error_code, std::uint64_t)>;
  using read_handler = switchboard::detail::pending_handler<void(std::error_code, read_result)>;
  using read_batch = switchboard::detail::completion_batch<void(std::error_code, read_result)>;

  /// How a waiting operation ends early: its deadline (a timer on the handler's executor), or per-operation
  /// cancellation through the handler's cancellation slot.
  struct wait_options {
    asio::any_io_executor timer_executor;
    clock::duration timeout = clock::duration::zero();  // zero: no deadline
    asio::cancellation_slot slot;
  };

  topic_state(std::string name, std::uint64_t incarnation, retention_limits retention,
              std::shared_ptr<retention_budget> budget, std::shared_ptr<std::atomic<std::uint64_t>> broker_dropped,
              std::weak_ptr<broker_core<Message>> core)
      : name(std::move(name)), incarnation(incarnation), broker_dropped(std::move(broker_dropped)),
        log(retention, std::move(budget)), core_(std::move(core)) {}

  const std::string name;
  /// `topic_stats::incarnation`: given by the broker when it made the topic.
  const std::uint64_t incarnation;
  /// Copies of this topic's messages discarded by overflow policies (counted by the subscribers, any thread).
  std::atomic<std::uint64_t> dropped{0};
  /// The same, over all the broker's topics. Shared: a subscriber may still drop a topic's messages after the
  /// topic was erased, and the broker's total must count those too.
  const std::shared_ptr<std::atomic<std::uint64_t>> broker_dropped;

  std::mutex mutex;
  // Guarded by mutex:
  std::uint64_t last_sequence = 0;
  std::uint64_t published = 0;
  std::uint64_t enqueued = 0;
  basic_retained_log<Message> log;
  subscriber_list<subscriber_type> subscribers;
  bool closed = false;  // the broker is gone
  /// Told of each message published (kept alive by the broker core, which clears this before letting it go).
  basic_broker_observer<Message>* observer = nullptr;
  /// Removed from the broker (set under the lock). The operations below then return without doing anything, and
  /// the broker looks the name up again (making a new topic).
  std::atomic<bool> erased{false};
  /// Asked for by the application (`set_retention`, `export_topic_metrics`), so never reclaimed (see
  /// `reclaimable_locked`); only `erase_topic` or `retire_topic` removes it.
  bool kept = false;
  /// The application is done with the topic (`broker::retire_topic`) but something still used it then: it is
  /// reclaimed as soon as nothing does, messages or not. A later message or gap clears this (in use again).
  bool retired = false;

  /// `publish`: numbers, retains and queues `draft` now, or fails without publishing. Lock not held. Nullopt
  /// (and `draft` untouched) when the topic was erased.
  std::optional<publish_result> publish(const topic_ref& self, draft_type& draft) {
    const publish_result refused{make_error_code(error::would_block)};
    {
      const std::lock_guard lock(mutex);
      if (erased) return std::nullopt;
      if (closed) return publish_result{make_error_code(switchboard::error::closed)};
      if (!publishers_.empty()) return refused;  // no overtaking
      const Message m = stamp(std::move(draft));
      const std::optional<std::size_t> accepted = commit_locked(self, m);
      if (accepted) return publish_result{std::error_code(), m.sequence(), *accepted};
      if (!reclaimable_locked()) return refused;
    }
    reclaim();  // this publish made the topic, and a full pattern subscriber refused it: leave nothing behind
    return refused;
  }

  /// `async_publish`: as `publish`, but waits in line while a `wait` subscriber is full. Lock not held. False
  /// (and nothing taken) when the topic was erased.
  bool async_publish(const topic_ref& self, draft_type& draft, publish_handler& handler, wait_options& wait) {
    const std::lock_guard lock(mutex);
    if (erased) return false;
    if (closed) {
      handler.complete(switchboard::error::closed, 0);
      return true;
    }
    if (publishers_.empty()) {
      // Nobody waits: publish now, without making the line (three allocations of a deque), or wait at its front
      // already stamped, as `admit_publishers_locked` leaves a publisher that does not fit.
      Message m = stamp(std::move(draft));
      if (commit_locked(self, m)) {
        handler.complete(std::error_code(), m.sequence());
        return true;
      }
      publishers_.push_back(waiting_publish{++next_id_, std::nullopt, std::move(m), std::move(handler), nullptr});
    } else {
      publishers_.push_back(waiting_publish{++next_id_, std::move(draft), std::nullopt, std::move(handler), nullptr});
    }
    arm(publishers_.back(), wait, &topic_state::abandon_publisher);
    return true;
  }

  /// `report_gap`: takes the next sequence number for a gap of `reason` that every subscriber receives in order (after
  /// the publishers waiting in line, if any, so that the numbering stays in the order things were offered). The
  /// retained log is cleared, since it holds consecutive numbers only: a replay from before the gap then starts with
  /// a retention gap. Lock not held. False when the topic was erased.
  bool report_gap(const topic_ref& self, gap_reason reason) {
    const std::lock_guard lock(mutex);
    if (erased) return false;
    if (closed) return true;
    if (publishers_.empty()) {
      commit_gap_locked(self, reason, 1);
    } else if (publishers_.back().gap == reason) {
      // Right behind a gap of the same reason: one entry takes both numbers. Else a source that reports a gap at
      // each reconnect grew the line by an entry each time, for as long as a publisher waited on a slow subscriber.
      ++publishers_.back().gap_numbers;
    } else {
      publishers_.push_back(
          waiting_publish{++next_id_, std::nullopt, std::nullopt, publish_handler(), nullptr, reason});
    }
    return true;
  }

  /// Retries the waiting publishers, after a subscriber they waited for made room or left. Lock not held.
  void retry_publishers() {
    const std::lock_guard lock(mutex);
    admit_publishers_locked(this->shared_from_this());
  }

  /// `read`: what follows `after`, at most `max` messages. Lock not held.
  read_result read(std::uint64_t after, std::size_t max) {
    const std::lock_guard lock(mutex);
    return read_locked(after, max);
  }

  /// `async_read`: as `read`, but when nothing follows `after`, waits for the next message. Lock not held. False
  /// (and nothing taken) when the topic was erased.
  bool async_read(std::uint64_t after, std::size_t max, read_handler& handler, wait_options& wait) {
    {
      const std::lock_guard lock(mutex);
      if (erased) return false;
      if (closed) {
        handler.complete(switchboard::error::closed, read_result{});
        return true;
      }
      read_result r = read_locked(after, max);
      if (!r.error && !r.missed && r.messages.empty() && max > 0) {
        readers_.push_back(waiting_read{++next_id_, after, max, std::move(handler), nullptr});
        arm(readers_.back(), wait, &topic_state::abandon_reader);
        return true;
      }
      const std::error_code ec = r.error;
      handler.complete(ec, std::move(r));
      if (!reclaimable_locked()) return true;
    }
    reclaim();  // answered at once (a cursor ahead, `max` 0) on a topic made for this read
    return true;
  }

  /// The newest retained message, if any. Lock not held.
  std::optional<Message> latest() { return latest_reading().message; }

  /// `latest()` with the incarnation and the last sequence number, read under one lock.
  basic_latest_reading<Message> latest_reading() {
    const std::lock_guard lock(mutex);
    log.trim(clock::now());
    basic_latest_reading<Message> r{.incarnation = incarnation, .last_sequence = last_sequence, .message = {}};
    if (!log.empty() && log.last_sequence() == last_sequence) r.message = log.back();
    return r;
  }

  /// Changes the retention limits. Lock not held.
  void set_retention(retention_limits limits) {
    const std::lock_guard lock(mutex);
    log.set_limits(limits, clock::now());
  }

  /// Keeps the topic (see `kept`). Lock not held. False when it was erased (then the broker makes a new one).
  bool keep() {
    const std::lock_guard lock(mutex);
    kept = true;
    return !erased;
  }

  /// True when nothing but pattern subscribers refers to the topic, so that erasing it surprises nobody. Lock held.
  bool erasable_locked() const {
    if (!publishers_.empty() || readers_.size() > abandoned_readers_) return false;
    return std::none_of(subscribers.items().begin(), subscribers.items().end(),
                        [](const auto& s) { return !s->gone && !s->is_pattern; });
  }

  /// True when nothing but pattern subscribers refers to the topic and it holds nothing anyone could miss, so that
  /// the broker reclaims it: either the application retired it, or it is vacant: it has never numbered a message
  /// or a gap (made again, it is the same: sequence 0, the retention rule of its name, the pattern subscribers that
  /// match it) and the application did not keep it. A vacant topic is what a subscriber or a long poll leaves
  /// behind on a name nobody publishes to. Lock held.
  bool reclaimable_locked() const { return (retired || (last_sequence == 0 && !kept)) && erasable_locked(); }

  /// The broker is going away: waiting publishers and readers complete with `error::closed`, and the topic lets go
  /// of its subscribers (which hold it: the cycle is broken here). Lock not held.
  void close() {
    const std::lock_guard lock(mutex);
    closed = true;
    subscribers = {};
    for (waiting_publish& w : publishers_) finish(w, switchboard::error::closed, 0);
    publishers_.clear();
    read_batch batch;
    for (waiting_read& w : readers_) finish(w, switchboard::error::closed, read_result{}, batch);
    clear_readers();
  }

  topic_stats stats() {
    const std::lock_guard lock(mutex);
    log.trim(clock::now());
    topic_stats s;
    s.incarnation = incarnation;
    s.last_sequence = last_sequence;
    s.published = published;
    s.enqueued = enqueued;
    s.dropped = dropped.load(std::memory_order_relaxed);
    s.subscribers = subscribers.members();
    s.retained = log.size();
    s.retained_bytes = log.bytes();
    // The line also holds the gaps reported while publishers waited (each waits for its turn): they are not publishers.
    s.waiting_publishers = static_cast<std::size_t>(
        std::count_if(publishers_.begin(), publishers_.end(), [](const waiting_publish& w) { return !w.gap; }));
    s.waiting_reads = readers_.size() - abandoned_readers_;
    return s;
  }

  /// Appends the next events of a replay (messages from the log, or a gap where it no longer reaches) to `out` and
  /// advances `cursor`; at most `max`, at least one while `cursor.next <= cursor.end`. Lock not held.
  void read_replay(typename subscriber_type::replay_cursor& cursor, std::size_t max,
                   switchboard::detail::lazy_deque<basic_event<Message>>& out) {
    const std::lock_guard lock(mutex);
    log.trim(clock::now());
    for (std::size_t n = 0; n < max && cursor.next <= cursor.end; ++n) {
      if (!log.empty() && cursor.next >= log.first_sequence() && cursor.next <= log.last_sequence()) {
        out.emplace_back(log.at_sequence(cursor.next));
        ++cursor.next;
      } else {
        // Evicted (or never retained): everything up to the oldest retained message, or to the end of the replay.
        const std::uint64_t last =
            !log.empty() && log.first_sequence() > cursor.next ? std::min(log.first_sequence() - 1, cursor.end)
                                                               : cursor.end;
        out.emplace_back(pubsub::gap{name, cursor.next, last, gap_reason::retention});
        cursor.next = last + 1;
      }
    }
  }

 private:
  struct waiting_publish {
    std::uint64_t id;
    std::optional<draft_type> draft;  // until it reaches the front of the line
    std::optional<Message> stamped;   // from then on
    publish_handler handler;
    std::shared_ptr<asio::steady_timer> timer;
    std::optional<gap_reason> gap{};  // a `report_gap` waiting for its turn, not a publish
    std::uint64_t gap_numbers = 1;    // with `gap`: the sequence numbers it takes (reports in a row)
  };

  struct waiting_read {
    std::uint64_t id;
    std::uint64_t after;
    std::size_t max;
    read_handler handler;
    std::shared_ptr<asio::steady_timer> timer;
  };

  Message stamp(draft_type&& draft) const { return Message(message_stamp{name, last_sequence + 1}, std::move(draft)); }

  // Phase one and two (see the top of this file). Returns how many subscriber queues accepted `m`, or nullopt
  // when a `wait` subscriber has no room (then nothing changed).
  std::optional<std::size_t> commit_locked(const topic_ref& self, const Message& m) {
    const auto& subs = subscribers.items();
    const std::size_t bytes = queue_traits<Message>::bytes(m);
    std::size_t reserved = 0;
    for (; reserved < subs.size(); ++reserved) {
      const auto& s = subs[reserved];
      if (s->policy == overflow_policy::wait && !s->gone && !s->reserve(bytes, self)) break;
    }
    if (reserved < subs.size()) {
      for (std::size_t i = 0; i < reserved; ++i) {
        if (subs[i]->policy == overflow_policy::wait && !subs[i]->gone) subs[i]->unreserve(bytes);
      }
      return std::nullopt;
    }
    last_sequence = m.sequence();
    retired = false;
    ++published;
    if (!log.limits().off()) {
      log.append(m, clock::now());
      if (log.claim_budget_trim()) {
        if (const auto core = core_.lock()) core->post_budget_trim();
      }
    }
    std::size_t accepted = 0;
    for (const auto& s : subs) {
      // A wait subscriber that went away between the phases keeps its reservation: it is never used again.
      if (!s->gone && s->push(m, self, s->policy == overflow_policy::wait)) ++accepted;
    }
    enqueued += accepted;
    if (!readers_.empty()) wake_readers_locked(m);
    if (observer) observer->on_publish(m);
    return accepted;
  }

  // Numbers a gap and queues it for every subscriber; waiting readers learn of it as a gap in what they read.
  // Takes `numbers` sequence numbers for a gap of `reason` (reports in a row, one each).
  void commit_gap_locked(const topic_ref& self, gap_reason reason, std::uint64_t numbers) {
    const std::uint64_t first = last_sequence + 1;
    last_sequence += numbers;
    retired = false;
    log.clear();
    for (const auto& s : subscribers.items()) {
      if (!s->gone) s->push_gap(self, first, last_sequence, reason);
    }
    read_batch batch;
    for (waiting_read& w : readers_) {
      if (!w.handler) continue;  // left early
      read_result r = read_locked(w.after, w.max);
      if (r.missed) r.missed->reason = reason;
      finish(w, std::error_code(), std::move(r), batch);
    }
    clear_readers();
  }

  // Publishes from the front of the line while they fit.
  void admit_publishers_locked(const topic_ref& self) {
    while (!publishers_.empty()) {
      waiting_publish& w = publishers_.front();
      if (w.gap) {
        commit_gap_locked(self, *w.gap, w.gap_numbers);
        publishers_.pop_front();
        continue;
      }
      if (!w.stamped) w.stamped.emplace(stamp(std::move(*w.draft)));
      if (!commit_locked(self, *w.stamped)) return;  // still full: the full subscriber will call again
      finish(w, std::error_code(), w.stamped->sequence());
      publishers_.pop_front();
    }
  }

  // Readers wait only when they have read everything (their cursor is the sequence number before `m`), and a gap
  // completes them all, so `m` alone is what each of them reads next, retained or not: no look-up in the log.
  void wake_readers_locked(const Message& m) {
    read_batch batch;
    for (waiting_read& w : readers_) {
      if (!w.handler) continue;  // left early
      read_result r;
      r.messages.push_back(m);
      r.last_sequence = r.next_cursor = m.sequence();
      finish(w, std::error_code(), std::move(r), batch);
    }
    clear_readers();
  }

  void clear_readers() {
    readers_.clear();
    abandoned_readers_ = 0;
  }

  read_result read_locked(std::uint64_t after, std::size_t max) {
    read_result r;
    r.last_sequence = r.next_cursor = last_sequence;
    if (after > last_sequence) {
      r.error = make_error_code(error::cursor_ahead);
      r.next_cursor = after;
      return r;
    }
    log.trim(clock::now());
    std::uint64_t cursor = after;
    const std::uint64_t first = log.empty() ? last_sequence + 1 : log.first_sequence();
    if (cursor + 1 < first && cursor < last_sequence) {
      r.missed = pubsub::gap{name, cursor + 1, first - 1, gap_reason::retention};
      cursor = first - 1;
    }
    while (cursor < last_sequence && r.messages.size() < max) r.messages.push_back(log.at_sequence(++cursor));
    r.next_cursor = cursor;
    return r;
  }

  // Starts the deadline and the cancellation of the waiting operation `w` (the last one added).
  template <class Waiting>
  void arm(Waiting& w, wait_options& wait, void (topic_state::*abandon)(std::uint64_t, std::error_code)) {
    const std::uint64_t id = w.id;
    std::weak_ptr<topic_state> weak = this->weak_from_this();
    if (wait.timeout > clock::duration::zero()) {
      w.timer = std::make_shared<asio::steady_timer>(wait.timer_executor, wait.timeout);
      w.timer->async_wait([weak, id, abandon](std::error_code ec) {
        if (ec) return;
        if (auto self = weak.lock()) (self.get()->*abandon)(id, switchboard::error::timeout);
      });
    }
    if (wait.slot.is_connected()) {
      wait.slot.assign([weak, id, abandon](asio::cancellation_type type) {
        if (type == asio::cancellation_type::none) return;
        if (auto self = weak.lock()) (self.get()->*abandon)(id, asio::error::operation_aborted);
      });
    }
  }

  // A waiting publisher's deadline passed or it was cancelled: it leaves the line, unpublished.
  void abandon_publisher(std::uint64_t id, std::error_code reason) {
    {
      const std::lock_guard lock(mutex);
      const auto it = std::find_if(publishers_.begin(), publishers_.end(), [&](const auto& w) { return w.id == id; });
      if (it == publishers_.end()) return;
      finish(*it, reason, 0);
      const bool was_front = it == publishers_.begin();
      publishers_.erase(it);
      if (was_front) admit_publishers_locked(this->shared_from_this());  // the next one may fit
      if (!reclaimable_locked()) return;
    }
    reclaim();
  }

  // A waiting reader's deadline passed or it was cancelled. Its slot stays, empty (see readers_).
  void abandon_reader(std::uint64_t id, std::error_code reason) {
    {
      const std::lock_guard lock(mutex);
      const auto it = std::lower_bound(readers_.begin(), readers_.end(), id,
                                       [](const waiting_read& w, std::uint64_t wanted) { return w.id < wanted; });
      if (it == readers_.end() || it->id != id || !it->handler) return;
      finish(*it, reason, read_result{});
      if (++abandoned_readers_ > readers_.size() / 2) {
        std::erase_if(readers_, [](const waiting_read& w) { return !w.handler; });
        abandoned_readers_ = 0;
      }
      if (!reclaimable_locked()) return;
    }
    reclaim();
  }

  // The last waiting operation left a reclaimable topic: the broker, if it is still there, removes it (checking again
  // under its own lock, which comes before the topic's). Lock not held.
  void reclaim() {
    if (const auto core = core_.lock()) core->reclaim(this->shared_from_this());
  }

  // Completes a waiting operation and stops its timer. Timers are not thread-safe: the cancel runs on the timer's
  // own executor (its handler then finds the operation gone and does nothing).
  template <class Waiting, class Result>
  static void finish(Waiting& w, std::error_code ec, Result&& result) {
    stop_timer(w);
    if (w.handler) w.handler.complete(ec, std::forward<Result>(result));  // a waiting report_gap has none
  }

  // As `finish`, for one of several readers completed together: they share one post per event loop.
  static void finish(waiting_read& w, std::error_code ec, read_result&& result, read_batch& batch) {
    stop_timer(w);
    if (w.handler) batch.add(w.handler, ec, std::move(result));  // one that left early has none
  }

  template <class Waiting>
  static void stop_timer(Waiting& w) {
    if (!w.timer) return;
    const auto ex = w.timer->get_executor();
    asio::post(ex, [t = std::move(w.timer)] { t->cancel(); });
  }

  switchboard::detail::lazy_deque<waiting_publish> publishers_;  // async_publish calls waiting for room, in order
  // async_read calls waiting for the next message, in the order they came, so sorted by id. One that leaves early
  // (its deadline, a client gone) is completed and its slot left empty, found by binary search; the empty slots
  // are swept out once they are more than half. So leaving costs O(log n) and not a search and a move of all the
  // slots after it, which made 10,000 parked long polls timing out or going away cost O(n^2).
  std::vector<waiting_read> readers_;
  std::size_t abandoned_readers_ = 0;  // empty slots in readers_
  std::uint64_t next_id_ = 0;
  const std::weak_ptr<broker_core<Message>> core_;  // weak: a topic may outlive its broker (see broker_core.hpp)
};

// --- The subscriber's functions that need a complete topic_state (see subscriber.hpp). ---

template <class Message>
void subscriber<Message>::lose(gaps& into, const queued& dropped) {
  const std::uint64_t seq = dropped.message.sequence();
  into.add_later(dropped.topic, seq, seq, gap_reason::overflow);
  dropped.topic->dropped.fetch_add(1, std::memory_order_relaxed);
  dropped.topic->broker_dropped->fetch_add(1, std::memory_order_relaxed);
}

template <class Message>
void subscriber<Message>::read_replay() {
  replay_->topic->read_replay(*replay_, replay_batch, replay_events_);
  if (replay_->next > replay_->end) replay_.reset();
}

template <class Message>
void subscriber<Message>::retry(std::vector<topic_ref>& topics) {
  for (const topic_ref& t : topics) t->retry_publishers();
}

template <class Message>
bool subscriber<Message>::deliver(std::size_t budget) {
  std::size_t done = 0;
  while (done < budget) {
    if (replay_ && replay_events_.empty()) read_replay();
    std::vector<topic_ref> wake;
    std::error_code end;  // the close to report, once everything queued is out
    receiver waiter;
    {
      const std::lock_guard lock(mutex_);
      if (cancelled_) return false;
      const std::size_t want = callback_ ? budget - done : (waiter_ ? 1 : 0);
      if (want == 0) {
        ready_ = false;
        return false;
      }
      const std::size_t popped = collect_locked(want, batch_);
      if (batch_.empty()) {
        if (!closed_ || (callback_ && close_reported_)) {
          ready_ = false;
          return false;
        }
        close_reported_ = true;
        end = close_reason_;
      }
      if (!callback_) waiter = std::move(waiter_);
      if (popped > 0 && !blocked_.empty()) wake.swap(blocked_);
    }
    retry(wake);
    if (callback_) {
      for (const event_type& e : batch_) {
        if (cancelled_) break;  // unsubscribed by an earlier callback, or from another thread
        callback_(std::error_code(), e);
      }
      if (end && !cancelled_) callback_(end, event_type());
    } else if (end) {
      waiter.dispatch(end, event_type());
    } else {
      waiter.dispatch(std::error_code(), std::move(batch_.front()));
    }
    done += std::max<std::size_t>(batch_.size(), 1);
    batch_.clear();
  }
  return true;
}

}  // namespace switchboard::pubsub::detail
