// switchboard/pubsub/retention.hpp
//
// Retention: the last messages of a topic, kept so that a subscriber can resume from a cursor (DESIGN promise 4:
// SSE `Last-Event-ID`, a long-poll cursor, a WebSocket resume and `subscribe(topic, {.from = seq})` all read the
// same log) and so that pollers can `read` and `latest`.
//
// A log holds consecutive sequence numbers, oldest first, bounded by a count, a byte total and an age; the oldest
// go first. Retention is off by default (`max_messages = 0`): a topic then keeps no message, and a cursor older
// than the topic's last message resumes with a gap event.
//
// Every log of a broker also counts its bytes in the broker's `retention_budget` (`broker_options::
// max_retained_bytes`): past it, the broker evicts the oldest retained messages over every topic (see
// broker_core.hpp, `trim_to_budget`), so that publishers to many topics cannot make retention take all memory.
//
// `basic_retained_log` is not thread-safe; the broker guards each topic's log with the topic's lock. The budget is
// shared by every topic (atomics).
#pragma once

#include <switchboard/core/bounded_queue.hpp>
#include <switchboard/core/detail/lazy_deque.hpp>

#include <atomic>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace switchboard::pubsub {

/// How much of a topic to keep. Every limit applies; whichever is reached first evicts the oldest message.
struct retention_limits {
  /// Most messages kept. 0 turns retention off.
  std::size_t max_messages = 0;
  /// Most bytes kept, as counted by `queue_traits<Message>::bytes`. The newest message is kept even if it alone is
  /// larger (message sizes are bounded by the protocols' own limits).
  std::size_t max_bytes = 1024 * 1024;
  /// Messages older than this are evicted (checked whenever the log is read or appended to). Zero: no age limit.
  std::chrono::steady_clock::duration max_age = std::chrono::steady_clock::duration::zero();

  /// True when the log keeps nothing.
  constexpr bool off() const noexcept { return max_messages == 0; }
};

/// Retention for the topics whose name matches `pattern` (a Redis glob, see glob.hpp), e.g.
/// `{"chat.*", {.max_messages = 100}}`. Read when a topic is made; the first matching rule wins.
struct retention_rule {
  std::string pattern;
  retention_limits limits;
};

/// The bytes every topic of a broker retains together, against `broker_options::max_retained_bytes`.
struct retention_budget {
  explicit retention_budget(std::size_t limit) : limit(limit) {}

  /// True when the topics retain more than `limit` together.
  bool exceeded() const noexcept { return used.load(std::memory_order_relaxed) > limit; }

  /// The broker's trim has run: clears `trim_pending`, and returns true (setting it again) when the topics retain
  /// more than `limit` now, for the caller to trim again. Appends during the trim may have passed the limit and
  /// told nobody, since `claim_budget_trim` found the trim pending; so this holds whether or not the trim evicted
  /// anything (one that found every log empty still missed the bytes appended meanwhile).
  bool finish_trim() noexcept {
    trim_pending = false;
    return exceeded() && !trim_pending.exchange(true);
  }

  const std::size_t limit;
  std::atomic<std::size_t> used{0};
  std::atomic<std::uint64_t> evicted{0};  ///< Messages evicted to stay within `limit`.
  std::atomic<bool> trim_pending{false};  ///< The broker has been asked to trim (once until it has).
};

/// The retained messages of one topic: consecutive sequence numbers `first_sequence()`..`last_sequence()`.
template <class Message, class Traits = queue_traits<Message>>
class basic_retained_log {
 public:
  using clock = std::chrono::steady_clock;

  /// A log with `limits`, counting its bytes in `budget` too when there is one.
  explicit basic_retained_log(retention_limits limits = {}, std::shared_ptr<retention_budget> budget = {})
      : limits_(limits), budget_(std::move(budget)) {}
  basic_retained_log(const basic_retained_log&) = delete;
  basic_retained_log& operator=(const basic_retained_log&) = delete;
  ~basic_retained_log() { count(-static_cast<std::ptrdiff_t>(bytes_)); }

