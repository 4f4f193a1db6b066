// switchboard/core/detail/exact_allocator.hpp
//
// std::allocator under another name. Asio replaces a handler's std::allocator with its per-thread recycling
// allocator, which hands an operation any cached block large enough (often one freed by a much larger operation).
// That is right for short operations; for one that waits for a long time (an idle connection waiting to become
// readable) the block is held for as long as it waits, so those operations are bound to this allocator instead
// and get a block of their own size.
#pragma once

#include <asio/bind_allocator.hpp>

#include <cstddef>
#include <memory>
#include <utility>

namespace switchboard::detail {

template <class T>
struct exact_allocator {
  using value_type = T;
  exact_allocator() noexcept = default;
  template <class U>
  exact_allocator(const exact_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const exact_allocator<U>&) const noexcept { return true; }
};

/// `handler` bound to exact_allocator: for the completion of an operation that may wait a long time.
template <class Handler>
auto long_wait(Handler&& handler) {
  return asio::bind_allocator(exact_allocator<void>(), std::forward<Handler>(handler));
}

}  // namespace switchboard::detail
