// switchboard/core/bounded_queue.hpp
//
// A FIFO bounded in items and bytes with an overflow policy (DESIGN promise 2). This is the sans-I/O core that
// connection send queues and subscriber queues build on: it never blocks and knows nothing of executors. It is
// not thread-safe; its owner serialises access (usually by running on one executor). For an asynchronous queue
// whose producers wait for room, see `async_queue.hpp`.
#pragma once

#include <switchboard/core/detail/string_map.hpp>
#include <switchboard/core/overflow_policy.hpp>

#include <cassert>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard {

/// How a bounded queue measures its items. Specialise, or pass your own traits, for other types.
///  - `bytes(item)`: the size counted against `queue_limits::max_bytes`.
///  - `key(item)`: the conflation key (only used with `overflow_policy::conflate`); an empty key never conflates.
/// The default measures anything with `.size()` by its size and other types by `sizeof`, and reads a key from a
/// `conflation_key()` member when the type has one.
template <class T>
struct queue_traits {
  static std::size_t bytes(const T& item) noexcept {
    if constexpr (requires { { item.size() } -> std::convertible_to<std::size_t>; }) {
      return item.size();
    } else {
      return sizeof(T);
    }
  }
  static std::string_view key(const T& item) noexcept {
    if constexpr (requires { { item.conflation_key() } -> std::convertible_to<std::string_view>; }) {
      return item.conflation_key();
    } else {
      (void)item;
      return {};
    }
  }
};

/// What `bounded_queue::push` did with the new item.
enum class push_outcome {
  queued,           ///< Appended; nothing was lost.
  queued_dropping,  ///< Appended after discarding one or more of the oldest items (drop_oldest, conflate).
  replaced,         ///< Replaced a queued item with the same key (conflate): that one was discarded, the new one
                    ///< appended (`bounded_queue::replaced_position` says where the discarded one was).
  dropped,          ///< The new item was discarded (drop_newest).
  must_wait,        ///< Full under `wait`: nothing changed; retry when the consumer has taken items.
  must_disconnect,  ///< Full under `disconnect`: nothing changed; the owner should cut the consumer.
};

/// True when the item given to `push` is now in the queue.
constexpr bool accepted(push_outcome o) noexcept {
  return o == push_outcome::queued || o == push_outcome::queued_dropping || o == push_outcome::replaced;
}

/// Counters of a queue since it was made. `depth` and `bytes` are the current contents.
struct queue_stats {
  std::size_t depth = 0;        ///< Items queued now.
  std::size_t bytes = 0;        ///< Bytes queued now.
  std::uint64_t pushed = 0;     ///< Items accepted (including those that replaced another).
  std::uint64_t popped = 0;     ///< Items taken by the consumer.
  std::uint64_t dropped = 0;    ///< Items discarded by the overflow policy (oldest, newest or replaced).
  std::uint64_t refused = 0;    ///< Pushes answered `must_wait` or `must_disconnect`.
};

/// A FIFO of `T` bounded by `queue_limits`. Storage is a ring that grows by doubling up to `max_messages`, so an
/// idle queue holds no memory beyond the object itself until the first push.
///
/// Under `overflow_policy::conflate` a replacement removes the queued item with the new one's key from where it is
/// and appends the new one, so that the queue stays in push order (a consumer of sequence-numbered messages never
/// sees a newer one before an older one). The items behind the removed one move up one place: a replacement costs
/// O(items behind it), at most `max_messages`; a queue of keyed items holds about one item per key, no more.
template <class T, class Traits = queue_traits<T>>
class bounded_queue {
 public:
  using value_type = T;
  using traits_type = Traits;

  /// Throws `std::invalid_argument` if `limits.max_messages` or `limits.max_bytes` is 0.
  explicit bounded_queue(queue_limits limits = {}) : limits_(limits) {
    if (limits_.max_messages == 0 || limits_.max_bytes == 0) {
      throw std::invalid_argument("switchboard::bounded_queue: max_messages and max_bytes must be at least 1");
    }
  }

  /// Takes `other`'s items and counters; `other` is left empty, as if new, with its limits.
  bounded_queue(bounded_queue&& other) noexcept : limits_(other.limits_) { take_contents(other); }
  /// Discards this queue's items (not counted as dropped), then takes `other`'s, as the move constructor does.
  bounded_queue& operator=(bounded_queue&& other) noexcept {
    if (this != &other) {
      limits_ = other.limits_;
      take_contents(other);
    }
    return *this;
  }

