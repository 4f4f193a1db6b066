// switchboard/pubsub/detail/subscriber.hpp
//
// The delivery side of the broker: the state of one subscription (`subscriber`), the lists topics and patterns keep
// of them (`subscriber_list`), and the per-executor drains that deliver their events (`executor_group`).
//
// Locks, always taken in this order: the broker's, a topic's, a subscriber's, an executor group's. A subscriber's
// lock guards its queue; publishers take it (holding their topic's lock) to queue a message; the consumer side
// takes it to take events out, and never holds it while it runs user code or takes a topic's lock.
//
// Fan-out cost. A publish queues the message in each subscriber's bounded queue (one pointer copy each) and, for a
// subscriber that had nothing pending, adds it to its executor group's ready list; the group posts one drain to its
// executor unless one is already pending. So a publish costs at most one post per executor, whatever the number of
// subscribers, and a busy executor drains many publishes per post.
//
// Gaps. Each queued message carries the gaps that come just before it (usually none: a null pointer), and the
// subscriber keeps the gaps that come after its last queued message (`tail_gaps_`). When `drop_oldest` discards the
// front messages, they become gaps in front of the new front message; when `drop_newest` discards the new message,
// it becomes a tail gap, which moves in front of the next message queued; when `conflate` takes a replaced message
// out of the queue (the new one goes to the back), the gaps in front of it move in front of the message that
// followed it. So every gap is delivered exactly where the missing messages would have been.
#pragma once

#include <switchboard/core/bounded_queue.hpp>
#include <switchboard/core/detail/lazy_deque.hpp>
#include <switchboard/core/error.hpp>
#include <switchboard/core/overflow_policy.hpp>
#include <switchboard/pubsub/detail/gap_list.hpp>
#include <switchboard/pubsub/detail/receive_handler.hpp>
#include <switchboard/pubsub/event.hpp>
#include <switchboard/pubsub/stats.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace switchboard::pubsub::detail {

template <class Message>
struct topic_state;  // topic_state.hpp
template <class Message>
class executor_group;

/// The subscriptions a topic fans out to, or that share a pattern. Removing one costs O(1) amortised: a subscriber
/// that leaves is marked `gone` (publishers skip it) and the list drops those that unsubscribed in one pass once
/// they are half of it, so a topic with 100,000 subscribers that all leave does not take O(n^2). One closed by its
/// overflow policy is gone too, but stays listed until it unsubscribes: the broker's close must still reach it.
template <class Subscriber>
class subscriber_list {
 public:
  void add(std::shared_ptr<Subscriber> s) {
    items_.push_back(std::move(s));
    ++members_;
  }

  /// A subscriber of this list has unsubscribed.
  void remove_one() {
    --members_;
    if (++departed_ * 2 > items_.size()) {
      std::erase_if(items_, [](const std::shared_ptr<Subscriber>& s) { return s->unsubscribed(); });
      departed_ = 0;
    }
  }

  /// Subscribers added and not removed (closed ones included until they leave).
  std::size_t members() const noexcept { return members_; }
  bool empty() const noexcept { return members_ == 0; }

  /// Every subscriber still listed; check `gone` to skip those that left.
  const std::vector<std::shared_ptr<Subscriber>>& items() const noexcept { return items_; }

 private:
  std::vector<std::shared_ptr<Subscriber>> items_;
  std::size_t members_ = 0;
  std::size_t departed_ = 0;
};

/// The state of one subscription. Shared by its handle, the topics it is attached to and its executor group.
template <class Message>
class subscriber : public std::enable_shared_from_this<subscriber<Message>> {
 public:
  using event_type = basic_event<Message>;
  using callback_type = std::function<void(std::error_code, const event_type&)>;
  using topic_ref = std::shared_ptr<topic_state<Message>>;
  using receiver = receive_handler<std::error_code, event_type>;
  using gaps = gap_list<topic_ref>;
  using message_traits = queue_traits<Message>;

  /// A replay (subscribe with `from`) still to read from the topic's log: sequence numbers `next`..`end`.
  struct replay_cursor {
    topic_ref topic;
    std::uint64_t next;
    std::uint64_t end;
  };

