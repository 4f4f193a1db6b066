// switchboard/core/shared_bytes.hpp
//
// `shared_bytes`: an immutable, reference-counted byte string. A message published to many subscribers, or a frame
// encoded once for many connections, is one `shared_bytes`: each queue holds a reference, no copy of the payload.
//
// Layout: one allocation holds the reference count, a small header (where the bytes are, how many) and, for copies
// and small strings, the bytes themselves; a large string is moved in, not copied, and the header points into it.
// So the usual message (a payload of a few hundred bytes) costs one allocation, not two (control block and
// string buffer), which counts when every publish makes a payload and an encoded frame.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace switchboard {

class shared_bytes {
 public:
  /// Strings up to this size are copied into the shared block; larger ones are moved in.
  static constexpr std::size_t inline_limit = 1024;

  /// Empty.
  shared_bytes() = default;
  /// Takes `bytes`: moved when large, copied into the shared block when small (see the file comment).
  explicit shared_bytes(std::string bytes) {
    if (bytes.size() <= inline_limit) {
      *this = copy(bytes);
      return;
    }
    struct holder {
      header h;
      std::string s;
    };
    auto block = std::make_shared<holder>();
    block->s = std::move(bytes);
    block->h = header{block->s.data(), block->s.size()};
    data_ = std::shared_ptr<const header>(block, &block->h);
  }
  /// Copies `bytes` (one allocation).
  static shared_bytes copy(std::string_view bytes) {
    return build(bytes.size(), [bytes](std::span<char> out) {
      std::memcpy(out.data(), bytes.data(), bytes.size());
      return bytes.size();
    });
  }

  /// Bytes written in place: `fill(std::span<char> out)` writes at most `capacity` bytes into `out` and returns how
  /// many it wrote. One allocation and no copy, where writing into a string and sharing that took two (an encoded
  /// frame, say).
  template <class Fill>
  static shared_bytes build(std::size_t capacity, Fill&& fill) {
    shared_bytes out;
    if (capacity == 0) return out;
    // An array of headers, so that the bytes after the first are aligned for it: the first is the header.
    const std::size_t units = 1 + (capacity + sizeof(header) - 1) / sizeof(header);
    std::shared_ptr<header[]> block = std::make_shared_for_overwrite<header[]>(units);
    char* storage = reinterpret_cast<char*>(block.get() + 1);
    const std::size_t size = std::forward<Fill>(fill)(std::span<char>(storage, capacity));
    if (size == 0) return out;
    block[0] = header{storage, size};
    out.data_ = std::shared_ptr<const header>(block, block.get());
    return out;
  }

  std::string_view view() const noexcept { return data_ ? std::string_view(data_->data, data_->size) : std::string_view(); }
  const char* data() const noexcept { return view().data(); }
  std::size_t size() const noexcept { return data_ ? data_->size : 0; }
  bool empty() const noexcept { return size() == 0; }
  /// How many holders share these bytes (for tests and memory accounting).
  long use_count() const noexcept { return data_.use_count(); }

  friend bool operator==(const shared_bytes& a, const shared_bytes& b) noexcept { return a.view() == b.view(); }

 private:
  struct header {
    const char* data;
    std::size_t size;
  };
  std::shared_ptr<const header> data_;
};

}  // namespace switchboard
