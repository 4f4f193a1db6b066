// switchboard/http/detail/read_buffer.hpp
//
// The bytes received on a connection and not yet consumed. Blocks come from a per-thread pool, so that an idle
// connection holds none (it returns its block) and a busy one gets one without calling the allocator.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace switchboard::http::detail {

/// Free blocks of one size, for one thread (no locking). Keeps at most `max_free` blocks.
class block_pool {
 public:
  block_pool(std::size_t block_size, std::size_t max_free) : block_size_(block_size), max_free_(max_free) {}
  std::size_t block_size() const noexcept { return block_size_; }

  std::unique_ptr<char[]> acquire() {
    if (free_.empty()) return std::make_unique_for_overwrite<char[]>(block_size_);
    auto block = std::move(free_.back());
    free_.pop_back();
    return block;
  }
  void release(std::unique_ptr<char[]> block) {
    if (free_.size() < max_free_) free_.push_back(std::move(block));
  }

 private:
  std::size_t block_size_;
  std::size_t max_free_;
  std::vector<std::unique_ptr<char[]>> free_;
};

class read_buffer {
 public:
  /// Unconsumed bytes.
  std::string_view data() const noexcept {
    return data_ ? std::string_view(data_.get() + begin_, end_ - begin_) : std::string_view();
  }
  bool empty() const noexcept { return begin_ == end_; }
  bool has_storage() const noexcept { return data_ != nullptr; }
  const char* storage() const noexcept { return data_.get(); }
  std::size_t capacity() const noexcept { return capacity_; }

  /// Marks `n` bytes as consumed. Does not move any byte (views into consumed bytes stay valid until `prepare`).
  void consume(std::size_t n) noexcept { begin_ += n; }

  /// Room for at least `min_free` more bytes (and as much as the block allows), compacting and, up to
  /// `max_capacity`, growing. Moves the unconsumed bytes: views into the buffer die here. Returns the free space.
  std::pair<char*, std::size_t> prepare(block_pool& pool, std::size_t min_free, std::size_t max_capacity) {
    if (!data_) {
      data_ = pool.acquire();
      capacity_ = pool.block_size();
      begin_ = end_ = 0;
    }
    if (begin_ == end_) begin_ = end_ = 0;
    if (capacity_ - end_ < min_free && begin_ > 0) {
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (capacity_ - end_ < min_free && capacity_ < max_capacity) {
      std::size_t bigger = capacity_ * 2;
      while (bigger - end_ < min_free) bigger *= 2;
      if (bigger > max_capacity) bigger = max_capacity;
      auto grown = std::make_unique_for_overwrite<char[]>(bigger);
      std::memcpy(grown.get(), data_.get(), end_);
      give_back(pool);
      data_ = std::move(grown);
      capacity_ = bigger;
    }
    return {data_.get() + end_, capacity_ - end_};
  }

  /// Adds `n` bytes written into the space `prepare` returned.
  void commit(std::size_t n) noexcept { end_ += n; }

  /// Returns the block to the pool if there is nothing unconsumed. Returns whether it did.
  bool release_if_empty(block_pool& pool) noexcept {
    if (begin_ != end_) return false;
    release(pool);
    return true;
  }
  /// Returns the block whatever it holds.
  void release(block_pool& pool) noexcept {
    give_back(pool);
    begin_ = end_ = capacity_ = 0;
  }

 private:
  void give_back(block_pool& pool) noexcept {
    if (!data_) return;
    if (capacity_ == pool.block_size()) {
      pool.release(std::move(data_));
    }
    data_.reset();
  }

  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace switchboard::http::detail