  /// How many events a replay reads from the log at a time (under the topic's lock).
  static constexpr std::size_t replay_batch = 64;

  /// Throws `std::invalid_argument` if a limit is 0.
  subscriber(std::string name, bool is_pattern, queue_limits limits, std::shared_ptr<executor_group<Message>> group,
             callback_type callback)
      : name(std::move(name)),
        is_pattern(is_pattern),
        policy(limits.policy),
        group(std::move(group)),
        callback_(std::move(callback)),
        queue_(limits) {}

  const std::string name;  // the topic or pattern
  const bool is_pattern;
  const overflow_policy policy;
  const std::shared_ptr<executor_group<Message>> group;

  /// Set once, when it is closed or cancelled: publishers skip it.
  std::atomic<bool> gone{false};
  /// The topics it is attached to. Guarded by the broker's lock.
  std::vector<topic_ref> topics;

  /// Starts a replay: the consumer side reads `cursor` from the topic's log before anything queued. Called once,
  /// before the subscriber is attached to its topic.
  void start_replay(replay_cursor cursor) {
    const std::lock_guard lock(mutex_);
    replay_ = std::move(cursor);  // consumer side from now on: the post of the drain publishes it to that thread
    replaying_ = true;
    schedule_locked();
  }

  // --- Publisher side: called with the publishing topic's lock held. ---

  /// Phase one of a publish to a `wait` subscriber: reserves room for a message of `bytes`, so that no publisher
  /// of another topic can take it before phase two. When full, remembers `topic` (so that its waiting publishers
  /// are retried when room appears) and returns false.
  bool reserve(std::size_t bytes, const topic_ref& topic) {
    const std::lock_guard lock(mutex_);
    const std::size_t depth = queue_.size() + reserved_messages_;
    const bool full = depth > 0 && (depth >= queue_.limits().max_messages ||
                                    queue_.bytes() + reserved_bytes_ + bytes > queue_.limits().max_bytes);
    if (full && !closed_) {
      if (std::find(blocked_.begin(), blocked_.end(), topic) == blocked_.end()) blocked_.push_back(topic);
      return false;
    }
    ++reserved_messages_;
    reserved_bytes_ += bytes;
    return true;
  }

  /// Gives back a reservation that phase two will not use. Publishers of other topics that this reservation turned
  /// away meanwhile are retried: no message was queued, so no delivery would retry them, and they would wait while
  /// the queue has room. The retry is posted to the subscriber's executor, since the caller holds its topic's lock
  /// and a topic's lock is never taken under another's.
  void unreserve(std::size_t bytes) {
    std::vector<topic_ref> wake;
    {
      const std::lock_guard lock(mutex_);
      --reserved_messages_;
      reserved_bytes_ -= bytes;
      wake.swap(blocked_);
    }
    if (!wake.empty()) asio::post(group->executor, [wake = std::move(wake)]() mutable { retry(wake); });
  }

