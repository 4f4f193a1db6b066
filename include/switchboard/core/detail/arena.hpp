// switchboard/core/detail/arena.hpp
//
// `arena`: a small bump region inside a larger block that a connection borrows while it is busy (the HTTP
// server's exchange lives at the start of a page_pool unit, and its arena follows it). `arena_allocator` lets the
// standard containers of that state (the output queue's pieces and strings, the parsed fields) allocate there
// instead of on the heap.
//
// Why: the heap interleaves those small blocks with the long-lived objects of the connections accepted at the same
// time (connection object, socket state). When the state is released, they become holes the allocator cannot give
// back (measured: about 290 bytes per idle HTTP connection at 10,000 connections). In the arena they go back to
// the system with the unit's pages (see page_pool.hpp).
//
// The region is a stack: a block is taken from the top; freeing the top block lowers the top, and freeing the last
// live block empties the region. A block freed below the top stays used until then, so a container that keeps
// growing wastes what it outgrew (bounded by the region's size). When the region is full, blocks come from the
// heap, as they would without an arena.
//
// One thread, like the state it belongs to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace switchboard::detail {

class arena {
 public:
  explicit arena(std::span<char> region) noexcept
      : begin_(region.data()), top_(region.data()), end_(region.data() + region.size()) {}

  arena(const arena&) = delete;
  arena& operator=(const arena&) = delete;

  /// `bytes` aligned to `alignment` from the region, or nullptr when it has no room.
  void* allocate(std::size_t bytes, std::size_t alignment) noexcept {
    const auto top = reinterpret_cast<std::uintptr_t>(top_);
    const std::uintptr_t aligned = (top + alignment - 1) / alignment * alignment;
    const auto end = reinterpret_cast<std::uintptr_t>(end_);
    if (aligned > end || end - aligned < bytes) return nullptr;
    char* block = top_ + (aligned - top);
    top_ = block + bytes;
    ++live_;
    return block;
  }

  /// True when `p` lies in the region (else it came from the heap).
  bool owns(const void* p) const noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    return address >= reinterpret_cast<std::uintptr_t>(begin_) && address < reinterpret_cast<std::uintptr_t>(end_);
  }

  /// Gives back a block of the region.
  void deallocate(void* p, std::size_t bytes) noexcept {
    if (--live_ == 0) {
      top_ = begin_;
    } else if (static_cast<char*>(p) + bytes == top_) {
      top_ = static_cast<char*>(p);
    }
  }

  /// Bytes of the region in use or lost until it empties (for tests).
  std::size_t used() const noexcept { return static_cast<std::size_t>(top_ - begin_); }

 private:
  char* begin_;
  char* top_;
  char* end_;
  std::size_t live_ = 0;
};

/// An allocator over an `arena`, or the heap when it has none (default-constructed) or the arena is full.
///
/// A copy of a container does not share the arena (`select_on_container_copy_construction`): a copy may outlive
/// the unit. Move assignment does not move the arena either, so containers with different arenas exchange
/// elements, not buffers. Never swap containers with different arenas: with allocators that differ and do not
/// propagate on swap, that is undefined ([container.reqmts]; libstdc++ swaps the buffers, and arena memory is then
/// given to the heap). A container moved by construction keeps its arena: only move-construct one whose arena
/// outlives the new container.
template <class T>
class arena_allocator {
 public:
  using value_type = T;
  using propagate_on_container_copy_assignment = std::false_type;
  using propagate_on_container_move_assignment = std::false_type;
  using propagate_on_container_swap = std::false_type;
  using is_always_equal = std::false_type;

  arena_allocator() noexcept = default;
  explicit arena_allocator(arena* a) noexcept : arena_(a) {}
  template <class U>
  arena_allocator(const arena_allocator<U>& other) noexcept : arena_(other.get_arena()) {}

  T* allocate(std::size_t n) {
    if (arena_ != nullptr) {
      if (void* p = arena_->allocate(n * sizeof(T), alignof(T))) return static_cast<T*>(p);
    }
    return std::allocator<T>().allocate(n);
  }

  void deallocate(T* p, std::size_t n) noexcept {
    if (arena_ != nullptr && arena_->owns(p)) return arena_->deallocate(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }

  arena_allocator select_on_container_copy_construction() const noexcept { return arena_allocator(); }

  arena* get_arena() const noexcept { return arena_; }

  template <class U>
  bool operator==(const arena_allocator<U>& other) const noexcept {
    return arena_ == other.get_arena();
  }

 private:
  arena* arena_ = nullptr;
};

}  // namespace switchboard::detail
