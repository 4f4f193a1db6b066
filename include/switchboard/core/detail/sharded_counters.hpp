// switchboard/core/detail/sharded_counters.hpp
//
// Counters that many threads increment at once without fighting over a cache line. Each counter is kept as one
// copy per shard, every shard on cache lines of its own; a thread adds to the copy of its shard, and a reader
// (a metrics scrape) sums the copies. An uncontended atomic add on a line that stays in the thread's core cache
// costs a few nanoseconds; one line shared by several event-loop threads would bounce between their cores on
// every increment.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace switchboard::detail {

/// The cache line size assumed for padding. (`std::hardware_destructive_interference_size` would give it, but its
/// value may differ between compilers and flags, which GCC warns about in headers: -Winterference-size.)
inline constexpr std::size_t cache_line_bytes = 64;

/// One cache line of 64-bit counters.
struct alignas(cache_line_bytes) counter_line {
  static constexpr std::size_t width = cache_line_bytes / sizeof(std::uint64_t);
  std::atomic<std::uint64_t> cells[width];
};
static_assert(sizeof(counter_line) == cache_line_bytes);

/// A small number for the calling thread, given out in the order threads first ask (0, 1, 2, ...). Threads that
/// start one after another, as the threads of a runtime do, get consecutive numbers and so different shards.
inline std::size_t this_thread_number() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t number = next.fetch_add(1, std::memory_order_relaxed);
  return number;
}

/// `width` counters, one copy of them per shard. `shards` must be a power of two. Increments are relaxed atomic
/// adds, so threads that share a shard (more threads than shards) stay correct, only slower.
class sharded_counters {
 public:
  sharded_counters(std::size_t shards, std::size_t width)
      : shard_mask_(shards - 1),
        lines_per_shard_((width + counter_line::width - 1) / counter_line::width),
        lines_(std::make_unique<counter_line[]>(shards * lines_per_shard_)) {}

  /// The shard the calling thread adds to.
  std::size_t local_shard() const noexcept { return this_thread_number() & shard_mask_; }

  /// Counter `i` of shard `shard`.
  std::atomic<std::uint64_t>& cell(std::size_t shard, std::size_t i) noexcept {
    return lines_[shard * lines_per_shard_ + i / counter_line::width].cells[i % counter_line::width];
  }
  const std::atomic<std::uint64_t>& cell(std::size_t shard, std::size_t i) const noexcept {
    return lines_[shard * lines_per_shard_ + i / counter_line::width].cells[i % counter_line::width];
  }

  /// Adds `n` to counter `i` in the calling thread's shard.
  void add(std::size_t i, std::uint64_t n) noexcept { cell(local_shard(), i).fetch_add(n, std::memory_order_relaxed); }

  /// Counter `i` summed over the shards. Concurrent adds may or may not be included.
  std::uint64_t sum(std::size_t i) const noexcept {
    std::uint64_t total = 0;
    for (std::size_t s = 0; s <= shard_mask_; ++s) total += cell(s, i).load(std::memory_order_relaxed);
    return total;
  }

  std::size_t shards() const noexcept { return shard_mask_ + 1; }

 private:
  std::size_t shard_mask_;
  std::size_t lines_per_shard_;
  std::unique_ptr<counter_line[]> lines_;  // value-initialised: every counter starts at 0
};

}  // namespace switchboard::detail