  /// Phase two: queues `m`, a message of `topic`, under the overflow policy. `reserved`: `reserve` succeeded for
  /// it. Returns true when `m` was queued.
  bool push(const Message& m, const topic_ref& topic, bool reserved) {
    const std::size_t bytes = message_traits::bytes(m);
    const std::string_view key = message_traits::key(m);
    const std::lock_guard lock(mutex_);
    if (reserved) {
      --reserved_messages_;
      reserved_bytes_ -= bytes;
    }
    if (closed_) return false;

    gaps carry;  // gaps in front of the messages dropped or replaced: they now come before what took their place
    const push_outcome outcome = queue_.push(queued{m, topic, {}}, [&](queued&& dropped) {
      if (policy == overflow_policy::drop_newest) {  // the new message: it belongs after everything queued
        lose(tail_gaps_, dropped);
        return;
      }
      // The oldest (drop_oldest, or conflate falling back to it), or under conflate the message with the new one's
      // key: replaced (taken out, the new one appended), or dropped from the front when its replacement did not fit
      // in the queue's bytes.
      carry.absorb_later(std::move(dropped.gaps_before));
      if (policy == overflow_policy::conflate && !key.empty() && message_traits::key(dropped.message) == key) {
        ++superseded_;  // the newer message with its key carries the state: superseded, not lost
      } else {
        lose(carry, dropped);
      }
    });
    switch (outcome) {
      case push_outcome::queued:
      case push_outcome::queued_dropping:
      case push_outcome::replaced:
        // Tail gaps (drop_newest, report_gap) come before the new message, at the back. The gaps of dropped front
        // messages (drop_oldest, conflate) come before the new front; those of a replaced message (conflate) before
        // the message that took its place in the order, the one that followed it (or the new one, after the tail
        // gaps, when it was the last): after every message before it and before every one after it.
        if (!tail_gaps_.empty()) queue_.at(queue_.size() - 1).gaps_before = std::move(tail_gaps_);
        if (!carry.empty()) {
          const std::size_t place = outcome == push_outcome::replaced ? queue_.replaced_position() : 0;
          queue_.at(place).gaps_before.absorb_earlier(std::move(carry));
        }
        break;
      case push_outcome::dropped:
        break;
      case push_outcome::must_disconnect:
        close_locked(switchboard::error::overflow_disconnect);
        return false;
      case push_outcome::must_wait:
        assert(false && "a wait subscriber is pushed to only after reserve()");
        return false;
    }
    stats_.peak_depth = std::max(stats_.peak_depth, queue_.size());
    stats_.peak_bytes = std::max(stats_.peak_bytes, queue_.bytes());
    schedule_locked();
    return accepted(outcome);
  }

  /// Queues a gap event for `first`..`last` of `topic` after everything queued (`basic_broker::report_gap`).
  void push_gap(const topic_ref& topic, std::uint64_t first, std::uint64_t last, gap_reason reason) {
    const std::lock_guard lock(mutex_);
    if (closed_) return;
    tail_gaps_.add_later(topic, first, last, reason);
    schedule_locked();
  }

  /// Closes the subscription with `reason`: nothing more is queued. `discard` (the broker is going away): what is
  /// queued is dropped and a waiting receive completes at once; otherwise the subscriber first receives what is
  /// queued, then the error. A subscription closed already keeps its first reason: one cut off by its overflow
  /// policy reports `overflow_disconnect` after its broker is gone too.
  void close(std::error_code reason, bool discard) {
    const std::lock_guard lock(mutex_);
    close_locked(reason);
    if (discard) {
      discarded_ = true;
      queue_.clear();
      tail_gaps_.clear();
      replaying_ = false;
      if (waiter_) waiter_.post(close_reason_, event_type{});
    }
  }

  // --- Handle side: any thread. ---

  /// Waits for the next event (`async_receive`); `slot` is the handler's cancellation slot. Throws
  /// `std::logic_error` on a callback subscription, or when another receive is waiting.
  template <class Handler>
  void receive(Handler&& handler, asio::cancellation_slot slot) {
    if (callback_) throw std::logic_error("switchboard::pubsub: async_receive on a subscription with a callback");
    receiver r(std::forward<Handler>(handler), group->executor);
    const std::lock_guard lock(mutex_);
    if (waiter_) throw std::logic_error("switchboard::pubsub: async_receive while another one waits");
    if (cancelled_) {
      r.post(asio::error::operation_aborted, event_type{});
      return;
    }
    waiter_ = std::move(r);
    const std::uint64_t id = ++waiter_id_;
    if (slot.is_connected()) {
      // The id keeps a late cancellation of an earlier receive from cancelling this one.
      slot.assign([weak = this->weak_from_this(), id](asio::cancellation_type type) {
        if (type == asio::cancellation_type::none) return;
        if (auto self = weak.lock()) self->cancel_receive(id);
      });
    }
    schedule_locked();
  }

  /// True once `cancel` has run (the handle unsubscribed); lists drop such subscribers.
  bool unsubscribed() const noexcept { return cancelled_.load(); }

