// switchboard/http/fields.hpp
//
// `field_views`: the header (or trailer) fields of a parsed message, as views into the buffer that was parsed.
// The container keeps its capacity across messages (`clear`), so a connection parses request after request with
// no allocation per field.
#pragma once

#include <switchboard/http/detail/chars.hpp>

#include <cstddef>
#include <string_view>
#include <vector>

namespace switchboard::http {

/// One field line: name and value, the value trimmed of surrounding whitespace and never decoded.
struct field_view {
  std::string_view name;
  std::string_view value;
};

/// The fields of a message, in the order received. Names compare case-insensitively (RFC 9110 §5.1).
/// The views point into the parsed buffer: they stay valid while that buffer is kept in place (see `parser`).
class field_views {
 public:
  using const_iterator = std::vector<field_view>::const_iterator;

  const_iterator begin() const noexcept { return fields_.begin(); }
  const_iterator end() const noexcept { return fields_.end(); }
  std::size_t size() const noexcept { return fields_.size(); }
  bool empty() const noexcept { return fields_.empty(); }
  const field_view& operator[](std::size_t i) const noexcept { return fields_[i]; }

  /// The value of the first field named `name`, or an empty view if there is none (see `contains`).
  std::string_view get(std::string_view name) const noexcept {
    for (const auto& f : fields_) {
      if (detail::iequals(f.name, name)) return f.value;
    }
    return {};
  }

  bool contains(std::string_view name) const noexcept {
    for (const auto& f : fields_) {
      if (detail::iequals(f.name, name)) return true;
    }
    return false;
  }

  /// How many field lines are named `name`.
  std::size_t count(std::string_view name) const noexcept {
    std::size_t n = 0;
    for (const auto& f : fields_) n += detail::iequals(f.name, name) ? 1 : 0;
    return n;
  }

  /// True when `name`'s values, read as one comma-separated list over all its lines (RFC 9110 §5.3), contain
  /// `token` (case-insensitively). For Connection, Upgrade, Transfer-Encoding, Cache-Control, ...
  bool has_token(std::string_view name, std::string_view token) const noexcept {
    for (const auto& f : fields_) {
      if (!detail::iequals(f.name, name)) continue;
      bool found = false;
      detail::for_each_list_element(f.value, [&](std::string_view element) {
        found = detail::iequals(element, token);
        return !found;
      });
      if (found) return true;
    }
    return false;
  }

  void push_back(field_view f) { fields_.push_back(f); }
  /// Replaces every name and value view `v` by `f(v)`: moves the views to a copy of the buffer they point into.
  template <class F>
  void remap(F&& f) {
    for (auto& field : fields_) {
      field.name = f(field.name);
      field.value = f(field.value);
    }
  }
  void clear() noexcept { fields_.clear(); }
  /// Frees the capacity too (a connection going idle gives its memory back).
  void release() noexcept { std::vector<field_view>().swap(fields_); }

 private:
  std::vector<field_view> fields_;
};

}  // namespace switchboard::http
