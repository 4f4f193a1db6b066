// switchboard/core/shared_bytes.hpp
//
// `shared_bytes`: an immutable, reference-counted byte string. A message published to many subscribers, or a frame
// encoded once for many connections, is one `shared_bytes`: each queue holds a reference, no copy of the payload.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace switchboard {

class shared_bytes {
 public:
  /// Empty.
  shared_bytes() = default;
  /// Takes `bytes` (moved, not copied).
  explicit shared_bytes(std::string bytes) : data_(std::make_shared<const std::string>(std::move(bytes))) {}
  /// Copies `bytes`.
  static shared_bytes copy(std::string_view bytes) { return shared_bytes(std::string(bytes)); }

  std::string_view view() const noexcept { return data_ ? std::string_view(*data_) : std::string_view(); }
  const char* data() const noexcept { return view().data(); }
  std::size_t size() const noexcept { return data_ ? data_->size() : 0; }
  bool empty() const noexcept { return size() == 0; }
  /// How many holders share these bytes (for tests and memory accounting).
  long use_count() const noexcept { return data_.use_count(); }

  friend bool operator==(const shared_bytes& a, const shared_bytes& b) noexcept { return a.view() == b.view(); }

 private:
  std::shared_ptr<const std::string> data_;
};

}  // namespace switchboard