  /// Unsubscribes: no event is delivered after this returns when called on the subscription's executor (the drain
  /// checks before each callback); a waiting receive completes with `asio::error::operation_aborted`. Returns the
  /// topics whose waiting publishers were held up by this subscriber, for the caller to retry.
  std::vector<topic_ref> cancel() {
    std::vector<topic_ref> wake;
    const std::lock_guard lock(mutex_);
    if (cancelled_) return wake;
    cancelled_ = true;
    closed_ = true;
    gone = true;
    if (waiter_) waiter_.post(asio::error::operation_aborted, event_type{});
    queue_.clear();
    tail_gaps_.clear();
    wake.swap(blocked_);
    return wake;
  }

  subscription_stats stats() const {
    const std::lock_guard lock(mutex_);
    subscription_stats s = stats_;
    s.depth = queue_.size();
    s.bytes = queue_.bytes();
    s.dropped = queue_.stats().dropped - superseded_;
    s.superseded = superseded_;
    s.closed = closed_;
    return s;
  }

  const queue_limits& limits() const noexcept { return queue_.limits(); }  // never changes

  // --- Consumer side: only the executor group calls these, never twice at once for one subscriber. ---

  /// Delivers up to `budget` events, on the group's executor. Returns true when it stopped at the budget with
  /// events left (the group then schedules it again); false when it has nothing more to deliver for now.
  /// `ready_` stays true from scheduling until this returns false, so that no second drain runs it meanwhile.
  bool deliver(std::size_t budget);

 private:
  struct queued {
    Message message;
    topic_ref topic;    // for gap events and the topic's counters
    gaps gaps_before;   // gaps that come just before this message
  };

  struct queued_traits {
    static std::size_t bytes(const queued& q) noexcept { return message_traits::bytes(q.message); }
    static std::string_view key(const queued& q) noexcept { return message_traits::key(q.message); }
  };

  // Records the loss of `dropped` (overflow policy) in `into`.
  void lose(gaps& into, const queued& dropped);

  // Per-operation cancellation of the receive numbered `id`: completes it with `asio::error::operation_aborted`.
  void cancel_receive(std::uint64_t id) {
    const std::lock_guard lock(mutex_);
    if (waiter_ && waiter_id_ == id) waiter_.post(asio::error::operation_aborted, event_type{});
  }

  void close_locked(std::error_code reason) {
    if (closed_) return;
    closed_ = true;
    gone = true;
    close_reason_ = reason;
    blocked_.clear();  // the publishers it held up are retried by the topics' own close or unsubscribe
    schedule_locked();
  }

  // True when the consumer side has something to do.
  bool deliverable_locked() const noexcept {
    if (cancelled_) return false;
    if (!callback_ && !waiter_) return false;
    return replaying_ || !queue_.empty() || !tail_gaps_.empty() || (closed_ && (!callback_ || !close_reported_));
  }

  void schedule_locked() {
    if (ready_ || !deliverable_locked()) return;
    ready_ = true;
    group->schedule(this->weak_from_this());
  }

  event_type make_gap(typename gaps::range r) {
    return event_type(pubsub::gap{r.topic->name, r.first, r.last, r.reason});
  }

  // Moves up to `want` events into `out`: the replay first, then the queue (each message after its gaps), then the
  // tail gaps. Returns how many messages it took out of the queue.
  std::size_t collect_locked(std::size_t want, std::vector<event_type>& out) {
    std::size_t popped = 0;
    if (discarded_) return popped;
    while (out.size() < want) {
      if (!replay_events_.empty()) {
        out.push_back(std::move(replay_events_.front()));
        replay_events_.pop_front();
      } else if (replay_) {
        break;  // the consumer reads more of the log (outside this lock) before going on
      } else if (!queue_.empty() && !queue_.front().gaps_before.empty()) {
        out.push_back(make_gap(queue_.front().gaps_before.take_front()));
      } else if (!queue_.empty()) {
        out.emplace_back(queue_.pop().message);
        ++popped;
      } else if (!tail_gaps_.empty()) {
        out.push_back(make_gap(tail_gaps_.take_front()));
      } else {
        break;
      }
      const event_type& e = out.back();
      if (e.is_gap()) {
        ++stats_.gaps;
        stats_.missed += e.gap().count();
      } else {
        ++stats_.delivered;
      }
    }
    replaying_ = replay_.has_value() || !replay_events_.empty();
    return popped;
  }

