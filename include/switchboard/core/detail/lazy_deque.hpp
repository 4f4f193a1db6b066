// switchboard/core/detail/lazy_deque.hpp
//
// `lazy_deque<T>`: a `std::deque<T>` that exists only while it holds something. libstdc++'s `std::deque` allocates
// its map and a first 512-byte block when it is constructed, empty or not: about 0.6 KiB for each of the queues that
// most objects of their kind never use (a topic's waiting publishers, a subscription's replay buffer, a push
// client's held control items). This one is a null pointer until the first push, and gives its storage back when it
// empties. The subset of `std::deque`'s interface the library uses, with the same meaning.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <utility>

namespace switchboard::detail {

template <class T>
class lazy_deque {
 public:
  using iterator = typename std::deque<T>::iterator;
  using const_iterator = typename std::deque<T>::const_iterator;

  bool empty() const noexcept { return !items_; }
  std::size_t size() const noexcept { return items_ ? items_->size() : 0; }

  // Defined only when not empty, as for std::deque.
  T& front() { return items_->front(); }
  const T& front() const { return items_->front(); }
  T& back() { return items_->back(); }
  const T& back() const { return items_->back(); }
  T& operator[](std::size_t i) { return (*items_)[i]; }
  const T& operator[](std::size_t i) const { return (*items_)[i]; }

  void push_back(T value) { emplace_back(std::move(value)); }
  template <class... Args>
  T& emplace_back(Args&&... args) {
    std::deque<T>& items = storage();
    try {
      return items.emplace_back(std::forward<Args>(args)...);
    } catch (...) {
      release_if_empty();  // the first push failed: empty again means no storage, as `empty()` reads it
      throw;
    }
  }

  void pop_front() {
    items_->pop_front();
    release_if_empty();
  }

  /// As `std::deque::erase`; the iterator after the erased element (`end()` once empty).
  iterator erase(iterator it) {
    iterator next = items_->erase(it);
    if (!items_->empty()) return next;
    items_.reset();
    return end();
  }

  void clear() noexcept { items_.reset(); }

  // Empty: value-initialised iterators, which compare equal (C++14, [forward.iterators]).
  iterator begin() noexcept { return items_ ? items_->begin() : iterator(); }
  iterator end() noexcept { return items_ ? items_->end() : iterator(); }
  const_iterator begin() const noexcept { return items_ ? items_->cbegin() : const_iterator(); }
  const_iterator end() const noexcept { return items_ ? items_->cend() : const_iterator(); }

 private:
  std::deque<T>& storage() {
    if (!items_) items_ = std::make_unique<std::deque<T>>();
    return *items_;
  }
  void release_if_empty() noexcept {
    if (items_->empty()) items_.reset();
  }

  std::unique_ptr<std::deque<T>> items_;  // null exactly when empty
};

}  // namespace switchboard::detail
