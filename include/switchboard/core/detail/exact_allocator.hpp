// switchboard/core/detail/exact_allocator.hpp
//
// std::allocator under another name. Asio replaces a handler's std::allocator with its per-thread recycling
// allocator, which hands an operation any cached block large enough (often one freed by a much larger operation).
// That is right for short operations; for one that waits for a long time (an idle connection waiting to become
// readable) the block is held for as long as it waits, so those operations are bound to this allocator instead
// and get a block of their own size.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>
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

/// A completion handler that allocates its operation with exact_allocator. The allocator is a member type, not an
/// `asio::bind_allocator` wrapper: Asio 1.22 treats a handler wrapped by a binder as having an executor of its own
/// and stores a second copy of the I/O executor (56 bytes for `any_io_executor`) in every operation.
template <class Handler>
class long_wait_handler {
 public:
  using allocator_type = exact_allocator<void>;

  explicit long_wait_handler(Handler handler) : handler_(std::move(handler)) {}
  allocator_type get_allocator() const noexcept { return {}; }

  template <class... Args>
  void operator()(Args&&... args) {
    std::move(handler_)(std::forward<Args>(args)...);
  }

 private:
  Handler handler_;
};

/// `handler` with exact_allocator: for the completion of an operation that may wait a long time.
template <class Handler>
auto long_wait(Handler&& handler) {
  return long_wait_handler<std::decay_t<Handler>>(std::forward<Handler>(handler));
}

}  // namespace switchboard::detail
