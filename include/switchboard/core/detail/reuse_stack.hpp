// switchboard/core/detail/reuse_stack.hpp
//
// Released things kept for reuse (memory units, constructed per-request state), with the rule that decides when to
// let them go: a thing that stayed unused for a whole interval between two calls to `trim` is not needed by the
// current load. The most recently released is taken first, so the ones at the bottom are the ones that went unused;
// how many is the fewest the stack held since the previous `trim` (its low-water mark). A server that answers
// bursts (a thousand long polls answered at once, then parked again) keeps what every burst needs and nothing
// more, whatever the size of the burst, without a fixed cap to tune.
//
// One thread: no locking.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace switchboard::detail {

template <class T>
class reuse_stack {
 public:
  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  std::size_t capacity() const noexcept { return items_.capacity(); }
  /// Room for `n` items, so that a `push` within it never allocates (for noexcept release paths).
  void reserve(std::size_t n) { items_.reserve(n); }

  void push(T item) { items_.push_back(std::move(item)); }

  /// The most recently pushed item. The stack must not be empty.
  T pop() noexcept {
    T item = std::move(items_.back());
    items_.pop_back();
    low_water_ = std::min(low_water_, items_.size());
    return item;
  }

  /// Hands `discard` the items that stayed in the stack since the previous call (the oldest, as many as the
  /// fewest it held since then) and forgets them.
  template <class Discard>
  void trim(Discard&& discard) noexcept {
    const std::size_t unused = std::min(low_water_, items_.size());
    for (std::size_t i = 0; i < unused; ++i) discard(std::move(items_[i]));
    items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(unused));
    low_water_ = items_.size();
  }

  /// Everything in the stack, oldest first (for a destructor that frees them).
  const std::vector<T>& items() const noexcept { return items_; }

 private:
  std::vector<T> items_;       // oldest first
  std::size_t low_water_ = 0;  // the fewest items since the last trim
};

}  // namespace switchboard::detail