  // Reads the next part of a replay from the topic's log into `replay_events_` (topic lock only).
  void read_replay();

  // Retries the waiting publishers of `topics` (no lock held).
  static void retry(std::vector<topic_ref>& topics);

  const callback_type callback_;  // empty: events go to async_receive

  mutable std::mutex mutex_;
  // Guarded by mutex_:
  bounded_queue<queued, queued_traits> queue_;
  gaps tail_gaps_;                      // gaps after the last queued message (drop_newest, report_gap)
  std::size_t reserved_messages_ = 0;   // room promised to publishers between their two phases (wait policy)
  std::size_t reserved_bytes_ = 0;
  std::vector<topic_ref> blocked_;      // topics whose waiting publishers this (full, wait) subscriber holds up
  receiver waiter_;                     // the waiting async_receive
  std::uint64_t waiter_id_ = 0;         // numbers the receives, for their cancellation
  subscription_stats stats_;            // peaks, delivered, gaps, missed
  std::uint64_t superseded_ = 0;
  std::error_code close_reason_;
  bool ready_ = false;         // in its group's ready list, or being delivered
  bool replaying_ = false;     // a replay is unfinished (mirrors the consumer's replay_ and replay_events_)
  bool closed_ = false;        // nothing more is queued
  bool close_reported_ = false;
  bool discarded_ = false;     // closed by the broker's destruction: nothing more is delivered but the error
  std::atomic<bool> cancelled_{false};  // unsubscribed; read without the lock between callbacks

  // Consumer side only (the drain), no lock:
  std::optional<replay_cursor> replay_;
  switchboard::detail::lazy_deque<event_type> replay_events_;
  std::vector<event_type> batch_;
};

/// The subscribers of one executor, and the drain that delivers their events there.
template <class Message>
class executor_group : public std::enable_shared_from_this<executor_group<Message>> {
 public:
  using subscriber_type = subscriber<Message>;

  /// Events delivered to one subscriber before the drain moves on to the next (fairness between subscribers).
  /// Large enough for a burst to reach its subscriber in one turn: a RESP client's write gathers what one turn
  /// delivered to it (its flush runs after the drain), and one read of a publisher's 16 KiB holds about 160 small
  /// PUBLISH commands. At 64, a fan-out to 10 RESP subscribers wrote 64 messages per send and cost 0.14-0.15 us of
  /// CPU per delivery; at 256, 0.10 (benchmarks/load/pubsub.sh, 2026-11-30).
  static constexpr std::size_t budget = 256;

  explicit executor_group(asio::any_io_executor ex) : executor(std::move(ex)) {}

  const asio::any_io_executor executor;
  /// Subscriptions using this group. Guarded by the broker's lock.
  std::size_t members = 0;

  /// Adds `s`, which has events to deliver, to the ready list, and posts a drain unless one is pending.
  void schedule(std::weak_ptr<subscriber_type> s) {
    const std::lock_guard lock(mutex_);
    ready_.push_back(std::move(s));
    if (posted_) return;
    posted_ = true;
    asio::post(executor, [self = this->shared_from_this()] { self->drain(); });
  }

 private:
  void drain() {
    std::vector<std::weak_ptr<subscriber_type>> batch;
    {
      const std::lock_guard lock(mutex_);
      batch.swap(ready_);
      posted_ = false;
    }
    for (auto& weak : batch) {
      if (auto s = weak.lock(); s && s->deliver(budget)) schedule(std::move(weak));
    }
    batch.clear();
    const std::lock_guard lock(mutex_);
    if (ready_.empty()) ready_.swap(batch);  // keep the capacity
  }

  std::mutex mutex_;
  // Weak, so that a drain that never runs (its io_context destroyed first) keeps no subscriber alive.
  std::vector<std::weak_ptr<subscriber_type>> ready_;
  bool posted_ = false;
};

}  // namespace switchboard::pubsub::detail

// The consumer side reads topics' logs and retries their publishers: defined with topic_state.
#include <switchboard/pubsub/detail/topic_state.hpp>