  const queue_limits& limits() const noexcept { return limits_; }
  std::size_t size() const noexcept { return count_; }
  std::size_t bytes() const noexcept { return bytes_; }
  bool empty() const noexcept { return count_ == 0; }

  /// True when an item of `item_bytes` would be accepted without applying the overflow policy.
  bool has_room_for(std::size_t item_bytes) const noexcept {
    if (count_ == 0) return true;
    return count_ < limits_.max_messages && bytes_ + item_bytes <= limits_.max_bytes;
  }

  queue_stats stats() const noexcept {
    return {.depth = count_, .bytes = bytes_, .pushed = counts_.pushed, .popped = counts_.popped,
            .dropped = counts_.dropped, .refused = counts_.refused};
  }

  /// Offers `item` under the queue's policy. Every item the policy discards (oldest ones, the replaced one, or
  /// the new one under drop_newest) is passed, by rvalue, to `on_drop` before `push` returns, so that the owner
  /// can record what was lost (a pub/sub subscription turns that into a gap event). When the outcome is
  /// `must_wait` or `must_disconnect`, `item` is left untouched, so that the caller can keep it.
  /// On `replaced` the new item is at the back and `replaced_position()` says where the replaced one was.
  template <class OnDrop>
  push_outcome push(T&& item, OnDrop&& on_drop) {
    const std::size_t item_bytes = Traits::bytes(item);
    if (limits_.policy == overflow_policy::conflate) {
      if (auto replaced = try_replace(item, item_bytes, on_drop)) return *replaced;
    }
    if (has_room_for(item_bytes)) {
      append(std::move(item), item_bytes);
      return push_outcome::queued;
    }
    switch (limits_.policy) {
      case overflow_policy::wait:
        ++counts_.refused;
        return push_outcome::must_wait;
      case overflow_policy::disconnect:
        ++counts_.refused;
        return push_outcome::must_disconnect;
      case overflow_policy::drop_newest:
        ++counts_.dropped;
        on_drop(std::move(item));
        return push_outcome::dropped;
      case overflow_policy::drop_oldest:
      case overflow_policy::conflate:
        while (!has_room_for(item_bytes)) {
          ++counts_.dropped;
          on_drop(take_front());
        }
        append(std::move(item), item_bytes);
        return push_outcome::queued_dropping;
    }
    return push_outcome::must_wait;  // unreachable: every policy is handled above
  }

  /// `push` for owners that do not need the discarded items.
  push_outcome push(T&& item) {
    return push(std::move(item), [](T&&) noexcept {});
  }

  /// `push` of a copy of `item`.
  push_outcome push(const T& item) { return push(T(item)); }

  /// The oldest item. Precondition: `!empty()`.
  T& front() noexcept {
    assert(count_ > 0);
    return slot(0);
  }

  /// The i-th oldest item, 0 being the front, so that a writer can gather several items into one write.
  /// Precondition: `i < size()`.
  T& at(std::size_t i) noexcept {
    assert(i < count_);
    return slot(i);
  }

  /// After a `push` that returned `replaced`: the position (0 being the front) that the replaced item had, now held
  /// by the item that followed it, or by the new item when the replaced one was the last. An owner that kept
  /// something attached to the replaced item that must stay at its place in the order (a pub/sub subscription's gap
  /// events) moves it to the item now there.
  std::size_t replaced_position() const noexcept { return replaced_position_; }

  /// Removes and returns the oldest item. Precondition: `!empty()`.
  T pop() {
    ++counts_.popped;
    return take_front();
  }

  /// Counts an item that went from its producer to the consumer without being queued (`async_queue::hand_over`):
  /// pushed and popped.
  void count_handed_over() noexcept {
    ++counts_.pushed;
    ++counts_.popped;
  }

  /// Frees the ring when the queue is empty (else does nothing), for an owner about to sit idle: a WebSocket with
  /// nothing left to send holds no queue storage. The next push allocates a small ring again.
  void release_storage() noexcept {
    if (count_ != 0) return;
    std::vector<std::optional<entry>>().swap(ring_);
    head_ = 0;
  }

  /// Removes everything (not counted as dropped: the owner is closing).
  void clear() noexcept {
    while (count_ > 0) (void)take_front();
    keys_.reset();
  }

 private:
  struct entry {
    T value;
    std::uint64_t index;  // push index: position = index - front_index_
  };


  // Moves `other`'s ring, indices and counters here and leaves it empty. (Defaulted moves copied its count and
  // indices and left it claiming items that its moved-out ring no longer held: its next push wrote out of bounds.)
  void take_contents(bounded_queue& other) noexcept {
    ring_ = std::exchange(other.ring_, {});
    head_ = std::exchange(other.head_, 0);
    count_ = std::exchange(other.count_, 0);
    bytes_ = std::exchange(other.bytes_, 0);
    front_index_ = std::exchange(other.front_index_, 0);
    keys_ = std::move(other.keys_);
    counts_ = std::exchange(other.counts_, {});
  }

