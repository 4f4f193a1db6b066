// switchboard/http/detail/read_buffer.hpp
//
// The bytes received on a connection and not yet consumed. The buffer starts in storage that its owner provides
// (the exchange's own pages, see server_shard.hpp), so that reading a request allocates nothing; it grows on the
// heap only for a header section larger than that storage, and goes back to it on `release`.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

namespace switchboard::http::detail {

class read_buffer {
 public:
  /// A buffer that starts in `storage` (which must outlive it).
  explicit read_buffer(std::span<char> storage) noexcept
      : initial_(storage.data()), initial_capacity_(storage.size()), data_(initial_), capacity_(initial_capacity_) {}
  read_buffer(const read_buffer&) = delete;
  read_buffer& operator=(const read_buffer&) = delete;

  /// Unconsumed bytes.
  std::string_view data() const noexcept { return std::string_view(data_ + begin_, end_ - begin_); }
  bool empty() const noexcept { return begin_ == end_; }
  const char* storage() const noexcept { return data_; }
  std::size_t capacity() const noexcept { return capacity_; }
  /// The size of the storage the buffer starts in.
  std::size_t initial_capacity() const noexcept { return initial_capacity_; }

  /// Marks `n` bytes as consumed. Does not move any byte (views into consumed bytes stay valid until `prepare`).
  void consume(std::size_t n) noexcept { begin_ += n; }

  /// Room for at least `min_free` more bytes (and as much as the buffer allows), compacting and, up to
  /// `max_capacity`, growing. Moves the unconsumed bytes: views into the buffer die here. Returns the free space.
  std::pair<char*, std::size_t> prepare(std::size_t min_free, std::size_t max_capacity) {
    if (begin_ == end_) begin_ = end_ = 0;
    if (capacity_ - end_ < min_free && begin_ > 0) {
      std::memmove(data_, data_ + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (capacity_ - end_ < min_free && capacity_ < max_capacity) {
      std::size_t bigger = capacity_ * 2;
      while (bigger - end_ < min_free) bigger *= 2;
      if (bigger > max_capacity) bigger = max_capacity;
      auto grown = std::make_unique_for_overwrite<char[]>(bigger);
      std::memcpy(grown.get(), data_, end_);
      grown_ = std::move(grown);
      data_ = grown_.get();
      capacity_ = bigger;
    }
    return {data_ + end_, capacity_ - end_};
  }

  /// Adds `n` bytes written into the space `prepare` returned.
  void commit(std::size_t n) noexcept { end_ += n; }

  /// Frees a grown buffer if there is nothing unconsumed. Returns whether the buffer is empty.
  bool release_if_empty() noexcept {
    if (begin_ != end_) return false;
    release();
    return true;
  }
  /// Discards what it holds and goes back to the initial storage.
  void release() noexcept {
    grown_.reset();
    data_ = initial_;
    capacity_ = initial_capacity_;
    begin_ = end_ = 0;
  }

 private:
  char* initial_;
  std::size_t initial_capacity_;
  std::unique_ptr<char[]> grown_;
  char* data_;
  std::size_t capacity_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace switchboard::http::detail