  const retention_limits& limits() const noexcept { return limits_; }

  /// Changes the limits and evicts what no longer fits.
  void set_limits(retention_limits limits, clock::time_point now) {
    limits_ = limits;
    trim(now);
  }

  /// Appends `m`, published at `now`, then evicts what no longer fits. Precondition: `m.sequence()` is one more than
  /// the newest retained message's, if any.
  void append(Message m, clock::time_point now) {
    assert(entries_.empty() || m.sequence() == last_sequence() + 1);
    if (limits_.off()) return;
    const std::size_t size = Traits::bytes(m);
    bytes_ += size;
    count(static_cast<std::ptrdiff_t>(size));
    entries_.push_back(entry{std::move(m), now});
    trim(now);
  }

  /// Evicts what exceeds the count and byte limits, and what is older than `max_age` at `now`.
  void trim(clock::time_point now) {
    while (entries_.size() > limits_.max_messages) pop_front();
    while (entries_.size() > 1 && bytes_ > limits_.max_bytes) pop_front();
    if (limits_.max_age > clock::duration::zero()) {
      while (!entries_.empty() && now - entries_.front().published_at > limits_.max_age) pop_front();
    }
  }

  /// Forgets every retained message (the next one appended may then skip sequence numbers).
  void clear() noexcept {
    count(-static_cast<std::ptrdiff_t>(bytes_));
    entries_.clear();
    bytes_ = 0;
  }

  /// For the broker's budget: evicts the oldest message (counted in `retention_budget::evicted`). Precondition:
  /// `!empty()`.
  void evict_oldest_for_budget() {
    pop_front();
    if (budget_) budget_->evicted.fetch_add(1, std::memory_order_relaxed);
  }

  /// True when the broker's topics retain more than its budget and nobody has asked the broker to trim yet; the
  /// caller then asks (once: `retention_budget::trim_pending` stays set until the trim has run).
  bool claim_budget_trim() noexcept {
    return budget_ && budget_->exceeded() && !budget_->trim_pending.exchange(true);
  }

  /// When the oldest retained message was published. Precondition: `!empty()`.
  clock::time_point oldest_published_at() const noexcept {
    assert(!entries_.empty());
    return entries_.front().published_at;
  }

  bool empty() const noexcept { return entries_.empty(); }
  /// Messages retained.
  std::size_t size() const noexcept { return entries_.size(); }
  /// Bytes retained.
  std::size_t bytes() const noexcept { return bytes_; }
  /// The oldest retained sequence number; 0 when empty.
  std::uint64_t first_sequence() const noexcept { return entries_.empty() ? 0 : entries_.front().value.sequence(); }
  /// The newest retained sequence number; 0 when empty.
  std::uint64_t last_sequence() const noexcept { return entries_.empty() ? 0 : entries_.back().value.sequence(); }

  /// The message numbered `sequence`. Precondition: `first_sequence() <= sequence <= last_sequence()`.
  const Message& at_sequence(std::uint64_t sequence) const noexcept {
    assert(!entries_.empty() && sequence >= first_sequence() && sequence <= last_sequence());
    return entries_[static_cast<std::size_t>(sequence - first_sequence())].value;
  }

  /// The newest message. Precondition: `!empty()`.
  const Message& back() const noexcept {
    assert(!entries_.empty());
    return entries_.back().value;
  }

 private:
  struct entry {
    Message value;
    clock::time_point published_at;
  };

  void pop_front() {
    const std::size_t size = Traits::bytes(entries_.front().value);
    bytes_ -= size;
    count(-static_cast<std::ptrdiff_t>(size));
    entries_.pop_front();
  }

  void count(std::ptrdiff_t change) noexcept {
    if (budget_ && change != 0) budget_->used.fetch_add(static_cast<std::size_t>(change), std::memory_order_relaxed);
  }

  retention_limits limits_;
  std::shared_ptr<retention_budget> budget_;
  switchboard::detail::lazy_deque<entry> entries_;
  std::size_t bytes_ = 0;
};

}  // namespace switchboard::pubsub