  std::optional<entry>& cell(std::size_t i) noexcept { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  T& slot(std::size_t i) noexcept { return cell(i)->value; }

  template <class OnDrop>
  std::optional<push_outcome> try_replace(T& item, std::size_t item_bytes, OnDrop& on_drop) {
    const std::string_view key = Traits::key(item);
    if (key.empty()) return std::nullopt;
    if (!keys_) return std::nullopt;
    auto found = keys_->find(key);
    if (found == keys_->end()) return std::nullopt;
    const std::size_t position = found->second - front_index_;
    // A larger item could take the queue past max_bytes, and replacement after replacement far past it: then it
    // goes to the back like a new item (dropping the oldest), and the older one stays before it.
    if (bytes_ - Traits::bytes(cell(position)->value) + item_bytes > limits_.max_bytes && count_ > 1) {
      return std::nullopt;
    }
    T previous = take_at(position);
    append(std::move(item), item_bytes);
    replaced_position_ = position;
    ++counts_.dropped;
    on_drop(std::move(previous));
    return push_outcome::replaced;
  }

  void append(T item, std::size_t item_bytes) {
    if (count_ == ring_.size()) grow();
    const std::uint64_t index = front_index_ + count_;
    if (limits_.policy == overflow_policy::conflate) {
      const std::string_view key = Traits::key(item);
      if (!key.empty()) {
        if (!keys_) keys_ = std::make_unique<detail::string_map<std::uint64_t>>();
        (*keys_)[std::string(key)] = index;
      }
    }
    cell(count_).emplace(entry{std::move(item), index});
    ++count_;
    bytes_ += item_bytes;
    ++counts_.pushed;
  }

  T take_front() {
    std::optional<entry> e = std::move(ring_[head_]);
    ring_[head_].reset();
    head_ = (head_ + 1) & (ring_.size() - 1);
    --count_;
    ++front_index_;
    return forget(std::move(*e));
  }

  // Removes the item at `position` (conflate's replacement): the items behind it move up one place, and so their
  // push indices (position + front_index_) go down by one, in the conflation index too. O(count_ - position).
  T take_at(std::size_t position) {
    T value = forget(std::move(*cell(position)));
    for (std::size_t i = position + 1; i < count_; ++i) {
      entry& moved = *cell(i);
      const std::string_view key = Traits::key(moved.value);
      if (!key.empty()) {
        // The index points at the newest item of a key; an older one (left by a replacement that did not fit in
        // max_bytes) is not in it.
        auto found = keys_->find(key);
        if (found != keys_->end() && found->second == moved.index) --found->second;
      }
      --moved.index;
      cell(i - 1) = std::move(cell(i));
    }
    cell(count_ - 1).reset();
    --count_;
    return value;
  }

  // Takes `e`, being removed from the ring, off the queue's books (its bytes, its conflation index entry) and
  // returns its value.
  T forget(entry&& e) {
    bytes_ -= Traits::bytes(e.value);
    if (keys_ && !keys_->empty()) {
      const std::string_view key = Traits::key(e.value);
      if (!key.empty()) {
        auto found = keys_->find(key);
        if (found != keys_->end() && found->second == e.index) keys_->erase(found);
      }
    }
    return std::move(e.value);
  }

  void grow() {
    const std::size_t capacity = ring_.empty() ? 4 : ring_.size() * 2;
    std::vector<std::optional<entry>> bigger(capacity);
    for (std::size_t i = 0; i < count_; ++i) bigger[i] = std::move(cell(i));
    ring_ = std::move(bigger);
    head_ = 0;
  }

  queue_limits limits_;
  std::vector<std::optional<entry>> ring_;  // power-of-two capacity; empty until the first push
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
  std::uint64_t front_index_ = 0;
  std::size_t replaced_position_ = 0;  // see replaced_position()
  // Conflation index, made by the first keyed push under overflow_policy::conflate: key -> push index of the
  // queued item. A pointer, so that the many queues under other policies do not carry an empty map.
  std::unique_ptr<detail::string_map<std::uint64_t>> keys_;
  struct {
    std::uint64_t pushed = 0, popped = 0, dropped = 0, refused = 0;
  } counts_;  // queue_stats without the depth and bytes, which are count_ and bytes_
};

}  // namespace switchboard
