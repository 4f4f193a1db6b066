// switchboard/http/detail/small_buffer.hpp
//
// A growable byte string that keeps its first `InlineCapacity` bytes inside the object. Header blocks of typical
// responses (a content type, a location) fit inline, so building a response allocates nothing.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace switchboard::http::detail {

template <std::size_t InlineCapacity>
class small_buffer {
 public:
  small_buffer() noexcept = default;
  small_buffer(const small_buffer& other) { append(other.view()); }
  small_buffer(small_buffer&& other) noexcept { take(other); }
  small_buffer& operator=(const small_buffer& other) {
    if (this != &other) {
      size_ = 0;
      append(other.view());
    }
    return *this;
  }
  small_buffer& operator=(small_buffer&& other) noexcept {
    if (this != &other) {
      heap_.reset();
      capacity_ = InlineCapacity;
      size_ = 0;
      take(other);
    }
    return *this;
  }

  std::string_view view() const noexcept { return {data(), size_}; }
  const char* data() const noexcept { return heap_ ? heap_.get() : inline_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  void clear() noexcept { size_ = 0; }

  /// Appends `s`, which must not point into this buffer: growing it frees the old storage before the copy (the
  /// caller copies such a view first, as `header_block` does).
  small_buffer& append(std::string_view s) {
    reserve(size_ + s.size());
    if (!s.empty()) std::memcpy(mutable_data() + size_, s.data(), s.size());
    size_ += s.size();
    return *this;
  }

  /// Removes `count` bytes at `pos`.
  void erase(std::size_t pos, std::size_t count) noexcept {
    char* d = mutable_data();
    std::memmove(d + pos, d + pos + count, size_ - pos - count);
    size_ -= count;
  }

  void reserve(std::size_t wanted) {
    if (wanted <= capacity_) return;
    std::size_t bigger = capacity_ * 2;
    while (bigger < wanted) bigger *= 2;
    auto grown = std::make_unique_for_overwrite<char[]>(bigger);
    std::memcpy(grown.get(), data(), size_);
    heap_ = std::move(grown);
    capacity_ = bigger;
  }

 private:
  char* mutable_data() noexcept { return heap_ ? heap_.get() : inline_; }

  void take(small_buffer& other) noexcept {
    if (other.heap_) {
      heap_ = std::move(other.heap_);
      capacity_ = other.capacity_;
    } else {
      std::memcpy(inline_, other.inline_, other.size_);
    }
    size_ = other.size_;
    other.size_ = 0;
    other.capacity_ = InlineCapacity;
  }

  char inline_[InlineCapacity];
  std::unique_ptr<char[]> heap_;
  std::size_t size_ = 0;
  std::size_t capacity_ = InlineCapacity;
};

}  // namespace switchboard::http::detail
